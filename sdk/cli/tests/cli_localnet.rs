//! The `cocoon` binary end to end against a localnet it does not own: wallet, faucet, deploy,
//! governance, worker registration, escrow deposit / open-job / expire / withdraw, JSON output
//! and typed failures.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn cocoon(url: &str, wallet: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(["--network", "localnet", "--api-url", url, "--wallet.file"])
        .arg(wallet)
        .args(args)
        .env_remove("COCOON_ROOT")
        .env_remove("TONCENTER_API_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok_json(url: &str, wallet: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (ok, out, err) = cocoon(url, wallet, &a);
    assert!(ok, "cocoon {args:?} failed:\n{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cocoon {args:?}: not JSON ({e}):\n{out}"))
}

#[tokio::test]
async fn cli_drives_the_whole_flow() {
    let net = cocoon_testkit::chain::start_localnet().await.unwrap();
    let url = net.url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let owner = dir.path().join("owner.json");
    let gpu = dir.path().join("gpu.json");

    // Wallets; a second `new` on the same file is refused.
    let w = ok_json(&url, &owner, &["wallet", "new"]);
    assert!(w["address"].as_str().unwrap().len() == 48);
    ok_json(&url, &gpu, &["wallet", "new", "--wallet.version", "v4r2"]);
    let (ok, _, err) = cocoon(&url, &owner, &["wallet", "new"]);
    assert!(!ok && err.contains("--force"), "{err}");

    // Faucet and exact balances.
    ok_json(&url, &owner, &["wallet", "fund", "50"]);
    ok_json(&url, &gpu, &["wallet", "fund", "20.000000001"]);
    let b = ok_json(&url, &gpu, &["wallet", "balance"]);
    assert_eq!(b["balance_nano"], "20000000001");
    assert_eq!(b["balance"], "20.000000001");

    // Deploy a Root that allows simulated TEEs (localnet only) with a short grace period.
    let d = ok_json(
        &url,
        &owner,
        &[
            "deploy",
            "--min-stake",
            "10",
            "--grace-period",
            "5",
            "--allowed-kinds",
            "1",
        ],
    );
    let root = d["root"].as_str().unwrap().to_owned();
    let m = "4d".repeat(32);
    ok_json(
        &url,
        &owner,
        &["root", "allow-measurement", "--root", &root, &m],
    );
    ok_json(
        &url,
        &owner,
        &[
            "root",
            "add-model",
            "--root",
            &root,
            "--id",
            "1",
            "--name",
            "tiny@main:00",
        ],
    );
    ok_json(
        &url,
        &owner,
        &[
            "root",
            "set-param",
            "--root",
            &root,
            "protocol-fee-bps",
            "50",
        ],
    );
    let show = ok_json(&url, &owner, &["root", "show", "--root", &root]);
    assert_eq!(show["params"]["protocol_fee_bps"], 50);
    assert_eq!(show["params"]["min_stake_nano"], "10000000000");
    assert_eq!(show["policy"]["measurements"][0], m.as_str());
    assert!(show["models"]["1"].is_string());

    // Someone else governing: a typed, named failure and a non-zero exit.
    let (ok, _, err) = cocoon(
        &url,
        &gpu,
        &["root", "set-param", "--root", &root, "grace-period", "1"],
    );
    assert!(!ok && err.contains("NotOwner"), "{err}");

    // Worker registration with a stake.
    let key = "11".repeat(32);
    ok_json(
        &url,
        &gpu,
        &[
            "worker",
            "register",
            "--root",
            &root,
            "--stake",
            "10",
            "--receipt-key",
            &key,
            "--encryption-key",
            &key,
            "--price-in",
            "1000",
            "--price-out",
            "3000",
            "--models",
            "1",
            "--kind",
            "0",
            "--measurement",
            &m,
            "--evidence-hash",
            &key,
        ],
    );
    let ws = ok_json(&url, &gpu, &["worker", "show", "--root", &root]);
    assert_eq!(ws["state"]["status"], 1);
    assert_eq!(ws["state"]["stake"], 10_000_000_000u64);
    assert_eq!(ws["record"]["price_out"], 3000);

    // Escrow: deposit, open a job, expire it after the deadline, withdraw.
    ok_json(&url, &owner, &["escrow", "deposit", "--root", &root, "3"]);
    let relayer = w["address"].as_str().unwrap().to_owned();
    ok_json(
        &url,
        &owner,
        &[
            "escrow",
            "open-job",
            "--root",
            &root,
            "--model",
            "1",
            "--max-cost",
            "1",
            "--deadline-in",
            "10",
            "--relayer",
            &relayer,
            "--input-commitment",
            &"33".repeat(32),
        ],
    );
    let es = ok_json(
        &url,
        &owner,
        &["escrow", "show", "--root", &root, "--job", "1"],
    );
    assert_eq!(es["state"]["locked"], 1_000_000_000u64);
    assert_eq!(es["job"]["max_cost"], 1_000_000_000u64);
    let (ok, _, err) = cocoon(&url, &owner, &["escrow", "expire", "--root", &root, "1"]);
    assert!(!ok && err.contains("JobNotExpired"), "{err}");
    net.advance_time(30).await.unwrap();
    ok_json(&url, &owner, &["escrow", "expire", "--root", &root, "1"]);
    let es = ok_json(
        &url,
        &owner,
        &["escrow", "show", "--root", &root, "--job", "1"],
    );
    assert_eq!(es["state"]["locked"], 0);
    assert!(es["job"].is_null());
    ok_json(
        &url,
        &owner,
        &["escrow", "withdraw", "--root", &root, "1.5"],
    );

    // Human output and bad input.
    let (ok, out, _) = cocoon(&url, &owner, &["escrow", "show", "--root", &root]);
    assert!(ok && out.contains("free:"), "{out}");
    let (ok, _, err) = cocoon(
        &url,
        &owner,
        &["escrow", "deposit", "--root", &root, "0.0000000001"],
    );
    assert!(!ok && err.contains("9 decimals"), "{err}");
}

