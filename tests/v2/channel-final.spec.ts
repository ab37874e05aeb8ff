// The client's final voucher (cooperative close): a settlement carrying a voucher with `final` set
// pays the worker, releases the rest of the channel to the client's free balance and deletes the
// channel in the same Escrow transaction, so a channel's whole life is open + one settlement. The
// attacks: a final voucher replayed, one for another channel, escrow or network, a non-final
// voucher that must not close, a final settlement after expiry + grace; nothing is stranded.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { Err, Op, PayoutReason } from '../../wrappers/v2/constants';
import { Escrow } from '../../wrappers/v2/Escrow';
import { Worker } from '../../wrappers/v2/Worker';
import { decode } from '../../wrappers/v2/schema';
import {
    CHANNEL_AMOUNT, Env, GAS, NOW, PARAMS, RELAYER_BPS, Session, ZERO, channelRef, createEscrow, keys, nextAcc, settlements,
    openChannel, registerWorker, setupRoot, signVoucher, valueOf, voucherBody,
} from './helpers/fixture';

describe('Final voucher: the settlement closes the channel', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let escrow: SandboxContract<Escrow>;
    let channelId: bigint;
    let snap: BlockchainSnapshot;
    const k = keys(1);
    const session = (id = channelId) => new Session(channelRef(env.root.address, escrow.address, id), worker.address, k);
    const submit = (fields: any, value = GAS) => worker.send(env.workerOwner.getSender(), value, 'submit_settlement', fields);

    beforeAll(async () => {
        env = await setupRoot();
        worker = (await registerWorker(env, env.workerOwner, k)).worker;
        escrow = (await createEscrow(env, env.client, toNano('5'))).escrow;
        channelId = (await openChannel(env, escrow)).channelId;
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    it('pays the increment, releases the rest to the free balance and deletes the channel, in one Escrow transaction', async () => {
        const s = session();
        for (let i = 0; i < 3; i++) s.request();
        const st0 = await escrow.getState();
        const r = await submit(s.finalSettlement());
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: escrow.address, op: Op.settle, success: true });
        const delta = s.cumulative;
        const relayerFee = (delta * BigInt(RELAYER_BPS)) / 10000n;
        const protocolFee = (delta * BigInt(PARAMS.protocol_fee_bps)) / 10000n;
        const share = delta - relayerFee - protocolFee;
        expect(valueOf(r, escrow.address, env.relayer.address, Op.relayerFee)).toBe(relayerFee);
        const paid = valueOf(r, escrow.address, env.workerOwner.address, Op.payout);
        expect(paid).toBeGreaterThan(share);
        expect(paid).toBeLessThan(share + GAS);
        const released = CHANNEL_AMOUNT - delta;
        expect((await escrow.getChannel(channelId)).found).toBe(false);
        const st = await escrow.getState();
        expect(st.open_channels).toBe(st0.open_channels - 1);
        expect(st.locked).toBe(st0.locked - CHANNEL_AMOUNT);
        expect(st.fees_due).toBe(protocolFee);
        // The free balance grows by exactly what the channel did not spend: nothing stranded.
        expect(st.free).toBe(st0.free + released);
        // The settlement's record (its log) travels in the worker owner's payout.
        expect(settlements(r)).toEqual([{ channel_id: channelId, seq: 3, cumulative: delta, acc: s.acc, final: 1, released }]);
        // No close request, no close: one Escrow transaction did it all.
        expect(r.transactions.filter((t) => t.inMessage?.info.dest?.toString() === escrow.address.toString())).toHaveLength(1);
        const payout = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.workerOwner.address.toString() && t.inMessage.info.src?.toString() === escrow.address.toString())!;
        expect(decode('payout', payout.inMessage!.body).reason).toBe(PayoutReason.ChannelSettled);
        // The client withdraws everything the channel released.
        const w = await escrow.send(env.client.getSender(), GAS, 'withdraw', { amount: st.free - toNano('0.01') });
        expect(w.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('closes after earlier plain settlements, for the increment only', async () => {
        const s = session();
        s.request();
        await submit(s.settlement());
        const first = s.cumulative;
        s.request({ tokens_in: 7, tokens_out: 9 });
        const st0 = await escrow.getState();
        const r = await submit(s.finalSettlement());
        const delta = s.cumulative - first;
        // The relayer fees the channel accrued and this settlement's, in one message.
        const relayerPaid = (first * BigInt(RELAYER_BPS)) / 10000n + (delta * BigInt(RELAYER_BPS)) / 10000n;
        expect(valueOf(r, escrow.address, env.relayer.address, Op.relayerFee)).toBe(relayerPaid);
        expect(settlements(r)[0].released).toBe(CHANNEL_AMOUNT - s.cumulative);
        const st = await escrow.getState();
        expect(st.locked).toBe(0n);
        expect(st.free).toBe(st0.free + CHANNEL_AMOUNT - s.cumulative);
    });

    it('a final voucher for the whole amount releases nothing and still closes', async () => {
        const s = session();
        s.request();
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const receipt = s.lastReceipt!;
        const v = signVoucher(voucherBody(ref, CHANNEL_AMOUNT, 1, nextAcc(ZERO, receipt.body as any), 1));
        const r = await submit({ receipt, voucher: v });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(settlements(r)[0]).toMatchObject({ final: 1, released: 0n });
        expect((await escrow.getChannel(channelId)).found).toBe(false);
        expect((await escrow.getState()).locked).toBe(0n);
    });

    it('a non-final voucher never closes', async () => {
        const s = session();
        s.request();
        const r = await submit(s.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(settlements(r).map((x) => x.final)).toEqual([0]);
        const ch = await escrow.getChannel(channelId);
        expect(ch.found).toBe(true);
        expect(ch.settled).toBe(s.cumulative);
        expect((await escrow.getState()).open_channels).toBe(1);
    });

    it('a replayed final voucher is refused (the channel is gone, its id never reused); the value goes back', async () => {
        const s = session();
        s.request();
        const fin = s.finalSettlement();
        await submit(fin);
        const bal = await escrow.getBalance();
        const r = await submit(fin);
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotFound });
        const back = r.transactions.find((t) => t.inMessage?.info.src?.toString() === worker.address.toString() && t.inMessage.info.dest?.toString() === env.workerOwner.address.toString())!;
        expect(decode('payout', back.inMessage!.body).reason).toBe(PayoutReason.SettlementRefused);
        // The refused replay cost the client nothing.
        expect(await escrow.getBalance()).toBeGreaterThanOrEqual(bal);
        // A new channel gets a new id: the old final voucher can never apply to it.
        const next = (await openChannel(env, escrow)).channelId;
        expect(next).toBe(channelId + 1n);
        const again = await submit(fin);
        expect(again.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotFound });
        expect((await escrow.getChannel(next)).found).toBe(true);
    });

    it('a final voucher for another channel, escrow or network does not close this one', async () => {
        const s = session();
        const { receipt } = s.request();
        const acc = nextAcc(ZERO, receipt.body);
        const cases: [any, number][] = [
            [channelRef(env.root.address, escrow.address, channelId + 1n), Err.BadVoucherSignature],
            [channelRef(env.stranger.address, escrow.address, channelId), Err.BadVoucherSignature],
            [channelRef(env.root.address, env.stranger.address, channelId), Err.BadVoucherSignature],
            [channelRef(env.root.address, escrow.address, channelId, -3), Err.BadVoucherSignature],
        ];
        for (const [ref, code] of cases) {
            const voucher = signVoucher(voucherBody(ref, 1000n, 1, acc, 1));
            const r = await submit({ receipt, voucher });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code });
            expect((await escrow.getChannel(channelId)).found).toBe(true);
        }
        // The final flag is signed: setting it on a non-final voucher breaks the signature.
        const plain = s.settlement();
        const forged = { receipt, voucher: { ...plain.voucher, body: { ...plain.voucher.body, final: 1 } } };
        const r = await submit(forged);
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.BadVoucherSignature });
        expect((await escrow.getChannel(channelId)).found).toBe(true);
    });

    it('a final settlement after expiry + grace is refused; the channel then closes the usual way', async () => {
        const s = session();
        s.request();
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        const late = await submit(s.finalSettlement());
        expect(late.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.SettlementTooLate });
        expect((await escrow.getChannel(channelId)).found).toBe(true);
        const c = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        expect(c.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect((await escrow.getState()).locked).toBe(0n);
    });

    it('a final settlement after a close request, within the grace period, closes at once', async () => {
        const s = session();
        s.request();
        await escrow.send(env.client.getSender(), GAS, 'request_close', { channel_id: channelId });
        env.blockchain.now = NOW + PARAMS.grace_period;
        const r = await submit(s.finalSettlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect((await escrow.getChannel(channelId)).found).toBe(false);
        const c = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        expect(c.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotFound });
    });
});
