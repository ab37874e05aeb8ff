//! The worker's side of a channel: whether a request may be served (its credit), the receipt for
//! (channel, seq) at the channel's prices, the client's vouchers, and when to settle.
//!
//! ```text
//! accept_voucher(v)            signature, channel, newer, = the worker's own receipts up to v.seq
//! admit(now, seq, max_cost)    serving, seq = next, within the amount and the credit ─▶ Admission
//! sign_receipt(seq, draft)     cost at the channel's prices ≤ admitted max ─▶ ReceiptToPersist
//!   caller: persist it durably (ledger) ─▶ commit(&it) ─▶ only then send it
//! settlement(now, policy)      due ≥ 100 × fee, or the window closing, or final, or shutdown
//! ```
//!
//! Credit: a request is admitted only while unpaid (signed receipts − the best voucher) plus its
//! maximum cost stays within the credit, so what a client that stops paying can take is at most
//! the credit. With the default credit (one request's maximum cost) the client must pay each
//! receipt, with the voucher its next request carries, before it is served again.
//!
//! Never two receipts for one seq: one request is in flight per channel, its seq is the next
//! after the last receipt, and the book advances only when the caller has persisted the receipt;
//! the ledger is the last word across restarts ([`WorkerChannel::restore`]).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use tonlib_core::TonAddress;

use super::accumulator::{Accumulator, chain_step};
use super::error::{ChannelError, Result};
use super::receipt::{ChannelReceipt, SignedChannelReceipt};
use super::settle::{SettlePolicy, SettleReason, Settlement, worker_share};
use super::state::ChannelState;
use super::terms::check_refresh;
use super::voucher::SignedVoucher;
use crate::receipt::{ReceiptCommitments, ReceiptHashes};

/// The most a request can cost on `state`'s channel: `tokens_in` input tokens (the prompt, or the
/// model's context length before it is known) and `max_tokens` output tokens at its prices. The
/// default credit is this at the model's context length.
pub fn request_max_cost(state: &ChannelState, tokens_in: u32, max_tokens: u32) -> Result<u128> {
    crate::receipt::expected_cost(tokens_in, max_tokens, state.price_in, state.price_out)
        .map_err(|_| ChannelError::Overflow)
}

/// A request admitted on a channel: its seq is reserved until it is signed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The seq its receipt will have.
    pub seq: u32,
    /// The most its receipt may cost.
    pub max_cost: u128,
}

/// What the engine measured for a served request: everything of its receipt that the channel
/// does not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptDraft {
    /// Model id from Root's registry.
    pub model_id: u32,
    /// Input tokens processed.
    pub tokens_in: u32,
    /// Output tokens produced.
    pub tokens_out: u32,
    /// Unix time of signing.
    pub time: u32,
    /// Weights and evidence hashes.
    pub hashes: ReceiptHashes,
    /// Input and output commitments.
    pub commitments: ReceiptCommitments,
}

/// A signed receipt that must be persisted durably before it leaves the process, then passed to
/// [`WorkerChannel::commit`]. What to persist: the receipt (its BOC), keyed by (channel, seq);
/// `acc` and `cumulative` are what the channel's accumulator and total become with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "persist the receipt, then commit it, before sending it"]
pub struct ReceiptToPersist {
    /// The signed receipt.
    pub receipt: SignedChannelReceipt,
    /// The accumulator after it.
    pub acc: [u8; 32],
    /// The cost of every receipt of the channel up to it.
    pub cumulative: u128,
}

/// Whether an accepted voucher improved what the worker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoucherIntake {
    /// It covers more receipts than the voucher held (or is the final form of it): keep it
    /// durably, it is the worker's claim.
    Better,
    /// It is the voucher already held.
    Same,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    seq: u32,
    max_cost: u128,
    /// The hash of the receipt signed for it, waiting to be persisted and committed.
    signed: Option<[u8; 32]>,
}

/// What the worker signed at a seq: the accumulator and the total after that receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signed {
    acc: [u8; 32],
    cumulative: u128,
}

/// One channel as its worker keeps it.
#[derive(Debug, Clone)]
pub struct WorkerChannel {
    state: ChannelState,
    credit: u128,
    acc: Accumulator,
    /// Receipts from the best voucher's seq on (older ones can no longer be vouched for).
    signed: BTreeMap<u32, Signed>,
    best: Option<SignedVoucher>,
    in_flight: Option<InFlight>,
    /// Cumulative amount of a settlement submitted and not yet seen on-chain.
    settling: Option<u128>,
}

