//! What the page shows, read from the chain and the relayer. The relayer lists the workers
//! connected now; every worker seen once stays listed (with when it was last seen), and its
//! Worker contract is read for stake, earnings (v1), status and the attested record. Settlements
//! are read from each known Worker contract's transactions: a `SubmitReceipts` carries the signed
//! receipts (tokens), and each `Settle` it sends to an Escrow is one settled request (cost).
//! On a Root v2 (payment channels) the Escrows are learnt from the settlements the Workers
//! submit, and the settlements themselves are read from the Escrows' history ([`super::v2`]).

use std::collections::BTreeMap;

use anyhow::Context as _;
use cocoon_sdk::chain::{ChainApi, Network, TonCenterClient, Transaction};
use cocoon_sdk::client::{RelayerApi, read_worker};
use cocoon_sdk::contracts::{RootClient, RootVersion, detect_root_version};
use cocoon_sdk::job::models::KNOWN_MODELS;
use cocoon_sdk::messages::escrow::Settle;
use cocoon_sdk::messages::records::worker_status;
use cocoon_sdk::messages::worker::SubmitReceipts;
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use serde::Serialize;
use tokio::sync::{Mutex, OnceCell};
use tracing::debug;

use super::DEFAULT_POLL_MS;

/// Transactions read per page of a Worker's history.
pub(super) const PAGE: u32 = 50;
/// Settlements kept (the oldest are dropped beyond it).
pub const MAX_SETTLEMENTS: usize = 10_000;

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Unix time the overview was read.
    pub generated_at: u64,
    /// How often the page polls, ms.
    pub poll_ms: u64,
    /// `mainnet`, `testnet` or `localnet`.
    pub network: String,
    /// Root's parameters, policy and models.
    pub root: RootView,
    /// The relayer's health.
    pub relayer: RelayerView,
    /// Every worker seen, connected ones first.
    pub workers: Vec<WorkerRow>,
    /// Settlements, oldest first.
    pub settlements: Vec<SettlementPoint>,
}

/// Root as read now.
#[derive(Debug, Clone, Serialize)]
pub struct RootView {
    /// Address (user-friendly).
    pub address: String,
    /// Protocol version of the Root read: 1 (a job per request) or 2 (payment channels).
    pub version: u8,
    /// Parameters by name (nanoTON, seconds, basis points).
    pub params: BTreeMap<&'static str, String>,
    /// Allowed TEE kinds, by name.
    pub allowed_kinds: Vec<&'static str>,
    /// Allow-listed measurements (hex).
    pub measurements: Vec<String>,
    /// Registered models.
    pub models: Vec<ModelRow>,
    /// Governance changes queued, with when they take effect. A v1 Root applies changes at once
    /// (no timelock), so it never has any.
    pub queued_changes: Vec<QueuedChange>,
}

/// A registered model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    /// Model id.
    pub id: u32,
    /// Known name, or the id.
    pub name: String,
    /// Registry hash (hex).
    pub hash: String,
}

/// A queued governance change.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedChange {
    /// Change id (v2).
    pub id: Option<u32>,
    /// What changes.
    pub what: String,
    /// Unix time it takes effect.
    pub effective_at: u64,
}

/// The relayer as probed now.
#[derive(Debug, Clone, Serialize)]
pub struct RelayerView {
    /// Base URL.
    pub url: String,
    /// `/health` answered ok.
    pub ok: bool,
    /// Its status, or why it could not be read.
    pub status: String,
    /// Worker sessions.
    pub workers: u32,
    /// Its identity (wallet address).
    pub relayer_id: String,
    /// Whether the relayer reaches the chain (`None`: it runs without one, or did not say).
    pub chain: Option<bool>,
}

