// Gas and all-in fees of the v2 operations at the sandbox's bundled (mainnet, pre-2026-cut) network
// config, with real v4 wallets as senders, and the on-chain TON per request of a channel of 1, 100
// and 10,000 requests settled once with the client's final voucher (open + that one settlement,
// which also closes the channel, divided by the requests). The non-cooperative path (settle, request
// close, close) is measured once per operation.
// Prints the table and fails when a figure drifts from contracts/v2/gas-snapshot.json;
// `npm run gas:v2:update` rewrites it.
import '@ton/test-utils';
import * as fs from 'fs';
import * as path from 'path';
import { Blockchain, SendMessageResult } from '@ton/sandbox';
import { Address, fromNano, toNano } from '@ton/core';
import { Escrow, openChannelFields } from '../../wrappers/v2/Escrow';
import { Worker, submitSettlementFields } from '../../wrappers/v2/Worker';
import { Fields, encode } from '../../wrappers/v2/schema';
import { ZERO, Env, NOW, PARAMS, PRICE_IN, PRICE_OUT, Session, channelRef, keys, receiptBody, setupRoot, signReceipt, voucherKey, workerRecord } from './helpers/fixture';
import { TestWallet } from '../helpers/wallet';

const SNAPSHOT = path.resolve(__dirname, '..', '..', 'contracts', 'v2', 'gas-snapshot.json');

interface Row {
    op: string;
    gas: { [contract: string]: number };
    txs: number;
    feesNano: string;
}

async function measure(blockchain: Blockchain, names: Map<string, string>, op: string, run: () => Promise<SendMessageResult>): Promise<Row> {
    const touched = [...names.keys()].map((a) => Address.parse(a));
    const balance = async () => {
        let sum = 0n;
        for (const a of touched) sum += (await blockchain.getContract(a)).balance;
        return sum;
    };
    const before = await balance();
    const r = await run();
    const after = await balance();
    const gas: { [contract: string]: number } = {};
    for (const t of r.transactions) {
        const addr = new Address(0, Buffer.from(t.address.toString(16).padStart(64, '0'), 'hex')).toString();
        const name = names.get(addr);
        if (!name) throw new Error(`${op}: transaction on an unnamed account ${addr}`);
        if (t.description.type === 'generic' && t.description.computePhase.type === 'vm') {
            expect([op, name, t.description.computePhase.success]).toEqual([op, name, true]);
            gas[name] = (gas[name] ?? 0) + Number(t.description.computePhase.gasUsed);
        }
    }
    return { op, gas, txs: r.transactions.length, feesNano: (before - after).toString() };
}

const q = { query_id: 0n };
const REQUESTS = [1, 100, 10_000];
/** On-chain TON per request of a channel's whole life at 10,000 requests must stay within this (issue 13). */
const PER_REQUEST_LIMIT = toNano('0.000002');

