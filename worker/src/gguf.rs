//! A GGUF reader: header, metadata, tensor infos, and dequantisation of the ggml types the
//! supported models use (F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, and the K-quants Q4_K and Q6_K
//! that common GGUFs mix in; Q5_0/Q5_1 are what llama.cpp's K-quant mixes fall back to for rows
//! that are not a multiple of 256, such as Qwen2.5-0.5B's 896).
//!
//! Every length and count read from the file is checked against the bytes that remain before
//! anything is allocated, so a truncated or hostile file yields [`Error::Truncated`] or
//! [`Error::Malformed`], never a panic or a huge allocation.

use std::collections::BTreeMap;

use half::f16;

use crate::error::{Error, Result};

const MAGIC: u32 = 0x4655_4747; // "GGUF" read little-endian
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: u32 = 4;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Unsigned integer of any width.
    U64(u64),
    /// Signed integer of any width.
    I64(i64),
    /// f32 or f64.
    F64(f64),
    /// Boolean.
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Array of values.
    Array(Vec<Value>),
}

/// The ggml tensor types this engine can dequantise (named as ggml names them).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// Blocks of 32: f16 scale, 4-bit values offset by 8.
    Q4_0,
    /// Blocks of 32: f16 scale and minimum, 4-bit values.
    Q4_1,
    /// Blocks of 32: f16 scale, 32 high bits, 4-bit low bits; values offset by 16.
    Q5_0,
    /// Blocks of 32: f16 scale and minimum, 32 high bits, 4-bit low bits.
    Q5_1,
    /// Blocks of 32: f16 scale, 8-bit signed values.
    Q8_0,
    /// Super-blocks of 256: f16 scale and minimum, eight 6-bit sub-block scales and minimums,
    /// 4-bit values.
    Q4_K,
    /// Super-blocks of 256: f16 scale, sixteen 8-bit sub-block scales, 6-bit values offset by 32.
    Q6_K,
}

impl GgmlType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            12 => Self::Q4_K,
            14 => Self::Q6_K,
            _ => return None,
        })
    }

    /// (elements per block, bytes per block)
    pub fn block(self) -> (u64, u64) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q4_K => (256, 144),
            Self::Q6_K => (256, 210),
        }
    }

    /// Elements per block.
    pub fn block_elems(self) -> usize {
        self.block().0 as usize
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        self.block().1 as usize
    }
}

/// Where a tensor lives in the file and how it is stored.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the fastest-varying (the row length).
    pub dims: Vec<usize>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: usize,
    /// Bytes of data.
    pub n_bytes: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> usize {
        self.dims.iter().product()
    }

    /// Shape in row-major (PyTorch / burn) order: the reverse of the ggml dims.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Debug)]
