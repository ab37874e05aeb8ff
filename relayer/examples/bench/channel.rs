//! Channel mode (protocol v2): each lane is one client with its own channel, sending requests
//! with increasing seqs, each ticket carrying the voucher that pays the previous receipt, and
//! reading each SSE stream to its end. The relayer learns the channels through the same
//! [`ChannelBook`] seam the service fills from the chain (here a book held in memory, as the
//! chain would answer), caches them, checks each ticket, routes it to the channel's worker and
//! checks the receipt it passes back. The baseline sends the same tickets as `ChannelDispatch`
//! frames straight to the channel's stub worker over a WebSocket.
//!
//! What is done before the clock starts, and why: in a deployment the clients and the workers
//! run on other machines, and here they share the relayer's 2 cores. So the load generator does
//! ahead of time what is theirs and costs most: the stubs' receipts are deterministic (constant
//! output commitment, input commitment of a known input), so each lane's receipts are signed up
//! front ([`PresignedReceipts`], answered only for the exact receipt the stub would sign), and
//! the vouchers paying them, and each request's body and frame are encoded up front. On the
//! clock each client still checks that the receipt it gets is byte for byte the one expected
//! (the bench fails otherwise), and the relayer does all it does in service: it parses each body
//! (voucher included), checks the ticket against the cached channel, dispatches it, parses the
//! worker's frames and verifies every receipt's signature. Both sides send the same prepared
//! requests to the same stubs, so the baseline gets the same help. The relayed clients use one
//! HTTP/1.1 connection each (hyper's client connection rather than a pooled client), and the
//! clients and stubs share one runtime thread (`--load-threads`); the relayer has its own
//! runtime, one thread per core.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cocoon_relayer::channels::{ChannelBook, ChannelReadError};
use cocoon_relayer::relayer::Relayer;
use cocoon_relayer::store::Store;
use cocoon_relayer::{RelayerConfig, StaticRegistry};
use cocoon_sdk::channel::{
    ACC_ZERO, ChannelRef, ChannelState, SignedChannelReceipt, Voucher, chain_step,
};
use cocoon_sdk::client::sse::SseParser;
use cocoon_sdk::relay::channel::{ChannelDispatch, ChannelEvent, ChannelSubmit, ChannelTicket};
use cocoon_sdk::relay::worker::{RelayMessage, WorkerMessage};
use cocoon_sdk::relay::{CHANNEL_REQUESTS_PATH, PROTOCOL_VERSION};
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use cocoon_testkit::StubWorker;
use cocoon_testkit::stub::PresignedReceipts;
use ed25519_dalek::SigningKey;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{BenchArgs, Report, Side, lanes, sealed_input};

const MODEL: u32 = 1;
const MAX_TOKENS: u32 = 64;

/// The channels as the chain would answer for them, held in memory.
struct Book(HashMap<(TonAddress, u64), ChannelState>);

impl ChannelBook for Book {
    fn read<'a>(
        &'a self,
        escrow: &'a TonAddress,
        id: u64,
    ) -> BoxFuture<'a, Result<Option<ChannelState>, ChannelReadError>> {
        let found = self.0.get(&(escrow.clone(), id)).cloned();
        Box::pin(async move { Ok(found) })
    }
}

fn addr(n: u8) -> TonAddress {
    TonAddress::new(0, [n; 32].into())
}

/// One request of a lane, prepared before the clock starts: what each side sends and the
/// receipt it must get back.
struct Step {
    /// The relayed side's `POST /v2/requests` body (one ticket: channel, seq, the voucher
    /// paying the lane's receipts so far).
    body: Bytes,
    /// The direct side's `channel_dispatch` frame of the same ticket and input.
    frame: Utf8Bytes,
    /// The receipt the stub signs for it, base64 BOC as the worker encodes it.
    receipt: String,
}

/// Each lane's requests over all rounds, in order (both sides send the same ones).
type Lanes = Arc<Vec<Vec<Step>>>;

