// Finding 9: "signatures carry no network identity: a testnet receipt plus a mainnet receipt slash
// a mainnet worker". In v2 receipts and vouchers name the network's global id (config param 19,
// read on-chain with GLOBALID; the sandbox's config is mainnet's, -239): a testnet receipt is
// never an equivocation partner of a mainnet one, testnet receipts are not slashable here, and
// neither testnet receipts nor testnet vouchers settle.
import '@ton/test-utils';
import { Err, GLOBAL_ID_MAINNET, GLOBAL_ID_TESTNET, WorkerStatus } from '../../wrappers/v2/constants';
import { GAS, PARAMS, Session, ZERO, channelRef, nextAcc, receiptBody, signReceipt, signVoucher, voucherBody } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 9: network identity', () => {
    it('the contracts read the network global id on-chain', async () => {
        const { escrow } = await baseline();
        expect(await escrow.getNetworkGlobalId()).toBe(GLOBAL_ID_MAINNET);
    });

    it('a testnet receipt and a mainnet receipt of the same channel and seq do not slash', async () => {
        const { env, k, worker, escrow, channelId } = await baseline();
        const main = channelRef(env.root.address, escrow.address, channelId, GLOBAL_ID_MAINNET);
        const test = channelRef(env.root.address, escrow.address, channelId, GLOBAL_ID_TESTNET);
        const report = (a: any, b: any) => worker.send(env.stranger.getSender(), GAS, 'report_equivocation', {
            key_a: k.publicKey, receipt_a: a, key_b: k.publicKey, receipt_b: b,
        });
        const mixed = await report(signReceipt(receiptBody(main, worker.address, 1, ZERO), k), signReceipt(receiptBody(test, worker.address, 1, ZERO, { tokens_out: 5 }), k));
        expect(mixed.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.NotEquivocation });
        const testnet = await report(signReceipt(receiptBody(test, worker.address, 1, ZERO), k), signReceipt(receiptBody(test, worker.address, 1, ZERO, { tokens_out: 5 }), k));
        expect(testnet.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WrongNetwork });
        expect((await worker.getState())).toMatchObject({ status: WorkerStatus.Active, stake: PARAMS.min_stake });
    });

    it('a testnet receipt is refused by the Worker, a testnet voucher by the Escrow', async () => {
        const { env, k, worker, escrow, channelId } = await baseline();
        const test = channelRef(env.root.address, escrow.address, channelId, GLOBAL_ID_TESTNET);
        const s = new Session(test, worker.address, k);
        s.request();
        const r = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', s.settlement());
        expect(r.transactions).toHaveTransaction({ to: worker.address, success: false, exitCode: Err.WrongNetwork });
        const main = channelRef(env.root.address, escrow.address, channelId);
        const body = receiptBody(main, worker.address, 1, ZERO);
        const v = signVoucher(voucherBody(test, body.cost, 1, nextAcc(ZERO, body)));
        const r2 = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', { receipt: signReceipt(body, k), voucher: v });
        // The Escrow rebuilds the voucher body with this network's global id: a testnet voucher's
        // signature does not match it (rule changed from WrongNetwork when vouchers stopped
        // travelling whole).
        expect(r2.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.BadVoucherSignature });
    });
});
