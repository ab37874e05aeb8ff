//! The key binding carried in REPORT_DATA.
//!
//! `REPORT_DATA = SHA-512("cocoon/worker-binding/v1\0" ‖ ed25519_pk[32] ‖ x25519_pk[32] ‖
//! workchain:i8 ‖ address hash[32] ‖ chain_nonce[32] ‖ gpu_evidence_sha256[32])`
//!
//! The GPU field is sha256 of the GPU evidence ([`super::GpuEvidence::hash`]) when the worker
//! serves one, 32 zero bytes otherwise. The chain nonce (a recent
//! masterchain block hash or Root's epoch seed) gives freshness, since neither SNP nor TDX reports
//! carry a time.

use sha2::{Digest, Sha512};
use tonlib_core::TonAddress;

use super::error::{AttestError, Result};

/// Domain tag of the binding preimage.
pub const WORKER_BINDING_DOMAIN: &[u8] = b"cocoon/worker-binding/v1\0";

/// Domain tag of [`WorkerBinding::gpu_nonce`].
pub const GPU_NONCE_DOMAIN: &[u8] = b"cocoon/gpu-nonce/v1\0";

/// Domain tag of [`attestation_nonce`].
pub const ATTESTATION_NONCE_DOMAIN: &[u8] = b"cocoon/attestation-nonce/v1\0";

/// The chain nonce a worker binds into its evidence, and that a client recomputes from the chain:
/// `sha256("cocoon/attestation-nonce/v1\0" ‖ root workchain:i8 ‖ root hash[32] ‖ expires_at:u32be)`,
/// where `expires_at` is the attestation expiry recorded in the Worker contract.
///
/// Reports carry no time, so the evidence commits to the expiry it is registered with: a report
/// cannot be re-registered under a later expiry, nor under another network's Root. Clients
/// recompute it from Root's address and the Worker record, with nothing fetched from the worker.
pub fn attestation_nonce(root: &TonAddress, expires_at: u32) -> Result<[u8; 32]> {
    use sha2::Sha256;
    let workchain = i8::try_from(root.workchain)
        .map_err(|_| AttestError::WorkchainOutOfRange(root.workchain))?;
    let mut h = Sha256::new();
    h.update(ATTESTATION_NONCE_DOMAIN);
    h.update(workchain.to_be_bytes());
    h.update(root.hash_part.as_slice());
    h.update(expires_at.to_be_bytes());
    Ok(h.finalize().into())
}

/// What a worker's TEE report must bind: its keys, its Worker contract and a chain nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerBinding {
    /// The ed25519 public key that signs receipts.
    pub receipt_key: [u8; 32],
    /// The X25519 public key clients seal to.
    pub encryption_key: [u8; 32],
    /// The worker's Worker contract address.
    pub worker: TonAddress,
    /// Freshness nonce taken from the chain.
    pub chain_nonce: [u8; 32],
    /// sha256 of the GPU attestation evidence, when one is bound.
    pub gpu_evidence_hash: Option<[u8; 32]>,
}

impl WorkerBinding {
    /// The 64 bytes the TEE report must carry in REPORT_DATA.
    pub fn report_data(&self) -> Result<[u8; 64]> {
        let workchain = i8::try_from(self.worker.workchain)
            .map_err(|_| AttestError::WorkchainOutOfRange(self.worker.workchain))?;
        let mut h = Sha512::new();
        h.update(WORKER_BINDING_DOMAIN);
        h.update(self.receipt_key);
        h.update(self.encryption_key);
        h.update(workchain.to_be_bytes());
        h.update(self.worker.hash_part.as_slice());
        h.update(self.chain_nonce);
        h.update(self.gpu_evidence_hash.unwrap_or([0; 32]));
        Ok(h.finalize().into())
    }

    /// The nonce the worker's GPU must sign: `sha256("cocoon/gpu-nonce/v1\0" ‖ ed25519_pk ‖
    /// x25519_pk ‖ workchain:i8 ‖ address hash ‖ chain_nonce)`. It binds the GPU report to the
    /// same keys, Worker and freshness as the CPU report, which in turn binds the GPU evidence's
    /// hash, so neither can be paired with another's.
    pub fn gpu_nonce(&self) -> Result<[u8; 32]> {
        use sha2::Sha256;
        let workchain = i8::try_from(self.worker.workchain)
            .map_err(|_| AttestError::WorkchainOutOfRange(self.worker.workchain))?;
        let mut h = Sha256::new();
        h.update(GPU_NONCE_DOMAIN);
        h.update(self.receipt_key);
        h.update(self.encryption_key);
        h.update(workchain.to_be_bytes());
        h.update(self.worker.hash_part.as_slice());
        h.update(self.chain_nonce);
        Ok(h.finalize().into())
    }

    /// Checks REPORT_DATA against this binding, in constant time.
    pub fn check(&self, report_data: &[u8; 64]) -> Result<()> {
        let expected = self.report_data()?;
        let diff = expected
            .iter()
            .zip(report_data)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(AttestError::BindingMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestation_nonce_depends_on_root_and_expiry() {
        let root = TonAddress::new(0, [7; 32].into());
        let n = attestation_nonce(&root, 1_800_000_000).unwrap();
        assert_eq!(n, attestation_nonce(&root, 1_800_000_000).unwrap());
        assert_ne!(n, attestation_nonce(&root, 1_800_000_001).unwrap());
        assert_ne!(
            n,
            attestation_nonce(&TonAddress::new(0, [8; 32].into()), 1_800_000_000).unwrap()
        );
        assert_ne!(
            n,
            attestation_nonce(&TonAddress::new(-1, [7; 32].into()), 1_800_000_000).unwrap()
        );
        assert!(attestation_nonce(&TonAddress::new(300, [7; 32].into()), 1).is_err());
    }
}
