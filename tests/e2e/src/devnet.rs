//! The off-chain half of a local network: a relayer and worker nodes over a [`DevChain`], and
//! funded app clients.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use cocoon_relayer::service::{ChainConfig, RelayerHandle, ServiceConfig, spawn};
use cocoon_sdk::client::channels::ChannelConfig;
use cocoon_sdk::client::{ClientConfig, PolicyMode};
use cocoon_sdk::contracts::WorkerClient;
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, KNOWN_MODELS, SMOLLM2_135M};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::Wallet;
use cocoon_testkit::chain::{LocalnetTiming, registry, start_localnet, start_localnet_with};
use cocoon_testkit::dev;
use cocoon_testkit::{DevChain, DevChainV2};
use cocoon_worker::BackendKind;
use cocoon_worker::node::ChannelOptions;
use tempfile::TempDir;

use crate::workers::{self, RunningWorker};

/// Environment variable that picks the worker backend of a devnet (`wgpu` or `flex`).
pub const BACKEND_ENV: &str = "COCOON_E2E_BACKEND";

/// One worker node of a devnet.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    /// Models it serves.
    pub models: Vec<&'static ModelSpec>,
    /// Inference backend.
    pub backend: BackendKind,
    /// nanoTON per input token.
    pub price_in: u128,
    /// nanoTON per output token.
    pub price_out: u128,
    /// Jobs at once.
    pub capacity: u32,
    /// Stake, nanoTON.
    pub stake: u128,
    /// How the node serves and settles channels (protocol v2).
    pub channels: ChannelOptions,
}

impl Default for WorkerSetup {
    fn default() -> Self {
        Self {
            models: vec![&SMOLLM2_135M, &ALL_MINILM_L6_V2],
            backend: default_backend(),
            price_in: 1_000,
            price_out: 4_000,
            capacity: 8,
            stake: 20 * NANO_PER_TON,
            channels: ChannelOptions::default(),
        }
    }
}

/// `$COCOON_E2E_BACKEND` (`flex` or `wgpu`), else flex. The wgpu code path is what a GPU runs;
/// on CPU-only machines Mesa lavapipe runs it correctly but minutes per job, so the end-to-end
/// tests default to flex and the worker's own tests cover wgpu (`worker/tests/node_wgpu.rs`).
pub fn default_backend() -> BackendKind {
    match std::env::var(BACKEND_ENV).as_deref() {
        Ok("wgpu") => BackendKind::Wgpu,
        _ => BackendKind::Flex,
    }
}

/// How apps pay on a devnet: which Root it deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Protocol v1: a Root v1, an on-chain job and a settlement per request.
    #[default]
    Jobs,
    /// Protocol v2: a Root v2; apps pay workers through payment channels.
    Channels,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The protocol (which Root is deployed).
    pub protocol: Protocol,
    /// How localnet behaves; `None`: the test profile `COCOON_TEST_NETWORK` names.
    pub timing: Option<LocalnetTiming>,
    /// Worker nodes.
    pub workers: Vec<WorkerSetup>,
    /// The relayer's store; default a SQLite file in the devnet's temporary directory.
    pub store_url: Option<String>,
    /// Where the relayer listens (port 0: any free port).
    pub relayer_listen: SocketAddr,
    /// Time between two chain polls of the relayer.
    pub relayer_poll: Duration,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            protocol: Protocol::default(),
            timing: None,
            workers: vec![WorkerSetup::default()],
            store_url: None,
            relayer_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            relayer_poll: Duration::from_millis(500),
        }
    }
}

