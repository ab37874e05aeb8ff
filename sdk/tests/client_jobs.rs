//! Jobs through the client API against the real contracts on localnet, with an in-test relayer
//! that plays the worker's part: a chat and an embeddings job answered, sealed chunks opened and
//! the receipt checked, the settlement found on-chain; failover between the sealed candidates; a
//! pinned worker; and every way a relayer or worker can cheat or fail, refused with its error.

use std::time::Duration;

use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::client::{Client, ClientError, JobEvent, JobOptions};
use cocoon_sdk::contracts::{EscrowClient, WorkerClient};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, FinishReason, GenerationParams, JobRequest};
use cocoon_sdk::receipt::ReceiptError;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::SendOptions;

use cocoon_testkit::dev::GRACE_PERIOD as GRACE;
use cocoon_testkit::{DevChain, FakeRelayer, Script};

fn chat(text: &str) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", text)],
        GenerationParams {
            max_tokens: 16,
            ..GenerationParams::default()
        },
    )
}

async fn run(
    client: &Client,
    options: JobOptions,
) -> Result<cocoon_sdk::client::JobResult, ClientError> {
    client
        .open_job(SMOLLM2_135M.name, chat("hello there"), options)
        .await?
        .finish()
        .await
}

#[tokio::test]
async fn jobs_stream_verify_settle_and_refuse_cheats() {
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
    let escrow = EscrowClient::for_owner(&net.chain, &net.root, client.wallet_address())
        .await
        .unwrap();

    // --- a chat job, while the relayer's watcher lags behind the chain
    relayer.not_found_first(2);
    let mut stream = client
        .open_job(
            SMOLLM2_135M.name,
            chat("hello there"),
            JobOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(stream.job().job_id, 1);
    assert!(stream.open_timing() > Duration::ZERO);
    let max_cost = stream.max_cost();
    assert_eq!(
        escrow.state().await.unwrap().locked,
        max_cost,
        "max cost locked"
    );
    let mut deltas = String::new();
    let mut result = None;
    let mut dispatched = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev.unwrap() {
            JobEvent::Dispatched { worker, attempt } => dispatched.push((worker, attempt)),
            JobEvent::Delta(t) => deltas.push_str(&t),
            JobEvent::Embeddings(_) => panic!("no embeddings in a chat"),
            JobEvent::Done(r) => result = Some(*r),
        }
    }
    let result = result.expect("done");
    assert_eq!(dispatched, vec![(a.address.clone(), 1)]);
    assert_eq!(result.text, "echo: hello there ");
    assert_eq!(deltas, result.text);
    assert_eq!(result.worker, a.address);
    assert_eq!(result.attestation_kind, EvidenceKind::Simulated);
    assert!(result.unattested());
    assert_eq!(result.finish_reason, FinishReason::Stop);
    assert_eq!(result.usage.completion_tokens, 3);
    assert_eq!(
        result.cost,
        u128::from(result.usage.prompt_tokens) * 1_000 + 3 * 3_000
    );
    assert!(result.cost <= result.max_cost);
    assert_eq!(result.max_cost, max_cost);
    assert_eq!(
        result.receipt.body.signing_hash().unwrap(),
        result.receipt_hash
    );
    // Sealed to both candidates, in the relayer's order; the relayer was asked three times.
    let submitted = relayer.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(
        submitted[0].candidates,
        vec![a.address.to_hex(), b.address.to_hex()]
    );

    // --- nothing settled yet: waiting is a Timeout
    match client
        .verify_settlement_within(&result, Duration::from_secs(1))
        .await
    {
        Err(ClientError::Timeout(_)) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    // --- the receipt goes on-chain; the client finds and checks the settlement
    WorkerClient::for_owner(&net.chain, &net.root, a.owner.address())
        .await
        .unwrap()
        .submit_receipts(
            &a.owner,
            vec![result.receipt.clone()],
            &SendOptions::default(),
        )
        .await
        .unwrap();
    let settlement = client
        .verify_settlement_within(&result, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(settlement.cost, result.cost);
    assert_eq!(settlement.worker, a.address);
    assert_eq!(settlement.receipt_hash, result.receipt_hash);
    assert!(settlement.lt > result.open_lt);
    assert_eq!(escrow.state().await.unwrap().locked, 0);

    // --- an embeddings job (only A serves the model)
    let r = client
        .open_job(
            ALL_MINILM_L6_V2.name,
            JobRequest::embeddings(vec!["ab".into(), "cde".into()]),
            JobOptions::default(),
        )
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(
        r.embeddings,
        Some(vec![vec![2.0, 1.0, -0.5], vec![3.0, 1.0, -0.5]])
    );
    assert_eq!(r.usage.completion_tokens, 0);
    assert_eq!(r.model, ALL_MINILM_L6_V2);
    assert_eq!(r.job.job_id, 2);

    // --- failover: B first (preferred), then A; text and receipt are A's, B's late chunk void
    relayer.script(Script::Failover);
    let mut stream = client
        .open_job(
            SMOLLM2_135M.name,
            chat("hello there"),
            JobOptions {
                preferred_workers: vec![b.address.clone()],
                ..JobOptions::default()
            },
        )
        .await
        .unwrap();
    let mut attempts = Vec::new();
    let r = loop {
        match stream.next().await.unwrap().unwrap() {
            JobEvent::Dispatched { worker, attempt } => attempts.push((worker, attempt)),
            JobEvent::Done(r) => break *r,
            _ => {}
        }
    };
    assert!(stream.next().await.is_none(), "nothing after done");
    assert_eq!(
        attempts,
        vec![(b.address.clone(), 1), (a.address.clone(), 2)]
    );
    assert_eq!(r.worker, a.address);
    assert_eq!(r.text, "echo: hello there ");

    // --- a pinned worker: only B is sealed to, and OpenJob names it
    relayer.script(Script::Answer);
    let r = run(
        &client,
        JobOptions {
            worker: Some(b.address.clone()),
            ..JobOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.worker, b.address);
    assert_eq!(
        r.cost,
        u128::from(r.usage.prompt_tokens) * 2_000 + 3 * 1_000
    );
    assert_eq!(
        relayer.submitted().last().unwrap().candidates,
        vec![b.address.to_hex()]
    );
    assert_eq!(
        escrow.job(r.job.job_id).await.unwrap().unwrap().worker,
        Some(b.address.clone())
    );

    // --- the stream connection drops mid-event: the client reads it again, skipping the replay
    relayer.script(Script::DropOnce);
    let r = run(&client, JobOptions::default()).await.unwrap();
    assert_eq!(r.text, "echo: hello there ");
    assert_eq!(r.worker, a.address);
    assert_eq!(relayer.stream_connections(&r.job), 2);

    // --- the relayer took the input but its answer was lost: the client submits again, and the
    // relayer's `already_submitted` confirms the first submission
    relayer.script(Script::Answer);
    relayer.lose_answers(1);
    let before = relayer.submitted().len();
    let r = run(&client, JobOptions::default()).await.unwrap();
    assert_eq!(r.text, "echo: hello there ");
    assert_eq!(relayer.submitted().len(), before + 1, "stored once");

    // --- cheats and failures
    relayer.script(Script::TamperChunk);
    match run(&client, JobOptions::default()).await {
        Err(ClientError::BadResponse(m)) => assert!(m.contains("does not open"), "{m}"),
        other => panic!("expected BadResponse, got {other:?}"),
    }
    relayer.script(Script::Truncate);
    match run(&client, JobOptions::default()).await {
        Err(ClientError::BadResponse(m)) => assert!(m.contains("truncated"), "{m}"),
        other => panic!("expected BadResponse, got {other:?}"),
    }
    relayer.script(Script::ForgedReceipt);
    match run(&client, JobOptions::default()).await {
        Err(ClientError::ReceiptInvalid(ReceiptError::SignatureInvalid)) => {}
        other => panic!("expected a bad signature, got {other:?}"),
    }
    relayer.script(Script::Overcharge);
    match run(&client, JobOptions::default()).await {
        Err(ClientError::ReceiptInvalid(ReceiptError::CostMismatch { expected, actual })) => {
            assert_eq!(actual, expected + 1)
        }
        other => panic!("expected CostMismatch, got {other:?}"),
    }
    relayer.script(Script::Fail);
    match run(&client, JobOptions::default()).await {
        Err(ClientError::JobFailed { reason, .. }) => assert!(reason.contains("every candidate")),
        other => panic!("expected JobFailed, got {other:?}"),
    }

    // --- silence until the deadline: JobExpired, then refunded on-chain after the grace period
    relayer.script(Script::Hang);
    let locked_before = escrow.state().await.unwrap().locked;
    let stream = client
        .open_job(
            SMOLLM2_135M.name,
            chat("hello there"),
            JobOptions {
                deadline: Some(Duration::from_secs(3)),
                ..JobOptions::default()
            },
        )
        .await
        .unwrap();
    let job = stream.job().clone();
    let locked = escrow.job(job.job_id).await.unwrap().unwrap().max_cost;
    match stream.finish().await {
        Err(ClientError::JobExpired { job: j }) => assert_eq!(j, job),
        other => panic!("expected JobExpired, got {other:?}"),
    }
    net.localnet
        .advance_time(u64::from(GRACE) + 10)
        .await
        .unwrap();
    client.expire(&job).await.unwrap();
    assert_eq!(escrow.job(job.job_id).await.unwrap(), None);
    assert_eq!(escrow.state().await.unwrap().locked, locked_before);
    assert!(locked > 0);
}
