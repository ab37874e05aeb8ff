// Finding 7: "an under-funded stake blocks slashing (the payout fails in the action phase)". In
// v2 the slash splits what the Worker actually holds of its stake (reward to the reporter, the rest
// to the treasury) and never fails.
import '@ton/test-utils';
import { createShardAccount } from '@ton/sandbox';
import { Op, WorkerStatus } from '../../wrappers/v2/constants';
import { GAS, PARAMS, ZERO, channelRef, logs, receiptBody, signReceipt, storageFee, valueOf } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 7: an under-funded stake never blocks slashing', () => {
    for (const [label, fraction] of [['half the stake', 2n], ['nothing', 0n]] as const) {
        it(`slashes a Worker holding ${label}: pays what exists, exactly`, async () => {
            const { env, k, worker, escrow, channelId } = await baseline();
            const c = await env.blockchain.getContract(worker.address);
            const st = c.accountState!;
            if (st.type !== 'active') throw new Error('active expected');
            const held = fraction === 0n ? 0n : PARAMS.min_stake / fraction;
            await env.blockchain.setShardAccount(worker.address, createShardAccount({
                address: worker.address, code: st.state.code!, data: st.state.data!, balance: held,
            }));
            const ref = channelRef(env.root.address, escrow.address, channelId);
            const r = await worker.send(env.stranger.getSender(), GAS, 'report_equivocation', {
                key_a: k.publicKey, receipt_a: signReceipt(receiptBody(ref, worker.address, 1, ZERO), k),
                key_b: k.publicKey, receipt_b: signReceipt(receiptBody(ref, worker.address, 1, ZERO, { tokens_out: 1 }), k),
            });
            expect(r.transactions).toHaveTransaction({ to: worker.address, success: true });
            const onHand = held - storageFee(r, worker.address) > 0n ? held - storageFee(r, worker.address) : 0n;
            const reward = (onHand * BigInt(PARAMS.reporter_reward_bps)) / 10000n;
            const [log] = logs(r, 'log_slashed');
            expect(log.reward).toBe(reward);
            expect(log.to_treasury).toBe(onHand - reward);
            if (onHand - reward > 0n) expect(valueOf(r, worker.address, env.treasury.address, Op.payout)).toBe(onHand - reward);
            else expect(r.transactions).not.toHaveTransaction({ from: worker.address, to: env.treasury.address });
            expect(valueOf(r, worker.address, env.stranger.address, Op.payout)).toBeGreaterThanOrEqual(reward);
            expect((await worker.getState())).toMatchObject({ status: WorkerStatus.Slashed, stake: 0n });
        });
    }
});
