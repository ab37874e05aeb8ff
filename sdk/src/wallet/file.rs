//! The wallet file every Cocoon binary reads (`cocoon wallet new` writes it):
//! `{"version": "v5r1", "network": "testnet", "mnemonic": "…"}`, readable by its owner only.
//!
//! The file records the network it was made for, and opening it for another network is refused:
//! a V5R1 wallet has another address on each network, and a development mnemonic must never end up
//! signing on mainnet by a mistyped flag. Files written before the network was recorded open on
//! any network.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Wallet, WalletError, WalletKind};
use crate::chain::Network;

/// Why a wallet file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WalletFileError {
    /// The file could not be read.
    #[error("reading wallet file {path}: {source} (create one with `cocoon wallet new`)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a wallet file.
    #[error("wallet file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file was made for another network.
    #[error(
        "wallet file {path} is for {file}, not {wanted}: pass --chain.network {file}, or use a \
         wallet file made for {wanted}"
    )]
    WrongNetwork {
        /// The file.
        path: PathBuf,
        /// The network it records.
        file: Network,
        /// The network the command runs on.
        wanted: Network,
    },
    /// Refused to overwrite an existing file.
    #[error("{path} exists; pass --force to overwrite it (the old mnemonic is lost)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be written.
    #[error("writing wallet file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The mnemonic does not open a wallet.
    #[error("wallet file {path}: {source}")]
    Wallet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: WalletError,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Contents {
    version: WalletKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<Network>,
    mnemonic: String,
}

/// Opens the wallet stored at `path` for `network`.
pub fn load(path: &Path, network: Network) -> Result<Wallet, WalletFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| WalletFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let f: Contents = serde_json::from_str(&text).map_err(|e| WalletFileError::Malformed {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some(file) = f.network
        && file != network
    {
        return Err(WalletFileError::WrongNetwork {
            path: path.to_owned(),
            file,
            wanted: network,
        });
    }
    Wallet::from_mnemonic_on(&f.mnemonic, f.version, network).map_err(|source| {
        WalletFileError::Wallet {
            path: path.to_owned(),
            source,
        }
    })
}

/// Writes a wallet file for `network` (mode 0600); refuses to overwrite unless `force`.
pub fn save(
    path: &Path,
    version: WalletKind,
    network: Network,
    mnemonic: &str,
    force: bool,
) -> Result<(), WalletFileError> {
    let write_err = |source| WalletFileError::Write {
        path: path.to_owned(),
        source,
    };
    if path.exists() && !force {
        return Err(WalletFileError::Exists {
            path: path.to_owned(),
        });
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let text = serde_json::to_string_pretty(&Contents {
        version,
        network: Some(network),
        mnemonic: mnemonic.to_owned(),
    })
    .map_err(|e| WalletFileError::Malformed {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    write_private(path, text.as_bytes()).map_err(write_err)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::generate_mnemonic;

    #[test]
    fn a_file_opens_on_its_network_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let phrase = generate_mnemonic();
        save(&path, WalletKind::V5r1, Network::Testnet, &phrase, false).unwrap();
        let w = load(&path, Network::Testnet).unwrap();
        assert_eq!(w.network(), Network::Testnet);
        let expected =
            Wallet::from_mnemonic_on(&phrase, WalletKind::V5r1, Network::Testnet).unwrap();
        assert_eq!(w.address(), expected.address());
        for other in [Network::Mainnet, Network::Localnet] {
            match load(&path, other) {
                Err(e @ WalletFileError::WrongNetwork { .. }) => {
                    assert!(e.to_string().contains("--chain.network testnet"), "{e}");
                }
                r => panic!("{other}: expected WrongNetwork, got {r:?}"),
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            save(&path, WalletKind::V5r1, Network::Testnet, &phrase, false),
            Err(WalletFileError::Exists { .. })
        ));
        save(&path, WalletKind::V4r2, Network::Localnet, &phrase, true).unwrap();
        assert_eq!(
            load(&path, Network::Localnet).unwrap().kind(),
            WalletKind::V4r2
        );
    }

    #[test]
    fn a_file_without_a_network_opens_anywhere_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        let phrase = generate_mnemonic();
        let old = serde_json::json!({ "version": "v5r1", "mnemonic": phrase }).to_string();
        std::fs::write(&path, old).unwrap();
        let main = load(&path, Network::Mainnet).unwrap();
        let test = load(&path, Network::Testnet).unwrap();
        assert_ne!(main.address(), test.address());

        std::fs::write(&path, "{\"version\": \"v9\"}").unwrap();
        assert!(matches!(
            load(&path, Network::Mainnet),
            Err(WalletFileError::Malformed { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("missing.json"), Network::Mainnet),
            Err(WalletFileError::Read { .. })
        ));
    }
}
