// The local network's real-network behaviour (scripts/localnet/server.js): block timing, a lagging
// v3 indexer, duplicate-seqno drops, toncenter's rate limit and page cap. The server runs as a
// child process and is driven over HTTP with a real wallet v4, as the Rust sdk drives it.
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import { Address, SendMode, beginCell, external, internal, storeMessage, toNano } from '@ton/core';
import { keyPairFromSeed } from '@ton/crypto';
import { WalletContractV4 } from '@ton/ton';

const SERVER = path.resolve(__dirname, '..', 'scripts', 'localnet', 'server.js');
const BLOCK_MS = 400;
// Long enough that a step between the block and the index is never mistaken for the index.
const INDEX_LAG_MS = 1000;

interface Net {
    url: string;
    child: ChildProcess;
    stderr: string[];
}

async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Net> {
    const child = spawn(process.execPath, [SERVER, '--port', '0', ...args], {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stderr: string[] = [];
    child.stderr!.on('data', (d) => stderr.push(String(d)));
    const lines = readline.createInterface({ input: child.stdout! });
    const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`localnet did not start: ${stderr.join('')}`)), 30000);
        lines.on('line', (l) => {
            if (l.startsWith('COCOON_LOCALNET_URL=')) {
                clearTimeout(timer);
                resolve(l.slice('COCOON_LOCALNET_URL='.length).trim());
            }
        });
        child.on('exit', (code) => reject(new Error(`localnet exited ${code}: ${stderr.join('')}`)));
    });
    return { url, child, stderr };
}

function stop(net: Net | undefined) {
    net?.child.kill('SIGTERM');
}

async function call(net: Net, route: string, body?: object, headers: Record<string, string> = {}) {
    const r = await fetch(`${net.url}${route}`, {
        method: body ? 'POST' : 'GET',
        headers: { 'content-type': 'application/json', ...headers },
        body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: (await r.json()) as any };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Wallet {
    readonly contract: WalletContractV4;
    private readonly secretKey: Buffer;

    constructor(seed: number) {
        const k = keyPairFromSeed(Buffer.alloc(32, seed));
        this.contract = WalletContractV4.create({ workchain: 0, publicKey: k.publicKey });
        this.secretKey = k.secretKey;
    }

    get address(): Address {
        return this.contract.address;
    }

    /** A signed external carrying one transfer of `value` to `to`, as a base64 BOC. */
    transfer(seqno: number, to: Address, value: bigint, memo: string): { boc: string; hash: string } {
        const body = this.contract.createTransfer({
            seqno,
            secretKey: this.secretKey,
            sendMode: SendMode.PAY_GAS_SEPARATELY,
            timeout: Math.floor(Date.now() / 1000) + 60,
            messages: [internal({ to, value, bounce: false, body: memo })],
        });
        const init = seqno === 0 ? this.contract.init : undefined;
        const msg = beginCell().store(storeMessage(external({ to: this.address, init, body }))).endCell();
        return { boc: msg.toBoc().toString('base64'), hash: msg.hash().toString('hex') };
    }
}

/** Polls `probe` until it holds (at most ~10 s). */
async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 200; i++) {
        if (await probe()) return;
        await sleep(50);
    }
    throw new Error(`timed out waiting for ${what}`);
}

/** Waits until a new block has just been made, so that a step can finish before the next one. */
async function nextBlock(net: Net): Promise<void> {
    const seqno = async () => (await call(net, '/api/v2/getMasterchainInfo')).json.result.last.seqno;
    const start = await seqno();
    for (let i = 0; i < 200 && (await seqno()) === start; i++) await sleep(5);
}

async function seqnoOf(net: Net, a: Address): Promise<number> {
    const r = await call(net, '/api/v2/getWalletInformation?address=' + a.toString());
    expect(r.status).toBe(200);
    return r.json.result.seqno;
}

async function v2Count(net: Net, a: Address): Promise<number> {
    const r = await call(net, `/api/v2/getTransactions?address=${a.toString()}&limit=100`);
    return r.json.result.length;
}

