//! The node's session with its relayer: dial out (works behind NAT), answer the challenge with a
//! Hello signed by the receipt key, heartbeat load and capacity, run dispatched jobs, honour
//! cancels; reconnect with exponential backoff whenever the connection drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cocoon_sdk::relay::auth::auth_payload;
use cocoon_sdk::relay::channel::{ChannelRefusal, ChannelRefused};
use cocoon_sdk::relay::worker::{
    Heartbeat, Hello, JobFailed, JobFailure, RelayMessage, WorkerMessage,
};
use cocoon_sdk::relay::{PROTOCOL_VERSION, WORKER_WS_PATH};
use ed25519_dalek::Signer as _;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::NodeContext;
use super::error::{NodeError, Result};

/// First reconnect delay.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Dialling and the challenge/hello exchange must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A session that lasted this long resets the backoff.
const STABLE_SESSION: Duration = Duration::from_secs(30);

/// The relayer's worker endpoint for a configured URL: `http(s)://` becomes `ws(s)://`, and the
/// worker path is appended unless already there.
pub fn worker_ws_url(relayer_url: &str) -> Result<String> {
    let url = relayer_url.trim().trim_end_matches('/');
    let url = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if url.starts_with("ws://") || url.starts_with("wss://") {
        url.to_owned()
    } else {
        return Err(NodeError::Config(format!(
            "relayer URL {relayer_url:?} must start with ws://, wss://, http:// or https://"
        )));
    };
    Ok(if url.ends_with(WORKER_WS_PATH) {
        url
    } else {
        format!("{url}{WORKER_WS_PATH}")
    })
}

/// How a session ended without a transport error.
enum End {
    /// Shutdown requested and every job drained.
    Shutdown,
    /// The node re-attested: jobs drained, reconnect at once with the new evidence.
    Reconnect,
}

/// Keeps a session up until `shutdown` turns true, then drains the jobs in flight. Each change of
/// `reattested` (new evidence on-chain) drains the session and reconnects with the new Hello.
pub(crate) async fn run(
    ctx: Arc<NodeContext>,
    url: String,
    mut shutdown: watch::Receiver<bool>,
    mut reattested: watch::Receiver<u64>,
) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let started = Instant::now();
        match session(&ctx, &url, &mut shutdown, &mut reattested).await {
            Ok(End::Shutdown) => break,
            Ok(End::Reconnect) => {
                ctx.set_disconnected();
                info!(target: "worker::node::session", %url, "reconnecting with the renewed evidence");
                backoff = INITIAL_BACKOFF;
                continue;
            }
            Err(e) => {
                ctx.set_disconnected();
                warn!(target: "worker::node::session", %url, error = %e, retry_ms = backoff.as_millis() as u64, "relayer session ended");
            }
        }
        if started.elapsed() >= STABLE_SESSION {
            backoff = INITIAL_BACKOFF;
        }
        let jitter =
            Duration::from_millis(rand::random::<u64>() % (backoff.as_millis() as u64 / 4 + 1));
        tokio::select! {
            () = tokio::time::sleep(backoff + jitter) => {}
            _ = shutdown.changed() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    ctx.set_disconnected();
    // Jobs of a dropped session still run to the end (their output has nowhere to go, but the
    // ledger and the load must settle before the node reports it stopped).
    while ctx.load() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_relay_message<S>(ws: &mut S) -> std::result::Result<RelayMessage, String>
where
    S: futures_util::Stream<
            Item = std::result::Result<Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t).map_err(|e| format!("malformed frame: {e}"));
            }
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

fn frame(msg: &WorkerMessage) -> Message {
    Message::Text(
        serde_json::to_string(msg)
            .expect("worker messages always serialise")
            .into(),
    )
}