/// Prepares one lane: walks its channel as its client would (each receipt checked for the
/// lane's channel and next seq, then paid by the next ticket's voucher), signing the stub's
/// receipts and the client's vouchers now rather than on the clock.
fn prepare_lane(
    args: &BenchArgs,
    lane: usize,
    channel: &ChannelRef,
    stub: &StubWorker,
    voucher_key: &SigningKey,
    inputs: &[Vec<u8>],
) -> anyhow::Result<(Vec<Step>, Vec<SignedChannelReceipt>)> {
    let mine: Vec<usize> = (lane..inputs.len()).step_by(args.concurrency).collect();
    let mut steps = Vec::with_capacity(mine.len() * args.rounds);
    let mut receipts = Vec::with_capacity(mine.len() * args.rounds);
    let (mut seq, mut cumulative, mut acc, mut voucher) = (0u32, 0u128, ACC_ZERO, None);
    for _ in 0..args.rounds {
        for &i in &mine {
            seq += 1;
            let ticket = ChannelTicket {
                channel: channel.clone(),
                seq,
                voucher: voucher.take(),
            };
            let dispatch = ChannelDispatch {
                request_id: u64::from(seq),
                attempt: 1,
                ticket: ticket.clone(),
                model_id: MODEL,
                max_tokens: MAX_TOKENS,
                sealed_input: inputs[i].clone(),
            };
            let receipt = match stub.answer_channel(&dispatch).pop() {
                Some(WorkerMessage::ChannelDone(d)) => d.receipt,
                other => bail!("the stub did not answer lane {lane}'s seq {seq}: {other:?}"),
            };
            let b = &receipt.body;
            if &b.channel != channel || b.seq != seq {
                bail!(
                    "the stub signed seq {} of channel {} for seq {seq} of {}",
                    b.seq,
                    b.channel.channel_id,
                    channel.channel_id
                );
            }
            cumulative += b.cost;
            acc = chain_step(&acc, &b.hash()?);
            voucher = Some(
                Voucher {
                    channel: channel.clone(),
                    cumulative,
                    last_seq: seq,
                    acc,
                    is_final: false,
                }
                .sign(voucher_key)?,
            );
            let body = serde_json::to_vec(&ChannelSubmit {
                version: PROTOCOL_VERSION,
                tickets: vec![ticket],
                model_id: MODEL,
                max_tokens: MAX_TOKENS,
                sealed_input: inputs[i].clone(),
            })?;
            let frame = serde_json::to_string(&RelayMessage::ChannelDispatch(dispatch))?;
            steps.push(Step {
                body: body.into(),
                frame: frame.into(),
                receipt: STANDARD.encode(receipt.to_boc()?),
            });
            receipts.push(receipt);
        }
    }
    Ok((steps, receipts))
}

/// Prepares every lane on all cores, then gives each stub its receipts signed ahead.
fn prepare(
    args: &BenchArgs,
    channels: &[ChannelRef],
    stubs: &mut [StubWorker],
    voucher_key: &SigningKey,
    inputs: &[Vec<u8>],
) -> anyhow::Result<Lanes> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stubs_now: &[StubWorker] = stubs;
    let mut prepared: Vec<(usize, Vec<Step>, Vec<SignedChannelReceipt>)> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (t..channels.len())
                            .step_by(threads)
                            .map(|lane| {
                                let stub = &stubs_now[lane % stubs_now.len()];
                                prepare_lane(args, lane, &channels[lane], stub, voucher_key, inputs)
                                    .map(|(steps, receipts)| (lane, steps, receipts))
                            })
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a preparing thread panicked"))
                .collect::<anyhow::Result<Vec<_>>>()
                .map(|v| v.into_iter().flatten().collect())
        })?;
    prepared.sort_by_key(|(lane, _, _)| *lane);
    let mut tables: Vec<PresignedReceipts> = stubs
        .iter()
        .map(|s| PresignedReceipts::new(s.signing_key.verifying_key()))
        .collect();
    let mut lanes = Vec::with_capacity(prepared.len());
    for (lane, steps, receipts) in prepared {
        let n = tables.len();
        for r in receipts {
            tables[lane % n].insert(r)?;
        }
        lanes.push(steps);
    }
    for (stub, table) in stubs.iter_mut().zip(tables) {
        stub.presigned = Some(Arc::new(table));
    }
    Ok(Arc::new(lanes))
}

/// The fields of a worker frame or a stream event the clients look at.
#[derive(serde::Deserialize)]
struct Seen {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    receipt: Option<String>,
}

/// Checks the receipt a request got is, byte for byte, the one its step expects.
fn check_receipt(got: Option<String>, step: &Step) -> anyhow::Result<()> {
    match got {
        Some(r) if r == step.receipt => Ok(()),
        Some(r) => bail!("got receipt {r}, expected {}", step.receipt),
        None => bail!("a receipt frame without a receipt"),
    }
}

