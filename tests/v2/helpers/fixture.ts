// Shared set-up of the v2 contract specs: a sandbox with a fixed clock, a v2 Root with test
// parameters, and helpers to register workers, create escrows, open channels, and play a channel
// session (receipts signed by the worker, vouchers signed by the client, the accumulator both keep).
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import { Blockchain, SandboxContract, TreasuryContract, SendMessageResult } from '@ton/sandbox';
import { Address, Cell, toNano } from '@ton/core';
import { KeyPair, keyPairFromSeed, sign } from '@ton/crypto';
import { Root } from '../../../wrappers/v2/Root';
import { Worker } from '../../../wrappers/v2/Worker';
import { Escrow } from '../../../wrappers/v2/Escrow';
import { Fields, decode, encode, typeDef } from '../../../wrappers/v2/schema';
import { GLOBAL_ID_MAINNET, TeeKind } from '../../../wrappers/v2/constants';

/** Fixed sandbox clock of every spec. */
export const NOW = 1_800_000_000;

export const MEASUREMENT = Buffer.alloc(32, 0x4d);
export const MODEL_A = 1;
export const MODEL_B = 2;
export const MODEL_HASH_A = Buffer.alloc(32, 0xa1);
export const MODEL_HASH_B = Buffer.alloc(32, 0xb2);
export const WEIGHTS_HASH = Buffer.alloc(32, 0x77);
export const EVIDENCE_HASH = Buffer.alloc(32, 0xe5);
export const INPUT = Buffer.alloc(32, 0x11);
export const OUTPUT = Buffer.alloc(32, 0x22);
export const ZERO = Buffer.alloc(32, 0);

export const PARAMS = {
    min_stake: toNano('10'),
    unbonding_delay: 7 * 24 * 3600,
    grace_period: 3600,
    max_channel_lifetime: 30 * 24 * 3600,
    governance_delay: 2 * 24 * 3600,
    relayer_fee_cap_bps: 1000,
    protocol_fee_bps: 100,
    reporter_reward_bps: 2000,
};
/** Published prices of the test worker, and what channels fix by default. */
export const PRICE_IN = 1000n;
export const PRICE_OUT = 3000n;
export const RELAYER_BPS = 500;
export const CHANNEL_AMOUNT = toNano('1');
/** The sandbox's bundled config is mainnet's: global id -239. */
export const GLOBAL_ID = GLOBAL_ID_MAINNET;

/** v2 code from the committed artefact (tests/v2/compiled.spec.ts keeps it current). */
export function loadCode(name: 'root' | 'worker' | 'escrow'): Cell {
    const file = path.join(__dirname, '..', '..', '..', 'contracts', 'v2', 'compiled', `${name}.json`);
    return Cell.fromBase64(JSON.parse(fs.readFileSync(file, 'utf-8')).codeBoc64);
}

export function keys(seed: number): KeyPair {
    return keyPairFromSeed(Buffer.alloc(32, seed));
}

export function bufToBig(b: Buffer): bigint {
    return BigInt('0x' + b.toString('hex'));
}

export function sha256(...parts: Buffer[]): Buffer {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return h.digest();
}

/** acc_n = sha256(acc_{n-1} ‖ repr hash of receipt body n). */
export function nextAcc(prevAcc: Buffer, receiptBody: Fields): Buffer {
    return sha256(prevAcc, encode('receipt_body', receiptBody).hash());
}

/** A TEE policy that requires nothing (minimum TCB 0, no TDX attribute rule, no allow-lists). */
export const NO_TEE_POLICY: Fields = {
    snp_min_tcb: { boot_loader: 0, tee: 0, snp: 0, microcode: 0, fmc: 0 },
    tdx: { td_attributes_mask: 0n, td_attributes_value: 0n, mr_config_ids: [], mr_owners: [], rtmr3s: [] },
};

/** A policy as an operator of SNP (Genoa and Turin) and TDX hosts would set it. */
export const TEE_POLICY: Fields = {
    snp_min_tcb: { boot_loader: 9, tee: 0, snp: 23, microcode: 72, fmc: 1 },
    tdx: {
        // Debug off (bit 0) and SEPT_VE_DISABLE on (bit 28); the other attributes are free.
        td_attributes_mask: (1n << 0n) | (1n << 28n),
        td_attributes_value: 1n << 28n,
        mr_config_ids: [Buffer.alloc(48, 0)],
        mr_owners: [],
        rtmr3s: [Buffer.alloc(48, 0x33), Buffer.alloc(48, 0x34)],
    },
};

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

