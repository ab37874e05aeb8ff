// Settlement of a channel: the worker node submits the latest receipt and the client's voucher to
// the Worker, which checks the receipt and forwards to the Escrow, which checks the voucher and
// pays the difference (worker share to the worker owner, relayer fee, protocol fee) and records the
// accumulator. Every rule with its exit code; a refused settlement's value goes back.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { keyPairFromSeed } from '@ton/crypto';
import { Err, Op, PayoutReason } from '../../wrappers/v2/constants';
import { Escrow } from '../../wrappers/v2/Escrow';
import { Worker } from '../../wrappers/v2/Worker';
import { decode } from '../../wrappers/v2/schema';
import {
    CHANNEL_AMOUNT, Env, GAS, MODEL_B, NOW, PARAMS, PRICE_IN, PRICE_OUT, RELAYER_BPS, Session, ZERO, channelRef,
    createEscrow, keys, nextAcc, settlements, openChannel, receiptBody, registerWorker, setupRoot, signReceipt, signVoucher,
    storageFee, valueOf, voucherBody, voucherKey,
} from './helpers/fixture';

describe('Channel settlement', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let escrow: SandboxContract<Escrow>;
    let channelId: bigint;
    let snap: BlockchainSnapshot;
    const k = keys(1);
    const session = () => new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k);

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

    const submit = (fields: any, value = GAS, from = env.workerOwner) =>
        worker.send(from.getSender(), value, 'submit_settlement', fields);

    it('pays the difference: share + unspent value to the worker owner, relayer fee, protocol fee; records acc/seq in the payout', async () => {
        const s = session();
        for (let i = 0; i < 3; i++) s.request();
        const free0 = (await escrow.getState()).free;
        const r = await submit(s.settlement());
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: escrow.address, op: Op.settle, success: true });
        const delta = s.cumulative;
        const relayerFee = (delta * BigInt(RELAYER_BPS)) / 10000n;
        const protocolFee = (delta * BigInt(PARAMS.protocol_fee_bps)) / 10000n;
        const share = delta - relayerFee - protocolFee;
        // The relayer fee accrues on the channel, still locked: one message less per settlement.
        expect(r.transactions).not.toHaveTransaction({ from: escrow.address, to: env.relayer.address });
        const paid = valueOf(r, escrow.address, env.workerOwner.address, Op.payout);
        expect(paid).toBeGreaterThan(share);
        expect(paid).toBeLessThan(share + GAS);
        const st = await escrow.getState();
        expect(st.locked).toBe(CHANNEL_AMOUNT - delta + relayerFee);
        expect(st.fees_due).toBe(protocolFee);
        // The client's free balance does not move: only the locked amount paid.
        expect(st.free).toBe(free0);
        const ch = await escrow.getChannel(channelId);
        expect(ch.settled).toBe(delta);
        expect(ch.last_seq).toBe(3);
        expect(ch.relayer_due).toBe(relayerFee);
        expect(settlements(r)).toEqual([{ channel_id: channelId, seq: 3, cumulative: delta, acc: s.acc, final: 0, released: 0n }]);
        // Nothing stays on the Worker: its balance is what it was.
        const payout = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.workerOwner.address.toString() && t.inMessage.info.src?.toString() === escrow.address.toString())!;
        expect(decode('payout', payout.inMessage!.body).reason).toBe(PayoutReason.ChannelSettled);
    });

    it('settles again later for the increment only', async () => {
        const s = session();
        s.request();
        await submit(s.settlement());
        const first = s.cumulative;
        s.request({ tokens_in: 7, tokens_out: 9 });
        s.request();
        const r = await submit(s.settlement());
        const delta = s.cumulative - first;
        const due = (first * BigInt(RELAYER_BPS)) / 10000n + (delta * BigInt(RELAYER_BPS)) / 10000n;
        expect(r.transactions).not.toHaveTransaction({ from: escrow.address, to: env.relayer.address });
        expect((await escrow.getChannel(channelId)).settled).toBe(s.cumulative);
        expect((await escrow.getChannel(channelId)).relayer_due).toBe(due);
        expect((await escrow.getState()).locked).toBe(CHANNEL_AMOUNT - s.cumulative + due);
    });

    it('the relayer fees accrued are paid in one message by close_channel; the closer pays its forwarding', async () => {
        const s = session();
        s.request();
        await submit(s.settlement());
        s.request();
        await submit(s.settlement());
        const due = (await escrow.getChannel(channelId)).relayer_due;
        expect(due).toBeGreaterThan(0n);
        const st0 = await escrow.getState();
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        const c = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        expect(valueOf(c, escrow.address, env.relayer.address, Op.relayerFee)).toBe(due);
        const st = await escrow.getState();
        expect(st.locked).toBe(0n);
        // The client's free balance grows by exactly what the channel did not spend (less the
        // storage fee of the day that passed).
        expect(st.free).toBe(st0.free + CHANNEL_AMOUNT - s.cumulative - storageFee(c, escrow.address));
    });

    it('the accumulator recorded is sha256(prev_acc ‖ receipt hash), chained from 0', async () => {
        const s = session();
        const { receipt: r1 } = s.request();
        const { receipt: r2 } = s.request();
        const acc1 = nextAcc(ZERO, r1.body);
        expect(r2.body.prev_acc.equals(acc1)).toBe(true);
        const r = await submit(s.settlement());
        expect(settlements(r)[0].acc.equals(nextAcc(acc1, r2.body))).toBe(true);
    });

    it('replaying the same settlement is refused (cumulative must grow); the value goes back to the owner', async () => {
        const s = session();
        s.request();
        await submit(s.settlement());
        const r = await submit(s.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.WrongSeq });
        // The bounce returns to the Worker, which sends the unspent value to the owner.
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.workerOwner.address, op: Op.payout });
        const back = r.transactions.find((t) => t.inMessage?.info.src?.toString() === worker.address.toString() && t.inMessage.info.dest?.toString() === env.workerOwner.address.toString())!;
        expect(decode('payout', back.inMessage!.body).reason).toBe(PayoutReason.SettlementRefused);
    });

    it('a voucher that does not grow the cumulative amount is refused', async () => {
        const s = session();
        s.request();
        await submit(s.settlement());
        // Next receipt costs nothing: cumulative stays.
        s.request({ tokens_in: 0, tokens_out: 0 });
        const r = await submit(s.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.CumulativeNotIncreasing });
    });

    it('a voucher above the channel amount is refused; a top-up makes it payable', async () => {
        const s = session();
        const { receipt } = s.request();
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const v = signVoucher(voucherBody(ref, CHANNEL_AMOUNT + 1n, 1, nextAcc(ZERO, receipt.body)));
        const r = await submit({ receipt, voucher: v });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.AboveChannelAmount });
        await escrow.send(env.client.getSender(), GAS, 'top_up', { channel_id: channelId, amount: 1n });
        const ok = await submit({ receipt, voucher: v });
        expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
        // All of it settled: only the accrued relayer fee stays locked until the channel ends.
        expect((await escrow.getState()).locked).toBe((await escrow.getChannel(channelId)).relayer_due);
    });

    // The Escrow rebuilds the voucher body from the channel it holds (this network, Root, Escrow,
    // channel id), the receipt's seq and accumulator, and the cumulative and final flag sent: a
    // voucher signed for anything else fails the signature check (these were WrongChannel,
    // WrongNetwork, WrongSeq and WrongAccumulator while the voucher body travelled whole).
    it('voucher checks: signature by the channel key, channel, seq, accumulator', async () => {
        const s = session();
        const { receipt } = s.request();
        const acc = nextAcc(ZERO, receipt.body);
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const cases: [any, number][] = [
            [signVoucher(voucherBody(ref, 1000n, 1, acc), keyPairFromSeed(Buffer.alloc(32, 9))), Err.BadVoucherSignature],
            [signVoucher(voucherBody(channelRef(env.root.address, escrow.address, channelId + 1n), 1000n, 1, acc)), Err.BadVoucherSignature],
            [signVoucher(voucherBody(channelRef(env.stranger.address, escrow.address, channelId), 1000n, 1, acc)), Err.BadVoucherSignature],
            [signVoucher(voucherBody(channelRef(env.root.address, env.stranger.address, channelId), 1000n, 1, acc)), Err.BadVoucherSignature],
            [signVoucher(voucherBody(channelRef(env.root.address, escrow.address, channelId, -3), 1000n, 1, acc)), Err.BadVoucherSignature],
            [signVoucher(voucherBody(ref, 1000n, 2, acc)), Err.BadVoucherSignature],
            [signVoucher(voucherBody(ref, 1000n, 1, ZERO)), Err.BadVoucherSignature],
        ];
        for (const [voucher, code] of cases) {
            const r = await submit({ receipt, voucher });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code });
        }
        // A tampered voucher body under a valid signature of another body.
        const good = signVoucher(voucherBody(ref, 1000n, 1, acc));
        const tampered = { signature: good.signature, body: { ...good.body, cumulative: 2000n } };
        const r = await submit({ receipt, voucher: tampered });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.BadVoucherSignature });
    });

    it('receipt checks on the Worker: signature (and worker), network, root, model', async () => {
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const mk = (over: any = {}, key = k, r = ref) => {
            const body = receiptBody(r, worker.address, 1, ZERO, over);
            return { receipt: signReceipt(body, key), voucher: signVoucher(voucherBody(r, body.cost, 1, nextAcc(ZERO, body))) };
        };
        const cases: [any, number][] = [
            [mk({}, keys(2)), Err.BadSignature],
            // The Worker rebuilds the receipt body with its own address: a receipt naming another
            // Worker does not match its signature here (this was WrongWorker while the receipt
            // travelled whole; report_equivocation still names it, see slashing.spec.ts).
            [mk({ worker: env.stranger.address }), Err.BadSignature],
            [mk({}, k, channelRef(env.root.address, escrow.address, channelId, -3)), Err.WrongNetwork],
            [mk({}, k, channelRef(env.stranger.address, escrow.address, channelId)), Err.WrongRoot],
            [mk({ model_id: MODEL_B }), Err.ModelNotServed],
        ];
        for (const [fields, code] of cases) {
            const r = await submit(fields);
            expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: code });
            expect(r.transactions).not.toHaveTransaction({ to: escrow.address });
        }
    });

    it('the receipt cost must be its tokens at the channel prices', async () => {
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const body = receiptBody(ref, worker.address, 1, ZERO, { cost: 100n * PRICE_IN + 200n * PRICE_OUT + 1n });
        const r = await submit({ receipt: signReceipt(body, k), voucher: signVoucher(voucherBody(ref, body.cost, 1, nextAcc(ZERO, body))) });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.WrongCost });
    });

    it('only inside the settlement window (expiry + grace)', async () => {
        const s = session();
        s.request();
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period;
        const edge = await submit(s.settlement());
        expect(edge.transactions).toHaveTransaction({ to: escrow.address, success: true });
        s.request();
        env.blockchain.now += 1;
        const late = await submit(s.settlement());
        expect(late.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.SettlementTooLate });
    });

    it('a closed channel cannot be settled', async () => {
        const s = session();
        s.request();
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        const r = await submit(s.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotFound });
    });

    it('the Escrow takes a settle only from the channel Worker', async () => {
        const s = session();
        const { receipt, voucher } = s.request();
        const r = await escrow.send(env.stranger.getSender(), GAS, 'settle', {
            channel_id: channelId, seq: 1, cumulative: voucher.body.cumulative, final: 0,
            proof: { acc: s.acc, voucher_signature: voucher.signature, tokens_in: 100, tokens_out: 200, cost: receipt.body.cost },
        });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotChannelWorker });
    });

    it('underfunded submissions are refused up front (fee - 1), exactly the fee passes', async () => {
        const s = session();
        s.request();
        const fee = (await worker.getFees()).settle;
        const low = await submit(s.settlement(), fee - 1n);
        expect(low.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
        const ok = await submit(s.settlement(), fee);
        expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(ok.transactions).toHaveTransaction({ from: escrow.address, to: env.workerOwner.address, op: Op.payout, success: true });
        // The Escrow's own check (a settle that reached it some other way with too little value).
        const escrowFee = (await escrow.getFees()).settle;
        expect(escrowFee).toBeLessThan(fee);
    });

    it('anyone may submit for the worker (a relayer): the payout still goes to the worker owner', async () => {
        const s = session();
        s.request();
        const r = await submit(s.settlement(), GAS, env.relayer);
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.workerOwner.address, op: Op.payout });
    });

    it('settles while the worker is unbonding', async () => {
        await worker.send(env.workerOwner.getSender(), GAS, 'unbond');
        const s = session();
        s.request();
        const r = await submit(s.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('a voucher signed with the client wallet key instead of the channel voucher key is refused', async () => {
        expect((await escrow.getChannel(channelId)).voucher_key).toBe(BigInt('0x' + voucherKey.publicKey.toString('hex')));
        const wallet = keyPairFromSeed(Buffer.alloc(32, 0x0c));
        const s = new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k, undefined, wallet);
        s.request();
        const r = await submit(s.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.BadVoucherSignature });
    });
});
