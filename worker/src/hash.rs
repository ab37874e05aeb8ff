//! Weights hashing: the sha256 that goes into every receipt.

use sha2::{Digest, Sha256};
use std::path::Path;

use crate::error::{Error, Result};

/// A sha256 digest of a weights file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeightsHash(pub [u8; 32]);

impl WeightsHash {
    /// Hashes bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex_str: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str.trim(), &mut out)
            .map_err(|_| Error::InvalidExpectedHash(hex_str.to_string()))?;
        Ok(Self(out))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Checks `self` (computed) against the configured hash, naming `path` in the error.
    pub fn verify(&self, expected: &WeightsHash, path: &Path) -> Result<()> {
        if self == expected {
            Ok(())
        } else {
            Err(Error::HashMismatch {
                path: path.to_path_buf(),
                expected: expected.to_hex(),
                actual: self.to_hex(),
            })
        }
    }
}

impl std::fmt::Debug for WeightsHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeightsHash({})", self.to_hex())
    }
}

impl std::fmt::Display for WeightsHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Reads a whole file, hashes exactly the bytes read and, when `expected` is given, refuses a
/// mismatch. Returning the bytes means the parser sees what was hashed (no re-read in between).
pub fn read_verified(
    path: &Path,
    expected: Option<&WeightsHash>,
) -> Result<(Vec<u8>, WeightsHash)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let hash = WeightsHash::of(&bytes);
    if let Some(expected) = expected {
        hash.verify(expected, path)?;
    }
    Ok((bytes, hash))
}
