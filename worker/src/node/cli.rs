//! Command-line arguments of `cocoon-worker run` and `cocoon-worker register`: namespaced flags
//! with environment variables, every default a library constant.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use cocoon_sdk::args::{ChainArgs, RELAYER_URL_ENV, ROOT_ENV, WalletArgs};
use cocoon_sdk::attest::{
    AttestError, AttestationProvider, CONFIGFS_TSM_REPORT_DIR, CommandGpuProvider,
    GpuEvidenceProvider, MissingInput, ProviderConfig, SimulatedProvider, SnpCertConfig,
    SnpProduct, TdxCollateralConfig, TeeInterface, detect_provider,
};
use cocoon_sdk::chain::Network;
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::Ton;
use cocoon_sdk::wallet::Wallet;

use super::error::{NodeError, Result};
use super::{
    DEFAULT_ATTESTATION_TTL, DEFAULT_CAPACITY, NodeConfig, NodeKeys, RENEW_BEFORE, Renewal,
    ServedModel,
};
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
    /// The TEE interface of this machine (configfs-tsm, else /dev/sev-guest); fails without one.
    #[default]
    Auto,
    /// configfs-tsm only (SEV-SNP or TDX guests, Linux ≥ 6.7).
    Configfs,
    /// /dev/sev-guest only (SEV-SNP guests).
    SevGuest,
    /// No TEE: UNATTESTED evidence for local development; refused on mainnet.
    Simulated,
}

/// AMD EPYC product line, for the KDS path of the VCEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnpProductArg {
    /// EPYC 7003.
    Milan,
    /// EPYC 9004.
    Genoa,
    /// EPYC 9005.
    Turin,
}

impl From<SnpProductArg> for SnpProduct {
    fn from(p: SnpProductArg) -> Self {
        match p {
            SnpProductArg::Milan => Self::Milan,
            SnpProductArg::Genoa => Self::Genoa,
            SnpProductArg::Turin => Self::Turin,
        }
    }
}

/// What the TEE provider needs from the host beyond the guest interface (`--tee.*`).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TeeArgs {
    /// configfs-tsm report directory.
    #[arg(long = "tee.configfs", env = "COCOON_TEE_CONFIGFS", default_value = CONFIGFS_TSM_REPORT_DIR)]
    pub configfs: PathBuf,
    /// An existing report entry under --tee.configfs (created by root for the worker's user)
    /// instead of a private one per request.
    #[arg(long = "tee.configfs-entry", env = "COCOON_TEE_CONFIGFS_ENTRY")]
    pub configfs_entry: Option<String>,
    /// SEV-SNP: the VCEK or VLEK (DER or PEM) for hosts that provision no certificate table.
    #[arg(long = "tee.vcek", env = "COCOON_TEE_VCEK")]
    pub vcek: Option<PathBuf>,
    /// SEV-SNP: the ASK/ARK (or for a VLEK, ASVK/ARK) PEM chain, when the host has no table.
    #[arg(long = "tee.cert-chain", env = "COCOON_TEE_CERT_CHAIN")]
    pub cert_chain: Option<PathBuf>,
    /// SEV-SNP: AMD KDS base URL (https://kdsintf.amd.com) to fetch the VCEK by chip and TCB.
    #[arg(long = "tee.kds-url", env = "COCOON_TEE_KDS_URL")]
    pub kds_url: Option<String>,
    /// SEV-SNP: the product line for the KDS path (needed for version 2 reports).
    #[arg(long = "tee.snp-product", env = "COCOON_TEE_SNP_PRODUCT", value_enum)]
    pub snp_product: Option<SnpProductArg>,
    /// TDX: collateral JSON (dcap-qvl QuoteCollateralV3) from a file you keep fresh.
    #[arg(long = "tee.tdx-collateral", env = "COCOON_TEE_TDX_COLLATERAL")]
    pub tdx_collateral: Option<PathBuf>,
    /// TDX: PCCS or Intel PCS base URL (https://api.trustedservices.intel.com) to fetch collateral
    /// at every attestation.
    #[arg(long = "tee.pccs-url", env = "COCOON_TEE_PCCS_URL")]
    pub pccs_url: Option<String>,
    /// NVIDIA GPU in confidential-computing mode: a program run as `PROGRAM <nonce hex>` that
    /// prints the GPU evidence as JSON (`report_hex`, `cert_chain_pem`, `driver_rim`,
    /// `vbios_rim`); its hash is bound into REPORT_DATA and clients can require it.
    #[arg(
        long = "tee.gpu-evidence-command",
        env = "COCOON_TEE_GPU_EVIDENCE_COMMAND"
    )]
    pub gpu_evidence_command: Option<PathBuf>,
    /// Lifetime of a fresh attestation, seconds.
    #[arg(long = "tee.ttl", env = "COCOON_TEE_TTL", default_value_t = DEFAULT_ATTESTATION_TTL)]
    pub ttl: u32,
    /// Renew the attestation (while serving, and in `register`) when it expires within this
    /// many seconds.
    #[arg(long = "tee.renew-before", env = "COCOON_TEE_RENEW_BEFORE", default_value_t = RENEW_BEFORE)]
    pub renew_before: u32,
}

