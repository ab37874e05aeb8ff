//! Starts and stops the local network: `scripts/localnet/server.js` (the reference TVM emulator,
//! `@ton/sandbox`, behind a toncenter-compatible HTTP API).
//!
//! [`Localnet::start`] spawns Node on a free port, waits until the API answers, and kills the
//! process when the handle is dropped (the server also exits when its stdin closes, so it cannot
//! outlive a crashed parent).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing::info;

use cocoon_sdk::chain::{ChainResult, RateLimit, TonCenterClient, TonCenterConfig};
use cocoon_sdk::tlb::TonAddress;

/// How long to wait for the server to print its URL and answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variable that overrides the server script location.
pub const SCRIPT_ENV: &str = "COCOON_LOCALNET_SCRIPT";
/// Environment variable naming the Node binary (default `node`).
pub const NODE_ENV: &str = "COCOON_NODE";
/// Environment variable selecting the test profile of [`LocalnetTiming::from_env`].
pub const TEST_NETWORK_ENV: &str = "COCOON_TEST_NETWORK";
/// The API key clients of a rate-limited localnet send (any key gets the keyed limit).
pub const TEST_API_KEY: &str = "cocoon-localnet-test";
/// Prefix of the server's first stdout line.
const URL_LINE: &str = "COCOON_LOCALNET_URL=";

/// Errors of starting or driving localnet.
#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    /// The server script is not where expected.
    #[error("localnet server script not found at {0} (set {SCRIPT_ENV})")]
    ScriptMissing(PathBuf),
    /// Node could not be started.
    #[error("cannot start {node}: {source}")]
    Spawn {
        /// Node binary.
        node: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The server exited or never became ready.
    #[error("localnet did not start: {0}")]
    NotReady(String),
    /// A dev endpoint (faucet, clock) failed.
    #[error("localnet {call}: {message}")]
    Dev {
        /// Endpoint.
        call: &'static str,
        /// Cause.
        message: String,
    },
}

/// Result of localnet operations.
pub type LocalnetResult<T> = Result<T, LocalnetError>;

/// How to start localnet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalnetConfig {
    /// Port (0 = any free port).
    pub port: u16,
    /// State file: loaded at start if present, saved after every change.
    pub state: Option<PathBuf>,
    /// Server script (default: the repository's `scripts/localnet/server.js`).
    pub script: Option<PathBuf>,
    /// How much the network behaves like the real one (default: instant, unlimited).
    pub timing: LocalnetTiming,
}

/// Real-network behaviour of the local network (README, "The local network"); zero turns each
/// one off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalnetTiming {
    /// Sends are executed at block boundaries this many milliseconds apart (mainnet: ~400).
    pub block_interval_ms: u32,
    /// The v3 indexer sees a block this many milliseconds after it.
    pub index_lag_ms: u32,
    /// Requests per second allowed without an API key (toncenter's free plan: 1); beyond, 429.
    pub rate_limit: u32,
    /// Requests per second allowed per API key (a free key: 10).
    pub rate_limit_keyed: u32,
}

impl LocalnetTiming {
    /// Mainnet's rhythm: a block every 400 ms and an indexer a block behind.
    pub const MAINNET_LIKE: Self = Self {
        block_interval_ms: 400,
        index_lag_ms: 400,
        rate_limit: 0,
        rate_limit_keyed: 0,
    };

    /// The realistic test profile (`COCOON_TEST_NETWORK=realistic`): mainnet's block rhythm, an
    /// indexer that trails it by more than a block, and toncenter's free-plan limits (1 request/s
    /// without a key, 10 with one). Duplicate-seqno messages are dropped at execution whenever
    /// sends wait for a block.
    pub const REALISTIC: Self = Self {
        block_interval_ms: 400,
        index_lag_ms: 1200,
        rate_limit: 1,
        rate_limit_keyed: 10,
    };

    /// The profile `COCOON_TEST_NETWORK` names: unset, empty or `instant` for the instant
    /// network, `realistic` for [`Self::REALISTIC`]; anything else is an error (a typo must not
    /// silently run the kind network).
    pub fn from_env() -> LocalnetResult<Self> {
        match std::env::var(TEST_NETWORK_ENV).unwrap_or_default().trim() {
            "" | "instant" => Ok(Self::default()),
            "realistic" => Ok(Self::REALISTIC),
            other => Err(LocalnetError::NotReady(format!(
                "{TEST_NETWORK_ENV}={other:?}: expected instant or realistic"
            ))),
        }
    }

