//! What a fresh read of a channel may change: top-ups raise the amount, settlements raise
//! `settled` and `last_seq`, a close request sets its time and the settlement window. Everything
//! else was fixed at open, so a read that changes it is a wrong source (another channel, another
//! network) and is refused rather than trusted.

use super::error::{ChannelError, Result};
use super::state::ChannelState;

/// Security rule: `fresh` is a later view of the channel `held` describes — same channel, same
/// terms, and no amount or counter going back.
pub fn check_refresh(held: &ChannelState, fresh: &ChannelState) -> Result<()> {
    let fixed: [(&'static str, bool); 9] = [
        ("channel", held.channel == fresh.channel),
        ("price_in", held.price_in == fresh.price_in),
        ("price_out", held.price_out == fresh.price_out),
        ("worker", held.worker == fresh.worker),
        ("worker_owner", held.worker_owner == fresh.worker_owner),
        ("relayer", held.relayer == fresh.relayer),
        (
            "relayer_fee_bps",
            held.relayer_fee_bps == fresh.relayer_fee_bps,
        ),
        (
            "protocol_fee_bps",
            held.protocol_fee_bps == fresh.protocol_fee_bps,
        ),
        ("voucher_key", held.voucher_key == fresh.voucher_key),
    ];
    let monotonic: [(&'static str, bool); 3] = [
        ("amount", fresh.amount >= held.amount),
        ("settled", fresh.settled >= held.settled),
        ("last_seq", fresh.last_seq >= held.last_seq),
    ];
    match fixed.into_iter().chain(monotonic).find(|(_, ok)| !ok) {
        Some((field, _)) => Err(ChannelError::StateMismatch { field }),
        None => Ok(()),
    }
}
