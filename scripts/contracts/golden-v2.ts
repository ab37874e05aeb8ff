// Writes the v2 golden vectors tests/v2/vectors/<type>.json from the v2 TypeScript codec
// (wrappers/v2/schema.ts), plus child_addresses.json (v2 code) and receipt_chain.json (a channel's
// receipts, accumulators and voucher, end to end). tests/v2/schema.spec.ts fails when they are stale.
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import { Address, Cell } from '@ton/core';
import { keyPairFromSeed, sign } from '@ton/crypto';
import { TYPES, encode, toJson } from '../../wrappers/v2/schema';
import { escrowAddress, workerAddress } from '../../wrappers/v2/common';
import { CASES, RECEIPT_KEY_SEED, VOUCHER_KEY_SEED } from '../../tests/v2/helpers/vector-cases';

export const VECTORS_DIR_V2 = path.resolve(__dirname, '..', '..', 'tests', 'v2', 'vectors');
const BOC = (c: Cell) => c.toBoc({ idx: false, crc32: true }).toString('base64');

export function vectorFileV2(type: string): string {
    const cases = CASES[type].map((fields) => ({ fields: toJson(type, fields), boc: BOC(encode(type, fields)) }));
    return JSON.stringify(cases, null, 2) + '\n';
}

export function vectorTypesV2(): string[] {
    return TYPES.map((t) => t.name);
}

const COMPILED = path.resolve(__dirname, '..', '..', 'contracts', 'v2', 'compiled');
const code = (name: string) => Cell.fromBase64(JSON.parse(fs.readFileSync(path.join(COMPILED, `${name}.json`), 'utf-8')).codeBoc64);

/** The v2 Worker and Escrow addresses of (root, owner) with the committed v2 code. */
export function childAddressesFileV2(): string {
    const root = Address.parse('0:' + '0f'.repeat(32));
    const worker = code('worker');
    const escrow = code('escrow');
    const cases = ['0:' + '01'.repeat(32), '0:' + 'ab'.repeat(32)].map((o) => {
        const owner = Address.parse(o);
        return {
            root: root.toRawString(),
            owner: owner.toRawString(),
            worker_code_hash: worker.hash().toString('hex'),
            escrow_code_hash: escrow.hash().toString('hex'),
            worker_address: workerAddress(root, owner, worker).toRawString(),
            escrow_address: escrowAddress(root, owner, escrow).toRawString(),
        };
    });
    return JSON.stringify(cases, null, 2) + '\n';
}

/**
 * receipt_chain.json: three receipts of one channel as the worker signs them (prev_acc chained),
 * the accumulator after each (acc_n = sha256(acc_{n-1} ‖ repr_hash(body_n)), acc_0 = 0), the
 * voucher over the last one, and the settle acc the Worker forwards.
 */
export function receiptChainFile(): string {
    const rk = keyPairFromSeed(RECEIPT_KEY_SEED);
    const vk = keyPairFromSeed(VOUCHER_KEY_SEED);
    const channel = {
        global_id: -239, root: Address.parse('0:' + '0f'.repeat(32)), escrow: Address.parse('0:' + 'e1'.repeat(32)),
        channel_id: 7730941132800000000n,
    };
    let acc = Buffer.alloc(32, 0);
    let cumulative = 0n;
    const steps = [];
    for (let seq = 1; seq <= 3; seq++) {
        const body = {
            channel, seq, worker: Address.parse('0:' + '31'.repeat(32)), model_id: 1, tokens_in: 100 * seq, tokens_out: 200,
            cost: BigInt(100 * seq) * 1000n + 200n * 3000n, time: 1_800_000_010 + seq, prev_acc: acc,
            hashes: { weights_hash: Buffer.alloc(32, 0x77), evidence_hash: Buffer.alloc(32, 0xe5) },
            commitments: { input_commitment: Buffer.alloc(32, 0x10 + seq), output_commitment: Buffer.alloc(32, 0x20 + seq) },
        };
        const cell = encode('receipt_body', body);
        const signed = { signature: sign(cell.hash(), rk.secretKey), body };
        acc = createHash('sha256').update(acc).update(cell.hash()).digest();
        cumulative += body.cost;
        steps.push({
            receipt: toJson('signed_receipt', signed),
            receipt_boc: BOC(encode('signed_receipt', signed)),
            receipt_hash: cell.hash().toString('hex'),
            acc_after: acc.toString('hex'),
            cumulative: cumulative.toString(),
        });
    }
    // The chain's last voucher is the client's final one (cooperative close).
    const vbody = { channel, cumulative, last_seq: 3, acc, final: 1 };
    const voucher = { signature: sign(encode('voucher_body', vbody).hash(), vk.secretKey), body: vbody };
    return JSON.stringify({
        receipt_key_seed: RECEIPT_KEY_SEED.toString('hex'),
        voucher_key_seed: VOUCHER_KEY_SEED.toString('hex'),
        steps,
        voucher: toJson('signed_voucher', voucher),
        voucher_boc: BOC(encode('signed_voucher', voucher)),
    }, null, 2) + '\n';
}

if (require.main === module) {
    fs.mkdirSync(VECTORS_DIR_V2, { recursive: true });
    fs.writeFileSync(path.join(VECTORS_DIR_V2, 'child_addresses.json'), childAddressesFileV2());
    fs.writeFileSync(path.join(VECTORS_DIR_V2, 'receipt_chain.json'), receiptChainFile());
    for (const type of vectorTypesV2()) fs.writeFileSync(path.join(VECTORS_DIR_V2, `${type}.json`), vectorFileV2(type));
    console.log(`wrote ${vectorTypesV2().length + 2} v2 vector files to ${VECTORS_DIR_V2}`);
}
