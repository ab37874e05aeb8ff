//! The client's equivocation watch: every receipt a worker hands this client is kept by
//! (channel, seq) in a [`ReceiptWatch`], whether it is then paid or refused. A second, different
//! receipt for a (channel, seq) already held, both signed by the channel's receipt key, proves
//! the worker signed twice for one request; the client reports it to the Worker contract at once
//! (`report_equivocation`, sent from the client's wallet): the stake is slashed and the reporter
//! reward paid to that wallet, with no step left to the app.

use serde::Serialize;
use tracing::{error, warn};

use super::{Inner, lock};
use crate::channel::{Equivocation, Observed, SignedChannelReceipt};
use crate::contracts::v2::WorkerClient;
use crate::tlb::TonAddress;
use crate::wallet::SendOptions;

/// A report this client sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EquivocationReport {
    /// The equivocating Worker contract.
    pub worker: TonAddress,
    /// The channel.
    pub channel_id: u64,
    /// The seq both receipts name.
    pub seq: u32,
    /// `None` when the report was accepted on-chain; else why it failed.
    pub error: Option<String>,
}

/// Keeps `receipt` (signed with the channel's receipt key `key`) and, when it contradicts one
/// already held, reports the worker. A receipt whose signature does not verify is no evidence:
/// it is neither kept nor reported (the session refuses it).
pub(super) async fn observe(inner: &Inner, key: [u8; 32], receipt: &SignedChannelReceipt) {
    let seen = lock(&inner.watch).observe(key, receipt.clone());
    if let Ok(Observed::Equivocation(e)) = seen {
        report(inner, *e).await;
    }
}

async fn report(inner: &Inner, e: Equivocation) {
    let body = &e.first.receipt.body;
    let (worker, channel_id, seq) = (body.worker.clone(), body.channel.channel_id, body.seq);
    warn!(target: "sdk::channels", %worker, channel_id, seq, "the worker signed two different receipts for one request: reporting it");
    let sent = {
        // One transfer at a time from the wallet (seqno).
        let _sending = inner.sending.lock().await;
        WorkerClient::at(&inner.chain, inner.config.root.clone(), worker.clone())
            .report_equivocation(
                &inner.wallet,
                (&e.first.key, e.first.receipt.clone()),
                (&e.second.key, e.second.receipt.clone()),
                &SendOptions::default(),
            )
            .await
    };
    inner
        .transactions
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let error = match sent {
        Ok(_) => None,
        Err(err) => {
            error!(target: "sdk::channels", %worker, channel_id, seq, error = %err, "the equivocation report failed");
            Some(err.to_string())
        }
    };
    lock(&inner.reports).push(EquivocationReport {
        worker,
        channel_id,
        seq,
        error,
    });
}
