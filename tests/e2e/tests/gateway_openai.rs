//! The OpenAI-compatible gateway, end to end: the official `openai` Python client
//! (tests/gateway, pinned in tests/gateway/requirements.txt) against `cocoon gateway`'s server
//! over the real SDK client, a relayer and a worker node running SmolLM2 and MiniLM on localnet.
//!
//! Two gateways run: one whose Escrow holds a deposit, and one whose wallet never deposited (the
//! 402 case). The Python tests get their URLs and key from the environment.
//!
//! The venv comes from `scripts/lib/python.sh` (scripts/test prepares it). Without it the test
//! is skipped with a message, except in CI (`CI=true`), where it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cocoon_cli::gateway::GatewayConfig;
use cocoon_e2e::{Devnet, DevnetOptions, init_logs};
use cocoon_sdk::client::Client;
use cocoon_sdk::units::NANO_PER_TON;

const API_KEY: &str = "sk-cocoon-e2e";
/// The whole Python suite: about a dozen real jobs on a CPU worker.
const SUITE_TIMEOUT: Duration = Duration::from_secs(1200);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The venv's python: `$COCOON_PYTHON`, else `$COCOON_VENV/bin/python`, else
/// `$HOME/.cache/cocoon/venv/bin/python`.
fn venv_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COCOON_PYTHON") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let venv = std::env::var_os("COCOON_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cocoon/venv"))
        })?;
    Some(venv.join("bin/python")).filter(|p| p.exists())
}

async fn start_gateway(client: Client) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = GatewayConfig {
        api_key: Some(API_KEY.into()),
        ..GatewayConfig::default()
    };
    cocoon_testkit::start_gateway(client, config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_openai_python_client_passes_against_the_gateway() {
    let Some(python) = venv_python() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "the Python venv with the openai client is missing: scripts/lib/python.sh creates it"
            );
        }
        eprintln!(
            "SKIPPED gateway_openai: no Python venv with the openai client (run scripts/lib/python.sh, or scripts/test)"
        );
        return;
    };
    init_logs("warn");
    let net = Devnet::start(DevnetOptions::default()).await.unwrap();
    net.wait_for_workers(1).await.unwrap();

    let rich = Client::connect(
        net.client_config(),
        net.funded_wallet(20 * NANO_PER_TON).await.unwrap(),
    )
    .await
    .unwrap();
    rich.deposit(3 * NANO_PER_TON).await.unwrap();
    // Enough TON for gas, but no Escrow deposit: every job is refused before anything is sent.
    let poor = Client::connect(
        net.client_config(),
        net.funded_wallet(2 * NANO_PER_TON).await.unwrap(),
    )
    .await
    .unwrap();
    let (url, _stop) = start_gateway(rich).await;
    let (poor_url, _stop_poor) = start_gateway(poor).await;

    let run = tokio::process::Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/gateway",
        ])
        .current_dir(repo_root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("COCOON_GATEWAY_URL", &url)
        .env("COCOON_GATEWAY_KEY", API_KEY)
        .env("COCOON_GATEWAY_POOR_URL", &poor_url)
        .env("COCOON_EXPECT_ATTESTATION", "UNATTESTED (SIMULATED TEE)")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SUITE_TIMEOUT, run)
        .await
        .expect("the Python suite timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "pytest tests/gateway failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains(" passed"), "pytest ran no tests:\n{stdout}");
    assert!(
        !stdout.contains(" skipped"),
        "every gateway test must run here:\n{stdout}"
    );
    net.stop().await;
}
