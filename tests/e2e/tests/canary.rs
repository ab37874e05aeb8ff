//! Confidentiality, end to end: a canary string in a prompt never appears in plaintext in the
//! relayer's database, in any log line of any component (relayer, worker, sdk) at debug level,
//! or on the client↔relayer and worker↔relayer links — while the request itself works, as a v1
//! job and as a channel request (protocol v2). The links are read as an observer would
//! ([`cocoon_testkit::wire`]: WebSocket frames unmasked, base64 and hex fields decoded); the
//! companion tests show that reading catches a plaintext leak on both kinds of link, which a raw
//! byte search would miss. Both network tests share the process's log capture.

use std::time::Duration;

use cocoon_e2e::canary::{CANARY, capture_logs, contains, relayer_db};
use cocoon_e2e::{Devnet, DevnetOptions, Protocol, WorkerSetup};
use cocoon_sdk::client::channels::ChannelClient;
use cocoon_sdk::client::{Client, JobOptions};
use cocoon_sdk::contracts::v2::EscrowClient;
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::{Flow, TcpProxy, wire};
use cocoon_worker::node::ChannelOptions;
use ed25519_dalek::SigningKey;

fn canary_chat(max_tokens: u32) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new(
            "user",
            format!("Repeat exactly: {CANARY}"),
        )],
        GenerationParams {
            max_tokens,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    )
}

/// Neither link carries the canary, read as an observer would; the links carried `sealed_len`
/// bytes at least, the worker's as WebSocket frames.
fn assert_links_clean(client_link: &TcpProxy, net: &Devnet, sealed_len: usize) {
    let worker_link = net.workers[0].proxy.flows();
    let client_flows = client_link.flows();
    assert!(
        client_link.recorded_len() > sealed_len && net.workers[0].proxy.recorded_len() > sealed_len,
        "the links carried the requests"
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
}

/// The relayer's database, once it stopped, holds no canary.
async fn assert_db_clean(net: &mut Devnet) {
    net.stop_relayer().await.unwrap();
    let db = relayer_db(net.dir.path()).unwrap();
    assert!(db.len() > 4096, "the relayer's database was found");
    assert!(!contains(&db, CANARY), "canary in the relayer's database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_prompt_never_leaves_client_and_worker_in_plaintext() {
    let logs = capture_logs();

    let mut net = Devnet::start(DevnetOptions::default()).await.unwrap();
    // The client reaches the relayer through a recording proxy.
    let client_link = TcpProxy::start(net.relayer_addr()).await.unwrap();
    let mut config = net.client_config();
    config.relayer_url = format!("http://{}", client_link.addr());
    let app = Client::connect(config, net.funded_wallet(20 * NANO_PER_TON).await.unwrap())
        .await
        .unwrap();
    app.deposit(2 * NANO_PER_TON).await.unwrap();

    let chat = canary_chat(24);
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

    assert_links_clean(&client_link, &net, plaintext.len());
    let job_id = r.job.job_id.to_string();
    let logs = logs.bytes();
    assert!(
        contains(&logs, &job_id) || contains(&logs, &r.job.escrow),
        "logs were captured"
    );
    assert!(!contains(&logs, CANARY), "canary in a log line");
    assert_db_clean(&mut net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_prompt_on_a_channel_never_leaves_client_and_worker_in_plaintext() {
    let logs = capture_logs();
    let mut net = Devnet::start(DevnetOptions {
        protocol: Protocol::Channels,
        workers: vec![WorkerSetup {
            channels: ChannelOptions {
                settle_every: Duration::from_millis(500),
                ..ChannelOptions::default()
            },
            ..WorkerSetup::default()
        }],
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    // The client reaches the relayer through a recording proxy.
    let client_link = TcpProxy::start(net.relayer_addr()).await.unwrap();
    let mut config = net.channel_config();
    config.relayer_url = format!("http://{}", client_link.addr());
    config.channel_amount = NANO_PER_TON / 20;
    let app = ChannelClient::connect(
        config,
        net.funded_wallet(5 * NANO_PER_TON).await.unwrap(),
        SigningKey::from_bytes(&[0x3c; 32]),
    )
    .await
    .unwrap();

    let chat = canary_chat(8);
    let plaintext = chat.encode().unwrap();
    assert!(
        contains(&plaintext, CANARY),
        "the scanner finds the canary where it is"
    );
    let r = app
        .request(&SMOLLM2_135M, chat)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert!(r.usage.completion_tokens > 0);
    let e = JobRequest::embeddings(vec![format!("{CANARY} in an embedding")]);
    let r2 = app
        .request(&ALL_MINILM_L6_V2, e)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(r2.channel, r.channel);
    // The final voucher goes through the links too; the worker settles it, and both receipts
    // are proven on-chain.
    app.close(r.channel.channel_id).await.unwrap();
    let escrow = EscrowClient::at(
        app.chain(),
        net.root().clone(),
        app.escrow_address().clone(),
    );
    for _ in 0..240 {
        if escrow
            .channel(r.channel.channel_id)
            .await
            .unwrap()
            .is_none()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.verify(&r.receipt).await.unwrap();
    app.verify(&r2.receipt).await.unwrap();

    assert_links_clean(&client_link, &net, plaintext.len());
    let logs = logs.bytes();
    assert!(
        contains(&logs, &format!("channel_id={}", r.channel.channel_id)),
        "logs were captured"
    );
    assert!(!contains(&logs, CANARY), "canary in a log line");
    assert_db_clean(&mut net).await;
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
