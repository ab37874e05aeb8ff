//! Protocol v2 on the real localnet, from Rust: a channel's whole on-chain life against the
//! compiled v2 contracts — open (one transaction, the id the Escrow assigned), receipts and
//! vouchers signed off-chain with `sdk::channel`, a settlement split to the nanoTON as the Escrow
//! computes it, an inclusion proof against the accumulator recorded in the settlement's payout,
//! top up, a final settlement closing the channel, a close after expiry + grace, withdrawal — and
//! the refusals (a voucher signed with another key, a settlement through another worker, a
//! receipt naming another Worker) as typed errors. Root's governance, the TEE policy included.

use std::collections::BTreeMap;

use cocoon_sdk::chain::{Message, TonCenterClient};
use cocoon_sdk::channel::{
    Accumulator, ChannelReceipt, ChannelRef, ChannelSource, InclusionProof, SignedChannelReceipt,
    SignedVoucher, Voucher,
};
use cocoon_sdk::contracts::v2::{
    ChainChannels, EscrowClient, Exit, OpenChannelArgs, WorkerClient, settlement_logs,
    verify_inclusion,
};
use cocoon_sdk::contracts::{ContractError, Outcome};
use cocoon_sdk::messages::v2::notify::{ChannelOpened, Payout, RelayerFee, payout_reason};
use cocoon_sdk::messages::v2::worker::SubmitSettlement;
use cocoon_sdk::receipt::{ReceiptCommitments, ReceiptHashes};
use cocoon_sdk::tlb::{TlbType, TonAddress};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::SendOptions;
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::{DevChainV2, RegisteredWorker, dev};
use ed25519_dalek::SigningKey;

const MODEL: u32 = 1;
const PRICE_IN: u128 = 1_000;
const PRICE_OUT: u128 = 3_000;
const RELAYER_BPS: u16 = 500;
const BPS: u128 = 10_000;

/// Every message `from` sent in `o` with this opcode: (destination, value, body).
fn sent<'o>(o: &'o Outcome, from: &'o TonAddress, op: u32) -> Vec<&'o Message> {
    o.txs
        .iter()
        .filter(|t| &t.account == from)
        .flat_map(|t| t.out_msgs.iter())
        .filter(|m| m.opcode == Some(op) && m.destination.is_some())
        .collect()
}

fn refusal<T: std::fmt::Debug>(r: Result<T, ContractError>) -> (Exit, String) {
    match r {
        Err(e) => (
            Exit::of(&e).unwrap_or_else(|| panic!("not a v2 refusal: {e}")),
            e.to_string(),
        ),
        Ok(v) => panic!("expected a refusal, got {v:?}"),
    }
}

/// The worker's side of one request: a receipt for the channel's next seq at its prices.
fn receipt(
    w: &RegisteredWorker,
    channel: &ChannelRef,
    acc: &Accumulator,
    tokens: (u32, u32),
    now: u32,
) -> SignedChannelReceipt {
    ChannelReceipt {
        channel: channel.clone(),
        seq: acc.seq() + 1,
        worker: w.address.clone(),
        model_id: MODEL,
        tokens_in: tokens.0,
        tokens_out: tokens.1,
        cost: u128::from(tokens.0) * PRICE_IN + u128::from(tokens.1) * PRICE_OUT,
        time: now,
        prev_acc: acc.acc(),
        hashes: ReceiptHashes {
            weights_hash: [0x11; 32],
            evidence_hash: w.evidence.hash(),
        },
        commitments: ReceiptCommitments {
            input_commitment: [0x21; 32],
            output_commitment: [0x22; 32],
        },
    }
    .sign(&w.signing)
    .unwrap()
}

/// The client's side: checks the receipt, appends it, and signs the voucher over it.
fn voucher(
    acc: &mut Accumulator,
    w: &RegisteredWorker,
    r: &SignedChannelReceipt,
    key: &SigningKey,
    fin: bool,
) -> SignedVoucher {
    r.verify_signature(&w.signing.verifying_key().to_bytes())
        .unwrap();
    acc.append(&r.body).unwrap();
    Voucher {
        channel: acc.channel().clone(),
        cumulative: acc.cumulative(),
        last_seq: acc.seq(),
        acc: acc.acc(),
        is_final: fin,
    }
    .sign(key)
    .unwrap()
}