impl WorkerChannel {
    /// A channel this worker never served: `state` from the chain, `worker` its own Worker
    /// contract, `credit` how much it serves unpaid (see [`request_max_cost`]).
    pub fn new(state: ChannelState, worker: &TonAddress, credit: u128) -> Result<Self> {
        Self::restore(state, worker, credit, Vec::new(), None)
    }

    /// A channel rebuilt from the worker's ledger: every receipt it persisted for the channel in
    /// seq order (each re-checked to continue the chain), and the best voucher it holds.
    pub fn restore(
        state: ChannelState,
        worker: &TonAddress,
        credit: u128,
        receipts: impl IntoIterator<Item = ChannelReceipt>,
        best: Option<SignedVoucher>,
    ) -> Result<Self> {
        if &state.worker != worker {
            return Err(ChannelError::NotOurChannel {
                channel_worker: state.worker.to_hex(),
            });
        }
        let mut acc = Accumulator::new(state.channel.clone(), state.price_in, state.price_out);
        let mut signed = BTreeMap::new();
        for r in receipts {
            if &r.worker != worker {
                return Err(ChannelError::WrongWorker {
                    expected: worker.to_hex(),
                    got: r.worker.to_hex(),
                });
            }
            let after = acc.append(&r)?;
            signed.insert(
                r.seq,
                Signed {
                    acc: after,
                    cumulative: acc.cumulative(),
                },
            );
        }
        if state.last_seq > acc.seq() || state.settled > acc.cumulative() {
            return Err(ChannelError::LostHistory {
                last_seq: state.last_seq,
            });
        }
        let mut book = Self {
            state,
            credit,
            acc,
            signed,
            best: None,
            in_flight: None,
            settling: None,
        };
        if let Some(v) = best {
            book.accept_voucher(&v)?;
        }
        Ok(book)
    }

    /// The channel as last read from the chain.
    pub fn state(&self) -> &ChannelState {
        &self.state
    }

    /// How much the worker serves unpaid on this channel.
    pub fn credit(&self) -> u128 {
        self.credit
    }

    /// The receipts signed (and committed) so far: last seq, accumulator, total.
    pub fn accumulator(&self) -> &Accumulator {
        &self.acc
    }

    /// The best voucher held.
    pub fn best_voucher(&self) -> Option<&SignedVoucher> {
        self.best.as_ref()
    }

    /// What the worker's receipts total beyond the best voucher.
    pub fn unpaid(&self) -> u128 {
        self.acc.cumulative() - self.paid()
    }

    fn paid(&self) -> u128 {
        self.best.as_ref().map_or(0, |v| v.body.cumulative)
    }

    /// Takes a fresh chain read (a top-up, a settlement, a close request); a settlement seen
    /// on-chain ends the one in flight.
    pub fn refresh(&mut self, fresh: ChannelState) -> Result<()> {
        check_refresh(&self.state, &fresh)?;
        if fresh.last_seq > self.acc.seq() || fresh.settled > self.acc.cumulative() {
            return Err(ChannelError::StateMismatch { field: "settled" });
        }
        if self.settling.is_some_and(|s| fresh.settled >= s) {
            self.settling = None;
        }
        self.state = fresh;
        Ok(())
    }

