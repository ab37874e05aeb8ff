//! The client's channels saved beside its wallet: each session's snapshot (the chain view, the
//! worker's receipt key, the latest voucher) and the receipts it paid, so that a restarted client
//! reuses its open channels and can still prove any receipt's inclusion. No secret is saved: the
//! voucher key stays in its own file and [`ChannelSession::resume`] checks every snapshot against
//! it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ChannelClientError, Result};
use crate::channel::serde_fields::raw_address;
use crate::channel::{SessionSnapshot, SignedChannelReceipt};
use crate::tlb::TonAddress;

/// Layout version of [`SavedChannels`].
pub const STORE_VERSION: u16 = 1;

/// One saved channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedChannel {
    /// The session.
    pub snapshot: SessionSnapshot,
    /// The receipts paid so far, in seq order (base64 BOC).
    #[serde(default, with = "receipts")]
    pub receipts: Vec<SignedChannelReceipt>,
    /// Closed on-chain (kept for its receipts' proofs).
    #[serde(default)]
    pub closed: bool,
}

/// Every channel of one wallet under one Root.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedChannels {
    /// [`STORE_VERSION`].
    pub version: u16,
    /// The Root.
    #[serde(with = "raw_address")]
    pub root: TonAddress,
    /// The client's Escrow.
    #[serde(with = "raw_address")]
    pub escrow: TonAddress,
    /// Its channels.
    pub channels: Vec<SavedChannel>,
}

/// The store file for `wallet_file` and `root`: `<wallet>.channels-<root hash prefix>.json`.
pub fn default_store_path(wallet_file: &Path, root: &TonAddress) -> PathBuf {
    let tag = hex::encode(&root.hash_part.as_slice()[..8]);
    wallet_file.with_extension(format!("channels-{tag}.json"))
}

fn store_err(path: &Path, reason: impl std::fmt::Display) -> ChannelClientError {
    ChannelClientError::Store {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads the store at `path` (none yet: `None`). A store of another Root or Escrow is refused.
pub fn load(path: &Path, root: &TonAddress, escrow: &TonAddress) -> Result<Option<SavedChannels>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(store_err(path, e)),
    };
    let saved: SavedChannels = serde_json::from_str(&text).map_err(|e| store_err(path, e))?;
    if saved.version != STORE_VERSION {
        return Err(store_err(
            path,
            format!(
                "layout version {} (this sdk reads {STORE_VERSION})",
                saved.version
            ),
        ));
    }
    if &saved.root != root || &saved.escrow != escrow {
        return Err(store_err(
            path,
            format!("saved for Root {} / Escrow {}", saved.root, saved.escrow),
        ));
    }
    Ok(Some(saved))
}

/// Writes the store atomically (a temporary file renamed over it), mode 0600.
pub fn save(path: &Path, saved: &SavedChannels) -> Result<()> {
    let text = serde_json::to_vec_pretty(saved).map_err(|e| store_err(path, e))?;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| store_err(path, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    use std::io::Write as _;
    opts.open(&tmp)
        .and_then(|mut f| {
            f.write_all(&text)?;
            f.sync_all()
        })
        .map_err(|e| store_err(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| store_err(path, e))
}

mod receipts {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::channel::SignedChannelReceipt;

    #[derive(Serialize, Deserialize)]
    struct One(#[serde(with = "crate::channel::serde_fields::boc")] SignedChannelReceipt);

    pub fn serialize<S: Serializer>(v: &[SignedChannelReceipt], s: S) -> Result<S::Ok, S::Error> {
        let all: Vec<One> = v.iter().cloned().map(One).collect();
        all.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<SignedChannelReceipt>, D::Error> {
        Ok(Vec::<One>::deserialize(d)?
            .into_iter()
            .map(|o| o.0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::channel::{ChannelRef, ChannelSession, ChannelState};

    fn saved(root: &TonAddress, escrow: &TonAddress) -> SavedChannels {
        let key = SigningKey::from_bytes(&[5; 32]);
        let a = TonAddress::new(0, [1u8; 32].into());
        let state = ChannelState {
            channel: ChannelRef {
                global_id: -239,
                root: root.clone(),
                escrow: escrow.clone(),
                channel_id: u64::MAX - 1,
            },
            amount: 1_000,
            settled: 0,
            last_seq: 0,
            expires_at: 100,
            close_requested_at: 0,
            settle_until: 130,
            price_in: 1,
            price_out: 3,
            worker: a.clone(),
            worker_owner: a.clone(),
            relayer: a,
            relayer_fee_bps: 100,
            protocol_fee_bps: 100,
            voucher_key: key.verifying_key().to_bytes(),
            relayer_due: 0,
        };
        let session = ChannelSession::open(state, [9; 32], key).unwrap();
        SavedChannels {
            version: STORE_VERSION,
            root: root.clone(),
            escrow: escrow.clone(),
            channels: vec![SavedChannel {
                snapshot: session.snapshot(),
                receipts: Vec::new(),
                closed: false,
            }],
        }
    }

    #[test]
    fn a_store_roundtrips_holds_no_secret_and_refuses_another_root() {
        let dir = tempfile::tempdir().unwrap();
        let (root, escrow) = (
            TonAddress::new(0, [2u8; 32].into()),
            TonAddress::new(0, [3u8; 32].into()),
        );
        let path = default_store_path(&dir.path().join("wallet.json"), &root);
        assert_eq!(
            load(&path, &root, &escrow)
                .unwrap()
                .map(|s| s.channels.len()),
            None
        );
        save(&path, &saved(&root, &escrow)).unwrap();
        let back = load(&path, &root, &escrow).unwrap().unwrap();
        assert_eq!(
            back.channels[0].snapshot,
            saved(&root, &escrow).channels[0].snapshot
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&hex::encode([5u8; 32])),
            "the voucher key seed is not saved"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = TonAddress::new(0, [4u8; 32].into());
        assert!(matches!(
            load(&path, &other, &escrow),
            Err(ChannelClientError::Store { .. })
        ));
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(
            load(&path, &root, &escrow),
            Err(ChannelClientError::Store { .. })
        ));
    }
}
