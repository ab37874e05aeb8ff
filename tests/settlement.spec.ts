// Settlement: SubmitReceipts to a Worker, receipt checks there, settle to the Escrow, the checks
// there, payments (worker share, relayer fee, protocol fee), logs, bounces, batches.
import '@ton/test-utils';
import { BlockchainSnapshot, SandboxContract, SendMessageResult } from '@ton/sandbox';
import { beginCell, toNano } from '@ton/core';
import { Err, MAX_BATCH, Op, REGISTER_GAS, SUBMIT_PER_RECEIPT } from '../wrappers/constants';
import { Root } from '../wrappers/Root';
import { Escrow } from '../wrappers/Escrow';
import { Worker } from '../wrappers/Worker';
import { Fields, decode, encode, typeDef } from '../wrappers/schema';
import {
    Env, MEASUREMENT, MODEL_A, MODEL_B, NOW, PARAMS, createEscrow, keys, openJobFields, receiptBody, receiptLinks,
    registerWorker, setupRoot, signReceipt, submitValue, workerRecord,
} from './helpers/fixture';

const MAX_COST = toNano('0.1');
const RELAYER_BPS = 500n;

function logs(r: SendMessageResult, name: string): Fields[] {
    const tag = typeDef(name).tag;
    return r.transactions
        .flatMap((t) => t.outMessages.values())
        .filter((m) => m.info.type === 'external-out' && m.body.beginParse().preloadUint(32) === tag)
        .map((m) => decode(name, m.body));
}

