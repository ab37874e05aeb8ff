//! Attestation: TEE evidence, its verification against vendor roots and the on-chain policy, the
//! key binding in REPORT_DATA, and the worker-side providers.
//!
//! ```text
//! worker: WorkerBinding::report_data ─▶ AttestationProvider::attest ─▶ Evidence ─▶ hash on-chain
//! client: Evidence ─▶ verify_evidence(policy from Root) ─▶ Verified ─▶ check_binding(keys on-chain)
//! GPU:    WorkerBinding::gpu_nonce ─▶ GpuEvidenceProvider ─▶ GpuEvidence (hash in REPORT_DATA)
//!         ─▶ Evidence::WithGpu ─▶ verify_worker (GPU chain, RIMs, measurements, nonce, binding)
//! ```
//!
//! The policy read from a v2 Root ([`Policy::from_root_v2`], or
//! [`crate::contracts::attestation_policy`] for either Root version) carries Root's TEE policy:
//! the SEV-SNP minimum TCB and the TDX attribute and register allow-lists.
//!
//! Simulated evidence exists for local development only: a production [`Policy`] has no path
//! that accepts it, and it prints as `UNATTESTED (SIMULATED TEE)` wherever it appears.

mod binding;
mod crl;
mod error;
mod evidence;
mod gpu;
mod policy;
mod provider;
mod snp;
mod tdx;
mod verify;

pub use binding::{
    ATTESTATION_NONCE_DOMAIN, GPU_NONCE_DOMAIN, WORKER_BINDING_DOMAIN, WorkerBinding,
    attestation_nonce,
};
pub use error::{AttestError, MissingInput, Result};
pub use evidence::{Evidence, EvidenceKind, SNP_REPORT_LEN};
pub use gpu::{
    CommandGpuProvider, GoldenMeasurement, GpuEvidence, GpuEvidenceProvider, GpuPolicy, GpuTrust,
    NVIDIA_DEVICE_ROOT_PEM, NVIDIA_RIM_ROOT_PEM, Rim, SPDM_REQUEST_LEN, SPDM_SIGNATURE_LEN,
    SpdmReport, VerifiedGpu, pem_chain, verify_gpu, verify_rim,
};
pub use policy::{
    Clock, FixedClock, Measurement, Policy, SnpPolicy, SnpProduct, SnpRoot, SnpTcb, SnpTrust,
    SystemClock, TD_ATTRIBUTE_DEBUG, TD_ATTRIBUTE_SEPT_VE_DISABLE, TdxPolicy, measurement_id,
};
pub use provider::{
    AMD_KDS_URL, AttestationProvider, CONFIGFS_TSM_REPORT_DIR, ConfigfsTsmProvider, HTTP_TIMEOUT,
    HostCert, HostCertKind, INTEL_PCS_URL, INTEL_ROOT_CA_CRL_URL, LinuxSevGuest,
    PROVIDER_SEV_GUEST, PROVIDER_TDX_GUEST, ProviderConfig, SEV_GUEST_DEVICE, SevGuestDevice,
    SevGuestProvider, SimulatedProvider, SnpCertConfig, SnpReportedTcb, TdxCollateralConfig,
    TeeInterface, detect_provider, encode_cert_table, fetch_collateral, kds_vcek_url,
    parse_cert_table,
};
pub use tdx::tdx_measurement;
pub use verify::{RecordedAttestation, Tcb, Verified, gpu_label, verify_evidence, verify_worker};
