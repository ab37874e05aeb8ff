//! The receipt submitter: batches the receipts of each worker into `SubmitReceipts` messages
//! sent from the relayer's wallet, through an outbox that makes every send recoverable.
//!
//! One message is in flight at a time (a wallet seqno admits one). A batch is written to the
//! outbox before it is sent, its signed external message (with its seqno) is recorded before it is
//! broadcast, and a re-broadcast always sends those same bytes — so after a crash, a timeout or a
//! 5xx the message lands at most once. A batch is confirmed when its message is found on-chain;
//! only when the wallet's seqno moved past it without it landing (after a grace period for
//! indexer lag) is the batch given up and its receipts batched again. Confirmed receipts are
//! never sent again.

use std::sync::Arc;

use cocoon_sdk::messages::worker::SubmitReceipts;
use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::tlb::{Cell, TlbError, TlbType as _};
use futures_util::future::BoxFuture;
use tracing::{info, warn};

use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::{OutboxStatus, Store, now_unix};
use crate::watcher::SourceError;

pub use cocoon_sdk::contracts::{SUBMIT_BASE_GAS, SUBMIT_PER_RECEIPT};

/// Opcode of `submit_receipts` (contracts/schema.tlb).
pub const SUBMIT_RECEIPTS_OP: u32 = 0xc0c0_0203;
/// Largest batch the Worker contract reads.
pub const MAX_BATCH: u32 = cocoon_sdk::contracts::MAX_BATCH as u32;
/// Default batch size.
pub const DEFAULT_BATCH: u32 = 16;
/// Seconds a sent message may stay unfound after the wallet moved past its seqno before the
/// batch is given up (indexers lag behind the chain).
pub const DEFAULT_CONFIRM_GRACE: i64 = 60;
/// Seconds after signing when a message is certainly expired (its `valid_until` plus slack) and
/// can never land: then the batch is given up even if the seqno did not move.
pub const DEFAULT_MESSAGE_EXPIRY: i64 = 180;

/// Where a message landed: the wallet transaction's (lt, hash), if it did.
pub type Landed = Option<(u64, [u8; 32])>;

/// The relayer's wallet, as the submitter needs it (implemented over the sdk's wallet and chain
/// client).
pub trait WalletSender: Send + Sync + 'static {
    /// The wallet's current seqno.
    fn seqno(&self) -> BoxFuture<'_, std::result::Result<u32, SourceError>>;
    /// Signs (does not send) an external message with `seqno` carrying one internal message of
    /// `value` nanoTON and `body` to `to`. Returns the BOC and the message hash to look it up by.
    fn build(
        &self,
        seqno: u32,
        to: &str,
        value: u128,
        body: Cell,
    ) -> std::result::Result<(Vec<u8>, [u8; 32]), SourceError>;
    /// Broadcasts a signed external message.
    fn broadcast<'a>(
        &'a self,
        boc: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<(), SourceError>>;
    /// The wallet transaction (lt, hash) that processed the external message with this hash.
    fn landed<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, std::result::Result<Landed, SourceError>>;
}

/// The value a SubmitReceipts of `count` receipts must carry.
pub fn submit_value(count: u32) -> u128 {
    SUBMIT_BASE_GAS + u128::from(count) * SUBMIT_PER_RECEIPT
}

/// The `submit_receipts` body for a batch of SignedReceipt BOCs (built with the sdk's typed
/// message, so the layout is the one the golden vectors pin).
pub fn submit_receipts_body(
    query_id: u64,
    receipts: &[Vec<u8>],
) -> std::result::Result<Cell, TlbError> {
    if receipts.is_empty() || receipts.len() > MAX_BATCH as usize {
        return Err(TlbError::InvalidValue {
            field: "SubmitReceipts.count",
            reason: format!("batch of {} receipts (1..={MAX_BATCH})", receipts.len()),
        });
    }
    let receipts = receipts
        .iter()
        .map(|boc| SignedReceipt::from_boc(boc))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    SubmitReceipts {
        query_id,
        count: receipts.len() as u8,
        receipts,
    }
    .to_cell()
}

/// What one [`Submitter::tick`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Batches created.
    pub batched: usize,
    /// Messages broadcast (first sends and re-broadcasts).
    pub broadcast: usize,
    /// Batches confirmed on-chain.
    pub confirmed: usize,
    /// Batches given up (receipts released for a new batch).
    pub failed: usize,
}

/// Drives the outbox.
pub struct Submitter {
    store: Store,
    wallet: Arc<dyn WalletSender>,
    metrics: Arc<Metrics>,
    batch: u32,
    confirm_grace: i64,
    message_expiry: i64,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

fn chain_err(e: impl std::fmt::Display) -> crate::Error {
    crate::Error::RegistryUnavailable(e.to_string())
}

impl Submitter {
    /// A submitter over `store` sending from `wallet`.
    pub fn new(store: Store, wallet: Arc<dyn WalletSender>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            wallet,
            metrics,
            batch: DEFAULT_BATCH,
            confirm_grace: DEFAULT_CONFIRM_GRACE,
            message_expiry: DEFAULT_MESSAGE_EXPIRY,
        }
    }