/// A worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    /// Worker contract (user-friendly).
    pub address: String,
    /// Owner wallet (user-friendly), when the contract was read.
    pub owner: Option<String>,
    /// `simulated`, `sev-snp`, `tdx` or `unknown`.
    pub attestation: &'static str,
    /// Whether the attestation is simulated: no hardware protects prompts on this worker.
    pub unattested: bool,
    /// Measurement on record (hex).
    pub measurement: String,
    /// Unix time the attestation expires.
    pub attestation_expires_at: u32,
    /// Model names.
    pub models: Vec<String>,
    /// nanoTON per input token.
    pub price_in: String,
    /// nanoTON per output token.
    pub price_out: String,
    /// Stake, nanoTON.
    pub stake: String,
    /// Earnings, nanoTON. v1: earned and not withdrawn (the Worker contract's counter, the
    /// worker's share after the relayer's and the protocol's fees). v2: what its settled receipts
    /// cost, summed from its channels' settlements (a Worker v2 keeps no counter; the Escrow
    /// takes the relayer's and the protocol's fees out of it and pays the rest at once).
    pub earned: String,
    /// `active`, `unbonding`, `slashed`, `exited`, `uninitialized`, `unknown`.
    pub status: &'static str,
    /// In the relayer's listing now.
    pub connected: bool,
    /// Heartbeats on time.
    pub healthy: bool,
    /// Jobs running.
    pub load: u32,
    /// Jobs it can run at once.
    pub capacity: u32,
    /// Unix time it was last in the relayer's listing.
    pub last_seen: u64,
}

/// One settlement: a settled job (v1), or a channel settlement covering every request since the
/// channel's previous one (v2).
#[derive(Debug, Clone, Serialize)]
pub struct SettlementPoint {
    /// Unix time of the settling transaction.
    pub time: u64,
    /// Worker contract (user-friendly; empty when a v2 settlement's Worker is not known).
    pub worker: String,
    /// Job id on its Escrow (v1).
    pub job_id: Option<u64>,
    /// Channel id on its Escrow (v2), in decimal: ids are random 64-bit numbers, beyond what a
    /// JavaScript number holds exactly.
    pub channel_id: Option<String>,
    /// The Escrow (v2; user-friendly).
    pub escrow: Option<String>,
    /// Seq of the last receipt settled (v2).
    pub seq: Option<u32>,
    /// The channel closed in this settlement (v2).
    pub is_final: bool,
    /// Requests this settlement paid for: 1 for a job, the seq advance for a channel.
    pub requests: u32,
    /// nanoTON the app paid for them.
    pub cost: String,
    /// Prompt tokens: the job's receipt (v1), the last settled receipt's (v2: the chain holds
    /// only that one); 0 when the receipt was not found.
    pub tokens_in: u32,
    /// Output tokens, the same way.
    pub tokens_out: u32,
    /// On-chain fees of the settlement, nanoTON: v1 the submitting transaction's, shared among
    /// its settlements; v2 the Worker's and the Escrow's transactions.
    pub fees: String,
    /// Transaction hash (hex): the Worker's (v1), the Escrow's (v2).
    pub tx: String,
}

/// What the chain says of a worker, ready to show.
#[derive(Debug, Clone)]
pub(super) struct OnChainRow {
    pub(super) owner: Option<String>,
    pub(super) kind: u8,
    pub(super) measurement: String,
    pub(super) expires_at: u32,
    pub(super) models: Vec<String>,
    pub(super) price_in: String,
    pub(super) price_out: String,
    pub(super) stake: String,
    pub(super) earned: String,
    pub(super) status: &'static str,
}

