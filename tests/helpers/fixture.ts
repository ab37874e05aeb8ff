// Shared set-up of the contract specs: a sandbox with a fixed clock, a Root with test parameters,
// and helpers to register workers, create escrows, open jobs and sign receipts.
import * as fs from 'fs';
import * as path from 'path';
import { Blockchain, SandboxContract, TreasuryContract, SendMessageResult } from '@ton/sandbox';
import { Address, Cell, beginCell, toNano } from '@ton/core';
import { KeyPair, keyPairFromSeed, sign } from '@ton/crypto';
import { Root } from '../../wrappers/Root';
import { Worker } from '../../wrappers/Worker';
import { Escrow } from '../../wrappers/Escrow';
import { Fields, encode } from '../../wrappers/schema';
import { REGISTER_GAS, SUBMIT_BASE_GAS, SUBMIT_PER_RECEIPT, TeeKind } from '../../wrappers/constants';

/** Fixed sandbox clock of every spec. */
export const NOW = 1_800_000_000;

export const MEASUREMENT = Buffer.alloc(32, 0x4d);
export const MODEL_A = 1;
export const MODEL_B = 2;
export const MODEL_HASH_A = Buffer.alloc(32, 0xa1);
export const MODEL_HASH_B = Buffer.alloc(32, 0xb2);
export const WEIGHTS_HASH = Buffer.alloc(32, 0x77);
export const EVIDENCE_HASH = Buffer.alloc(32, 0xe5);

export const PARAMS = {
    min_stake: toNano('10'),
    unbonding_delay: 7 * 24 * 3600,
    grace_period: 3600,
    relayer_fee_cap_bps: 1000,
    protocol_fee_bps: 100,
    reporter_reward_bps: 2000,
};
export const PRICE_IN = 1000n;
export const PRICE_OUT = 3000n;

/** Code of a contract from the committed artefact (tests/compiled.spec.ts keeps it current). */
export function loadCode(name: 'root' | 'worker' | 'escrow'): Cell {
    const file = path.join(__dirname, '..', '..', 'contracts', 'compiled', `${name}.json`);
    return Cell.fromBase64(JSON.parse(fs.readFileSync(file, 'utf-8')).codeBoc64);
}

export function keys(seed: number): KeyPair {
    return keyPairFromSeed(Buffer.alloc(32, seed));
}

export function hex32(n: number | bigint): Buffer {
    return Buffer.from(BigInt(n).toString(16).padStart(64, '0'), 'hex');
}

export function bufToBig(b: Buffer): bigint {
    return BigInt('0x' + b.toString('hex'));
}

export interface Env {
    blockchain: Blockchain;
    codes: { root: Cell; worker: Cell; escrow: Cell };
    rootOwner: SandboxContract<TreasuryContract>;
    treasury: SandboxContract<TreasuryContract>;
    workerOwner: SandboxContract<TreasuryContract>;
    client: SandboxContract<TreasuryContract>;
    relayer: SandboxContract<TreasuryContract>;
    stranger: SandboxContract<TreasuryContract>;
    root: SandboxContract<Root>;
}

export async function setupRoot(): Promise<Env> {
    const blockchain = await Blockchain.create();
    blockchain.now = NOW;
    const codes = { root: loadCode('root'), worker: loadCode('worker'), escrow: loadCode('escrow') };
    const rootOwner = await blockchain.treasury('root-owner');
    const treasury = await blockchain.treasury('treasury');
    const workerOwner = await blockchain.treasury('worker-owner');
    const client = await blockchain.treasury('client');
    const relayer = await blockchain.treasury('relayer');
    const stranger = await blockchain.treasury('stranger');
    const root = blockchain.openContract(
        Root.createFromConfig(
            {
                owner: rootOwner.address,
                pending_owner: null,
                params: { ...PARAMS, treasury: treasury.address },
                policy: {
                    allowed_kinds: (1 << TeeKind.SevSnp) | (1 << TeeKind.Tdx),
                    measurements: [MEASUREMENT],
                },
                models: [
                    { key: MODEL_A, value: MODEL_HASH_A },
                    { key: MODEL_B, value: MODEL_HASH_B },
                ],
                codes: { worker_code: codes.worker, escrow_code: codes.escrow },
            },
            codes.root,
        ),
    );
    const r = await root.sendDeploy(rootOwner.getSender(), toNano('1'));
    return { blockchain, codes, rootOwner, treasury, workerOwner, client, relayer, stranger, root };
}

