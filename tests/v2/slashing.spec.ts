// Slashing v2: two different receipts for the same (network, Root, Escrow, channel, seq), each
// signed by a receipt key the Worker ever registered, slash the stake (reward to the reporter,
// the rest to the treasury) forever.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { Err, Op, PayoutReason, WorkerStatus } from '../../wrappers/v2/constants';
import { Escrow } from '../../wrappers/v2/Escrow';
import { Worker } from '../../wrappers/v2/Worker';
import { decode } from '../../wrappers/v2/schema';
import {
    Env, GAS, PARAMS, Session, ZERO, channelRef, createEscrow, keys, logs, openChannel, receiptBody, registerWorker,
    setupRoot, signReceipt, valueOf, workerRecord,
} from './helpers/fixture';

describe('Slashing v2', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let escrow: SandboxContract<Escrow>;
    let channelId: bigint;
    let snap: BlockchainSnapshot;
    const k = keys(1);

    beforeAll(async () => {
        env = await setupRoot();
        worker = (await registerWorker(env, env.workerOwner, k)).worker;
        escrow = (await createEscrow(env, env.client, toNano('5'))).escrow;
        channelId = (await openChannel(env, escrow)).channelId;
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    const ref = () => channelRef(env.root.address, escrow.address, channelId);
    const body = (over: any = {}, seq = 1, r = ref()) => receiptBody(r, worker.address, seq, ZERO, over);
    const report = (a: any, b: any, keyA = k.publicKey, keyB = k.publicKey, value = GAS) =>
        worker.send(env.stranger.getSender(), value, 'report_equivocation', { key_a: keyA, receipt_a: a, key_b: keyB, receipt_b: b });

    it('slashes: the treasury gets exactly stake - reward, the reporter the reward plus its unspent value', async () => {
        const balance = await worker.getBalance();
        const stake = (await worker.getState()).stake;
        const r = await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 201 }), k));
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: true });
        const onHand = stake < balance ? stake : balance;
        const reward = (onHand * BigInt(PARAMS.reporter_reward_bps)) / 10000n;
        expect(valueOf(r, worker.address, env.treasury.address, Op.payout)).toBe(onHand - reward);
        const toReporter = valueOf(r, worker.address, env.stranger.address, Op.payout);
        expect(toReporter).toBeGreaterThan(reward);
        expect(toReporter).toBeLessThan(reward + GAS);
        const st = await worker.getState();
        expect(st.status).toBe(WorkerStatus.Slashed);
        expect(st.stake).toBe(0n);
        const [log] = logs(r, 'log_slashed');
        expect(log.reporter.equals(env.stranger.address)).toBe(true);
        expect(log.reward).toBe(reward);
        expect(log.to_treasury).toBe(onHand - reward);
        const rewardTx = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.stranger.address.toString() && t.inMessage.info.src?.toString() === worker.address.toString())!;
        expect(decode('payout', rewardTx.inMessage!.body).reason).toBe(PayoutReason.SlashReward);
    });

    it('a slashed worker can no longer settle, unbond, update or be slashed again', async () => {
        await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 201 }), k));
        const s = new Session(ref(), worker.address, k);
        s.request();
        const settle = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.settlement());
        expect(settle.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        const u = await worker.send(env.workerOwner.getSender(), GAS, 'unbond');
        expect(u.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        const w = await worker.send(env.workerOwner.getSender(), GAS, 'withdraw_stake');
        expect(w.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        const up = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(k) });
        expect(up.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        const again = await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 202 }), k));
        expect(again.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WorkerSlashed });
        // Re-registration is refunded, never re-activates.
        const rereg = await registerWorker(env, env.workerOwner, k);
        expect(rereg.result.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.payout });
        expect((await worker.getState()).status).toBe(WorkerStatus.Slashed);
    });

    it('not an equivocation: other seq, other channel, other escrow, identical receipts', async () => {
        const a = signReceipt(body(), k);
        for (const b of [
            signReceipt(body({ tokens_out: 1 }, 2), k),
            signReceipt(body({ tokens_out: 1 }, 1, channelRef(env.root.address, escrow.address, channelId + 1n)), k),
            signReceipt(body({ tokens_out: 1 }, 1, channelRef(env.root.address, env.stranger.address, channelId)), k),
            a,
        ]) {
            const r = await report(a, b);
            expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEquivocation });
        }
    });

    it('signatures and keys: an unknown key, a wrong signature, a receipt for another Worker', async () => {
        const other = keys(7);
        const unknown = await report(signReceipt(body(), other), signReceipt(body({ tokens_out: 1 }), other), other.publicKey, other.publicKey);
        expect(unknown.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.UnknownReceiptKey });
        const forged = await report(signReceipt(body(), other), signReceipt(body({ tokens_out: 1 }), k));
        expect(forged.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.BadSignature });
        const elsewhere = await report(signReceipt(body({ worker: env.stranger.address }), k), signReceipt(body({ worker: env.stranger.address, tokens_out: 1 }), k));
        expect(elsewhere.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WrongWorker });
    });

    it('the report must cover its fee (fee - 1 refused, fee accepted)', async () => {
        const fee = (await worker.getFees()).slash;
        const a = signReceipt(body(), k);
        const b = signReceipt(body({ tokens_out: 201 }), k);
        const low = await report(a, b, k.publicKey, k.publicKey, fee - 1n);
        expect(low.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
        const ok = await report(a, b, k.publicKey, k.publicKey, fee);
        expect(ok.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect(ok.transactions).toHaveTransaction({ from: worker.address, to: env.treasury.address, success: true });
    });

    it('slashes while unbonding, and after the delay before the withdrawal', async () => {
        await worker.send(env.workerOwner.getSender(), GAS, 'unbond');
        env.blockchain.now = env.blockchain.now! + PARAMS.unbonding_delay + 1;
        const r = await report(signReceipt(body(), k), signReceipt(body({ tokens_out: 201 }), k));
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect((await worker.getState()).status).toBe(WorkerStatus.Slashed);
    });
});
