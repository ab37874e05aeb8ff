// The main flows under a network config whose gas and forwarding prices (params 20, 21, 24, 25)
// are 4x the bundled ones: every fee the contracts ask for is computed from the live config, so
// open, top up, settle, close, slash, withdraw and the stake exit still succeed when they pay what the getters
// say, and one nanoTON less is still refused up front.
import '@ton/test-utils';
import { Blockchain } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { Err, Op, WorkerStatus } from '../../wrappers/v2/constants';
import {
    Env, NOW, PARAMS, Session, ZERO, channelRef, createEscrow, keys, openChannel, receiptBody,
    registerWorker, setupRoot, signReceipt, workerRecord,
} from './helpers/fixture';
import { scaledConfig } from './helpers/config';

describe('Main flows at 4x gas and forwarding prices', () => {
    let env: Env;
    let base: { open: bigint; settle: bigint };

    beforeAll(async () => {
        // The fees at the bundled config, for comparison.
        const plain = await setupRoot();
        const w = (await registerWorker(plain, plain.workerOwner, keys(1))).worker;
        const e = (await createEscrow(plain, plain.client, toNano('5'))).escrow;
        base = { open: (await e.getFees()).open_channel, settle: (await w.getFees()).settle };
        env = await setupRoot(await Blockchain.create({ config: scaledConfig(4n) }));
    });

    it('the fees the contracts ask for are 4x', async () => {
        const { worker } = await registerWorker(env, env.workerOwner, keys(1), PARAMS.min_stake, workerRecord(keys(1)), PARAMS.min_stake + toNano('1'));
        const { escrow } = await createEscrow(env, env.client, toNano('20'));
        expect((await escrow.getFees()).open_channel).toBe(base.open * 4n);
        expect((await worker.getFees()).settle).toBe(base.settle * 4n);
    });

    it('register, create escrow, open, top up, settle, close, slash, withdraw: fee - 1 refused, fee accepted', async () => {
        const k = keys(2);
        const owner = await env.blockchain.treasury('worker-owner-4x');
        const client = await env.blockchain.treasury('client-4x');
        const rf = await env.root.getFees();

        const reg = async (value: bigint) => env.root.send(owner.getSender(), value, 'register_worker', { stake: PARAMS.min_stake, record: workerRecord(k) });
        expect((await reg(PARAMS.min_stake + rf.register - 1n)).transactions).toHaveTransaction({ to: env.root.address, exitCode: Err.NotEnoughValue });
        const worker = (await registerWorker(env, owner, k, PARAMS.min_stake, workerRecord(k), PARAMS.min_stake + rf.register)).worker;
        expect((await worker.getState()).status).toBe(WorkerStatus.Active);

        expect((await env.root.send(client.getSender(), rf.create_escrow - 1n, 'create_escrow')).transactions)
            .toHaveTransaction({ to: env.root.address, exitCode: Err.NotEnoughValue });
        const escrow = (await createEscrow(env, client, toNano('10'))).escrow;
        expect((await escrow.getState()).initialized).toBe(true);
        const ef = await escrow.getFees();

        const over = { worker_owner: owner.address };
        const low = await openChannel(env, escrow, over, ef.open_channel - 1n, client);
        expect(low.result.transactions).toHaveTransaction({ to: escrow.address, exitCode: Err.NotEnoughValue });
        const { result, channelId } = await openChannel(env, escrow, over, ef.open_channel, client);
        expect(result.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(result.transactions).toHaveTransaction({ from: escrow.address, to: env.relayer.address, op: Op.channelOpened });

        const topUp = (value: bigint) => escrow.send(client.getSender(), value, 'top_up', { channel_id: channelId, amount: toNano('0.5') });
        expect((await topUp(ef.top_up - 1n)).transactions).toHaveTransaction({ to: escrow.address, exitCode: Err.NotEnoughValue });
        expect((await topUp(ef.top_up)).transactions).toHaveTransaction({ to: escrow.address, success: true });

        const s = new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k);
        s.advance(50);
        const settleFee = (await worker.getFees()).settle;
        const lowSettle = await worker.send(owner.getSender(), settleFee - 1n, 'submit_settlement', s.settlement());
        expect(lowSettle.transactions).toHaveTransaction({ to: worker.address, exitCode: Err.NotEnoughValue });
        const settle = await worker.send(owner.getSender(), settleFee, 'submit_settlement', s.settlement());
        expect(settle.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(settle.transactions).toHaveTransaction({ from: escrow.address, to: owner.address, op: Op.payout, success: true });
        expect((await escrow.getChannel(channelId)).settled).toBe(s.cumulative);

        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        const close = (value: bigint) => escrow.send(env.stranger.getSender(), value, 'close_channel', { channel_id: channelId });
        expect((await close(ef.close_channel - 1n)).transactions).toHaveTransaction({ to: escrow.address, exitCode: Err.NotEnoughValue });
        expect((await close(ef.close_channel)).transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect((await escrow.getState()).locked).toBe(0n);

        const withdraw = (value: bigint) => escrow.send(client.getSender(), value, 'withdraw', { amount: toNano('1') });
        expect((await withdraw(ef.withdraw - 1n)).transactions).toHaveTransaction({ to: escrow.address, exitCode: Err.NotEnoughValue });
        expect((await withdraw(ef.withdraw)).transactions).toHaveTransaction({ from: escrow.address, to: client.address, op: Op.payout });

        const ref = channelRef(env.root.address, escrow.address, channelId);
        const slash = (value: bigint) => worker.send(env.stranger.getSender(), value, 'report_equivocation', {
            key_a: k.publicKey, receipt_a: signReceipt(receiptBody(ref, worker.address, 1, ZERO), k),
            key_b: k.publicKey, receipt_b: signReceipt(receiptBody(ref, worker.address, 1, ZERO, { tokens_out: 1 }), k),
        });
        const wf = await worker.getFees();
        expect((await slash(wf.slash - 1n)).transactions).toHaveTransaction({ to: worker.address, exitCode: Err.NotEnoughValue });
        const sl = await slash(wf.slash);
        expect(sl.transactions).toHaveTransaction({ from: worker.address, to: env.treasury.address, op: Op.payout });
        expect((await worker.getState()).status).toBe(WorkerStatus.Slashed);
    });

    it('unbond and withdraw the stake: fee - 1 refused, fee accepted', async () => {
        const owner = await env.blockchain.treasury('staker-4x');
        const k = keys(3);
        const worker = (await registerWorker(env, owner, k, PARAMS.min_stake, workerRecord(k), PARAMS.min_stake + toNano('1'))).worker;
        const fee = (await worker.getFees()).stake_op;
        expect((await worker.send(owner.getSender(), fee - 1n, 'unbond')).transactions).toHaveTransaction({ to: worker.address, exitCode: Err.NotEnoughValue });
        expect((await worker.send(owner.getSender(), fee, 'unbond')).transactions).toHaveTransaction({ to: worker.address, success: true });
        env.blockchain.now = (env.blockchain.now ?? NOW) + PARAMS.unbonding_delay;
        expect((await worker.send(owner.getSender(), fee - 1n, 'withdraw_stake')).transactions).toHaveTransaction({ to: worker.address, exitCode: Err.NotEnoughValue });
        const w = await worker.send(owner.getSender(), fee, 'withdraw_stake');
        expect(w.transactions).toHaveTransaction({ from: worker.address, to: owner.address, op: Op.payout, success: true });
        expect((await worker.getState()).status).toBe(WorkerStatus.Exited);
    });
});
