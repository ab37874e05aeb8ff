//! The receipt submitter: batches the receipts of each worker into `SubmitReceipts` messages
//! sent from the relayer's wallet, through an outbox that makes every send recoverable.
//!
//! One message is in flight at a time (a wallet seqno admits one; with a highload wallet the
//! slot is a query id instead, so other senders on the wallet never race it). A batch is written to the
//! outbox before it is sent, its signed external message (with its seqno) is recorded before it is
//! broadcast, and a re-broadcast always sends those same bytes — so after a crash, a timeout or a
//! 5xx the message lands at most once. A batch is confirmed when its message is found on-chain;
//! only when the wallet's seqno moved past it without it landing (after a grace period for
//! indexer lag) is the batch given up and its receipts batched again. Confirmed receipts are
//! never sent again.
//!
//! A landed batch is not yet a settlement: the Worker contract checks each receipt and forwards a
//! settlement to the client's Escrow, which may still refuse it (late, already settled, wrong
//! worker...). So after confirmation the submitter follows the batch's message chain and marks
//! each job settled only when its Escrow accepted, and failed — with the exit code — otherwise.

use std::sync::Arc;

use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::messages::worker::SubmitReceipts;
use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::{Cell, TlbError, TlbType as _};
use futures_util::future::BoxFuture;
use tracing::{info, warn};

use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::{OutboxStatus, Store};
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
    /// The slot the next message is signed with: a seqno wallet's current seqno, or a fresh
    /// query id of a highload wallet.
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
    /// Whether the slot `sent_with` (a seqno, or a highload wallet's query id) has been used on
    /// chain, by the message sent with it or by another. A seqno wallet: its seqno moved past.
    fn used(&self, sent_with: u32) -> BoxFuture<'_, std::result::Result<bool, SourceError>> {
        Box::pin(async move { Ok(self.seqno().await? > sent_with) })
    }
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
    /// What the landed message with this hash caused (the Worker's transaction and the Escrows'
    /// transactions it led to); `None` while some of them are not visible yet.
    fn outcome<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, std::result::Result<Option<BatchOutcome>, SourceError>>;
}

