//! What the gateway itself adds: time to first token and chunks/s of a streamed chat through the
//! gateway's HTTP + SSE layer on loopback, against reading the same backend's events directly,
//! in the same run. The backend answers instantly (no chain, relayer or model), so the
//! difference is the gateway's own cost. The whole path with the real worker engine and the
//! on-chain opening reported apart is the end-to-end crate's gateway bench.
//!
//! ```text
//! cargo run -p cocoon-cli --example gateway_overhead -- [requests] [tokens]
//! ```

use std::time::{Duration, Instant};

use cocoon_cli::gateway::{
    self, Backend, BackendEvent, BackendEvents, GatewayConfig, GatewayError, JobPolicy, JobSummary,
    ModelInfo, SettlementInfo,
};
use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::job::{ChatMessage, FinishReason, GenerationParams, JobRequest, ModelSpec, models};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Answers every job at once with `tokens` one-word deltas.
struct InstantBackend {
    tokens: usize,
}

impl Backend for InstantBackend {
    async fn models(&self) -> Result<Vec<ModelInfo>, GatewayError> {
        Ok(Vec::new())
    }

    async fn open_job(
        &self,
        _: &'static ModelSpec,
        _: JobRequest,
        _: &JobPolicy,
    ) -> Result<BackendEvents, GatewayError> {
        let mut ev = vec![Ok(BackendEvent::Dispatched {
            worker: "0:00".into(),
            attestation_kind: EvidenceKind::Simulated,
        })];
        ev.extend((0..self.tokens).map(|i| Ok(BackendEvent::Delta(format!("w{i} ")))));
        ev.push(Ok(BackendEvent::Done(Box::new(JobSummary {
            job: "0:00/1".into(),
            finish_reason: FinishReason::Length,
            prompt_tokens: 8,
            completion_tokens: self.tokens as u32,
            cost: 1,
            max_cost: 1,
            worker: "0:00".into(),
            attestation_kind: EvidenceKind::Simulated,
            receipt_hash: "00".repeat(32),
            receipt_boc: Vec::new(),
            open_tx: None,
            open_time: Duration::ZERO,
            settlement: None,
            channel: None,
        }))));
        Ok(futures_util::stream::iter(ev).boxed())
    }

    async fn settlement(&self, _: &str) -> Result<Option<SettlementInfo>, GatewayError> {
        Ok(None)
    }
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// (time to first text, text chunks per second after it)
async fn direct(b: &InstantBackend) -> (Duration, f64) {
    let start = Instant::now();
    let job = JobRequest::chat(
        vec![ChatMessage::new("user", "hi")],
        GenerationParams::default(),
    );
    let mut events = b
        .open_job(&models::SMOLLM2_135M, job, &JobPolicy::default())
        .await
        .unwrap();
    let (mut first, mut n) = (None, 0usize);
    while let Some(ev) = events.next().await {
        if let Ok(BackendEvent::Delta(t)) = ev {
            // What a caller does with each piece: turn it into JSON text.
            std::hint::black_box(json!({"content": t}).to_string());
            first.get_or_insert(start.elapsed());
            n += 1;
        }
    }
    let first = first.unwrap();
    (
        first,
        (n - 1) as f64 / (start.elapsed() - first).as_secs_f64(),
    )
}

async fn through_gateway(http: &reqwest::Client, url: &str) -> (Duration, f64) {
    let body = json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let start = Instant::now();
    let mut res = http.post(url).json(&body).send().await.unwrap();
    let (mut buf, mut first, mut n) = (String::new(), None, 0usize);
    while let Some(bytes) = res.chunk().await.unwrap() {
        buf.push_str(std::str::from_utf8(&bytes).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).unwrap();
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            {
                first.get_or_insert(start.elapsed());
                n += 1;
            }
        }
    }
    let first = first.unwrap();
    (
        first,
        (n - 1) as f64 / (start.elapsed() - first).as_secs_f64(),
    )
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(300);
    let tokens: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(64);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(gateway::serve(
        listener,
        InstantBackend { tokens },
        GatewayConfig::default(),
        std::future::pending(),
    ));
    let backend = InstantBackend { tokens };
    let http = reqwest::Client::new();
    for _ in 0..20 {
        direct(&backend).await;
        through_gateway(&http, &url).await;
    }
    let (mut d, mut g) = (Vec::new(), Vec::new());
    for _ in 0..requests {
        d.push(direct(&backend).await);
        g.push(through_gateway(&http, &url).await);
    }
    let ms = |v: &[(Duration, f64)]| {
        v.iter()
            .map(|r| r.0.as_secs_f64() * 1e3)
            .collect::<Vec<_>>()
    };
    let rate = |v: &[(Duration, f64)]| v.iter().map(|r| r.1).collect::<Vec<_>>();
    let (d50, d99, g50, g99) = (
        pct(ms(&d), 0.5),
        pct(ms(&d), 0.99),
        pct(ms(&g), 0.5),
        pct(ms(&g), 0.99),
    );
    let (dr, gr) = (pct(rate(&d), 0.5), pct(rate(&g), 0.5));
    println!(
        "gateway overhead: {requests} streamed requests of {tokens} chunks, instant backend, loopback"
    );
    println!(
        "  {:<34} {:>12} {:>12} {:>14}",
        "", "TTFT p50 ms", "TTFT p99 ms", "chunks/s p50"
    );
    println!(
        "  {:<34} {:>12.3} {:>12.3} {:>14.0}",
        "backend events, direct", d50, d99, dr
    );
    println!(
        "  {:<34} {:>12.3} {:>12.3} {:>14.0}",
        "through the gateway (HTTP + SSE)", g50, g99, gr
    );
    println!(
        "  added to TTFT by the gateway: p50 {:.3} ms, p99 {:.3} ms",
        g50 - d50,
        g99 - d99
    );
    println!("  ratio chunks/s gateway/direct: {:.3}", gr / dr);
}