/// A wallet file records its network: the same mnemonic is another V5R1 wallet on testnet, the
/// addresses print in the network's form, and a file made for one network is refused on another.
/// (No chain is contacted: `wallet new` and `wallet show` work offline.)
#[test]
fn wallet_files_belong_to_one_network() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.json");
    let run = |network: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cocoon"))
            .args(["--network", network, "--json", "--wallet.file"])
            .arg(&file)
            .args(args)
            .env_remove("COCOON_NETWORK")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mnemonic = cocoon_sdk::wallet::generate_mnemonic();
    let (ok, out, err) = run("testnet", &["wallet", "new", "--mnemonic", &mnemonic]);
    assert!(ok, "{out}{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made["network"], "testnet");
    let address = made["address"].as_str().unwrap().to_owned();
    // Testnet form (the test-only flag: "kQ…" or "0Q…", never mainnet's "EQ…"/"UQ…").
    assert!(
        address.starts_with("kQ") || address.starts_with("0Q"),
        "{address}"
    );

    let (ok, out, _) = run("testnet", &["wallet", "show"]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["address"], address.as_str());

    let on_main = cocoon_sdk::wallet::Wallet::from_mnemonic_on(
        &mnemonic,
        cocoon_sdk::wallet::WalletKind::V5r1,
        cocoon_sdk::chain::Network::Mainnet,
    )
    .unwrap();
    assert_ne!(shown["raw"].as_str().unwrap(), on_main.address().to_hex());

    for other in ["mainnet", "localnet"] {
        let (ok, _, err) = run(other, &["wallet", "show"]);
        assert!(!ok, "a testnet wallet file opened on {other}");
        assert!(
            err.contains("is for testnet") && err.contains("--chain.network testnet"),
            "{err}"
        );
    }
}
