//! What the chain says about a worker, behind [`WorkerRegistry`], and the rule that decides
//! whether a connecting worker may serve ([`check_worker`]).
//!
//! The real implementation reads the Worker contract (`get_worker_state`, `get_worker_record`)
//! through the sdk's chain API; [`StaticRegistry`] holds records in memory for tests and the
//! benchmark.

use std::collections::HashMap;
use std::sync::RwLock;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use cocoon_sdk::relay::worker::Hello;

/// Worker status as stored in the Worker contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStatus {
    /// Deployed, not initialised.
    Uninitialised,
    /// Serving.
    Active,
    /// Unbonding: may not take new jobs.
    Unbonding,
    /// Slashed forever.
    Slashed,
    /// Stake withdrawn.
    Exited,
}

impl WorkerStatus {
    /// From the contract's status code (contracts/schema.tlb `worker_data`).
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => WorkerStatus::Uninitialised,
            1 => WorkerStatus::Active,
            2 => WorkerStatus::Unbonding,
            3 => WorkerStatus::Slashed,
            4 => WorkerStatus::Exited,
            _ => return None,
        })
    }
}

/// A Worker contract's state and record as read from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChainWorker {
    /// Status.
    pub status: WorkerStatus,
    /// Stake, nanoTON.
    pub stake: u128,
    /// Root's minimum stake, nanoTON.
    pub min_stake: u128,
    /// ed25519 receipt key.
    pub receipt_key: [u8; 32],
    /// X25519 encryption key.
    pub encryption_key: [u8; 32],
    /// nanoTON per input token.
    pub price_in: u64,
    /// nanoTON per output token.
    pub price_out: u64,
    /// Model ids registered.
    pub models: Vec<u32>,
    /// TEE kind.
    pub attestation_kind: u8,
    /// sha256 of the evidence.
    pub evidence_hash: [u8; 32],
    /// Attestation expiry, unix time.
    pub expires_at: u32,
}

/// Why the registry could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegistryError(pub String);

/// Reads Worker records. `Ok(None)`: no such (initialised) Worker contract.
pub trait WorkerRegistry: Send + Sync + 'static {
    /// The record of the Worker contract at `worker` (raw address).
    fn lookup<'a>(
        &'a self,
        worker: &'a str,
    ) -> BoxFuture<'a, Result<Option<OnChainWorker>, RegistryError>>;
}

/// Records held in memory (tests, benchmark, a relayer pinned to known workers).
#[derive(Debug, Default)]
pub struct StaticRegistry {
    workers: RwLock<HashMap<String, OnChainWorker>>,
}

impl StaticRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a record.
    pub fn insert(&self, worker: impl Into<String>, record: OnChainWorker) {
        self.workers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(worker.into(), record);
    }

    /// Removes a record.
    pub fn remove(&self, worker: &str) {
        self.workers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(worker);
    }
}

impl WorkerRegistry for StaticRegistry {
    fn lookup<'a>(
        &'a self,
        worker: &'a str,
    ) -> BoxFuture<'a, Result<Option<OnChainWorker>, RegistryError>> {
        let found = self
            .workers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(worker)
            .cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// Why a worker may not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No initialised Worker contract at the address.
    #[error("no Worker contract at this address")]
    NotFound,
    /// The Worker is not active (unbonding, slashed, exited).
    #[error("worker status is {0:?}, not active")]
    NotActive(WorkerStatus),
    /// Stake below Root's minimum.
    #[error("stake {stake} below the minimum {min_stake}")]
    StakeTooLow {
        /// Stake.
        stake: u128,
        /// Minimum.
        min_stake: u128,
    },
    /// The attestation expired.
    #[error("attestation expired at {0}")]
    AttestationExpired(u32),
    /// The hello's receipt key is not the registered one.
    #[error("receipt key differs from the Worker contract")]
    ReceiptKeyMismatch,
    /// The hello's encryption key is not the registered one.
    #[error("encryption key differs from the Worker contract")]
    EncryptionKeyMismatch,
    /// sha256 of the served evidence is not the registered evidence hash.
    #[error("evidence does not hash to the registered evidence hash")]
    EvidenceMismatch,
    /// The worker offers a model it did not register.
    #[error("model {0} is not registered for this worker")]
    UnregisteredModel(u32),
    /// The relayer requires GPU attestation and the evidence has none, or it does not verify.
    #[error("GPU attestation: {0}")]
    GpuAttestation(String),
    /// Capacity 0 or no models: nothing to serve.
    #[error("worker offers no capacity or no models")]
    NothingToServe,
}

