//! The toncenter client through a fault-injecting proxy in front of localnet: 500s, 429s,
//! dropped connections and timeouts are recovered from, and a transfer whose response is lost is
//! executed exactly once (checked on chain).

use std::time::Duration;

use cocoon_sdk::chain::{ChainApi, ChainError, RetryPolicy, TonCenterClient, TonCenterConfig};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{
    OutMessage, SendOptions, Wallet, WalletError, WalletKind, generate_mnemonic,
};

use cocoon_testkit::chain::{funded_wallet, start_localnet};
use cocoon_testkit::{Fault, FaultProxy};

fn client(url: &str, timeout: Duration) -> TonCenterClient {
    TonCenterClient::new(TonCenterConfig {
        base_url: url.to_owned(),
        api_key: Some("test-key".into()),
        timeout,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
        rate_limit: Default::default(),
    })
    .unwrap()
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let net = start_localnet().await.unwrap();
    let proxy = FaultProxy::start(net.url()).await;
    // Timeouts leave room for a loaded CI machine: only the injected delays may trip them.
    let chain = client(&proxy.url, Duration::from_secs(3));
    let w = funded_wallet(&net, WalletKind::V5r1, NANO_PER_TON)
        .await
        .unwrap();

    proxy.inject("getAddressInformation", Fault::Status(500), 2);
    assert_eq!(
        chain.account(w.address()).await.unwrap().balance,
        NANO_PER_TON
    );
    assert_eq!(proxy.seen("getAddressInformation"), 3);

    proxy.inject("getAddressInformation", Fault::Status(429), 1);
    proxy.inject("getAddressInformation", Fault::Drop, 1);
    assert_eq!(
        chain.account(w.address()).await.unwrap().balance,
        NANO_PER_TON
    );
    assert_eq!(proxy.seen("getAddressInformation"), 6);

    // A response slower than the client timeout: the call times out and the retry succeeds.
    proxy.inject("v3/transactions", Fault::Delay(Duration::from_secs(5)), 1);
    assert_eq!(
        chain.transactions(w.address(), 0, 10).await.unwrap().len(),
        1
    );
    assert_eq!(proxy.seen("v3/transactions"), 2);

    // Persistent failure: the error names the call and the attempts.
    proxy.inject("getAddressInformation", Fault::Status(503), 10);
    match chain.account(w.address()).await {
        Err(ChainError::RetriesExhausted {
            call: "v2/getAddressInformation",
            attempts: 4,
            last,
        }) => {
            assert!(matches!(*last, ChainError::Http { status: 503, .. }));
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }

    // A client error is not retried.
    proxy.inject("runGetMethod", Fault::Status(400), 1);
    let before = proxy.seen("runGetMethod");
    assert!(matches!(
        chain.run_get_method(w.address(), "seqno", &[]).await,
        Err(ChainError::Http { status: 400, .. })
    ));
    assert_eq!(proxy.seen("runGetMethod"), before + 1);
}

#[tokio::test]
async fn lost_send_responses_never_double_send() {
    let net = start_localnet().await.unwrap();
    let direct = net.client().unwrap();
    let proxy = FaultProxy::start(net.url()).await;
    let chain = client(&proxy.url, Duration::from_secs(4));
    let opts = SendOptions {
        poll_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let w = funded_wallet(&net, WalletKind::V5r1, 10 * NANO_PER_TON)
        .await
        .unwrap();
    let dest = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V4r2).unwrap();
    let pay = |v| [OutMessage::transfer(dest.address().clone(), v, false)];

    // 1. The node executes the message but the response is lost; the client re-sends the same
    //    BOC, which the wallet refuses; the sender recognises its own transaction.
    proxy.inject("v3/message", Fault::DropAfterForward, 1);
    let c1 = w.send_and_confirm(&chain, &pay(100), &opts).await.unwrap();
    assert!(c1.tx.succeeded());
    assert_eq!(
        proxy.forwarded("v3/message"),
        2,
        "the identical BOC was re-broadcast once"
    );

    // 2. The response arrives after the client timeout.
    proxy.inject("v3/message", Fault::Delay(Duration::from_secs(6)), 1);
    let c2 = w.send_and_confirm(&chain, &pay(200), &opts).await.unwrap();
    assert_eq!(c2.seqno, c1.seqno + 1);

    // 3. Errors before the node: 500 then 429 then a dropped connection, then success.
    proxy.inject("v3/message", Fault::Status(500), 1);
    proxy.inject("v3/message", Fault::Status(429), 1);
    proxy.inject("v3/message", Fault::Drop, 1);
    let c3 = w.send_and_confirm(&chain, &pay(300), &opts).await.unwrap();
    assert_eq!(c3.seqno, c2.seqno + 1);

    // 4. Confirmation lookups fail for a while.
    proxy.inject("transactionsByMessage", Fault::Status(502), 3);
    let c4 = w.send_and_confirm(&chain, &pay(400), &opts).await.unwrap();
    assert_eq!(c4.seqno, c3.seqno + 1);

    // On chain, checked without the proxy: each transfer executed exactly once.
    for c in [&c1, &c2, &c3, &c4] {
        assert_eq!(
            direct
                .transactions_by_message(&c.hash_norm)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    assert_eq!(w.seqno(&direct).await.unwrap(), 4);
    // The receiver got each value exactly once (compare values: an undeployed account's balance
    // also pays storage).
    let received: Vec<u128> = direct
        .transactions(dest.address(), 0, 10)
        .await
        .unwrap()
        .iter()
        .filter_map(|t| t.in_msg.as_ref()?.value)
        .collect();
    assert_eq!(received, vec![100, 200, 300, 400]);
    // Faucet credit + four transfers, nothing else.
    assert_eq!(
        direct
            .transactions(w.address(), 0, 100)
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_message_that_never_arrives_expires_and_the_next_one_goes_through() {
    let net = start_localnet().await.unwrap();
    let direct = net.client().unwrap();
    let proxy = FaultProxy::start(net.url()).await;
    let chain = client(&proxy.url, Duration::from_secs(1));
    let w = funded_wallet(&net, WalletKind::V5r1, NANO_PER_TON)
        .await
        .unwrap();
    let me = [OutMessage::transfer(w.address().clone(), 1, false)];

    // Every broadcast is lost before the node.
    proxy.inject("v3/message", Fault::Drop, 1000);
    // With a deadline on waiting shorter than the lifetime: the fate is unknown, said so.
    let opts = SendOptions {
        ttl: Duration::from_secs(60),
        poll_interval: Duration::from_millis(200),
        max_wait: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    assert!(matches!(
        w.send_and_confirm(&chain, &me, &opts).await,
        Err(WalletError::Unconfirmed { .. })
    ));
    // Waiting out the lifetime: Expired, with the seqno unused.
    let opts = SendOptions {
        ttl: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        max_wait: None,
        ..Default::default()
    };
    match w.send_and_confirm(&chain, &me, &opts).await {
        Err(WalletError::Expired { seqno: 0, .. }) => {}
        other => panic!("expected Expired, got {other:?}"),
    }
    assert_eq!(proxy.forwarded("v3/message"), 0);
    assert_eq!(
        direct.transactions(w.address(), 0, 10).await.unwrap().len(),
        1
    );

    // The network heals: a new message (same seqno, new lifetime) executes once.
    proxy.clear();
    let c = w
        .send_and_confirm(&chain, &me, &SendOptions::default())
        .await
        .unwrap();
    assert_eq!(c.seqno, 0);
    assert_eq!(w.seqno(&direct).await.unwrap(), 1);
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after() {
    let net = start_localnet().await.unwrap();
    let proxy = FaultProxy::start(net.url()).await;
    // Backoff alone would retry after at most 200 ms.
    let chain = client(&proxy.url, Duration::from_secs(3));
    let w = funded_wallet(&net, WalletKind::V5r1, NANO_PER_TON)
        .await
        .unwrap();

    proxy.inject("getAddressInformation", Fault::RetryAfter(2), 1);
    let started = std::time::Instant::now();
    let st = chain.account(w.address()).await.unwrap();
    assert_eq!(st.balance, NANO_PER_TON);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retried after {:?}, before the server's Retry-After",
        started.elapsed()
    );
    assert_eq!(proxy.seen("getAddressInformation"), 2);
}

#[tokio::test]
async fn a_send_reply_without_hashes_is_not_an_error() {
    // Older toncenter-compatible servers answer v3/message without message_hash_norm; the
    // message was broadcast all the same, and its hashes are ours to compute.
    let net = start_localnet().await.unwrap();
    let proxy = FaultProxy::start(net.url()).await;
    let chain = client(&proxy.url, Duration::from_secs(3));
    let w = funded_wallet(&net, WalletKind::V5r1, 10 * NANO_PER_TON)
        .await
        .unwrap();
    let dest = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V4r2).unwrap();

    proxy.inject("v3/message", Fault::ReplaceBody("{}"), 1);
    let c = w
        .send_and_confirm(
            &chain,
            &[OutMessage::transfer(dest.address().clone(), 7, false)],
            &SendOptions::default(),
        )
        .await
        .unwrap();
    assert!(c.tx.succeeded());
    assert_eq!(proxy.forwarded("v3/message"), 1, "broadcast exactly once");
    assert_eq!(w.seqno(&chain).await.unwrap(), 1);
}