/// The relayer's own threads, named so their CPU time can be told from the clients' and the
/// stubs' (all share one process and the machine's cores).
const RELAYER_THREADS: &str = "relayer-rt";

/// CPU time this process's threads have used so far, all of them or only the relayer's
/// (Linux `schedstat`; `None` elsewhere).
fn cpu_used(relayer_only: bool) -> Option<Duration> {
    let mut total = 0u64;
    let mut seen = false;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        if relayer_only {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() != RELAYER_THREADS {
                continue;
            }
        }
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        seen = true;
    }
    seen.then(|| Duration::from_nanos(total))
}

/// CPU used by the relayer's threads and by the whole process over the relayed rounds.
#[derive(Default)]
struct CpuUsed {
    relayer: Option<Duration>,
    all: Option<Duration>,
}

impl CpuUsed {
    fn snapshot() -> Self {
        Self {
            relayer: cpu_used(true),
            all: cpu_used(false),
        }
    }

    /// Adds what was used between `before` and `after`.
    fn add(&mut self, before: &Self, after: &Self) {
        let span = |sum: Option<Duration>, b: Option<Duration>, a: Option<Duration>| {
            Some(sum.unwrap_or_default() + a?.saturating_sub(b?))
        };
        self.relayer = span(self.relayer, before.relayer, after.relayer);
        self.all = span(self.all, before.all, after.all);
    }
}

/// Runs both sides of channel mode, alternating them `--rounds` times so that both see the
/// same noise from the rest of the machine.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let url = args.store_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let mut stubs: Vec<StubWorker> = (0..args.workers)
        .map(|i| {
            let mut s = StubWorker::new(i, vec![MODEL]);
            s.chunks = args.chunks;
            s
        })
        .collect();
    let registry = Arc::new(StaticRegistry::new());
    for s in &stubs {
        registry.insert(s.address.clone(), s.on_chain());
    }

    // One channel per lane, spread over the workers, all naming this relayer.
    let me = addr(0x77);
    let voucher_key = SigningKey::from_bytes(&[0x2a; 32]);
    let far = u32::MAX - 1_000;
    let mut book = HashMap::new();
    let mut channels = Vec::new();
    for lane in 0..args.concurrency {
        let worker = &stubs[lane % stubs.len()];
        let channel = ChannelRef {
            global_id: -239,
            root: addr(1),
            escrow: addr(2),
            channel_id: lane as u64 + 1,
        };
        let state = ChannelState {
            channel: channel.clone(),
            amount: 1_000_000 * cocoon_sdk::units::NANO_PER_TON,
            settled: 0,
            last_seq: 0,
            expires_at: far,
            close_requested_at: 0,
            settle_until: far + 600,
            price_in: u128::from(worker.prices.0),
            price_out: u128::from(worker.prices.1),
            worker: TonAddress::from_hex_str(&worker.address)?,
            worker_owner: addr(3),
            relayer: me.clone(),
            relayer_fee_bps: 100,
            protocol_fee_bps: 100,
            voucher_key: voucher_key.verifying_key().to_bytes(),
            relayer_due: 0,
        };
        book.insert((channel.escrow.clone(), channel.channel_id), state);
        channels.push(channel);
    }

    // Signed before the clock (see the module docs): the stubs' receipts, the clients'
    // vouchers, and each request's body and frame.
    let inputs: Vec<Vec<u8>> = (0..args.requests)
        .map(|i| sealed_input(i, args.input_bytes))
        .collect();
    let preparing = Instant::now();
    let lanes_prepared = prepare(args, &channels, &mut stubs, &voucher_key, &inputs)?;
    let prepared_in = preparing.elapsed();
    drop(inputs);

    // The relayer runs on its own runtime, as in its own process, with as many threads as the
    // machine has cores.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name(RELAYER_THREADS)
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, listening) = tokio::sync::oneshot::channel();
    let server = rt.spawn(async move {
        // Channel requests write nothing; the store records worker sessions only.
        let store = Store::connect(&url, 4).await?;
        let mut config = RelayerConfig::default();
        // The benchmark's lanes all come from loopback: no per-client rate limit.
        config.listener.rate_per_second = 0;
        let relayer = Relayer::new(store.clone(), registry, config);
        relayer
            .shared()
            .channels
            .configure(Arc::new(Book(book)), Some(me));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let _ = ready.send(listener.local_addr()?);
        relayer
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await?;
        store.close().await;
        anyhow::Ok(())
    });
    let addr = listening.await.context("the relayer did not start")?;
    let mut handles = Vec::new();
    for s in &stubs {
        handles.push(
            s.connect(&format!("ws://{addr}"))
                .await
                .context("stub worker connect")?,
        );
    }

    let direct_server = DirectServer::start(&stubs).await?;
    let mut direct = Side::default();
    let mut relayed = Side::default();
    let mut cpu = CpuUsed::default();
    for round in 0..args.rounds {
        direct.merge(direct_side(args, direct_server.addr, &lanes_prepared, round).await?);
        let before = CpuUsed::snapshot();
        relayed.merge(relayer_side(args, addr, &lanes_prepared, round).await?);
        cpu.add(&before, &CpuUsed::snapshot());
    }
    direct_server.stop();
    let served: u32 = handles.iter().map(|h| h.jobs()).sum();

    // Workers leave first, so the relayer's shutdown has no session to wait for.
    for h in handles {
        h.disconnect();
    }
    let _ = stop.send(());
    server.await??;
    rt.shutdown_background();
    let sent = args.requests * args.rounds;
    if served as usize != sent {
        bail!("the stub workers served {served} requests through the relayer, {sent} were sent");
    }

    let heading = format!(
        "relayer bench, channel mode (v2): {} rounds of {} requests per side, {} in flight on {} channels, {} stub workers, {}-byte inputs, {} chunk(s); clients and stubs on {} thread(s), the relayer on its own runtime",
        args.rounds,
        args.requests,
        args.concurrency,
        args.concurrency.min(args.requests),
        args.workers,
        args.input_bytes,
        args.chunks,
        args.load_threads,
    );
    let signed: usize = lanes_prepared.iter().map(Vec::len).sum();
    let mut notes = vec![format!(
        "signed before the clock ({:.1} s): {signed} stub receipts and {signed} client vouchers, with each request's body and frame; on the clock each client checks the receipt it gets is byte for byte the one expected, and the relayer checks every receipt's signature as in service",
        prepared_in.as_secs_f64()
    )];
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / relayed.latencies.len().max(1) as f64;
    if let (Some(relayer), Some(all)) = (cpu.relayer, cpu.all) {
        let (relayer, all) = (per_request(relayer), per_request(all));
        notes.push(format!(
            "CPU per request routed: relayer threads {relayer:.1} us ({:.0} requests per CPU-second), clients and stubs {:.1} us (same process, same cores)",
            1e6 / relayer.max(1e-6),
            all - relayer
        ));
    }
    Ok(Report {
        heading,
        unit: "req",
        direct: ("direct  (client -> stub worker, WebSocket)", direct),
        relayed: ("relayer (POST /v2/requests + SSE, routed)", relayed),
        notes,
    })
}

