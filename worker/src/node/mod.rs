//! The worker node: joins the inference engine to the network.
//!
//! ```text
//! start:  Root model registry ─▶ weights approved? ─▶ own Worker record matches (keys, prices,
//!         models, evidence, expiry)? ─▶ load models ─▶ dial the relayer (reconnect with backoff)
//! job:    Dispatch ─▶ commitment ─▶ open sealed input ─▶ model (blocking threads, batched)
//!         ─▶ sealed Delta chunks ─▶ sealed Done ─▶ receipt (ledger first) ─▶ Done
//!         ─▶ (self_submit) SubmitReceipts to its Worker contract, in batches
//! ```
//!
//! # Layout
//! - [`keys`]: receipt and encryption keys, their file; where the ledger and evidence live.
//! - [`onchain`]: the Worker record, `register`, the start-up check of the record.
//! - [`renew`]: re-attestation before expiry while serving.
//! - [`models`]: served models, loading, the registry-hash rule.
//! - [`session`]: the relayer WebSocket session.
//! - [`job`]: one dispatched job end to end.
//! - [`stop`], [`pricing`]: stop strings; output tokens within the max cost.
//! - [`ledger`]: receipts signed, one per job, durable.
//! - On a v2 Root (payment channels): `onchain_v2` (the Worker v2 record), [`channel_cache`]
//!   (channel states from the chain), `channel_desk` (one book per channel, vouchers),
//!   `channel_serve` (one channel request), [`channel_ledger`] (receipts, vouchers,
//!   settlements), `settle_loop` (settlement by policy and on shutdown).
//! - [`submit`]: self-submission of receipts.
//! - [`metrics`], [`status`]: Prometheus metrics and readiness on `--metrics.listen`.
//! - [`cli`]: the `run` / `register` flags.
//!
//! # Example
//! ```no_run
//! # async fn demo(wallet: cocoon_sdk::wallet::Wallet, root: cocoon_sdk::tlb::TonAddress) -> Result<(), cocoon_worker::node::NodeError> {
//! use std::sync::Arc;
//! use cocoon_sdk::attest::SimulatedProvider;
//! use cocoon_sdk::chain::TonCenterConfig;
//! use cocoon_sdk::job::models::SMOLLM2_135M;
//! use cocoon_worker::BackendKind;
//! use cocoon_worker::node::{Node, NodeConfig, NodeKeys, ServedModel, register};
//!
//! let cfg = NodeConfig {
//!     chain: TonCenterConfig::new("http://127.0.0.1:8081"),
//!     root,
//!     relayer_url: "ws://127.0.0.1:8080".into(),
//!     wallet,
//!     keys: NodeKeys::load_or_create("worker-keys.json".as_ref())?,
//!     models: vec![ServedModel::load(SMOLLM2_135M, BackendKind::Wgpu)],
//!     attestation: Arc::new(SimulatedProvider { label: "dev".into() }),
//!     price_in: 1_000,
//!     price_out: 3_000,
//!     stake: 10_000_000_000,
//!     capacity: 8,
//!     self_submit: false,
//!     highload: false,
//!     renewal: Default::default(),
//!     channels: Default::default(),
//!     gpu: None,
//! };
//! register(&cfg).await?;
//! let node = Node::start(cfg).await?;
//! node.wait_connected(std::time::Duration::from_secs(10)).await;
//! node.shutdown().await;
//! # Ok(()) }
//! ```

pub mod channel_cache;
mod channel_desk;
pub mod channel_ledger;
mod channel_serve;
pub mod cli;
pub mod error;
pub mod job;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod models;
pub mod onchain;
mod onchain_v2;
pub mod pricing;
pub mod renew;
pub mod session;
mod settle_loop;
pub mod status;
pub mod stop;
pub mod submit;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_sdk::attest::{AttestationProvider, EvidenceKind, GpuEvidenceProvider};
use cocoon_sdk::chain::{TonCenterClient, TonCenterConfig};
use cocoon_sdk::contracts::v2::ChainChannels;
use cocoon_sdk::contracts::{RootClient, RootVersion, detect_root_version};
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{ServiceSender, Wallet};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use error::{NodeError, Result};
pub use keys::NodeKeys;
pub use ledger::ReceiptLedger;
pub use models::{ModelHandle, ModelOrigin, ServedModel};
pub use onchain::{DEFAULT_ATTESTATION_TTL, NodeEvidence, RENEW_BEFORE, RegisterOutcome, register};
pub use renew::Renewal;