/// The rule deciding whether an authenticated worker may serve: its contract must be active with
/// at least the minimum stake and an unexpired attestation, and everything it tells clients
/// (keys, evidence, models) must match what it registered on-chain.
pub fn check_worker(hello: &Hello, chain: &OnChainWorker, now: u32) -> Result<(), Rejection> {
    match chain.status {
        WorkerStatus::Active => {}
        WorkerStatus::Uninitialised => return Err(Rejection::NotFound),
        other => return Err(Rejection::NotActive(other)),
    }
    if chain.stake < chain.min_stake {
        return Err(Rejection::StakeTooLow {
            stake: chain.stake,
            min_stake: chain.min_stake,
        });
    }
    if chain.expires_at <= now {
        return Err(Rejection::AttestationExpired(chain.expires_at));
    }
    if hello.receipt_key != chain.receipt_key {
        return Err(Rejection::ReceiptKeyMismatch);
    }
    if hello.encryption_key != chain.encryption_key {
        return Err(Rejection::EncryptionKeyMismatch);
    }
    if <[u8; 32]>::from(Sha256::digest(&hello.evidence)) != chain.evidence_hash {
        return Err(Rejection::EvidenceMismatch);
    }
    if hello.capacity == 0 || hello.models.is_empty() {
        return Err(Rejection::NothingToServe);
    }
    if let Some(m) = hello.models.iter().find(|m| !chain.models.contains(m)) {
        return Err(Rejection::UnregisteredModel(*m));
    }
    Ok(())
}

/// The relayer's `--require-gpu-attestation` gate: the served evidence carries NVIDIA GPU
/// evidence that verifies against NVIDIA's pinned roots at `now`. The binding of that evidence to
/// the worker's keys is the client's check (`cocoon_sdk::attest::verify_worker`).
pub fn check_gpu_evidence(evidence: &[u8], now: u64) -> Result<(), Rejection> {
    use cocoon_sdk::attest::{Evidence, FixedClock, Policy, verify_gpu};
    let evidence =
        Evidence::decode(evidence).map_err(|e| Rejection::GpuAttestation(e.to_string()))?;
    let gpu = evidence
        .gpu()
        .ok_or_else(|| Rejection::GpuAttestation("the evidence has no GPU part".into()))?;
    let policy = Policy::production([]).with_clock(std::sync::Arc::new(FixedClock(now)));
    verify_gpu(gpu, &policy)
        .map(|_| ())
        .map_err(|e| Rejection::GpuAttestation(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Hello, OnChainWorker) {
        let evidence = b"simulated evidence".to_vec();
        let hello = Hello {
            version: 1,
            worker: "0:00".into(),
            receipt_key: [1; 32],
            encryption_key: [2; 32],
            models: vec![7],
            capacity: 2,
            evidence: evidence.clone(),
            signature: [0; 64],
        };
        let chain = OnChainWorker {
            status: WorkerStatus::Active,
            stake: 100,
            min_stake: 100,
            receipt_key: [1; 32],
            encryption_key: [2; 32],
            price_in: 1,
            price_out: 2,
            models: vec![7, 8],
            attestation_kind: 0,
            evidence_hash: Sha256::digest(&evidence).into(),
            expires_at: 1000,
        };
        (hello, chain)
    }

    #[test]
    fn a_matching_active_worker_passes() {
        let (h, c) = pair();
        assert_eq!(check_worker(&h, &c, 999), Ok(()));
    }

    #[test]
    fn every_record_violation_is_rejected() {
        let (h, c) = pair();
        let cases: Vec<(Hello, OnChainWorker, u32, Rejection)> = vec![
            (
                h.clone(),
                OnChainWorker {
                    status: WorkerStatus::Unbonding,
                    ..c.clone()
                },
                1,
                Rejection::NotActive(WorkerStatus::Unbonding),
            ),
            (
                h.clone(),
                OnChainWorker {
                    status: WorkerStatus::Slashed,
                    ..c.clone()
                },
                1,
                Rejection::NotActive(WorkerStatus::Slashed),
            ),
            (
                h.clone(),
                OnChainWorker {
                    status: WorkerStatus::Uninitialised,
                    ..c.clone()
                },
                1,
                Rejection::NotFound,
            ),
            (
                h.clone(),
                OnChainWorker {
                    stake: 99,
                    ..c.clone()
                },
                1,
                Rejection::StakeTooLow {
                    stake: 99,
                    min_stake: 100,
                },
            ),
            (
                h.clone(),
                c.clone(),
                1000,
                Rejection::AttestationExpired(1000),
            ),
        ];
        for (h, c, now, want) in cases {
            assert_eq!(check_worker(&h, &c, now), Err(want.clone()), "{want}");
        }
    }

    #[test]
    fn every_hello_violation_is_rejected() {
        let (h, c) = pair();
        let cases: Vec<(Hello, OnChainWorker, u32, Rejection)> = vec![
            (
                Hello {
                    receipt_key: [9; 32],
                    ..h.clone()
                },
                c.clone(),
                1,
                Rejection::ReceiptKeyMismatch,
            ),
            (
                Hello {
                    encryption_key: [9; 32],
                    ..h.clone()
                },
                c.clone(),
                1,
                Rejection::EncryptionKeyMismatch,
            ),
            (
                Hello {
                    evidence: b"other".to_vec(),
                    ..h.clone()
                },
                c.clone(),
                1,
                Rejection::EvidenceMismatch,
            ),
            (
                Hello {
                    models: vec![7, 9],
                    ..h.clone()
                },
                c.clone(),
                1,
                Rejection::UnregisteredModel(9),
            ),
            (
                Hello {
                    capacity: 0,
                    ..h.clone()
                },
                c.clone(),
                1,
                Rejection::NothingToServe,
            ),
            (
                Hello {
                    models: vec![],
                    ..h.clone()
                },
                c.clone(),
                1,
                Rejection::NothingToServe,
            ),
        ];
        for (h, c, now, want) in cases {
            assert_eq!(check_worker(&h, &c, now), Err(want.clone()), "{want}");
        }
    }

    #[tokio::test]
    async fn static_registry_answers_what_it_holds() {
        let r = StaticRegistry::new();
        assert_eq!(r.lookup("0:01").await.unwrap(), None);
        r.insert("0:01", pair().1);
        assert_eq!(r.lookup("0:01").await.unwrap(), Some(pair().1));
        r.remove("0:01");
        assert_eq!(r.lookup("0:01").await.unwrap(), None);
    }
}

/// One worker record in a registry file (`--registry.workers`): the fields of the Worker
/// contract, hex for keys and hashes, nanoTON as integers.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorker {
    address: String,
    #[serde(default = "active")]
    status: u8,
    stake: u64,
    min_stake: u64,
    receipt_key: String,
    encryption_key: String,
    price_in: u64,
    price_out: u64,
    models: Vec<u32>,
    #[serde(default)]
    attestation_kind: u8,
    evidence_hash: String,
    expires_at: u32,
}

