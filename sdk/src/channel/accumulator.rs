//! The receipt accumulator: an append-only hash chain over every receipt of a channel, which the
//! worker and the client both compute and the Escrow logs at each settlement.
//!
//! ```text
//! acc_0 = 0
//! acc_n = sha256(acc_{n-1} ‖ repr_hash(receipt_n))
//! ```
//!
//! A receipt carries `prev_acc` = acc_{seq-1}, so proving that a receipt is anchored on-chain takes
//! only the hashes of the receipts after it up to a logged settlement ([`InclusionProof`]).

use sha2::{Digest, Sha256};

use super::error::{ChannelError, Result};
use super::receipt::ChannelReceipt;
use super::refs::ChannelRef;

/// The accumulator of a channel with no receipt yet.
pub const ACC_ZERO: [u8; 32] = [0; 32];

/// One step of the chain: sha256(prev ‖ receipt hash).
pub fn chain_step(prev: &[u8; 32], receipt_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(receipt_hash);
    h.finalize().into()
}

/// A channel's running state as one side sees it: the last seq, the accumulator after it, and the
/// cumulative cost of every receipt so far. The client signs vouchers from it; the worker checks
/// vouchers against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accumulator {
    channel: ChannelRef,
    price_in: u128,
    price_out: u128,
    seq: u32,
    acc: [u8; 32],
    cumulative: u128,
}

impl Accumulator {
    /// A fresh channel at the prices fixed at its opening.
    pub fn new(channel: ChannelRef, price_in: u128, price_out: u128) -> Self {
        Self {
            channel,
            price_in,
            price_out,
            seq: 0,
            acc: ACC_ZERO,
            cumulative: 0,
        }
    }

    /// A channel's running state as of `seq`, restored from values this side signed itself (its
    /// saved voucher, its ledger of receipts): nothing is re-checked.
    pub fn resume(
        channel: ChannelRef,
        price_in: u128,
        price_out: u128,
        seq: u32,
        acc: [u8; 32],
        cumulative: u128,
    ) -> Self {
        Self {
            channel,
            price_in,
            price_out,
            seq,
            acc,
            cumulative,
        }
    }

    /// The channel.
    pub fn channel(&self) -> &ChannelRef {
        &self.channel
    }

    /// Seq of the last receipt appended (0 before the first).
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// The accumulator after the last receipt.
    pub fn acc(&self) -> [u8; 32] {
        self.acc
    }

    /// The cost of every receipt so far.
    pub fn cumulative(&self) -> u128 {
        self.cumulative
    }

    /// Checks that `receipt` is the channel's next one — its channel, seq, `prev_acc` and its cost
    /// at the channel's prices — and appends it. Nothing changes when a check fails.
    pub fn append(&mut self, receipt: &ChannelReceipt) -> Result<[u8; 32]> {
        if receipt.channel != self.channel {
            return Err(ChannelError::WrongChannel { what: "receipt" });
        }
        let expected = self.seq.checked_add(1).ok_or(ChannelError::Overflow)?;
        if receipt.seq != expected {
            return Err(ChannelError::WrongSeq {
                got: receipt.seq,
                expected,
            });
        }
        if receipt.prev_acc != self.acc {
            return Err(ChannelError::BrokenChain { seq: receipt.seq });
        }
        let cost = receipt.expected_cost(self.price_in, self.price_out)?;
        if receipt.cost != cost {
            return Err(ChannelError::WrongCost {
                got: receipt.cost,
                expected: cost,
            });
        }
        let cumulative = self
            .cumulative
            .checked_add(cost)
            .ok_or(ChannelError::Overflow)?;
        self.acc = chain_step(&self.acc, &receipt.hash()?);
        self.seq = expected;
        self.cumulative = cumulative;
        Ok(self.acc)
    }
}

/// Proof that a receipt is part of the chain a settlement logged: the hashes of the receipts that
/// follow it, up to the logged seq.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InclusionProof {
    /// repr_hash of receipts seq+1 ..= logged seq, in order.
    pub later: Vec<[u8; 32]>,
}

impl InclusionProof {
    /// Checks that `receipt` leads, through `later`, to `logged_acc` at `logged_seq` (the values a
    /// settlement logged on-chain for the receipt's channel).
    pub fn verify(
        &self,
        receipt: &ChannelReceipt,
        logged_seq: u32,
        logged_acc: &[u8; 32],
    ) -> Result<()> {
        let reaches = u64::from(receipt.seq) + self.later.len() as u64;
        if reaches != u64::from(logged_seq) {
            return Err(ChannelError::NotIncluded);
        }
        let mut acc = chain_step(&receipt.prev_acc, &receipt.hash()?);
        for h in &self.later {
            acc = chain_step(&acc, h);
        }
        if &acc == logged_acc {
            Ok(())
        } else {
            Err(ChannelError::NotIncluded)
        }
    }
}
