//! The channel client reports an equivocating worker by itself, on localnet with a Root v2, a
//! real relayer and a stub worker: the worker signs a receipt the client refuses (its output
//! commitment is not the answer's), then, asked again at the same seq, signs a second, different
//! receipt for it. Holding both, the client sends `report_equivocation` at once: the Worker's
//! stake is slashed and the reporter reward reaches the client's wallet, with no manual step.

use std::collections::BTreeMap;

use cocoon_relayer::service::{self, ChainConfig, ServiceConfig};
use cocoon_sdk::chain::ChainApi as _;
use cocoon_sdk::channel::ChannelError;
use cocoon_sdk::client::PolicyMode;
use cocoon_sdk::client::channels::{ChannelClient, ChannelClientError, ChannelConfig};
use cocoon_sdk::contracts::v2::WorkerClient;
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::messages::v2::records::worker_status;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::{DevChainV2, RegisteredWorker, StubMode, StubWorker};
use ed25519_dalek::SigningKey;

const PRICE_IN: u128 = 1_000;
const PRICE_OUT: u128 = 3_000;

fn stub_of(w: &RegisteredWorker, mode: StubMode) -> StubWorker {
    let mut s = StubWorker::new(0, vec![SMOLLM2_135M.id]);
    s.signing_key = w.signing.clone();
    s.address = w.address.to_hex();
    s.encryption_key = w.enc.public_key();
    s.evidence = w.evidence.encode();
    s.prices = (PRICE_IN as u64, PRICE_OUT as u64);
    s.sealing = Some(w.enc.clone());
    s.mode = mode;
    s
}

async fn ask(client: &ChannelClient, text: &str) -> Result<(), ChannelClientError> {
    let request = JobRequest::chat(
        vec![ChatMessage::new("user", text)],
        GenerationParams {
            max_tokens: 8,
            ..GenerationParams::default()
        },
    );
    client
        .request(&SMOLLM2_135M, request)
        .await?
        .finish()
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_client_reports_a_worker_that_signs_two_receipts_for_one_seq() {
    let chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(SMOLLM2_135M.id, SMOLLM2_135M.registry_hash())]),
    )
    .await
    .unwrap();
    let w = chain
        .register_worker(5, &[SMOLLM2_135M.id], PRICE_IN, PRICE_OUT)
        .await
        .unwrap();
    let relayer_wallet = chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
    );
    cfg.chain = Some(ChainConfig::new(
        cocoon_sdk::chain::TonCenterConfig::new(chain.localnet.url().to_owned()),
        chain.root.clone(),
        relayer_wallet,
    ));
    let relayer = service::spawn(cfg).await.unwrap();
    let base = relayer.url();
    let stub = stub_of(&w, StubMode::WrongOutput)
        .connect(&base.replacen("http", "ws", 1))
        .await
        .unwrap();

    let wallet = chain.funded_wallet(20 * NANO_PER_TON).await.unwrap();
    let mut cc = ChannelConfig::new(
        cocoon_sdk::chain::TonCenterConfig::new(chain.localnet.url().to_owned()),
        chain.root.clone(),
        &base,
    );
    cc.policy = PolicyMode::Development;
    cc.channels = 1;
    cc.channel_amount = 2_000_000;
    cc.lifetime = 3600;
    let client = ChannelClient::connect(cc, wallet.clone(), SigningKey::from_bytes(&[0x4d; 32]))
        .await
        .unwrap();
    let worker = WorkerClient::at(&chain.chain, chain.root.clone(), w.address.clone());
    let stake = worker.state().await.unwrap().stake;
    assert!(stake > 0);

    // 1. A receipt the client refuses (wrong output): kept, nothing reported yet.
    for attempt in 1..=2 {
        match ask(&client, &format!("question {attempt}")).await {
            Err(ChannelClientError::Channel(ChannelError::RequestMismatch {
                field: "output_commitment",
                ..
            })) => {}
            other => panic!("attempt {attempt}: {other:?}"),
        }
        if attempt == 1 {
            assert!(client.equivocation_reports().is_empty());
            assert_eq!(worker.state().await.unwrap().status, worker_status::ACTIVE);
        }
    }
    assert_eq!(stub.jobs(), 2);
    assert!(stub.vouchers().is_empty(), "nothing paid");

    // 2. The second receipt for seq 1 differs from the first: reported by the client itself.
    let reports = client.equivocation_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!(
        (&r.worker, r.seq, &r.error),
        (&w.address, 1, &None),
        "{r:?}"
    );
    let after = worker.state().await.unwrap();
    assert_eq!(
        (after.status, after.stake),
        (worker_status::SLASHED, 0),
        "slashed"
    );

    // 3. The reporter reward reached the client's wallet.
    let reward = stake * u128::from(cocoon_testkit::dev::REPORTER_REWARD_BPS) / 10_000;
    let txs = chain
        .chain
        .transactions(wallet.address(), 0, 50)
        .await
        .unwrap();
    let rewarded = txs.iter().any(|t| {
        t.in_msg.as_ref().is_some_and(|m| {
            m.source.as_ref() == Some(&w.address) && m.value.unwrap_or(0) >= reward
        })
    });
    assert!(
        rewarded,
        "no reward of {reward} nanoTON from the Worker in {txs:#?}"
    );
}
