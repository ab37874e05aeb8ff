import { Address, Cell, Contract, ContractProvider, Sender, beginCell, contractAddress, Dictionary } from '@ton/core';
import { Fields, encode } from './schema';
import { readAddressOpt, sendMsg } from './common';

/** Root contract: parameters, policy, model registry, codes; deploys Workers and Escrows. */
export class Root implements Contract {
    constructor(readonly address: Address, readonly init?: { code: Cell; data: Cell }) {}

    static createFromAddress(address: Address) {
        return new Root(address);
    }

    /** `data` holds the fields of root_data (schema.tlb). */
    static createFromConfig(data: Fields, code: Cell, workchain = 0) {
        const init = { code, data: encode('root_data', data) };
        return new Root(contractAddress(workchain, init), init);
    }

    async sendDeploy(provider: ContractProvider, via: Sender, value: bigint) {
        await provider.internal(via, { value, bounce: false, body: Cell.EMPTY });
    }

    /** Sends any Root message by its TL-B name (register_worker, set_params, …). */
    async send(provider: ContractProvider, via: Sender, value: bigint, type: string, fields: Fields = {}) {
        await sendMsg(provider, via, value, type, fields);
    }

    async getOwner(provider: ContractProvider) {
        const r = (await provider.get('get_owner', [])).stack;
        return { owner: r.readAddress(), pending_owner: readAddressOpt(r) };
    }

    async getParams(provider: ContractProvider): Promise<Fields> {
        const r = (await provider.get('get_params', [])).stack;
        return {
            min_stake: r.readBigNumber(),
            unbonding_delay: r.readNumber(),
            grace_period: r.readNumber(),
            relayer_fee_cap_bps: r.readNumber(),
            protocol_fee_bps: r.readNumber(),
            reporter_reward_bps: r.readNumber(),
            treasury: r.readAddress(),
        };
    }

    async getPolicy(provider: ContractProvider) {
        const r = (await provider.get('get_policy', [])).stack;
        const allowed_kinds = r.readNumber();
        const dict = r.readCellOpt();
        const measurements = dict
            ? Dictionary.loadDirect(Dictionary.Keys.BigUint(256), { serialize: () => {}, parse: () => null }, dict).keys()
            : [];
        return { allowed_kinds, measurements };
    }

    async getIsMeasurementAllowed(provider: ContractProvider, measurement: Buffer) {
        const r = (
            await provider.get('is_measurement_allowed', [{ type: 'int', value: BigInt('0x' + measurement.toString('hex')) }])
        ).stack;
        return r.readBoolean();
    }

    async getModel(provider: ContractProvider, modelId: number) {
        const r = (await provider.get('get_model', [{ type: 'int', value: BigInt(modelId) }])).stack;
        return { found: r.readBoolean(), model_hash: r.readBigNumber() };
    }

    async getModels(provider: ContractProvider) {
        const r = (await provider.get('get_models', [])).stack;
        const dict = r.readCellOpt();
        if (!dict) return new Map<number, bigint>();
        const d = Dictionary.loadDirect(Dictionary.Keys.Uint(32), Dictionary.Values.BigUint(256), dict);
        return new Map(d.keys().map((k) => [k, d.get(k)!]));
    }

    async getCodes(provider: ContractProvider) {
        const r = (await provider.get('get_codes', [])).stack;
        return { worker_code: r.readCell(), escrow_code: r.readCell() };
    }

    async getWorkerAddress(provider: ContractProvider, owner: Address) {
        const r = (await provider.get('get_worker_address', [{ type: 'slice', cell: addrCell(owner) }])).stack;
        return r.readAddress();
    }

    async getEscrowAddress(provider: ContractProvider, owner: Address) {
        const r = (await provider.get('get_escrow_address', [{ type: 'slice', cell: addrCell(owner) }])).stack;
        return r.readAddress();
    }
}

function addrCell(a: Address): Cell {
    return beginCell().storeAddress(a).endCell();
}
