// A table-driven codec for every type of contracts/schema.tlb.
//
// Each TL-B type is described once, as its constructor tag and its fields in wire order; from that
// description this module stores a value into a cell, loads it back (rejecting trailing data), and
// renders it as the JSON of the golden vectors (tests/vectors/). Field names are the TL-B names.
//
// Value representation (TS / JSON vector):
//   uint<=32            number            / number
//   uint64, Coins       bigint            / decimal string
//   MsgAddressInt       Address           / "0:<64 hex>"
//   MsgAddress (opt.)   Address | null    / "0:<64 hex>" | null
//   bitsN               Buffer            / lowercase hex
//   ^T, Maybe ^T        object (| null)   / nested object (| null)
//   ^Cell (opaque)      Cell              / base64 BOC
//   HashmapE 32 Empty   number[]          / number[] (ascending)
//   HashmapE 256 Empty  Buffer[]          / hex[] (ascending)
//   HashmapE 32 bits256 {key, value}[]    / [{"key": number, "value": hex}] (ascending)
//   HashmapE 64 Job     {key, value}[]    / [{"key": decimal string, "value": {Job}}] (ascending)

import { Address, Builder, Cell, Dictionary, DictionaryValue, Slice, beginCell } from '@ton/core';

export type FieldKind =
    | { k: 'uint'; bits: number }
    | { k: 'coins' }
    | { k: 'addr' }
    | { k: 'addrOpt' }
    | { k: 'bits'; bits: number }
    | { k: 'ref'; type: string }
    | { k: 'maybeRef'; type: string }
    | { k: 'cell' }
    | { k: 'set32' }
    | { k: 'set256' }
    | { k: 'map32bits256' }
    | { k: 'jobs' };

export interface TypeDef {
    /** TL-B constructor name (snake case), also the vector file name. */
    name: string;
    /** 32-bit tag stored first, if the constructor has one. */
    tag?: number;
    fields: [string, FieldKind][];
}

const u = (bits: number): FieldKind => ({ k: 'uint', bits });
const coins: FieldKind = { k: 'coins' };
const addr: FieldKind = { k: 'addr' };
const addrOpt: FieldKind = { k: 'addrOpt' };
const bits = (n: number): FieldKind => ({ k: 'bits', bits: n });
const ref = (type: string): FieldKind => ({ k: 'ref', type });
const maybeRef = (type: string): FieldKind => ({ k: 'maybeRef', type });
const cell: FieldKind = { k: 'cell' };
const qid: [string, FieldKind] = ['query_id', u(64)];

