// Worker v2: registration through Root, record updates through the Worker (Root authenticates it
// by its code hash), the receipt key history, stake top-up / unbond / withdraw; every owner
// operation returns what its value did not spend.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { beginCell, toNano } from '@ton/core';
import { Err, MAX_RECEIPT_KEYS, Op, PayoutReason, WorkerStatus } from '../../wrappers/v2/constants';
import { Worker } from '../../wrappers/v2/Worker';
import { decode, encode } from '../../wrappers/v2/schema';
import { deepenKeys } from './helpers/worst';
import { Env, GAS, NOW, PARAMS, keys, registerWorker, setupRoot, valueOf, workerRecord } from './helpers/fixture';

describe('Worker v2', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let snap: BlockchainSnapshot;
    const k = keys(1);

    beforeAll(async () => {
        env = await setupRoot();
        worker = (await registerWorker(env, env.workerOwner, k)).worker;
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    it('registers: stake kept exactly, the rest back to the owner, first key in the history', async () => {
        const st = await worker.getState();
        expect(st).toMatchObject({ status: WorkerStatus.Active, stake: PARAMS.min_stake, key_count: 1 });
        expect(st.owner.equals(env.workerOwner.address)).toBe(true);
        expect(await worker.isReceiptKeyKnown(k.publicKey)).toBe(true);
        expect(await worker.getBalance()).toBeGreaterThanOrEqual(PARAMS.min_stake);
        expect(await worker.getBalance()).toBeLessThan(PARAMS.min_stake + toNano('0.01'));
    });

    it('registration: value must cover stake + fee; stake >= minimum; basechain owner; policy', async () => {
        const fee = (await env.root.getFees()).register;
        const other = await env.blockchain.treasury('other');
        const low = await registerWorker(env, other, k, PARAMS.min_stake, workerRecord(k), PARAMS.min_stake + fee - 1n);
        expect(low.result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotEnoughValue });
        const ok = await registerWorker(env, other, k, PARAMS.min_stake, workerRecord(k), PARAMS.min_stake + fee);
        expect(ok.result.transactions).toHaveTransaction({ to: ok.worker.address, success: true, deploy: true });
        const third = await env.blockchain.treasury('third');
        const small = await registerWorker(env, third, k, PARAMS.min_stake - 1n);
        expect(small.result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.StakeTooLow });
        for (const [rec, code] of [
            [workerRecord(k, {}, { kind: 0 }), Err.TeeKindNotAllowed],
            [workerRecord(k, {}, { measurement: Buffer.alloc(32, 1) }), Err.MeasurementNotAllowed],
            [workerRecord(k, {}, { expires_at: NOW }), Err.AttestationExpired],
            [workerRecord(k, { models: [99] }), Err.UnknownModel],
        ] as const) {
            const r = await registerWorker(env, third, k, PARAMS.min_stake, rec);
            expect(r.result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: code });
        }
    });

    it('a second registration is refunded, not kept', async () => {
        const { result } = await registerWorker(env, env.workerOwner, k);
        expect(result.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.payout });
        expect((await worker.getState()).stake).toBe(PARAMS.min_stake);
    });

    it('update through the Worker: owner only, fee-checked, Root checks the policy, new key added to the history', async () => {
        const k2 = keys(2);
        const stranger = await worker.send(env.stranger.getSender(), GAS, 'update_record', { record: workerRecord(k2) });
        expect(stranger.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotOwner });
        const fee = (await worker.getFees()).update;
        const low = await worker.send(env.workerOwner.getSender(), fee - 1n, 'update_record', { record: workerRecord(k2) });
        expect(low.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
        const r = await worker.send(env.workerOwner.getSender(), fee, 'update_record', { record: workerRecord(k2, { price_in: 7n }) });
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.root.address, op: Op.updateWorker, success: true });
        expect(r.transactions).toHaveTransaction({ from: env.root.address, to: worker.address, op: Op.workerUpdate, success: true });
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.excesses });
        const rec = await worker.getRecord();
        expect(rec.price_in).toBe(7n);
        expect(rec.receipt_key).toBe(BigInt('0x' + k2.publicKey.toString('hex')));
        expect(await worker.isReceiptKeyKnown(k.publicKey)).toBe(true);
        expect(await worker.isReceiptKeyKnown(k2.publicKey)).toBe(true);
        expect((await worker.getState()).key_count).toBe(2);
    });

    it('a record Root refuses bounces to the Worker, which returns the value to the owner (Root keeps nothing)', async () => {
        const rootBalance = await (await env.blockchain.getContract(env.root.address)).balance;
        const r = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', {
            record: workerRecord(k, {}, { measurement: Buffer.alloc(32, 3) }),
        });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.MeasurementNotAllowed });
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.payout });
        const back = r.transactions.find((t) => t.inMessage?.info.src?.toString() === worker.address.toString() && t.inMessage.info.dest?.toString() === env.workerOwner.address.toString())!;
        expect(decode('payout', back.inMessage!.body).reason).toBe(PayoutReason.UpdateRefused);
        // Root's balance only moved by its storage fee, never up.
        expect(await (await env.blockchain.getContract(env.root.address)).balance).toBeLessThanOrEqual(rootBalance);
        expect(await worker.getBalance()).toBeLessThan(PARAMS.min_stake + toNano('0.01'));
    });

    it('update_record to a Worker that was never deployed bounces straight back; Root sees nothing', async () => {
        const nobody = await env.root.getWorkerAddress(env.stranger.address);
        const r = await env.stranger.send({
            to: nobody, value: GAS, bounce: true,
            body: encode('update_record', { query_id: 0n, record: workerRecord(k) }),
        });
        expect(r.transactions).toHaveTransaction({ from: nobody, to: env.stranger.address, inMessageBounced: true });
        expect(r.transactions).not.toHaveTransaction({ to: env.root.address });
    });

    it('Root takes update_worker only from a genuine Worker', async () => {
        const r = await env.root.send(env.stranger.getSender(), GAS, 'update_worker', {
            owner: env.stranger.address, worker_code_hash: env.codes.worker.hash(), record: workerRecord(k),
        });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotGenuineWorker });
        const unknown = await env.root.send(env.stranger.getSender(), GAS, 'update_worker', {
            owner: env.stranger.address, worker_code_hash: Buffer.alloc(32, 5), record: workerRecord(k),
        });
        expect(unknown.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotGenuineWorker });
        const direct = await worker.send(env.stranger.getSender(), GAS, 'worker_update', { record: workerRecord(k) });
        expect(direct.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotRoot });
    });

    it(`the key history holds at most ${MAX_RECEIPT_KEYS} keys; re-using a known key is always allowed`, async () => {
        for (let i = 2; i <= MAX_RECEIPT_KEYS; i++) {
            const r = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(keys(i)) });
            expect(r.transactions).toHaveTransaction({ from: env.root.address, to: worker.address, success: true });
        }
        expect((await worker.getState()).key_count).toBe(MAX_RECEIPT_KEYS);
        const full = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(keys(100)) });
        expect(full.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.KeyHistoryFull });
        const old = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(k) });
        expect(old.transactions).toHaveTransaction({ from: env.root.address, to: worker.address, success: true });
    });

    it('re-registering after exit with a new key while the history is full is refunded (its receipts would be unslashable)', async () => {
        await worker.send(env.workerOwner.getSender(), GAS, 'unbond');
        env.blockchain.now = NOW + PARAMS.unbonding_delay;
        await worker.send(env.workerOwner.getSender(), GAS, 'withdraw_stake');
        await deepenKeys(env, worker.address, k.publicKey);
        const fresh = await registerWorker(env, env.workerOwner, keys(77));
        expect(fresh.result.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.payout });
        expect((await worker.getState()).status).toBe(WorkerStatus.Exited);
        const old = await registerWorker(env, env.workerOwner, k);
        expect(old.result.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect((await worker.getState()).status).toBe(WorkerStatus.Active);
    });

    it('top up stake: owner only, active only, amount kept exactly and the rest returned', async () => {
        const fee = (await worker.getFees()).stake_op;
        const low = await worker.send(env.workerOwner.getSender(), toNano('1') + fee - 1n, 'top_up_stake', { amount: toNano('1') });
        expect(low.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
        const b0 = await worker.getBalance();
        const r = await worker.send(env.workerOwner.getSender(), toNano('2'), 'top_up_stake', { amount: toNano('1') });
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.excesses });
        expect((await worker.getState()).stake).toBe(PARAMS.min_stake + toNano('1'));
        expect(await worker.getBalance()).toBe(b0 + toNano('1'));
        const stranger = await worker.send(env.stranger.getSender(), toNano('2'), 'top_up_stake', { amount: toNano('1') });
        expect(stranger.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotOwner });
    });

    it('unbond, wait the delay, withdraw: the stake and the unspent value in one payout', async () => {
        const early = await worker.send(env.workerOwner.getSender(), GAS, 'withdraw_stake');
        expect(early.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotUnbonding });
        const u = await worker.send(env.workerOwner.getSender(), GAS, 'unbond');
        expect(u.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.excesses });
        expect((await worker.getState()).unlock_at).toBe(NOW + PARAMS.unbonding_delay);
        const locked = await worker.send(env.workerOwner.getSender(), GAS, 'withdraw_stake');
        expect(locked.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.StakeLocked });
        env.blockchain.now = NOW + PARAMS.unbonding_delay;
        const b0 = await worker.getBalance();
        const r = await worker.send(env.workerOwner.getSender(), GAS, 'withdraw_stake');
        // The whole balance (the stake less a week of storage fees, plus the unspent value) leaves.
        const paid = valueOf(r, worker.address, env.workerOwner.address, Op.payout);
        expect(paid).toBeGreaterThan(b0 - toNano('0.001'));
        expect(await worker.getBalance()).toBe(0n);
        expect((await worker.getState())).toMatchObject({ status: WorkerStatus.Exited, stake: 0n });
        // Exited workers may register again; the old keys stay in the history.
        const again = await registerWorker(env, env.workerOwner, keys(3));
        expect(again.result.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect(await worker.isReceiptKeyKnown(k.publicKey)).toBe(true);
        expect((await worker.getState()).key_count).toBe(2);
    });

    it('unknown ops are refused; an empty body is a top-up of the balance', async () => {
        const r = await env.stranger.send({ to: worker.address, value: GAS, body: beginCell().storeUint(1, 32).endCell() });
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.UnknownOp });
    });
});
