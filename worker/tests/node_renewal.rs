//! Re-attestation on localnet: a serving node whose attestation is about to expire renews it by
//! itself (fresh evidence bound to the new expiry, the Worker record updated, the relayer told
//! through a new session), keeps serving with receipts naming the new evidence, and still never
//! signs a second receipt for a job it signed before the renewal.

#[path = "node_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_sdk::attest::{Evidence, Policy, WorkerBinding, attestation_nonce, verify_worker};
use cocoon_sdk::contracts::{RootClient, WorkerClient};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::messages::records::RootPolicy;
use cocoon_sdk::receipt::check_receipt;
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_worker::node::{Node, Renewal, ServedModel, register};
use cocoon_worker::{BackendKind, models};

use support::*;

const TTL: u32 = 3_600;
const RENEW_BEFORE: u32 = 600;

fn chat() -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", "Name a colour.")],
        GenerationParams {
            max_tokens: 2,
            temperature: 0.0,
            top_p: 1.0,
            stop: vec![],
            seed: Some(1),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_serving_node_renews_its_attestation_before_expiry() {
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
    cfg.renewal = Renewal {
        ttl: TTL,
        renew_before: RENEW_BEFORE,
        check_every: Duration::from_millis(200),
    };
    register(&cfg).await.unwrap();
    let relayer = net.relayer(dir.path()).await;
    cfg.relayer_url = relayer.url();
    let node = Node::start(cfg.clone()).await.unwrap();
    assert!(node.wait_connected(Duration::from_secs(20)).await);
    let worker = node.address().clone();
    let worker_key = cfg.keys.encryption_key();
    let record_of = || async {
        WorkerClient::for_owner(&net.chain, &net.root, cfg.wallet.address())
            .await
            .unwrap()
            .record()
            .await
            .unwrap()
    };
    let before = record_of().await;
    let first_evidence = node.evidence();
    assert_eq!(before.evidence_hash, first_evidence.hash);
    assert_eq!(node.renewals(), 0, "a fresh attestation is not renewed");

    // A job before the renewal.
    let mut client = Client::new(&net, 2 * cocoon_sdk::units::NANO_PER_TON).await;
    let job1 = seal(&mut client, SMOLLM2_135M, &chat(), &[worker_key], 1_000_000);
    submit(&relayer, &client, &job1, &job1.seal.sealed, &[&worker]).await;
    let answer1 = open_answer(
        &job1,
        &worker_key,
        &stream(&relayer, &job1.job, Duration::from_secs(120)).await,
    );
    assert_eq!(
        answer1.receipt.body.hashes.evidence_hash,
        before.evidence_hash
    );

    // The chain clock moves into the renewal window: the node renews by itself.
    net.localnet
        .advance_time(u64::from(TTL - RENEW_BEFORE / 2))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while node.renewals() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node did not renew its attestation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = record_of().await;
    let renewed = node.evidence();
    assert_eq!(
        after.evidence_hash, renewed.hash,
        "the chain holds the new evidence"
    );
    assert_ne!(after.evidence_hash, before.evidence_hash);
    assert!(after.expires_at > before.expires_at);
    assert_eq!(after.expires_at, renewed.expires_at);
    let now = net.now().await.unwrap();
    assert!(
        after.expires_at >= now + TTL - 60,
        "{} vs {now}",
        after.expires_at
    );
    // Nothing but the attestation changed.
    assert_eq!(
        (
            after.receipt_key,
            after.encryption_key,
            after.price_in,
            after.price_out,
            &after.models
        ),
        (
            before.receipt_key,
            before.encryption_key,
            before.price_in,
            before.price_out,
            &before.models
        )
    );

    // A client verifies the renewed evidence against Root's policy and the new expiry's nonce.
    let view = RootClient::at(&net.chain, net.root.clone())
        .policy()
        .await
        .unwrap();
    let policy = Policy::development_from_root(&RootPolicy {
        allowed_kinds: view.allowed_kinds,
        measurements: view.measurements.clone(),
    });
    let binding = WorkerBinding {
        receipt_key: after.receipt_key,
        encryption_key: after.encryption_key,
        worker: worker.clone(),
        chain_nonce: attestation_nonce(&net.root, after.expires_at).unwrap(),
        gpu_evidence_hash: None,
    };
    verify_worker(
        &Evidence::decode(&renewed.bytes).unwrap(),
        &policy,
        &binding,
    )
    .unwrap();
    // The evidence file next to the keys is the renewed one (a restart finds it).
    assert_eq!(
        std::fs::read(cfg.keys.evidence_path().unwrap()).unwrap(),
        renewed.bytes
    );

    // The node reconnected with the new evidence (the relayer checks it against the chain) and
    // serves: the receipt names the renewed evidence and the client accepts it.
    assert!(
        node.wait_announced(renewed.hash, Duration::from_secs(30))
            .await,
        "the node opens a session with the renewed evidence"
    );
    let job2 = seal(&mut client, SMOLLM2_135M, &chat(), &[worker_key], 1_000_000);
    submit(&relayer, &client, &job2, &job2.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job2.job, Duration::from_secs(120)).await;
    let answer2 = open_answer(&job2, &worker_key, &events);
    assert_eq!(
        answer2.receipt.body.hashes.evidence_hash,
        after.evidence_hash
    );
    let exp = expectation(
        &net,
        &job2,
        &worker,
        cfg.wallet.address(),
        answer2.output_commitment,
    )
    .await;
    check_receipt(&answer2.receipt, &exp).expect("the client accepts the post-renewal receipt");
    assert_eq!(node.receipts_signed(), 2);

    // The job signed before the renewal, dispatched again by a relayer that never saw it (at the
    // same address, so the node reconnects to it): no second receipt.
    let listen = relayer.local_addr();
    relayer.shutdown().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while node.is_connected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node notices the relayer left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let relayer = net.relayer_on(dir.path(), listen).await;
    assert!(
        node.wait_announced(renewed.hash, Duration::from_secs(60))
            .await,
        "the node reconnects to the new relayer"
    );
    submit(&relayer, &client, &job1, &job1.seal.sealed, &[&worker]).await;
    let events = stream(&relayer, &job1.job, Duration::from_secs(5)).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::Receipt { .. })),
        "{events:?}"
    );
    assert_eq!(node.receipts_signed(), 2);
    assert_eq!(node.renewals(), 1, "renewed once, not at every check");
    node.shutdown().await;
    relayer.shutdown().await.unwrap();
    net.localnet.stop().await;
}
