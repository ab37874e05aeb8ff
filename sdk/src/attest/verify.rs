//! The verifier entry point and its result.

use std::fmt;

use tracing::{debug, warn};

use super::binding::WorkerBinding;
use super::error::{AttestError, Result};
use super::evidence::{Evidence, EvidenceKind};
use super::gpu::{SpdmReport, VerifiedGpu, verify_gpu};
use super::policy::{Measurement, Policy, SnpProduct, SnpTcb, measurement_id};
use super::{snp, tdx};

/// The trusted computing base that produced the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tcb {
    /// SEV-SNP: the product whose root signed the VCEK and REPORTED_TCB.
    Snp {
        /// Product line.
        product: SnpProduct,
        /// TCB SVNs.
        tcb: SnpTcb,
    },
    /// TDX: TEE_TCB_SVN and Intel's status for the platform.
    Tdx {
        /// TEE_TCB_SVN from the TD report.
        tee_tcb_svn: [u8; 16],
        /// TCB status from the collateral (`UpToDate`, ...).
        status: String,
    },
    /// No TCB at all.
    Simulated,
}

/// Evidence that passed the vendor checks and the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The kind of TEE.
    pub kind: EvidenceKind,
    /// The launch measurement that was found on the allow-list.
    pub measurement: Measurement,
    /// The TCB that produced the evidence.
    pub tcb: Tcb,
    /// REPORT_DATA, to be checked against a [`WorkerBinding`].
    pub report_data: [u8; 64],
    /// sha256 of the canonical evidence encoding.
    pub evidence_hash: [u8; 32],
    /// The GPU part, when the evidence carries one that verified: the GPU runs in
    /// confidential-computing mode with the measured driver and VBIOS.
    pub gpu: Option<VerifiedGpu>,
}

/// A worker's attestation as its Worker contract records it (TL-B `attestation$_ kind:uint8
/// measurement:bits256 evidence_hash:bits256 expires_at:uint32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedAttestation {
    /// [`EvidenceKind::code`].
    pub kind: u8,
    /// [`measurement_id`] of the launch measurement.
    pub measurement: [u8; 32],
    /// sha256 of the canonical evidence.
    pub evidence_hash: [u8; 32],
    /// Unix time after which the record must not be trusted.
    pub expires_at: u32,
}

impl From<&crate::messages::records::Attestation> for RecordedAttestation {
    fn from(a: &crate::messages::records::Attestation) -> Self {
        Self {
            kind: a.kind,
            measurement: a.measurement,
            evidence_hash: a.evidence_hash,
            expires_at: a.expires_at,
        }
    }
}

impl Verified {
    /// Checks that REPORT_DATA binds exactly these keys, this Worker and this nonce.
    pub fn check_binding(&self, binding: &WorkerBinding) -> Result<()> {
        binding.check(&self.report_data)
    }

    /// The 256-bit measurement id stored on-chain.
    pub fn measurement_id(&self) -> [u8; 32] {
        measurement_id(&self.measurement)
    }

    /// Checks that the on-chain record describes this evidence and has not expired at `now`.
    pub fn check_record(&self, record: &RecordedAttestation, now: u64) -> Result<()> {
        if record.kind != self.kind.code() {
            return Err(AttestError::RecordMismatch { field: "kind" });
        }
        if record.measurement != self.measurement_id() {
            return Err(AttestError::RecordMismatch {
                field: "measurement",
            });
        }
        if record.evidence_hash != self.evidence_hash {
            return Err(AttestError::RecordMismatch {
                field: "evidence_hash",
            });
        }
        if u64::from(record.expires_at) <= now {
            return Err(AttestError::RecordExpired {
                expires_at: record.expires_at,
                now,
            });
        }
        Ok(())
    }
}

/// How a verified GPU is shown to people: what was proved, with the versions the RIMs matched.
pub fn gpu_label(gpu: &VerifiedGpu) -> String {
    format!(
        "NVIDIA GPU in confidential-computing mode (driver {}, VBIOS {}, {} measurements)",
        gpu.driver_version, gpu.vbios_version, gpu.measurements_checked
    )
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} measurement {}",
            self.kind,
            hex::encode(self.measurement)
        )?;
        match &self.gpu {
            Some(gpu) => write!(f, " + {}", gpu_label(gpu)),
            None => Ok(()),
        }
    }
}

