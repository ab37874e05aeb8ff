// Finding 1: "a job that names no worker can be settled by any registered Worker". In v2 every
// channel names its Worker at open (the Escrow computes its address); a rogue Worker that signs a
// receipt for the channel, with the client's voucher it intercepted, is refused; the honest
// worker is then paid in full.
import '@ton/test-utils';
import { Err, Op } from '../../wrappers/v2/constants';
import { toNano } from '@ton/core';
import { Root } from '../../wrappers/v2/Root';
import { GAS, PARAMS, RELAYER_BPS, Session, channelRef, keys, registerWorker, rootData, valueOf } from './helpers/fixture';
import { baseline } from './helpers/baseline';

describe('Finding 1: only the chosen worker can be paid', () => {
    it('a rogue Worker settling the channel is refused with NotChannelWorker; the honest one is paid exactly', async () => {
        const { env, worker, escrow, channelId, session } = await baseline();
        const rogueOwner = await env.blockchain.treasury('rogue');
        const rk = keys(66);
        const rogue = (await registerWorker(env, rogueOwner, rk)).worker;
        const ref = channelRef(env.root.address, escrow.address, channelId);

        // The honest session: the client signed a voucher for 3 requests.
        const honest = session();
        for (let i = 0; i < 3; i++) honest.request();

        // The rogue signs a receipt at the maximum the channel holds, and pairs it with the voucher
        // it intercepted (or one over its own receipt: the client never signed that).
        const fake = new Session(ref, rogue.address, rk);
        fake.request({ tokens_in: 0, tokens_out: 333_333 });
        const stolen = await rogue.send(rogueOwner.getSender(), GAS, 'submit_settlement', { receipt: fake.lastReceipt, voucher: honest.lastVoucher });
        expect(stolen.transactions).toHaveTransaction({ from: rogue.address, to: escrow.address, success: false, exitCode: Err.NotChannelWorker });
        const own = await rogue.send(rogueOwner.getSender(), GAS, 'submit_settlement', fake.settlement());
        expect(own.transactions).toHaveTransaction({ from: rogue.address, to: escrow.address, success: false, exitCode: Err.NotChannelWorker });
        // Nor can anyone post a settle straight to the Escrow.
        const direct = await escrow.send(rogueOwner.getSender(), GAS, 'settle', {
            channel_id: channelId, seq: 3, cumulative: honest.cumulative, final: 0,
            proof: { acc: honest.acc, voucher_signature: honest.lastVoucher!.signature, tokens_in: 0, tokens_out: 0, cost: 0n },
        });
        expect(direct.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Err.NotChannelWorker });
        expect((await escrow.getChannel(channelId)).settled).toBe(0n);

        // The honest settlement then goes through, for the full amount.
        const r = await worker.send(env.workerOwner.getSender(), GAS, 'submit_settlement', honest.settlement());
        expect(r.transactions).toHaveTransaction({ from: worker.address, to: escrow.address, success: true });
        const relayerFee = (honest.cumulative * BigInt(RELAYER_BPS)) / 10000n;
        // The relayer fee accrues on the channel (paid when it ends).
        expect((await escrow.getChannel(channelId)).relayer_due).toBe(relayerFee);
        expect((await escrow.getChannel(channelId)).settled).toBe(honest.cumulative);
        expect((await escrow.getState()).fees_due).toBe((honest.cumulative * BigInt(PARAMS.protocol_fee_bps)) / 10000n);
    });

    it('a real Worker of another Root (same code, attacker-owned Root) is refused too', async () => {
        const { env, k, worker, escrow, channelId, session } = await baseline();
        // The attacker deploys its own Root with the same codes and registers the worker owner's
        // twin there: same owner, same code, other Root, so another address.
        const attackerOwner = await env.blockchain.treasury('attacker-root-owner');
        const fakeRoot = env.blockchain.openContract(Root.createFromConfig(
            { ...rootData({ codes: env.codes, rootOwner: attackerOwner, treasury: attackerOwner }), owner: attackerOwner.address },
            env.codes.root,
        ));
        await fakeRoot.sendDeploy(attackerOwner.getSender(), toNano('1'));
        const twin = (await registerWorker({ ...env, root: fakeRoot }, env.workerOwner, k)).worker;
        expect(twin.address.equals(worker.address)).toBe(false);
        const s = session();
        s.request();
        // A receipt for the channel (naming the real Root) is refused by the twin: WrongRoot...
        const real = new Session(channelRef(env.root.address, escrow.address, channelId), twin.address, k);
        real.request();
        const r1 = await twin.send(env.workerOwner.getSender(), GAS, 'submit_settlement', { receipt: real.lastReceipt, voucher: s.lastVoucher });
        expect(r1.transactions).toHaveTransaction({ to: twin.address, success: false, exitCode: Err.WrongRoot });
        // ...and a receipt naming the fake Root reaches the Escrow only to be refused.
        const fake = new Session(channelRef(fakeRoot.address, escrow.address, channelId), twin.address, k);
        fake.request();
        const r = await twin.send(env.workerOwner.getSender(), GAS, 'submit_settlement', { receipt: fake.lastReceipt, voucher: s.lastVoucher });
        expect(r.transactions).toHaveTransaction({ from: twin.address, to: escrow.address, success: false, exitCode: Err.NotChannelWorker });
    });
});
