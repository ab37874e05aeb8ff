//! The HTTP surface: one module per route family (client jobs, workers, health and metrics) and
//! the worker WebSocket ([`crate::sessions`]).

mod error;
mod health;
mod jobs;
mod stream;
mod workers;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use cocoon_sdk::relay::WORKER_WS_PATH;

pub use error::ApiFailure;
pub use jobs::{JobList, MAX_LIST};

use crate::relayer::Shared;

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
        .route(WORKER_WS_PATH, get(crate::sessions::ws_handler))
        .fallback(error::not_found)
        .with_state(shared)
}
