//! Localnet set-up for the relayer's chain tests: a Root that allows simulated TEEs, a stub
//! worker registered as a real Worker contract, a client with a funded Escrow, the relayer's
//! wallet, and helpers to open jobs and watch them.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cocoon_relayer::store::{JobState, Store};
use cocoon_relayer::stub::StubWorker;
use cocoon_sdk::chain::{ChainApi, TonCenterClient};
use cocoon_sdk::contracts::{EscrowClient, OpenJobArgs, RootClient, WorkerClient};
use cocoon_sdk::localnet::{Localnet, LocalnetConfig};
use cocoon_sdk::messages::records::{Attestation, RootParams, RootPolicy, WorkerRecord};
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{SendOptions, Wallet, WalletKind, generate_mnemonic};
use sha2::{Digest, Sha256};

/// Root's grace period after job deadlines, seconds.
pub const GRACE: u32 = 30;

/// A localnet with the network set up.
pub struct Net {
    pub net: Localnet,
    pub chain: TonCenterClient,
    pub root: TonAddress,
    pub relayer: Wallet,
    pub relayer_mnemonic: String,
    pub client: Wallet,
    pub escrow: TonAddress,
    pub stub: StubWorker,
    pub opts: SendOptions,
}

pub async fn funded(net: &Localnet, kind: WalletKind, nano: u128) -> (Wallet, String) {
    let m = generate_mnemonic();
    let w = Wallet::from_mnemonic(&m, kind).unwrap();
    net.fund(w.address(), nano).await.unwrap();
    (w, m)
}

/// Starts a fresh localnet and sets the network up (see [`Net`]).
pub async fn setup(stub: StubWorker, deposit: u128) -> Net {
    let net = Localnet::start(LocalnetConfig::default())
        .await
        .expect("localnet starts (did `npm ci` run?)");
    setup_on(net, stub, deposit).await
}

/// Sets the network up on a running localnet.
pub async fn setup_on(net: Localnet, mut stub: StubWorker, deposit: u128) -> Net {
    let chain = net.client().unwrap();
    let opts = SendOptions::default();
    let (owner, _) = funded(&net, WalletKind::V5r1, 100 * NANO_PER_TON).await;
    let (gpu, _) = funded(&net, WalletKind::V5r1, 100 * NANO_PER_TON).await;
    let (client, _) = funded(&net, WalletKind::V4r2, 100 * NANO_PER_TON).await;
    let (relayer, relayer_mnemonic) = funded(&net, WalletKind::V5r1, 10 * NANO_PER_TON).await;

    let params = RootParams {
        min_stake: 10 * NANO_PER_TON,
        unbonding_delay: 100,
        grace_period: GRACE,
        relayer_fee_cap_bps: 1000,
        protocol_fee_bps: 100,
        reporter_reward_bps: 2000,
        treasury: owner.address().clone(),
    };
    let policy = RootPolicy {
        allowed_kinds: 0b111,
        measurements: BTreeSet::new(),
    };
    let data = RootClient::<TonCenterClient>::initial_data(
        owner.address().clone(),
        params,
        policy,
        BTreeMap::new(),
    )
    .unwrap();
    let (root, _) = RootClient::deploy(&chain, &owner, &data, NANO_PER_TON / 10, &opts)
        .await
        .unwrap();
    let measurement = [0x4d; 32];
    root.add_measurement(&owner, measurement, &opts)
        .await
        .unwrap();
    for m in &stub.models {
        root.set_model(&owner, *m, [0xa0 + *m as u8; 32], &opts)
            .await
            .unwrap();
    }

    let worker = WorkerClient::for_owner(&chain, root.address(), gpu.address())
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
            measurement,
            evidence_hash: Sha256::digest(&stub.evidence).into(),
            expires_at: u32::MAX,
        },
    };
    worker
        .register(&gpu, 10 * NANO_PER_TON, record, &opts)
        .await
        .unwrap();

    let escrow = EscrowClient::for_owner(&chain, root.address(), client.address())
        .await
        .unwrap();
    escrow.deposit(&client, deposit, &opts).await.unwrap();
    let escrow = escrow.address().clone();
    let root = root.address().clone();
    Net {
        net,
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
