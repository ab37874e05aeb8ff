//! The node's Worker contract: the record it should hold, registration through Root, and the
//! check at start-up that the chain describes exactly this node.
//!
//! The attestation binds the node's keys, its Worker address and a chain nonce
//! ([`cocoon_sdk::attest::attestation_nonce`] of Root and the attestation expiry), so a client
//! that reads Root and the Worker record can recompute REPORT_DATA without asking the worker.

use std::collections::BTreeSet;

use cocoon_sdk::attest::{
    Evidence, EvidenceKind, Policy, WorkerBinding, attestation_nonce, verify_worker,
};
use cocoon_sdk::chain::{AccountStatus, ChainApi, TonCenterClient};
use cocoon_sdk::contracts::{RootClient, WorkerClient, WorkerRecordView, attestation_policy};
use cocoon_sdk::messages::records::{Attestation, WorkerRecord, worker_status};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{MessageSender as _, SendOptions, ServiceSender};
use tracing::{info, warn};

use super::NodeConfig;
use super::error::{NodeError, Result};
use super::models::check_registered;

/// Lifetime of a fresh attestation, seconds: the node re-attests before it ends.
pub const DEFAULT_ATTESTATION_TTL: u32 = 7 * 24 * 3600;
/// `register` and the serving node renew an attestation that expires within this many seconds.
pub const RENEW_BEFORE: u32 = 24 * 3600;

/// What `register` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A new Worker was deployed through Root with the stake.
    Registered {
        /// The Worker address.
        worker: TonAddress,
        /// Stake sent, nanoTON.
        stake: u128,
    },
    /// The existing Worker was updated (new keys, models, prices or attestation).
    Updated {
        /// The Worker address.
        worker: TonAddress,
        /// What changed, one line per field.
        changes: Vec<String>,
    },
    /// The record already describes this node: nothing was sent.
    Unchanged {
        /// The Worker address.
        worker: TonAddress,
    },
}

impl RegisterOutcome {
    /// The Worker address.
    pub fn worker(&self) -> &TonAddress {
        match self {
            Self::Registered { worker, .. }
            | Self::Updated { worker, .. }
            | Self::Unchanged { worker } => worker,
        }
    }
}

/// Evidence bound to this node, and what a Worker record says about it.
#[derive(Debug, Clone)]
pub struct NodeEvidence {
    /// The evidence.
    pub evidence: Evidence,
    /// Its canonical encoding (what the relayer hands to clients).
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub hash: [u8; 32],
    /// Measurement id recorded on-chain.
    pub measurement: [u8; 32],
    /// The expiry it is bound to.
    pub expires_at: u32,
}

/// The chain time (Root's last sync time), so a localnet whose clock moved is respected.
pub(crate) async fn chain_now<C: ChainApi>(chain: &C, root: &TonAddress) -> Result<u32> {
    Ok(u32::try_from(chain.account(root).await?.sync_utime).unwrap_or(u32::MAX))
}

/// The policy this node's evidence must pass, as clients read it from Root (on a v2 Root with its
/// TEE policy): development only for a simulated TEE.
pub(crate) async fn node_policy<C: ChainApi>(chain: &C, cfg: &NodeConfig) -> Result<Policy> {
    let development = cfg.attestation.kind() == EvidenceKind::Simulated;
    Ok(attestation_policy(chain, &cfg.root, development).await?)
}

fn binding(cfg: &NodeConfig, worker: &TonAddress, expires_at: u32) -> Result<WorkerBinding> {
    Ok(WorkerBinding {
        receipt_key: cfg.keys.receipt_key(),
        encryption_key: cfg.keys.encryption_key(),
        worker: worker.clone(),
        chain_nonce: attestation_nonce(&cfg.root, expires_at)?,
        gpu_evidence_hash: None,
    })
}

