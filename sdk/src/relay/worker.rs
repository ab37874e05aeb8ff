//! The worker-session protocol: JSON text frames over one WebSocket the worker dials
//! ([`super::WORKER_WS_PATH`]).
//!
//! ```text
//! relayer                                   worker
//!    │──── challenge {nonce, relayer_id} ──────▶│
//!    │◀─── hello {keys, models, evidence, sig} ─│   sig = ed25519(receipt key, auth_payload(..))
//!    │──── welcome {session, heartbeat} ───────▶│   (or error + close)
//!    │◀─── heartbeat {load, capacity} ──────────│   every heartbeat interval
//!    │──── dispatch {job, sealed input} ───────▶│
//!    │◀─── chunk {job, seq, sealed bytes} ──────│   zero or more
//!    │◀─── done {job, signed receipt} ──────────│   or job_failed
//!    │──── cancel {job} ───────────────────────▶│   when the relayer gives up on an attempt
//!    │──── channel_dispatch {ticket, sealed} ──▶│   channel mode (protocol v2, [`super::channel`])
//!    │◀─── channel_chunk {request, seq, bytes} ─│   zero or more
//!    │◀─── channel_done {receipt} ──────────────│   or channel_refused {code}
//!    │──── channel_voucher {channel, voucher} ─▶│   a client's voucher outside a request
//! ```
//!
//! Every job message carries the `attempt` number of the dispatch it answers, so a late answer to
//! an attempt the relayer already abandoned (failover) is recognised and dropped.

use serde::{Deserialize, Serialize};

use super::JobRef;
use super::bytes::{base64, hex32, hex64};
use super::channel::{
    ChannelChunk, ChannelDispatch, ChannelDone, ChannelRefused, ChannelVoucherPush,
};

/// Messages from the relayer to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayMessage {
    /// First frame of every session.
    Challenge(Challenge),
    /// The worker is authenticated and verified on-chain; jobs may follow.
    Welcome(Welcome),
    /// A job for the worker.
    Dispatch(Dispatch),
    /// The relayer abandoned this attempt (timeout, deadline): stop working on it.
    Cancel(Cancel),
    /// A fatal session error; the relayer closes the connection after sending it.
    Error(SessionError),
    /// A channel-mode request for one of the worker's channels.
    ChannelDispatch(ChannelDispatch),
    /// A client's voucher for one of the worker's channels, outside a request.
    ChannelVoucher(ChannelVoucherPush),
}

/// Messages from a worker to the relayer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// Answer to the challenge: who the worker is, signed by its receipt key.
    Hello(Hello),
    /// Liveness and load.
    Heartbeat(Heartbeat),
    /// One sealed output chunk of a job.
    Chunk(Chunk),
    /// The job is finished; carries the signed receipt.
    Done(Done),
    /// The worker could not run the job.
    JobFailed(JobFailed),
    /// One sealed output chunk of a channel request.
    ChannelChunk(ChannelChunk),
    /// A channel request is served; carries the signed channel receipt.
    ChannelDone(ChannelDone),
    /// The worker did not serve a channel request.
    ChannelRefused(ChannelRefused),
}

/// The relayer's challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Protocol version the relayer speaks.
    pub version: u16,
    /// Fresh random nonce; signed back inside [`super::auth::auth_payload`].
    #[serde(with = "hex32")]
    pub nonce: [u8; 32],
    /// The relayer's identity (its on-chain address when it has one), also signed.
    pub relayer_id: String,
}

/// The worker's introduction, authenticated by `signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the worker speaks; must equal the relayer's.
    pub version: u16,
    /// The Worker contract address, raw form `workchain:hex`.
    pub worker: String,
    /// ed25519 receipt key (must equal the one in the Worker contract).
    #[serde(with = "hex32")]
    pub receipt_key: [u8; 32],
    /// X25519 key clients seal inputs to (must equal the one in the Worker contract).
    #[serde(with = "hex32")]
    pub encryption_key: [u8; 32],
    /// Model ids this worker serves now (a subset of those registered on-chain).
    pub models: Vec<u32>,
    /// How many jobs it runs at once.
    pub capacity: u32,
    /// The attestation evidence the worker serves (opaque here; its sha256 must equal the
    /// evidence hash in the Worker contract). The relayer hands it to clients.
    #[serde(with = "base64")]
    pub evidence: Vec<u8>,
    /// ed25519 signature by `receipt_key` over `auth_payload(version, nonce, relayer_id, worker,
    /// receipt_key)`.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

/// Session accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Relayer-local session id (for logs on both sides).
    pub session_id: u64,
    /// The worker should send a heartbeat at least this often; the relayer considers a worker
    /// unhealthy after three missed intervals.
    pub heartbeat_interval_ms: u64,
}

