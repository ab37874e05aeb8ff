//! The node path on the wgpu backend (Mesa lavapipe on CPU-only machines): an embeddings job and
//! a tiny chat job served by models loaded on wgpu, answered through a real relayer session with
//! receipts the client accepts.

#[path = "node_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobOutput, JobRequest};
use cocoon_sdk::receipt::check_receipt;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_worker::node::{Node, ServedModel, register};
use cocoon_worker::{BackendKind, models};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wgpu_models_serve_jobs_through_the_node() {
    common::require(models::minilm());
    common::require(models::smollm2());
    let dir = tempfile::tempdir().unwrap();
    let net = network(BTreeMap::from([
        (SMOLLM2_135M.id, SMOLLM2_135M.registry_hash()),
        (ALL_MINILM_L6_V2.id, ALL_MINILM_L6_V2.registry_hash()),
    ]))
    .await;
    let mut cfg = net
        .node_config(
            dir.path(),
            vec![
                ServedModel::load(SMOLLM2_135M, BackendKind::Wgpu),
                ServedModel::load(ALL_MINILM_L6_V2, BackendKind::Wgpu),
            ],
        )
        .await;
    register(&cfg).await.unwrap();
    let relayer = net.relayer(dir.path()).await;
    cfg.relayer_url = relayer.url();
    let node = Node::start(cfg.clone()).await.unwrap();
    assert!(node.wait_connected(Duration::from_secs(20)).await);
    let worker = node.address().clone();
    let key = cfg.keys.encryption_key();
    let mut client = Client::new(&net, NANO_PER_TON).await;

    // Embeddings: unit vectors equal to the flex engine's, billed for input tokens only.
    let texts = vec!["Hello world".to_string(), "Rust is fast".to_string()];
    let job = seal(
        &mut client,
        ALL_MINILM_L6_V2,
        &JobRequest::embeddings(texts.clone()),
        &[key],
        NANO_PER_TON,
    );
    submit(&relayer, &client, &job, &job.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job.job, Duration::from_secs(300)).await;
    let answer = open_answer(&job, &key, &events);
    let Some(JobOutput::Embeddings { vectors }) = answer.outputs.first() else {
        panic!("{:?}", answer.outputs)
    };
    let flex = BackendKind::Flex
        .load_embedding(&models::minilm())
        .unwrap()
        .embed(&texts)
        .unwrap();
    assert_eq!(vectors.len(), 2);
    for (a, b) in vectors.iter().zip(&flex.vectors) {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-4, "wgpu vs flex: {diff}");
    }
    assert_eq!(answer.receipt.body.tokens_in as usize, flex.prompt_tokens);
    assert_eq!(answer.receipt.body.tokens_out, 0);
    let exp = expectation(
        &net,
        &job,
        &worker,
        cfg.wallet.address(),
        answer.output_commitment,
    )
    .await;
    check_receipt(&answer.receipt, &exp).unwrap();

    // A chat job of two tokens on SmolLM2.
    let request = JobRequest::chat(
        vec![ChatMessage::new("user", "Say hi")],
        GenerationParams {
            max_tokens: 2,
            temperature: 0.0,
            top_p: 1.0,
            stop: vec![],
            seed: Some(1),
        },
    );
    let job = seal(&mut client, SMOLLM2_135M, &request, &[key], NANO_PER_TON);
    submit(&relayer, &client, &job, &job.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job.job, Duration::from_secs(300)).await;
    let answer = open_answer(&job, &key, &events);
    assert!(answer.receipt.body.tokens_out >= 1 && answer.receipt.body.tokens_out <= 2);
    let exp = expectation(
        &net,
        &job,
        &worker,
        cfg.wallet.address(),
        answer.output_commitment,
    )
    .await;
    check_receipt(&answer.receipt, &exp).unwrap();
    assert_eq!(node.jobs_served(), 2);

    node.shutdown().await;
    relayer.shutdown().await.unwrap();
    net.localnet.stop().await;
}
