//! The node's long-term keys: the ed25519 receipt key (signs receipts and session auth) and the
//! X25519 encryption key (clients seal inputs to it). Both are bound into the attestation evidence
//! and recorded in the Worker contract.
//!
//! The key file holds the two 32-byte seeds as hex JSON, mode 0600:
//! `{"version":1,"receipt_seed":"…","encryption_seed":"…"}`. The receipt ledger and the evidence
//! the node registered live next to it (see [`NodeKeys::ledger_path`], [`NodeKeys::evidence_path`]).

use std::fmt;
use std::path::{Path, PathBuf};

use cocoon_sdk::seal::EncryptionKeyPair;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::error::{NodeError, Result};

/// Version of the key file format.
pub const KEY_FILE_VERSION: u16 = 1;

/// The receipt and encryption keys of one worker.
#[derive(Clone)]
pub struct NodeKeys {
    receipt: SigningKey,
    encryption: EncryptionKeyPair,
    encryption_seed: [u8; 32],
    path: Option<PathBuf>,
    in_tee: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u16,
    receipt_seed: String,
    encryption_seed: String,
}

impl NodeKeys {
    /// Keys derived from two seeds (tests, keys sealed elsewhere). Not tied to a file: the
    /// receipt ledger of a node started with them lives in memory only.
    pub fn from_seeds(receipt_seed: [u8; 32], encryption_seed: [u8; 32]) -> Self {
        Self {
            receipt: SigningKey::from_bytes(&receipt_seed),
            encryption: EncryptionKeyPair::from_seed(&encryption_seed),
            encryption_seed,
            path: None,
            in_tee: false,
        }
    }

    /// Fresh random keys, not tied to a file.
    pub fn generate() -> Self {
        Self::from_seeds(rand::random(), rand::random())
    }

    /// Keys generated inside the TEE at start, never written anywhere: the attestation binds
    /// them and the node registers them with fresh evidence. `base` only names where the receipt
    /// ledger and the evidence live (`<base>.receipts`, `<base>.evidence`: public data), so the
    /// ledger outlives the keys and a job signed under earlier keys is never signed again.
    ///
    /// A plaintext key file at `base` is refused: a TEE worker must not have one.
    pub fn in_tee(base: &Path) -> Result<Self> {
        if base.exists() {
            return Err(NodeError::File {
                path: base.to_path_buf(),
                reason: "a plaintext key file exists; a TEE worker generates its keys inside the TEE (remove the file, keep its .receipts ledger) or runs with --tee simulated".into(),
            });
        }
        let mut keys = Self::generate();
        keys.path = Some(base.to_path_buf());
        keys.in_tee = true;
        info!(target: "worker::node", receipt_key = %hex::encode(keys.receipt_key()), ledger = %sibling(base, "receipts").display(), "generated worker keys inside the TEE");
        Ok(keys)
    }

    /// Whether the keys were generated in the TEE for this run only.
    pub fn is_in_tee(&self) -> bool {
        self.in_tee
    }

