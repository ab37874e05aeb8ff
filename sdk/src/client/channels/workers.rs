//! Which workers a channel may be opened with, and how long that answer holds.
//!
//! A worker passes the same checks as in per-job mode ([`crate::client::check_worker`]) against
//! its Worker v2 record: genuine (at Root's derived address), active, staked at least Root's
//! minimum, the relayer's keys equal the chain's, serves the model, attestation unexpired, its
//! evidence hashes to the on-chain hash, verifies under the policy and binds the on-chain keys,
//! address and nonce. The answer is cached until the attestation expires or the worker's record
//! changes (the relayer lists other keys, evidence or prices, or one of its receipts fails the
//! signature check); no chain read is made for a cached worker.

use std::collections::{BTreeSet, HashMap};

use crate::attest::{EvidenceKind, Policy, RecordedAttestation, Verified};
use crate::chain::{ChainApi, ChainError};
use crate::client::workers::{RecordedKeys, verify_listed_evidence};
use crate::contracts::ContractError;
use crate::contracts::v2::{WorkerClient, WorkerRecordView, WorkerState, worker_address};
use crate::messages::v2::records::worker_status;
use crate::relay::client::WorkerInfo;
use crate::tlb::{ArcCell, TonAddress};

/// A worker whose Worker v2 record and attestation passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelWorker {
    /// Worker contract.
    pub address: TonAddress,
    /// Its owner (a channel names it).
    pub owner: TonAddress,
    /// ed25519 receipt key (on-chain).
    pub receipt_key: [u8; 32],
    /// X25519 key inputs are sealed to (on-chain).
    pub encryption_key: [u8; 32],
    /// Published price per input token (on-chain; fixed in a channel at open).
    pub price_in: u128,
    /// Published price per output token.
    pub price_out: u128,
    /// Models served (on-chain).
    pub models: BTreeSet<u32>,
    /// sha256 of its evidence.
    pub evidence_hash: [u8; 32],
    /// Attestation expiry (unix).
    pub expires_at: u32,
    /// What the evidence proved.
    pub attestation: Verified,
}

impl ChannelWorker {
    /// The TEE kind ([`EvidenceKind::Simulated`] = UNATTESTED).
    pub fn kind(&self) -> EvidenceKind {
        self.attestation.kind
    }
}

/// What a worker is checked against.
#[derive(Debug, Clone)]
pub struct WorkerCheck<'a> {
    /// The Root v2.
    pub root: &'a TonAddress,
    /// Root's Worker v2 code.
    pub worker_code: &'a ArcCell,
    /// The attestation policy.
    pub policy: &'a Policy,
    /// Root's minimum stake.
    pub min_stake: u128,
    /// Now (unix).
    pub now: u64,
}

/// Reads a Worker v2 contract: `None` when nothing there answers the Worker getters.
pub async fn read_worker_v2<C: ChainApi>(
    chain: &C,
    root: &TonAddress,
    address: &TonAddress,
) -> Result<Option<(WorkerState, WorkerRecordView)>, ContractError> {
    let w = WorkerClient::at(chain, root.clone(), address.clone());
    let state = match w.state().await {
        Ok(s) => s,
        Err(ContractError::Chain(ChainError::GetMethodFailed { .. })) => return Ok(None),
        Err(e) => return Err(e),
    };
    let record = match w.record().await {
        Ok(r) => r,
        Err(ContractError::Chain(ChainError::GetMethodFailed { .. })) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some((state, record)))
}