    /// Takes a voucher from the client. Checks: the channel; the signature by the channel's
    /// voucher key; not older than the one held; a seq the worker signed, with the accumulator and
    /// cumulative amount of its own receipts up to that seq (so it pays exactly them, within the
    /// channel's amount). Refused vouchers change nothing.
    pub fn accept_voucher(&mut self, voucher: &SignedVoucher) -> Result<VoucherIntake> {
        let v = &voucher.body;
        if v.channel != self.state.channel {
            return Err(ChannelError::WrongChannel { what: "voucher" });
        }
        voucher.verify_signature(&self.state.voucher_key)?;
        if let Some(held) = &self.best {
            if v.last_seq < held.body.last_seq {
                return Err(ChannelError::StaleVoucher {
                    seq: v.last_seq,
                    held: held.body.last_seq,
                });
            }
            if held == voucher {
                return Ok(VoucherIntake::Same);
            }
        }
        if v.last_seq == 0 || v.last_seq > self.acc.seq() {
            return Err(ChannelError::UnsignedSeq {
                seq: v.last_seq,
                signed: self.acc.seq(),
            });
        }
        let Some(at) = self.signed.get(&v.last_seq) else {
            // Pruned: older than the voucher held (only reachable with none held on a restore).
            return Err(ChannelError::StaleVoucher {
                seq: v.last_seq,
                held: self.best.as_ref().map_or(0, |h| h.body.last_seq),
            });
        };
        if v.acc != at.acc {
            return Err(ChannelError::VoucherMismatch {
                seq: v.last_seq,
                field: "acc",
            });
        }
        if v.cumulative != at.cumulative {
            return Err(ChannelError::VoucherMismatch {
                seq: v.last_seq,
                field: "cumulative",
            });
        }
        if v.cumulative > self.state.amount {
            return Err(ChannelError::OverAmount {
                cumulative: v.cumulative,
                amount: self.state.amount,
            });
        }
        if let Some(held) = &self.best
            && held.body.last_seq == v.last_seq
            && (held.body.is_final || !v.is_final)
        {
            // The same claim again (a final one is never traded back for a plain one).
            return Ok(VoucherIntake::Same);
        }
        self.signed = self.signed.split_off(&v.last_seq);
        self.best = Some(voucher.clone());
        Ok(VoucherIntake::Better)
    }

    /// Admits a request with `seq` and at most `max_cost` at `now`, reserving the seq. Refused
    /// when the client closed the channel (final voucher), the channel does not serve at `now`,
    /// another request of the channel is in flight, `seq` is already signed ([`ChannelError::SeqTaken`]:
    /// resend that receipt from the ledger) or not the next, the channel's amount cannot pay
    /// `max_cost`, or unpaid + `max_cost` would exceed the credit.
    pub fn admit(&mut self, now: u32, seq: u32, max_cost: u128) -> Result<Admission> {
        if self.best.as_ref().is_some_and(|v| v.body.is_final) {
            return Err(ChannelError::Closing);
        }
        if !self.state.serves_at(now) {
            return Err(ChannelError::NotServing {
                now,
                expires_at: self.state.expires_at,
                close_requested_at: self.state.close_requested_at,
            });
        }
        if let Some(f) = &self.in_flight {
            return Err(ChannelError::Busy { seq: f.seq });
        }
        if seq <= self.acc.seq() {
            return Err(ChannelError::SeqTaken { seq });
        }
        let expected = self
            .acc
            .seq()
            .checked_add(1)
            .ok_or(ChannelError::Overflow)?;
        if seq != expected {
            return Err(ChannelError::WrongSeq { got: seq, expected });
        }
        let cumulative = self.acc.cumulative();
        if cumulative
            .checked_add(max_cost)
            .is_none_or(|c| c > self.state.amount)
        {
            return Err(ChannelError::Exhausted {
                cumulative,
                max_cost,
                amount: self.state.amount,
            });
        }
        let unpaid = self.unpaid();
        if unpaid.checked_add(max_cost).is_none_or(|u| u > self.credit) {
            return Err(ChannelError::OverCredit {
                unpaid,
                max_cost,
                credit: self.credit,
            });
        }
        self.in_flight = Some(InFlight {
            seq,
            max_cost,
            signed: None,
        });
        Ok(Admission { seq, max_cost })
    }

    /// Gives up an admitted request that will get no receipt (it failed, or persisting its
    /// receipt failed — then that receipt must never be sent). The seq is free again.
    pub fn release(&mut self, seq: u32) -> Result<()> {
        match self.in_flight {
            Some(f) if f.seq == seq => {
                self.in_flight = None;
                Ok(())
            }
            _ => Err(ChannelError::NotAdmitted { seq }),
        }
    }

