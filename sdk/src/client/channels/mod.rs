//! Channel mode (protocol v2): requests paid through payment channels, with nothing on-chain per
//! request.
//!
//! ```text
//! ChannelClient::connect ── Root v2 (params, policy, worker code) + relayer /health + saved channels
//! client.request(model, request)
//!   ├─ K open channels to different verified workers (opened in one transaction each when
//!   │  missing, topped up below the threshold; verified workers cached until their attestation
//!   │  expires or their record changes: no chain read when nothing changed)
//!   ├─ seal the input to the K workers, POST /v2/requests naming K tickets (the relayer fails
//!   │  over among them without asking again)
//!   └─ ChannelStream: dispatched → deltas / embeddings → receipt checked (ChannelSession::on_receipt)
//!      → voucher signed, saved, pushed to the worker → ChannelResult
//!      (`seq_taken` with the receipt of an earlier request of that seq whose answer was lost —
//!      a relayer crash after the worker signed — pays that receipt: the channel serves on)
//! client.close(id) / client.reclaim() ── request close + final voucher; close after the window
//! client.verify(&receipt) ── the receipt's inclusion in a settlement the Escrow recorded
//! ```
//!
//! The sessions are saved beside the wallet (no secret in the file; the voucher key is the
//! caller's) and resumed by the next `connect`.

mod equivocation;
mod error;
mod proof;
mod request;
mod select;
mod store;
mod workers;

pub use equivocation::EquivocationReport;
pub use error::{ChannelClientError, Result};
pub use proof::prove_receipt;
pub use request::{ChannelEvent, ChannelResult, ChannelStream};
pub use select::{Offer, Refusal, RequestOptions, cap_to_cost};
pub use store::{STORE_VERSION, SavedChannel, SavedChannels, default_store_path, load, save};
pub use workers::{ChannelWorker, WorkerCache, WorkerCheck, check_worker_v2, read_worker_v2};

use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use tracing::{debug, info, warn};

use super::cost::{TokenBound, cost_of, token_bound};
use super::job::kind_name;
use super::relayer::RelayerApi;
use super::{ClientError, PolicyMode};
use crate::attest::Policy;
use crate::chain::{AccountStatus, ChainApi, TonCenterClient, TonCenterConfig};
use crate::channel::{ChannelSession, ReceiptWatch, SignedChannelReceipt};
use crate::clock::unix_now;
use crate::contracts::v2::{EscrowClient, OpenChannelArgs, RootClient, SettlementLog};
use crate::contracts::{ESCROW_STORAGE_RESERVE, RootVersion, detect_root_version};
use crate::job::{JobRequest, ModelSpec};
use crate::messages::records::RootPolicy;
use crate::tlb::{ArcCell, TonAddress};
use crate::wallet::{MessageSender as _, SendOptions, ServiceSender, Wallet};

/// Channels a request names by default (K; the relayer fails over among them).
pub const DEFAULT_CHANNELS: usize = 2;
/// Default amount locked in a new channel, and what a top-up restores (nanoTON).
pub const DEFAULT_CHANNEL_AMOUNT: u128 = 1_000_000_000;
/// Default threshold: a channel with less than this left is topped up before its next request.
pub const DEFAULT_TOP_UP_BELOW: u128 = 100_000_000;
/// Default channel lifetime (capped by Root's maximum).
pub const DEFAULT_LIFETIME: u32 = 24 * 3600;
/// How long Root's parameters and policy are reused.
pub const ROOT_TTL: Duration = Duration::from_secs(300);
/// What a new Escrow gets before its first channel (twice its storage reserve, so that its free
/// balance stays positive while channels are open).
pub const NEW_ESCROW_DEPOSIT: u128 = 2 * ESCROW_STORAGE_RESERVE;
/// How long a request waits for one of the client's channels to be free.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(120);

/// How to reach the network and how to run channels.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The toncenter-compatible API.
    pub chain: TonCenterConfig,
    /// The network's Root (v2).
    pub root: TonAddress,
    /// `http://host:port` of the relayer's client API.
    pub relayer_url: String,
    /// Evidence accepted.
    pub policy: PolicyMode,
    /// Accept only workers whose evidence carries NVIDIA GPU evidence that verifies and is bound
    /// to their report (`--require-gpu-attestation`).
    pub require_gpu: bool,
    /// Channels (to different workers) each request names, 1..=8.
    pub channels: usize,
    /// Amount locked in a new channel; a top-up brings a channel back to it (nanoTON).
    pub channel_amount: u128,
    /// A channel with less left than this (or than the request's max cost) is topped up first;
    /// at most `channel_amount` is used.
    pub top_up_below: u128,
    /// Lifetime of a new channel (s), capped by Root's maximum.
    pub lifetime: u32,
    /// Relayer fee named at open (bps), capped at Root's maximum.
    pub relayer_fee_bps: u16,
    /// Where the sessions are saved (none: kept in memory only).
    pub store: Option<PathBuf>,
    /// How transfers are sent and confirmed.
    pub send: SendOptions,
    /// Send every Escrow operation (deposit, open, top-up, close, equivocation report) from the
    /// Highload Wallet v3 of the wallet's key ([`ServiceSender`]): a busy gateway never waits a
    /// block per transfer nor races another process on the key for a seqno. That wallet owns
    /// the Escrow (Root derives it from the sender), so it is another Escrow than the V5R1
    /// wallet's, paid from the highload wallet's balance.
    pub highload: bool,
}

