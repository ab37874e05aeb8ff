import { Address, Contract, ContractProvider, Sender, Dictionary } from '@ton/core';
import { Fields } from './schema';
import { sendMsg } from './common';

/** Worker v2: stake, keys (with their history), record; settlement forwarding; slashing. */
export class Worker implements Contract {
    constructor(readonly address: Address) {}

    static createFromAddress(address: Address) {
        return new Worker(address);
    }

    /** Sends any Worker message by its TL-B name (submit_settlement, update_record, …). */
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
            unlock_at: r.readNumber(),
            key_count: r.readNumber(),
        };
    }

    async isReceiptKeyKnown(provider: ContractProvider, key: Buffer) {
        const r = (await provider.get('is_receipt_key_known', [{ type: 'int', value: BigInt('0x' + key.toString('hex')) }])).stack;
        return r.readBoolean();
    }

    async getRecord(provider: ContractProvider) {
        const r = (await provider.get('get_worker_record', [])).stack;
        const out = {
            receipt_key: r.readBigNumber(),
            encryption_key: r.readBigNumber(),
            price_in: r.readBigNumber(),
            price_out: r.readBigNumber(),
            models: [] as number[],
            kind: 0,
            measurement: 0n,
            evidence_hash: 0n,
            expires_at: 0,
        };
        const dict = r.readCellOpt();
        out.models = dict
            ? Dictionary.loadDirect(Dictionary.Keys.Uint(32), { serialize: () => {}, parse: () => null }, dict).keys()
            : [];
        out.kind = r.readNumber();
        out.measurement = r.readBigNumber();
        out.evidence_hash = r.readBigNumber();
        out.expires_at = r.readNumber();
        return out;
    }

    /** The least value each message must carry (TopUpStake: stake_op + amount). */
    async getFees(provider: ContractProvider) {
        const r = (await provider.get('get_fees', [])).stack;
        return { settle: r.readBigNumber(), slash: r.readBigNumber(), update: r.readBigNumber(), stake_op: r.readBigNumber() };
    }

    async getBalance(provider: ContractProvider) {
        return (await provider.getState()).balance;
    }
}
