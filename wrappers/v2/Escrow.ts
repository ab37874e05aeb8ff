import { Address, Contract, ContractProvider, Sender } from '@ton/core';
import { Fields } from './schema';
import { readAddressOpt, sendMsg } from './common';

/**
 * open_channel fields from the flat form { amount, worker_owner, expires_at, price_in, price_out,
 * voucher_key, route: { relayer, relayer_fee_bps }, notify_relayer? }: the parties go in their
 * cell; notify_relayer defaults to 1 (the Escrow sends channel_opened to the relayer). Fields
 * already in that form pass through.
 */
export function openChannelFields(fields: Fields): Fields {
    if (!fields.route) return fields;
    const { worker_owner, voucher_key, route, notify_relayer, ...rest } = fields;
    return {
        ...rest, relayer_fee_bps: route.relayer_fee_bps, notify_relayer: notify_relayer ?? 1,
        parties: { worker_owner, relayer: route.relayer, voucher_key },
    };
}

/**
 * settle fields from the flat form { channel_id, seq, cumulative, final, proof: { acc,
 * voucher_signature, tokens_in, tokens_out, cost } }: the accumulator beside the channel id, the
 * rest in the proof. Fields already in that form pass through.
 */
export function settleFields(fields: Fields): Fields {
    if (fields.seq === undefined) return fields;
    const { seq, cumulative, final, proof, ...rest } = fields;
    const { acc, ...p } = proof;
    return { ...rest, acc, proof: { ...p, seq, cumulative, final } };
}

/** Escrow v2: a client's deposits and payment channels. */
export class Escrow implements Contract {
    constructor(readonly address: Address) {}

    static createFromAddress(address: Address) {
        return new Escrow(address);
    }

    /**
     * Sends any Escrow message by its TL-B name (open_channel, top_up, close_channel, …);
     * open_channel and settle also take their flat forms (see openChannelFields, settleFields).
     */
    async send(provider: ContractProvider, via: Sender, value: bigint, type: string, fields: Fields = {}) {
        const f = type === 'open_channel' ? openChannelFields(fields) : type === 'settle' ? settleFields(fields) : fields;
        await sendMsg(provider, via, value, type, f);
    }

    async getState(provider: ContractProvider) {
        const r = (await provider.get('get_escrow_state', [])).stack;
        return {
            root: r.readAddress(),
            owner: r.readAddress(),
            initialized: r.readBoolean(),
            next_channel_id: r.readBigNumber(),
            open_channels: r.readNumber(),
            locked: r.readBigNumber(),
            fees_due: r.readBigNumber(),
            free: r.readBigNumber(),
        };
    }

    async getChannel(provider: ContractProvider, channelId: bigint) {
        const r = (await provider.get('get_channel', [{ type: 'int', value: channelId }])).stack;
        return {
            found: r.readBoolean(),
            amount: r.readBigNumber(),
            settled: r.readBigNumber(),
            last_seq: r.readNumber(),
            expires_at: r.readNumber(),
            close_requested_at: r.readNumber(),
            settle_until: r.readNumber(),
            price_in: r.readBigNumber(),
            price_out: r.readBigNumber(),
            worker: readAddressOpt(r),
            relayer: readAddressOpt(r),
            relayer_fee_bps: r.readNumber(),
            protocol_fee_bps: r.readNumber(),
            voucher_key: r.readBigNumber(),
            worker_owner: readAddressOpt(r),
            relayer_due: r.readBigNumber(),
        };
    }

    async getConfig(provider: ContractProvider) {
        const r = (await provider.get('get_escrow_config', [])).stack;
        return {
            grace_period: r.readNumber(),
            max_channel_lifetime: r.readNumber(),
            relayer_fee_cap_bps: r.readNumber(),
            protocol_fee_bps: r.readNumber(),
            treasury: r.readAddress(),
            worker_code: r.readCell(),
        };
    }

    /** The least value each message must carry, from the current network config. */
    async getFees(provider: ContractProvider) {
        const r = (await provider.get('get_fees', [])).stack;
        return {
            open_channel: r.readBigNumber(),
            top_up: r.readBigNumber(),
            request_close: r.readBigNumber(),
            close_channel: r.readBigNumber(),
            withdraw: r.readBigNumber(),
            collect_fees: r.readBigNumber(),
            settle: r.readBigNumber(),
        };
    }

    async getNetworkGlobalId(provider: ContractProvider) {
        return (await provider.get('get_network_global_id', [])).stack.readNumber();
    }

    async getBalance(provider: ContractProvider) {
        return (await provider.getState()).balance;
    }
}
