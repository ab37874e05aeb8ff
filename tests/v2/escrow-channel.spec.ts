// Escrow v2 channels: open (ids from a counter, relayer notified, every bound), top up, request
// close, close after the settlement window (anyone), withdraw, deposits, protocol fees.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract } from '@ton/sandbox';
import { Address, BitString, Cell, beginCell, toNano } from '@ton/core';
import { Err, ESCROW_STORAGE_RESERVE, MAX_OPEN_CHANNELS, Op } from '../../wrappers/v2/constants';
import { Escrow, openChannelFields as openChannelMessage } from '../../wrappers/v2/Escrow';
import { Worker } from '../../wrappers/v2/Worker';
import { decode, encode } from '../../wrappers/v2/schema';
import { workerAddress } from '../../wrappers/v2/common';
import {
    CHANNEL_AMOUNT, Env, GAS, NOW, PARAMS, PRICE_IN, PRICE_OUT, RELAYER_BPS, Session, channelRef, createEscrow, keys,
    logs, openChannel, openChannelFields, registerWorker, setupRoot, storageFee, valueOf, voucherKey,
} from './helpers/fixture';

describe('Escrow v2: channels', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let escrow: SandboxContract<Escrow>;
    let snap: BlockchainSnapshot;
    const k = keys(1);

    beforeAll(async () => {
        env = await setupRoot();
        worker = (await registerWorker(env, env.workerOwner, k)).worker;
        escrow = (await createEscrow(env, env.client, toNano('5'))).escrow;
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    it('the first channel id is the init time << 32; ids then count up', async () => {
        expect((await escrow.getState()).next_channel_id).toBe(BigInt(NOW) << 32n);
        const a = await openChannel(env, escrow);
        const b = await openChannel(env, escrow);
        expect(a.channelId).toBe(BigInt(NOW) << 32n);
        expect(b.channelId).toBe(a.channelId + 1n);
        expect((await escrow.getState()).open_channels).toBe(2);
    });

    it('open locks the amount, fixes the terms and notifies the relayer', async () => {
        const free0 = (await escrow.getState()).free;
        const fee = (await escrow.getFees()).open_channel;
        const { result, channelId } = await openChannel(env, escrow);
        expect(result.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const note = result.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.relayer.address.toString())!;
        const n = decode('channel_opened', note.inMessage!.body);
        expect(n.channel_id).toBe(channelId);
        // The notification stays in its message cell (no worker address): the relayer reads the
        // channel's Worker with get_channel, below.
        expect(n.worker).toBeUndefined();
        expect(n.amount).toBe(CHANNEL_AMOUNT);
        expect(n.relayer_fee_bps).toBe(RELAYER_BPS);
        expect(note.inMessage!.info.type === 'internal' && note.inMessage!.info.bounce).toBe(false);
        const ch = await escrow.getChannel(channelId);
        expect(ch).toMatchObject({
            found: true, amount: CHANNEL_AMOUNT, settled: 0n, last_seq: 0, expires_at: NOW + 24 * 3600,
            settle_until: NOW + 24 * 3600 + PARAMS.grace_period, price_in: PRICE_IN, price_out: PRICE_OUT,
            relayer_fee_bps: RELAYER_BPS, protocol_fee_bps: PARAMS.protocol_fee_bps,
        });
        expect(ch.worker!.equals(worker.address)).toBe(true);
        // The Escrow derives the Worker address exactly as Root deploys it.
        expect(ch.worker!.equals(workerAddress(env.root.address, env.workerOwner.address, env.codes.worker))).toBe(true);
        expect(ch.voucher_key).toBe(BigInt('0x' + voucherKey.publicKey.toString('hex')));
        const st = await escrow.getState();
        expect(st.locked).toBe(CHANNEL_AMOUNT);
        // The owner's value above the fee stays in the free balance; the fee is at most what was spent.
        expect(st.free).toBeLessThanOrEqual(free0 + GAS - CHANNEL_AMOUNT);
        expect(st.free).toBeGreaterThanOrEqual(free0 + GAS - CHANNEL_AMOUNT - fee);
    });

    it('open without notify_relayer sends nothing to the relayer (the client tells it off-chain)', async () => {
        const { result, channelId } = await openChannel(env, escrow, { notify_relayer: 0 });
        expect(result.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(result.transactions).not.toHaveTransaction({ from: escrow.address });
        expect((await escrow.getChannel(channelId)).found).toBe(true);
    });

    it('open refuses an exotic parties cell (a library cell would parse now, maybe not later): ExoticCell', async () => {
        const parties = encode('channel_parties', {
            worker_owner: env.workerOwner.address, relayer: env.relayer.address, voucher_key: voucherKey.publicKey,
        });
        const library = new Cell({ exotic: true, bits: new BitString(Buffer.concat([Buffer.from([2]), parties.hash()]), 0, 264), refs: [] });
        const fields = openChannelMessage(openChannelFields(env));
        const r = await escrow.send(env.client.getSender(), GAS, 'open_channel', { ...fields, parties: library });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ExoticCell });
        expect((await escrow.getState()).open_channels).toBe(0);
    });

    it('open: owner only', async () => {
        const r = await escrow.send(env.stranger.getSender(), GAS, 'open_channel', openChannelFields(env));
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotOwner });
    });

    it('open: the value must cover the fee from the config (fee - 1 refused, fee accepted)', async () => {
        const fee = (await escrow.getFees()).open_channel;
        const low = await openChannel(env, escrow, {}, fee - 1n);
        expect(low.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotEnoughValue });
        const ok = await openChannel(env, escrow, {}, fee);
        expect(ok.result.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('open: expiry must be in the future and within the maximum lifetime (finding 10 bounds)', async () => {
        for (const [expires_at, code] of [
            [NOW, Err.ExpiryInPast],
            [NOW + PARAMS.max_channel_lifetime + 1, Err.ExpiryTooFar],
            [0xffffffff, Err.ExpiryTooFar],
        ] as const) {
            const r = await openChannel(env, escrow, { expires_at });
            expect(r.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code });
        }
        const edge = await openChannel(env, escrow, { expires_at: NOW + PARAMS.max_channel_lifetime });
        expect(edge.result.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const soon = await openChannel(env, escrow, { expires_at: NOW + 1 });
        expect(soon.result.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('open: relayer fee up to the cap; relayer and worker owner on the basechain', async () => {
        const over = await openChannel(env, escrow, { route: { relayer: env.relayer.address, relayer_fee_bps: PARAMS.relayer_fee_cap_bps + 1 } });
        expect(over.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.RelayerFeeTooHigh });
        const cap = await openChannel(env, escrow, { route: { relayer: env.relayer.address, relayer_fee_bps: PARAMS.relayer_fee_cap_bps } });
        expect(cap.result.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const master = new Address(-1, env.relayer.address.hash);
        const r1 = await openChannel(env, escrow, { route: { relayer: master, relayer_fee_bps: 0 } });
        expect(r1.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotBasechain });
        const r2 = await openChannel(env, escrow, { worker_owner: new Address(-1, env.workerOwner.address.hash) });
        expect(r2.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotBasechain });
    });

    it('open: amount + fee within the free balance; amounts below 2^64', async () => {
        const { free } = await escrow.getState();
        const fee = (await escrow.getFees()).open_channel;
        // The attached value is part of the free balance when the check runs.
        const tooMuch = await openChannel(env, escrow, { amount: free + GAS - fee + 1n });
        expect(tooMuch.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.InsufficientFreeBalance });
        const all = await openChannel(env, escrow, { amount: free + GAS - fee });
        expect(all.result.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect((await escrow.getState()).free).toBeGreaterThanOrEqual(0n);
        const huge = await openChannel(env, escrow, { amount: 1n << 64n });
        expect(huge.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.AmountTooLarge });
    });

    it(`open: at most ${MAX_OPEN_CHANNELS} channels at once; closing one makes room`, async () => {
        const ids: bigint[] = [];
        for (let i = 0; i < MAX_OPEN_CHANNELS; i++) ids.push((await openChannel(env, escrow, { amount: 1000n })).channelId);
        const r = await openChannel(env, escrow, { amount: 1000n });
        expect(r.result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.TooManyChannels });
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: ids[3] });
        const again = await openChannel(env, escrow, { amount: 1000n, expires_at: env.blockchain.now + 3600 });
        expect(again.result.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(again.channelId).toBe(ids[MAX_OPEN_CHANNELS - 1] + 1n);
    });

    it('top up: owner only, from the free balance, fee-checked', async () => {
        const { channelId } = await openChannel(env, escrow);
        const fee = (await escrow.getFees()).top_up;
        const stranger = await escrow.send(env.stranger.getSender(), GAS, 'top_up', { channel_id: channelId, amount: 1n });
        expect(stranger.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotOwner });
        const low = await escrow.send(env.client.getSender(), fee - 1n, 'top_up', { channel_id: channelId, amount: 1n });
        expect(low.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotEnoughValue });
        const none = await escrow.send(env.client.getSender(), fee, 'top_up', { channel_id: 1n, amount: 1n });
        expect(none.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotFound });
        const { free } = await escrow.getState();
        const big = await escrow.send(env.client.getSender(), fee, 'top_up', { channel_id: channelId, amount: free + 1n });
        expect(big.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.InsufficientFreeBalance });
        const ok = await escrow.send(env.client.getSender(), fee, 'top_up', { channel_id: channelId, amount: toNano('0.5') });
        expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect((await escrow.getChannel(channelId)).amount).toBe(CHANNEL_AMOUNT + toNano('0.5'));
        expect((await escrow.getState()).locked).toBe(CHANNEL_AMOUNT + toNano('0.5'));
    });

    it('close: refused inside the settlement window, anyone after it; the remainder is freed', async () => {
        const { channelId } = await openChannel(env, escrow);
        const s = new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k);
        s.request();
        await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.settlement());
        const settled = s.cumulative;
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period;
        const early = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        expect(early.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotClosable });
        env.blockchain.now += 1;
        const fee = (await escrow.getFees()).close_channel;
        const low = await escrow.send(env.stranger.getSender(), fee - 1n, 'close_channel', { channel_id: channelId });
        expect(low.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotEnoughValue });
        const free0 = (await escrow.getState()).free;
        const r = await escrow.send(env.stranger.getSender(), fee, 'close_channel', { channel_id: channelId });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const [log] = logs(r, 'log_channel_closed');
        expect(log).toEqual({ channel_id: channelId, settled, released: CHANNEL_AMOUNT - settled });
        const st = await escrow.getState();
        // The closer paid the whole transaction: the free balance grows by exactly the remainder,
        // less the storage fee of the elapsed day (which the balance always pays).
        expect(st.free).toBe(free0 + CHANNEL_AMOUNT - settled - storageFee(r, escrow.address));
        expect(st.locked).toBe(0n);
        expect(st.open_channels).toBe(0);
        expect((await escrow.getChannel(channelId)).found).toBe(false);
        const again = await escrow.send(env.stranger.getSender(), fee, 'close_channel', { channel_id: channelId });
        expect(again.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotFound });
    });

    it('request close: owner only; the worker keeps the grace period to settle, then anyone closes', async () => {
        const { channelId } = await openChannel(env, escrow);
        const stranger = await escrow.send(env.stranger.getSender(), GAS, 'request_close', { channel_id: channelId });
        expect(stranger.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotOwner });
        env.blockchain.now = NOW + 100;
        const r = await escrow.send(env.client.getSender(), GAS, 'request_close', { channel_id: channelId });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(logs(r, 'log_close_requested')).toEqual([{ channel_id: channelId, close_requested_at: NOW + 100 }]);
        const ch = await escrow.getChannel(channelId);
        expect(ch.close_requested_at).toBe(NOW + 100);
        expect(ch.settle_until).toBe(NOW + 100 + PARAMS.grace_period);
        // A second request does not move the window.
        env.blockchain.now = NOW + 200;
        await escrow.send(env.client.getSender(), GAS, 'request_close', { channel_id: channelId });
        expect((await escrow.getChannel(channelId)).settle_until).toBe(NOW + 100 + PARAMS.grace_period);
        // The worker can still settle inside the grace period.
        const s = new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k);
        s.request();
        env.blockchain.now = NOW + 100 + PARAMS.grace_period;
        const settle = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.settlement());
        expect(settle.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const early = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        expect(early.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.ChannelNotClosable });
        env.blockchain.now += 1;
        const close = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        expect(close.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('request close keeps the grace period fixed at open, even after the escrow config is refreshed', async () => {
        const { channelId } = await openChannel(env, escrow, { expires_at: NOW + 20 * 24 * 3600 });
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: { ...PARAMS, grace_period: 1, treasury: env.treasury.address } });
        env.blockchain.now = NOW + PARAMS.governance_delay;
        await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: 0 });
        await createEscrow(env, env.client, toNano('0.1'));
        expect((await escrow.getConfig()).grace_period).toBe(1);
        // The worker still gets the full grace of the channel's terms.
        await escrow.send(env.client.getSender(), GAS, 'request_close', { channel_id: channelId });
        expect((await escrow.getChannel(channelId)).settle_until).toBe(env.blockchain.now + PARAMS.grace_period);
        // A new channel gets the new grace.
        const fresh = await openChannel(env, escrow, { expires_at: env.blockchain.now + 100 });
        expect((await escrow.getChannel(fresh.channelId)).settle_until).toBe(env.blockchain.now + 101);
        await escrow.send(env.client.getSender(), GAS, 'request_close', { channel_id: fresh.channelId });
        expect((await escrow.getChannel(fresh.channelId)).settle_until).toBe(env.blockchain.now + 1);
    });

    it('withdraw: owner only, fee-checked, the free balance drops by exactly the amount', async () => {
        const fee = (await escrow.getFees()).withdraw;
        const stranger = await escrow.send(env.stranger.getSender(), GAS, 'withdraw', { amount: 1n });
        expect(stranger.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotOwner });
        const low = await escrow.send(env.client.getSender(), fee - 1n, 'withdraw', { amount: 1n });
        expect(low.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotEnoughValue });
        await openChannel(env, escrow);
        const { free } = await escrow.getState();
        const over = await escrow.send(env.client.getSender(), fee, 'withdraw', { amount: free + 1n });
        expect(over.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.InsufficientFreeBalance });
        const r = await escrow.send(env.client.getSender(), fee, 'withdraw', { amount: toNano('1') });
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.client.address, op: Op.payout });
        expect(valueOf(r, escrow.address, env.client.address)).toBeGreaterThan(toNano('1'));
        expect((await escrow.getState()).free).toBe(free - toNano('1'));
        // Everything free can leave; locked funds and the storage reserve stay.
        const { free: rest } = await escrow.getState();
        const all = await escrow.send(env.client.getSender(), fee, 'withdraw', { amount: rest });
        expect(all.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect(await escrow.getBalance()).toBeGreaterThanOrEqual(CHANNEL_AMOUNT + ESCROW_STORAGE_RESERVE);
    });

    it('deposits: a deposit message or an empty body; unknown ops are refused', async () => {
        const { free } = await escrow.getState();
        await escrow.send(env.stranger.getSender(), toNano('1'), 'deposit');
        expect((await escrow.getState()).free).toBeGreaterThan(free + toNano('0.99'));
        const r = await env.stranger.send({ to: escrow.address, value: toNano('0.1'), body: beginCell().storeUint(0xdeadbeef, 32).endCell() });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.UnknownOp });
    });

    it('escrow init only from Root; a second create_escrow refreshes the config and keeps the counter', async () => {
        const r = await escrow.send(env.stranger.getSender(), GAS, 'escrow_init', {
            config: { worker_code: env.codes.worker, grace_period: 1, max_channel_lifetime: 1, relayer_fee_cap_bps: 0, protocol_fee_bps: 0, treasury: env.stranger.address },
        });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotRoot });
        await openChannel(env, escrow);
        const next = (await escrow.getState()).next_channel_id;
        env.blockchain.now = NOW + 1000;
        await createEscrow(env, env.client, toNano('1'));
        expect((await escrow.getState()).next_channel_id).toBe(next);
    });

    it('collect fees: anyone; the treasury gets exactly the fees due, the caller the rest of its value', async () => {
        const { channelId } = await openChannel(env, escrow);
        const s = new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k);
        s.request();
        await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.settlement());
        const { fees_due, free } = await escrow.getState();
        expect(fees_due).toBe((s.cumulative * BigInt(PARAMS.protocol_fee_bps)) / 10000n);
        const fee = (await escrow.getFees()).collect_fees;
        const low = await escrow.send(env.stranger.getSender(), fee - 1n, 'collect_fees');
        expect(low.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotEnoughValue });
        const r = await escrow.send(env.stranger.getSender(), fee, 'collect_fees');
        expect(valueOf(r, escrow.address, env.treasury.address)).toBe(fees_due);
        const st = await escrow.getState();
        expect(st.fees_due).toBe(0n);
        expect(st.free).toBe(free);
    });
});
