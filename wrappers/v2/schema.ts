// A table-driven codec for every type of contracts/v2/schema.tlb (same approach and value
// representation as wrappers/schema.ts, plus the v2 dictionaries and signed ints).
//
// Value representation (TS / JSON vector):
//   uint<=32, int32     number            / number
//   uint64, Coins       bigint            / decimal string
//   MsgAddressInt       Address           / "0:<64 hex>"
//   MsgAddress (opt.)   Address | null    / "0:<64 hex>" | null
//   bitsN               Buffer            / lowercase hex
//   ^T, Maybe ^T        object (| null)   / nested object (| null)
//   ^Cell (opaque)      Cell              / base64 BOC
//   HashmapE 32 Empty   number[]          / number[] (ascending)
//   HashmapE 256 Empty  Buffer[]          / hex[] (ascending)
//   HashmapE 32 bits256 {key, value}[]    / [{"key": number, "value": hex}] (ascending)
//   HashmapE 256 ^Cell  {key, value}[]    / [{"key": hex, "value": base64 BOC}] (ascending)
//   HashmapE K T        {key, value}[]    / [{"key": number | decimal string, "value": {T}}] (ascending)

import { Address, Builder, Cell, Dictionary, DictionaryValue, Slice, beginCell } from '@ton/core';

export type FieldKind =
    | { k: 'uint'; bits: number }
    | { k: 'int'; bits: number }
    | { k: 'coins' }
    | { k: 'addr' }
    | { k: 'addrOpt' }
    | { k: 'bits'; bits: number }
    | { k: 'ref'; type: string }
    | { k: 'maybeRef'; type: string }
    | { k: 'maybe'; type: string }
    | { k: 'inline'; type: string }
    | { k: 'set384' }
    | { k: 'cell' }
    | { k: 'set32' }
    | { k: 'set256' }
    | { k: 'map32bits256' }
    | { k: 'map256cell' }
    | { k: 'map'; keyBits: number; type: string };

export interface TypeDef {
    name: string;
    tag?: number;
    fields: [string, FieldKind][];
}

const u = (bits: number): FieldKind => ({ k: 'uint', bits });
const i = (bits: number): FieldKind => ({ k: 'int', bits });
const coins: FieldKind = { k: 'coins' };
const addr: FieldKind = { k: 'addr' };
const addrOpt: FieldKind = { k: 'addrOpt' };
const bits = (n: number): FieldKind => ({ k: 'bits', bits: n });
const ref = (type: string): FieldKind => ({ k: 'ref', type });
const maybeRef = (type: string): FieldKind => ({ k: 'maybeRef', type });
const maybe = (type: string): FieldKind => ({ k: 'maybe', type });
const inline = (type: string): FieldKind => ({ k: 'inline', type });
const cell: FieldKind = { k: 'cell' };
const map = (keyBits: number, type: string): FieldKind => ({ k: 'map', keyBits, type });
const qid: [string, FieldKind] = ['query_id', u(64)];

/** Domain tags of the signed payloads. */
export const RECEIPT_TAG = 0x72637632; // "rcv2"
export const VOUCHER_TAG = 0x76636872; // "vchr"

