//! Signing by the worker's receipt key and verification by anyone.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::body::{ReceiptBody, SignedReceipt};
use super::error::{ReceiptError, Result};
use crate::tlb::TlbType;

impl ReceiptBody {
    /// The representation hash of the body cell: exactly what the signature covers (and what the
    /// Worker contract checks with `CHKSIGNU`).
    pub fn signing_hash(&self) -> Result<[u8; 32]> {
        Ok(self.to_cell()?.cell_hash().into())
    }

    /// Signs the body with the worker's receipt key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedReceipt> {
        let signature = key.sign(&self.signing_hash()?).to_bytes();
        Ok(SignedReceipt {
            signature,
            body: self,
        })
    }
}

impl SignedReceipt {
    /// Checks the signature against a receipt key (the one registered in the Worker contract).
    /// Strict verification: no small-order keys, no malleable signatures.
    pub fn verify_signature(&self, receipt_key: &[u8; 32]) -> Result<()> {
        let key =
            VerifyingKey::from_bytes(receipt_key).map_err(|_| ReceiptError::InvalidReceiptKey)?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.body.signing_hash()?, &signature)
            .map_err(|_| ReceiptError::SignatureInvalid)
    }
}
