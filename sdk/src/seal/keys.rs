//! The worker's X25519 encryption key pair (HPKE KEM key).

use std::fmt;

use hpke::{Deserializable, Kem as _, Serializable};

use super::error::{Result, SealError};
use super::{Kem, PrivateKey, PublicKey};

/// The worker's encryption key pair; the public half is attested (REPORT_DATA) and on-chain.
#[derive(Clone)]
pub struct EncryptionKeyPair {
    pub(crate) secret: PrivateKey,
    public: [u8; 32],
}

impl EncryptionKeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        let (secret, public) = Kem::gen_keypair();
        Self::from_parts(secret, &public)
    }

    /// A key pair derived from 32 bytes of seed (RFC 9180 DeriveKeyPair); deterministic, for
    /// keys sealed to disk inside the TEE and for tests.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let (secret, public) = Kem::derive_keypair(seed);
        Self::from_parts(secret, &public)
    }

    fn from_parts(secret: PrivateKey, public: &PublicKey) -> Self {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&public.to_bytes());
        Self {
            secret,
            public: bytes,
        }
    }

    /// The public key clients seal to.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }
}

impl fmt::Debug for EncryptionKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKeyPair(public {})", hex::encode(self.public))
    }
}

pub(crate) fn parse_public(bytes: &[u8; 32]) -> Result<PublicKey> {
    PublicKey::from_bytes(bytes).map_err(|_| SealError::InvalidPublicKey)
}