    /// Loads the key file at `path`, or creates it (mode 0600, parent directories too) with fresh
    /// keys when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let err = |reason: String| NodeError::File {
            path: path.to_path_buf(),
            reason,
        };
        let mut keys = match std::fs::read(path) {
            Ok(bytes) => {
                let f: KeyFile = serde_json::from_slice(&bytes)
                    .map_err(|e| err(format!("not a worker key file: {e}")))?;
                if f.version != KEY_FILE_VERSION {
                    return Err(err(format!(
                        "key file version {} (expected {KEY_FILE_VERSION})",
                        f.version
                    )));
                }
                Self::from_seeds(
                    seed(&f.receipt_seed).map_err(|e| err(format!("receipt_seed: {e}")))?,
                    seed(&f.encryption_seed).map_err(|e| err(format!("encryption_seed: {e}")))?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = Self::generate();
                let file = KeyFile {
                    version: KEY_FILE_VERSION,
                    receipt_seed: hex::encode(keys.receipt.to_bytes()),
                    encryption_seed: hex::encode(keys.encryption_seed),
                };
                let json = serde_json::to_vec_pretty(&file).expect("key file serialises");
                write_private(path, &json).map_err(|e| err(e.to_string()))?;
                info!(target: "worker::node", path = %path.display(), receipt_key = %hex::encode(keys.receipt_key()), "created worker keys");
                keys
            }
            Err(e) => return Err(err(e.to_string())),
        };
        keys.path = Some(path.to_path_buf());
        Ok(keys)
    }

    /// The ed25519 receipt public key.
    pub fn receipt_key(&self) -> [u8; 32] {
        self.receipt.verifying_key().to_bytes()
    }

    /// The X25519 encryption public key.
    pub fn encryption_key(&self) -> [u8; 32] {
        self.encryption.public_key()
    }

    /// The signing half of the receipt key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.receipt
    }

    /// The encryption key pair (opens sealed inputs).
    pub fn encryption(&self) -> &EncryptionKeyPair {
        &self.encryption
    }

    /// The key file these keys came from (for keys made in the TEE: the base of the ledger and
    /// evidence paths; no file exists there).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Where the ledger of signed receipts lives: `<key file>.receipts` (none without a file).
    pub fn ledger_path(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| sibling(p, "receipts"))
    }

    /// Where the channel ledger lives (protocol v2): `<key file>.channels` (none without a file).
    pub fn channel_ledger_path(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| sibling(p, "channels"))
    }

    /// Where the evidence registered on-chain is kept: `<key file>.evidence` (none without a
    /// file). Real TEE reports are signed with fresh randomness, so the node must keep the exact
    /// bytes whose hash it registered.
    pub fn evidence_path(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| sibling(p, "evidence"))
    }
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeys")
            .field("receipt_key", &hex::encode(self.receipt_key()))
            .field("encryption_key", &hex::encode(self.encryption_key()))
            .field("path", &self.path)
            .field("in_tee", &self.in_tee)
            .finish()
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn seed(hex_str: &str) -> std::result::Result<[u8; 32], hex::FromHexError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str.trim(), &mut out)?;
    Ok(out)
}

/// Writes a new file readable by its owner only (the parent directory is created).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_load_back_identical_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/keys.json");
        let a = NodeKeys::load_or_create(&path).unwrap();
        let b = NodeKeys::load_or_create(&path).unwrap();
        assert_eq!(a.receipt_key(), b.receipt_key());
        assert_eq!(a.encryption_key(), b.encryption_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        }
        assert_eq!(
            a.ledger_path().unwrap(),
            dir.path().join("sub/keys.json.receipts")
        );
    }

    #[test]
    fn tee_keys_never_touch_the_disk_and_share_the_ledger_path() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("keys.json");
        let a = NodeKeys::in_tee(&base).unwrap();
        let b = NodeKeys::in_tee(&base).unwrap();
        assert!(!base.exists(), "no key file is written");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(a.is_in_tee());
        assert_ne!(
            a.receipt_key(),
            b.receipt_key(),
            "fresh keys at every start"
        );
        assert_eq!(
            a.ledger_path(),
            b.ledger_path(),
            "one ledger across restarts"
        );
        assert_eq!(
            a.ledger_path().unwrap(),
            dir.path().join("keys.json.receipts")
        );
        // A plaintext key file left from a simulated run is refused in TEE mode.
        NodeKeys::load_or_create(&base).unwrap();
        assert!(matches!(
            NodeKeys::in_tee(&base),
            Err(NodeError::File { reason, .. }) if reason.contains("plaintext")
        ));
    }

    #[test]
    fn broken_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        for bad in [
            "not json",
            r#"{"version":2,"receipt_seed":"00","encryption_seed":"00"}"#,
            r#"{"version":1,"receipt_seed":"zz","encryption_seed":"00"}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                matches!(NodeKeys::load_or_create(&path), Err(NodeError::File { .. })),
                "{bad}"
            );
        }
    }
}
