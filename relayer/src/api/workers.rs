//! `GET /v1/workers?model={id}`: connected, verified workers with their evidence and prices.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use cocoon_sdk::relay::client::{ApiErrorCode, WorkerList};
use serde::Deserialize;

use super::ApiFailure;
use crate::state::Shared;

/// Query of the worker list.
#[derive(Debug, Deserialize)]
pub struct WorkersQuery {
    model: Option<String>,
}

/// Lists workers serving the model (all when no model is given), best first.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<WorkersQuery>,
) -> Result<Json<WorkerList>, ApiFailure> {
    let model = q
        .model
        .map(|m| {
            m.parse::<u32>().map_err(|_| {
                ApiFailure::new(ApiErrorCode::BadParameter, "model must be a u32 model id")
            })
        })
        .transpose()?;
    let timeout = shared.config.session_timeout();
    let mut workers: Vec<_> = shared
        .sessions
        .all()
        .iter()
        .filter(|s| model.is_none_or(|m| s.models.contains(&m)))
        .map(|s| s.info(timeout))
        .collect();
    workers.sort_by_key(|w| {
        let load = u64::from(w.load) * 1000 / u64::from(w.capacity.max(1));
        (
            !w.healthy,
            load,
            u128::from(w.price_in) + u128::from(w.price_out),
            w.worker.clone(),
        )
    });
    Ok(Json(WorkerList { workers }))
}
