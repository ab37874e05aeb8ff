// Finding 5: "close and re-create resets job ids, so an honest worker can be framed for
// equivocation". In v2 the Escrow has no destroy (the v1 Close op does not exist), channel ids
// come from a counter seeded with (first init time) << 32 and only counting up, and receipts name
// the channel by (network, Root, Escrow, id): even an Escrow account deleted and deployed again
// later starts above every id it ever gave out, so two honest receipts never share (channel, seq).
import '@ton/test-utils';
import { createEmptyShardAccount } from '@ton/sandbox';
import { beginCell, toNano } from '@ton/core';
import { Err } from '../../wrappers/v2/constants';
import { GAS, NOW, PARAMS, ZERO, channelRef, createEscrow, openChannel, receiptBody, signReceipt } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 5: channel ids are never reused', () => {
    it('there is no way to destroy the Escrow: the v1 close op is unknown', async () => {
        const { env, escrow } = await baseline();
        const r = await env.client.send({ to: escrow.address, value: GAS, body: beginCell().storeUint(0xc0c00307, 32).storeUint(0, 64).endCell() });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.UnknownOp });
    });

    it('close every channel, withdraw everything, create again: the counter continues', async () => {
        const { env, escrow, channelId } = await baseline();
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        const { free } = await escrow.getState();
        await escrow.send(env.client.getSender(), GAS, 'withdraw', { amount: free });
        await createEscrow(env, env.client, toNano('2'));
        const again = await openChannel(env, escrow, { expires_at: env.blockchain.now + 3600 });
        expect(again.channelId).toBe(channelId + 1n);
    });

    it('even a deleted and re-deployed Escrow never repeats an id; the old receipt cannot frame the worker', async () => {
        const { env, k, worker, escrow, channelId } = await baseline();
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const old = signReceipt(receiptBody(ref, worker.address, 1, ZERO), k);
        // The account disappears (as after years of unpaid storage) and the client deploys it again.
        await env.blockchain.setShardAccount(escrow.address, createEmptyShardAccount(escrow.address));
        env.blockchain.now = NOW + 1;
        await createEscrow(env, env.client, toNano('3'));
        const fresh = await openChannel(env, escrow);
        expect(fresh.channelId).toBe(BigInt(NOW + 1) << 32n);
        expect(fresh.channelId).toBeGreaterThan(channelId);
        // The worker's honest receipt for the new channel, seq 1, differs from the old one but is no
        // equivocation: another channel id.
        const now = signReceipt(receiptBody(channelRef(env.root.address, escrow.address, fresh.channelId), worker.address, 1, ZERO), k);
        const r = await worker.send(env.client.getSender(), GAS, 'report_equivocation', {
            key_a: k.publicKey, receipt_a: old, key_b: k.publicKey, receipt_b: now,
        });
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEquivocation });
        expect((await worker.getState()).stake).toBe(PARAMS.min_stake);
    });
});
