//! The client API's error: one variant per way a job can fail, each saying why.

use crate::chain::ChainError;
use crate::contracts::ContractError;
use crate::job::JobError;
use crate::receipt::ReceiptError;
use crate::relay::JobRef;
use crate::seal::SealError;
use crate::wallet::WalletError;

/// Result with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No model with this name or id is known to this sdk and registered in Root with the same
    /// registry hash.
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// No worker can take the job: none serves the model, none has free capacity, or none passes
    /// the policy and price limits (`reason` says which).
    #[error("no worker for model {model}: {reason}")]
    NoWorker {
        /// Model asked for.
        model: String,
        /// Which condition left no candidate.
        reason: String,
    },
    /// A worker's attestation did not verify (evidence, policy, binding or on-chain record).
    #[error("attestation of worker {worker} rejected: {reason}")]
    AttestationRejected {
        /// Worker address (raw form).
        worker: String,
        /// What failed.
        reason: String,
    },
    /// The Escrow's free balance does not cover the job's max cost.
    #[error("escrow balance too low: the job needs {needed} nanoTON, {free} nanoTON free")]
    InsufficientBalance {
        /// Max cost of the job, nanoTON.
        needed: u128,
        /// Free balance of the Escrow, nanoTON.
        free: u128,
    },
    /// The relayer did not answer (connection refused, timeout, DNS).
    #[error("relayer unreachable: {0}")]
    RelayerUnreachable(String),
    /// The relayer answered with an error.
    #[error("relayer answered {status} {code}: {message}")]
    Relayer {
        /// HTTP status.
        status: u16,
        /// Machine-readable code (`job_not_found`, `commitment_mismatch`, ...; `unknown` when the
        /// body was not an API error).
        code: String,
        /// Detail.
        message: String,
    },
    /// The job's deadline passed without an answer; the funds come back with
    /// [`super::Client::expire`] after the Escrow's grace period.
    #[error("job {job} expired without an answer")]
    JobExpired {
        /// The job.
        job: JobRef,
    },
    /// The relayer reported that no worker could answer the job.
    #[error("job {job} failed: {reason}")]
    JobFailed {
        /// The job.
        job: JobRef,
        /// The relayer's reason.
        reason: String,
    },
    /// A worker refused the job for good (the prompt exceeds the context, the input does not
    /// open, the request is invalid): it ended at once, uncharged, and no retry can help.
    #[error("job {job} refused ({code}): {reason}")]
    JobRefused {
        /// The job.
        job: JobRef,
        /// Why, as a code.
        code: crate::relay::worker::JobFailure,
        /// The worker's detail.
        reason: String,
    },
    /// Waiting for something (settlement, chain) took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The relayer's stream or answer is not what the protocol allows (a chunk that does not
    /// open, a truncated stream, events out of order, an unknown worker).
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The receipt does not check against the job, the worker's on-chain record or the answer.
    #[error("receipt refused: {0}")]
    ReceiptInvalid(#[from] ReceiptError),
    /// The job request is malformed or does not fit the model.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] JobError),
    /// A chain call failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A contract operation failed.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// Sealing the input or opening the answer failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A wallet operation failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

impl ClientError {
    /// A short machine-readable name of the variant (for logs, metrics and API mappings).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownModel(_) => "unknown_model",
            Self::NoWorker { .. } => "no_worker",
            Self::AttestationRejected { .. } => "attestation_rejected",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::RelayerUnreachable(_) => "relayer_unreachable",
            Self::Relayer { .. } => "relayer_error",
            Self::JobExpired { .. } => "job_expired",
            Self::JobFailed { .. } => "job_failed",
            Self::JobRefused { .. } => "job_refused",
            Self::Timeout(_) => "timeout",
            Self::BadResponse(_) => "bad_response",
            Self::ReceiptInvalid(_) => "receipt_invalid",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Chain(_) => "chain",
            Self::Contract(_) => "contract",
            Self::Seal(_) => "seal",
            Self::Wallet(_) => "wallet",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_each_variant_and_wrap_into_the_sdk_error() {
        let job = JobRef::new("0:00", 1);
        let all = [
            ClientError::UnknownModel("x".into()),
            ClientError::NoWorker {
                model: "m".into(),
                reason: "r".into(),
            },
            ClientError::AttestationRejected {
                worker: "w".into(),
                reason: "r".into(),
            },
            ClientError::InsufficientBalance { needed: 2, free: 1 },
            ClientError::RelayerUnreachable("down".into()),
            ClientError::Relayer {
                status: 404,
                code: "job_not_found".into(),
                message: "m".into(),
            },
            ClientError::JobExpired { job: job.clone() },
            ClientError::JobFailed {
                job: job.clone(),
                reason: "r".into(),
            },
            ClientError::JobRefused {
                job,
                code: crate::relay::worker::JobFailure::ContextLengthExceeded,
                reason: "r".into(),
            },
            ClientError::Timeout("t".into()),
            ClientError::BadResponse("b".into()),
            ClientError::ReceiptInvalid(ReceiptError::SignatureInvalid),
            ClientError::InvalidRequest(JobError::Invalid("i".into())),
            ClientError::Seal(SealError::StreamTruncated),
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(ClientError::code).collect();
        assert_eq!(codes.len(), all.len());
        let e = ClientError::InsufficientBalance {
            needed: 2_000,
            free: 1_000,
        };
        assert_eq!(
            e.to_string(),
            "escrow balance too low: the job needs 2000 nanoTON, 1000 nanoTON free"
        );
        let top: crate::Error = e.into();
        assert!(matches!(
            top,
            crate::Error::Client(ClientError::InsufficientBalance { .. })
        ));
    }
}