/// Default jobs run at once.
pub const DEFAULT_CAPACITY: u32 = 8;

/// Default interval of the settlement loop (a due settlement waits at most this long).
pub const DEFAULT_SETTLE_EVERY: Duration = Duration::from_secs(60);

/// How the node serves payment channels (used on a v2 Root only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOptions {
    /// How much a channel's client may leave unpaid, nanoTON; `None`: one request's maximum
    /// cost at the largest context served, at the channel's prices (the client then pays each
    /// receipt, with its next request's voucher, before it is served again).
    pub credit: Option<u128>,
    /// How often due settlements are looked for.
    pub settle_every: Duration,
    /// Settle when a channel's settlement window ends within this many seconds.
    pub settle_margin_secs: u32,
    /// How long a channel state read from the chain is used before it is read again.
    pub cache_ttl: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            credit: None,
            settle_every: DEFAULT_SETTLE_EVERY,
            settle_margin_secs: cocoon_sdk::channel::DEFAULT_SETTLE_MARGIN_SECS,
            cache_ttl: channel_cache::DEFAULT_CHANNEL_TTL,
        }
    }
}

/// Everything a worker node needs.
#[derive(Clone)]
pub struct NodeConfig {
    /// The toncenter-compatible API (localnet, testnet, mainnet).
    pub chain: TonCenterConfig,
    /// The network's Root contract.
    pub root: TonAddress,
    /// The relayer: `ws(s)://host:port` (the worker path is appended) or `http(s)://` (converted).
    pub relayer_url: String,
    /// The worker owner's wallet: pays the stake, owns the Worker, posts receipts it submits itself.
    pub wallet: Wallet,
    /// Send everything from the Highload Wallet v3 of the wallet's key instead (`--wallet.highload`):
    /// registration, record updates and renewals, settlements and receipt batches. That wallet
    /// is then the Worker's owner (the contracts accept record updates from the owner only), so
    /// it is another Worker than the V5R1 wallet's, and its address is the one to fund.
    pub highload: bool,
    /// Receipt and encryption keys.
    pub keys: NodeKeys,
    /// Models served and where their weights come from.
    pub models: Vec<ServedModel>,
    /// The TEE evidence provider ([`cocoon_sdk::attest::SimulatedProvider`] on localnet only).
    pub attestation: Arc<dyn AttestationProvider>,
    /// nanoTON per input token.
    pub price_in: u128,
    /// nanoTON per output token.
    pub price_out: u128,
    /// Stake sent by [`register`], nanoTON.
    pub stake: u128,
    /// Jobs run at once; dispatches beyond it are refused as busy.
    pub capacity: u32,
    /// Post its own receipts on-chain instead of relying on the relayer.
    pub self_submit: bool,
    /// Attestation lifetime and when to renew it.
    pub renewal: Renewal,
    /// Payment channels (v2 Roots).
    pub channels: ChannelOptions,
    /// NVIDIA GPU evidence, bound into every attestation when set (`--tee.gpu-evidence-command`).
    pub gpu: Option<Arc<dyn GpuEvidenceProvider>>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("chain", &self.chain.base_url)
            .field("root", &self.root.to_hex())
            .field("relayer_url", &self.relayer_url)
            .field("wallet", &self.wallet.address().to_hex())
            .field("highload", &self.highload)
            .field("keys", &self.keys)
            .field("models", &self.models)
            .field("attestation", &self.attestation.kind())
            .field("price_in", &self.price_in)
            .field("price_out", &self.price_out)
            .field("stake", &self.stake)
            .field("capacity", &self.capacity)
            .field("self_submit", &self.self_submit)
            .field("renewal", &self.renewal)
            .field("channels", &self.channels)
            .finish()
    }
}