/** Every type of contracts/v2/schema.tlb, in file order. */
export const TYPES: TypeDef[] = [
    // receipt and voucher (signed; fixed layouts)
    {
        name: 'channel_ref',
        fields: [['global_id', i(32)], ['root', addr], ['escrow', addr], ['channel_id', u(64)]],
    },
    { name: 'receipt_hashes', fields: [['weights_hash', bits(256)], ['evidence_hash', bits(256)]] },
    { name: 'receipt_commitments', fields: [['input_commitment', bits(256)], ['output_commitment', bits(256)]] },
    {
        name: 'receipt_body',
        tag: RECEIPT_TAG,
        fields: [
            ['channel', ref('channel_ref')], ['seq', u(32)], ['worker', addr], ['model_id', u(32)],
            ['tokens_in', u(32)], ['tokens_out', u(32)], ['cost', coins], ['time', u(32)],
            ['prev_acc', bits(256)], ['hashes', ref('receipt_hashes')], ['commitments', ref('receipt_commitments')],
        ],
    },
    { name: 'signed_receipt', fields: [['signature', bits(512)], ['body', ref('receipt_body')]] },
    {
        name: 'voucher_body',
        tag: VOUCHER_TAG,
        fields: [['channel', ref('channel_ref')], ['cumulative', coins], ['last_seq', u(32)], ['acc', bits(256)], ['final', u(1)]],
    },
    { name: 'signed_voucher', fields: [['signature', bits(512)], ['body', ref('voucher_body')]] },

    // records
    {
        name: 'root_params',
        fields: [
            ['min_stake', coins], ['unbonding_delay', u(32)], ['grace_period', u(32)],
            ['max_channel_lifetime', u(32)], ['governance_delay', u(32)], ['relayer_fee_cap_bps', u(16)],
            ['protocol_fee_bps', u(16)], ['reporter_reward_bps', u(16)], ['treasury', addr],
        ],
    },
    {
        name: 'root_policy',
        fields: [
            ['allowed_kinds', u(8)], ['measurements', { k: 'set256' }], ['models', { k: 'map32bits256' }],
            ['tee', ref('tee_policy')],
        ],
    },
    {
        name: 'snp_min_tcb',
        fields: [['boot_loader', u(8)], ['tee', u(8)], ['snp', u(8)], ['microcode', u(8)], ['fmc', u(8)]],
    },
    {
        name: 'tdx_policy',
        fields: [
            ['td_attributes_mask', u(64)], ['td_attributes_value', u(64)], ['mr_config_ids', { k: 'set384' }],
            ['mr_owners', { k: 'set384' }], ['rtmr3s', { k: 'set384' }],
        ],
    },
    {
        name: 'tee_policy',
        fields: [['snp_min_tcb', inline('snp_min_tcb')], ['tdx', inline('tdx_policy')]],
    },
    {
        name: 'root_codes',
        fields: [['worker_code', cell], ['escrow_code', cell], ['retired_worker_codes', { k: 'map256cell' }]],
    },
    { name: 'pending_change', fields: [['ready_at', u(32)], ['body', cell]] },
    { name: 'governance_queue', fields: [['next_id', u(32)], ['changes', map(32, 'pending_change')]] },
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
            ['worker_code', cell], ['grace_period', u(32)], ['max_channel_lifetime', u(32)],
            ['relayer_fee_cap_bps', u(16)], ['protocol_fee_bps', u(16)], ['treasury', addr],
        ],
    },
    {
        name: 'channel',
        fields: [
            ['amount', coins], ['settled', coins], ['relayer_due', coins], ['last_seq', u(32)], ['expires_at', u(32)],
            ['close_requested_at', u(32)], ['settle_until', u(32)], ['price_in', coins], ['price_out', coins],
            ['worker', addr], ['relayer_fee_bps', u(16)], ['protocol_fee_bps', u(16)], ['parties', ref('channel_parties')],
        ],
    },
    {
        name: 'settle_proof',
        fields: [
            ['voucher_signature', bits(512)], ['cumulative', coins], ['final', u(1)], ['seq', u(32)], ['tokens_in', u(32)],
            ['tokens_out', u(32)], ['cost', coins],
        ],
    },
    { name: 'receipt_seal', fields: [['signature', bits(512)], ['prev_acc', bits(256)]] },
    { name: 'receipt_ref_hashes', fields: [['hashes_hash', bits(256)], ['commitments_hash', bits(256)]] },
    { name: 'channel_parties', fields: [['worker_owner', addr], ['relayer', addr], ['voucher_key', bits(256)]] },

    // contract data
    {
        name: 'root_data',
        fields: [
            ['owner', addr], ['pending_owner', addrOpt], ['params', ref('root_params')],
            ['policy', ref('root_policy')], ['codes', ref('root_codes')], ['queue', ref('governance_queue')],
        ],
    },
    {
        name: 'worker_data',
        fields: [
            ['root', addr], ['status', u(8)], ['receipt_key', bits(256)], ['models', { k: 'set32' }], ['owner', addr],
            ['stake', coins], ['unlock_at', u(32)], ['key_count', u(8)], ['receipt_keys', { k: 'set256' }],
            ['record', maybeRef('worker_record')], ['config', maybeRef('worker_config')],
        ],
    },
    {
        name: 'escrow_data',
        fields: [
            ['root', addr], ['owner', addr], ['next_channel_id', u(64)], ['open_channels', u(8)],
            ['locked', coins], ['fees_due', coins], ['channels', map(64, 'channel')],
            ['config', maybeRef('escrow_config')],
        ],
    },

    // to Root
    { name: 'register_worker', tag: 0xc0c02101, fields: [qid, ['stake', coins], ['record', ref('worker_record')]] },
    {
        name: 'update_worker',
        tag: 0xc0c02102,
        fields: [qid, ['owner', addr], ['worker_code_hash', bits(256)], ['record', ref('worker_record')]],
    },
    { name: 'create_escrow', tag: 0xc0c02103, fields: [qid] },
    { name: 'set_params', tag: 0xc0c02110, fields: [qid, ['params', ref('root_params')]] },
    { name: 'set_allowed_kinds', tag: 0xc0c02111, fields: [qid, ['allowed_kinds', u(8)]] },
    { name: 'add_measurement', tag: 0xc0c02112, fields: [qid, ['measurement', bits(256)]] },
    { name: 'remove_measurement', tag: 0xc0c02113, fields: [qid, ['measurement', bits(256)]] },
    { name: 'set_model', tag: 0xc0c02114, fields: [qid, ['model_id', u(32)], ['model_hash', bits(256)]] },
    { name: 'remove_model', tag: 0xc0c02115, fields: [qid, ['model_id', u(32)]] },
    { name: 'set_codes', tag: 0xc0c02116, fields: [qid, ['worker_code', cell], ['escrow_code', cell]] },
    { name: 'transfer_ownership', tag: 0xc0c02117, fields: [qid, ['new_owner', addr]] },
    { name: 'accept_ownership', tag: 0xc0c02118, fields: [qid] },
    { name: 'apply_change', tag: 0xc0c02119, fields: [qid, ['change_id', u(32)]] },
    { name: 'cancel_change', tag: 0xc0c0211a, fields: [qid, ['change_id', u(32)]] },
    { name: 'set_tee_policy', tag: 0xc0c0211b, fields: [qid, ['tee', ref('tee_policy')]] },

    // to Worker
    {
        name: 'worker_init',
        tag: 0xc0c02201,
        fields: [qid, ['stake', coins], ['record', ref('worker_record')], ['config', ref('worker_config')]],
    },
    { name: 'worker_update', tag: 0xc0c02202, fields: [qid, ['record', ref('worker_record')]] },
    {
        name: 'submit_settlement',
        tag: 0xc0c02203,
        fields: [
            qid, ['model_id', u(32)], ['time', u(32)], ['channel', ref('channel_ref')], ['seal', ref('receipt_seal')],
            ['ref_hashes', ref('receipt_ref_hashes')], ['proof', ref('settle_proof')],
        ],
    },
    {
        name: 'report_equivocation',
        tag: 0xc0c02205,
        fields: [
            qid, ['key_a', bits(256)], ['receipt_a', ref('signed_receipt')], ['key_b', bits(256)],
            ['receipt_b', ref('signed_receipt')],
        ],
    },
    { name: 'top_up_stake', tag: 0xc0c02206, fields: [qid, ['amount', coins]] },
    { name: 'unbond', tag: 0xc0c02207, fields: [qid] },
    { name: 'withdraw_stake', tag: 0xc0c02208, fields: [qid] },
    { name: 'update_record', tag: 0xc0c0220a, fields: [qid, ['record', ref('worker_record')]] },

    // to Escrow
    { name: 'escrow_init', tag: 0xc0c02301, fields: [qid, ['config', ref('escrow_config')]] },
    { name: 'deposit', tag: 0xc0c02302, fields: [qid] },
    {
        name: 'open_channel',
        tag: 0xc0c02303,
        fields: [
            qid, ['amount', coins], ['expires_at', u(32)], ['price_in', coins], ['price_out', coins],
            ['relayer_fee_bps', u(16)], ['notify_relayer', u(1)], ['parties', ref('channel_parties')],
        ],
    },
    {
        name: 'settle',
        tag: 0xc0c02304,
        fields: [qid, ['channel_id', u(64)], ['acc', bits(256)], ['proof', ref('settle_proof')]],
    },
    { name: 'top_up', tag: 0xc0c02305, fields: [qid, ['channel_id', u(64)], ['amount', coins]] },
    { name: 'withdraw', tag: 0xc0c02306, fields: [qid, ['amount', coins]] },
    { name: 'request_close', tag: 0xc0c02307, fields: [qid, ['channel_id', u(64)]] },
    { name: 'close_channel', tag: 0xc0c02308, fields: [qid, ['channel_id', u(64)]] },
    { name: 'collect_fees', tag: 0xc0c02309, fields: [qid] },

    // to wallets
    {
        name: 'channel_opened',
        tag: 0xc0c02401,
        fields: [qid, ['channel_id', u(64)], ['amount', coins], ['expires_at', u(32)], ['relayer_fee_bps', u(16)]],
    },
    { name: 'relayer_fee', tag: 0xc0c02402, fields: [qid, ['channel_id', u(64)]] },
    {
        name: 'settlement_record',
        fields: [
            ['channel_id', u(64)], ['seq', u(32)], ['cumulative', coins], ['acc', bits(256)], ['final', u(1)],
            ['released', coins],
        ],
    },
    { name: 'payout', tag: 0xc0c02406, fields: [qid, ['reason', u(8)], ['settlement', maybe('settlement_record')]] },
    { name: 'excesses', tag: 0xd53276db, fields: [qid] },

    // external-out logs
    { name: 'log_close_requested', tag: 0xc0c02502, fields: [['channel_id', u(64)], ['close_requested_at', u(32)]] },
    {
        name: 'log_channel_closed',
        tag: 0xc0c02503,
        fields: [['channel_id', u(64)], ['settled', coins], ['released', coins]],
    },
    { name: 'log_slashed', tag: 0xc0c02504, fields: [['reporter', addr], ['reward', coins], ['to_treasury', coins]] },
    {
        name: 'log_change_queued',
        tag: 0xc0c02505,
        fields: [['change_id', u(32)], ['ready_at', u(32)], ['body_hash', bits(256)]],
    },
    { name: 'log_change_applied', tag: 0xc0c02506, fields: [['change_id', u(32)]] },
    { name: 'log_change_cancelled', tag: 0xc0c02507, fields: [['change_id', u(32)]] },
];