export function rootData(env: { codes: Env['codes']; rootOwner: { address: Address }; treasury: { address: Address } }): Fields {
    return {
        owner: env.rootOwner.address,
        pending_owner: null,
        params: { ...PARAMS, treasury: env.treasury.address },
        policy: {
            allowed_kinds: (1 << TeeKind.SevSnp) | (1 << TeeKind.Tdx),
            measurements: [MEASUREMENT],
            models: [
                { key: MODEL_A, value: MODEL_HASH_A },
                { key: MODEL_B, value: MODEL_HASH_B },
            ],
            tee: NO_TEE_POLICY,
        },
        codes: { worker_code: env.codes.worker, escrow_code: env.codes.escrow, retired_worker_codes: [] },
        queue: { next_id: 0, changes: [] },
    };
}

export async function setupRoot(blockchain?: Blockchain): Promise<Env> {
    blockchain = blockchain ?? (await Blockchain.create());
    blockchain.now = NOW;
    const codes = { root: loadCode('root'), worker: loadCode('worker'), escrow: loadCode('escrow') };
    const rootOwner = await blockchain.treasury('root-owner');
    const treasury = await blockchain.treasury('treasury');
    const workerOwner = await blockchain.treasury('worker-owner');
    const client = await blockchain.treasury('client');
    const relayer = await blockchain.treasury('relayer');
    const stranger = await blockchain.treasury('stranger');
    const root = blockchain.openContract(Root.createFromConfig(rootData({ codes, rootOwner, treasury }), codes.root));
    await root.sendDeploy(rootOwner.getSender(), toNano('1'));
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

/** Generous value for a message whose exact requirement a spec does not test. */
export const GAS = toNano('0.2');

export async function registerWorker(
    env: Env,
    owner: SandboxContract<TreasuryContract>,
    k: KeyPair,
    stake: bigint = PARAMS.min_stake,
    record: Fields = workerRecord(k),
    value: bigint = stake + GAS,
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

export const voucherKey = keys(42);

export function openChannelFields(env: Env, over: Partial<Fields> = {}): Fields {
    return {
        amount: CHANNEL_AMOUNT,
        worker_owner: env.workerOwner.address,
        expires_at: NOW + 24 * 3600,
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        voucher_key: voucherKey.publicKey,
        route: { relayer: env.relayer.address, relayer_fee_bps: RELAYER_BPS },
        ...over,
    };
}

/** Opens a channel from `client` and returns its id (the escrow's next id before the open). */
export async function openChannel(
    env: Env,
    escrow: SandboxContract<Escrow>,
    over: Partial<Fields> = {},
    value: bigint = GAS,
    client: SandboxContract<TreasuryContract> = env.client,
): Promise<{ result: SendMessageResult; channelId: bigint }> {
    const channelId = (await escrow.getState()).next_channel_id;
    const result = await escrow.send(client.getSender(), value, 'open_channel', openChannelFields(env, over));
    return { result, channelId };
}

export function channelRef(root: Address, escrow: Address, channelId: bigint, globalId = GLOBAL_ID): Fields {
    return { global_id: globalId, root, escrow, channel_id: channelId };
}

export function receiptBody(
    ref: Fields,
    worker: Address,
    seq: number,
    prevAcc: Buffer,
    over: Partial<Fields> = {},
    prices: { in: bigint; out: bigint } = { in: PRICE_IN, out: PRICE_OUT },
): Fields {
    const tokens_in = over.tokens_in ?? 100;
    const tokens_out = over.tokens_out ?? 200;
    return {
        channel: ref,
        seq,
        worker,
        model_id: MODEL_A,
        tokens_in,
        tokens_out,
        cost: BigInt(tokens_in) * prices.in + BigInt(tokens_out) * prices.out,
        time: NOW + 10 + seq,
        prev_acc: prevAcc,
        hashes: { weights_hash: WEIGHTS_HASH, evidence_hash: EVIDENCE_HASH },
        commitments: { input_commitment: INPUT, output_commitment: OUTPUT },
        ...over,
    };
}

/** signed_receipt fields: ed25519 over the representation hash of the body cell. */
export function signReceipt(body: Fields, k: KeyPair): Fields {
    return { signature: sign(encode('receipt_body', body).hash(), k.secretKey), body };
}

/** `final` 1: the client's cooperative close (the settlement also closes the channel). */
export function voucherBody(ref: Fields, cumulative: bigint, lastSeq: number, acc: Buffer, final = 0): Fields {
    return { channel: ref, cumulative, last_seq: lastSeq, acc, final };
}

export function signVoucher(body: Fields, k: KeyPair = voucherKey): Fields {
    return { signature: sign(encode('voucher_body', body).hash(), k.secretKey), body };
}

/**
 * One channel as its two ends see it: each request makes a receipt (signed by the worker over the
 * accumulator so far) and a voucher (signed by the client over the new cumulative amount and
 * accumulator). `settlement()` is what the worker node submits.
 */
export class Session {
    seq = 0;
    acc: Buffer = ZERO;
    cumulative = 0n;
    lastReceipt: Fields | null = null;
    lastVoucher: Fields | null = null;

    constructor(
        readonly ref: Fields,
        readonly worker: Address,
        readonly receiptKey: KeyPair,
        readonly prices = { in: PRICE_IN, out: PRICE_OUT },
        readonly clientKey: KeyPair = voucherKey,
    ) {}

    request(over: Partial<Fields> = {}): { receipt: Fields; voucher: Fields } {
        this.seq += 1;
        const body = receiptBody(this.ref, this.worker, this.seq, this.acc, over, this.prices);
        this.acc = nextAcc(this.acc, body);
        this.cumulative += body.cost as bigint;
        this.lastReceipt = signReceipt(body, this.receiptKey);
        this.lastVoucher = signVoucher(voucherBody(this.ref, this.cumulative, this.seq, this.acc), this.clientKey);
        return { receipt: this.lastReceipt, voucher: this.lastVoucher };
    }

    /**
     * `n` requests at once, signing only the last receipt and voucher (what a settlement needs):
     * the accumulator still chains every receipt body.
     */
    advance(n: number, over: Partial<Fields> = {}) {
        for (let i = 0; i < n; i++) {
            this.seq += 1;
            const body = receiptBody(this.ref, this.worker, this.seq, this.acc, over, this.prices);
            this.acc = nextAcc(this.acc, body);
            this.cumulative += body.cost as bigint;
            if (i === n - 1) {
                this.lastReceipt = signReceipt(body, this.receiptKey);
                this.lastVoucher = signVoucher(voucherBody(this.ref, this.cumulative, this.seq, this.acc), this.clientKey);
            }
        }
    }

    settlement(): Fields {
        return { receipt: this.lastReceipt!, voucher: this.lastVoucher! };
    }

    /** The last receipt with the client's final voucher over it (a cooperative close). */
    finalSettlement(): Fields {
        const v = this.lastVoucher!.body as Fields;
        return { receipt: this.lastReceipt!, voucher: signVoucher({ ...v, final: 1 }, this.clientKey) };
    }
}

/** External-out logs of type `name` in a trace. */
export function logs(r: SendMessageResult, name: string): Fields[] {
    const tag = typeDef(name).tag;
    return r.transactions
        .flatMap((t) => t.outMessages.values())
        .filter((m) => m.info.type === 'external-out' && m.body.beginParse().preloadUint(32) === tag)
        .map((m) => decode(name, m.body));
}

/**
 * The settlement records of a trace: the `settlement` of every payout that carries one (the
 * Escrow's record of a channel settlement: channel, seq, cumulative, acc, final, released).
 */
export function settlements(r: SendMessageResult): Fields[] {
    const tag = typeDef('payout').tag;
    return r.transactions
        .map((t) => t.inMessage)
        .filter((m) => m && m.info.type === 'internal' && m.body.bits.length >= 32 && m.body.beginParse().preloadUint(32) === tag)
        .map((m) => decode('payout', m!.body).settlement)
        .filter((s) => s !== null);
}

/** The value of the message from `from` to `to` in a trace (exactly one expected). */
export function valueOf(r: SendMessageResult, from: Address, to: Address, op?: number): bigint {
    const ms = r.transactions
        .map((t) => t.inMessage)
        .filter((m) => m && m.info.type === 'internal' && m.info.src.equals(from) && m.info.dest.equals(to))
        .filter((m) => op === undefined || (m!.body.bits.length >= 32 && m!.body.beginParse().preloadUint(32) === op));
    if (ms.length !== 1) throw new Error(`expected one message ${from} → ${to}, got ${ms.length}`);
    const info = ms[0]!.info;
    if (info.type !== 'internal') throw new Error('internal expected');
    return info.value.coins;
}

/** Storage fee the account at `address` paid in the trace (its storage phases). */
export function storageFee(r: SendMessageResult, address: Address): bigint {
    let sum = 0n;
    for (const t of r.transactions) {
        const d = t.description;
        if (d.type !== 'generic' || !d.storagePhase) continue;
        if (new Address(0, Buffer.from(t.address.toString(16).padStart(64, '0'), 'hex')).equals(address)) {
            sum += d.storagePhase.storageFeesCollected;
        }
    }
    return sum;
}
