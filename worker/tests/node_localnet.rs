//! The worker node on localnet, with the real contracts, the real relayer (in-process) and the
//! real SmolLM2 on the flex backend: registration and the start-up checks, a job answered with
//! sealed chunks and a receipt a client accepts (and that settles on-chain when the node submits
//! it itself), a job sealed to another key, and the same job dispatched again after a restart.

#[path = "node_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_sdk::contracts::EscrowClient;
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, FinishReason, GenerationParams, JobOutput, JobRequest};
use cocoon_sdk::receipt::{check_receipt, expected_cost};
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_sdk::seal::EncryptionKeyPair;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_worker::node::{Node, NodeError, RegisterOutcome, ServedModel, register};
use cocoon_worker::{BackendKind, models};

use support::*;

fn chat(max_tokens: u32, stop: Vec<String>) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", "What is the capital of France?")],
        GenerationParams {
            max_tokens,
            temperature: 0.0,
            top_p: 1.0,
            stop,
            seed: Some(1),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_and_start_up_checks() {
    let dir = tempfile::tempdir().unwrap();
    // Model 2 is registered with a hash that does not match the weights this release pins.
    let net = network(BTreeMap::from([
        (SMOLLM2_135M.id, SMOLLM2_135M.registry_hash()),
        (ALL_MINILM_L6_V2.id, [0xee; 32]),
    ]))
    .await;
    let cfg = net
        .node_config(
            dir.path(),
            vec![ServedModel::load(SMOLLM2_135M, BackendKind::Flex)],
        )
        .await;

    // Not registered yet: start refuses and says so.
    match Node::start(cfg.clone()).await {
        Err(NodeError::NotRegistered { .. }) => {}
        other => panic!("expected NotRegistered, got {other:?}"),
    }

    // Register (stake + record), then again: nothing to do.
    let first = register(&cfg).await.unwrap();
    assert!(
        matches!(first, RegisterOutcome::Registered { stake, .. } if stake == cfg.stake),
        "{first:?}"
    );
    assert_eq!(
        register(&cfg).await.unwrap(),
        RegisterOutcome::Unchanged {
            worker: first.worker().clone()
        }
    );

    // A node with other prices is not what the chain describes: start names the fields.
    let mut pricier = cfg.clone();
    pricier.price_in += 1;
    pricier.price_out += 1;
    match Node::start(pricier.clone()).await {
        Err(NodeError::RecordMismatch { differences, .. }) => {
            assert_eq!(differences.len(), 2, "{differences:?}");
            assert!(differences[0].starts_with("price_in"), "{differences:?}");
            assert!(differences[1].starts_with("price_out"), "{differences:?}");
        }
        other => panic!("expected RecordMismatch, got {other:?}"),
    }
    // `register` updates the record to the new prices; the old configuration no longer matches.
    match register(&pricier).await.unwrap() {
        RegisterOutcome::Updated { changes, .. } => assert_eq!(changes.len(), 2, "{changes:?}"),
        other => panic!("expected Updated, got {other:?}"),
    }
    assert!(matches!(
        Node::start(cfg.clone()).await,
        Err(NodeError::RecordMismatch { .. })
    ));

    // A model whose registry hash differs is refused by register and by start, before any
    // weights are loaded.
    let mut with_minilm = pricier.clone();
    with_minilm
        .models
        .push(ServedModel::load(ALL_MINILM_L6_V2, BackendKind::Flex));
    for result in [
        register(&with_minilm).await.map(|_| ()),
        Node::start(with_minilm.clone()).await.map(|_| ()),
    ] {
        match result {
            Err(NodeError::ModelRegistry { id, reason, .. }) => {
                assert_eq!(id, ALL_MINILM_L6_V2.id);
                assert!(reason.contains("registry hash"), "{reason}");
            }
            other => panic!("expected ModelRegistry, got {other:?}"),
        }
    }
    net.localnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_through_a_real_relayer() {
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
        .node_config(
            dir.path(),
            vec![ServedModel::text(SMOLLM2_135M, model.clone())],
        )
        .await;
    cfg.self_submit = true;
    register(&cfg).await.unwrap();
    let relayer = net.relayer(dir.path()).await;
    cfg.relayer_url = relayer.url();
    let node = Node::start(cfg.clone()).await.unwrap();
    assert!(
        node.wait_connected(Duration::from_secs(20)).await,
        "node connects to the relayer"
    );
    let worker = node.address().clone();
    let worker_key = cfg.keys.encryption_key();
    let mut client = Client::new(&net, 2 * NANO_PER_TON).await;
    // The relayer has no wallet here; the job names another address as its relayer.
    let relayer_wallet = net.funded_wallet(NANO_PER_TON).await.unwrap();

    // 1. A chat job whose max cost allows three output tokens: the answer opens with the client's
    // keys, stops at the cost limit, and the receipt passes the client's check.
    let request = chat(16, vec![]);
    let prompt_bound = 200u128;
    let max_cost = prompt_bound * PRICE_IN + 3 * PRICE_OUT;
    let job = seal(&mut client, SMOLLM2_135M, &request, &[worker_key], max_cost);
    open_on_chain(&net, &client, &job, relayer_wallet.address()).await;
    submit(&relayer, &client, &job, &job.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job.job, Duration::from_secs(120)).await;
    let answer = open_answer(&job, &worker_key, &events);
    let Some(JobOutput::Done {
        finish_reason,
        prompt_tokens,
        completion_tokens,
    }) = answer.outputs.last().cloned()
    else {
        panic!("the last output is Done: {:?}", answer.outputs);
    };
    assert!(
        matches!(answer.outputs.first(), Some(JobOutput::Delta { .. })),
        "{:?}",
        answer.outputs
    );
    assert_eq!(finish_reason, FinishReason::Length);
    assert_eq!(completion_tokens, 3);
    assert!(!answer.text.is_empty());
    let exp = expectation(
        &net,
        &job,
        &worker,
        cfg.wallet.address(),
        answer.output_commitment,
    )
    .await;
    check_receipt(&answer.receipt, &exp).expect("the client accepts the receipt");
    let body = &answer.receipt.body;
    assert_eq!(
        (body.tokens_in, body.tokens_out),
        (prompt_tokens, completion_tokens)
    );
    assert_eq!(
        body.cost,
        expected_cost(prompt_tokens, 3, PRICE_IN, PRICE_OUT).unwrap()
    );
    assert!(body.cost <= max_cost);
    assert_eq!(node.receipts_signed(), 1);

    // The node posts the receipt itself: the Escrow settles the job (it is no longer open).
    let escrow = EscrowClient::for_owner(&net.chain, &net.root, client.wallet.address())
        .await
        .unwrap();
    let mut settled = false;
    for _ in 0..120 {
        if escrow.job(job.job.job_id).await.unwrap().is_none() {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(settled, "the self-submitted receipt settles the job");

    // 2. A stop string: never part of the answer, generation ends there.
    let request = chat(24, vec!["Paris".into()]);
    let job2 = seal(
        &mut client,
        SMOLLM2_135M,
        &request,
        &[worker_key],
        NANO_PER_TON,
    );
    submit(&relayer, &client, &job2, &job2.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job2.job, Duration::from_secs(120)).await;
    let answer2 = open_answer(&job2, &worker_key, &events);
    assert!(!answer2.text.contains("Paris"), "{:?}", answer2.text);
    assert!(
        matches!(
            answer2.outputs.last(),
            Some(JobOutput::Done { finish_reason: FinishReason::Stop, completion_tokens, .. }) if *completion_tokens < 24
        ),
        "{:?}",
        answer2.outputs
    );
    let exp2 = expectation(
        &net,
        &job2,
        &worker,
        cfg.wallet.address(),
        answer2.output_commitment,
    )
    .await;
    check_receipt(&answer2.receipt, &exp2).unwrap();

    // 3. Sealed to another key: the node cannot open it, refuses, and signs nothing.
    let stranger = EncryptionKeyPair::generate().public_key();
    let job3 = seal(
        &mut client,
        SMOLLM2_135M,
        &chat(4, vec![]),
        &[stranger],
        NANO_PER_TON,
    );
    submit(&relayer, &client, &job3, &job3.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job3.job, Duration::from_secs(5)).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Dispatched { .. })),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::Receipt { .. } | StreamEvent::Chunk { .. })),
        "{events:?}"
    );
    assert_eq!(node.receipts_signed(), 2);
    assert_eq!(node.jobs_served(), 2);

    // 4. The first job dispatched again (a new relayer that never saw it, the node restarted with
    // the same key file): the node refuses to sign a second receipt for it.
    node.shutdown().await;
    relayer.shutdown().await.unwrap();
    let relayer = net.relayer(dir.path()).await;
    cfg.relayer_url = relayer.url();
    let node = Node::start(cfg.clone()).await.unwrap();
    assert!(node.wait_connected(Duration::from_secs(20)).await);
    assert_eq!(node.receipts_signed(), 2, "the ledger survives the restart");
    submit(&relayer, &client, &job, &job.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job.job, Duration::from_secs(5)).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Dispatched { .. })),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::Receipt { .. })),
        "{events:?}"
    );
    assert_eq!(node.receipts_signed(), 2);
    assert_eq!(node.jobs_served(), 0);
    node.shutdown().await;
    relayer.shutdown().await.unwrap();
    net.localnet.stop().await;
}
