//! NVIDIA Hopper confidential-computing evidence: the GPU's signed SPDM measurement report, its
//! device certificate chain up to NVIDIA's device identity root, and the two signed RIMs (driver
//! and VBIOS) whose golden values the measurements must match.
//!
//! ```text
//! worker:  nonce = WorkerBinding::gpu_nonce ─▶ GpuEvidenceProvider::collect ─▶ GpuEvidence
//!          REPORT_DATA binds sha256(GpuEvidence) ─▶ Evidence::WithGpu { cpu, gpu }
//! client:  chain ─▶ report signature ─▶ FWID ─▶ RIM signatures ─▶ RIM versions ─▶ measurements
//!          (verify_evidence), then nonce and REPORT_DATA against the worker's keys (verify_worker)
//! ```
//!
//! Everything runs offline: the RIMs travel with the evidence (their signature is what makes them
//! trustworthy, like a VCEK next to an SEV-SNP report) and the roots are pinned in the binary.
//! Certificate revocation (NVIDIA's OCSP) is not checked: a revoked GPU is refused only once its
//! RIMs or Root's policy say so.

mod c14n;
mod provider;
mod rim;
mod spdm;
mod x509;

use std::collections::BTreeMap;
use std::fmt;

use p384::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};
use x509_cert::spki::ObjectIdentifier;

use super::error::{AttestError, Result};
use super::policy::Policy;

pub use provider::{CommandGpuProvider, GpuEvidenceProvider};
pub use rim::{GoldenMeasurement, Rim};
pub use spdm::{SPDM_REQUEST_LEN, SPDM_SIGNATURE_LEN, SpdmReport};

/// NVIDIA Device Identity CA: the root of every GPU's attestation-key chain (from NVIDIA's
/// `nv-local-gpu-verifier`, `verifier/certs/verifier_device_root.pem`).
pub const NVIDIA_DEVICE_ROOT_PEM: &str = include_str!("roots/nvidia_device_identity_ca.pem");
/// NVIDIA CoRIM signing Root CA: the root of the RIM signing chains
/// (`verifier/certs/verifier_RIM_root.pem`).
pub const NVIDIA_RIM_ROOT_PEM: &str = include_str!("roots/nvidia_corim_signing_root_ca.pem");

/// TCG DICE FWID extension: the attestation key certificate names the firmware it was made for.
const TCG_DICE_FWID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
const TAG_GPU: u32 = 0x6e76_6801; // "nvh\x01": NVIDIA Hopper
const MAX_REPORT_LEN: usize = 16 * 1024;
const MAX_CERT_LEN: usize = 8 * 1024;

/// Which roots GPU evidence must chain to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GpuTrust {
    /// NVIDIA's device identity and RIM signing roots, pinned in this crate.
    #[default]
    Nvidia,
    /// Other roots (DER): tests only; never built from on-chain data.
    Custom {
        /// Root of the device (attestation key) chain.
        device_root_der: Vec<u8>,
        /// Root of the RIM signing chain.
        rim_root_der: Vec<u8>,
    },
}

/// GPU rules of a [`Policy`].
#[derive(Debug, Clone, Default)]
pub struct GpuPolicy {
    /// Refuse evidence without a GPU part (`--require-gpu-attestation`).
    pub required: bool,
    /// Where the roots come from.
    pub trust: GpuTrust,
}

/// GPU evidence as the worker collects it and clients receive it.
#[derive(Clone, PartialEq, Eq)]
pub struct GpuEvidence {
    /// The SPDM `GET_MEASUREMENTS` request and signed response, raw.
    pub report: Vec<u8>,
    /// The device certificate chain (DER), attestation key first; NVIDIA's root may end it.
    pub cert_chain: Vec<Vec<u8>>,
    /// The driver RIM (signed SWID tag XML) for the driver version in the report.
    pub driver_rim: Vec<u8>,
    /// The VBIOS RIM for the VBIOS version in the report.
    pub vbios_rim: Vec<u8>,
}

impl fmt::Debug for GpuEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GpuEvidence(hash {})", hex::encode(self.hash()))
    }
}

/// GPU evidence that passed the vendor checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedGpu {
    /// sha256 of the canonical GPU evidence encoding (what REPORT_DATA binds).
    pub evidence_hash: [u8; 32],
    /// The nonce the GPU signed (checked against the worker's keys by `verify_worker`).
    pub nonce: [u8; 32],
    /// Driver version named by the report and its RIM.
    pub driver_version: String,
    /// VBIOS version named by the report and its RIM.
    pub vbios_version: String,
    /// Number of measurements compared with golden values.
    pub measurements_checked: usize,
}

