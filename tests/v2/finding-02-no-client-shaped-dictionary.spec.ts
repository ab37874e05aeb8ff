// Finding 2: "a client can make its Escrow unable to pay anyone" by shaping the jobs dictionary
// beyond a fixed gas allowance. In v2 the client chooses no key (the Escrow assigns channel ids
// from its counter), at most MAX_OPEN_CHANNELS channels are open, and the settlement fee is
// computed from the config at gas measured on the deepest dictionary a client can build: a
// settlement that pays exactly that fee still goes through on the worst-shaped Escrow.
import '@ton/test-utils';
import { Err, MAX_OPEN_CHANNELS, Op } from '../../wrappers/v2/constants';
import { openChannel, valueOf } from './helpers/fixture';
import { baseline } from './helpers/baseline';
import { deepenChannels } from './helpers/worst';

describe('Finding 2: no client-shaped dictionary on the settlement path', () => {
    it('the client cannot name a channel id, nor open more than the cap', async () => {
        const { env, escrow, channelId } = await baseline();
        // open_channel has no id field: whatever the client sends, the id is the counter.
        const next = await openChannel(env, escrow, { amount: 1000n });
        expect(next.channelId).toBe(channelId + 1n);
        for (let i = 2; i < MAX_OPEN_CHANNELS; i++) await openChannel(env, escrow, { amount: 1000n });
        expect((await escrow.getState()).open_channels).toBe(MAX_OPEN_CHANNELS);
        const over = await openChannel(env, escrow, { amount: 1000n });
        expect(over.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.TooManyChannels });
    });

    it('on the deepest dictionary a client can build, a settlement paying exactly the fee is paid', async () => {
        const { env, worker, escrow, channelId, session } = await baseline();
        await deepenChannels(env, escrow.address, channelId);
        expect((await escrow.getState()).open_channels).toBe(MAX_OPEN_CHANNELS);
        const s = session();
        s.request();
        const fee = (await worker.getFees()).settle;
        const r = await worker.send(env.relayer.getSender(), fee, 'submit_settlement', s.settlement());
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: escrow.address, success: true });
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.workerOwner.address, op: Op.payout, success: true });
        expect((await escrow.getChannel(channelId)).relayer_due).toBe((s.cumulative * 500n) / 10000n);
        // One nanoTON less is refused by the Worker before any work: the submitter loses only gas.
        s.request();
        const low = await worker.send(env.relayer.getSender(), fee - 1n, 'submit_settlement', s.settlement());
        expect(low.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
        expect(low.transactions).not.toHaveTransaction({ to: escrow.address });
    });
});