/// Liveness and load report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Jobs running now.
    pub load: u32,
    /// Jobs it can run at once (may change over the session).
    pub capacity: u32,
}

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Which job.
    pub job: JobRef,
    /// Attempt number (1 for the first worker tried, then 2, ...).
    pub attempt: u32,
    /// Model the client asked for.
    pub model_id: u32,
    /// Most the client will pay, nanoTON.
    pub max_cost: u64,
    /// Unix time after which the Escrow refuses settlement (plus its grace period).
    pub deadline: u32,
    /// sha256 of `sealed_input`, as committed on-chain in OpenJob.
    #[serde(with = "hex32")]
    pub input_commitment: [u8; 32],
    /// The HPKE-sealed input, exactly as the client submitted it.
    #[serde(with = "base64")]
    pub sealed_input: Vec<u8>,
}

/// The relayer gave up on an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// Which job.
    pub job: JobRef,
    /// Which attempt.
    pub attempt: u32,
    /// Why, for the worker's logs.
    pub reason: String,
}

/// One sealed output chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Which job.
    pub job: JobRef,
    /// Which attempt.
    pub attempt: u32,
    /// 0-based position in the output stream.
    pub seq: u32,
    /// Sealed bytes (opaque to the relayer).
    #[serde(with = "base64")]
    pub data: Vec<u8>,
}

/// The job finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Which job.
    pub job: JobRef,
    /// Which attempt.
    pub attempt: u32,
    /// Number of chunks sent (so a receiver can tell a truncated stream).
    pub chunks: u32,
    /// The signed receipt: BOC of a `SignedReceipt` cell (contracts/schema.tlb).
    #[serde(with = "base64")]
    pub receipt: Vec<u8>,
    /// The receipt's cost in nanoTON (repeated here so the relayer can batch without parsing).
    pub cost: u64,
}

/// Why a worker could not run a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailed {
    /// Which job.
    pub job: JobRef,
    /// Which attempt.
    pub attempt: u32,
    /// Machine-readable reason.
    pub code: JobFailure,
    /// Human-readable detail (never plaintext of the job).
    pub message: String,
}

/// Machine-readable reasons a worker refuses or aborts a job. Each is either retryable (another
/// worker, or this one later, may succeed: the relayer fails over) or final (no worker can: the
/// relayer ends the job at once, uncharged, and tells the client) — see [`JobFailure::is_final`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFailure {
    /// The worker is at capacity (retryable).
    Busy,
    /// The worker does not serve this model (any more) (retryable).
    UnknownModel,
    /// The input is not sealed to this worker's key; another candidate may open it (retryable).
    NotARecipient,
    /// The sealed input is malformed, bound to another job (a replay) or tampered with (final).
    CannotDecrypt,
    /// The input commitment does not match the sealed input (final).
    BadCommitment,
    /// The opened request is invalid, does not fit the model's kind, or its max cost cannot pay
    /// for it (final).
    BadInput,
    /// The prompt does not fit the model's context window (final).
    ContextLengthExceeded,
    /// This job was already answered: its receipt is signed (final).
    Replayed,
    /// Inference failed (retryable).
    Internal,
}

impl JobFailure {
    /// Whether no worker can succeed where this one refused: the job ends at once.
    pub fn is_final(self) -> bool {
        match self {
            JobFailure::Busy
            | JobFailure::UnknownModel
            | JobFailure::NotARecipient
            | JobFailure::Internal => false,
            JobFailure::CannotDecrypt
            | JobFailure::BadCommitment
            | JobFailure::BadInput
            | JobFailure::ContextLengthExceeded
            | JobFailure::Replayed => true,
        }
    }

    /// The snake_case name (as on the wire).
    pub fn as_str(self) -> &'static str {
        match self {
            JobFailure::Busy => "busy",
            JobFailure::UnknownModel => "unknown_model",
            JobFailure::NotARecipient => "not_a_recipient",
            JobFailure::CannotDecrypt => "cannot_decrypt",
            JobFailure::BadCommitment => "bad_commitment",
            JobFailure::BadInput => "bad_input",
            JobFailure::ContextLengthExceeded => "context_length_exceeded",
            JobFailure::Replayed => "replayed",
            JobFailure::Internal => "internal",
        }
    }

    /// Every code.
    pub const ALL: [JobFailure; 9] = [
        JobFailure::Busy,
        JobFailure::UnknownModel,
        JobFailure::NotARecipient,
        JobFailure::CannotDecrypt,
        JobFailure::BadCommitment,
        JobFailure::BadInput,
        JobFailure::ContextLengthExceeded,
        JobFailure::Replayed,
        JobFailure::Internal,
    ];

    /// Parses [`JobFailure::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fatal session error sent before the relayer closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionError {
    /// Machine-readable reason.
    pub code: SessionErrorCode,
    /// Human-readable detail.
    pub message: String,
}