impl Default for TeeArgs {
    fn default() -> Self {
        Self {
            configfs: CONFIGFS_TSM_REPORT_DIR.into(),
            configfs_entry: None,
            vcek: None,
            cert_chain: None,
            kds_url: None,
            snp_product: None,
            tdx_collateral: None,
            pccs_url: None,
            gpu_evidence_command: None,
            ttl: DEFAULT_ATTESTATION_TTL,
            renew_before: RENEW_BEFORE,
        }
    }
}

/// The flags (and environment variables) that supply a missing provider input.
pub fn flags_for(missing: &MissingInput) -> &'static str {
    match missing {
        MissingInput::SnpSigningCert => {
            "--tee.vcek (COCOON_TEE_VCEK) or --tee.kds-url (COCOON_TEE_KDS_URL)"
        }
        MissingInput::SnpVlekChain => "--tee.cert-chain (COCOON_TEE_CERT_CHAIN)",
        MissingInput::SnpProduct => "--tee.snp-product (COCOON_TEE_SNP_PRODUCT)",
        MissingInput::TdxCollateral => {
            "--tee.tdx-collateral (COCOON_TEE_TDX_COLLATERAL) or --tee.pccs-url (COCOON_TEE_PCCS_URL)"
        }
        MissingInput::ConfigfsEntry(_) => {
            "--tee.configfs-entry (COCOON_TEE_CONFIGFS_ENTRY) to an existing entry, or leave it unset"
        }
        _ => "the --tee.* flags",
    }
}

