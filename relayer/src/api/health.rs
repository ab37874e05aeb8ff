//! `/health` and `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::PROTOCOL_VERSION;
use cocoon_sdk::relay::client::Health;

use crate::state::Shared;

/// Readiness: 200 when the store answers and, on a network, the chain answered recently; 503
/// otherwise (the body says which part failed).
pub async fn health(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let store = shared.store.ping().await;
    let chain = shared.chain.status(unix_now_i64());
    let ok = store && chain.as_ref().is_none_or(|c| c.reachable);
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.to_string(),
        version: PROTOCOL_VERSION,
        workers: u32::try_from(shared.sessions.len()).unwrap_or(u32::MAX),
        store,
        relayer_id: shared.config.relayer_id.clone(),
        chain: chain.as_ref().map(|c| c.reachable),
        chain_error: chain.and_then(|c| c.error),
    };
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// Prometheus text format; job counts are read from the store at scrape time.
pub async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if let Ok(counts) = shared.store.count_by_state().await {
        shared.metrics.set_job_counts(&counts);
    }
    shared
        .metrics
        .worker_sessions
        .set(i64::try_from(shared.sessions.len()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}
