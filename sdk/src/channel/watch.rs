//! The equivocation watch: every channel receipt anyone hands it, kept by (channel, seq); a second,
//! different receipt for a (channel, seq) it already holds, both validly signed by keys of the
//! channel's Worker, is the evidence that slashes that Worker's stake (the Worker contract's
//! `report_equivocation`). The client keeps one over the receipts it receives; `cocoon watch`
//! keeps one for anyone.

use std::collections::HashMap;

use super::error::Result;
use super::receipt::SignedChannelReceipt;
use super::refs::ChannelRef;

/// A receipt and the receipt key it verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedReceipt {
    /// The Worker's receipt key that signed it (one it registered, current or past).
    pub key: [u8; 32],
    /// The receipt.
    pub receipt: SignedChannelReceipt,
}

/// Two different receipts for one (channel, seq): what `report_equivocation` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The receipt seen first.
    pub first: KeyedReceipt,
    /// The conflicting one.
    pub second: KeyedReceipt,
}

/// What the watch made of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The first receipt for its (channel, seq): kept.
    New,
    /// The very receipt already held (same body): nothing new.
    Repeat,
    /// A different receipt for a (channel, seq) already held.
    Equivocation(Box<Equivocation>),
}

/// Receipts kept by (channel, seq). Only receipts whose signature verifies are kept or compared,
/// so a forged receipt can never make the watch accuse a worker.
#[derive(Debug, Default, Clone)]
pub struct ReceiptWatch {
    held: HashMap<(ChannelRef, u32), KeyedReceipt>,
}

impl ReceiptWatch {
    /// An empty watch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Receipts held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Checks `receipt` against `key` (a receipt key of the channel's Worker, which the caller
    /// read from the chain) and compares it with what is held for its (channel, seq).
    pub fn observe(&mut self, key: [u8; 32], receipt: SignedChannelReceipt) -> Result<Observed> {
        receipt.verify_signature(&key)?;
        let at = (receipt.body.channel.clone(), receipt.body.seq);
        let incoming = KeyedReceipt { key, receipt };
        match self.held.get(&at) {
            None => {
                self.held.insert(at, incoming);
                Ok(Observed::New)
            }
            Some(held) if held.receipt.body == incoming.receipt.body => Ok(Observed::Repeat),
            Some(held) => Ok(Observed::Equivocation(Box::new(Equivocation {
                first: held.clone(),
                second: incoming,
            }))),
        }
    }

    /// Forgets the receipts of a channel (closed, and past any use as evidence).
    pub fn forget_channel(&mut self, channel: &ChannelRef) {
        self.held.retain(|(c, _), _| c != channel);
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use tonlib_core::TonAddress;

    use super::*;
    use crate::channel::{ChannelError, ChannelReceipt};
    use crate::receipt::{ReceiptCommitments, ReceiptHashes};

    fn channel(id: u64) -> ChannelRef {
        let a = TonAddress::new(0, [1u8; 32].into());
        ChannelRef {
            global_id: -239,
            root: a.clone(),
            escrow: a,
            channel_id: id,
        }
    }

    fn receipt(ch: ChannelRef, seq: u32, tokens_out: u32) -> ChannelReceipt {
        ChannelReceipt {
            channel: ch,
            seq,
            worker: TonAddress::new(0, [3u8; 32].into()),
            model_id: 1,
            tokens_in: 10,
            tokens_out,
            cost: 10 + 3 * u128::from(tokens_out),
            time: 1000,
            prev_acc: [0; 32],
            hashes: ReceiptHashes {
                weights_hash: [4; 32],
                evidence_hash: [5; 32],
            },
            commitments: ReceiptCommitments {
                input_commitment: [6; 32],
                output_commitment: [7; 32],
            },
        }
    }

    #[test]
    fn a_second_different_receipt_for_one_seq_is_an_equivocation_even_under_a_rotated_key() {
        let old = SigningKey::from_bytes(&[8; 32]);
        let new = SigningKey::from_bytes(&[9; 32]);
        let mut w = ReceiptWatch::new();
        let a = receipt(channel(1), 5, 20).sign(&old).unwrap();
        assert_eq!(
            w.observe(old.verifying_key().to_bytes(), a.clone())
                .unwrap(),
            Observed::New
        );
        assert_eq!(
            w.observe(old.verifying_key().to_bytes(), a.clone())
                .unwrap(),
            Observed::Repeat
        );
        // Another seq, another channel: nothing to report.
        let b = receipt(channel(1), 6, 20).sign(&old).unwrap();
        let c = receipt(channel(2), 5, 99).sign(&old).unwrap();
        assert_eq!(
            w.observe(old.verifying_key().to_bytes(), b).unwrap(),
            Observed::New
        );
        assert_eq!(
            w.observe(old.verifying_key().to_bytes(), c).unwrap(),
            Observed::New
        );
        // The same (channel, seq) with more tokens, signed after a key rotation.
        let d = receipt(channel(1), 5, 21).sign(&new).unwrap();
        match w
            .observe(new.verifying_key().to_bytes(), d.clone())
            .unwrap()
        {
            Observed::Equivocation(e) => {
                assert_eq!(e.first.receipt, a);
                assert_eq!(e.first.key, old.verifying_key().to_bytes());
                assert_eq!(e.second.receipt, d);
                assert_eq!(e.second.key, new.verifying_key().to_bytes());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.len(), 3);
        w.forget_channel(&channel(1));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_forged_receipt_is_refused_and_accuses_no_one() {
        let key = SigningKey::from_bytes(&[8; 32]);
        let mallory = SigningKey::from_bytes(&[10; 32]);
        let mut w = ReceiptWatch::new();
        let a = receipt(channel(1), 5, 20).sign(&key).unwrap();
        w.observe(key.verifying_key().to_bytes(), a).unwrap();
        let forged = receipt(channel(1), 5, 21).sign(&mallory).unwrap();
        let e = w
            .observe(key.verifying_key().to_bytes(), forged)
            .unwrap_err();
        assert!(
            matches!(e, ChannelError::BadSignature { what: "receipt" }),
            "{e}"
        );
        assert_eq!(w.len(), 1);
    }
}