#[tokio::test]
async fn a_channel_from_open_to_close_on_localnet() {
    let dev_chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(MODEL, [0xa1; 32])]),
    )
    .await
    .unwrap();
    let chain: &TonCenterClient = &dev_chain.chain;
    let opts = SendOptions::default();
    let root = dev_chain.root.clone();

    let worker = dev_chain
        .register_worker(7, &[MODEL], PRICE_IN, PRICE_OUT)
        .await
        .unwrap();
    let rogue = dev_chain
        .register_worker(9, &[MODEL], PRICE_IN, PRICE_OUT)
        .await
        .unwrap();
    let client = dev_chain.funded_wallet(100 * NANO_PER_TON).await.unwrap();
    let relayer = dev_chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let voucher_key = SigningKey::from_bytes(&[0x2a; 32]);
    let other_key = SigningKey::from_bytes(&[0x2b; 32]);

    // --- the worker as registered: active, its stake, its record, its fees from the config
    let wc = WorkerClient::for_owner(chain, &root, worker.owner.address())
        .await
        .unwrap();
    assert_eq!(wc.address(), &worker.address);
    let ws = wc.state().await.unwrap();
    assert_eq!((ws.status, ws.stake, ws.key_count), (1, dev::MIN_STAKE, 1));
    let rec = wc.record().await.unwrap();
    assert_eq!((rec.price_in, rec.price_out), (PRICE_IN, PRICE_OUT));
    assert!(
        wc.is_receipt_key_known(&worker.signing.verifying_key().to_bytes())
            .await
            .unwrap()
    );
    assert!(!wc.is_receipt_key_known(&[3; 32]).await.unwrap());
    let settle_fee = wc.fees().await.unwrap().settle;
    assert!(settle_fee > 0);

    // --- escrow: created through Root with a deposit
    let escrow = EscrowClient::for_owner(chain, &root, client.address())
        .await
        .unwrap();
    escrow
        .deposit(&client, 5 * NANO_PER_TON, &opts)
        .await
        .unwrap();
    let s0 = escrow.state().await.unwrap();
    assert!(s0.initialized);
    assert_eq!((s0.open_channels, s0.locked, s0.fees_due), (0, 0, 0));
    let cfg = escrow.config().await.unwrap();
    assert_eq!(
        (
            cfg.grace_period,
            cfg.protocol_fee_bps,
            cfg.max_channel_lifetime
        ),
        (
            dev::GRACE_PERIOD,
            dev::PROTOCOL_FEE_BPS,
            dev::MAX_CHANNEL_LIFETIME
        )
    );

    // --- open: one transaction carrying the amount; the Escrow assigns the id
    let now = dev_chain.now().await.unwrap();
    let amount = NANO_PER_TON;
    let args = OpenChannelArgs {
        amount,
        worker_owner: worker.owner.address().clone(),
        expires_at: now + 3600,
        price_in: rec.price_in,
        price_out: rec.price_out,
        voucher_key: voucher_key.verifying_key().to_bytes(),
        relayer: relayer.address().clone(),
        relayer_fee_bps: RELAYER_BPS,
        notify_relayer: true,
    };
    let opened = escrow
        .open_channel(&client, args.clone(), &opts)
        .await
        .unwrap();
    let channel = opened.channel.clone();
    let id = channel.channel_id;
    assert_eq!(opened.worker, worker.address);
    // Asked for: the relayer is told the id (the rest it reads with get_channel).
    let notices = sent(&opened.outcome, escrow.address(), ChannelOpened::OP);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].destination.as_ref(), Some(relayer.address()));
    let notice = ChannelOpened::from_cell(notices[0].body.as_ref().unwrap()).unwrap();
    assert_eq!(
        (notice.channel_id, notice.amount, notice.expires_at),
        (id, amount, args.expires_at)
    );
    assert_eq!((&channel.root, &channel.escrow), (&root, escrow.address()));
    assert_eq!(channel.global_id, escrow.global_id().await.unwrap());
    let s1 = escrow.state().await.unwrap();
    assert_eq!(
        (s1.open_channels, s1.locked, s1.next_channel_id),
        (1, amount, id + 1)
    );
    let st = escrow.channel(id).await.unwrap().expect("channel open");
    assert_eq!(st, opened.state);
    assert_eq!(st.channel, channel);
    assert_eq!((st.amount, st.settled, st.last_seq), (amount, 0, 0));
    assert_eq!((st.price_in, st.price_out), (PRICE_IN, PRICE_OUT));
    assert_eq!(
        (&st.worker, &st.worker_owner),
        (&worker.address, worker.owner.address())
    );
    assert_eq!(
        (&st.relayer, st.relayer_fee_bps),
        (relayer.address(), RELAYER_BPS)
    );
    assert_eq!(st.protocol_fee_bps, dev::PROTOCOL_FEE_BPS);
    assert_eq!(st.voucher_key, voucher_key.verifying_key().to_bytes());
    assert_eq!(st.settle_until, args.expires_at + dev::GRACE_PERIOD);
    assert!(st.serves_at(now));
    // The chain-backed source reads the very same state, and nothing for an unknown id.
    let source = ChainChannels::new(chain.clone());
    assert_eq!(
        source.channel(escrow.address(), id).await.unwrap(),
        Some(st.clone())
    );
    assert_eq!(
        source.channel(escrow.address(), id + 99).await.unwrap(),
        None
    );

    // --- two requests off-chain: receipts by the worker, vouchers by the client
    let mut acc = Accumulator::new(channel.clone(), st.price_in, st.price_out);
    let r1 = receipt(&worker, &channel, &acc, (100, 200), now);
    let v1 = voucher(&mut acc, &worker, &r1, &voucher_key, false);
    let r2 = receipt(&worker, &channel, &acc, (50, 10), now);
    let v2 = voucher(&mut acc, &worker, &r2, &voucher_key, false);
    assert_eq!(v1.body.cumulative, 100 * PRICE_IN + 200 * PRICE_OUT);
    let cumulative = acc.cumulative();
    assert_eq!(cumulative, 150 * PRICE_IN + 210 * PRICE_OUT);

    // --- refused: a voucher signed with another key (the Escrow's exit code, typed)
    let forged = Voucher { ..v2.body.clone() }.sign(&other_key).unwrap();
    let (exit, text) = refusal(
        wc.submit_settlement(&worker.owner, &r2, &forged, &opts)
            .await,
    );
    assert_eq!(exit, Exit::BadVoucherSignature);
    assert!(
        text.contains("BadVoucherSignature") && text.contains("317"),
        "{text}"
    );

    // --- refused: another registered worker settling the channel through its own Worker
    let rogue_wc = WorkerClient::for_owner(chain, &root, rogue.owner.address())
        .await
        .unwrap();
    let mut rogue_acc = Accumulator::new(channel.clone(), PRICE_IN, PRICE_OUT);
    let rr = receipt(&rogue, &channel, &rogue_acc, (100, 200), now);
    let rv = voucher(&mut rogue_acc, &rogue, &rr, &voucher_key, false);
    let (exit, _) = refusal(
        rogue_wc
            .submit_settlement(&rogue.owner, &rr, &rv, &opts)
            .await,
    );
    assert_eq!(exit, Exit::NotChannelWorker);

    // --- refused: the honest receipt sent to another Worker. The SDK says so before sending;
    // sent anyway, that Worker rebuilds the receipt with its own address and its signature fails.
    let early = rogue_wc
        .submit_settlement(&rogue.owner, &r2, &v2, &opts)
        .await;
    assert!(
        matches!(&early, Err(ContractError::Invalid { reason, .. }) if reason.contains("names Worker")),
        "{early:?}"
    );
    let (exit, _) = refusal(
        rogue_wc
            .submit(
                &rogue.owner,
                &SubmitSettlement::new(1, &r2, &v2).unwrap(),
                &opts,
            )
            .await,
    );
    assert_eq!(exit, Exit::BadSignature);
    // Its two different receipts for the same (channel, seq) get it slashed, by anyone.
    let mut twin = rr.body.clone();
    twin.tokens_out += 1;
    twin.cost += PRICE_OUT;
    let twin = twin.sign(&rogue.signing).unwrap();
    let rogue_key = rogue.signing.verifying_key().to_bytes();
    rogue_wc
        .report_equivocation(&relayer, (&rogue_key, rr), (&rogue_key, twin), &opts)
        .await
        .unwrap();
    let slashed = rogue_wc.state().await.unwrap();
    assert_eq!((slashed.status, slashed.stake), (3, 0));

    // --- refused at the Worker: a receipt not signed with the worker's receipt key
    let resigned = r2.body.clone().sign(&other_key).unwrap();
    let (exit, _) = refusal(
        wc.submit_settlement(&worker.owner, &resigned, &v2, &opts)
            .await,
    );
    assert_eq!(exit, Exit::BadSignature);
    // Nothing moved.
    let still = escrow.channel(id).await.unwrap().unwrap();
    assert_eq!(
        (still.settled, still.last_seq, still.relayer_due),
        (0, 0, 0)
    );
    assert_eq!(escrow.state().await.unwrap().locked, amount);

    // --- one settlement of both requests, split as the Escrow computes it
    let (out, log) = wc
        .submit_settlement(&worker.owner, &r2, &v2, &opts)
        .await
        .unwrap();
    let relayer_fee = cumulative * u128::from(RELAYER_BPS) / BPS;
    let protocol_fee = cumulative * u128::from(dev::PROTOCOL_FEE_BPS) / BPS;
    let share = cumulative - relayer_fee - protocol_fee;
    assert_eq!(
        (log.seq(), log.cumulative(), log.acc()),
        (2, cumulative, acc.acc())
    );
    assert_eq!((log.is_final(), log.released()), (false, None));
    assert_eq!(&log.worker_owner, worker.owner.address());
    let payouts = sent(&out, escrow.address(), Payout::OP);
    assert_eq!(payouts.len(), 1);
    assert_eq!(
        payouts[0].destination.as_ref(),
        Some(worker.owner.address())
    );
    let paid = payouts[0].value.unwrap();
    // The worker owner gets its share plus what the settlement's value did not spend.
    assert!(
        paid >= share && paid < share + settle_fee,
        "paid {paid}, share {share}"
    );
    let p = Payout::from_cell(payouts[0].body.as_ref().unwrap()).unwrap();
    assert_eq!(p.reason, payout_reason::CHANNEL_SETTLED);
    // The payout carries the settlement's record: that is what a receipt is proven against.
    assert_eq!(p.settlement.as_ref(), Some(&log.record));
    // The relayer fee accrues on the channel (paid when it ends); the protocol fee on the Escrow.
    assert!(sent(&out, escrow.address(), RelayerFee::OP).is_empty());
    let s2 = escrow.state().await.unwrap();
    assert_eq!(s2.locked, amount - share - protocol_fee);
    assert_eq!(s2.fees_due, protocol_fee);
    let ch = escrow.channel(id).await.unwrap().unwrap();
    assert_eq!(
        (ch.settled, ch.last_seq, ch.relayer_due),
        (cumulative, 2, relayer_fee)
    );

    // --- the first receipt proven against the accumulator the chain logged
    let proof = InclusionProof {
        later: vec![r2.body.hash().unwrap()],
    };
    let anchor = verify_inclusion(chain, &r1.body, &proof).await.unwrap();
    assert_eq!(anchor, log);
    assert!(anchor.proves(&r1.body, &proof));
    let logged = settlement_logs(chain, escrow.address(), id).await.unwrap();
    assert_eq!(logged, vec![log.clone()]);
    // A proof that does not lead to a logged settlement, or through another hash, fails.
    assert!(
        verify_inclusion(chain, &r1.body, &InclusionProof::default())
            .await
            .is_err()
    );
    let bent = InclusionProof {
        later: vec![[0; 32]],
    };
    assert!(verify_inclusion(chain, &r1.body, &bent).await.is_err());
    // The first voucher is stale now: cumulative must grow.
    let (exit, _) = refusal(wc.submit_settlement(&worker.owner, &r1, &v1, &opts).await);
    assert_eq!(exit, Exit::WrongSeq);

    // --- top up
    let top = NANO_PER_TON / 2;
    escrow.top_up(&client, id, top, &opts).await.unwrap();
    assert_eq!(
        escrow.channel(id).await.unwrap().unwrap().amount,
        amount + top
    );
    assert_eq!(escrow.state().await.unwrap().locked, s2.locked + top);

    // --- a third request settled with a final voucher: paid and closed in one transaction
    let r3 = receipt(&worker, &channel, &acc, (1_000, 1_000), now);
    let v3 = voucher(&mut acc, &worker, &r3, &voucher_key, true);
    let (out, fin) = wc
        .submit_settlement(&worker.owner, &r3, &v3, &opts)
        .await
        .unwrap();
    let total = acc.cumulative();
    let delta = total - cumulative;
    let relayer_fee_3 = delta * u128::from(RELAYER_BPS) / BPS;
    let protocol_fee_3 = delta * u128::from(dev::PROTOCOL_FEE_BPS) / BPS;
    assert!(fin.is_final());
    // Both settlements are in the Escrow's history, in order.
    assert_eq!(
        settlement_logs(chain, escrow.address(), id).await.unwrap(),
        vec![log.clone(), fin.clone()]
    );
    assert_eq!(
        (fin.seq(), fin.cumulative(), fin.acc()),
        (3, total, acc.acc())
    );
    assert_eq!(fin.released(), Some(amount + top - total));
    // The relayer gets every fee the channel accrued, exactly, in one message.
    let fees = sent(&out, escrow.address(), RelayerFee::OP);
    assert_eq!(fees.len(), 1);
    assert_eq!(fees[0].destination.as_ref(), Some(relayer.address()));
    assert_eq!(fees[0].value, Some(relayer_fee + relayer_fee_3));
    assert_eq!(escrow.channel(id).await.unwrap(), None);
    let s3 = escrow.state().await.unwrap();
    assert_eq!((s3.open_channels, s3.locked), (0, 0));
    assert_eq!(s3.fees_due, protocol_fee + protocol_fee_3);
    // The closed channel's id is never served again.
    assert_eq!(source.channel(escrow.address(), id).await.unwrap(), None);

    // --- protocol fees to the treasury, exactly what accrued
    let out = escrow.collect_fees(&relayer, &opts).await.unwrap();
    let to_treasury = sent(&out, escrow.address(), Payout::OP);
    assert_eq!(
        to_treasury[0].destination.as_ref(),
        Some(dev_chain.governor.address())
    );
    assert_eq!(to_treasury[0].value, Some(protocol_fee + protocol_fee_3));
    assert_eq!(escrow.state().await.unwrap().fees_due, 0);

    // --- a second channel: the next id; close refused in its window, accepted after expiry + grace
    let now = dev_chain.now().await.unwrap();
    let second = escrow
        .open_channel(
            &client,
            OpenChannelArgs {
                expires_at: now + 60,
                notify_relayer: false,
                ..args.clone()
            },
            &opts,
        )
        .await
        .unwrap();
    let id2 = second.channel.channel_id;
    assert_eq!(id2, id + 1);
    // Not asked for: no notice; the id came from the Escrow's counter, the channel read back.
    assert!(sent(&second.outcome, escrow.address(), ChannelOpened::OP).is_empty());
    assert_eq!(second.worker, worker.address);
    assert_eq!(second.state.expires_at, now + 60);
    let (exit, _) = refusal(escrow.close_channel(&relayer, id2, &opts).await);
    assert_eq!(exit, Exit::ChannelNotClosable);
    escrow.request_close(&client, id2, &opts).await.unwrap();
    let closing = escrow.channel(id2).await.unwrap().unwrap();
    assert!(closing.close_requested_at >= now && !closing.serves_at(closing.close_requested_at));
    assert!(closing.settle_until <= now + 60 + dev::GRACE_PERIOD);
    let free_before = escrow.state().await.unwrap().free;
    dev_chain
        .localnet
        .advance_time(60 + u64::from(dev::GRACE_PERIOD) + 1)
        .await
        .unwrap();
    // Anyone may close: here the relayer; the rest returns to the free balance.
    escrow.close_channel(&relayer, id2, &opts).await.unwrap();
    assert_eq!(escrow.channel(id2).await.unwrap(), None);
    let s4 = escrow.state().await.unwrap();
    assert_eq!((s4.open_channels, s4.locked), (0, 0));
    // Exactly the amount comes back, less the storage fee of the minute that passed.
    assert!(
        s4.free <= free_before + amount && s4.free > free_before + amount - NANO_PER_TON / 1000,
        "free {} before {free_before}",
        s4.free
    );

    // --- withdraw the free balance (what the value did not spend comes back with it)
    let fee = escrow.fees().await.unwrap().withdraw;
    let take = s4.free - fee;
    let out = escrow.withdraw(&client, take, &opts).await.unwrap();
    let back = sent(&out, escrow.address(), Payout::OP);
    assert_eq!(back[0].destination.as_ref(), Some(client.address()));
    assert!(back[0].value.unwrap() >= take);
    // The free balance drops by exactly what was taken (less storage fees, if time passed).
    let left = escrow.state().await.unwrap().free;
    assert!(
        left <= s4.free - take && left + NANO_PER_TON / 1000 > s4.free - take,
        "left {left}"
    );
    // More than the free balance is refused up front.
    let (exit, _) = refusal(escrow.withdraw(&client, NANO_PER_TON, &opts).await);
    assert_eq!(exit, Exit::InsufficientFreeBalance);
}

