//! Gateway errors, answered in the OpenAI error format
//! `{"error":{"message","type","param","code"}}` with the status code an OpenAI client expects.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a gateway request failed. Every variant maps to one HTTP status ([`Self::status`]), one
/// OpenAI error `type` and a stable machine-readable `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The request body or a parameter is invalid (400).
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, for a human.
        message: String,
        /// The offending parameter, when there is one.
        param: Option<String>,
    },
    /// The prompt does not fit the model's context window (400, OpenAI's
    /// `context_length_exceeded`); the job ended at once and cost nothing.
    #[error("this model's maximum context length was exceeded: {0}")]
    ContextLengthExceeded(String),
    /// The request body is larger than the gateway accepts (413).
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Most bytes accepted.
        limit: usize,
    },
    /// The request body did not arrive in time (408).
    #[error("request body not received within {0} ms")]
    RequestTimeout(u64),
    /// This client sent too many requests (429, with `Retry-After`).
    #[error("too many requests from this client; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until it may try again.
        retry_after_secs: u64,
    },
    /// No `Authorization: Bearer` key was sent, but the gateway requires one (401).
    #[error("missing API key: send `Authorization: Bearer <key>`")]
    MissingApiKey,
    /// The key sent does not match the gateway's key (401).
    #[error("incorrect API key")]
    InvalidApiKey,
    /// The model is not one the network knows (404).
    #[error("the model `{0}` does not exist on this network")]
    UnknownModel(String),
    /// No such route or object (404).
    #[error("{0}")]
    NotFound(String),
    /// The escrow's free balance cannot cover the job's maximum cost (402).
    #[error(
        "escrow balance too low: the job may cost up to {needed} nanoTON but only {free} nanoTON is free; deposit more or lower max_tokens"
    )]
    InsufficientBalance {
        /// Maximum cost of the job, nanoTON.
        needed: u128,
        /// Free escrow balance, nanoTON.
        free: u128,
    },
    /// No worker that meets the gateway's policy has capacity for the model right now (429).
    #[error("no worker available for `{model}`: {reason}")]
    NoWorker {
        /// The model asked for.
        model: String,
        /// Why none qualifies (none registered, none attested, policy, capacity).
        reason: String,
    },
    /// The worker's attestation was refused by the gateway's policy (502).
    #[error("worker attestation rejected: {0}")]
    AttestationRejected(String),
    /// The relayer, the worker or the receipt failed (502).
    #[error("upstream failure ({code}): {message}")]
    Upstream {
        /// Stable code: `relayer_unreachable`, `relayer_error`, `worker_failed`,
        /// `worker_refused`, `bad_response`, `receipt_invalid`.
        code: &'static str,
        /// Details.
        message: String,
    },
    /// The job did not finish in time, or expired on-chain (504).
    #[error("timed out: {0}")]
    Timeout(String),
    /// Anything else (chain access, wallet); details go to the log, not to the caller (500).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with [`GatewayError`].
pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

impl GatewayError {
    /// An invalid-request error about `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::ContextLengthExceeded(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MissingApiKey | Self::InvalidApiKey => StatusCode::UNAUTHORIZED,
            Self::UnknownModel(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InsufficientBalance { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::NoWorker { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::AttestationRejected(_) | Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. }
            | Self::ContextLengthExceeded(_)
            | Self::PayloadTooLarge { .. }
            | Self::RequestTimeout(_)
            | Self::UnknownModel(_)
            | Self::NotFound(_) => "invalid_request_error",
            Self::MissingApiKey | Self::InvalidApiKey => "authentication_error",
            Self::InsufficientBalance { .. } => "insufficient_quota",
            Self::NoWorker { .. } | Self::RateLimited { .. } => "rate_limit_error",
            Self::AttestationRejected(_) | Self::Upstream { .. } | Self::Timeout(_) => {
                "upstream_error"
            }
            Self::Internal(_) => "server_error",
        }
    }

    /// The stable machine-readable `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::ContextLengthExceeded(_) => "context_length_exceeded",
            Self::PayloadTooLarge { .. } => "request_too_large",
            Self::RequestTimeout(_) => "request_timeout",
            Self::RateLimited { .. } => "rate_limit_exceeded",
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::UnknownModel(_) => "model_not_found",
            Self::NotFound(_) => "not_found",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::NoWorker { .. } => "no_worker_available",
            Self::AttestationRejected(_) => "attestation_rejected",
            Self::Upstream { code, .. } => code,
            Self::Timeout(_) => "timeout",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The OpenAI `param`.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { param, .. } => param.as_deref(),
            Self::UnknownModel(_) => Some("model"),
            Self::ContextLengthExceeded(_) => Some("messages"),
            _ => None,
        }
    }

    /// The OpenAI error body.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            // Internal details (chain URLs, wallet state) stay in the log.
            Self::Internal(_) => "internal error in the Cocoon gateway".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                message,
                kind: self.kind(),
                param: self.param().map(str::to_owned),
                code: self.code(),
            },
        }
    }
}

