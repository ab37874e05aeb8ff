//! Crash safety in channel mode (protocol v2): the `cocoon-relayer` binary on localnet with a
//! Root v2, a real worker node (SmolLM2 on flex) settling its channels every few hundred
//! milliseconds from its own ledger, and apps sending requests through `ChannelClient`s. The
//! relayer is SIGKILLed at random points (seeded: `COCOON_CRASH_SEED` replays the schedule) while
//! requests stream and settlements go out, and restarted each time; it rebuilds its channels
//! from the chain. Once it is frozen first until the worker signed a receipt it cannot deliver
//! any more (the answer is lost: the app pays that receipt when the worker resends it for the
//! seq asked again, and nothing else). The worker node is killed once in the middle of a
//! settlement and restarted on its ledger. At the end, on-chain: every channel settled exactly
//! the cumulative of the last voucher its app signed (the sum of the receipts it accepted), each
//! amount once (settled amounts strictly grow, no Escrow transaction aborted), and every Escrow's
//! books exact to the nanoTON; the requests that failed cost nothing but a lost answer's receipt.

mod binary;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use binary::{free_port, spawn_relayer};
use cocoon_sdk::attest::SimulatedProvider;
use cocoon_sdk::chain::{ChainApi as _, TonCenterClient};
use cocoon_sdk::channel::{BPS, ChannelState};
use cocoon_sdk::client::PolicyMode;
use cocoon_sdk::client::channels::{ChannelClient, ChannelConfig, ChannelResult};
use cocoon_sdk::contracts::v2::{EscrowClient, EscrowState, settlement_logs};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{Wallet, WalletKind, generate_mnemonic};
use cocoon_testkit::{DevChainV2, dev, escrow_books};
use cocoon_worker::BackendKind;
use cocoon_worker::node::{
    ChannelOptions, Node, NodeConfig, NodeHandle, NodeKeys, RegisterOutcome, ServedModel, register,
};
use ed25519_dalek::SigningKey;
use rand::{Rng as _, SeedableRng as _};

const APPS: u8 = 2;
const KILLS: usize = 4;
const MAX_TOKENS: u32 = 3;
const PRICE_IN: u128 = 1;
const PRICE_OUT: u128 = 1_000;

/// The relayer binary, serving `port`, its store in `db`, its log appended to `log`.
fn start_relayer(
    chain: &DevChainV2,
    mnemonic: &str,
    port: u16,
    db: &str,
    log: &std::path::Path,
) -> Child {
    spawn_relayer(
        chain.localnet.url(),
        &chain.root.to_hex(),
        mnemonic,
        port,
        db,
        log,
        &[],
    )
}

/// Waits until the relayer answers `/health` (panics with its log after 30 s).
async fn wait_up(port: u16, log: &std::path::Path) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relayer did not come up:\n{}", log_tail(log));
}

fn log_tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn chat(i: u64) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", format!("Count to {}.", i % 7 + 2))],
        GenerationParams {
            max_tokens: MAX_TOKENS,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    )
}

/// What one app did: the requests paid, and how many failed (each must have cost nothing).
#[derive(Debug, Default)]
struct AppLog {
    paid: Vec<ChannelResult>,
    failed: Vec<String>,
}

