//! Payment channels (protocol v2, `contracts/v2/schema.tlb`): the cells a worker and a client sign
//! for every request of a channel, and the receipt accumulator that ties them together.
//!
//! ```text
//! worker: ChannelReceipt { channel, seq, cost at the channel's prices, prev_acc, … }.sign(receipt key)
//! client: checks it, acc = Accumulator::after(prev_acc, receipt hash),
//!         Voucher { channel, cumulative, last_seq = seq, acc, is_final }.sign(voucher key)
//! chain:  the Worker checks the receipt, the Escrow the voucher, and logs (channel, seq, cumulative, acc)
//! anyone: proves a receipt of the channel against a logged accumulator (InclusionProof)
//! ```
//!
//! The protocol each side runs over them, pure (no I/O; the caller persists and sends):
//! [`ChannelSession`] for the client (check each receipt, then sign the next voucher) and
//! [`WorkerChannel`] for the worker (credit, receipts per seq, vouchers, the settlement policy).
//!
//! Both signed payloads name the channel with the very same [`ChannelRef`] cell: the network's
//! global id, the Root, the Escrow and the channel id, so neither replays on another network,
//! Root, Escrow or channel.

mod accumulator;
mod error;
mod receipt;
mod refs;
mod seal_context;
pub mod serde_fields;
mod session;
mod settle;
mod state;
mod terms;
mod voucher;
mod watch;
mod worker_channel;

#[cfg(test)]
mod accounting_props;
#[cfg(test)]
mod testing;

pub use accumulator::{ACC_ZERO, Accumulator, InclusionProof, chain_step};
pub use error::{ChannelError, Result};
pub use receipt::{CHANNEL_RECEIPT_TAG, ChannelReceipt, SignedChannelReceipt};
pub use refs::ChannelRef;
pub use seal_context::request_seal_context;
pub use session::{
    ChannelSession, RequestExpectation, RequestTicket, SNAPSHOT_VERSION, SessionSnapshot,
};
pub use settle::{
    BPS, DEFAULT_SETTLE_MARGIN_SECS, FEE_SHARE_DIVISOR, SettlePolicy, SettleReason, Settlement,
    worker_share,
};
pub use state::{ChannelSource, ChannelState};
pub use terms::check_refresh;
pub use voucher::{SignedVoucher, VOUCHER_TAG, Voucher};
pub use watch::{Equivocation, KeyedReceipt, Observed, ReceiptWatch};
pub use worker_channel::{
    Admission, ReceiptDraft, ReceiptToPersist, VoucherIntake, WorkerChannel, request_max_cost,
};
