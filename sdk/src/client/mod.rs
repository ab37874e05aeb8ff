//! The client API: everything an app needs to buy confidential inference in one object.
//!
//! ```text
//! Client::connect ── Root (params, policy, models) + relayer /health
//! client.deposit(n) ── Escrow (created through Root when missing)
//! client.open_job(model, request, options)
//!   ├─ workers: relayer list → each Worker read on-chain → evidence verified → candidates
//!   ├─ max cost ≤ free balance (checked before anything is sent)
//!   ├─ seal the request to K candidates, OpenJob on the Escrow, POST the sealed input
//!   └─ JobStream: dispatched → deltas / embeddings → receipt checked → JobResult
//! client.verify_settlement(&result) ── the Escrow's settle transaction for that receipt
//! ```
//!
//! ```no_run
//! # async fn demo(wallet: cocoon_sdk::wallet::Wallet, root: cocoon_sdk::tlb::TonAddress) -> Result<(), cocoon_sdk::client::ClientError> {
//! use cocoon_sdk::chain::TonCenterConfig;
//! use cocoon_sdk::client::{Client, ClientConfig, JobOptions, PolicyMode};
//! use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
//!
//! let mut config = ClientConfig::new(TonCenterConfig::new("http://127.0.0.1:8081"), root, "http://127.0.0.1:8480");
//! config.policy = PolicyMode::Development; // localnet: accept UNATTESTED (SIMULATED TEE) workers
//! let client = Client::connect(config, wallet).await?;
//! client.deposit(1_000_000_000).await?;
//! let request = JobRequest::chat(vec![ChatMessage::new("user", "Hi!")], GenerationParams::default());
//! let result = client.open_job("smollm2-135m-instruct", request, JobOptions::default()).await?.finish().await?;
//! println!("{} ({} nanoTON, {})", result.text, result.cost, result.attestation_kind);
//! let settlement = client.verify_settlement(&result).await?;
//! # Ok(()) }
//! ```

pub mod channels;
mod cost;
mod error;
mod job;
mod reclaim;
mod relayer;
mod settlement;
pub mod sse;
mod workers;

pub use cost::{TokenBound, cost_of, max_cost, token_bound};
pub use error::{ClientError, Result};
pub use job::{
    JobEvent, JobOptions, JobResult, JobStream, MAX_RECONNECTS, Usage, select_candidates,
};
pub use reclaim::{
    DEFAULT_RECLAIM_INTERVAL, EXPIRE_COST_PER_JOB, EXPIRE_COST_PER_TRANSFER, LockedJob,
    ReclaimOptions, ReclaimReport, Reclaimer, ReclaimerTask,
};
pub use relayer::{EventStream, RelayerApi};
pub use settlement::{SETTLEMENT_TIMEOUT, Settlement};
pub use workers::{
    CheckContext, OnChainWorker, RejectedWorker, Screened, VerifiedWorker, check_worker,
    read_worker,
};

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::attest::{EvidenceKind, Policy};
use crate::chain::{AccountStatus, ChainApi, TonCenterClient, TonCenterConfig};
use crate::contracts::{EscrowClient, Outcome, RootClient};
use crate::job::ModelSpec;
use crate::job::models::KNOWN_MODELS;
use crate::messages::records::{RootParams, RootPolicy};
use crate::relay::JobRef;
use crate::tlb::{ArcCell, TonAddress};
use crate::wallet::{SendOptions, Wallet};

/// Workers a job's input is sealed to by default (the relayer fails over among them).
pub const DEFAULT_CANDIDATES: usize = 3;
/// Default job deadline, from the moment it is opened.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
/// Default relayer fee (bps of the cost), lowered to Root's cap when that is lower.
pub const DEFAULT_RELAYER_FEE_BPS: u16 = 100;
/// How long Root's parameters, policy and models are reused before they are read again.
pub const ROOT_TTL: Duration = Duration::from_secs(30);
/// Poll interval of [`Client::wait_for_workers`].
const WAIT_POLL: Duration = Duration::from_millis(500);
/// How long the client keeps submitting an input the relayer does not know yet.
pub const DEFAULT_SUBMIT_WAIT: Duration = Duration::from_secs(60);

