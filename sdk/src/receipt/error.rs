//! Errors of receipt encoding, signing and checking.

use crate::tlb::TlbError;

/// Result alias of the receipt module.
pub type Result<T, E = ReceiptError> = std::result::Result<T, E>;

/// Why a receipt was refused or could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The cell does not hold a receipt of the fixed layout (wrong tag, trailing data, bad field).
    #[error("receipt cell: {0}")]
    Tlb(#[from] TlbError),
    /// The key registered on-chain is not a valid ed25519 public key.
    #[error("receipt key is not a valid ed25519 public key")]
    InvalidReceiptKey,
    /// The signature is not by the registered receipt key over this body's hash.
    #[error("receipt signature does not verify under the registered receipt key")]
    SignatureInvalid,
    /// A field of the body differs from what the client expected (job, escrow, worker, model, ...).
    #[error("receipt field {field} does not match the job: expected {expected}, got {actual}")]
    FieldMismatch {
        /// The field.
        field: &'static str,
        /// Expected value.
        expected: String,
        /// Value in the receipt.
        actual: String,
    },
    /// The output commitment is not the one of the answer the client received.
    #[error("receipt output commitment does not match the received answer")]
    OutputCommitmentMismatch,
    /// The cost is not tokens_in × price_in + tokens_out × price_out.
    #[error("receipt cost {actual} nanoTON, expected {expected} from tokens and registered prices")]
    CostMismatch {
        /// The cost computed from the registered prices.
        expected: u128,
        /// The cost in the receipt.
        actual: u128,
    },
    /// tokens × price overflows (absurd prices).
    #[error("cost of tokens at the registered prices overflows")]
    CostOverflow,
}