const BY_NAME = new Map(TYPES.map((t) => [t.name, t]));

export function typeDef(name: string): TypeDef {
    const t = BY_NAME.get(name);
    if (!t) throw new Error(`unknown v2 TL-B type ${name}`);
    return t;
}

export type Fields = { [field: string]: any };

/** Dictionary value of a set (the unit type: no bits). */
export const emptyValue: DictionaryValue<null> = { serialize: () => {}, parse: () => null };
const bits256Value: DictionaryValue<Buffer> = {
    serialize: (v, b) => b.storeBuffer(v, 32),
    parse: (s) => s.loadBuffer(32),
};
const cellValue: DictionaryValue<Cell> = {
    serialize: (v, b) => b.storeRef(v),
    parse: (s) => s.loadRef(),
};
const structValue = (type: string): DictionaryValue<Fields> => ({
    serialize: (v, b) => storeFields(b, typeDef(type), v),
    parse: (s) => loadFields(s, typeDef(type)),
});
const cmp = (a: bigint | number, b: bigint | number) => (a < b ? -1 : a > b ? 1 : 0);
const big = (b: Buffer) => BigInt('0x' + b.toString('hex'));
const buf = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');
const mapKeys = (keyBits: number) => (keyBits <= 32 ? Dictionary.Keys.Uint(keyBits) : Dictionary.Keys.BigUint(keyBits));

