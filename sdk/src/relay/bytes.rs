//! Serde helpers for binary fields: base64 for payloads, hex for fixed-size keys and hashes.

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

/// `#[serde(with = "base64")]` for `Vec<u8>`: standard alphabet, padded.
pub mod base64 {
    use super::*;

    /// Serialises bytes as a base64 string.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Parses a base64 string; anything else is a serde error naming the problem.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// `#[serde(with = "hex32")]` for `[u8; 32]` (keys, hashes, nonces): 64 lowercase hex digits.
pub mod hex32 {
    use super::*;

    /// Serialises 32 bytes as 64 hex digits.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Parses exactly 64 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|e| serde::de::Error::custom(format!("expected 64 hex digits: {e}")))?;
        Ok(out)
    }
}

/// `#[serde(with = "hex64")]` for `[u8; 64]` (ed25519 signatures): 128 hex digits.
pub mod hex64 {
    use super::*;

    /// Serialises 64 bytes as 128 hex digits.
    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Parses exactly 128 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|e| serde::de::Error::custom(format!("expected 128 hex digits: {e}")))?;
        Ok(out)
    }
}
