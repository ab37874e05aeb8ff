//! The node's status listener on localnet with a real relayer and SmolLM2: `/health` is ready
//! only while the models are loaded, the relayer session is up and the chain answers; `/metrics`
//! moves when a job is served (jobs by outcome, tokens, time to first token, value signed), and
//! the unsettled value falls back to zero once the receipt settles on-chain.

#[path = "node_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_worker::node::{Node, ServedModel, register, status};
use cocoon_worker::{BackendKind, models};
use serde_json::Value;

use support::*;

/// The value of the sample `series` in a Prometheus text body (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn get(url: &str) -> (u16, String) {
    let res = reqwest::get(url).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_follows_readiness_and_metrics_move_with_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let net = network(BTreeMap::from([(
        SMOLLM2_135M.id,
        SMOLLM2_135M.registry_hash(),
    )]))
    .await;
    let model = Arc::new(
        BackendKind::Flex
            .load_text(&common::require(models::smollm2()), 8)
            .unwrap(),
    );
    let mut cfg = net
        .node_config(dir.path(), vec![ServedModel::text(SMOLLM2_135M, model)])
        .await;
    cfg.self_submit = true;
    register(&cfg).await.unwrap();
    let relayer = net.relayer(dir.path()).await;
    cfg.relayer_url = relayer.url();
    let node = Node::start(cfg.clone()).await.unwrap();
    assert!(node.wait_connected(Duration::from_secs(20)).await);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(status::serve(node.status(), listener, async move {
        let _ = stopped.await;
    }));

    let (code, body) = get(&format!("{base}/health")).await;
    assert_eq!(code, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "ok");
    let names: Vec<_> = h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["models", "relayer", "chain"]);

    let done = r#"cocoon_worker_jobs_total{outcome="done",code="none"}"#;
    let (_, before) = get(&format!("{base}/metrics")).await;
    assert_eq!(sample(&before, done), 0.0, "{before}");
    assert_eq!(sample(&before, "cocoon_worker_relayer_connected"), 1.0);
    assert!(
        before.contains(r#"cocoon_worker_batch_size{model="smollm2-135m-instruct"} 0"#),
        "{before}"
    );

    // One job through the relayer; the node submits its receipt itself.
    let worker = node.address().clone();
    let worker_key = cfg.keys.encryption_key();
    let mut client = Client::new(&net, 2 * NANO_PER_TON).await;
    let relayer_wallet = net.funded_wallet(NANO_PER_TON).await.unwrap();
    let request = JobRequest::chat(
        vec![ChatMessage::new("user", "What is the capital of France?")],
        GenerationParams {
            max_tokens: 4,
            temperature: 0.0,
            top_p: 1.0,
            stop: vec![],
            seed: Some(1),
        },
    );
    let job = seal(
        &mut client,
        SMOLLM2_135M,
        &request,
        &[worker_key],
        NANO_PER_TON,
    );
    open_on_chain(&net, &client, &job, relayer_wallet.address()).await;
    submit(&relayer, &client, &job, &job.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job.job, Duration::from_secs(120)).await;
    let answer = open_answer(&job, &worker_key, &events);
    let cost = answer.receipt.body.cost;

    let (_, after) = get(&format!("{base}/metrics")).await;
    assert_eq!(sample(&after, done), 1.0, "{after}");
    assert_eq!(
        sample(&after, "cocoon_worker_output_tokens_total"),
        f64::from(answer.receipt.body.tokens_out)
    );
    assert_eq!(
        sample(&after, "cocoon_worker_prompt_tokens_total"),
        f64::from(answer.receipt.body.tokens_in)
    );
    assert_eq!(
        sample(&after, "cocoon_worker_time_to_first_token_seconds_count"),
        1.0
    );
    assert_eq!(
        sample(&after, "cocoon_worker_signed_nanoton_total"),
        cost as f64
    );

    // The settlement lands on-chain: the watcher sees it and the unsettled value drops to 0.
    let mut unsettled = f64::NAN;
    for _ in 0..90 {
        let (_, text) = get(&format!("{base}/metrics")).await;
        unsettled = sample(&text, "cocoon_worker_unsettled_nanoton");
        if unsettled == 0.0 {
            break;
        }
        assert_eq!(unsettled, cost as f64, "{text}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(unsettled, 0.0, "the settlement clears the unsettled value");

    // The relayer goes away: not ready, and the failing check says why.
    relayer.shutdown().await.unwrap();
    let mut last = (0, String::new());
    for _ in 0..40 {
        last = get(&format!("{base}/health")).await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    let h: Value = serde_json::from_str(&last.1).unwrap();
    let relayer_check = h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "relayer")
        .unwrap()
        .clone();
    assert_eq!(relayer_check["ok"], false, "{h}");

    let _ = stop.send(());
    served.await.unwrap().unwrap();
    node.shutdown().await;
}
