//! Proving a paid receipt is anchored on-chain: the hashes of the receipts after it up to a
//! settlement the Escrow recorded ([`crate::contracts::v2::verify_inclusion`]).

use super::error::{ChannelClientError, Result};
use crate::chain::ChainApi;
use crate::channel::{InclusionProof, SignedChannelReceipt};
use crate::contracts::v2::{SettlementLog, settlement_logs, verify_inclusion};

/// Proves `receipt` against the first settlement of its channel at or after its seq, with the
/// channel's later receipts taken from `receipts` (every receipt the client paid, any order).
/// Fails when no settlement reaches the receipt yet, or when `receipts` lacks one in between.
pub async fn prove_receipt<C: ChainApi>(
    chain: &C,
    receipt: &SignedChannelReceipt,
    receipts: &[SignedChannelReceipt],
) -> Result<SettlementLog> {
    let r = &receipt.body;
    let ch = &r.channel;
    let logs = settlement_logs(chain, &ch.escrow, ch.channel_id).await?;
    let log = logs
        .iter()
        .filter(|l| l.seq() >= r.seq)
        .min_by_key(|l| l.seq())
        .ok_or_else(|| {
            ChannelClientError::Failed(format!(
                "channel {} has no settlement at or after seq {} yet",
                ch.channel_id, r.seq
            ))
        })?;
    let mut later = Vec::new();
    for seq in r.seq + 1..=log.seq() {
        let next = receipts
            .iter()
            .find(|x| x.body.channel == *ch && x.body.seq == seq)
            .ok_or_else(|| {
                ChannelClientError::Failed(format!(
                    "receipt seq {seq} of channel {} is not saved: cannot build the proof",
                    ch.channel_id
                ))
            })?;
        later.push(next.body.hash()?);
    }
    Ok(verify_inclusion(chain, r, &InclusionProof { later }).await?)
}