/// Checks evidence the way a client will (vendor chain, Root's policy, binding) and describes it.
fn describe(
    cfg: &NodeConfig,
    worker: &TonAddress,
    evidence: Evidence,
    expires_at: u32,
    policy: &Policy,
) -> Result<NodeEvidence> {
    let b = binding(cfg, worker, expires_at)?;
    let verified = verify_worker(&evidence, policy, &b)?;
    let bytes = evidence.encode();
    Ok(NodeEvidence {
        hash: verified.evidence_hash,
        measurement: verified.measurement_id(),
        evidence,
        bytes,
        expires_at,
    })
}

/// Fresh evidence from the provider, bound to `expires_at`.
pub(crate) async fn attest(
    cfg: &NodeConfig,
    worker: &TonAddress,
    expires_at: u32,
    policy: &Policy,
) -> Result<NodeEvidence> {
    let mut bound = binding(cfg, worker, expires_at)?;
    let gpu = match cfg.gpu.clone() {
        Some(gpu) => {
            let nonce = bound.gpu_nonce()?;
            let evidence = tokio::task::spawn_blocking(move || gpu.collect(&nonce))
                .await
                .map_err(|e| NodeError::Config(format!("GPU attestation task failed: {e}")))??;
            bound.gpu_evidence_hash = Some(evidence.hash());
            Some(evidence)
        }
        None => None,
    };
    let report_data = bound.report_data()?;
    let provider = cfg.attestation.clone();
    if provider.kind() == EvidenceKind::Simulated {
        warn!(target: "worker::node", "UNATTESTED (SIMULATED TEE): this worker runs outside any TEE; only development Roots accept it");
    }
    let evidence = tokio::task::spawn_blocking(move || provider.attest(&report_data))
        .await
        .map_err(|e| NodeError::Config(format!("attestation task failed: {e}")))?
        .map_err(NodeError::from_attest)?;
    let evidence = match gpu {
        Some(gpu) => Evidence::with_gpu(evidence, gpu)?,
        None => evidence,
    };
    describe(cfg, worker, evidence, expires_at, policy)
}

/// The evidence whose hash the record holds: the stored copy, or a fresh one when the provider
/// reproduces it (simulated evidence is deterministic; real reports are not, hence the file).
pub(crate) async fn evidence_for(
    cfg: &NodeConfig,
    worker: &TonAddress,
    record: &WorkerRecordView,
    policy: &Policy,
) -> std::result::Result<NodeEvidence, String> {
    if let Some(path) = cfg.keys.evidence_path()
        && let Ok(bytes) = std::fs::read(&path)
    {
        match Evidence::decode(&bytes)
            .map_err(NodeError::from)
            .and_then(|e| describe(cfg, worker, e, record.expires_at, policy))
        {
            Ok(ev) if ev.hash == record.evidence_hash => return Ok(ev),
            Ok(_) => {}
            Err(e) => {
                warn!(target: "worker::node", path = %path.display(), error = %e, "stored evidence unusable")
            }
        }
    }
    let fresh = attest(cfg, worker, record.expires_at, policy)
        .await
        .map_err(|e| format!("cannot obtain evidence: {e}"))?;
    if fresh.hash == record.evidence_hash {
        save_evidence(cfg, &fresh);
        Ok(fresh)
    } else {
        Err(format!(
            "evidence_hash: chain has {}, this node's evidence hashes to {} (re-attest with `cocoon-worker register`)",
            hex::encode(record.evidence_hash),
            hex::encode(fresh.hash)
        ))
    }
}

pub(crate) fn save_evidence(cfg: &NodeConfig, ev: &NodeEvidence) {
    if let Some(path) = cfg.keys.evidence_path()
        && let Err(e) = super::keys::write_private(&path, &ev.bytes)
    {
        warn!(target: "worker::node", path = %path.display(), error = %e, "cannot store the evidence");
    }
}

