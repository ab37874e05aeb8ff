//! `GET /v1/cocoon/jobs/{escrow}/{id}`: the on-chain settlement of a job this gateway ran (receipts are
//! settled by the relayer in batches, usually after the answer was delivered).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::Shared;
use crate::gateway::backend::Backend;
use crate::gateway::error::Result;
use crate::gateway::openai::response::SettlementJson;

/// `GET /v1/cocoon/jobs/{escrow}/{id}` → `{"job", "settled", "settlement"}`.
pub async fn settlement<B: Backend>(
    State(s): State<Arc<Shared<B>>>,
    Path(job): Path<String>,
) -> Result<Json<Value>> {
    let settlement = s.backend.settlement(&job).await?;
    Ok(Json(json!({
        "job": job,
        "settled": settlement.is_some(),
        "settlement": settlement.as_ref().map(SettlementJson::from),
    })))
}
