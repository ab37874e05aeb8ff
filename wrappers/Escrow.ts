import { Address, Contract, ContractProvider, Sender } from '@ton/core';
import { Fields } from './schema';
import { readAddressOpt, sendMsg } from './common';

/** Escrow contract: a client's deposits, jobs, settlements, expiry, withdrawal, close. */
export class Escrow implements Contract {
    constructor(readonly address: Address) {}

    static createFromAddress(address: Address) {
        return new Escrow(address);
    }

    /** Sends any Escrow message by its TL-B name (open_job, withdraw, …). */
    async send(provider: ContractProvider, via: Sender, value: bigint, type: string, fields: Fields = {}) {
        await sendMsg(provider, via, value, type, fields);
    }

    async getState(provider: ContractProvider) {
        const r = (await provider.get('get_escrow_state', [])).stack;
        return {
            root: r.readAddress(),
            owner: r.readAddress(),
            initialized: r.readBoolean(),
            last_job_id: r.readBigNumber(),
            locked: r.readBigNumber(),
            fees_due: r.readBigNumber(),
            free: r.readBigNumber(),
        };
    }

    async getJob(provider: ContractProvider, jobId: bigint) {
        const r = (await provider.get('get_job', [{ type: 'int', value: jobId }])).stack;
        return {
            found: r.readBoolean(),
            model_id: r.readNumber(),
            max_cost: r.readBigNumber(),
            deadline: r.readNumber(),
            relayer_fee_bps: r.readNumber(),
            input_commitment: r.readBigNumber(),
            relayer: readAddressOpt(r),
            worker: readAddressOpt(r),
        };
    }

    async getConfig(provider: ContractProvider) {
        const r = (await provider.get('get_escrow_config', [])).stack;
        return {
            grace_period: r.readNumber(),
            relayer_fee_cap_bps: r.readNumber(),
            protocol_fee_bps: r.readNumber(),
            treasury: r.readAddress(),
            worker_code: r.readCell(),
        };
    }

    async getBalance(provider: ContractProvider) {
        return (await provider.getState()).balance;
    }
}
