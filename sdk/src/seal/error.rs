//! Errors of sealing, opening and the response stream.

/// Result alias of the seal module.
pub type Result<T, E = SealError> = std::result::Result<T, E>;

/// Why a sealed message or chunk was refused, or could not be produced.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The bytes ended before a field was complete.
    #[error("sealed message truncated while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes follow the last field.
    #[error("{count} trailing bytes after the sealed message")]
    TrailingBytes {
        /// Number of unexpected bytes.
        count: usize,
    },
    /// The format version is not one this code speaks.
    #[error("unsupported sealed-message version {0}")]
    UnsupportedVersion(u8),
    /// The ciphersuite is not X25519/HKDF-SHA256/ChaCha20-Poly1305.
    #[error("unsupported ciphersuite {0:#06x}")]
    UnsupportedSuite(u16),
    /// The recipient count is outside 1..=MAX_RECIPIENTS.
    #[error("recipient count {0} outside 1..={max}", max = super::MAX_RECIPIENTS)]
    BadRecipientCount(usize),
    /// The same recipient key appears twice.
    #[error("recipient key listed twice")]
    DuplicateRecipient,
    /// A length field is out of range.
    #[error("{field} has length {len}, allowed {min}..={max}")]
    BadLength {
        /// The field.
        field: &'static str,
        /// Length found.
        len: usize,
        /// Minimum.
        min: usize,
        /// Maximum.
        max: usize,
    },
    /// A public key is not a valid X25519 point encoding.
    #[error("invalid X25519 public key")]
    InvalidPublicKey,
    /// This key is not among the message's recipients.
    #[error("this key is not a recipient of the sealed message")]
    NotARecipient,
    /// The wrapped content key did not open (wrong key, other job, tampering).
    #[error("content key does not open for this recipient and job")]
    KeyUnwrapFailed,
    /// The content did not authenticate (tampering or another job).
    #[error("sealed content does not authenticate")]
    ContentAuthFailed,
    /// HPKE refused to seal (counter exhausted or bad key).
    #[error("HPKE sealing failed")]
    SealFailed,
    /// A response chunk did not authenticate (modified, or from another stream).
    #[error("response chunk {seq} does not authenticate")]
    ChunkAuthFailed {
        /// Its sequence number.
        seq: u64,
    },
    /// A chunk arrived ahead of the next expected one: earlier chunks were dropped or reordered.
    #[error("response chunk {got} arrived, expected {expected}: chunks dropped or reordered")]
    ChunkOutOfOrder {
        /// The sequence number expected next.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// A chunk with an already-seen sequence number: a replay.
    #[error("response chunk {got} replayed (next expected {expected})")]
    ChunkReplayed {
        /// The sequence number expected next.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// A chunk of another response stream (another opening of the same input).
    #[error("response chunk belongs to another response stream")]
    ChunkFromOtherStream,
    /// A chunk after the final one.
    #[error("response chunk after the final chunk")]
    ChunkAfterFinal,
    /// The stream ended without its final chunk: truncated.
    #[error("response stream truncated: no final chunk")]
    StreamTruncated,
    /// The sealer was asked for a chunk after it sealed the final one.
    #[error("response stream already finished")]
    StreamFinished,
    /// The Escrow address has a workchain that does not fit the job binding's signed byte.
    #[error("workchain {0} does not fit in an i8")]
    WorkchainOutOfRange(i32),
}
