//! What the Escrow logs about a channel (external-out messages), read from an operation's trace
//! or from the Escrow's history: the anchor every receipt of a channel is proven against.

use crate::chain::{ChainApi, Transaction};
use crate::channel::{ChannelReceipt, InclusionProof};
use crate::contracts::{ContractResult, Outcome};
use crate::messages::v2::notify::{Log, LogChannelFinalSettled, LogChannelSettled};
use crate::tlb::{TlbType, TonAddress};

use super::invalid;

/// Transactions read per page of an Escrow's history.
const PAGE: u32 = 100;

/// A settlement the Escrow logged: (seq, cumulative, accumulator) of the voucher it paid.
#[derive(Debug, Clone, PartialEq)]
pub enum SettlementLog {
    /// A non-final voucher (`log_channel_settled`).
    Settled(LogChannelSettled),
    /// A final voucher: settled and closed at once (`log_channel_final_settled`).
    FinalSettled(LogChannelFinalSettled),
}

impl SettlementLog {
    /// The channel.
    pub fn channel_id(&self) -> u64 {
        match self {
            Self::Settled(l) => l.channel_id,
            Self::FinalSettled(l) => l.channel_id,
        }
    }

    /// Seq of the receipt settled.
    pub fn seq(&self) -> u32 {
        match self {
            Self::Settled(l) => l.seq,
            Self::FinalSettled(l) => l.seq,
        }
    }

    /// The voucher's cumulative amount.
    pub fn cumulative(&self) -> u128 {
        match self {
            Self::Settled(l) => l.cumulative,
            Self::FinalSettled(l) => l.cumulative,
        }
    }

    /// The accumulator after receipt `seq`.
    pub fn acc(&self) -> [u8; 32] {
        match self {
            Self::Settled(l) => l.acc,
            Self::FinalSettled(l) => l.acc,
        }
    }

    /// What a final settlement returned to the free balance (`None` for a non-final one).
    pub fn released(&self) -> Option<u128> {
        match self {
            Self::Settled(_) => None,
            Self::FinalSettled(l) => Some(l.released),
        }
    }

    /// The settlement log of `channel_id` in a transaction of the Escrow at `escrow`.
    pub fn in_transaction(t: &Transaction, escrow: &TonAddress, channel_id: u64) -> Option<Self> {
        channel_logs_of(t, escrow, channel_id).find_map(|l| match l {
            Log::LogChannelSettled(l) => Some(Self::Settled(l)),
            Log::LogChannelFinalSettled(l) => Some(Self::FinalSettled(l)),
            _ => None,
        })
    }

    /// The settlement log of `channel_id` anywhere in an operation's trace.
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

/// The logs about `channel_id` in a successful transaction of the Escrow at `escrow`.
fn channel_logs_of<'t>(
    t: &'t Transaction,
    escrow: &'t TonAddress,
    channel_id: u64,
) -> impl Iterator<Item = Log> + 't {
    let ours = &t.account == escrow && t.succeeded();
    t.out_msgs
        .iter()
        .filter(move |m| ours && m.destination.is_none())
        .filter_map(|m| m.body.as_ref().and_then(|b| Log::from_cell(b).ok()))
        .filter(move |l| log_channel(l) == Some(channel_id))
}

fn log_channel(l: &Log) -> Option<u64> {
    match l {
        Log::LogChannelSettled(l) => Some(l.channel_id),
        Log::LogChannelFinalSettled(l) => Some(l.channel_id),
        Log::LogCloseRequested(l) => Some(l.channel_id),
        Log::LogChannelClosed(l) => Some(l.channel_id),
        _ => None,
    }
}

/// Every log the Escrow at `escrow` wrote about `channel_id` (settlements, close request,
/// close), oldest first, from its whole history.
pub async fn channel_logs<C: ChainApi>(
    chain: &C,
    escrow: &TonAddress,
    channel_id: u64,
) -> ContractResult<Vec<Log>> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let page = chain.transactions(escrow, after, PAGE).await?;
        for t in &page {
            out.extend(channel_logs_of(t, escrow, channel_id));
            after = after.max(t.id.lt);
        }
        if page.len() < PAGE as usize {
            return Ok(out);
        }
    }
}

/// Every settlement the Escrow at `escrow` logged for `channel_id`, oldest first.
pub async fn settlement_logs<C: ChainApi>(
    chain: &C,
    escrow: &TonAddress,
    channel_id: u64,
) -> ContractResult<Vec<SettlementLog>> {
    Ok(channel_logs(chain, escrow, channel_id)
        .await?
        .into_iter()
        .filter_map(|l| match l {
            Log::LogChannelSettled(l) => Some(SettlementLog::Settled(l)),
            Log::LogChannelFinalSettled(l) => Some(SettlementLog::FinalSettled(l)),
            _ => None,
        })
        .collect())
}

/// Proves on the chain that `receipt` is part of its channel: the settlement the Escrow logged at
/// seq `receipt.seq + proof.later.len()` must be reached from the receipt through `proof`. Returns
/// that settlement.
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
                    "channel {} has no settlement logged at seq {target}",
                    ch.channel_id
                ),
            )
        })?;
    proof
        .verify(receipt, log.seq(), &log.acc())
        .map_err(|e| invalid(OP, e.to_string()))?;
    Ok(log)
}
