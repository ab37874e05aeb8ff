//! Worker nodes of a devnet: an owner wallet with the stake, keys in the devnet's directory, the
//! real models (loaded once per process and shared by every node of that backend), Simulated
//! evidence, on-chain registration, and a link to the relayer through a [`TcpProxy`] so a test
//! can make the worker vanish from the network.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use cocoon_sdk::attest::SimulatedProvider;
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::Wallet;
use cocoon_worker::BackendKind;
use cocoon_worker::node::{
    ModelHandle, Node, NodeConfig, NodeHandle, NodeKeys, ServedModel, register,
};

use crate::devnet::WorkerSetup;
use cocoon_testkit::{DevChain, TcpProxy};

/// A worker node of the devnet.
pub struct RunningWorker {
    /// The owner's wallet (stake, earnings).
    pub owner: Wallet,
    /// Its Worker contract.
    pub address: TonAddress,
    /// The link between the node and the relayer.
    pub proxy: TcpProxy,
    node: Option<NodeHandle>,
}

impl std::fmt::Debug for RunningWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningWorker")
            .field("address", &self.address.to_hex())
            .field("running", &self.node.is_some())
            .finish()
    }
}

impl RunningWorker {
    /// Whether the node runs (it may still be cut off by its proxy).
    pub fn is_running(&self) -> bool {
        self.node.is_some()
    }

    /// Jobs answered so far.
    pub fn jobs_served(&self) -> u64 {
        self.node.as_ref().map_or(0, NodeHandle::jobs_served)
    }

    /// Stops the node gracefully.
    pub async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown().await;
        }
    }
}

/// Registers a worker on-chain and starts its node.
pub(crate) async fn start(
    chain: &DevChain,
    relayer_url: &str,
    setup: &WorkerSetup,
    dir: &Path,
    index: usize,
) -> anyhow::Result<RunningWorker> {
    let owner = chain.funded_wallet(setup.stake + 10 * NANO_PER_TON).await?;
    let upstream = relayer_url
        .trim_start_matches("http://")
        .parse()
        .context("relayer URL")?;
    let proxy = TcpProxy::start(upstream).await?;
    let keys = NodeKeys::load_or_create(&dir.join(format!("worker-{index}-keys.json")))?;
    let mut served = Vec::new();
    for spec in &setup.models {
        served.push(shared_model(spec, setup.backend).await?);
    }
    let config = NodeConfig {
        chain: chain.api(),
        root: chain.root.clone(),
        relayer_url: format!("http://{}", proxy.addr()),
        wallet: owner.clone(),
        keys,
        models: served,
        attestation: Arc::new(SimulatedProvider {
            label: format!("cocoon-devnet worker {index}"),
        }),
        price_in: setup.price_in,
        price_out: setup.price_out,
        stake: setup.stake,
        capacity: setup.capacity,
        self_submit: false,
        highload: false,
        renewal: Default::default(),
        channels: setup.channels.clone(),
        gpu: None,
    };
    register(&config)
        .await
        .context("registering the worker on-chain")?;
    let node = Node::start(config)
        .await
        .context("starting the worker node")?;
    let address = node.address().clone();
    tracing::info!(target: "e2e::workers", %address, backend = ?setup.backend, "worker node up (UNATTESTED: simulated TEE)");
    Ok(RunningWorker {
        owner,
        address,
        proxy,
        node: Some(node),
    })
}

/// The model files are loaded once per process and backend: a devnet with several workers (and
/// a test binary with several devnets) shares them, as one GPU host would.
async fn shared_model(spec: &ModelSpec, backend: BackendKind) -> anyhow::Result<ServedModel> {
    static CACHE: OnceLock<Mutex<HashMap<(u32, BackendKind), ModelHandle>>> = OnceLock::new();
    let key = (spec.id, backend);
    let cached = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("model cache")
        .get(&key)
        .cloned();
    let handle = match cached {
        Some(h) => h,
        None => {
            let to_load = ServedModel::load(*spec, backend);
            let h = tokio::task::spawn_blocking(move || to_load.open()).await??;
            CACHE
                .get_or_init(Default::default)
                .lock()
                .expect("model cache")
                .insert(key, h.clone());
            h
        }
    };
    Ok(ServedModel::loaded(*spec, handle))
}
