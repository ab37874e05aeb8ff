//! Job mode (protocol v1): jobs opened "on-chain" up front, then per job the input posted, its
//! dispatch (store writes, worker selection, WebSocket forwarding) and its SSE stream read to the
//! receipt, against the same dispatches sent straight to a stub worker.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
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

use crate::{BenchArgs, Report, Side, lanes, sealed_input};

/// The operator token the bench reads job streams with.
const OPERATOR_TOKEN: &str = "bench-operator-token";

/// Runs both sides of job mode.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
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
    // The bench reads every job's stream as the operator (a client would sign a read proof).
    config.operator_token = Some(OPERATOR_TOKEN.into());
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
    let inputs: Vec<Vec<u8>> = (0..args.requests)
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
                lt: args.requests as u64,
                hash: [0; 32],
            },
            &opened,
        )
        .await?;
    let candidates: Vec<String> = stubs.iter().map(|s| s.address.clone()).collect();

    let direct = direct_side(args, &stubs[0], &opened, &inputs).await?;
    let relayed = relayer_side(
        args,
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

    let heading = format!(
        "relayer bench, job mode (v1): {} jobs per side, {} in flight, {} stub workers, {}-byte inputs, {} chunk(s), store {}",
        args.requests,
        args.concurrency,
        args.workers,
        args.input_bytes,
        args.chunks,
        url.split(':').next().unwrap_or("?")
    );
    Ok(Report {
        heading,
        unit: "jobs",
        direct: ("direct  (client -> stub worker, WebSocket)", direct),
        relayed: ("relayer (HTTP input + SSE, store, dispatch)", relayed),
        notes: Vec::new(),
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
                let mut stream = RelayerApi::new(&http)?
                    .with_operator_token(OPERATOR_TOKEN)
                    .stream(job)
                    .await?;
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