impl NodeConfig {
    /// The address the node's transactions come from: the Worker's owner (the wallet, or its
    /// highload wallet with [`Self::highload`]).
    pub fn owner(&self) -> Result<TonAddress> {
        ServiceSender::address_of(&self.wallet, self.highload)
            .map_err(|e| NodeError::Config(format!("highload wallet: {e}")))
    }

    /// What the node sends through: the wallet, or a fresh queue of its highload wallet on
    /// `chain` (one per running node, shared by everything it sends).
    pub(crate) fn sender(&self, chain: &TonCenterClient) -> Result<ServiceSender> {
        ServiceSender::start(&self.wallet, self.highload, Arc::new(chain.clone()))
            .map_err(|e| NodeError::Config(format!("highload wallet: {e}")))
    }

    /// Checks what can be checked without the chain.
    pub fn validate(&self) -> Result<()> {
        if self.models.is_empty() {
            return Err(NodeError::Config("no models to serve".into()));
        }
        let mut ids: Vec<u32> = self.models.iter().map(|m| m.spec.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(NodeError::Config("a model is listed twice".into()));
        }
        if self.capacity == 0 {
            return Err(NodeError::Config("capacity must be at least 1".into()));
        }
        session::worker_ws_url(&self.relayer_url)?;
        Ok(())
    }
}

/// What every part of a running node shares.
pub(crate) struct NodeContext {
    pub(crate) keys: NodeKeys,
    pub(crate) address: TonAddress,
    pub(crate) address_hex: String,
    evidence: std::sync::RwLock<Arc<NodeEvidence>>,
    /// Bumped at every renewal: the session drains and reconnects with the new evidence.
    reattested: watch::Sender<u64>,
    pub(crate) models: BTreeMap<u32, (ModelSpec, ModelHandle)>,
    pub(crate) price_in: u128,
    pub(crate) price_out: u128,
    pub(crate) capacity: u32,
    pub(crate) ledger: ReceiptLedger,
    load: AtomicU32,
    pub(crate) jobs_served: AtomicU64,
    pub(crate) cancels: Mutex<HashMap<(JobRef, u32), Arc<AtomicBool>>>,
    pub(crate) connected: watch::Sender<bool>,
    /// The evidence hash the current relayer session was opened with (None between sessions).
    pub(crate) announced: watch::Sender<Option<[u8; 32]>>,
    receipts: Mutex<Option<mpsc::UnboundedSender<SignedReceipt>>>,
    /// The node's payment channels (None on a v1 Root: channel requests are refused).
    pub(crate) channels: Option<Arc<channel_desk::ChannelDesk>>,
    pub(crate) metrics: Arc<metrics::NodeMetrics>,
}

impl NodeContext {
    /// The evidence served now (its hash is the on-chain evidence hash).
    pub(crate) fn evidence(&self) -> Arc<NodeEvidence> {
        self.evidence
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves `ev` from now on and tells the session to reconnect with it.
    pub(crate) fn set_evidence(&self, ev: NodeEvidence) {
        *self.evidence.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ev);
        self.reattested.send_modify(|n| *n += 1);
    }

    pub(crate) fn set_disconnected(&self) {
        self.connected.send_replace(false);
        self.announced.send_replace(None);
    }

    pub(crate) fn load(&self) -> u32 {
        self.load.load(Ordering::SeqCst)
    }

    /// Takes a job slot if one is free.
    pub(crate) fn try_acquire(&self) -> bool {
        self.load
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                (l < self.capacity).then_some(l + 1)
            })
            .is_ok()
    }

    pub(crate) fn release(&self) {
        let _ = self
            .load
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1));
    }

    pub(crate) fn queue_receipt(&self, r: SignedReceipt) {
        if let Some(tx) = self
            .receipts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = tx.send(r);
        }
    }
}