/** Every type of schema.tlb, in file order. */
export const TYPES: TypeDef[] = [
    // receipt (fixed layout)
    {
        name: 'receipt_body',
        tag: 0x72637074,
        fields: [
            ['escrow', addr], ['job_id', u(64)], ['worker', addr], ['model_id', u(32)],
            ['tokens_in', u(32)], ['tokens_out', u(32)], ['cost', coins], ['time', u(32)],
            ['hashes', ref('receipt_hashes')], ['commitments', ref('receipt_commitments')],
        ],
    },
    { name: 'receipt_hashes', fields: [['weights_hash', bits(256)], ['evidence_hash', bits(256)]] },
    { name: 'receipt_commitments', fields: [['input_commitment', bits(256)], ['output_commitment', bits(256)]] },
    { name: 'signed_receipt', fields: [['signature', bits(512)], ['body', ref('receipt_body')]] },

    // records
    {
        name: 'root_params',
        fields: [
            ['min_stake', coins], ['unbonding_delay', u(32)], ['grace_period', u(32)],
            ['relayer_fee_cap_bps', u(16)], ['protocol_fee_bps', u(16)], ['reporter_reward_bps', u(16)],
            ['treasury', addr],
        ],
    },
    { name: 'root_policy', fields: [['allowed_kinds', u(8)], ['measurements', { k: 'set256' }]] },
    {
        name: 'attestation',
        fields: [['kind', u(8)], ['measurement', bits(256)], ['evidence_hash', bits(256)], ['expires_at', u(32)]],
    },
    {
        name: 'worker_record',
        fields: [
            ['receipt_key', bits(256)], ['encryption_key', bits(256)], ['price_in', coins], ['price_out', coins],
            ['models', { k: 'set32' }], ['attestation', ref('attestation')],
        ],
    },
    { name: 'worker_config', fields: [['unbonding_delay', u(32)], ['reporter_reward_bps', u(16)], ['treasury', addr]] },
    {
        name: 'escrow_config',
        fields: [
            ['worker_code', cell], ['grace_period', u(32)], ['relayer_fee_cap_bps', u(16)],
            ['protocol_fee_bps', u(16)], ['treasury', addr],
        ],
    },
    { name: 'job_route', fields: [['relayer', addr], ['worker', addrOpt]] },
    {
        name: 'job',
        fields: [
            ['model_id', u(32)], ['max_cost', coins], ['deadline', u(32)], ['relayer_fee_bps', u(16)],
            ['input_commitment', bits(256)], ['route', ref('job_route')],
        ],
    },
    { name: 'receipt_link', fields: [['receipt', ref('signed_receipt')], ['next', maybeRef('receipt_link')]] },

    // contract data
    {
        name: 'root_data',
        fields: [
            ['owner', addr], ['pending_owner', addrOpt], ['params', ref('root_params')],
            ['policy', ref('root_policy')], ['models', { k: 'map32bits256' }], ['codes', ref('root_codes')],
        ],
    },
    { name: 'root_codes', fields: [['worker_code', cell], ['escrow_code', cell]] },
    {
        name: 'worker_data',
        fields: [
            ['root', addr], ['owner', addr], ['status', u(8)], ['stake', coins], ['earned', coins],
            ['unlock_at', u(32)], ['record', maybeRef('worker_record')], ['config', maybeRef('worker_config')],
        ],
    },
    {
        name: 'escrow_data',
        fields: [
            ['root', addr], ['owner', addr], ['last_job_id', u(64)], ['locked', coins], ['fees_due', coins],
            ['jobs', { k: 'jobs' }], ['config', maybeRef('escrow_config')],
        ],
    },

    // to Root
    { name: 'register_worker', tag: 0xc0c00101, fields: [qid, ['stake', coins], ['record', ref('worker_record')]] },
    { name: 'update_worker', tag: 0xc0c00102, fields: [qid, ['record', ref('worker_record')]] },
    { name: 'create_escrow', tag: 0xc0c00103, fields: [qid] },
    { name: 'set_params', tag: 0xc0c00110, fields: [qid, ['params', ref('root_params')]] },
    { name: 'set_allowed_kinds', tag: 0xc0c00111, fields: [qid, ['allowed_kinds', u(8)]] },
    { name: 'add_measurement', tag: 0xc0c00112, fields: [qid, ['measurement', bits(256)]] },
    { name: 'remove_measurement', tag: 0xc0c00113, fields: [qid, ['measurement', bits(256)]] },
    { name: 'set_model', tag: 0xc0c00114, fields: [qid, ['model_id', u(32)], ['model_hash', bits(256)]] },
    { name: 'remove_model', tag: 0xc0c00115, fields: [qid, ['model_id', u(32)]] },
    { name: 'set_codes', tag: 0xc0c00116, fields: [qid, ['worker_code', cell], ['escrow_code', cell]] },
    { name: 'transfer_ownership', tag: 0xc0c00117, fields: [qid, ['new_owner', addr]] },
    { name: 'accept_ownership', tag: 0xc0c00118, fields: [qid] },

    // to Worker
    {
        name: 'worker_init',
        tag: 0xc0c00201,
        fields: [qid, ['stake', coins], ['record', ref('worker_record')], ['config', ref('worker_config')]],
    },
    { name: 'worker_update', tag: 0xc0c00202, fields: [qid, ['record', ref('worker_record')]] },
    { name: 'submit_receipts', tag: 0xc0c00203, fields: [qid, ['count', u(8)], ['receipts', ref('receipt_link')]] },
    { name: 'pay_worker', tag: 0xc0c00204, fields: [qid, ['amount', coins], ['job_id', u(64)]] },
    {
        name: 'report_equivocation',
        tag: 0xc0c00205,
        fields: [qid, ['receipt_a', ref('signed_receipt')], ['receipt_b', ref('signed_receipt')]],
    },
    { name: 'top_up_stake', tag: 0xc0c00206, fields: [qid, ['amount', coins]] },
    { name: 'unbond', tag: 0xc0c00207, fields: [qid] },
    { name: 'withdraw_stake', tag: 0xc0c00208, fields: [qid] },
    { name: 'withdraw_earnings', tag: 0xc0c00209, fields: [qid, ['amount', coins]] },

    // to Escrow
    { name: 'escrow_init', tag: 0xc0c00301, fields: [qid, ['config', ref('escrow_config')]] },
    { name: 'deposit', tag: 0xc0c00302, fields: [qid] },
    {
        name: 'open_job',
        tag: 0xc0c00303,
        fields: [
            qid, ['job_id', u(64)], ['model_id', u(32)], ['max_cost', coins], ['deadline', u(32)],
            ['relayer_fee_bps', u(16)], ['input_commitment', bits(256)], ['route', ref('job_route')],
        ],
    },
    {
        name: 'settle',
        tag: 0xc0c00304,
        fields: [
            qid, ['worker_owner', addr], ['job_id', u(64)], ['model_id', u(32)], ['cost', coins],
            ['input_commitment', bits(256)], ['receipt_hash', bits(256)],
        ],
    },
    { name: 'expire_job', tag: 0xc0c00305, fields: [qid, ['job_id', u(64)]] },
    { name: 'withdraw', tag: 0xc0c00306, fields: [qid, ['amount', coins]] },
    { name: 'close', tag: 0xc0c00307, fields: [qid] },
    { name: 'collect_fees', tag: 0xc0c00308, fields: [qid] },

    // to wallets
    {
        name: 'job_opened',
        tag: 0xc0c00401,
        fields: [
            qid, ['escrow_owner', addr], ['job_id', u(64)], ['model_id', u(32)], ['max_cost', coins],
            ['deadline', u(32)], ['relayer_fee_bps', u(16)], ['input_commitment', bits(256)],
            ['route', ref('job_route')],
        ],
    },
    { name: 'relayer_fee', tag: 0xc0c00402, fields: [qid, ['job_id', u(64)]] },
    { name: 'payout', tag: 0xc0c00406, fields: [qid, ['reason', u(8)]] },
    { name: 'excesses', tag: 0xd53276db, fields: [qid] },

    // external-out logs
    {
        name: 'log_settled',
        tag: 0xc0c00501,
        fields: [['job_id', u(64)], ['cost', coins], ['receipt_hash', bits(256)]],
    },
    { name: 'log_receipt_skipped', tag: 0xc0c00502, fields: [qid, ['index', u(8)], ['error', u(16)]] },
    { name: 'log_job_expired', tag: 0xc0c00503, fields: [['job_id', u(64)]] },
    { name: 'log_slashed', tag: 0xc0c00504, fields: [['reporter', addr], ['reward', coins]] },
];

