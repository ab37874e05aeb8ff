//! Which workers a client may seal to: every worker the relayer lists is read on-chain and its
//! evidence verified before the client trusts a single key of it.
//!
//! A worker passes when its Worker contract is genuine (at the address Root derives for its
//! owner), active and staked at least Root's minimum; the keys the relayer serves are the ones
//! on-chain; it serves the model; its attestation has not expired; the evidence the relayer serves
//! hashes to the on-chain evidence hash, verifies against the vendor roots and the policy (kind,
//! measurement allow-list, TCB), matches the on-chain record (kind, measurement), and its
//! REPORT_DATA binds the on-chain keys, the Worker address and the registration nonce
//! ([`crate::attest::attestation_nonce`]). Keys and prices are always taken from the chain,
//! never from the relayer.

use std::collections::BTreeSet;

use crate::attest::{
    Evidence, EvidenceKind, Policy, RecordedAttestation, Verified, WorkerBinding, verify_worker,
};
use crate::chain::{ChainApi, ChainError};
use crate::contracts::{StackReader, WorkerRecordView, WorkerState};
use crate::messages::records::worker_status;
use crate::relay::client::WorkerInfo;
use crate::tlb::codec::{Codec as _, SetU32};
use crate::tlb::{ArcCell, CellBuilder, TonAddress};

use super::error::{ClientError, Result};

/// A worker whose attestation and on-chain record passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedWorker {
    /// Worker contract address.
    pub address: TonAddress,
    /// Its owner's wallet.
    pub owner: TonAddress,
    /// ed25519 receipt key (on-chain).
    pub receipt_key: [u8; 32],
    /// X25519 key inputs are sealed to (on-chain).
    pub encryption_key: [u8; 32],
    /// nanoTON per input token (on-chain).
    pub price_in: u128,
    /// nanoTON per output token (on-chain).
    pub price_out: u128,
    /// Models registered on-chain.
    pub models: BTreeSet<u32>,
    /// Stake, nanoTON.
    pub stake: u128,
    /// sha256 of its evidence (on-chain and recomputed).
    pub evidence_hash: [u8; 32],
    /// When its attestation expires (unix).
    pub expires_at: u32,
    /// What the evidence proved.
    pub attestation: Verified,
    /// Jobs running now (relayer's report).
    pub load: u32,
    /// Jobs it runs at once (relayer's report).
    pub capacity: u32,
    /// Heartbeats on time (relayer's report).
    pub healthy: bool,
}

impl VerifiedWorker {
    /// The TEE kind; [`EvidenceKind::Simulated`] means UNATTESTED.
    pub fn kind(&self) -> EvidenceKind {
        self.attestation.kind
    }

    /// Whether the relayer reports room for another job.
    pub fn has_capacity(&self) -> bool {
        self.healthy && self.load < self.capacity
    }
}

/// A worker that was listed but refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedWorker {
    /// The address the relayer gave.
    pub worker: String,
    /// Why it was refused.
    pub reason: String,
}

/// The outcome of checking a relayer's list.
#[derive(Debug, Clone, Default)]
pub struct Screened {
    /// Workers that passed.
    pub verified: Vec<VerifiedWorker>,
    /// Workers that did not.
    pub rejected: Vec<RejectedWorker>,
}

impl Screened {
    /// The verified workers, or [`ClientError::AttestationRejected`] naming the first refusal
    /// when the relayer listed workers and none passed.
    pub fn into_verified(self) -> Result<Vec<VerifiedWorker>> {
        match self.rejected.first() {
            Some(first) if self.verified.is_empty() => Err(ClientError::AttestationRejected {
                worker: first.worker.clone(),
                reason: if self.rejected.len() > 1 {
                    format!(
                        "{} (and {} more refused)",
                        first.reason,
                        self.rejected.len() - 1
                    )
                } else {
                    first.reason.clone()
                },
            }),
            _ => Ok(self.verified),
        }
    }
}

/// What the chain says about one Worker contract.
#[derive(Debug, Clone, PartialEq)]
pub struct OnChainWorker {
    /// `get_worker_state`.
    pub state: WorkerState,
    /// `get_worker_record`.
    pub record: WorkerRecordView,
}

/// What a worker is checked against.
#[derive(Debug, Clone)]
pub struct CheckContext<'a> {
    /// The network's Root.
    pub root: &'a TonAddress,
    /// Root's Worker code (a genuine Worker sits at the address it derives).
    pub worker_code: &'a ArcCell,
    /// The attestation policy (from Root, in the client's mode).
    pub policy: &'a Policy,
    /// Root's minimum stake.
    pub min_stake: u128,
    /// Now (unix), the later of the chain's and the local clock.
    pub now: u64,
    /// The model the worker must serve, if any.
    pub model: Option<u32>,
}

