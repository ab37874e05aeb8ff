//! Worker-side evidence providers: configfs-tsm (SNP and TDX), `/dev/sev-guest`, and Simulated
//! (explicit only), with the certificates and collateral a verifier needs next to the report.
//!
//! ```text
//! configfs-tsm ─┐                       ┌─ host certificate table ─┐
//! /dev/sev-guest┴─▶ report / quote ──▶ ├─ file                    ├─▶ Evidence
//!                                       └─ AMD KDS / Intel PCCS ───┘
//! ```

mod configfs;
mod http;
mod sev_guest;
mod snp_certs;
mod tdx_collateral;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::{info, warn};

use super::error::{AttestError, Result};
use super::evidence::{Evidence, EvidenceKind};

pub use configfs::{ConfigfsTsmProvider, PROVIDER_SEV_GUEST, PROVIDER_TDX_GUEST};
pub use http::HTTP_TIMEOUT;
pub use sev_guest::{LinuxSevGuest, SevGuestDevice, SevGuestProvider};
pub use snp_certs::{
    HostCert, HostCertKind, SnpCertConfig, SnpReportedTcb, encode_cert_table, kds_vcek_url,
    parse_cert_table,
};
pub use tdx_collateral::{
    INTEL_PCS_URL, INTEL_ROOT_CA_CRL_URL, TdxCollateralConfig, fetch_collateral,
};

/// Where Linux exposes configfs-tsm reports (Linux ≥ 6.7, SNP and TDX guests).
pub const CONFIGFS_TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";
/// The SEV-SNP guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";
/// AMD's Key Distribution Service.
pub const AMD_KDS_URL: &str = "https://kdsintf.amd.com";

/// Produces attestation evidence for a REPORT_DATA inside the worker's TEE. Calls may block
/// (device I/O, collateral fetches): run them off the async executor.
pub trait AttestationProvider: Send + Sync + fmt::Debug {
    /// The kind of evidence this provider produces.
    fn kind(&self) -> EvidenceKind;
    /// Evidence whose REPORT_DATA is `report_data`.
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence>;
}

/// No TEE: evidence that says so. Constructed only through [`detect_provider`] with
/// `allow_simulated` or explicitly by a developer.
#[derive(Debug, Clone)]
pub struct SimulatedProvider {
    /// Label carried in the evidence (host name, developer).
    pub label: String,
}

impl AttestationProvider for SimulatedProvider {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::Simulated
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        warn!(target: "sdk::attest", label = %self.label, "producing UNATTESTED (SIMULATED TEE) evidence");
        Ok(Evidence::simulated(*report_data, &self.label))
    }
}

/// Which guest interface to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeeInterface {
    /// configfs-tsm when present, else `/dev/sev-guest`.
    #[default]
    Auto,
    /// configfs-tsm only.
    Configfs,
    /// `/dev/sev-guest` only.
    SevGuest,
}

/// How the worker chooses and feeds its provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Use Simulated when no TEE interface is present (development only).
    pub allow_simulated: bool,
    /// The worker runs against mainnet: Simulated is refused even when allowed.
    pub mainnet: bool,
    /// Which interface.
    pub interface: TeeInterface,
    /// The configfs-tsm report directory.
    pub configfs_root: PathBuf,
    /// An existing report entry under `configfs_root` to use instead of a private one.
    pub configfs_entry: Option<String>,
    /// The SEV guest device (checked for presence; the `sev` crate opens the standard path).
    pub sev_guest_device: PathBuf,
    /// SNP certificates beyond the host's table.
    pub snp: SnpCertConfig,
    /// TDX collateral.
    pub tdx: TdxCollateralConfig,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            allow_simulated: false,
            mainnet: false,
            interface: TeeInterface::Auto,
            configfs_root: CONFIGFS_TSM_REPORT_DIR.into(),
            configfs_entry: None,
            sev_guest_device: SEV_GUEST_DEVICE.into(),
            snp: SnpCertConfig::default(),
            tdx: TdxCollateralConfig::default(),
        }
    }
}

/// Picks configfs-tsm when present, else `/dev/sev-guest`, else Simulated if (and only if)
/// explicitly allowed and not on mainnet. A forced interface that is absent is an error.
pub fn detect_provider(config: &ProviderConfig) -> Result<Box<dyn AttestationProvider>> {
    if config.mainnet && config.allow_simulated {
        return Err(AttestError::SimulatedOnMainnet);
    }
    let configfs = matches!(
        config.interface,
        TeeInterface::Auto | TeeInterface::Configfs
    ) && config.configfs_root.is_dir();
    if configfs {
        let provider = ConfigfsTsmProvider::open(
            &config.configfs_root,
            config.configfs_entry.clone(),
            config.snp.clone(),
            config.tdx.clone(),
        )?;
        info!(target: "sdk::attest", root = %config.configfs_root.display(), kind = %provider.kind(), "using configfs-tsm");
        return Ok(Box::new(provider));
    }
    let sev_guest = matches!(
        config.interface,
        TeeInterface::Auto | TeeInterface::SevGuest
    ) && config.sev_guest_device.exists();
    if sev_guest {
        info!(target: "sdk::attest", device = %config.sev_guest_device.display(), "using /dev/sev-guest");
        return Ok(Box::new(SevGuestProvider::new(
            Arc::new(LinuxSevGuest),
            config.snp.clone(),
        )));
    }
    if config.allow_simulated {
        warn!(target: "sdk::attest", "no TEE found: UNATTESTED (SIMULATED TEE) mode");
        let label = std::env::var("HOSTNAME").unwrap_or_else(|_| "dev".into());
        return Ok(Box::new(SimulatedProvider { label }));
    }
    let looked = match config.interface {
        TeeInterface::Auto => format!(
            "neither {} nor {} exists",
            config.configfs_root.display(),
            config.sev_guest_device.display()
        ),
        TeeInterface::Configfs => format!("{} does not exist", config.configfs_root.display()),
        TeeInterface::SevGuest => format!("{} does not exist", config.sev_guest_device.display()),
    };
    Err(AttestError::ProviderUnavailable(looked))
}