pub struct Gguf<'a> {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Metadata key/value pairs.
    pub metadata: BTreeMap<String, Value>,
    /// Tensor infos by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    bytes: &'a [u8],
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n > remaining {
            return Err(Error::Truncated {
                what: what.to_string(),
                offset: self.pos as u64,
                needed: n,
                len: self.bytes.len() as u64,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self
            .take(N as u64, what)?
            .try_into()
            .expect("take returned N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::Malformed(format!("{what}: invalid UTF-8")))
    }

    fn value(&mut self, type_id: u32, key: &str, depth: u32) -> Result<Value> {
        Ok(match type_id {
            0 => Value::U64(self.array::<1>(key)?[0] as u64),
            1 => Value::I64(self.array::<1>(key)?[0] as i8 as i64),
            2 => Value::U64(u16::from_le_bytes(self.array(key)?) as u64),
            3 => Value::I64(i16::from_le_bytes(self.array(key)?) as i64),
            4 => Value::U64(self.u32(key)? as u64),
            5 => Value::I64(i32::from_le_bytes(self.array(key)?) as i64),
            6 => Value::F64(f32::from_le_bytes(self.array(key)?) as f64),
            7 => Value::Bool(self.array::<1>(key)?[0] != 0),
            8 => Value::String(self.string(key)?),
            9 => {
                if depth > 0 {
                    return Err(Error::Malformed(format!("{key}: nested arrays")));
                }
                let item_type = self.u32(key)?;
                let count = self.u64(key)?;
                // Every item takes at least one byte: bound the allocation by what is left.
                let remaining = (self.bytes.len() - self.pos) as u64;
                if count > remaining {
                    return Err(Error::Truncated {
                        what: format!("array {key}"),
                        offset: self.pos as u64,
                        needed: count,
                        len: self.bytes.len() as u64,
                    });
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(item_type, key, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => {
                return Err(Error::Malformed(format!(
                    "{key}: unknown value type {other}"
                )));
            }
        })
    }
}

impl<'a> Gguf<'a> {
    /// Parses the header, metadata and tensor infos, and checks every tensor's data range.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut c = Cursor { bytes, pos: 0 };
        let magic = c.u32("magic")?;
        if magic != MAGIC {
            return Err(Error::BadMagic(magic));
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::UnsupportedVersion(version));
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let type_id = c.u32(&key)?;
            let value = c.value(type_id, &key, 0)?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U64(a)) if *a > 0 && a.is_power_of_two() => *a,
            Some(other) => return Err(Error::Malformed(format!("general.alignment = {other:?}"))),
        };
        let mut infos = Vec::new();
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let n_dims = c.u32(&name)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(Error::Malformed(format!(
                    "tensor {name}: {n_dims} dimensions"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&name)?);
            }
            let type_id = c.u32(&name)?;
            let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| Error::UnknownTensorType {
                name: name.clone(),
                type_id,
            })?;
            let offset = c.u64(&name)?;
            infos.push((name, dims, ggml_type, offset));
        }
        let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
        let mut tensors = BTreeMap::new();
        for (name, dims, ggml_type, rel) in infos {
            let n_elements = dims
                .iter()
                .try_fold(1u64, |acc, d| acc.checked_mul(*d))
                .ok_or_else(|| {
                    Error::Malformed(format!("tensor {name}: element count overflows"))
                })?;
            let (block_elems, block_bytes) = ggml_type.block();
            if dims[0] % block_elems != 0 {
                return Err(Error::Malformed(format!(
                    "tensor {name}: row of {} is not a multiple of the {ggml_type:?} block",
                    dims[0]
                )));
            }
            let n_bytes = n_elements / block_elems * block_bytes;
            let offset = data_start
                .checked_add(rel)
                .ok_or_else(|| Error::Malformed(format!("tensor {name}: offset overflows")))?;
            if offset.saturating_add(n_bytes) > bytes.len() as u64 {
                return Err(Error::Truncated {
                    what: format!("data of tensor {name}"),
                    offset,
                    needed: n_bytes,
                    len: bytes.len() as u64,
                });
            }
            let info = TensorInfo {
                name: name.clone(),
                dims: dims.iter().map(|d| *d as usize).collect(),
                ggml_type,
                offset: offset as usize,
                n_bytes: n_bytes as usize,
            };
            if tensors.insert(name.clone(), info).is_some() {
                return Err(Error::Malformed(format!("tensor {name} appears twice")));
            }
        }
        Ok(Self {
            version,
            metadata,
            tensors,
            bytes,
        })
    }

    /// The tensor info, or [`Error::MissingTensor`].
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))
    }

    /// Dequantises a tensor to f32, in row-major order of [`TensorInfo::shape`].
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.tensor(name)?;
        let raw = &self.bytes[info.offset..info.offset + info.n_bytes];
        Ok(dequantize(info.ggml_type, raw))
    }

    /// A tensor's info and its raw (still quantised) bytes.
    pub fn raw(&self, name: &str) -> Result<(&TensorInfo, &'a [u8])> {
        let info = self.tensor(name)?;
        Ok((info, &self.bytes[info.offset..info.offset + info.n_bytes]))
    }

    /// A metadata value, or a [`Error::Metadata`] naming the key.
    pub fn get(&self, key: &str) -> Result<&Value> {
        self.metadata.get(key).ok_or_else(|| Error::Metadata {
            key: key.to_string(),
            reason: "missing".into(),
        })
    }

    /// An unsigned integer metadata value.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        match self.get(key)? {
            Value::U64(v) => Ok(*v),
            Value::I64(v) if *v >= 0 => Ok(*v as u64),
            other => Err(bad_type(key, "an unsigned integer", other)),
        }
    }

    /// A float metadata value.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        match self.get(key)? {
            Value::F64(v) => Ok(*v),
            other => Err(bad_type(key, "a float", other)),
        }
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.get(key)? {
            Value::String(v) => Ok(v),
            other => Err(bad_type(key, "a string", other)),
        }
    }

    /// An array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        match self.get(key)? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(bad_type(key, "an array of strings", other)),
                })
                .collect(),
            other => Err(bad_type(key, "an array of strings", other)),
        }
    }

    /// An array of integers.
    pub fn get_int_array(&self, key: &str) -> Result<Vec<i64>> {
        match self.get(key)? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::I64(i) => Ok(*i),
                    Value::U64(u) => Ok(*u as i64),
                    other => Err(bad_type(key, "an array of integers", other)),
                })
                .collect(),
            other => Err(bad_type(key, "an array of integers", other)),
        }
    }
}

