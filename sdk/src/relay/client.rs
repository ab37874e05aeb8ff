//! The client HTTP API of a relayer.
//!
//! | method | path | body / answer |
//! |---|---|---|
//! | `POST` | `/v1/jobs/{escrow}/{job_id}/input` | [`SubmitInput`] → `202` [`SubmitAccepted`] |
//! | `GET` | `/v1/jobs/{escrow}/{job_id}` | [`JobStatus`] (owner or operator) |
//! | `GET` | `/v1/jobs/{escrow}/{job_id}/stream` | Server-Sent Events, one [`StreamEvent`] each (owner or operator) |
//! | `GET` | `/v1/jobs` | the relayer's job list (operator only) |
//! | `GET` | `/v1/workers?model={id}` | [`WorkerList`] |
//! | `GET` | `/health` | [`Health`] |
//! | `GET` | `/metrics` | Prometheus text format |
//!
//! A job is read by its owner with a read proof ([`super::read_auth`]) signed by the reader key
//! its [`SubmitInput`] named, or by the operator with `Authorization: Bearer <token>`; anyone
//! else gets `401 unauthorized` (no valid proof) or `404 job_not_found` (a proof by another key).
//!
//! Every 4xx/5xx answer has an [`ApiError`] body. In SSE, the event name is the
//! [`StreamEvent`] variant (`status`, `dispatched`, `chunk`, `receipt`, `failed`, `refused`) and
//! the data is the same JSON object as the serde form of the variant (with its `type` field).

use serde::{Deserialize, Serialize};

use super::JobRef;
use super::bytes::{base64, hex32};
use super::worker::JobFailure;

/// Body of `POST /v1/jobs/{escrow}/{job_id}/input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitInput {
    /// Protocol version the client speaks.
    pub version: u16,
    /// The HPKE-sealed input; its sha256 must equal the input commitment of the on-chain job.
    #[serde(with = "base64")]
    pub sealed_input: Vec<u8>,
    /// Worker addresses the input is sealed to, most preferred first. Ignored when the on-chain
    /// job names a worker (then only that one is used).
    #[serde(default)]
    pub candidates: Vec<String>,
    /// The client's reader key (ed25519, hex): only reads signed with it (or the operator's
    /// token) see the job's status and stream; see [`super::read_auth`]. Without one, only the
    /// operator may read the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
}

/// `202 Accepted` answer to a submitted input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitAccepted {
    /// The job.
    pub job: JobRef,
    /// Its state after the submission.
    pub state: String,
    /// Path of its event stream.
    pub stream: String,
}

/// `GET /v1/jobs/{escrow}/{job_id}`: where a job stands and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub job: JobRef,
    /// One of `opened`, `input_received`, `dispatched`, `answered`, `receipt_queued`, `settled`,
    /// `expired`, `failed`.
    pub state: String,
    /// Why it is in that state, when that needs saying (failures, requeues).
    pub reason: Option<String>,
    /// The worker now (or last) working on it.
    pub worker: Option<String>,
    /// Dispatch attempts so far.
    pub attempts: u32,
    /// Unix time of the on-chain deadline.
    pub deadline: u32,
}

/// One event of a job's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The job changed state (e.g. requeued because no worker could take it).
    Status {
        /// New state.
        state: String,
        /// Why, when that needs saying.
        reason: Option<String>,
    },
    /// The job was handed to a worker. A later `dispatched` with a higher attempt means failover:
    /// discard chunks of earlier attempts.
    Dispatched {
        /// Worker address.
        worker: String,
        /// Attempt number.
        attempt: u32,
    },
    /// A sealed output chunk.
    Chunk {
        /// Attempt it belongs to.
        attempt: u32,
        /// 0-based position.
        seq: u32,
        /// Sealed bytes.
        #[serde(with = "base64")]
        data: Vec<u8>,
    },
    /// The signed receipt; the last event of a successful job.
    Receipt {
        /// Worker address.
        worker: String,
        /// Attempt it belongs to.
        attempt: u32,
        /// Number of chunks of that attempt.
        chunks: u32,
        /// BOC of the `SignedReceipt` cell.
        #[serde(with = "base64")]
        receipt: Vec<u8>,
        /// Cost in nanoTON as reported by the worker (the receipt is authoritative).
        cost: u64,
    },
    /// No worker could answer; the job is left to expire on-chain (the client is refunded).
    Failed {
        /// Why.
        reason: String,
    },
    /// A worker refused the job for a reason no worker can get past (the prompt exceeds the
    /// context, the input does not open, the request is invalid): the job ended at once, in one
    /// attempt, uncharged.
    Refused {
        /// Why, as a code ([`JobFailure::is_final`] holds).
        code: JobFailure,
        /// The worker's detail (never plaintext of the job).
        reason: String,
    },
}

impl StreamEvent {
    /// The SSE event name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::Status { .. } => "status",
            StreamEvent::Dispatched { .. } => "dispatched",
            StreamEvent::Chunk { .. } => "chunk",
            StreamEvent::Receipt { .. } => "receipt",
            StreamEvent::Failed { .. } => "failed",
            StreamEvent::Refused { .. } => "refused",
        }
    }

    /// Whether no event follows this one.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            StreamEvent::Receipt { .. } | StreamEvent::Failed { .. } | StreamEvent::Refused { .. }
        )
    }
}