describe('Gas v2', () => {
    const rows: Row[] = [];
    const perRequest: { n: number; settle: bigint; lifecycle: bigint }[] = [];

    it('measures every operation and the cost per request', async () => {
        const env: Env = await setupRoot();
        const { blockchain, root } = env;
        const funder = await blockchain.treasury('funder');
        const workerWallet = await TestWallet.create(blockchain, 101, funder);
        const clientWallet = await TestWallet.create(blockchain, 102, funder);
        const relayerWallet = await TestWallet.create(blockchain, 103, funder);
        const reporterWallet = await TestWallet.create(blockchain, 104, funder);
        const k = keys(1);
        const workerAddr = await root.getWorkerAddress(workerWallet.address);
        const escrowAddr = await root.getEscrowAddress(clientWallet.address);
        const worker = blockchain.openContract(Worker.createFromAddress(workerAddr));
        const escrow = blockchain.openContract(Escrow.createFromAddress(escrowAddr));
        const names = new Map<string, string>([
            [root.address.toString(), 'root'],
            [workerAddr.toString(), 'worker'],
            [escrowAddr.toString(), 'escrow'],
            [workerWallet.address.toString(), 'worker wallet'],
            [clientWallet.address.toString(), 'client wallet'],
            [relayerWallet.address.toString(), 'relayer wallet'],
            [reporterWallet.address.toString(), 'reporter wallet'],
            [env.treasury.address.toString(), 'treasury'],
        ]);
        const m = async (op: string, run: () => Promise<SendMessageResult>) => {
            const row = await measure(blockchain, names, op, run);
            rows.push(row);
            return BigInt(row.feesNano);
        };

        await m('register worker', async () => {
            const fees = await root.getFees();
            return workerWallet.send(root.address, PARAMS.min_stake + fees.register, encode('register_worker', { ...q, stake: PARAMS.min_stake, record: workerRecord(k) }));
        });
        await m('create escrow + deposit', () => clientWallet.send(root.address, toNano('20'), encode('create_escrow', q)));
        await m('deposit', () => clientWallet.send(escrowAddr, toNano('1'), encode('deposit', q)));
        const ef = await escrow.getFees();
        const settleValue = (await worker.getFees()).settle;
        let nextId = (await escrow.getState()).next_channel_id;
        // The client tells the relayer its channel id off-chain (its first request names the channel)
        // unless it asks the Escrow to notify it: measured once, separately.
        const openFields = (amount: bigint, notify = 0): Fields => ({
            ...q, amount, worker_owner: workerWallet.address, expires_at: (blockchain.now ?? NOW) + 24 * 3600, price_in: PRICE_IN, price_out: PRICE_OUT,
            voucher_key: voucherKey.publicKey, route: { relayer: relayerWallet.address, relayer_fee_bps: 500 }, notify_relayer: notify,
        });

        // The non-cooperative path, once: settle with a plain voucher, request close, close after grace.
        {
            const id = nextId++;
            await m('open channel', () => clientWallet.send(escrowAddr, ef.open_channel, encode('open_channel', openChannelFields(openFields(toNano('1'))))));
            const s = new Session(channelRef(root.address, escrowAddr, id), workerAddr, k);
            s.advance(1);
            await m('settle (voucher)', () => workerWallet.send(workerAddr, settleValue, encode('submit_settlement', submitSettlementFields({ ...q, ...s.settlement() }))));
            await m('request close', () => clientWallet.send(escrowAddr, ef.request_close, encode('request_close', { ...q, channel_id: id })));
            blockchain.now = (blockchain.now ?? NOW) + PARAMS.grace_period + 1;
            await m('close', () => clientWallet.send(escrowAddr, ef.close_channel, encode('close_channel', { ...q, channel_id: id })));
            expect((await escrow.getChannel(id)).found).toBe(false);
            nextId++;
            await m('open channel, relayer notified', () => clientWallet.send(escrowAddr, ef.open_channel, encode('open_channel', openChannelFields(openFields(toNano('1'), 1)))));
            await m('close (nothing settled)', async () => {
                blockchain.now = (blockchain.now ?? NOW) + 24 * 3600 + PARAMS.grace_period + 1;
                return clientWallet.send(escrowAddr, ef.close_channel, encode('close_channel', { ...q, channel_id: id + 1n }));
            });
        }
        // A channel's whole life: open, n requests off-chain, one settlement with the client's final
        // voucher, which also closes the channel (the remainder returns to the free balance).
        for (const n of REQUESTS) {
            const id = nextId++;
            const amount = BigInt(n) * (100n * PRICE_IN + 200n * PRICE_OUT) + toNano('0.01');
            const label = ` (${n.toLocaleString('en')} request${n === 1 ? '' : 's'})`;
            const open = await m(`open channel${label}`, () => clientWallet.send(escrowAddr, ef.open_channel, encode('open_channel', openChannelFields(openFields(amount)))));
            const s = new Session(channelRef(root.address, escrowAddr, id), workerAddr, k);
            s.advance(n);
            const settle = await m(`final settle, closes${label}`, () => workerWallet.send(workerAddr, settleValue, encode('submit_settlement', submitSettlementFields({ ...q, ...s.finalSettlement() }))));
            expect((await escrow.getChannel(id)).found).toBe(false);
            perRequest.push({ n, settle: settle / BigInt(n), lifecycle: (open + settle) / BigInt(n) });
        }
        const id = nextId++;
        blockchain.now = (blockchain.now ?? NOW) + 1;
        await clientWallet.send(escrowAddr, ef.open_channel, encode('open_channel', openChannelFields(openFields(toNano('1')))));
        await m('top up', () => clientWallet.send(escrowAddr, ef.top_up, encode('top_up', { ...q, channel_id: id, amount: toNano('1') })));
        await m('withdraw', () => clientWallet.send(escrowAddr, ef.withdraw, encode('withdraw', { ...q, amount: toNano('1') })));
        await m('collect fees', () => reporterWallet.send(escrowAddr, toNano('0.05'), encode('collect_fees', q)));
        const ref = channelRef(root.address, escrowAddr, id);
        await m('slash (report equivocation)', async () =>
            reporterWallet.send(workerAddr, (await worker.getFees()).slash, encode('report_equivocation', {
                ...q, key_a: k.publicKey, receipt_a: signReceipt(receiptBody(ref, workerAddr, 1, ZERO), k),
                key_b: k.publicKey, receipt_b: signReceipt(receiptBody(ref, workerAddr, 1, ZERO, { tokens_out: 1 }), k),
            })));
        expect((await worker.getState()).status).toBe(3);
        // Issue 13: at 10,000 requests a channel's whole life (open + the settlement that closes
        // it) costs at most PER_REQUEST_LIMIT per request.
        const at10k = perRequest.filter((p) => p.n === 10_000);
        expect(at10k).toHaveLength(1);
        for (const p of at10k) expect(p.lifecycle).toBeLessThanOrEqual(PER_REQUEST_LIMIT);
    });

    afterAll(() => {
        if (rows.length === 0) return;
        const lines = [
            '',
            'v2 gas and all-in fees (sandbox mainnet config, pre-cut prices; senders are wallet v4; fees = TON burnt by the whole trace)',
            `${'operation'.padEnd(44)}${'txs'.padStart(4)}  ${'fees TON'.padStart(12)}  gas by contract`,
            ...rows.map(
                (r) =>
                    `${r.op.padEnd(44)}${String(r.txs).padStart(4)}  ${fromNano(r.feesNano).padStart(12)}  ` +
                    Object.entries(r.gas).map(([c, g]) => `${c} ${g}`).join(', '),
            ),
            '',
            'on-chain TON per request of a channel settled once with a final voucher: the settlement alone (it also closes), and the whole life (open + that settlement)',
            ...perRequest.map(
                (p) => `${p.n.toLocaleString('en').padStart(8)} requests  settlement ${fromNano(p.settle).padStart(12)}  whole life ${fromNano(p.lifecycle).padStart(12)} TON/request`,
            ),
            '',
        ];
        process.stdout.write(lines.join('\n') + '\n');
        if (process.env.GAS_SNAPSHOT_UPDATE === '1') {
            const perReq = perRequest.map((p) => ({ op: `per request, ${p.n} requests settled once`, settleNano: p.settle.toString(), lifecycleNano: p.lifecycle.toString() }));
            fs.writeFileSync(SNAPSHOT, JSON.stringify([...rows, ...perReq], null, 2) + '\n');
        }
    });

    it('matches the committed gas snapshot', () => {
        if (process.env.GAS_SNAPSHOT_UPDATE === '1') return;
        const committed = JSON.parse(fs.readFileSync(SNAPSHOT, 'utf-8'));
        const perReq = perRequest.map((p) => ({ op: `per request, ${p.n} requests settled once`, settleNano: p.settle.toString(), lifecycleNano: p.lifecycle.toString() }));
        expect([...rows, ...perReq]).toEqual(committed);
    });
});
