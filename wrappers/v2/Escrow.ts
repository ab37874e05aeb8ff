import { Address, Contract, ContractProvider, Sender } from '@ton/core';
import { Fields } from './schema';
import { readAddressOpt, sendMsg } from './common';

/** Escrow v2: a client's deposits and payment channels. */
export class Escrow implements Contract {
    constructor(readonly address: Address) {}

    static createFromAddress(address: Address) {
        return new Escrow(address);
    }

    /** Sends any Escrow message by its TL-B name (open_channel, top_up, close_channel, …). */
    async send(provider: ContractProvider, via: Sender, value: bigint, type: string, fields: Fields = {}) {
        await sendMsg(provider, via, value, type, fields);
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
