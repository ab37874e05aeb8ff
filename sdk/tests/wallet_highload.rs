//! Highload Wallet v3 on the local network (the official contract in the reference emulator): a
//! hundred concurrent sends each confirmed exactly once, the direct and batched paths, a reused
//! query id and a stale `created_at` refused with the contract's exit codes, a balance too low
//! reported as not sent, and the same at real block timing with a lagging index.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cocoon_sdk::chain::{ChainApi, ChainError, Network, TonCenterClient};
use cocoon_sdk::contracts::{ContractError, EscrowClient};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::highload::{
    HighloadConfig, HighloadError, HighloadSender, HighloadWallet, QueryId, exit,
};
use cocoon_sdk::wallet::{OutMessage, SendOptions, Wallet, WalletKind, generate_mnemonic};
use cocoon_testkit::chain::{
    DevChain, Localnet, LocalnetTiming, balance, start_localnet, start_localnet_with,
};

fn fresh_address() -> cocoon_sdk::tlb::TonAddress {
    Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V5r1)
        .unwrap()
        .address()
        .clone()
}

fn fast() -> HighloadConfig {
    HighloadConfig {
        poll_interval: Duration::from_millis(100),
        ..Default::default()
    }
}

async fn funded_highload(net: &Localnet, nano: u128) -> HighloadWallet {
    let w = HighloadWallet::from_mnemonic_on(&generate_mnemonic(), Network::Localnet).unwrap();
    net.fund(w.address(), nano).await.unwrap();
    w
}

/// Every transaction of `address` and the value each brought in.
async fn incoming(chain: &TonCenterClient, address: &cocoon_sdk::tlb::TonAddress) -> Vec<u128> {
    chain
        .transactions(address, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|t| t.in_msg.and_then(|m| m.value))
        .collect()
}

