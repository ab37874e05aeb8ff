//! `POST /v1/jobs/{escrow}/{job_id}/input`, `GET /v1/jobs/{escrow}/{job_id}` (the owner's and
//! the operator's) and `GET /v1/jobs` (the operator's).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cocoon_sdk::relay::client::{ApiErrorCode, JobStatus, SubmitAccepted, SubmitInput};
use cocoon_sdk::relay::{JobRef, PROTOCOL_VERSION};
use sha2::{Digest, Sha256};
use tracing::info;

use super::ApiFailure;
use crate::state::Shared;
use crate::store::{JobState, SealedInput};

/// Parses the `{escrow}/{job_id}` path parameters.
pub(super) fn job_ref(escrow: &str, job_id: &str) -> Result<JobRef, ApiFailure> {
    let escrow = crate::address::normalize(escrow)?;
    let job_id = job_id.parse::<u64>().map_err(|_| {
        ApiFailure::new(
            ApiErrorCode::BadParameter,
            format!("job id {:?} is not a u64", truncate(job_id)),
        )
    })?;
    Ok(JobRef::new(escrow, job_id))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Accepts the sealed input of an open job. Validates everything before storing anything.
pub async fn submit_input(
    State(shared): State<Arc<Shared>>,
    Path((escrow, job_id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SubmitAccepted>), ApiFailure> {
    let result = accept(&shared, &escrow, &job_id, body).await;
    if let Err(f) = &result {
        shared.metrics.reject_input(&f.code_name());
    }
    result
}

/// The body as a `SubmitInput` of our protocol version, with a sealed input of an allowed size.
fn parse_input(
    shared: &Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<SubmitInput, ApiFailure> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiFailure::new(
                ApiErrorCode::TooLarge,
                format!("body larger than {} bytes", shared.config.max_body_bytes()),
            )
        } else {
            ApiFailure::new(ApiErrorCode::BadRequest, e.body_text())
        }
    })?;
    let req: SubmitInput = serde_json::from_slice(&body).map_err(|e| {
        ApiFailure::new(
            ApiErrorCode::BadRequest,
            format!("body is not a SubmitInput: {e}"),
        )
    })?;
    if req.version != PROTOCOL_VERSION {
        return Err(ApiFailure::new(
            ApiErrorCode::UnsupportedVersion,
            format!(
                "relayer speaks version {PROTOCOL_VERSION}, client {}",
                req.version
            ),
        ));
    }
    if req.sealed_input.is_empty() {
        return Err(ApiFailure::new(
            ApiErrorCode::BadRequest,
            "sealed_input is empty",
        ));
    }
    if req.sealed_input.len() > shared.config.max_input_bytes {
        return Err(ApiFailure::new(
            ApiErrorCode::TooLarge,
            format!(
                "sealed input of {} bytes exceeds {}",
                req.sealed_input.len(),
                shared.config.max_input_bytes
            ),
        ));
    }
    Ok(req)
}

async fn accept(
    shared: &Arc<Shared>,
    escrow: &str,
    job_id: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SubmitAccepted>), ApiFailure> {
    let job = job_ref(escrow, job_id)?;
    let req = parse_input(shared, body)?;
    let record = shared
        .store
        .job(&job)
        .await?
        .ok_or_else(|| crate::Error::JobNotFound {
            job: job.to_string(),
        })?;
    if record.state != JobState::Opened {
        return Err(if shared.store.sealed_input(&job).await?.is_some() {
            crate::Error::AlreadySubmitted {
                job: job.to_string(),
            }
        } else {
            crate::Error::NotOpen {
                job: job.to_string(),
                state: record.state,
            }
        }
        .into());
    }
    let commitment: [u8; 32] = Sha256::digest(&req.sealed_input).into();
    if commitment != record.opened.input_commitment {
        return Err(ApiFailure::new(
            ApiErrorCode::CommitmentMismatch,
            "sha256 of sealed_input differs from the job's on-chain input commitment",
        ));
    }
    let candidates = req
        .candidates
        .iter()
        .map(|c| crate::address::normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    if record.opened.route_worker.is_none() && candidates.is_empty() {
        return Err(ApiFailure::new(
            ApiErrorCode::NoCandidates,
            "name the workers the input is sealed to",
        ));
    }
    let bytes = req.sealed_input.len();
    let stored = shared
        .store
        .submit_input(
            &job,
            &SealedInput {
                ciphertext: req.sealed_input,
                candidates,
                reader: super::access::parse_reader(req.reader.as_deref())?,
            },
        )
        .await?;
    info!(target: "relayer::api", %job, bytes, "sealed input accepted");
    shared.dispatcher.start(job.clone());
    let stream = format!("/v1/jobs/{}/{}/stream", job.escrow, job.job_id);
    Ok((
        StatusCode::ACCEPTED,
        Json(SubmitAccepted {
            job,
            state: stored.state.to_string(),
            stream,
        }),
    ))
}

/// Where a job stands and why: for its owner and the operator only.
pub async fn status(
    State(shared): State<Arc<Shared>>,
    Path((escrow, job_id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<JobStatus>, ApiFailure> {
    let job = job_ref(&escrow, &job_id)?;
    super::access::authorize_read(&shared, &headers, &job).await?;
    let r = shared
        .store
        .job(&job)
        .await?
        .ok_or_else(|| crate::Error::JobNotFound {
            job: job.to_string(),
        })?;
    Ok(Json(JobStatus {
        job,
        state: r.state.to_string(),
        reason: r.reason,
        worker: r.worker,
        attempts: r.attempts,
        deadline: r.opened.deadline,
    }))
}

/// Most jobs one `GET /v1/jobs` returns.
pub const MAX_LIST: u32 = 1000;

/// `GET /v1/jobs` query: `state` (one state name) and `limit` (1..=[`MAX_LIST`]).
#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/jobs` answer: the relayer's books, each job with its state and why.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct JobList {
    /// Jobs, oldest first.
    pub jobs: Vec<JobStatus>,
}

/// Lists jobs for reconciliation: every job ends settled, expired or failed, with why. It names
/// every client's jobs, their workers and failures, so only the operator may read it.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobList>, ApiFailure> {
    if !super::access::is_operator(&shared, &headers) {
        return Err(ApiFailure::new(
            ApiErrorCode::Forbidden,
            "the job list is the operator's: send Authorization: Bearer <operator token>",
        ));
    }
    let axum::extract::Query(q) =
        query.map_err(|e| ApiFailure::new(ApiErrorCode::BadParameter, e.body_text()))?;
    let state = match q.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiFailure::new(
                ApiErrorCode::BadParameter,
                format!("unknown state {:?}", truncate(s)),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(MAX_LIST).clamp(1, MAX_LIST);
    let jobs = shared
        .store
        .list_jobs(state, limit)
        .await?
        .into_iter()
        .map(|r| JobStatus {
            job: r.opened.job,
            state: r.state.to_string(),
            reason: r.reason,
            worker: r.worker,
            attempts: r.attempts,
            deadline: r.opened.deadline,
        })
        .collect();
    Ok(Json(JobList { jobs }))
}