const BY_NAME = new Map(TYPES.map((t) => [t.name, t]));

export function typeDef(name: string): TypeDef {
    const t = BY_NAME.get(name);
    if (!t) throw new Error(`unknown TL-B type ${name}`);
    return t;
}

/** A value of some schema type: field name → value (see the table at the top). */
export type Fields = { [field: string]: any };

const emptyValue: DictionaryValue<null> = {
    serialize: () => {},
    parse: () => null,
};
const bits256Value: DictionaryValue<Buffer> = {
    serialize: (v, b) => b.storeBuffer(v, 32),
    parse: (s) => s.loadBuffer(32),
};
const jobValue: DictionaryValue<Fields> = {
    serialize: (v, b) => storeFields(b, typeDef('job'), v),
    parse: (s) => loadFields(s, typeDef('job')),
};

function storeField(b: Builder, kind: FieldKind, v: any, where: string) {
    switch (kind.k) {
        case 'uint':
            b.storeUint(v, kind.bits);
            return;
        case 'coins':
            b.storeCoins(v);
            return;
        case 'addr':
            if (!(v instanceof Address)) throw new Error(`${where}: address expected`);
            b.storeAddress(v);
            return;
        case 'addrOpt':
            b.storeAddress(v ?? null);
            return;
        case 'bits':
            if (!Buffer.isBuffer(v) || v.length * 8 !== kind.bits) throw new Error(`${where}: ${kind.bits} bits expected`);
            b.storeBuffer(v);
            return;
        case 'ref':
            b.storeRef(encode(kind.type, v));
            return;
        case 'maybeRef':
            b.storeMaybeRef(v === null || v === undefined ? null : encode(kind.type, v));
            return;
        case 'cell':
            b.storeRef(v as Cell);
            return;
        case 'set32': {
            const d = Dictionary.empty(Dictionary.Keys.Uint(32), emptyValue);
            for (const key of v as number[]) d.set(key, null);
            b.storeDict(d);
            return;
        }
        case 'set256': {
            const d = Dictionary.empty(Dictionary.Keys.BigUint(256), emptyValue);
            for (const key of v as Buffer[]) d.set(BigInt('0x' + key.toString('hex')), null);
            b.storeDict(d);
            return;
        }
        case 'map32bits256': {
            const d = Dictionary.empty(Dictionary.Keys.Uint(32), bits256Value);
            for (const e of v as { key: number; value: Buffer }[]) d.set(e.key, e.value);
            b.storeDict(d);
            return;
        }
        case 'jobs': {
            const d = Dictionary.empty(Dictionary.Keys.BigUint(64), jobValue);
            for (const e of v as { key: bigint; value: Fields }[]) d.set(e.key, e.value);
            b.storeDict(d);
            return;
        }
    }
}

