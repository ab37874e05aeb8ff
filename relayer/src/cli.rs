//! The `cocoon-relayer` command line: clap flags (namespaced per subsystem, each with an
//! environment variable), the TOML file of `--config` for whatever the flags and environment leave
//! unset (keys are the long flag names, see [`cocoon_sdk::args::config_file`]), and defaults from
//! the library constants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cocoon_sdk::args::ROOT_ENV;

use crate::config::{self, RelayerConfig};
use crate::store::{DEFAULT_MAX_CONNECTIONS, DEFAULT_STORE_URL};

/// Default address of the HTTP/WebSocket listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";

/// Environment variable with the configuration file (`--config`).
pub const CONFIG_ENV: &str = "COCOON_RELAYER_CONFIG";

/// Cocoon relayer: watches the chain, dispatches sealed jobs to workers, relays sealed answers
/// and receipts.
#[derive(Debug, Parser)]
#[command(name = "cocoon-relayer", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the client API and the worker endpoint.
    Run(Box<RunArgs>),
    /// Reconciliation: every job in the store with its state and why (settled, expired, failed...).
    Jobs(JobsArgs),
}

/// `cocoon-relayer jobs` arguments.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// The relayer's database.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only jobs in this state (`opened`, ..., `settled`, `expired`, `failed`).
    #[arg(long)]
    pub state: Option<String>,
    /// Most jobs listed.
    #[arg(long, default_value_t = 100_000)]
    pub limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `cocoon-relayer run` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RunArgs {
    /// HTTP API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Database.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Dispatch tunables.
    #[command(flatten)]
    pub relayer: RelayerArgs,
    /// Where worker records come from.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Chain access: watcher, Worker records, receipt submission.
    #[command(flatten)]
    pub chain: OnChainArgs,
    /// Log as JSON lines.
    #[arg(long = "log.json", env = "COCOON_RELAYER_LOG_JSON")]
    pub log_json: bool,
}

/// `--api.*`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ApiArgs {
    /// Address to listen on (clients and workers).
    #[arg(id = "api.listen", long = "api.listen", env = "COCOON_RELAYER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Seconds a connection has to send a complete request head (new or kept alive).
    #[arg(id = "api.header-timeout", long = "api.header-timeout", env = "COCOON_RELAYER_HEADER_TIMEOUT", default_value_t = cocoon_http::DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub header_timeout_s: u64,
    /// Seconds a request body has to arrive in full (408 after).
    #[arg(id = "api.body-timeout", long = "api.body-timeout", env = "COCOON_RELAYER_BODY_TIMEOUT", default_value_t = cocoon_http::DEFAULT_BODY_TIMEOUT.as_secs())]
    pub body_timeout_s: u64,
    /// Seconds a connection may go without a byte either way before it is closed.
    #[arg(id = "api.idle-timeout", long = "api.idle-timeout", env = "COCOON_RELAYER_CONN_IDLE_TIMEOUT", default_value_t = cocoon_http::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_s: u64,
    /// Connections served at once (clients and workers); beyond it new ones are closed. Keep
    /// it well below the process's open-file limit.
    #[arg(id = "api.max-connections", long = "api.max-connections", env = "COCOON_RELAYER_MAX_CONNECTIONS", default_value_t = cocoon_http::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections one peer IP may hold at once.
    #[arg(id = "api.max-connections-per-ip", long = "api.max-connections-per-ip", env = "COCOON_RELAYER_MAX_CONNECTIONS_PER_IP", default_value_t = cocoon_http::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
    /// Requests per second one peer IP may make on average (429 beyond; 0: no limit).
    #[arg(id = "api.rate-limit", long = "api.rate-limit", env = "COCOON_RELAYER_RATE_LIMIT", default_value_t = cocoon_http::DEFAULT_RATE_PER_SECOND)]
    pub rate_per_second: u32,
    /// Requests one peer IP may make in a burst.
    #[arg(id = "api.rate-burst", long = "api.rate-burst", env = "COCOON_RELAYER_RATE_BURST", default_value_t = cocoon_http::DEFAULT_RATE_BURST)]
    pub rate_burst: u32,
    /// Token that opens `GET /v1/jobs` (every client's jobs) as `Authorization: Bearer <token>`;
    /// without one the list is refused to everyone. Prefer the environment variable: a value on
    /// the command line is visible in `ps`.
    #[arg(
        id = "api.operator-token",
        long = "api.operator-token",
        env = "COCOON_RELAYER_OPERATOR_TOKEN",
        hide_env_values = true
    )]
    pub operator_token: Option<String>,
}

