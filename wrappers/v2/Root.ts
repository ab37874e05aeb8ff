import { Address, Cell, Contract, ContractProvider, Dictionary, Sender, beginCell, contractAddress } from '@ton/core';
import { Fields, emptyValue, encode } from './schema';
import { readAddressOpt, sendMsg } from './common';

/** Root v2: timelocked governance; deploys Workers and Escrows. */
export class Root implements Contract {
    constructor(readonly address: Address, readonly init?: { code: Cell; data: Cell }) {}

    static createFromAddress(address: Address) {
        return new Root(address);
    }

    /** `data` holds the fields of root_data (contracts/v2/schema.tlb). */
    static createFromConfig(data: Fields, code: Cell, workchain = 0) {
        const init = { code, data: encode('root_data', data) };
        return new Root(contractAddress(workchain, init), init);
    }

    async sendDeploy(provider: ContractProvider, via: Sender, value: bigint) {
        await provider.internal(via, { value, bounce: false, body: Cell.EMPTY });
    }

    /** Sends any Root message by its TL-B name (register_worker, set_params, apply_change, …). */
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
            max_channel_lifetime: r.readNumber(),
            governance_delay: r.readNumber(),
            relayer_fee_cap_bps: r.readNumber(),
            protocol_fee_bps: r.readNumber(),
            reporter_reward_bps: r.readNumber(),
            treasury: r.readAddress(),
        };
    }

    /** The TEE policy in force: SEV-SNP minimum TCB per component, TDX attributes rule and allow-lists. */
    async getTeePolicy(provider: ContractProvider): Promise<Fields> {
        const r = (await provider.get('get_tee_policy', [])).stack;
        const set384 = () => {
            const c = r.readCellOpt();
            return c ? Dictionary.loadDirect(Dictionary.Keys.Buffer(48), emptyValue, c).keys().sort(Buffer.compare) : [];
        };
        return {
            snp_min_tcb: {
                boot_loader: r.readNumber(), tee: r.readNumber(), snp: r.readNumber(), microcode: r.readNumber(),
                fmc: r.readNumber(),
            },
            tdx: {
                td_attributes_mask: r.readBigNumber(), td_attributes_value: r.readBigNumber(), mr_config_ids: set384(),
                mr_owners: set384(), rtmr3s: set384(),
            },
        };
    }

    async getModel(provider: ContractProvider, modelId: number) {
        const r = (await provider.get('get_model', [{ type: 'int', value: BigInt(modelId) }])).stack;
        return { found: r.readBoolean(), model_hash: r.readBigNumber() };
    }

    async getCodes(provider: ContractProvider) {
        const r = (await provider.get('get_codes', [])).stack;
        return { worker_code: r.readCell(), escrow_code: r.readCell() };
    }

    async isWorkerCodeKnown(provider: ContractProvider, hash: Buffer) {
        const r = (await provider.get('is_worker_code_known', [{ type: 'int', value: BigInt('0x' + hash.toString('hex')) }])).stack;
        return r.readBoolean();
    }

    async getPendingChange(provider: ContractProvider, changeId: number) {
        const r = (await provider.get('get_pending_change', [{ type: 'int', value: BigInt(changeId) }])).stack;
        return { found: r.readBoolean(), ready_at: r.readNumber(), body: r.readCellOpt() };
    }

    async getNextChangeId(provider: ContractProvider) {
        return (await provider.get('get_next_change_id', [])).stack.readNumber();
    }

    /** The least value beyond what it moves each message must carry (RegisterWorker: stake + register). */
    async getFees(provider: ContractProvider) {
        const r = (await provider.get('get_fees', [])).stack;
        return { register: r.readBigNumber(), create_escrow: r.readBigNumber(), governance: r.readBigNumber() };
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

/** A slice holding just the address, as get methods take it. */
function addrCell(a: Address): Cell {
    return beginCell().storeAddress(a).endCell();
}