async function v3ByMessage(net: Net, hash: string): Promise<number> {
    const r = await call(net, `/api/v3/transactionsByMessage?msg_hash=${hash}`);
    return r.json.transactions.length;
}

describe('localnet with block timing', () => {
    let net: Net;
    const alice = new Wallet(11);
    const bob = new Wallet(12);

    beforeAll(async () => {
        net = await start(['--block-interval', String(BLOCK_MS), '--index-lag', String(INDEX_LAG_MS)]);
    });
    afterAll(() => stop(net));

    it('applies a faucet transfer only at a block boundary', async () => {
        const before = await call(net, '/api/v2/getMasterchainInfo');
        const r = await call(net, '/localnet/faucet', { address: alice.address.toString(), amount: toNano('10').toString() });
        expect(r.status).toBe(200);
        expect(r.json.transaction_id).not.toBeNull();
        // The answer waited for the block that carried it.
        const after = await call(net, '/api/v2/getMasterchainInfo');
        expect(after.json.result.last.seqno).toBeGreaterThan(before.json.result.last.seqno);
        const bal = await call(net, '/api/v2/getAddressBalance?address=' + alice.address.toString());
        expect(BigInt(bal.json.result)).toBe(toNano('10'));
    });

    it('answers a send at once and executes it in the next block; v3 sees it after the lag', async () => {
        const before = await call(net, '/api/v2/getMasterchainInfo');
        const { boc, hash } = alice.transfer(0, bob.address, toNano('1'), 'first');
        await nextBlock(net);
        const sent = await call(net, '/api/v3/message', { boc });
        expect(sent.status).toBe(200);
        expect(sent.json.message_hash_norm).toBeDefined();
        // Broadcast does not wait for a block: nothing has happened yet, no transaction is visible.
        expect(await v2Count(net, alice.address)).toBe(1); // the faucet's
        expect(await v3ByMessage(net, hash)).toBe(0);

        // Wait for the block: v2 (liteserver) sees it first...
        await waitFor('the block', async () => (await v2Count(net, alice.address)) === 2);
        const after = await call(net, '/api/v2/getMasterchainInfo');
        expect(after.json.result.last.seqno).toBeGreaterThan(before.json.result.last.seqno);
        expect(await seqnoOf(net, alice.address)).toBe(1);
        // ...and the v3 indexer only after its lag.
        expect(await v3ByMessage(net, hash)).toBe(0);
        await waitFor('the index', async () => (await v3ByMessage(net, hash)) === 1);
    });

    it('accepts two messages with the same seqno at broadcast and drops one at execution', async () => {
        const seqno = await seqnoOf(net, alice.address);
        const a = alice.transfer(seqno, bob.address, toNano('1'), 'racer a');
        const b = alice.transfer(seqno, bob.address, toNano('2'), 'racer b');
        expect(a.hash).not.toBe(b.hash);
        const [ra, rb] = await Promise.all([
            call(net, '/api/v3/message', { boc: a.boc }),
            call(net, '/api/v2/sendBoc', { boc: b.boc }),
        ]);
        expect([ra.status, rb.status]).toEqual([200, 200]);

        const found = async () => (await v3ByMessage(net, a.hash)) + (await v3ByMessage(net, b.hash));
        await waitFor('one of the two indexed', async () => (await found()) > 0);
        // Another block and the lag later, still exactly one of them ran.
        await sleep(BLOCK_MS + INDEX_LAG_MS);
        expect(await found()).toBe(1);
        expect(await seqnoOf(net, alice.address)).toBe(seqno + 1);
        expect(net.stderr.join('')).toMatch(/dropped external/);
    });

    it('refuses at broadcast what the wallet would never accept', async () => {
        const seqno = await seqnoOf(net, alice.address);
        // A seqno already used: the liteserver's check fails at once, with toncenter's wording.
        const stale = alice.transfer(seqno - 1, bob.address, 1n, 'stale');
        const r = await call(net, '/api/v2/sendBoc', { boc: stale.boc });
        expect(r.status).toBe(500);
        expect(r.json.error).toMatch(/External message was not accepted/);
        // The check left no trace on the state.
        expect(await seqnoOf(net, alice.address)).toBe(seqno);
    });

    it('refuses v3 pages above 1000 with 422', async () => {
        const r = await call(net, `/api/v3/transactions?account=${alice.address.toString()}&limit=1001`);
        expect(r.status).toBe(422);
        const ok = await call(net, `/api/v3/transactions?account=${alice.address.toString()}&limit=1000`);
        expect(ok.status).toBe(200);
    });
});

