//! The equivocation watcher (`cocoon watch`): every channel receipt handed to it goes through a
//! [`ReceiptWatch`]; when two different receipts for one (channel, seq) both verify against the
//! receipt key of the Worker they name, it submits both to that Worker's `report_equivocation`
//! (protocol v2), which slashes the stake and pays the reporter's share to the wallet that sent
//! the report.
//!
//! ```text
//!  receipt files / stdin ──▶ key of receipt.worker (chain) ──▶ ReceiptWatch ──Equivocation──▶
//!                                                              WorkerClient(v2).report_equivocation
//! ```
//!
//! A receipt is checked against its Worker's current receipt key; a receipt signed with a key the
//! Worker has since rotated away from is refused here (the contract would still accept it, but
//! the watcher cannot read past keys to check it first).

use std::collections::HashSet;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use cocoon_sdk::chain::TonCenterClient;
use cocoon_sdk::channel::{ChannelRef, Observed, ReceiptWatch, SignedChannelReceipt};
use cocoon_sdk::contracts::Outcome;
use cocoon_sdk::contracts::v2::WorkerClient;
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use cocoon_sdk::wallet::{SendOptions, Wallet};
use tracing::{info, warn};

/// What [`Watcher::observe`] did with a receipt.
#[derive(Debug)]
pub enum Verdict {
    /// The first receipt for its (channel, seq): kept.
    Kept,
    /// A receipt already held.
    Repeat,
    /// A conflicting receipt: the report was submitted, and the Worker was slashed.
    Reported {
        /// The Worker reported.
        worker: TonAddress,
        /// The report's transactions.
        outcome: Box<Outcome>,
    },
}

/// The watcher: receipts held, reports already sent.
pub struct Watcher {
    chain: TonCenterClient,
    root: TonAddress,
    wallet: Wallet,
    watch: ReceiptWatch,
    reported: HashSet<(ChannelRef, u32)>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("root", &self.root.to_hex())
            .field("reporter", &self.wallet.address().to_hex())
            .field("held", &self.watch.len())
            .finish()
    }
}

impl Watcher {
    /// A watcher on the v2 Root `root`; `wallet` sends (and pays for) the reports and receives
    /// the reporter's reward.
    pub fn new(chain: TonCenterClient, root: TonAddress, wallet: Wallet) -> Self {
        Self {
            chain,
            root,
            wallet,
            watch: ReceiptWatch::new(),
            reported: HashSet::new(),
        }
    }

    /// Receipts held.
    pub fn held(&self) -> usize {
        self.watch.len()
    }

    /// Checks `receipt` against its Worker's receipt key and the receipts held; reports an
    /// equivocation at once.
    pub async fn observe(&mut self, receipt: SignedChannelReceipt) -> anyhow::Result<Verdict> {
        let worker_address = receipt.body.worker.clone();
        let worker = WorkerClient::at(&self.chain, self.root.clone(), worker_address.clone());
        let key = worker
            .record()
            .await
            .with_context(|| format!("reading the record of Worker {worker_address}"))?
            .receipt_key;
        let at = (receipt.body.channel.clone(), receipt.body.seq);
        match self
            .watch
            .observe(key, receipt)
            .with_context(|| format!("receipt for Worker {worker_address}"))?
        {
            Observed::New => Ok(Verdict::Kept),
            Observed::Repeat => Ok(Verdict::Repeat),
            Observed::Equivocation(e) => {
                if !self.reported.insert(at.clone()) {
                    return Ok(Verdict::Repeat);
                }
                warn!(target: "cli::watch", worker = %worker_address, channel = at.0.channel_id, seq = at.1, "equivocation: two different receipts for one (channel, seq); reporting");
                let outcome = worker
                    .report_equivocation(
                        &self.wallet,
                        (&e.first.key, e.first.receipt),
                        (&e.second.key, e.second.receipt),
                        &SendOptions::default(),
                    )
                    .await
                    .with_context(|| format!("reporting Worker {worker_address}"))?;
                info!(target: "cli::watch", worker = %worker_address, fees = outcome.total_fees(), "equivocation reported");
                Ok(Verdict::Reported {
                    worker: worker_address,
                    outcome: Box::new(outcome),
                })
            }
        }
    }
}

/// Reads a signed channel receipt from a file's bytes: a binary BOC, or its base64 or hex text.
pub fn parse_receipt(bytes: &[u8]) -> anyhow::Result<SignedChannelReceipt> {
    let boc = if bytes.starts_with(&[0xb5, 0xee, 0x9c, 0x72]) {
        bytes.to_vec()
    } else {
        let text = std::str::from_utf8(bytes)
            .context("neither a binary BOC nor text")?
            .trim();
        if text.is_empty() {
            bail!("empty receipt");
        }
        match hex::decode(text.trim_start_matches("0x")) {
            Ok(b) => b,
            Err(_) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .context("neither hex nor base64")?,
        }
    };
    SignedChannelReceipt::from_boc(&boc).context("not a signed channel receipt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_that_is_not_one_is_refused_clearly() {
        let e = parse_receipt(b"").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e:#}");
        let e = parse_receipt(b"zz not base64 !!").unwrap_err();
        assert!(format!("{e:#}").contains("neither hex nor base64"), "{e:#}");
        let e = parse_receipt(b"deadbeef").unwrap_err();
        assert!(
            format!("{e:#}").contains("not a signed channel receipt"),
            "{e:#}"
        );
        let e = parse_receipt(&[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(
            format!("{e:#}").contains("neither a binary BOC nor text"),
            "{e:#}"
        );
    }
}
