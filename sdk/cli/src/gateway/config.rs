//! What the gateway enforces: its own API key, CORS, size and time limits, and the job policy it
//! applies to every request (minimum attestation, price caps, preferred workers).

use std::time::Duration;

use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::tlb::TonAddress;

/// Default listen address of `cocoon gateway`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Default largest request body, bytes. The sealed job request itself is capped at
/// [`cocoon_sdk::job::request::MAX_REQUEST_BYTES`]; JSON escaping can make the OpenAI body a bit larger.
pub const DEFAULT_MAX_BODY_BYTES: usize = 512 * 1024;
/// Default time a request may take, from arrival to its last byte (opening the job on-chain
/// included: a few blocks on a real network).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest a gateway connection may go without a byte either way: a non-streamed answer is
/// silent until it is complete, so this outlasts [`DEFAULT_REQUEST_TIMEOUT`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(330);
/// `max_tokens` of a chat request that gives none.
pub const DEFAULT_CHAT_MAX_TOKENS: u32 = cocoon_sdk::job::request::DEFAULT_MAX_TOKENS;
/// `max_tokens` of a completion request that gives none (OpenAI's default for `/v1/completions`).
pub const DEFAULT_COMPLETION_MAX_TOKENS: u32 = 16;

/// Configuration of one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// When set, every `/v1` request must carry `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Origins allowed to call the gateway from a browser. Empty (the default) sends no CORS
    /// headers at all, so browsers refuse cross-origin calls; `*` allows any origin.
    pub cors_origins: Vec<String>,
    /// Largest request body, bytes (413 above).
    pub max_body_bytes: usize,
    /// Longest a request may take (504 after).
    pub request_timeout: Duration,
    /// Applied to every job.
    pub policy: JobPolicy,
    /// The listener's timeouts, connection caps and per-client rate limit. Its body cap is
    /// ignored: [`GatewayConfig::listener_limits`] takes `max_body_bytes`.
    pub listener: cocoon_http::Limits,
}

impl GatewayConfig {
    /// What the listener enforces, with the gateway's body cap.
    pub fn listener_limits(&self) -> cocoon_http::Limits {
        cocoon_http::Limits {
            max_body_bytes: self.max_body_bytes,
            ..self.listener.clone()
        }
    }
}

/// The library's listener defaults, with the gateway's longer idle timeout.
pub fn default_listener() -> cocoon_http::Limits {
    cocoon_http::Limits {
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        ..cocoon_http::Limits::with_max_body(DEFAULT_MAX_BODY_BYTES)
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            cors_origins: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            policy: JobPolicy::default(),
            listener: default_listener(),
        }
    }
}

/// Which workers a job may go to, and what it may cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobPolicy {
    /// Refuse workers whose evidence is weaker than this (`Simulated` < `SevSnp`/`Tdx`);
    /// `None` accepts whatever Root's policy allows.
    pub min_attestation: Option<EvidenceKind>,
    /// Highest accepted price per input token, nanoTON.
    pub max_price_in: Option<u128>,
    /// Highest accepted price per output token, nanoTON.
    pub max_price_out: Option<u128>,
    /// Workers tried first, in order, when they qualify.
    pub preferred_workers: Vec<TonAddress>,
    /// Cap on the maximum cost locked per job, nanoTON (default: what the worker's prices and
    /// `max_tokens` need). In channel mode, the most one request may cost: `max_tokens` is
    /// lowered to fit at the prices of the dearest channel named.
    pub max_cost: Option<u128>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_closed() {
        let c = GatewayConfig::default();
        assert!(c.cors_origins.is_empty(), "CORS must be off by default");
        assert!(c.api_key.is_none());
        assert!(c.max_body_bytes > cocoon_sdk::job::request::MAX_REQUEST_BYTES);
        assert_eq!(c.policy, JobPolicy::default());
    }
}