/// What the chain did with one landed SubmitReceipts message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The whole batch was refused before any settlement went out: who refused (`"wallet"`,
    /// `"worker"`) and the exit code.
    pub refused: Option<(&'static str, i32)>,
    /// Settlements the Worker contract forwarded: the job and the Escrow's verdict, `Ok(lt of
    /// the Escrow transaction)` when it accepted, `Err(exit code)` when it refused.
    pub settlements: Vec<(JobRef, std::result::Result<u64, i32>)>,
    /// Receipts the Worker contract skipped: (index in the batch, error code).
    pub skipped: Vec<(u32, i32)>,
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

/// Another relayer instance on the same database closed the entry first (confirmed or gave it
/// up): nothing left to do here.
fn closed_elsewhere(r: Result<()>) -> Result<()> {
    match r {
        Err(crate::Error::OutboxClosed { .. }) => Ok(()),
        other => other,
    }
}

/// Confirmed batches followed per round.
const VERDICT_BATCHES_PER_TICK: u32 = 16;

fn exit_text(code: i32) -> String {
    match cocoon_sdk::contracts::error_name(code) {
        Some(name) => format!("exit code {code} ({name})"),
        None => format!("exit code {code}"),
    }
}

/// The verdict on the `index`-th receipt of a batch, for `job`: accepted, and why.
pub fn verdict(outcome: &BatchOutcome, job: &JobRef, index: usize) -> (bool, String) {
    if let Some((who, code)) = outcome.refused {
        return (
            false,
            format!(
                "the {who} refused the SubmitReceipts batch: {}",
                exit_text(code)
            ),
        );
    }
    if let Some((_, v)) = outcome.settlements.iter().find(|(j, _)| j == job) {
        return match v {
            Ok(lt) => (true, format!("settled: the Escrow accepted it at lt {lt}")),
            Err(code) => (
                false,
                format!("the Escrow refused the settlement: {}", exit_text(*code)),
            ),
        };
    }
    if let Some((_, code)) = outcome.skipped.iter().find(|(i, _)| *i as usize == index) {
        return (
            false,
            format!(
                "the Worker contract skipped the receipt: {}",
                exit_text(*code)
            ),
        );
    }
    (
        false,
        "the Worker contract forwarded no settlement for the receipt".into(),
    )
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
    /// Jobs whose settlement an Escrow accepted.
    pub settled: usize,
    /// Jobs whose settlement was refused on-chain (now failed).
    pub refused: usize,
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

    /// Reads the Escrows' verdicts on confirmed batches whose jobs are still submitted.
    async fn read_verdicts(&self, report: &mut TickReport) -> Result<()> {
        for entry in self
            .store
            .batches_awaiting_verdict(VERDICT_BATCHES_PER_TICK)
            .await?
        {
            let hash: [u8; 32] = entry
                .msg_hash
                .clone()
                .unwrap_or_default()
                .try_into()
                .unwrap_or([0; 32]);
            let outcome = match self.wallet.outcome(&hash).await {
                Ok(Some(o)) => o,
                Ok(None) => continue,
                Err(e) => {
                    warn!(target: "relayer::submitter", id = entry.id, error = %e, "could not follow the batch");
                    return Ok(());
                }
            };
            let receipts = self.store.batch_receipts(entry.id).await?;
            for (index, r) in receipts.iter().enumerate() {
                let (accepted, reason) = verdict(&outcome, &r.job, index);
                if self.store.settle(&r.job, accepted, &reason).await? {
                    if accepted {
                        report.settled += 1;
                        info!(target: "relayer::submitter", job = %r.job, id = entry.id, "settled");
                    } else {
                        report.refused += 1;
                        self.metrics.submit_failures.inc();
                        warn!(target: "relayer::submitter", job = %r.job, id = entry.id, %reason, "settlement refused");
                    }
                }
            }
        }
        Ok(())
    }

    /// One round: confirm or recover the message in flight, batch new receipts, send the next
    /// batch when nothing is in flight.
    pub async fn tick(&self) -> Result<TickReport> {
        let mut report = TickReport::default();
        if !self.follow_in_flight(&mut report).await? {
            return Ok(report);
        }
        self.read_verdicts(&mut report).await?;
        if !self
            .store
            .outbox_in_status(OutboxStatus::Sent)
            .await?
            .is_empty()
        {
            return Ok(report);
        }
        self.batch_new_receipts(&mut report).await?;
        self.send_next_batch(&mut report).await?;
        Ok(report)
    }

    /// Follows every sent batch: confirmed when it landed, failed (receipts released) when its
    /// seqno went by without it or it expired unsent, re-broadcast byte for byte otherwise.
    /// `false` when the chain could not be asked (the round stops there).
    async fn follow_in_flight(&self, report: &mut TickReport) -> Result<bool> {
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
                    closed_elsewhere(self.store.mark_confirmed(entry.id, lt, &tx_hash).await)?;
                    info!(target: "relayer::submitter", id = entry.id, worker = %entry.worker, lt, "batch confirmed");
                    report.confirmed += 1;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.metrics.submit_failures.inc();
                    warn!(target: "relayer::submitter", id = entry.id, error = %e, "could not look the batch up");
                    return Ok(false);
                }
            }
            let sent_with = entry.seqno.unwrap_or(0);
            let used = self.wallet.used(sent_with).await.map_err(chain_err)?;
            let age = unix_now_i64() - entry.updated_at;
            if used && age >= self.confirm_grace {
                closed_elsewhere(
                    self.store
                        .mark_failed(
                            entry.id,
                            &format!("seqno {sent_with} consumed without this message"),
                        )
                        .await,
                )?;
                warn!(target: "relayer::submitter", id = entry.id, sent_with, "batch never landed; receipts released");
                report.failed += 1;
            } else if !used && age >= self.message_expiry {
                closed_elsewhere(
                    self.store
                        .mark_failed(entry.id, "expired before it landed")
                        .await,
                )?;
                warn!(target: "relayer::submitter", id = entry.id, sent_with, "batch expired unsent; receipts released");
                report.failed += 1;
            } else if !used {
                // Not processed yet: the same bytes again (harmless if the first copy lands).
                if let Some(boc) = &entry.message {
                    match self.wallet.broadcast(boc).await {
                        Ok(()) => report.broadcast += 1,
                        Err(e) => {
                            self.metrics.submit_failures.inc();
                            closed_elsewhere(
                                self.store.note_outbox_error(entry.id, &e.to_string()).await,
                            )?;
                        }
                    }
                }
            }
        }
        Ok(true)
    }

    /// Puts each worker's receipts that are in no batch yet into a new pending batch.
    async fn batch_new_receipts(&self, report: &mut TickReport) -> Result<()> {
        for worker in self.store.workers_with_unbatched_receipts().await? {
            let receipts = self.store.unbatched_receipts(&worker, self.batch).await?;
            let jobs: Vec<_> = receipts.iter().map(|r| r.job.clone()).collect();
            let (entry, taken) = self.store.create_batch(&worker, &jobs).await?;
            if taken.is_empty() {
                // Another instance batched these receipts first, and may already have closed
                // this empty batch while sending the oldest pending one.
                closed_elsewhere(self.store.mark_failed(entry.id, "empty batch").await)?;
            } else {
                report.batched += 1;
            }
        }
        Ok(())
    }

    /// Builds, records and broadcasts the oldest pending batch (one at a time: one seqno).
    async fn send_next_batch(&self, report: &mut TickReport) -> Result<()> {
        let Some(entry) = self
            .store
            .outbox_in_status(OutboxStatus::Pending)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        let receipts = self.store.batch_receipts(entry.id).await?;
        let bocs: Vec<Vec<u8>> = receipts.iter().map(|r| r.receipt.clone()).collect();
        let body = match submit_receipts_body(u64::try_from(entry.id).unwrap_or(0), &bocs) {
            Ok(b) => b,
            Err(e) => {
                closed_elsewhere(
                    self.store
                        .mark_failed(entry.id, &format!("cannot build the message: {e}"))
                        .await,
                )?;
                report.failed += 1;
                return Ok(());
            }
        };
        let seqno = self.wallet.seqno().await.map_err(chain_err)?;
        let count = u32::try_from(bocs.len()).unwrap_or(MAX_BATCH);
        let (boc, hash) = self
            .wallet
            .build(seqno, &entry.worker, submit_value(count), body)
            .map_err(chain_err)?;
        // Recorded before it leaves: a crash after this re-broadcasts these exact bytes.
        match self.store.mark_sent(entry.id, seqno, &boc, &hash).await {
            Ok(()) => {}
            // Another instance on the same database claimed this batch first.
            Err(crate::Error::OutboxClosed { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
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
        Ok(())
    }
}
