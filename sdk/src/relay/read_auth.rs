//! Who may read a job: the relayer answers a job's status and event stream only to the client
//! that owns it or to its operator.
//!
//! The owner proves itself with a *reader key*, an ed25519 key it names in the [`SubmitInput`]
//! that carries the sealed input. Only the client can submit that input (its sha256 is the
//! on-chain commitment and nobody else holds the ciphertext before it is sent), so the first
//! submission binds the key to the job with no chain read. Each read then carries
//!
//! ```text
//! Authorization: Cocoon-Read <reader key hex>.<unix time>.<signature hex>
//! signature = ed25519(reader key, READ_DOMAIN || len:u16be || escrow (raw) || job_id:u64be || time:u64be)
//! ```
//!
//! A proof is accepted within [`READ_PROOF_WINDOW`] seconds of the relayer's clock and only for
//! the job it names, so a captured header reads that one job for a few minutes at most. The SDK
//! derives the reader key from the wallet key ([`crate::wallet::Wallet::derived_key`]), so it
//! survives restarts and is never the wallet key itself.
//!
//! [`SubmitInput`]: super::client::SubmitInput

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use super::JobRef;

/// Domain tag of every read proof (never valid as a receipt or a session signature).
pub const READ_DOMAIN: &[u8] = b"cocoon/job-read/v1\0";

/// The `Authorization` scheme of a read proof (compared case-insensitively).
pub const READ_SCHEME: &str = "Cocoon-Read";

/// How far a proof's time may lie from the relayer's clock, seconds.
pub const READ_PROOF_WINDOW: u64 = 300;

/// Domain of the reader key the SDK derives from a wallet key.
pub const READER_KEY_DOMAIN: &[u8] = b"cocoon/reader-key/v1";

/// Why a read proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadProofError {
    /// The header is not `Cocoon-Read <key>.<time>.<signature>` with hex key and signature.
    #[error("malformed read proof: {0}")]
    Malformed(&'static str),
    /// The proof's time is more than [`READ_PROOF_WINDOW`] seconds from now.
    #[error("read proof time {at} is more than {READ_PROOF_WINDOW} s from now ({now})")]
    Stale {
        /// The proof's time.
        at: u64,
        /// The relayer's time.
        now: u64,
    },
    /// The signature does not verify for this job with the named key.
    #[error("read proof signature does not verify")]
    BadSignature,
}

/// The bytes a reader signs to read `job` at `at`.
pub fn read_payload(job: &JobRef, at: u64) -> Vec<u8> {
    let escrow = job.escrow.as_bytes();
    let len = u16::try_from(escrow.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(READ_DOMAIN.len() + 2 + escrow.len() + 16);
    out.extend_from_slice(READ_DOMAIN);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&escrow[..usize::from(len)]);
    out.extend_from_slice(&job.job_id.to_be_bytes());
    out.extend_from_slice(&at.to_be_bytes());
    out
}

/// A parsed read proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProof {
    /// The reader key.
    pub key: [u8; 32],
    /// Unix time it was made.
    pub at: u64,
    /// Signature over [`read_payload`].
    pub signature: [u8; 64],
}

impl ReadProof {
    /// Signs a proof for `job` at `at` with `reader` (an ed25519 secret seed).
    pub fn sign(reader: &[u8; 32], job: &JobRef, at: u64) -> Self {
        let key = SigningKey::from_bytes(reader);
        Self {
            key: key.verifying_key().to_bytes(),
            at,
            signature: key.sign(&read_payload(job, at)).to_bytes(),
        }
    }

    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        format!(
            "{READ_SCHEME} {}.{}.{}",
            hex::encode(self.key),
            self.at,
            hex::encode(self.signature)
        )
    }

    /// Parses an `Authorization` value; `Ok(None)` when it uses another scheme.
    pub fn parse(header: &str) -> Result<Option<Self>, ReadProofError> {
        let Some((scheme, rest)) = header.trim().split_once(' ') else {
            return Ok(None);
        };
        if !scheme.eq_ignore_ascii_case(READ_SCHEME) {
            return Ok(None);
        }
        let mut parts = rest.trim().split('.');
        let (Some(key), Some(at), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ReadProofError::Malformed(
                "expected <key>.<time>.<signature>",
            ));
        };
        let mut proof = ReadProof {
            key: [0; 32],
            at: at
                .parse()
                .map_err(|_| ReadProofError::Malformed("time is not a u64"))?,
            signature: [0; 64],
        };
        hex::decode_to_slice(key, &mut proof.key)
            .map_err(|_| ReadProofError::Malformed("key is not 32 hex bytes"))?;
        hex::decode_to_slice(sig, &mut proof.signature)
            .map_err(|_| ReadProofError::Malformed("signature is not 64 hex bytes"))?;
        Ok(Some(proof))
    }

    /// Checks the time against `now` and the signature against `job`.
    pub fn verify(&self, job: &JobRef, now: u64) -> Result<(), ReadProofError> {
        if self.at.abs_diff(now) > READ_PROOF_WINDOW {
            return Err(ReadProofError::Stale { at: self.at, now });
        }
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| ReadProofError::BadSignature)?;
        key.verify(
            &read_payload(job, self.at),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ReadProofError::BadSignature)
    }
}

/// The public half of a reader secret, as hex (what [`super::client::SubmitInput::reader`] holds).
pub fn reader_public_hex(reader: &[u8; 32]) -> String {
    hex::encode(SigningKey::from_bytes(reader).verifying_key().to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobRef {
        JobRef::new(format!("0:{}", "ab".repeat(32)), 7)
    }

    #[test]
    fn a_proof_verifies_for_its_job_only_and_within_the_window() {
        let p = ReadProof::sign(&[3; 32], &job(), 1_000_000);
        let back = ReadProof::parse(&p.header()).unwrap().unwrap();
        assert_eq!(back, p);
        back.verify(&job(), 1_000_000 + READ_PROOF_WINDOW).unwrap();
        assert_eq!(
            back.verify(&JobRef::new(job().escrow, 8), 1_000_000),
            Err(ReadProofError::BadSignature)
        );
        assert!(matches!(
            back.verify(&job(), 1_000_000 + READ_PROOF_WINDOW + 1),
            Err(ReadProofError::Stale { .. })
        ));
        assert_eq!(reader_public_hex(&[3; 32]), hex::encode(p.key));
    }

    #[test]
    fn other_schemes_are_not_proofs_and_garbage_is_malformed() {
        assert_eq!(ReadProof::parse("Bearer abc").unwrap(), None);
        let p = ReadProof::sign(&[3; 32], &job(), 5).header();
        assert!(
            ReadProof::parse(&p.replace("Cocoon-Read", "cocoon-read"))
                .unwrap()
                .is_some()
        );
        for bad in [
            "Cocoon-Read x",
            "Cocoon-Read a.b.c",
            "Cocoon-Read 00.1.00",
            "Cocoon-Read a.1.b.c",
        ] {
            assert!(
                matches!(ReadProof::parse(bad), Err(ReadProofError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn payload_layout_is_pinned() {
        let j = JobRef::new("0:ab", 1);
        let mut want = READ_DOMAIN.to_vec();
        want.extend_from_slice(&[0, 4, b'0', b':', b'a', b'b']);
        want.extend_from_slice(&1u64.to_be_bytes());
        want.extend_from_slice(&2u64.to_be_bytes());
        assert_eq!(read_payload(&j, 2), want);
    }
}
