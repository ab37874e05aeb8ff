//! Worker-side evidence providers: `/dev/sev-guest`, configfs-tsm, and Simulated (explicit only).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::error::{AttestError, Result};
use super::evidence::{Evidence, EvidenceKind};

/// Where Linux exposes configfs-tsm reports (Linux ≥ 6.7, SNP and TDX guests).
pub const CONFIGFS_TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";
/// The SEV-SNP guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// Produces attestation evidence for a REPORT_DATA inside the worker's TEE.
pub trait AttestationProvider: Send + Sync + fmt::Debug {
    /// The kind of evidence this provider produces.
    fn kind(&self) -> EvidenceKind;
    /// Evidence whose REPORT_DATA is `report_data`.
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence>;
}

/// SEV-SNP reports through `/dev/sev-guest` (`SNP_GET_EXT_REPORT`).
#[derive(Debug, Clone)]
pub struct SevGuestProvider {
    /// VCEK (DER) to ship when the host did not provision a certificate table.
    pub vcek_der: Option<Vec<u8>>,
    /// VMPL to request the report at.
    pub vmpl: u32,
}

impl AttestationProvider for SevGuestProvider {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::SevSnp
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        use sev::firmware::guest::Firmware;
        let mut fw = Firmware::open().map_err(|source| AttestError::Io {
            path: SEV_GUEST_DEVICE.into(),
            source,
        })?;
        let (report, certs) = fw
            .get_ext_report(None, Some(*report_data), Some(self.vmpl))
            .map_err(|e| AttestError::Provider(e.to_string()))?;
        let table_vcek = certs.and_then(|entries| {
            entries
                .into_iter()
                .find(|e| e.cert_type == sev::firmware::host::CertType::VCEK)
                .map(|e| e.data)
        });
        let vcek_der = table_vcek
            .or_else(|| self.vcek_der.clone())
            .ok_or_else(|| {
                AttestError::ProviderUnavailable(
                    "no VCEK: the host has no certificate table and none was configured".into(),
                )
            })?;
        Ok(Evidence::SevSnp {
            report,
            vcek_der,
            ask_ark_pem: None,
        })
    }
}

/// Reports through configfs-tsm: one directory per request, `inblob` in, `outblob`/`auxblob` out.
#[derive(Debug, Clone)]
pub struct ConfigfsTsmProvider {
    /// The `tsm/report` directory.
    pub root: PathBuf,
    /// VCEK (DER) for SNP when `auxblob` carries no certificate table.
    pub vcek_der: Option<Vec<u8>>,
    /// Collateral JSON for TDX (fetched from a PCCS by the operator; quotes alone do not verify).
    pub tdx_collateral_json: Option<Vec<u8>>,
}

impl ConfigfsTsmProvider {
    /// A provider over the standard configfs location.
    pub fn new() -> Self {
        Self {
            root: CONFIGFS_TSM_REPORT_DIR.into(),
            vcek_der: None,
            tdx_collateral_json: None,
        }
    }

    fn provider_name(&self, entry: &Path) -> Result<String> {
        Ok(read(&entry.join("provider"))?
            .trim_ascii()
            .iter()
            .map(|&b| b as char)
            .collect())
    }
}

