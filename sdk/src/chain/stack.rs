//! Get-method stacks in toncenter's JSON form.
//!
//! Input entries are `["num", "0x.."]`, `["tvm.Cell", b64]`, `["tvm.Slice", b64]`. Output entries
//! are `["num", "0x.."]`, `["cell", {"bytes": b64}]`, `["slice", ...]`, `["tuple", {"elements":
//! [...]}]` whose elements use the typed-object form (`{"@type": "tvm.stackEntryNumber", ...}`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::error::{ChainError, ChainResult};
use crate::tlb::{self, ArcCell, CellBuilder, TonAddress};

/// One value on a TVM stack.
#[derive(Debug, Clone, PartialEq)]
pub enum StackEntry {
    /// An integer. Held as `i128`: every number the Cocoon getters return (coins, times,
    /// counters, ids) fits; 256-bit hashes are returned as slices or split by the contracts.
    Int(i128),
    /// A 257-bit integer that does not fit `i128` (e.g. a hash): big-endian magnitude bytes.
    BigInt {
        /// Sign.
        negative: bool,
        /// Magnitude, big-endian, 32 bytes.
        magnitude: [u8; 32],
    },
    /// A cell.
    Cell(ArcCell),
    /// A slice (carried as the cell it was cut from).
    Slice(ArcCell),
    /// A tuple.
    Tuple(Vec<StackEntry>),
    /// `null`.
    Null,
}

impl StackEntry {
    /// A slice holding one std address, the usual way to pass an address to a getter.
    pub fn address(a: &TonAddress) -> ChainResult<Self> {
        let mut b = CellBuilder::new();
        tlb::store_address(&mut b, a, "stack.address").map_err(|e| ChainError::Decode {
            call: "stack",
            reason: e.to_string(),
        })?;
        let cell = b.build().map_err(|e| ChainError::Decode {
            call: "stack",
            reason: e.to_string(),
        })?;
        Ok(StackEntry::Slice(Arc::new(cell)))
    }

    pub(crate) fn to_json(&self) -> ChainResult<Value> {
        Ok(match self {
            StackEntry::Int(v) => json!(["num", num_hex(*v)]),
            StackEntry::BigInt {
                negative,
                magnitude,
            } => {
                let h = hex::encode(magnitude);
                let h = h.trim_start_matches('0');
                json!([
                    "num",
                    format!(
                        "{}0x{}",
                        if *negative { "-" } else { "" },
                        if h.is_empty() { "0" } else { h }
                    )
                ])
            }
            StackEntry::Cell(c) => json!(["tvm.Cell", cell_b64(c)?]),
            StackEntry::Slice(c) => json!(["tvm.Slice", cell_b64(c)?]),
            StackEntry::Null => json!(["null", null]),
            StackEntry::Tuple(_) => {
                return Err(ChainError::Decode {
                    call: "v2/runGetMethod",
                    reason: "tuples cannot be passed as get-method arguments".into(),
                });
            }
        })
    }

    pub(crate) fn from_json(v: &Value) -> Result<Self, String> {
        if let Some(arr) = v.as_array() {
            let kind = arr
                .first()
                .and_then(Value::as_str)
                .ok_or("stack entry without a type")?;
            let val = arr.get(1).unwrap_or(&Value::Null);
            return match kind {
                "num" | "int" => parse_num(val.as_str().ok_or("num entry is not a string")?),
                "cell" | "tvm.Cell" => Ok(StackEntry::Cell(parse_cell_value(val)?)),
                "slice" | "tvm.Slice" => Ok(StackEntry::Slice(parse_cell_value(val)?)),
                "builder" => Ok(StackEntry::Cell(parse_cell_value(val)?)),
                "null" => Ok(StackEntry::Null),
                "tuple" | "list" => {
                    let els = val
                        .get("elements")
                        .and_then(Value::as_array)
                        .ok_or("tuple without elements")?;
                    Ok(StackEntry::Tuple(
                        els.iter().map(Self::from_json).collect::<Result<_, _>>()?,
                    ))
                }
                other => Err(format!("unsupported stack entry type {other}")),
            };
        }
        // Typed-object form used inside tuples.
        let t = v
            .get("@type")
            .and_then(Value::as_str)
            .ok_or("stack entry is neither array nor typed object")?;
        match t {
            "tvm.stackEntryNumber" => {
                let n = v
                    .pointer("/number/number")
                    .and_then(Value::as_str)
                    .ok_or("number without value")?;
                parse_num(n)
            }
            "tvm.stackEntryCell" => Ok(StackEntry::Cell(parse_cell_value(
                v.get("cell").unwrap_or(&Value::Null),
            )?)),
            "tvm.stackEntrySlice" => Ok(StackEntry::Slice(parse_cell_value(
                v.get("slice").unwrap_or(&Value::Null),
            )?)),
            "tvm.stackEntryTuple" | "tvm.stackEntryList" => {
                let key = if t == "tvm.stackEntryTuple" {
                    "tuple"
                } else {
                    "list"
                };
                let els = v
                    .pointer(&format!("/{key}/elements"))
                    .and_then(Value::as_array)
                    .ok_or("tuple without elements")?;
                if els.is_empty() {
                    return Ok(StackEntry::Null);
                }
                Ok(StackEntry::Tuple(
                    els.iter().map(Self::from_json).collect::<Result<_, _>>()?,
                ))
            }
            other => Err(format!("unsupported stack entry type {other}")),
        }
    }

