//! `GET /v1/worker`: the WebSocket workers dial. The challenge/auth handshake, admission against
//! the worker's on-chain record, then the session: heartbeats update its load, job frames go to
//! the dispatcher, and the session leaves the table when the worker goes quiet or away.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::PROTOCOL_VERSION;
use cocoon_sdk::relay::auth::auth_payload;
use cocoon_sdk::relay::worker::{
    Challenge, Hello, RelayMessage, SessionError, SessionErrorCode, Welcome, WorkerMessage,
};
use ed25519_dalek::{Signature, VerifyingKey};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::channels::{ChannelRouter, wire};
use crate::config::RelayerConfig;
use crate::dispatcher::Dispatcher;
use crate::metrics::Metrics;
use crate::registry::{OnChainWorker, WorkerRegistry, check_gpu_evidence, check_worker};
use crate::sessions::{Outbound, Session, Sessions};
use crate::store::{Store, WorkerRow};

/// Frames queued to one worker before the relayer treats it as stuck.
const OUTBOX_FRAMES: usize = 1024;

/// What a worker session works with, handed over when the router is built.
#[derive(Clone)]
pub struct SessionDeps {
    /// The table the session joins.
    pub sessions: Arc<Sessions>,
    /// Where its answers and its free capacity go.
    pub dispatcher: Dispatcher,
    /// Where its channel-mode answers go.
    pub channels: Arc<ChannelRouter>,
    /// Where its Worker record is read.
    pub registry: Arc<dyn WorkerRegistry>,
    /// Where it is recorded.
    pub store: Store,
    /// Session metrics.
    pub metrics: Arc<Metrics>,
    /// Timeouts and the relayer's identity.
    pub config: RelayerConfig,
    /// Fires when the relayer shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// `GET /v1/worker`: upgrades to the worker-session protocol.
pub async fn ws_handler(State(shared): State<SessionDeps>, ws: WebSocketUpgrade) -> Response {
    let limit = shared.config.max_body_bytes() * 2;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| run_session(shared, socket))
}

async fn send_frame(socket: &mut WebSocket, msg: &RelayMessage) -> bool {
    match serde_json::to_string(msg) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn refuse(
    shared: &SessionDeps,
    socket: &mut WebSocket,
    code: SessionErrorCode,
    message: String,
) {
    shared.metrics.reject_session(&format!("{code:?}"));
    warn!(target: "relayer::sessions", ?code, %message, "worker session refused");
    let _ = send_frame(socket, &RelayMessage::Error(SessionError { code, message })).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// Verifies the signature of a hello against the challenge it answers.
pub fn verify_hello(hello: &Hello, nonce: &[u8; 32], relayer_id: &str) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&hello.receipt_key) else {
        return false;
    };
    let payload = auth_payload(
        hello.version,
        nonce,
        relayer_id,
        &hello.worker,
        &hello.receipt_key,
    );
    key.verify_strict(&payload, &Signature::from_bytes(&hello.signature))
        .is_ok()
}

async fn read_hello(
    socket: &mut WebSocket,
    timeout: Duration,
) -> Result<Hello, (SessionErrorCode, String)> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.recv())
            .await
            .map_err(|_| (SessionErrorCode::Timeout, "no hello in time".to_string()))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str::<WorkerMessage>(&text) {
                    Ok(WorkerMessage::Hello(h)) => Ok(h),
                    Ok(_) => Err((SessionErrorCode::Malformed, "expected hello".into())),
                    Err(e) => Err((SessionErrorCode::Malformed, format!("bad hello: {e}"))),
                };
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => {
                return Err((SessionErrorCode::Malformed, "expected a text frame".into()));
            }
            Some(Err(e)) => return Err((SessionErrorCode::Malformed, e.to_string())),
            None => return Err((SessionErrorCode::Malformed, "closed before hello".into())),
        }
    }
}

type Refusal = (SessionErrorCode, String);

/// A worker that passed the handshake: its hello and what the chain says about it.
struct Admitted {
    hello: Hello,
    worker: String,
    chain: OnChainWorker,
}

async fn run_session(shared: SessionDeps, mut socket: WebSocket) {
    let admitted = match admit(&shared, &mut socket).await {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err((code, msg)) => return refuse(&shared, &mut socket, code, msg).await,
    };
    let Some((session, rx)) = open(&shared, &mut socket, admitted).await else {
        return;
    };
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_frames(sink, rx));
    serve_frames(&shared, &session, stream).await;
    close(&shared, session, writer).await;
}