/// The worker node.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Checks the models against Root's registry and its own Worker record against this
    /// configuration, loads the models, and starts serving the relayer in the background.
    pub async fn start(cfg: NodeConfig) -> Result<NodeHandle> {
        cfg.validate()?;
        let chain = TonCenterClient::new(cfg.chain.clone())?;
        let version = detect_root_version(&chain, &cfg.root).await?;
        let registry = match version {
            RootVersion::V1 => RootClient::at(&chain, cfg.root.clone()).models().await?,
            RootVersion::V2 => onchain_v2::served_registry(&chain, &cfg).await?,
        };
        for m in &cfg.models {
            models::check_registered(&m.spec, &registry)?;
        }
        let verified = match version {
            RootVersion::V1 => onchain::verify_own_record(&chain, &cfg).await?,
            RootVersion::V2 => onchain_v2::verify_own_record(&chain, &cfg).await?,
        };
        let kind = cfg.attestation.kind();
        if kind == EvidenceKind::Simulated {
            warn!(target: "worker::node", worker = %verified.address.to_hex(), "UNATTESTED (SIMULATED TEE): no hardware protects prompts on this worker; development networks only");
        }
        let mut loaded = BTreeMap::new();
        for m in cfg.models.iter().cloned() {
            let spec = m.spec;
            let handle = tokio::task::spawn_blocking(move || m.open())
                .await
                .map_err(|e| NodeError::Config(format!("model loading task failed: {e}")))??;
            loaded.insert(spec.id, (spec, handle));
        }
        let ledger = match cfg.keys.ledger_path() {
            Some(p) => ReceiptLedger::open(p)?,
            None => ReceiptLedger::in_memory(),
        };
        let sender = cfg.sender(&chain)?;
        if let ServiceSender::Highload(h) = &sender {
            info!(target: "worker::node", highload = %h.address().to_hex(), "the node sends from its highload wallet");
        }
        let (receipts_tx, submitter) = if cfg.self_submit {
            let (tx, rx) = mpsc::unbounded_channel();
            let handle = submit::spawn(chain.clone(), cfg.root.clone(), sender.clone(), rx);
            (Some(tx), Some(handle))
        } else {
            (None, None)
        };
        let channels = match version {
            RootVersion::V1 => None,
            RootVersion::V2 => Some(Arc::new(
                open_channels(&cfg, &chain, &verified.address, &loaded).await?,
            )),
        };
        let (connected_tx, connected_rx) = watch::channel(false);
        let ctx = Arc::new(NodeContext {
            keys: cfg.keys.clone(),
            address_hex: verified.address.to_hex(),
            address: verified.address,
            evidence: std::sync::RwLock::new(Arc::new(verified.evidence)),
            reattested: watch::channel(0).0,
            models: loaded,
            price_in: verified.record.price_in,
            price_out: verified.record.price_out,
            capacity: cfg.capacity,
            ledger,
            load: AtomicU32::new(0),
            jobs_served: AtomicU64::new(0),
            cancels: Mutex::new(HashMap::new()),
            connected: connected_tx,
            announced: watch::channel(None).0,
            receipts: Mutex::new(receipts_tx),
            channels: channels.clone(),
            metrics: Arc::new(metrics::NodeMetrics::new()),
        });
        let url = session::worker_ws_url(&cfg.relayer_url)?;
        info!(target: "worker::node", worker = %ctx.address_hex, relayer = %url, models = ?ctx.models.keys().collect::<Vec<_>>(), attestation = %kind, price_in = ctx.price_in, price_out = ctx.price_out, capacity = ctx.capacity, self_submit = cfg.self_submit, "worker node started");
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let session = tokio::spawn(session::run(
            ctx.clone(),
            url,
            shutdown_rx.clone(),
            ctx.reattested.subscribe(),
        ));
        let status = status::StatusSource {
            ctx: ctx.clone(),
            chain: chain.clone(),
        };
        let settler = channels.map(|desk| {
            let settle = settle_loop::SettleLoop {
                chain: chain.clone(),
                root: cfg.root.clone(),
                sender: sender.clone(),
                every: cfg.channels.settle_every,
                margin_secs: cfg.channels.settle_margin_secs,
            };
            tokio::spawn(settle_loop::run(
                ctx.clone(),
                desk,
                settle,
                shutdown_rx.clone(),
            ))
        });
        let renewer = tokio::spawn(renew::run(
            ctx.clone(),
            cfg.clone(),
            sender,
            chain,
            version,
            shutdown_rx,
        ));
        Ok(NodeHandle {
            ctx,
            status,
            shutdown: shutdown_tx,
            session,
            renewer,
            submitter,
            settler,
            connected: connected_rx,
        })
    }
}