/// Machine-readable session errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionErrorCode {
    /// The peer speaks another protocol version.
    UnsupportedVersion,
    /// A frame was not valid JSON or not the expected message.
    Malformed,
    /// The signature over the challenge is invalid.
    BadSignature,
    /// The Worker contract does not exist, is not active, or does not match the hello (keys,
    /// models, evidence hash, stake, attestation expiry).
    NotRegistered,
    /// The chain could not be read to verify the worker; try again later.
    ChainUnavailable,
    /// No hello (or no heartbeat) in time.
    Timeout,
    /// Another session for the same worker replaced this one.
    Replaced,
    /// The relayer is shutting down.
    ShuttingDown,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobRef {
        JobRef::new("0:".to_string() + &"ab".repeat(32), u64::MAX)
    }

    fn roundtrip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
        v: T,
    ) -> String {
        let s = serde_json::to_string(&v).unwrap();
        let back: T = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        s
    }

    #[test]
    fn relay_messages_roundtrip_and_are_tagged() {
        let s = roundtrip(RelayMessage::Challenge(Challenge {
            version: 1,
            nonce: [1; 32],
            relayer_id: "r".into(),
        }));
        assert!(
            s.starts_with(r#"{"type":"challenge","version":1,"nonce":"0101"#),
            "{s}"
        );
        roundtrip(RelayMessage::Welcome(Welcome {
            session_id: 3,
            heartbeat_interval_ms: 500,
        }));
        roundtrip(RelayMessage::Dispatch(Dispatch {
            job: job(),
            attempt: 2,
            model_id: 7,
            max_cost: 1_000_000_000,
            deadline: 1_800_000_000,
            input_commitment: [5; 32],
            sealed_input: vec![0, 255, 3],
        }));
        roundtrip(RelayMessage::Cancel(Cancel {
            job: job(),
            attempt: 1,
            reason: "timeout".into(),
        }));
        let s = roundtrip(RelayMessage::Error(SessionError {
            code: SessionErrorCode::BadSignature,
            message: "x".into(),
        }));
        assert!(s.contains(r#""code":"bad_signature""#), "{s}");
    }

    #[test]
    fn worker_messages_roundtrip() {
        roundtrip(WorkerMessage::Hello(Hello {
            version: 1,
            worker: "0:00".into(),
            receipt_key: [2; 32],
            encryption_key: [3; 32],
            models: vec![1, 2],
            capacity: 4,
            evidence: b"evidence".to_vec(),
            signature: [4; 64],
        }));
        roundtrip(WorkerMessage::Heartbeat(Heartbeat {
            load: 1,
            capacity: 4,
        }));
        let s = roundtrip(WorkerMessage::Chunk(Chunk {
            job: job(),
            attempt: 1,
            seq: 0,
            data: vec![1, 2, 3],
        }));
        assert!(s.contains(r#""data":"AQID""#), "{s}");
        assert!(
            s.contains(&u64::MAX.to_string()),
            "job ids keep all 64 bits: {s}"
        );
        roundtrip(WorkerMessage::Done(Done {
            job: job(),
            attempt: 1,
            chunks: 1,
            receipt: vec![9; 10],
            cost: 5,
        }));
        let s = roundtrip(WorkerMessage::JobFailed(JobFailed {
            job: job(),
            attempt: 1,
            code: JobFailure::CannotDecrypt,
            message: "no".into(),
        }));
        assert!(
            s.contains(r#""type":"job_failed""#) && s.contains(r#""code":"cannot_decrypt""#),
            "{s}"
        );
    }

    #[test]
    fn failure_codes_are_classed_and_named_as_on_the_wire() {
        for c in JobFailure::ALL {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
            assert_eq!(JobFailure::parse(c.as_str()), Some(c));
        }
        let finals: Vec<_> = JobFailure::ALL
            .into_iter()
            .filter(|c| c.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                JobFailure::CannotDecrypt,
                JobFailure::BadCommitment,
                JobFailure::BadInput,
                JobFailure::ContextLengthExceeded,
                JobFailure::Replayed
            ]
        );
    }

    #[test]
    fn malformed_frames_are_rejected() {
        for bad in [
            r#"{"type":"nope"}"#,
            r#"{"type":"heartbeat","load":1}"#,
            r#"{"type":"heartbeat","load":-1,"capacity":1}"#,
            r#"{"type":"chunk","job":{"escrow":"0:00","job_id":1},"attempt":1,"seq":0,"data":"%%%"}"#,
            r#"{"type":"hello","version":1,"worker":"0:00","receipt_key":"00","encryption_key":"00","models":[],"capacity":1,"evidence":"","signature":"00"}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<WorkerMessage>(bad).is_err(), "{bad}");
        }
    }
}
