//! Argument groups shared by every Cocoon binary (`cocoon`, `cocoon-worker`, `cocoon-relayer`):
//! clap `Args` with namespaced flags, every default a library constant, and a test that parsing
//! no flags gives `Default::default()`. Behind the `clap` feature, so a library user that parses
//! no command line does not link clap. [`config_file`] gives every binary the same `--config`
//! TOML file, whose keys are these flags' long names.

pub mod config_file;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::chain::{Network, RateLimit, RetryPolicy, TonCenterConfig, retry, toncenter};
use crate::wallet::{self, SendOptions, WalletKind};

/// Environment variable with the network (`--chain.network`).
pub const NETWORK_ENV: &str = "COCOON_NETWORK";
/// Environment variable with the toncenter base URL (`--chain.api-url`).
pub const API_URL_ENV: &str = "COCOON_API_URL";
/// Environment variable with the Root contract's address (`--root`).
pub const ROOT_ENV: &str = "COCOON_ROOT";
/// Environment variable with the relayer's URL (`--relayer`): clients use its HTTP API, workers
/// dial its WebSocket at the same address.
pub const RELAYER_URL_ENV: &str = "COCOON_RELAYER_URL";
/// Environment variable with the toncenter API key.
pub const API_KEY_ENV: &str = "TONCENTER_API_KEY";
/// Environment variable with the wallet file.
pub const WALLET_FILE_ENV: &str = "COCOON_WALLET";
/// Default wallet file, relative to the home directory.
pub const DEFAULT_WALLET_FILE: &str = ".cocoon/wallet.json";

/// Which network and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ChainArgs {
    /// Network: localnet, testnet or mainnet.
    #[arg(long = "chain.network", alias = "network", global = true, value_enum, default_value_t = Network::default(), env = NETWORK_ENV)]
    pub network: Network,
    /// toncenter base URL; overrides the network's default.
    #[arg(
        long = "chain.api-url",
        alias = "api-url",
        global = true,
        env = API_URL_ENV
    )]
    pub api_url: Option<String>,
    /// toncenter API key.
    #[arg(long = "chain.api-key", alias = "api-key", global = true, env = API_KEY_ENV, hide_env_values = true)]
    pub api_key: Option<String>,
    /// Timeout of one request, seconds.
    #[arg(long = "chain.timeout", global = true, default_value_t = toncenter::DEFAULT_TIMEOUT.as_secs())]
    pub timeout_secs: u64,
    /// Attempts per request (transient failures are retried with backoff).
    #[arg(long = "chain.attempts", global = true, default_value_t = retry::DEFAULT_MAX_ATTEMPTS)]
    pub attempts: u32,
    /// Requests per second to the API: auto (toncenter's free-plan limits on toncenter, none
    /// elsewhere), unlimited, or a number (a paid plan).
    #[arg(long = "chain.rate-limit", global = true, default_value_t = RateLimit::Auto, env = "COCOON_CHAIN_RATE_LIMIT")]
    pub rate_limit: RateLimit,
}

impl Default for ChainArgs {
    fn default() -> Self {
        Self {
            network: Network::default(),
            api_url: None,
            api_key: None,
            timeout_secs: toncenter::DEFAULT_TIMEOUT.as_secs(),
            attempts: retry::DEFAULT_MAX_ATTEMPTS,
            rate_limit: RateLimit::Auto,
        }
    }
}

impl ChainArgs {
    /// The client configuration these flags describe.
    pub fn config(&self) -> TonCenterConfig {
        TonCenterConfig {
            base_url: self
                .api_url
                .clone()
                .unwrap_or_else(|| self.network.default_url().to_owned()),
            api_key: self.api_key.clone(),
            timeout: Duration::from_secs(self.timeout_secs),
            retry: RetryPolicy {
                max_attempts: self.attempts,
                ..RetryPolicy::default()
            },
            rate_limit: self.rate_limit,
        }
    }
}

/// Which wallet signs.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct WalletArgs {
    /// Wallet file (mnemonic + version), created by `cocoon wallet new`. Default ~/.cocoon/wallet.json.
    #[arg(long = "wallet.file", global = true, env = WALLET_FILE_ENV)]
    pub file: Option<PathBuf>,
    /// Wallet contract version for `wallet new`.
    #[arg(id = "wallet_version", long = "wallet.version", global = true, value_enum, default_value_t = WalletKind::default())]
    pub version: WalletKind,
    /// Lifetime of a signed transfer, seconds.
    #[arg(long = "wallet.ttl", global = true, default_value_t = wallet::DEFAULT_TTL.as_secs())]
    pub ttl_secs: u64,
}

impl Default for WalletArgs {
    fn default() -> Self {
        Self {
            file: None,
            version: WalletKind::default(),
            ttl_secs: wallet::DEFAULT_TTL.as_secs(),
        }
    }
}

impl WalletArgs {
    /// The wallet file path.
    pub fn path(&self) -> PathBuf {
        self.file.clone().unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(DEFAULT_WALLET_FILE)
        })
    }

    /// Send options these flags describe.
    pub fn send_options(&self) -> SendOptions {
        SendOptions {
            ttl: Duration::from_secs(self.ttl_secs),
            ..SendOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct All {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        wallet: WalletArgs,
    }

    #[test]
    fn no_flags_means_library_defaults() {
        // Environment variables would leak into defaults: this test runs without them set.
        for v in [NETWORK_ENV, API_URL_ENV, API_KEY_ENV, WALLET_FILE_ENV] {
            if std::env::var_os(v).is_some() {
                return;
            }
        }
        let a = All::try_parse_from(["x"]).unwrap();
        assert_eq!(a.chain, ChainArgs::default());
        assert_eq!(a.wallet, WalletArgs::default());
        assert_eq!(
            a.chain.config(),
            TonCenterConfig::for_network(Network::Localnet)
        );
    }

    #[test]
    fn namespaced_flags_parse() {
        let a = All::try_parse_from([
            "x",
            "--chain.network",
            "testnet",
            "--api-key",
            "k",
            "--chain.timeout",
            "3",
            "--wallet.version",
            "v4r2",
        ])
        .unwrap();
        assert_eq!(a.chain.network, Network::Testnet);
        assert_eq!(
            a.chain.config().base_url,
            crate::chain::network::TESTNET_URL
        );
        assert_eq!(a.chain.config().timeout, Duration::from_secs(3));
        assert_eq!(a.wallet.version, WalletKind::V4r2);
        assert!(All::try_parse_from(["x", "--network", "moon"]).is_err());
        // The short spellings stay accepted (scripts written before the namespacing).
        let a =
            All::try_parse_from(["x", "--network", "mainnet", "--api-url", "http://h"]).unwrap();
        assert_eq!(a.chain.network, Network::Mainnet);
        assert_eq!(a.chain.config().base_url, "http://h");
    }
}
