//! Channel mode (protocol v2): each lane is one client with its own channel, sending requests
//! with increasing seqs, each ticket carrying the voucher that pays the previous receipt, and
//! reading each SSE stream to its end. The relayer learns the channels through the same
//! [`ChannelBook`] seam the service fills from the chain (here a book held in memory, as the
//! chain would answer), caches them, checks each ticket, routes it to the channel's worker and
//! checks the receipt it passes back. The baseline sends the same tickets as `ChannelDispatch`
//! frames straight to a stub worker over a WebSocket.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use cocoon_relayer::channels::{ChannelBook, ChannelReadError};
use cocoon_relayer::relayer::Relayer;
use cocoon_relayer::store::Store;
use cocoon_relayer::{RelayerConfig, StaticRegistry};
use cocoon_sdk::channel::{
    ACC_ZERO, ChannelRef, ChannelState, SignedChannelReceipt, SignedVoucher, Voucher, chain_step,
};
use cocoon_sdk::client::sse::SseParser;
use cocoon_sdk::relay::channel::{ChannelDispatch, ChannelEvent, ChannelSubmit, ChannelTicket};
use cocoon_sdk::relay::worker::{RelayMessage, WorkerMessage};
use cocoon_sdk::relay::{CHANNEL_REQUESTS_PATH, PROTOCOL_VERSION};
use cocoon_sdk::tlb::TonAddress;
use cocoon_testkit::StubWorker;
use ed25519_dalek::SigningKey;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

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

/// One client's side of its channel: the next seq and the latest voucher.
struct Client {
    channel: ChannelRef,
    key: SigningKey,
    seq: u32,
    cumulative: u128,
    acc: [u8; 32],
    voucher: Option<SignedVoucher>,
}

impl Client {
    fn new(channel: ChannelRef, key: SigningKey) -> Self {
        Self {
            channel,
            key,
            seq: 0,
            cumulative: 0,
            acc: ACC_ZERO,
            voucher: None,
        }
    }

    /// The next request's ticket: the next seq, carrying the voucher for what came before.
    fn ticket(&self) -> ChannelTicket {
        ChannelTicket {
            channel: self.channel.clone(),
            seq: self.seq + 1,
            voucher: self.voucher.clone(),
        }
    }

    /// Pays a receipt: the next voucher covers it. (The stub chains no accumulator and its
    /// output commitment is a constant, so the client's full receipt check is not run; the
    /// relayer's is.)
    fn paid(&mut self, receipt: &SignedChannelReceipt) -> anyhow::Result<()> {
        let b = &receipt.body;
        if b.channel != self.channel || b.seq != self.seq + 1 {
            bail!(
                "receipt for seq {} of channel {}, expected seq {} of {}",
                b.seq,
                b.channel.channel_id,
                self.seq + 1,
                self.channel.channel_id
            );
        }
        self.seq = b.seq;
        self.cumulative += b.cost;
        self.acc = chain_step(&self.acc, &b.hash()?);
        self.voucher = Some(
            Voucher {
                channel: self.channel.clone(),
                cumulative: self.cumulative,
                last_seq: self.seq,
                acc: self.acc,
                is_final: false,
            }
            .sign(&self.key)?,
        );
        Ok(())
    }
}

/// The relayer's own threads, named so their CPU time can be told from the clients' and the
/// stubs' (all share one process and the machine's cores).
const RELAYER_THREADS: &str = "relayer-rt";