describe('Settlement', () => {
    let env: Env;
    let worker: SandboxContract<Worker>;
    let escrow: SandboxContract<Escrow>;
    let snap: BlockchainSnapshot;
    const k = keys(1);

    beforeAll(async () => {
        env = await setupRoot();
        worker = (await registerWorker(env, env.workerOwner, k, PARAMS.min_stake, workerRecord(k, { models: [MODEL_A, MODEL_B] }))).worker;
        escrow = (await createEscrow(env, env.client, toNano('5'))).escrow;
        await escrow.send(env.client.getSender(), toNano('0.05'), 'open_job', openJobFields(env, { max_cost: MAX_COST }));
        snap = env.blockchain.snapshot();
    });
    beforeEach(async () => {
        await env.blockchain.loadFrom(snap);
    });

    const body = (over: Partial<Fields> = {}) => receiptBody(escrow.address, worker.address, over);
    const submit = (receipts: Fields[], value = submitValue(receipts.length), count = receipts.length, to = worker) =>
        to.send(env.relayer.getSender(), value, 'submit_receipts', { count, receipts: receiptLinks(receipts) });
    const settleTx = (_r: SendMessageResult) => ({ from: worker.address, to: escrow.address, op: Op.settle });

    it('settles one receipt: pays the worker, the relayer and the protocol; frees the rest', async () => {
        const free0 = (await escrow.getState()).free;
        const b = body();
        const cost: bigint = b.cost;
        const r = await submit([signReceipt(b, k)]);
        expect(r.transactions).toHaveTransaction({ ...settleTx(r), success: true });
        const relayerFee = (cost * RELAYER_BPS) / 10000n;
        const protocolFee = (cost * BigInt(PARAMS.protocol_fee_bps)) / 10000n;
        const share = cost - relayerFee - protocolFee;
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.relayer.address, op: Op.relayerFee, value: relayerFee });
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: worker.address, op: Op.payWorker, success: true });
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: env.relayer.address, op: Op.excesses });
        expect((await worker.getState()).earned).toBe(share);
        const st = await escrow.getState();
        expect(st.locked).toBe(0n);
        expect(st.fees_due).toBe(protocolFee);
        expect(st.free).toBe(free0 + MAX_COST - cost);
        expect((await escrow.getJob(1n)).found).toBe(false);
        const [log] = logs(r, 'log_settled');
        expect(log.job_id).toBe(1n);
        expect(log.cost).toBe(cost);
        expect(log.receipt_hash.equals(encode('receipt_body', b).hash())).toBe(true);
    });

    it('collect_fees pays the accumulated protocol fee to the treasury', async () => {
        await submit([signReceipt(body(), k)]);
        const due = (await escrow.getState()).fees_due;
        const r = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'collect_fees');
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.treasury.address, op: Op.payout, value: due });
        expect((await escrow.getState()).fees_due).toBe(0n);
    });

    it('close pays the protocol fees due to the treasury and the rest to the owner', async () => {
        await submit([signReceipt(body(), k)]);
        const due = (await escrow.getState()).fees_due;
        expect(due).toBeGreaterThan(0n);
        const r = await escrow.send(env.client.getSender(), toNano('0.05'), 'close');
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.treasury.address, op: Op.payout, value: due });
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: env.client.address, op: Op.payout, value: (v) => v! > toNano('4.8') });
    });

    it('settles a batch of 10 receipts for 10 jobs', async () => {
        const receipts = [signReceipt(body(), k)];
        for (let j = 2n; j <= 10n; j++) {
            await escrow.send(env.client.getSender(), toNano('0.05'), 'open_job', openJobFields(env, { job_id: j, max_cost: MAX_COST }));
            receipts.push(signReceipt(body({ job_id: j }), k));
        }
        const r = await submit(receipts);
        for (let j = 1n; j <= 10n; j++) expect((await escrow.getJob(j)).found).toBe(false);
        expect(r.transactions.filter((t) => t.inMessage?.body.beginParse().preloadUint(32) === Op.payWorker && t.description.type === 'generic' && t.description.computePhase.type === 'vm' && t.description.computePhase.success)).toHaveLength(10);
        expect((await escrow.getState()).locked).toBe(0n);
    });

    it('skips and logs a receipt with a bad signature; the rest of the batch settles', async () => {
        await escrow.send(env.client.getSender(), toNano('0.05'), 'open_job', openJobFields(env, { job_id: 2n }));
        const forged = signReceipt(body(), keys(66));
        const r = await submit([forged, signReceipt(body({ job_id: 2n }), k)]);
        const [skipped] = logs(r, 'log_receipt_skipped');
        expect(skipped).toEqual({ query_id: 0n, index: 0, error: Err.BadSignature });
        expect((await escrow.getJob(1n)).found).toBe(true);
        expect((await escrow.getJob(2n)).found).toBe(false);
    });

    it('skips receipts naming another worker, an unserved model or a wrong cost', async () => {
        const other = signReceipt(body({ worker: env.stranger.address }), k);
        const unserved = signReceipt(body({ model_id: 42 }), k);
        const wrongCost = signReceipt({ ...body(), cost: body().cost + 1n }, k);
        const r = await submit([other, unserved, wrongCost]);
        expect(logs(r, 'log_receipt_skipped').map((l) => [l.index, l.error])).toEqual([
            [0, Err.WrongWorker],
            [1, Err.ModelNotServed],
            [2, Err.WrongCost],
        ]);
        expect(r.transactions).not.toHaveTransaction({ to: escrow.address });
        expect((await escrow.getJob(1n)).found).toBe(true);
    });

    it('a replayed receipt bounces at the Escrow (JobNotFound) and the Worker absorbs the bounce', async () => {
        const receipt = signReceipt(body(), k);
        await submit([receipt]);
        const earned = (await worker.getState()).earned;
        const r = await submit([receipt]);
        expect(r.transactions).toHaveTransaction({ ...settleTx(r), success: false, exitCode: Err.JobNotFound });
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: worker.address, inMessageBounced: true, success: true });
        expect((await worker.getState()).earned).toBe(earned);
    });

    it('a second, different receipt for a settled job fails (double settlement)', async () => {
        await submit([signReceipt(body(), k)]);
        const r = await submit([signReceipt(body({ tokens_out: 1 }), k)]);
        expect(r.transactions).toHaveTransaction({ ...settleTx(r), success: false, exitCode: Err.JobNotFound });
    });

    it('accepts a settlement at deadline + grace exactly and rejects one a second later', async () => {
        const deadline = NOW + 600;
        env.blockchain.now = deadline + PARAMS.grace_period;
        const edge = await submit([signReceipt(body(), k)]);
        expect(edge.transactions).toHaveTransaction({ ...settleTx(edge), success: true });
        await env.blockchain.loadFrom(snap);
        env.blockchain.now = deadline + PARAMS.grace_period + 1;
        const late = await submit([signReceipt(body(), k)]);
        expect(late.transactions).toHaveTransaction({ ...settleTx(late), success: false, exitCode: Err.SettlementTooLate });
    });

    it('rejects a cost above max_cost (max_cost itself passes)', async () => {
        // 1001 * 1000 + 33333 * 3000 = max_cost + 1000.
        const over = await submit([signReceipt(body({ tokens_in: 1001, tokens_out: 33333 }), k)]);
        expect(over.transactions).toHaveTransaction({ ...settleTx(over), success: false, exitCode: Err.CostAboveMax });
        const exact = await submit([signReceipt(body({ tokens_in: 100_000, tokens_out: 0 }), k)]);
        expect(exact.transactions).toHaveTransaction({ ...settleTx(exact), success: true });
        expect((await worker.getState()).earned).toBe(MAX_COST - (MAX_COST * (RELAYER_BPS + 100n)) / 10000n);
    });

    it('rejects another model than the job', async () => {
        const r = await submit([signReceipt(body({ model_id: MODEL_B }), k)]);
        expect(r.transactions).toHaveTransaction({ ...settleTx(r), success: false, exitCode: Err.WrongModel });
    });

    it('rejects another input commitment than the job', async () => {
        const b = body();
        b.commitments = { ...b.commitments, input_commitment: Buffer.alloc(32, 0x99) };
        const r = await submit([signReceipt(b, k)]);
        expect(r.transactions).toHaveTransaction({ ...settleTx(r), success: false, exitCode: Err.WrongInput });
    });

    it('rejects a worker other than the one the job named; accepts the named one', async () => {
        const k2 = keys(2);
        const other = (await registerWorker(env, env.stranger, k2)).worker;
        await escrow.send(env.client.getSender(), toNano('0.05'), 'open_job', openJobFields(env, { job_id: 2n }, worker.address));
        const wrong = await submit([signReceipt(receiptBody(escrow.address, other.address, { job_id: 2n }), k2)], undefined, undefined, other);
        expect(wrong.transactions).toHaveTransaction({ from: other.address, to: escrow.address, success: false, exitCode: Err.WrongWorkerForJob });
        const right = await submit([signReceipt(body({ job_id: 2n }), k)]);
        expect(right.transactions).toHaveTransaction({ ...settleTx(right), success: true });
    });

    it('rejects a settlement from a forged Worker (NotGenuineWorker)', async () => {
        // A wallet claiming to be the worker's contract, with every field right.
        const claim = (owner: Fields['worker_owner']) => ({
            worker_owner: owner, job_id: 1n, model_id: MODEL_A, cost: 1000n, input_commitment: body().commitments.input_commitment,
            receipt_hash: Buffer.alloc(32),
        });
        const r = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'settle', claim(env.workerOwner.address));
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotGenuineWorker });
        // The stranger's own "worker owner" claim computes to another address than its wallet.
        const self = await escrow.send(env.stranger.getSender(), toNano('0.05'), 'settle', claim(env.stranger.address));
        expect(self.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotGenuineWorker });
        expect((await escrow.getJob(1n)).found).toBe(true);
    });

    it('rejects a real Worker deployed by another Root (same code, attacker-owned Root)', async () => {
        // The attacker runs its own Root with the genuine code and registers a Worker there: the
        // code is right but the Worker's address depends on the Root, so this Escrow refuses it.
        const { blockchain, codes, stranger } = env;
        const rogueRoot = blockchain.openContract(
            Root.createFromConfig(
                {
                    owner: stranger.address,
                    pending_owner: null,
                    params: { ...PARAMS, treasury: stranger.address },
                    policy: { allowed_kinds: 0xff, measurements: [MEASUREMENT] },
                    models: [{ key: MODEL_A, value: Buffer.alloc(32) }],
                    codes: { worker_code: codes.worker, escrow_code: codes.escrow },
                },
                codes.root,
            ),
        );
        await rogueRoot.sendDeploy(stranger.getSender(), toNano('1'));
        const kr = keys(77);
        await rogueRoot.send(stranger.getSender(), PARAMS.min_stake + REGISTER_GAS, 'register_worker', {
            stake: PARAMS.min_stake, record: workerRecord(kr),
        });
        const rogue = blockchain.openContract(Worker.createFromAddress(await rogueRoot.getWorkerAddress(stranger.address)));
        expect((await rogue.getState()).status).toBe(1);
        const r = await submit([signReceipt(receiptBody(escrow.address, rogue.address), kr)], undefined, undefined, rogue);
        expect(r.transactions).toHaveTransaction({ from: rogue.address, to: escrow.address, success: false, exitCode: Err.NotGenuineWorker });
        expect((await escrow.getJob(1n)).found).toBe(true);
    });

    it('rejects too little value for the declared batch, and batches above MAX_BATCH', async () => {
        const short = await submit([signReceipt(body(), k)], submitValue(1) - 1n);
        expect(short.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
        const lying = await submit([signReceipt(body(), k)], submitValue(1), 2);
        expect(lying.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEnoughValue });
        const big = await submit([signReceipt(body(), k)], submitValue(1) + SUBMIT_PER_RECEIPT * BigInt(MAX_BATCH), MAX_BATCH + 1);
        expect(big.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.BatchTooLarge });
        expect((await escrow.getJob(1n)).found).toBe(true);
    });

    it('an unbonding worker still settles', async () => {
        await worker.send(env.workerOwner.getSender(), toNano('0.1'), 'unbond');
        const r = await submit([signReceipt(body(), k)]);
        expect(r.transactions).toHaveTransaction({ ...settleTx(r), success: true });
    });

    it('a bounced payment returns to the client free balance and changes no bookkeeping', async () => {
        // A genuine Worker never refuses a backed PayWorker, so the bounce is injected directly.
        const st0 = await escrow.getState();
        const bounced = await env.blockchain.sendMessage({
            info: {
                type: 'internal', ihrDisabled: true, bounce: false, bounced: true, src: worker.address, dest: escrow.address,
                value: { coins: toNano('0.01') }, ihrFee: 0n, forwardFee: 0n, createdLt: 0n, createdAt: NOW,
            },
            body: beginCell().storeUint(0xffffffff, 32).storeUint(Op.payWorker, 32).storeUint(0, 64).endCell(),
        });
        expect(bounced.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const st1 = await escrow.getState();
        expect(st1.locked).toBe(st0.locked);
        expect(st1.fees_due).toBe(st0.fees_due);
        expect(st1.free).toBe(st0.free + toNano('0.01') - bounced.transactions[0].totalFees.coins);
    });
});

