//! The gateway on a v2 Root (`ChannelBackend`): OpenAI requests paid through payment channels on
//! localnet with a real relayer and sealing stub workers — the channels opened with the first
//! request, no chain transaction for the next ones, and each response's `cocoon` object naming
//! the channel, the seq and the receipt.

use std::collections::BTreeMap;

use base64::Engine as _;
use cocoon_cli::gateway::{self, ChannelBackend, GatewayConfig};
use cocoon_relayer::service::{self, ChainConfig, ServiceConfig};
use cocoon_sdk::chain::TonCenterConfig;
use cocoon_sdk::channel::SignedChannelReceipt;
use cocoon_sdk::client::PolicyMode;
use cocoon_sdk::client::channels::{ChannelClient, ChannelConfig};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::tlb::TlbType as _;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::{DevChainV2, RegisteredWorker, StubWorker};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

fn stub_of(w: &RegisteredWorker) -> StubWorker {
    let mut s = StubWorker::new(0, vec![SMOLLM2_135M.id]);
    s.signing_key = w.signing.clone();
    s.address = w.address.to_hex();
    s.encryption_key = w.enc.public_key();
    s.evidence = w.evidence.encode();
    s.prices = (1_000, 3_000);
    s.sealing = Some(w.enc.clone());
    s
}

fn chat(content: &str, stream: bool) -> Value {
    json!({
        "model": SMOLLM2_135M.name,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 16,
        "stream": stream,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_over_payment_channels_on_localnet() {
    let chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(SMOLLM2_135M.id, SMOLLM2_135M.registry_hash())]),
    )
    .await
    .unwrap();
    let w1 = chain
        .register_worker(3, &[SMOLLM2_135M.id], 1_000, 3_000)
        .await
        .unwrap();
    let w2 = chain
        .register_worker(9, &[SMOLLM2_135M.id], 1_000, 3_000)
        .await
        .unwrap();
    let relayer_wallet = chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
    );
    cfg.chain = Some(ChainConfig::new(
        TonCenterConfig::new(chain.localnet.url().to_owned()),
        chain.root.clone(),
        relayer_wallet,
    ));
    let relayer = service::spawn(cfg).await.unwrap();
    let ws = relayer.url().replacen("http", "ws", 1);
    let _h1 = stub_of(&w1).connect(&ws).await.unwrap();
    let _h2 = stub_of(&w2).connect(&ws).await.unwrap();

    let wallet = chain.funded_wallet(10 * NANO_PER_TON).await.unwrap();
    let mut cc = ChannelConfig::new(
        TonCenterConfig::new(chain.localnet.url().to_owned()),
        chain.root.clone(),
        relayer.url(),
    );
    cc.policy = PolicyMode::Development;
    cc.channel_amount = NANO_PER_TON / 100;
    cc.top_up_below = NANO_PER_TON / 1000;
    cc.store = Some(dir.path().join("wallet.channels.json"));
    let client = ChannelClient::connect(cc, wallet, SigningKey::from_bytes(&[0x42; 32]))
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::serve(
        listener,
        ChannelBackend::new(client.clone()),
        GatewayConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();

    // --- models: Root v2's registry with the verified workers
    let v: Value = http
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let smol = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == SMOLLM2_135M.name)
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(smol["cocoon"]["attested_workers"], 2, "{smol}");

    // --- the first request opens the channels; its cocoon object names channel, seq, receipt
    let r = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("hello there", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], "echo: hello there ",
        "{v}"
    );
    let c = &v["cocoon"];
    assert_eq!(c["channel"]["seq"], 1, "{v}");
    let id = c["channel"]["id"].as_str().unwrap().to_owned();
    let receipt = base64::engine::general_purpose::STANDARD
        .decode(c["receipt"].as_str().unwrap())
        .unwrap();
    let receipt = SignedChannelReceipt::from_boc(&receipt).unwrap();
    assert_eq!(receipt.body.seq, 1);
    assert_eq!(receipt.body.channel.channel_id.to_string(), id);
    assert_eq!(c["cost_nano"], receipt.body.cost.to_string());
    let txs = client.transactions();
    assert_eq!(txs, 3, "escrow creation and two channel opens");

    // --- the next ones, streamed and not: the same channel, the next seqs, no transaction
    let r = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("second", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let last: Value = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter(|e| e.get("cocoon").is_some())
        .last()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(last["cocoon"]["channel"]["seq"], 2, "{last}");
    assert_eq!(last["cocoon"]["channel"]["id"], id.as_str());
    let v: Value = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("third", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["cocoon"]["channel"]["seq"], 3, "{v}");
    assert_eq!(client.transactions(), txs, "no transaction per request");
    assert_eq!(client.requests_paid(), 3);
}
