// The gas constants of contracts/v2/fees.tolk (and Root's GAS_GOVERNANCE) against the gas each
// handler really uses at its worst: an Escrow with MAX_OPEN_CHANNELS channels shaped so the
// channel used is the deepest leaf, a Worker whose key history is full and shaped the same way.
// A constant below the measured gas would let an underfunded message through; one far above it
// would overcharge: both fail here. The message size bounds are checked the same way.
import '@ton/test-utils';
import * as fs from 'fs';
import * as path from 'path';
import { SendMessageResult } from '@ton/sandbox';
import { Address, Cell, Message, beginCell, storeMessage, toNano } from '@ton/core';
import { Op } from '../../wrappers/v2/constants';
import {
    GAS, NOW, PARAMS, Session, ZERO, channelRef, createEscrow, keys, openChannel, receiptBody, registerWorker, setupRoot,
    signReceipt, workerRecord,
} from './helpers/fixture';
import { deepenChannels, deepenKeys } from './helpers/worst';

const SRC = (f: string) => fs.readFileSync(path.resolve(__dirname, '..', '..', 'contracts', 'v2', f), 'utf-8');
const constant = (name: string) => {
    const m = new RegExp(`const ${name} = (\\d+)`).exec(SRC('fees.tolk') + SRC('root.tolk'));
    if (!m) throw new Error(`no constant ${name}`);
    return Number(m[1]);
};

/** Gas used by the transactions of `r` on `address`, per transaction. */
function gasOn(r: SendMessageResult, address: Address): number[] {
    return r.transactions
        .filter((t) => new Address(0, Buffer.from(t.address.toString(16).padStart(64, '0'), 'hex')).equals(address))
        .map((t) => {
            const d = t.description;
            if (d.type !== 'generic' || d.computePhase.type !== 'vm') return 0;
            expect(d.computePhase.success).toBe(true);
            return Number(d.computePhase.gasUsed);
        });
}

/** Bits and cells of the message tree outside its root cell (what the forward fee is charged on), upper bound. */
function msgSize(r: SendMessageResult, from: Address, op: number): { bits: number; cells: number } {
    const m = r.transactions.flatMap((t) => t.outMessages.values()).find((m) =>
        m.info.src instanceof Address && m.info.src.equals(from) && m.body.bits.length >= 32 && m.body.beginParse().preloadUint(32) === op)!;
    const seen = new Set<string>();
    let bits = 0;
    let cells = 0;
    const walk = (c: Cell) => {
        const h = c.hash().toString('hex');
        if (seen.has(h)) return;
        seen.add(h);
        bits += c.bits.length;
        cells += 1;
        c.refs.forEach(walk);
    };
    walk(m.body);
    if (m.init?.code) walk(m.init.code);
    if (m.init?.data) walk(m.init.data);
    return { bits, cells };
}

/** The messages `from` sent in `r` whose body starts with `op` (logs included). */
function sent(r: SendMessageResult, from: Address, op: number): Message[] {
    return r.transactions.flatMap((t) => t.outMessages.values()).filter((m) =>
        m.info.src instanceof Address && m.info.src.equals(from) && m.body.bits.length >= 32 && m.body.beginParse().preloadUint(32) === op);
}

/** Whether the message, as sent, keeps its body in its root cell (it then pays the lump price only). */
function bodyInRoot(m: Message): boolean {
    return beginCell().store(storeMessage(m)).endCell().refs.length === 0;
}

