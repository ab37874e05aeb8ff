//! The client's side of a channel: what each request carries, the complete check of each receipt
//! before the next voucher is signed, top-ups, the cooperative close, and a saved form to resume
//! from.
//!
//! ```text
//! next_request(now) ─▶ RequestTicket { channel, seq = last + 1, latest voucher } ─▶ relayer
//! on_receipt(receipt, request) ─▶ every check ─▶ Voucher { cumulative, last_seq, acc }.sign
//!                                  └─ any failure: typed error, nothing signed, nothing changed
//! ```
//!
//! The session pays for exactly the receipts it checked: its voucher's cumulative amount is the
//! sum of their costs, and it never exceeds the channel's amount.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::accumulator::Accumulator;
use super::error::{ChannelError, Result};
use super::receipt::SignedChannelReceipt;
use super::refs::ChannelRef;
use super::serde_fields::opt_boc;
use super::state::ChannelState;
use super::terms::check_refresh;
use super::voucher::{SignedVoucher, Voucher};
use crate::relay::bytes::hex32;

/// Version of [`SessionSnapshot`]'s layout; [`ChannelSession::resume`] refuses others.
pub const SNAPSHOT_VERSION: u16 = 1;

/// What a request of the channel carries to its worker (through the relayer), besides the sealed
/// input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTicket {
    /// The channel.
    pub channel: ChannelRef,
    /// The seq the client expects this request's receipt to have.
    pub seq: u32,
    /// The latest voucher (none before the first receipt): it pays every receipt before `seq`,
    /// which is what lets the worker serve within its credit.
    pub voucher: Option<SignedVoucher>,
}

/// What the client knows about the request a receipt answers, independently of the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestExpectation {
    /// The model asked for.
    pub model_id: u32,
    /// The most output tokens the request allowed.
    pub max_tokens: u32,
    /// sha256 of the sealed input sent.
    pub input_commitment: [u8; 32],
    /// The output commitment of the answer received (`ResponseOpener::finish`).
    pub output_commitment: [u8; 32],
}

/// A client's open channel: its chain view, the accumulator of the receipts it checked, the
/// voucher key and the latest voucher.
#[derive(Debug, Clone)]
pub struct ChannelSession {
    state: ChannelState,
    receipt_key: [u8; 32],
    voucher_key: SigningKey,
    acc: Accumulator,
    voucher: Option<SignedVoucher>,
    closing: bool,
}

/// The saved form of a session (JSON through serde). It holds no secret: the voucher key is kept
/// by the caller and given back to [`ChannelSession::resume`], which checks everything here
/// against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSnapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u16,
    /// The channel as last read from the chain.
    pub state: ChannelState,
    /// The worker's receipt key the session checks receipts against.
    #[serde(with = "hex32")]
    pub receipt_key: [u8; 32],
    /// The latest voucher signed (base64 BOC), none before the first receipt. The accumulator
    /// is restored from it.
    #[serde(default, with = "opt_boc")]
    pub voucher: Option<SignedVoucher>,
    /// A final voucher was signed: no further request.
    pub closing: bool,
}

impl ChannelSession {
    /// A session for a channel just opened: `state` as the chain holds it, the worker's receipt
    /// key (from its verified Worker record) and the voucher key named at open.
    pub fn open(
        state: ChannelState,
        receipt_key: [u8; 32],
        voucher_key: SigningKey,
    ) -> Result<Self> {
        check_key(&state, &voucher_key)?;
        if state.last_seq != 0 || state.settled != 0 {
            return Err(ChannelError::LostHistory {
                last_seq: state.last_seq,
            });
        }
        let acc = Accumulator::new(state.channel.clone(), state.price_in, state.price_out);
        Ok(Self {
            state,
            receipt_key,
            voucher_key,
            acc,
            voucher: None,
            closing: false,
        })
    }

