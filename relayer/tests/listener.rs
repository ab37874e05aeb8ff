//! The relayer's listener under abuse: slow headers, an oversized body, idle sockets held by one
//! peer against a relayer under the common 1,024-file limit.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cocoon_sdk::relay::client::{ApiError, ApiErrorCode};
use common::{fast_config, start};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

fn addr_of(http: &str) -> SocketAddr {
    http.trim_start_matches("http://").parse().unwrap()
}

async fn health_within(client: &reqwest::Client, http: &str, bound: Duration) {
    let started = Instant::now();
    let res = tokio::time::timeout(bound, client.get(format!("{http}/health")).send())
        .await
        .unwrap_or_else(|_| panic!("/health did not answer within {bound:?}"))
        .expect("/health answers");
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < bound);
}

#[tokio::test]
async fn a_slow_header_client_is_cut_off_while_health_answers() {
    let mut cfg = fast_config();
    cfg.listener.header_timeout = Duration::from_millis(500);
    let r = start(cfg).await;
    let mut slow = TcpStream::connect(addr_of(&r.http)).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut cut_after = None;
    let client = reqwest::Client::new();
    for _ in 0..30 {
        // Meanwhile a normal client is served at once.
        health_within(&client, &r.http, Duration::from_millis(500)).await;
        if slow.write_all(b"x").await.is_err() {
            cut_after = Some(started.elapsed());
            break;
        }
        let mut b = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), slow.read(&mut b)).await
        {
            cut_after = Some(started.elapsed());
            break;
        }
    }
    let cut_after = cut_after.expect("the slow client is cut off");
    assert!(cut_after < Duration::from_millis(1500), "{cut_after:?}");
}

#[tokio::test]
async fn a_ten_gigabyte_input_is_refused_at_once() {
    let r = start(fast_config()).await;
    let job = r.open(1, b"sealed").await;
    let mut s = TcpStream::connect(addr_of(&r.http)).await.unwrap();
    let head = format!(
        "POST /v1/jobs/{}/{}/input HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n",
        job.job.escrow, job.job.job_id
    );
    let started = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("an answer at once")
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let err: ApiError = serde_json::from_str(body).unwrap();
    assert_eq!(err.error, ApiErrorCode::TooLarge);
    // Nothing was stored: the job still waits for its input.
    let rec = r.store.job(&job.job).await.unwrap().unwrap();
    assert_eq!(rec.state, cocoon_relayer::JobState::Opened);
}

/// Starts the `cocoon-relayer` binary under `ulimit -n 1024` and waits for its `/health`.
async fn relayer_process(dir: &std::path::Path) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = format!("sqlite://{}?mode=rwc", dir.join("relayer.db").display());
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_cocoon-relayer"))
        .args(["run", "--api.listen", &format!("127.0.0.1:{port}")])
        .args(["--store.url", &db])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{http}/health")).send().await
            && r.status() == 200
        {
            return (child, http);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the relayer process never answered /health");
}

#[tokio::test]
async fn held_idle_sockets_never_make_health_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, http) = relayer_process(dir.path()).await;
    let addr = addr_of(&http);
    // One peer opens 1,100 sockets and says nothing on any of them (more than the relayer
    // process has file descriptors).
    let mut held = Vec::with_capacity(1100);
    for _ in 0..1100 {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        if let Ok(s) = sock.connect(addr).await {
            held.push(s);
        }
    }
    assert!(held.len() >= 1000, "only {} sockets opened", held.len());
    // /health keeps answering from another peer throughout, each time within a bound.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    let mut answered = 0;
    while Instant::now() < until {
        health_within(&client, &http, Duration::from_secs(1)).await;
        answered += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered >= 10);
    drop(held);
}
