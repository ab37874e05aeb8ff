import { Address, Cell, ContractProvider, Sender, SendMode, TupleReader, contractAddress } from '@ton/core';
import { Fields, encode } from './schema';

/** Sends the v2 message `type` with `fields` (query_id defaults to 0) from `via`. */
export async function sendMsg(provider: ContractProvider, via: Sender, value: bigint, type: string, fields: Fields = {}) {
    await provider.internal(via, {
        value,
        bounce: true,
        sendMode: SendMode.PAY_GAS_SEPARATELY,
        body: encode(type, { query_id: 0n, ...fields }),
    });
}

/** Initial data of a v2 Worker: root, status 0, no receipt key or models, owner, then stake/unlock_at/key_count 0, no keys, no records. */
export function workerInitialData(root: Address, owner: Address): Cell {
    return encode('worker_data', {
        root, status: 0, receipt_key: Buffer.alloc(32), models: [], owner, stake: 0n, unlock_at: 0, key_count: 0,
        receipt_keys: [], record: null, config: null,
    });
}

/** Initial data of a v2 Escrow: root, owner, counters 0, no channels, no config. */
export function escrowInitialData(root: Address, owner: Address): Cell {
    return encode('escrow_data', {
        root, owner, next_channel_id: 0n, open_channels: 0, locked: 0n, fees_due: 0n, channels: [], config: null,
    });
}

export function workerAddress(root: Address, owner: Address, workerCode: Cell): Address {
    return contractAddress(0, { code: workerCode, data: workerInitialData(root, owner) });
}

export function escrowAddress(root: Address, owner: Address, escrowCode: Cell): Address {
    return contractAddress(0, { code: escrowCode, data: escrowInitialData(root, owner) });
}

/** Reads an optional address from a getter stack (addr_none or null → null). */
export function readAddressOpt(r: TupleReader): Address | null {
    const item = r.pop();
    if (item.type === 'null') return null;
    if (item.type !== 'slice' && item.type !== 'cell') throw new Error(`address expected, got ${item.type}`);
    const s = item.cell.beginParse();
    if (s.remainingBits === 2 && s.preloadUint(2) === 0) return null;
    return s.loadAddress();
}
