// Finding 11: "after set_codes, existing Workers can never update their record (so never renew
// their attestation); Root owner changes take effect at once, silently". In v2 Root keeps every
// worker code it issued (by hash) and authenticates an update by the code the Worker reports, and
// every code or ownership change is queued with an event, visible, and applies after the delay.
import '@ton/test-utils';
import { beginCell } from '@ton/core';
import { Err } from '../../wrappers/v2/constants';
import { GAS, NOW, PARAMS, logs, workerRecord } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 11: updates survive a code change; governance is timelocked and visible', () => {
    it('a Worker deployed with the old code renews its attestation after the code change', async () => {
        const { env, k, worker } = await baseline();
        const newWorkerCode = beginCell().storeUint(0xc0de2, 32).endCell();
        const q = await env.root.send(env.rootOwner.getSender(), GAS, 'set_codes', { worker_code: newWorkerCode, escrow_code: env.codes.escrow });
        expect(logs(q, 'log_change_queued')).toHaveLength(1);
        // Not applied yet: the code is unchanged until the delay has passed.
        expect((await env.root.getCodes()).worker_code.equals(env.codes.worker)).toBe(true);
        env.blockchain.now = NOW + PARAMS.governance_delay;
        await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect((await env.root.getCodes()).worker_code.equals(newWorkerCode)).toBe(true);
        expect(await env.root.isWorkerCodeKnown(env.codes.worker.hash())).toBe(true);

        const renewed = NOW + 60 * 24 * 3600;
        const r = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(k, {}, { expires_at: renewed }) });
        expect(r.transactions).toHaveTransaction({ from: env.root.address, to: worker.address, success: true });
        expect((await worker.getRecord()).expires_at).toBe(renewed);
    });

    it('a Worker cannot claim a code Root never issued', async () => {
        const { env, k } = await baseline();
        const r = await env.root.send(env.workerOwner.getSender(), GAS, 'update_worker', {
            owner: env.workerOwner.address, worker_code_hash: Buffer.alloc(32, 0xab), record: workerRecord(k),
        });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotGenuineWorker });
    });

    it('an owner change is queued, visible and delayed, then two-step', async () => {
        const { env } = await baseline();
        const q = await env.root.send(env.rootOwner.getSender(), GAS, 'transfer_ownership', { new_owner: env.stranger.address });
        const [log] = logs(q, 'log_change_queued');
        expect(log.ready_at).toBe(NOW + PARAMS.governance_delay);
        expect((await env.root.getPendingChange(log.change_id)).found).toBe(true);
        const early = await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: log.change_id });
        expect(early.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.ChangeNotReady });
        expect((await env.root.getOwner()).owner.equals(env.rootOwner.address)).toBe(true);
        env.blockchain.now = NOW + PARAMS.governance_delay;
        await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: log.change_id });
        expect((await env.root.getOwner()).owner.equals(env.rootOwner.address)).toBe(true);
        await env.root.send(env.stranger.getSender(), GAS, 'accept_ownership');
        expect((await env.root.getOwner()).owner.equals(env.stranger.address)).toBe(true);
    });
});