    /// Receipts per message (1..=[`MAX_BATCH`]).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.clamp(1, MAX_BATCH);
        self
    }

    /// Grace for indexer lag, seconds.
    pub fn with_confirm_grace(mut self, seconds: i64) -> Self {
        self.confirm_grace = seconds.max(0);
        self
    }

    /// Seconds after which a signed message is certainly expired.
    pub fn with_message_expiry(mut self, seconds: i64) -> Self {
        self.message_expiry = seconds.max(0);
        self
    }

    /// One round: confirm or recover the message in flight, batch new receipts, send the next
    /// batch when nothing is in flight.
    pub async fn tick(&self) -> Result<TickReport> {
        let mut report = TickReport::default();
        let in_flight = self.store.outbox_in_status(OutboxStatus::Sent).await?;
        for entry in &in_flight {
            let hash: [u8; 32] = entry
                .msg_hash
                .clone()
                .unwrap_or_default()
                .try_into()
                .unwrap_or([0; 32]);
            match self.wallet.landed(&hash).await {
                Ok(Some((lt, tx_hash))) => {
                    self.store.mark_confirmed(entry.id, lt, &tx_hash).await?;
                    info!(target: "relayer::submitter", id = entry.id, worker = %entry.worker, lt, "batch confirmed");
                    report.confirmed += 1;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.metrics.submit_failures.inc();
                    warn!(target: "relayer::submitter", id = entry.id, error = %e, "could not look the batch up");
                    return Ok(report);
                }
            }
            let seqno = self.wallet.seqno().await.map_err(chain_err)?;
            let sent_with = entry.seqno.unwrap_or(0);
            if seqno > sent_with && now_unix() - entry.updated_at >= self.confirm_grace {
                self.store
                    .mark_failed(
                        entry.id,
                        &format!("seqno {sent_with} consumed without this message"),
                    )
                    .await?;
                warn!(target: "relayer::submitter", id = entry.id, sent_with, seqno, "batch never landed; receipts released");
                report.failed += 1;
            } else if seqno == sent_with && now_unix() - entry.updated_at >= self.message_expiry {
                self.store
                    .mark_failed(entry.id, "expired before it landed")
                    .await?;
                warn!(target: "relayer::submitter", id = entry.id, sent_with, "batch expired unsent; receipts released");
                report.failed += 1;
            } else if seqno == sent_with {
                // Not processed yet: the same bytes again (harmless if the first copy lands).
                if let Some(boc) = &entry.message {
                    match self.wallet.broadcast(boc).await {
                        Ok(()) => report.broadcast += 1,
                        Err(e) => {
                            self.metrics.submit_failures.inc();
                            self.store
                                .note_outbox_error(entry.id, &e.to_string())
                                .await?;
                        }
                    }
                }
            }
        }
        if !self
            .store
            .outbox_in_status(OutboxStatus::Sent)
            .await?
            .is_empty()
        {
            return Ok(report);
        }

        for worker in self.store.workers_with_unbatched_receipts().await? {
            let receipts = self.store.unbatched_receipts(&worker, self.batch).await?;
            let jobs: Vec<_> = receipts.iter().map(|r| r.job.clone()).collect();
            let (entry, taken) = self.store.create_batch(&worker, &jobs).await?;
            if taken.is_empty() {
                self.store.mark_failed(entry.id, "empty batch").await?;
            } else {
                report.batched += 1;
            }
        }

        let Some(entry) = self
            .store
            .outbox_in_status(OutboxStatus::Pending)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(report);
        };
        let receipts = self.store.batch_receipts(entry.id).await?;
        let bocs: Vec<Vec<u8>> = receipts.iter().map(|r| r.receipt.clone()).collect();
        let body = match submit_receipts_body(u64::try_from(entry.id).unwrap_or(0), &bocs) {
            Ok(b) => b,
            Err(e) => {
                self.store
                    .mark_failed(entry.id, &format!("cannot build the message: {e}"))
                    .await?;
                report.failed += 1;
                return Ok(report);
            }
        };
        let seqno = self.wallet.seqno().await.map_err(chain_err)?;
        let count = u32::try_from(bocs.len()).unwrap_or(MAX_BATCH);
        let (boc, hash) = self
            .wallet
            .build(seqno, &entry.worker, submit_value(count), body)
            .map_err(chain_err)?;
        // Recorded before it leaves: a crash after this re-broadcasts these exact bytes.
        self.store.mark_sent(entry.id, seqno, &boc, &hash).await?;
        match self.wallet.broadcast(&boc).await {
            Ok(()) => {
                info!(target: "relayer::submitter", id = entry.id, worker = %entry.worker, receipts = count, seqno, "batch sent");
                report.broadcast += 1;
            }
            Err(e) => {
                self.metrics.submit_failures.inc();
                warn!(target: "relayer::submitter", id = entry.id, error = %e, "broadcast failed; will retry");
                self.store
                    .note_outbox_error(entry.id, &e.to_string())
                    .await?;
            }
        }
        Ok(report)
    }
}
