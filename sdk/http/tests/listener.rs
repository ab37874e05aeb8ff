//! The listener against real sockets: slow and silent clients, oversized bodies, floods.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::IntoResponse as _;
use axum::routing::{get, post};
use cocoon_http::{Limits, Render};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

fn render() -> Render {
    Arc::new(|r| r.message().into_response())
}

async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/echo", post(|body: String| async move { body }));
    let app = cocoon_http::harden(app, &limits, render());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(cocoon_http::serve(listener, app, limits, async move {
        let _ = rx.await;
    }));
    (addr, stop)
}

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        ..Limits::with_max_body(1024)
    }
}

/// Sends `request` raw and reads the answer's status line (or "" when the server closed).
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    status_line(&mut s).await
}

async fn status_line(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer or a close in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_slow_header_client_is_cut_off_while_others_are_served() {
    let (addr, _stop) = start(limits()).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        // One header byte every 100 ms: never a complete head.
        let mut closed_after = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"x").await.is_err() {
                closed_after = Some(started.elapsed());
                break;
            }
            let mut b = [0u8; 256];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut b)).await
            {
                closed_after = Some(started.elapsed());
                break;
            }
        }
        closed_after
    });
    // Meanwhile a normal client is served at once, several times.
    for _ in 0..5 {
        let t = Instant::now();
        let line = raw(
            addr,
            b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(line.contains("200"), "{line}");
        assert!(t.elapsed() < Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let closed_after = trickle.await.unwrap().expect("the slow client is cut off");
    assert!(
        closed_after < Duration::from_millis(1500),
        "cut off after {closed_after:?}, header timeout 500 ms"
    );
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_header_timeout() {
    let (addr, _stop) = start(limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut b))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    let _ = n;
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn a_ten_gigabyte_content_length_is_refused_at_once() {
    let (addr, _stop) = start(limits()).await;
    let started = Instant::now();
    let line = raw(
        addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000000\r\n\r\n",
    )
    .await;
    assert!(line.contains("413"), "{line}");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // A body within the cap goes through; one beyond it sent chunked is refused too.
    let ok = raw(
        addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
    )
    .await;
    assert!(ok.contains("200"), "{ok}");
    let mut chunked =
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n800\r\n".to_vec();
    chunked.extend(vec![b'a'; 0x800]);
    chunked.extend(b"\r\n0\r\n\r\n");
    assert!(raw(addr, &chunked).await.contains("413"));
}

#[tokio::test]
async fn a_slow_body_gets_408() {
    let (addr, _stop) = start(limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab")
        .await
        .unwrap();
    let started = Instant::now();
    let line = status_line(&mut s).await;
    assert!(line.contains("408"), "{line}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

async fn connect_from(ip: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(format!("{ip}:0").parse().unwrap())?;
    sock.connect(addr).await
}

#[tokio::test]
async fn one_peer_cannot_take_every_connection() {
    let (addr, _stop) = start(Limits {
        max_connections_per_ip: 20,
        max_connections: 100,
        header_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(connect_from("127.0.0.2", addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Beyond its cap the peer's connections are answered 503 and closed.
    let mut refused = 0;
    for s in &mut held {
        let mut b = [0u8; 128];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await {
            assert!(n == 0 || String::from_utf8_lossy(&b[..n]).contains("503"));
            refused += 1;
        }
    }
    assert_eq!(refused, 40);
    // Another peer is served.
    let mut other = connect_from("127.0.0.1", addr).await.unwrap();
    other
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(status_line(&mut other).await.contains("200"));
}

#[tokio::test]
async fn a_flooding_client_gets_429_and_others_do_not() {
    let (addr, _stop) = start(Limits {
        rate_per_second: 20,
        rate_burst: 20,
        ..limits()
    })
    .await;
    let client = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..40 {
        let r = client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        codes.push(r.status().as_u16());
    }
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert!((15..=25).contains(&limited), "{codes:?}");
    // Another client IP has its own budget.
    let mut other = connect_from("127.0.0.3", addr).await.unwrap();
    other
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(status_line(&mut other).await.contains("200"));
}

/// With no connection left open, shutting down does not sit out the grace
/// (30 s): `serve` returns once the connections are gone.
#[tokio::test]
async fn shutdown_returns_once_the_connections_are_closed() {
    let limits = limits();
    let app = cocoon_http::harden(
        Router::new().route("/health", get(|| async { "ok" })),
        &limits,
        render(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cocoon_http::serve(listener, app, limits, async move {
        let _ = rx.await;
    }));
    // A request answered on a connection that is then closed.
    assert!(
        raw(
            addr,
            b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .await
        .contains("200")
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns well before the shutdown grace")
        .unwrap()
        .unwrap();
}