function loadField(s: Slice, kind: FieldKind): any {
    switch (kind.k) {
        case 'uint':
            return kind.bits <= 32 ? s.loadUint(kind.bits) : s.loadUintBig(kind.bits);
        case 'coins':
            return s.loadCoins();
        case 'addr':
            return s.loadAddress();
        case 'addrOpt':
            return s.loadMaybeAddress();
        case 'bits':
            return s.loadBuffer(kind.bits / 8);
        case 'ref':
            return decode(kind.type, s.loadRef());
        case 'maybeRef': {
            const c = s.loadMaybeRef();
            return c ? decode(kind.type, c) : null;
        }
        case 'cell':
            return s.loadRef();
        case 'set32':
            return Dictionary.load(Dictionary.Keys.Uint(32), emptyValue, s).keys().sort((a, b) => a - b);
        case 'set256':
            return Dictionary.load(Dictionary.Keys.BigUint(256), emptyValue, s)
                .keys()
                .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
                .map((k) => Buffer.from(k.toString(16).padStart(64, '0'), 'hex'));
        case 'map32bits256': {
            const d = Dictionary.load(Dictionary.Keys.Uint(32), bits256Value, s);
            return d.keys().sort((a, b) => a - b).map((key) => ({ key, value: d.get(key)! }));
        }
        case 'jobs': {
            const d = Dictionary.load(Dictionary.Keys.BigUint(64), jobValue, s);
            return d
                .keys()
                .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
                .map((key) => ({ key, value: d.get(key)! }));
        }
    }
}

export function storeFields(b: Builder, t: TypeDef, v: Fields): Builder {
    if (t.tag !== undefined) b.storeUint(t.tag, 32);
    for (const [name, kind] of t.fields) {
        if (!(name in v)) throw new Error(`${t.name}.${name} missing`);
        storeField(b, kind, v[name], `${t.name}.${name}`);
    }
    return b;
}

export function loadFields(s: Slice, t: TypeDef): Fields {
    if (t.tag !== undefined) {
        const tag = s.loadUint(32);
        if (tag !== t.tag) throw new Error(`${t.name}: tag 0x${tag.toString(16)} is not 0x${t.tag.toString(16)}`);
    }
    const out: Fields = {};
    for (const [name, kind] of t.fields) out[name] = loadField(s, kind);
    return out;
}

/** The cell of a value of type `name`. */
export function encode(name: string, v: Fields): Cell {
    return storeFields(beginCell(), typeDef(name), v).endCell();
}

/** Parses a whole cell as type `name`; trailing bits or references are an error. */
export function decode(name: string, c: Cell): Fields {
    const s = c.beginParse();
    const v = loadFields(s, typeDef(name));
    if (s.remainingBits !== 0 || s.remainingRefs !== 0) throw new Error(`${name}: trailing data`);
    return v;
}

function fieldToJson(kind: FieldKind, v: any): unknown {
    switch (kind.k) {
        case 'uint':
            return kind.bits <= 32 ? Number(v) : BigInt(v).toString();
        case 'coins':
            return BigInt(v).toString();
        case 'addr':
            return (v as Address).toRawString();
        case 'addrOpt':
            return v ? (v as Address).toRawString() : null;
        case 'bits':
            return (v as Buffer).toString('hex');
        case 'ref':
            return toJson(kind.type, v);
        case 'maybeRef':
            return v === null || v === undefined ? null : toJson(kind.type, v);
        case 'cell':
            return (v as Cell).toBoc().toString('base64');
        case 'set32':
            return [...(v as number[])].sort((a, b) => a - b);
        case 'set256':
            return (v as Buffer[]).map((b) => b.toString('hex')).sort();
        case 'map32bits256':
            return [...(v as { key: number; value: Buffer }[])]
                .sort((a, b) => a.key - b.key)
                .map((e) => ({ key: e.key, value: e.value.toString('hex') }));
        case 'jobs':
            return [...(v as { key: bigint; value: Fields }[])]
                .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
                .map((e) => ({ key: e.key.toString(), value: toJson('job', e.value) }));
    }
}

/** The vector JSON of a value of type `name`. */
export function toJson(name: string, v: Fields): { [field: string]: unknown } {
    const out: { [field: string]: unknown } = {};
    for (const [field, kind] of typeDef(name).fields) out[field] = fieldToJson(kind, v[field]);
    return out;
}
