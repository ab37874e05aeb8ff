//! Attestation: TEE evidence, its verification against vendor roots and the on-chain policy, the
//! key binding in REPORT_DATA, and the worker-side providers.
//!
//! ```text
//! worker: WorkerBinding::report_data ─▶ AttestationProvider::attest ─▶ Evidence ─▶ hash on-chain
//! client: Evidence ─▶ verify_evidence(policy from Root) ─▶ Verified ─▶ check_binding(keys on-chain)
//! ```
//!
//! Simulated evidence exists for local development only: a production [`Policy`] has no path
//! that accepts it, and it prints as `UNATTESTED (SIMULATED TEE)` wherever it appears.

mod binding;
mod error;
mod evidence;
mod policy;
mod provider;
mod snp;
mod tdx;
mod verify;

pub use binding::{
    ATTESTATION_NONCE_DOMAIN, WORKER_BINDING_DOMAIN, WorkerBinding, attestation_nonce,
};
pub use error::{AttestError, Result};
pub use evidence::{Evidence, EvidenceKind, SNP_REPORT_LEN};
pub use policy::{
    Clock, FixedClock, Measurement, Policy, SnpPolicy, SnpProduct, SnpTcb, SystemClock, TdxPolicy,
    measurement_id,
};
pub use provider::{
    AttestationProvider, CONFIGFS_TSM_REPORT_DIR, ConfigfsTsmProvider, ProviderConfig,
    SEV_GUEST_DEVICE, SevGuestProvider, SimulatedProvider, detect_provider,
};
pub use tdx::tdx_measurement;
pub use verify::{RecordedAttestation, Tcb, Verified, verify_evidence, verify_worker};