fn bad_type(key: &str, expected: &str, got: &Value) -> Error {
    let got = match got {
        Value::Array(_) => "an array".to_string(),
        other => format!("{other:?}"),
    };
    Error::Metadata {
        key: key.to_string(),
        reason: format!("expected {expected}, found {got}"),
    }
}

/// Dequantises raw ggml data whose length is a whole number of blocks (checked by the parser).
pub fn dequantize(t: GgmlType, raw: &[u8]) -> Vec<f32> {
    let (elems, bytes) = (t.block_elems(), t.block_bytes());
    let mut out = vec![0f32; raw.len() / bytes * elems];
    for (b, o) in raw.chunks_exact(bytes).zip(out.chunks_exact_mut(elems)) {
        dequantize_block(t, b, o);
    }
    out
}

#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 6-bit scale and minimum of sub-block `j` of a Q4_K super-block (packed in 12 bytes).
#[inline(always)]
fn q4k_scale_min(j: usize, s: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((s[j] & 63) as f32, (s[j + 4] & 63) as f32)
    } else {
        (
            ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4)) as f32,
            ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as f32,
        )
    }
}

/// The 32 five-bit values of a Q5_0/Q5_1 block: value `j` takes its low four bits from the low
/// (j < 16) or high (j ≥ 16) nibble of byte `j % 16`, and its fifth bit from bit `j` of `qh`.
#[inline(always)]
fn q5_values(qh: u32, qs: &[u8], out: &mut [f32], f: impl Fn(u8) -> f32) {
    let (lo, hi) = out[..32].split_at_mut(16);
    for (j, ((l, h), q)) in lo.iter_mut().zip(hi.iter_mut()).zip(qs).enumerate() {
        let hl = ((qh >> j) & 1) as u8;
        let hh = ((qh >> (j + 16)) & 1) as u8;
        *l = f((q & 0x0f) | (hl << 4));
        *h = f((q >> 4) | (hh << 4));
    }
}