function storeField(b: Builder, kind: FieldKind, v: any, where: string) {
    switch (kind.k) {
        case 'uint':
            b.storeUint(v, kind.bits);
            return;
        case 'int':
            b.storeInt(v, kind.bits);
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
            // A ready cell goes in as it is (specs use it to send malformed or exotic parts).
            b.storeRef(v instanceof Cell ? v : encode(kind.type, v));
            return;
        case 'inline':
            storeFields(b, typeDef(kind.type), v);
            return;
        case 'set384': {
            const d = Dictionary.empty(Dictionary.Keys.Buffer(48), emptyValue);
            for (const key of v as Buffer[]) d.set(key, null);
            b.storeDict(d);
            return;
        }
        case 'maybe':
            if (v === null || v === undefined) {
                b.storeBit(false);
            } else {
                b.storeBit(true);
                storeFields(b, typeDef(kind.type), v);
            }
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
            for (const key of v as Buffer[]) d.set(big(key), null);
            b.storeDict(d);
            return;
        }
        case 'map32bits256': {
            const d = Dictionary.empty(Dictionary.Keys.Uint(32), bits256Value);
            for (const e of v as { key: number; value: Buffer }[]) d.set(e.key, e.value);
            b.storeDict(d);
            return;
        }
        case 'map256cell': {
            const d = Dictionary.empty(Dictionary.Keys.BigUint(256), cellValue);
            for (const e of v as { key: Buffer; value: Cell }[]) d.set(big(e.key), e.value);
            b.storeDict(d);
            return;
        }
        case 'map': {
            const d = Dictionary.empty<any, Fields>(mapKeys(kind.keyBits) as any, structValue(kind.type));
            for (const e of v as { key: any; value: Fields }[]) d.set(e.key, e.value);
            b.storeDict(d);
            return;
        }
    }
}

