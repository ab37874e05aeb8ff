//! `POST /v1/chat/completions` and `POST /v1/completions`: both open a text job and answer
//! either one JSON body or an SSE stream ([`crate::gateway::sse`]).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cocoon_sdk::clock::unix_now;
use cocoon_sdk::job::{JobRequest, ModelSpec};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ATTESTATION_HEADER, Shared, attestation_value, body, next_event, open, response_id};
use crate::gateway::backend::{Backend, BackendEvent, BackendEvents, JobSummary};
use crate::gateway::error::{GatewayError, Result};
use crate::gateway::openai::request::{ChatCompletionRequest, CompletionRequest, parse};
use crate::gateway::openai::response::{ResponseMeta, TextApi};
use crate::gateway::sse::TextFramer;

/// How long a streamed request waits after its dispatch for the worker's first word before the
/// 200 goes out: a worker's final refusal (a prompt beyond the context) comes within it and
/// answers with its own status.
const REFUSAL_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// `POST /v1/chat/completions`.
pub async fn chat<B: Backend>(
    State(s): State<Arc<Shared<B>>>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let req: ChatCompletionRequest = parse(&body(raw, s.config.max_body_bytes)?)?;
        let (model, job) = req.to_job()?;
        respond(
            &s,
            TextApi::Chat,
            model,
            job,
            req.stream,
            req.include_usage(),
        )
        .await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/completions`.
pub async fn completions<B: Backend>(
    State(s): State<Arc<Shared<B>>>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let req: CompletionRequest = parse(&body(raw, s.config.max_body_bytes)?)?;
        let (model, job) = req.to_job()?;
        respond(
            &s,
            TextApi::Completion,
            model,
            job,
            req.stream,
            req.include_usage(),
        )
        .await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn respond<B: Backend>(
    s: &Arc<Shared<B>>,
    api: TextApi,
    model: &'static ModelSpec,
    job: JobRequest,
    stream: bool,
    include_usage: bool,
) -> Result<Response> {
    let started = Instant::now();
    let deadline = started + s.config.request_timeout;
    let meta = ResponseMeta {
        id: response_id(match api {
            TextApi::Chat => "chatcmpl",
            TextApi::Completion => "cmpl",
        }),
        created: unix_now(),
        model: model.name,
        api,
    };
    let mut events = open(s, model, job, deadline).await?;
    if stream {
        return stream_response(s, meta, events, deadline, include_usage).await;
    }
    let mut text = String::new();
    let summary: Box<JobSummary> = loop {
        match next_event(&mut events, deadline, s.config.request_timeout).await {
            // A later dispatch is a failover: the new worker answers from the start.
            Some(Ok(BackendEvent::Dispatched { .. })) => text.clear(),
            Some(Ok(BackendEvent::Delta(t))) => text.push_str(&t),
            Some(Ok(BackendEvent::Done(summary))) => break summary,
            Some(Ok(BackendEvent::Embeddings(_))) => {
                return Err(bad_response(
                    "the worker answered a text job with embeddings",
                ));
            }
            Some(Err(e)) => return Err(e),
            None => return Err(bad_response("the job ended without a result")),
        }
    };
    log_done(&summary, started);
    let mut res = Json(meta.full(&text, &summary)).into_response();
    res.headers_mut().insert(
        ATTESTATION_HEADER,
        attestation_value(summary.attestation_kind),
    );
    Ok(res)
}

/// Waits for the first event so that failures before any output (no worker, attestation, the
/// relayer) still get their status code, and the attestation header is known; then streams.
async fn stream_response<B: Backend>(
    s: &Arc<Shared<B>>,
    meta: ResponseMeta,
    mut events: BackendEvents,
    deadline: Instant,
    include_usage: bool,
) -> Result<Response> {
    let limit = s.config.request_timeout;
    let first = match next_event(&mut events, deadline, limit).await {
        Some(Ok(ev)) => ev,
        Some(Err(e)) => return Err(e),
        None => return Err(bad_response("the job ended without a result")),
    };
    let mut kind = match &first {
        BackendEvent::Dispatched {
            attestation_kind, ..
        } => Some(*attestation_kind),
        BackendEvent::Done(summary) => Some(summary.attestation_kind),
        _ => None,
    };
    // A worker refuses at once what no worker can serve (a prompt beyond the context): wait a
    // moment past the dispatch so that refusal still gets its status code (400) rather than an
    // error event after a 200.
    let mut head = vec![Ok(first)];
    while matches!(head.last(), Some(Ok(BackendEvent::Dispatched { .. }))) {
        let grace = Instant::now() + REFUSAL_GRACE;
        // The request's own timeout is told in the stream, as before.
        if grace >= deadline {
            break;
        }
        match tokio::time::timeout_at(grace, next_event(&mut events, deadline, limit)).await {
            Err(_) => break,
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(ev))) => {
                if let BackendEvent::Dispatched {
                    attestation_kind, ..
                } = &ev
                {
                    kind = Some(*attestation_kind);
                }
                head.push(Ok(ev));
            }
            Ok(None) => break,
        }
    }
    let mut framer = TextFramer::new(meta, include_usage);
    let (tx, rx) = mpsc::channel::<String>(64);
    let started = Instant::now();
    // The pump owns the job; when the caller goes away, sends fail and the job stream is dropped.
    tokio::spawn(async move {
        let mut pending = head.into_iter();
        loop {
            let ev = match pending.next() {
                Some(ev) => Some(ev),
                None => next_event(&mut events, deadline, limit).await,
            };
            let payloads = match ev {
                Some(ev) => {
                    if let Ok(BackendEvent::Done(summary)) = &ev {
                        log_done(summary, started);
                    }
                    framer.push(ev)
                }
                None => framer.end(),
            };
            for p in payloads {
                if tx.send(p).await.is_err() {
                    tracing::debug!(target: "gateway::http", "client went away mid-stream");
                    return;
                }
            }
            if framer.finished() {
                return;
            }
        }
    });
    let mut res = Sse::new(sse_stream(rx))
        .keep_alive(KeepAlive::default())
        .into_response();
    if let Some(kind) = kind {
        res.headers_mut()
            .insert(ATTESTATION_HEADER, attestation_value(kind));
    }
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

fn sse_stream(rx: mpsc::Receiver<String>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok(Event::default().data(data)), rx))
    })
}

fn bad_response(message: &str) -> GatewayError {
    GatewayError::Upstream {
        code: "bad_response",
        message: message.to_owned(),
    }
}

fn log_done(s: &JobSummary, started: Instant) {
    tracing::info!(
        target: "gateway::http",
        job = %s.job, worker = %s.worker, attestation = %s.attestation_kind,
        prompt_tokens = s.prompt_tokens, completion_tokens = s.completion_tokens,
        cost_nano = %s.cost, open_ms = s.open_time.as_millis() as u64, ms = started.elapsed().as_millis() as u64,
        "text job done"
    );
}
