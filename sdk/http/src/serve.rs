//! The accept loop: connection caps, the idle timeout, hyper's HTTP/1 connection with its header
//! read timeout and upgrades (WebSockets), and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;
use tracing::{debug, info, warn};

use crate::Limits;
use crate::caps::ConnectionCaps;
use crate::idle::IdleTimeout;

/// How long a graceful shutdown waits for connections to finish their requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What a refused connection reads before it is closed (written only if the socket takes it at
/// once: a refusal never waits on its peer).
const REFUSED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Pause after an accept error that is not the peer's (out of file descriptors): retrying at
/// once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` under `limits` until `shutdown` resolves, then stops accepting,
/// lets open requests finish (up to [`SHUTDOWN_GRACE`]) and returns.
///
/// Every request carries [`ConnectInfo<SocketAddr>`] of its peer. Upgraded connections
/// (WebSockets) keep counting against the caps until they close. Apply the request layers
/// ([`crate::harden`]) to `router` first.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let caps = ConnectionCaps::new(limits.max_connections, limits.max_connections_per_ip);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_peer_error(&e) => continue,
                Err(e) => {
                    warn!(target: "http::listener", error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(permit) = caps.admit(peer.ip()) else {
            debug!(target: "http::listener", %peer, "connection refused: cap reached");
            refuse(tcp);
            continue;
        };
        // Chunks and SSE events are small writes answered at once: without TCP_NODELAY, Nagle's
        // algorithm and delayed ACKs add ~40 ms to each exchange.
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(IdleTimeout::new(tcp, limits.idle_timeout, Some(permit)));
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    done = conn.as_mut() => {
                        if let Err(e) = done {
                            debug!(target: "http::listener", %peer, error = %e, "connection ended");
                        }
                        break;
                    }
                    _ = stopped.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    // Only the connections' receivers may keep the channel open: with this one alive,
    // `closed()` could never resolve and every shutdown would wait the whole grace.
    drop(stopped);
    let _ = stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
        .await
        .is_err()
    {
        warn!(target: "http::listener", "connections still open after the shutdown grace");
    }
    info!(target: "http::listener", "listener closed");
    Ok(())
}

fn is_peer_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

fn refuse(tcp: TcpStream) {
    let _ = tcp.try_write(REFUSED);
}

/// The address of a peer, for handlers that need it (the rate limit uses the same).
pub fn peer_of(req: &axum::http::Request<axum::body::Body>) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