/// Reads one request's SSE stream to its end and checks its receipt; when the receipt was in
/// hand (the direct side's clock stops at the same point: the receipt checked).
async fn read_stream(body: Incoming, step: &Step) -> anyhow::Result<Instant> {
    let mut body = body;
    let mut parser = SseParser::new();
    let mut received = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        for ev in parser.feed(&data)? {
            match ev.event.as_str() {
                "dispatched" | "chunk" => {}
                "receipt" => {
                    if received.is_some() {
                        bail!("a second receipt");
                    }
                    check_receipt(serde_json::from_str::<Seen>(&ev.data)?.receipt, step)?;
                    received = Some(Instant::now());
                }
                _ => match serde_json::from_str::<ChannelEvent>(&ev.data)? {
                    ChannelEvent::Failed { reason } => bail!("request failed: {reason}"),
                    ChannelEvent::Refused { code, message, .. } => {
                        bail!("refused: {code:?}: {message}")
                    }
                    other => bail!("unexpected event {}: {other:?}", ev.event),
                },
            }
        }
    }
    received.context("the stream ended without a receipt")
}

/// One round of the relayed side: each lane posts its requests on its own HTTP/1.1 connection
/// and reads each answer's stream to its end.
async fn relayer_side(
    args: &BenchArgs,
    addr: std::net::SocketAddr,
    prepared: &Lanes,
    round: usize,
) -> anyhow::Result<Side> {
    let prepared = prepared.clone();
    let host = addr.to_string();
    lanes(args.concurrency, args.requests, move |lane, mine| {
        let (prepared, host) = (prepared.clone(), host.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            let conn = tokio::spawn(conn);
            let steps = &prepared[lane][round * mine.len()..(round + 1) * mine.len()];
            let mut out = Vec::with_capacity(mine.len());
            for (step, i) in steps.iter().zip(mine) {
                let t = Instant::now();
                sender.ready().await?;
                let request = hyper::Request::post(CHANNEL_REQUESTS_PATH)
                    .header(hyper::header::HOST, &host)
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .header(hyper::header::ACCEPT, "text/event-stream")
                    .body(Full::new(step.body.clone()))?;
                let resp = sender.send_request(request).await?;
                if resp.status() != hyper::StatusCode::OK {
                    let status = resp.status();
                    let text = resp.into_body().collect().await?.to_bytes();
                    bail!(
                        "request {i} refused: {status} {}",
                        String::from_utf8_lossy(&text)
                    );
                }
                // Read to the stream's end (the connection carries the next request), timed to
                // the receipt.
                let received = read_stream(resp.into_body(), step)
                    .await
                    .with_context(|| format!("request {i}"))?;
                out.push(received - t);
            }
            drop(sender);
            conn.await??;
            Ok(out)
        }
    })
    .await
}

