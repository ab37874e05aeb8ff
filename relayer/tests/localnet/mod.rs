//! Localnet set-up for the relayer's chain tests, over the test kit's development chain: a stub
//! worker registered as a real Worker contract, a client with a funded Escrow, the relayer's
//! wallet, and helpers to open jobs and watch them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use cocoon_relayer::store::{JobState, Store};
use cocoon_sdk::chain::{ChainApi, TonCenterClient};
use cocoon_sdk::contracts::{EscrowClient, OpenJobArgs, WorkerClient};
use cocoon_sdk::messages::records::{Attestation, WorkerRecord};
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{SendOptions, Wallet, WalletKind};
use cocoon_testkit::chain::Localnet;
use cocoon_testkit::chain::simulated_measurement;
use cocoon_testkit::stub::StubWorker;
use cocoon_testkit::{DevChain, dev};
use sha2::{Digest, Sha256};

/// Root's grace period after job deadlines, seconds (the development Root's).
pub const GRACE: u32 = dev::GRACE_PERIOD;

/// A development network with the relayer's counterparts on it.
pub struct Net {
    /// Localnet and the development Root.
    pub dev: DevChain,
    pub chain: TonCenterClient,
    pub root: TonAddress,
    pub relayer: Wallet,
    pub relayer_mnemonic: String,
    pub client: Wallet,
    pub escrow: TonAddress,
    pub stub: StubWorker,
    pub opts: SendOptions,
}

/// Starts a fresh localnet and sets the network up (see [`Net`]).
pub async fn setup(stub: StubWorker, deposit: u128) -> Net {
    setup_on(
        cocoon_testkit::chain::start_localnet().await.unwrap(),
        stub,
        deposit,
    )
    .await
}

/// Sets the network up on a running localnet: the development Root registering the stub's
/// models, the stub registered as a real Worker, a client with `deposit` in its Escrow, and the
/// relayer's wallet.
pub async fn setup_on(net: Localnet, mut stub: StubWorker, deposit: u128) -> Net {
    let registry: BTreeMap<u32, [u8; 32]> = stub
        .models
        .iter()
        .map(|m| (*m, [0xa0 + *m as u8; 32]))
        .collect();
    let dev = DevChain::on(net, registry).await.unwrap();
    let chain = dev.chain.clone();
    let opts = SendOptions::default();
    let gpu = dev.funded_wallet(100 * NANO_PER_TON).await.unwrap();
    let (client, _) = dev
        .funded(WalletKind::V4r2, 100 * NANO_PER_TON)
        .await
        .unwrap();
    let (relayer, relayer_mnemonic) = dev
        .funded(WalletKind::V5r1, 10 * NANO_PER_TON)
        .await
        .unwrap();

    let worker = WorkerClient::for_owner(&chain, &dev.root, gpu.address())
        .await
        .unwrap();
    stub.address = worker.address().to_hex();
    let record = WorkerRecord {
        receipt_key: stub.signing_key.verifying_key().to_bytes(),
        encryption_key: stub.encryption_key,
        price_in: u128::from(stub.prices.0),
        price_out: u128::from(stub.prices.1),
        models: stub.models.iter().copied().collect(),
        attestation: Attestation {
            kind: cocoon_sdk::messages::records::tee_kind::SIMULATED,
            measurement: simulated_measurement(),
            evidence_hash: Sha256::digest(&stub.evidence).into(),
            expires_at: u32::MAX,
        },
    };
    worker
        .register(&gpu, dev::MIN_STAKE, record, &opts)
        .await
        .unwrap();

    let escrow = EscrowClient::for_owner(&chain, &dev.root, client.address())
        .await
        .unwrap();
    escrow.deposit(&client, deposit, &opts).await.unwrap();
    let escrow = escrow.address().clone();
    let root = dev.root.clone();
    Net {
        dev,
        chain,
        root,
        relayer,
        relayer_mnemonic,
        client,
        escrow,
        stub,
        opts,
    }
}

impl Net {
    /// The client's Escrow.
    pub async fn escrow(&self) -> EscrowClient<'_, TonCenterClient> {
        EscrowClient::for_owner(&self.chain, &self.root, self.client.address())
            .await
            .unwrap()
    }

    /// The chain's clock (the Escrow's last sync time).
    pub async fn now(&self) -> u32 {
        self.chain.account(&self.escrow).await.unwrap().sync_utime as u32
    }

    /// Opens job `job_id` for sealed `input`, with the relayer as relayer and no fixed worker.
    pub async fn open(&self, job_id: u64, input: &[u8], deadline_in: u32) -> JobRef {
        let deadline = self.now().await + deadline_in;
        let args = OpenJobArgs {
            job_id,
            model_id: self.stub.models[0],
            max_cost: NANO_PER_TON / 10,
            deadline,
            relayer_fee_bps: 500,
            input_commitment: Sha256::digest(input).into(),
            relayer: self.relayer.address().clone(),
            worker: None,
        };
        self.escrow()
            .await
            .open_job(&self.client, args, &self.opts)
            .await
            .unwrap();
        JobRef::new(self.escrow.to_hex(), job_id)
    }
}

/// Waits (up to `secs`) until `job` is in a state `ok` accepts; returns its record.
pub async fn wait_for(
    store: &Store,
    job: &JobRef,
    secs: u64,
    ok: impl Fn(JobState) -> bool,
) -> cocoon_relayer::JobRecord {
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = store.job(job).await.unwrap();
        if let Some(r) = &r
            && ok(r.state)
        {
            return r.clone();
        }
        if tokio::time::Instant::now() > until {
            panic!("{job}: still {r:?} after {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts a sealed input for `job` with `candidate` as the only candidate; returns the status.
pub async fn submit(base: &str, job: &JobRef, input: &[u8], candidate: &str) -> u16 {
    use base64::Engine as _;
    let body = serde_json::json!({
        "version": 1,
        "sealed_input": base64::engine::general_purpose::STANDARD.encode(input),
        "candidates": [candidate],
    });
    reqwest::Client::new()
        .post(format!(
            "{base}/v1/jobs/{}/{}/input",
            job.escrow, job.job_id
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