/// Sends requests one after another until `stop`; a failed request is logged and the next one
/// goes out after a pause (the relayer may be down).
async fn run_app(app: ChannelClient, stop: Arc<AtomicBool>, log: Arc<std::sync::Mutex<AppLog>>) {
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let r = match app.request(&SMOLLM2_135M, chat(i)).await {
            Ok(stream) => stream.finish().await,
            Err(e) => Err(e),
        };
        match r {
            Ok(r) => log.lock().unwrap().paid.push(r),
            Err(e) => {
                log.lock().unwrap().failed.push(e.to_string());
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    }
}

async fn last_lt(chain: &TonCenterClient, address: &TonAddress) -> u64 {
    chain
        .account(address)
        .await
        .unwrap()
        .last_tx
        .map_or(0, |t| t.lt)
}

/// The Escrow's state, channel `id`'s, and the last transaction they reflect (read again if one
/// landed between).
async fn snapshot(
    chain: &TonCenterClient,
    escrow: &EscrowClient<'_, TonCenterClient>,
    id: u64,
) -> (EscrowState, u64, ChannelState) {
    loop {
        let lt = last_lt(chain, escrow.address()).await;
        let st = escrow.state().await.unwrap();
        let ch = escrow.channel(id).await.unwrap().unwrap();
        if last_lt(chain, escrow.address()).await == lt {
            return (st, lt, ch);
        }
    }
}

/// A worker node on a runtime of its own, so that it can be killed: shutting that runtime down
/// drops every task of the node at its next await, as a SIGKILL would stop the process (what its
/// ledger committed stays, nothing else happens: no draining, no settlement on shutdown).
struct CrashableNode {
    rt: tokio::runtime::Runtime,
    node: NodeHandle,
}

impl CrashableNode {
    async fn start(cfg: NodeConfig) -> Self {
        tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let node = rt.block_on(async {
                let node = Node::start(cfg).await.unwrap();
                assert!(node.wait_connected(Duration::from_secs(60)).await);
                node
            });
            Self { rt, node }
        })
        .await
        .unwrap()
    }

    /// Stops the node at once (its handle is dropped only after its tasks are gone: dropping it
    /// first would signal a graceful shutdown).
    fn kill(self) {
        let Self { rt, node } = self;
        rt.shutdown_background();
        drop(node);
    }

    /// The graceful shutdown (settles what is due).
    async fn shutdown(self) {
        tokio::task::spawn_blocking(move || {
            let Self { rt, node } = self;
            rt.block_on(node.shutdown());
            rt.shutdown_background();
        })
        .await
        .unwrap();
    }
}

/// The cumulative amount of a settlement the node's ledger holds as being submitted, once one
/// is (polled for up to 30 s).
async fn wait_submitting(ledger: &std::path::Path) -> String {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rw", ledger.display()))
        .await
        .unwrap();
    for _ in 0..6000 {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT cumulative FROM channel_settlements WHERE status = 'submitting' LIMIT 1",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        if let Some((c,)) = row {
            pool.close().await;
            return c;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no settlement was submitted within 30 s");
}

/// Receipts the node's ledger holds.
async fn receipts_signed(ledger: &std::path::Path) -> i64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rw", ledger.display()))
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM channel_receipts")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {}", child.id());
}

/// Freezes the relayer (SIGSTOP) until the worker signs a receipt it can no longer deliver: the
/// kill that follows loses that answer after the worker recorded its receipt. Tried again while
/// no request was in flight.
async fn freeze_with_an_answer_inside(relayer: &Child, ledger: &std::path::Path) {
    for _ in 0..20 {
        signal(relayer, "-STOP");
        let before = receipts_signed(ledger).await;
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if receipts_signed(ledger).await > before {
                return;
            }
        }
        signal(relayer, "-CONT");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("no request reached the worker while the relayer was frozen");
}

