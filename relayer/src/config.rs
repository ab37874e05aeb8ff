//! Tunables of the relayer library, with their defaults.

use std::time::Duration;

/// Default relayer identity workers sign into their session auth (use the relayer's wallet
/// address in production so a signature for one relayer is useless at another).
pub const DEFAULT_RELAYER_ID: &str = "cocoon-relayer";
/// How often workers must send a heartbeat.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A worker that stays silent this many heartbeat intervals is disconnected.
pub const MISSED_HEARTBEATS: u32 = 3;
/// Time a connecting worker has to answer the challenge.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a worker has to send the first chunk (or the receipt) of a job before failover.
pub const DEFAULT_FIRST_CHUNK_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest silence between two chunks of a job before failover.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest sealed input accepted, bytes (the HTTP body limit adds room for base64 and JSON).
pub const DEFAULT_MAX_INPUT_BYTES: usize = 1 << 20;
/// Seconds after a job's deadline during which a settlement is still accepted on-chain (Root's
/// grace period); the relayer marks a job expired only after it.
pub const DEFAULT_GRACE_PERIOD: u32 = 600;
/// Jobs at once the relayer believes a worker can run before it has seen it run more: a
/// worker's claimed capacity counts only up to the larger of this and twice the most jobs it
/// was seen answering at once.
pub const TRUSTED_CAPACITY: u32 = 4;
/// How long a job whose client followed its stream and then left (every follower gone) is kept
/// before it is cancelled unanswered: long enough for the SDK to reconnect a dropped stream
/// (its backoff totals about 6 s), short enough that an abandoned answer is not generated and
/// billed.
pub const DEFAULT_ABANDON_AFTER: Duration = Duration::from_secs(15);
/// How often the relayer sweeps for expired jobs.
pub const DEFAULT_EXPIRY_SWEEP: Duration = Duration::from_secs(30);

/// Relayer tunables.
#[derive(Debug, Clone)]
pub struct RelayerConfig {
    /// Identity signed into worker session auth.
    pub relayer_id: String,
    /// Heartbeat interval asked of workers.
    pub heartbeat_interval: Duration,
    /// Challenge answer timeout.
    pub hello_timeout: Duration,
    /// First-chunk timeout per attempt.
    pub first_chunk_timeout: Duration,
    /// Inter-chunk timeout per attempt.
    pub idle_timeout: Duration,
    /// Largest sealed input, bytes.
    pub max_input_bytes: usize,
    /// On-chain grace period after deadlines, seconds.
    pub grace_period: u32,
    /// Expiry sweep interval.
    pub expiry_sweep: Duration,
    /// Time without any follower after which a job its client followed is cancelled.
    pub abandon_after: Duration,
    /// The listener's timeouts, connection caps and per-client rate limit (clients and workers
    /// alike). Its body cap is ignored: [`RelayerConfig::listener_limits`] derives it from
    /// `max_input_bytes`.
    pub listener: cocoon_http::Limits,
    /// The token (`Authorization: Bearer <token>`) that opens the relayer's books: `GET
    /// /v1/jobs` lists every client's jobs, so without a token it is refused to everyone.
    pub operator_token: Option<String>,
    /// Admit only workers whose evidence carries NVIDIA GPU evidence that verifies (device chain
    /// to NVIDIA's root, report signature, signed RIMs, measurements). Clients still check the
    /// binding to the worker's keys themselves.
    pub require_gpu_attestation: bool,
}

impl Default for RelayerConfig {
    fn default() -> Self {
        Self {
            relayer_id: DEFAULT_RELAYER_ID.to_string(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            first_chunk_timeout: DEFAULT_FIRST_CHUNK_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            grace_period: DEFAULT_GRACE_PERIOD,
            expiry_sweep: DEFAULT_EXPIRY_SWEEP,
            abandon_after: DEFAULT_ABANDON_AFTER,
            listener: cocoon_http::Limits::with_max_body(0),
            operator_token: None,
            require_gpu_attestation: false,
        }
    }
}

impl RelayerConfig {
    /// Largest HTTP body accepted for an input submission: base64 grows data by 4/3, plus room
    /// for the JSON around it and a candidate list.
    pub fn max_body_bytes(&self) -> usize {
        self.max_input_bytes / 3 * 4 + 4 + 64 * 1024
    }

    /// What the listener enforces, with the body cap that fits the largest sealed input.
    pub fn listener_limits(&self) -> cocoon_http::Limits {
        cocoon_http::Limits {
            max_body_bytes: self.max_body_bytes(),
            ..self.listener.clone()
        }
    }

    /// How long a dispatch attempt holds its job without news (renewed on every chunk): after
    /// it, another relayer instance (or this one, restarted) may take the job over.
    pub fn dispatch_lease(&self) -> Duration {
        self.first_chunk_timeout + self.idle_timeout + Duration::from_secs(5)
    }

    /// Silence after which a worker session is dropped.
    pub fn session_timeout(&self) -> Duration {
        self.heartbeat_interval * MISSED_HEARTBEATS
    }
}
