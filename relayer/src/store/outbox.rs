//! The outbox of on-chain messages: one row per SubmitReceipts batch, from creation to
//! confirmation. A batch is created (pending) before anything is sent, so a crash between
//! sending and recording is recovered by looking the message up on-chain, never by sending a
//! second copy of a confirmed batch.

use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::JobRef;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{JobState, Store, corrupt, from_db, to_db};
use crate::error::{Error, Result};

/// Where an outbox message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Created; not sent yet.
    Pending,
    /// Sent with a wallet seqno; waiting to see it on-chain.
    Sent,
    /// Seen on-chain. Its receipts are never sent again.
    Confirmed,
    /// Given up (its receipts were released for a new batch).
    Failed,
}

impl OutboxStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Confirmed => "confirmed",
            OutboxStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            OutboxStatus::Pending,
            OutboxStatus::Sent,
            OutboxStatus::Confirmed,
            OutboxStatus::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One outbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Row id.
    pub id: i64,
    /// Worker contract the batch goes to.
    pub worker: String,
    /// Status.
    pub status: OutboxStatus,
    /// Wallet seqno it was sent with.
    pub seqno: Option<u32>,
    /// The external message BOC as sent (resent verbatim: same seqno, so it can land at most once).
    pub message: Option<Vec<u8>>,
    /// Hash of the external message, to find its transaction.
    pub msg_hash: Option<Vec<u8>>,
    /// Send attempts.
    pub attempts: u32,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Logical time of the confirming transaction.
    pub tx_lt: Option<u64>,
    /// Unix time of the last change (for a sent entry: when it was last sent).
    pub updated_at: i64,
}

