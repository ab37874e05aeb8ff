import { Address, Contract, ContractProvider, Sender, Dictionary } from '@ton/core';
import { Fields } from './schema';
import { sendMsg } from './common';

/** Worker contract: stake, keys, attestation record, prices; settles receipts; slashable. */
export class Worker implements Contract {
    constructor(readonly address: Address) {}

    static createFromAddress(address: Address) {
        return new Worker(address);
    }

    /** Sends any Worker message by its TL-B name (submit_receipts, unbond, …). */
    async send(provider: ContractProvider, via: Sender, value: bigint, type: string, fields: Fields = {}) {
        await sendMsg(provider, via, value, type, fields);
    }

    async getState(provider: ContractProvider) {
        const r = (await provider.get('get_worker_state', [])).stack;
        return {
            root: r.readAddress(),
            owner: r.readAddress(),
            status: r.readNumber(),
            stake: r.readBigNumber(),
            earned: r.readBigNumber(),
            unlock_at: r.readNumber(),
        };
    }

    async getRecord(provider: ContractProvider) {
        const r = (await provider.get('get_worker_record', [])).stack;
        const receipt_key = r.readBigNumber();
        const encryption_key = r.readBigNumber();
        const price_in = r.readBigNumber();
        const price_out = r.readBigNumber();
        const dict = r.readCellOpt();
        const models = dict
            ? Dictionary.loadDirect(Dictionary.Keys.Uint(32), { serialize: () => {}, parse: () => null }, dict).keys()
            : [];
        return {
            receipt_key,
            encryption_key,
            price_in,
            price_out,
            models,
            kind: r.readNumber(),
            measurement: r.readBigNumber(),
            evidence_hash: r.readBigNumber(),
            expires_at: r.readNumber(),
        };
    }

    async getConfig(provider: ContractProvider) {
        const r = (await provider.get('get_worker_config', [])).stack;
        return { unbonding_delay: r.readNumber(), reporter_reward_bps: r.readNumber(), treasury: r.readAddress() };
    }

    async getBalance(provider: ContractProvider) {
        return (await provider.getState()).balance;
    }
}


