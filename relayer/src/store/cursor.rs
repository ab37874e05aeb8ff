//! The chain watcher's cursor: the last transaction processed per watched address.

use cocoon_sdk::clock::unix_now_i64;
use sqlx::Row as _;

use super::{OpenedJob, Store, from_db, hash32, to_db};
use crate::error::Result;

/// Position of the watcher on one account: the last processed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Its logical time.
    pub lt: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

impl Store {
    /// The cursor of `address`, if the watcher has processed anything there.
    pub async fn cursor(&self, address: &str) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT lt, hash FROM watcher_cursor WHERE address = $1")
            .bind(address)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Cursor {
            lt: from_db(row.try_get("lt")?),
            hash: hash32("watcher_cursor", "hash", row.try_get("hash")?)?,
        }))
    }

    /// Records the jobs found in one transaction and advances the cursor past it, atomically:
    /// after a crash the transaction is either fully processed or not at all, and replaying it
    /// inserts nothing twice. Returns how many jobs were new.
    pub async fn apply_transaction(
        &self,
        address: &str,
        cursor: Cursor,
        jobs: &[OpenedJob],
    ) -> Result<usize> {
        let mut tx = self.pool().begin().await?;
        let now = unix_now_i64();
        let mut new = 0;
        for job in jobs {
            let done = super::jobs::bind_opened(sqlx::query(super::jobs::INSERT_OPENED), job, now)
                .execute(&mut *tx)
                .await?;
            new += done.rows_affected() as usize;
        }
        sqlx::query(
            "INSERT INTO watcher_cursor (address, lt, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (address) DO UPDATE SET lt = excluded.lt, hash = excluded.hash",
        )
        .bind(address)
        .bind(to_db(cursor.lt))
        .bind(cursor.hash.to_vec())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(new)
    }
}
