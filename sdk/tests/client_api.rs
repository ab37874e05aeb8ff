//! The client API against the real contracts on localnet and an in-test relayer: connecting,
//! the Escrow's funds, worker verification, and every refusal that must come before anything is
//! sent (unknown model, no worker, attestation rejected, balance too low, relayer unreachable).

use std::time::Duration;

use cocoon_sdk::attest::{Evidence, EvidenceKind};
use cocoon_sdk::chain::ChainApi;
use cocoon_sdk::client::{Client, ClientError, JobOptions, PolicyMode};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;

use cocoon_testkit::{DevChain, FakeRelayer};

fn chat(text: &str) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", text)],
        GenerationParams {
            max_tokens: 16,
            ..GenerationParams::default()
        },
    )
}

fn no_worker_reason(r: Result<cocoon_sdk::client::JobStream, ClientError>) -> String {
    match r {
        Err(ClientError::NoWorker { model, reason }) => {
            assert_eq!(model, SMOLLM2_135M.name);
            reason
        }
        other => panic!("expected NoWorker, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_funds_workers_and_refusals() {
    let net = DevChain::start(&[SMOLLM2_135M]).await.unwrap();
    let relayer = FakeRelayer::start().await;

    // --- a relayer that does not answer
    let wallet = net.funded_wallet(NANO_PER_TON).await.unwrap();
    match Client::connect(net.client_config("http://127.0.0.1:1"), wallet).await {
        Err(ClientError::RelayerUnreachable(_)) => {}
        other => panic!("expected RelayerUnreachable, got {other:?}"),
    }

    let client = relayer.client(&net).await;
    assert_eq!(client.relayer_id(), &relayer.id);
    let b0 = client.balance().await.unwrap();
    assert!(!b0.exists);
    assert_eq!((b0.free, b0.locked), (0, 0));

    // --- models: unknown names, and a known model Root does not register
    for name in ["gpt-4", "7", ALL_MINILM_L6_V2.name] {
        match client
            .open_job(name, chat("hi"), JobOptions::default())
            .await
        {
            Err(ClientError::UnknownModel(m)) => assert!(m.starts_with(name), "{m}"),
            other => panic!("expected UnknownModel for {name}, got {other:?}"),
        }
    }
    // A request of the wrong kind for the model.
    match client
        .open_job(
            SMOLLM2_135M.name,
            JobRequest::embeddings(vec!["x".into()]),
            JobOptions::default(),
        )
        .await
    {
        Err(ClientError::InvalidRequest(_)) => {}
        other => panic!("expected InvalidRequest, got {other:?}"),
    }

    // --- no worker listed at all
    let r = client
        .open_job(SMOLLM2_135M.name, chat("hi"), JobOptions::default())
        .await;
    assert!(no_worker_reason(r).contains("no attested worker"));
    match client
        .wait_for_workers(&SMOLLM2_135M, Duration::from_secs(1))
        .await
    {
        Err(ClientError::NoWorker { .. }) => {}
        other => panic!("expected NoWorker, got {other:?}"),
    }

    // --- one honest worker; no deposit yet: refused before anything is sent
    let a = net.register_worker(1, &[1], 1_000, 3_000).await.unwrap();
    relayer.list(&a, a.info());
    match client
        .open_job(SMOLLM2_135M.name, chat("hi"), JobOptions::default())
        .await
    {
        Err(ClientError::InsufficientBalance { needed, free }) => {
            assert_eq!(free, 0);
            assert!(needed > 16 * 3_000, "needed {needed}");
        }
        other => panic!("expected InsufficientBalance, got {other:?}"),
    }
    assert!(relayer.submitted().is_empty());
    assert!(!client.balance().await.unwrap().exists);

    // --- deposit (creates the Escrow), withdraw, balance
    client.deposit(2 * NANO_PER_TON).await.unwrap();
    let b1 = client.balance().await.unwrap();
    assert!(b1.exists);
    assert!(
        b1.free > 2 * NANO_PER_TON - NANO_PER_TON / 10 && b1.free < 2 * NANO_PER_TON,
        "free {}",
        b1.free
    );
    assert_eq!(b1.locked, 0);
    assert!(b1.total >= b1.free);
    let wallet_before = net
        .chain
        .account(client.wallet_address())
        .await
        .unwrap()
        .balance;
    client.withdraw(NANO_PER_TON / 2).await.unwrap();
    let b2 = client.balance().await.unwrap();
    // The gas attached to the withdrawal (0.05 TON) stays with the Escrow, less what it burnt.
    let expected = b1.free - NANO_PER_TON / 2;
    assert!(
        b2.free >= expected && b2.free <= expected + NANO_PER_TON / 20,
        "free {} after withdrawing 0.5 from {}",
        b2.free,
        b1.free
    );
    let wallet_after = net
        .chain
        .account(client.wallet_address())
        .await
        .unwrap()
        .balance;
    assert!(
        wallet_after > wallet_before,
        "the withdrawal reached the wallet"
    );
    // More than the free balance: refused by the Escrow, named.
    match client.withdraw(10 * NANO_PER_TON).await {
        Err(ClientError::Contract(_)) => {}
        other => panic!("expected a contract refusal, got {other:?}"),
    }

    // --- a max cost above the free balance: refused before sending (read the balance after the
    // refused withdrawal: its transaction paid the Escrow's storage fee)
    let b2 = client.balance().await.unwrap();
    let last = net
        .chain
        .account(client.escrow_address())
        .await
        .unwrap()
        .last_tx;
    match client
        .open_job(
            SMOLLM2_135M.name,
            chat("hi"),
            JobOptions {
                max_cost: Some(b2.free + 1),
                ..JobOptions::default()
            },
        )
        .await
    {
        Err(ClientError::InsufficientBalance { needed, free }) => {
            assert_eq!(needed, b2.free + 1);
            assert_eq!(free, b2.free);
        }
        other => panic!("expected InsufficientBalance, got {other:?}"),
    }
    assert_eq!(
        net.chain
            .account(client.escrow_address())
            .await
            .unwrap()
            .last_tx,
        last,
        "no transaction reached the Escrow"
    );
    assert!(relayer.submitted().is_empty());

    // --- the verified worker, with on-chain prices
    let ws = client
        .wait_for_workers(&SMOLLM2_135M, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ws.len(), 1);
    let ws = client.workers(&SMOLLM2_135M).await.unwrap();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].address, a.address);
    assert_eq!((ws[0].price_in, ws[0].price_out), (1_000, 3_000));
    assert_eq!(ws[0].kind(), EvidenceKind::Simulated);
    let offers = client.models().await.unwrap();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].spec, Some(SMOLLM2_135M));
    assert_eq!((offers[0].workers, offers[0].available), (1, 1));
    assert_eq!(offers[0].min_price_out, Some(3_000));

    // --- no worker passes the limits: say which
    let r = client
        .open_job(
            SMOLLM2_135M.name,
            chat("hi"),
            JobOptions {
                max_price_in: Some(999),
                ..JobOptions::default()
            },
        )
        .await;
    assert!(no_worker_reason(r).contains("price limits"));
    let r = client
        .open_job(
            SMOLLM2_135M.name,
            chat("hi"),
            JobOptions {
                min_attestation: Some(EvidenceKind::SevSnp),
                ..JobOptions::default()
            },
        )
        .await;
    assert!(no_worker_reason(r).contains("minimum attestation"));
    relayer.clear();
    relayer.list(&a, {
        let mut busy = a.info();
        busy.load = busy.capacity;
        busy
    });
    let r = client
        .open_job(SMOLLM2_135M.name, chat("hi"), JobOptions::default())
        .await;
    assert!(no_worker_reason(r).contains("busy"));

    // --- a production client refuses Simulated evidence
    let prod_wallet = net.funded_wallet(NANO_PER_TON).await.unwrap();
    let mut prod_config = net.client_config(&relayer.url);
    prod_config.policy = PolicyMode::Production;
    let prod = Client::connect(prod_config, prod_wallet).await.unwrap();
    match prod.workers(&SMOLLM2_135M).await {
        Err(ClientError::AttestationRejected { worker, reason }) => {
            assert_eq!(worker, a.address.to_hex());
            assert!(reason.contains("SIMULATED"), "{reason}");
        }
        other => panic!("expected AttestationRejected, got {other:?}"),
    }

    // --- a client that requires GPU attestation refuses a worker whose evidence has none
    let gpu_wallet = net.funded_wallet(NANO_PER_TON).await.unwrap();
    let mut gpu_config = net.client_config(&relayer.url);
    gpu_config.require_gpu = true;
    let gpu_client = Client::connect(gpu_config, gpu_wallet).await.unwrap();
    match gpu_client.workers(&SMOLLM2_135M).await {
        Err(ClientError::AttestationRejected { worker, reason }) => {
            assert_eq!(worker, a.address.to_hex());
            assert!(reason.contains("GPU attestation is required"), "{reason}");
        }
        other => panic!("expected AttestationRejected, got {other:?}"),
    }

    // --- a worker whose evidence hash on-chain differs from the evidence the relayer serves
    let c = net.register_worker(3, &[1], 1_000, 3_000).await.unwrap();
    let mut forged = c.info();
    forged.evidence = Evidence::simulated([0x42; 64], "swapped").encode();
    relayer.clear();
    relayer.list(&c, forged);
    match client.workers(&SMOLLM2_135M).await {
        Err(ClientError::AttestationRejected { worker, reason }) => {
            assert_eq!(worker, c.address.to_hex());
            assert!(reason.contains("differs from the on-chain"), "{reason}");
        }
        other => panic!("expected AttestationRejected, got {other:?}"),
    }
    // Next to an honest worker it is left out; pinned, the job is refused with the reason.
    relayer.list(&a, a.info());
    let ws = client.workers(&SMOLLM2_135M).await.unwrap();
    assert_eq!(
        ws.iter().map(|w| &w.address).collect::<Vec<_>>(),
        vec![&a.address]
    );
    match client
        .open_job(
            SMOLLM2_135M.name,
            chat("hi"),
            JobOptions {
                worker: Some(c.address.clone()),
                ..JobOptions::default()
            },
        )
        .await
    {
        Err(ClientError::AttestationRejected { worker, .. }) => {
            assert_eq!(worker, c.address.to_hex())
        }
        other => panic!("expected AttestationRejected, got {other:?}"),
    }
    assert!(relayer.submitted().is_empty(), "nothing was ever submitted");
}