describe('localnet rate limit', () => {
    let net: Net | undefined;
    afterEach(() => stop(net));

    it('answers 429 over the keyless limit, counts keys apart, never limits the dev routes', async () => {
        net = await start(['--rate-limit', '1', '--rate-limit-keyed', '10']);
        const info = '/api/v2/getMasterchainInfo';
        expect((await call(net, info)).status).toBe(200);
        const limited = await call(net, info);
        expect(limited.status).toBe(429);
        expect(limited.json).toEqual({ ok: false, error: 'Ratelimit exceed', code: 429 });
        // v3 shares the budget.
        expect((await call(net, '/api/v3/transactions?account=' + new Wallet(13).address.toString())).status).toBe(429);
        // A key has its own, larger budget: of 20 requests at once, the first ten pass (and maybe
        // one more per 100 ms they take), the rest are refused.
        const keyed = await Promise.all(
            Array.from({ length: 20 }, () => call(net!, info, undefined, { 'X-API-Key': 'k1' })),
        );
        const passed = keyed.filter((r) => r.status === 200).length;
        expect(passed).toBeGreaterThanOrEqual(10);
        expect(keyed.filter((r) => r.status === 429).length).toBe(20 - passed);
        expect(passed).toBeLessThan(20);
        // Development routes are not part of the API.
        expect((await call(net, '/localnet/time', { advance: '0' })).status).toBe(200);
        // The bucket refills.
        await sleep(1100);
        expect((await call(net, info)).status).toBe(200);
    });

    it('reads its settings from the environment and refuses bad values', async () => {
        net = await start([], { COCOON_LOCALNET_RATE_LIMIT: '1' });
        expect((await call(net, '/api/v2/getMasterchainInfo')).status).toBe(200);
        expect((await call(net, '/api/v2/getMasterchainInfo')).status).toBe(429);
        stop(net);
        net = undefined;

        const bad = spawn(process.execPath, [SERVER, '--block-interval', 'fast'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        bad.stderr!.on('data', (d) => (err += String(d)));
        const code = await new Promise((r) => bad.on('exit', r));
        expect(code).toBe(2);
        expect(err).toMatch(/--block-interval must be an integer/);
    });
});

// Keeps the instant default honest: a send is executed inside its HTTP call.
describe('localnet instant mode', () => {
    let net: Net | undefined;
    afterAll(() => stop(net));

    it('executes a send before answering', async () => {
        net = await start([]);
        const w = new Wallet(14);
        await call(net, '/localnet/faucet', { address: w.address.toString(), amount: toNano('5').toString() });
        const { boc, hash } = w.transfer(0, new Wallet(15).address, toNano('1'), 'instant');
        expect((await call(net, '/api/v3/message', { boc })).status).toBe(200);
        expect(await seqnoOf(net, w.address)).toBe(1);
        expect(await v3ByMessage(net, hash)).toBe(1);

        // Get-method stacks in toncenter's real shapes: null is an empty list, numbers are hex.
        const plugins = await call(net, '/api/v2/runGetMethod', {
            address: w.address.toString(), method: 'get_plugin_list', stack: [],
        });
        expect(plugins.json.result.exit_code).toBe(0);
        expect(plugins.json.result.stack).toEqual([['list', { '@type': 'tvm.list', elements: [] }]]);
        const seqno = await call(net, '/api/v2/runGetMethod', { address: w.address.toString(), method: 'seqno', stack: [] });
        expect(seqno.json.result.stack).toEqual([['num', '0x1']]);
    });
});
