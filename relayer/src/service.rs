//! The whole relayer as one in-process service: store, worker registry, HTTP/WebSocket server,
//! expiry sweep and — on a network — the chain watcher and the receipt submitter.
//!
//! `cocoon-relayer run` is a thin wrapper of [`spawn`]; end-to-end tests and demos call it
//! directly (listening on port 0) and stop it with [`RelayerHandle::shutdown`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cocoon_sdk::chain::{ChainApi as _, TonCenterClient, TonCenterConfig};
use cocoon_sdk::contracts::v2::ChainChannels;
use cocoon_sdk::contracts::{RootClient, RootVersion, detect_root_version};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::Wallet;
use cocoon_sdk::wallet::highload::HighloadWallet;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::chain::{ChainRegistry, ChainTransactions, ChainWallet, HighloadChainWallet};
use crate::chain_v2::ChainRegistryV2;
use crate::channels::SourceBook;
use crate::config::{DEFAULT_RELAYER_ID, RelayerConfig};
use crate::error::{Error, Result};
use crate::registry::{StaticRegistry, WorkerRegistry};
use crate::relayer::Relayer;
use crate::store::{DEFAULT_MAX_CONNECTIONS, Store};
use crate::submitter::Submitter;
use crate::watcher::{DEFAULT_POLL_INTERVAL, EscrowAddressCheck, Watcher};

/// How long a graceful shutdown gives the last submitter round (batching and sending the
/// receipts of jobs that finished while draining).
pub const FINAL_SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The chain side of a relayer on a network.
#[derive(Clone)]
pub struct ChainConfig {
    /// toncenter-compatible API (localnet, testnet, mainnet).
    pub chain: TonCenterConfig,
    /// The network's Root contract: Workers and Escrows are authenticated under it.
    pub root: TonAddress,
    /// The relayer's wallet: `job_opened` arrives at its address, and it pays for
    /// `SubmitReceipts`.
    pub wallet: Wallet,
    /// Time between two watcher polls and two submitter rounds.
    pub poll: Duration,
    /// When set, `SubmitReceipts` go out from this Highload Wallet v3 (query ids instead of a
    /// seqno: no race with another process on the wallet) instead of from `wallet`, which still
    /// receives `job_opened`.
    pub highload: Option<HighloadWallet>,
}

impl std::fmt::Debug for ChainConfig {
    // Never prints the wallet's keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("api", &self.chain.base_url)
            .field("root", &self.root.to_hex())
            .field("wallet", &self.wallet.address().to_hex())
            .field("poll", &self.poll)
            .field(
                "highload",
                &self.highload.as_ref().map(|h| h.address().to_hex()),
            )
            .finish()
    }
}

impl ChainConfig {
    /// A chain config with the default poll interval.
    pub fn new(chain: TonCenterConfig, root: TonAddress, wallet: Wallet) -> Self {
        Self {
            chain,
            root,
            wallet,
            poll: DEFAULT_POLL_INTERVAL,
            highload: None,
        }
    }
}

/// Shortest time between two probes of the chain for `/health` (one read each: a public
/// toncenter rate-limits).
const CHAIN_PROBE_MIN_PERIOD: Duration = Duration::from_secs(1);
/// Longest time between two probes of the chain for `/health`.
const CHAIN_PROBE_MAX_PERIOD: Duration = Duration::from_secs(5);

/// Everything [`spawn`] needs.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Where the HTTP API and the worker WebSocket listen (port 0: any free port).
    pub listen: SocketAddr,
    /// `sqlite://PATH?mode=rwc` or `postgres://...`.
    pub store_url: String,
    /// Connection pool size.
    pub store_max_connections: u32,
    /// Dispatch tunables. With a chain and the default `relayer_id`, the id becomes the wallet
    /// address (workers sign it into their session auth; clients open jobs for it).
    pub relayer: RelayerConfig,
    /// On a network: watch the wallet for jobs, verify workers on-chain, submit receipts.
    pub chain: Option<ChainConfig>,
    /// Worker records to check connecting workers against instead of the chain (e.g. a
    /// [`StaticRegistry`] from TOML). Without it and without a chain no worker is admitted.
    pub registry: Option<Arc<dyn WorkerRegistry>>,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("listen", &self.listen)
            .field("relayer", &self.relayer)
            .field("chain", &self.chain)
            .field("registry", &self.registry.is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// A service on `listen` over `store_url` with default tunables, no chain, no registry.
    pub fn new(listen: SocketAddr, store_url: impl Into<String>) -> Self {
        Self {
            listen,
            store_url: store_url.into(),
            store_max_connections: DEFAULT_MAX_CONNECTIONS,
            relayer: RelayerConfig::default(),
            chain: None,
            registry: None,
        }
    }
}

