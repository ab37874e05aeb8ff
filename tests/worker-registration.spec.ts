// Worker registration through Root: stake and policy checks, deterministic deployment, record
// getters, refused double registration, update / re-attestation through Root.
import '@ton/test-utils';
import { BlockchainSnapshot } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { Err, Op, PayoutReason, REGISTER_GAS, TeeKind, WorkerStatus } from '../wrappers/constants';
import { workerAddress } from '../wrappers/common';
import {
    Env, EVIDENCE_HASH, MEASUREMENT, MODEL_A, MODEL_B, NOW, PARAMS, PRICE_IN, PRICE_OUT,
    bufToBig, keys, registerWorker, setupRoot, workerRecord,
} from './helpers/fixture';

describe('Worker registration', () => {
    let env: Env;
    let snap: BlockchainSnapshot;
    const k = keys(1);

    beforeAll(async () => {
        env = await setupRoot();
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    it('registers with stake = minimum at the deterministic address', async () => {
        const { root, workerOwner, codes } = env;
        const { result, worker } = await registerWorker(env, workerOwner, k, PARAMS.min_stake);
        expect(worker.address.equals(workerAddress(root.address, workerOwner.address, codes.worker))).toBe(true);
        expect(result.transactions).toHaveTransaction({ from: root.address, to: worker.address, deploy: true, success: true, op: Op.workerInit });
        expect(result.transactions).toHaveTransaction({ from: worker.address, to: workerOwner.address, op: Op.excesses });
        const st = await worker.getState();
        expect(st.status).toBe(WorkerStatus.Active);
        expect(st.stake).toBe(PARAMS.min_stake);
        expect(st.earned).toBe(0n);
        expect(st.owner.equals(workerOwner.address)).toBe(true);
        expect(st.root.equals(root.address)).toBe(true);
        // Stake is kept, the rest of REGISTER_GAS went back: balance is stake plus at most the gas.
        const balance = await worker.getBalance();
        expect(balance).toBeGreaterThanOrEqual(PARAMS.min_stake);
        expect(balance).toBeLessThan(PARAMS.min_stake + REGISTER_GAS / 10n);
        const rec = await worker.getRecord();
        expect(rec.receipt_key).toBe(bufToBig(k.publicKey));
        expect(rec.price_in).toBe(PRICE_IN);
        expect(rec.price_out).toBe(PRICE_OUT);
        expect(rec.models).toEqual([MODEL_A]);
        expect(rec.kind).toBe(TeeKind.SevSnp);
        expect(rec.measurement).toBe(bufToBig(MEASUREMENT));
        expect(rec.evidence_hash).toBe(bufToBig(EVIDENCE_HASH));
        const cfg = await worker.getConfig();
        expect(cfg.unbonding_delay).toBe(PARAMS.unbonding_delay);
        expect(cfg.reporter_reward_bps).toBe(PARAMS.reporter_reward_bps);
        expect(cfg.treasury.equals(env.treasury.address)).toBe(true);
    });

    it('rejects stake = minimum - 1 with StakeTooLow', async () => {
        const { result, worker } = await registerWorker(env, env.workerOwner, k, PARAMS.min_stake - 1n);
        expect(result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.StakeTooLow });
        expect(result.transactions).not.toHaveTransaction({ to: worker.address });
    });

    it('rejects a value below stake + REGISTER_GAS with NotEnoughValue', async () => {
        const stake = PARAMS.min_stake;
        const { result } = await registerWorker(env, env.workerOwner, k, stake, workerRecord(k), stake + REGISTER_GAS - 1n);
        expect(result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotEnoughValue });
    });

    it('rejects a TEE kind outside the policy', async () => {
        const { result } = await registerWorker(env, env.workerOwner, k, PARAMS.min_stake, workerRecord(k, {}, { kind: TeeKind.Simulated }));
        expect(result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.TeeKindNotAllowed });
        const big = await registerWorker(env, env.workerOwner, k, PARAMS.min_stake, workerRecord(k, {}, { kind: 200 }));
        expect(big.result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.TeeKindNotAllowed });
    });

    it('rejects a measurement not on the allow-list', async () => {
        const { result } = await registerWorker(env, env.workerOwner, k, PARAMS.min_stake, workerRecord(k, {}, { measurement: Buffer.alloc(32, 1) }));
        expect(result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.MeasurementNotAllowed });
    });

    it('rejects an unknown model', async () => {
        const { result } = await registerWorker(env, env.workerOwner, k, PARAMS.min_stake, workerRecord(k, { models: [MODEL_A, 99] }));
        expect(result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.UnknownModel });
    });

    it('rejects an attestation expiring now (boundary) and accepts one expiring a second later', async () => {
        const expired = await registerWorker(env, env.workerOwner, k, PARAMS.min_stake, workerRecord(k, {}, { expires_at: NOW }));
        expect(expired.result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.AttestationExpired });
        const ok = await registerWorker(env, env.workerOwner, k, PARAMS.min_stake, workerRecord(k, {}, { expires_at: NOW + 1 }));
        expect(ok.result.transactions).toHaveTransaction({ to: ok.worker.address, success: true });
    });

    it('refunds a second registration while active and keeps the first', async () => {
        const { worker } = await registerWorker(env, env.workerOwner, k);
        const again = await registerWorker(env, env.workerOwner, keys(2), PARAMS.min_stake * 2n);
        expect(again.result.transactions).toHaveTransaction({
            from: worker.address, to: env.workerOwner.address, op: Op.payout,
            value: (v) => v! > PARAMS.min_stake * 2n - toNano('0.05'),
        });
        const st = await worker.getState();
        expect(st.stake).toBe(PARAMS.min_stake);
        expect((await worker.getRecord()).receipt_key).toBe(bufToBig(k.publicKey));
        const body = again.result.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.workerOwner.address.toString() && t.inMessage?.body.beginParse().preloadUint(32) === Op.payout)!;
        const s = body.inMessage!.body.beginParse();
        s.skip(32 + 64);
        expect(s.loadUint(8)).toBe(PayoutReason.RegistrationRefund);
    });

    it('updates the record through Root (re-attestation, new prices and models)', async () => {
        const { worker } = await registerWorker(env, env.workerOwner, k);
        const k2 = keys(3);
        const r = await env.root.send(env.workerOwner.getSender(), toNano('0.05'), 'update_worker', {
            record: workerRecord(k2, { price_in: 5n, models: [MODEL_A, MODEL_B] }, { kind: TeeKind.Tdx, evidence_hash: Buffer.alloc(32, 9) }),
        });
        expect(r.transactions).toHaveTransaction({ from: env.root.address, to: worker.address, op: Op.workerUpdate, success: true });
        const rec = await worker.getRecord();
        expect(rec.receipt_key).toBe(bufToBig(k2.publicKey));
        expect(rec.price_in).toBe(5n);
        expect(rec.models).toEqual([MODEL_A, MODEL_B]);
        expect(rec.kind).toBe(TeeKind.Tdx);
        expect((await worker.getState()).stake).toBe(PARAMS.min_stake);
    });

    it('rejects an update that violates the policy', async () => {
        await registerWorker(env, env.workerOwner, k);
        const r = await env.root.send(env.workerOwner.getSender(), toNano('0.05'), 'update_worker', {
            record: workerRecord(k, {}, { measurement: Buffer.alloc(32, 2) }),
        });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.MeasurementNotAllowed });
    });

    it('an update for an unregistered worker bounces back to Root', async () => {
        const r = await env.root.send(env.stranger.getSender(), toNano('0.05'), 'update_worker', { record: workerRecord(k) });
        const addr = await env.root.getWorkerAddress(env.stranger.address);
        expect(r.transactions).toHaveTransaction({ from: env.root.address, to: addr, success: false });
    });

    it('init and update messages not from Root fail with NotRoot', async () => {
        const { worker } = await registerWorker(env, env.workerOwner, k);
        const init = await worker.send(env.stranger.getSender(), toNano('11'), 'worker_init', {
            stake: toNano('10'),
            record: workerRecord(keys(9)),
            config: { unbonding_delay: 0, reporter_reward_bps: 10000, treasury: env.stranger.address },
        });
        expect(init.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotRoot });
        const upd = await worker.send(env.workerOwner.getSender(), toNano('0.05'), 'worker_update', { record: workerRecord(keys(9)) });
        expect(upd.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotRoot });
    });
});
