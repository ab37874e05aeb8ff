// Finding 3: "a worker escapes slashing by rotating its receipt key". In v2 the Worker keeps every
// receipt key it ever registered; equivocation is checked against any of them, also while
// unbonding.
import '@ton/test-utils';
import { Err, WorkerStatus } from '../../wrappers/v2/constants';
import { GAS, ZERO, channelRef, keys, receiptBody, signReceipt, workerRecord } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 3: key rotation does not escape slashing', () => {
    it('a receipt signed with the old key and one with the new key, after rotating while unbonding, slash', async () => {
        const { env, k, worker, escrow, channelId } = await baseline();
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const a = signReceipt(receiptBody(ref, worker.address, 1, ZERO), k);
        await worker.send(env.workerOwner.getSender(), GAS, 'unbond');
        const k2 = keys(2);
        const rot = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(k2) });
        expect(rot.transactions).toHaveTransaction({ from: env.root.address, to: worker.address, success: true });
        expect((await worker.getRecord()).receipt_key).toBe(BigInt('0x' + k2.publicKey.toString('hex')));
        const b = signReceipt(receiptBody(ref, worker.address, 1, ZERO, { tokens_out: 201 }), k2);
        const r = await worker.send(env.stranger.getSender(), GAS, 'report_equivocation', {
            key_a: k.publicKey, receipt_a: a, key_b: k2.publicKey, receipt_b: b,
        });
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect((await worker.getState()).status).toBe(WorkerStatus.Slashed);
    });

    it('two receipts with the retired key alone still slash', async () => {
        const { env, k, worker, escrow, channelId } = await baseline();
        await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(keys(2)) });
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const r = await worker.send(env.stranger.getSender(), GAS, 'report_equivocation', {
            key_a: k.publicKey, receipt_a: signReceipt(receiptBody(ref, worker.address, 4, ZERO), k),
            key_b: k.publicKey, receipt_b: signReceipt(receiptBody(ref, worker.address, 4, ZERO, { tokens_in: 1 }), k),
        });
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: true });
        expect((await worker.getState()).stake).toBe(0n);
    });

    it('a key the worker never registered is refused with UnknownReceiptKey', async () => {
        const { env, worker, escrow, channelId } = await baseline();
        const x = keys(9);
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const r = await worker.send(env.stranger.getSender(), GAS, 'report_equivocation', {
            key_a: x.publicKey, receipt_a: signReceipt(receiptBody(ref, worker.address, 1, ZERO), x),
            key_b: x.publicKey, receipt_b: signReceipt(receiptBody(ref, worker.address, 1, ZERO, { tokens_in: 1 }), x),
        });
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.UnknownReceiptKey });
    });
});
