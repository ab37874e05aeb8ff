//! SEV-SNP reports through `/dev/sev-guest` (`SNP_GET_EXT_REPORT`).
//!
//! The ioctl lives behind [`SevGuestDevice`] (the `sev` crate does the unsafe part), so the
//! provider's logic runs unchanged against an emulated device in tests.

use std::fmt;
use std::sync::Arc;

use super::super::error::{AttestError, Result};
use super::super::evidence::{Evidence, EvidenceKind};
use super::AttestationProvider;
use super::snp_certs::{HostCert, HostCertKind, SnpCertConfig, check_snp_echo, snp_evidence};

/// The guest side of the SNP firmware: one extended report request.
pub trait SevGuestDevice: Send + Sync + fmt::Debug {
    /// A report for `report_data` at `vmpl`, with the host's certificate table (empty when the
    /// host provisioned none).
    fn get_ext_report(&self, report_data: &[u8; 64], vmpl: u32)
    -> Result<(Vec<u8>, Vec<HostCert>)>;
}

/// The real `/dev/sev-guest` (opened per request).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxSevGuest;

impl SevGuestDevice for LinuxSevGuest {
    fn get_ext_report(
        &self,
        report_data: &[u8; 64],
        vmpl: u32,
    ) -> Result<(Vec<u8>, Vec<HostCert>)> {
        use sev::firmware::guest::Firmware;
        use sev::firmware::host::CertType;
        let mut fw = Firmware::open().map_err(|source| AttestError::Io {
            path: super::SEV_GUEST_DEVICE.into(),
            source,
        })?;
        let (report, certs) = fw
            .get_ext_report(None, Some(*report_data), Some(vmpl))
            .map_err(|e| AttestError::Provider(format!("SNP_GET_EXT_REPORT: {e}")))?;
        let table = certs
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let kind = match e.cert_type {
                    CertType::ARK => HostCertKind::Ark,
                    CertType::ASK => HostCertKind::Ask,
                    CertType::VCEK => HostCertKind::Vcek,
                    CertType::VLEK => HostCertKind::Vlek,
                    CertType::CRL => HostCertKind::Crl,
                    other => {
                        HostCertKind::Other(uuid_bytes(&other.to_string()).unwrap_or_default())
                    }
                };
                HostCert { kind, der: e.data }
            })
            .collect();
        Ok((report, table))
    }
}

fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s.replace('-', ""), &mut out).ok()?;
    Some(out)
}

/// SEV-SNP evidence from a [`SevGuestDevice`].
#[derive(Debug, Clone)]
pub struct SevGuestProvider {
    device: Arc<dyn SevGuestDevice>,
    /// VMPL to request the report at (0: the guest kernel's own level).
    pub vmpl: u32,
    /// Certificates beyond the host's table.
    pub snp: SnpCertConfig,
}

impl SevGuestProvider {
    /// A provider over `device`.
    pub fn new(device: Arc<dyn SevGuestDevice>, snp: SnpCertConfig) -> Self {
        Self {
            device,
            vmpl: 0,
            snp,
        }
    }
}

impl AttestationProvider for SevGuestProvider {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::SevSnp
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let (report, table) = self.device.get_ext_report(report_data, self.vmpl)?;
        check_snp_echo(&report, report_data)?;
        snp_evidence(report, &table, &self.snp)
    }
}