    /// Restores a saved session. The voucher must verify under `voucher_key` and belong to the
    /// snapshot's channel; the accumulator continues from it.
    pub fn resume(snapshot: SessionSnapshot, voucher_key: SigningKey) -> Result<Self> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(ChannelError::UnsupportedSnapshot {
                version: snapshot.version,
            });
        }
        let state = snapshot.state;
        check_key(&state, &voucher_key)?;
        let acc = match &snapshot.voucher {
            None => {
                if state.last_seq != 0 || state.settled != 0 || snapshot.closing {
                    return Err(ChannelError::LostHistory {
                        last_seq: state.last_seq,
                    });
                }
                Accumulator::new(state.channel.clone(), state.price_in, state.price_out)
            }
            Some(v) => {
                v.verify_signature(&state.voucher_key)?;
                let b = &v.body;
                if b.channel != state.channel {
                    return Err(ChannelError::WrongChannel { what: "voucher" });
                }
                if b.is_final && !snapshot.closing {
                    return Err(ChannelError::StateMismatch { field: "closing" });
                }
                check_signed_within(&state, b.last_seq, b.cumulative)?;
                Accumulator::resume(
                    state.channel.clone(),
                    state.price_in,
                    state.price_out,
                    b.last_seq,
                    b.acc,
                    b.cumulative,
                )
            }
        };
        Ok(Self {
            state,
            receipt_key: snapshot.receipt_key,
            voucher_key,
            acc,
            voucher: snapshot.voucher,
            closing: snapshot.closing,
        })
    }

    /// The saved form (see [`SessionSnapshot`]); save it after every voucher.
    pub fn snapshot(&self) -> SessionSnapshot {
        SessionSnapshot {
            version: SNAPSHOT_VERSION,
            state: self.state.clone(),
            receipt_key: self.receipt_key,
            voucher: self.voucher.clone(),
            closing: self.closing,
        }
    }

    /// The Worker's receipt key this session checks receipts against.
    pub fn receipt_key(&self) -> &[u8; 32] {
        &self.receipt_key
    }

    /// The channel as last read from the chain.
    pub fn state(&self) -> &ChannelState {
        &self.state
    }

    /// The channel.
    pub fn channel(&self) -> &ChannelRef {
        &self.state.channel
    }

    /// The receipts checked so far: last seq, accumulator, cumulative cost.
    pub fn accumulator(&self) -> &Accumulator {
        &self.acc
    }

    /// The latest voucher signed.
    pub fn latest_voucher(&self) -> Option<&SignedVoucher> {
        self.voucher.as_ref()
    }

    /// Whether a final voucher was signed.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// What the next request carries. Refused once a final voucher was signed, and when the
    /// channel serves no request at `now` (expired, or a close was requested).
    pub fn next_request(&self, now: u32) -> Result<RequestTicket> {
        if self.closing {
            return Err(ChannelError::Closing);
        }
        if !self.state.serves_at(now) {
            return Err(ChannelError::NotServing {
                now,
                expires_at: self.state.expires_at,
                close_requested_at: self.state.close_requested_at,
            });
        }
        Ok(RequestTicket {
            channel: self.state.channel.clone(),
            seq: self
                .acc
                .seq()
                .checked_add(1)
                .ok_or(ChannelError::Overflow)?,
            voucher: self.voucher.clone(),
        })
    }

    /// Checks `receipt` completely against the channel and the request it answers, and only then
    /// signs the next voucher. Checks: the channel; not a seq already accepted; the signature by
    /// the worker's receipt key; the channel's Worker; the model, input and output commitments;
    /// output tokens within the request's max; seq = last + 1 and `prev_acc` = the accumulator;
    /// the cost at the channel's prices; the cumulative amount within the channel's amount. Any
    /// failure leaves the session as it was.
    pub fn on_receipt(
        &mut self,
        receipt: &SignedChannelReceipt,
        request: &RequestExpectation,
    ) -> Result<&SignedVoucher> {
        self.accept(receipt, request, true)
    }

    /// The same checks as [`Self::on_receipt`] but the output commitment, for the receipt of a
    /// request whose answer was lost on the way (the worker resends the receipt it already signed
    /// for that seq, and never signs another). Paying it keeps the channel usable: the worker
    /// served the request, and it serves nothing more until it is paid. `request` is the lost
    /// request's (its `output_commitment` is ignored).
    pub fn on_receipt_without_answer(
        &mut self,
        receipt: &SignedChannelReceipt,
        request: &RequestExpectation,
    ) -> Result<&SignedVoucher> {
        self.accept(receipt, request, false)
    }

    fn accept(
        &mut self,
        receipt: &SignedChannelReceipt,
        request: &RequestExpectation,
        answered: bool,
    ) -> Result<&SignedVoucher> {
        if self.closing {
            return Err(ChannelError::Closing);
        }
        let b = &receipt.body;
        if b.channel != self.state.channel {
            return Err(ChannelError::WrongChannel { what: "receipt" });
        }
        if b.seq <= self.acc.seq() {
            return Err(ChannelError::ReplayedReceipt {
                seq: b.seq,
                at: self.acc.seq(),
            });
        }
        receipt.verify_signature(&self.receipt_key)?;
        if b.worker != self.state.worker {
            return Err(ChannelError::WrongWorker {
                expected: self.state.worker.to_hex(),
                got: b.worker.to_hex(),
            });
        }
        check_request(receipt, request, answered)?;
        let mut acc = self.acc.clone();
        acc.append(b)?;
        if acc.cumulative() > self.state.amount {
            return Err(ChannelError::OverAmount {
                cumulative: acc.cumulative(),
                amount: self.state.amount,
            });
        }
        let voucher = self.sign(&acc, false)?;
        self.acc = acc;
        Ok(self.voucher.insert(voucher))
    }

    /// What the channel can still pay beyond the vouchers signed.
    pub fn remaining(&self) -> u128 {
        self.state.amount.saturating_sub(self.acc.cumulative())
    }

    /// Whether what remains is below `threshold` (e.g. a few requests' max cost).
    pub fn needs_top_up(&self, threshold: u128) -> bool {
        self.remaining() < threshold
    }

    /// How much a top-up must add for `target` to remain (0 when it already does).
    pub fn top_up_amount(&self, target: u128) -> u128 {
        target.saturating_sub(self.remaining())
    }

    /// Takes a fresh chain read (after a top-up, a settlement or a close request). Refused when it
    /// changes the channel's terms, goes back, or shows more settled than the session signed.
    pub fn refresh(&mut self, fresh: ChannelState) -> Result<()> {
        check_refresh(&self.state, &fresh)?;
        check_signed_within(&fresh, self.acc.seq(), self.acc.cumulative())?;
        self.state = fresh;
        Ok(())
    }

    /// Takes the worker's new receipt key (after a rotation recorded in its Worker contract).
    pub fn set_receipt_key(&mut self, receipt_key: [u8; 32]) {
        self.receipt_key = receipt_key;
    }

    /// The final voucher for a cooperative close: the same cumulative amount, seq and
    /// accumulator as the latest voucher, flagged final, so the worker's settlement with it ends
    /// the channel at once and frees the rest. The session serves no request after it.
    pub fn final_voucher(&mut self) -> Result<SignedVoucher> {
        if self.acc.seq() == 0 {
            return Err(ChannelError::NoReceipt);
        }
        let voucher = self.sign(&self.acc, true)?;
        self.closing = true;
        Ok(self.voucher.insert(voucher).clone())
    }

    fn sign(&self, acc: &Accumulator, is_final: bool) -> Result<SignedVoucher> {
        Voucher {
            channel: self.state.channel.clone(),
            cumulative: acc.cumulative(),
            last_seq: acc.seq(),
            acc: acc.acc(),
            is_final,
        }
        .sign(&self.voucher_key)
    }
}

