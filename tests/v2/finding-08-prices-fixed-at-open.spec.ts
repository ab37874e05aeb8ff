// Finding 8: "prices are not fixed when a job opens: a worker raised its price after the open and
// settled at 100x". In v2 the channel fixes its prices at open; a receipt whose cost is not its
// tokens at the channel's prices is refused by the Escrow (even with a voucher the client signed
// over it), whatever the worker publishes later.
//
// Design: the client states the prices in open_channel (it read them from the Worker record),
// rather than a Worker round trip at open: open stays one transaction, and the worker consents
// to the channel's prices by signing receipts the Escrow checks against them (a worker node serves
// no channel whose prices are below its own).
import '@ton/test-utils';
import { Err, Op } from '../../wrappers/v2/constants';
import { GAS, PRICE_IN, PRICE_OUT, Session, channelRef, valueOf, workerRecord } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 8: prices are fixed at open', () => {
    it('a 100x price raise after the open does not change what the channel pays', async () => {
        const { env, k, worker, escrow, channelId } = await baseline();
        const up = await worker.send(env.workerOwner.getSender(), GAS, 'update_record', {
            record: workerRecord(k, { price_in: PRICE_IN * 100n, price_out: PRICE_OUT * 100n }),
        });
        expect(up.transactions).toHaveTransaction({ from: env.root.address, to: worker.address, success: true });
        expect((await worker.getRecord()).price_in).toBe(PRICE_IN * 100n);
        const ch = await escrow.getChannel(channelId);
        expect([ch.price_in, ch.price_out]).toEqual([PRICE_IN, PRICE_OUT]);

        // A receipt at the new prices, even with a voucher over it, is refused.
        const ref = channelRef(env.root.address, escrow.address, channelId);
        const greedy = new Session(ref, worker.address, k, { in: PRICE_IN * 100n, out: PRICE_OUT * 100n });
        greedy.request();
        const r = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', greedy.settlement());
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.WrongCost });
        expect((await escrow.getChannel(channelId)).settled).toBe(0n);

        // At the channel's prices it settles, for exactly tokens x channel prices.
        const fair = new Session(ref, worker.address, k);
        fair.request();
        const ok = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', fair.settlement());
        expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
        expect((await escrow.getChannel(channelId)).settled).toBe(100n * PRICE_IN + 200n * PRICE_OUT);
        expect((await escrow.getChannel(channelId)).relayer_due).toBe(((100n * PRICE_IN + 200n * PRICE_OUT) * 500n) / 10000n);
    });
});
