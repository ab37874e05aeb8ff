//! `Evidence` and its canonical binary encoding.
//!
//! Encoding (all integers big-endian, every variable field length-prefixed with a u32):
//!
//! ```text
//! SevSnp:    0x736e7001 ("snp\x01") | len report (=1184) | report | len vcek_der | vcek_der
//!                                   | len ask_ark_pem (0 = absent) | ask_ark_pem
//! Tdx:       0x74647801 ("tdx\x01") | len quote | quote | len collateral_json | collateral_json
//! Simulated: 0x73696d01 ("sim\x01") | report_data (64) | len label (u8) | label (UTF-8)
//! WithGpu:   0x67707501 ("gpu\x01") | len cpu | cpu (one of the above) | len gpu | gpu
//!            (GpuEvidence::encode)
//! ```
//!
//! The kind tag comes first and the three tags differ, so Simulated evidence can never decode as
//! SEV-SNP or TDX. Decoding is strict (exact lengths, no trailing bytes), so decode ∘ encode is
//! the identity and [`Evidence::hash`] is well defined.

use std::fmt;

use sha2::{Digest, Sha256};

use super::error::{AttestError, Result};
use super::gpu::GpuEvidence;

/// Size of an SEV-SNP attestation report (ABI spec, table "ATTESTATION_REPORT").
pub const SNP_REPORT_LEN: usize = 1184;
const TAG_SEV_SNP: u32 = 0x736e_7001;
const TAG_TDX: u32 = 0x7464_7801;
const TAG_SIMULATED: u32 = 0x7369_6d01;
const TAG_WITH_GPU: u32 = 0x6770_7501;
const MAX_GPU_LEN: usize = 1024 * 1024;
const MAX_CERT_LEN: usize = 16 * 1024;
const MAX_CHAIN_LEN: usize = 32 * 1024;
const MAX_QUOTE_LEN: usize = 64 * 1024;
const MAX_COLLATERAL_LEN: usize = 1024 * 1024;
const MAX_LABEL_LEN: usize = 64;

/// The kind of a TEE evidence, as recorded on-chain (`code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvidenceKind {
    /// AMD SEV-SNP.
    SevSnp,
    /// Intel TDX.
    Tdx,
    /// No TEE at all: development only, printed as `UNATTESTED (SIMULATED TEE)`.
    Simulated,
}

impl EvidenceKind {
    /// The code stored in Root's allowed kinds and the Worker record.
    pub const fn code(self) -> u8 {
        match self {
            Self::Simulated => 0,
            Self::SevSnp => 1,
            Self::Tdx => 2,
        }
    }

    /// The kind with this on-chain code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Simulated),
            1 => Some(Self::SevSnp),
            2 => Some(Self::Tdx),
            _ => None,
        }
    }
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SevSnp => "AMD SEV-SNP",
            Self::Tdx => "Intel TDX",
            Self::Simulated => "UNATTESTED (SIMULATED TEE)",
        })
    }
}

/// Attestation evidence of a worker, as served to clients and committed on-chain by its hash.
#[derive(Clone, PartialEq, Eq)]
pub enum Evidence {
    /// An SEV-SNP report with the VCEK that signed it.
    SevSnp {
        /// The raw 1184-byte report, kept raw because the signature covers these exact bytes.
        report: Vec<u8>,
        /// The VCEK certificate (DER).
        vcek_der: Vec<u8>,
        /// Optional ASK+ARK PEM stack; informative only, the verifier trusts pinned roots.
        ask_ark_pem: Option<Vec<u8>>,
    },
    /// A TDX quote with the collateral (Intel PCS/PCCS JSON, `dcap-qvl` `QuoteCollateralV3`).
    Tdx {
        /// The raw quote.
        quote: Vec<u8>,
        /// The collateral as JSON bytes, kept verbatim so the hash is stable.
        collateral_json: Vec<u8>,
    },
    /// CPU evidence with the GPU evidence its REPORT_DATA binds (NVIDIA Hopper CC).
    WithGpu {
        /// The CPU TEE's evidence (never itself `WithGpu`).
        cpu: Box<Evidence>,
        /// The GPU's evidence; its hash is REPORT_DATA's GPU field.
        gpu: GpuEvidence,
    },
    /// No hardware evidence: development only.
    Simulated {
        /// What a real TEE would have put in REPORT_DATA.
        report_data: [u8; 64],
        /// A free-form label (host name, developer), at most 64 bytes.
        label: String,
    },
}

impl Evidence {
    /// The kind of this evidence.
    pub fn kind(&self) -> EvidenceKind {
        match self {
            Self::WithGpu { cpu, .. } => cpu.kind(),
            Self::SevSnp { .. } => EvidenceKind::SevSnp,
            Self::Tdx { .. } => EvidenceKind::Tdx,
            Self::Simulated { .. } => EvidenceKind::Simulated,
        }
    }