/// CPU time the relayer's threads have used so far (Linux `schedstat`; `None` elsewhere).
fn relayer_cpu() -> Option<Duration> {
    let mut total = 0u64;
    let mut seen = false;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != RELAYER_THREADS {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        seen = true;
    }
    seen.then(|| Duration::from_nanos(total))
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
    let stubs: Vec<StubWorker> = (0..args.workers)
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

    let inputs: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.requests)
            .map(|i| sealed_input(i, args.input_bytes))
            .collect(),
    );
    let clients = || -> Lanes {
        Arc::new(
            channels
                .iter()
                .map(|c| tokio::sync::Mutex::new(Client::new(c.clone(), voucher_key.clone())))
                .collect(),
        )
    };
    let (direct_clients, relayer_clients) = (clients(), clients());
    let direct_server = DirectServer::start(&stubs[0]).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .tcp_nodelay(true)
        .build()?;
    let base = format!("http://{addr}");
    let mut direct = Side::default();
    let mut relayed = Side::default();
    let mut relayer_cpu_used = Some(Duration::ZERO);
    for _ in 0..args.rounds {
        direct.merge(direct_side(args, direct_server.addr, &direct_clients, inputs.clone()).await?);
        let cpu_before = relayer_cpu();
        relayed.merge(relayer_side(args, &http, &base, &relayer_clients, inputs.clone()).await?);
        relayer_cpu_used = match (relayer_cpu_used, cpu_before, relayer_cpu()) {
            (Some(sum), Some(before), Some(after)) => Some(sum + after.saturating_sub(before)),
            _ => None,
        };
    }
    direct_server.stop();
    let served: u32 = handles.iter().map(|h| h.jobs()).sum();

    // Workers leave first, so the relayer's shutdown has no session to wait for.
    drop(http);
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
        "relayer bench, channel mode (v2): {} rounds of {} requests per side, {} in flight on {} channels, {} stub workers, {}-byte inputs, {} chunk(s)",
        args.rounds,
        args.requests,
        args.concurrency,
        args.concurrency.min(args.requests),
        args.workers,
        args.input_bytes,
        args.chunks,
    );
    let mut notes = Vec::new();
    if let Some(cpu) = relayer_cpu_used {
        let per = cpu.as_secs_f64() / relayed.latencies.len().max(1) as f64;
        notes.push(format!(
            "relayer threads' own CPU: {:.1} us per request routed ({:.0} requests per CPU-second; the rest of the machine ran the clients and the stubs)",
            per * 1e6,
            1.0 / per.max(1e-12)
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

/// Each lane's client, kept across rounds (seqs go on).
type Lanes = Arc<Vec<tokio::sync::Mutex<Client>>>;

/// Reads one request's SSE stream to its end; its receipt.
async fn read_stream(mut resp: reqwest::Response) -> anyhow::Result<SignedChannelReceipt> {
    let mut parser = SseParser::new();
    let mut receipt = None;
    while let Some(bytes) = resp.chunk().await? {
        for ev in parser.feed(&bytes)? {
            match serde_json::from_str::<ChannelEvent>(&ev.data)? {
                ChannelEvent::Receipt { receipt: r, .. } => receipt = Some(r),
                ChannelEvent::Failed { reason } => bail!("request failed: {reason}"),
                ChannelEvent::Refused { code, message, .. } => {
                    bail!("refused: {code:?}: {message}")
                }
                ChannelEvent::Dispatched { .. } | ChannelEvent::Chunk { .. } => {}
            }
        }
    }
    receipt.context("the stream ended without a receipt")
}

async fn relayer_side(
    args: &BenchArgs,
    client: &reqwest::Client,
    http: &str,
    clients: &Lanes,
    inputs: Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<Side> {
    let url = format!("{http}{CHANNEL_REQUESTS_PATH}");
    let clients = clients.clone();
    let client = client.clone();
    lanes(args.concurrency, inputs.len(), move |lane, mine| {
        let (client, url, clients, inputs) =
            (client.clone(), url.clone(), clients.clone(), inputs.clone());
        async move {
            let mut me = clients[lane].lock().await;
            let mut out = Vec::with_capacity(mine.len());
            for i in mine {
                let t = Instant::now();
                let submit = ChannelSubmit {
                    version: PROTOCOL_VERSION,
                    tickets: vec![me.ticket()],
                    model_id: MODEL,
                    max_tokens: MAX_TOKENS,
                    sealed_input: inputs[i].clone(),
                };
                let resp = client
                    .post(&url)
                    .header(reqwest::header::ACCEPT, "text/event-stream")
                    .json(&submit)
                    .send()
                    .await?;
                if resp.status().as_u16() != 200 {
                    bail!(
                        "request {i} refused: {} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    );
                }
                let receipt = read_stream(resp).await?;
                out.push(t.elapsed());
                me.paid(&receipt)?;
            }
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
    async fn start(stub: &StubWorker) -> anyhow::Result<Self> {
        // The stub's answers served straight over a WebSocket: what a client would see talking
        // to the worker itself.
        let served = Arc::new(stub.clone());
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
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, task })
    }

    fn stop(self) {
        self.task.abort();
    }
}

async fn direct_side(
    args: &BenchArgs,
    addr: std::net::SocketAddr,
    clients: &Lanes,
    inputs: Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<Side> {
    let clients = clients.clone();
    lanes(args.concurrency, inputs.len(), move |lane, mine| {
        let (clients, inputs) = (clients.clone(), inputs.clone());
        async move {
            let mut me = clients[lane].lock().await;
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
                format!("ws://{addr}/direct"),
                None,
                true,
            )
            .await?;
            let mut out = Vec::with_capacity(mine.len());
            for i in mine {
                let t = Instant::now();
                let d = ChannelDispatch {
                    request_id: i as u64 + 1,
                    attempt: 1,
                    ticket: me.ticket(),
                    model_id: MODEL,
                    max_tokens: MAX_TOKENS,
                    sealed_input: inputs[i].clone(),
                };
                ws.send(Message::Text(
                    serde_json::to_string(&RelayMessage::ChannelDispatch(d))?.into(),
                ))
                .await?;
                let receipt = loop {
                    let Some(frame) = ws.next().await else {
                        bail!("direct worker closed")
                    };
                    let Message::Text(text) = frame? else {
                        continue;
                    };
                    match serde_json::from_str::<WorkerMessage>(&text)? {
                        WorkerMessage::ChannelDone(done) => break done.receipt,
                        WorkerMessage::ChannelRefused(r) => {
                            bail!("refused: {:?}: {}", r.code, r.message)
                        }
                        _ => {}
                    }
                };
                out.push(t.elapsed());
                me.paid(&receipt)?;
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
        for reply in stub.answer_channel(&d) {
            let Ok(text) = serde_json::to_string(&reply) else {
                return;
            };
            if socket.send(AxMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}