function loadField(s: Slice, kind: FieldKind): any {
    switch (kind.k) {
        case 'uint':
            return kind.bits <= 32 ? s.loadUint(kind.bits) : s.loadUintBig(kind.bits);
        case 'int':
            return s.loadInt(kind.bits);
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
        case 'inline':
            return loadFields(s, typeDef(kind.type));
        case 'set384':
            return Dictionary.load(Dictionary.Keys.Buffer(48), emptyValue, s).keys().sort(Buffer.compare);
        case 'maybe':
            return s.loadBit() ? loadFields(s, typeDef(kind.type)) : null;
        case 'maybeRef': {
            const c = s.loadMaybeRef();
            return c ? decode(kind.type, c) : null;
        }
        case 'cell':
            return s.loadRef();
        case 'set32':
            return Dictionary.load(Dictionary.Keys.Uint(32), emptyValue, s).keys().sort((a, b) => a - b);
        case 'set256':
            return Dictionary.load(Dictionary.Keys.BigUint(256), emptyValue, s).keys().sort(cmp).map(buf);
        case 'map32bits256': {
            const d = Dictionary.load(Dictionary.Keys.Uint(32), bits256Value, s);
            return d.keys().sort((a, b) => a - b).map((key) => ({ key, value: d.get(key)! }));
        }
        case 'map256cell': {
            const d = Dictionary.load(Dictionary.Keys.BigUint(256), cellValue, s);
            return d.keys().sort(cmp).map((key) => ({ key: buf(key), value: d.get(key)! }));
        }
        case 'map': {
            const d = Dictionary.load<any, Fields>(mapKeys(kind.keyBits) as any, structValue(kind.type), s);
            return d.keys().sort(cmp).map((key) => ({ key, value: d.get(key)! }));
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

export function encode(name: string, v: Fields): Cell {
    return storeFields(beginCell(), typeDef(name), v).endCell();
}

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
        case 'int':
            return Number(v);
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
        case 'inline':
            return toJson(kind.type, v);
        case 'set384':
            return (v as Buffer[]).map((b) => b.toString('hex')).sort();
        case 'maybe':
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
        case 'map256cell':
            return [...(v as { key: Buffer; value: Cell }[])]
                .sort((a, b) => cmp(big(a.key), big(b.key)))
                .map((e) => ({ key: e.key.toString('hex'), value: e.value.toBoc().toString('base64') }));
        case 'map':
            return [...(v as { key: any; value: Fields }[])]
                .sort((a, b) => cmp(a.key, b.key))
                .map((e) => ({
                    key: kind.keyBits <= 32 ? Number(e.key) : BigInt(e.key).toString(),
                    value: toJson(kind.type, e.value),
                }));
    }
}

export function toJson(name: string, v: Fields): { [field: string]: unknown } {
    const out: { [field: string]: unknown } = {};
    for (const [field, kind] of typeDef(name).fields) out[field] = fieldToJson(kind, v[field]);
    return out;
}
