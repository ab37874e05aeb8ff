//! The relayer's durable state: jobs and their state machine, sealed inputs (ciphertext only),
//! workers seen, receipts, the outbox of on-chain messages and the chain watcher's cursor.
//!
//! One code path for both engines: sqlx's `Any` driver runs the same DML on SQLite (default, a
//! file) and PostgreSQL (several relayer instances sharing one database). Only the DDL differs,
//! so there is one migration set per dialect (`migrations/sqlite`, `migrations/postgres`), compiled
//! into the binary. `Any` supports only i16/i32/i64, text, blobs and floats, hence the conventions:
//! u64 ids and logical times are stored bit-for-bit as i64 ([`to_db`] / [`from_db`]) and money as
//! decimal text. Every state change is a conditional `UPDATE ... WHERE state IN (...)`, so two
//! instances racing on one job cannot both win.

mod cursor;
mod jobs;
mod outbox;
mod receipts;
mod workers;

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

pub use cursor::Cursor;
pub use jobs::{JobRecord, JobState, OpenedJob, SealedInput};
pub use outbox::{OutboxEntry, OutboxStatus};
pub use receipts::StoredReceipt;
pub use workers::WorkerRow;

use crate::error::{Error, Result};

/// Default store: a SQLite file in the working directory, created when missing.
pub const DEFAULT_STORE_URL: &str = "sqlite://cocoon-relayer.db?mode=rwc";

/// Default size of the connection pool.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// Which SQL engine a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite (`sqlite:` URLs).
    Sqlite,
    /// PostgreSQL (`postgres:` / `postgresql:` URLs).
    Postgres,
}

impl Engine {
    /// The engine a URL names.
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Engine::Postgres)
        } else {
            // Never echo a URL that may hold a password beyond its scheme.
            let scheme = url.split(':').next().unwrap_or_default().to_string();
            Err(Error::UnsupportedStore {
                url: format!("{scheme}:…"),
            })
        }
    }

    fn migrations(self) -> &'static [(i64, &'static str, &'static str)] {
        match self {
            Engine::Sqlite => &[
                (
                    1,
                    "init",
                    include_str!("../../migrations/sqlite/0001_init.sql"),
                ),
                (
                    2,
                    "dispatch_lease",
                    include_str!("../../migrations/sqlite/0002_dispatch_lease.sql"),
                ),
                (
                    3,
                    "reader_key",
                    include_str!("../../migrations/sqlite/0003_reader_key.sql"),
                ),
            ],
            Engine::Postgres => &[
                (
                    1,
                    "init",
                    include_str!("../../migrations/postgres/0001_init.sql"),
                ),
                (
                    2,
                    "dispatch_lease",
                    include_str!("../../migrations/postgres/0002_dispatch_lease.sql"),
                ),
                (
                    3,
                    "reader_key",
                    include_str!("../../migrations/postgres/0003_reader_key.sql"),
                ),
            ],
        }
    }
}

/// Migrations compiled into the binary (the relayer never reads SQL files at run time).
#[derive(Debug)]
struct Embedded(Engine);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .migrations()
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// Handle to the relayer database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// Connects to `url` (see [`DEFAULT_STORE_URL`]) and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let engine = Engine::from_url(url)?;
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect(url)
            .await?;
        if engine == Engine::Sqlite {
            // WAL lets the API read while the dispatcher writes; it persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let migrator = Migrator::new(Embedded(engine)).await?;
        migrator.run(&pool).await?;
        tracing::debug!(target: "relayer::store", ?engine, "store ready");
        Ok(Self { pool, engine })
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// A u64 as stored: the same 64 bits in a signed column (lossless; order is not preserved above
/// `i64::MAX`, so never compare such columns in SQL).
pub fn to_db(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

/// Inverse of [`to_db`].
pub fn from_db(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

fn corrupt(table: &'static str, column: &'static str, detail: impl Into<String>) -> Error {
    Error::CorruptRow {
        table,
        column,
        detail: detail.into(),
    }
}

fn hash32(table: &'static str, column: &'static str, v: Vec<u8>) -> Result<[u8; 32]> {
    v.try_into()
        .map_err(|v: Vec<u8>| corrupt(table, column, format!("{} bytes, want 32", v.len())))
}

fn money(table: &'static str, column: &'static str, v: &str) -> Result<u64> {
    v.parse()
        .map_err(|_| corrupt(table, column, format!("{v:?} is not nanoTON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_survives_the_db_encoding() {
        for v in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(from_db(to_db(v)), v);
        }
    }

    #[test]
    fn engines_by_url() {
        assert_eq!(Engine::from_url("sqlite://x.db").unwrap(), Engine::Sqlite);
        assert_eq!(
            Engine::from_url("postgres://u:p@h/db").unwrap(),
            Engine::Postgres
        );
        let err = Engine::from_url("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql") && !err.contains("secret"), "{err}");
    }
}