impl ApiArgs {
    /// The listener limits these flags describe (the body cap follows `--relayer.max-input-bytes`).
    pub fn limits(&self) -> cocoon_http::Limits {
        cocoon_http::Limits {
            header_timeout: Duration::from_secs(self.header_timeout_s.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_s.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_s.max(1)),
            max_body_bytes: 0,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            rate_per_second: self.rate_per_second,
            rate_burst: self.rate_burst,
        }
    }
}

/// `--store.*`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StoreArgs {
    /// `sqlite://PATH?mode=rwc` (default, a file) or `postgres://USER@HOST/DB`.
    #[arg(id = "store.url", long = "store.url", env = "COCOON_RELAYER_STORE_URL", default_value = DEFAULT_STORE_URL)]
    pub url: String,
    /// Connection pool size.
    #[arg(id = "store.max-connections", long = "store.max-connections", env = "COCOON_RELAYER_STORE_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: u32,
}

/// `--relayer.*`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RelayerArgs {
    /// Identity workers sign into their session auth (use the relayer's wallet address).
    #[arg(id = "relayer.id", long = "relayer.id", env = "COCOON_RELAYER_ID", default_value = config::DEFAULT_RELAYER_ID)]
    pub id: String,
    /// Largest sealed input accepted, bytes.
    #[arg(id = "relayer.max-input-bytes", long = "relayer.max-input-bytes", env = "COCOON_RELAYER_MAX_INPUT_BYTES", default_value_t = config::DEFAULT_MAX_INPUT_BYTES)]
    pub max_input_bytes: usize,
    /// Seconds a worker has for the first chunk of a job before failover.
    #[arg(id = "relayer.first-chunk-timeout", long = "relayer.first-chunk-timeout", env = "COCOON_RELAYER_FIRST_CHUNK_TIMEOUT", default_value_t = config::DEFAULT_FIRST_CHUNK_TIMEOUT.as_secs())]
    pub first_chunk_timeout_s: u64,
    /// Longest silence between chunks before failover, seconds.
    #[arg(id = "relayer.idle-timeout", long = "relayer.idle-timeout", env = "COCOON_RELAYER_IDLE_TIMEOUT", default_value_t = config::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_s: u64,
    /// Heartbeat interval asked of workers, seconds.
    #[arg(id = "relayer.heartbeat", long = "relayer.heartbeat", env = "COCOON_RELAYER_HEARTBEAT", default_value_t = config::DEFAULT_HEARTBEAT_INTERVAL.as_secs())]
    pub heartbeat_s: u64,
    /// On-chain grace period after job deadlines, seconds (Root's `grace_period`).
    #[arg(id = "relayer.grace-period", long = "relayer.grace-period", env = "COCOON_RELAYER_GRACE_PERIOD", default_value_t = config::DEFAULT_GRACE_PERIOD)]
    pub grace_period: u32,
    /// Seconds a job may go without any follower of its stream, after its client followed it,
    /// before it is cancelled unanswered and unbilled (a caller who hung up).
    #[arg(id = "relayer.abandon-after", long = "relayer.abandon-after", env = "COCOON_RELAYER_ABANDON_AFTER", default_value_t = config::DEFAULT_ABANDON_AFTER.as_secs())]
    pub abandon_after_s: u64,
    /// Admit only workers serving valid NVIDIA GPU confidential-computing evidence.
    #[arg(
        id = "relayer.require-gpu-attestation",
        long = "require-gpu-attestation",
        env = "COCOON_REQUIRE_GPU_ATTESTATION"
    )]
    pub require_gpu_attestation: bool,
}

