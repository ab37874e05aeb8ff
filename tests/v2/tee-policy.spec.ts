// Issue 16, on-chain part: Root v2 keeps the TEE policy a verifier of SEV-SNP and TDX evidence
// applies beyond the measurement — the SEV-SNP minimum TCB per component (boot_loader, tee, snp,
// microcode, and fmc for Turin-era reports) and the TDX policy (required TD attributes as mask and
// value, allow-lists for MRCONFIGID, MROWNER and RTMR3) — readable with get_tee_policy and changed
// only through the governance queue like every other policy change.
import '@ton/test-utils';
import { BlockchainSnapshot } from '@ton/sandbox';
import { Err } from '../../wrappers/v2/constants';
import { encode } from '../../wrappers/v2/schema';
import { Env, GAS, MODEL_A, NOW, NO_TEE_POLICY, PARAMS, TEE_POLICY, logs, setupRoot } from './helpers/fixture';

describe('Root v2 TEE policy (issue 16)', () => {
    let env: Env;
    let snap: BlockchainSnapshot;

    beforeAll(async () => {
        env = await setupRoot();
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    it('a new Root requires nothing beyond the measurement until governance says otherwise', async () => {
        expect(await env.root.getTeePolicy()).toEqual(NO_TEE_POLICY);
    });

    it('set_tee_policy is queued with its event, waits the delay, then anyone applies it and the getter shows it', async () => {
        const q = await env.root.send(env.rootOwner.getSender(), GAS, 'set_tee_policy', { tee: TEE_POLICY });
        expect(q.transactions).toHaveTransaction({ to: env.root.address, success: true });
        const body = encode('set_tee_policy', { query_id: 0n, tee: TEE_POLICY });
        expect(logs(q, 'log_change_queued')).toEqual([{ change_id: 0, ready_at: NOW + PARAMS.governance_delay, body_hash: body.hash() }]);
        const pending = await env.root.getPendingChange(0);
        expect(pending.found && pending.body!.equals(body)).toBe(true);
        // Queued is not applied.
        expect(await env.root.getTeePolicy()).toEqual(NO_TEE_POLICY);

        env.blockchain.now = NOW + PARAMS.governance_delay;
        const a = await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect(a.transactions).toHaveTransaction({ to: env.root.address, success: true });
        expect(logs(a, 'log_change_applied')).toEqual([{ change_id: 0 }]);
        expect(await env.root.getTeePolicy()).toEqual(TEE_POLICY);
        // The rest of the policy is untouched.
        expect((await env.root.getModel(MODEL_A)).found).toBe(true);

        // A later change replaces the whole TEE policy (here: back to requiring nothing).
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_tee_policy', { tee: NO_TEE_POLICY });
        env.blockchain.now += PARAMS.governance_delay;
        await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 1 });
        expect(await env.root.getTeePolicy()).toEqual(NO_TEE_POLICY);
    });

    it('the owner may cancel a queued TEE policy: it never applies', async () => {
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_tee_policy', { tee: TEE_POLICY });
        const c = await env.root.send(env.rootOwner.getSender(), GAS, 'cancel_change', { change_id: 0 });
        expect(logs(c, 'log_change_cancelled')).toEqual([{ change_id: 0 }]);
        env.blockchain.now = NOW + PARAMS.governance_delay;
        const a = await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        expect(a.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.ChangeNotFound });
        expect(await env.root.getTeePolicy()).toEqual(NO_TEE_POLICY);
    });
});