/// `{"error": {...}}`, the OpenAI error envelope.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The fields of an OpenAI error.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail {
    /// For a human.
    pub message: String,
    /// OpenAI error type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The offending parameter.
    pub param: Option<String>,
    /// Stable code.
    pub code: &'static str,
}

impl GatewayError {
    /// The listener's refusals (body cap, slow body, rate limit) as gateway errors.
    pub fn render_refusal() -> cocoon_http::Render {
        std::sync::Arc::new(|r: &cocoon_http::Refusal| {
            match r {
                cocoon_http::Refusal::TooLarge { limit } => {
                    GatewayError::PayloadTooLarge { limit: *limit }
                }
                cocoon_http::Refusal::BodyTimeout { timeout } => GatewayError::RequestTimeout(
                    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                ),
                cocoon_http::Refusal::BodyUnreadable(why) => GatewayError::InvalidRequest {
                    message: format!("request body unreadable: {why}"),
                    param: None,
                },
                cocoon_http::Refusal::RateLimited { retry_after_secs } => {
                    GatewayError::RateLimited {
                        retry_after_secs: *retry_after_secs,
                    }
                }
            }
            .into_response()
        })
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(target: "gateway::http", %status, code = self.code(), error = %self, "request failed");
        } else {
            tracing::debug!(target: "gateway::http", %status, code = self.code(), error = %self, "request refused");
        }
        (status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status_type_and_code() {
        let cases = [
            (
                GatewayError::invalid("temperature", "too hot"),
                400,
                "invalid_request_error",
                "invalid_request",
            ),
            (
                GatewayError::PayloadTooLarge { limit: 1 },
                413,
                "invalid_request_error",
                "request_too_large",
            ),
            (
                GatewayError::ContextLengthExceeded("9000 > 8192".into()),
                400,
                "invalid_request_error",
                "context_length_exceeded",
            ),
            (
                GatewayError::RequestTimeout(5),
                408,
                "invalid_request_error",
                "request_timeout",
            ),
            (
                GatewayError::RateLimited {
                    retry_after_secs: 1,
                },
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            (
                GatewayError::MissingApiKey,
                401,
                "authentication_error",
                "missing_api_key",
            ),
            (
                GatewayError::InvalidApiKey,
                401,
                "authentication_error",
                "invalid_api_key",
            ),
            (
                GatewayError::UnknownModel("gpt-4".into()),
                404,
                "invalid_request_error",
                "model_not_found",
            ),
            (
                GatewayError::InsufficientBalance { needed: 2, free: 1 },
                402,
                "insufficient_quota",
                "insufficient_balance",
            ),
            (
                GatewayError::NoWorker {
                    model: "m".into(),
                    reason: "r".into(),
                },
                429,
                "rate_limit_error",
                "no_worker_available",
            ),
            (
                GatewayError::AttestationRejected("x".into()),
                502,
                "upstream_error",
                "attestation_rejected",
            ),
            (
                GatewayError::Upstream {
                    code: "worker_failed",
                    message: "x".into(),
                },
                502,
                "upstream_error",
                "worker_failed",
            ),
            (
                GatewayError::Timeout("x".into()),
                504,
                "upstream_error",
                "timeout",
            ),
            (
                GatewayError::Internal("secret".into()),
                500,
                "server_error",
                "internal_error",
            ),
        ];
        for (e, status, kind, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.kind(), kind, "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    #[test]
    fn body_is_the_openai_envelope_and_hides_internal_details() {
        let v =
            serde_json::to_value(GatewayError::invalid("top_p", "top_p must be in (0, 1]").body())
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "top_p must be in (0, 1]", "type": "invalid_request_error", "param": "top_p", "code": "invalid_request"}})
        );
        let v = serde_json::to_value(
            GatewayError::Internal("wallet seqno 7 at http://x".into()).body(),
        )
        .unwrap();
        assert!(!v.to_string().contains("seqno"), "{v}");
        let v = serde_json::to_value(GatewayError::UnknownModel("gpt-4".into()).body()).unwrap();
        assert_eq!(v["error"]["param"], "model");
        let v = serde_json::to_value(
            GatewayError::InsufficientBalance {
                needed: 20,
                free: 3,
            }
            .body(),
        )
        .unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("20 nanoTON"),
            "{v}"
        );
    }
}
