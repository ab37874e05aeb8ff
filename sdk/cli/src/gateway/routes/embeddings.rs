//! `POST /v1/embeddings`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::{ATTESTATION_HEADER, Shared, attestation_value, body, next_event, open};
use crate::gateway::backend::{Backend, BackendEvent};
use crate::gateway::error::{GatewayError, Result};
use crate::gateway::openai::request::{EmbeddingRequest, parse};
use crate::gateway::openai::response;

/// `POST /v1/embeddings`.
pub async fn embeddings<B: Backend>(
    State(s): State<Arc<Shared<B>>>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    run(&s, raw)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run<B: Backend>(
    s: &Arc<Shared<B>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let req: EmbeddingRequest = parse(&body(raw, s.config.max_body_bytes)?)?;
    let (model, job) = req.to_job()?;
    let cocoon_sdk::job::Task::Embeddings { input } = &job.task else {
        return Err(GatewayError::Internal(
            "an embeddings request mapped to another task".into(),
        ));
    };
    let inputs = input.len();
    let started = Instant::now();
    let deadline = started + s.config.request_timeout;
    let mut events = open(s, model, job, deadline).await?;
    let mut vectors = None;
    let summary = loop {
        match next_event(&mut events, deadline, s.config.request_timeout).await {
            Some(Ok(BackendEvent::Dispatched { .. })) => vectors = None,
            Some(Ok(BackendEvent::Embeddings(v))) => vectors = Some(v),
            Some(Ok(BackendEvent::Done(summary))) => break summary,
            Some(Ok(BackendEvent::Delta(_))) => {
                return Err(bad("the worker answered an embeddings job with text"));
            }
            Some(Err(e)) => return Err(e),
            None => return Err(bad("the job ended without a result")),
        }
    };
    let vectors = vectors.ok_or_else(|| bad("the job finished without embeddings"))?;
    if vectors.len() != inputs {
        return Err(bad(&format!(
            "{} inputs but {} vectors",
            inputs,
            vectors.len()
        )));
    }
    tracing::info!(
        target: "gateway::http",
        job = %summary.job, worker = %summary.worker, inputs, prompt_tokens = summary.prompt_tokens,
        cost_nano = %summary.cost, ms = started.elapsed().as_millis() as u64, "embeddings job done"
    );
    let mut res = Json(response::embeddings(
        model.name,
        &vectors,
        req.encoding_format,
        &summary,
    ))
    .into_response();
    res.headers_mut().insert(
        ATTESTATION_HEADER,
        attestation_value(summary.attestation_kind),
    );
    Ok(res)
}

fn bad(message: &str) -> GatewayError {
    GatewayError::Upstream {
        code: "bad_response",
        message: message.to_owned(),
    }
}
