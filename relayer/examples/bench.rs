//! The relayer benchmark (`cargo run --release -p cocoon-relayer --example bench`): dispatch
//! throughput and added latency, measured side by side in one run. It lives beside the relayer,
//! not in its binary: the stub workers it drives come from the test kit.
//! Stub workers answer instantly; the baseline ("direct") sends the same dispatches straight
//! to a stub over a WebSocket, so the difference is what the relayer adds: HTTP input, store
//! writes, worker selection, forwarding and the SSE stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use clap::Parser;
use cocoon_relayer::relayer::Relayer;
use cocoon_relayer::store::{Cursor, OpenedJob, Store};
use cocoon_relayer::{RelayerConfig, StaticRegistry};
use cocoon_sdk::client::RelayerApi;
use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_sdk::relay::worker::{Dispatch, RelayMessage, WorkerMessage};
use cocoon_testkit::StubWorker;
use futures_util::{SinkExt as _, StreamExt as _};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

/// Dispatch throughput and added latency against a direct call, with stub workers.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench")]
pub struct BenchArgs {
    /// Jobs per side.
    #[arg(long, default_value_t = 2000)]
    jobs: usize,
    /// Jobs in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Stub workers connected to the relayer.
    #[arg(long, default_value_t = 2)]
    workers: u8,
    /// Sealed input size, bytes.
    #[arg(long, default_value_t = 256)]
    input_bytes: usize,
    /// Output chunks per job.
    #[arg(long, default_value_t = 1)]
    chunks: u32,
    /// Store URL (default: a SQLite file in a temp dir).
    #[arg(long = "store.url")]
    store_url: Option<String>,
}

struct Side {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Side {
    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(idx).copied().unwrap_or_default()
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs both sides and prints the comparison.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.jobs == 0 || args.concurrency == 0 || args.workers == 0 {
        bail!("--jobs, --concurrency and --workers must be positive");
    }
    let dir = tempfile::tempdir()?;
    let url = args.store_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let store = Store::connect(&url, 8).await?;
    let registry = Arc::new(StaticRegistry::new());
    let stubs: Vec<StubWorker> = (0..args.workers)
        .map(|i| {
            let mut s = StubWorker::new(i, vec![1]);
            s.chunks = args.chunks;
            s.capacity = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
            s
        })
        .collect();
    for s in &stubs {
        registry.insert(s.address.clone(), s.on_chain());
    }
    // The benchmark's lanes all come from loopback: no per-client rate limit.
    let mut config = RelayerConfig::default();
    config.listener.rate_per_second = 0;
    let relayer = Relayer::new(store.clone(), registry, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relayer.serve(listener, async move {
        let _ = stopped.await;
    }));
    let mut handles = Vec::new();
    for s in &stubs {
        handles.push(
            s.connect(&format!("ws://{addr}"))
                .await
                .context("stub worker connect")?,
        );
    }

    // Jobs are opened "on-chain" up front, in one transaction, as the watcher records them.
    let escrow = format!("0:{}", hex::encode([0xe5; 32]));
    let inputs: Vec<Vec<u8>> = (0..args.jobs)
        .map(|i| sealed_input(i, args.input_bytes))
        .collect();
    let deadline = u32::try_from(unix_now_i64() + 3600).unwrap_or(u32::MAX);
    let opened: Vec<OpenedJob> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| OpenedJob {
            job: JobRef::new(escrow.clone(), i as u64 + 1),
            escrow_owner: escrow.clone(),
            model_id: 1,
            max_cost: 1_000_000_000,
            deadline,
            input_commitment: Sha256::digest(input).into(),
            route_worker: None,
            opened_lt: i as u64 + 1,
        })
        .collect();
    store
        .apply_transaction(
            &escrow,
            Cursor {
                lt: args.jobs as u64,
                hash: [0; 32],
            },
            &opened,
        )
        .await?;
    let candidates: Vec<String> = stubs.iter().map(|s| s.address.clone()).collect();

    let direct = direct_side(&args, &stubs[0], &opened, &inputs).await?;
    let relayed = relayer_side(
        &args,
        &format!("http://{addr}"),
        &opened,
        &inputs,
        &candidates,
    )
    .await?;

    let _ = stop.send(());
    let _ = server.await;
    for h in handles {
        h.disconnect();
    }
    store.close().await;

    println!(
        "relayer bench: {} jobs per side, {} in flight, {} stub workers, {}-byte inputs, {} chunk(s), store {}",
        args.jobs,
        args.concurrency,
        args.workers,
        args.input_bytes,
        args.chunks,
        url.split(':').next().unwrap_or("?")
    );
    for (name, s) in [
        ("direct  (client -> stub worker, WebSocket)", &direct),
        ("relayer (HTTP input + SSE, store, dispatch)", &relayed),
    ] {
        println!(
            "  {name}: {:>9.0} jobs/s  p50 {:>7.3} ms  p99 {:>7.3} ms",
            s.throughput(),
            ms(s.percentile(0.50)),
            ms(s.percentile(0.99))
        );
    }
    println!(
        "  added by the relayer: p50 {:+.3} ms, p99 {:+.3} ms; throughput ratio relayer/direct {:.3}",
        ms(relayed.percentile(0.50)) - ms(direct.percentile(0.50)),
        ms(relayed.percentile(0.99)) - ms(direct.percentile(0.99)),
        relayed.throughput() / direct.throughput().max(1e-9)
    );
    Ok(())
}

