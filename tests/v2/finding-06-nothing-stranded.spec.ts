// Finding 6: "TON stranded on contracts: settlement leftovers and extra value on owner operations
// stay on the Worker; Root keeps a bounced update value". In v2 every path returns what its value
// did not spend, a refused settlement restores nothing because it changed nothing, and record
// updates travel through the Worker so Root never holds a user's value.
import '@ton/test-utils';
import { toNano } from '@ton/core';
import { Op } from '../../wrappers/v2/constants';
import { GAS, NOW, keys, PARAMS, storageFee, valueOf, workerRecord } from './helpers/fixture';
import { baseline } from './helpers/baseline';

const balance = async (env: any, a: any) => (await env.blockchain.getContract(a)).balance as bigint;

describe('Finding 6: nothing stranded', () => {
    it('a settlement leaves the Worker balance unchanged to the nanoTON; the unspent value reaches the owner', async () => {
        const { env, worker, escrow, session } = await baseline();
        const s = session();
        s.request();
        const w0 = await worker.getBalance();
        const r = await worker.send(env.relayer.getSender(), toNano('1'), 'submit_settlement', s.settlement());
        expect(await worker.getBalance()).toBe(w0 - storageFee(r, worker.address));
        const paid = valueOf(r, escrow.address, env.workerOwner.address, Op.payout);
        // share + (1 TON - every fee of the trace): most of the attached TON comes back.
        expect(paid).toBeGreaterThan(toNano('0.98'));
    });

    it('a refused settlement changes nothing on the Escrow and sends its value to the worker owner', async () => {
        const { env, worker, escrow, channelId, session } = await baseline();
        const s = session();
        s.request();
        await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.settlement());
        const ch0 = await escrow.getChannel(channelId);
        const st0 = await escrow.getState();
        const w0 = await worker.getBalance();
        const r = await worker.send(env.workerOwner.getSender(), toNano('1'), 'submit_settlement', s.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false });
        expect(JSON.stringify(await escrow.getChannel(channelId), (_, v) => (typeof v === 'bigint' ? v.toString() : v))).toBe(
            JSON.stringify(ch0, (_, v) => (typeof v === 'bigint' ? v.toString() : v)),
        );
        const st = await escrow.getState();
        expect(st.locked).toBe(st0.locked);
        expect(st.fees_due).toBe(st0.fees_due);
        expect(await worker.getBalance()).toBe(w0 - storageFee(r, worker.address));
        expect(valueOf(r, worker.address, env.workerOwner.address, Op.payout)).toBeGreaterThan(toNano('0.98'));
    });

    it('owner operations keep exactly what they move and return the rest', async () => {
        const { env, worker } = await baseline();
        const w0 = await worker.getBalance();
        const t = await worker.send(env.workerOwner.getSender(), toNano('5'), 'top_up_stake', { amount: toNano('1') });
        expect(await worker.getBalance()).toBe(w0 + toNano('1') - storageFee(t, worker.address));
        const w1 = await worker.getBalance();
        const u = await worker.send(env.workerOwner.getSender(), toNano('3'), 'unbond');
        expect(u.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.excesses });
        expect(await worker.getBalance()).toBe(w1 - storageFee(u, worker.address));
        const w2 = await worker.getBalance();
        const up = await worker.send(env.workerOwner.getSender(), toNano('3'), 'update_record', { record: workerRecord(keys(1)) });
        expect(up.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.excesses });
        expect(await worker.getBalance()).toBe(w2 - storageFee(up, worker.address));
    });

    it('Root keeps nothing of a refused update: it bounces to the Worker, which pays the owner', async () => {
        const { env, worker } = await baseline();
        const root0 = await balance(env, env.root.address);
        const w0 = await worker.getBalance();
        const r = await worker.send(env.workerOwner.getSender(), toNano('2'), 'update_record', {
            record: workerRecord(keys(1), {}, { expires_at: NOW }),
        });
        expect(r.transactions).toHaveTransaction({ to: env.root.address, success: false });
        expect(await balance(env, env.root.address)).toBe(root0 - storageFee(r, env.root.address));
        expect(await worker.getBalance()).toBe(w0 - storageFee(r, worker.address));
        expect(valueOf(r, worker.address, env.workerOwner.address, Op.payout)).toBeGreaterThan(toNano('1.98'));
    });

    it('Root returns the excess of governance operations; closers and fee collectors get theirs back', async () => {
        const { env, escrow, channelId } = await baseline();
        const root0 = await balance(env, env.root.address);
        const q = await env.root.send(env.rootOwner.getSender(), toNano('5'), 'add_measurement', { measurement: Buffer.alloc(32, 9) });
        expect(valueOf(q, env.root.address, env.rootOwner.address, Op.excesses)).toBeGreaterThan(toNano('4.98'));
        expect(await balance(env, env.root.address)).toBeLessThanOrEqual(root0 + toNano('0.01'));
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        const c = await escrow.send(env.stranger.getSender(), toNano('3'), 'close_channel', { channel_id: channelId });
        expect(valueOf(c, escrow.address, env.stranger.address, Op.excesses)).toBeGreaterThan(toNano('2.98'));
    });
});