/// Verifies evidence against the vendor roots and `policy`; the binding is checked separately with
/// [`Verified::check_binding`] (or in one go with [`verify_worker`], which evidence with a GPU
/// part needs: its nonce and hash bind to the worker's keys).
pub fn verify_evidence(evidence: &Evidence, policy: &Policy) -> Result<Verified> {
    let evidence_hash = evidence.hash();
    let verified = match evidence {
        Evidence::WithGpu { cpu, gpu } => {
            let mut verified = verify_cpu(cpu, policy, evidence_hash)?;
            let gpu = verify_gpu(gpu, policy)?;
            debug!(target: "sdk::attest", driver = %gpu.driver_version, vbios = %gpu.vbios_version, measurements = gpu.measurements_checked, "GPU evidence verified");
            verified.gpu = Some(gpu);
            verified
        }
        cpu if policy.gpu.required => {
            verify_cpu(cpu, policy, evidence_hash)?;
            return Err(AttestError::GpuEvidenceRequired);
        }
        cpu => verify_cpu(cpu, policy, evidence_hash)?,
    };
    debug!(target: "sdk::attest", kind = %verified.kind, evidence_hash = %hex::encode(evidence_hash), "evidence verified");
    Ok(verified)
}

fn verify_cpu(evidence: &Evidence, policy: &Policy, evidence_hash: [u8; 32]) -> Result<Verified> {
    let kind = evidence.kind();
    if kind == EvidenceKind::Simulated && !policy.is_development() {
        warn!(target: "sdk::attest", "refusing UNATTESTED (SIMULATED TEE) evidence under a production policy");
        return Err(AttestError::SimulatedRefused);
    }
    if !policy.allows_kind(kind) {
        return Err(AttestError::KindNotAllowed(kind));
    }
    Ok(match evidence {
        Evidence::SevSnp {
            report,
            vcek_der,
            ask_ark_pem,
        } => snp::verify(
            report,
            vcek_der,
            ask_ark_pem.as_deref(),
            policy,
            evidence_hash,
        )?,
        Evidence::Tdx {
            quote,
            collateral_json,
        } => tdx::verify(quote, collateral_json, policy, evidence_hash)?,
        Evidence::WithGpu { .. } => return Err(AttestError::GpuNested),
        Evidence::Simulated { report_data, label } => {
            if !policy.allows_measurement(&[0; 48]) {
                return Err(AttestError::MeasurementNotAllowed {
                    kind,
                    measurement: hex::encode([0u8; 48]),
                });
            }
            warn!(target: "sdk::attest", %label, "accepting UNATTESTED (SIMULATED TEE) evidence (development policy)");
            Verified {
                kind,
                measurement: [0; 48],
                tcb: Tcb::Simulated,
                report_data: *report_data,
                evidence_hash,
                gpu: None,
            }
        }
    })
}

/// Verifies evidence and its binding to a worker's keys, Worker address and chain nonce. With a
/// GPU part, the GPU must have signed [`WorkerBinding::gpu_nonce`] and REPORT_DATA must carry the
/// GPU evidence's hash (whatever `binding.gpu_evidence_hash` says, it is taken from the evidence).
pub fn verify_worker(
    evidence: &Evidence,
    policy: &Policy,
    binding: &WorkerBinding,
) -> Result<Verified> {
    let verified = verify_evidence(evidence, policy)?;
    let Some(gpu) = evidence.gpu() else {
        verified.check_binding(binding)?;
        return Ok(verified);
    };
    let report = SpdmReport::parse(&gpu.report)?;
    if report.nonce != binding.gpu_nonce()? {
        return Err(AttestError::GpuNonceMismatch);
    }
    let with_gpu = WorkerBinding {
        gpu_evidence_hash: Some(gpu.hash()),
        ..binding.clone()
    };
    if verified.check_binding(&with_gpu).is_err() {
        let without = WorkerBinding {
            gpu_evidence_hash: None,
            ..binding.clone()
        };
        return Err(if verified.check_binding(&without).is_ok() {
            AttestError::GpuNotBound
        } else {
            AttestError::BindingMismatch
        });
    }
    Ok(verified)
}
