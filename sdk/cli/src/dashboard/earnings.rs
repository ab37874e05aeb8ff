//! Worker v2 earnings, summed from the channel settlements the Escrows recorded.
//!
//! A Worker v2 keeps no earnings counter, and the payout a settlement sends its owner also carries
//! the settlement's unspent gas, so neither can be read as earnings. A voucher's cumulative amount
//! only grows along a channel, and each settlement pays the advance over the channel's previous
//! one: the sum of a worker's advances is exactly what its settled receipts cost. Each settlement
//! names the channel's worker by its owner (the payout's destination, written by the Escrow
//! itself, so nobody else can claim it); a Worker v2's address follows from its owner, so the
//! owner is the worker.

use std::collections::BTreeMap;

/// A channel: its Escrow (raw address) and its id on that Escrow.
pub(super) type ChannelKey = (String, u64);

/// What one settlement paid for, from its record and the channel's previous settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Advance {
    /// Requests settled: the seq advance.
    pub(super) requests: u32,
    /// nanoTON paid: the cumulative advance.
    pub(super) cost: u128,
}

/// Settled amounts per channel and per worker owner (nanoTON), kept between polls.
#[derive(Debug, Default)]
pub(super) struct Earnings {
    /// The last settlement of each channel: seq and cumulative.
    last: BTreeMap<ChannelKey, (u32, u128)>,
    /// Settled per worker owner (user-friendly address).
    by_owner: BTreeMap<String, u128>,
}

impl Earnings {
    /// Records a settlement of `channel` that paid `owner` (Escrow history order: seq and
    /// cumulative never go back) and credits its advance to the owner's worker.
    pub(super) fn settled(
        &mut self,
        channel: &ChannelKey,
        owner: &str,
        seq: u32,
        cumulative: u128,
    ) -> Advance {
        let (prev_seq, prev_cumulative) = self
            .last
            .insert(channel.clone(), (seq, cumulative))
            .unwrap_or((0, 0));
        let advance = Advance {
            requests: seq.saturating_sub(prev_seq),
            cost: cumulative.saturating_sub(prev_cumulative),
        };
        *self.by_owner.entry(owner.to_owned()).or_default() += advance.cost;
        advance
    }

    /// What the settled receipts of the worker owned by `owner` cost, nanoTON.
    pub(super) fn earned(&self, owner: &str) -> u128 {
        self.by_owner.get(owner).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(escrow: &str, id: u64) -> ChannelKey {
        (escrow.to_owned(), id)
    }

    #[test]
    fn each_worker_earns_the_cumulative_advances_of_its_channels() {
        let mut e = Earnings::default();
        // Alice serves a1 and b1 (two Escrows), Bob serves a2.
        let (a1, a2, b1) = (ch("escrow-a", 1), ch("escrow-a", 2), ch("escrow-b", 1));

        // Channel a1: three settlements, cumulative 100, 250, 1_000_000_000_123.
        let first = e.settled(&a1, "alice", 2, 100);
        assert_eq!(
            first,
            Advance {
                requests: 2,
                cost: 100
            }
        );
        let second = e.settled(&a1, "alice", 3, 250);
        assert_eq!(
            second,
            Advance {
                requests: 1,
                cost: 150
            }
        );
        // Channel a2 interleaves: two settlements.
        assert_eq!(e.settled(&a2, "bob", 1, 7).cost, 7);
        let third = e.settled(&a1, "alice", 9, 1_000_000_000_123);
        assert_eq!(
            third,
            Advance {
                requests: 6,
                cost: 1_000_000_000_123 - 250
            }
        );
        assert_eq!(e.settled(&a2, "bob", 4, 40).cost, 33);
        // The same channel id on another Escrow is another channel: nothing carried over.
        let other = e.settled(&b1, "alice", 1, 5);
        assert_eq!(
            other,
            Advance {
                requests: 1,
                cost: 5
            }
        );

        // Each worker earned its channels' last cumulative amounts, exactly.
        assert_eq!(e.earned("alice"), 1_000_000_000_123 + 5);
        assert_eq!(e.earned("bob"), 40);
        assert_eq!(e.earned("carol"), 0);
    }

    #[test]
    fn a_settlement_that_does_not_advance_pays_nothing() {
        let mut e = Earnings::default();
        let c = ch("escrow-a", 5);
        e.settled(&c, "alice", 3, 80);
        // A final voucher repeating the last cumulative (close with no new request).
        let fin = e.settled(&c, "alice", 3, 80);
        assert_eq!(
            fin,
            Advance {
                requests: 0,
                cost: 0
            }
        );
        assert_eq!(e.earned("alice"), 80);
    }
}
