//! The gateway over the real SDK client (`ClientBackend`): real contracts on localnet, real
//! sealing, OpenJob, receipt checks and settlement, with the client tests' in-test relayer
//! playing the relayer and the worker (so failures a real worker never produces can be driven).
//! With a real relayer and worker node, the end-to-end crate drives the Python suite in
//! tests/gateway against the same gateway.

use std::time::Duration;

use base64::Engine as _;
use cocoon_cli::gateway::{self, GatewayConfig};
use cocoon_sdk::client::Client;
use cocoon_sdk::contracts::WorkerClient;
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::tlb::TlbType;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::SendOptions;
use serde_json::{Value, json};

use cocoon_testkit::{DevChain, FakeRelayer, Script};

async fn start_gateway(
    client: Client,
    config: GatewayConfig,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    cocoon_testkit::start_gateway(client, config).await.unwrap()
}

fn chat(content: &str, stream: bool) -> Value {
    json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 16,
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
    })
}

fn sse_data(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_over_the_sdk_client_on_localnet() {
    let net = DevChain::start(&[SMOLLM2_135M, ALL_MINILM_L6_V2])
        .await
        .unwrap();
    let relayer = FakeRelayer::start().await;
    let a = net.register_worker(1, &[1, 2], 1_000, 3_000).await.unwrap();
    let b = net.register_worker(2, &[1], 2_000, 1_000).await.unwrap();
    relayer.list(&a, a.info());
    relayer.list(&b, b.info());
    let client = relayer.client(&net).await;
    client.deposit(3 * NANO_PER_TON).await.unwrap();
    let (url, _stop) = start_gateway(client.clone(), GatewayConfig::default()).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(format!("{url}{path}")).json(&body).send();

    // --- models: what Root registers, with the verified workers and their lowest prices
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
        .unwrap();
    assert_eq!(smol["cocoon"]["attested_workers"], 2);
    assert_eq!(smol["cocoon"]["attestation_kinds"], json!(["simulated"]));
    assert_eq!(smol["cocoon"]["min_price_in_nano"], "1000");
    assert_eq!(smol["cocoon"]["min_price_out_nano"], "1000");

    // --- a chat answer, opened and checked by the client; the receipt is in the response
    let res = post("/v1/chat/completions", chat("hello there", false))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-cocoon-attestation"],
        "UNATTESTED (SIMULATED TEE)"
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello there ");
    let c = &v["cocoon"];
    assert_eq!(c["worker"], a.address.to_hex());
    assert_eq!(c["attestation_kind"], "simulated");
    let (tin, tout) = (
        v["usage"]["prompt_tokens"].as_u64().unwrap(),
        v["usage"]["completion_tokens"].as_u64().unwrap(),
    );
    assert_eq!(tout, 3);
    assert_eq!(
        c["cost_nano"],
        (u128::from(tin) * 1_000 + u128::from(tout) * 3_000).to_string()
    );
    assert!(c["open_ms"].as_u64().unwrap() > 0);
    let boc = base64::engine::general_purpose::STANDARD
        .decode(c["receipt"].as_str().unwrap())
        .unwrap();
    let receipt = SignedReceipt::from_boc(&boc).unwrap();
    assert_eq!(
        hex::encode(receipt.body.cost.to_be_bytes()),
        hex::encode(
            c["cost_nano"]
                .as_str()
                .unwrap()
                .parse::<u128>()
                .unwrap()
                .to_be_bytes()
        )
    );

    // --- settlement: unknown until the receipt is on-chain, then found and checked
    let job = c["job"].as_str().unwrap().to_owned();
    let look = || async {
        let v: Value = http
            .get(format!("{url}/v1/cocoon/jobs/{job}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v
    };
    assert_eq!(look().await["settled"], false);
    WorkerClient::for_owner(&net.chain, &net.root, a.owner.address())
        .await
        .unwrap()
        .submit_receipts(&a.owner, vec![receipt], &SendOptions::default())
        .await
        .unwrap();
    let mut settled = look().await;
    for _ in 0..50 {
        if settled["settled"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        settled = look().await;
    }
    assert_eq!(settled["settled"], true, "{settled}");
    assert_eq!(settled["settlement"]["cost_nano"], c["cost_nano"]);
    assert_eq!(settled["settlement"]["worker"], a.address.to_hex());
    let res = http
        .get(format!("{url}/v1/cocoon/jobs/0:00/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // --- streamed, with usage; same text
    let res = post("/v1/chat/completions", chat("hello there", true))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let chunks = sse_data(&res.text().await.unwrap());
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "echo: hello there ");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);

    // --- completions and embeddings
    let v: Value = post(
        "/v1/completions",
        json!({"model": "smollm2-135m-instruct", "prompt": "abc"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["text"], "abc!");
    let v: Value = post(
        "/v1/embeddings",
        json!({"model": "all-minilm-l6-v2", "input": ["ab", "abcd"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["data"][1]["embedding"], json!([4.0, 1.0, -0.5]));
    assert_eq!(v["usage"]["prompt_tokens"], 10); // (2 + 2) + (4 + 2): each input plus [CLS] and [SEP]

    // --- failover after the first worker sent text: the plain answer is the second worker's alone
    relayer.script(Script::Failover);
    let v: Value = post("/v1/chat/completions", chat("again", false))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: again ", "{v}");
    assert_eq!(v["cocoon"]["worker"], b.address.to_hex());
    // Streamed, text already sent cannot be taken back: the stream ends with an error.
    let res = post("/v1/chat/completions", chat("again", true))
        .await
        .unwrap();
    let chunks = sse_data(&res.text().await.unwrap());
    assert_eq!(chunks.last().unwrap()["error"]["code"], "worker_failed");

    // --- worker failures: upstream errors with their codes
    for (script, status, code) in [
        (Script::Fail, 502, "worker_failed"),
        (Script::ForgedReceipt, 502, "receipt_invalid"),
        (Script::TamperChunk, 502, "bad_response"),
    ] {
        relayer.script(script.clone());
        let res = post("/v1/chat/completions", chat("x", false))
            .await
            .unwrap();
        let s = res.status().as_u16();
        let v: Value = res.json().await.unwrap();
        assert_eq!(
            (s, v["error"]["code"].as_str().unwrap()),
            (status, code),
            "{script:?}: {v}"
        );
    }
    relayer.script(Script::Answer);

    // --- policy: a minimum attestation no worker meets is a 429 with the reason; so is a price cap
    let strict = GatewayConfig {
        policy: gateway::JobPolicy {
            min_attestation: Some(cocoon_sdk::attest::EvidenceKind::SevSnp),
            ..Default::default()
        },
        ..Default::default()
    };
    let (strict_url, _stop_strict) = start_gateway(client.clone(), strict).await;
    let res = http
        .post(format!("{strict_url}/v1/chat/completions"))
        .json(&chat("x", true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("minimum attestation"),
        "{v}"
    );
    let cheap = GatewayConfig {
        policy: gateway::JobPolicy {
            max_price_out: Some(999),
            ..Default::default()
        },
        ..Default::default()
    };
    let (cheap_url, _stop_cheap) = start_gateway(client.clone(), cheap).await;
    let res = http
        .post(format!("{cheap_url}/v1/chat/completions"))
        .json(&chat("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    // The preferred worker is used when it qualifies.
    let prefer = GatewayConfig {
        policy: gateway::JobPolicy {
            preferred_workers: vec![b.address.clone()],
            ..Default::default()
        },
        ..Default::default()
    };
    let (prefer_url, _stop_prefer) = start_gateway(client.clone(), prefer).await;
    let v: Value = http
        .post(format!("{prefer_url}/v1/chat/completions"))
        .json(&chat("x", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["cocoon"]["worker"], b.address.to_hex(), "{v}");

    // --- a job that never finishes: 504 at the gateway's limit
    relayer.script(Script::Hang);
    let quick = GatewayConfig {
        request_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let (quick_url, _stop_quick) = start_gateway(client.clone(), quick).await;
    let res = http
        .post(format!("{quick_url}/v1/chat/completions"))
        .json(&chat("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    relayer.script(Script::Answer);

    // --- a wallet with no deposit: 402 before anything is sent, streaming or not
    let poor = Client::connect(
        net.client_config(&relayer.url),
        net.funded_wallet(NANO_PER_TON).await.unwrap(),
    )
    .await
    .unwrap();
    let (poor_url, _stop_poor) = start_gateway(poor, GatewayConfig::default()).await;
    let submitted = relayer.submitted().len();
    for stream in [false, true] {
        let res = http
            .post(format!("{poor_url}/v1/chat/completions"))
            .json(&chat("x", stream))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 402);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "insufficient_balance");
    }
    assert_eq!(
        relayer.submitted().len(),
        submitted,
        "nothing was sent for a refused job"
    );
}