impl ChannelConfig {
    /// A production config with the defaults of this module.
    pub fn new(chain: TonCenterConfig, root: TonAddress, relayer_url: impl Into<String>) -> Self {
        Self {
            chain,
            root,
            relayer_url: relayer_url.into(),
            policy: PolicyMode::Production,
            require_gpu: false,
            channels: DEFAULT_CHANNELS,
            channel_amount: DEFAULT_CHANNEL_AMOUNT,
            top_up_below: DEFAULT_TOP_UP_BELOW,
            lifetime: DEFAULT_LIFETIME,
            relayer_fee_bps: super::DEFAULT_RELAYER_FEE_BPS,
            store: None,
            send: SendOptions::default(),
            highload: false,
        }
    }
}

/// Root v2 as last read.
#[derive(Debug, Clone)]
struct RootV2 {
    policy: Policy,
    min_stake: u128,
    max_channel_lifetime: u32,
    relayer_fee_cap_bps: u16,
    worker_code: ArcCell,
    read_at: Instant,
}

/// One channel of the client.
#[derive(Debug)]
struct Slot {
    session: ChannelSession,
    receipts: Vec<SignedChannelReceipt>,
    /// The requests sent on the channel's next seq whose answer never came (the relayer or the
    /// link died): the worker may have signed a receipt for one of them, which it resends when
    /// that seq is asked for again; the client pays it only if it is one of these.
    unanswered: Unanswered,
    busy: bool,
    closed: bool,
}

/// Requests sent with one seq and not answered yet.
#[derive(Debug, Default)]
struct Unanswered {
    seq: u32,
    requests: Vec<crate::channel::RequestExpectation>,
}

impl Unanswered {
    /// Notes a request sent with `seq` (the ones sent with an earlier seq are forgotten: that
    /// seq was paid).
    fn sent(&mut self, seq: u32, request: crate::channel::RequestExpectation) {
        if self.seq != seq {
            self.seq = seq;
            self.requests.clear();
        }
        self.requests.push(request);
    }
}

impl Slot {
    fn id(&self) -> u64 {
        self.session.channel().channel_id
    }

    fn worker(&self) -> &TonAddress {
        &self.session.state().worker
    }
}

/// A channel as the client holds it (for display and tests).
#[derive(Debug, Clone)]
pub struct ChannelView {
    /// Channel id on the client's Escrow.
    pub channel_id: u64,
    /// The Worker contract it pays.
    pub worker: TonAddress,
    /// Locked on-chain (as last read).
    pub amount: u128,
    /// Paid by the latest voucher.
    pub paid: u128,
    /// Seq of the latest receipt paid.
    pub seq: u32,
    /// What it can still pay.
    pub remaining: u128,
    /// A final voucher was signed or a close requested.
    pub closing: bool,
    /// Closed on-chain.
    pub closed: bool,
}

#[derive(Debug)]
struct Inner {
    config: ChannelConfig,
    chain: TonCenterClient,
    /// The wallet, or its highload queue ([`ChannelConfig::highload`]): the Escrow's owner.
    wallet: ServiceSender,
    voucher_key: SigningKey,
    relayer: RelayerApi,
    relayer_id: TonAddress,
    escrow: TonAddress,
    global_id: Mutex<Option<i32>>,
    root: Mutex<Option<RootV2>>,
    workers: Mutex<WorkerCache>,
    slots: Mutex<Vec<Slot>>,
    freed: tokio::sync::Notify,
    /// Serialises the wallet's transfers and channel opening.
    sending: tokio::sync::Mutex<()>,
    transactions: AtomicU64,
    requests: AtomicU64,
    /// Every receipt received, by (channel, seq): the evidence of an equivocation.
    watch: Mutex<ReceiptWatch>,
    /// Equivocation reports sent.
    reports: Mutex<Vec<EquivocationReport>>,
}

/// A channel-mode client: one wallet, its Escrow v2, its channels. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChannelClient {
    inner: Arc<Inner>,
}

