//! Self-submission: with `self_submit`, the node posts its own receipts to its Worker contract in
//! batches (`SubmitReceipts`), paying the gas from the owner's wallet, instead of leaving them to
//! the relayer. A failed batch is retried with backoff; a receipt the contract skips (expired
//! job, already settled) is logged on-chain and not retried.

use std::time::Duration;

use cocoon_sdk::chain::TonCenterClient;
use cocoon_sdk::contracts::{MAX_BATCH, WorkerClient};
use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{MessageSender, SendOptions, ServiceSender};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How long the first receipt of a batch waits for others to join it.
pub const BATCH_WINDOW: Duration = Duration::from_secs(2);
/// Attempts per batch before its receipts are given up (the relayer may still post them).
pub const SUBMIT_ATTEMPTS: u32 = 5;
/// Receipts per `SubmitReceipts` message (bounded by the contract's limit).
pub const BATCH_SIZE: usize = if MAX_BATCH < 32 { MAX_BATCH } else { 32 };

/// Starts the submitter; it ends once `rx` is closed and drained.
pub(crate) fn spawn(
    chain: TonCenterClient,
    root: TonAddress,
    wallet: ServiceSender,
    mut rx: UnboundedReceiver<SignedReceipt>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
            while batch.len() < BATCH_SIZE {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(r)) => batch.push(r),
                    Ok(None) | Err(_) => break,
                }
            }
            submit(&chain, &root, &wallet, batch).await;
        }
    })
}

async fn submit(
    chain: &TonCenterClient,
    root: &TonAddress,
    wallet: &ServiceSender,
    batch: Vec<SignedReceipt>,
) {
    let n = batch.len();
    let mut backoff = Duration::from_secs(1);
    for attempt in 1..=SUBMIT_ATTEMPTS {
        let result = async {
            WorkerClient::for_owner(chain, root, wallet.address())
                .await?
                .submit_receipts(wallet, batch.clone(), &SendOptions::default())
                .await
        }
        .await;
        match result {
            Ok(outcome) => {
                info!(target: "worker::node::submit", receipts = n, fees = outcome.total_fees(), "receipts submitted");
                return;
            }
            Err(e) => {
                warn!(target: "worker::node::submit", receipts = n, attempt, error = %e, "submitting receipts failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    warn!(target: "worker::node::submit", receipts = n, "giving up on a batch of receipts");
}
