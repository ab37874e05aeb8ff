//! Serde forms of the field types channel values hold, in the relay protocol's conventions:
//! addresses raw `workchain:hex` (not tonlib's base64 default), nanoTON amounts as decimal
//! strings (a u128 does not fit a JSON number that JavaScript reads exactly), signed cells as the
//! base64 BOC the signature covers (parsed at the edge, so a malformed one never gets in).

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};
use tonlib_core::TonAddress;

use crate::tlb::TlbType;

/// `#[serde(with = "raw_address")]` for [`TonAddress`]: `workchain:64 hex digits`.
pub mod raw_address {
    use super::*;

    /// Writes the raw form.
    pub fn serialize<S: Serializer>(a: &TonAddress, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.to_hex())
    }

    /// Reads the raw form only (a user-friendly base64 address is refused: its flags would be
    /// silently dropped).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TonAddress, D::Error> {
        let s = String::deserialize(d)?;
        if !s.contains(':') {
            return Err(serde::de::Error::custom(format!(
                "expected a raw address workchain:hex, got {s:?}"
            )));
        }
        TonAddress::from_hex_str(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid address {s:?}: {e}")))
    }
}

/// `#[serde(with = "nano")]` for a u128 nanoTON amount: a decimal string, digits only.
pub mod nano {
    use super::*;

    /// Writes the decimal string.
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Reads a decimal string of digits (no sign, no exponent, no fraction).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!(
                "expected nanoTON as a decimal string, got {s:?}"
            )));
        }
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("nanoTON amount {s:?} overflows")))
    }
}

/// `#[serde(with = "boc")]` for a TL-B value: its BOC in base64 (standard alphabet, padded).
pub mod boc {
    use super::*;

    /// Writes the BOC.
    pub fn serialize<T: TlbType, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let bytes = v.to_boc().map_err(serde::ser::Error::custom)?;
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads and parses the BOC (trailing data refused).
    pub fn deserialize<'de, T: TlbType, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = STANDARD
            .decode(s)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))?;
        T::from_boc(&bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid {} BOC: {e}", T::NAME)))
    }
}

/// `#[serde(default, with = "opt_boc")]` for an optional TL-B value: its base64 BOC, or null.
pub mod opt_boc {
    use super::*;

    /// Writes the BOC, or null.
    pub fn serialize<T: TlbType, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::boc::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Reads null or a BOC.
    pub fn deserialize<'de, T: TlbType, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes = STANDARD
            .decode(s)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))?;
        T::from_boc(&bytes)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid {} BOC: {e}", T::NAME)))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Both {
        #[serde(with = "raw_address")]
        a: TonAddress,
        #[serde(with = "nano")]
        n: u128,
    }

    #[test]
    fn raw_addresses_and_decimal_amounts_roundtrip_and_refuse_other_forms() {
        let v = Both {
            a: TonAddress::new(-1, [0xab; 32].into()),
            n: u128::MAX,
        };
        let s = serde_json::to_string(&v).unwrap();
        assert_eq!(
            s,
            format!(r#"{{"a":"-1:{}","n":"{}"}}"#, "ab".repeat(32), u128::MAX)
        );
        assert_eq!(serde_json::from_str::<Both>(&s).unwrap(), v);
        let zero = format!("0:{}", "00".repeat(32));
        for bad in [
            format!(r#"{{"a":"{zero}","n":5}}"#),
            format!(r#"{{"a":"{zero}","n":"-5"}}"#),
            format!(r#"{{"a":"{zero}","n":"1e3"}}"#),
            format!(r#"{{"a":"{zero}","n":""}}"#),
            format!(r#"{{"a":"{zero}","n":"{}0"}}"#, u128::MAX),
            r#"{"a":"EQDk2VTvn04SUKJrW7rXahzdF8_Qi6utb0wj43InCu9vdjrR","n":"1"}"#.to_string(),
            r#"{"a":"0:zz","n":"1"}"#.to_string(),
        ] {
            assert!(serde_json::from_str::<Both>(&bad).is_err(), "{bad}");
        }
    }
}
