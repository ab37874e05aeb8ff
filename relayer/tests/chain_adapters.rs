//! The relayer's chain adapters against the real contracts on localnet, through
//! `service::spawn`: the watcher sees JobOpened from a real OpenJob, the ChainRegistry admits only
//! a genuinely registered Worker, the submitter posts SubmitReceipts from the relayer's wallet,
//! and a job counts as settled only when its Escrow accepted the settlement (a late one fails
//! with the Escrow's exit code). A restart catches up from the persisted cursor, and injected
//! chain faults (timeouts, 5xx, 429, lost answers) neither lose nor duplicate work.

mod localnet;

use std::time::Duration;

use cocoon_relayer::config::RelayerConfig;
use cocoon_relayer::service::{self, ChainConfig, RelayerHandle, ServiceConfig};
use cocoon_relayer::store::JobState;
use cocoon_sdk::chain::{ChainApi, Network, RateLimit, RetryPolicy, TonCenterConfig};
use cocoon_sdk::messages::escrow::Settle;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::TlbType as _;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::highload::HighloadWallet;
use cocoon_testkit::stub::{StubHandle, StubWorker};
use cocoon_testkit::{Fault, FaultProxy};
use localnet::{GRACE, Net, setup, submit, wait_for};

fn relayer_config() -> RelayerConfig {
    RelayerConfig {
        first_chunk_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(2),
        grace_period: GRACE,
        expiry_sweep: Duration::from_millis(500),
        ..RelayerConfig::default()
    }
}

async fn spawn(n: &Net, api: TonCenterConfig, db: &std::path::Path) -> RelayerHandle {
    spawn_with(n, api, db, None).await
}

async fn spawn_with(
    n: &Net,
    api: TonCenterConfig,
    db: &std::path::Path,
    highload: Option<HighloadWallet>,
) -> RelayerHandle {
    // Shown with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("relayer=debug"))
        .with_test_writer()
        .try_init();
    let mut cfg = ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}?mode=rwc", db.display()),
    );
    cfg.relayer = relayer_config();
    cfg.chain = Some(ChainConfig {
        poll: Duration::from_millis(200),
        highload,
        ..ChainConfig::new(api, n.root.clone(), n.relayer.clone())
    });
    service::spawn(cfg).await.unwrap()
}

/// Successful settlements of each job id among the Escrow's transactions.
async fn settlements_on_chain(n: &Net) -> std::collections::HashMap<u64, u32> {
    let mut out = std::collections::HashMap::new();
    let mut after = 0;
    loop {
        let txs = n.chain.transactions(&n.escrow, after, 100).await.unwrap();
        let len = txs.len();
        for t in txs {
            after = after.max(t.id.lt);
            let Some(m) = &t.in_msg else { continue };
            if m.opcode != Some(Settle::OP) || !t.succeeded() {
                continue;
            }
            if let Some(s) = m.body.as_ref().and_then(|b| Settle::from_cell(b).ok()) {
                *out.entry(s.job_id).or_insert(0) += 1;
            }
        }
        if len < 100 {
            return out;
        }
    }
}

/// A stub session that heartbeats like a live worker: with a lagging chain (the realistic
/// profile, injected faults) the first dispatch may come later than the relayer's session timeout.
fn alive(stub: StubHandle) -> StubHandle {
    stub.keep_alive(Duration::from_millis(500), 4);
    stub
}

async fn run_jobs(n: &Net, h: &RelayerHandle, ids: &[u64]) -> Vec<JobRef> {
    let mut jobs = Vec::new();
    for id in ids {
        let input = format!("sealed input {id}").into_bytes();
        let job = n.open(*id, &input, 600).await;
        wait_for(h.store(), &job, 60, |_| true).await;
        assert_eq!(
            submit(&h.url(), &job, &input, &n.stub.address).await,
            202,
            "{job}"
        );
        jobs.push(job);
    }
    for job in &jobs {
        let r = wait_for(h.store(), job, 90, |s| s.is_final()).await;
        assert_eq!(r.state, JobState::Settled, "{job}: {r:?}");
    }
    jobs
}

