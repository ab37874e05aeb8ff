//! The dashboard in a real browser: a devnet (localnet, Root, relayer, one worker running
//! SmolLM2), `cocoon dashboard`'s server in-process, and headless Chromium loading the page.
//! The rendered DOM must list the worker (labelled as simulated) and, after one request, show its
//! settlement; screenshots (desktop and phone widths) are saved under the target directory as
//! artifacts. Chromium is required: the test fails with the install command when it is missing.
//!
//! The second test does the same on a Root v2 (payment channels): Root v2's queued governance
//! change with when it takes effect, the Worker v2, and a channel's settlement after a session
//! (open, one request, close, the worker settles once), and the worker's earnings: exactly what the
//! settled receipt cost.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_cli::dashboard::{self, Collector};
use cocoon_e2e::{Devnet, DevnetOptions, Protocol, WorkerSetup, init_logs};
use cocoon_sdk::chain::Network;
use cocoon_sdk::client::channels::ChannelClient;
use cocoon_sdk::client::{Client, JobOptions};
use cocoon_sdk::contracts::v2::{EscrowClient, RootClient as RootV2};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::messages::v2::root::AddMeasurement;
use cocoon_sdk::tlb::TlbType as _;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::SendOptions;
use cocoon_worker::node::ChannelOptions;

/// Environment variable naming the Chromium binary (default: `chromium` on the PATH).
const CHROMIUM_ENV: &str = "COCOON_CHROMIUM";

fn chromium() -> PathBuf {
    if let Ok(p) = std::env::var(CHROMIUM_ENV) {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser"] {
        if let Ok(path) = std::env::var("PATH") {
            for dir in std::env::split_paths(&path) {
                let p = dir.join(name);
                if p.is_file() {
                    return p;
                }
            }
        }
    }
    panic!(
        "headless Chromium is needed for the dashboard browser test and was not found: \
         install it with `sudo apt-get install chromium` (scripts/test does), or name the binary \
         in {CHROMIUM_ENV}"
    );
}