fn active() -> u8 {
    1
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    worker: Vec<FileWorker>,
}

fn hex32(field: &str, s: &str) -> Result<[u8; 32], RegistryError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|e| RegistryError(format!("{field}: expected 64 hex digits: {e}")))?;
    Ok(out)
}

impl StaticRegistry {
    /// Reads records from TOML (`[[worker]]` tables). Addresses are normalised to raw form.
    pub fn from_toml(text: &str) -> Result<Self, RegistryError> {
        let file: RegistryFile =
            toml::from_str(text).map_err(|e| RegistryError(format!("registry file: {e}")))?;
        let reg = StaticRegistry::new();
        for w in file.worker {
            let address =
                crate::address::normalize(&w.address).map_err(|e| RegistryError(e.to_string()))?;
            let status = WorkerStatus::from_code(w.status)
                .ok_or_else(|| RegistryError(format!("{address}: status {} unknown", w.status)))?;
            reg.insert(
                address,
                OnChainWorker {
                    status,
                    stake: u128::from(w.stake),
                    min_stake: u128::from(w.min_stake),
                    receipt_key: hex32("receipt_key", &w.receipt_key)?,
                    encryption_key: hex32("encryption_key", &w.encryption_key)?,
                    price_in: w.price_in,
                    price_out: w.price_out,
                    models: w.models,
                    attestation_kind: w.attestation_kind,
                    evidence_hash: hex32("evidence_hash", &w.evidence_hash)?,
                    expires_at: w.expires_at,
                },
            );
        }
        Ok(reg)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.workers.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn registry_file_parses_and_rejects_bad_records() {
        let addr = format!("0:{}", "cd".repeat(32));
        let good = format!(
            r#"[[worker]]
address = "{addr}"
stake = 100
min_stake = 10
receipt_key = "{k}"
encryption_key = "{k}"
price_in = 1
price_out = 2
models = [1]
evidence_hash = "{k}"
expires_at = 2000000000
"#,
            k = "01".repeat(32)
        );
        let reg = StaticRegistry::from_toml(&good).unwrap();
        assert_eq!(reg.len(), 1);
        assert!(StaticRegistry::from_toml(&good.replace("stake = 100", "stake = -1")).is_err());
        assert!(StaticRegistry::from_toml(&good.replace(&"01".repeat(32), "zz")).is_err());
        assert!(StaticRegistry::from_toml(&good.replace(&addr, "nope")).is_err());
        assert!(StaticRegistry::from_toml(&format!("{good}bogus = 1\n")).is_err());
        assert!(StaticRegistry::from_toml("").unwrap().is_empty());
    }

    #[test]
    fn gpu_gate_refuses_evidence_without_a_gpu_part_or_undecodable() {
        let sim = cocoon_sdk::attest::Evidence::simulated([0; 64], "dev").encode();
        assert!(matches!(
            check_gpu_evidence(&sim, 1_800_000_000),
            Err(Rejection::GpuAttestation(m)) if m.contains("no GPU part")
        ));
        assert!(matches!(
            check_gpu_evidence(b"junk", 1_800_000_000),
            Err(Rejection::GpuAttestation(_))
        ));
    }
}
