//! Where a worker gets its GPU evidence: a trait, so tests can emulate the GPU, and the real
//! provider, an operator-configured command that talks to the NVIDIA driver inside the CVM.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

use super::GpuEvidence;
use crate::attest::error::{AttestError, Result};

/// Produces GPU evidence whose SPDM request carries `nonce`.
pub trait GpuEvidenceProvider: Send + Sync + fmt::Debug {
    /// Evidence for this nonce ([`crate::attest::WorkerBinding::gpu_nonce`]).
    fn collect(&self, nonce: &[u8; 32]) -> Result<GpuEvidence>;
}

/// Runs `program args… <nonce hex>` and reads GPU evidence from its standard output as JSON:
/// `{"report_hex": "…", "cert_chain_pem": "…", "driver_rim": "<SoftwareIdentity…", "vbios_rim":
/// "<SoftwareIdentity…"}`. The command is the operator's bridge to the driver (for example a
/// script around NVML's `nvmlDeviceGetConfComputeGpuAttestationReport` and
/// `nvmlDeviceGetConfComputeGpuCertificate`, with RIMs fetched from NVIDIA's RIM service or a
/// local cache).
#[derive(Debug, Clone)]
pub struct CommandGpuProvider {
    /// The program.
    pub program: PathBuf,
    /// Arguments before the nonce.
    pub args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandOutput {
    report_hex: String,
    cert_chain_pem: String,
    driver_rim: String,
    vbios_rim: String,
}

impl GpuEvidenceProvider for CommandGpuProvider {
    fn collect(&self, nonce: &[u8; 32]) -> Result<GpuEvidence> {
        let program = self.program.display().to_string();
        let out = Command::new(&self.program)
            .args(&self.args)
            .arg(hex::encode(nonce))
            .output()
            .map_err(|e| AttestError::GpuProvider(format!("cannot run {program}: {e}")))?;
        if !out.status.success() {
            return Err(AttestError::GpuProvider(format!(
                "{program} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let parsed: CommandOutput = serde_json::from_slice(&out.stdout).map_err(|e| {
            AttestError::GpuProvider(format!("{program} printed no GPU evidence JSON: {e}"))
        })?;
        GpuEvidence::from_vendor_files(
            &parsed.report_hex,
            &parsed.cert_chain_pem,
            parsed.driver_rim.as_bytes(),
            parsed.vbios_rim.as_bytes(),
        )
    }
}