/// One session: handshake, then serve until the connection drops (`Err`), or a requested
/// shutdown or a re-attestation has drained every job (`Ok`).
async fn session(
    ctx: &Arc<NodeContext>,
    url: &str,
    shutdown: &mut watch::Receiver<bool>,
    reattested: &mut watch::Receiver<u64>,
) -> std::result::Result<End, String> {
    // The Hello below carries the evidence in force now; earlier renewals are already in it.
    reattested.borrow_and_update();
    let (ws, welcome) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(ctx, url))
        .await
        .map_err(|_| "handshake timed out".to_string())??;
    let (mut sink, mut stream) = ws.split();
    info!(target: "worker::node::session", %url, session = welcome.session_id, worker = %ctx.address_hex, "connected to relayer");
    ctx.connected.send_replace(true);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<WorkerMessage>();
    let beat = Duration::from_millis(welcome.heartbeat_interval_ms.max(100));
    let mut heartbeat = tokio::time::interval(beat);
    let mut drain_check = tokio::time::interval(Duration::from_millis(50));
    let mut draining = *shutdown.borrow();
    // Re-attested: the relayer still holds the old evidence. New jobs are refused (the relayer
    // fails over), jobs in flight finish on this session, then the node reconnects.
    let mut rolling = false;
    loop {
        tokio::select! {
            Some(msg) = out_rx.recv() => {
                // Whatever else is already queued (a last chunk and its receipt) goes out in
                // the same write: nothing waits for it, and the relayer reads it at once.
                sink.feed(frame(&msg)).await.map_err(|e| e.to_string())?;
                while let Ok(msg) = out_rx.try_recv() {
                    sink.feed(frame(&msg)).await.map_err(|e| e.to_string())?;
                }
                sink.flush().await.map_err(|e| e.to_string())?;
            }
            _ = heartbeat.tick() => {
                let hb = WorkerMessage::Heartbeat(Heartbeat { load: ctx.load(), capacity: ctx.capacity });
                sink.send(frame(&hb)).await.map_err(|e| e.to_string())?;
            }
            _ = drain_check.tick(), if draining || rolling => {
                if ctx.load() == 0 {
                    while let Ok(msg) = out_rx.try_recv() {
                        sink.send(frame(&msg)).await.map_err(|e| e.to_string())?;
                    }
                    let _ = sink.close().await;
                    info!(target: "worker::node::session", reattested = rolling && !draining, "drained: session closed");
                    return Ok(if draining { End::Shutdown } else { End::Reconnect });
                }
            }
            changed = reattested.changed(), if !rolling => {
                if changed.is_ok() {
                    info!(target: "worker::node::session", load = ctx.load(), "re-attested: finishing jobs in flight, then reconnecting");
                    rolling = true;
                }
            }
            changed = shutdown.changed(), if !draining => {
                if changed.is_err() || *shutdown.borrow() {
                    info!(target: "worker::node::session", load = ctx.load(), "shutting down: finishing jobs in flight");
                    draining = true;
                }
            }
            msg = next_relay_message(&mut stream) => {
                match msg? {
                    RelayMessage::Dispatch(d) => {
                        debug!(target: "worker::node::session", job = %d.job, attempt = d.attempt, model = d.model_id, "dispatch");
                        let refuse = |message: &str| WorkerMessage::JobFailed(JobFailed {
                            job: d.job.clone(),
                            attempt: d.attempt,
                            code: JobFailure::Busy,
                            message: message.into(),
                        });
                        if draining {
                            let _ = out_tx.send(refuse("shutting down"));
                        } else if rolling {
                            let _ = out_tx.send(refuse("re-attesting: reconnecting shortly"));
                        } else if !ctx.try_acquire() {
                            let _ = out_tx.send(refuse("at capacity"));
                        } else {
                            let cancel = Arc::new(AtomicBool::new(false));
                            let key = (d.job.clone(), d.attempt);
                            ctx.cancels.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), cancel.clone());
                            let (ctx, out) = (ctx.clone(), out_tx.clone());
                            tokio::spawn(async move {
                                let receipt = super::job::serve(ctx.clone(), d, out, cancel).await;
                                ctx.cancels.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                                if let Some(r) = receipt {
                                    ctx.jobs_served.fetch_add(1, Ordering::SeqCst);
                                    ctx.queue_receipt(r);
                                }
                                ctx.release();
                            });
                        }
                    }
                    RelayMessage::Cancel(c) => {
                        let key = (c.job.clone(), c.attempt);
                        if let Some(flag) = ctx.cancels.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
                            info!(target: "worker::node::session", job = %c.job, attempt = c.attempt, reason = %c.reason, "cancel");
                            flag.store(true, Ordering::SeqCst);
                        }
                    }
                    RelayMessage::Error(e) => {
                        return Err(format!("relayer error {:?}: {}", e.code, e.message));
                    }
                    RelayMessage::Challenge(_) | RelayMessage::Welcome(_) => {
                        return Err("unexpected handshake message mid-session".into());
                    }
                    RelayMessage::ChannelDispatch(d) => {
                        debug!(target: "worker::node::session", request = d.request_id, attempt = d.attempt, channel = d.ticket.channel.channel_id, seq = d.ticket.seq, "channel dispatch");
                        let busy = if draining {
                            Some("shutting down")
                        } else if rolling {
                            Some("re-attesting: reconnecting shortly")
                        } else {
                            None
                        };
                        match (&ctx.channels, busy) {
                            (None, _) => {
                                let _ = out_tx.send(channel_refused(&d, ChannelRefusal::Internal, "this worker node serves a v1 Root: no channel mode"));
                            }
                            (Some(_), Some(why)) => {
                                let _ = out_tx.send(channel_refused(&d, ChannelRefusal::Busy, why));
                            }
                            (Some(_), None) if !ctx.try_acquire() => {
                                let _ = out_tx.send(channel_refused(&d, ChannelRefusal::Busy, "at capacity"));
                            }
                            (Some(desk), None) => {
                                let (ctx, desk, out) = (ctx.clone(), desk.clone(), out_tx.clone());
                                tokio::spawn(async move {
                                    if super::channel_serve::serve(ctx.clone(), desk, d, out).await {
                                        ctx.jobs_served.fetch_add(1, Ordering::SeqCst);
                                    }
                                    ctx.release();
                                });
                            }
                        }
                    }
                    RelayMessage::ChannelVoucher(v) => match &ctx.channels {
                        None => {
                            debug!(target: "worker::node::session", channel = v.channel.channel_id, "voucher on a v1 Root; dropped");
                        }
                        Some(desk) => {
                            let desk = desk.clone();
                            tokio::spawn(async move {
                                match desk.push_voucher(&v.channel, &v.voucher).await {
                                    Ok(intake) => debug!(target: "worker::node::session", channel = v.channel.channel_id, seq = v.voucher.body.last_seq, ?intake, "voucher taken"),
                                    Err(r) => warn!(target: "worker::node::session", channel = v.channel.channel_id, seq = v.voucher.body.last_seq, code = ?r.code, reason = %r.message, "voucher refused"),
                                }
                            });
                        }
                    },
                }
            }
        }
    }
}