impl GpuEvidence {
    /// Canonical encoding: `"nvh\x01" | len report | report | count:u8 | (len cert | cert)* |
    /// len driver_rim | driver_rim | len vbios_rim | vbios_rim` (lengths u32 big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = TAG_GPU.to_be_bytes().to_vec();
        put_var(&mut out, &self.report);
        // Decode caps the count at x509::MAX_CHAIN_CERTS + 1.
        out.push(self.cert_chain.len().min(255) as u8);
        for cert in self.cert_chain.iter().take(255) {
            put_var(&mut out, cert);
        }
        put_var(&mut out, &self.driver_rim);
        put_var(&mut out, &self.vbios_rim);
        out
    }

    /// Decodes the canonical encoding strictly (exact lengths, no trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let tag = u32::from_be_bytes(r.take("gpu tag", 4)?.try_into().expect("4 bytes"));
        if tag != TAG_GPU {
            return Err(AttestError::UnknownKind { tag });
        }
        let report = r.var("gpu report", MAX_REPORT_LEN)?.to_vec();
        let count = r.take("gpu certificate count", 1)?[0] as usize;
        if count == 0 || count > x509::MAX_CHAIN_CERTS + 1 {
            return Err(AttestError::BadLength {
                field: "gpu certificate count",
                len: count,
                min: 1,
                max: x509::MAX_CHAIN_CERTS + 1,
            });
        }
        let cert_chain = (0..count)
            .map(|_| r.var("gpu certificate", MAX_CERT_LEN).map(<[u8]>::to_vec))
            .collect::<Result<Vec<_>>>()?;
        let driver_rim = r.var("driver RIM", rim::MAX_RIM_LEN)?.to_vec();
        let vbios_rim = r.var("VBIOS RIM", rim::MAX_RIM_LEN)?.to_vec();
        if r.pos != bytes.len() {
            return Err(AttestError::TrailingBytes {
                count: bytes.len() - r.pos,
            });
        }
        Ok(Self {
            report,
            cert_chain,
            driver_rim,
            vbios_rim,
        })
    }

    /// sha256 of the canonical encoding: the value REPORT_DATA's GPU field carries.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// The evidence from the files NVIDIA's tools produce: the report as hex, the device chain
    /// as PEM (leaf first), and the two RIMs.
    pub fn from_vendor_files(
        report_hex: &str,
        cert_chain_pem: &str,
        driver_rim: &[u8],
        vbios_rim: &[u8],
    ) -> Result<Self> {
        let report = hex::decode(report_hex.trim())
            .map_err(|e| AttestError::GpuReportParse(format!("report is not hex: {e}")))?;
        Ok(Self {
            report,
            cert_chain: pem_chain(cert_chain_pem)?,
            driver_rim: driver_rim.to_vec(),
            vbios_rim: vbios_rim.to_vec(),
        })
    }
}

/// DER certificates of a PEM stack, in order.
pub fn pem_chain(pem: &str) -> Result<Vec<Vec<u8>>> {
    use base64::Engine as _;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body.find(END).ok_or_else(|| AttestError::GpuCertChain {
            which: "GPU device",
            reason: "unterminated PEM certificate".into(),
        })?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| AttestError::GpuCertChain {
                    which: "GPU device",
                    reason: format!("PEM body: {e}"),
                })?,
        );
        rest = &body[end + END.len()..];
    }
    if out.is_empty() {
        return Err(AttestError::GpuCertChain {
            which: "GPU device",
            reason: "no PEM certificate".into(),
        });
    }
    Ok(out)
}

fn roots(policy: &Policy) -> Result<(Vec<u8>, Vec<u8>)> {
    match &policy.gpu.trust {
        GpuTrust::Nvidia => Ok((
            pem_chain(NVIDIA_DEVICE_ROOT_PEM)?.remove(0),
            pem_chain(NVIDIA_RIM_ROOT_PEM)?.remove(0),
        )),
        GpuTrust::Custom {
            device_root_der,
            rim_root_der,
        } => Ok((device_root_der.clone(), rim_root_der.clone())),
    }
}

