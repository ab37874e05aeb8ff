//! Command-line arguments of `cocoon-worker run` and `cocoon-worker register`: namespaced flags
//! with environment variables, every default a library constant.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use cocoon_sdk::args::{ChainArgs, RELAYER_URL_ENV, ROOT_ENV, WalletArgs};
use cocoon_sdk::attest::{
    AttestError, AttestationProvider, ProviderConfig, SimulatedProvider, detect_provider,
};
use cocoon_sdk::chain::Network;
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::Ton;
use cocoon_sdk::wallet::Wallet;

use super::error::{NodeError, Result};
use super::{DEFAULT_CAPACITY, NodeConfig, NodeKeys, ServedModel};
use crate::BackendKind;

/// Default relayer (a local `cocoon-relayer run`).
pub const DEFAULT_RELAYER_URL: &str = "ws://127.0.0.1:8480";
/// Default key file, relative to the home directory.
pub const DEFAULT_KEYS_FILE: &str = ".cocoon/worker-keys.json";
/// Default models served.
pub const DEFAULT_MODELS: &str = "smollm2-135m-instruct";
/// Default price per input token, nanoTON.
pub const DEFAULT_PRICE_IN: u128 = 1_000;
/// Default price per output token, nanoTON.
pub const DEFAULT_PRICE_OUT: u128 = 3_000;
/// Default stake, nanoTON (10 TON: the default minimum of a Root deployed by `cocoon`).
pub const DEFAULT_STAKE: u128 = 10_000_000_000;

/// Where attestation evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TeeMode {
    /// The TEE interface of this machine (configfs-tsm or /dev/sev-guest); fails without one.
    #[default]
    Auto,
    /// No TEE: UNATTESTED evidence for local development; refused on mainnet.
    Simulated,
}

/// Flags shared by `run` and `register`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct NodeArgs {
    /// Network and toncenter access (`--chain.*`, as in every Cocoon binary).
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The owner's wallet (`--wallet.*`).
    #[command(flatten)]
    pub wallet: WalletArgs,
    /// Root contract address.
    #[arg(long, env = ROOT_ENV)]
    pub root: Option<String>,
    /// Relayer URL (ws://, wss://, http:// or https://).
    #[arg(long = "relayer", env = RELAYER_URL_ENV, default_value = DEFAULT_RELAYER_URL)]
    pub relayer: String,
    /// Key file (receipt + encryption keys), created when missing. Default ~/.cocoon/worker-keys.json.
    #[arg(long = "keys", env = "COCOON_WORKER_KEYS")]
    pub keys: Option<PathBuf>,
    /// Models to serve, by name.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_MODELS, env = "COCOON_WORKER_MODELS")]
    pub models: Vec<String>,
    /// Inference backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Wgpu, env = "COCOON_BACKEND")]
    pub backend: BackendKind,
    /// Attestation: the machine's TEE, or an explicit simulated (UNATTESTED) mode.
    #[arg(long, value_enum, default_value_t = TeeMode::Auto, env = "COCOON_TEE")]
    pub tee: TeeMode,
    /// nanoTON per input token.
    #[arg(long = "price-in", default_value_t = DEFAULT_PRICE_IN)]
    pub price_in: u128,
    /// nanoTON per output token.
    #[arg(long = "price-out", default_value_t = DEFAULT_PRICE_OUT)]
    pub price_out: u128,
    /// Stake for registration (TON, e.g. "10" or "10.5").
    #[arg(long, default_value_t = Ton(DEFAULT_STAKE))]
    pub stake: Ton,
    /// Jobs run at once.
    #[arg(long, default_value_t = DEFAULT_CAPACITY)]
    pub capacity: u32,
    /// Post receipts on-chain from this worker's wallet instead of relying on the relayer.
    #[arg(long = "self-submit")]
    pub self_submit: bool,
    /// Log as JSON lines.
    #[arg(long = "log.json", env = "COCOON_WORKER_LOG_JSON")]
    pub log_json: bool,
}

impl Default for NodeArgs {
    fn default() -> Self {
        Self {
            chain: ChainArgs::default(),
            wallet: WalletArgs::default(),
            root: None,
            relayer: DEFAULT_RELAYER_URL.into(),
            keys: None,
            models: vec![DEFAULT_MODELS.into()],
            backend: BackendKind::Wgpu,
            tee: TeeMode::Auto,
            price_in: DEFAULT_PRICE_IN,
            price_out: DEFAULT_PRICE_OUT,
            stake: Ton(DEFAULT_STAKE),
            capacity: DEFAULT_CAPACITY,
            self_submit: false,
            log_json: false,
        }
    }
}