/// `GET /v1/workers?model={id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerList {
    /// Connected, verified workers serving the model, best first (healthy, least loaded, cheapest).
    pub workers: Vec<WorkerInfo>,
}

/// A connected worker as the relayer verified it on-chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Worker contract address.
    pub worker: String,
    /// ed25519 receipt key.
    #[serde(with = "hex32")]
    pub receipt_key: [u8; 32],
    /// X25519 key to seal inputs to.
    #[serde(with = "hex32")]
    pub encryption_key: [u8; 32],
    /// Models served.
    pub models: Vec<u32>,
    /// nanoTON per input token (on-chain).
    pub price_in: u64,
    /// nanoTON per output token (on-chain).
    pub price_out: u64,
    /// Attestation evidence as served by the worker (verify it yourself against the policy).
    #[serde(with = "base64")]
    pub evidence: Vec<u8>,
    /// sha256 of the evidence as recorded on-chain.
    #[serde(with = "hex32")]
    pub evidence_hash: [u8; 32],
    /// TEE kind on-chain (0 simulated, 1 SEV-SNP, 2 TDX).
    pub attestation_kind: u8,
    /// Unix time the attestation expires.
    pub attestation_expires_at: u32,
    /// Jobs running now.
    pub load: u32,
    /// Jobs it can run at once.
    pub capacity: u32,
    /// Heartbeats are on time.
    pub healthy: bool,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// Protocol version.
    pub version: u16,
    /// Authenticated worker sessions.
    pub workers: u32,
    /// The database answered.
    pub store: bool,
    /// The relayer's identity: its wallet address (raw `workchain:hex`) when it runs against a
    /// chain. Clients name this address as the relayer of the jobs they open.
    #[serde(default)]
    pub relayer_id: String,
    /// Whether the chain answered recently (`None`: the relayer runs without a chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<bool>,
    /// Why the chain is counted unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_error: Option<String>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable code.
    pub error: ApiErrorCode,
    /// Human-readable detail.
    pub message: String,
}

/// Machine-readable API error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    /// The body is not the expected JSON (400).
    BadRequest,
    /// A path or query parameter is malformed: address, job id, model id (400).
    BadParameter,
    /// The body is larger than the relayer accepts (413).
    TooLarge,
    /// The relayer has not seen this job opened on-chain (404).
    JobNotFound,
    /// The job is not waiting for its input any more (409).
    NotOpen,
    /// Input was already submitted for this job (409).
    AlreadySubmitted,
    /// sha256 of the sealed input differs from the on-chain input commitment (422).
    CommitmentMismatch,
    /// No candidate worker was named and the job names none (422).
    NoCandidates,
    /// The client speaks another protocol version (400).
    UnsupportedVersion,
    /// The request body did not arrive in time (408).
    RequestTimeout,
    /// Too many requests from this client; retry after the `Retry-After` header's seconds (429).
    RateLimited,
    /// The route needs the operator token, and none (or another) was sent (403).
    Forbidden,
    /// Reading a job needs a read proof of its owner or the operator token, and none valid was
    /// sent (401).
    Unauthorized,
    /// Something failed inside the relayer (500).
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_input_rejects_unknown_fields_and_bad_base64() {
        let ok = r#"{"version":1,"sealed_input":"AAEC","candidates":["0:00"]}"#;
        let v: SubmitInput = serde_json::from_str(ok).unwrap();
        assert_eq!(v.sealed_input, vec![0, 1, 2]);
        assert!(
            serde_json::from_str::<SubmitInput>(r#"{"version":1,"sealed_input":"AAEC","x":1}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<SubmitInput>(r#"{"version":1,"sealed_input":"!!"}"#).is_err()
        );
        assert!(serde_json::from_str::<SubmitInput>(r#"{"version":1}"#).is_err());
    }

    #[test]
    fn stream_events_roundtrip_with_their_names() {
        let events = [
            StreamEvent::Status {
                state: "input_received".into(),
                reason: None,
            },
            StreamEvent::Dispatched {
                worker: "0:01".into(),
                attempt: 1,
            },
            StreamEvent::Chunk {
                attempt: 1,
                seq: 0,
                data: vec![1],
            },
            StreamEvent::Receipt {
                worker: "0:01".into(),
                attempt: 1,
                chunks: 1,
                receipt: vec![2],
                cost: 3,
            },
            StreamEvent::Failed {
                reason: "no worker".into(),
            },
            StreamEvent::Refused {
                code: JobFailure::ContextLengthExceeded,
                reason: "prompt of 9000 tokens".into(),
            },
        ];
        for e in events {
            let s = serde_json::to_string(&e).unwrap();
            assert!(s.starts_with(&format!(r#"{{"type":"{}""#, e.name())), "{s}");
            assert_eq!(serde_json::from_str::<StreamEvent>(&s).unwrap(), e);
        }
    }

    #[test]
    fn error_codes_are_snake_case() {
        let e = ApiError {
            error: ApiErrorCode::CommitmentMismatch,
            message: "m".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":"commitment_mismatch","message":"m"}"#
        );
    }
}