/// Reads a Worker contract: `None` when nothing there answers the Worker getters.
pub async fn read_worker<C: ChainApi>(
    chain: &C,
    address: &TonAddress,
) -> Result<Option<OnChainWorker>> {
    let state = match chain.run_get_method(address, "get_worker_state", &[]).await {
        Ok(r) => r,
        Err(ChainError::GetMethodFailed { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut s = StackReader::new("get_worker_state", state);
    let state = WorkerState {
        root: s.address("root")?,
        owner: s.address("owner")?,
        status: s.uint("status")?,
        stake: s.uint("stake")?,
        earned: s.uint("earned")?,
        unlock_at: s.uint("unlock_at")?,
    };
    let record = match chain
        .run_get_method(address, "get_worker_record", &[])
        .await
    {
        Ok(r) => r,
        // Not initialised: no record yet.
        Err(ChainError::GetMethodFailed { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut r = StackReader::new("get_worker_record", record);
    let record = WorkerRecordView {
        receipt_key: r.bits256("receipt_key")?,
        encryption_key: r.bits256("encryption_key")?,
        price_in: r.uint("price_in")?,
        price_out: r.uint("price_out")?,
        models: models_from_root(r.maybe_cell("models")?)?,
        kind: r.uint("kind")?,
        measurement: r.bits256("measurement")?,
        evidence_hash: r.bits256("evidence_hash")?,
        expires_at: r.uint("expires_at")?,
    };
    Ok(Some(OnChainWorker { state, record }))
}

/// A `(HashmapE 32 Empty)` given as its root cell (or null) → the model ids.
fn models_from_root(root: Option<ArcCell>) -> Result<BTreeSet<u32>> {
    let tlb = |e: crate::tlb::TlbError| ClientError::Contract(e.into());
    let mut b = CellBuilder::new();
    crate::tlb::store_maybe_ref(&mut b, root.as_ref()).map_err(tlb)?;
    let cell = b.build().map_err(|e| tlb(e.into()))?;
    SetU32::load(&mut cell.parser(), "models").map_err(tlb)
}

/// Every check of the module doc, for one listed worker and what the chain says about it.
pub fn check_worker(
    info: &WorkerInfo,
    address: &TonAddress,
    onchain: &OnChainWorker,
    cx: &CheckContext<'_>,
) -> std::result::Result<VerifiedWorker, String> {
    let OnChainWorker { state, record } = onchain;
    if state.root != *cx.root {
        return Err(format!(
            "its Worker contract belongs to another Root ({})",
            state.root
        ));
    }
    let genuine = crate::contracts::worker_address(cx.root, &state.owner, cx.worker_code)
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
    if let Some(m) = cx.model
        && !record.models.contains(&m)
    {
        return Err(format!("does not serve model {m} on-chain"));
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
    Ok(VerifiedWorker {
        address: address.clone(),
        owner: state.owner.clone(),
        receipt_key: record.receipt_key,
        encryption_key: record.encryption_key,
        price_in: record.price_in,
        price_out: record.price_out,
        models: record.models.clone(),
        stake: state.stake,
        evidence_hash: record.evidence_hash,
        expires_at: record.expires_at,
        attestation: verified,
        load: info.load,
        capacity: info.capacity,
        healthy: info.healthy,
    })
}

/// What a Worker's on-chain record holds about its keys and attestation.
pub(crate) struct RecordedKeys {
    /// ed25519 receipt key.
    pub(crate) receipt_key: [u8; 32],
    /// X25519 key inputs are sealed to.
    pub(crate) encryption_key: [u8; 32],
    /// The attestation recorded with them.
    pub(crate) attestation: RecordedAttestation,
}

/// Checks the evidence the relayer lists for the Worker at `address` against its on-chain record
/// (v1 and v2 clients alike): it decodes, hashes to the recorded hash, verifies under `policy`
/// with its binding to the recorded keys (and to its GPU evidence when it serves one), and
/// matches the recorded kind, measurement and expiry.
pub(crate) fn verify_listed_evidence(
    listed: &[u8],
    address: &TonAddress,
    record: RecordedKeys,
    root: &TonAddress,
    policy: &Policy,
    now: u64,
) -> std::result::Result<Verified, String> {
    let evidence =
        Evidence::decode(listed).map_err(|e| format!("evidence does not decode: {e}"))?;
    let evidence_hash = evidence.hash();
    if evidence_hash != record.attestation.evidence_hash {
        return Err(format!(
            "evidence hash {} differs from the on-chain {}",
            hex::encode(evidence_hash),
            hex::encode(record.attestation.evidence_hash)
        ));
    }
    let binding = WorkerBinding {
        receipt_key: record.receipt_key,
        encryption_key: record.encryption_key,
        worker: address.clone(),
        chain_nonce: crate::attest::attestation_nonce(root, record.attestation.expires_at)
            .map_err(|e| format!("binding: {e}"))?,
        gpu_evidence_hash: None,
    };
    let verified = verify_worker(&evidence, policy, &binding)
        .map_err(|e| format!("evidence and its binding: {e}"))?;
    verified
        .check_record(&record.attestation, now)
        .map_err(|e| format!("on-chain record: {e}"))?;
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::measurement_id;
    use crate::contracts::{Contract, code};

    struct Fixture {
        root: TonAddress,
        code: ArcCell,
        address: TonAddress,
        info: WorkerInfo,
        onchain: OnChainWorker,
        policy: Policy,
    }

    fn fixture() -> Fixture {
        let root = TonAddress::new(0, [1u8; 32].into());
        let owner = TonAddress::new(0, [2u8; 32].into());
        let code = code(Contract::Worker).unwrap();
        let address = crate::contracts::worker_address(&root, &owner, &code).unwrap();
        let expires_at = 2_000_000_000;
        let binding = WorkerBinding {
            receipt_key: [3; 32],
            encryption_key: [4; 32],
            worker: address.clone(),
            chain_nonce: crate::attest::attestation_nonce(&root, expires_at).unwrap(),
            gpu_evidence_hash: None,
        };
        let evidence = Evidence::simulated(binding.report_data().unwrap(), "test");
        let record = WorkerRecordView {
            receipt_key: [3; 32],
            encryption_key: [4; 32],
            price_in: 10,
            price_out: 20,
            models: BTreeSet::from([1]),
            kind: 0,
            measurement: measurement_id(&[0; 48]),
            evidence_hash: evidence.hash(),
            expires_at,
        };
        let info = WorkerInfo {
            worker: address.to_hex(),
            receipt_key: [3; 32],
            encryption_key: [4; 32],
            models: vec![1],
            price_in: 10,
            price_out: 20,
            evidence: evidence.encode(),
            evidence_hash: evidence.hash(),
            attestation_kind: 0,
            attestation_expires_at: expires_at,
            load: 0,
            capacity: 4,
            healthy: true,
        };
        let state = WorkerState {
            root: root.clone(),
            owner,
            status: worker_status::ACTIVE,
            stake: 100,
            earned: 0,
            unlock_at: 0,
        };
        let policy = Policy::development([]).with_allowed_kinds_mask(0b111);
        Fixture {
            root,
            code,
            address,
            info,
            onchain: OnChainWorker { state, record },
            policy,
        }
    }

    fn check(f: &Fixture) -> std::result::Result<VerifiedWorker, String> {
        let cx = CheckContext {
            root: &f.root,
            worker_code: &f.code,
            policy: &f.policy,
            min_stake: 100,
            now: 1_900_000_000,
            model: Some(1),
        };
        check_worker(&f.info, &f.address, &f.onchain, &cx)
    }

    #[test]
    fn a_correct_simulated_worker_passes_in_development_only() {
        let f = fixture();
        let v = check(&f).unwrap();
        assert_eq!(v.kind(), EvidenceKind::Simulated);
        assert_eq!((v.price_in, v.price_out), (10, 20));
        let prod = Fixture {
            policy: Policy::production([]).with_allowed_kinds_mask(0b111),
            ..fixture()
        };
        assert!(
            check(&prod).unwrap_err().contains("SIMULATED"),
            "{:?}",
            check(&prod)
        );
    }

    #[test]
    fn each_violation_is_refused_with_its_reason() {
        type Tamper = fn(&mut Fixture);
        let cases: &[(&str, Tamper)] = &[
            ("another Root", |f| {
                f.onchain.state.root = TonAddress::new(0, [9u8; 32].into())
            }),
            ("not a genuine", |f| {
                f.onchain.state.owner = TonAddress::new(0, [9u8; 32].into())
            }),
            ("not active", |f| {
                f.onchain.state.status = worker_status::UNBONDING
            }),
            ("below Root's minimum", |f| f.onchain.state.stake = 99),
            ("receipt key differs", |f| f.info.receipt_key = [5; 32]),
            ("encryption key differs", |f| {
                f.info.encryption_key = [5; 32]
            }),
            ("does not serve model 1", |f| {
                f.onchain.record.models = BTreeSet::from([2])
            }),
            ("expired", |f| f.onchain.record.expires_at = 1_900_000_000),
            ("does not decode", |f| f.info.evidence = vec![1, 2, 3]),
            ("differs from the on-chain", |f| {
                f.onchain.record.evidence_hash = [0xee; 32]
            }),
            ("on-chain record", |f| {
                f.onchain.record.measurement = [7; 32]
            }),
            ("binding", |f| {
                // Evidence bound to other keys, registered honestly under its own hash.
                let ev = Evidence::simulated([0x55; 64], "other");
                f.onchain.record.evidence_hash = ev.hash();
                f.info.evidence = ev.encode();
            }),
        ];
        for (want, tamper) in cases {
            let mut f = fixture();
            tamper(&mut f);
            let err = check(&f).expect_err(want);
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        }
    }

    #[test]
    fn an_all_rejected_list_is_attestation_rejected() {
        let s = Screened {
            verified: vec![],
            rejected: vec![
                RejectedWorker {
                    worker: "0:aa".into(),
                    reason: "binding".into(),
                },
                RejectedWorker {
                    worker: "0:bb".into(),
                    reason: "expired".into(),
                },
            ],
        };
        match s.into_verified() {
            Err(ClientError::AttestationRejected { worker, reason }) => {
                assert_eq!(worker, "0:aa");
                assert!(reason.contains("and 1 more"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(Screened::default().into_verified().unwrap().is_empty());
    }
}
