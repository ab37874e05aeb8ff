// Sample values of every schema type for the golden vectors (tests/vectors/). Deterministic: fixed
// addresses, hashes and an ed25519 key from a fixed seed, so the files only change when a layout
// does. Types with optional parts get a case with each part present and one with it absent.
import { Address, beginCell } from '@ton/core';
import { keyPairFromSeed, sign } from '@ton/crypto';
import { Fields, TYPES, encode } from '../../wrappers/schema';

/** Seed of the key that signs the vector receipts: 32 bytes of 0x07. */
export const VECTOR_KEY_SEED = Buffer.alloc(32, 7);
const key = keyPairFromSeed(VECTOR_KEY_SEED);

const addr = (byte: number, wc = 0) => Address.parse(`${wc}:${byte.toString(16).padStart(2, '0').repeat(32)}`);
const h = (byte: number) => Buffer.alloc(32, byte);
const opaque = (tag: number) => beginCell().storeUint(tag, 32).storeStringTail('opaque code').endCell();

const ESCROW = addr(0xe1);
const WORKER = addr(0x31);
const OWNER = addr(0x01);
const ROOT = addr(0x0f);
const TREASURY = addr(0x7e);
const RELAYER = addr(0x4e);

const hashes = { weights_hash: h(0x77), evidence_hash: h(0xe5) };
const commitments = { input_commitment: h(0x11), output_commitment: h(0x22) };
const body = (job: bigint, out: number): Fields => ({
    escrow: ESCROW,
    job_id: job,
    worker: WORKER,
    model_id: 1,
    tokens_in: 100,
    tokens_out: out,
    cost: 100n * 1000n + BigInt(out) * 3000n,
    time: 1_800_000_010,
    hashes,
    commitments,
});
const signed = (b: Fields): Fields => ({ signature: sign(encode('receipt_body', b).hash(), key.secretKey), body: b });
const attestation = { kind: 1, measurement: h(0x4d), evidence_hash: h(0xe5), expires_at: 1_802_592_000 };
const record = (models: number[]): Fields => ({
    receipt_key: key.publicKey,
    encryption_key: h(0xec),
    price_in: 1000n,
    price_out: 3000n,
    models,
    attestation,
});
const params = {
    min_stake: 10_000_000_000n,
    unbonding_delay: 604800,
    grace_period: 3600,
    relayer_fee_cap_bps: 1000,
    protocol_fee_bps: 100,
    reporter_reward_bps: 2000,
    treasury: TREASURY,
};
const workerConfig = { unbonding_delay: 604800, reporter_reward_bps: 2000, treasury: TREASURY };
const escrowConfig = {
    worker_code: opaque(0xc0de0001),
    grace_period: 3600,
    relayer_fee_cap_bps: 1000,
    protocol_fee_bps: 100,
    treasury: TREASURY,
};
const routeNamed = { relayer: RELAYER, worker: WORKER };
const routeOpen = { relayer: RELAYER, worker: null };
const job = (route: Fields): Fields => ({
    model_id: 1,
    max_cost: 100_000_000n,
    deadline: 1_800_000_600,
    relayer_fee_bps: 500,
    input_commitment: h(0x11),
    route,
});
const link2 = { receipt: signed(body(1n, 200)), next: { receipt: signed(body(2n, 10)), next: null } };
const QID = 0x0102030405060708n;
const BIG = 18_446_744_073_709_551_615n; // u64::MAX

