// Worst-case shapes for gas measurement: an Escrow holding MAX_OPEN_CHANNELS channels whose ids
// put a given channel at the deepest leaf a client can make, and a Worker whose key history puts
// its key at the deepest leaf an owner can make. Written straight into the accounts' data.
import { createShardAccount } from '@ton/sandbox';
import { Address } from '@ton/core';
import { MAX_OPEN_CHANNELS, MAX_RECEIPT_KEYS } from '../../../wrappers/v2/constants';
import { decode, encode } from '../../../wrappers/v2/schema';
import { Env } from './fixture';

async function rewrite(env: Env, address: Address, type: string, change: (d: any) => void) {
    const c = await env.blockchain.getContract(address);
    const state = c.accountState;
    if (state?.type !== 'active') throw new Error('active account expected');
    const data = decode(type, state.state.data!);
    change(data);
    await env.blockchain.setShardAccount(
        address,
        createShardAccount({ address, code: state.state.code!, data: encode(type, data), balance: c.balance }),
    );
}

/**
 * Adds channels at ids `deep` + 2^i (copies of `deep`'s channel) until `count` are open, so the
 * leaf of `deep` sits below one fork per added channel. Ids stay below next_channel_id, as an
 * Escrow that opened 2^k channels and closed the rest would hold them.
 */
export async function deepenChannels(env: Env, escrow: Address, deep: bigint, count = MAX_OPEN_CHANNELS) {
    await rewrite(env, escrow, 'escrow_data', (d) => {
        const base = d.channels.find((e: any) => e.key === deep)!.value;
        const extra = count - d.channels.length;
        for (let i = 0; i < extra; i++) d.channels.push({ key: deep + (1n << BigInt(i)), value: base });
        d.open_channels = d.channels.length;
        d.next_channel_id = deep + (1n << BigInt(extra));
    });
}

/** Fills the key history with keys that differ from `key` in one low bit each (deepest leaf). */
export async function deepenKeys(env: Env, worker: Address, key: Buffer, count = MAX_RECEIPT_KEYS) {
    await rewrite(env, worker, 'worker_data', (d) => {
        for (let i = 0; d.receipt_keys.length < count; i++) {
            const k = Buffer.from(key);
            k[31 - (i >> 3)] ^= 1 << (i & 7);
            d.receipt_keys.push(k);
        }
        d.key_count = d.receipt_keys.length;
    });
}
