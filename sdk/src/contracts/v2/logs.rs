//! What the Escrow records about a channel, read from an operation's trace or from the Escrow's
//! history: the settlement records its payouts carry (the anchor every receipt of a channel is
//! proven against) and its external-out logs (close requested, closed).

use crate::chain::{ChainApi, Message, Transaction, TxId};
use crate::channel::{ChannelReceipt, InclusionProof};
use crate::contracts::{ContractResult, Outcome};
use crate::messages::v2::notify::{Log, Payout, SettlementRecord, payout_reason};
use crate::tlb::{TlbType, TonAddress};

use super::invalid;

/// Transactions read per page of an Escrow's history.
const PAGE: u32 = 100;

/// A settlement as the Escrow recorded it: the record its payout to the worker owner carried
/// (seq, cumulative and accumulator of the voucher it paid; whether it was final and what that
/// released). Only the Escrow's own transactions are read, so nobody else can forge one.
#[derive(Debug, Clone, PartialEq)]
pub struct SettlementLog {
    /// The record.
    pub record: SettlementRecord,
    /// Who the payout went to: the channel's worker owner.
    pub worker_owner: TonAddress,
    /// The Escrow's transaction that settled.
    pub tx: TxId,
}

impl SettlementLog {
    /// The channel.
    pub fn channel_id(&self) -> u64 {
        self.record.channel_id
    }

    /// Seq of the receipt settled.
    pub fn seq(&self) -> u32 {
        self.record.seq
    }

    /// The voucher's cumulative amount.
    pub fn cumulative(&self) -> u128 {
        self.record.cumulative
    }

    /// The accumulator after receipt `seq`.
    pub fn acc(&self) -> [u8; 32] {
        self.record.acc
    }

    /// Whether the voucher was final: the channel closed in this settlement.
    pub fn is_final(&self) -> bool {
        self.record.is_final
    }

    /// What a final settlement returned to the free balance (`None` for a non-final one).
    pub fn released(&self) -> Option<u128> {
        self.record.is_final.then_some(self.record.released)
    }

    /// The settlement of `channel_id` in a transaction of the Escrow at `escrow`.
    pub fn in_transaction(t: &Transaction, escrow: &TonAddress, channel_id: u64) -> Option<Self> {
        settlements_of(t, escrow).find(|s| s.channel_id() == channel_id)
    }

    /// Every settlement a transaction of the Escrow at `escrow` recorded, whatever the channel
    /// (at most one in practice): what a reader of the Escrow's whole history wants.
    pub fn all_in_transaction(t: &Transaction, escrow: &TonAddress) -> Vec<Self> {
        settlements_of(t, escrow).collect()
    }

    /// The settlement of `channel_id` anywhere in an operation's trace.
    pub fn in_outcome(o: &Outcome, escrow: &TonAddress, channel_id: u64) -> Option<Self> {
        o.txs
            .iter()
            .find_map(|t| Self::in_transaction(t, escrow, channel_id))
    }

    /// Checks that `receipt` is anchored by this settlement through `proof`.
    pub fn proves(&self, receipt: &ChannelReceipt, proof: &InclusionProof) -> bool {
        receipt.channel.channel_id == self.channel_id()
            && proof.verify(receipt, self.seq(), &self.acc()).is_ok()
    }
}

/// The messages a successful transaction of the Escrow at `escrow` sent.
fn sent_by<'t>(t: &'t Transaction, escrow: &TonAddress) -> impl Iterator<Item = &'t Message> + 't {
    let ours = &t.account == escrow && t.succeeded();
    t.out_msgs.iter().filter(move |_| ours)
}

