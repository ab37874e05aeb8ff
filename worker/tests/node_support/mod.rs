//! Helpers of the node tests, over the test kit's development chain: a registered worker
//! configuration, an in-process relayer, and a client that opens, seals and follows jobs by hand.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_relayer::RelayerConfig;
use cocoon_relayer::chain::ChainRegistry;
use cocoon_relayer::registry::WorkerRegistry;
use cocoon_relayer::service::{RelayerHandle, ServiceConfig};
use cocoon_relayer::store::OpenedJob;
use cocoon_sdk::attest::SimulatedProvider;
use cocoon_sdk::contracts::{EscrowClient, OpenJobArgs, WorkerClient};
use cocoon_sdk::job::{JobOutput, JobRequest, ModelSpec};
use cocoon_sdk::receipt::{ReceiptExpectation, SignedReceipt};
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_sdk::seal::{ClientSeal, JobContext, seal_input};
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{SendOptions, Wallet};
use cocoon_testkit::DevChain;
use cocoon_worker::node::{NodeConfig, NodeKeys, ServedModel};

pub const PRICE_IN: u128 = 1;
pub const PRICE_OUT: u128 = 1_000;

/// The pinned model files, which must be in the cache (the tests fail naming
/// `scripts/fetch-models` otherwise).
#[path = "../common/mod.rs"]
pub mod common;

/// A localnet with a development Root whose registry holds the given models.
pub type Net = DevChain;

pub async fn network(models: BTreeMap<u32, [u8; 32]>) -> Net {
    DevChain::start_with_registry(models).await.unwrap()
}

/// Node-test helpers on the development chain.
pub trait NodeNet {
    /// A node configuration for a fresh funded owner wallet, keys in `dir`.
    fn node_config(
        &self,
        dir: &std::path::Path,
        models: Vec<ServedModel>,
    ) -> impl std::future::Future<Output = NodeConfig>;
    /// A relayer on port 0 that verifies workers against their Worker contracts but does not
    /// watch the chain (tests announce jobs to its store themselves).
    fn relayer(&self, dir: &std::path::Path) -> impl std::future::Future<Output = RelayerHandle>;
    /// The same, listening on `listen` (a relayer that replaces another at its address).
    fn relayer_on(
        &self,
        dir: &std::path::Path,
        listen: std::net::SocketAddr,
    ) -> impl std::future::Future<Output = RelayerHandle>;
}

impl NodeNet for DevChain {
    async fn node_config(&self, dir: &std::path::Path, models: Vec<ServedModel>) -> NodeConfig {
        let wallet = self.funded_wallet(50 * NANO_PER_TON).await.unwrap();
        NodeConfig {
            chain: self.api(),
            root: self.root.clone(),
            relayer_url: "ws://127.0.0.1:9".into(),
            wallet,
            keys: NodeKeys::load_or_create(&dir.join("worker-keys.json")).unwrap(),
            models,
            attestation: Arc::new(SimulatedProvider {
                label: "node-test".into(),
            }),
            price_in: PRICE_IN,
            price_out: PRICE_OUT,
            stake: 10 * NANO_PER_TON,
            capacity: 4,
            self_submit: false,
            highload: false,
            renewal: Default::default(),
            channels: Default::default(),
            gpu: None,
        }
    }

    async fn relayer(&self, dir: &std::path::Path) -> RelayerHandle {
        self.relayer_on(dir, "127.0.0.1:0".parse().unwrap()).await
    }

    async fn relayer_on(
        &self,
        dir: &std::path::Path,
        listen: std::net::SocketAddr,
    ) -> RelayerHandle {
        let registry: Arc<dyn WorkerRegistry> = Arc::new(ChainRegistry::new(
            Arc::new(self.chain.clone()),
            self.root.clone(),
        ));
        cocoon_relayer::service::spawn(ServiceConfig {
            listen,
            store_url: format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("relayer-{}.db", rand::random::<u32>()))
                    .display()
            ),
            store_max_connections: 4,
            relayer: RelayerConfig {
                first_chunk_timeout: Duration::from_secs(120),
                idle_timeout: Duration::from_secs(120),
                ..RelayerConfig::default()
            },
            chain: None,
            registry: Some(registry),
        })
        .await
        .unwrap()
    }
}

/// A client with an Escrow holding a deposit.
pub struct Client {
    pub wallet: Wallet,
    pub escrow: TonAddress,
    pub next_id: u64,
}

impl Client {
    pub async fn new(net: &Net, deposit: u128) -> Self {
        let wallet = net.funded_wallet(deposit + 5 * NANO_PER_TON).await.unwrap();
        let escrow = EscrowClient::for_owner(&net.chain, &net.root, wallet.address())
            .await
            .unwrap();
        escrow
            .deposit(&wallet, deposit, &SendOptions::default())
            .await
            .unwrap();
        Self {
            escrow: escrow.address().clone(),
            wallet,
            next_id: 1,
        }
    }
}

/// A job sealed by hand.
pub struct SealedJob {
    pub job: JobRef,
    pub model: ModelSpec,
    pub seal: ClientSeal,
    pub max_cost: u128,
}