/// A running relayer.
#[derive(Debug)]
pub struct RelayerHandle {
    addr: SocketAddr,
    address: Option<TonAddress>,
    relayer: Relayer,
    store: Store,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<()>>,
    background: Vec<JoinHandle<()>>,
    submitter: Option<Arc<Submitter>>,
}

impl RelayerHandle {
    /// Base URL of the HTTP API (`http://IP:PORT`); workers dial `ws://IP:PORT/v1/worker`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relayer's wallet address, when it runs on a network.
    pub fn address(&self) -> Option<&TonAddress> {
        self.address.as_ref()
    }

    /// The service's relayer (shared state, for tests and diagnostics).
    pub fn relayer(&self) -> &Relayer {
        &self.relayer
    }

    /// The service's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Graceful shutdown: stops taking jobs, lets jobs being dispatched finish, closes sessions
    /// and streams, stops the watcher and the submitter after their current round, runs one last
    /// submitter round for receipts that arrived while draining, and closes the store.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        let served = match self.server.await {
            Ok(r) => r,
            Err(e) => Err(Error::Io(std::io::Error::other(format!(
                "server task: {e}"
            )))),
        };
        for task in self.background {
            let _ = task.await;
        }
        if let Some(s) = &self.submitter {
            match tokio::time::timeout(FINAL_SUBMIT_TIMEOUT, s.tick()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    warn!(target: "relayer::service", error = %e, "last submit round failed; the outbox keeps it")
                }
                Err(_) => {
                    warn!(target: "relayer::service", "last submit round timed out; the outbox keeps it")
                }
            }
        }
        self.store.close().await;
        info!(target: "relayer::service", "stopped");
        served
    }
}

fn chain_err(what: &'static str) -> impl FnOnce(String) -> Error {
    move |detail| Error::Chain { what, detail }
}

