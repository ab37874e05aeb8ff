//! Runs the `cocoon` binary on localnet with a wallet file, as a user would, and nothing from
//! the caller's environment that could point it elsewhere.

use std::path::Path;

use serde_json::Value;

/// `cocoon --network localnet --api-url URL --wallet.file WALLET ARGS…`: (success, stdout, stderr).
pub async fn cocoon(url: &str, wallet: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(["--network", "localnet", "--api-url", url, "--wallet.file"])
        .arg(wallet)
        .args(args)
        .env_remove("COCOON_ROOT")
        .env_remove("COCOON_RELAYER_URL")
        .env_remove("TONCENTER_API_KEY")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The same with `--json`: its output, parsed; panics with both streams when it fails.
pub async fn ok_json(url: &str, wallet: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (ok, out, err) = cocoon(url, wallet, &a).await;
    assert!(ok, "cocoon {args:?} failed:\n{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cocoon {args:?}: not JSON ({e}):\n{out}"))
}