pub fn seal(
    client: &mut Client,
    model: ModelSpec,
    request: &JobRequest,
    recipients: &[[u8; 32]],
    max_cost: u128,
) -> SealedJob {
    let job_id = client.next_id;
    client.next_id += 1;
    let ctx = JobContext {
        escrow: client.escrow.clone(),
        job_id,
        model_id: model.id,
    };
    let seal = seal_input(&request.encode().unwrap(), recipients, &ctx).unwrap();
    SealedJob {
        job: JobRef::new(client.escrow.to_hex(), job_id),
        model,
        seal,
        max_cost,
    }
}

/// Opens the job on the client's Escrow (so a receipt can settle it).
pub async fn open_on_chain(net: &Net, client: &Client, job: &SealedJob, relayer: &TonAddress) {
    let escrow = EscrowClient::for_owner(&net.chain, &net.root, client.wallet.address())
        .await
        .unwrap();
    escrow
        .open_job(
            &client.wallet,
            OpenJobArgs {
                job_id: job.job.job_id,
                model_id: job.model.id,
                max_cost: job.max_cost,
                deadline: net.now().await.unwrap() + 600,
                relayer_fee_bps: 0,
                input_commitment: job.seal.input_commitment,
                relayer: relayer.clone(),
                worker: None,
            },
            &SendOptions::default(),
        )
        .await
        .unwrap();
}

/// Tells the relayer about the job (what its chain watcher does) and hands it the sealed input.
pub async fn submit(
    relayer: &RelayerHandle,
    client: &Client,
    job: &SealedJob,
    sealed: &[u8],
    candidates: &[&TonAddress],
) {
    relayer
        .store()
        .insert_opened(&OpenedJob {
            job: job.job.clone(),
            escrow_owner: client.wallet.address().to_hex(),
            model_id: job.model.id,
            max_cost: u64::try_from(job.max_cost).unwrap(),
            deadline: (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 600) as u32,
            input_commitment: cocoon_sdk::seal::input_commitment(sealed),
            route_worker: None,
            opened_lt: job.job.job_id,
        })
        .await
        .unwrap();
    let body = serde_json::json!({
        "version": 1,
        "sealed_input": base64(sealed),
        "candidates": candidates.iter().map(|a| a.to_hex()).collect::<Vec<_>>(),
        "reader": cocoon_sdk::relay::read_auth::reader_public_hex(&READER),
    });
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/v1/jobs/{}/{}/input",
            relayer.url(),
            job.job.escrow,
            job.job.job_id
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
}

fn base64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The reader key test clients name with their inputs (the relayer shows a job only to it).
const READER: [u8; 32] = [0x5e; 32];

/// Reads the job's event stream until its final event or `timeout`, as the job's owner.
pub async fn stream(relayer: &RelayerHandle, job: &JobRef, timeout: Duration) -> Vec<StreamEvent> {
    let api = cocoon_sdk::client::RelayerApi::new(&relayer.url())
        .unwrap()
        .with_reader(READER);
    cocoon_testkit::collect_stream_with(&api, job, timeout)
        .await
        .unwrap()
}

/// What a client gets out of a successful stream.
#[derive(Debug)]
pub struct Answer {
    pub outputs: Vec<JobOutput>,
    pub text: String,
    pub receipt: SignedReceipt,
    pub output_commitment: [u8; 32],
}

/// Opens the chunks of the stream with the client's keys and returns the outputs and receipt.
pub fn open_answer(job: &SealedJob, worker_key: &[u8; 32], events: &[StreamEvent]) -> Answer {
    let mut opener = job.seal.response_opener(worker_key).unwrap();
    let mut outputs = Vec::new();
    let mut receipt = None;
    for ev in events {
        match ev {
            StreamEvent::Chunk { data, .. } => {
                let plain = opener
                    .open_chunk(data)
                    .expect("chunk opens with the client's keys");
                outputs.push(JobOutput::decode(&plain).unwrap());
            }
            StreamEvent::Receipt { receipt: boc, .. } => {
                receipt = Some(SignedReceipt::from_boc(boc).unwrap());
            }
            _ => {}
        }
    }
    let text = outputs
        .iter()
        .filter_map(|o| match o {
            JobOutput::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    Answer {
        outputs,
        text,
        receipt: receipt.unwrap_or_else(|| panic!("no receipt in {events:?}")),
        output_commitment: opener.finish().expect("stream complete"),
    }
}

/// The expectation a client builds from the Worker record on-chain.
pub async fn expectation(
    net: &Net,
    job: &SealedJob,
    worker: &TonAddress,
    owner: &TonAddress,
    output_commitment: [u8; 32],
) -> ReceiptExpectation {
    let record = WorkerClient::for_owner(&net.chain, &net.root, owner)
        .await
        .unwrap()
        .record()
        .await
        .unwrap();
    ReceiptExpectation {
        escrow: TonAddress::from_hex_str(&job.job.escrow).unwrap(),
        job_id: job.job.job_id,
        worker: worker.clone(),
        model_id: job.model.id,
        receipt_key: record.receipt_key,
        evidence_hash: record.evidence_hash,
        price_in: record.price_in,
        price_out: record.price_out,
        input_commitment: job.seal.input_commitment,
        output_commitment,
        weights_hash: Some(job.model.weights_hash()),
    }
}
