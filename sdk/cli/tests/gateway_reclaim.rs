//! Funds that come back by themselves: callers that hang up on the gateway (before their input
//! was sent, or while a job nobody answers runs) leave nothing locked in the Escrow once the
//! deadline and Root's grace period have passed, with no manual step: the gateway's reclaimer
//! expires those jobs on-chain, in one transfer.

use std::time::Duration;

use cocoon_cli::gateway::{ClientBackend, GatewayConfig};
use cocoon_sdk::client::{Client, ReclaimOptions};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::{DevChain, FakeRelayer, Script};
use serde_json::json;

/// The job deadline the gateway's client names.
const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `done` every 200 ms until it holds or `within` has passed.
async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut done: impl FnMut() -> F,
) -> bool {
    let until = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < until {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// A caller that sends a chat and hangs up when told.
fn caller(url: &str) -> tokio::task::JoinHandle<()> {
    let url = format!("{url}/v1/chat/completions");
    tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(url)
            .json(&json!({
                "model": SMOLLM2_135M.name,
                "messages": [{"role": "user", "content": "are you there?"}],
                "max_tokens": 16,
            }))
            .send()
            .await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_up_callers_leave_nothing_locked_after_the_deadline() {
    let net = DevChain::start(&[SMOLLM2_135M]).await.unwrap();
    let relayer = FakeRelayer::start().await;
    // Prices high enough that expiring a job frees more than the transfer costs.
    let w = net
        .register_worker(1, &[1], 1_000_000, 3_000_000)
        .await
        .unwrap();
    relayer.list(&w, w.info());
    let wallet = net.funded_wallet(50 * NANO_PER_TON).await.unwrap();
    let mut config = net.client_config(&relayer.url);
    config.deadline = DEADLINE;
    let client = Client::connect(config, wallet).await.unwrap();
    client.deposit(3 * NANO_PER_TON).await.unwrap();
    let free_before = client.balance().await.unwrap().free;
    let backend = ClientBackend::with_reclaimer(
        client.clone(),
        ReclaimOptions {
            interval: Duration::from_millis(500),
            ..ReclaimOptions::default()
        },
    );
    let (url, _stop) = cocoon_testkit::start_gateway_over(backend, GatewayConfig::default())
        .await
        .unwrap();
    let locked = || async { client.balance().await.unwrap().locked };

    // 1. The relayer has not seen the job yet, so the input is not sent; the caller hangs up
    //    once the job is open on-chain. Its input is never sent.
    relayer.not_found_first(u32::MAX);
    let first = caller(&url);
    assert!(
        eventually(Duration::from_secs(60), || async { locked().await > 0 }).await,
        "the first job was never opened"
    );
    first.abort();
    let first_locked = locked().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        relayer.submitted().is_empty(),
        "a hung-up caller's input was sent"
    );

    // 2. The input is taken but nobody answers; this caller hangs up too.
    relayer.not_found_first(0);
    relayer.script(Script::Hang);
    let second = caller(&url);
    assert!(
        eventually(Duration::from_secs(60), || async {
            relayer.submitted().len() == 1
        })
        .await,
        "the second input never reached the relayer"
    );
    second.abort();
    let both_locked = locked().await;
    assert!(both_locked > first_locked && first_locked > 0);

    // Before deadline + grace nothing is expired.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(locked().await, both_locked);

    // The deadline and the grace period pass: the gateway frees both, unasked.
    net.localnet
        .advance_time(DEADLINE.as_secs() + u64::from(cocoon_testkit::dev::GRACE_PERIOD) + 5)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(60), || async { locked().await == 0 }).await,
        "still locked: {}",
        locked().await
    );
    let free_after = client.balance().await.unwrap().free;
    // Every locked nanoTON is free again (the expire messages are paid by the wallet; what
    // their attached value leaves behind stays in the Escrow).
    assert!(free_after >= free_before, "{free_after} < {free_before}");
}
