//! The GPU attestation report of NVIDIA Hopper in confidential-computing mode: the SPDM 1.1
//! `GET_MEASUREMENTS` request the driver sent (with our nonce) followed by the GPU's
//! `MEASUREMENTS` response, signed by the GPU's attestation key over both.
//!
//! ```text
//! request (37):  version | code 0xE0 | param1 | param2 | nonce[32] | slot id
//! response:      version | code 0x60 | param1 | param2 | block count | record length:u24le
//!                | record (blocks: index | spec | size:u16le | type | value size:u16le | value)
//!                | responder nonce[32] | opaque length:u16le
//!                | opaque (fields: type:u16le | size:u16le | value) | signature[96]
//! ```
//!
//! The signature is ECDSA P-384 (r ‖ s, big-endian) over SHA-384 of everything before it.

use std::collections::BTreeMap;

use super::super::error::{AttestError, Result};

/// Length of the `GET_MEASUREMENTS` request that starts the report.
pub const SPDM_REQUEST_LEN: usize = 37;
/// Length of the ECDSA P-384 signature that ends it.
pub const SPDM_SIGNATURE_LEN: usize = 96;
const GET_MEASUREMENTS: u8 = 0xE0;
const MEASUREMENTS: u8 = 0x60;
/// Opaque field: driver version (NUL-terminated text).
pub const OPAQUE_DRIVER_VERSION: u16 = 3;
/// Opaque field: VBIOS version (8 bytes).
pub const OPAQUE_VBIOS_VERSION: u16 = 6;
/// Opaque field: firmware id, also carried by the attestation key's certificate.
pub const OPAQUE_FWID: u16 = 20;

/// A parsed report; the raw bytes stay with the caller (the signature covers them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdmReport {
    /// The requester's nonce: what binds the report to a worker.
    pub nonce: [u8; 32],
    /// Measurement values by SPDM block index (1-based).
    pub measurements: BTreeMap<u8, Vec<u8>>,
    /// Opaque fields by type.
    pub opaque: BTreeMap<u16, Vec<u8>>,
    /// The bytes the signature covers.
    pub signed_len: usize,
    /// ECDSA P-384 r ‖ s.
    pub signature: [u8; SPDM_SIGNATURE_LEN],
}

impl SpdmReport {
    /// Parses a report, refusing wrong message codes, inconsistent lengths and trailing bytes.
    pub fn parse(raw: &[u8]) -> Result<Self> {
        let bad = |reason: String| AttestError::GpuReportParse(reason);
        let mut r = Cursor { raw, pos: 0 };
        let request = r.take(SPDM_REQUEST_LEN, "request")?;
        if request[1] != GET_MEASUREMENTS {
            return Err(bad(format!(
                "request code {:#04x}, expected GET_MEASUREMENTS (0xe0)",
                request[1]
            )));
        }
        let nonce: [u8; 32] = request[4..36].try_into().expect("32 bytes");
        let head = r.take(8, "response header")?;
        if head[1] != MEASUREMENTS {
            return Err(bad(format!(
                "response code {:#04x}, expected MEASUREMENTS (0x60)",
                head[1]
            )));
        }
        let blocks = head[4];
        let record_len = u32::from_le_bytes([head[5], head[6], head[7], 0]) as usize;
        let record = r.take(record_len, "measurement record")?;
        let measurements = parse_blocks(record, blocks)?;
        r.take(32, "responder nonce")?;
        let opaque_len = u16::from_le_bytes(r.array("opaque length")?) as usize;
        let opaque = parse_opaque(r.take(opaque_len, "opaque data")?)?;
        let signed_len = r.pos;
        let signature = r.array::<SPDM_SIGNATURE_LEN>("signature")?;
        if r.pos != raw.len() {
            return Err(bad(format!(
                "{} bytes after the signature",
                raw.len() - r.pos
            )));
        }
        Ok(Self {
            nonce,
            measurements,
            opaque,
            signed_len,
            signature,
        })
    }

    /// The driver version the report names (`550.90.07`).
    pub fn driver_version(&self) -> Option<String> {
        let v = self.opaque.get(&OPAQUE_DRIVER_VERSION)?;
        let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
        std::str::from_utf8(&v[..end]).ok().map(str::to_owned)
    }

    /// The VBIOS version the report names, as NVIDIA writes it in RIMs (`96.00.9F.00.01`).
    pub fn vbios_version(&self) -> Option<String> {
        let v = self.opaque.get(&OPAQUE_VBIOS_VERSION)?;
        (v.len() >= 5).then(|| {
            format!(
                "{:02X}.{:02X}.{:02X}.{:02X}.{:02X}",
                v[3], v[2], v[1], v[0], v[4]
            )
        })
    }
}

fn parse_blocks(record: &[u8], count: u8) -> Result<BTreeMap<u8, Vec<u8>>> {
    let mut r = Cursor {
        raw: record,
        pos: 0,
    };
    let mut out = BTreeMap::new();
    for _ in 0..count {
        let [index, _spec] = r.array("measurement block header")?;
        let size = u16::from_le_bytes(r.array("measurement block size")?) as usize;
        let block = r.take(size, "measurement block")?;
        // DMTF measurement: type, value size (u16le), value.
        if block.len() < 3 {
            return Err(AttestError::GpuReportParse(format!(
                "measurement block {index} too short"
            )));
        }
        let value_len = u16::from_le_bytes([block[1], block[2]]) as usize;
        if 3 + value_len != block.len() {
            return Err(AttestError::GpuReportParse(format!(
                "measurement block {index}: value size {value_len} does not fill the block of {size}"
            )));
        }
        if out.insert(index, block[3..].to_vec()).is_some() {
            return Err(AttestError::GpuReportParse(format!(
                "measurement block {index} twice"
            )));
        }
    }
    if r.pos != record.len() {
        return Err(AttestError::GpuReportParse(format!(
            "{} bytes after {count} measurement blocks",
            record.len() - r.pos
        )));
    }
    Ok(out)
}

fn parse_opaque(data: &[u8]) -> Result<BTreeMap<u16, Vec<u8>>> {
    let mut r = Cursor { raw: data, pos: 0 };
    let mut out = BTreeMap::new();
    while r.pos < data.len() {
        let kind = u16::from_le_bytes(r.array("opaque field type")?);
        let len = u16::from_le_bytes(r.array("opaque field size")?) as usize;
        let value = r.take(len, "opaque field")?;
        out.insert(kind, value.to_vec());
    }
    Ok(out)
}

struct Cursor<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.raw.len());
        let end =
            end.ok_or_else(|| AttestError::GpuReportParse(format!("truncated in {field}")))?;
        let out = &self.raw[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        Ok(self.take(N, field)?.try_into().expect("N bytes"))
    }
}