/// Root v2's getters as deployed by the test kit, and a governance change: queued with its ready
/// time visible, refused before the delay, applied by anyone after it.
#[tokio::test]
async fn root_v2_getters_and_a_timelocked_change_on_localnet() {
    use cocoon_sdk::contracts::v2::RootClient;
    use cocoon_sdk::messages::v2::root::SetModel;

    let dev_chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(MODEL, [0xa1; 32])]),
    )
    .await
    .unwrap();
    let chain = &dev_chain.chain;
    let opts = SendOptions::default();
    let root = RootClient::at(chain, dev_chain.root.clone());
    let governor = &dev_chain.governor;

    let p = root.params().await.unwrap();
    assert_eq!(
        (
            p.min_stake,
            p.grace_period,
            p.governance_delay,
            p.max_channel_lifetime
        ),
        (
            dev::MIN_STAKE,
            dev::GRACE_PERIOD,
            dev::GOVERNANCE_DELAY,
            dev::MAX_CHANNEL_LIFETIME
        )
    );
    assert_eq!(&p.treasury, governor.address());
    assert_eq!(&root.owner().await.unwrap().owner, governor.address());
    let policy = root.policy().await.unwrap();
    assert!(
        policy
            .measurements
            .contains(&cocoon_testkit::chain::simulated_measurement())
    );
    assert_eq!(root.model(MODEL).await.unwrap(), Some([0xa1; 32]));
    assert_eq!(root.model(2).await.unwrap(), None);
    let (wcode, ecode) = root.codes().await.unwrap();
    use cocoon_sdk::contracts::v2::{Contract, code, escrow_address, worker_address};
    assert_eq!(
        wcode.cell_hash(),
        code(Contract::Worker).unwrap().cell_hash()
    );
    assert_eq!(
        ecode.cell_hash(),
        code(Contract::Escrow).unwrap().cell_hash()
    );
    assert!(
        root.is_worker_code_known(&wcode.cell_hash().into())
            .await
            .unwrap()
    );
    assert!(!root.is_worker_code_known(&[0; 32]).await.unwrap());
    // Child addresses derived locally equal Root's getters.
    let owner = governor.address();
    assert_eq!(
        worker_address(root.address(), owner, &wcode).unwrap(),
        root.worker_address(owner).await.unwrap()
    );
    assert_eq!(
        escrow_address(root.address(), owner, &ecode).unwrap(),
        root.escrow_address(owner).await.unwrap()
    );
    let fees = root.fees().await.unwrap();
    assert!(fees.register > 0 && fees.create_escrow > 0 && fees.governance > 0);

    // A change is queued, visible with its ready time, refused early, applied after the delay.
    assert_eq!(root.next_change_id().await.unwrap(), 0);
    let body = SetModel {
        query_id: 1,
        model_id: 2,
        model_hash: [0xb2; 32],
    }
    .to_cell()
    .unwrap();
    let now = dev_chain.now().await.unwrap();
    root.queue_change(governor, body.clone(), &opts)
        .await
        .unwrap();
    let pending = root.pending_changes(0).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, 0);
    assert_eq!(pending[0].body.cell_hash(), body.cell_hash());
    assert!(pending[0].ready_at >= now + dev::GOVERNANCE_DELAY);
    let stranger = dev_chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let (exit, _) = refusal(root.apply_change(&stranger, 0, &opts).await);
    assert_eq!(exit, Exit::ChangeNotReady);
    // Only the owner queues.
    let (exit, _) = refusal(root.queue_change(&stranger, body.clone(), &opts).await);
    assert_eq!(exit, Exit::NotOwner);
    dev_chain
        .localnet
        .advance_time(u64::from(dev::GOVERNANCE_DELAY) + 1)
        .await
        .unwrap();
    root.apply_change(&stranger, 0, &opts).await.unwrap();
    assert_eq!(root.model(2).await.unwrap(), Some([0xb2; 32]));
    assert_eq!(root.pending_change(0).await.unwrap(), None);
}

