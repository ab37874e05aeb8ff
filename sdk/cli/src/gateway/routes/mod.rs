//! One module per OpenAI route family, plus the Cocoon job lookup and health.

pub mod embeddings;
pub mod jobs;
pub mod models;
pub mod text;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode};
use cocoon_sdk::attest::EvidenceKind;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::backend::{Backend, BackendEvent, BackendEvents};
use super::config::GatewayConfig;
use super::error::{GatewayError, Result};

/// Header naming the evidence kind of the worker that answered.
pub const ATTESTATION_HEADER: &str = "x-cocoon-attestation";

/// State shared by every route.
#[derive(Debug)]
pub struct Shared<B> {
    /// The network.
    pub backend: B,
    /// Limits and policy.
    pub config: GatewayConfig,
}

/// The request body, with the extractor's failures mapped to OpenAI errors.
pub fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GatewayError::PayloadTooLarge { limit }
        } else {
            GatewayError::InvalidRequest {
                message: format!("cannot read the request body: {r}"),
                param: None,
            }
        }
    })
}

/// `X-Cocoon-Attestation` value of an evidence kind (`UNATTESTED (SIMULATED TEE)` when so).
pub fn attestation_value(kind: EvidenceKind) -> HeaderValue {
    HeaderValue::from_str(&kind.to_string()).expect("evidence kind names are ASCII")
}

/// A fresh response id with the given prefix (`chatcmpl`, `cmpl`).
pub fn response_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 12]>()))
}

/// Opens the job, within the request's deadline.
pub async fn open<B: Backend>(
    shared: &Shared<B>,
    model: &'static cocoon_sdk::job::ModelSpec,
    job: cocoon_sdk::job::JobRequest,
    deadline: Instant,
) -> Result<BackendEvents> {
    tokio::time::timeout_at(
        deadline,
        shared.backend.open_job(model, job, &shared.config.policy),
    )
    .await
    .map_err(|_| timeout(shared.config.request_timeout))?
}

/// The next event, or a timeout error at the deadline.
pub async fn next_event(
    events: &mut BackendEvents,
    deadline: Instant,
    limit: Duration,
) -> Option<Result<BackendEvent>> {
    match tokio::time::timeout_at(deadline, events.next()).await {
        Ok(ev) => ev,
        Err(_) => Some(Err(timeout(limit))),
    }
}

fn timeout(limit: Duration) -> GatewayError {
    GatewayError::Timeout(format!(
        "the job did not finish within the gateway's limit of {} s",
        limit.as_secs()
    ))
}
