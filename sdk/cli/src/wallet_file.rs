//! The wallet file: `{"version": "v5r1", "mnemonic": "…"}`, readable by its owner only.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use cocoon_sdk::wallet::{Wallet, WalletKind};

#[derive(Debug, Serialize, Deserialize)]
struct WalletFile {
    version: WalletKind,
    mnemonic: String,
}

/// Opens the wallet stored at `path`.
pub fn load(path: &Path) -> anyhow::Result<Wallet> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading wallet file {} (create one with `cocoon wallet new`)",
            path.display()
        )
    })?;
    let f: WalletFile = serde_json::from_str(&text)
        .with_context(|| format!("wallet file {} is malformed", path.display()))?;
    Ok(Wallet::from_mnemonic(&f.mnemonic, f.version)?)
}

/// Writes a wallet file (mode 0600); refuses to overwrite unless `force`.
pub fn save(path: &Path, version: WalletKind, mnemonic: &str, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{} exists; pass --force to overwrite it (the old mnemonic is lost)",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&WalletFile {
        version,
        mnemonic: mnemonic.to_owned(),
    })?;
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())?;
    }
    #[cfg(not(unix))]
    std::fs::write(path, text)?;
    Ok(())
}
