//! configfs-tsm (Linux ≥ 6.7, SEV-SNP and TDX guests): a report entry under `tsm/report`,
//! `inblob` in, `outblob` (SNP report or TDX quote) and `auxblob` (SNP certificate table) out.
//!
//! `generation` counts writes to the entry; reading it after our write and again after the read
//! shows whether another process wrote in between (then the report may not be ours).

use std::fs;
use std::path::{Path, PathBuf};

use tracing::debug;

use super::super::error::{AttestError, MissingInput, Result};
use super::super::evidence::{Evidence, EvidenceKind};
use super::AttestationProvider;
use super::snp_certs::{SnpCertConfig, check_snp_echo, parse_cert_table, snp_evidence};
use super::tdx_collateral::{TdxCollateralConfig, check_tdx_echo};

/// `provider` of an SEV-SNP guest.
pub const PROVIDER_SEV_GUEST: &str = "sev_guest";
/// `provider` of a TDX guest.
pub const PROVIDER_TDX_GUEST: &str = "tdx_guest";

/// Reports through configfs-tsm.
#[derive(Debug, Clone)]
pub struct ConfigfsTsmProvider {
    root: PathBuf,
    entry: Option<String>,
    kind: EvidenceKind,
    /// Certificates for SNP reports.
    pub snp: SnpCertConfig,
    /// Collateral for TDX quotes.
    pub tdx: TdxCollateralConfig,
}

impl ConfigfsTsmProvider {
    /// Opens the `tsm/report` directory `root` and learns which TEE answers (`provider`).
    ///
    /// With `entry`, requests go to that existing report entry (created by root and handed to the
    /// worker's user); without, each request makes a private entry and removes it afterwards.
    pub fn open(
        root: &Path,
        entry: Option<String>,
        snp: SnpCertConfig,
        tdx: TdxCollateralConfig,
    ) -> Result<Self> {
        let mut this = Self {
            root: root.to_path_buf(),
            entry,
            kind: EvidenceKind::SevSnp,
            snp,
            tdx,
        };
        this.kind = this.with_entry(|dir| match provider_name(dir)?.as_str() {
            PROVIDER_SEV_GUEST => Ok(EvidenceKind::SevSnp),
            PROVIDER_TDX_GUEST => Ok(EvidenceKind::Tdx),
            other => Err(AttestError::ProviderUnavailable(format!(
                "unknown configfs-tsm provider {other:?} in {}",
                dir.display()
            ))),
        })?;
        Ok(this)
    }

    /// Runs `f` on the report entry: the configured one, or a private one made for the call.
    fn with_entry<T>(&self, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        if let Some(name) = &self.entry {
            let dir = self.root.join(name);
            if !dir.is_dir() {
                return Err(MissingInput::ConfigfsEntry(dir.display().to_string()).into());
            }
            return f(&dir);
        }
        let dir = self.root.join(format!(
            "cocoon-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        fs::create_dir(&dir).map_err(|source| AttestError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let out = f(&dir);
        if let Err(e) = fs::remove_dir(&dir) {
            debug!(target: "sdk::attest", path = %dir.display(), error = %e, "cannot remove the report entry");
        }
        out
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| AttestError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn provider_name(dir: &Path) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(&dir.join("provider"))?)
        .trim()
        .to_owned())
}

fn generation(dir: &Path) -> Result<u64> {
    let path = dir.join("generation");
    let text = read(&path)?;
    String::from_utf8_lossy(&text)
        .trim()
        .parse()
        .map_err(|_| AttestError::Provider(format!("{} is not a number", path.display())))
}

impl AttestationProvider for ConfigfsTsmProvider {
    fn kind(&self) -> EvidenceKind {
        self.kind
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let (outblob, auxblob) = self.with_entry(|dir| {
            let inblob = dir.join("inblob");
            fs::write(&inblob, report_data).map_err(|source| AttestError::Io {
                path: inblob.display().to_string(),
                source,
            })?;
            let before = generation(dir)?;
            let outblob = read(&dir.join("outblob"))?;
            // TDX guests have no auxblob; an SNP host without a certificate table leaves it empty.
            let auxblob = fs::read(dir.join("auxblob")).unwrap_or_default();
            let after = generation(dir)?;
            if before != after {
                return Err(AttestError::ConfigfsRace {
                    path: dir.display().to_string(),
                    before,
                    after,
                });
            }
            Ok((outblob, auxblob))
        })?;
        match self.kind {
            EvidenceKind::Tdx => {
                check_tdx_echo(&outblob, report_data)?;
                let collateral_json = self.tdx.collateral_for(&outblob)?;
                Ok(Evidence::Tdx {
                    quote: outblob,
                    collateral_json,
                })
            }
            _ => {
                check_snp_echo(&outblob, report_data)?;
                let table = if auxblob.is_empty() {
                    Vec::new()
                } else {
                    parse_cert_table(&auxblob)?
                };
                snp_evidence(outblob, &table, &self.snp)
            }
        }
    }
}