/// What [`RequestOptions`] checks of a verified worker, at its published prices.
fn offer_of(w: &ChannelWorker) -> Offer<'_> {
    Offer {
        worker: &w.address,
        kind: w.kind(),
        price_in: w.price_in,
        price_out: w.price_out,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ChannelClient {
    /// Connects: checks the Root is v2, reads the relayer's identity, and resumes the saved
    /// channels (each checked against `voucher_key`).
    pub async fn connect(
        config: ChannelConfig,
        wallet: Wallet,
        voucher_key: SigningKey,
    ) -> Result<Self> {
        if !(1..=crate::relay::channel::MAX_TICKETS).contains(&config.channels) {
            return Err(ClientError::BadResponse(format!(
                "channels per request must be 1..={}, not {}",
                crate::relay::channel::MAX_TICKETS,
                config.channels
            ))
            .into());
        }
        let chain = TonCenterClient::new(config.chain.clone()).map_err(ClientError::from)?;
        if detect_root_version(&chain, &config.root).await? != RootVersion::V2 {
            return Err(ChannelClientError::NotV2(config.root.to_string()));
        }
        let relayer = RelayerApi::new(&config.relayer_url)?;
        let health = relayer.health().await?;
        let relayer_id = TonAddress::from_str(&health.relayer_id).map_err(|e| {
            ClientError::BadResponse(format!(
                "relayer_id {:?} is not an address: {e}",
                health.relayer_id
            ))
        })?;
        let wallet = ServiceSender::start(&wallet, config.highload, Arc::new(chain.clone()))
            .map_err(ClientError::from)?;
        let escrow = RootClient::at(&chain, config.root.clone())
            .escrow_address(wallet.address())
            .await?;
        let mut slots = Vec::new();
        if let Some(path) = &config.store
            && let Some(saved) = store::load(path, &config.root, &escrow)?
        {
            for c in saved.channels {
                let session = ChannelSession::resume(c.snapshot, voucher_key.clone())?;
                slots.push(Slot {
                    session,
                    receipts: c.receipts,
                    unanswered: Unanswered::default(),
                    busy: false,
                    closed: c.closed,
                });
            }
        }
        // One read per resumed channel, at start only: a channel closed or settled while the
        // client was away is not offered to the relayer again.
        if !slots.is_empty() {
            let e = EscrowClient::at(&chain, config.root.clone(), escrow.clone());
            for s in slots.iter_mut().filter(|s| !s.closed) {
                match e.channel(s.id()).await? {
                    None => s.closed = true,
                    Some(fresh) => {
                        if let Err(err) = s.session.refresh(fresh) {
                            warn!(target: "sdk::channels", channel_id = s.id(), error = %err, "saved channel disagrees with the chain: not used");
                            s.closed = true;
                        }
                    }
                }
            }
        }
        info!(target: "sdk::channels", root = %config.root, relayer = %relayer_id, %escrow, resumed = slots.len(), "connected");
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                chain,
                wallet,
                voucher_key,
                relayer,
                relayer_id,
                escrow,
                global_id: Mutex::new(None),
                root: Mutex::new(None),
                workers: Mutex::new(WorkerCache::default()),
                slots: Mutex::new(slots),
                freed: tokio::sync::Notify::new(),
                sending: tokio::sync::Mutex::new(()),
                transactions: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                watch: Mutex::new(ReceiptWatch::new()),
                reports: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The wallet that owns the Escrow and pays for its transactions (the highload wallet with
    /// [`ChannelConfig::highload`]).
    pub fn wallet_address(&self) -> &TonAddress {
        self.inner.wallet.address()
    }

    /// The client's Escrow v2.
    pub fn escrow_address(&self) -> &TonAddress {
        &self.inner.escrow
    }

    /// The relayer's identity (named in every channel).
    pub fn relayer_id(&self) -> &TonAddress {
        &self.inner.relayer_id
    }

    /// The chain client.
    pub fn chain(&self) -> &TonCenterClient {
        &self.inner.chain
    }

    /// The configuration.
    pub fn config(&self) -> &ChannelConfig {
        &self.inner.config
    }

    /// Transactions this client sent (deposits, opens, top-ups, closes) since it connected.
    pub fn transactions(&self) -> u64 {
        self.inner.transactions.load(Ordering::SeqCst)
    }

    /// Equivocation reports this client sent since it connected (a worker that signed two
    /// different receipts for one (channel, seq) is reported as soon as the second arrives).
    pub fn equivocation_reports(&self) -> Vec<EquivocationReport> {
        lock(&self.inner.reports).clone()
    }

    /// Requests served and paid since it connected.
    pub fn requests_paid(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Workers read from the chain and verified since it connected.
    pub fn worker_verifications(&self) -> u64 {
        lock(&self.inner.workers).verifications()
    }

    /// The client's channels.
    pub fn channels(&self) -> Vec<ChannelView> {
        lock(&self.inner.slots)
            .iter()
            .map(|s| ChannelView {
                channel_id: s.id(),
                worker: s.worker().clone(),
                amount: s.session.state().amount,
                paid: s.session.accumulator().cumulative(),
                seq: s.session.accumulator().seq(),
                remaining: s.session.remaining(),
                closing: s.session.is_closing() || s.session.state().close_requested_at != 0,
                closed: s.closed,
            })
            .collect()
    }

    /// The receipts paid on channel `channel_id`, in seq order.
    pub fn receipts(&self, channel_id: u64) -> Vec<SignedChannelReceipt> {
        lock(&self.inner.slots)
            .iter()
            .find(|s| s.id() == channel_id)
            .map(|s| s.receipts.clone())
            .unwrap_or_default()
    }

    /// The latest voucher of channel `channel_id`.
    pub fn latest_voucher(&self, channel_id: u64) -> Option<crate::channel::SignedVoucher> {
        lock(&self.inner.slots)
            .iter()
            .find(|s| s.id() == channel_id)
            .and_then(|s| s.session.latest_voucher().cloned())
    }

    /// Starts a request on the client's channels for `model` (see the module doc).
    pub async fn request(&self, model: &ModelSpec, request: JobRequest) -> Result<ChannelStream> {
        self.request_with(model, request, &RequestOptions::default())
            .await
    }

    /// [`Self::request`] on the channels `options` admits only (pinned worker, attestation,
    /// prices, preference order), with `max_tokens` lowered to fit `options.max_cost` at the
    /// prices of the dearest channel named. [`ChannelClientError::NoChannel`] says which limit
    /// left none.
    pub async fn request_with(
        &self,
        model: &ModelSpec,
        request: JobRequest,
        options: &RequestOptions,
    ) -> Result<ChannelStream> {
        if request.model_kind() != model.kind {
            return Err(
                ClientError::InvalidRequest(crate::job::JobError::Invalid(format!(
                    "{} is {} model, the request needs {}",
                    model.name,
                    kind_name(model.kind),
                    kind_name(request.model_kind())
                )))
                .into(),
            );
        }
        let bound = token_bound(&request);
        let ids = self.acquire(model.id, bound, options).await?;
        let lease = Lease {
            inner: self.inner.clone(),
            ids,
        };
        let request = match options.max_cost {
            None => request,
            Some(max_cost) => {
                let prices: Vec<(u128, u128)> = lock(&self.inner.slots)
                    .iter()
                    .filter(|s| lease.ids.contains(&s.id()))
                    .map(|s| (s.session.state().price_in, s.session.state().price_out))
                    .collect();
                cap_to_cost(request, bound, prices, max_cost).ok_or_else(|| {
                    ChannelClientError::NoChannel {
                        model: model.id,
                        reason: format!(
                            "the request cannot be served within the max cost {max_cost} nanoTON"
                        ),
                    }
                })?
            }
        };
        let plaintext = request.encode().map_err(ClientError::from)?;
        let bound = token_bound(&request);
        request::start(self.inner.clone(), lease, *model, bound, plaintext).await
    }

    async fn root_v2(&self) -> Result<RootV2> {
        if let Some(r) = lock(&self.inner.root).clone()
            && r.read_at.elapsed() < ROOT_TTL
        {
            return Ok(r);
        }
        let root = RootClient::at(&self.inner.chain, self.inner.config.root.clone());
        let params = root.params().await?;
        let view = root.policy().await?;
        let policy = RootPolicy {
            allowed_kinds: view.allowed_kinds,
            measurements: view.measurements,
        };
        // Root v2's TEE policy (minimum SNP TCB, TDX rules) binds every worker this client pays.
        let tee = root.tee_policy().await?;
        let policy = match self.inner.config.policy {
            PolicyMode::Production => Policy::from_root(&policy),
            PolicyMode::Development => Policy::development_from_root(&policy),
        }
        .with_root_tee_policy(&tee)
        .require_gpu(self.inner.config.require_gpu);
        let (worker_code, _) = root.codes().await?;
        let r = RootV2 {
            policy,
            min_stake: params.min_stake,
            max_channel_lifetime: params.max_channel_lifetime,
            relayer_fee_cap_bps: params.relayer_fee_cap_bps,
            worker_code,
            read_at: Instant::now(),
        };
        *lock(&self.inner.root) = Some(r.clone());
        Ok(r)
    }

    /// The most a request can cost on a channel at these prices (within `options.max_cost`).
    fn max_cost(
        bound: TokenBound,
        price_in: u128,
        price_out: u128,
        options: &RequestOptions,
    ) -> Result<u128> {
        let cost = cost_of(bound, price_in, price_out).ok_or_else(|| {
            ChannelClientError::from(ClientError::BadResponse(
                "the request's max cost overflows".into(),
            ))
        })?;
        Ok(options.max_cost.map_or(cost, |m| cost.min(m)))
    }

    /// Up to K usable channels for `model`, to different workers, marked busy: the open ones
    /// first (no chain read when their workers are cached); channels to more verified workers
    /// are opened when fewer than K exist; any below the threshold is topped up.
    async fn acquire(
        &self,
        model: u32,
        bound: TokenBound,
        options: &RequestOptions,
    ) -> Result<Vec<u64>> {
        let deadline = tokio::time::Instant::now() + ACQUIRE_TIMEOUT;
        let k = self.inner.config.channels;
        let mut tried_open = false;
        loop {
            let freed = self.inner.freed.notified();
            let now = unix_now();
            let now32 = u32::try_from(now).unwrap_or(u32::MAX);
            let (idle, usable, busy) = {
                let slots = lock(&self.inner.slots);
                let cache = lock(&self.inner.workers);
                let mut idle: Vec<(u64, TonAddress)> = Vec::new();
                let mut usable: Vec<TonAddress> = Vec::new();
                let mut busy = 0;
                for s in slots.iter().filter(|s| !s.closed) {
                    let st = s.session.state();
                    let serves = s.session.next_request(now32).is_ok()
                        && cache.get(s.worker(), now).is_some_and(|w| {
                            w.models.contains(&model)
                                && options.admits(
                                    Offer {
                                        worker: &w.address,
                                        kind: w.kind(),
                                        price_in: st.price_in,
                                        price_out: st.price_out,
                                    },
                                    bound,
                                )
                        });
                    if !serves {
                        continue;
                    }
                    if !usable.contains(s.worker()) {
                        usable.push(s.worker().clone());
                    }
                    if s.busy {
                        busy += 1;
                    } else if !idle.iter().any(|(_, a)| a == s.worker()) {
                        idle.push((s.id(), s.worker().clone()));
                    }
                }
                // Preferred workers first, the rest in the order their channels were opened.
                idle.sort_by_key(|(_, a)| options.rank(a));
                idle.truncate(k);
                (idle, usable, busy)
            };
            if usable.len() < k && !tried_open {
                tried_open = true;
                if let Err(e) = self.open_channels(model, bound, options).await {
                    if usable.is_empty() {
                        return Err(e);
                    }
                    warn!(target: "sdk::channels", error = %e, "fewer channels than asked for");
                }
                continue;
            }
            if !idle.is_empty() {
                let ids: Vec<u64> = idle.into_iter().map(|(id, _)| id).collect();
                if self.claim(&ids) {
                    if let Err(e) = self.top_up_where_needed(&ids, bound, options).await {
                        self.release(&ids);
                        return Err(e);
                    }
                    return Ok(ids);
                }
                continue;
            }
            if busy == 0 {
                return Err(ChannelClientError::NoChannel {
                    model,
                    reason: "no verified worker serves it".into(),
                });
            }
            // Every channel is serving another request: wait for one.
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(ClientError::Timeout(
                    "every channel stayed busy with other requests".into(),
                )
                .into());
            }
        }
    }

    /// Marks `ids` busy, unless one of them was taken meanwhile.
    fn claim(&self, ids: &[u64]) -> bool {
        let mut slots = lock(&self.inner.slots);
        if slots.iter().any(|s| ids.contains(&s.id()) && s.busy) {
            return false;
        }
        for s in slots.iter_mut().filter(|s| ids.contains(&s.id())) {
            s.busy = true;
        }
        true
    }

    fn release(&self, ids: &[u64]) {
        release(&self.inner, ids);
    }

    /// Lists the model's workers (relayer), verifies the ones not cached (chain), resumes saved
    /// channels to them, and opens channels to verified workers until K channels to different
    /// workers exist.
    async fn open_channels(
        &self,
        model: u32,
        bound: TokenBound,
        options: &RequestOptions,
    ) -> Result<()> {
        let _sending = self.inner.sending.lock().await;
        let root = self.root_v2().await?;
        let (verified, rejected) = self.screen(model, &root).await?;
        let now = unix_now();
        let verified: Vec<ChannelWorker> = verified
            .into_iter()
            .filter(|w| w.models.contains(&model))
            .collect();
        if verified.is_empty() {
            return Err(ChannelClientError::NoChannel {
                model,
                reason: if rejected.is_empty() {
                    "the relayer lists no worker for it".into()
                } else {
                    rejected.join("; ")
                },
            });
        }
        let total = verified.len();
        let mut refusals = Vec::new();
        let mut verified: Vec<ChannelWorker> = verified
            .into_iter()
            .filter(|w| match options.refusal(offer_of(w), bound) {
                None => true,
                Some(r) => {
                    refusals.push(r);
                    false
                }
            })
            .collect();
        if verified.is_empty() {
            return Err(ChannelClientError::NoChannel {
                model,
                reason: options.explain(total, &refusals),
            });
        }
        verified.sort_by_key(|w| options.rank(&w.address));
        let now32 = u32::try_from(now).unwrap_or(u32::MAX);
        // Channels the options refuse (opened at other prices, say) do not count.
        let have: Vec<TonAddress> = lock(&self.inner.slots)
            .iter()
            .filter(|s| !s.closed && s.session.next_request(now32).is_ok())
            .filter(|s| {
                let st = s.session.state();
                verified.iter().any(|w| {
                    &w.address == s.worker()
                        && options.admits(
                            Offer {
                                price_in: st.price_in,
                                price_out: st.price_out,
                                ..offer_of(w)
                            },
                            bound,
                        )
                })
            })
            .map(|s| s.worker().clone())
            .collect();
        let mut distinct = have
            .iter()
            .filter(|a| verified.iter().any(|w| &w.address == *a))
            .count();
        let mut last_error = None;
        for w in verified.iter().filter(|w| !have.contains(&w.address)) {
            if distinct >= self.inner.config.channels {
                break;
            }
            let amount = self.inner.config.channel_amount.max(Self::max_cost(
                bound,
                w.price_in,
                w.price_out,
                options,
            )?);
            match self.open_one(w, amount, &root).await {
                Ok(()) => distinct += 1,
                Err(e) => {
                    warn!(target: "sdk::channels", worker = %w.address, error = %e, "could not open a channel");
                    last_error = Some(e);
                }
            }
        }
        match last_error {
            Some(e) if distinct == 0 => Err(e),
            _ => Ok(()),
        }
    }

    /// The workers the relayer lists for `model` that pass every check (cached ones are not
    /// read again), with the reasons of those refused.
    async fn screen(&self, model: u32, root: &RootV2) -> Result<(Vec<ChannelWorker>, Vec<String>)> {
        let listed = self.inner.relayer.workers(Some(model)).await?;
        let now = unix_now();
        let check = WorkerCheck {
            root: &self.inner.config.root,
            worker_code: &root.worker_code,
            policy: &root.policy,
            min_stake: root.min_stake,
            now,
        };
        let mut verified = Vec::new();
        let mut rejected = Vec::new();
        for info in &listed.workers {
            let Ok(address) = TonAddress::from_str(&info.worker) else {
                rejected.push(format!("{}: not an address", info.worker));
                continue;
            };
            if let Some(w) = lock(&self.inner.workers).fresh(info, &address, now) {
                verified.push(w.clone());
                continue;
            }
            let checked = match read_worker_v2(&self.inner.chain, &self.inner.config.root, &address)
                .await?
            {
                None => Err("no Worker v2 contract there".to_owned()),
                Some((state, record)) => check_worker_v2(info, &address, &state, &record, &check),
            };
            match checked {
                Ok(w) => {
                    debug!(target: "sdk::channels", worker = %address, kind = %w.kind(), "worker verified");
                    lock(&self.inner.workers).insert(info, w.clone());
                    verified.push(w);
                }
                Err(reason) => {
                    warn!(target: "sdk::channels", worker = %address, %reason, "worker refused");
                    lock(&self.inner.workers).forget(&address);
                    rejected.push(format!("{address}: {reason}"));
                }
            }
        }
        Ok((verified, rejected))
    }

    /// The verified workers serving `model` now (relayer list, chain reads for uncached ones).
    pub async fn workers(&self, model: u32) -> Result<Vec<ChannelWorker>> {
        let root = self.root_v2().await?;
        let (verified, _) = self.screen(model, &root).await?;
        Ok(verified
            .into_iter()
            .filter(|w| w.models.contains(&model))
            .collect())
    }

    /// Whether Root v2 registers `model` under this sdk's registry hash for it.
    pub async fn has_model(&self, model: &ModelSpec) -> Result<bool> {
        let root = RootClient::at(&self.inner.chain, self.inner.config.root.clone());
        Ok(root.model(model.id).await? == Some(model.registry_hash()))
    }

    async fn global_id(&self, escrow: &EscrowClient<'_, TonCenterClient>) -> Result<i32> {
        if let Some(g) = *lock(&self.inner.global_id) {
            return Ok(g);
        }
        let g = escrow.global_id().await?;
        *lock(&self.inner.global_id) = Some(g);
        Ok(g)
    }

    /// Opens one channel with `w` (and creates the Escrow first when it does not exist).
    async fn open_one(&self, w: &ChannelWorker, amount: u128, root: &RootV2) -> Result<()> {
        let inner = &self.inner;
        let escrow = EscrowClient::at(
            &inner.chain,
            inner.config.root.clone(),
            inner.escrow.clone(),
        );
        let account = inner.chain.account(&inner.escrow).await?;
        if account.status != AccountStatus::Active {
            escrow
                .deposit(&inner.wallet, NEW_ESCROW_DEPOSIT, &inner.config.send)
                .await?;
            inner.transactions.fetch_add(1, Ordering::SeqCst);
        }
        let _ = self.global_id(&escrow).await;
        let now = account.sync_utime.max(unix_now());
        let lifetime = inner
            .config
            .lifetime
            .min(root.max_channel_lifetime.saturating_sub(60).max(60));
        let opened = escrow
            .open_channel(
                &inner.wallet,
                OpenChannelArgs {
                    amount,
                    worker_owner: w.owner.clone(),
                    expires_at: u32::try_from(now + u64::from(lifetime)).unwrap_or(u32::MAX),
                    price_in: w.price_in,
                    price_out: w.price_out,
                    voucher_key: inner.voucher_key.verifying_key().to_bytes(),
                    relayer: inner.relayer_id.clone(),
                    relayer_fee_bps: inner.config.relayer_fee_bps.min(root.relayer_fee_cap_bps),
                    notify_relayer: true,
                },
                &inner.config.send,
            )
            .await?;
        inner.transactions.fetch_add(1, Ordering::SeqCst);
        let session = ChannelSession::open(opened.state, w.receipt_key, inner.voucher_key.clone())?;
        info!(target: "sdk::channels", channel_id = opened.channel.channel_id, worker = %w.address, %amount, "channel opened");
        lock(&inner.slots).push(Slot {
            session,
            receipts: Vec::new(),
            unanswered: Unanswered::default(),
            busy: false,
            closed: false,
        });
        save_store(inner)?;
        Ok(())
    }

    /// Tops up each of `ids` whose remaining amount is below the threshold or the request's max
    /// cost, back to the configured channel amount.
    async fn top_up_where_needed(
        &self,
        ids: &[u64],
        bound: TokenBound,
        options: &RequestOptions,
    ) -> Result<()> {
        let inner = &self.inner;
        let needs: Vec<(u64, u128)> = lock(&inner.slots)
            .iter()
            .filter(|s| ids.contains(&s.id()))
            .filter_map(|s| {
                let st = s.session.state();
                let max_cost =
                    Self::max_cost(bound, st.price_in, st.price_out, options).unwrap_or(u128::MAX);
                // A threshold above the channel amount would top up before every request.
                let threshold = inner
                    .config
                    .top_up_below
                    .min(inner.config.channel_amount)
                    .max(max_cost);
                s.session.needs_top_up(threshold).then(|| {
                    let target = inner.config.channel_amount.max(max_cost);
                    (s.id(), s.session.top_up_amount(target).max(1))
                })
            })
            .collect();
        if needs.is_empty() {
            return Ok(());
        }
        let _sending = inner.sending.lock().await;
        let escrow = EscrowClient::at(
            &inner.chain,
            inner.config.root.clone(),
            inner.escrow.clone(),
        );
        for (id, amount) in needs {
            escrow
                .top_up(&inner.wallet, id, amount, &inner.config.send)
                .await?;
            inner.transactions.fetch_add(1, Ordering::SeqCst);
            let fresh = escrow.channel(id).await?.ok_or_else(|| {
                ChannelClientError::Failed(format!("channel {id} vanished after its top-up"))
            })?;
            if let Some(s) = lock(&inner.slots).iter_mut().find(|s| s.id() == id) {
                s.session.refresh(fresh)?;
            }
            info!(target: "sdk::channels", channel_id = id, %amount, "channel topped up");
        }
        save_store(inner)
    }

    /// Asks to close channel `channel_id`: the close request on-chain (the worker keeps the grace
    /// period to settle), and the final voucher handed to the worker, whose settlement with it
    /// ends the channel at once. The rest comes back with [`Self::reclaim`].
    pub async fn close(&self, channel_id: u64) -> Result<()> {
        let inner = &self.inner;
        let (channel, final_voucher) = {
            let mut slots = lock(&inner.slots);
            let s = slots
                .iter_mut()
                .find(|s| s.id() == channel_id)
                .ok_or_else(|| ChannelClientError::Failed(format!("no channel {channel_id}")))?;
            let v = if s.session.accumulator().seq() > 0 && !s.session.is_closing() {
                Some(s.session.final_voucher()?)
            } else {
                None
            };
            (s.session.channel().clone(), v)
        };
        save_store(inner)?;
        let _sending = inner.sending.lock().await;
        let escrow = EscrowClient::at(
            &inner.chain,
            inner.config.root.clone(),
            inner.escrow.clone(),
        );
        if let Some(st) = escrow.channel(channel_id).await? {
            if st.close_requested_at == 0 {
                escrow
                    .request_close(&inner.wallet, channel_id, &inner.config.send)
                    .await?;
                inner.transactions.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(fresh) = escrow.channel(channel_id).await?
                && let Some(s) = lock(&inner.slots).iter_mut().find(|s| s.id() == channel_id)
            {
                s.session.refresh(fresh)?;
            }
        }
        save_store(inner)?;
        if let Some(v) = final_voucher {
            request::push_voucher(inner, &channel, &v).await;
        }
        Ok(())
    }

    /// Closes every channel of the client whose settlement window has ended (expired, or closing
    /// and past its grace period), so their rest returns to the Escrow's free balance; channels
    /// the worker already closed with a final settlement are marked closed. Returns the ids
    /// closed now.
    pub async fn reclaim(&self) -> Result<Vec<u64>> {
        let inner = &self.inner;
        let _sending = inner.sending.lock().await;
        let escrow = EscrowClient::at(
            &inner.chain,
            inner.config.root.clone(),
            inner.escrow.clone(),
        );
        let ids: Vec<u64> = lock(&inner.slots)
            .iter()
            .filter(|s| !s.closed)
            .map(Slot::id)
            .collect();
        let now = inner.chain.account(&inner.escrow).await?.sync_utime;
        let mut closed = Vec::new();
        for id in ids {
            match escrow.channel(id).await? {
                None => {
                    if let Some(s) = lock(&inner.slots).iter_mut().find(|s| s.id() == id) {
                        s.closed = true;
                    }
                }
                Some(st) if now > u64::from(st.settle_until) => {
                    escrow
                        .close_channel(&inner.wallet, id, &inner.config.send)
                        .await?;
                    inner.transactions.fetch_add(1, Ordering::SeqCst);
                    if let Some(s) = lock(&inner.slots).iter_mut().find(|s| s.id() == id) {
                        s.closed = true;
                    }
                    info!(target: "sdk::channels", channel_id = id, "channel closed");
                    closed.push(id);
                }
                Some(_) => {}
            }
        }
        save_store(inner)?;
        Ok(closed)
    }

    /// Reads channel `channel_id` from the chain again (after a settlement, say) into its session.
    pub async fn refresh(&self, channel_id: u64) -> Result<()> {
        let inner = &self.inner;
        let escrow = EscrowClient::at(
            &inner.chain,
            inner.config.root.clone(),
            inner.escrow.clone(),
        );
        let fresh = escrow.channel(channel_id).await?;
        if let Some(s) = lock(&inner.slots).iter_mut().find(|s| s.id() == channel_id) {
            match fresh {
                Some(f) => s.session.refresh(f)?,
                None => s.closed = true,
            }
        }
        save_store(inner)
    }

    /// Proves on the chain that `receipt` (one this client paid) is anchored by a settlement.
    pub async fn verify(&self, receipt: &SignedChannelReceipt) -> Result<SettlementLog> {
        let receipts = self.receipts(receipt.body.channel.channel_id);
        prove_receipt(&self.inner.chain, receipt, &receipts).await
    }
}

/// The channels a request holds; released when dropped.
#[derive(Debug)]
struct Lease {
    inner: Arc<Inner>,
    ids: Vec<u64>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        release(&self.inner, &self.ids);
    }
}

fn release(inner: &Inner, ids: &[u64]) {
    for s in lock(&inner.slots)
        .iter_mut()
        .filter(|s| ids.contains(&s.id()))
    {
        s.busy = false;
    }
    inner.freed.notify_waiters();
}

/// Writes every session to the store (when one is configured).
fn save_store(inner: &Inner) -> Result<()> {
    let Some(path) = &inner.config.store else {
        return Ok(());
    };
    let channels = lock(&inner.slots)
        .iter()
        .map(|s| SavedChannel {
            snapshot: s.session.snapshot(),
            receipts: s.receipts.clone(),
            closed: s.closed,
        })
        .collect();
    store::save(
        path,
        &SavedChannels {
            version: STORE_VERSION,
            root: inner.config.root.clone(),
            escrow: inner.escrow.clone(),
            channels,
        },
    )
}
