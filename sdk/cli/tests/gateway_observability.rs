//! The gateway's `/metrics` and `/health` over the real router and server on a loopback port: the
//! request counters and latency histograms move when requests are served, and `/health` follows
//! the backend's readiness probes (503 while an upstream is down).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cocoon_cli::gateway::health::{Check, Readiness};
use cocoon_cli::gateway::{
    self, Backend, BackendEvent, BackendEvents, GatewayConfig, GatewayError, JobPolicy, JobSummary,
    ModelInfo, SettlementInfo,
};
use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::job::{FinishReason, JobRequest, ModelSpec, models};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Answers every job with one word; its relayer is up or down as the test says.
struct OneWord {
    relayer_up: AtomicBool,
}

impl Backend for OneWord {
    async fn models(&self) -> Result<Vec<ModelInfo>, GatewayError> {
        Ok(vec![ModelInfo {
            spec: models::SMOLLM2_135M,
            attested_workers: 1,
            available: 1,
            attestation_kinds: vec![EvidenceKind::Simulated],
            min_price_in: Some(1_000),
            min_price_out: Some(3_000),
        }])
    }

    async fn open_job(
        &self,
        _model: &'static ModelSpec,
        _request: JobRequest,
        _policy: &JobPolicy,
    ) -> Result<BackendEvents, GatewayError> {
        let worker = "0:".to_owned() + &"22".repeat(32);
        let done = JobSummary {
            job: format!("0:{}/1", "11".repeat(32)),
            finish_reason: FinishReason::Stop,
            prompt_tokens: 3,
            completion_tokens: 1,
            cost: 6_000,
            max_cost: 1_000_000,
            worker: worker.clone(),
            attestation_kind: EvidenceKind::Simulated,
            receipt_hash: "ab".repeat(32),
            receipt_boc: vec![0xb5, 0xee],
            open_tx: None,
            open_time: Duration::from_millis(1),
            settlement: None,
            channel: None,
        };
        Ok(futures_util::stream::iter([
            Ok(BackendEvent::Dispatched {
                worker,
                attestation_kind: EvidenceKind::Simulated,
            }),
            Ok(BackendEvent::Delta("hello".into())),
            Ok(BackendEvent::Done(Box::new(done))),
        ])
        .boxed())
    }

    async fn settlement(&self, _job: &str) -> Result<Option<SettlementInfo>, GatewayError> {
        Ok(None)
    }

    async fn readiness(&self) -> Readiness {
        let up = self.relayer_up.load(Ordering::SeqCst);
        Readiness {
            checks: vec![
                if up {
                    Check::pass("relayer", "1 worker sessions")
                } else {
                    Check::fail("relayer", "connection refused")
                },
                Check::pass("chain", "localnet"),
            ],
        }
    }
}

async fn start() -> (String, Arc<OneWord>, tokio::sync::oneshot::Sender<()>) {
    let backend = Arc::new(OneWord {
        relayer_up: AtomicBool::new(true),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::serve(
        listener,
        backend.clone(),
        GatewayConfig::default(),
        async move {
            let _ = rx.await;
        },
    ));
    (url, backend, tx)
}

/// The value of the sample `name{labels}` in a Prometheus text body (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn scrape(url: &str) -> String {
    let res = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    res.text().await.unwrap()
}

#[tokio::test]
async fn request_counters_and_latency_move_when_requests_are_served() {
    let (url, _backend, _stop) = start().await;
    let http = reqwest::Client::new();
    let ok =
        r#"cocoon_gateway_requests_total{route="/v1/chat/completions",method="POST",status="200"}"#;
    let bad =
        r#"cocoon_gateway_requests_total{route="/v1/chat/completions",method="POST",status="400"}"#;
    let count = r#"cocoon_gateway_request_duration_seconds_count{route="/v1/chat/completions"}"#;
    let before = scrape(&url).await;
    assert_eq!(sample(&before, ok), 0.0);
    for _ in 0..2 {
        let res = http
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "hello");
    }
    let res = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "smollm2-135m-instruct"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        reqwest::get(format!("{url}/no/such/route/{}", "x".repeat(10)))
            .await
            .unwrap()
            .status(),
        404
    );
    let after = scrape(&url).await;
    assert_eq!(sample(&after, ok), 2.0, "{after}");
    assert_eq!(sample(&after, bad), 1.0, "{after}");
    assert_eq!(sample(&after, count), 3.0, "{after}");
    // A made-up path does not become a label of its own.
    assert!(!after.contains("/no/such/route"), "{after}");
    assert!(
        sample(
            &after,
            r#"cocoon_gateway_requests_total{route="unmatched",method="GET",status="404"}"#
        ) >= 1.0,
        "{after}"
    );
}

#[tokio::test]
async fn health_is_503_with_the_failing_check_while_the_relayer_is_down() {
    let (url, backend, _stop) = start().await;
    let res = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"].as_array().unwrap().len(), 2);

    backend.relayer_up.store(false, Ordering::SeqCst);
    let res = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    let failed: Vec<_> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["name"], "relayer");
    assert_eq!(failed[0]["detail"], "connection refused");
}
