// Root: deployment, getters, every owner operation (and its rejection for others), two-step
// ownership transfer.
import '@ton/test-utils';
import { Blockchain, BlockchainSnapshot } from '@ton/sandbox';
import { beginCell, toNano } from '@ton/core';
import { Err } from '../wrappers/constants';
import { Env, MEASUREMENT, MODEL_A, MODEL_HASH_A, PARAMS, setupRoot, bufToBig, loadCode } from './helpers/fixture';
import { workerAddress, escrowAddress } from '../wrappers/common';

describe('Root', () => {
    let env: Env;
    let snap: BlockchainSnapshot;

    beforeAll(async () => {
        env = await setupRoot();
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    const ownerOps = () => [
        ['set_params', { params: { ...PARAMS, min_stake: 1n, treasury: env.stranger.address } }],
        ['set_allowed_kinds', { allowed_kinds: 1 }],
        ['add_measurement', { measurement: Buffer.alloc(32, 9) }],
        ['remove_measurement', { measurement: MEASUREMENT }],
        ['set_model', { model_id: 7, model_hash: Buffer.alloc(32, 7) }],
        ['remove_model', { model_id: MODEL_A }],
        ['set_codes', { worker_code: beginCell().endCell(), escrow_code: beginCell().endCell() }],
        ['transfer_ownership', { new_owner: env.stranger.address }],
    ] as const;

    it('getters return the deployed configuration', async () => {
        const { root, rootOwner, treasury, codes } = env;
        expect((await root.getOwner()).owner.equals(rootOwner.address)).toBe(true);
        expect((await root.getOwner()).pending_owner).toBeNull();
        const p = await root.getParams();
        expect(p.min_stake).toBe(PARAMS.min_stake);
        expect(p.unbonding_delay).toBe(PARAMS.unbonding_delay);
        expect(p.grace_period).toBe(PARAMS.grace_period);
        expect(p.relayer_fee_cap_bps).toBe(PARAMS.relayer_fee_cap_bps);
        expect(p.protocol_fee_bps).toBe(PARAMS.protocol_fee_bps);
        expect(p.reporter_reward_bps).toBe(PARAMS.reporter_reward_bps);
        expect(p.treasury.equals(treasury.address)).toBe(true);
        const policy = await root.getPolicy();
        expect(policy.allowed_kinds).toBe(6);
        expect(policy.measurements).toEqual([bufToBig(MEASUREMENT)]);
        expect(await root.getIsMeasurementAllowed(MEASUREMENT)).toBe(true);
        expect(await root.getIsMeasurementAllowed(Buffer.alloc(32, 1))).toBe(false);
        expect(await root.getModel(MODEL_A)).toEqual({ found: true, model_hash: bufToBig(MODEL_HASH_A) });
        expect(await root.getModel(99)).toEqual({ found: false, model_hash: 0n });
        expect([...(await root.getModels()).keys()]).toEqual([1, 2]);
        const c = await root.getCodes();
        expect(c.worker_code.equals(codes.worker)).toBe(true);
        expect(c.escrow_code.equals(codes.escrow)).toBe(true);
        const someone = env.client.address;
        expect((await root.getWorkerAddress(someone)).equals(workerAddress(root.address, someone, codes.worker))).toBe(true);
        expect((await root.getEscrowAddress(someone)).equals(escrowAddress(root.address, someone, codes.escrow))).toBe(true);
    });

    it('owner operations succeed for the owner', async () => {
        const { root, rootOwner, stranger } = env;
        for (const [op, fields] of ownerOps()) {
            const r = await root.send(rootOwner.getSender(), toNano('0.05'), op, fields);
            expect(r.transactions).toHaveTransaction({ to: root.address, success: true });
        }
        expect((await root.getParams()).min_stake).toBe(1n);
        expect((await root.getParams()).treasury.equals(stranger.address)).toBe(true);
        expect((await root.getPolicy()).allowed_kinds).toBe(1);
        expect(await root.getIsMeasurementAllowed(Buffer.alloc(32, 9))).toBe(true);
        expect(await root.getIsMeasurementAllowed(MEASUREMENT)).toBe(false);
        expect((await root.getModel(7)).found).toBe(true);
        expect((await root.getModel(MODEL_A)).found).toBe(false);
        expect((await root.getCodes()).worker_code.equals(beginCell().endCell())).toBe(true);
        expect((await root.getOwner()).pending_owner!.equals(stranger.address)).toBe(true);
    });

    it('owner operations from anyone else fail with NotOwner', async () => {
        const { root, stranger } = env;
        for (const [op, fields] of ownerOps()) {
            const r = await root.send(stranger.getSender(), toNano('0.05'), op, fields);
            expect(r.transactions).toHaveTransaction({ to: root.address, success: false, exitCode: Err.NotOwner });
        }
        expect((await root.getParams()).min_stake).toBe(PARAMS.min_stake);
    });

    it('set_params rejects bps out of range', async () => {
        const { root, rootOwner, treasury } = env;
        const bad = [
            { relayer_fee_cap_bps: 9901, protocol_fee_bps: 100 },
            { reporter_reward_bps: 10001 },
        ];
        for (const over of bad) {
            const r = await root.send(rootOwner.getSender(), toNano('0.05'), 'set_params', {
                params: { ...PARAMS, treasury: treasury.address, ...over },
            });
            expect(r.transactions).toHaveTransaction({ to: root.address, success: false, exitCode: Err.BadParams });
        }
        const edge = await root.send(rootOwner.getSender(), toNano('0.05'), 'set_params', {
            params: { ...PARAMS, treasury: treasury.address, relayer_fee_cap_bps: 9900, protocol_fee_bps: 100 },
        });
        expect(edge.transactions).toHaveTransaction({ to: root.address, success: true });
    });

    it('ownership moves in two steps and only to the pending owner', async () => {
        const { root, rootOwner, stranger, client } = env;
        await root.send(rootOwner.getSender(), toNano('0.05'), 'transfer_ownership', { new_owner: stranger.address });
        const wrong = await root.send(client.getSender(), toNano('0.05'), 'accept_ownership');
        expect(wrong.transactions).toHaveTransaction({ to: root.address, success: false, exitCode: Err.NotPendingOwner });
        expect((await root.getOwner()).owner.equals(rootOwner.address)).toBe(true);
        const ok = await root.send(stranger.getSender(), toNano('0.05'), 'accept_ownership');
        expect(ok.transactions).toHaveTransaction({ to: root.address, success: true });
        const o = await root.getOwner();
        expect(o.owner.equals(stranger.address)).toBe(true);
        expect(o.pending_owner).toBeNull();
        const old = await root.send(rootOwner.getSender(), toNano('0.05'), 'set_allowed_kinds', { allowed_kinds: 0 });
        expect(old.transactions).toHaveTransaction({ to: root.address, success: false, exitCode: Err.NotOwner });
    });

    it('accept_ownership without a transfer in progress fails', async () => {
        const r = await env.root.send(env.rootOwner.getSender(), toNano('0.05'), 'accept_ownership');
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotPendingOwner });
    });

    it('an unknown opcode fails with UnknownOp; an empty body is a top-up', async () => {
        const { root, stranger } = env;
        const bad = await stranger.send({ to: root.address, value: toNano('0.05'), body: beginCell().storeUint(0x1234, 32).endCell() });
        expect(bad.transactions).toHaveTransaction({ to: root.address, success: false, exitCode: Err.UnknownOp });
        const top = await stranger.send({ to: root.address, value: toNano('0.05') });
        expect(top.transactions).toHaveTransaction({ to: root.address, success: true });
    });
});
