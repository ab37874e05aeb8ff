// Slashing: two different receipts for the same (escrow, job id), both signed by the worker's
// receipt key, slash the stake (reward to the reporter, rest to the treasury) forever.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { Err, Op, WorkerStatus } from '../wrappers/constants';
import { Escrow } from '../wrappers/Escrow';
import { Worker } from '../wrappers/Worker';
import { Fields, decode } from '../wrappers/schema';
import {
    Env, NOW, PARAMS, createEscrow, keys, openJobFields, receiptBody, receiptLinks, registerWorker, setupRoot,
    signReceipt, submitValue,
} from './helpers/fixture';

describe('Slashing', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let escrow: SandboxContract<Escrow>;
    let snap: BlockchainSnapshot;
    const k = keys(1);

    beforeAll(async () => {
        env = await setupRoot();
        worker = (await registerWorker(env, env.workerOwner, k)).worker;
        escrow = (await createEscrow(env, env.client, toNano('5'))).escrow;
        await escrow.send(env.client.getSender(), toNano('0.05'), 'open_job', openJobFields(env));
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    const body = (over: Partial<Fields> = {}) => receiptBody(escrow.address, worker.address, over);
    const report = (a: Fields, b: Fields) =>
        worker.send(env.stranger.getSender(), toNano('0.1'), 'report_equivocation', { receipt_a: a, receipt_b: b });

    it('slashes on equivocation: reward to the reporter, rest to the treasury', async () => {
        const r = await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 201 }), k));
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: true });
        const reward = (PARAMS.min_stake * BigInt(PARAMS.reporter_reward_bps)) / 10000n;
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.stranger.address, op: Op.payout, value: reward });
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.treasury.address, op: Op.payout, value: PARAMS.min_stake - reward });
        const st = await worker.getState();
        expect(st.status).toBe(WorkerStatus.Slashed);
        expect(st.stake).toBe(0n);
        const log = r.transactions.flatMap((t) => t.outMessages.values()).find((m) => m.info.type === 'external-out')!;
        const l = decode('log_slashed', log.body);
        expect(l.reporter.equals(env.stranger.address)).toBe(true);
        expect(l.reward).toBe(reward);
    });

    it('a slashed worker can no longer settle, unbond, withdraw stake or be slashed again', async () => {
        await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 201 }), k));
        const settle = await worker.send(env.relayer.getSender(), submitValue(1), 'submit_receipts', {
            count: 1, receipts: receiptLinks([signReceipt(body(), k)]),
        });
        expect(settle.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        expect(settle.transactions).not.toHaveTransaction({ to: escrow.address });
        for (const op of ['unbond', 'withdraw_stake'] as const) {
            const r = await worker.send(env.workerOwner.getSender(), toNano('0.1'), op);
            expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        }
        const again = await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 202 }), k));
        expect(again.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        const reRegister = await registerWorker(env, env.workerOwner, keys(5));
        expect(reRegister.result.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.payout });
        expect((await worker.getState()).status).toBe(WorkerStatus.Slashed);
    });

    it('an unbonding worker is still slashable', async () => {
        await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'unbond');
        env.blockchain.now = NOW + 10;
        const r = await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 201 }), k));
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect((await worker.getState()).status).toBe(WorkerStatus.Slashed);
    });

    it('identical receipts are not an equivocation', async () => {
        const a = signReceipt(body(), k);
        const r = await report(a, a);
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEquivocation });
    });

    it('receipts for different jobs or escrows are not an equivocation', async () => {
        const jobs = await report(signReceipt(body(), k), signReceipt(body({ job_id: 2n }), k));
        expect(jobs.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEquivocation });
        const escrows = await report(signReceipt(body(), k), signReceipt(body({ escrow: env.stranger.address }), k));
        expect(escrows.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEquivocation });
        expect((await worker.getState()).status).toBe(WorkerStatus.Active);
    });

    it('a receipt not signed by the receipt key cannot slash', async () => {
        const r = await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 201 }), keys(9)));
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.BadSignature });
        expect((await worker.getState()).stake).toBe(PARAMS.min_stake);
    });

    it('receipts naming another Worker contract cannot slash this one', async () => {
        const other = { worker: env.stranger.address };
        const r = await report(signReceipt(body(other), k), signReceipt(body({ ...other, tokens_out: 201 }), k));
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WrongWorker });
    });
});
