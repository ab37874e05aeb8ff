//! The dashboard in a real browser: a devnet (localnet, Root, relayer, one worker running
//! SmolLM2), `cocoon dashboard`'s server in-process, and headless Chromium loading the page.
//! The rendered DOM must list the worker (labelled as simulated) and, after one request, show its
//! settlement; screenshots (desktop and phone widths) are saved under the target directory as
//! artifacts. Chromium is required: the test fails with the install command when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_cli::dashboard::{self, Collector};
use cocoon_e2e::{Devnet, DevnetOptions, WorkerSetup, init_logs};
use cocoon_sdk::chain::Network;
use cocoon_sdk::client::{Client, JobOptions};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;

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
    let dir = artifacts_dir();
    for (name, size) in [
        ("dashboard.png", "1280,1400"),
        ("dashboard-phone.png", "390,1800"),
    ] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let (b, p, u) = (browser.clone(), profile.path().to_owned(), url.clone());
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

    let _ = stop.send(());
    served.await.unwrap().unwrap();
    net.stop().await;
}
