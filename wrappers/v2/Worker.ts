import { Address, Contract, ContractProvider, Sender, Dictionary } from '@ton/core';
import { Fields, encode } from './schema';
import { sendMsg } from './common';

/**
 * The submit_settlement fields for a signed receipt and the client's signed voucher over it, as
 * the worker node builds them: the receipt taken apart (its channel cell, model and time, its
 * signature and prev_acc, the hashes of its two hash cells; the Worker's own address is not sent),
 * and the proof the Escrow gets: the voucher's signature, cumulative and final flag, and the
 * receipt's seq, tokens and cost (the accumulator is the Worker's to compute). Fields already in
 * that form pass through.
 */
export function submitSettlementFields(fields: Fields): Fields {
    if (!fields.receipt) return fields;
    const { receipt, voucher, ...rest } = fields;
    const body = receipt.body;
    return {
        ...rest,
        model_id: body.model_id,
        time: body.time,
        channel: body.channel,
        seal: { signature: receipt.signature, prev_acc: body.prev_acc },
        ref_hashes: {
            hashes_hash: encode('receipt_hashes', body.hashes).hash(),
            commitments_hash: encode('receipt_commitments', body.commitments).hash(),
        },
        proof: {
            voucher_signature: voucher.signature, cumulative: voucher.body.cumulative, final: voucher.body.final ?? 0,
            seq: body.seq, tokens_in: body.tokens_in, tokens_out: body.tokens_out, cost: body.cost,
        },
    };
}

/** Worker v2: stake, keys (with their history), record; settlement forwarding; slashing. */
export class Worker implements Contract {
    constructor(readonly address: Address) {}

    static createFromAddress(address: Address) {
        return new Worker(address);
    }

    /**
     * Sends any Worker message by its TL-B name (submit_settlement, update_record, …);
     * submit_settlement also takes { receipt, voucher } (see submitSettlementFields).
     */
    async send(provider: ContractProvider, via: Sender, value: bigint, type: string, fields: Fields = {}) {
        await sendMsg(provider, via, value, type, type === 'submit_settlement' ? submitSettlementFields(fields) : fields);
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