/// Every check of the module doc for one listed worker.
pub fn check_worker_v2(
    info: &WorkerInfo,
    address: &TonAddress,
    state: &WorkerState,
    record: &WorkerRecordView,
    cx: &WorkerCheck<'_>,
) -> Result<ChannelWorker, String> {
    if state.root != *cx.root {
        return Err(format!(
            "its Worker belongs to another Root ({})",
            state.root
        ));
    }
    let genuine = worker_address(cx.root, &state.owner, cx.worker_code)
        .map_err(|e| format!("cannot derive its address: {e}"))?;
    if genuine != *address {
        return Err(
            "not a genuine Worker contract (address differs from Root's derivation)".into(),
        );
    }
    if state.status != worker_status::ACTIVE {
        return Err(format!("worker status {} is not active", state.status));
    }
    if state.stake < cx.min_stake {
        return Err(format!(
            "stake {} below Root's minimum {}",
            state.stake, cx.min_stake
        ));
    }
    if info.receipt_key != record.receipt_key {
        return Err("the relayer's receipt key differs from the on-chain record".into());
    }
    if info.encryption_key != record.encryption_key {
        return Err("the relayer's encryption key differs from the on-chain record".into());
    }
    if u64::from(record.expires_at) <= cx.now {
        return Err(format!(
            "attestation expired at {} (now {})",
            record.expires_at, cx.now
        ));
    }
    let verified = verify_listed_evidence(
        &info.evidence,
        address,
        RecordedKeys {
            receipt_key: record.receipt_key,
            encryption_key: record.encryption_key,
            attestation: RecordedAttestation {
                kind: record.kind,
                measurement: record.measurement,
                evidence_hash: record.evidence_hash,
                expires_at: record.expires_at,
            },
        },
        cx.root,
        cx.policy,
        cx.now,
    )?;
    Ok(ChannelWorker {
        address: address.clone(),
        owner: state.owner.clone(),
        receipt_key: record.receipt_key,
        encryption_key: record.encryption_key,
        price_in: record.price_in,
        price_out: record.price_out,
        models: record.models.clone(),
        evidence_hash: record.evidence_hash,
        expires_at: record.expires_at,
        attestation: verified,
    })
}

/// What the relayer listed for a worker when it was verified: a listing that differs means the
/// record may have changed, and the worker is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    receipt_key: [u8; 32],
    encryption_key: [u8; 32],
    evidence_hash: [u8; 32],
    expires_at: u32,
    prices: (u64, u64),
}

impl Listed {
    fn of(info: &WorkerInfo) -> Self {
        Self {
            receipt_key: info.receipt_key,
            encryption_key: info.encryption_key,
            evidence_hash: info.evidence_hash,
            expires_at: info.attestation_expires_at,
            prices: (info.price_in, info.price_out),
        }
    }
}

/// Verified workers by address.
#[derive(Debug, Default)]
pub struct WorkerCache {
    entries: HashMap<TonAddress, (ChannelWorker, Listed)>,
    chain_reads: u64,
}

impl WorkerCache {
    /// The cached worker at `address`, while its attestation holds at `now`.
    pub fn get(&self, address: &TonAddress, now: u64) -> Option<&ChannelWorker> {
        self.entries
            .get(address)
            .map(|(w, _)| w)
            .filter(|w| u64::from(w.expires_at) > now)
    }

    /// The cached worker for a listing, when the listing is unchanged and the attestation holds.
    pub fn fresh(
        &self,
        info: &WorkerInfo,
        address: &TonAddress,
        now: u64,
    ) -> Option<&ChannelWorker> {
        self.entries
            .get(address)
            .filter(|(w, l)| *l == Listed::of(info) && u64::from(w.expires_at) > now)
            .map(|(w, _)| w)
    }

    /// Records a verified worker (after a chain read).
    pub fn insert(&mut self, info: &WorkerInfo, worker: ChannelWorker) {
        self.chain_reads += 1;
        self.entries
            .insert(worker.address.clone(), (worker, Listed::of(info)));
    }

    /// Forgets a worker (one of its receipts failed the signature check: its key may have
    /// rotated), so it is read again.
    pub fn forget(&mut self, address: &TonAddress) {
        self.entries.remove(address);
    }

    /// How many workers were read from the chain and verified so far.
    pub fn verifications(&self) -> u64 {
        self.chain_reads
    }
}
