//! Prometheus metrics of the relayer (one struct, registered once, rendered by `/metrics`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::JobState;

type Labels = Vec<(String, String)>;

/// Every metric the relayer exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs per state (refreshed from the store at each scrape).
    pub jobs: Family<Labels, Gauge>,
    /// Authenticated worker sessions.
    pub worker_sessions: Gauge,
    /// Seconds from handing a job to a worker to its receipt.
    pub dispatch_latency: Histogram,
    /// Dispatch attempts.
    pub dispatch_attempts: Counter,
    /// Attempts abandoned for the next candidate (timeout, disconnect, refusal, bad receipt).
    pub failovers: Counter,
    /// Jobs ended at once because a worker refused them for good (bad input, context length,
    /// undecryptable or replayed input).
    pub final_refusals: Counter,
    /// Jobs ended because their client stopped following them.
    pub abandoned: Counter,
    /// Inputs refused by the API, by error code.
    pub rejected_inputs: Family<Labels, Counter>,
    /// Worker sessions refused, by reason.
    pub rejected_sessions: Family<Labels, Counter>,
    /// Seconds between now and the newest transaction the watcher processed.
    pub chain_lag: Gauge,
    /// Failed receipt submissions.
    pub submit_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cocoon_relayer");
        let jobs = Family::<Labels, Gauge>::default();
        registry.register("jobs", "Jobs by state", jobs.clone());
        let worker_sessions = Gauge::default();
        registry.register(
            "worker_sessions",
            "Authenticated worker sessions",
            worker_sessions.clone(),
        );
        let dispatch_latency = Histogram::new(exponential_buckets(0.000_25, 2.0, 20));
        registry.register(
            "dispatch_latency_seconds",
            "Dispatch to receipt",
            dispatch_latency.clone(),
        );
        let dispatch_attempts = Counter::default();
        registry.register(
            "dispatch_attempts",
            "Dispatch attempts",
            dispatch_attempts.clone(),
        );
        let failovers = Counter::default();
        registry.register(
            "failovers",
            "Attempts abandoned for the next candidate",
            failovers.clone(),
        );
        let final_refusals = Counter::default();
        registry.register(
            "final_refusals",
            "Jobs ended at once by a final worker refusal",
            final_refusals.clone(),
        );
        let abandoned = Counter::default();
        registry.register(
            "abandoned_jobs",
            "Jobs ended unanswered because their client stopped following the stream",
            abandoned.clone(),
        );
        let rejected_inputs = Family::<Labels, Counter>::default();
        registry.register(
            "rejected_inputs",
            "Inputs refused by the API",
            rejected_inputs.clone(),
        );
        let rejected_sessions = Family::<Labels, Counter>::default();
        registry.register(
            "rejected_sessions",
            "Worker sessions refused",
            rejected_sessions.clone(),
        );
        let chain_lag = Gauge::default();
        registry.register(
            "chain_lag_seconds",
            "Age of the newest processed transaction",
            chain_lag.clone(),
        );
        let submit_failures = Counter::default();
        registry.register(
            "submit_failures",
            "Failed receipt submissions",
            submit_failures.clone(),
        );
        Self {
            registry,
            jobs,
            worker_sessions,
            dispatch_latency,
            dispatch_attempts,
            failovers,
            final_refusals,
            abandoned,
            rejected_inputs,
            rejected_sessions,
            chain_lag,
            submit_failures,
        }
    }

    /// Sets the per-state job gauges.
    pub fn set_job_counts(&self, counts: &[(JobState, u64)]) {
        for (state, n) in counts {
            self.jobs
                .get_or_create(&label("state", state.as_str()))
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Counts a refused input.
    pub fn reject_input(&self, code: &str) {
        self.rejected_inputs
            .get_or_create(&label("code", code))
            .inc();
    }

    /// Counts a refused session.
    pub fn reject_session(&self, reason: &str) {
        self.rejected_sessions
            .get_or_create(&label("reason", reason))
            .inc();
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::new();
        m.set_job_counts(&[(JobState::Settled, 3)]);
        m.reject_input("too_large");
        m.dispatch_latency.observe(0.001);
        let text = m.render();
        assert!(
            text.contains(r#"cocoon_relayer_jobs{state="settled"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"cocoon_relayer_rejected_inputs_total{code="too_large"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("cocoon_relayer_dispatch_latency_seconds_count 1"),
            "{text}"
        );
    }
}