/// `--registry.*`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RegistryArgs {
    /// TOML file of Worker records (`[[worker]]` tables) the relayer trusts as the chain's view.
    #[arg(
        id = "registry.workers",
        long = "registry.workers",
        env = "COCOON_RELAYER_WORKERS"
    )]
    pub workers: Option<PathBuf>,
}

/// `--chain.*` (the flags every Cocoon binary shares) and what the relayer adds to them: the
/// Root it serves, how often it polls, and its wallet (`--wallet.mnemonic`).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct OnChainArgs {
    /// Network and toncenter access.
    #[command(flatten)]
    pub chain: cocoon_sdk::args::ChainArgs,
    /// The network's Root contract. With it the relayer verifies workers against their Worker
    /// contracts, watches its wallet for JobOpened and posts receipts; without it, it trusts
    /// `--registry.workers` and is told of jobs through its store.
    #[arg(id = "chain.root", long = "chain.root", alias = "root", env = ROOT_ENV)]
    pub root: Option<String>,
    /// Seconds between chain polls (watcher and submitter).
    #[arg(
        id = "chain.poll",
        long = "chain.poll",
        env = "COCOON_RELAYER_CHAIN_POLL",
        default_value_t = 2
    )]
    pub poll_s: u64,
    /// The relayer wallet's mnemonic (Wallet V5R1): JobOpened arrives at its address, and it
    /// pays for SubmitReceipts.
    #[arg(
        id = "wallet.mnemonic",
        long = "wallet.mnemonic",
        env = "COCOON_RELAYER_MNEMONIC",
        hide_env_values = true
    )]
    pub mnemonic: Option<String>,
    /// Send `SubmitReceipts` from the Highload Wallet v3 of the same mnemonic (its own address,
    /// printed at start; fund it) instead of the V5R1 wallet: query ids instead of a seqno, so
    /// another process sending from the relayer's key never races it.
    #[arg(
        id = "wallet.highload",
        long = "wallet.highload",
        env = "COCOON_RELAYER_WALLET_HIGHLOAD"
    )]
    pub highload: bool,
}