/** Cases per type name. */
export const CASES: { [type: string]: Fields[] } = {
    receipt_body: [body(1n, 200), { ...body(BIG, 0), tokens_in: 0, cost: 0n, time: 0 }],
    receipt_hashes: [hashes],
    receipt_commitments: [commitments],
    signed_receipt: [signed(body(1n, 200)), signed(body(1n, 201))],
    root_params: [params],
    root_policy: [
        { allowed_kinds: 6, measurements: [h(0x4d), h(0x01)] },
        { allowed_kinds: 0, measurements: [] },
    ],
    attestation: [attestation],
    worker_record: [record([1, 2, 70000]), record([])],
    worker_config: [workerConfig],
    escrow_config: [escrowConfig],
    job_route: [routeNamed, routeOpen],
    job: [job(routeNamed), job(routeOpen)],
    receipt_link: [link2, { receipt: signed(body(3n, 1)), next: null }],
    root_data: [
        {
            owner: OWNER,
            pending_owner: null,
            params,
            policy: { allowed_kinds: 6, measurements: [h(0x4d)] },
            models: [
                { key: 1, value: h(0xa1) },
                { key: 2, value: h(0xb2) },
            ],
            codes: { worker_code: opaque(0xc0de0001), escrow_code: opaque(0xc0de0002) },
        },
        {
            owner: OWNER,
            pending_owner: addr(0x02),
            params,
            policy: { allowed_kinds: 0, measurements: [] },
            models: [],
            codes: { worker_code: opaque(0xc0de0001), escrow_code: opaque(0xc0de0002) },
        },
    ],
    root_codes: [{ worker_code: opaque(0xc0de0001), escrow_code: opaque(0xc0de0002) }],
    worker_data: [
        { root: ROOT, owner: OWNER, status: 0, stake: 0n, earned: 0n, unlock_at: 0, record: null, config: null },
        {
            root: ROOT,
            owner: OWNER,
            status: 2,
            stake: 10_000_000_000n,
            earned: 123_456n,
            unlock_at: 1_800_604_800,
            record: record([1]),
            config: workerConfig,
        },
    ],
    escrow_data: [
        { root: ROOT, owner: OWNER, last_job_id: 0n, locked: 0n, fees_due: 0n, jobs: [], config: null },
        {
            root: ROOT,
            owner: OWNER,
            last_job_id: 5n,
            locked: 200_000_000n,
            fees_due: 7_000n,
            jobs: [
                { key: 4n, value: job(routeNamed) },
                { key: 5n, value: job(routeOpen) },
            ],
            config: escrowConfig,
        },
    ],
    register_worker: [{ query_id: QID, stake: 10_000_000_000n, record: record([1]) }],
    update_worker: [{ query_id: QID, record: record([1, 2]) }],
    create_escrow: [{ query_id: QID }],
    set_params: [{ query_id: QID, params }],
    set_allowed_kinds: [{ query_id: QID, allowed_kinds: 6 }],
    add_measurement: [{ query_id: QID, measurement: h(0x4d) }],
    remove_measurement: [{ query_id: QID, measurement: h(0x4d) }],
    set_model: [{ query_id: QID, model_id: 1, model_hash: h(0xa1) }],
    remove_model: [{ query_id: QID, model_id: 1 }],
    set_codes: [{ query_id: QID, worker_code: opaque(0xc0de0001), escrow_code: opaque(0xc0de0002) }],
    transfer_ownership: [{ query_id: QID, new_owner: addr(0x02) }],
    accept_ownership: [{ query_id: QID }],
    worker_init: [{ query_id: QID, stake: 10_000_000_000n, record: record([1]), config: workerConfig }],
    worker_update: [{ query_id: QID, record: record([2]) }],
    submit_receipts: [
        { query_id: QID, count: 2, receipts: link2 },
        { query_id: 0n, count: 1, receipts: { receipt: signed(body(3n, 1)), next: null } },
    ],
    pay_worker: [{ query_id: QID, amount: 600_000n, job_id: 1n }],
    report_equivocation: [{ query_id: QID, receipt_a: signed(body(1n, 200)), receipt_b: signed(body(1n, 201)) }],
    top_up_stake: [{ query_id: QID, amount: 1_000_000_000n }],
    unbond: [{ query_id: QID }],
    withdraw_stake: [{ query_id: QID }],
    withdraw_earnings: [{ query_id: QID, amount: 600_000n }],
    escrow_init: [{ query_id: QID, config: escrowConfig }],
    deposit: [{ query_id: QID }],
    open_job: [
        { query_id: QID, job_id: 1n, ...job(routeNamed) },
        { query_id: QID, job_id: BIG, ...job(routeOpen), max_cost: BIG },
    ],
    settle: [
        {
            query_id: QID,
            worker_owner: OWNER,
            job_id: 1n,
            model_id: 1,
            cost: 700_000n,
            input_commitment: h(0x11),
            receipt_hash: encode('receipt_body', body(1n, 200)).hash(),
        },
    ],
    expire_job: [{ query_id: QID, job_id: 1n }],
    withdraw: [{ query_id: QID, amount: 1_000_000_000n }],
    close: [{ query_id: QID }],
    collect_fees: [{ query_id: QID }],
    job_opened: [
        { query_id: QID, escrow_owner: OWNER, job_id: 1n, ...job(routeNamed) },
        { query_id: QID, escrow_owner: OWNER, job_id: 2n, ...job(routeOpen) },
    ],
    relayer_fee: [{ query_id: QID, job_id: 1n }],
    payout: [{ query_id: QID, reason: 1 }, { query_id: 0n, reason: 9 }],
    excesses: [{ query_id: QID }],
    log_settled: [{ job_id: 1n, cost: 700_000n, receipt_hash: encode('receipt_body', body(1n, 200)).hash() }],
    log_receipt_skipped: [{ query_id: QID, index: 3, error: 206 }],
    log_job_expired: [{ job_id: 1n }],
    log_slashed: [{ reporter: addr(0x5e), reward: 2_000_000_000n }],
};

// Every schema type has cases (checked at import: a new type without cases fails the suite).
for (const t of TYPES) {
    if (!CASES[t.name]?.length) throw new Error(`no vector cases for ${t.name}`);
}