/// The handshake: challenge, a signed hello of our protocol version, a genuine Worker on-chain
/// whose record matches the hello. `Ok(None)`: the socket went away.
async fn admit(shared: &SessionDeps, socket: &mut WebSocket) -> Result<Option<Admitted>, Refusal> {
    let nonce: [u8; 32] = rand::random();
    let challenge = Challenge {
        version: PROTOCOL_VERSION,
        nonce,
        relayer_id: shared.config.relayer_id.clone(),
    };
    if !send_frame(socket, &RelayMessage::Challenge(challenge)).await {
        return Ok(None);
    }
    let hello = read_hello(socket, shared.config.hello_timeout).await?;
    if hello.version != PROTOCOL_VERSION {
        let msg = format!(
            "relayer speaks version {PROTOCOL_VERSION}, worker {}",
            hello.version
        );
        return Err((SessionErrorCode::UnsupportedVersion, msg));
    }
    let worker = crate::address::normalize(&hello.worker)
        .map_err(|e| (SessionErrorCode::Malformed, e.to_string()))?;
    // The signature covers the address exactly as the worker sent it.
    if !verify_hello(&hello, &nonce, &shared.config.relayer_id) {
        return Err((
            SessionErrorCode::BadSignature,
            "signature does not verify".into(),
        ));
    }
    let chain = match shared.registry.lookup(&worker).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err((SessionErrorCode::NotRegistered, "no Worker contract".into()));
        }
        Err(e) => return Err((SessionErrorCode::ChainUnavailable, e.to_string())),
    };
    let now = u32::try_from(unix_now_i64()).unwrap_or(u32::MAX);
    check_worker(&hello, &chain, now)
        .map_err(|why| (SessionErrorCode::NotRegistered, why.to_string()))?;
    if shared.config.require_gpu_attestation {
        check_gpu_evidence(&hello.evidence, u64::from(now))
            .map_err(|why| (SessionErrorCode::NotRegistered, why.to_string()))?;
    }
    Ok(Some(Admitted {
        hello,
        worker,
        chain,
    }))
}

/// Records the worker, welcomes it and puts its session in the table (replacing an older one).
async fn open(
    shared: &SessionDeps,
    socket: &mut WebSocket,
    admitted: Admitted,
) -> Option<(Arc<Session>, mpsc::Receiver<Outbound>)> {
    let Admitted {
        hello,
        worker,
        chain,
    } = admitted;
    let row = WorkerRow {
        address: worker.clone(),
        receipt_key: chain.receipt_key,
        encryption_key: chain.encryption_key,
        models: hello.models.clone(),
        price_in: chain.price_in,
        price_out: chain.price_out,
        evidence_hash: chain.evidence_hash,
        attestation_kind: chain.attestation_kind,
        expires_at: chain.expires_at,
        last_seen: unix_now_i64(),
    };
    if let Err(e) = shared.store.upsert_worker(&row).await {
        warn!(target: "relayer::sessions", %worker, error = %e, "could not record worker");
    }

    let (tx, rx) = mpsc::channel::<Outbound>(OUTBOX_FRAMES);
    let session = Arc::new(Session {
        id: shared.sessions.next_id.fetch_add(1, Ordering::Relaxed) + 1,
        worker: worker.clone(),
        receipt_verifier: VerifyingKey::from_bytes(&chain.receipt_key).ok(),
        chain,
        models: hello.models.clone(),
        evidence: hello.evidence,
        tx,
        load: AtomicU32::new(0),
        capacity: AtomicU32::new(hello.capacity),
        assigned: AtomicU32::new(0),
        served_peak: AtomicU32::new(shared.sessions.earned_peak(&worker)),
        last_seen: Mutex::new(Instant::now()),
    });
    let welcome = Welcome {
        session_id: session.id,
        heartbeat_interval_ms: u64::try_from(shared.config.heartbeat_interval.as_millis())
            .unwrap_or(u64::MAX),
    };
    // Listed before the Welcome goes out, so a client that learns the worker is connected is
    // never told "offline"; what is dispatched meanwhile waits in the session's queue, which is
    // written only after the Welcome.
    if let Some(old) = shared.sessions.insert(session.clone()) {
        old.send(RelayMessage::Error(SessionError {
            code: SessionErrorCode::Replaced,
            message: "a new session of this worker replaced this one".into(),
        }));
        shared.dispatcher.session_closed(&old);
        shared.channels.session_closed(&old);
    }
    if !send_frame(socket, &RelayMessage::Welcome(welcome)).await {
        if shared.sessions.remove(&session) {
            shared.dispatcher.session_closed(&session);
            shared.channels.session_closed(&session);
        }
        return None;
    }
    shared
        .metrics
        .worker_sessions
        .set(shared.sessions.len() as i64);
    info!(target: "relayer::sessions", %worker, session = session.id, models = ?session.models, claimed_capacity = hello.capacity, believed_capacity = session.capacity(), "worker session open");
    shared.dispatcher.worker_free(&session);
    Some((session, rx))
}