#[tokio::test]
async fn jobs_settle_on_chain_and_refused_settlements_fail_with_the_exit_code() {
    let n = setup(StubWorker::new(1, vec![1]), 5 * NANO_PER_TON).await;
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(&n, n.dev.api(), &dir.path().join("r.db")).await;
    assert_eq!(h.address(), Some(n.relayer.address()));
    let health: serde_json::Value = reqwest::get(format!("{}/health", h.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["relayer_id"],
        n.relayer.address().to_hex(),
        "the relayer id is its wallet"
    );

    let ws = h.url().replace("http://", "ws://");
    let _w = alive(
        n.stub
            .connect(&ws)
            .await
            .expect("a registered Worker is admitted"),
    );
    // Not a Worker contract under this Root: refused by the ChainRegistry.
    let stranger = StubWorker::new(9, vec![1]);
    assert!(
        stranger.connect(&ws).await.is_err(),
        "an unregistered worker is refused"
    );

    let jobs = run_jobs(&n, &h, &[1, 2]).await;
    let escrow = n.escrow().await;
    for j in &jobs {
        assert_eq!(
            escrow.job(j.job_id).await.unwrap(),
            None,
            "{j} closed on-chain"
        );
        let r = h.store().job(j).await.unwrap().unwrap();
        assert!(
            r.reason
                .as_deref()
                .unwrap_or_default()
                .contains("Escrow accepted"),
            "{r:?}"
        );
    }

    // A settlement that reaches the Escrow after deadline + grace: the chain clock moves past
    // it before the input arrives, the worker answers, the Escrow refuses with SettlementTooLate.
    let input = b"late".to_vec();
    let late = n.open(3, &input, 20).await;
    wait_for(h.store(), &late, 60, |_| true).await;
    n.dev
        .localnet
        .advance_time(20 + u64::from(GRACE) + 5)
        .await
        .unwrap();
    assert_eq!(submit(&h.url(), &late, &input, &n.stub.address).await, 202);
    let r = wait_for(h.store(), &late, 90, |s| s.is_final()).await;
    let why = r.reason.clone().unwrap_or_default();
    // At real block timing the relayer's own expiry sweep can see the passed deadline before the
    // input is dispatched (it then never sends the job): an equally final, unsettled end. The
    // instant network always dispatches first and so shows the Escrow's refusal.
    let realistic = n.dev.localnet.timing().block_interval_ms > 0;
    match r.state {
        JobState::Failed => assert!(
            why.contains("Escrow refused") && why.contains("SettlementTooLate"),
            "{why}"
        ),
        JobState::Expired if realistic => assert!(why.contains("deadline passed"), "{why}"),
        _ => panic!("the late job must end refused (or, at block timing, expired): {r:?}"),
    }
    assert!(
        escrow.job(3).await.unwrap().is_some(),
        "refused: still open on-chain, for expiry"
    );

    let counts = settlements_on_chain(&n).await;
    assert_eq!(
        counts,
        [(1, 1), (2, 1)].into_iter().collect(),
        "each job settled exactly once"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_catches_up_from_the_persisted_cursor() {
    let n = setup(StubWorker::new(2, vec![1]), 5 * NANO_PER_TON).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let h = spawn(&n, n.dev.api(), &db).await;
    let first = n.open(1, b"one", 600).await;
    wait_for(h.store(), &first, 60, |s| s == JobState::Opened).await;
    h.shutdown().await.unwrap();

    // Opened while the relayer is down.
    let missed = [n.open(2, b"two", 600).await, n.open(3, b"three", 600).await];
    let h = spawn(&n, n.dev.api(), &db).await;
    for j in &missed {
        wait_for(h.store(), j, 60, |s| s == JobState::Opened).await;
    }
    let total: u64 = h
        .store()
        .count_by_state()
        .await
        .unwrap()
        .iter()
        .map(|(_, c)| c)
        .sum();
    assert_eq!(total, 3, "every job once");
    // And the caught-up jobs are served like any other.
    let _w = alive(
        n.stub
            .connect(&h.url().replace("http://", "ws://"))
            .await
            .unwrap(),
    );
    assert_eq!(
        submit(&h.url(), &missed[0], b"two", &n.stub.address).await,
        202
    );
    let r = wait_for(h.store(), &missed[0], 90, |s| s.is_final()).await;
    assert_eq!(r.state, JobState::Settled, "{r:?}");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn chain_faults_neither_lose_nor_duplicate_work() {
    let n = setup(StubWorker::new(3, vec![1]), 5 * NANO_PER_TON).await;
    let proxy = FaultProxy::start(n.dev.localnet.url()).await;
    let api = TonCenterConfig {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
        base_url: proxy.url.clone(),
        // The profile's key (COCOON_TEST_NETWORK=realistic), through the proxy. A client's budget
        // is per URL: the relayer's, through the proxy, and the test's own would together exceed
        // the key's limit, so the relayer keeps half of it.
        rate_limit: match n.dev.localnet.timing().rate_limit_keyed {
            0 => RateLimit::Auto,
            keyed => RateLimit::PerSecond((keyed / 2).max(1)),
        },
        ..n.dev.api()
    };
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(&n, api, &dir.path().join("r.db")).await;
    let _w = alive(
        n.stub
            .connect(&h.url().replace("http://", "ws://"))
            .await
            .unwrap(),
    );

    // The watcher's and the registry's reads fail, stall and are throttled; the broadcast of a
    // batch reaches the chain but its answer is lost; confirmation lookups fail.
    proxy.inject("v3/transactions", Fault::Status(502), 4);
    proxy.inject("v3/transactions", Fault::Status(429), 3);
    proxy.inject("v3/transactions", Fault::Delay(Duration::from_secs(3)), 2);
    proxy.inject("runGetMethod", Fault::Status(503), 3);
    proxy.inject("v3/message", Fault::DropAfterForward, 1);
    proxy.inject("v3/message", Fault::Status(500), 1);
    proxy.inject("transactionsByMessage", Fault::Status(502), 6);
    proxy.inject("transactionsByMessage", Fault::Status(429), 3);

    let jobs = run_jobs(&n, &h, &[1, 2, 3]).await;
    assert!(
        proxy.seen("v3/transactions") > 9 && proxy.seen("transactionsByMessage") > 9,
        "the faults were hit"
    );
    let counts = settlements_on_chain(&n).await;
    assert_eq!(
        counts,
        jobs.iter().map(|j| (j.job_id, 1)).collect(),
        "every job settled, none twice"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_a_highload_wallet_settlements_go_out_from_it() {
    let n = setup(StubWorker::new(4, vec![1]), 5 * NANO_PER_TON).await;
    let highload =
        HighloadWallet::from_mnemonic_on(&n.relayer_mnemonic, Network::Localnet).unwrap();
    assert_ne!(highload.address(), n.relayer.address());
    n.dev
        .localnet
        .fund(highload.address(), 5 * NANO_PER_TON)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let h = spawn_with(
        &n,
        n.dev.api(),
        &dir.path().join("r.db"),
        Some(highload.clone()),
    )
    .await;
    // Jobs still name the V5R1 wallet: it receives job_opened and stays the relayer's identity.
    assert_eq!(h.address(), Some(n.relayer.address()));
    let _w = alive(
        n.stub
            .connect(&h.url().replace("http://", "ws://"))
            .await
            .unwrap(),
    );
    let jobs = run_jobs(&n, &h, &[1, 2, 3]).await;
    let counts = settlements_on_chain(&n).await;
    assert_eq!(
        counts,
        jobs.iter().map(|j| (j.job_id, 1)).collect(),
        "every job settled, none twice"
    );
    // Every SubmitReceipts left from the highload wallet (deployed by the first one), none from
    // the V5R1 wallet.
    let worker = cocoon_sdk::tlb::TonAddress::from_hex_str(&n.stub.address).unwrap();
    let from_highload: usize = n
        .chain
        .transactions(highload.address(), 0, 100)
        .await
        .unwrap()
        .iter()
        .flat_map(|t| &t.out_msgs)
        .filter(|m| m.destination.as_ref() == Some(&worker))
        .count();
    assert!(from_highload >= 1, "batches sent from the highload wallet");
    let from_v5: usize = n
        .chain
        .transactions(n.relayer.address(), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|t| {
            t.out_msgs
                .iter()
                .filter(|m| m.destination.is_some())
                .count()
        })
        .sum();
    assert_eq!(from_v5, 0, "the V5R1 wallet sent nothing");
    h.shutdown().await.unwrap();
}