/// Which evidence the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyMode {
    /// SEV-SNP and TDX only, as Root allows them. Simulated evidence is always refused.
    #[default]
    Production,
    /// Also Simulated evidence, when Root's allowed kinds include it (localnet). Results from
    /// such workers are labelled `UNATTESTED (SIMULATED TEE)`. Never for mainnet.
    Development,
}

/// How to reach the network and what to accept.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The toncenter-compatible API.
    pub chain: TonCenterConfig,
    /// The network's Root.
    pub root: TonAddress,
    /// `http://host:port` of the relayer's client API.
    pub relayer_url: String,
    /// Evidence accepted.
    pub policy: PolicyMode,
    /// Accept only workers whose evidence carries NVIDIA GPU evidence that verifies and is bound
    /// to their report (`--require-gpu-attestation`).
    pub require_gpu: bool,
    /// Workers to seal each input to.
    pub candidates: usize,
    /// Job deadline.
    pub deadline: Duration,
    /// Relayer fee named in OpenJob (bps), capped at Root's maximum.
    pub relayer_fee_bps: u16,
    /// How long to keep submitting an input the relayer has not yet seen opened on-chain.
    pub submit_wait: Duration,
    /// How transfers are sent and confirmed.
    pub send: SendOptions,
}

impl ClientConfig {
    /// A production config with the default candidates, deadline and fees.
    pub fn new(chain: TonCenterConfig, root: TonAddress, relayer_url: impl Into<String>) -> Self {
        Self {
            chain,
            root,
            relayer_url: relayer_url.into(),
            policy: PolicyMode::Production,
            require_gpu: false,
            candidates: DEFAULT_CANDIDATES,
            deadline: DEFAULT_DEADLINE,
            relayer_fee_bps: DEFAULT_RELAYER_FEE_BPS,
            submit_wait: DEFAULT_SUBMIT_WAIT,
            send: SendOptions::default(),
        }
    }
}

/// An Escrow's funds, nanoTON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct EscrowBalance {
    /// Available for new jobs and withdrawal.
    pub free: u128,
    /// Locked by open jobs.
    pub locked: u128,
    /// Protocol fees owed to the treasury.
    pub fees_due: u128,
    /// Everything the Escrow account holds (free + locked + fees due + storage reserve and gas
    /// leftovers).
    pub total: u128,
    /// Whether the Escrow is deployed (the first deposit creates it).
    pub exists: bool,
}

/// One model of Root's registry as the network offers it now.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOffer {
    /// Id in Root's registry.
    pub id: u32,
    /// Root's registry hash.
    pub registry_hash: [u8; 32],
    /// The sdk's description, when this sdk knows the model with this exact registry hash.
    pub spec: Option<ModelSpec>,
    /// Verified workers serving it.
    pub workers: usize,
    /// Of those, the ones the relayer reports with free capacity.
    pub available: usize,
    /// Lowest price per input token among them, nanoTON.
    pub min_price_in: Option<u128>,
    /// Lowest price per output token among them, nanoTON.
    pub min_price_out: Option<u128>,
    /// Attestation kinds among them.
    pub kinds: Vec<EvidenceKind>,
}

impl ModelOffer {
    /// The model's name (`model-<id>` when this sdk does not know it).
    pub fn name(&self) -> String {
        self.spec
            .map(|s| s.name.to_owned())
            .unwrap_or_else(|| format!("model-{}", self.id))
    }
}

/// Root as last read.
#[derive(Debug, Clone)]
struct RootView {
    params: RootParams,
    policy: Policy,
    models: BTreeMap<u32, [u8; 32]>,
    worker_code: ArcCell,
    read_at: Instant,
}

/// State shared by a [`Client`] and the jobs it opened.
#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    chain: TonCenterClient,
    wallet: Wallet,
    relayer: RelayerApi,
    relayer_id: TonAddress,
    escrow: TonAddress,
    root: Mutex<RootView>,
    /// Serialises the wallet's transfers (one seqno at a time) and job id allocation; holds the
    /// next job id this client will use, at least.
    sending: tokio::sync::Mutex<u64>,
}

