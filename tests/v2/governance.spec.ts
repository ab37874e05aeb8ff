// Root v2 governance: every parameter, policy, model, code and ownership change is queued with an
// event and a getter, and anyone applies it after the delay stored in Root; the owner may cancel;
// ownership stays two-step.
import '@ton/test-utils';
import { BlockchainSnapshot } from '@ton/sandbox';
import { beginCell, toNano } from '@ton/core';
import { Err, Op } from '../../wrappers/v2/constants';
import { encode } from '../../wrappers/v2/schema';
import { Env, GAS, MEASUREMENT, MODEL_A, NOW, PARAMS, createEscrow, logs, setupRoot } from './helpers/fixture';

describe('Root v2 governance', () => {
    let env: Env;
    let snap: BlockchainSnapshot;

    beforeAll(async () => {
        env = await setupRoot();
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    const newParams = () => ({ ...PARAMS, protocol_fee_bps: 250, treasury: env.treasury.address });

    it('queues a change with an event and a getter; nothing changes before the delay', async () => {
        const r = await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: newParams() });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: true });
        expect(r.transactions).toHaveTransaction({ from: env.root.address, to: env.rootOwner.address, op: Op.excesses });
        const body = encode('set_params', { query_id: 0n, params: newParams() });
        expect(logs(r, 'log_change_queued')).toEqual([{ change_id: 0, ready_at: NOW + PARAMS.governance_delay, body_hash: body.hash() }]);
        const p = await env.root.getPendingChange(0);
        expect(p.found).toBe(true);
        expect(p.ready_at).toBe(NOW + PARAMS.governance_delay);
        expect(p.body!.equals(body)).toBe(true);
        expect(await env.root.getNextChangeId()).toBe(1);
        expect((await env.root.getParams()).protocol_fee_bps).toBe(PARAMS.protocol_fee_bps);
        env.blockchain.now = NOW + PARAMS.governance_delay - 1;
        const early = await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect(early.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.ChangeNotReady });
    });

    it('anyone applies it after the delay, once', async () => {
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: newParams() });
        env.blockchain.now = NOW + PARAMS.governance_delay;
        const fee = (await env.root.getFees()).governance;
        const low = await env.root.send(env.stranger.getSender(), fee - 1n, 'apply_change', { change_id: 0 });
        expect(low.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotEnoughValue });
        const r = await env.root.send(env.stranger.getSender(), fee, 'apply_change', { change_id: 0 });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: true });
        expect(logs(r, 'log_change_applied')).toEqual([{ change_id: 0 }]);
        expect((await env.root.getParams()).protocol_fee_bps).toBe(250);
        expect((await env.root.getPendingChange(0)).found).toBe(false);
        const again = await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect(again.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.ChangeNotFound });
    });

    it('the delay itself is a parameter: a shorter delay applies only to changes queued after it', async () => {
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: { ...newParams(), governance_delay: 60 } });
        env.blockchain.now = NOW + PARAMS.governance_delay;
        await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        await env.root.send(env.rootOwner.getSender(), GAS, 'remove_model', { model_id: MODEL_A });
        expect((await env.root.getPendingChange(1)).ready_at).toBe(NOW + PARAMS.governance_delay + 60);
    });

    it('owner only; the owner may cancel; bad params are refused when queued', async () => {
        const r = await env.root.send(env.stranger.getSender(), GAS, 'set_params', { params: newParams() });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotOwner });
        const bad = await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: { ...newParams(), relayer_fee_cap_bps: 9950 } });
        expect(bad.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.BadParams });
        const zero = await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: { ...newParams(), max_channel_lifetime: 0 } });
        expect(zero.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.BadParams });
        await env.root.send(env.rootOwner.getSender(), GAS, 'add_measurement', { measurement: Buffer.alloc(32, 9) });
        const c1 = await env.root.send(env.stranger.getSender(), GAS, 'cancel_change', { change_id: 0 });
        expect(c1.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotOwner });
        const c2 = await env.root.send(env.rootOwner.getSender(), GAS, 'cancel_change', { change_id: 0 });
        expect(logs(c2, 'log_change_cancelled')).toEqual([{ change_id: 0 }]);
        env.blockchain.now = NOW + PARAMS.governance_delay;
        const a = await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect(a.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.ChangeNotFound });
    });

    it('policy and model changes apply through the queue', async () => {
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_model', { model_id: 7, model_hash: Buffer.alloc(32, 7) });
        await env.root.send(env.rootOwner.getSender(), GAS, 'remove_measurement', { measurement: MEASUREMENT });
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_allowed_kinds', { allowed_kinds: 1 });
        expect((await env.root.getModel(7)).found).toBe(false);
        env.blockchain.now = NOW + PARAMS.governance_delay;
        for (const id of [0, 1, 2]) await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: id });
        expect((await env.root.getModel(7)).found).toBe(true);
    });

    it('ownership: queued, then two-step; the new owner governs', async () => {
        await env.root.send(env.rootOwner.getSender(), GAS, 'transfer_ownership', { new_owner: env.stranger.address });
        expect((await env.root.getOwner()).pending_owner).toBeNull();
        const early = await env.root.send(env.stranger.getSender(), GAS, 'accept_ownership');
        expect(early.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotPendingOwner });
        env.blockchain.now = NOW + PARAMS.governance_delay;
        await env.root.send(env.client.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect((await env.root.getOwner()).pending_owner!.equals(env.stranger.address)).toBe(true);
        const wrong = await env.root.send(env.client.getSender(), GAS, 'accept_ownership');
        expect(wrong.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotPendingOwner });
        const fee = (await env.root.getFees()).governance;
        const low = await env.root.send(env.stranger.getSender(), fee - 1n, 'accept_ownership');
        expect(low.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotEnoughValue });
        await env.root.send(env.stranger.getSender(), fee, 'accept_ownership');
        const o = await env.root.getOwner();
        expect(o.owner.equals(env.stranger.address)).toBe(true);
        expect(o.pending_owner).toBeNull();
        const old = await env.root.send(env.rootOwner.getSender(), GAS, 'add_measurement', { measurement: Buffer.alloc(32, 9) });
        expect(old.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotOwner });
    });

    it('a queued body that is not a governance change cannot exist; unknown ops are refused', async () => {
        const r = await env.stranger.send({ to: env.root.address, value: GAS, body: beginCell().storeUint(0xc0c02199, 32).endCell() });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.UnknownOp });
    });

    it('create_escrow: fee-checked; a later one refreshes an escrow to the applied parameters', async () => {
        const fee = (await env.root.getFees()).create_escrow;
        const low = await env.root.send(env.client.getSender(), fee - 1n, 'create_escrow');
        expect(low.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotEnoughValue });
        const { escrow } = await createEscrow(env, env.client, toNano('1'));
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: newParams() });
        env.blockchain.now = NOW + PARAMS.governance_delay;
        await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect((await escrow.getConfig()).protocol_fee_bps).toBe(PARAMS.protocol_fee_bps);
        await createEscrow(env, env.client, toNano('0.1'));
        expect((await escrow.getConfig()).protocol_fee_bps).toBe(250);
    });
});