/// Fields of `record` that differ from this node (keys, prices, models). With `exact_models` the
/// record must list exactly the served models; otherwise it must include them.
pub(crate) fn differences(
    cfg: &NodeConfig,
    record: &WorkerRecordView,
    exact_models: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if record.receipt_key != cfg.keys.receipt_key() {
        out.push(format!(
            "receipt_key: chain has {}, node has {}",
            hex::encode(record.receipt_key),
            hex::encode(cfg.keys.receipt_key())
        ));
    }
    if record.encryption_key != cfg.keys.encryption_key() {
        out.push(format!(
            "encryption_key: chain has {}, node has {}",
            hex::encode(record.encryption_key),
            hex::encode(cfg.keys.encryption_key())
        ));
    }
    if record.price_in != cfg.price_in {
        out.push(format!(
            "price_in: chain has {}, node has {}",
            record.price_in, cfg.price_in
        ));
    }
    if record.price_out != cfg.price_out {
        out.push(format!(
            "price_out: chain has {}, node has {}",
            record.price_out, cfg.price_out
        ));
    }
    let served = served_ids(cfg);
    let models_differ = if exact_models {
        record.models != served
    } else {
        !served.is_subset(&record.models)
    };
    if models_differ {
        out.push(format!(
            "models: chain has {:?}, node serves {:?}",
            record.models, served
        ));
    }
    out
}

/// What differs between this node and its Worker's on-chain record (v1 or v2, as a view), or
/// why the record needs renewing: empty when the record already matches and stays valid long
/// enough.
pub(crate) async fn record_changes(
    cfg: &NodeConfig,
    address: &TonAddress,
    record: &WorkerRecordView,
    now: u32,
    policy: &Policy,
) -> Vec<String> {
    let kind = cfg.attestation.kind();
    let mut changes = differences(cfg, record, true);
    if record.kind != kind.code() {
        changes.push(format!(
            "attestation kind: chain has {}, node has {kind}",
            record.kind
        ));
    }
    if record.expires_at <= now.saturating_add(cfg.renewal.renew_before) {
        changes.push(format!(
            "attestation expires at {} (chain time {now}): renewing",
            record.expires_at
        ));
    }
    if changes.is_empty()
        && let Err(e) = evidence_for(cfg, address, record, policy).await
    {
        changes.push(e);
    }
    changes
}

pub(crate) fn served_ids(cfg: &NodeConfig) -> BTreeSet<u32> {
    cfg.models.iter().map(|m| m.spec.id).collect()
}

pub(crate) fn status_name(status: u8) -> &'static str {
    match status {
        worker_status::UNINITIALIZED => "uninitialized",
        worker_status::ACTIVE => "active",
        worker_status::UNBONDING => "unbonding",
        worker_status::SLASHED => "slashed",
        worker_status::EXITED => "exited",
        _ => "unknown",
    }
}

/// What `Node::start` learns from the chain about its own Worker.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedWorker {
    pub address: TonAddress,
    pub record: WorkerRecordView,
    pub evidence: NodeEvidence,
}

/// The Worker of this node's wallet under `cfg.root`.
pub(crate) async fn worker_address(
    chain: &TonCenterClient,
    cfg: &NodeConfig,
) -> Result<TonAddress> {
    Ok(RootClient::at(chain, cfg.root.clone())
        .worker_address(&cfg.owner()?)
        .await?)
}

/// Security rule: the node serves only when its Worker record is active and describes exactly
/// its keys, prices, models and evidence, with an unexpired attestation. Every difference is
/// reported at once.
pub(crate) async fn verify_own_record(
    chain: &TonCenterClient,
    cfg: &NodeConfig,
) -> Result<VerifiedWorker> {
    let address = worker_address(chain, cfg).await?;
    let not_registered = || NodeError::NotRegistered {
        address: address.to_hex(),
    };
    if chain.account(&address).await?.status != AccountStatus::Active {
        return Err(not_registered());
    }
    let worker = WorkerClient::for_owner(chain, &cfg.root, &cfg.owner()?).await?;
    let state = worker.state().await?;
    if matches!(
        state.status,
        worker_status::UNINITIALIZED | worker_status::EXITED
    ) {
        return Err(not_registered());
    }
    let record = worker.record().await?;
    let mut diffs = Vec::new();
    if state.status != worker_status::ACTIVE {
        diffs.push(format!("status: {}, not active", status_name(state.status)));
    }
    diffs.extend(differences(cfg, &record, false));
    let now = chain_now(chain, &cfg.root).await?;
    if record.expires_at <= now {
        diffs.push(format!(
            "attestation expired at {} (chain time {now}): re-attest with `cocoon-worker register`",
            record.expires_at
        ));
    }
    let kind = cfg.attestation.kind();
    if record.kind != kind.code() {
        diffs.push(format!(
            "attestation kind: chain has {}, this node's TEE is {kind}",
            record.kind
        ));
    }
    let policy = node_policy(chain, cfg).await?;
    let evidence = if diffs.is_empty() {
        match evidence_for(cfg, &address, &record, &policy).await {
            Ok(ev) => Some(ev),
            Err(e) => {
                diffs.push(e);
                None
            }
        }
    } else {
        None
    };
    match evidence {
        Some(evidence) if diffs.is_empty() => Ok(VerifiedWorker {
            address,
            record,
            evidence,
        }),
        _ => Err(NodeError::RecordMismatch {
            address: address.to_hex(),
            differences: diffs,
        }),
    }
}