async fn hundred_concurrent_sends_each_land_exactly_once(net: &Localnet) {
    let chain = Arc::new(net.client().unwrap());
    let w = funded_highload(net, 20 * NANO_PER_TON).await;
    let sender = HighloadSender::spawn(chain.clone(), w.clone(), fast());
    let dests: Vec<_> = (0..100).map(|_| fresh_address()).collect();
    let sends = dests.iter().enumerate().map(|(i, d)| {
        let sender = sender.clone();
        let msg = OutMessage::transfer(d.clone(), 10_000_000 + i as u128, false);
        async move { sender.send(msg).await }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut slots = BTreeSet::new();
    let mut queries = BTreeMap::<u32, usize>::new();
    for (i, r) in results.into_iter().enumerate() {
        let sent = r.unwrap_or_else(|e| panic!("message {i}: {e}"));
        let out = &sent.tx.out_msgs;
        let m = out
            .iter()
            .filter(|m| m.destination.is_some())
            .nth(sent.index)
            .unwrap();
        assert_eq!(m.destination.as_ref(), Some(&dests[i]), "message {i}");
        assert_eq!(m.value, Some(10_000_000 + i as u128), "message {i}");
        assert!(slots.insert((sent.query_id.value(), sent.index)));
        *queries.entry(sent.query_id.value()).or_default() += 1;
    }
    assert!(
        queries.len() < 100,
        "concurrent sends share externals: {queries:?}"
    );
    // Exactly once: each destination received one message, of its value, and nothing more
    // arrives later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, d) in dests.iter().enumerate() {
        assert_eq!(
            incoming(&chain, d).await,
            vec![10_000_000 + i as u128],
            "destination {i}"
        );
    }
}

#[tokio::test]
async fn a_hundred_concurrent_sends_are_each_confirmed_exactly_once() {
    let net = start_localnet().await.unwrap();
    hundred_concurrent_sends_each_land_exactly_once(&net).await;
}

#[tokio::test]
async fn a_hundred_concurrent_sends_at_real_block_timing_with_a_lagging_index() {
    let net = start_localnet_with(LocalnetTiming::MAINNET_LIKE)
        .await
        .unwrap();
    hundred_concurrent_sends_each_land_exactly_once(&net).await;
}

#[tokio::test]
async fn single_sends_go_direct_and_a_state_init_goes_through_a_batch() {
    let net = start_localnet().await.unwrap();
    let chain = Arc::new(net.client().unwrap());
    let w = funded_highload(&net, 5 * NANO_PER_TON).await;
    let sender = HighloadSender::spawn(chain.clone(), w.clone(), fast());
    let dest = fresh_address();
    let first = sender
        .send(OutMessage::transfer(dest.clone(), NANO_PER_TON, false))
        .await
        .unwrap();
    // Alone in its external and without a state-init: sent by the external's own transaction.
    assert_eq!(first.index, 0);
    assert!(first.tx.in_msg.as_ref().unwrap().source.is_none());
    assert_eq!(balance(&chain, &dest).await.unwrap(), NANO_PER_TON);
    assert!(w.processed(&*chain, first.query_id).await.unwrap());
    assert!(!w.processed(&*chain, first.query_id.next()).await.unwrap());

    // Deploying another contract (a second highload wallet): the contract refuses state-inits on
    // its direct path, so the queue sends it through a batch.
    let other = HighloadWallet::from_mnemonic_on(&generate_mnemonic(), Network::Localnet).unwrap();
    let (code, data) = other.state_init().unwrap();
    let deploy = OutMessage::transfer(other.address().clone(), NANO_PER_TON / 2, false)
        .with_state_init(code, data);
    let sent = sender.send(deploy).await.unwrap();
    assert_eq!(
        sent.tx.in_msg.as_ref().unwrap().source.as_ref(),
        Some(w.address()),
        "sent by the wallet's message to itself"
    );
    let st = chain.account(other.address()).await.unwrap();
    assert_eq!(st.status, cocoon_sdk::chain::AccountStatus::Active);
}

#[tokio::test]
async fn a_reused_query_id_and_a_stale_created_at_are_refused_with_their_exit_codes() {
    let net = start_localnet().await.unwrap();
    let chain = net.client().unwrap();
    let w = funded_highload(&net, 5 * NANO_PER_TON).await;
    let dest = fresh_address();
    let q = QueryId::new(7, 9).unwrap();
    let now = u64::from(cocoon_sdk::clock::unix_now_u32());
    let msg = [OutMessage::transfer(dest.clone(), NANO_PER_TON, false)];
    let first = w.sign(q, now - 5, &msg, true).unwrap();
    chain.send_boc(&first.boc).await.unwrap();
    assert_eq!(balance(&chain, &dest).await.unwrap(), NANO_PER_TON);

    // Another external (other created_at, so another hash) with the same query id.
    let again = w.sign(q, now - 4, &msg, false).unwrap();
    let e = chain.send_boc(&again.boc).await.unwrap_err();
    assert!(
        matches!(e, ChainError::Rejected { exit_code: Some(c), .. } if c == exit::ALREADY_EXECUTED),
        "{e}"
    );
    // created_at older than the timeout, and in the future.
    let stale = w
        .sign(q.next(), now - u64::from(w.timeout()) - 60, &msg, false)
        .unwrap();
    let e = chain.send_boc(&stale.boc).await.unwrap_err();
    assert!(
        matches!(e, ChainError::Rejected { exit_code: Some(c), .. } if c == exit::INVALID_CREATED_AT),
        "{e}"
    );
    let future = w.sign(q.next(), now + 3600, &msg, false).unwrap();
    let e = chain.send_boc(&future.boc).await.unwrap_err();
    assert!(
        matches!(e, ChainError::Rejected { exit_code: Some(c), .. } if c == exit::INVALID_CREATED_AT),
        "{e}"
    );
    // Nothing more arrived.
    assert_eq!(balance(&chain, &dest).await.unwrap(), NANO_PER_TON);
    assert!(!w.processed(&chain, q.next()).await.unwrap());
    let err = HighloadError::Rejected {
        query_id: q.value(),
        exit_code: Some(exit::ALREADY_EXECUTED),
        message: String::new(),
    };
    assert!(err.is_resendable());
}

#[tokio::test]
async fn a_balance_too_low_is_reported_as_not_sent_and_the_value_stays() {
    let net = start_localnet().await.unwrap();
    let chain = Arc::new(net.client().unwrap());
    let w = funded_highload(&net, NANO_PER_TON).await;
    let sender = HighloadSender::spawn(chain.clone(), w.clone(), fast());
    // Deploy with a small send first.
    sender
        .send(OutMessage::transfer(fresh_address(), 1_000_000, false))
        .await
        .unwrap();
    let dest = fresh_address();
    let e = sender
        .send(OutMessage::transfer(dest.clone(), 50 * NANO_PER_TON, false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            HighloadError::NotSent {
                sent: 0,
                expected: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        !e.is_resendable(),
        "the query id is spent; the caller decides"
    );
    assert_eq!(balance(&chain, &dest).await.unwrap(), 0);
}

#[tokio::test]
async fn a_broadcast_that_never_arrived_is_signed_again_after_its_timeout_and_lands_once() {
    use cocoon_sdk::chain::{RetryPolicy, TonCenterConfig};
    use cocoon_testkit::{Fault, FaultProxy};

    let net = start_localnet().await.unwrap();
    let proxy = FaultProxy::start(net.url()).await;
    let chain = Arc::new(
        TonCenterClient::new(TonCenterConfig {
            base_url: proxy.url.clone(),
            api_key: None,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(50),
            },
            rate_limit: Default::default(),
        })
        .unwrap(),
    );
    let w = funded_highload(&net, 5 * NANO_PER_TON).await;
    let sender = HighloadSender::spawn(chain.clone(), w.clone(), fast());
    // Every broadcast of the first external is lost on the way.
    proxy.inject("v3/message", Fault::Drop, 2);
    let dest = fresh_address();
    let send = tokio::spawn({
        let sender = sender.clone();
        let msg = OutMessage::transfer(dest.clone(), NANO_PER_TON, false);
        async move { sender.send(msg).await }
    });
    while proxy.seen("v3/message") < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(proxy.forwarded("v3/message"), 0);
    // The sender cannot know the message is lost: it waits until the chain's time is past
    // created_at + timeout, when the external can no longer execute, and only then signs again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!send.is_finished(), "decided before the timeout passed");
    net.advance_time(u64::from(w.timeout()) + 60).await.unwrap();
    let sent = tokio::time::timeout(Duration::from_secs(60), send)
        .await
        .expect("the re-sign happens once the timeout has passed")
        .unwrap()
        .unwrap();
    assert_eq!(proxy.forwarded("v3/message"), 1);
    assert!(w.processed(&*chain, sent.query_id).await.unwrap());
    assert_eq!(incoming(&chain, &dest).await, vec![NANO_PER_TON]);
}

/// The contract clients take any `MessageSender`: the same Escrow operations go out through the
/// highload queue, several at once, each with the outcome of its own message only, and a refusal
/// still surfaces with the contract's exit code.
#[tokio::test]
async fn contract_operations_go_through_the_highload_queue() {
    let dev = DevChain::start_with_registry(BTreeMap::new())
        .await
        .unwrap();
    let chain = Arc::new(dev.chain.clone());
    let w = funded_highload(&dev.localnet, 30 * NANO_PER_TON).await;
    let sender = HighloadSender::spawn(chain, w, fast());
    let opts = SendOptions::default();
    let escrow = EscrowClient::for_owner(&dev.chain, &dev.root, sender.address())
        .await
        .unwrap();
    // The first deposit creates the Escrow through Root (and deploys the highload wallet).
    let first = escrow.deposit(&sender, NANO_PER_TON, &opts).await.unwrap();
    assert_eq!(first.wallet_tx.out_msgs.len(), 1);
    let (a, b, c) = tokio::join!(
        escrow.deposit(&sender, 2 * NANO_PER_TON, &opts),
        escrow.deposit(&sender, 3 * NANO_PER_TON, &opts),
        escrow.deposit(&sender, 4 * NANO_PER_TON, &opts),
    );
    for (i, o) in [a, b, c].into_iter().enumerate() {
        let o = o.unwrap_or_else(|e| panic!("deposit {i}: {e}"));
        assert_eq!(
            o.wallet_tx.out_msgs.len(),
            1,
            "deposit {i}: only its own message"
        );
        assert_eq!(
            o.txs
                .iter()
                .filter(|t| &t.account == escrow.address())
                .count(),
            1,
            "deposit {i}: only its own Escrow transaction is traced"
        );
    }
    let st = escrow.state().await.unwrap();
    assert!(
        st.free > 9 * NANO_PER_TON && st.free <= 10 * NANO_PER_TON,
        "every deposit credited once: {}",
        st.free
    );
    // More than the free balance: the Escrow refuses, and the error names it.
    match escrow.withdraw(&sender, 100 * NANO_PER_TON, &opts).await {
        Err(ContractError::Failed { op, account, .. }) => {
            assert_eq!(op, "withdraw");
            assert_eq!(account, escrow.address().to_base64_url());
        }
        other => panic!("expected the Escrow's refusal, got {other:?}"),
    }
}