fn channel_refused(
    d: &cocoon_sdk::relay::channel::ChannelDispatch,
    code: ChannelRefusal,
    message: &str,
) -> WorkerMessage {
    WorkerMessage::ChannelRefused(ChannelRefused {
        request_id: d.request_id,
        attempt: d.attempt,
        code,
        message: message.into(),
        expected_seq: None,
        receipt: None,
    })
}

async fn handshake(
    ctx: &NodeContext,
    url: &str,
) -> std::result::Result<(Ws, cocoon_sdk::relay::worker::Welcome), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let challenge = match next_relay_message(&mut ws).await? {
        RelayMessage::Challenge(c) => c,
        RelayMessage::Error(e) => return Err(format!("refused: {:?}: {}", e.code, e.message)),
        other => return Err(format!("expected a challenge, got {other:?}")),
    };
    if challenge.version != PROTOCOL_VERSION {
        return Err(format!(
            "relayer speaks protocol version {}, this node {PROTOCOL_VERSION}",
            challenge.version
        ));
    }
    let receipt_key = ctx.keys.receipt_key();
    let evidence = ctx.evidence();
    let payload = auth_payload(
        PROTOCOL_VERSION,
        &challenge.nonce,
        &challenge.relayer_id,
        &ctx.address_hex,
        &receipt_key,
    );
    let hello = Hello {
        version: PROTOCOL_VERSION,
        worker: ctx.address_hex.clone(),
        receipt_key,
        encryption_key: ctx.keys.encryption_key(),
        models: ctx.models.keys().copied().collect(),
        capacity: ctx.capacity,
        evidence: evidence.bytes.clone(),
        signature: ctx.keys.signing_key().sign(&payload).to_bytes(),
    };
    ws.send(frame(&WorkerMessage::Hello(hello)))
        .await
        .map_err(|e| e.to_string())?;
    match next_relay_message(&mut ws).await? {
        RelayMessage::Welcome(w) => {
            ctx.announced.send_replace(Some(evidence.hash));
            Ok((ws, w))
        }
        RelayMessage::Error(e) => Err(format!("refused: {:?}: {}", e.code, e.message)),
        other => Err(format!("expected welcome, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayer_urls_become_the_worker_endpoint() {
        assert_eq!(worker_ws_url("ws://h:1").unwrap(), "ws://h:1/v1/worker");
        assert_eq!(worker_ws_url("http://h:1/").unwrap(), "ws://h:1/v1/worker");
        assert_eq!(worker_ws_url("https://h").unwrap(), "wss://h/v1/worker");
        assert_eq!(
            worker_ws_url("ws://h/v1/worker").unwrap(),
            "ws://h/v1/worker"
        );
        assert!(matches!(worker_ws_url("h:1"), Err(NodeError::Config(_))));
    }
}