    /// The integer, if it is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            StackEntry::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The integer as 32 big-endian bytes (for hashes returned as `uint256`).
    pub fn as_u256(&self) -> Option<[u8; 32]> {
        match self {
            StackEntry::Int(v) if *v >= 0 => {
                let mut out = [0u8; 32];
                out[16..].copy_from_slice(&(*v as u128).to_be_bytes());
                Some(out)
            }
            StackEntry::BigInt {
                negative: false,
                magnitude,
            } => Some(*magnitude),
            _ => None,
        }
    }

    /// The cell of a cell or slice entry.
    pub fn as_cell(&self) -> Option<&ArcCell> {
        match self {
            StackEntry::Cell(c) | StackEntry::Slice(c) => Some(c),
            _ => None,
        }
    }
}

fn num_hex(v: i128) -> String {
    if v < 0 {
        format!("-0x{:x}", v.unsigned_abs())
    } else {
        format!("0x{v:x}")
    }
}

fn parse_num(s: &str) -> Result<StackEntry, String> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mag: Vec<u8> = if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))
    {
        let h = if h.len() % 2 == 1 {
            format!("0{h}")
        } else {
            h.to_owned()
        };
        hex::decode(&h).map_err(|e| format!("bad hex number {s:?}: {e}"))?
    } else {
        // Decimal (toncenter's typed-object numbers).
        let mut acc = vec![0u8; 33];
        for c in rest.bytes() {
            if !c.is_ascii_digit() {
                return Err(format!("bad number {s:?}"));
            }
            let mut carry = u32::from(c - b'0');
            for byte in acc.iter_mut().rev() {
                let x = u32::from(*byte) * 10 + carry;
                *byte = (x & 0xff) as u8;
                carry = x >> 8;
            }
            if carry != 0 {
                return Err(format!("number {s:?} exceeds 257 bits"));
            }
        }
        if rest.is_empty() {
            return Err("empty number".into());
        }
        acc
    };
    let first = mag.iter().position(|b| *b != 0).unwrap_or(mag.len());
    let mag = &mag[first..];
    if mag.len() > 32 {
        return Err(format!("number {s:?} exceeds 257 bits"));
    }
    if mag.len() <= 15 || (mag.len() == 16 && mag[0] < 0x80) {
        let mut buf = [0u8; 16];
        buf[16 - mag.len()..].copy_from_slice(mag);
        let m = i128::from_be_bytes(buf);
        return Ok(StackEntry::Int(if neg { -m } else { m }));
    }
    let mut magnitude = [0u8; 32];
    magnitude[32 - mag.len()..].copy_from_slice(mag);
    Ok(StackEntry::BigInt {
        negative: neg,
        magnitude,
    })
}

fn parse_cell_value(v: &Value) -> Result<ArcCell, String> {
    let b64 = v
        .as_str()
        .or_else(|| v.get("bytes").and_then(Value::as_str))
        .ok_or("cell entry without bytes")?;
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| format!("cell bytes are not base64: {e}"))?;
    tlb::boc_root(&bytes).map_err(|e| e.to_string())
}

fn cell_b64(c: &ArcCell) -> ChainResult<String> {
    let boc = tlb::cell_to_boc(c).map_err(|e| ChainError::Decode {
        call: "stack",
        reason: e.to_string(),
    })?;
    Ok(STANDARD.encode(boc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_every_form() {
        assert_eq!(parse_num("0x0").unwrap(), StackEntry::Int(0));
        assert_eq!(parse_num("0xff").unwrap(), StackEntry::Int(255));
        assert_eq!(parse_num("-0x10").unwrap(), StackEntry::Int(-16));
        assert_eq!(
            parse_num("123456789").unwrap(),
            StackEntry::Int(123_456_789)
        );
        let h = format!("0x{}", "ab".repeat(32));
        match parse_num(&h).unwrap() {
            StackEntry::BigInt {
                negative: false,
                magnitude,
            } => assert_eq!(magnitude, [0xab; 32]),
            other => panic!("{other:?}"),
        }
        assert!(parse_num("0xzz").is_err());
        assert!(parse_num(&format!("0x1{}", "00".repeat(32))).is_err());
        assert!(parse_num("12a").is_err());
    }

    #[test]
    fn ints_round_trip_through_json() {
        for v in [0i128, 1, -1, i128::MAX, i128::MIN + 1, 1 << 100] {
            let j = StackEntry::Int(v).to_json().unwrap();
            assert_eq!(StackEntry::from_json(&j).unwrap(), StackEntry::Int(v));
        }
    }

    #[test]
    fn typed_tuple_elements_parse() {
        let j = json!(["tuple", {"elements": [
            {"@type": "tvm.stackEntryNumber", "number": {"number": "42"}},
            {"@type": "tvm.stackEntryTuple", "tuple": {"elements": []}}
        ]}]);
        assert_eq!(
            StackEntry::from_json(&j).unwrap(),
            StackEntry::Tuple(vec![StackEntry::Int(42), StackEntry::Null])
        );
        assert!(StackEntry::from_json(&json!(["weird", 1])).is_err());
    }
}