impl RelayerArgs {
    /// The library configuration these flags describe.
    pub fn to_config(&self) -> RelayerConfig {
        RelayerConfig {
            relayer_id: self.id.clone(),
            max_input_bytes: self.max_input_bytes,
            first_chunk_timeout: Duration::from_secs(self.first_chunk_timeout_s),
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            heartbeat_interval: Duration::from_secs(self.heartbeat_s.max(1)),
            grace_period: self.grace_period,
            abandon_after: Duration::from_secs(self.abandon_after_s.max(1)),
            require_gpu_attestation: self.require_gpu_attestation,
            ..RelayerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::{CommandFactory as _, FromArgMatches as _};
    use cocoon_sdk::args::config_file::{self, ConfigFileError};

    use super::*;

    const FILE: &str = "/etc/cocoon/relayer.toml";

    /// `cocoon-relayer run ARGS` with the configuration file `toml`.
    fn run_with(args: &[&str], toml: &str) -> Result<RunArgs, ConfigFileError> {
        let argv = ["cocoon-relayer", "run"]
            .into_iter()
            .chain(args.iter().copied());
        let m = config_file::try_get_matches_with_toml(
            Cli::command().arg(config_file::config_arg(CONFIG_ENV)),
            argv,
            toml,
            Path::new(FILE),
        )?;
        match Cli::from_arg_matches(&m)?.command {
            Command::Run(a) => Ok(*a),
            Command::Jobs(_) => panic!("run was asked"),
        }
    }

    fn parse(args: &[&str]) -> RunArgs {
        run_with(args, "").unwrap()
    }

    #[test]
    fn no_flags_give_the_library_defaults() {
        let a = parse(&[]);
        assert_eq!(a.api.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(a.store.url, DEFAULT_STORE_URL);
        assert_eq!(a.store.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            a.api.limits(),
            cocoon_http::Limits::with_max_body(0),
            "listener defaults are the library's"
        );
        let c = a.relayer.to_config();
        let d = RelayerConfig::default();
        assert_eq!(
            (
                c.relayer_id,
                c.max_input_bytes,
                c.first_chunk_timeout,
                c.idle_timeout,
                c.heartbeat_interval,
                c.grace_period
            ),
            (
                d.relayer_id,
                d.max_input_bytes,
                d.first_chunk_timeout,
                d.idle_timeout,
                d.heartbeat_interval,
                d.grace_period
            )
        );
    }

    #[test]
    fn chain_flags_are_the_shared_ones() {
        let a = parse(&[
            "--chain.api-url",
            "http://127.0.0.1:1",
            "--chain.root",
            "0:00",
            "--chain.timeout",
            "3",
        ]);
        assert_eq!(a.chain.chain.config().base_url, "http://127.0.0.1:1");
        assert_eq!(a.chain.chain.config().timeout, Duration::from_secs(3));
        assert_eq!(a.chain.root.as_deref(), Some("0:00"));
    }

    #[test]
    fn file_fills_only_what_flags_left_default() {
        let a = run_with(
            &["--store.url", "postgres://u@h/db"],
            "[api]\nlisten = \"0.0.0.0:9000\"\nrate-limit = 7\n[store]\nurl = \"sqlite://f.db\"\nmax-connections = 3\n[relayer]\ngrace-period = 5\n[registry]\nworkers = \"workers.toml\"\n",
        )
        .unwrap();
        assert_eq!(a.api.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(a.api.limits().rate_per_second, 7);
        assert_eq!(a.store.url, "postgres://u@h/db", "the flag wins");
        assert_eq!((a.store.max_connections, a.relayer.grace_period), (3, 5));
        assert_eq!(a.registry.workers, Some(PathBuf::from("workers.toml")));
        assert!(matches!(
            run_with(&[], "[store]\nbogus = 1\n"),
            Err(ConfigFileError::UnknownKey { key, .. }) if key == "store.bogus"
        ));
        let e = run_with(&[], "[api]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(
            e.to_string().contains("--api.listen") && e.to_string().contains(FILE),
            "{e}"
        );
    }

    #[test]
    fn the_highload_wallet_is_chosen_by_flag_or_file() {
        let a = parse(&[]);
        assert!(!a.chain.highload, "off by default");
        let a = parse(&["--wallet.highload"]);
        assert!(a.chain.highload);
        let a = run_with(&[], "[wallet]\nhighload = true\n").unwrap();
        assert!(a.chain.highload);
    }

    #[test]
    fn config_names_the_file_on_either_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relayer.toml");
        std::fs::write(
            &path,
            "[api]\nlisten = \"127.0.0.1:9481\"\n[store]\nurl = \"sqlite://j.db\"\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let cli = config_file::try_parse_from::<Cli, _, _>(
            CONFIG_ENV,
            ["cocoon-relayer", "run", "--config", path],
        )
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("run")
        };
        assert_eq!(a.api.listen, "127.0.0.1:9481".parse().unwrap());
        // `jobs` reads the same file and takes only its own keys (`[store]`).
        let cli = config_file::try_parse_from::<Cli, _, _>(
            CONFIG_ENV,
            ["cocoon-relayer", "--config", path, "jobs"],
        )
        .unwrap();
        let Command::Jobs(j) = cli.command else {
            panic!("jobs")
        };
        assert_eq!(j.store.url, "sqlite://j.db");
    }
}
