// Escrow: creation through Root, deposits, OpenJob rules, JobOpened notification, expiry,
// withdrawal of free balance, fees collection, close.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { beginCell, toNano } from '@ton/core';
import { ESCROW_STORAGE_RESERVE, Err, Op, PayoutReason } from '../wrappers/constants';
import { Escrow } from '../wrappers/Escrow';
import { escrowAddress } from '../wrappers/common';
import { decode } from '../wrappers/schema';
import { Env, INPUT, MODEL_A, NOW, PARAMS, bufToBig, createEscrow, openJobFields, setupRoot } from './helpers/fixture';

describe('Escrow', () => {
    let env: Env;
    let escrow: SandboxContract<Escrow>;
    let snap: BlockchainSnapshot;
    const DEPOSIT = toNano('5');

    beforeAll(async () => {
        env = await setupRoot();
        escrow = (await createEscrow(env, env.client, DEPOSIT)).escrow;
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    const open = (over = {}, value = toNano('0.05')) => escrow.send(env.client.getSender(), value, 'open_job', openJobFields(env, over));

    it('is deployed by Root at the deterministic address with the deposit as free balance', async () => {
        expect(escrow.address.equals(escrowAddress(env.root.address, env.client.address, env.codes.escrow))).toBe(true);
        const st = await escrow.getState();
        expect(st.initialized).toBe(true);
        expect(st.owner.equals(env.client.address)).toBe(true);
        expect(st.locked).toBe(0n);
        expect(st.last_job_id).toBe(0n);
        expect(st.free).toBeGreaterThan(DEPOSIT - toNano('0.05') - ESCROW_STORAGE_RESERVE);
        expect(st.free).toBeLessThanOrEqual(DEPOSIT - ESCROW_STORAGE_RESERVE);
        const cfg = await escrow.getConfig();
        expect(cfg.grace_period).toBe(PARAMS.grace_period);
        expect(cfg.relayer_fee_cap_bps).toBe(PARAMS.relayer_fee_cap_bps);
        expect(cfg.protocol_fee_bps).toBe(PARAMS.protocol_fee_bps);
        expect(cfg.treasury.equals(env.treasury.address)).toBe(true);
        expect(cfg.worker_code.equals(env.codes.worker)).toBe(true);
    });

    it('takes deposits from anyone: deposit op, empty body, and a second create_escrow', async () => {
        const before = (await escrow.getState()).free;
        await escrow.send(env.stranger.getSender(), toNano('1'), 'deposit');
        await env.stranger.send({ to: escrow.address, value: toNano('1') });
        const again = await createEscrow(env, env.client, toNano('1'));
        expect(again.escrow.address.equals(escrow.address)).toBe(true);
        const after = (await escrow.getState()).free;
        expect(after - before).toBeGreaterThan(toNano('2.9'));
    });

    it('opens a job: locks max_cost and notifies the relayer with everything it needs', async () => {
        const r = await open();
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const note = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.relayer.address.toString())!;
        expect(note).toBeDefined();
        const info = note.inMessage!.info;
        expect(info.type === 'internal' && !info.bounce && info.value.coins === 0n).toBe(true);
        const body = decode('job_opened', note.inMessage!.body);
        expect(body.escrow_owner.equals(env.client.address)).toBe(true);
        expect(body.job_id).toBe(1n);
        expect(body.model_id).toBe(MODEL_A);
        expect(body.max_cost).toBe(toNano('0.1'));
        expect(body.deadline).toBe(NOW + 600);
        expect(body.relayer_fee_bps).toBe(500);
        expect(body.input_commitment.equals(INPUT)).toBe(true);
        expect(body.route.relayer.equals(env.relayer.address)).toBe(true);
        expect(body.route.worker).toBeNull();
        // The relayer recomputes the escrow address from the owner to authenticate the sender.
        expect(escrowAddress(env.root.address, body.escrow_owner, env.codes.escrow).equals(escrow.address)).toBe(true);

        const st = await escrow.getState();
        expect(st.locked).toBe(toNano('0.1'));
        expect(st.last_job_id).toBe(1n);
        const job = await escrow.getJob(1n);
        expect(job.found).toBe(true);
        expect(job.max_cost).toBe(toNano('0.1'));
        expect(job.input_commitment).toBe(bufToBig(INPUT));
        expect(job.relayer!.equals(env.relayer.address)).toBe(true);
        expect(job.worker).toBeNull();
        expect((await escrow.getJob(2n)).found).toBe(false);
    });

    it('OpenJob from anyone but the owner fails with NotOwner', async () => {
        const r = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'open_job', openJobFields(env));
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotOwner });
    });

    it('job ids must strictly increase', async () => {
        await open({ job_id: 5n });
        const same = await open({ job_id: 5n });
        expect(same.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.JobIdNotIncreasing });
        const lower = await open({ job_id: 4n });
        expect(lower.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.JobIdNotIncreasing });
        const next = await open({ job_id: 6n });
        expect(next.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('relayer fee above the cap fails with RelayerFeeTooHigh (cap itself passes)', async () => {
        const high = await open({ relayer_fee_bps: PARAMS.relayer_fee_cap_bps + 1 });
        expect(high.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.RelayerFeeTooHigh });
        const cap = await open({ relayer_fee_bps: PARAMS.relayer_fee_cap_bps });
        expect(cap.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('deadline must be in the future (now fails, now + 1 passes)', async () => {
        const now = await open({ deadline: NOW });
        expect(now.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.DeadlineInPast });
        const later = await open({ deadline: NOW + 1 });
        expect(later.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('max_cost must fit the free balance and u64', async () => {
        const free = (await escrow.getState()).free;
        const over = await open({ max_cost: free + toNano('1') });
        expect(over.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.InsufficientFreeBalance });
        const huge = await open({ max_cost: 1n << 64n });
        expect(huge.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.MaxCostTooLarge });
        // Everything free can be locked (the attached value of this very message counts too).
        const all = await open({ max_cost: free }, toNano('0.05'));
        expect(all.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('expires a job only after deadline + grace, by anyone, and frees the funds', async () => {
        await open();
        const freeOpen = (await escrow.getState()).free;
        env.blockchain.now = NOW + 600 + PARAMS.grace_period;
        const early = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'expire_job', { job_id: 1n });
        expect(early.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.JobNotExpired });
        env.blockchain.now = NOW + 600 + PARAMS.grace_period + 1;
        const ok = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'expire_job', { job_id: 1n });
        expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(ok.transactions).toHaveTransaction({ from: escrow.address, to: env.stranger.address, op: Op.excesses });
        const log = ok.transactions.flatMap((t) => t.outMessages.values()).find((m) => m.info.type === 'external-out')!;
        expect(decode('log_job_expired', log.body).job_id).toBe(1n);
        const st = await escrow.getState();
        expect(st.locked).toBe(0n);
        expect(st.free).toBeGreaterThan(freeOpen + toNano('0.099'));
        expect((await escrow.getJob(1n)).found).toBe(false);
        const twice = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'expire_job', { job_id: 1n });
        expect(twice.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.JobNotFound });
    });

    it('withdraws free balance but never more, and never locked funds', async () => {
        await open({ max_cost: toNano('1') });
        const free = (await escrow.getState()).free;
        const over = await escrow.send(env.client.getSender(), toNano('0.05'), 'withdraw', { amount: free + toNano('0.05') + 1n });
        expect(over.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.InsufficientFreeBalance });
        const stranger = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'withdraw', { amount: 1n });
        expect(stranger.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotOwner });
        const ok = await escrow.send(env.client.getSender(), toNano('0.05'), 'withdraw', { amount: toNano('2') });
        expect(ok.transactions).toHaveTransaction({ from: escrow.address, to: env.client.address, op: Op.payout, value: toNano('2') });
        const st = await escrow.getState();
        expect(st.locked).toBe(toNano('1'));
        expect(await escrow.getBalance()).toBeGreaterThan(st.locked + ESCROW_STORAGE_RESERVE);
    });

    it('close needs no open jobs and the owner; it pays out everything', async () => {
        await open();
        const busy = await escrow.send(env.client.getSender(), toNano('0.05'), 'close');
        expect(busy.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.OpenJobsExist });
        env.blockchain.now = NOW + 600 + PARAMS.grace_period + 1;
        await escrow.send(env.stranger.getSender(), toNano('0.05'), 'expire_job', { job_id: 1n });
        const stranger = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'close');
        expect(stranger.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotOwner });
        const ok = await escrow.send(env.client.getSender(), toNano('0.05'), 'close');
        expect(ok.transactions).toHaveTransaction({
            from: escrow.address, to: env.client.address, op: Op.payout, value: (v) => v! > DEPOSIT - toNano('0.1'),
        });
        const payout = decode('payout', ok.transactions.find((t) => t.inMessage?.info.src?.toString() === escrow.address.toString())!.inMessage!.body);
        expect(payout.reason).toBe(PayoutReason.EscrowClosed);
        expect((await env.blockchain.getContract(escrow.address)).accountState?.type).not.toBe('active');
    });

    it('init from anyone but Root fails with NotRoot; an unknown opcode with UnknownOp', async () => {
        const r = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'escrow_init', {
            config: { worker_code: env.codes.root, grace_period: 0, relayer_fee_cap_bps: 0, protocol_fee_bps: 0, treasury: env.stranger.address },
        });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotRoot });
        const bad = await env.stranger.send({ to: escrow.address, value: toNano('0.05'), body: beginCell().storeUint(9, 32).endCell() });
        expect(bad.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.UnknownOp });
    });
});
