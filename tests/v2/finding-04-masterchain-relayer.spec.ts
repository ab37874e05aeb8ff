// Finding 4: "a relayer address on the masterchain makes the relayer-fee message eat the worker's
// allowance, so the worker's payment bounces". In v2 every address the Escrow pays (relayer,
// worker owner) and the treasury must be on the basechain; the fees a settlement needs are
// computed for basechain messages and paid from the submitter's value, never from the share.
import '@ton/test-utils';
import { Address } from '@ton/core';
import { Err, Op } from '../../wrappers/v2/constants';
import { GAS, PARAMS, RELAYER_BPS, keys, openChannel, registerWorker, valueOf } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 4: masterchain payees are refused', () => {
    it('open_channel with a masterchain relayer or worker owner: NotBasechain', async () => {
        const { env, escrow } = await baseline();
        const masterRelayer = await env.blockchain.treasury('master-relayer', { workchain: -1 });
        const r = await openChannel(env, escrow, { route: { relayer: masterRelayer.address, relayer_fee_bps: RELAYER_BPS } });
        expect(r.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotBasechain });
        const w = await openChannel(env, escrow, { worker_owner: new Address(-1, env.workerOwner.address.hash) });
        expect(w.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotBasechain });
    });

    it('a masterchain wallet cannot register a Worker; a masterchain treasury cannot be queued', async () => {
        const { env } = await baseline();
        const master = await env.blockchain.treasury('master-worker', { workchain: -1 });
        const r = await registerWorker(env, master, keys(5));
        expect(r.result.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotBasechain });
        const t = await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', {
            params: { ...PARAMS, treasury: new Address(-1, env.treasury.address.hash) },
        });
        expect(t.transactions).toHaveTransaction({ to: env.root.address, success: false, exitCode: Err.NotBasechain });
    });

    it('with a basechain relayer the share and the relayer fee land exactly', async () => {
        const { env, worker, escrow, session } = await baseline();
        const s = session();
        s.request();
        const fee = (await worker.getFees()).settle;
        // A final settlement: relayer fees accrue on the channel and are paid when it ends.
        const r = await worker.send(env.workerOwner.getSender(), fee, 'submit_settlement', s.finalSettlement());
        expect(valueOf(r, escrow.address, env.relayer.address, Op.relayerFee)).toBe((s.cumulative * BigInt(RELAYER_BPS)) / 10000n);
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.workerOwner.address, op: Op.payout, success: true });
    });
});