/// Every settlement of the node's ledger: (cumulative, status, attempts).
async fn ledger_settlements(ledger: &std::path::Path) -> Vec<(String, String, i64)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rw", ledger.display()))
        .await
        .unwrap();
    let rows = sqlx::query_as("SELECT cumulative, status, attempts FROM channel_settlements")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relayer_sigkills_in_channel_mode_lose_and_duplicate_nothing() {
    let seed: u64 = std::env::var("COCOON_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!(
        "channel crash test seed {seed} (COCOON_CRASH_SEED={seed} replays the kill schedule)"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = std::time::Instant::now();

    let chain = DevChainV2::on(
        cocoon_testkit::chain::start_localnet().await.unwrap(),
        BTreeMap::from([(SMOLLM2_135M.id, SMOLLM2_135M.registry_hash())]),
    )
    .await
    .unwrap();
    let api = chain.localnet.url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let log = dir.path().join("relayer.log");
    let port = free_port();
    let relayer_url = format!("http://127.0.0.1:{port}");
    let mnemonic = generate_mnemonic();
    let relayer_wallet = Wallet::from_mnemonic(&mnemonic, WalletKind::V5r1).unwrap();
    chain
        .localnet
        .fund(relayer_wallet.address(), 10 * NANO_PER_TON)
        .await
        .unwrap();
    let mut relayer = start_relayer(&chain, &mnemonic, port, &db, &log);
    wait_up(port, &log).await;

    // The worker node: registered, settling every voucher as soon as it holds it (the channel's
    // window ends within the margin), so settlements go out all along.
    let cfg = NodeConfig {
        chain: chain.localnet.api_config(),
        root: chain.root.clone(),
        relayer_url: format!("ws://127.0.0.1:{port}"),
        wallet: chain.funded_wallet(50 * NANO_PER_TON).await.unwrap(),
        keys: NodeKeys::load_or_create(&dir.path().join("worker-keys.json")).unwrap(),
        models: vec![ServedModel::load(SMOLLM2_135M, BackendKind::Flex)],
        attestation: Arc::new(SimulatedProvider {
            label: "channel-crash-test".into(),
        }),
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        stake: dev::MIN_STAKE,
        capacity: 2,
        self_submit: false,
        highload: false,
        renewal: Default::default(),
        channels: ChannelOptions {
            settle_every: Duration::from_millis(300),
            settle_margin_secs: 48 * 3600,
            ..ChannelOptions::default()
        },
        gpu: None,
    };
    assert!(matches!(
        register(&cfg).await.unwrap(),
        RegisterOutcome::Registered { .. }
    ));
    let mut node = CrashableNode::start(cfg.clone()).await;
    let ledger = cfg.keys.channel_ledger_path().unwrap();

    // The apps: each opens its channel with a first request while everything is up, then the
    // Escrow's books are taken.
    let mut apps = Vec::new();
    for k in 1..=APPS {
        let mut config = ChannelConfig::new(
            chain.localnet.api_config(),
            chain.root.clone(),
            &relayer_url,
        );
        config.policy = PolicyMode::Development;
        config.channels = 1;
        config.channel_amount = NANO_PER_TON / 20;
        config.top_up_below = NANO_PER_TON / 200;
        let app = ChannelClient::connect(
            config,
            chain.funded_wallet(5 * NANO_PER_TON).await.unwrap(),
            SigningKey::from_bytes(&[k; 32]),
        )
        .await
        .unwrap();
        let first = app
            .request(&SMOLLM2_135M, chat(0))
            .await
            .unwrap()
            .finish()
            .await
            .unwrap();
        apps.push((app, first));
    }
    let mut books = Vec::new();
    for (app, _) in &apps {
        let escrow = EscrowClient::at(
            &chain.chain,
            chain.root.clone(),
            app.escrow_address().clone(),
        );
        let channels = app.channels();
        assert_eq!(channels.len(), 1);
        let (st, lt, ch) = snapshot(&chain.chain, &escrow, channels[0].channel_id).await;
        // What is settled by then, and the relayer's fees held for it in the channel (paid out
        // of `locked` when the channel closes).
        books.push((st, lt, ch.settled, ch.relayer_due));
    }

    // Traffic from every app while the relayer is killed and restarted.
    let stop = Arc::new(AtomicBool::new(false));
    let logs: Vec<Arc<std::sync::Mutex<AppLog>>> = apps
        .iter()
        .map(|(_, first)| {
            Arc::new(std::sync::Mutex::new(AppLog {
                paid: vec![first.clone()],
                failed: Vec::new(),
            }))
        })
        .collect();
    let tasks: Vec<_> = apps
        .iter()
        .zip(&logs)
        .map(|((app, _), log)| tokio::spawn(run_app(app.clone(), stop.clone(), log.clone())))
        .collect();
    let mut killed_while_settling = None;
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(800..3000))).await;
        if round == 0 {
            freeze_with_an_answer_inside(&relayer, &ledger).await;
        }
        relayer.kill().unwrap(); // SIGKILL
        relayer.wait().unwrap();
        eprintln!("round {round}: relayer killed at {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..500))).await;
        relayer = start_relayer(&chain, &mnemonic, port, &db, &log);
        wait_up(port, &log).await;
        if round == KILLS / 2 {
            // The worker node dies too, in the middle of a settlement, and comes back on its
            // ledger: what may have been sent is never sent again.
            let cumulative = wait_submitting(&ledger).await;
            node.kill();
            eprintln!(
                "worker node killed while settling up to {cumulative} at {:?}",
                started.elapsed()
            );
            killed_while_settling = Some(cumulative);
            node = CrashableNode::start(cfg.clone()).await;
        }
    }
    // The last instance stays: every app must be served again.
    let paid_before: Vec<usize> = logs.iter().map(|l| l.lock().unwrap().paid.len()).collect();
    let until = tokio::time::Instant::now() + Duration::from_secs(40);
    while logs
        .iter()
        .zip(&paid_before)
        .any(|(l, n)| l.lock().unwrap().paid.len() < n + 2)
    {
        assert!(
            tokio::time::Instant::now() < until,
            "seed {seed}: an app is not served after the last restart: {:?}\nrelayer log:\n{}",
            logs.iter()
                .map(|l| l.lock().unwrap().failed.clone())
                .collect::<Vec<_>>(),
            log_tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("traffic done at {:?}", started.elapsed());

    // Every app closes its channel; the node settles the final voucher of each when it holds
    // more than what is settled, else the channel closes after the grace period.
    for (app, _) in &apps {
        app.close(app.channels()[0].channel_id).await.unwrap();
    }
    let settled_all = async {
        for _ in 0..120 {
            let mut left = false;
            for (app, _) in &apps {
                let view = &app.channels()[0];
                let escrow = EscrowClient::at(
                    &chain.chain,
                    chain.root.clone(),
                    app.escrow_address().clone(),
                );
                if let Some(st) = escrow.channel(view.channel_id).await.unwrap()
                    && st.settled < view.paid
                {
                    left = true;
                }
            }
            if !left {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("seed {seed}: the final vouchers were not settled within 30 s");
    };
    settled_all.await;
    node.shutdown().await;
    chain
        .localnet
        .advance_time(u64::from(dev::GRACE_PERIOD) + 5)
        .await
        .unwrap();
    for (app, _) in &apps {
        app.reclaim().await.unwrap();
    }
    relayer.kill().unwrap();
    relayer.wait().unwrap();

    // On-chain, per app.
    let mut lost_total = 0;
    for (i, ((app, _), (log, (st0, lt0, settled0, relayer_due0)))) in
        apps.iter().zip(logs.iter().zip(&books)).enumerate()
    {
        // The apps are done: their logs are complete.
        let log = std::mem::take(&mut *log.lock().unwrap());
        let view = app.channels()[0].clone();
        let escrow = EscrowClient::at(
            &chain.chain,
            chain.root.clone(),
            app.escrow_address().clone(),
        );
        assert!(
            escrow.channel(view.channel_id).await.unwrap().is_none(),
            "app {i}: channel still open"
        );
        // The receipts paid are exactly seqs 1..=n of the channel: the answers received, and
        // any whose answer a kill lost (the worker resent its receipt when the seq was asked
        // for again: each is one of the failed requests). The last voucher pays their sum.
        let receipts = app.receipts(view.channel_id);
        let seqs: Vec<u32> = receipts.iter().map(|r| r.body.seq).collect();
        assert_eq!(
            seqs,
            (1..=receipts.len() as u32).collect::<Vec<_>>(),
            "seed {seed}: app {i}: seqs paid"
        );
        let paid: u128 = receipts.iter().map(|r| r.body.cost).sum();
        for r in &log.paid {
            assert_eq!(
                &receipts[r.seq as usize - 1],
                &r.receipt,
                "seed {seed}: app {i}"
            );
        }
        let lost = receipts.len() - log.paid.len();
        assert!(lost <= log.failed.len(), "seed {seed}: app {i}");
        lost_total += lost;
        assert_eq!(view.paid, paid, "seed {seed}: app {i}");
        let last = log.paid.iter().map(|r| r.seq).max().unwrap();
        if last as usize == receipts.len() {
            assert_eq!(log.paid.last().unwrap().cumulative, paid);
        }
        // Settled: the last voucher exactly, each amount once, growing.
        let settlements = settlement_logs(&chain.chain, app.escrow_address(), view.channel_id)
            .await
            .unwrap();
        let cumulatives: Vec<u128> = settlements.iter().map(|s| s.cumulative()).collect();
        assert!(
            cumulatives.windows(2).all(|w| w[0] < w[1]),
            "seed {seed}: app {i}: an amount settled twice: {cumulatives:?}"
        );
        assert_eq!(
            cumulatives.last().copied(),
            Some(paid),
            "seed {seed}: app {i}: {cumulatives:?}, {} requests paid, {} failed",
            log.paid.len(),
            log.failed.len()
        );
        // The books: from the snapshot on, the Escrow gave out exactly what was paid and not yet
        // settled then (each settlement's protocol fee kept in fees_due), released the rest, and
        // spent only storage fees — no transaction of it aborted.
        let txs = escrow_books::transactions_after(&api, app.escrow_address(), 0).await;
        let mut seen = Vec::new();
        for t in &txs {
            seen.push(format!(
                "lt {} op {} in {} fees {} storage {} out {:?}",
                t["lt"],
                t["in_msg"]["opcode"],
                t["in_msg"]["value"],
                t["total_fees"],
                t["description"]["storage_ph"]["storage_fees_collected"],
                t["out_msgs"].as_array().map(|o| o
                    .iter()
                    .map(|m| (m["opcode"].clone(), m["value"].clone()))
                    .collect::<Vec<_>>())
            ));
            assert_eq!(
                t["description"]["aborted"], false,
                "seed {seed}: app {i}: {t}"
            );
        }
        let lt = |t: &serde_json::Value| -> u64 {
            t["lt"].as_str().expect("lt as a string").parse().unwrap()
        };
        let (left, storage) =
            escrow_books::free_balance_effects(txs.iter().filter(|t| lt(t) > *lt0));
        let mut fees = 0u128;
        let mut base = *settled0;
        for c in cumulatives.iter().filter(|c| **c > *settled0) {
            fees += (c - base) * u128::from(dev::PROTOCOL_FEE_BPS) / BPS;
            base = *c;
        }
        let st = escrow.state().await.unwrap();
        assert_eq!(
            (st.open_channels, st.locked),
            (0, 0),
            "seed {seed}: app {i}"
        );
        assert_eq!(
            st.fees_due,
            st0.fees_due + fees,
            "seed {seed}: app {i}: protocol fees"
        );
        assert_eq!(
            st.free,
            st0.free + st0.locked - (paid - settled0) - relayer_due0 + left - storage,
            "seed {seed}: app {i}: paid {paid}, settled at the snapshot {settled0} (relayer fees held {relayer_due0}), storage {storage}, close requests left {left}; after lt {lt0}, state {st0:?} -> {st:?}:\n{}",
            seen.join("\n")
        );
        eprintln!(
            "app {i}: {} requests answered and paid, {lost} paid without their answer ({paid} nanoTON), {} failed, {} settlements",
            log.paid.len(),
            log.failed.len(),
            settlements.len()
        );
    }
    assert!(
        lost_total >= 1,
        "seed {seed}: the answer lost in the frozen relayer was not paid"
    );
    // The settlement the node died in stays "submitting": never sent a second time, whether or
    // not it reached the chain (a later voucher's settlement carried its amount anyway).
    let killed = killed_while_settling.unwrap();
    let rows = ledger_settlements(&ledger).await;
    assert!(
        rows.iter()
            .any(|(c, status, _)| *c == killed && status == "submitting"),
        "seed {seed}: {killed}: {rows:?}"
    );
    eprintln!("channel crash test: {:?}", started.elapsed());
}