    fn args(&self) -> [(&'static str, u32); 4] {
        [
            ("--block-interval", self.block_interval_ms),
            ("--index-lag", self.index_lag_ms),
            ("--rate-limit", self.rate_limit),
            ("--rate-limit-keyed", self.rate_limit_keyed),
        ]
    }
}

/// Path of the server script: `$COCOON_LOCALNET_SCRIPT`, else the one in this source tree.
pub fn default_script() -> PathBuf {
    if let Ok(p) = std::env::var(SCRIPT_ENV) {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/localnet/server.js")
}

/// A running localnet; dropping it stops the server.
#[derive(Debug)]
pub struct Localnet {
    child: Child,
    url: String,
    http: reqwest::Client,
    timing: LocalnetTiming,
}

impl Localnet {
    /// Starts localnet and waits until its API answers.
    pub async fn start(cfg: LocalnetConfig) -> LocalnetResult<Self> {
        let script = cfg.script.clone().unwrap_or_else(default_script);
        if !script.is_file() {
            return Err(LocalnetError::ScriptMissing(script));
        }
        let node = std::env::var(NODE_ENV).unwrap_or_else(|_| "node".to_owned());
        let mut cmd = Command::new(&node);
        cmd.arg(&script)
            .arg("--port")
            .arg(cfg.port.to_string())
            .arg("--exit-on-stdin-close");
        if let Some(s) = &cfg.state {
            cmd.arg("--state").arg(s);
        }
        // Always explicit, so a COCOON_LOCALNET_* variable in the environment cannot change a
        // network the caller configured.
        for (flag, value) in cfg.timing.args() {
            cmd.arg(flag).arg(value.to_string());
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| LocalnetError::Spawn {
            node: node.clone(),
            source,
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LocalnetError::NotReady("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines
                .next_line()
                .await
                .map_err(|e| LocalnetError::NotReady(e.to_string()))?
            {
                if let Some(u) = line.strip_prefix(URL_LINE) {
                    return Ok(u.trim().to_owned());
                }
            }
            Err(LocalnetError::NotReady(
                "server exited before printing its URL".into(),
            ))
        })
        .await
        .map_err(|_| LocalnetError::NotReady(format!("no URL within {START_TIMEOUT:?}")))??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // Dev calls are rare and not retried: never reuse a possibly stale pooled connection.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| LocalnetError::NotReady(e.to_string()))?;
        let net = Self {
            child,
            url,
            http,
            timing: cfg.timing,
        };
        net.wait_ready().await?;
        info!(target: "sdk::localnet", url = %net.url, "localnet ready");
        Ok(net)
    }

    async fn wait_ready(&self) -> LocalnetResult<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let r = self
                .http
                .get(format!("{}/api/v2/getMasterchainInfo", self.url))
                .send()
                .await;
            if matches!(&r, Ok(resp) if resp.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(LocalnetError::NotReady(format!(
                    "{} does not answer",
                    self.url
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How this localnet behaves.
    pub fn timing(&self) -> LocalnetTiming {
        self.timing
    }

    /// The API configuration a well-behaved client of this localnet uses: on a rate-limited one,
    /// an API key and a request budget within the keyed limit (as a service on testnet runs with
    /// its toncenter key), so its calls are not answered with 429 storms.
    pub fn api_config(&self) -> TonCenterConfig {
        let mut c = TonCenterConfig::new(self.url.clone());
        if self.timing.rate_limit_keyed > 0 {
            c.api_key = Some(TEST_API_KEY.to_owned());
            c.rate_limit = RateLimit::PerSecond(self.timing.rate_limit_keyed);
        } else if self.timing.rate_limit > 0 {
            c.rate_limit = RateLimit::PerSecond(self.timing.rate_limit);
        }
        c
    }

    /// A toncenter client for this localnet ([`Self::api_config`]).
    pub fn client(&self) -> ChainResult<TonCenterClient> {
        TonCenterClient::new(self.api_config())
    }

    async fn dev(&self, call: &'static str, body: Value) -> LocalnetResult<Value> {
        dev_call(&self.http, &self.url, call, body).await
    }

    /// Sends `nano` nanoTON from the faucet to `address` (non-bounceable, so it also funds
    /// undeployed accounts).
    pub async fn fund(&self, address: &TonAddress, nano: u128) -> LocalnetResult<()> {
        self.dev(
            "faucet",
            json!({ "address": address.to_base64_url(), "amount": nano.to_string() }),
        )
        .await
        .map(|_| ())
    }

    /// Moves the chain clock forward by `secs` seconds; returns the new chain time.
    pub async fn advance_time(&self, secs: u64) -> LocalnetResult<u64> {
        let v = self
            .dev("time", json!({ "advance": secs.to_string() }))
            .await?;
        v.get("now")
            .and_then(Value::as_u64)
            .ok_or(LocalnetError::Dev {
                call: "time",
                message: "no now".into(),
            })
    }

    /// Stops the server now (also done on drop).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Calls a dev endpoint (`faucet`, `time`, `save`) of the localnet at `url`: the CLI uses it
/// against a localnet it did not start.
pub async fn dev_call(
    http: &reqwest::Client,
    url: &str,
    call: &'static str,
    body: Value,
) -> LocalnetResult<Value> {
    let dev = |message: String| LocalnetError::Dev { call, message };
    let resp = http
        .post(format!("{}/localnet/{call}", url.trim_end_matches('/')))
        .json(&body)
        .send()
        .await
        .map_err(|e| dev(e.to_string()))?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| dev(e.to_string()))?;
    if !status.is_success() {
        return Err(dev(v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_owned()));
    }
    Ok(v)
}