describe('v2 fee constants', () => {
    const measured: { [name: string]: number } = {};
    const sizes: { [name: string]: { bits: number; cells: number } } = {};
    /** Messages priced at the lump price, as sent: [label, body stays in the root cell]. */
    const lumpOnly: [string, boolean][] = [];
    const noteLump = (label: string, ms: Message[]) => {
        expect([label, ms.length > 0]).toEqual([label, true]);
        for (const m of ms) lumpOnly.push([label, bodyInRoot(m)]);
    };
    const note = (name: string, gas: number) => (measured[name] = Math.max(measured[name] ?? 0, gas));

    beforeAll(async () => {
        const env = await setupRoot();
        const k = keys(1);
        const reg = await registerWorker(env, env.workerOwner, k);
        const worker = reg.worker;
        note('GAS_REGISTER_ROOT', gasOn(reg.result, env.root.address)[0]);
        note('GAS_WORKER_INIT', gasOn(reg.result, worker.address)[0]);
        sizes.FWD_INIT = msgSize(reg.result, env.root.address, Op.workerInit);
        const ce = await createEscrow(env, env.client, toNano('50'));
        const escrow = ce.escrow;
        note('GAS_CREATE_ESCROW', gasOn(ce.result, env.root.address)[0]);
        note('GAS_ESCROW_INIT', gasOn(ce.result, escrow.address)[0]);
        const first = await openChannel(env, escrow);
        const channelId = first.channelId;
        note('GAS_OPEN_CHANNEL', gasOn(first.result, escrow.address)[0]);
        noteLump('channel_opened', sent(first.result, escrow.address, Op.channelOpened));
        await deepenChannels(env, escrow.address, channelId, 15);
        const sixteenth = await openChannel(env, escrow);
        note('GAS_OPEN_CHANNEL', gasOn(sixteenth.result, escrow.address)[0]);

        const s = new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k);
        for (let i = 0; i < 2; i++) {
            s.request({ tokens_in: 400_000, tokens_out: 0 });
            const r = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.settlement());
            note('GAS_SETTLE_WORKER', gasOn(r, worker.address)[0]);
            note('GAS_SETTLE_ESCROW', gasOn(r, escrow.address)[0]);
            sizes.FWD_SETTLE = msgSize(r, worker.address, Op.settle);
            // The settlement's payout carries its record: priced by FWD_PAYOUT_RECORD.
            sizes.FWD_PAYOUT_RECORD = msgSize(r, escrow.address, Op.payout);
        }
        // A final voucher (the settlement deletes the channel) on the same deepest leaf; undone after.
        const beforeFinal = env.blockchain.snapshot();
        s.request();
        const fin = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.finalSettlement());
        note('GAS_SETTLE_WORKER', gasOn(fin, worker.address)[0]);
        note('GAS_SETTLE_ESCROW', gasOn(fin, escrow.address)[0]);
        noteLump('relayer_fee', sent(fin, escrow.address, Op.relayerFee));
        const finalPayout = msgSize(fin, escrow.address, Op.payout);
        expect(finalPayout.bits <= constant('FWD_PAYOUT_RECORD_BITS') && finalPayout.cells <= constant('FWD_PAYOUT_RECORD_CELLS')).toBe(true);
        expect((await escrow.getChannel(channelId)).found).toBe(false);
        await env.blockchain.loadFrom(beforeFinal);
        const t = await escrow.send(env.client.getSender(), GAS, 'top_up', { channel_id: channelId, amount: 5n });
        note('GAS_TOP_UP', gasOn(t, escrow.address)[0]);
        const rc = await escrow.send(env.client.getSender(), GAS, 'request_close', { channel_id: channelId });
        note('GAS_REQUEST_CLOSE', gasOn(rc, escrow.address)[0]);
        env.blockchain.now = NOW + 24 * 3600 + PARAMS.grace_period + 1;
        const c = await escrow.send(env.stranger.getSender(), GAS, 'close_channel', { channel_id: channelId });
        note('GAS_CLOSE_CHANNEL', gasOn(c, escrow.address)[0]);
        const w = await escrow.send(env.client.getSender(), GAS, 'withdraw', { amount: 5n });
        note('GAS_WITHDRAW', gasOn(w, escrow.address)[0]);
        const cf = await escrow.send(env.client.getSender(), GAS, 'collect_fees', {});
        note('GAS_COLLECT_FEES', gasOn(cf, escrow.address)[0]);

        await deepenKeys(env, worker.address, k.publicKey);
        const up = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', { record: workerRecord(k) });
        const upGas = gasOn(up, worker.address);
        note('GAS_UPDATE_REQUEST', upGas[0]);
        note('GAS_WORKER_UPDATE', upGas[1]);
        note('GAS_UPDATE_ROOT', gasOn(up, env.root.address)[0]);
        sizes.FWD_UPDATE = msgSize(up, worker.address, Op.updateWorker);
        const ts = await worker.send(env.workerOwner.getSender(), toNano('2'), 'top_up_stake', { amount: toNano('1') });
        note('GAS_STAKE_OP', gasOn(ts, worker.address)[0]);
        const ub = await worker.send(env.workerOwner.getSender(), GAS, 'unbond');
        note('GAS_STAKE_OP', gasOn(ub, worker.address)[0]);
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const sl = await worker.send(env.stranger.getSender(), GAS, 'report_equivocation', {
            key_a: k.publicKey, receipt_a: signReceipt(receiptBody(ref, worker.address, 1, ZERO), k),
            key_b: k.publicKey, receipt_b: signReceipt(receiptBody(ref, worker.address, 1, ZERO, { tokens_out: 1 }), k),
        });
        note('GAS_SLASH', gasOn(sl, worker.address)[0]);

        const w2 = (await registerWorker(env, env.stranger, keys(3))).worker;
        await w2.send(env.stranger.getSender(), GAS, 'unbond');
        env.blockchain.now += PARAMS.unbonding_delay;
        const ws = await w2.send(env.stranger.getSender(), GAS, 'withdraw_stake');
        note('GAS_STAKE_OP', gasOn(ws, w2.address)[0]);

        const q = await env.root.send(env.rootOwner.getSender(), GAS, 'set_codes', { worker_code: env.codes.worker, escrow_code: env.codes.escrow });
        note('GAS_GOVERNANCE', gasOn(q, env.root.address)[0]);
        await env.root.send(env.rootOwner.getSender(), GAS, 'set_params', { params: { ...PARAMS, treasury: env.treasury.address } });
        await env.root.send(env.rootOwner.getSender(), GAS, 'transfer_ownership', { new_owner: env.stranger.address });
        env.blockchain.now += PARAMS.governance_delay;
        for (const id of [0, 1, 2]) {
            const a = await env.root.send(env.stranger.getSender(), GAS, 'apply_change', { change_id: id });
            note('GAS_GOVERNANCE', gasOn(a, env.root.address)[0]);
        }
        const acc = await env.root.send(env.stranger.getSender(), GAS, 'accept_ownership');
        note('GAS_GOVERNANCE', gasOn(acc, env.root.address)[0]);
        await env.root.send(env.stranger.getSender(), GAS, 'add_measurement', { measurement: Buffer.alloc(32, 1) });
        const cc = await env.root.send(env.stranger.getSender(), GAS, 'cancel_change', { change_id: 3 });
        note('GAS_GOVERNANCE', gasOn(cc, env.root.address)[0]);
    });

    afterAll(() => {
        const lines = Object.entries(measured).map(([n, g]) => `${n.padEnd(20)} measured ${String(g).padStart(6)}  constant ${constant(n)}`);
        process.stdout.write(['', 'v2 gas constants (worst case)', ...lines, ''].join('\n') + '\n');
    });

    const NAMES = [
        'GAS_OPEN_CHANNEL', 'GAS_TOP_UP', 'GAS_REQUEST_CLOSE', 'GAS_CLOSE_CHANNEL', 'GAS_WITHDRAW', 'GAS_COLLECT_FEES',
        'GAS_SETTLE_WORKER', 'GAS_SETTLE_ESCROW', 'GAS_SLASH', 'GAS_REGISTER_ROOT', 'GAS_WORKER_INIT', 'GAS_UPDATE_REQUEST',
        'GAS_UPDATE_ROOT', 'GAS_WORKER_UPDATE', 'GAS_CREATE_ESCROW', 'GAS_ESCROW_INIT', 'GAS_STAKE_OP', 'GAS_GOVERNANCE',
    ];
    for (const name of NAMES) {
        it(`${name} covers the worst measured gas, within 30 %`, () => {
            const gas = measured[name];
            expect([name, gas > 0]).toEqual([name, true]);
            expect([name, gas <= constant(name)]).toEqual([name, true]);
            expect([name, gas >= constant(name) * 0.7]).toEqual([name, true]);
        });
    }

    it('channel_opened and relayer fees keep their body in the message cell (lump price only)', () => {
        expect(lumpOnly.length).toBeGreaterThan(0);
        for (const [label, inRoot] of lumpOnly) expect([label, inRoot]).toEqual([label, true]);
    });

    for (const name of ['FWD_INIT', 'FWD_SETTLE', 'FWD_PAYOUT_RECORD', 'FWD_UPDATE']) {
        it(`${name} bounds the message it prices`, () => {
            const { bits, cells } = sizes[name];
            expect([name, bits <= constant(`${name}_BITS`), cells <= constant(`${name}_CELLS`)]).toEqual([name, true, true]);
        });
    }
});
