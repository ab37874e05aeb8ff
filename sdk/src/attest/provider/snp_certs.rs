//! Where an SEV-SNP report's signing certificate comes from: the host's certificate table
//! (`auxblob` / `SNP_GET_EXT_REPORT`), a file, or AMD's Key Distribution Service.
//!
//! Certificate table (GHCB spec, "SNP Extended Guest Request"): 24-byte entries `GUID[16] ‖
//! offset:u32le ‖ length:u32le`, ended by an all-zero entry; offsets count from the table start.

use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use tracing::info;

use super::super::error::{AttestError, MissingInput, Result};
use super::super::evidence::{Evidence, SNP_REPORT_LEN};
use super::super::policy::SnpProduct;
use super::http;

const ENTRY_LEN: usize = 24;
/// KEY_INFO.SIGNING_KEY of a VLEK-signed report.
const SIGNING_KEY_VLEK: u32 = 1;

/// What a certificate-table entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCertKind {
    /// AMD Root Key.
    Ark,
    /// AMD SEV Key (or, next to a VLEK, the ASVK).
    Ask,
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key.
    Vlek,
    /// Certificate revocation list.
    Crl,
    /// Any other GUID.
    Other([u8; 16]),
}

const GUIDS: [(HostCertKind, &str); 5] = [
    (HostCertKind::Ark, "c0b406a4a803495297433fb6014cd0ae"),
    (HostCertKind::Ask, "4ab7b379bbac4fe4a02f05aef327c782"),
    (HostCertKind::Vcek, "63da758de6644564adc5f4b93be8accd"),
    (HostCertKind::Vlek, "a8074bc2a25a483eaae639c045a0b8a1"),
    (HostCertKind::Crl, "92f81bc358114d3d97ffd19f88dc67ea"),
];

impl HostCertKind {
    /// The table GUID (RFC 4122 byte order, as the kernel and the `sev` crate lay it out).
    pub fn guid(self) -> [u8; 16] {
        if let Self::Other(g) = self {
            return g;
        }
        let hex = GUIDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or(GUIDS[0].1, |(_, g)| g);
        let mut out = [0u8; 16];
        hex::decode_to_slice(hex, &mut out).expect("GUID constants are hex");
        out
    }

    fn from_guid(guid: [u8; 16]) -> Self {
        [Self::Ark, Self::Ask, Self::Vcek, Self::Vlek, Self::Crl]
            .into_iter()
            .find(|k| k.guid() == guid)
            .unwrap_or(Self::Other(guid))
    }
}

/// One certificate the host provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCert {
    /// What it is.
    pub kind: HostCertKind,
    /// DER bytes.
    pub der: Vec<u8>,
}

/// Parses a certificate table with bounds checks on every entry (the bytes come from the host).
pub fn parse_cert_table(bytes: &[u8]) -> Result<Vec<HostCert>> {
    let bad = |m: String| AttestError::CertTable(m);
    let mut out = Vec::new();
    for i in 0.. {
        let at = i * ENTRY_LEN;
        let entry = bytes
            .get(at..at + ENTRY_LEN)
            .ok_or_else(|| bad(format!("no terminating entry after {i} entries")))?;
        let guid: [u8; 16] = entry[..16].try_into().expect("16 bytes");
        let offset = u32::from_le_bytes(entry[16..20].try_into().expect("4 bytes")) as usize;
        let length = u32::from_le_bytes(entry[20..24].try_into().expect("4 bytes")) as usize;
        if guid == [0; 16] {
            break;
        }
        let der = offset
            .checked_add(length)
            .and_then(|end| bytes.get(offset..end))
            .ok_or_else(|| bad(format!("entry {i} points outside the table")))?;
        out.push(HostCert {
            kind: HostCertKind::from_guid(guid),
            der: der.to_vec(),
        });
    }
    Ok(out)
}

