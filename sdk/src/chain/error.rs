//! Errors of chain access.

use std::time::Duration;

/// Why a chain call failed. `call` always names the endpoint (`"v2/runGetMethod"`, ...).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node answered with an HTTP error that is not worth retrying (4xx other than 429), or a
    /// retryable one after the retries ran out.
    #[error("{call}: HTTP {status}: {message}")]
    Http {
        /// Endpoint.
        call: &'static str,
        /// HTTP status.
        status: u16,
        /// Error text from the node.
        message: String,
    },
    /// The connection failed (refused, reset, closed before a response).
    #[error("{call}: connection failed: {source}")]
    Transport {
        /// Endpoint.
        call: &'static str,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// No response within the configured timeout.
    #[error("{call}: no response within {after:?}")]
    Timeout {
        /// Endpoint.
        call: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// Every attempt failed with a transient error; `last` is the final one.
    #[error("{call}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Endpoint.
        call: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: Box<ChainError>,
    },
    /// The node refused an external message: the contract did not accept it (bad signature,
    /// stale seqno, expired). The message is certainly not on chain.
    #[error("{call}: external message rejected (exit code {exit_code:?}): {message}")]
    Rejected {
        /// Endpoint.
        call: &'static str,
        /// TVM exit code when the node reports one.
        exit_code: Option<i32>,
        /// Node's message.
        message: String,
    },
    /// A get-method ended with a non-zero exit code.
    #[error("get-method {method} on {address} failed with exit code {exit_code}")]
    GetMethodFailed {
        /// Method name.
        method: String,
        /// Contract address.
        address: String,
        /// TVM exit code (-13 or 11 when the account has no code or no such method).
        exit_code: i32,
    },
    /// The response did not have the expected shape.
    #[error("{call}: unexpected response: {reason}")]
    Decode {
        /// Endpoint.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A get-method result had fewer entries or other types than the caller expects.
    #[error("get-method {method}: {reason}")]
    Stack {
        /// Method name.
        method: String,
        /// What was wrong.
        reason: String,
    },
    /// The configured base URL is not usable.
    #[error("invalid API URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl ChainError {
    /// Whether another attempt of the same call may succeed (429, 5xx, connection, timeout).
    pub fn is_transient(&self) -> bool {
        match self {
            ChainError::Http { status, .. } => *status == 429 || *status >= 500,
            ChainError::Transport { .. } | ChainError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// Result of chain calls.
pub type ChainResult<T> = Result<T, ChainError>;
