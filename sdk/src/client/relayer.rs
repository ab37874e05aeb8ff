//! The relayer's client HTTP API ([`crate::relay::client`]) over reqwest: health, worker list,
//! input submission (retried while the relayer's watcher has not yet seen the job on-chain), and
//! the job's event stream. Reads of a job (status, stream) carry a read proof signed with the
//! client's reader key ([`crate::relay::read_auth`]), which the submission names.

use std::time::Duration;

use reqwest::StatusCode;
use tracing::debug;

use super::error::{ClientError, Result};
use super::sse::{SseEvent, SseParser};
use crate::relay::client::{
    ApiError, Health, JobStatus, StreamEvent, SubmitAccepted, SubmitInput, WorkerList,
};
use crate::relay::read_auth::{ReadProof, reader_public_hex};
use crate::relay::{JobRef, PROTOCOL_VERSION};

/// Timeout of one plain request (health, worker list, submission).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause between submissions the relayer refused with `job_not_found`.
const SUBMIT_RETRY_START: Duration = Duration::from_millis(100);
/// Longest pause between such submissions.
const SUBMIT_RETRY_MAX: Duration = Duration::from_secs(2);

/// Client of one relayer's HTTP API.
#[derive(Debug, Clone)]
pub struct RelayerApi {
    base: String,
    http: reqwest::Client,
    reads: Option<ReadAuth>,
}

/// How job reads are authenticated; secrets are kept out of `Debug` output.
#[derive(Clone)]
enum ReadAuth {
    /// The job owner's reader key (ed25519 secret seed).
    Reader([u8; 32]),
    /// The relayer operator's token.
    Operator(String),
}

impl std::fmt::Debug for ReadAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadAuth::Reader(_) => "Reader(…)",
            ReadAuth::Operator(_) => "Operator(…)",
        })
    }
}