fn sealed_input(i: usize, len: usize) -> Vec<u8> {
    // Stand-in ciphertext: pseudo-random bytes, distinct per job.
    let mut out = Vec::with_capacity(len);
    let mut block = Sha256::digest(i.to_be_bytes());
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(len);
    out
}

/// Splits `jobs` across `concurrency` lanes; each lane runs `f` on its jobs in turn.
async fn lanes<F, Fut>(concurrency: usize, jobs: usize, f: F) -> anyhow::Result<Side>
where
    F: Fn(usize, Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<Duration>>> + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..concurrency.min(jobs) {
        let mine: Vec<usize> = (lane..jobs).step_by(concurrency).collect();
        tasks.push(tokio::spawn(f(lane, mine)));
    }
    let mut latencies = Vec::with_capacity(jobs);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Side {
        elapsed: start.elapsed(),
        latencies,
    })
}

async fn relayer_side(
    args: &BenchArgs,
    http: &str,
    opened: &[OpenedJob],
    inputs: &[Vec<u8>],
    candidates: &[String],
) -> anyhow::Result<Side> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let opened = Arc::new(opened.to_vec());
    let inputs = Arc::new(inputs.to_vec());
    let candidates = Arc::new(candidates.to_vec());
    let http = http.to_string();
    lanes(args.concurrency, opened.len(), move |_, mine| {
        let (client, opened, inputs, candidates, http) = (
            client.clone(),
            opened.clone(),
            inputs.clone(),
            candidates.clone(),
            http.clone(),
        );
        async move {
            let mut out = Vec::with_capacity(mine.len());
            for i in mine {
                let job = &opened[i].job;
                let t = Instant::now();
                let body = serde_json::json!({
                    "version": cocoon_sdk::relay::PROTOCOL_VERSION,
                    "sealed_input": base64_encode(&inputs[i]),
                    "candidates": &*candidates,
                });
                let resp = client
                    .post(format!(
                        "{http}/v1/jobs/{}/{}/input",
                        job.escrow, job.job_id
                    ))
                    .json(&body)
                    .send()
                    .await?;
                if resp.status().as_u16() != 202 {
                    bail!(
                        "input for {job} refused: {} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    );
                }
                let mut stream = RelayerApi::new(&http)?.stream(job).await?;
                loop {
                    match stream.next().await? {
                        Some(StreamEvent::Receipt { .. }) => break,
                        Some(StreamEvent::Failed { reason }) => bail!("{job} failed: {reason}"),
                        Some(_) => {}
                        None => bail!("stream of {job} ended early"),
                    }
                }
                out.push(t.elapsed());
            }
            Ok(out)
        }
    })
    .await
}

async fn direct_side(
    args: &BenchArgs,
    stub: &StubWorker,
    opened: &[OpenedJob],
    inputs: &[Vec<u8>],
) -> anyhow::Result<Side> {
    // The stub's answers served straight over a WebSocket: what a client would see talking to
    // the worker itself.
    let stub = Arc::new(stub.clone());
    let served = stub.clone();
    let app = axum::Router::new().route(
        "/direct",
        axum::routing::get(move |ws: WebSocketUpgrade| {
            let stub = served.clone();
            async move { ws.on_upgrade(move |socket| direct_worker(stub, socket)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The baseline gets TCP_NODELAY like the relayer, so the comparison is of the work done.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let opened = Arc::new(opened.to_vec());
    let inputs = Arc::new(inputs.to_vec());
    let side = lanes(args.concurrency, opened.len(), move |_, mine| {
        let (opened, inputs) = (opened.clone(), inputs.clone());
        async move {
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
                format!("ws://{addr}/direct"),
                None,
                true,
            )
            .await?;
            let mut out = Vec::with_capacity(mine.len());
            for i in mine {
                let o = &opened[i];
                let t = Instant::now();
                let d = Dispatch {
                    job: o.job.clone(),
                    attempt: 1,
                    model_id: o.model_id,
                    max_cost: o.max_cost,
                    deadline: o.deadline,
                    input_commitment: o.input_commitment,
                    sealed_input: inputs[i].clone(),
                };
                ws.send(Message::Text(
                    serde_json::to_string(&RelayMessage::Dispatch(d))?.into(),
                ))
                .await?;
                loop {
                    let Some(frame) = ws.next().await else {
                        bail!("direct worker closed")
                    };
                    if let Message::Text(text) = frame?
                        && matches!(
                            serde_json::from_str::<WorkerMessage>(&text)?,
                            WorkerMessage::Done(_)
                        )
                    {
                        break;
                    }
                }
                out.push(t.elapsed());
            }
            Ok(out)
        }
    })
    .await;
    server.abort();
    side
}

async fn direct_worker(stub: Arc<StubWorker>, mut socket: WebSocket) {
    while let Some(Ok(frame)) = socket.recv().await {
        let AxMessage::Text(text) = frame else {
            continue;
        };
        let Ok(RelayMessage::Dispatch(d)) = serde_json::from_str::<RelayMessage>(&text) else {
            continue;
        };
        for reply in stub.answer(&d) {
            let Ok(text) = serde_json::to_string(&reply) else {
                return;
            };
            if socket.send(AxMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Per-job info logs would be part of what is measured.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    run(BenchArgs::parse()).await
}