/// Registers this node's Worker through Root (with `cfg.stake`), or updates it when the record
/// differs or its attestation is about to expire; sends nothing when it already matches.
/// On a v2 Root the Worker v2 is registered the same way (`onchain_v2`).
pub async fn register(cfg: &NodeConfig) -> Result<RegisterOutcome> {
    cfg.validate()?;
    let chain = TonCenterClient::new(cfg.chain.clone())?;
    if cocoon_sdk::contracts::detect_root_version(&chain, &cfg.root).await?
        == cocoon_sdk::contracts::RootVersion::V2
    {
        return super::onchain_v2::register(&chain, cfg).await;
    }
    let root = RootClient::at(&chain, cfg.root.clone());
    let registry = root.models().await?;
    for m in &cfg.models {
        check_registered(&m.spec, &registry)?;
    }
    let view = root.policy().await?;
    let kind = cfg.attestation.kind();
    if view.allowed_kinds & (1 << kind.code()) == 0 {
        return Err(NodeError::Config(format!(
            "Root does not accept {kind} attestation (allowed kinds mask {:#05b})",
            view.allowed_kinds
        )));
    }
    let policy = node_policy(&chain, cfg).await?;
    let sender = cfg.sender(&chain)?;
    let worker = WorkerClient::for_owner(&chain, &cfg.root, sender.address()).await?;
    let address = worker.address().clone();
    let now = chain_now(&chain, &cfg.root).await?;
    let deployed = chain.account(&address).await?.status == AccountStatus::Active;
    let status = if deployed {
        worker.state().await?.status
    } else {
        worker_status::UNINITIALIZED
    };
    let opts = SendOptions::default();
    let fresh_record = |ev: &NodeEvidence| WorkerRecord {
        receipt_key: cfg.keys.receipt_key(),
        encryption_key: cfg.keys.encryption_key(),
        price_in: cfg.price_in,
        price_out: cfg.price_out,
        models: served_ids(cfg),
        attestation: Attestation {
            kind: kind.code(),
            measurement: ev.measurement,
            evidence_hash: ev.hash,
            expires_at: ev.expires_at,
        },
    };
    let expires_at = now.saturating_add(cfg.renewal.ttl);
    match status {
        worker_status::UNINITIALIZED | worker_status::EXITED => {
            let ev = attest(cfg, &address, expires_at, &policy).await?;
            save_evidence(cfg, &ev);
            info!(target: "worker::node", worker = %address.to_hex(), stake = cfg.stake, evidence_hash = %hex::encode(ev.hash), "registering worker");
            worker
                .register(&sender, cfg.stake, fresh_record(&ev), &opts)
                .await?;
            Ok(RegisterOutcome::Registered {
                worker: address,
                stake: cfg.stake,
            })
        }
        worker_status::ACTIVE => {
            let record = worker.record().await?;
            let changes = record_changes(cfg, &address, &record, now, &policy).await;
            if changes.is_empty() {
                info!(target: "worker::node", worker = %address.to_hex(), "worker record already matches");
                return Ok(RegisterOutcome::Unchanged { worker: address });
            }
            let ev = attest(cfg, &address, expires_at, &policy).await?;
            save_evidence(cfg, &ev);
            info!(target: "worker::node", worker = %address.to_hex(), changes = ?changes, "updating worker record");
            worker.update(&sender, fresh_record(&ev), &opts).await?;
            Ok(RegisterOutcome::Updated {
                worker: address,
                changes,
            })
        }
        other => Err(NodeError::RecordMismatch {
            address: address.to_hex(),
            differences: vec![format!(
                "status: {}: this Worker cannot serve again",
                status_name(other)
            )],
        }),
    }
}

