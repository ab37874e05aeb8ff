// Worker stake lifecycle: top-up, unbond, withdrawal only after the delay, earnings, owner checks,
// re-registration after exit.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { Err, Op, WorkerStatus } from '../wrappers/constants';
import { Worker } from '../wrappers/Worker';
import { Env, NOW, PARAMS, keys, registerWorker, setupRoot } from './helpers/fixture';

describe('Worker stake', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let snap: BlockchainSnapshot;

    beforeAll(async () => {
        env = await setupRoot();
        worker = (await registerWorker(env, env.workerOwner, keys(1))).worker;
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    const ownerOnly = () => [
        ['top_up_stake', { amount: 1n }],
        ['unbond', {}],
        ['withdraw_stake', {}],
        ['withdraw_earnings', { amount: 0n }],
    ] as const;

    it('owner operations from anyone else fail with NotOwner', async () => {
        for (const [op, fields] of ownerOnly()) {
            const r = await worker.send(env.stranger.getSender(), toNano('0.1'), op, fields);
            expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotOwner });
        }
    });

    it('tops up the stake, only with the value attached', async () => {
        const ok = await worker.send(env.workerOwner.getSender(), toNano('2'), 'top_up_stake', { amount: toNano('1.5') });
        expect(ok.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect((await worker.getState()).stake).toBe(PARAMS.min_stake + toNano('1.5'));
        const short = await worker.send(env.workerOwner.getSender(), toNano('1'), 'top_up_stake', { amount: toNano('1.5') });
        expect(short.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
    });

    it('withdraws the stake only after the unbonding delay (boundary second)', async () => {
        const notYet = await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'withdraw_stake');
        expect(notYet.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotUnbonding });

        await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'unbond');
        const st = await worker.getState();
        expect(st.status).toBe(WorkerStatus.Unbonding);
        expect(st.unlock_at).toBe(NOW + PARAMS.unbonding_delay);
        const again = await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'unbond');
        expect(again.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotActive });
        const topUp = await worker.send(env.workerOwner.getSender(), toNano('1'), 'top_up_stake', { amount: 1n });
        expect(topUp.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotActive });

        env.blockchain.now = NOW + PARAMS.unbonding_delay - 1;
        const early = await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'withdraw_stake');
        expect(early.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.StakeLocked });

        env.blockchain.now = NOW + PARAMS.unbonding_delay;
        const ok = await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'withdraw_stake');
        expect(ok.transactions).toHaveTransaction({
            from: worker.address, to: env.workerOwner.address, op: Op.payout, value: PARAMS.min_stake,
        });
        const after = await worker.getState();
        expect(after.status).toBe(WorkerStatus.Exited);
        expect(after.stake).toBe(0n);
        const twice = await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'withdraw_stake');
        expect(twice.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotUnbonding });
    });

    it('an exited worker may register again through Root', async () => {
        await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'unbond');
        env.blockchain.now = NOW + PARAMS.unbonding_delay;
        await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'withdraw_stake');
        const again = await registerWorker(env, env.workerOwner, keys(4), PARAMS.min_stake);
        expect(again.worker.address.equals(worker.address)).toBe(true);
        const st = await worker.getState();
        expect(st.status).toBe(WorkerStatus.Active);
        expect(st.stake).toBe(PARAMS.min_stake);
    });

    it('credits payments and lets the owner withdraw earnings, never more than earned', async () => {
        const pay = await worker.send(env.stranger.getSender(), toNano('1'), 'pay_worker', { amount: toNano('0.7'), job_id: 1n });
        expect(pay.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect((await worker.getState()).earned).toBe(toNano('0.7'));
        const unbacked = await worker.send(env.stranger.getSender(), toNano('0.5'), 'pay_worker', { amount: toNano('1'), job_id: 2n });
        expect(unbacked.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });

        const tooMuch = await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'withdraw_earnings', { amount: toNano('0.7') + 1n });
        expect(tooMuch.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.InsufficientEarnings });
        const ok = await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'withdraw_earnings', { amount: toNano('0.7') });
        expect(ok.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.payout, value: toNano('0.7') });
        expect((await worker.getState()).earned).toBe(0n);
        expect((await worker.getState()).stake).toBe(PARAMS.min_stake);
    });

    it('an unknown opcode fails with UnknownOp', async () => {
        const r = await env.stranger.send({ to: worker.address, value: toNano('0.1'), body: (await import('@ton/core')).beginCell().storeUint(7, 32).endCell() });
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.UnknownOp });
    });
});