fn check_key(state: &ChannelState, key: &SigningKey) -> Result<()> {
    if key.verifying_key().to_bytes() == state.voucher_key {
        Ok(())
    } else {
        Err(ChannelError::KeyMismatch)
    }
}

/// The chain can never have settled beyond what was signed, nor hold less than it.
fn check_signed_within(state: &ChannelState, seq: u32, cumulative: u128) -> Result<()> {
    if state.last_seq > seq || state.settled > cumulative {
        return Err(ChannelError::StateMismatch { field: "settled" });
    }
    if cumulative > state.amount {
        return Err(ChannelError::OverAmount {
            cumulative,
            amount: state.amount,
        });
    }
    Ok(())
}

/// Security rule: the receipt answers this request — model, input, output — and charges no more
/// output tokens than it allowed.
fn check_request(
    receipt: &SignedChannelReceipt,
    request: &RequestExpectation,
    answered: bool,
) -> Result<()> {
    let b = &receipt.body;
    let mismatch = |field, expected: String, got: String| ChannelError::RequestMismatch {
        field,
        expected,
        got,
    };
    if b.model_id != request.model_id {
        return Err(mismatch(
            "model_id",
            request.model_id.to_string(),
            b.model_id.to_string(),
        ));
    }
    if b.commitments.input_commitment != request.input_commitment {
        return Err(mismatch(
            "input_commitment",
            hex::encode(request.input_commitment),
            hex::encode(b.commitments.input_commitment),
        ));
    }
    if answered && b.commitments.output_commitment != request.output_commitment {
        return Err(mismatch(
            "output_commitment",
            hex::encode(request.output_commitment),
            hex::encode(b.commitments.output_commitment),
        ));
    }
    if b.tokens_out > request.max_tokens {
        return Err(ChannelError::TooManyTokens {
            tokens_out: b.tokens_out,
            max_tokens: request.max_tokens,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{ACC_ZERO, ChannelReceipt};
    use super::*;

    fn session(amount: u128) -> ChannelSession {
        ChannelSession::open(state(amount), receipt_key(), client_key()).unwrap()
    }

    fn sign(body: ChannelReceipt) -> SignedChannelReceipt {
        body.sign(&worker_key()).unwrap()
    }

    /// The receipt the worker owes `s` for its next request `d`.
    fn next_receipt(s: &ChannelSession, d: &ReceiptDraft) -> SignedChannelReceipt {
        sign(receipt_body(
            s.accumulator().seq() + 1,
            s.accumulator().acc(),
            d,
        ))
    }

    use super::super::ReceiptDraft;

    #[test]
    fn each_checked_receipt_is_paid_by_the_next_voucher() {
        let mut s = session(1_000_000);
        let t = s.next_request(NOW).unwrap();
        assert_eq!((t.channel, t.seq, t.voucher), (channel(), 1, None));

        let d1 = draft(1, 10, 20);
        let r1 = next_receipt(&s, &d1);
        let v1 = s.on_receipt(&r1, &expectation(&d1, 20)).unwrap().clone();
        v1.verify_signature(&state(0).voucher_key).unwrap();
        assert_eq!(v1.body.cumulative, 10 * PRICE_IN + 20 * PRICE_OUT);
        assert_eq!(v1.body.last_seq, 1);
        assert!(!v1.body.is_final);
        assert_eq!(
            v1.body.acc,
            super::super::chain_step(&ACC_ZERO, &r1.body.hash().unwrap())
        );

        let t = s.next_request(NOW).unwrap();
        assert_eq!((t.seq, t.voucher.as_ref()), (2, Some(&v1)));
        let d2 = draft(2, 5, 0);
        let r2 = next_receipt(&s, &d2);
        let v2 = s.on_receipt(&r2, &expectation(&d2, 8)).unwrap().clone();
        assert_eq!(v2.body.cumulative, v1.body.cumulative + 5 * PRICE_IN);
        assert_eq!(s.remaining(), 1_000_000 - v2.body.cumulative);
    }

    /// A bad receipt is refused with its own error and leaves the session exactly as it was: no
    /// voucher signed, the same next request.
    fn refused(
        s: &mut ChannelSession,
        r: &SignedChannelReceipt,
        e: &RequestExpectation,
    ) -> ChannelError {
        let before = s.snapshot();
        let err = s.on_receipt(r, e).unwrap_err();
        assert_eq!(s.snapshot(), before, "{err}");
        err
    }

    #[test]
    fn every_bad_receipt_is_refused_and_changes_nothing() {
        let mut s = session(1_000_000);
        let d = draft(1, 10, 20);
        let r1 = next_receipt(&s, &d);
        s.on_receipt(&r1, &expectation(&d, 20)).unwrap();
        let d = draft(2, 10, 20);
        let e = expectation(&d, 20);
        let good = receipt_body(2, s.accumulator().acc(), &d);

        // Replayed: the first receipt again.
        assert!(matches!(
            refused(&mut s, &r1, &expectation(&draft(1, 10, 20), 20)),
            ChannelError::ReplayedReceipt { seq: 1, at: 1 }
        ));
        // Wrong seq: a gap.
        let r = sign(ChannelReceipt {
            seq: 3,
            ..good.clone()
        });
        assert!(matches!(
            refused(&mut s, &r, &e),
            ChannelError::WrongSeq {
                got: 3,
                expected: 2
            }
        ));
        // Wrong cost: one nanoTON above the channel's prices, and one below.
        for cost in [good.cost + 1, good.cost - 1] {
            let r = sign(ChannelReceipt {
                cost,
                ..good.clone()
            });
            assert!(matches!(
                refused(&mut s, &r, &e),
                ChannelError::WrongCost { got, expected } if got == cost && expected == good.cost
            ));
        }
        // Wrong channel: another id, Escrow, network.
        for channel in [
            ChannelRef {
                channel_id: 8,
                ..channel()
            },
            ChannelRef {
                escrow: addr(9),
                ..channel()
            },
            ChannelRef {
                global_id: -3,
                ..channel()
            },
        ] {
            let r = sign(ChannelReceipt {
                channel,
                ..good.clone()
            });
            assert!(matches!(
                refused(&mut s, &r, &e),
                ChannelError::WrongChannel { what: "receipt" }
            ));
        }
        // Forged: signed by another key, or one bit of the signature flipped.
        let r = ChannelReceipt { ..good.clone() }
            .sign(&SigningKey::from_bytes(&[99; 32]))
            .unwrap();
        assert!(matches!(
            refused(&mut s, &r, &e),
            ChannelError::BadSignature { what: "receipt" }
        ));
        let mut r = sign(good.clone());
        r.signature[5] ^= 1;
        assert!(matches!(
            refused(&mut s, &r, &e),
            ChannelError::BadSignature { what: "receipt" }
        ));
        // Tampered after signing (cheaper tokens, same signature).
        let mut r = sign(good.clone());
        r.body.tokens_out -= 1;
        assert!(matches!(
            refused(&mut s, &r, &e),
            ChannelError::BadSignature { what: "receipt" }
        ));
        // Another Worker contract (even one holding the same key).
        let r = sign(ChannelReceipt {
            worker: addr(9),
            ..good.clone()
        });
        assert!(matches!(
            refused(&mut s, &r, &e),
            ChannelError::WrongWorker { .. }
        ));
        // A forged history.
        let r = sign(ChannelReceipt {
            prev_acc: ACC_ZERO,
            ..good.clone()
        });
        assert!(matches!(
            refused(&mut s, &r, &e),
            ChannelError::BrokenChain { seq: 2 }
        ));
        // Not this request: model, input, output.
        for (field, r) in [
            (
                "model_id",
                sign(ChannelReceipt {
                    model_id: 4,
                    ..good.clone()
                }),
            ),
            ("input_commitment", {
                let mut b = good.clone();
                b.commitments.input_commitment = [0; 32];
                sign(b)
            }),
            ("output_commitment", {
                let mut b = good.clone();
                b.commitments.output_commitment = [0; 32];
                sign(b)
            }),
        ] {
            assert!(matches!(
                refused(&mut s, &r, &e),
                ChannelError::RequestMismatch { field: f, .. } if f == field
            ));
        }
        // More output tokens than the request allowed (correctly priced).
        let r = sign(good.clone());
        assert!(matches!(
            refused(&mut s, &r, &expectation(&d, 19)),
            ChannelError::TooManyTokens {
                tokens_out: 20,
                max_tokens: 19
            }
        ));

        // After all that, the good receipt still goes in.
        let v = s.on_receipt(&sign(good.clone()), &e).unwrap();
        assert_eq!(v.body.last_seq, 2);
    }

    #[test]
    fn the_receipt_of_a_lost_answer_is_checked_but_for_the_output() {
        let mut s = session(1_000_000);
        let d = draft(1, 10, 20);
        let r = next_receipt(&s, &d);
        let mut e = expectation(&d, 20);
        e.output_commitment = [0; 32];
        assert!(matches!(
            refused(&mut s, &r, &e),
            ChannelError::RequestMismatch {
                field: "output_commitment",
                ..
            }
        ));
        let mut other_input = e.clone();
        other_input.input_commitment = [0; 32];
        let before = s.snapshot();
        assert!(matches!(
            s.on_receipt_without_answer(&r, &other_input),
            Err(ChannelError::RequestMismatch {
                field: "input_commitment",
                ..
            })
        ));
        assert_eq!(s.snapshot(), before);
        let v = s.on_receipt_without_answer(&r, &e).unwrap();
        assert_eq!(v.body.last_seq, 1);
        assert!(matches!(
            s.on_receipt_without_answer(&r, &e),
            Err(ChannelError::ReplayedReceipt { seq: 1, at: 1 })
        ));
    }

    #[test]
    fn a_receipt_above_the_channels_amount_is_refused() {
        let d = draft(1, 10, 20);
        let cost = 10 * PRICE_IN + 20 * PRICE_OUT;
        let mut s = session(cost - 1);
        let r = next_receipt(&s, &d);
        assert!(matches!(
            refused(&mut s, &r, &expectation(&d, 20)),
            ChannelError::OverAmount { cumulative, amount } if cumulative == cost && amount == cost - 1
        ));
        // Exactly the amount is fine.
        let mut s = session(cost);
        s.on_receipt(&r, &expectation(&d, 20)).unwrap();
        assert_eq!(s.remaining(), 0);
    }

    #[test]
    fn top_ups_refill_what_remains_and_a_refresh_cannot_change_the_terms() {
        let mut s = session(100_000);
        let d = draft(1, 10, 20);
        let r = next_receipt(&s, &d);
        s.on_receipt(&r, &expectation(&d, 20)).unwrap();
        assert_eq!(s.remaining(), 30_000);
        assert!(s.needs_top_up(30_001));
        assert!(!s.needs_top_up(30_000));
        assert_eq!(s.top_up_amount(100_000), 70_000);
        assert_eq!(s.top_up_amount(10_000), 0);

        let mut fresh = state(170_000);
        fresh.settled = 70_000;
        fresh.last_seq = 1;
        s.refresh(fresh.clone()).unwrap();
        assert_eq!(s.remaining(), 100_000);

        for (field, bad) in [
            (
                "price_out",
                ChannelState {
                    price_out: PRICE_OUT + 1,
                    ..fresh.clone()
                },
            ),
            (
                "channel",
                ChannelState {
                    channel: ChannelRef {
                        channel_id: 8,
                        ..channel()
                    },
                    ..fresh.clone()
                },
            ),
            (
                "worker",
                ChannelState {
                    worker: addr(9),
                    ..fresh.clone()
                },
            ),
            (
                "voucher_key",
                ChannelState {
                    voucher_key: [1; 32],
                    ..fresh.clone()
                },
            ),
            (
                "amount",
                ChannelState {
                    amount: 169_999,
                    ..fresh.clone()
                },
            ),
            // The chain cannot have settled more than the client signed.
            (
                "settled",
                ChannelState {
                    settled: 70_001,
                    ..fresh.clone()
                },
            ),
            (
                "settled",
                ChannelState {
                    last_seq: 2,
                    ..fresh.clone()
                },
            ),
        ] {
            let before = s.snapshot();
            assert!(matches!(
                s.refresh(bad),
                Err(ChannelError::StateMismatch { field: f }) if f == field
            ));
            assert_eq!(s.snapshot(), before);
        }
    }

    #[test]
    fn the_final_voucher_repeats_the_latest_and_ends_the_session() {
        let mut s = session(1_000_000);
        assert!(matches!(s.final_voucher(), Err(ChannelError::NoReceipt)));
        let d = draft(1, 10, 20);
        let r = next_receipt(&s, &d);
        let v = s.on_receipt(&r, &expectation(&d, 20)).unwrap().clone();
        let f = s.final_voucher().unwrap();
        f.verify_signature(&state(0).voucher_key).unwrap();
        assert!(f.body.is_final);
        assert_eq!(
            (f.body.cumulative, f.body.last_seq, f.body.acc),
            (v.body.cumulative, v.body.last_seq, v.body.acc)
        );
        assert_eq!(s.latest_voucher(), Some(&f));
        assert_eq!(
            s.final_voucher().unwrap(),
            f,
            "asking again gives the same one"
        );
        assert!(matches!(s.next_request(NOW), Err(ChannelError::Closing)));
        let d = draft(2, 1, 1);
        let r = next_receipt(&s, &d);
        assert!(matches!(
            s.on_receipt(&r, &expectation(&d, 1)),
            Err(ChannelError::Closing)
        ));
    }

    #[test]
    fn no_request_on_an_expired_or_closing_channel() {
        let mut st = state(1_000);
        let s = ChannelSession::open(st.clone(), receipt_key(), client_key()).unwrap();
        assert!(matches!(
            s.next_request(st.expires_at),
            Err(ChannelError::NotServing { .. })
        ));
        st.close_requested_at = NOW - 1;
        let s = ChannelSession::open(st, receipt_key(), client_key()).unwrap();
        assert!(matches!(
            s.next_request(NOW),
            Err(ChannelError::NotServing { close_requested_at, .. }) if close_requested_at == NOW - 1
        ));
    }

    #[test]
    fn a_session_opens_only_with_the_channels_voucher_key_and_history() {
        assert!(matches!(
            ChannelSession::open(state(1), receipt_key(), worker_key()),
            Err(ChannelError::KeyMismatch)
        ));
        let settled = ChannelState {
            settled: 5,
            last_seq: 2,
            ..state(10)
        };
        assert!(matches!(
            ChannelSession::open(settled, receipt_key(), client_key()),
            Err(ChannelError::LostHistory { last_seq: 2 })
        ));
    }

    #[test]
    fn a_saved_session_resumes_where_it_stopped_and_refuses_tampering() {
        let mut s = session(1_000_000);
        let fresh = ChannelSession::resume(
            serde_json::from_str(&serde_json::to_string(&s.snapshot()).unwrap()).unwrap(),
            client_key(),
        )
        .unwrap();
        assert_eq!(fresh.snapshot(), s.snapshot());

        for n in 1..=3 {
            let d = draft(n, 10, 20);
            let r = next_receipt(&s, &d);
            s.on_receipt(&r, &expectation(&d, 20)).unwrap();
        }
        let json = serde_json::to_string_pretty(&s.snapshot()).unwrap();
        assert!(json.contains(r#""amount": "1000000""#), "{json}");
        assert!(
            json.contains(&format!(r#""escrow": "{}""#, addr(2).to_hex())),
            "{json}"
        );
        let snap: SessionSnapshot = serde_json::from_str(&json).unwrap();
        let mut back = ChannelSession::resume(snap.clone(), client_key()).unwrap();
        assert_eq!(back.accumulator(), s.accumulator());
        assert_eq!(
            back.next_request(NOW).unwrap(),
            s.next_request(NOW).unwrap()
        );
        // It goes on exactly like the original.
        let d = draft(4, 1, 2);
        let r = next_receipt(&s, &d);
        assert_eq!(
            back.on_receipt(&r, &expectation(&d, 2)).unwrap(),
            s.on_receipt(&r, &expectation(&d, 2)).unwrap()
        );

        assert!(matches!(
            ChannelSession::resume(snap.clone(), worker_key()),
            Err(ChannelError::KeyMismatch)
        ));
        let mut forged = snap.clone();
        forged.voucher.as_mut().unwrap().body.cumulative += 1;
        assert!(matches!(
            ChannelSession::resume(forged, client_key()),
            Err(ChannelError::BadSignature { what: "voucher" })
        ));
        let mut other = snap.clone();
        other.state.channel.channel_id = 8;
        assert!(matches!(
            ChannelSession::resume(other, client_key()),
            Err(ChannelError::WrongChannel { what: "voucher" })
        ));
        let mut lost = snap.clone();
        lost.voucher = None;
        lost.state.last_seq = 1;
        assert!(matches!(
            ChannelSession::resume(lost, client_key()),
            Err(ChannelError::LostHistory { last_seq: 1 })
        ));
        let mut old = snap.clone();
        old.version = 2;
        assert!(matches!(
            ChannelSession::resume(old, client_key()),
            Err(ChannelError::UnsupportedSnapshot { version: 2 })
        ));
        let extra = json.replacen('{', r#"{"secret":"x","#, 1);
        assert!(serde_json::from_str::<SessionSnapshot>(&extra).is_err());
        let mut bad_boc = serde_json::to_value(&snap).unwrap();
        bad_boc["voucher"] = "AAAA".into();
        assert!(serde_json::from_value::<SessionSnapshot>(bad_boc).is_err());

        // A final voucher survives the round trip, and so does the closing flag it implies.
        s.final_voucher().unwrap();
        let closed = ChannelSession::resume(s.snapshot(), client_key()).unwrap();
        assert!(closed.is_closing());
        let mut reopened = s.snapshot();
        reopened.closing = false;
        assert!(matches!(
            ChannelSession::resume(reopened, client_key()),
            Err(ChannelError::StateMismatch { field: "closing" })
        ));
    }
}
