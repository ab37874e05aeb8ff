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
