//! The node's Prometheus metrics (prefix `cocoon_worker`): jobs by outcome, scheduler queue and
//! batch, tokens and decode speed, time to first token, and the value of receipts signed but not
//! yet seen settled on-chain. Job code records into [`NodeMetrics`]; the status listener
//! ([`super::status`]) renders it and refreshes the gauges read at scrape time.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// How a job ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Answered with a receipt.
    Done,
    /// Cancelled by the relayer (client gone, failover).
    Cancelled,
    /// Refused or failed; the label carries the failure code.
    Failed,
}

impl JobOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// Every metric the node exports.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    /// Jobs ended, by outcome and failure code (`none` unless failed).
    pub jobs: Family<Labels, Counter>,
    /// Jobs holding a slot now (set at scrape).
    pub jobs_in_flight: Gauge,
    /// Sequences waiting for a batch slot in the text models' schedulers (set at scrape).
    pub queue: Gauge,
    /// Sequences in the latest decode step of each text model (set at scrape).
    pub batch_size: Family<Labels, Gauge>,
    /// Prompt tokens of answered jobs.
    pub prompt_tokens: Counter,
    /// Output tokens of answered jobs.
    pub output_tokens: Counter,
    /// Output tokens per second of each answered text job (from its first token to its last).
    pub decode_tokens_per_second: Histogram,
    /// Seconds from a dispatch's arrival to its first output text.
    pub time_to_first_token: Histogram,
    /// nanoTON of receipts signed since start and not yet seen settled on-chain (set at scrape).
    pub unsettled_nanoton: Gauge,
    /// nanoTON of every receipt signed since start.
    pub signed_nanoton: Counter,
    /// Whether a relayer session is up (set at scrape).
    pub relayer_connected: Gauge,
    unsettled: Mutex<HashMap<[u8; 32], u128>>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cocoon_worker");
        let jobs = Family::<Labels, Counter>::default();
        registry.register("jobs", "Jobs ended by outcome and code", jobs.clone());
        let jobs_in_flight = Gauge::default();
        registry.register(
            "jobs_in_flight",
            "Jobs holding a slot now",
            jobs_in_flight.clone(),
        );
        let queue = Gauge::default();
        registry.register("queue", "Sequences waiting for a batch slot", queue.clone());
        let batch_size = Family::<Labels, Gauge>::default();
        registry.register(
            "batch_size",
            "Sequences in the latest decode step, by model",
            batch_size.clone(),
        );
        let prompt_tokens = Counter::default();
        registry.register(
            "prompt_tokens",
            "Prompt tokens of answered jobs",
            prompt_tokens.clone(),
        );
        let output_tokens = Counter::default();
        registry.register(
            "output_tokens",
            "Output tokens of answered jobs",
            output_tokens.clone(),
        );
        // 0.25 .. ~4,000 tokens/s.
        let decode_tokens_per_second = Histogram::new(exponential_buckets(0.25, 2.0, 15));
        registry.register(
            "decode_tokens_per_second",
            "Output tokens per second of each text job",
            decode_tokens_per_second.clone(),
        );
        // 5 ms .. ~80 s (a CPU-only prefill of a long prompt is slow).
        let time_to_first_token = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        registry.register(
            "time_to_first_token_seconds",
            "Dispatch to first output text",
            time_to_first_token.clone(),
        );
        let unsettled_nanoton = Gauge::default();
        registry.register(
            "unsettled_nanoton",
            "Value of receipts signed and not yet seen settled on-chain",
            unsettled_nanoton.clone(),
        );
        let signed_nanoton = Counter::default();
        registry.register(
            "signed_nanoton",
            "Value of receipts signed",
            signed_nanoton.clone(),
        );
        let relayer_connected = Gauge::default();
        registry.register(
            "relayer_connected",
            "1 while a relayer session is up",
            relayer_connected.clone(),
        );
        Self {
            registry,
            jobs,
            jobs_in_flight,
            queue,
            batch_size,
            prompt_tokens,
            output_tokens,
            decode_tokens_per_second,
            time_to_first_token,
            unsettled_nanoton,
            signed_nanoton,
            relayer_connected,
            unsettled: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an ended job (`code`: the failure code, for [`JobOutcome::Failed`]).
    pub fn job_ended(&self, outcome: JobOutcome, code: Option<&str>) {
        self.jobs
            .get_or_create(&vec![
                ("outcome".to_string(), outcome.as_str().to_string()),
                ("code".to_string(), code.unwrap_or("none").to_string()),
            ])
            .inc();
    }

    /// Records a signed receipt: its tokens, and its cost as unsettled until
    /// [`Self::settled`] sees its hash.
    pub fn receipt_signed(
        &self,
        receipt_hash: [u8; 32],
        tokens_in: u32,
        tokens_out: u32,
        cost: u128,
    ) {
        self.prompt_tokens.inc_by(u64::from(tokens_in));
        self.output_tokens.inc_by(u64::from(tokens_out));
        self.signed_nanoton
            .inc_by(u64::try_from(cost).unwrap_or(u64::MAX));
        self.unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(receipt_hash, cost);
        self.refresh_unsettled();
    }

    /// A settlement of the receipt with this hash was seen on-chain.
    pub fn settled(&self, receipt_hash: &[u8; 32]) -> bool {
        let removed = self
            .unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(receipt_hash)
            .is_some();
        self.refresh_unsettled();
        removed
    }

    /// nanoTON signed and not yet seen settled.
    pub fn unsettled(&self) -> u128 {
        self.unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    fn refresh_unsettled(&self) {
        self.unsettled_nanoton
            .set(i64::try_from(self.unsettled()).unwrap_or(i64::MAX));
    }

    /// Sets a text model's current batch size.
    pub fn set_batch(&self, model: &str, batch: usize) {
        self.batch_size
            .get_or_create(&vec![("model".to_string(), model.to_string())])
            .set(i64::try_from(batch).unwrap_or(i64::MAX));
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsettled_value_falls_when_its_settlement_is_seen() {
        let m = NodeMetrics::new();
        m.receipt_signed([1; 32], 10, 5, 25_000);
        m.receipt_signed([2; 32], 4, 1, 7_000);
        assert_eq!(m.unsettled(), 32_000);
        assert!(m.settled(&[1; 32]));
        assert!(!m.settled(&[1; 32]), "a settlement counts once");
        assert!(!m.settled(&[9; 32]), "another node's receipt is not ours");
        let text = m.render();
        assert!(
            text.contains("cocoon_worker_unsettled_nanoton 7000"),
            "{text}"
        );
        assert!(
            text.contains("cocoon_worker_signed_nanoton_total 32000"),
            "{text}"
        );
        assert!(
            text.contains("cocoon_worker_prompt_tokens_total 14"),
            "{text}"
        );
    }

    #[test]
    fn jobs_are_counted_by_outcome_and_code() {
        let m = NodeMetrics::new();
        m.job_ended(JobOutcome::Done, None);
        m.job_ended(JobOutcome::Failed, Some("bad_input"));
        m.job_ended(JobOutcome::Failed, Some("bad_input"));
        let text = m.render();
        assert!(
            text.contains(r#"cocoon_worker_jobs_total{outcome="done",code="none"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"cocoon_worker_jobs_total{outcome="failed",code="bad_input"} 2"#),
            "{text}"
        );
    }
}
