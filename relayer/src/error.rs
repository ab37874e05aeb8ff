//! The relayer library's error type.

use crate::store::JobState;

/// Everything that can go wrong inside the relayer library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed (connection, query, constraint).
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The store URL names a database the relayer does not support.
    #[error("unsupported store URL {url:?}: use sqlite://PATH or postgres://...")]
    UnsupportedStore {
        /// The URL as given (credentials are not logged elsewhere; this stays in the error).
        url: String,
    },
    /// A row holds a value this version cannot read (corruption or a newer schema).
    #[error("store row {table}.{column} is invalid: {detail}")]
    CorruptRow {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// No job with this (escrow, job id) has been seen on-chain.
    #[error("job {job} is unknown")]
    JobNotFound {
        /// The job, as `escrow/job_id`.
        job: String,
    },
    /// A job state change that the state machine does not allow (or another instance got there
    /// first).
    #[error("job {job}: cannot move from {from} to {to}")]
    InvalidTransition {
        /// The job.
        job: String,
        /// State found.
        from: JobState,
        /// State asked for.
        to: JobState,
    },
    /// Input was already submitted for this job.
    #[error("job {job}: input already submitted")]
    AlreadySubmitted {
        /// The job.
        job: String,
    },
    /// The job is not in a state that accepts input.
    #[error("job {job} is {state}, not open")]
    NotOpen {
        /// The job.
        job: String,
        /// Its state.
        state: JobState,
    },
    /// The outbox entry is already confirmed or failed (or does not exist): it can change no more.
    #[error("outbox entry {id} is closed")]
    OutboxClosed {
        /// Its id.
        id: i64,
    },
    /// An address that is not a valid TON address.
    #[error("invalid address {address:?}: {detail}")]
    InvalidAddress {
        /// As given.
        address: String,
        /// Parser message.
        detail: String,
    },
    /// The worker registry (chain) could not be read.
    #[error("worker registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// A chain request the service needs to start (or a chain client) failed.
    #[error("chain: {what}: {detail}")]
    Chain {
        /// What was being done.
        what: &'static str,
        /// The chain layer's message.
        detail: String,
    },
    /// Binding or serving a network socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of the relayer library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
