// Finding 10: "a deadline of 0xffffffff is accepted and such a job can never expire". In v2 a
// channel's expiry must lie in (now, now + max_channel_lifetime] (a Root parameter), so every
// channel can be closed by anyone at the latest max_channel_lifetime + grace after its open.
import '@ton/test-utils';
import { Err } from '../../wrappers/v2/constants';
import { CHANNEL_AMOUNT, GAS, NOW, PARAMS, openChannel } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 10: bounded expiry', () => {
    it('0xffffffff and anything beyond the lifetime are refused with ExpiryTooFar', async () => {
        const { env, escrow } = await baseline();
        for (const expires_at of [0xffffffff, NOW + PARAMS.max_channel_lifetime + 1]) {
            const r = await openChannel(env, escrow, { expires_at });
            expect(r.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ExpiryTooFar });
        }
        const past = await openChannel(env, escrow, { expires_at: NOW });
        expect(past.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ExpiryInPast });
    });

    it('the longest channel allowed is closable by anyone after lifetime + grace, and its funds come back', async () => {
        const { env, escrow } = await baseline();
        const { channelId } = await openChannel(env, escrow, { expires_at: NOW + PARAMS.max_channel_lifetime });
        const locked = (await escrow.getState()).locked;
        env.blockchain.now = NOW + PARAMS.max_channel_lifetime + PARAMS.grace_period + 1;
        const r = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect((await escrow.getState()).locked).toBe(locked - CHANNEL_AMOUNT);
    });
});
