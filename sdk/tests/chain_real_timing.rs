//! The chain layer on a local network that behaves like the real one: blocks every 400 ms with a
//! lagging indexer, two senders racing for one wallet seqno, and toncenter's rate limit.

use std::time::Duration;

use cocoon_sdk::chain::{
    AccountStatus, ChainApi, ChainError, RateLimit, RetryPolicy, TonCenterClient, TonCenterConfig,
};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{
    OutMessage, SendOptions, Wallet, WalletError, WalletKind, generate_mnemonic,
};
use cocoon_testkit::chain::{LocalnetTiming, balance, funded_wallet, start_localnet_with};

fn unix_now() -> u32 {
    cocoon_sdk::clock::unix_now_u32()
}

fn fresh_dest() -> Wallet {
    Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V5r1).unwrap()
}

#[tokio::test]
async fn a_transfer_confirms_at_real_block_timing_with_a_lagging_index() {
    let net = start_localnet_with(LocalnetTiming::MAINNET_LIKE)
        .await
        .unwrap();
    let chain = net.client().unwrap();
    let w = funded_wallet(&net, WalletKind::V5r1, 10 * NANO_PER_TON)
        .await
        .unwrap();
    let dest = fresh_dest();
    let opts = SendOptions {
        poll_interval: Duration::from_millis(100),
        ..Default::default()
    };
    for (i, value) in [NANO_PER_TON, 2 * NANO_PER_TON].into_iter().enumerate() {
        let c = w
            .send_and_confirm(
                &chain,
                &[OutMessage::transfer(dest.address().clone(), value, false)],
                &opts,
            )
            .await
            .unwrap();
        assert!(c.tx.succeeded());
        assert_eq!(c.seqno, u32::try_from(i).unwrap());
        // Exactly the value left the wallet.
        assert_eq!(c.tx.out_msgs.len(), 1);
        assert_eq!(c.tx.out_msgs[0].value, Some(value));
    }
    assert_eq!(
        chain.account(w.address()).await.unwrap().status,
        AccountStatus::Active
    );
    // It all arrived; with blocks a second or more apart the undeployed destination pays a few
    // nanoTON of storage between the two transfers, as it would on the real network.
    let got = balance(&chain, dest.address()).await.unwrap();
    assert!(
        (3 * NANO_PER_TON - 1_000..=3 * NANO_PER_TON).contains(&got),
        "{got}"
    );
}

/// Two processes on one wallet sign the same seqno; the network accepts both at broadcast, runs
/// one, drops the other. Both senders end with a clear result well within the message lifetime:
/// one confirmed, the other Superseded (or Rejected, when a block fell between the broadcasts).
#[tokio::test]
async fn two_senders_of_one_seqno_both_end_clearly_within_their_bound() {
    let net = start_localnet_with(LocalnetTiming::MAINNET_LIKE)
        .await
        .unwrap();
    let chain = net.client().unwrap();
    let w = funded_wallet(&net, WalletKind::V5r1, 10 * NANO_PER_TON)
        .await
        .unwrap();
    let opts = SendOptions {
        poll_interval: Duration::from_millis(100),
        index_grace: Duration::from_secs(3),
        ..Default::default()
    };
    // Deploy first, so both racers use seqno 1 of an active wallet.
    let me = [OutMessage::transfer(w.address().clone(), 1, false)];
    w.send_and_confirm(&chain, &me, &opts).await.unwrap();
    assert_eq!(w.seqno(&chain).await.unwrap(), 1);

    // What two processes would do: each reads seqno 1 and signs its own transfer with it.
    let (a, b) = (fresh_dest(), fresh_dest());
    let valid_until = unix_now() + 60;
    let pay = |d: &Wallet, v| [OutMessage::transfer(d.address().clone(), v, false)];
    let sa = w
        .sign_external(1, valid_until, &pay(&a, NANO_PER_TON), false)
        .unwrap();
    let sb = w
        .sign_external(1, valid_until, &pay(&b, 2 * NANO_PER_TON), false)
        .unwrap();
    let started = std::time::Instant::now();
    let (ra, rb) = tokio::join!(
        w.broadcast_and_confirm(&chain, &sa, &opts),
        w.broadcast_and_confirm(&chain, &sb, &opts)
    );
    let waited = started.elapsed();
    // Bounded well below the 60 s lifetime: the loser learns as soon as the index had its grace.
    assert!(waited < Duration::from_secs(30), "waited {waited:?}");

    let (winner, loser, winner_dest, loser_dest, winner_value) = match (&ra, &rb) {
        (Ok(_), Err(e)) => (ra.as_ref().unwrap(), e, &a, &b, NANO_PER_TON),
        (Err(e), Ok(_)) => (rb.as_ref().unwrap(), e, &b, &a, 2 * NANO_PER_TON),
        other => panic!("expected exactly one confirmed transfer, got {other:?}"),
    };
    assert_eq!(winner.seqno, 1);
    assert!(
        matches!(
            loser,
            WalletError::Superseded {
                seqno: 1,
                current: 2
            } | WalletError::Rejected { seqno: 1, .. }
        ),
        "the loser's result names what happened: {loser:?}"
    );
    // The message text tells an operator what to look for.
    if matches!(loser, WalletError::Superseded { .. }) {
        assert!(loser.to_string().contains("another process"), "{loser}");
    }
    // On chain: seqno 1 was used once; only the winner's transfer arrived.
    assert_eq!(w.seqno(&chain).await.unwrap(), 2);
    assert_eq!(
        balance(&chain, winner_dest.address()).await.unwrap(),
        winner_value
    );
    assert_eq!(balance(&chain, loser_dest.address()).await.unwrap(), 0);

    // Within one process the same two intents take turns and both land.
    let (to_a, to_b) = (pay(&a, 3), pay(&b, 4));
    let (ra, rb) = tokio::join!(
        w.send_and_confirm(&chain, &to_a, &opts),
        w.send_and_confirm(&chain, &to_b, &opts)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut seqnos = [ra.seqno, rb.seqno];
    seqnos.sort_unstable();
    assert_eq!(seqnos, [2, 3]);
}

/// toncenter answers 429 beyond its per-second limit. A client that ignores it and does not retry
/// fails; one that keeps a budget within it never sees a 429.
#[tokio::test]
async fn the_clients_budget_keeps_it_under_the_servers_rate_limit() {
    let timing = LocalnetTiming {
        rate_limit: 2,
        ..Default::default()
    };
    let net = start_localnet_with(timing).await.unwrap();
    let w = fresh_dest();
    let client = |rate_limit| {
        TonCenterClient::new(TonCenterConfig {
            retry: RetryPolicy::none(),
            rate_limit,
            ..TonCenterConfig::new(net.url().to_owned())
        })
        .unwrap()
    };

    let greedy = client(RateLimit::Unlimited);
    let mut refused = 0;
    for _ in 0..6 {
        match greedy.account(w.address()).await {
            Ok(_) => {}
            Err(ChainError::Http { status: 429, .. }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused > 0, "the server's limit is real");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Half the server's rate, so network jitter never lands a request early.
    let polite = client(RateLimit::PerSecond(1));
    for _ in 0..4 {
        polite.account(w.address()).await.unwrap();
    }
}