/// Lays out a certificate table (what a host provisions; emulators and tests use it).
pub fn encode_cert_table(certs: &[HostCert]) -> Vec<u8> {
    let header = (certs.len() + 1) * ENTRY_LEN;
    let mut table = Vec::new();
    let mut data = Vec::new();
    for c in certs {
        table.extend_from_slice(&c.kind.guid());
        table.extend_from_slice(&((header + data.len()) as u32).to_le_bytes());
        table.extend_from_slice(&(c.der.len() as u32).to_le_bytes());
        data.extend_from_slice(&c.der);
    }
    table.extend_from_slice(&[0; ENTRY_LEN]);
    table.extend_from_slice(&data);
    table
}

/// What the operator supplies for SEV-SNP besides the host's certificate table.
#[derive(Debug, Clone, Default)]
pub struct SnpCertConfig {
    /// The VCEK or VLEK from a file (DER or PEM).
    pub signing_cert: Option<Vec<u8>>,
    /// ASK/ARK (or, for a VLEK, ASVK/ARK) PEM to ship with the evidence.
    pub chain_pem: Option<Vec<u8>>,
    /// AMD KDS base URL (`https://kdsintf.amd.com`): the VCEK is fetched by chip id and TCB.
    pub kds_url: Option<String>,
    /// The product line, for the KDS path when the report does not name it (version 2).
    pub product: Option<SnpProduct>,
}

/// The REPORT_DATA of a raw SNP report, compared with the request before anything else: a TEE
/// interface that answers for other data is broken or hostile.
pub(crate) fn check_snp_echo(report: &[u8], report_data: &[u8; 64]) -> Result<()> {
    if report.len() != SNP_REPORT_LEN {
        return Err(AttestError::BadLength {
            field: "report",
            len: report.len(),
            min: SNP_REPORT_LEN,
            max: SNP_REPORT_LEN,
        });
    }
    if report[0x50..0x90] != report_data[..] {
        return Err(AttestError::ReportDataNotEchoed);
    }
    Ok(())
}

/// Builds SNP evidence for a raw report: the signing certificate from the table, else the file,
/// else the KDS; a VLEK also needs its ASVK (table or chain file).
pub(crate) fn snp_evidence(
    report: Vec<u8>,
    table: &[HostCert],
    config: &SnpCertConfig,
) -> Result<Evidence> {
    let parsed = AttestationReport::from_bytes(&report)
        .map_err(|e| AttestError::SnpReportParse(e.to_string()))?;
    let vlek = parsed.key_info.signing_key() == SIGNING_KEY_VLEK;
    let from_table = |kind| table.iter().find(|c| c.kind == kind).map(|c| c.der.clone());
    let wanted = if vlek {
        HostCertKind::Vlek
    } else {
        HostCertKind::Vcek
    };
    let signing = match from_table(wanted) {
        Some(der) => der,
        None => match &config.signing_cert {
            Some(bytes) => to_der(bytes)?,
            None if !vlek && config.kds_url.is_some() => fetch_vcek(&parsed, config)?,
            None => return Err(MissingInput::SnpSigningCert.into()),
        },
    };
    let chain_pem = if vlek {
        match (from_table(HostCertKind::Ask), &config.chain_pem) {
            (Some(asvk), _) => {
                let mut pem = pem_encode(&asvk);
                if let Some(ark) = from_table(HostCertKind::Ark) {
                    pem.extend_from_slice(&pem_encode(&ark));
                }
                Some(pem)
            }
            (None, Some(pem)) => Some(pem.clone()),
            (None, None) => return Err(MissingInput::SnpVlekChain.into()),
        }
    } else {
        // The verifier pins AMD's ASK/ARK for VCEKs; a shipped copy only adds bytes.
        None
    };
    Ok(Evidence::SevSnp {
        report,
        vcek_der: signing,
        ask_ark_pem: chain_pem,
    })
}

/// The product a report names (version ≥ 3 carries CPUID family and model).
fn report_product(report: &AttestationReport) -> Option<SnpProduct> {
    match (report.cpuid_fam_id?, report.cpuid_mod_id?) {
        (0x19, 0x00..=0x0f) => Some(SnpProduct::Milan),
        (0x19, _) => Some(SnpProduct::Genoa),
        (0x1a, _) => Some(SnpProduct::Turin),
        _ => None,
    }
}