/// Runs Chromium headless on `url` with `extra` flags; returns its stdout.
fn headless(browser: &Path, profile: &Path, extra: &[&str], url: &str) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            // Lets the page's first fetch and render finish before the DOM is taken.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", browser.display()));
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Dumps the rendered DOM until `ready` holds (the page polls; the dashboard reads the chain).
fn dom_until(
    browser: &Path,
    profile: &Path,
    url: &str,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let dom = headless(browser, profile, &["--dump-dom"], url);
        if ready(&dom) {
            return dom;
        }
        assert!(
            Instant::now() < until,
            "{what} never rendered; last DOM:\n{dom}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_lists_workers_and_shows_a_settlement_after_a_request() {
    init_logs("warn");
    // Found first: a missing browser fails before minutes of set-up.
    let browser = chromium();
    let net = Devnet::start(DevnetOptions {
        workers: vec![WorkerSetup {
            models: vec![&SMOLLM2_135M],
            ..WorkerSetup::default()
        }],
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let collector = Arc::new(
        Collector::new(
            net.chain.chain.clone(),
            Network::Localnet,
            net.root().clone(),
            &net.relayer_url,
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(dashboard::serve(listener, collector, async move {
        let _ = stopped.await;
    }));
    let profile = tempfile::tempdir().unwrap();
    let worker = net.workers[0]
        .address
        .to_base64_url_flags(false, Network::Localnet.is_test());

    // 1. The worker is listed, with its simulated attestation said plainly.
    let (b, p, u, w) = (
        browser.clone(),
        profile.path().to_owned(),
        url.clone(),
        worker.clone(),
    );
    let dom = tokio::task::spawn_blocking(move || {
        dom_until(&b, &p, &u, "the worker row", |d| {
            d.contains(&format!("data-worker=\"{w}\""))
        })
    })
    .await
    .unwrap();
    assert!(dom.contains("SIMULATED — UNATTESTED"), "{dom}");
    assert!(dom.contains("smollm2-135m-instruct"), "{dom}");
    assert!(dom.contains("online"), "{dom}");
    assert!(
        dom.contains("id=\"settlements-count\" class=\"dim\">0<"),
        "{dom}"
    );

    // 2. One request, settled on-chain.
    let wallet = net.funded_wallet(10 * NANO_PER_TON).await.unwrap();
    let app = Client::connect(net.client_config(), wallet).await.unwrap();
    app.deposit(2 * NANO_PER_TON).await.unwrap();
    let request = JobRequest::chat(
        vec![ChatMessage::new("user", "Name a colour.")],
        GenerationParams {
            max_tokens: 4,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    );
    let result = app
        .open_job(SMOLLM2_135M.name, request, JobOptions::default())
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    let settlement = app.verify_settlement(&result).await.unwrap();

    // 3. The settlement appears on the page, with its job id and tokens.
    let job_id = result.job.job_id;
    let (b, p, u) = (browser.clone(), profile.path().to_owned(), url.clone());
    let dom = tokio::task::spawn_blocking(move || {
        dom_until(&b, &p, &u, "the settlement row", |d| {
            d.contains(&format!("data-job=\"{job_id}\""))
        })
    })
    .await
    .unwrap();
    assert!(
        dom.contains("id=\"settlements-count\" class=\"dim\">1<"),
        "{dom}"
    );
    assert!(settlement.cost > 0);
    let tokens = format!(
        "{} / {}",
        result.usage.prompt_tokens, result.usage.completion_tokens
    );
    assert!(dom.contains(&tokens), "tokens {tokens} in {dom}");

    // 4. Screenshots, desktop and phone width, kept as artifacts.
    screenshots(&browser, profile.path(), &url, "dashboard").await;

    let _ = stop.send(());
    served.await.unwrap().unwrap();
    net.stop().await;
}

/// Saves desktop and phone-width screenshots of `url` as `<stem>.png` and `<stem>-phone.png`.
async fn screenshots(browser: &Path, profile: &Path, url: &str, stem: &str) {
    let dir = artifacts_dir();
    for (name, size) in [
        (format!("{stem}.png"), "1280,1400"),
        (format!("{stem}-phone.png"), "390,1800"),
    ] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let (b, p, u) = (browser.to_owned(), profile.to_owned(), url.to_owned());
        let shot = path.clone();
        tokio::task::spawn_blocking(move || {
            headless(
                &b,
                &p,
                &[
                    &format!("--screenshot={}", shot.display()),
                    &format!("--window-size={size}"),
                ],
                &u,
            )
        })
        .await
        .unwrap();
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()))
            .len();
        assert!(len > 10_000, "{} is only {len} bytes", path.display());
        eprintln!("screenshot: {}", path.display());
    }
}

/// nanoTON as the page writes TON: exact, trailing zeros dropped.
fn ton(nano: u128) -> String {
    let (whole, frac) = (nano / NANO_PER_TON, nano % NANO_PER_TON);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Waits, off the runtime, until the rendered DOM of `url` satisfies `ready`.
async fn wait_dom(
    browser: &Path,
    profile: &Path,
    url: &str,
    what: &'static str,
    ready: impl Fn(&str) -> bool + Send + 'static,
) -> String {
    let (b, p, u) = (browser.to_owned(), profile.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || dom_until(&b, &p, &u, what, ready))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_root_v2_the_page_shows_governance_the_worker_and_a_channel_settlement() {
    init_logs("warn");
    let browser = chromium();
    let net = Devnet::start(DevnetOptions {
        protocol: Protocol::Channels,
        workers: vec![WorkerSetup {
            models: vec![&SMOLLM2_135M],
            // Looks for due settlements every second: the closed channel's final voucher is
            // settled at once (a production node waits until settling is worth its fee).
            channels: ChannelOptions {
                settle_every: Duration::from_secs(1),
                ..ChannelOptions::default()
            },
            ..WorkerSetup::default()
        }],
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    // A governance change waits out Root's delay: the page must say when it takes effect.
    let root = RootV2::at(&net.chain.chain, net.root().clone());
    let measurement = [0x5a; 32];
    let body = AddMeasurement {
        query_id: 7,
        measurement,
    }
    .to_cell()
    .unwrap();
    root.queue_change(&net.chain.governor, body, &SendOptions::default())
        .await
        .unwrap();
    let queued = root.pending_changes(0).await.unwrap();
    assert_eq!(queued.len(), 1, "the change is queued");
    let change_id = queued[0].id;

    let collector = Arc::new(
        Collector::new(
            net.chain.chain.clone(),
            Network::Localnet,
            net.root().clone(),
            &net.relayer_url,
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(dashboard::serve(listener, collector, async move {
        let _ = stopped.await;
    }));
    let profile = tempfile::tempdir().unwrap();
    let worker = net.workers[0]
        .address
        .to_base64_url_flags(false, Network::Localnet.is_test());

    // 1. Root v2, its queued change, the Worker v2 (simulated, said plainly).
    let w = worker.clone();
    let dom = wait_dom(&browser, profile.path(), &url, "the worker row", move |d| {
        d.contains(&format!("data-worker=\"{w}\""))
    })
    .await;
    assert!(dom.contains("<dd>v2</dd>"), "{dom}");
    assert!(dom.contains("governance_delay_s"), "{dom}");
    assert!(
        dom.contains(&format!("data-change=\"{change_id}\"")),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("allow measurement {}", hex::encode(measurement))),
        "{dom}"
    );
    assert!(dom.contains("takes effect"), "{dom}");
    assert!(dom.contains("SIMULATED — UNATTESTED"), "{dom}");
    assert!(dom.contains("smollm2-135m-instruct"), "{dom}");
    assert!(dom.contains("online"), "{dom}");
    assert!(
        dom.contains("id=\"settlements-count\" class=\"dim\">0<"),
        "{dom}"
    );

    // 2. A channel session: open, one request, close; the worker settles once.
    let wallet = net.funded_wallet(10 * NANO_PER_TON).await.unwrap();
    let key = cocoon_cli::commands::channel::load_or_create_voucher_key(
        &net.dir.path().join("dashboard.voucher-key"),
    )
    .unwrap();
    let mut config = net.channel_config();
    config.channel_amount = NANO_PER_TON / 20;
    config.top_up_below = NANO_PER_TON / 200;
    let app = ChannelClient::connect(config, wallet, key).await.unwrap();
    let request = JobRequest::chat(
        vec![ChatMessage::new("user", "Name a colour.")],
        GenerationParams {
            max_tokens: 4,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    );
    let result = app
        .request(&SMOLLM2_135M, request)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    let channel_id = result.channel.channel_id;
    app.close(channel_id).await.unwrap();
    let escrow = EscrowClient::at(
        app.chain(),
        net.root().clone(),
        app.escrow_address().clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while escrow.channel(channel_id).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the worker never settled");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 3. The settlement appears, under the worker, with its request, tokens and payment.
    let dom = wait_dom(
        &browser,
        profile.path(),
        &url,
        "the settlement row",
        move |d| d.contains(&format!("data-channel=\"{channel_id}\" data-seq=\"1\"")),
    )
    .await;
    assert!(
        dom.contains("id=\"settlements-count\" class=\"dim\">1<"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("channel {channel_id} seq 1 (closed)")),
        "{dom}"
    );
    let tokens = format!(
        "{} / {}",
        result.usage.prompt_tokens, result.usage.completion_tokens
    );
    assert!(dom.contains(&tokens), "tokens {tokens} in {dom}");
    let short = format!("{}…{}", &worker[..6], &worker[worker.len() - 6..]);
    let row = dom.split("data-channel=").nth(1).expect("a settlement row");
    assert!(
        row.contains(&short),
        "the settlement names the worker {short}: {row}"
    );
    // The worker's earnings: exactly what its settled receipts cost (one receipt here, so the
    // final voucher's cumulative is its cost), in nanoTON and as TON on the page.
    assert_eq!(result.cumulative, result.cost, "one receipt in the channel");
    assert!(result.cost > 0);
    let worker_row = dom
        .split(&format!("data-worker=\"{worker}\""))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("the worker row");
    assert!(
        worker_row.contains(&format!("data-earned=\"{}\"", result.cost)),
        "the worker earned {} nanoTON: {worker_row}",
        result.cost
    );
    assert!(
        worker_row.contains(&format!(">{}</td>", ton(result.cost))),
        "the worker's earnings in TON ({}): {worker_row}",
        ton(result.cost)
    );

    // 4. Screenshots.
    screenshots(&browser, profile.path(), &url, "dashboard-channels").await;

    let _ = stop.send(());
    served.await.unwrap().unwrap();
    net.stop().await;
}
