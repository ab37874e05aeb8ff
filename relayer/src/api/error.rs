//! API errors: every failure answers a status code and an [`ApiError`] JSON body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cocoon_sdk::relay::client::{ApiError, ApiErrorCode};

use crate::error::Error;

/// An API failure: status + machine-readable code + message.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// Body.
    pub body: ApiError,
}

impl ApiFailure {
    /// A failure with the status that belongs to `code`.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ApiErrorCode::BadRequest
            | ApiErrorCode::BadParameter
            | ApiErrorCode::UnsupportedVersion => StatusCode::BAD_REQUEST,
            ApiErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorCode::JobNotFound => StatusCode::NOT_FOUND,
            ApiErrorCode::NotOpen | ApiErrorCode::AlreadySubmitted => StatusCode::CONFLICT,
            ApiErrorCode::CommitmentMismatch | ApiErrorCode::NoCandidates => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ApiErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            status,
            body: ApiError {
                error: code,
                message: message.into(),
            },
        }
    }

    /// The snake_case name of the code (metrics label).
    pub fn code_name(&self) -> String {
        serde_json::to_value(self.body.error)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl From<Error> for ApiFailure {
    fn from(e: Error) -> Self {
        match e {
            Error::JobNotFound { job } => ApiFailure::new(
                ApiErrorCode::JobNotFound,
                format!("job {job} has not been seen opened on-chain"),
            ),
            Error::AlreadySubmitted { job } => ApiFailure::new(
                ApiErrorCode::AlreadySubmitted,
                format!("input for job {job} was already submitted"),
            ),
            Error::NotOpen { job, state } => ApiFailure::new(
                ApiErrorCode::NotOpen,
                format!("job {job} is {state}, not open"),
            ),
            Error::InvalidAddress { address, detail } => ApiFailure::new(
                ApiErrorCode::BadParameter,
                format!("invalid address {address:?}: {detail}"),
            ),
            other => {
                tracing::error!(target: "relayer::api", error = %other, "internal error");
                ApiFailure::new(ApiErrorCode::Internal, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110: a 401 names the schemes that would be accepted.
            let schemes = format!("{}, Bearer", cocoon_sdk::relay::read_auth::READ_SCHEME);
            return (
                self.status,
                [(axum::http::header::WWW_AUTHENTICATE, schemes)],
                Json(self.body),
            )
                .into_response();
        }
        (self.status, Json(self.body)).into_response()
    }
}

/// Unknown routes answer a JSON 404 too.
pub async fn not_found() -> ApiFailure {
    ApiFailure::new(ApiErrorCode::BadParameter, "no such route").with_status(StatusCode::NOT_FOUND)
}

impl ApiFailure {
    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

/// The listener's refusals (body cap, slow body, rate limit) as API errors.
pub fn render_refusal() -> cocoon_http::Render {
    std::sync::Arc::new(|r: &cocoon_http::Refusal| {
        let code = match r {
            cocoon_http::Refusal::TooLarge { .. } => ApiErrorCode::TooLarge,
            cocoon_http::Refusal::BodyTimeout { .. } => ApiErrorCode::RequestTimeout,
            cocoon_http::Refusal::BodyUnreadable(_) => ApiErrorCode::BadRequest,
            cocoon_http::Refusal::RateLimited { .. } => ApiErrorCode::RateLimited,
        };
        ApiFailure::new(code, r.message()).into_response()
    })
}