/// The KDS URL of the VCEK for this chip and REPORTED_TCB.
pub fn kds_vcek_url(
    base: &str,
    product: SnpProduct,
    chip_id: &[u8; 64],
    tcb: &SnpReportedTcb,
) -> String {
    let base = base.trim_end_matches('/');
    // Turin's hwID is the first 8 bytes of CHIP_ID and its TCB carries the FMC SPL.
    let (name, hw_id, fmc) = match product {
        SnpProduct::Milan => ("Milan", &chip_id[..], String::new()),
        SnpProduct::Genoa => ("Genoa", &chip_id[..], String::new()),
        SnpProduct::Turin => (
            "Turin",
            &chip_id[..8],
            format!("fmcSPL={:02}&", tcb.fmc.unwrap_or(0)),
        ),
    };
    format!(
        "{base}/vcek/v1/{name}/{}?{fmc}blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        hex::encode(hw_id),
        tcb.bootloader,
        tcb.tee,
        tcb.snp,
        tcb.microcode
    )
}

/// REPORTED_TCB as the KDS path needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnpReportedTcb {
    /// FMC SPL (Turin only).
    pub fmc: Option<u8>,
    /// PSP bootloader SPL.
    pub bootloader: u8,
    /// PSP OS SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

fn fetch_vcek(report: &AttestationReport, config: &SnpCertConfig) -> Result<Vec<u8>> {
    let base = config.kds_url.as_deref().unwrap_or_default();
    let product = config
        .product
        .or_else(|| report_product(report))
        .ok_or(MissingInput::SnpProduct)?;
    let t = &report.reported_tcb;
    let tcb = SnpReportedTcb {
        fmc: t.fmc,
        bootloader: t.bootloader,
        tee: t.tee,
        snp: t.snp,
        microcode: t.microcode,
    };
    let url = kds_vcek_url(base, product, &report.chip_id, &tcb);
    info!(target: "sdk::attest", %url, "fetching the VCEK from AMD KDS");
    let reply = http::get(&url)?;
    to_der(&reply.body)
}

/// DER of a certificate given as DER or PEM.
fn to_der(bytes: &[u8]) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok();
    match text.filter(|t| t.trim_start().starts_with("-----BEGIN")) {
        None => Ok(bytes.to_vec()),
        Some(pem) => {
            use base64::Engine as _;
            let body: String = pem
                .lines()
                .skip_while(|l| !l.starts_with("-----BEGIN"))
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| AttestError::Certificate {
                    which: "VCEK/VLEK file",
                    reason: e.to_string(),
                })
        }
    }
}

/// PEM of one DER certificate.
pub(crate) fn pem_encode(der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_and_matches_the_sev_crate_layout() {
        let certs = vec![
            HostCert {
                kind: HostCertKind::Vcek,
                der: vec![1, 2, 3],
            },
            HostCert {
                kind: HostCertKind::Ark,
                der: vec![4; 10],
            },
        ];
        let bytes = encode_cert_table(&certs);
        assert_eq!(parse_cert_table(&bytes).unwrap(), certs);
        let sev_layout = sev::firmware::host::CertTableEntry::cert_table_to_vec_bytes(&[
            sev::firmware::host::CertTableEntry::new(
                sev::firmware::host::CertType::VCEK,
                vec![1, 2, 3],
            ),
            sev::firmware::host::CertTableEntry::new(
                sev::firmware::host::CertType::ARK,
                vec![4; 10],
            ),
        ])
        .unwrap();
        assert_eq!(parse_cert_table(&sev_layout).unwrap(), certs);
    }

    #[test]
    fn malformed_tables_are_refused() {
        let mut bytes = encode_cert_table(&[HostCert {
            kind: HostCertKind::Vcek,
            der: vec![1, 2, 3],
        }]);
        assert!(parse_cert_table(&bytes[..30]).is_err());
        bytes[20] = 0xff; // length far past the end
        assert!(matches!(
            parse_cert_table(&bytes),
            Err(AttestError::CertTable(_))
        ));
    }

    #[test]
    fn pem_and_der_files_give_the_same_der() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(to_der(&pem_encode(&der)).unwrap(), der);
        assert_eq!(to_der(&der).unwrap(), der);
    }
}