    /// Signs the receipt of the admitted request `seq` with the worker's receipt key: the
    /// channel, its Worker, the cost of the draft's tokens at the channel's prices (at most the
    /// admitted maximum), the accumulator so far. Once per admission: the receipt must be
    /// persisted, then [`Self::commit`]ted, before it is sent.
    pub fn sign_receipt(
        &mut self,
        seq: u32,
        draft: ReceiptDraft,
        receipt_key: &SigningKey,
    ) -> Result<ReceiptToPersist> {
        let f = match self.in_flight {
            Some(f) if f.seq == seq && f.signed.is_none() => f,
            _ => return Err(ChannelError::NotAdmitted { seq }),
        };
        let body = ChannelReceipt {
            channel: self.state.channel.clone(),
            seq,
            worker: self.state.worker.clone(),
            model_id: draft.model_id,
            tokens_in: draft.tokens_in,
            tokens_out: draft.tokens_out,
            cost: 0,
            time: draft.time,
            prev_acc: self.acc.acc(),
            hashes: draft.hashes,
            commitments: draft.commitments,
        };
        let cost = body.expected_cost(self.state.price_in, self.state.price_out)?;
        if cost > f.max_cost {
            return Err(ChannelError::AboveAdmitted {
                cost,
                max_cost: f.max_cost,
            });
        }
        let cumulative = self
            .acc
            .cumulative()
            .checked_add(cost)
            .ok_or(ChannelError::Overflow)?;
        let receipt = ChannelReceipt { cost, ..body }.sign(receipt_key)?;
        let hash = receipt.body.hash()?;
        self.in_flight = Some(InFlight {
            signed: Some(hash),
            ..f
        });
        Ok(ReceiptToPersist {
            acc: chain_step(&self.acc.acc(), &hash),
            cumulative,
            receipt,
        })
    }

    /// Records that `persisted` is durably in the ledger: the channel moves to its seq, and the
    /// receipt may now be sent.
    pub fn commit(&mut self, persisted: &ReceiptToPersist) -> Result<()> {
        let seq = persisted.receipt.body.seq;
        let hash = persisted.receipt.body.hash()?;
        match self.in_flight {
            Some(f) if f.seq == seq && f.signed == Some(hash) => {}
            _ => return Err(ChannelError::NotAdmitted { seq }),
        }
        let after = self.acc.append(&persisted.receipt.body)?;
        self.signed.insert(
            seq,
            Signed {
                acc: after,
                cumulative: self.acc.cumulative(),
            },
        );
        self.in_flight = None;
        Ok(())
    }

    /// The settlement due now under `policy`, if any: there is something to settle (the best
    /// voucher above what is settled or being settled), the window is still open, and either the
    /// client signed a final voucher, the window closes within the margin, the worker's share
    /// reaches the policy's threshold, or the node is `shutting_down`.
    pub fn settlement(
        &self,
        now: u32,
        policy: &SettlePolicy,
        shutting_down: bool,
    ) -> Option<Settlement> {
        let voucher = self.best.as_ref()?;
        let base = self.state.settled.max(self.settling.unwrap_or(0));
        let due = voucher
            .body
            .cumulative
            .checked_sub(base)
            .filter(|d| *d > 0)?;
        if !self.state.settles_at(now) {
            return None;
        }
        let share = worker_share(due, self.state.relayer_fee_bps, self.state.protocol_fee_bps);
        let reason = if voucher.body.is_final {
            SettleReason::FinalVoucher
        } else if now.saturating_add(policy.margin_secs) >= self.state.settle_until {
            SettleReason::Expiry
        } else if share >= policy.threshold() {
            SettleReason::Threshold
        } else if shutting_down {
            SettleReason::Shutdown
        } else {
            return None;
        };
        Some(Settlement {
            voucher: voucher.clone(),
            due,
            worker_share: share,
            reason,
        })
    }

    /// Notes that a settlement up to `cumulative` was submitted, so it is not proposed again
    /// until it fails or the chain shows it.
    pub fn settlement_submitted(&mut self, cumulative: u128) {
        self.settling = Some(cumulative);
    }