impl Default for OnChainRow {
    /// A worker whose contract could not be read.
    fn default() -> Self {
        Self {
            owner: None,
            kind: u8::MAX,
            measurement: String::new(),
            expires_at: 0,
            models: Vec::new(),
            price_in: String::new(),
            price_out: String::new(),
            stake: String::new(),
            earned: String::new(),
            status: "unknown",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Known {
    pub(super) address: TonAddress,
    last_seen: u64,
    healthy: bool,
    load: u32,
    capacity: u32,
    scanned_lt: u64,
}

#[derive(Debug, Default)]
struct State {
    workers: BTreeMap<String, Known>,
    settlements: Vec<SettlementPoint>,
    channels: super::v2::ChannelsSeen,
}

/// Reads the overview; keeps what it learnt between reads.
#[derive(Debug)]
pub struct Collector {
    chain: TonCenterClient,
    network: Network,
    root: TonAddress,
    relayer: RelayerApi,
    relayer_url: String,
    poll_ms: u64,
    version: OnceCell<RootVersion>,
    state: Mutex<State>,
}

pub(super) fn kind_name(kind: u8) -> &'static str {
    match kind {
        0 => "simulated",
        1 => "sev-snp",
        2 => "tdx",
        _ => "unknown",
    }
}

fn status_name(s: u8) -> &'static str {
    match s {
        worker_status::UNINITIALIZED => "uninitialized",
        worker_status::ACTIVE => "active",
        worker_status::UNBONDING => "unbonding",
        worker_status::SLASHED => "slashed",
        worker_status::EXITED => "exited",
        _ => "unknown",
    }
}

pub(super) fn model_name(id: u32) -> String {
    KNOWN_MODELS
        .iter()
        .find(|m| m.id == id)
        .map_or_else(|| format!("model {id}"), |m| m.name.to_string())
}

pub(super) fn now() -> u64 {
    cocoon_sdk::clock::unix_now_u32().into()
}

impl Collector {
    /// A collector for `root`, asking the relayer at `relayer_url`.
    pub fn new(
        chain: TonCenterClient,
        network: Network,
        root: TonAddress,
        relayer_url: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            chain,
            network,
            root,
            relayer: RelayerApi::new(relayer_url)
                .with_context(|| format!("relayer URL {relayer_url}"))?,
            relayer_url: relayer_url.to_owned(),
            poll_ms: DEFAULT_POLL_MS,
            version: OnceCell::new(),
            state: Mutex::new(State::default()),
        })
    }

    pub(super) fn friendly(&self, a: &TonAddress) -> String {
        a.to_base64_url_flags(false, self.network.is_test())
    }

    pub(super) fn chain(&self) -> &TonCenterClient {
        &self.chain
    }

    pub(super) fn root(&self) -> &TonAddress {
        &self.root
    }

    /// The Root's protocol, asked once (a Root never changes version).
    async fn version(&self) -> anyhow::Result<RootVersion> {
        self.version
            .get_or_try_init(|| async {
                detect_root_version(&self.chain, &self.root)
                    .await
                    .context("reading Root's version")
            })
            .await
            .copied()
    }

    /// Reads everything now. Fails only when Root cannot be read (the chain is down); a relayer
    /// that does not answer is shown as such.
    pub async fn overview(&self) -> anyhow::Result<Overview> {
        // One read at a time: concurrent polls would scan the same transactions twice.
        let mut state = self.state.lock().await;
        let version = self.version().await?;
        let root = match version {
            RootVersion::V1 => self.root_view().await?,
            RootVersion::V2 => self.root_view_v2().await?,
        };
        let relayer = self.relayer_view().await;
        let listed = self.relayer.workers(None).await.map(|l| l.workers);
        let t = now();
        if let Ok(listed) = &listed {
            for w in listed {
                let Ok(address) = w.worker.parse::<TonAddress>() else {
                    continue;
                };
                let k = state.workers.entry(address.to_hex()).or_insert(Known {
                    address,
                    last_seen: t,
                    healthy: w.healthy,
                    load: w.load,
                    capacity: w.capacity,
                    scanned_lt: 0,
                });
                k.last_seen = t;
                k.healthy = w.healthy;
                k.load = w.load;
                k.capacity = w.capacity;
            }
        }
        let connected: Vec<String> = listed
            .as_ref()
            .map(|l| {
                l.iter()
                    .filter_map(|w| w.worker.parse::<TonAddress>().ok())
                    .map(|a| a.to_hex())
                    .collect()
            })
            .unwrap_or_default();
        let mut workers = Vec::new();
        let keys: Vec<String> = state.workers.keys().cloned().collect();
        for key in keys {
            let known = state.workers[&key].clone();
            let is_connected = connected.contains(&key);
            let lt = match version {
                RootVersion::V1 => {
                    workers.push(self.worker_row(&known, is_connected).await);
                    let (points, lt) = self.scan(&known.address, known.scanned_lt).await;
                    state.settlements.extend(points);
                    lt
                }
                RootVersion::V2 => {
                    workers.push(self.worker_row_v2(&known, is_connected).await);
                    self.scan_worker_v2(&known.address, known.scanned_lt, &mut state.channels)
                        .await
                }
            };
            if let Some(k) = state.workers.get_mut(&key) {
                k.scanned_lt = lt;
            }
        }
        if version == RootVersion::V2 {
            let points = self.scan_escrows_v2(&mut state.channels).await;
            state.settlements.extend(points);
            // Summed over every settlement read, not only the ones kept for the page; a
            // settlement names its worker by the owner it paid.
            for w in &mut workers {
                if let Some(owner) = &w.owner {
                    w.earned = state.channels.earned(owner).to_string();
                }
            }
        }
        state.settlements.sort_by_key(|s| s.time);
        let excess = state.settlements.len().saturating_sub(MAX_SETTLEMENTS);
        state.settlements.drain(..excess);
        workers.sort_by_key(|w| (!w.connected, w.address.clone()));
        Ok(Overview {
            generated_at: t,
            poll_ms: self.poll_ms,
            network: format!("{:?}", self.network).to_lowercase(),
            root,
            relayer,
            workers,
            settlements: state.settlements.clone(),
        })
    }

    async fn root_view(&self) -> anyhow::Result<RootView> {
        let root = RootClient::at(&self.chain, self.root.clone());
        let p = root.params().await.context("reading Root's parameters")?;
        let policy = root.policy().await.context("reading Root's policy")?;
        let models = root.models().await.context("reading Root's models")?;
        let params = BTreeMap::from([
            ("min_stake_nanoton", p.min_stake.to_string()),
            ("unbonding_delay_s", p.unbonding_delay.to_string()),
            ("grace_period_s", p.grace_period.to_string()),
            ("relayer_fee_cap_bps", p.relayer_fee_cap_bps.to_string()),
            ("protocol_fee_bps", p.protocol_fee_bps.to_string()),
            ("reporter_reward_bps", p.reporter_reward_bps.to_string()),
            ("treasury", self.friendly(&p.treasury)),
        ]);
        Ok(RootView {
            address: self.friendly(&self.root),
            version: 1,
            params,
            allowed_kinds: (0..3u8)
                .filter(|k| policy.allowed_kinds & (1 << k) != 0)
                .map(kind_name)
                .collect(),
            measurements: policy.measurements.iter().map(hex::encode).collect(),
            models: models
                .iter()
                .map(|(id, hash)| ModelRow {
                    id: *id,
                    name: model_name(*id),
                    hash: hex::encode(hash),
                })
                .collect(),
            queued_changes: Vec::new(),
        })
    }

    async fn relayer_view(&self) -> RelayerView {
        match self.relayer.health().await {
            Ok(h) => RelayerView {
                url: self.relayer_url.clone(),
                ok: h.status == "ok",
                status: h.status,
                workers: h.workers,
                relayer_id: h.relayer_id,
                chain: h.chain,
            },
            Err(e) => RelayerView {
                url: self.relayer_url.clone(),
                ok: false,
                status: format!("unreachable: {e}"),
                workers: 0,
                relayer_id: String::new(),
                chain: None,
            },
        }
    }

    /// A worker's row from what the relayer said of it and what was read on-chain.
    pub(super) fn row(&self, k: &Known, connected: bool, onchain: Option<OnChainRow>) -> WorkerRow {
        let o = onchain.unwrap_or_default();
        WorkerRow {
            address: self.friendly(&k.address),
            owner: o.owner,
            attestation: kind_name(o.kind),
            unattested: o.kind == 0,
            measurement: o.measurement,
            attestation_expires_at: o.expires_at,
            models: o.models,
            price_in: o.price_in,
            price_out: o.price_out,
            stake: o.stake,
            earned: o.earned,
            status: o.status,
            connected,
            healthy: connected && k.healthy,
            load: if connected { k.load } else { 0 },
            capacity: k.capacity,
            last_seen: k.last_seen,
        }
    }

    async fn worker_row(&self, k: &Known, connected: bool) -> WorkerRow {
        let onchain = read_worker(&self.chain, &k.address).await;
        if let Err(e) = &onchain {
            debug!(target: "cli::dashboard", worker = %k.address, error = %e, "reading a Worker failed");
        }
        let onchain = onchain.ok().flatten().map(|w| OnChainRow {
            owner: Some(self.friendly(&w.state.owner)),
            kind: w.record.kind,
            measurement: hex::encode(w.record.measurement),
            expires_at: w.record.expires_at,
            models: w.record.models.iter().map(|m| model_name(*m)).collect(),
            price_in: w.record.price_in.to_string(),
            price_out: w.record.price_out.to_string(),
            stake: w.state.stake.to_string(),
            earned: w.state.earned.to_string(),
            status: status_name(w.state.status),
        });
        self.row(k, connected, onchain)
    }

    /// Settlements in the Worker's transactions after `after_lt`, and the lt read up to.
    async fn scan(&self, worker: &TonAddress, mut after_lt: u64) -> (Vec<SettlementPoint>, u64) {
        let mut points = Vec::new();
        loop {
            let txs = match self.chain.transactions(worker, after_lt, PAGE).await {
                Ok(t) => t,
                Err(e) => {
                    debug!(target: "cli::dashboard", %worker, error = %e, "reading transactions failed");
                    return (points, after_lt);
                }
            };
            let n = txs.len();
            for tx in &txs {
                after_lt = after_lt.max(tx.id.lt);
                points.extend(self.settlements_in(worker, tx));
            }
            if n < PAGE as usize {
                return (points, after_lt);
            }
        }
    }

    fn settlements_in(&self, worker: &TonAddress, tx: &Transaction) -> Vec<SettlementPoint> {
        if tx.failed() {
            return Vec::new();
        }
        let settles: Vec<Settle> = tx
            .out_msgs
            .iter()
            .filter(|m| m.opcode == Some(Settle::OP))
            .filter_map(|m| m.body.as_ref().and_then(|b| Settle::from_cell(b).ok()))
            .collect();
        if settles.is_empty() {
            return Vec::new();
        }
        let receipts: BTreeMap<[u8; 32], (u32, u32)> = tx
            .in_msg
            .as_ref()
            .filter(|m| m.opcode == Some(SubmitReceipts::OP))
            .and_then(|m| m.body.as_ref())
            .and_then(|b| SubmitReceipts::from_cell(b).ok())
            .map(|s| {
                s.receipts
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r.body.signing_hash().ok()?,
                            (r.body.tokens_in, r.body.tokens_out),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fee_share = tx.total_fees / settles.len() as u128;
        settles
            .into_iter()
            .map(|s| {
                let (tokens_in, tokens_out) =
                    receipts.get(&s.receipt_hash).copied().unwrap_or_default();
                SettlementPoint {
                    time: tx.now,
                    worker: self.friendly(worker),
                    job_id: Some(s.job_id),
                    channel_id: None,
                    escrow: None,
                    seq: None,
                    is_final: false,
                    requests: 1,
                    cost: s.cost.to_string(),
                    tokens_in,
                    tokens_out,
                    fees: fee_share.to_string(),
                    tx: hex::encode(tx.id.hash),
                }
            })
            .collect()
    }
}