/// A stub worker answering channel dispatches on its own WebSocket endpoint.
struct DirectServer {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl DirectServer {
    /// Serves each stub at `/direct/{its index}`, so each lane talks to its channel's worker.
    async fn start(stubs: &[StubWorker]) -> anyhow::Result<Self> {
        // The stubs' answers served straight over a WebSocket: what a client would see talking
        // to the worker itself.
        let mut app = axum::Router::new();
        for (n, stub) in stubs.iter().enumerate() {
            let served = Arc::new(stub.clone());
            app = app.route(
                &format!("/direct/{n}"),
                axum::routing::get(move |ws: WebSocketUpgrade| {
                    let stub = served.clone();
                    async move { ws.on_upgrade(move |socket| direct_worker(stub, socket)) }
                }),
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // The baseline gets TCP_NODELAY like the relayer, so the comparison is of the work done.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, task })
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// One round of the direct side: each lane sends the same requests as `channel_dispatch`
/// frames over its own WebSocket to its channel's stub.
async fn direct_side(
    args: &BenchArgs,
    addr: std::net::SocketAddr,
    prepared: &Lanes,
    round: usize,
) -> anyhow::Result<Side> {
    let prepared = prepared.clone();
    let workers = usize::from(args.workers);
    lanes(args.concurrency, args.requests, move |lane, mine| {
        let prepared = prepared.clone();
        async move {
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
                format!("ws://{addr}/direct/{}", lane % workers),
                None,
                true,
            )
            .await?;
            let steps = &prepared[lane][round * mine.len()..(round + 1) * mine.len()];
            let mut out = Vec::with_capacity(mine.len());
            for (step, i) in steps.iter().zip(mine) {
                let t = Instant::now();
                ws.send(Message::Text(step.frame.clone())).await?;
                loop {
                    let Some(frame) = ws.next().await else {
                        bail!("direct worker closed")
                    };
                    let Message::Text(text) = frame? else {
                        continue;
                    };
                    let seen: Seen = serde_json::from_str(&text)?;
                    match seen.kind.as_str() {
                        "channel_chunk" => {}
                        "channel_done" => {
                            check_receipt(seen.receipt, step)
                                .with_context(|| format!("request {i}"))?;
                            break;
                        }
                        _ => match serde_json::from_str::<WorkerMessage>(&text)? {
                            WorkerMessage::ChannelRefused(r) => {
                                bail!("refused: {:?}: {}", r.code, r.message)
                            }
                            other => bail!("unexpected frame {other:?}"),
                        },
                    }
                }
                out.push(t.elapsed());
            }
            let _ = ws.close(None).await;
            Ok(out)
        }
    })
    .await
}

async fn direct_worker(stub: Arc<StubWorker>, mut socket: WebSocket) {
    while let Some(Ok(frame)) = socket.recv().await {
        let AxMessage::Text(text) = frame else {
            continue;
        };
        let Ok(RelayMessage::ChannelDispatch(d)) = serde_json::from_str::<RelayMessage>(&text)
        else {
            continue;
        };
        let Ok(frames) = stub.answer_channel_frames(&d) else {
            return;
        };
        // Written together and flushed once, as the stub does on its relayer session.
        for text in frames {
            if socket.feed(AxMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
        if socket.flush().await.is_err() {
            return;
        }
    }
}