/// A connected client: one wallet, its Escrow, one Root and one relayer. Cheap to clone; clones
/// share the wallet's send queue, so concurrent jobs never reuse a seqno or a job id.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Reads Root (parameters, policy, models, codes), asks the relayer who it is (`/health`),
    /// and derives the wallet's Escrow address.
    pub async fn connect(config: ClientConfig, wallet: Wallet) -> Result<Client> {
        let chain = TonCenterClient::new(config.chain.clone())?;
        // Reads of this client's jobs are signed with a key derived from the wallet's, so only
        // this client (or the relayer's operator) can follow them.
        let relayer = RelayerApi::new(&config.relayer_url)?
            .with_reader(wallet.derived_key(crate::relay::read_auth::READER_KEY_DOMAIN));
        let root = read_root(&chain, &config.root, config.policy, config.require_gpu).await?;
        let health = relayer.health().await?;
        if health.relayer_id.is_empty() {
            return Err(ClientError::BadResponse(
                "the relayer names no identity in /health (it runs without a chain wallet)".into(),
            ));
        }
        let relayer_id = TonAddress::from_str(&health.relayer_id).map_err(|e| {
            ClientError::BadResponse(format!(
                "relayer_id {:?} is not an address: {e}",
                health.relayer_id
            ))
        })?;
        let escrow = RootClient::at(&chain, config.root.clone())
            .escrow_address(wallet.address())
            .await?;
        info!(target: "sdk::client", root = %config.root, relayer = %relayer_id, %escrow, policy = %root.policy, "connected");
        Ok(Client {
            inner: Arc::new(Inner {
                relayer,
                relayer_id,
                escrow,
                root: Mutex::new(root),
                sending: tokio::sync::Mutex::new(0),
                chain,
                wallet,
                config,
            }),
        })
    }

    /// The client's Escrow (deployed by the first deposit).
    pub fn escrow_address(&self) -> &TonAddress {
        &self.inner.escrow
    }

    /// The client's wallet.
    pub fn wallet_address(&self) -> &TonAddress {
        self.inner.wallet.address()
    }

    /// The relayer's on-chain identity (its wallet), named in every OpenJob.
    pub fn relayer_id(&self) -> &TonAddress {
        &self.inner.relayer_id
    }

    /// The configuration it was connected with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The chain client it uses.
    pub fn chain(&self) -> &TonCenterClient {
        &self.inner.chain
    }

    /// The relayer API client it uses.
    pub fn relayer(&self) -> &RelayerApi {
        &self.inner.relayer
    }

    async fn escrow_client(&self) -> Result<EscrowClient<'_, TonCenterClient>> {
        Ok(EscrowClient::for_owner(
            &self.inner.chain,
            &self.inner.config.root,
            self.inner.wallet.address(),
        )
        .await?)
    }

    /// Deposits `nano` into the Escrow, creating it through Root when it does not exist yet.
    pub async fn deposit(&self, nano: u128) -> Result<Outcome> {
        let escrow = self.escrow_client().await?;
        let _send = self.inner.sending.lock().await;
        let out = escrow
            .deposit(&self.inner.wallet, nano, &self.inner.config.send)
            .await?;
        info!(target: "sdk::client", nano = %nano, escrow = %self.inner.escrow, "deposited");
        Ok(out)
    }

    /// Withdraws `nano` of the free balance to the wallet.
    pub async fn withdraw(&self, nano: u128) -> Result<Outcome> {
        let escrow = self.escrow_client().await?;
        let _send = self.inner.sending.lock().await;
        let out = escrow
            .withdraw(&self.inner.wallet, nano, &self.inner.config.send)
            .await?;
        info!(target: "sdk::client", nano = %nano, escrow = %self.inner.escrow, "withdrew");
        Ok(out)
    }

    /// Free, locked and total funds of the Escrow (all zero before the first deposit).
    pub async fn balance(&self) -> Result<EscrowBalance> {
        let account = self.inner.chain.account(&self.inner.escrow).await?;
        if account.status != AccountStatus::Active {
            return Ok(EscrowBalance {
                total: account.balance,
                ..EscrowBalance::default()
            });
        }
        let st = self.escrow_client().await?.state().await?;
        Ok(EscrowBalance {
            free: st.free,
            locked: st.locked,
            fees_due: st.fees_due,
            total: account.balance,
            exists: true,
        })
    }

    /// Refunds an expired job on-chain (Escrow `expire_job`; accepted after its deadline plus
    /// Root's grace period), returning its locked funds to the free balance.
    pub async fn expire(&self, job: &JobRef) -> Result<Outcome> {
        let escrow = self.escrow_client().await?;
        if job.escrow != self.inner.escrow.to_hex() {
            return Err(ClientError::BadResponse(format!(
                "job {job} is not on this client's Escrow"
            )));
        }
        let _send = self.inner.sending.lock().await;
        Ok(escrow
            .expire(&self.inner.wallet, job.job_id, &self.inner.config.send)
            .await?)
    }

    /// Where the relayer says a job stands (`opened`, `input_received`, `dispatched`,
    /// `answered`, `receipt_queued`, `settled`, `expired`, `failed`) and why.
    pub async fn job_status(&self, job: &JobRef) -> Result<crate::relay::client::JobStatus> {
        self.inner.relayer.job_status(job).await
    }

    /// Every model of Root's registry with the verified workers serving it and their lowest
    /// prices.
    pub async fn models(&self) -> Result<Vec<ModelOffer>> {
        let root = self.root_view(false).await?;
        let listed = self.inner.relayer.workers(None).await?;
        let screened = self.screen(&root, listed.workers, None).await?;
        Ok(root
            .models
            .iter()
            .map(|(&id, &hash)| {
                let spec = KNOWN_MODELS
                    .iter()
                    .find(|m| m.id == id && m.registry_hash() == hash)
                    .copied();
                let serving: Vec<_> = screened
                    .verified
                    .iter()
                    .filter(|w| w.models.contains(&id))
                    .collect();
                let mut kinds: Vec<_> = serving.iter().map(|w| w.kind()).collect();
                kinds.sort();
                kinds.dedup();
                ModelOffer {
                    id,
                    registry_hash: hash,
                    spec,
                    workers: serving.len(),
                    available: serving.iter().filter(|w| w.has_capacity()).count(),
                    min_price_in: serving.iter().map(|w| w.price_in).min(),
                    min_price_out: serving.iter().map(|w| w.price_out).min(),
                    kinds,
                }
            })
            .collect())
    }

    /// The verified workers serving `model`, in the relayer's order (best first). When the
    /// relayer lists workers and none passes, [`ClientError::AttestationRejected`] says why the
    /// first did not.
    pub async fn workers(&self, model: &ModelSpec) -> Result<Vec<VerifiedWorker>> {
        let root = self.root_view(false).await?;
        self.screen_model(&root, model.id).await?.into_verified()
    }

    /// Waits up to `timeout` until at least one verified worker serves `model` (a worker node
    /// that just started needs a moment to register and connect to the relayer). On timeout,
    /// the last refusal: [`ClientError::AttestationRejected`] when listed workers failed the
    /// checks, else [`ClientError::NoWorker`].
    pub async fn wait_for_workers(
        &self,
        model: &ModelSpec,
        timeout: Duration,
    ) -> Result<Vec<VerifiedWorker>> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let last = match self.workers(model).await {
                Ok(ws) if !ws.is_empty() => return Ok(ws),
                Ok(_) => ClientError::NoWorker {
                    model: model.name.to_owned(),
                    reason: "no attested worker serves it".into(),
                },
                Err(
                    e @ (ClientError::AttestationRejected { .. }
                    | ClientError::RelayerUnreachable(_)),
                ) => e,
                Err(e) => return Err(e),
            };
            if tokio::time::Instant::now() + WAIT_POLL > until {
                return Err(last);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Lists and checks the relayer's workers for one model.
    async fn screen_model(&self, root: &RootView, model: u32) -> Result<Screened> {
        let listed = self.inner.relayer.workers(Some(model)).await?;
        self.screen(root, listed.workers, Some(model)).await
    }

    async fn screen(
        &self,
        root: &RootView,
        listed: Vec<crate::relay::client::WorkerInfo>,
        model: Option<u32>,
    ) -> Result<Screened> {
        let chain_now = self
            .inner
            .chain
            .account(&self.inner.config.root)
            .await?
            .sync_utime;
        let now = chain_now.max(root.policy.now_unix());
        let cx = CheckContext {
            root: &self.inner.config.root,
            worker_code: &root.worker_code,
            policy: &root.policy,
            min_stake: root.params.min_stake,
            now,
            model,
        };
        // Every listed worker is read at once: the chain round trips dominate.
        let reads = listed.iter().map(|info| async move {
            let address =
                TonAddress::from_str(&info.worker).map_err(|e| format!("not an address: {e}"))?;
            match read_worker(&self.inner.chain, &address).await {
                Ok(Some(w)) => Ok(Ok((address, w))),
                Ok(None) => Err("no initialised Worker contract there".to_owned()),
                Err(e) => Ok(Err(e)),
            }
        });
        let reads = futures_util::future::join_all(reads).await;
        let mut out = Screened::default();
        for (info, read) in listed.iter().zip(reads) {
            let checked = match read {
                Ok(Ok((address, onchain))) => check_worker(info, &address, &onchain, &cx),
                // A chain failure is not the worker's fault: report it, do not reject.
                Ok(Err(e)) => return Err(e),
                Err(reason) => Err(reason),
            };
            match checked {
                Ok(w) => {
                    debug!(target: "sdk::client", worker = %w.address, kind = %w.kind(), "worker verified");
                    out.verified.push(w);
                }
                Err(reason) => {
                    tracing::warn!(target: "sdk::client", worker = %info.worker, %reason, "worker refused");
                    out.rejected.push(RejectedWorker {
                        worker: info.worker.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Root's parameters, policy and models, read again when older than [`ROOT_TTL`] or when
    /// `force`d.
    async fn root_view(&self, force: bool) -> Result<RootView> {
        {
            let cached = self.inner.root.lock().unwrap_or_else(|e| e.into_inner());
            if !force && cached.read_at.elapsed() < ROOT_TTL {
                return Ok(cached.clone());
            }
        }
        let fresh = read_root(
            &self.inner.chain,
            &self.inner.config.root,
            self.inner.config.policy,
            self.inner.config.require_gpu,
        )
        .await?;
        *self.inner.root.lock().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    /// The model named `model` (a known name, case-insensitive, or a registry id), registered in
    /// Root with this sdk's registry hash.
    pub async fn resolve_model(&self, model: &str) -> Result<ModelSpec> {
        let spec = match model.parse::<u32>() {
            Ok(id) => ModelSpec::by_id(id),
            Err(_) => ModelSpec::by_name(model),
        }
        .map_err(|_| ClientError::UnknownModel(model.to_owned()))?;
        for force in [false, true] {
            let root = self.root_view(force).await?;
            if root.models.get(&spec.id) == Some(&spec.registry_hash()) {
                return Ok(*spec);
            }
        }
        Err(ClientError::UnknownModel(format!(
            "{model} (Root does not register {}@{} under id {})",
            spec.name, spec.revision, spec.id
        )))
    }
}

async fn read_root(
    chain: &TonCenterClient,
    address: &TonAddress,
    mode: PolicyMode,
    require_gpu: bool,
) -> Result<RootView> {
    let root = RootClient::at(chain, address.clone());
    let params = root.params().await?;
    let view = root.policy().await?;
    let policy = RootPolicy {
        allowed_kinds: view.allowed_kinds,
        measurements: view.measurements,
    };
    let policy = match mode {
        PolicyMode::Production => Policy::from_root(&policy),
        PolicyMode::Development => Policy::development_from_root(&policy),
    }
    .require_gpu(require_gpu);
    let models = root.models().await?;
    let (worker_code, _) = root.codes().await?;
    Ok(RootView {
        params,
        policy,
        models,
        worker_code,
        read_at: Instant::now(),
    })
}