    /// The canonical encoding (see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::SevSnp {
                report,
                vcek_der,
                ask_ark_pem,
            } => {
                out.extend_from_slice(&TAG_SEV_SNP.to_be_bytes());
                put_var(&mut out, report);
                put_var(&mut out, vcek_der);
                put_var(&mut out, ask_ark_pem.as_deref().unwrap_or_default());
            }
            Self::Tdx {
                quote,
                collateral_json,
            } => {
                out.extend_from_slice(&TAG_TDX.to_be_bytes());
                put_var(&mut out, quote);
                put_var(&mut out, collateral_json);
            }
            Self::WithGpu { cpu, gpu } => {
                out.extend_from_slice(&TAG_WITH_GPU.to_be_bytes());
                put_var(&mut out, &cpu.encode());
                put_var(&mut out, &gpu.encode());
            }
            Self::Simulated { report_data, label } => {
                out.extend_from_slice(&TAG_SIMULATED.to_be_bytes());
                out.extend_from_slice(report_data);
                // Constructors and decode keep the label ≤ 64 bytes; clamp defensively so an
                // oversized label set by hand cannot produce an undecodable encoding.
                let label = &label.as_bytes()[..label.len().min(MAX_LABEL_LEN)];
                out.push(label.len() as u8);
                out.extend_from_slice(label);
            }
        }
        out
    }

    /// Decodes the canonical encoding, rejecting unknown tags, bad lengths and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let tag = u32::from_be_bytes(r.array::<4>("kind tag")?);
        let evidence = match tag {
            TAG_SEV_SNP => {
                let report = r.var("report", SNP_REPORT_LEN, SNP_REPORT_LEN)?.to_vec();
                let vcek_der = r.var("vcek_der", 1, MAX_CERT_LEN)?.to_vec();
                let chain = r.var("ask_ark_pem", 0, MAX_CHAIN_LEN)?;
                let ask_ark_pem = (!chain.is_empty()).then(|| chain.to_vec());
                Self::SevSnp {
                    report,
                    vcek_der,
                    ask_ark_pem,
                }
            }
            TAG_TDX => {
                let quote = r.var("quote", 1, MAX_QUOTE_LEN)?.to_vec();
                let collateral_json = r.var("collateral_json", 2, MAX_COLLATERAL_LEN)?.to_vec();
                Self::Tdx {
                    quote,
                    collateral_json,
                }
            }
            TAG_SIMULATED => {
                let report_data = r.array::<64>("report_data")?;
                let len = r.array::<1>("label length")?[0] as usize;
                if len > MAX_LABEL_LEN {
                    return Err(AttestError::BadLength {
                        field: "label",
                        len,
                        min: 0,
                        max: MAX_LABEL_LEN,
                    });
                }
                let label = std::str::from_utf8(r.take("label", len)?)
                    .map_err(|_| AttestError::NotUtf8 { field: "label" })?
                    .to_owned();
                Self::Simulated { report_data, label }
            }
            TAG_WITH_GPU => {
                let cpu =
                    Self::decode(r.var("cpu evidence", 1, MAX_QUOTE_LEN + MAX_COLLATERAL_LEN)?)?;
                if matches!(cpu, Self::WithGpu { .. }) {
                    return Err(AttestError::GpuNested);
                }
                let gpu = GpuEvidence::decode(r.var("gpu evidence", 1, MAX_GPU_LEN)?)?;
                Self::WithGpu {
                    cpu: Box::new(cpu),
                    gpu,
                }
            }
            tag => return Err(AttestError::UnknownKind { tag }),
        };
        if r.pos != bytes.len() {
            return Err(AttestError::TrailingBytes {
                count: bytes.len() - r.pos,
            });
        }
        Ok(evidence)
    }

    /// sha256 of the canonical encoding: the evidence hash stored in the Worker record and
    /// carried by every receipt.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// CPU evidence with GPU evidence attached; the CPU report's REPORT_DATA must bind
    /// `gpu.hash()` ([`super::WorkerBinding::gpu_evidence_hash`]).
    pub fn with_gpu(cpu: Evidence, gpu: GpuEvidence) -> Result<Self> {
        match cpu {
            Self::WithGpu { .. } => Err(AttestError::GpuNested),
            cpu => Ok(Self::WithGpu {
                cpu: Box::new(cpu),
                gpu,
            }),
        }
    }

    /// The CPU TEE's evidence (itself, unless GPU evidence is attached).
    pub fn cpu(&self) -> &Evidence {
        match self {
            Self::WithGpu { cpu, .. } => cpu,
            other => other,
        }
    }

    /// The GPU evidence, when attached.
    pub fn gpu(&self) -> Option<&GpuEvidence> {
        match self {
            Self::WithGpu { gpu, .. } => Some(gpu),
            _ => None,
        }
    }

    /// Simulated evidence for a REPORT_DATA; the label is cut to 64 bytes at a char boundary.
    pub fn simulated(report_data: [u8; 64], label: &str) -> Self {
        let mut end = label.len().min(MAX_LABEL_LEN);
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        Self::Simulated {
            report_data,
            label: label[..end].to_owned(),
        }
    }
}

impl fmt::Debug for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Evidence({}, hash {})",
            self.kind(),
            hex::encode(self.hash())
        )
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simulated { label, .. } => write!(f, "{} evidence ({label})", self.kind()),
            Self::WithGpu { cpu, .. } => {
                write!(
                    f,
                    "{cpu} + NVIDIA GPU evidence {}",
                    hex::encode(self.hash())
                )
            }
            _ => write!(f, "{} evidence {}", self.kind(), hex::encode(self.hash())),
        }
    }
}

fn put_var(out: &mut Vec<u8>, field: &[u8]) {
    // Field lengths are bounded far below u32::MAX by the decode limits.
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

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn var(&mut self, field: &'static str, min: usize, max: usize) -> Result<&'a [u8]> {
        let len = u32::from_be_bytes(self.array::<4>(field)?) as usize;
        if len < min || len > max {
            return Err(AttestError::BadLength {
                field,
                len,
                min,
                max,
            });
        }
        self.take(field, len)
    }
}