/// Writes queued frames to the worker until an error frame (the last one) or the queue closes.
/// Frames queued together are written together and flushed once: under load one write carries
/// many dispatches instead of one system call each.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
) {
    'session: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            let (text, fatal) = match frame {
                Outbound::Message(msg) => match serde_json::to_string(&msg) {
                    Ok(text) => (text, matches!(msg, RelayMessage::Error(_))),
                    Err(_) => {
                        next = rx.try_recv().ok();
                        continue;
                    }
                },
                Outbound::Encoded(text) => (text, false),
            };
            if sink.feed(Message::Text(text.into())).await.is_err() {
                break 'session;
            }
            if fatal {
                let _ = sink.flush().await;
                break 'session;
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

/// Whether the session goes on after a frame.
enum Next {
    Continue,
    Close,
}

/// Reads the worker's frames until it goes quiet for longer than the session timeout, closes,
/// breaks the protocol, or the relayer shuts down.
async fn serve_frames(
    shared: &SessionDeps,
    session: &Arc<Session>,
    mut stream: futures_util::stream::SplitStream<WebSocket>,
) {
    let mut shutdown = shared.shutdown.clone();
    let timeout = shared.config.session_timeout();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                session.send(RelayMessage::Error(SessionError {
                    code: SessionErrorCode::ShuttingDown,
                    message: "relayer is shutting down".into(),
                }));
                return;
            }
            frame = tokio::time::timeout(timeout, stream.next()) => {
                let frame = match frame {
                    Err(_) => {
                        session.send(RelayMessage::Error(SessionError {
                            code: SessionErrorCode::Timeout,
                            message: "no heartbeat in time".into(),
                        }));
                        return;
                    }
                    Ok(None) | Ok(Some(Err(_))) => return,
                    Ok(Some(Ok(f))) => f,
                };
                session.touch();
                if let Next::Close = on_frame(shared, session, frame) {
                    return;
                }
            }
        }
    }
}

/// One frame from the worker: a heartbeat updates its load, job messages go to the dispatcher.
fn on_frame(shared: &SessionDeps, session: &Arc<Session>, frame: Message) -> Next {
    let malformed = |message: String| {
        session.send(RelayMessage::Error(SessionError {
            code: SessionErrorCode::Malformed,
            message,
        }));
        Next::Close
    };
    let text = match frame {
        Message::Text(t) => t,
        Message::Close(_) => return Next::Close,
        Message::Ping(_) | Message::Pong(_) => return Next::Continue,
        Message::Binary(_) => return malformed("text frames only".into()),
    };
    // The frame that ends each request, parsed once with its receipt kept as encoded (the
    // relayer checks the parsed receipt and hands the client these same bytes).
    if let Some((done, receipt)) = wire::parse_done(&text) {
        shared
            .channels
            .worker_frame(session, WorkerMessage::ChannelDone(done), Some(receipt));
        return Next::Continue;
    }
    match serde_json::from_str::<WorkerMessage>(&text) {
        Ok(WorkerMessage::Heartbeat(hb)) => {
            session.load.store(hb.load, Ordering::Relaxed);
            session.capacity.store(hb.capacity, Ordering::Relaxed);
            debug!(target: "relayer::sessions", worker = %session.worker, load = hb.load, capacity = hb.capacity, "heartbeat");
            // A lookup in its own queues: a flood of heartbeats costs no scan.
            if session.load() < session.capacity() {
                shared.dispatcher.worker_free(session);
            }
            Next::Continue
        }
        Ok(WorkerMessage::Hello(_)) => malformed("hello twice".into()),
        Ok(
            msg @ (WorkerMessage::ChannelChunk(_)
            | WorkerMessage::ChannelDone(_)
            | WorkerMessage::ChannelRefused(_)),
        ) => {
            shared.channels.worker_frame(session, msg, None);
            Next::Continue
        }
        Ok(msg) => {
            shared.dispatcher.worker_event(session, msg);
            Next::Continue
        }
        // Never echo the frame: it may hold sealed bytes.
        Err(e) => malformed(format!("bad frame: {e}")),
    }
}

/// Takes the session out of the table and lets the writer flush its last frame.
async fn close(
    shared: &SessionDeps,
    session: Arc<Session>,
    mut writer: tokio::task::JoinHandle<()>,
) {
    if shared.sessions.remove(&session) {
        shared.dispatcher.session_closed(&session);
        shared.channels.session_closed(&session);
    }
    shared
        .metrics
        .worker_sessions
        .set(shared.sessions.len() as i64);
    info!(target: "relayer::sessions", worker = %session.worker, session = session.id, "worker session closed");
    // Give the writer a moment to flush a final error frame; other holders of the session (an
    // attempt being failed over) must not keep the socket open.
    drop(session);
    if tokio::time::timeout(Duration::from_millis(500), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}