/// Starts the relayer: opens (and migrates) the store, binds the listener, reads Root's codes
/// when on a network, and runs everything in background tasks. Returns once the server accepts
/// connections.
pub async fn spawn(mut config: ServiceConfig) -> Result<RelayerHandle> {
    let store = Store::connect(&config.store_url, config.store_max_connections).await?;
    let client = match &config.chain {
        Some(c) => Some(Arc::new(
            TonCenterClient::new(c.chain.clone())
                .map_err(|e| chain_err("chain client")(e.to_string()))?,
        )),
        None => None,
    };
    let address = config.chain.as_ref().map(|c| c.wallet.address().clone());
    if let Some(a) = &address
        && config.relayer.relayer_id == DEFAULT_RELAYER_ID
    {
        config.relayer.relayer_id = a.to_hex();
    }
    // One `--root` for either protocol: a v2 Root routes channels and admits Worker v2s.
    let v2 = match (&client, &config.chain) {
        (Some(client), Some(c)) => {
            detect_root_version(&**client, &c.root)
                .await
                .map_err(|e| chain_err("reading Root's version")(e.to_string()))?
                == RootVersion::V2
        }
        _ => false,
    };
    let registry: Arc<dyn WorkerRegistry> = match (&config.registry, &client, &config.chain) {
        (Some(r), _, _) => r.clone(),
        (None, Some(client), Some(c)) if v2 => {
            Arc::new(ChainRegistryV2::new(client.clone(), c.root.clone()))
        }
        (None, Some(client), Some(c)) => {
            Arc::new(ChainRegistry::new(client.clone(), c.root.clone()))
        }
        _ => {
            warn!(target: "relayer::service", "no registry and no chain: no worker can be verified");
            Arc::new(StaticRegistry::new())
        }
    };
    let relayer = Relayer::new(store.clone(), registry, config.relayer.clone());
    let (stop, stop_rx) = watch::channel(false);
    let mut background = Vec::new();
    let mut submitter = None;
    if let (Some(client), Some(c)) = (&client, &config.chain) {
        // `/health` reports whether the chain answers: Root's account, read every period.
        let shared = relayer.shared().clone();
        shared.chain.configure();
        let (client, root) = (client.clone(), c.root.clone());
        let period = c.poll.clamp(CHAIN_PROBE_MIN_PERIOD, CHAIN_PROBE_MAX_PERIOD);
        background.push(tokio::spawn(every(period, stop_rx.clone(), move || {
            let (shared, client, root) = (shared.clone(), client.clone(), root.clone());
            async move {
                match client.account(&root).await {
                    Ok(_) => shared.chain.succeeded(),
                    Err(e) => {
                        debug!(target: "relayer::service", error = %e, "chain probe failed");
                        shared.chain.failed(e.to_string());
                    }
                }
            }
        })));
    }
    if v2 && let (Some(client), Some(c)) = (&client, &config.chain) {
        relayer.shared().channels.configure(
            Arc::new(SourceBook(ChainChannels::new((**client).clone()))),
            Some(c.wallet.address().clone()),
        );
        info!(target: "relayer::service", address = %c.wallet.address().to_hex(), root = %c.root.to_hex(), "Root v2: routing channels");
    } else if let (Some(client), Some(c)) = (&client, &config.chain) {
        let (_, escrow_code) = RootClient::at(&**client, c.root.clone())
            .codes()
            .await
            .map_err(|e| chain_err("reading Root's codes")(e.to_string()))?;
        let own = c.wallet.address().to_hex();
        let watcher = Arc::new(
            Watcher::new(
                store.clone(),
                Arc::new(ChainTransactions::new(client.clone())),
                Arc::new(EscrowAddressCheck {
                    root: c.root.clone(),
                    escrow_code,
                }),
                own.clone(),
            )
            .with_metrics(relayer.shared().metrics.clone()),
        );
        let period = c.poll.max(Duration::from_millis(10));
        background.push(tokio::spawn(every(period, stop_rx.clone(), move || {
            let w = watcher.clone();
            async move {
                if let Err(e) = w.poll_once().await {
                    warn!(target: "relayer::watcher", error = %e, "poll failed");
                }
            }
        })));
        let s = Arc::new(match &c.highload {
            Some(h) => {
                let sender = HighloadChainWallet::new(client.clone(), h.clone());
                let expiry = sender.message_expiry();
                info!(target: "relayer::service", highload = %h.address().to_hex(), "receipts go out from the highload wallet");
                Submitter::new(
                    store.clone(),
                    Arc::new(sender),
                    relayer.shared().metrics.clone(),
                )
                .with_message_expiry(expiry)
            }
            None => Submitter::new(
                store.clone(),
                Arc::new(ChainWallet::new(client.clone(), c.wallet.clone())),
                relayer.shared().metrics.clone(),
            ),
        });
        submitter = Some(s.clone());
        background.push(tokio::spawn(every(period, stop_rx.clone(), move || {
            let s = s.clone();
            async move {
                if let Err(e) = s.tick().await {
                    warn!(target: "relayer::submitter", error = %e, "submit round failed");
                }
            }
        })));
        info!(target: "relayer::service", address = %own, root = %c.root.to_hex(), "watching the chain and submitting receipts");
    }
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let server = {
        let relayer = relayer.clone();
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            relayer
                .serve(listener, async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await
        })
    };
    // The server stops first (draining jobs); the chain loops follow on the same signal but only
    // after their current round, and the final submitter round in `shutdown` picks up the rest.
    Ok(RelayerHandle {
        addr,
        address,
        relayer,
        store,
        stop,
        server,
        background,
        submitter,
    })
}

/// Runs `f` every `period` until `stop` fires; a round in progress finishes first.
async fn every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tick.tick() => f().await,
        }
    }
}
