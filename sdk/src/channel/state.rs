//! What the chain says about a channel (the Escrow's `get_channel`), and where the client, the
//! relayer and the worker read it from.
//!
//! Every side decides from this view alone whether a request may be served: the worker does not
//! take the relayer's word for a channel, and the relayer does not take the client's.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tonlib_core::TonAddress;

use super::refs::ChannelRef;
use super::serde_fields::{nano, raw_address};
use crate::relay::bytes::hex32;

/// An open channel as its Escrow holds it (`channel` record and its `channel_parties`,
/// `contracts/v2/schema.tlb`). Amounts are nanoTON (decimal strings in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    /// Network, Root, Escrow and id.
    pub channel: ChannelRef,
    /// Locked for the worker at open plus every top-up.
    #[serde(with = "nano")]
    pub amount: u128,
    /// Cumulative amount of the last settled voucher.
    #[serde(with = "nano")]
    pub settled: u128,
    /// Seq of the last settled voucher (0 before any settlement).
    pub last_seq: u32,
    /// Unix time after which the channel serves no new request.
    pub expires_at: u32,
    /// Unix time of the client's close request (0: none).
    pub close_requested_at: u32,
    /// Last unix time a settlement is accepted (expiry or close request, plus grace).
    pub settle_until: u32,
    /// Price per input token, fixed at open.
    #[serde(with = "nano")]
    pub price_in: u128,
    /// Price per output token, fixed at open.
    #[serde(with = "nano")]
    pub price_out: u128,
    /// The only Worker contract that can be paid from the channel.
    #[serde(with = "raw_address")]
    pub worker: TonAddress,
    /// Owner of that Worker (who settlements pay).
    #[serde(with = "raw_address")]
    pub worker_owner: TonAddress,
    /// The relayer that routes the channel's requests.
    #[serde(with = "raw_address")]
    pub relayer: TonAddress,
    /// The relayer's share of each settlement (basis points).
    pub relayer_fee_bps: u16,
    /// The protocol's share of each settlement (basis points).
    pub protocol_fee_bps: u16,
    /// The client's ed25519 voucher key (not its wallet key).
    #[serde(with = "hex32")]
    pub voucher_key: [u8; 32],
    /// Relayer fees accrued by settlements, paid when the channel ends.
    #[serde(with = "nano")]
    pub relayer_due: u128,
}

impl ChannelState {
    /// What the channel can still pay beyond its last settlement.
    pub fn unsettled_capacity(&self) -> u128 {
        self.amount.saturating_sub(self.settled)
    }

    /// Whether a new request may start at `now`: not expired and no close requested.
    pub fn serves_at(&self, now: u32) -> bool {
        now < self.expires_at && self.close_requested_at == 0
    }

    /// Whether a settlement is still accepted at `now`.
    pub fn settles_at(&self, now: u32) -> bool {
        now <= self.settle_until
    }
}

/// Where a side reads channels from. The real one is the chain (the Escrow's get-method, cached
/// by the caller); `Ok(None)` means the Escrow holds no such channel (never opened, or closed).
pub trait ChannelSource: Send + Sync {
    /// The error of a failed read (not "no such channel").
    type Error: std::error::Error + Send + Sync + 'static;

    /// The channel `id` of `escrow` as the chain holds it now.
    fn channel(
        &self,
        escrow: &TonAddress,
        id: u64,
    ) -> impl Future<Output = Result<Option<ChannelState>, Self::Error>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ChannelState {
        let a = TonAddress::new(0, [1u8; 32].into());
        ChannelState {
            channel: ChannelRef {
                global_id: -239,
                root: a.clone(),
                escrow: a.clone(),
                channel_id: 7,
            },
            amount: 1_000,
            settled: 300,
            last_seq: 3,
            expires_at: 100,
            close_requested_at: 0,
            settle_until: 130,
            price_in: 1,
            price_out: 3,
            worker: a.clone(),
            worker_owner: a.clone(),
            relayer: a,
            relayer_fee_bps: 500,
            protocol_fee_bps: 100,
            voucher_key: [2; 32],
            relayer_due: 0,
        }
    }

    #[test]
    fn serves_until_expiry_or_close_request_and_settles_through_grace() {
        let mut s = state();
        assert_eq!(s.unsettled_capacity(), 700);
        assert!(s.serves_at(99));
        assert!(!s.serves_at(100));
        assert!(s.settles_at(130));
        assert!(!s.settles_at(131));
        s.close_requested_at = 50;
        assert!(!s.serves_at(60));
    }
}
