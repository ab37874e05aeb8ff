//! The gateway's Prometheus metrics: requests by route and status, and their latency. One layer
//! ([`track`]) records every request the router answers, refusals by the listener's guards
//! included; `/metrics` renders them.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of requests that matched no route (a caller cannot grow the label set with made-up
/// paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Vec<(String, String)>;

/// Every metric the gateway exports (prefix `cocoon_gateway`).
#[derive(Debug)]
pub struct GatewayMetrics {
    registry: Registry,
    /// Requests answered, by route pattern, method and status code.
    pub requests: Family<Labels, Counter>,
    /// Seconds from a request's arrival to its response head, by route pattern. A streamed
    /// answer's head leaves with its first event, so for SSE this is the time to first event.
    pub latency: Family<Labels, Histogram>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~260 s: from a refused request to a long non-streamed generation.
    Histogram::new(exponential_buckets(0.001, 2.0, 19))
}

impl GatewayMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cocoon_gateway");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered by route, method and status",
            requests.clone(),
        );
        let latency =
            Family::<Labels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "request_duration_seconds",
            "Arrival to response head by route",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
        }
    }

    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("route".to_string(), route.to_string()),
                ("method".to_string(), method.to_string()),
                ("status".to_string(), status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("route".to_string(), route.to_string())])
            .observe(seconds);
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Records the request's route, status and latency.
pub async fn track(
    State(metrics): State<Arc<GatewayMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    metrics.observe(
        &route,
        &method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /metrics`.
pub async fn render(State(metrics): State<Arc<GatewayMetrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_latency_by_route() {
        let m = GatewayMetrics::new();
        m.observe("/v1/models", "GET", 200, 0.002);
        m.observe("/v1/models", "GET", 200, 0.004);
        m.observe(UNMATCHED_ROUTE, "GET", 404, 0.0001);
        let text = m.render();
        assert!(
            text.contains(
                r#"cocoon_gateway_requests_total{route="/v1/models",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"cocoon_gateway_request_duration_seconds_count{route="/v1/models"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"route="unmatched",method="GET",status="404""#),
            "{text}"
        );
    }
}