/// Verifies one RIM's XML signature and signing chain (up to the policy's RIM root, at the policy
/// clock) and reads its active golden measurements.
pub fn verify_rim(xml: &[u8], policy: &Policy) -> Result<Rim> {
    let (_, rim_root) = roots(policy)?;
    rim::verify(xml, "RIM", &rim_root, policy.now_unix())
}

/// Verifies GPU evidence against the pinned roots and its RIMs at the policy clock. The nonce
/// and the REPORT_DATA binding need the worker's keys: [`super::verify_worker`] checks them.
pub fn verify_gpu(gpu: &GpuEvidence, policy: &Policy) -> Result<VerifiedGpu> {
    let now = policy.now_unix();
    let (device_root, rim_root) = roots(policy)?;
    let report = SpdmReport::parse(&gpu.report)?;

    let leaf = x509::verify_chain(&gpu.cert_chain, &device_root, now, "GPU device")?;
    let signature = p384::ecdsa::Signature::from_slice(&report.signature)
        .map_err(|_| AttestError::GpuReportSignatureInvalid)?;
    leaf.key
        .verify(&gpu.report[..report.signed_len], &signature)
        .map_err(|_| AttestError::GpuReportSignatureInvalid)?;
    check_fwid(&report, &leaf.cert)?;

    let driver = rim::verify(&gpu.driver_rim, "driver RIM", &rim_root, now)?;
    let vbios = rim::verify(&gpu.vbios_rim, "VBIOS RIM", &rim_root, now)?;
    let driver_version = report.driver_version().unwrap_or_default();
    let vbios_version = report.vbios_version().unwrap_or_default();
    for (which, rim, version) in [
        ("driver RIM", &driver, &driver_version),
        ("VBIOS RIM", &vbios, &vbios_version),
    ] {
        if !rim.version.eq_ignore_ascii_case(version) {
            return Err(AttestError::GpuRimVersionMismatch {
                which,
                rim: rim.version.clone(),
                report: version.clone(),
            });
        }
    }
    let golden = merge(&driver, &vbios)?;
    for (index, (source, g)) in &golden {
        let runtime = report.measurements.get(&(index + 1));
        let matches = runtime.is_some_and(|v| v.len() == g.size && g.alternatives.contains(v));
        if !matches {
            return Err(AttestError::GpuMeasurementMismatch {
                index: *index,
                rim: source,
                actual: runtime.map(hex::encode).unwrap_or_else(|| "absent".into()),
            });
        }
    }
    Ok(VerifiedGpu {
        evidence_hash: gpu.hash(),
        nonce: report.nonce,
        driver_version,
        vbios_version,
        measurements_checked: golden.len(),
    })
}

/// The active golden measurements of both RIMs by index; an index both claim is refused (there
/// would be no single expected value).
fn merge<'r>(
    driver: &'r Rim,
    vbios: &'r Rim,
) -> Result<BTreeMap<u8, (&'static str, &'r GoldenMeasurement)>> {
    let mut out = BTreeMap::new();
    for (source, rim) in [("driver RIM", driver), ("VBIOS RIM", vbios)] {
        for (index, g) in &rim.measurements {
            if out.insert(*index, (source, g)).is_some() {
                return Err(AttestError::GpuRimInvalid {
                    which: source,
                    reason: format!("measurement {index} is active in both RIMs"),
                });
            }
        }
    }
    Ok(out)
}

/// The report's FWID, when it names one, must be the one in the attestation key certificate
/// (the last 48 bytes of its TCG DICE FWID extension).
fn check_fwid(report: &SpdmReport, leaf: &x509_cert::Certificate) -> Result<()> {
    let Some(fwid) = report.opaque.get(&spdm::OPAQUE_FWID) else {
        return Ok(());
    };
    let ext = leaf
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| e.extn_id == TCG_DICE_FWID)
        .map(|e| e.extn_value.as_bytes());
    match ext {
        Some(v) if v.len() >= fwid.len() && v[v.len() - fwid.len()..] == fwid[..] => Ok(()),
        _ => Err(AttestError::GpuFwidMismatch),
    }
}

fn put_var(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(AttestError::Truncated { field })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn var(&mut self, field: &'static str, max: usize) -> Result<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(field, 4)?.try_into().expect("4 bytes")) as usize;
        if len == 0 || len > max {
            return Err(AttestError::BadLength {
                field,
                len,
                min: 1,
                max,
            });
        }
        self.take(field, len)
    }
}
