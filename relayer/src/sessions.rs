//! Worker sessions: the WebSocket endpoint workers dial, the challenge/auth handshake, and the
//! table of live sessions the dispatcher picks from.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use cocoon_sdk::relay::PROTOCOL_VERSION;
use cocoon_sdk::relay::auth::auth_payload;
use cocoon_sdk::relay::client::WorkerInfo;
use cocoon_sdk::relay::worker::{
    Challenge, Hello, RelayMessage, SessionError, SessionErrorCode, Welcome, WorkerMessage,
};
use ed25519_dalek::{Signature, VerifyingKey};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::registry::{OnChainWorker, check_worker};
use crate::relayer::Shared;
use crate::store::{WorkerRow, now_unix};

/// Frames queued to one worker before the relayer treats it as stuck.
const OUTBOX_FRAMES: usize = 1024;

/// One authenticated worker connection.
#[derive(Debug)]
pub struct Session {
    /// Relayer-local id.
    pub id: u64,
    /// Worker contract address (raw).
    pub worker: String,
    /// What the chain and the hello say about it.
    pub chain: OnChainWorker,
    /// Models it serves in this session.
    pub models: Vec<u32>,
    /// Evidence as served.
    pub evidence: Vec<u8>,
    tx: mpsc::Sender<RelayMessage>,
    load: AtomicU32,
    capacity: AtomicU32,
    assigned: AtomicU32,
    last_seen: Mutex<Instant>,
}

impl Session {
    /// Queues a frame to the worker; `false` when the session is gone or hopelessly behind.
    pub fn send(&self, msg: RelayMessage) -> bool {
        self.tx.try_send(msg).is_ok()
    }

    /// Jobs running (the larger of what the worker reports and what the relayer assigned).
    pub fn load(&self) -> u32 {
        self.load
            .load(Ordering::Relaxed)
            .max(self.assigned.load(Ordering::Relaxed))
    }

    /// Jobs it can run at once.
    pub fn capacity(&self) -> u32 {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Heartbeats on time.
    pub fn healthy(&self, timeout: Duration) -> bool {
        self.last_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            < timeout
    }

    /// Counts a job assigned by this relayer (released with [`Session::release`]).
    pub fn assign(&self) {
        self.assigned.fetch_add(1, Ordering::Relaxed);
    }

    /// Releases an assigned job.
    pub fn release(&self) {
        let _ = self
            .assigned
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    fn touch(&self) {
        *self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// The public view handed to clients.
    pub fn info(&self, heartbeat_timeout: Duration) -> WorkerInfo {
        WorkerInfo {
            worker: self.worker.clone(),
            receipt_key: self.chain.receipt_key,
            encryption_key: self.chain.encryption_key,
            models: self.models.clone(),
            price_in: self.chain.price_in,
            price_out: self.chain.price_out,
            evidence: self.evidence.clone(),
            evidence_hash: self.chain.evidence_hash,
            attestation_kind: self.chain.attestation_kind,
            attestation_expires_at: self.chain.expires_at,
            load: self.load(),
            capacity: self.capacity(),
            healthy: self.healthy(heartbeat_timeout),
        }
    }
}

/// The live sessions, one per worker address (a new session replaces the old one).
#[derive(Debug, Default)]
pub struct Sessions {
    by_worker: RwLock<HashMap<String, Arc<Session>>>,
    next_id: AtomicU64,
}

impl Sessions {
    /// The session of a worker.
    pub fn get(&self, worker: &str) -> Option<Arc<Session>> {
        self.by_worker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(worker)
            .cloned()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.by_worker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.by_worker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, session: Arc<Session>) -> Option<Arc<Session>> {
        self.by_worker
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.worker.clone(), session)
    }

    fn remove(&self, session: &Session) -> bool {
        let mut map = self.by_worker.write().unwrap_or_else(|e| e.into_inner());
        if map.get(&session.worker).is_some_and(|s| s.id == session.id) {
            map.remove(&session.worker);
            true
        } else {
            false
        }
    }
}

/// `GET /v1/worker`: upgrades to the worker-session protocol.
pub async fn ws_handler(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
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

async fn refuse(shared: &Shared, socket: &mut WebSocket, code: SessionErrorCode, message: String) {
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

async fn run_session(shared: Arc<Shared>, mut socket: WebSocket) {
    let nonce: [u8; 32] = rand::random();
    let challenge = Challenge {
        version: PROTOCOL_VERSION,
        nonce,
        relayer_id: shared.config.relayer_id.clone(),
    };
    if !send_frame(&mut socket, &RelayMessage::Challenge(challenge)).await {
        return;
    }
    let hello = match read_hello(&mut socket, shared.config.hello_timeout).await {
        Ok(h) => h,
        Err((code, msg)) => return refuse(&shared, &mut socket, code, msg).await,
    };
    if hello.version != PROTOCOL_VERSION {
        let msg = format!(
            "relayer speaks version {PROTOCOL_VERSION}, worker {}",
            hello.version
        );
        return refuse(
            &shared,
            &mut socket,
            SessionErrorCode::UnsupportedVersion,
            msg,
        )
        .await;
    }
    let worker = match crate::address::normalize(&hello.worker) {
        Ok(w) => w,
        Err(e) => {
            return refuse(
                &shared,
                &mut socket,
                SessionErrorCode::Malformed,
                e.to_string(),
            )
            .await;
        }
    };
    // The signature covers the address exactly as the worker sent it.
    if !verify_hello(&hello, &nonce, &shared.config.relayer_id) {
        return refuse(
            &shared,
            &mut socket,
            SessionErrorCode::BadSignature,
            "signature does not verify".into(),
        )
        .await;
    }
    let chain = match shared.registry.lookup(&worker).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return refuse(
                &shared,
                &mut socket,
                SessionErrorCode::NotRegistered,
                "no Worker contract".into(),
            )
            .await;
        }
        Err(e) => {
            return refuse(
                &shared,
                &mut socket,
                SessionErrorCode::ChainUnavailable,
                e.to_string(),
            )
            .await;
        }
    };
    let now = u32::try_from(now_unix()).unwrap_or(u32::MAX);
    if let Err(why) = check_worker(&hello, &chain, now) {
        return refuse(
            &shared,
            &mut socket,
            SessionErrorCode::NotRegistered,
            why.to_string(),
        )
        .await;
    }
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
        last_seen: now_unix(),
    };
    if let Err(e) = shared.store.upsert_worker(&row).await {
        warn!(target: "relayer::sessions", %worker, error = %e, "could not record worker");
    }

    let (tx, mut rx) = mpsc::channel::<RelayMessage>(OUTBOX_FRAMES);
    let session = Arc::new(Session {
        id: shared.sessions.next_id.fetch_add(1, Ordering::Relaxed) + 1,
        worker: worker.clone(),
        chain,
        models: hello.models.clone(),
        evidence: hello.evidence,
        tx,
        load: AtomicU32::new(0),
        capacity: AtomicU32::new(hello.capacity),
        assigned: AtomicU32::new(0),
        last_seen: Mutex::new(Instant::now()),
    });
    let welcome = Welcome {
        session_id: session.id,
        heartbeat_interval_ms: u64::try_from(shared.config.heartbeat_interval.as_millis())
            .unwrap_or(u64::MAX),
    };
    if !send_frame(&mut socket, &RelayMessage::Welcome(welcome)).await {
        return;
    }
    if let Some(old) = shared.sessions.insert(session.clone()) {
        old.send(RelayMessage::Error(SessionError {
            code: SessionErrorCode::Replaced,
            message: "a new session of this worker replaced this one".into(),
        }));
        shared.dispatcher.session_closed(&old);
    }
    shared
        .metrics
        .worker_sessions
        .set(shared.sessions.len() as i64);
    info!(target: "relayer::sessions", %worker, session = session.id, models = ?session.models, capacity = hello.capacity, "worker session open");
    shared.dispatcher.worker_available(&shared);

    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let fatal = matches!(msg, RelayMessage::Error(_));
            let Ok(text) = serde_json::to_string(&msg) else {
                continue;
            };
            if sink.send(Message::Text(text.into())).await.is_err() || fatal {
                break;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });

    let mut shutdown = shared.shutdown_signal();
    let timeout = shared.config.session_timeout();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                session.send(RelayMessage::Error(SessionError {
                    code: SessionErrorCode::ShuttingDown,
                    message: "relayer is shutting down".into(),
                }));
                break;
            }
            frame = tokio::time::timeout(timeout, stream.next()) => {
                let frame = match frame {
                    Err(_) => {
                        session.send(RelayMessage::Error(SessionError {
                            code: SessionErrorCode::Timeout,
                            message: "no heartbeat in time".into(),
                        }));
                        break;
                    }
                    Ok(None) | Ok(Some(Err(_))) => break,
                    Ok(Some(Ok(f))) => f,
                };
                session.touch();
                let text = match frame {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        session.send(RelayMessage::Error(SessionError { code: SessionErrorCode::Malformed, message: "text frames only".into() }));
                        break;
                    }
                };
                match serde_json::from_str::<WorkerMessage>(&text) {
                    Ok(WorkerMessage::Heartbeat(hb)) => {
                        session.load.store(hb.load, Ordering::Relaxed);
                        session.capacity.store(hb.capacity, Ordering::Relaxed);
                        debug!(target: "relayer::sessions", worker = %session.worker, load = hb.load, capacity = hb.capacity, "heartbeat");
                        if hb.load < hb.capacity {
                            shared.dispatcher.worker_available(&shared);
                        }
                    }
                    Ok(WorkerMessage::Hello(_)) => {
                        session.send(RelayMessage::Error(SessionError { code: SessionErrorCode::Malformed, message: "hello twice".into() }));
                        break;
                    }
                    Ok(msg) => shared.dispatcher.worker_event(&session, msg),
                    Err(e) => {
                        // Never echo the frame: it may hold sealed bytes.
                        session.send(RelayMessage::Error(SessionError { code: SessionErrorCode::Malformed, message: format!("bad frame: {e}") }));
                        break;
                    }
                }
            }
        }
    }
    if shared.sessions.remove(&session) {
        shared.dispatcher.session_closed(&session);
    }
    shared
        .metrics
        .worker_sessions
        .set(shared.sessions.len() as i64);
    info!(target: "relayer::sessions", worker = %session.worker, session = session.id, "worker session closed");
    // Give the writer a moment to flush a final error frame; other holders of the session (an
    // attempt being failed over) must not keep the socket open.
    drop(session);
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_millis(500), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}
