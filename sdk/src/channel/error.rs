//! Errors of channel receipts, vouchers and proofs, and the refusals of the client's session and
//! the worker's book of a channel.

use crate::tlb::TlbError;

/// Why a channel receipt, voucher, proof or request was refused. A refusal never changes the
/// session or book that returned it.
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
    /// A receipt for a seq the session already accepted (a replay, or the relayer delivering it
    /// twice).
    #[error("receipt seq {seq} was already accepted (the session is at seq {at})")]
    ReplayedReceipt {
        /// The receipt's seq.
        seq: u32,
        /// The last seq the session accepted.
        at: u32,
    },
    /// The receipt names another Worker contract than the channel's.
    #[error("receipt is signed for worker {got}, the channel's worker is {expected}")]
    WrongWorker {
        /// The channel's Worker contract (raw form).
        expected: String,
        /// The receipt's (raw form).
        got: String,
    },
    /// A receipt field differs from the request it answers (model, input or output commitment).
    #[error("receipt {field} is {got}, the request has {expected}")]
    RequestMismatch {
        /// Which field.
        field: &'static str,
        /// What the request has (hex or decimal).
        expected: String,
        /// What the receipt has.
        got: String,
    },
    /// The receipt charges more output tokens than the request allowed.
    #[error("receipt charges {tokens_out} output tokens, the request allowed {max_tokens}")]
    TooManyTokens {
        /// The receipt's output tokens.
        tokens_out: u32,
        /// The request's max tokens.
        max_tokens: u32,
    },
    /// Paying this would take the channel's cumulative amount above what it holds.
    #[error("cumulative {cumulative} nanoTON would exceed the channel's amount {amount}")]
    OverAmount {
        /// The cumulative amount it would reach.
        cumulative: u128,
        /// The channel's amount.
        amount: u128,
    },
    /// The voucher key given does not match the channel's voucher key.
    #[error("the voucher key is not the channel's")]
    KeyMismatch,
    /// A new view of the channel changes what is fixed at open, or goes back below what was
    /// already signed.
    #[error("channel state changed {field}, which is fixed for the channel's life")]
    StateMismatch {
        /// The field that changed.
        field: &'static str,
    },
    /// The client signed a final voucher: the channel serves no further request.
    #[error("the channel is closing: a final voucher was signed")]
    Closing,
    /// A final voucher needs at least one receipt to settle (close the channel on-chain instead).
    #[error("no receipt yet: nothing a final voucher could settle")]
    NoReceipt,
    /// The channel is not this worker's (its Worker contract is another).
    #[error("channel is for worker {channel_worker}, not this worker")]
    NotOurChannel {
        /// The channel's Worker contract (raw form).
        channel_worker: String,
    },
    /// The chain shows settlements of a channel this side has no record of. A worker then cannot
    /// know which seqs it signed, so it never serves the channel again (a second receipt for a
    /// seq would cost its stake); a client cannot continue the accumulator without its voucher.
    #[error("the chain settled seq {last_seq} of a channel this side has no record of")]
    LostHistory {
        /// The last settled seq on-chain.
        last_seq: u32,
    },
    /// The channel serves no new request now: expired, or its client asked to close it.
    #[error(
        "channel does not serve at {now}: expires at {expires_at}, close requested at {close_requested_at}"
    )]
    NotServing {
        /// The time asked.
        now: u32,
        /// The channel's expiry.
        expires_at: u32,
        /// The close request's time (0: none).
        close_requested_at: u32,
    },
    /// A request of the channel is already being served (receipts chain one after another).
    #[error("seq {seq} of the channel is still being served")]
    Busy {
        /// The seq in flight.
        seq: u32,
    },
    /// The request's seq already has a signed receipt: the worker resends that receipt, never a
    /// second one.
    #[error("seq {seq} already has a signed receipt")]
    SeqTaken {
        /// The seq asked.
        seq: u32,
    },
    /// The channel cannot pay this request's maximum cost.
    #[error(
        "cumulative {cumulative} + max cost {max_cost} nanoTON exceeds the channel's amount {amount}"
    )]
    Exhausted {
        /// What the worker signed so far.
        cumulative: u128,
        /// The request's maximum cost.
        max_cost: u128,
        /// The channel's amount.
        amount: u128,
    },
    /// Serving would leave more unpaid (signed receipts not covered by a voucher) than the
    /// worker's credit: the client must send a voucher for what it received first.
    #[error("unpaid {unpaid} + max cost {max_cost} nanoTON exceeds the credit {credit}")]
    OverCredit {
        /// Signed receipts not covered by the best voucher.
        unpaid: u128,
        /// The request's maximum cost.
        max_cost: u128,
        /// The worker's credit on the channel.
        credit: u128,
    },
    /// No request with this seq was admitted (or it is already signed).
    #[error("no admitted request with seq {seq}")]
    NotAdmitted {
        /// The seq asked.
        seq: u32,
    },
    /// The receipt would cost more than the maximum the request was admitted with.
    #[error("cost {cost} nanoTON exceeds the admitted maximum {max_cost}")]
    AboveAdmitted {
        /// The receipt's cost.
        cost: u128,
        /// The maximum cost the request was admitted with.
        max_cost: u128,
    },
    /// A voucher older than the best one the worker holds.
    #[error("voucher for seq {seq} is older than the one held (seq {held})")]
    StaleVoucher {
        /// The voucher's last seq.
        seq: u32,
        /// The held voucher's last seq.
        held: u32,
    },
    /// A voucher for a seq the worker has not signed (yet).
    #[error("voucher covers seq {seq}, but the worker signed only up to {signed}")]
    UnsignedSeq {
        /// The voucher's last seq.
        seq: u32,
        /// The last seq the worker signed.
        signed: u32,
    },
    /// A voucher's accumulator or cumulative amount is not the one of the receipts the worker
    /// signed up to its seq.
    #[error("voucher for seq {seq} has another {field} than the worker's receipts")]
    VoucherMismatch {
        /// The voucher's last seq.
        seq: u32,
        /// "acc" or "cumulative".
        field: &'static str,
    },
    /// A saved session of another layout version.
    #[error("saved session version {version} is not supported")]
    UnsupportedSnapshot {
        /// The snapshot's version.
        version: u16,
    },
    /// An inclusion proof does not lead to the logged accumulator.
    #[error("the receipt is not included: the proof ends at another accumulator")]
    NotIncluded,
}

/// Result of channel operations.
pub type Result<T> = std::result::Result<T, ChannelError>;
