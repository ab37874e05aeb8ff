// Gas and all-in fees of every protocol operation, at the sandbox's bundled mainnet network config,
// with real v4 wallets as senders. Prints the table and fails when a figure drifts from the
// committed snapshot (contracts/gas-snapshot.json); `npm run gas:update` rewrites it.
import '@ton/test-utils';
import * as fs from 'fs';
import * as path from 'path';
import { Blockchain, SendMessageResult } from '@ton/sandbox';
import { Address, fromNano, toNano } from '@ton/core';
import { Escrow } from '../wrappers/Escrow';
import { Worker } from '../wrappers/Worker';
import { Fields, encode } from '../wrappers/schema';
import { REGISTER_GAS } from '../wrappers/constants';
import {
    Env, NOW, PARAMS, keys, openJobFields, receiptBody, receiptLinks, setupRoot, signReceipt, submitValue, workerRecord,
} from './helpers/fixture';
import { TestWallet } from './helpers/wallet';

const SNAPSHOT = path.resolve(__dirname, '..', 'contracts', 'gas-snapshot.json');

interface Row {
    op: string;
    gas: { [contract: string]: number };
    txs: number;
    feesNano: string;
}

/** Gas per contract (summed over its transactions) and all TON burnt by the whole trace. */
async function measure(
    blockchain: Blockchain,
    names: Map<string, string>,
    op: string,
    run: () => Promise<SendMessageResult>,
): Promise<Row> {
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

describe('Gas', () => {
    const rows: Row[] = [];

    it('measures every operation', async () => {
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
        const m = async (op: string, run: () => Promise<SendMessageResult>) => rows.push(await measure(blockchain, names, op, run));
        const body = (job: bigint, over: Partial<Fields> = {}) => receiptBody(escrowAddr, workerAddr, { job_id: job, ...over });
        const submit = (receipts: Fields[]) =>
            relayerWallet.send(workerAddr, submitValue(receipts.length), encode('submit_receipts', {
                query_id: 0n, count: receipts.length, receipts: receiptLinks(receipts),
            }));
        const open = (job: bigint) =>
            clientWallet.send(escrowAddr, toNano('0.02'), encode('open_job', {
                query_id: 0n, ...openJobFields(env, { job_id: job }), route: { relayer: relayerWallet.address, worker: null },
            }));

        await m('register worker', () =>
            workerWallet.send(root.address, PARAMS.min_stake + REGISTER_GAS, encode('register_worker', {
                query_id: 0n, stake: PARAMS.min_stake, record: workerRecord(k),
            })));
        await m('create escrow + deposit', () => clientWallet.send(root.address, toNano('10'), encode('create_escrow', { query_id: 0n })));
        await m('deposit', () => clientWallet.send(escrowAddr, toNano('1'), encode('deposit', { query_id: 0n })));
        await m('open job', () => open(1n));
        await m('submit + settle, 1 receipt', () => submit([signReceipt(body(1n), k)]));
        for (let j = 2n; j <= 11n; j++) await open(j);
        const ten: Fields[] = [];
        for (let j = 2n; j <= 11n; j++) ten.push(signReceipt(body(j), k));
        await m('submit + settle, 10 receipts', () => submit(ten));
        await open(12n);
        blockchain.now = NOW + 600 + PARAMS.grace_period + 1;
        await m('expire job', () => relayerWallet.send(escrowAddr, toNano('0.02'), encode('expire_job', { query_id: 0n, job_id: 12n })));
        await m('withdraw', () => clientWallet.send(escrowAddr, toNano('0.02'), encode('withdraw', { query_id: 0n, amount: toNano('1') })));
        await m('withdraw earnings', () =>
            workerWallet.send(workerAddr, toNano('0.02'), encode('withdraw_earnings', { query_id: 0n, amount: 1000n })));
        await m('slash (report equivocation)', () =>
            reporterWallet.send(workerAddr, toNano('0.05'), encode('report_equivocation', {
                query_id: 0n, receipt_a: signReceipt(body(20n), k), receipt_b: signReceipt(body(20n, { tokens_out: 1 }), k),
            })));
        expect((await escrow.getState()).locked).toBe(0n);
        expect((await worker.getState()).status).toBe(3);
    });

    afterAll(() => {
        if (rows.length === 0) return;
        const open = BigInt(rows.find((r) => r.op === 'open job')!.feesNano);
        const settle = BigInt(rows.find((r) => r.op === 'submit + settle, 1 receipt')!.feesNano);
        const lines = [
            '',
            'Gas and all-in fees (sandbox mainnet config; senders are wallet v4; fees = TON burnt by the whole trace)',
            `${'operation'.padEnd(32)}${'txs'.padStart(4)}  ${'fees TON'.padStart(12)}  gas by contract`,
            ...rows.map(
                (r) =>
                    `${r.op.padEnd(32)}${String(r.txs).padStart(4)}  ${fromNano(r.feesNano).padStart(12)}  ` +
                    Object.entries(r.gas).map(([c, g]) => `${c} ${g}`).join(', '),
            ),
            `${'open + settle one job'.padEnd(32)}${''.padStart(4)}  ${fromNano(open + settle).padStart(12)}`,
            '',
        ];
        process.stdout.write(lines.join('\n') + '\n');
        if (process.env.GAS_SNAPSHOT_UPDATE === '1') {
            fs.writeFileSync(SNAPSHOT, JSON.stringify(rows, null, 2) + '\n');
        }
    });

    it('matches the committed gas snapshot', () => {
        // Runs after the measurement (jest keeps declaration order within a file).
        if (process.env.GAS_SNAPSHOT_UPDATE === '1') return;
        const committed: Row[] = JSON.parse(fs.readFileSync(SNAPSHOT, 'utf-8'));
        expect(rows).toEqual(committed);
    });
});