impl NodeArgs {
    /// The key file path.
    pub fn keys_path(&self) -> PathBuf {
        self.keys.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(DEFAULT_KEYS_FILE)
        })
    }

    /// The attestation provider these flags ask for.
    pub fn provider(&self) -> Result<Arc<dyn AttestationProvider>> {
        let mainnet = self.chain.network == Network::Mainnet;
        match self.tee {
            TeeMode::Simulated if mainnet => Err(AttestError::SimulatedOnMainnet.into()),
            TeeMode::Simulated => {
                let label = std::env::var("HOSTNAME").unwrap_or_else(|_| "dev".into());
                Ok(Arc::new(SimulatedProvider { label }))
            }
            TeeMode::Auto => Ok(Arc::from(detect_provider(&ProviderConfig {
                mainnet,
                ..ProviderConfig::default()
            })?)),
        }
    }

    /// The node configuration (reads the wallet and key files, creating the key file if needed).
    pub fn config(&self) -> Result<NodeConfig> {
        let root: TonAddress = self
            .root
            .as_deref()
            .ok_or_else(|| NodeError::Config("--root (COCOON_ROOT) is required".into()))?
            .parse()
            .map_err(|e| NodeError::Config(format!("--root: {e}")))?;
        let wallet_path = self.wallet.path();
        let wallet = load_wallet(&wallet_path, self.chain.network)?;
        let models = self
            .models
            .iter()
            .map(|name| {
                ModelSpec::by_name(name.trim())
                    .map(|spec| ServedModel::load(*spec, self.backend))
                    .map_err(|e| NodeError::Config(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(NodeConfig {
            chain: self.chain.config(),
            root,
            relayer_url: self.relayer.clone(),
            wallet,
            keys: NodeKeys::load_or_create(&self.keys_path())?,
            models,
            attestation: self.provider()?,
            price_in: self.price_in,
            price_out: self.price_out,
            stake: self.stake.nano(),
            capacity: self.capacity,
            self_submit: self.self_submit,
        })
    }
}

/// Opens the wallet stored in an sdk wallet file (written by `cocoon wallet new`) for `network`.
pub fn load_wallet(path: &std::path::Path, network: Network) -> Result<Wallet> {
    cocoon_sdk::wallet::file::load(path, network).map_err(|e| NodeError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    #[test]
    fn no_flags_means_library_defaults() {
        for v in [
            "COCOON_NETWORK",
            "COCOON_API_URL",
            "COCOON_WALLET",
            "COCOON_ROOT",
            "COCOON_RELAYER_URL",
            "COCOON_WORKER_KEYS",
            "COCOON_WORKER_MODELS",
            "COCOON_BACKEND",
            "COCOON_TEE",
            "COCOON_WORKER_LOG_JSON",
            "TONCENTER_API_KEY",
        ] {
            if std::env::var_os(v).is_some() {
                eprintln!("{v} is set: skipping the defaults check");
                return;
            }
        }
        assert_eq!(Cli::parse_from(["x"]).node, NodeArgs::default());
    }

    #[derive(Debug, Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Run(NodeArgs),
        Register(NodeArgs),
    }

    #[test]
    fn the_flags_work_as_subcommand_arguments() {
        use clap::CommandFactory as _;
        Top::command().debug_assert();
        let Sub::Run(a) = Top::parse_from([
            "x",
            "run",
            "--root",
            "0:00",
            "--models",
            "smollm2-135m-instruct,all-minilm-l6-v2",
            "--backend",
            "flex",
            "--stake",
            "12.5",
            "--self-submit",
            "--price-in",
            "7",
        ])
        .cmd
        else {
            panic!("run")
        };
        assert_eq!(a.models.len(), 2);
        assert_eq!(a.backend, BackendKind::Flex);
        assert_eq!(a.stake, Ton(12_500_000_000));
        assert!(a.self_submit);
        assert_eq!(a.price_in, 7);
    }

    #[test]
    fn simulated_is_refused_on_mainnet_and_needs_a_root() {
        let args = Cli::parse_from(["x", "--tee", "simulated", "--network", "mainnet"]).node;
        assert!(matches!(
            args.provider(),
            Err(NodeError::Attestation(AttestError::SimulatedOnMainnet))
        ));
        let args = Cli::parse_from(["x", "--tee", "simulated"]).node;
        assert!(args.provider().is_ok());
        assert!(matches!(args.config(), Err(NodeError::Config(_))));
    }
}
