//! Named networks and their toncenter endpoints.

use std::fmt;
use std::str::FromStr;

/// Default URL of a localnet started by `cocoon localnet`.
pub const LOCALNET_DEFAULT_URL: &str = "http://127.0.0.1:8081";
/// toncenter, testnet.
pub const TESTNET_URL: &str = "https://testnet.toncenter.com";
/// toncenter, mainnet.
pub const MAINNET_URL: &str = "https://toncenter.com";
/// Global id of TON mainnet (config param 19).
pub const MAINNET_GLOBAL_ID: i32 = -239;
/// Global id of TON testnet (config param 19).
pub const TESTNET_GLOBAL_ID: i32 = -3;

/// A TON network the sdk can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The local emulator network (`cocoon localnet`).
    #[default]
    Localnet,
    /// TON testnet through toncenter.
    Testnet,
    /// TON mainnet through toncenter.
    Mainnet,
}

impl Network {
    /// The toncenter base URL (without `/api/v2`).
    pub fn default_url(self) -> &'static str {
        match self {
            Network::Localnet => LOCALNET_DEFAULT_URL,
            Network::Testnet => TESTNET_URL,
            Network::Mainnet => MAINNET_URL,
        }
    }

    /// Whether addresses print in testnet form (localnet counts as a test network).
    pub fn is_test(self) -> bool {
        !matches!(self, Network::Mainnet)
    }

    /// The network's global id (config param 19), which Wallet V5R1 mixes into its wallet id so
    /// that one key has different wallets, and signatures that do not replay, on each network.
    /// Localnet runs the sandbox's bundled mainnet config, so it has mainnet's id.
    pub fn global_id(self) -> i32 {
        match self {
            Network::Localnet | Network::Mainnet => MAINNET_GLOBAL_ID,
            Network::Testnet => TESTNET_GLOBAL_ID,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Localnet => "localnet",
            Network::Testnet => "testnet",
            Network::Mainnet => "mainnet",
        })
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "localnet" => Ok(Network::Localnet),
            "testnet" => Ok(Network::Testnet),
            "mainnet" => Ok(Network::Mainnet),
            other => Err(format!(
                "unknown network {other:?} (localnet, testnet, mainnet)"
            )),
        }
    }
}
