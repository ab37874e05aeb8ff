//! Cocoon relayer.
//!
//! ```text
//!  chain ──JobOpened──▶ watcher ──▶ store ◀── api (client: sealed input, SSE, workers)
//!                                     │
//!                                     ▼
//!  workers ◀──WebSocket── sessions ◀── dispatcher ──▶ hub (per-job event streams to clients)
//!                                     │
//!                                     ▼
//!                          submitter ──SubmitReceipts──▶ chain
//! ```
//!
//! The relayer is untrusted for confidentiality: it only ever holds ciphertext (sealed inputs and
//! sealed output chunks) and never logs their content.
//!
//! # Layout
//! - [`service`]: the whole relayer in-process ([`service::spawn`] → [`service::RelayerHandle`]):
//!   store, server, watcher and submitter; `cocoon-relayer run` wraps it.
//! - [`relayer`]: the server ([`Relayer`]) and its background tasks; takes its listener and
//!   shutdown signal as arguments.
//! - [`state`]: what handlers and tasks share ([`state::Shared`]); it builds the dispatcher and
//!   the sessions' dependencies with the handles they need, so neither reaches back into it.
//! - [`api`]: client HTTP routes (input, status, SSE stream, workers, health, metrics) and the
//!   worker WebSocket.
//! - [`sessions`]: the table of live worker sessions; [`api::worker`] is the WebSocket endpoint
//!   (challenge/auth, heartbeats, job frames) that fills it.
//! - [`channels`]: channel mode (v2): requests routed by payment channel, in memory only.
//! - [`dispatcher`]: candidate ranking, dispatch, chunk streaming, failover, final refusals.
//! - [`queue`]: jobs waiting for a worker, per (worker, model), earliest deadline first.
//! - [`hub`]: per-job event streams with replay.
//! - [`registry`]: on-chain worker records behind [`WorkerRegistry`], and the admission rule.
//! - [`receipt`]: checks on a worker's signed receipt.
//! - [`submitter`]: SubmitReceipts batches through the outbox, at most once on-chain.
//! - [`watcher`]: JobOpened notifications from the chain, authenticated, with a persisted cursor.
//! - [`store`]: the database (SQLite or PostgreSQL through one code path), the job state machine.
//! - [`chain`]: the registry, watcher source and wallet over the sdk chain layer.
//! - [`cli`]: flags, environment and TOML file of `cocoon-relayer run`.
//! - [`metrics`], [`config`], [`address`], [`error`].
//!
//! Test support (a stub worker, localnet with the development Root, stream collection) is in
//! the `cocoon-testkit` crate; the benchmark is `examples/bench.rs`.

#![warn(missing_docs)]

pub mod address;
pub mod api;
pub mod chain;
pub mod chain_health;
pub mod chain_v2;
pub mod channels;
pub mod cli;
pub mod config;
pub mod dispatcher;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod queue;
pub mod receipt;
pub mod registry;
pub mod relayer;
pub mod service;
pub mod sessions;
pub mod state;
pub mod store;
pub mod submitter;
pub mod watcher;

pub use config::RelayerConfig;
pub use error::{Error, Result};
pub use registry::{OnChainWorker, StaticRegistry, WorkerRegistry};
pub use relayer::Relayer;
pub use service::{ChainConfig, RelayerHandle, ServiceConfig};
pub use store::{JobRecord, JobState, OpenedJob, Store};