/// A running local network.
pub struct Devnet {
    /// Localnet and Root (a Root v2 under [`Protocol::Channels`]).
    pub chain: DevChain,
    /// The protocol its Root speaks.
    pub protocol: Protocol,
    /// The relayer (`None` after [`Devnet::stop_relayer`]).
    pub relayer: Option<RelayerHandle>,
    /// The relayer's wallet.
    pub relayer_wallet: Wallet,
    /// Its base URL (stays valid across a restart on the same port).
    pub relayer_url: String,
    /// The worker nodes.
    pub workers: Vec<RunningWorker>,
    /// Relayer store, worker keys.
    pub dir: TempDir,
    options: DevnetOptions,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("api", &self.chain.localnet.url())
            .field("root", &self.chain.root.to_hex())
            .field("relayer", &self.relayer_url)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Devnet {
    /// Starts localnet, Root, the relayer and the workers; returns when every worker has an
    /// authenticated session with the relayer.
    pub async fn start(options: DevnetOptions) -> anyhow::Result<Self> {
        let localnet = match options.timing {
            Some(t) => start_localnet_with(t).await?,
            None => start_localnet().await?,
        };
        let chain = match options.protocol {
            Protocol::Jobs => DevChain::on(localnet, registry(KNOWN_MODELS)).await?,
            Protocol::Channels => {
                let v2 = DevChainV2::on(localnet, registry(KNOWN_MODELS)).await?;
                // The same four parts; only the Root's code differs, and every service finds
                // the version from the Root itself.
                DevChain {
                    localnet: v2.localnet,
                    chain: v2.chain,
                    root: v2.root,
                    governor: v2.governor,
                }
            }
        };
        let dir = tempfile::tempdir()?;
        let relayer_wallet = chain.funded_wallet(100 * NANO_PER_TON).await?;
        let relayer = spawn_relayer(
            &chain,
            &relayer_wallet,
            &options,
            &dir,
            options.relayer_listen,
        )
        .await?;
        let relayer_url = relayer.url();
        let mut net = Self {
            chain,
            protocol: options.protocol,
            relayer: Some(relayer),
            relayer_wallet,
            relayer_url,
            workers: Vec::new(),
            dir,
            options,
        };
        for setup in net.options.workers.clone() {
            net.add_worker(&setup).await?;
        }
        Ok(net)
    }

    /// Registers and starts one more worker node; returns its index in [`Self::workers`].
    pub async fn add_worker(&mut self, setup: &WorkerSetup) -> anyhow::Result<usize> {
        let index = self.workers.len();
        let w = workers::start(
            &self.chain,
            &self.relayer_url,
            setup,
            self.dir.path(),
            index,
        )
        .await?;
        self.workers.push(w);
        self.wait_for_workers(self.live_workers()).await?;
        Ok(index)
    }

    fn live_workers(&self) -> usize {
        self.workers.iter().filter(|w| w.is_running()).count()
    }

    /// Waits until the relayer reports `n` authenticated worker sessions.
    pub async fn wait_for_workers(&self, n: usize) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let health: Option<cocoon_sdk::relay::client::Health> = match http
                .get(format!("{}/health", self.relayer_url))
                .send()
                .await
            {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
            if health.as_ref().is_some_and(|h| h.workers as usize >= n) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the relayer has {:?} worker sessions after 120 s, expected {n}",
                    health.map(|h| h.workers)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An SDK client configuration for this network: development policy (the workers run with
    /// Simulated evidence), this relayer.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(
            self.chain.api(),
            self.chain.root.clone(),
            self.relayer_url.clone(),
        );
        c.policy = PolicyMode::Development;
        c
    }

    /// A channel client configuration for this network (protocol v2): development policy, this
    /// relayer, one channel per worker of the network (at most 8), sessions kept in memory.
    pub fn channel_config(&self) -> ChannelConfig {
        let mut c = ChannelConfig::new(
            self.chain.api(),
            self.chain.root.clone(),
            self.relayer_url.clone(),
        );
        c.policy = PolicyMode::Development;
        c.channels = self.workers.len().clamp(1, 8);
        c
    }

    /// The relayer's socket address (for proxies in front of it).
    pub fn relayer_addr(&self) -> SocketAddr {
        self.relayer_url
            .trim_start_matches("http://")
            .parse()
            .expect("the relayer URL is http://IP:PORT")
    }

    /// nanoTON worker `i` has earned so far (its Worker contract's `earned`; protocol v1 only:
    /// under channels each settlement pays the owner's wallet at once).
    pub async fn worker_earned(&self, i: usize) -> anyhow::Result<u128> {
        anyhow::ensure!(
            self.protocol == Protocol::Jobs,
            "a Worker v2 keeps no earnings: channel settlements pay its owner's wallet"
        );
        let owner = self.workers[i].owner.address();
        Ok(
            WorkerClient::for_owner(&self.chain.chain, &self.chain.root, owner)
                .await?
                .state()
                .await?
                .earned,
        )
    }

    /// The Root contract.
    pub fn root(&self) -> &TonAddress {
        &self.chain.root
    }

    /// The localnet API base URL.
    pub fn api_url(&self) -> &str {
        self.chain.localnet.url()
    }

    /// A new app wallet holding `nano` nanoTON.
    pub async fn funded_wallet(&self, nano: u128) -> anyhow::Result<Wallet> {
        Ok(self.chain.funded_wallet(nano).await?)
    }

    /// Stops the relayer gracefully (its store stays; [`Self::start_relayer`] brings it back).
    pub async fn stop_relayer(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.relayer.take() {
            r.shutdown().await?;
        }
        Ok(())
    }

    /// Starts the relayer again on the same address and store.
    pub async fn start_relayer(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.relayer.is_none(), "the relayer is running");
        let r = spawn_relayer(
            &self.chain,
            &self.relayer_wallet,
            &self.options,
            &self.dir,
            self.relayer_addr(),
        )
        .await?;
        self.relayer = Some(r);
        Ok(())
    }

    /// Stops worker `i` abruptly-but-cleanly (its session closes; jobs in flight are lost).
    pub async fn stop_worker(&mut self, i: usize) {
        self.workers[i].stop().await;
    }

    /// Stops everything it started, workers first.
    pub async fn stop(mut self) {
        for w in &mut self.workers {
            w.stop().await;
        }
        if let Err(e) = self.stop_relayer().await {
            tracing::warn!(target: "e2e::devnet", error = %e, "relayer shutdown");
        }
        self.chain.localnet.stop().await;
    }
}

async fn spawn_relayer(
    chain: &DevChain,
    wallet: &Wallet,
    options: &DevnetOptions,
    dir: &TempDir,
    listen: SocketAddr,
) -> anyhow::Result<RelayerHandle> {
    let store_url = options.store_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("relayer.sqlite").display()
        )
    });
    let mut cfg = ServiceConfig::new(listen, store_url);
    cfg.relayer.grace_period = dev::GRACE_PERIOD;
    cfg.chain = Some(ChainConfig {
        poll: options.relayer_poll,
        ..ChainConfig::new(chain.api(), chain.root.clone(), wallet.clone())
    });
    let handle = spawn(cfg).await.context("starting the relayer")?;
    tracing::info!(target: "e2e::devnet", url = %handle.url(), wallet = %wallet.address(), "relayer up");
    Ok(handle)
}