fn entry_from_row(row: &AnyRow) -> Result<OutboxEntry> {
    let status: String = row.try_get("status")?;
    let seqno: Option<i64> = row.try_get("seqno")?;
    let attempts: i64 = row.try_get("attempts")?;
    let tx_lt: Option<i64> = row.try_get("tx_lt")?;
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        worker: row.try_get("worker")?,
        status: OutboxStatus::parse(&status)
            .ok_or_else(|| corrupt("outbox", "status", status.clone()))?,
        seqno: seqno
            .map(|s| u32::try_from(s).map_err(|_| corrupt("outbox", "seqno", s.to_string())))
            .transpose()?,
        message: row.try_get("message")?,
        msg_hash: row.try_get("msg_hash")?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error")?,
        tx_lt: tx_lt.map(from_db),
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates a pending batch of `jobs` (answered, with unbatched receipts of `worker`) and moves
    /// those jobs to receipt_queued, in one transaction. Jobs whose receipt is already batched or
    /// that are no longer answered are left out; returns the entry and the jobs it holds.
    pub async fn create_batch(
        &self,
        worker: &str,
        jobs: &[JobRef],
    ) -> Result<(OutboxEntry, Vec<JobRef>)> {
        let mut tx = self.pool().begin().await?;
        let now = unix_now_i64();
        let row = sqlx::query(
            "INSERT INTO outbox (worker, status, attempts, created_at, updated_at) VALUES ($1, $2, 0, $3, $3) RETURNING id",
        )
        .bind(worker)
        .bind(OutboxStatus::Pending.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        let mut taken = Vec::with_capacity(jobs.len());
        for job in jobs {
            let claimed = sqlx::query(
                "UPDATE receipts SET outbox_id = $1 WHERE escrow = $2 AND job_id = $3 AND worker = $4 AND outbox_id IS NULL",
            )
            .bind(id)
            .bind(&job.escrow)
            .bind(to_db(job.job_id))
            .bind(worker)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            sqlx::query("UPDATE jobs SET state = $1, updated_at = $2 WHERE escrow = $3 AND job_id = $4 AND state = $5")
                .bind(JobState::ReceiptQueued.as_str())
                .bind(now)
                .bind(&job.escrow)
                .bind(to_db(job.job_id))
                .bind(JobState::Answered.as_str())
                .execute(&mut *tx)
                .await?;
            taken.push(job.clone());
        }
        tx.commit().await?;
        let entry = self
            .outbox_entry(id)
            .await?
            .ok_or_else(|| corrupt("outbox", "id", format!("{id} vanished")))?;
        Ok((entry, taken))
    }

    /// One outbox entry.
    pub async fn outbox_entry(&self, id: i64) -> Result<Option<OutboxEntry>> {
        let row = sqlx::query("SELECT * FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Entries in `status`, oldest first.
    pub async fn outbox_in_status(&self, status: OutboxStatus) -> Result<Vec<OutboxEntry>> {
        let rows = sqlx::query("SELECT * FROM outbox WHERE status = $1 ORDER BY id")
            .bind(status.as_str())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Receipts carried by an outbox entry, in batch order.
    pub async fn batch_receipts(&self, id: i64) -> Result<Vec<super::StoredReceipt>> {
        let rows = sqlx::query("SELECT escrow, job_id FROM receipts WHERE outbox_id = $1 ORDER BY received_at, escrow, job_id")
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let job = JobRef::new(
                row.try_get::<String, _>("escrow")?,
                from_db(row.try_get("job_id")?),
            );
            if let Some(r) = self.receipt(&job).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Claims a pending batch for sending as `message` with wallet `seqno`: a row-level
    /// compare-and-set from pending, so of two relayer instances that signed the same batch only
    /// one records (and then broadcasts) it; the other gets [`Error::OutboxClosed`]. A sent
    /// message is only ever re-broadcast byte for byte, never re-signed.
    pub async fn mark_sent(
        &self,
        id: i64,
        seqno: u32,
        message: &[u8],
        msg_hash: &[u8],
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = $1, seqno = $2, message = $3, msg_hash = $4, attempts = attempts + 1, \
             updated_at = $5 WHERE id = $6 AND status = $7",
        )
        .bind(OutboxStatus::Sent.as_str())
        .bind(i64::from(seqno))
        .bind(message.to_vec())
        .bind(msg_hash.to_vec())
        .bind(unix_now_i64())
        .bind(id)
        .bind(OutboxStatus::Pending.as_str())
        .execute(self.pool())
        .await?;
        open_entry(id, done.rows_affected())
    }

    /// Records a failed send attempt (the entry stays retryable).
    pub async fn note_outbox_error(&self, id: i64, error: &str) -> Result<()> {
        let done = sqlx::query(
            // updated_at keeps the time the message was signed: its expiry is counted from there.
            "UPDATE outbox SET last_error = $1, attempts = attempts + 1 WHERE id = $2 AND status IN ($3, $4)",
        )
        .bind(error.to_string())
        .bind(id)
        .bind(OutboxStatus::Pending.as_str())
        .bind(OutboxStatus::Sent.as_str())
        .execute(self.pool())
        .await?;
        open_entry(id, done.rows_affected())
    }

    /// Records that the batch landed in transaction (`tx_lt`, `tx_hash`): final (its receipts are
    /// never sent again), and its jobs become submitted until the Escrows' verdicts are read
    /// ([`Store::settle`]).
    pub async fn mark_confirmed(&self, id: i64, tx_lt: u64, tx_hash: &[u8; 32]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let now = unix_now_i64();
        let done = sqlx::query(
            "UPDATE outbox SET status = $1, tx_lt = $2, tx_hash = $3, updated_at = $4 WHERE id = $5 AND status IN ($6, $7)",
        )
        .bind(OutboxStatus::Confirmed.as_str())
        .bind(to_db(tx_lt))
        .bind(tx_hash.to_vec())
        .bind(now)
        .bind(id)
        .bind(OutboxStatus::Pending.as_str())
        .bind(OutboxStatus::Sent.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return open_entry(id, 0);
        }
        sqlx::query(
            "UPDATE jobs SET state = $1, reason = $2, updated_at = $3 WHERE state = $4 AND EXISTS \
             (SELECT 1 FROM receipts r WHERE r.outbox_id = $5 AND r.escrow = jobs.escrow AND r.job_id = jobs.job_id)",
        )
        .bind(JobState::Submitted.as_str())
        .bind(format!("receipt submitted in outbox {id}; waiting for the Escrow"))
        .bind(now)
        .bind(JobState::ReceiptQueued.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives up on a batch that never landed (its seqno was consumed by something else or it
    /// expired): the entry becomes failed and its receipts go back to answered for a new batch.
    pub async fn mark_failed(&self, id: i64, error: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let now = unix_now_i64();
        let done = sqlx::query("UPDATE outbox SET status = $1, last_error = $2, updated_at = $3 WHERE id = $4 AND status IN ($5, $6)")
            .bind(OutboxStatus::Failed.as_str())
            .bind(error.to_string())
            .bind(now)
            .bind(id)
            .bind(OutboxStatus::Pending.as_str())
            .bind(OutboxStatus::Sent.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return open_entry(id, 0);
        }
        sqlx::query(
            "UPDATE jobs SET state = $1, updated_at = $2 WHERE state = $3 AND EXISTS \
             (SELECT 1 FROM receipts r WHERE r.outbox_id = $4 AND r.escrow = jobs.escrow AND r.job_id = jobs.job_id)",
        )
        .bind(JobState::Answered.as_str())
        .bind(now)
        .bind(JobState::ReceiptQueued.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE receipts SET outbox_id = NULL WHERE outbox_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Confirmed batches that still have submitted jobs (the Escrows' verdicts not read yet),
    /// oldest first.
    pub async fn batches_awaiting_verdict(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM outbox o WHERE o.status = $1 AND EXISTS (SELECT 1 FROM receipts r JOIN jobs j \
             ON j.escrow = r.escrow AND j.job_id = r.job_id WHERE r.outbox_id = o.id AND j.state = $2) \
             ORDER BY o.id LIMIT $3",
        )
        .bind(OutboxStatus::Confirmed.as_str())
        .bind(JobState::Submitted.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Records the Escrow's verdict on a submitted job: accepted → settled, refused → failed
    /// with `reason`. A job that is not submitted (already decided, by another instance) is left
    /// as it is; returns whether this call moved it.
    pub async fn settle(&self, job: &JobRef, accepted: bool, reason: &str) -> Result<bool> {
        let to = if accepted {
            JobState::Settled
        } else {
            JobState::Failed
        };
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, reason = $2, updated_at = $3 WHERE escrow = $4 AND job_id = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(reason.to_string())
        .bind(unix_now_i64())
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(JobState::Submitted.as_str())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// An update of an entry that must be pending or sent touched exactly one row.
fn open_entry(id: i64, rows: u64) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(Error::OutboxClosed { id })
    }
}