impl Default for ConfigfsTsmProvider {
    fn default() -> Self {
        Self::new()
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| AttestError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    fs::write(path, data).map_err(|source| AttestError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl AttestationProvider for ConfigfsTsmProvider {
    fn kind(&self) -> EvidenceKind {
        let entry = self.root.join("cocoon-probe");
        let kind = fs::create_dir(&entry)
            .ok()
            .and_then(|()| self.provider_name(&entry).ok());
        let _ = fs::remove_dir(&entry);
        if kind.as_deref() == Some("tdx_guest") {
            EvidenceKind::Tdx
        } else {
            EvidenceKind::SevSnp
        }
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        // A fresh entry per request: configfs bumps `generation` on every write, and a private
        // directory keeps concurrent requests from reading each other's outblob.
        let entry = self.root.join(format!(
            "cocoon-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        fs::create_dir(&entry).map_err(|source| AttestError::Io {
            path: entry.display().to_string(),
            source,
        })?;
        let result = (|| {
            write(&entry.join("inblob"), report_data)?;
            let provider = self.provider_name(&entry)?;
            let outblob = read(&entry.join("outblob"))?;
            match provider.as_str() {
                "sev_guest" => {
                    let table_vcek = read(&entry.join("auxblob")).ok().and_then(|mut aux| {
                        sev::firmware::host::CertTableEntry::vec_bytes_to_cert_table(&mut aux).ok()
                    });
                    let table_vcek = table_vcek.and_then(|t| {
                        t.into_iter()
                            .find(|e| e.cert_type == sev::firmware::host::CertType::VCEK)
                            .map(|e| e.data)
                    });
                    let vcek_der =
                        table_vcek
                            .or_else(|| self.vcek_der.clone())
                            .ok_or_else(|| {
                                AttestError::ProviderUnavailable(
                                    "no VCEK in auxblob and none configured".into(),
                                )
                            })?;
                    Ok(Evidence::SevSnp {
                        report: outblob,
                        vcek_der,
                        ask_ark_pem: None,
                    })
                }
                "tdx_guest" => {
                    let collateral_json = self.tdx_collateral_json.clone().ok_or_else(|| {
                        AttestError::ProviderUnavailable(
                            "TDX quote needs collateral; none configured".into(),
                        )
                    })?;
                    Ok(Evidence::Tdx {
                        quote: outblob,
                        collateral_json,
                    })
                }
                other => Err(AttestError::ProviderUnavailable(format!(
                    "unknown configfs-tsm provider {other:?}"
                ))),
            }
        })();
        let _ = fs::remove_dir(&entry);
        result
    }
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

/// How the worker chooses its provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Use Simulated when no TEE interface is present (development only).
    pub allow_simulated: bool,
    /// The worker runs against mainnet: Simulated is refused even when allowed.
    pub mainnet: bool,
    /// VCEK (DER) for SNP hosts that provision no certificate table.
    pub vcek_der: Option<Vec<u8>>,
    /// TDX collateral JSON.
    pub tdx_collateral_json: Option<Vec<u8>>,
    /// The configfs-tsm report directory.
    pub configfs_root: PathBuf,
    /// The SEV guest device.
    pub sev_guest_device: PathBuf,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            allow_simulated: false,
            mainnet: false,
            vcek_der: None,
            tdx_collateral_json: None,
            configfs_root: CONFIGFS_TSM_REPORT_DIR.into(),
            sev_guest_device: SEV_GUEST_DEVICE.into(),
        }
    }
}

/// Picks configfs-tsm when present, else `/dev/sev-guest`, else Simulated if (and only if)
/// explicitly allowed and not on mainnet.
pub fn detect_provider(config: &ProviderConfig) -> Result<Box<dyn AttestationProvider>> {
    if config.mainnet && config.allow_simulated {
        return Err(AttestError::SimulatedOnMainnet);
    }
    if config.configfs_root.is_dir() {
        info!(target: "sdk::attest", root = %config.configfs_root.display(), "using configfs-tsm");
        return Ok(Box::new(ConfigfsTsmProvider {
            root: config.configfs_root.clone(),
            vcek_der: config.vcek_der.clone(),
            tdx_collateral_json: config.tdx_collateral_json.clone(),
        }));
    }
    if config.sev_guest_device.exists() {
        info!(target: "sdk::attest", "using /dev/sev-guest");
        return Ok(Box::new(SevGuestProvider {
            vcek_der: config.vcek_der.clone(),
            vmpl: 0,
        }));
    }
    if config.allow_simulated {
        warn!(target: "sdk::attest", "no TEE found: UNATTESTED (SIMULATED TEE) mode");
        let label = std::env::var("HOSTNAME").unwrap_or_else(|_| "dev".into());
        return Ok(Box::new(SimulatedProvider { label }));
    }
    Err(AttestError::ProviderUnavailable(format!(
        "neither {} nor {} exists",
        config.configfs_root.display(),
        config.sev_guest_device.display()
    )))
}
