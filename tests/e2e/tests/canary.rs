//! Confidentiality, end to end: a canary string in a prompt never appears in plaintext in the
//! relayer's database, in any log line of any component (relayer, worker, sdk) at debug level,
//! or on the client↔relayer and worker↔relayer links — while the job itself works. The links are
//! read as an observer would ([`cocoon_testkit::wire`]: WebSocket frames unmasked, base64 and hex
//! fields decoded); the companion tests show that reading catches a plaintext leak on both kinds
//! of link, which a raw byte search would miss.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cocoon_e2e::{Devnet, DevnetOptions};
use cocoon_sdk::client::{Client, JobOptions};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::{Flow, TcpProxy, wire};

const CANARY: &str = "CANARY-7f3a9c-purple-giraffe";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_prompt_never_leaves_client_and_worker_in_plaintext() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(
            "debug,wgpu_core=warn,wgpu_hal=warn,naga=warn,cubecl=warn,burn=warn,hyper=info,h2=info",
        )
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let mut net = Devnet::start(DevnetOptions::default()).await.unwrap();
    // The client reaches the relayer through a recording proxy.
    let client_link = TcpProxy::start(net.relayer_addr()).await.unwrap();
    let mut config = net.client_config();
    config.relayer_url = format!("http://{}", client_link.addr());
    let app = Client::connect(config, net.funded_wallet(20 * NANO_PER_TON).await.unwrap())
        .await
        .unwrap();
    app.deposit(2 * NANO_PER_TON).await.unwrap();

    let chat = JobRequest::chat(
        vec![ChatMessage::new(
            "user",
            format!("Repeat exactly: {CANARY}"),
        )],
        GenerationParams {
            max_tokens: 24,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    );
    let plaintext = chat.encode().unwrap();
    assert!(
        contains(&plaintext, CANARY),
        "the scanner finds the canary where it is"
    );
    let r = app
        .open_job(SMOLLM2_135M.name, chat, JobOptions::default())
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert!(r.usage.completion_tokens > 0);
    let e = JobRequest::embeddings(vec![format!("{CANARY} in an embedding")]);
    let r2 = app
        .open_job(ALL_MINILM_L6_V2.name, e, JobOptions::default())
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    app.verify_settlement(&r).await.unwrap();
    app.verify_settlement(&r2).await.unwrap();

    let worker_link = net.workers[0].proxy.flows();
    let client_flows = client_link.flows();
    assert!(
        client_link.recorded_len() > plaintext.len()
            && net.workers[0].proxy.recorded_len() > plaintext.len(),
        "the links carried the jobs"
    );
    // The sealed input crossed both links as base64 inside JSON (the worker's in WebSocket
    // frames): the reader decodes it, so the search below looks where a leak would be.
    assert!(
        worker_link
            .iter()
            .any(|f| wire::websocket_payloads(&f.down).is_some()),
        "the worker link was read as WebSocket frames"
    );
    assert!(
        !wire::carries(&client_flows, CANARY.as_bytes()),
        "canary on the client↔relayer link"
    );
    assert!(
        !wire::carries(&worker_link, CANARY.as_bytes()),
        "canary on the worker↔relayer link"
    );
    let job_id = r.job.job_id.to_string();
    let logs = logs.0.lock().unwrap().clone();
    assert!(
        contains(&logs, &job_id) || contains(&logs, &r.job.escrow),
        "logs were captured"
    );
    assert!(!contains(&logs, CANARY), "canary in a log line");
    net.stop_relayer().await.unwrap();
    let mut db = Vec::new();
    for entry in std::fs::read_dir(net.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("relayer.sqlite")
        {
            db.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(db.len() > 4096, "the relayer's database was found");
    assert!(!contains(&db, CANARY), "canary in the relayer's database");
}

/// A JSON body with the "sealed" input in base64, as the links carry it: with sealing switched
/// off, this is what would cross them.
fn leaky_json() -> String {
    use base64::Engine as _;
    let plaintext = JobRequest::chat(
        vec![ChatMessage::new(
            "user",
            format!("Repeat exactly: {CANARY}"),
        )],
        GenerationParams::default(),
    )
    .encode()
    .unwrap();
    serde_json::json!({ "sealed_input": base64::engine::general_purpose::STANDARD.encode(plaintext) })
        .to_string()
}

#[tokio::test]
async fn the_link_reader_catches_a_plaintext_leak_over_http_json() {
    // An upstream that answers every request with an empty 200.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                let mut got = Vec::new();
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    // Headers and the whole (small) body arrived.
                    if got.ends_with(b"}") {
                        break;
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    let proxy = TcpProxy::start(addr).await.unwrap();
    let body = leaky_json();
    reqwest::Client::new()
        .post(format!("http://{}/v1/jobs/input", proxy.addr()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let flows = proxy.flows();
    let raw: Vec<u8> = flows.iter().flat_map(|f| f.up.clone()).collect();
    assert!(!contains(&raw, CANARY), "base64 hides it from a raw search");
    assert!(
        wire::carries(&flows, CANARY.as_bytes()),
        "the reader finds the leak"
    );
}

#[tokio::test]
async fn the_link_reader_catches_a_plaintext_leak_in_masked_websocket_frames() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    // An upstream WebSocket server that echoes one message.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = upstream.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
        if let Some(Ok(m)) = ws.next().await {
            let _ = ws.send(m).await;
        }
        let _ = ws.close(None).await;
    });
    let proxy = TcpProxy::start(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/worker", proxy.addr()))
        .await
        .unwrap();
    ws.send(Message::Text(leaky_json().into())).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert!(matches!(echoed, Message::Text(_)));
    drop(ws);

    let flows = proxy.flows();
    // The worker side masks what it sends: neither the raw bytes nor a base64 scan of them shows
    // the canary; unmasking then decoding does.
    let up: Vec<u8> = flows.iter().flat_map(|f| f.up.clone()).collect();
    assert!(!contains(&up, CANARY), "masking hides it from a raw search");
    assert!(
        wire::carries(
            &[Flow {
                up,
                down: Vec::new()
            }],
            CANARY.as_bytes()
        ),
        "the reader unmasks the client's frames and decodes the base64 inside"
    );
}