/// Root v2's TEE policy: open as the test kit deploys it, replaced only through the governance
/// queue (`set_tee_policy`, applied after the delay) and read back typed; a TDX rule no TD could
/// meet is refused before sending, and by Root when sent anyway.
#[tokio::test]
async fn the_tee_policy_changes_through_the_governance_queue_on_localnet() {
    use cocoon_sdk::contracts::v2::RootClient;
    use cocoon_sdk::messages::v2::records::{SnpMinTcb, TdxPolicy, TeePolicy};
    use cocoon_sdk::messages::v2::root::SetTeePolicy;
    use std::collections::BTreeSet;

    let dev_chain = DevChainV2::on(start_localnet().await.unwrap(), BTreeMap::new())
        .await
        .unwrap();
    let opts = SendOptions::default();
    let root = RootClient::at(&dev_chain.chain, dev_chain.root.clone());
    let governor = &dev_chain.governor;
    assert_eq!(root.tee_policy().await.unwrap(), TeePolicy::any());

    let policy = TeePolicy {
        snp_min_tcb: SnpMinTcb {
            boot_loader: 9,
            tee: 0,
            snp: 23,
            microcode: 72,
            fmc: 1,
        },
        tdx: TdxPolicy {
            // Debug off, SEPT_VE_DISABLE on.
            td_attributes_mask: 1 | 1 << 28,
            td_attributes_value: 1 << 28,
            mr_config_ids: BTreeSet::new(),
            mr_owners: BTreeSet::from([[0x3c; 48], [0x3d; 48]]),
            rtmr3s: BTreeSet::from([[0x01; 48]]),
        },
    };
    let now = dev_chain.now().await.unwrap();
    let id = root.next_change_id().await.unwrap();
    root.queue_tee_policy(governor, policy.clone(), &opts)
        .await
        .unwrap();
    let pending = root.pending_change(id).await.unwrap().expect("queued");
    assert!(pending.ready_at >= now + dev::GOVERNANCE_DELAY);
    let queued = SetTeePolicy::from_cell(&pending.body).unwrap();
    assert_eq!(queued.tee, policy);
    // Not in force before the delay, and not appliable.
    assert_eq!(root.tee_policy().await.unwrap(), TeePolicy::any());
    let (exit, _) = refusal(root.apply_change(governor, id, &opts).await);
    assert_eq!(exit, Exit::ChangeNotReady);

    dev_chain
        .localnet
        .advance_time(u64::from(dev::GOVERNANCE_DELAY) + 1)
        .await
        .unwrap();
    root.apply_change(governor, id, &opts).await.unwrap();
    let read = root.tee_policy().await.unwrap();
    assert_eq!(read, policy);
    assert!(read.snp_min_tcb.admits(9, 0, 23, 72, None));
    assert!(!read.snp_min_tcb.admits(9, 0, 23, 71, None));
    assert!(read.tdx.admits(1 << 28, &[7; 48], &[0x3d; 48], &[0x01; 48]));
    assert!(
        !read
            .tdx
            .admits(1 << 28 | 1, &[7; 48], &[0x3d; 48], &[0x01; 48])
    );

    // A value bit outside the mask: refused by the sdk, and by Root when sent anyway.
    let impossible = TeePolicy {
        tdx: TdxPolicy {
            td_attributes_mask: 1,
            td_attributes_value: 2,
            ..policy.tdx.clone()
        },
        ..policy.clone()
    };
    let early = root
        .queue_tee_policy(governor, impossible.clone(), &opts)
        .await;
    assert!(
        matches!(&early, Err(ContractError::Invalid { reason, .. }) if reason.contains("outside")),
        "{early:?}"
    );
    let body = SetTeePolicy {
        query_id: 1,
        tee: impossible,
    }
    .to_cell()
    .unwrap();
    let (exit, _) = refusal(root.queue_change(governor, body, &opts).await);
    assert_eq!(exit, Exit::BadParams);
    assert_eq!(root.tee_policy().await.unwrap(), policy);
}