impl TeeArgs {
    fn read(path: &Option<PathBuf>, flag: &str) -> Result<Option<Vec<u8>>> {
        path.as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|e| NodeError::File {
                    path: p.clone(),
                    reason: format!("{flag}: {e}"),
                })
            })
            .transpose()
    }

    /// The provider configuration these flags describe (reads the files they name).
    pub fn provider_config(
        &self,
        interface: TeeInterface,
        mainnet: bool,
    ) -> Result<ProviderConfig> {
        Ok(ProviderConfig {
            allow_simulated: false,
            mainnet,
            interface,
            configfs_root: self.configfs.clone(),
            configfs_entry: self.configfs_entry.clone(),
            snp: SnpCertConfig {
                signing_cert: Self::read(&self.vcek, "--tee.vcek")?,
                chain_pem: Self::read(&self.cert_chain, "--tee.cert-chain")?,
                kds_url: self.kds_url.clone(),
                product: self.snp_product.map(Into::into),
            },
            tdx: TdxCollateralConfig {
                collateral_json: Self::read(&self.tdx_collateral, "--tee.tdx-collateral")?,
                pccs_url: self.pccs_url.clone(),
            },
            ..ProviderConfig::default()
        })
    }
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
    /// Key file (receipt + encryption keys) under --tee simulated, created when missing; in a TEE
    /// the keys are generated in memory at start and this path only places the receipt ledger
    /// (`<path>.receipts`). Default ~/.cocoon/worker-keys.json.
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
    /// TEE inputs: certificates, collateral, interface paths (`--tee.*`).
    #[command(flatten)]
    pub tee_inputs: TeeArgs,
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
    /// Send from the Highload Wallet v3 of the wallet's mnemonic (its own address, printed by
    /// `register`; fund it) instead of the V5R1 wallet: registration, record updates and
    /// renewals, settlements and receipts, with query ids instead of a seqno, so another process
    /// on the same key never races the node. That wallet owns the Worker: registering with it
    /// makes another Worker than the V5R1 wallet's, and the node must keep the flag from then on.
    #[arg(
        id = "wallet.highload",
        long = "wallet.highload",
        env = "COCOON_WORKER_WALLET_HIGHLOAD"
    )]
    pub highload: bool,
    /// Channels (v2 Root): what a client may leave unpaid (default: one request's max cost).
    #[arg(long = "channel.credit", env = "COCOON_CHANNEL_CREDIT")]
    pub channel_credit: Option<Ton>,
    /// Channels (v2 Root): seconds between looks for due settlements.
    #[arg(long = "channel.settle-every", env = "COCOON_CHANNEL_SETTLE_EVERY", default_value_t = super::DEFAULT_SETTLE_EVERY.as_secs())]
    pub settle_every_secs: u64,
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
            tee_inputs: TeeArgs::default(),
            price_in: DEFAULT_PRICE_IN,
            price_out: DEFAULT_PRICE_OUT,
            stake: Ton(DEFAULT_STAKE),
            capacity: DEFAULT_CAPACITY,
            self_submit: false,
            highload: false,
            channel_credit: None,
            settle_every_secs: super::DEFAULT_SETTLE_EVERY.as_secs(),
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

    /// The node's keys: from the key file under `--tee simulated`; otherwise generated inside
    /// the TEE for this run (no plaintext key file; `--keys` only places the receipt ledger).
    pub fn keys(&self) -> Result<NodeKeys> {
        match self.tee {
            TeeMode::Simulated => NodeKeys::load_or_create(&self.keys_path()),
            _ => NodeKeys::in_tee(&self.keys_path()),
        }
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
            TeeMode::Auto | TeeMode::Configfs | TeeMode::SevGuest => {
                let interface = match self.tee {
                    TeeMode::Configfs => TeeInterface::Configfs,
                    TeeMode::SevGuest => TeeInterface::SevGuest,
                    _ => TeeInterface::Auto,
                };
                let config = self.tee_inputs.provider_config(interface, mainnet)?;
                Ok(Arc::from(
                    detect_provider(&config).map_err(NodeError::from_attest)?,
                ))
            }
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
            keys: self.keys()?,
            models,
            attestation: self.provider()?,
            price_in: self.price_in,
            price_out: self.price_out,
            stake: self.stake.nano(),
            capacity: self.capacity,
            self_submit: self.self_submit,
            highload: self.highload,
            renewal: Renewal {
                ttl: self.tee_inputs.ttl,
                renew_before: self.tee_inputs.renew_before,
                ..Renewal::default()
            },
            channels: super::ChannelOptions {
                credit: self.channel_credit.map(|t| t.nano()),
                settle_every: std::time::Duration::from_secs(self.settle_every_secs.max(1)),
                ..super::ChannelOptions::default()
            },
            gpu: self.tee_inputs.gpu_evidence_command.clone().map(|program| {
                Arc::new(CommandGpuProvider {
                    program,
                    args: Vec::new(),
                }) as Arc<dyn GpuEvidenceProvider>
            }),
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
            "COCOON_TEE_CONFIGFS",
            "COCOON_TEE_CONFIGFS_ENTRY",
            "COCOON_TEE_VCEK",
            "COCOON_TEE_CERT_CHAIN",
            "COCOON_TEE_KDS_URL",
            "COCOON_TEE_SNP_PRODUCT",
            "COCOON_TEE_TDX_COLLATERAL",
            "COCOON_TEE_PCCS_URL",
            "COCOON_TEE_TTL",
            "COCOON_TEE_RENEW_BEFORE",
            "COCOON_WORKER_LOG_JSON",
            "COCOON_WORKER_WALLET_HIGHLOAD",
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
            "--wallet.highload",
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
        assert!(a.highload);
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

    #[test]
    fn tee_flags_reach_the_provider_config() {
        let dir = tempfile::tempdir().unwrap();
        let vcek = dir.path().join("vcek.der");
        std::fs::write(&vcek, [0x30, 0x00]).unwrap();
        let args = Cli::parse_from([
            "x",
            "--tee",
            "configfs",
            "--tee.configfs",
            "/tmp/tsm",
            "--tee.configfs-entry",
            "w0",
            "--tee.vcek",
            vcek.to_str().unwrap(),
            "--tee.kds-url",
            "https://kdsintf.amd.com",
            "--tee.snp-product",
            "genoa",
            "--tee.pccs-url",
            "https://pccs.example",
        ])
        .node;
        assert_eq!(args.tee, TeeMode::Configfs);
        let c = args
            .tee_inputs
            .provider_config(TeeInterface::Configfs, false)
            .unwrap();
        assert_eq!(c.configfs_root, PathBuf::from("/tmp/tsm"));
        assert_eq!(c.configfs_entry.as_deref(), Some("w0"));
        assert_eq!(c.snp.signing_cert.as_deref(), Some(&[0x30, 0x00][..]));
        assert_eq!(c.snp.product, Some(SnpProduct::Genoa));
        assert_eq!(c.tdx.pccs_url.as_deref(), Some("https://pccs.example"));
        let missing = Cli::parse_from(["x", "--tee.tdx-collateral", "/nonexistent/c.json"]).node;
        let err = missing
            .tee_inputs
            .provider_config(TeeInterface::Auto, false)
            .unwrap_err();
        assert!(err.to_string().contains("--tee.tdx-collateral"), "{err}");
    }

    #[test]
    fn a_missing_tee_input_names_its_flags() {
        let err = NodeError::from_attest(MissingInput::TdxCollateral.into());
        let text = err.to_string();
        assert!(
            text.contains("--tee.tdx-collateral") && text.contains("COCOON_TEE_PCCS_URL"),
            "{text}"
        );
        let err = NodeError::from_attest(MissingInput::SnpSigningCert.into());
        assert!(err.to_string().contains("--tee.vcek"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let args = Cli::parse_from([
            "x",
            "--tee",
            "configfs",
            "--tee.configfs",
            dir.path().to_str().unwrap(),
            "--tee.configfs-entry",
            "absent",
        ])
        .node;
        let err = args.provider().unwrap_err();
        assert!(
            matches!(
                &err,
                NodeError::TeeInput {
                    missing: MissingInput::ConfigfsEntry(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn only_simulated_mode_has_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let keys = path.to_str().unwrap();
        let tee = Cli::parse_from(["x", "--tee", "configfs", "--keys", keys]).node;
        assert!(tee.keys().unwrap().is_in_tee());
        assert!(!path.exists(), "no plaintext key file in TEE mode");
        let sim = Cli::parse_from(["x", "--tee", "simulated", "--keys", keys]).node;
        assert!(!sim.keys().unwrap().is_in_tee());
        assert!(path.exists());
    }
}
