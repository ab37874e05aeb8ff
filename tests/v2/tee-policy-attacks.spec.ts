// Attacks on Root v2's TEE policy (issue 16): only the owner can queue a change, nobody can apply it
// before the governance delay, and a TDX rule that could never match is refused when queued. Each
// refusal with its exact exit code, and the policy in force unchanged.
import '@ton/test-utils';
import { BlockchainSnapshot } from '@ton/sandbox';
import { Err } from '../../wrappers/v2/constants';
import { Env, GAS, NOW, NO_TEE_POLICY, PARAMS, TEE_POLICY, setupRoot } from './helpers/fixture';

describe('Root v2 TEE policy: attacks', () => {
    let env: Env;
    let snap: BlockchainSnapshot;

    beforeAll(async () => {
        env = await setupRoot();
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    it('a non-owner cannot queue a TEE policy (lowering the minimum TCB): NotOwner, nothing queued', async () => {
        const weak = { ...TEE_POLICY, snp_min_tcb: { boot_loader: 0, tee: 0, snp: 0, microcode: 0, fmc: 0 } };
        const r = await env.root.send(env.stranger.getSender(), GAS, 'set_tee_policy', { tee: weak });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotOwner });
        expect(await env.root.getNextChangeId()).toBe(0);
        expect(await env.root.getTeePolicy()).toEqual(NO_TEE_POLICY);
    });

    it('an apply before the delay is refused (ChangeNotReady), even one second early, by the owner too', async () => {
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_tee_policy', { tee: TEE_POLICY });
        for (const [who, at] of [[env.stranger, NOW], [env.rootOwner, NOW + PARAMS.governance_delay - 1]] as const) {
            env.blockchain.now = at;
            const r = await env.root.send(who.getSender(), GAS, 'apply_change', { change_id: 0 });
            expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.ChangeNotReady });
            expect(await env.root.getTeePolicy()).toEqual(NO_TEE_POLICY);
        }
        expect((await env.root.getPendingChange(0)).found).toBe(true);
    });

    it('a TDX attributes value with a bit outside its mask is refused when queued: BadParams', async () => {
        const never = { ...TEE_POLICY, tdx: { ...TEE_POLICY.tdx, td_attributes_value: (1n << 28n) | (1n << 5n) } };
        const r = await env.root.send(env.rootOwner.getSender(), GAS, 'set_tee_policy', { tee: never });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.BadParams });
        expect(await env.root.getNextChangeId()).toBe(0);
    });

    it('a non-owner cannot cancel the owner\'s queued policy: NotOwner', async () => {
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_tee_policy', { tee: TEE_POLICY });
        const r = await env.root.send(env.stranger.getSender(), GAS, 'cancel_change', { change_id: 0 });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotOwner });
        expect((await env.root.getPendingChange(0)).found).toBe(true);
    });
});