/// Dequantises one block (`t.block_bytes()` bytes) into `out` (`t.block_elems()` values). The
/// element order is the ggml one, so a row is its blocks one after another.
#[inline(always)]
pub fn dequantize_block(t: GgmlType, b: &[u8], out: &mut [f32]) {
    match t {
        GgmlType::F32 => out[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => out[0] = f16_at(b, 0),
        GgmlType::Q8_0 => {
            let d = f16_at(b, 0);
            for (o, q) in out[..32].iter_mut().zip(&b[2..34]) {
                *o = *q as i8 as f32 * d;
            }
        }
        GgmlType::Q4_0 => {
            let d = f16_at(b, 0);
            let (lo, hi) = out[..32].split_at_mut(16);
            for ((l, h), q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[2..18]) {
                *l = ((q & 0x0f) as i32 - 8) as f32 * d;
                *h = ((q >> 4) as i32 - 8) as f32 * d;
            }
        }
        GgmlType::Q4_1 => {
            let d = f16_at(b, 0);
            let m = f16_at(b, 2);
            let (lo, hi) = out[..32].split_at_mut(16);
            for ((l, h), q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[4..20]) {
                *l = (q & 0x0f) as f32 * d + m;
                *h = (q >> 4) as f32 * d + m;
            }
        }
        GgmlType::Q5_0 => {
            let d = f16_at(b, 0);
            q5_values(
                u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
                &b[6..22],
                out,
                |q| (q as i32 - 16) as f32 * d,
            );
        }
        GgmlType::Q5_1 => {
            let d = f16_at(b, 0);
            let m = f16_at(b, 2);
            q5_values(
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                &b[8..24],
                out,
                |q| q as f32 * d + m,
            );
        }
        GgmlType::Q4_K => {
            let d = f16_at(b, 0);
            let dmin = f16_at(b, 2);
            let scales = &b[4..16];
            let qs = &b[16..144];
            // Four groups of 64 values: 32 low nibbles, then 32 high nibbles of the same bytes.
            for g in 0..4 {
                let (s1, m1) = q4k_scale_min(2 * g, scales);
                let (s2, m2) = q4k_scale_min(2 * g + 1, scales);
                let (d1, m1, d2, m2) = (d * s1, dmin * m1, d * s2, dmin * m2);
                let q = &qs[32 * g..32 * g + 32];
                let (lo, hi) = out[64 * g..64 * g + 64].split_at_mut(32);
                for ((l, h), q) in lo.iter_mut().zip(hi.iter_mut()).zip(q) {
                    *l = d1 * (q & 0x0f) as f32 - m1;
                    *h = d2 * (q >> 4) as f32 - m2;
                }
            }
        }
        GgmlType::Q6_K => {
            let ql = &b[0..128];
            let qh = &b[128..192];
            let sc = &b[192..208];
            let d = f16_at(b, 208);
            // Two halves of 128 values; each value's low 4 bits are in `ql`, high 2 bits in `qh`.
            for h in 0..2 {
                let ql = &ql[64 * h..64 * h + 64];
                let qh = &qh[32 * h..32 * h + 32];
                let sc = &sc[8 * h..8 * h + 8];
                let o = &mut out[128 * h..128 * h + 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
                    let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                    o[l] = d * (sc[is] as i8 as f32) * q1 as f32;
                    o[l + 32] = d * (sc[is + 2] as i8 as f32) * q2 as f32;
                    o[l + 64] = d * (sc[is + 4] as i8 as f32) * q3 as f32;
                    o[l + 96] = d * (sc[is + 6] as i8 as f32) * q4 as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a GGUF v3 file with the given metadata (string values) and F32 tensors.
    pub(crate) fn build(
        meta: &[(&str, &str)],
        tensors: &[(&str, Vec<u64>, u32, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        let s = |b: &mut Vec<u8>, v: &str| {
            b.extend((v.len() as u64).to_le_bytes());
            b.extend(v.as_bytes());
        };
        b.extend(MAGIC.to_le_bytes());
        b.extend(3u32.to_le_bytes());
        b.extend((tensors.len() as u64).to_le_bytes());
        b.extend((meta.len() as u64).to_le_bytes());
        for (k, v) in meta {
            s(&mut b, k);
            b.extend(8u32.to_le_bytes());
            s(&mut b, v);
        }
        let mut off = 0u64;
        for (name, dims, ty, data) in tensors {
            s(&mut b, name);
            b.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend(d.to_le_bytes());
            }
            b.extend(ty.to_le_bytes());
            b.extend(off.to_le_bytes());
            off += (data.len() as u64).div_ceil(32) * 32;
        }
        while b.len() % 32 != 0 {
            b.push(0);
        }
        for (_, _, _, data) in tensors {
            b.extend(data);
            while b.len() % 32 != 0 {
                b.push(0);
            }
        }
        b
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn parses_metadata_and_f32_tensor() {
        let file = build(
            &[("general.name", "tiny")],
            &[("w", vec![2, 3], 0, f32s(&[1., 2., 3., 4., 5., 6.]))],
        );
        let g = Gguf::parse(&file).unwrap();
        assert_eq!(g.get_str("general.name").unwrap(), "tiny");
        assert_eq!(g.tensor("w").unwrap().shape(), vec![3, 2]);
        assert_eq!(g.dequantize("w").unwrap(), vec![1., 2., 3., 4., 5., 6.]);
        assert!(matches!(
            g.get_u64("general.name"),
            Err(Error::Metadata { .. })
        ));
        assert!(matches!(g.tensor("nope"), Err(Error::MissingTensor(_))));
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let file = build(
            &[("general.name", "tiny")],
            &[("w", vec![2, 3], 0, f32s(&[1., 2., 3., 4., 5., 6.]))],
        );
        let data_end = file.len() - 8; // the tensor data ends 8 bytes of padding before EOF
        for cut in 0..data_end {
            let err = Gguf::parse(&file[..cut]).unwrap_err();
            assert!(matches!(err, Error::Truncated { .. }), "cut {cut}: {err}");
        }
    }

    #[test]
    fn rejects_bad_magic_version_and_unknown_type() {
        let mut file = build(&[], &[("w", vec![32], 0, f32s(&[0.; 32]))]);
        file[0] = b'X';
        assert!(matches!(Gguf::parse(&file), Err(Error::BadMagic(_))));
        let mut file = build(&[], &[("w", vec![32], 0, f32s(&[0.; 32]))]);
        file[4] = 9;
        assert!(matches!(
            Gguf::parse(&file),
            Err(Error::UnsupportedVersion(9))
        ));
        let file = build(&[], &[("w", vec![32], 13, vec![0; 176])]); // 13 = Q5_K
        assert!(matches!(
            Gguf::parse(&file),
            Err(Error::UnknownTensorType { type_id: 13, .. })
        ));
    }

    #[test]
    fn rejects_absurd_counts_without_allocating() {
        let mut file = build(&[("k", "v")], &[]);
        // metadata count = u64::MAX: fails on the first missing key, not on an allocation
        file[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(Gguf::parse(&file), Err(Error::Truncated { .. })));
        let mut file = build(&[("k", "v")], &[]);
        // string length of the value = u64::MAX
        let pos = 24 + 8 + 1 + 4;
        file[pos..pos + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(Gguf::parse(&file), Err(Error::Truncated { .. })));
    }

    #[test]
    fn dequantizes_q4_1_q4_0_q8_0_and_f16() {
        let one = f16::from_f32(0.5).to_le_bytes();
        let min = f16::from_f32(-1.0).to_le_bytes();
        let mut q41 = [one, min].concat();
        q41.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = dequantize(GgmlType::Q4_1, &q41);
        assert_eq!(v[0], -1.0);
        assert_eq!(v[15], 15.0 * 0.5 - 1.0);
        assert_eq!(v[16], 15.0 * 0.5 - 1.0);
        assert_eq!(v[31], -1.0);
        let mut q40 = one.to_vec();
        q40.extend((0..16u8).map(|j| j | (j << 4)));
        let v = dequantize(GgmlType::Q4_0, &q40);
        assert_eq!((v[0], v[8], v[31]), (-4.0, 0.0, 3.5));
        let mut q80 = one.to_vec();
        q80.extend((0..32).map(|j| (j as i8 - 16) as u8));
        let v = dequantize(GgmlType::Q8_0, &q80);
        assert_eq!((v[0], v[31]), (-8.0, 7.5));
        assert_eq!(dequantize(GgmlType::F16, &one), vec![0.5]);
    }

    #[test]
    fn dequantizes_q5_0_and_q5_1_by_hand() {
        let half = f16::from_f32(0.5).to_le_bytes();
        let min = f16::from_f32(-1.0).to_le_bytes();
        // Low nibbles j, high nibbles 15 - j; fifth bits set for values 0..8 and 24..32.
        let qh: u32 = 0x0000_00ff | 0xff00_0000;
        let qs: Vec<u8> = (0..16u8).map(|j| j | ((15 - j) << 4)).collect();
        let q50 = [&half[..], &qh.to_le_bytes(), &qs].concat();
        let v = dequantize(GgmlType::Q5_0, &q50);
        // value 0: 0 | 16 → (16 - 16) · 0.5; value 8: 8 → (8 - 16) · 0.5;
        // value 16: 15 → -0.5; value 31: 0 | 16 → 0
        assert_eq!(
            (v[0], v[7], v[8], v[16], v[31]),
            (0.0, 3.5, -4.0, -0.5, 0.0)
        );
        let q51 = [&half[..], &min, &qh.to_le_bytes(), &qs].concat();
        let v = dequantize(GgmlType::Q5_1, &q51);
        assert_eq!((v[0], v[8], v[16], v[31]), (7.0, 3.0, 6.5, 7.0));
        assert_eq!(GgmlType::from_id(6), Some(GgmlType::Q5_0));
        assert_eq!(GgmlType::from_id(7), Some(GgmlType::Q5_1));
    }
}
