//! Who may read what: the job list is the operator's; a job's status and stream are its owner's
//! (a read proof signed with the reader key named with its input, see
//! [`cocoon_sdk::relay::read_auth`]) or the operator's.
//!
//! A stranger learns nothing, not even whether a job exists: a request without a valid proof is
//! 401 whatever the job, and a valid proof by a key that is not the job's reader is answered
//! exactly like a job the relayer has never seen (404).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::ApiErrorCode;
use cocoon_sdk::relay::read_auth::{READ_SCHEME, ReadProof};
use sha2::{Digest, Sha256};
use tracing::debug;

use super::ApiFailure;
use crate::state::Shared;

/// Whether `headers` carry the operator token (compared in constant time over digests).
pub(super) fn is_operator(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(want) = shared.config.operator_token.as_deref() else {
        return false;
    };
    let Some(got) = authorization(headers)
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    let (want, got): ([u8; 32], [u8; 32]) = (
        Sha256::digest(want.as_bytes()).into(),
        Sha256::digest(got.as_bytes()).into(),
    );
    want.iter()
        .zip(got.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
}

fn unauthorized(why: impl std::fmt::Display) -> ApiFailure {
    ApiFailure::new(
        ApiErrorCode::Unauthorized,
        format!(
            "{why}: a job is readable with a {READ_SCHEME} proof signed by the reader key named \
             with its input, or with the operator's bearer token"
        ),
    )
}

/// Admits a read of `job` by its owner or the operator; refuses everyone else.
pub(super) async fn authorize_read(
    shared: &Shared,
    headers: &HeaderMap,
    job: &JobRef,
) -> Result<(), ApiFailure> {
    if is_operator(shared, headers) {
        return Ok(());
    }
    let proof = match authorization(headers).map(ReadProof::parse) {
        Some(Ok(Some(proof))) => proof,
        Some(Err(e)) => return Err(unauthorized(e)),
        Some(Ok(None)) | None => return Err(unauthorized("no read proof")),
    };
    proof
        .verify(job, cocoon_sdk::clock::unix_now())
        .map_err(unauthorized)?;
    let reader = shared.store.reader_key(job).await?;
    if reader.as_deref() == Some(hex::encode(proof.key).as_str()) {
        return Ok(());
    }
    debug!(target: "relayer::api", %job, "read proof by a key that is not the job's reader");
    Err(crate::Error::JobNotFound {
        job: job.to_string(),
    }
    .into())
}

/// Checks the reader key a submission names: 32 bytes of lowercase hex that are an ed25519
/// point (a key no proof can ever match would lock the owner out).
pub(super) fn parse_reader(reader: Option<&str>) -> Result<Option<String>, ApiFailure> {
    let Some(r) = reader else { return Ok(None) };
    let mut key = [0u8; 32];
    hex::decode_to_slice(r, &mut key)
        .ok()
        .and_then(|()| ed25519_dalek::VerifyingKey::from_bytes(&key).ok())
        .ok_or_else(|| {
            ApiFailure::new(
                ApiErrorCode::BadRequest,
                "reader must be an ed25519 public key, 64 hex digits",
            )
        })?;
    Ok(Some(hex::encode(key)))
}
