//! The gateway on a v2 Root (`ChannelBackend`): OpenAI requests paid through payment channels on
//! localnet with a real relayer and sealing stub workers — the channels opened with the first
//! request, no chain transaction for the next ones, and each response's `cocoon` object naming
//! the channel, the seq and the receipt; a gateway policy nothing meets refused with a clear
//! 429. On the same network, the `cocoon` binary: `embed` over channels (vectors, channel, seq,
//! receipt) and `models` (Root v2's models with their verified Worker v2 records and prices).

mod cli_run;

use cli_run::{cocoon, ok_json};
use std::collections::BTreeMap;

use base64::Engine as _;
use cocoon_cli::gateway::{self, ChannelBackend, GatewayConfig, JobPolicy};
use cocoon_relayer::service::{self, ChainConfig, ServiceConfig};
use cocoon_sdk::chain::TonCenterConfig;
use cocoon_sdk::channel::SignedChannelReceipt;
use cocoon_sdk::client::PolicyMode;
use cocoon_sdk::client::channels::{ChannelClient, ChannelConfig};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::{DevChainV2, RegisteredWorker, StubWorker};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

fn stub_of(w: &RegisteredWorker) -> StubWorker {
    let mut s = StubWorker::new(0, vec![SMOLLM2_135M.id, ALL_MINILM_L6_V2.id]);
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
async fn gateway_and_cli_over_payment_channels_on_localnet() {
    let models = [SMOLLM2_135M.id, ALL_MINILM_L6_V2.id];
    let chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([
            (SMOLLM2_135M.id, SMOLLM2_135M.registry_hash()),
            (ALL_MINILM_L6_V2.id, ALL_MINILM_L6_V2.registry_hash()),
        ]),
    )
    .await
    .unwrap();
    let w1 = chain
        .register_worker(3, &models, 1_000, 3_000)
        .await
        .unwrap();
    let w2 = chain
        .register_worker(9, &models, 1_000, 3_000)
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

    // --- models: Root v2's registry with the verified workers, in the OpenAI shape of v1
    let v: Value = http
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list", "{v}");
    let listed: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [SMOLLM2_135M.name, ALL_MINILM_L6_V2.name], "{v}");
    for m in v["data"].as_array().unwrap() {
        assert_eq!(m["object"], "model", "{m}");
        assert_eq!(m["cocoon"]["attested_workers"], 2, "{m}");
        assert_eq!(
            m["cocoon"]["attestation_kinds"],
            json!(["simulated"]),
            "{m}"
        );
        assert_eq!(m["cocoon"]["min_price_in_nano"], "1000", "{m}");
        assert_eq!(m["cocoon"]["min_price_out_nano"], "3000", "{m}");
    }
    let one = http
        .get(format!("{url}/v1/models/{}", ALL_MINILM_L6_V2.name))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let unknown = http
        .get(format!("{url}/v1/models/gpt-4"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

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

    // --- a gateway whose policy no channel meets: a clear 429, nothing paid, nothing opened
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let strict_url = format!("http://{}", listener.local_addr().unwrap());
    let (_stop_strict, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::serve(
        listener,
        ChannelBackend::new(client.clone()),
        GatewayConfig {
            policy: JobPolicy {
                max_price_out: Some(2_999),
                ..JobPolicy::default()
            },
            ..GatewayConfig::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let r = http
        .post(format!("{strict_url}/v1/chat/completions"))
        .json(&chat("too dear", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "no_worker_available", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("price limits (in ≤ any, out ≤ 2999)"),
        "{message}"
    );
    assert_eq!(client.transactions(), txs);
    assert_eq!(client.requests_paid(), 3);

    // --- the CLI on the same network: embed over the wallet's own channels
    let api = chain.localnet.url().to_owned();
    let root = chain.root.to_base64_url();
    let relayer_url = relayer.url();
    let wallet = dir.path().join("cli.json");
    ok_json(&api, &wallet, &["wallet", "new"]).await;
    ok_json(&api, &wallet, &["wallet", "fund", "20"]).await;
    let base = ["--root", root.as_str(), "--relayer", relayer_url.as_str()];
    let embed = |texts: &'static [&'static str]| {
        let mut a = vec!["embed", "--model", ALL_MINILM_L6_V2.name];
        a.extend_from_slice(&base);
        a.extend_from_slice(texts);
        a
    };
    let e = ok_json(&api, &wallet, &embed(&["ab", "cde"])).await;
    // The stub's vector of a text is [its length, 1].
    assert_eq!(e["embeddings"], json!([[2.0, 1.0], [3.0, 1.0]]), "{e}");
    assert_eq!(e["model"], ALL_MINILM_L6_V2.name);
    assert_eq!(e["seq"], 1, "{e}");
    assert_eq!(
        e["transactions"], 3,
        "escrow creation and two channel opens: {e}"
    );
    let receipt = base64::engine::general_purpose::STANDARD
        .decode(e["receipt_boc"].as_str().unwrap())
        .unwrap();
    let receipt = SignedChannelReceipt::from_boc(&receipt).unwrap();
    assert_eq!(
        (receipt.body.seq, receipt.body.model_id),
        (1, ALL_MINILM_L6_V2.id)
    );
    assert_eq!(
        receipt.body.channel.channel_id.to_string(),
        e["channel"]["id"].as_str().unwrap()
    );
    assert_eq!(e["cost_nano"], receipt.body.cost.to_string());
    assert!([&w1.address, &w2.address].contains(&&receipt.body.worker));
    // Text mode: each vector's head and dimension, then the channel summary; no transaction.
    let mut a = embed(&["hello"]);
    a.push("--max-price-in");
    a.push("1000");
    let (ok, out, err) = cocoon(&api, &wallet, &a).await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("\"hello\": [5.0000, 1.0000, …] (2 dimensions)"),
        "{out}"
    );
    assert!(
        err.contains(" seq ") && err.contains("0 chain transaction(s)"),
        "{err}"
    );
    assert!(err.contains("receipt: "), "{err}");
    // Limits apply on channels too: a price cap no worker meets is refused up front.
    let mut a = embed(&["x"]);
    a.push("--max-price-in");
    a.push("999");
    let (ok, _, err) = cocoon(&api, &wallet, &a).await;
    assert!(!ok && err.contains("price limits"), "{err}");
    // A chat model cannot embed.
    let mut a = embed(&["x"]);
    a[2] = SMOLLM2_135M.name;
    let (ok, _, err) = cocoon(&api, &wallet, &a).await;
    assert!(!ok && err.contains("an embedding"), "{err}");
    // A max cost lowers max_tokens to fit (the model's recommended length costs far more here).
    let mut a = vec!["chat", "--max-cost", "100000n"];
    a.extend_from_slice(&base);
    a.push("hi");
    let c = ok_json(&api, &wallet, &a).await;
    let max_cost: u128 = c["max_cost_nano"].as_str().unwrap().parse().unwrap();
    let cost: u128 = c["cost_nano"].as_str().unwrap().parse().unwrap();
    assert!(
        max_cost <= 100_000 && max_cost > 100_000 - 3_000 && cost <= max_cost,
        "{c}"
    );
    assert_eq!(c["transactions"], 0, "{c}");
    // Not even the input fits: refused before anything is sent.
    let mut a = vec!["chat", "--max-cost", "1000n"];
    a.extend_from_slice(&base);
    a.push("hi");
    let (ok, _, err) = cocoon(&api, &wallet, &a).await;
    assert!(!ok && err.contains("within the max cost 1000"), "{err}");

    // --- models: Root v2's registry alone, then with the verified workers and their prices
    let m = ok_json(&api, &wallet, &["models", "--root", &root]).await;
    let names: Vec<&str> = m["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [SMOLLM2_135M.name, ALL_MINILM_L6_V2.name], "{m}");
    let mut a = vec!["models", "--workers"];
    a.extend_from_slice(&base);
    let m = ok_json(&api, &wallet, &a).await;
    for entry in m["models"].as_array().unwrap() {
        assert_eq!(entry["workers"], 2, "{entry}");
        assert_eq!(
            (&entry["min_price_in_nano"], &entry["min_price_out_nano"]),
            (&json!("1000"), &json!("3000")),
            "{entry}"
        );
        let mut listed: Vec<TonAddress> = entry["verified_workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                assert_eq!(w["attestation"], "UNATTESTED (SIMULATED TEE)", "{w}");
                assert_eq!(
                    (&w["price_in_nano"], &w["price_out_nano"]),
                    (&json!("1000"), &json!("3000"))
                );
                w["worker"].as_str().unwrap().parse().unwrap()
            })
            .collect();
        listed.sort_by_key(|a| a.to_hex());
        let mut expected = vec![w1.address.clone(), w2.address.clone()];
        expected.sort_by_key(|a| a.to_hex());
        assert_eq!(listed, expected);
    }
    // Listing leaves no voucher key or channel file behind.
    let (ok, out, err) = cocoon(&api, &dir.path().join("lister.json"), &["wallet", "new"]).await;
    assert!(ok, "{out}{err}");
    let lister = dir.path().join("lister.json");
    let mut a = vec!["--json", "models"];
    a.extend_from_slice(&base);
    let (ok, out, err) = cocoon(&api, &lister, &a).await;
    assert!(ok, "{out}{err}");
    assert!(!lister.with_extension("voucher-key").exists());
}