/// Renews the attestation of a serving node: fresh evidence bound to a new expiry, sent as an
/// update of the record that changes nothing but the attestation (keys stay, so the receipt
/// ledger and every receipt already signed stay valid). Returns once the chain holds it.
pub(crate) async fn renew_attestation(
    chain: &TonCenterClient,
    cfg: &NodeConfig,
    sender: &ServiceSender,
    address: &TonAddress,
) -> Result<NodeEvidence> {
    let worker = WorkerClient::for_owner(chain, &cfg.root, sender.address()).await?;
    let record = worker.record().await?;
    let ev = renewal_evidence(chain, cfg, address, &record).await?;
    let updated = WorkerRecord {
        receipt_key: record.receipt_key,
        encryption_key: record.encryption_key,
        price_in: record.price_in,
        price_out: record.price_out,
        models: record.models.clone(),
        attestation: Attestation {
            kind: cfg.attestation.kind().code(),
            measurement: ev.measurement,
            evidence_hash: ev.hash,
            expires_at: ev.expires_at,
        },
    };
    worker
        .update(sender, updated, &SendOptions::default())
        .await?;
    await_attestation(address, &ev, || async {
        let r = worker.record().await?;
        Ok((r.evidence_hash, r.expires_at))
    })
    .await?;
    Ok(ev)
}

/// The part of a renewal that is the same on every Worker version: the record (as read) must
/// still hold this node's keys; fresh evidence bound to a new expiry, saved before the update is
/// sent (if the node stops after the update lands, the next start finds the evidence whose hash
/// the chain holds).
pub(crate) async fn renewal_evidence(
    chain: &TonCenterClient,
    cfg: &NodeConfig,
    address: &TonAddress,
    record: &WorkerRecordView,
) -> Result<NodeEvidence> {
    if record.receipt_key != cfg.keys.receipt_key()
        || record.encryption_key != cfg.keys.encryption_key()
    {
        return Err(NodeError::RecordMismatch {
            address: address.to_hex(),
            differences: vec![
                "keys: the record no longer holds this node's keys; not renewing".into(),
            ],
        });
    }
    let policy = node_policy(chain, cfg).await?;
    let expires_at = chain_now(chain, &cfg.root)
        .await?
        .saturating_add(cfg.renewal.ttl);
    let ev = attest(cfg, address, expires_at, &policy).await?;
    save_evidence(cfg, &ev);
    info!(target: "worker::node::renew", worker = %address.to_hex(), old_expiry = record.expires_at, new_expiry = expires_at, evidence_hash = %hex::encode(ev.hash), "renewing attestation");
    Ok(ev)
}

/// Waits until the record read by `read` (evidence hash, expiry) holds the renewed attestation.
pub(crate) async fn await_attestation<F, Fut>(
    address: &TonAddress,
    ev: &NodeEvidence,
    read: F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<([u8; 32], u32)>>,
{
    let deadline = tokio::time::Instant::now() + RENEW_CONFIRM_TIMEOUT;
    loop {
        let (hash, expires_at) = read().await?;
        if hash == ev.hash && expires_at == ev.expires_at {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(NodeError::RecordMismatch {
                address: address.to_hex(),
                differences: vec![format!(
                    "attestation renewal sent but the record still has evidence {} expiring at {expires_at}",
                    hex::encode(hash),
                )],
            });
        }
        tokio::time::sleep(RENEW_POLL).await;
    }
}

/// How long a renewal waits for the chain to show the new record.
const RENEW_CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
const RENEW_POLL: std::time::Duration = std::time::Duration::from_millis(500);
