//! Command-line and file configuration of `cocoon-relayer run`: clap flags (namespaced per
//! subsystem, each with an environment variable), an optional TOML file for whatever the flags
//! and environment leave at their defaults, and defaults from the library constants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use cocoon_sdk::args::ROOT_ENV;
use serde::Deserialize;

use crate::config::{self, RelayerConfig};
use crate::store::{DEFAULT_MAX_CONNECTIONS, DEFAULT_STORE_URL};

/// Default address of the HTTP/WebSocket listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";

/// `cocoon-relayer run` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RunArgs {
    /// TOML file with the same keys as the flags (`[api] listen = ...`, `[store] url = ...`);
    /// flags and environment variables win over it.
    #[arg(long = "config", env = "COCOON_RELAYER_CONFIG")]
    pub config: Option<PathBuf>,
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

/// The TOML file: every key optional, same names as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    api: Option<FileApi>,
    store: Option<FileStore>,
    relayer: Option<FileRelayer>,
    registry: Option<FileRegistry>,
    wallet: Option<FileWallet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWallet {
    highload: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "kebab-case")]
struct FileApi {
    listen: Option<SocketAddr>,
    header_timeout: Option<u64>,
    body_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    rate_limit: Option<u32>,
    rate_burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileStore {
    url: Option<String>,
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileRelayer {
    id: Option<String>,
    max_input_bytes: Option<usize>,
    first_chunk_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    heartbeat: Option<u64>,
    grace_period: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    workers: Option<PathBuf>,
}

impl FileConfig {
    /// Parses the TOML text.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

impl RunArgs {
    /// Fills every argument that neither a flag nor the environment set from `file`.
    pub fn merge_file(&mut self, file: FileConfig, matches: &ArgMatches) {
        let unset = |id: &str| {
            matches!(
                matches.value_source(id),
                None | Some(ValueSource::DefaultValue)
            )
        };
        macro_rules! take {
            ($section:expr, $field:ident => $target:expr, $id:literal) => {
                if let Some(v) = $section.as_ref().and_then(|s| s.$field.clone()) {
                    if unset($id) {
                        $target = v;
                    }
                }
            };
        }
        take!(file.api, listen => self.api.listen, "api.listen");
        take!(file.api, header_timeout => self.api.header_timeout_s, "api.header-timeout");
        take!(file.api, body_timeout => self.api.body_timeout_s, "api.body-timeout");
        take!(file.api, idle_timeout => self.api.idle_timeout_s, "api.idle-timeout");
        take!(file.api, max_connections => self.api.max_connections, "api.max-connections");
        take!(file.api, max_connections_per_ip => self.api.max_connections_per_ip, "api.max-connections-per-ip");
        take!(file.api, rate_limit => self.api.rate_per_second, "api.rate-limit");
        take!(file.api, rate_burst => self.api.rate_burst, "api.rate-burst");
        take!(file.store, url => self.store.url, "store.url");
        take!(file.store, max_connections => self.store.max_connections, "store.max-connections");
        take!(file.relayer, id => self.relayer.id, "relayer.id");
        take!(file.relayer, max_input_bytes => self.relayer.max_input_bytes, "relayer.max-input-bytes");
        take!(file.relayer, first_chunk_timeout => self.relayer.first_chunk_timeout_s, "relayer.first-chunk-timeout");
        take!(file.relayer, idle_timeout => self.relayer.idle_timeout_s, "relayer.idle-timeout");
        take!(file.relayer, heartbeat => self.relayer.heartbeat_s, "relayer.heartbeat");
        take!(file.relayer, grace_period => self.relayer.grace_period, "relayer.grace-period");
        take!(file.wallet, highload => self.chain.highload, "wallet.highload");
        if self.registry.workers.is_none() {
            self.registry.workers = file.registry.and_then(|r| r.workers);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, FromArgMatches as _, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> (RunArgs, ArgMatches) {
        let m = Wrap::command()
            .try_get_matches_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap();
        (Wrap::from_arg_matches(&m).unwrap().run, m)
    }

    #[test]
    fn no_flags_give_the_library_defaults() {
        let (a, _) = parse(&[]);
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
        let (a, _) = parse(&[
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
        let (mut a, m) = parse(&["--store.url", "postgres://u@h/db"]);
        let file = FileConfig::parse(
            "[api]\nlisten = \"0.0.0.0:9000\"\nrate-limit = 7\n[store]\nurl = \"sqlite://f.db\"\nmax-connections = 3\n[relayer]\ngrace-period = 5\n",
        )
        .unwrap();
        a.merge_file(file, &m);
        assert_eq!(a.api.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(a.api.limits().rate_per_second, 7);
        assert_eq!(a.store.url, "postgres://u@h/db", "the flag wins");
        assert_eq!((a.store.max_connections, a.relayer.grace_period), (3, 5));
        assert!(FileConfig::parse("[store]\nbogus = 1\n").is_err());
    }

    #[test]
    fn the_highload_wallet_is_chosen_by_flag_or_file() {
        let (a, _) = parse(&[]);
        assert!(!a.chain.highload, "off by default");
        let (a, _) = parse(&["--wallet.highload"]);
        assert!(a.chain.highload);
        let (mut a, m) = parse(&[]);
        a.merge_file(
            FileConfig::parse("[wallet]\nhighload = true\n").unwrap(),
            &m,
        );
        assert!(a.chain.highload);
        assert!(FileConfig::parse("[wallet]\nmnemonic = \"x\"\n").is_err());
    }
}
