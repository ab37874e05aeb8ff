//! Errors of channel receipts, vouchers and proofs.

use crate::tlb::TlbError;

/// Why a channel receipt, voucher or proof was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The cell could not be encoded or decoded.
    #[error(transparent)]
    Tlb(#[from] TlbError),
    /// The public key is not a valid ed25519 point.
    #[error("invalid ed25519 public key")]
    InvalidKey,
    /// The signature does not verify against the key.
    #[error("{what} signature does not verify")]
    BadSignature {
        /// "receipt" or "voucher".
        what: &'static str,
    },
    /// A receipt or voucher names another channel (network, Root, Escrow or id).
    #[error("{what} is for another channel")]
    WrongChannel {
        /// "receipt" or "voucher".
        what: &'static str,
    },
    /// The receipt's seq is not the next one of the channel.
    #[error("receipt seq {got}, expected {expected}")]
    WrongSeq {
        /// The receipt's seq.
        got: u32,
        /// The seq the channel is at plus one.
        expected: u32,
    },
    /// The receipt does not continue the channel's accumulator.
    #[error("receipt seq {seq} does not continue the accumulator")]
    BrokenChain {
        /// The receipt's seq.
        seq: u32,
    },
    /// The receipt's cost is not its tokens at the channel's prices.
    #[error("receipt cost {got} nanoTON, the channel's prices give {expected}")]
    WrongCost {
        /// The receipt's cost.
        got: u128,
        /// tokens_in × price_in + tokens_out × price_out.
        expected: u128,
    },
    /// The amounts overflow what a channel can hold.
    #[error("amount overflows")]
    Overflow,
    /// An inclusion proof does not lead to the logged accumulator.
    #[error("the receipt is not included: the proof ends at another accumulator")]
    NotIncluded,
}

/// Result of channel operations.
pub type Result<T> = std::result::Result<T, ChannelError>;
