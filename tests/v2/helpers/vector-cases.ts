// Sample values of every v2 schema type for the golden vectors (tests/v2/vectors/). Deterministic:
// a sample is derived from the type's field list (fixed addresses, hashes and numbers), signed
// types carry real ed25519 signatures by fixed keys, and types with optional parts get a second
// case with them absent.
import { Address, beginCell } from '@ton/core';
import { keyPairFromSeed, sign } from '@ton/crypto';
import { FieldKind, Fields, TYPES, encode, typeDef } from '../../../wrappers/v2/schema';

/** Seed of the key that signs the vector receipts: 32 bytes of 0x07. */
export const RECEIPT_KEY_SEED = Buffer.alloc(32, 7);
/** Seed of the client voucher key of the vectors: 32 bytes of 0x2a. */
export const VOUCHER_KEY_SEED = Buffer.alloc(32, 0x2a);
const receiptKey = keyPairFromSeed(RECEIPT_KEY_SEED);
const voucherKey = keyPairFromSeed(VOUCHER_KEY_SEED);

const addr = (byte: number) => Address.parse(`0:${byte.toString(16).padStart(2, '0').repeat(32)}`);
const h = (byte: number) => Buffer.alloc(32, byte);
const opaque = (tag: number) => beginCell().storeUint(tag, 32).storeStringTail('opaque code').endCell();

/** Named values used wherever a field of that name appears. */
const NAMED: Fields = {
    root: addr(0x0f), escrow: addr(0xe1), worker: addr(0x31), owner: addr(0x01), treasury: addr(0x7e),
    relayer: addr(0x4e), worker_owner: addr(0x01), new_owner: addr(0x02), reporter: addr(0x5e),
    global_id: -239, channel_id: 7730941132800000000n, seq: 3, last_seq: 3, model_id: 1, tokens_in: 100,
    tokens_out: 200, price_in: 1000n, price_out: 3000n, cost: 700000n, cumulative: 2100000n, amount: 1000000000n,
    time: 1_800_000_013, expires_at: 1_800_086_400, receipt_key: receiptKey.publicKey, voucher_key: voucherKey.publicKey,
    key_a: receiptKey.publicKey, key_b: receiptKey.publicKey, min_stake: 10_000_000_000n, unbonding_delay: 604800,
    grace_period: 3600, max_channel_lifetime: 2_592_000, governance_delay: 172_800, relayer_fee_cap_bps: 1000,
    protocol_fee_bps: 100, reporter_reward_bps: 2000, relayer_fee_bps: 500, allowed_kinds: 6, kind: 1,
    query_id: 42n, status: 1, reason: 10, final: 1,
};

function sample(kind: FieldKind, name: string, n: number): any {
    if (name in NAMED) return NAMED[name];
    switch (kind.k) {
        case 'uint':
            return kind.bits <= 32 ? (n * 7 + 1) % 2 ** Math.min(kind.bits, 31) : BigInt(n * 1000 + 1);
        case 'int':
            return -n;
        case 'coins':
            return BigInt(n) * 1_000_000n;
        case 'addr':
        case 'addrOpt':
            return addr(0x40 + n);
        case 'bits':
            return Buffer.alloc(kind.bits / 8, 0x10 + n);
        case 'ref':
        case 'maybeRef':
        case 'maybe':
        case 'inline':
            return sampleOf(kind.type);
        case 'set384':
            return [Buffer.alloc(48, 0x3c), Buffer.alloc(48, 0x3d)];
        case 'cell':
            return opaque(0xc0de0000 + n);
        case 'set32':
            return [1, 2];
        case 'set256':
            return [h(0x4d), h(0x4e)];
        case 'map32bits256':
            return [{ key: 1, value: h(0xa1) }, { key: 2, value: h(0xb2) }];
        case 'map256cell':
            return [{ key: opaque(1).hash(), value: opaque(1) }];
        case 'map':
            return [1, 2].map((i) => ({ key: kind.keyBits <= 32 ? i : NAMED.channel_id + BigInt(i), value: sampleOf(kind.type) }));
    }
}

function sampleOf(type: string): Fields {
    if (type === 'signed_receipt') {
        const body = sampleOf('receipt_body');
        return { signature: sign(encode('receipt_body', body).hash(), receiptKey.secretKey), body };
    }
    if (type === 'signed_voucher') {
        const body = sampleOf('voucher_body');
        return { signature: sign(encode('voucher_body', body).hash(), voucherKey.secretKey), body };
    }
    const out: Fields = {};
    typeDef(type).fields.forEach(([name, kind], i) => (out[name] = sample(kind, name, i + 1)));
    return out;
}

/** Every type's cases: the sample, and for each optional part a case with it absent. */
export const CASES: { [type: string]: Fields[] } = Object.fromEntries(
    TYPES.map((t) => {
        const base = sampleOf(t.name);
        const cases = [base];
        for (const [name, kind] of t.fields) {
            if (kind.k === 'maybeRef' || kind.k === 'maybe' || kind.k === 'addrOpt') cases.push({ ...base, [name]: null });
            if (kind.k === 'set32' || kind.k === 'set256' || kind.k === 'set384' || kind.k === 'map' || kind.k === 'map32bits256' || kind.k === 'map256cell') {
                cases.push({ ...base, [name]: [] });
            }
        }
        return [t.name, cases];
    }),
);
