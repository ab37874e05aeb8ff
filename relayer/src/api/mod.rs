//! The HTTP surface: one module per route family (client jobs, workers, health and metrics) and
//! the worker WebSocket ([`worker`]).

mod access;
mod channel;
mod error;
mod health;
mod jobs;
mod stream;
pub mod worker;
mod workers;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use cocoon_sdk::relay::{CHANNEL_REQUESTS_PATH, CHANNEL_VOUCHERS_PATH, WORKER_WS_PATH};

pub use error::{ApiFailure, render_refusal};
pub use jobs::{JobList, MAX_LIST};

use crate::state::Shared;

/// Builds the router over the shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.config.max_body_bytes();
    Router::new()
        .route(
            "/v1/jobs/{escrow}/{job_id}/input",
            post(jobs::submit_input).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{escrow}/{job_id}", get(jobs::status))
        .route("/v1/jobs/{escrow}/{job_id}/stream", get(stream::stream))
        .route("/v1/workers", get(workers::list))
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .fallback(error::not_found)
        .with_state(shared.clone())
        .merge(
            Router::new()
                .route(
                    CHANNEL_REQUESTS_PATH,
                    post(channel::submit).layer(DefaultBodyLimit::max(body_limit)),
                )
                .route(CHANNEL_VOUCHERS_PATH, post(channel::voucher))
                .with_state(shared.channels.clone()),
        )
        .merge(
            Router::new()
                .route(WORKER_WS_PATH, get(worker::ws_handler))
                .with_state(worker::SessionDeps {
                    sessions: shared.sessions.clone(),
                    dispatcher: shared.dispatcher.clone(),
                    channels: shared.channels.clone(),
                    registry: shared.registry.clone(),
                    store: shared.store.clone(),
                    metrics: shared.metrics.clone(),
                    config: shared.config.clone(),
                    shutdown: shared.shutdown_signal(),
                }),
        )
}