/// Every settlement a transaction of the Escrow at `escrow` recorded (at most one in practice).
fn settlements_of<'t>(
    t: &'t Transaction,
    escrow: &'t TonAddress,
) -> impl Iterator<Item = SettlementLog> + 't {
    let id = t.id;
    sent_by(t, escrow)
        .filter(|m| m.opcode == Some(Payout::OP))
        .filter_map(move |m| {
            let p = Payout::from_cell(m.body.as_ref()?).ok()?;
            match (p.reason, p.settlement, &m.destination) {
                (payout_reason::CHANNEL_SETTLED, Some(record), Some(to)) => Some(SettlementLog {
                    record,
                    worker_owner: to.clone(),
                    tx: id,
                }),
                _ => None,
            }
        })
}

/// The external-out logs about `channel_id` in a transaction of the Escrow at `escrow`.
fn channel_logs_of<'t>(
    t: &'t Transaction,
    escrow: &'t TonAddress,
    channel_id: u64,
) -> impl Iterator<Item = Log> + 't {
    sent_by(t, escrow)
        .filter(|m| m.destination.is_none())
        .filter_map(|m| m.body.as_ref().and_then(|b| Log::from_cell(b).ok()))
        .filter(move |l| log_channel(l) == Some(channel_id))
}

fn log_channel(l: &Log) -> Option<u64> {
    match l {
        Log::LogCloseRequested(l) => Some(l.channel_id),
        Log::LogChannelClosed(l) => Some(l.channel_id),
        _ => None,
    }
}

/// Calls `each` on every transaction of `account`, oldest first.
async fn history<C: ChainApi>(
    chain: &C,
    account: &TonAddress,
    mut each: impl FnMut(&Transaction),
) -> ContractResult<()> {
    let mut after = 0u64;
    loop {
        let page = chain.transactions(account, after, PAGE).await?;
        for t in &page {
            each(t);
            after = after.max(t.id.lt);
        }
        if page.len() < PAGE as usize {
            return Ok(());
        }
    }
}

/// Every external-out log the Escrow at `escrow` wrote about `channel_id` (close request,
/// close), oldest first, from its whole history. Settlements are not logs: see
/// [`settlement_logs`].
pub async fn channel_logs<C: ChainApi>(
    chain: &C,
    escrow: &TonAddress,
    channel_id: u64,
) -> ContractResult<Vec<Log>> {
    let mut out = Vec::new();
    history(chain, escrow, |t| {
        out.extend(channel_logs_of(t, escrow, channel_id))
    })
    .await?;
    Ok(out)
}

/// Every settlement the Escrow at `escrow` recorded for `channel_id`, oldest first.
pub async fn settlement_logs<C: ChainApi>(
    chain: &C,
    escrow: &TonAddress,
    channel_id: u64,
) -> ContractResult<Vec<SettlementLog>> {
    let mut out = Vec::new();
    history(chain, escrow, |t| {
        out.extend(settlements_of(t, escrow).filter(|s| s.channel_id() == channel_id))
    })
    .await?;
    Ok(out)
}

/// Proves on the chain that `receipt` is part of its channel: the settlement the Escrow recorded
/// at seq `receipt.seq + proof.later.len()` must be reached from the receipt through `proof`.
/// Returns that settlement.
pub async fn verify_inclusion<C: ChainApi>(
    chain: &C,
    receipt: &ChannelReceipt,
    proof: &InclusionProof,
) -> ContractResult<SettlementLog> {
    const OP: &str = "verify inclusion";
    let ch = &receipt.channel;
    let target = u64::from(receipt.seq) + proof.later.len() as u64;
    let logs = settlement_logs(chain, &ch.escrow, ch.channel_id).await?;
    let log = logs
        .into_iter()
        .find(|l| u64::from(l.seq()) == target)
        .ok_or_else(|| {
            invalid(
                OP,
                format!(
                    "channel {} has no settlement recorded at seq {target}",
                    ch.channel_id
                ),
            )
        })?;
    proof
        .verify(receipt, log.seq(), &log.acc())
        .map_err(|e| invalid(OP, e.to_string()))?;
    Ok(log)
}
