//! Signed receipts received from workers, waiting for (or part of) a SubmitReceipts batch.

use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::JobRef;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{JobState, Store, from_db, money, to_db};
use crate::error::{Error, Result};

/// A receipt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    /// The job it settles.
    pub job: JobRef,
    /// Worker that signed it.
    pub worker: String,
    /// BOC of the SignedReceipt cell.
    pub receipt: Vec<u8>,
    /// Cost, nanoTON.
    pub cost: u64,
    /// The outbox message carrying it, once batched.
    pub outbox_id: Option<i64>,
}

fn receipt_from_row(row: &AnyRow) -> Result<StoredReceipt> {
    let cost: String = row.try_get("cost")?;
    Ok(StoredReceipt {
        job: JobRef::new(
            row.try_get::<String, _>("escrow")?,
            from_db(row.try_get("job_id")?),
        ),
        worker: row.try_get("worker")?,
        receipt: row.try_get("receipt")?,
        cost: money("receipts", "cost", &cost)?,
        outbox_id: row.try_get("outbox_id")?,
    })
}

impl Store {
    /// Stores the receipt of a dispatched job and moves it dispatched → answered, atomically: a
    /// job is never answered without its receipt on disk. `worker` must be the worker the job
    /// was dispatched to.
    pub async fn record_receipt(
        &self,
        job: &JobRef,
        worker: &str,
        receipt: &[u8],
        cost: u64,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let now = unix_now_i64();
        let moved = sqlx::query(
            "UPDATE jobs SET state = $1, updated_at = $2 WHERE escrow = $3 AND job_id = $4 AND state = $5 AND worker = $6",
        )
        .bind(JobState::Answered.as_str())
        .bind(now)
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(JobState::Dispatched.as_str())
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            let record = self.job(job).await?.ok_or_else(|| Error::JobNotFound {
                job: job.to_string(),
            })?;
            return Err(Error::InvalidTransition {
                job: job.to_string(),
                from: record.state,
                to: JobState::Answered,
            });
        }
        sqlx::query(
            "INSERT INTO receipts (escrow, job_id, worker, receipt, cost, received_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(worker)
        .bind(receipt.to_vec())
        .bind(cost.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The receipt of a job, if any.
    pub async fn receipt(&self, job: &JobRef) -> Result<Option<StoredReceipt>> {
        let row = sqlx::query("SELECT * FROM receipts WHERE escrow = $1 AND job_id = $2")
            .bind(&job.escrow)
            .bind(to_db(job.job_id))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(receipt_from_row).transpose()
    }

    /// Receipts of `worker` not yet in any outbox message, oldest first, at most `limit`.
    pub async fn unbatched_receipts(&self, worker: &str, limit: u32) -> Result<Vec<StoredReceipt>> {
        let rows = sqlx::query(
            "SELECT * FROM receipts WHERE worker = $1 AND outbox_id IS NULL ORDER BY received_at, escrow, job_id LIMIT $2",
        )
        .bind(worker)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(receipt_from_row).collect()
    }

    /// Workers that have receipts waiting for a batch.
    pub async fn workers_with_unbatched_receipts(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT worker FROM receipts WHERE outbox_id IS NULL ORDER BY worker",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("worker").map_err(Error::from))
            .collect()
    }
}
