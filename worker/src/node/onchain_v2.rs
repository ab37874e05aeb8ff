//! The node's Worker v2 record (protocol v2, payment channels): the same start-up rule as v1
//! ([`super::onchain`]) over Worker v2's getters — the record active and describing exactly this
//! node's keys, prices, models and evidence, its attestation unexpired — so the relayer, which
//! admits v2 workers by these records, accepts the node.

use std::collections::BTreeMap;

use cocoon_sdk::chain::{AccountStatus, ChainApi, TonCenterClient};
use cocoon_sdk::contracts::WorkerRecordView;
use cocoon_sdk::contracts::v2::{RootClient, WorkerClient};
use cocoon_sdk::messages::v2::records::{Attestation, WorkerRecord, worker_status};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{MessageSender as _, SendOptions, ServiceSender};
use tracing::info;

use super::NodeConfig;
use super::error::{NodeError, Result};
use super::models::check_registered;
use super::onchain::{
    NodeEvidence, RegisterOutcome, VerifiedWorker, attest, await_attestation, chain_now,
    differences, evidence_for, node_policy, record_changes, renewal_evidence, save_evidence,
    served_ids, status_name,
};

/// The registry hashes of the served models in the Root v2's registry (absent ones left out).
pub(crate) async fn served_registry(
    chain: &TonCenterClient,
    cfg: &NodeConfig,
) -> Result<BTreeMap<u32, [u8; 32]>> {
    let root = RootClient::at(chain, cfg.root.clone());
    let mut out = BTreeMap::new();
    for m in &cfg.models {
        if let Some(h) = root.model(m.spec.id).await? {
            out.insert(m.spec.id, h);
        }
    }
    Ok(out)
}

/// Security rule (as v1): serve only when the Worker v2 record describes exactly this node.
pub(crate) async fn verify_own_record(
    chain: &TonCenterClient,
    cfg: &NodeConfig,
) -> Result<VerifiedWorker> {
    let root = RootClient::at(chain, cfg.root.clone());
    let address = root.worker_address(&cfg.owner()?).await?;
    let not_registered = || NodeError::NotRegistered {
        address: address.to_hex(),
    };
    if chain.account(&address).await?.status != AccountStatus::Active {
        return Err(not_registered());
    }
    let worker = WorkerClient::at(chain, cfg.root.clone(), address.clone());
    let state = worker.state().await?;
    if matches!(state.status, worker_status::UNINIT | worker_status::EXITED) {
        return Err(not_registered());
    }
    let record = view(worker.record().await?);
    let mut diffs = Vec::new();
    if state.status != worker_status::ACTIVE {
        diffs.push(format!("status: {}, not active", status_name(state.status)));
    }
    diffs.extend(differences(cfg, &record, false));
    let now = chain_now(chain, &cfg.root).await?;
    if record.expires_at <= now {
        diffs.push(format!(
            "attestation expired at {} (chain time {now})",
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
    if diffs.is_empty() {
        let policy = node_policy(chain, cfg).await?;
        match evidence_for(cfg, &address, &record, &policy).await {
            Ok(evidence) => {
                return Ok(VerifiedWorker {
                    address,
                    record,
                    evidence,
                });
            }
            Err(e) => diffs.push(e),
        }
    }
    Err(NodeError::RecordMismatch {
        address: address.to_hex(),
        differences: diffs,
    })
}

fn view(r: cocoon_sdk::contracts::v2::WorkerRecordView) -> WorkerRecordView {
    WorkerRecordView {
        receipt_key: r.receipt_key,
        encryption_key: r.encryption_key,
        price_in: r.price_in,
        price_out: r.price_out,
        models: r.models,
        kind: r.kind,
        measurement: r.measurement,
        evidence_hash: r.evidence_hash,
        expires_at: r.expires_at,
    }
}

/// Renews the attestation of a serving node on its Worker v2, as
/// [`super::onchain::renew_attestation`] does on v1: fresh evidence bound to a new expiry, an
/// update of the record that changes nothing else (keys stay, so the channel ledger and every
/// receipt already signed stay valid). Returns once the chain holds it.
pub(crate) async fn renew_attestation(
    chain: &TonCenterClient,
    cfg: &NodeConfig,
    sender: &ServiceSender,
    address: &TonAddress,
) -> Result<NodeEvidence> {
    let worker = WorkerClient::at(chain, cfg.root.clone(), address.clone());
    let record = view(worker.record().await?);
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
        .update_record(sender, updated, &SendOptions::default())
        .await?;
    await_attestation(address, &ev, || async {
        let r = worker.record().await?;
        Ok((r.evidence_hash, r.expires_at))
    })
    .await?;
    Ok(ev)
}

/// Registers this node's Worker v2 through the Root v2 (with `cfg.stake`), or updates its record
/// when it differs or its attestation is about to expire; sends nothing when it already matches.
pub(crate) async fn register(chain: &TonCenterClient, cfg: &NodeConfig) -> Result<RegisterOutcome> {
    let registry = served_registry(chain, cfg).await?;
    for m in &cfg.models {
        check_registered(&m.spec, &registry)?;
    }
    let root_policy = RootClient::at(chain, cfg.root.clone()).policy().await?;
    let kind = cfg.attestation.kind();
    if root_policy.allowed_kinds & (1 << kind.code()) == 0 {
        return Err(NodeError::Config(format!(
            "Root does not accept {kind} attestation (allowed kinds mask {:#05b})",
            root_policy.allowed_kinds
        )));
    }
    let policy = node_policy(chain, cfg).await?;
    let sender = cfg.sender(chain)?;
    let address = RootClient::at(chain, cfg.root.clone())
        .worker_address(sender.address())
        .await?;
    let worker = WorkerClient::at(chain, cfg.root.clone(), address.clone());
    let now = chain_now(chain, &cfg.root).await?;
    let deployed = chain.account(&address).await?.status == AccountStatus::Active;
    let status = if deployed {
        worker.state().await?.status
    } else {
        worker_status::UNINIT
    };
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
    let opts = SendOptions::default();
    match status {
        worker_status::UNINIT | worker_status::EXITED => {
            let ev = attest(cfg, &address, expires_at, &policy).await?;
            save_evidence(cfg, &ev);
            info!(target: "worker::node", worker = %address.to_hex(), stake = cfg.stake, evidence_hash = %hex::encode(ev.hash), "registering worker v2");
            worker
                .register(&sender, cfg.stake, fresh_record(&ev), &opts)
                .await?;
            Ok(RegisterOutcome::Registered {
                worker: address,
                stake: cfg.stake,
            })
        }
        worker_status::ACTIVE => {
            let record = view(worker.record().await?);
            let changes = record_changes(cfg, &address, &record, now, &policy).await;
            if changes.is_empty() {
                return Ok(RegisterOutcome::Unchanged { worker: address });
            }
            let ev = attest(cfg, &address, expires_at, &policy).await?;
            save_evidence(cfg, &ev);
            info!(target: "worker::node", worker = %address.to_hex(), changes = ?changes, "updating worker v2 record");
            worker
                .update_record(&sender, fresh_record(&ev), &opts)
                .await?;
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