/// The node's channels on a v2 Root: the ledger beside the key file (in memory without one),
/// channel states from the Escrows through a cache, every channel of the ledger restored.
async fn open_channels(
    cfg: &NodeConfig,
    chain: &TonCenterClient,
    worker: &TonAddress,
    models: &BTreeMap<u32, (ModelSpec, ModelHandle)>,
) -> Result<channel_desk::ChannelDesk> {
    let ledger = match cfg.keys.channel_ledger_path() {
        Some(p) => channel_ledger::ChannelLedger::open(&p).await?,
        None => channel_ledger::ChannelLedger::in_memory().await?,
    };
    let credit = match cfg.channels.credit {
        Some(c) => channel_desk::Credit::Fixed(c),
        None => channel_desk::Credit::OneRequest {
            tokens: models
                .values()
                .filter_map(|(_, h)| match h {
                    ModelHandle::Text(m) => u32::try_from(m.info().config.context).ok(),
                    ModelHandle::Embedding(_) => None,
                })
                .max()
                .unwrap_or(512),
        },
    };
    let cache =
        channel_cache::ChannelCache::new(ChainChannels::new(chain.clone()), cfg.channels.cache_ttl);
    let desk = channel_desk::ChannelDesk::new(cache, ledger, worker.clone(), credit);
    desk.restore_all().await?;
    Ok(desk)
}

/// A running node.
pub struct NodeHandle {
    ctx: Arc<NodeContext>,
    status: status::StatusSource,
    shutdown: watch::Sender<bool>,
    session: JoinHandle<()>,
    renewer: JoinHandle<()>,
    submitter: Option<JoinHandle<()>>,
    settler: Option<JoinHandle<()>>,
    connected: watch::Receiver<bool>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("address", &self.ctx.address_hex)
            .field("load", &self.ctx.load())
            .field("jobs_served", &self.jobs_served())
            .finish()
    }
}

impl NodeHandle {
    /// The node's Worker contract.
    pub fn address(&self) -> &TonAddress {
        &self.ctx.address
    }

    /// Jobs answered with a receipt since start.
    pub fn jobs_served(&self) -> u64 {
        self.ctx.jobs_served.load(Ordering::SeqCst)
    }

    /// What the status listener serves ([`status::serve`]): metrics and readiness.
    pub fn status(&self) -> status::StatusSource {
        self.status.clone()
    }

    /// Jobs running now.
    pub fn load(&self) -> u32 {
        self.ctx.load()
    }

    /// The evidence the node serves now (its hash is the on-chain evidence hash).
    pub fn evidence(&self) -> Arc<NodeEvidence> {
        self.ctx.evidence()
    }

    /// Waits until a relayer session opened with the evidence whose hash is `hash` is up; false
    /// if not within `timeout`.
    pub async fn wait_announced(&self, hash: [u8; 32], timeout: Duration) -> bool {
        let mut rx = self.ctx.announced.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|a| *a == Some(hash)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Renewals of the attestation since start.
    pub fn renewals(&self) -> u64 {
        *self.ctx.reattested.borrow()
    }

    /// Receipts signed so far, all runs of this key file included.
    pub fn receipts_signed(&self) -> usize {
        self.ctx.ledger.len()
    }

    /// Whether a relayer session is up now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until a relayer session is up; false if it is not within `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.connected.clone();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops gracefully: refuses new jobs, finishes the jobs in flight and sends their results,
    /// closes the session, settles every channel with an unsettled voucher (v2 Root), then
    /// submits the receipts still queued (with `self_submit`).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.session.await;
        let _ = self.renewer.await;
        // Every channel with anything unsettled is settled once more (after the jobs drained).
        if let Some(s) = self.settler {
            let _ = s.await;
        }
        self.ctx
            .receipts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = self.submitter {
            let _ = s.await;
        }
        info!(target: "worker::node", worker = %self.ctx.address_hex, jobs = self.ctx.jobs_served.load(Ordering::SeqCst), "worker node stopped");
    }
}