export function workerRecord(k: KeyPair, over: Partial<Fields> = {}, att: Partial<Fields> = {}): Fields {
    return {
        receipt_key: k.publicKey,
        encryption_key: Buffer.alloc(32, 0xec),
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        models: [MODEL_A],
        attestation: {
            kind: TeeKind.SevSnp,
            measurement: MEASUREMENT,
            evidence_hash: EVIDENCE_HASH,
            expires_at: NOW + 30 * 24 * 3600,
            ...att,
        },
        ...over,
    };
}

export async function registerWorker(
    env: Env,
    owner: SandboxContract<TreasuryContract>,
    k: KeyPair,
    stake: bigint = PARAMS.min_stake,
    record: Fields = workerRecord(k),
    value: bigint = stake + REGISTER_GAS,
): Promise<{ result: SendMessageResult; worker: SandboxContract<Worker> }> {
    const result = await env.root.send(owner.getSender(), value, 'register_worker', { stake, record });
    const address = await env.root.getWorkerAddress(owner.address);
    return { result, worker: env.blockchain.openContract(Worker.createFromAddress(address)) };
}

export async function createEscrow(
    env: Env,
    owner: SandboxContract<TreasuryContract>,
    deposit: bigint,
): Promise<{ result: SendMessageResult; escrow: SandboxContract<Escrow> }> {
    const result = await env.root.send(owner.getSender(), deposit, 'create_escrow');
    const address = await env.root.getEscrowAddress(owner.address);
    return { result, escrow: env.blockchain.openContract(Escrow.createFromAddress(address)) };
}

export const INPUT = Buffer.alloc(32, 0x11);

export function openJobFields(env: Env, over: Partial<Fields> = {}, worker: Address | null = null): Fields {
    return {
        job_id: 1n,
        model_id: MODEL_A,
        max_cost: toNano('0.1'),
        deadline: NOW + 600,
        relayer_fee_bps: 500,
        input_commitment: INPUT,
        route: { relayer: env.relayer.address, worker },
        ...over,
    };
}

/** A receipt body for `job` at the registered prices; `over` replaces any field. */
export function receiptBody(escrow: Address, worker: Address, over: Partial<Fields> = {}): Fields {
    const tokens_in = over.tokens_in ?? 100;
    const tokens_out = over.tokens_out ?? 200;
    return {
        escrow,
        job_id: 1n,
        worker,
        model_id: MODEL_A,
        tokens_in,
        tokens_out,
        cost: BigInt(tokens_in) * PRICE_IN + BigInt(tokens_out) * PRICE_OUT,
        time: NOW + 10,
        hashes: { weights_hash: WEIGHTS_HASH, evidence_hash: EVIDENCE_HASH },
        commitments: { input_commitment: INPUT, output_commitment: Buffer.alloc(32, 0x22) },
        ...over,
    };
}

/** signed_receipt fields: ed25519 over the representation hash of the body cell. */
export function signReceipt(body: Fields, k: KeyPair): Fields {
    return { signature: sign(encode('receipt_body', body).hash(), k.secretKey), body };
}

/** The receipt_link chain of a batch. */
export function receiptLinks(receipts: Fields[]): Fields {
    let next: Fields | null = null;
    for (let i = receipts.length - 1; i >= 0; i--) next = { receipt: receipts[i], next };
    return next!;
}

export function submitValue(count: number): bigint {
    return SUBMIT_BASE_GAS + BigInt(count) * SUBMIT_PER_RECEIPT;
}

export { beginCell };