impl RelayerApi {
    /// A client of the relayer at `base_url` (`http://host:port`, trailing slash optional).
    pub fn new(base_url: &str) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::RelayerUnreachable(format!(
                "relayer URL {base_url:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::RelayerUnreachable(format!("HTTP client: {e}")))?;
        Ok(Self {
            base,
            http,
            reads: None,
        })
    }

    /// This client with a reader key (an ed25519 secret seed): submissions name its public
    /// half, and status and stream reads are signed with it, so only this client (or the
    /// relayer's operator) can read its jobs.
    pub fn with_reader(mut self, reader: [u8; 32]) -> Self {
        self.reads = Some(ReadAuth::Reader(reader));
        self
    }

    /// This client reading as the relayer's operator (any job, and `GET /v1/jobs`).
    pub fn with_operator_token(mut self, token: impl Into<String>) -> Self {
        self.reads = Some(ReadAuth::Operator(token.into()));
        self
    }

    /// The `Authorization` value of a read of `job`: a fresh read proof or the operator token.
    fn read_proof(&self, job: &JobRef) -> Option<String> {
        Some(match self.reads.as_ref()? {
            ReadAuth::Reader(r) => ReadProof::sign(r, job, crate::clock::unix_now()).header(),
            ReadAuth::Operator(t) => format!("Bearer {t}"),
        })
    }

    fn read(&self, url: String, job: &JobRef) -> reqwest::RequestBuilder {
        let req = self.http.get(url);
        match self.read_proof(job) {
            Some(proof) => req.header(reqwest::header::AUTHORIZATION, proof),
            None => req,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The HTTP client (shared connection pool).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health> {
        let r = self.get("/health").await?;
        json(r, "health").await
    }

    /// `GET /v1/workers[?model=id]`.
    pub async fn workers(&self, model: Option<u32>) -> Result<WorkerList> {
        let path = match model {
            Some(m) => format!("/v1/workers?model={m}"),
            None => "/v1/workers".to_owned(),
        };
        let r = self.get(&path).await?;
        json(r, "workers").await
    }

    /// `POST /v1/jobs/{escrow}/{job_id}/input`, retried on `job_not_found` (the relayer learns
    /// of the job from the chain, a moment after OpenJob confirms) until `wait` has passed.
    pub async fn submit_input(
        &self,
        job: &JobRef,
        sealed_input: &[u8],
        candidates: &[String],
        wait: Duration,
    ) -> Result<SubmitAccepted> {
        let body = SubmitInput {
            version: PROTOCOL_VERSION,
            sealed_input: sealed_input.to_vec(),
            candidates: candidates.to_vec(),
            reader: match &self.reads {
                Some(ReadAuth::Reader(r)) => Some(reader_public_hex(r)),
                _ => None,
            },
        };
        let url = format!("{}/v1/jobs/{}/{}/input", self.base, job.escrow, job.job_id);
        let until = tokio::time::Instant::now() + wait;
        let mut pause = SUBMIT_RETRY_START;
        let mut attempts = 0u32;
        // Set once a request may have reached the relayer without its answer reaching us: a
        // later `already_submitted` then means our own earlier submission was taken.
        let mut maybe_delivered = false;
        loop {
            attempts += 1;
            let sent = self
                .http
                .post(&url)
                .timeout(REQUEST_TIMEOUT)
                .json(&body)
                .send()
                .await;
            let answer = match sent {
                Ok(r) => json::<SubmitAccepted>(r, "submit input").await,
                Err(e) => Err(unreachable(e)),
            };
            let retry = tokio::time::Instant::now() + pause < until;
            match answer {
                Err(ClientError::Relayer {
                    status: 404, code, ..
                }) if code == "job_not_found" && retry => {
                    debug!(target: "sdk::client", %job, attempts, "relayer has not seen the job yet; retrying");
                }
                // Lost on the way or failed behind a proxy: try again. The same sealed input
                // twice is harmless, the relayer stores it once.
                Err(
                    e @ (ClientError::RelayerUnreachable(_)
                    | ClientError::Relayer {
                        status: 502..=504, ..
                    }),
                ) if retry => {
                    debug!(target: "sdk::client", %job, attempts, error = %e, "submission failed; retrying");
                    maybe_delivered = true;
                }
                Err(ClientError::Relayer {
                    status: 409, code, ..
                }) if code == "already_submitted" && maybe_delivered => {
                    return Ok(SubmitAccepted {
                        job: job.clone(),
                        state: "input_received".into(),
                        stream: format!("/v1/jobs/{}/{}/stream", job.escrow, job.job_id),
                    });
                }
                other => return other,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(SUBMIT_RETRY_MAX);
        }
    }

    /// `GET /v1/jobs/{escrow}/{job_id}`: where the relayer says a job stands.
    pub async fn job_status(&self, job: &JobRef) -> Result<JobStatus> {
        let url = format!("{}/v1/jobs/{}/{}", self.base, job.escrow, job.job_id);
        let r = self
            .read(url, job)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)?;
        json(r, "job status").await
    }

    /// `GET /v1/jobs/{escrow}/{job_id}/stream`: the open event stream.
    pub async fn stream(&self, job: &JobRef) -> Result<EventStream> {
        let url = format!("{}/v1/jobs/{}/{}/stream", self.base, job.escrow, job.job_id);
        let r = self
            .read(url, job)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(unreachable)?;
        if !r.status().is_success() {
            return Err(api_error(r).await);
        }
        Ok(EventStream {
            response: r,
            parser: SseParser::new(),
            ready: std::collections::VecDeque::new(),
            ended: false,
        })
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response> {
        self.http
            .get(format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)
    }
}

/// A transport failure: the relayer is unreachable (or stopped answering).
pub(crate) fn unreachable(e: reqwest::Error) -> ClientError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    ClientError::RelayerUnreachable(format!("{what}: {e}"))
}

/// Maps an error answer to [`ClientError::Relayer`], keeping the API's code when the body is an
/// [`ApiError`].
pub(crate) async fn api_error(r: reqwest::Response) -> ClientError {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    api_error_from(status, &text)
}

/// The error for an answer with `status` and body `text`.
pub(crate) fn api_error_from(status: StatusCode, text: &str) -> ClientError {
    match serde_json::from_str::<ApiError>(text) {
        Ok(e) => ClientError::Relayer {
            status: status.as_u16(),
            code: serde_json::to_value(e.error)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".to_owned()),
            message: e.message,
        },
        Err(_) => ClientError::Relayer {
            status: status.as_u16(),
            code: "unknown".to_owned(),
            message: text.chars().take(200).collect(),
        },
    }
}

async fn json<T: serde::de::DeserializeOwned>(r: reqwest::Response, what: &str) -> Result<T> {
    let status = r.status();
    let text = r.text().await.map_err(unreachable)?;
    // A degraded relayer answers /health with 503 and still a Health body.
    let degraded_health = what == "health" && status == StatusCode::SERVICE_UNAVAILABLE;
    if !(status.is_success() || degraded_health) {
        return Err(api_error_from(status, &text));
    }
    serde_json::from_str(&text).map_err(|e| {
        ClientError::BadResponse(format!(
            "relayer {what} answer is not the expected JSON: {e}"
        ))
    })
}

/// The events of one job, as they arrive.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    parser: SseParser,
    ready: std::collections::VecDeque<SseEvent>,
    ended: bool,
}

impl EventStream {
    /// The next event; `Ok(None)` when the relayer closed the stream cleanly between events.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>> {
        loop {
            if let Some(raw) = self.ready.pop_front() {
                return decode_event(&raw).map(Some);
            }
            if self.ended {
                return Ok(None);
            }
            match self.response.chunk().await.map_err(unreachable)? {
                Some(bytes) => {
                    let evs = self
                        .parser
                        .feed(&bytes)
                        .map_err(|e| ClientError::BadResponse(format!("event stream: {e}")))?;
                    self.ready.extend(evs);
                }
                None => {
                    self.ended = true;
                    if self.parser.has_partial() {
                        // A connection that dropped, not a relayer that lied.
                        return Err(ClientError::RelayerUnreachable(
                            "event stream cut in the middle of an event".into(),
                        ));
                    }
                }
            }
        }
    }
}

/// A [`StreamEvent`] from its SSE form; the event name must match the data's `type`.
pub(crate) fn decode_event(raw: &SseEvent) -> Result<StreamEvent> {
    let ev: StreamEvent = serde_json::from_str(&raw.data).map_err(|e| {
        ClientError::BadResponse(format!("{} event is not a stream event: {e}", raw.event))
    })?;
    if raw.event != "message" && raw.event != ev.name() {
        return Err(ClientError::BadResponse(format!(
            "event named {:?} carries a {} event",
            raw.event,
            ev.name()
        )));
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_their_code() {
        let e = api_error_from(
            StatusCode::NOT_FOUND,
            r#"{"error":"job_not_found","message":"no such job"}"#,
        );
        match e {
            ClientError::Relayer {
                status,
                code,
                message,
            } => assert_eq!(
                (status, code.as_str(), message.as_str()),
                (404, "job_not_found", "no such job")
            ),
            other => panic!("{other:?}"),
        }
        match api_error_from(StatusCode::BAD_GATEWAY, "<html>proxy error</html>") {
            ClientError::Relayer { status, code, .. } => {
                assert_eq!((status, code.as_str()), (502, "unknown"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_are_decoded_and_names_checked() {
        let ok = SseEvent {
            event: "failed".into(),
            data: r#"{"type":"failed","reason":"no worker"}"#.into(),
        };
        assert_eq!(
            decode_event(&ok).unwrap(),
            StreamEvent::Failed {
                reason: "no worker".into()
            }
        );
        let mismatch = SseEvent {
            event: "receipt".into(),
            ..ok.clone()
        };
        assert!(matches!(
            decode_event(&mismatch),
            Err(ClientError::BadResponse(_))
        ));
        let garbage = SseEvent {
            event: "chunk".into(),
            data: "{".into(),
        };
        assert!(matches!(
            decode_event(&garbage),
            Err(ClientError::BadResponse(_))
        ));
    }

    #[test]
    fn urls_must_be_http() {
        assert!(matches!(
            RelayerApi::new("ws://x"),
            Err(ClientError::RelayerUnreachable(_))
        ));
        assert_eq!(
            RelayerApi::new("http://h:1/").unwrap().base_url(),
            "http://h:1"
        );
    }
}
