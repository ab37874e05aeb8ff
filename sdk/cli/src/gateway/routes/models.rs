//! `GET /v1/models` and `GET /v1/models/{model}`: the network's models with their attested
//! workers and lowest prices.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::Shared;
use crate::gateway::backend::Backend;
use crate::gateway::error::{GatewayError, Result};
use crate::gateway::openai::response;

/// `GET /v1/models`.
pub async fn list<B: Backend>(State(s): State<Arc<Shared<B>>>) -> Result<Json<Value>> {
    let models = s.backend.models().await?;
    Ok(Json(
        json!({"object": "list", "data": models.iter().map(response::model).collect::<Vec<_>>()}),
    ))
}

/// `GET /v1/models/{model}`.
pub async fn get<B: Backend>(
    State(s): State<Arc<Shared<B>>>,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    let models = s.backend.models().await?;
    models
        .iter()
        .find(|m| m.spec.name.eq_ignore_ascii_case(&name))
        .map(|m| Json(response::model(m)))
        .ok_or(GatewayError::UnknownModel(name))
}