    /// Notes that the submitted settlement failed: it may be proposed again.
    pub fn settlement_failed(&mut self) {
        self.settling = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{ChannelRef, ChannelSession, Voucher};
    use super::*;

    /// A worker book and the client session of the same channel.
    fn pair(amount: u128, credit: u128) -> (WorkerChannel, ChannelSession) {
        (
            WorkerChannel::new(state(amount), &worker(), credit).unwrap(),
            ChannelSession::open(state(amount), receipt_key(), client_key()).unwrap(),
        )
    }

    /// One request end to end: admitted at its max cost, signed, persisted (here: nothing),
    /// committed, checked by the client. Returns the receipt.
    fn serve(
        w: &mut WorkerChannel,
        c: &mut ChannelSession,
        d: ReceiptDraft,
        max_tokens: u32,
    ) -> SignedChannelReceipt {
        let t = c.next_request(NOW).unwrap();
        if let Some(v) = &t.voucher {
            w.accept_voucher(v).unwrap();
        }
        let max = request_max_cost(w.state(), d.tokens_in, max_tokens).unwrap();
        let a = w.admit(NOW, t.seq, max).unwrap();
        let e = expectation(&d, max_tokens);
        let p = w.sign_receipt(a.seq, d, &worker_key()).unwrap();
        w.commit(&p).unwrap();
        c.on_receipt(&p.receipt, &e).unwrap();
        p.receipt
    }

    fn cost(tokens_in: u32, tokens_out: u32) -> u128 {
        u128::from(tokens_in) * PRICE_IN + u128::from(tokens_out) * PRICE_OUT
    }

    #[test]
    fn with_the_default_credit_each_receipt_is_paid_before_the_next_request() {
        let credit = request_max_cost(&state(0), 100, 50).unwrap();
        assert_eq!(credit, cost(100, 50));
        let (mut w, mut c) = pair(10_000_000, credit);
        let r1 = serve(&mut w, &mut c, draft(1, 80, 40), 50);
        assert_eq!(r1.body.cost, cost(80, 40));
        assert_eq!(r1.body.worker, worker());
        assert_eq!(r1.body.channel, channel());
        r1.verify_signature(&receipt_key()).unwrap();
        assert_eq!(w.unpaid(), cost(80, 40));

        // Without the voucher for seq 1, seq 2 is over the credit.
        assert!(matches!(
            w.admit(NOW, 2, credit),
            Err(ChannelError::OverCredit { unpaid, max_cost, credit: cr })
                if unpaid == cost(80, 40) && max_cost == credit && cr == credit
        ));
        // The next request carries it, and is served.
        serve(&mut w, &mut c, draft(2, 100, 50), 50);
        assert_eq!(w.best_voucher().unwrap().body.last_seq, 1);
        assert_eq!(w.unpaid(), cost(100, 50));
        assert_eq!(w.accumulator(), c.accumulator());
    }

    #[test]
    fn admission_refusals() {
        let (mut w, mut c) = pair(1_000_000, u128::MAX);
        assert!(matches!(
            w.admit(NOW, 2, 1),
            Err(ChannelError::WrongSeq {
                got: 2,
                expected: 1
            })
        ));
        assert!(matches!(
            w.admit(NOW, 1, 1_000_001),
            Err(ChannelError::Exhausted {
                cumulative: 0,
                max_cost: 1_000_001,
                amount: 1_000_000
            })
        ));
        assert!(matches!(
            w.admit(NOW, 1, u128::MAX),
            Err(ChannelError::Exhausted { .. })
        ));
        assert!(matches!(
            w.admit(w.state().expires_at, 1, 1),
            Err(ChannelError::NotServing { .. })
        ));
        w.admit(NOW, 1, 100_000).unwrap();
        assert!(matches!(
            w.admit(NOW, 2, 1),
            Err(ChannelError::Busy { seq: 1 })
        ));
        w.release(1).unwrap();
        serve(&mut w, &mut c, draft(1, 10, 20), 20);
        // Seq 1 is signed: asked again, it is taken (the caller resends the stored receipt).
        assert!(matches!(
            w.admit(NOW, 1, 1),
            Err(ChannelError::SeqTaken { seq: 1 })
        ));
        // A close requested on-chain stops new requests.
        let mut closing = w.state().clone();
        closing.close_requested_at = NOW - 1;
        w.refresh(closing).unwrap();
        assert!(matches!(
            w.admit(NOW, 2, 1),
            Err(ChannelError::NotServing { .. })
        ));
    }

    #[test]
    fn a_final_voucher_stops_serving() {
        let (mut w, mut c) = pair(1_000_000, u128::MAX);
        serve(&mut w, &mut c, draft(1, 10, 20), 20);
        let f = c.final_voucher().unwrap();
        assert_eq!(w.accept_voucher(&f).unwrap(), VoucherIntake::Better);
        assert!(matches!(w.admit(NOW, 2, 1), Err(ChannelError::Closing)));
        // The plain voucher of the same seq never replaces the final one.
        let mut plain = f.body.clone();
        plain.is_final = false;
        let plain = plain.sign(&client_key()).unwrap();
        assert_eq!(w.accept_voucher(&plain).unwrap(), VoucherIntake::Same);
        assert_eq!(w.best_voucher(), Some(&f));
    }

    #[test]
    fn one_receipt_per_admission_and_only_the_signed_one_commits() {
        let (mut w, mut c) = pair(1_000_000, u128::MAX);
        assert!(matches!(
            w.sign_receipt(1, draft(1, 1, 1), &worker_key()),
            Err(ChannelError::NotAdmitted { seq: 1 })
        ));
        w.admit(NOW, 1, cost(10, 20)).unwrap();
        assert!(matches!(
            w.sign_receipt(1, draft(1, 10, 21), &worker_key()),
            Err(ChannelError::AboveAdmitted { cost: co, max_cost })
                if co == cost(10, 21) && max_cost == cost(10, 20)
        ));
        let p = w.sign_receipt(1, draft(1, 10, 20), &worker_key()).unwrap();
        assert!(matches!(
            w.sign_receipt(1, draft(1, 10, 19), &worker_key()),
            Err(ChannelError::NotAdmitted { seq: 1 })
        ));
        // A receipt it did not sign for this admission does not commit.
        let mut other = p.clone();
        other.receipt.body.time += 1;
        assert!(matches!(
            w.commit(&other),
            Err(ChannelError::NotAdmitted { seq: 1 })
        ));
        assert_eq!(w.accumulator().seq(), 0, "nothing moves before commit");
        w.commit(&p).unwrap();
        assert_eq!(
            (
                w.accumulator().seq(),
                w.accumulator().acc(),
                w.accumulator().cumulative()
            ),
            (1, p.acc, p.cumulative)
        );
        assert!(matches!(
            w.commit(&p),
            Err(ChannelError::NotAdmitted { seq: 1 })
        ));
        c.on_receipt(&p.receipt, &expectation(&draft(1, 10, 20), 20))
            .unwrap();

        // Persisting failed: released, never sent, and the seq is signed afresh.
        w.admit(NOW, 2, cost(1, 1)).unwrap();
        let lost = w.sign_receipt(2, draft(2, 1, 1), &worker_key()).unwrap();
        w.release(2).unwrap();
        assert!(matches!(
            w.commit(&lost),
            Err(ChannelError::NotAdmitted { seq: 2 })
        ));
        assert!(matches!(
            w.release(2),
            Err(ChannelError::NotAdmitted { seq: 2 })
        ));
        w.admit(NOW, 2, cost(1, 1)).unwrap();
    }

    #[test]
    fn vouchers_must_pay_exactly_the_workers_own_receipts() {
        let (mut w, mut c) = pair(1_000_000, u128::MAX);
        serve(&mut w, &mut c, draft(1, 10, 20), 20);
        serve(&mut w, &mut c, draft(2, 10, 20), 20);
        let v2 = c.latest_voucher().unwrap().clone();
        let at1 = {
            let mut c1 =
                ChannelSession::open(state(1_000_000), receipt_key(), client_key()).unwrap();
            let mut w1 = WorkerChannel::new(state(1_000_000), &worker(), u128::MAX).unwrap();
            serve(&mut w1, &mut c1, draft(1, 10, 20), 20);
            c1.latest_voucher().unwrap().clone()
        };
        let resign = |v: Voucher| v.sign(&client_key()).unwrap();

        type Expect = fn(&ChannelError) -> bool;
        let refusals: Vec<(SignedVoucher, Expect)> = vec![
            (
                resign(Voucher {
                    channel: ChannelRef {
                        channel_id: 8,
                        ..channel()
                    },
                    ..v2.body.clone()
                }),
                |e| matches!(e, ChannelError::WrongChannel { what: "voucher" }),
            ),
            (v2.body.clone().sign(&worker_key()).unwrap(), |e| {
                matches!(e, ChannelError::BadSignature { what: "voucher" })
            }),
            (
                resign(Voucher {
                    last_seq: 3,
                    ..v2.body.clone()
                }),
                |e| matches!(e, ChannelError::UnsignedSeq { seq: 3, signed: 2 }),
            ),
            (
                resign(Voucher {
                    last_seq: 0,
                    cumulative: 0,
                    ..v2.body.clone()
                }),
                |e| matches!(e, ChannelError::StaleVoucher { seq: 0, held: 1 }),
            ),
            (
                resign(Voucher {
                    acc: [1; 32],
                    ..v2.body.clone()
                }),
                |e| {
                    matches!(
                        e,
                        ChannelError::VoucherMismatch {
                            seq: 2,
                            field: "acc"
                        }
                    )
                },
            ),
            // Less than the receipts total (and more: the worker keeps no voucher it cannot settle).
            (
                resign(Voucher {
                    cumulative: v2.body.cumulative - 1,
                    ..v2.body.clone()
                }),
                |e| {
                    matches!(
                        e,
                        ChannelError::VoucherMismatch {
                            seq: 2,
                            field: "cumulative"
                        }
                    )
                },
            ),
            (
                resign(Voucher {
                    cumulative: v2.body.cumulative + 1,
                    ..v2.body.clone()
                }),
                |e| {
                    matches!(
                        e,
                        ChannelError::VoucherMismatch {
                            seq: 2,
                            field: "cumulative"
                        }
                    )
                },
            ),
        ];
        for (v, is) in refusals {
            let before = (w.best_voucher().cloned(), w.unpaid());
            let e = w.accept_voucher(&v).unwrap_err();
            assert!(is(&e), "{e}");
            assert_eq!((w.best_voucher().cloned(), w.unpaid()), before);
        }

        // A voucher for no receipt at all, on a book that holds none.
        let mut fresh = WorkerChannel::new(state(1_000_000), &worker(), 1).unwrap();
        assert!(matches!(
            fresh.accept_voucher(&resign(Voucher {
                last_seq: 0,
                cumulative: 0,
                acc: [0; 32],
                ..v2.body.clone()
            })),
            Err(ChannelError::UnsignedSeq { seq: 0, signed: 0 })
        ));

        assert_eq!(w.accept_voucher(&v2).unwrap(), VoucherIntake::Better);
        assert_eq!(w.accept_voucher(&v2).unwrap(), VoucherIntake::Same);
        assert_eq!(w.unpaid(), 0);
        assert!(matches!(
            w.accept_voucher(&at1),
            Err(ChannelError::StaleVoucher { seq: 1, held: 2 })
        ));
    }

    #[test]
    fn the_settlement_policy() {
        let fee = 1_000u128;
        let policy = SettlePolicy {
            settle_fee: fee,
            margin_secs: 600,
        };
        // 5 % + 1 % fees: 100 × fee of share needs due ≥ 106,383 (share floor(due·0.94) ≥ 100,000).
        let (mut w, mut c) = pair(10_000_000, u128::MAX);
        assert_eq!(w.settlement(NOW, &policy, true), None, "nothing held");
        // tokens_out 35 → 105,000 due → share 105,000 − 5,250 − 1,050 = 98,700 < 100,000.
        serve(&mut w, &mut c, draft(1, 0, 35), 35);
        serve(&mut w, &mut c, draft(2, 0, 0), 0);
        assert_eq!(
            w.settlement(NOW, &policy, false),
            None,
            "unpaid receipts are no claim"
        );
        w.accept_voucher(c.latest_voucher().unwrap()).unwrap();
        assert_eq!(w.best_voucher().unwrap().body.cumulative, 105_000);
        assert_eq!(
            w.settlement(NOW, &policy, false),
            None,
            "below the threshold"
        );
        let s = w.settlement(NOW, &policy, true).unwrap();
        assert_eq!(
            (s.reason, s.due, s.worker_share),
            (SettleReason::Shutdown, 105_000, 98_700)
        );
        let until = w.state().settle_until;
        assert_eq!(w.settlement(until - 601, &policy, false), None);
        assert_eq!(
            w.settlement(until - 600, &policy, false).unwrap().reason,
            SettleReason::Expiry
        );
        assert_eq!(
            w.settlement(until + 1, &policy, true),
            None,
            "too late to settle"
        );

        // 2,000 more due → 107,000, share 100,580 ≥ 100,000.
        serve(&mut w, &mut c, draft(3, 2, 0), 0);
        serve(&mut w, &mut c, draft(4, 0, 0), 0);
        w.accept_voucher(c.latest_voucher().unwrap()).unwrap();
        let s = w.settlement(NOW, &policy, false).unwrap();
        assert_eq!(
            (s.reason, s.due, s.worker_share),
            (SettleReason::Threshold, 107_000, 100_580)
        );
        assert_eq!(&s.voucher, w.best_voucher().unwrap());

        // Submitted: not proposed again; failed: proposed again; seen on-chain: settled.
        w.settlement_submitted(s.voucher.body.cumulative);
        assert_eq!(w.settlement(NOW, &policy, true), None);
        w.settlement_failed();
        assert!(w.settlement(NOW, &policy, false).is_some());
        w.settlement_submitted(s.voucher.body.cumulative);
        let mut settled = w.state().clone();
        settled.settled = 107_000;
        settled.last_seq = 4;
        w.refresh(settled).unwrap();
        assert_eq!(w.settlement(NOW, &policy, true), None);
        // Only what is due beyond the settlement counts, and a final voucher settles it at once.
        serve(&mut w, &mut c, draft(5, 1, 0), 0);
        let f = c.final_voucher().unwrap();
        w.accept_voucher(&f).unwrap();
        let s = w.settlement(NOW, &policy, false).unwrap();
        assert_eq!((s.reason, s.due), (SettleReason::FinalVoucher, 1_000));
    }

    #[test]
    fn restored_from_its_ledger_it_continues_and_never_reuses_a_seq() {
        let (mut w, mut c) = pair(1_000_000, u128::MAX);
        let mut receipts = Vec::new();
        for n in 1..=3 {
            receipts.push(serve(&mut w, &mut c, draft(n, 10, 20), 20).body);
        }
        let v2 = {
            // The voucher for seq 2 arrived; seq 3's has not.
            let mut c2 =
                ChannelSession::open(state(1_000_000), receipt_key(), client_key()).unwrap();
            for r in &receipts[..2] {
                c2.on_receipt(
                    &r.clone().sign(&worker_key()).unwrap(),
                    &expectation(&draft(r.seq as u8, 10, 20), 20),
                )
                .unwrap();
            }
            c2.latest_voucher().unwrap().clone()
        };
        w.accept_voucher(&v2).unwrap();

        let back = WorkerChannel::restore(
            state(1_000_000),
            &worker(),
            u128::MAX,
            receipts.clone(),
            Some(v2.clone()),
        )
        .unwrap();
        assert_eq!(back.accumulator(), w.accumulator());
        assert_eq!(back.unpaid(), w.unpaid());
        let mut back2 = back.clone();
        assert!(matches!(
            back2.admit(NOW, 3, 1),
            Err(ChannelError::SeqTaken { seq: 3 })
        ));
        back2.admit(NOW, 4, 1).unwrap();
        // The client's voucher for seq 3 is good for the restored book.
        let mut back3 = back.clone();
        assert_eq!(
            back3.accept_voucher(c.latest_voucher().unwrap()).unwrap(),
            VoucherIntake::Better
        );

        // Out of order or a gap: refused.
        let mut shuffled = receipts.clone();
        shuffled.swap(0, 1);
        assert!(matches!(
            WorkerChannel::restore(state(1_000_000), &worker(), 1, shuffled, None),
            Err(ChannelError::WrongSeq {
                got: 2,
                expected: 1
            })
        ));
        // The chain settled beyond the ledger: never served again.
        let mut st = state(1_000_000);
        st.last_seq = 4;
        st.settled = 1;
        assert!(matches!(
            WorkerChannel::restore(st.clone(), &worker(), 1, receipts.clone(), None),
            Err(ChannelError::LostHistory { last_seq: 4 })
        ));
        assert!(matches!(
            WorkerChannel::new(st, &worker(), 1),
            Err(ChannelError::LostHistory { last_seq: 4 })
        ));
        assert!(matches!(
            WorkerChannel::new(state(1), &addr(9), 1),
            Err(ChannelError::NotOurChannel { .. })
        ));
    }

    #[test]
    fn a_refresh_cannot_change_the_terms_nor_settle_beyond_the_receipts() {
        let (mut w, mut c) = pair(1_000_000, u128::MAX);
        serve(&mut w, &mut c, draft(1, 10, 20), 20);
        let mut st = w.state().clone();
        st.price_in += 1;
        assert!(matches!(
            w.refresh(st),
            Err(ChannelError::StateMismatch { field: "price_in" })
        ));
        let mut st = w.state().clone();
        st.settled = cost(10, 20) + 1;
        assert!(matches!(
            w.refresh(st),
            Err(ChannelError::StateMismatch { field: "settled" })
        ));
        let mut st = w.state().clone();
        st.amount += 5;
        w.refresh(st).unwrap();
        assert_eq!(w.state().amount, 1_000_005);
    }
}
