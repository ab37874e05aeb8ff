//! Two OS processes sending from one V5R1 wallet at once on the realistic local network (block
//! timing, a lagging index, toncenter's rate limits, duplicate-seqno messages dropped at
//! execution): both end within their bound with a clear result — confirmed, or an error that
//! says the seqno was taken (superseded / refused) — and the chain executed each confirmed send
//! exactly once and nothing else.

use std::time::{Duration, Instant};

use cocoon_cli::localnet::{LocalnetTiming, TEST_API_KEY};
use cocoon_sdk::chain::Network;
use cocoon_sdk::wallet::{Wallet, WalletKind, generate_mnemonic};
use cocoon_testkit::chain::{DevChain, registry, start_localnet_with};
use tokio::process::Command;

/// How long one `cocoon` send may take at most: the message lifetime (60 s), the index grace
/// (30 s) and the slack, with room for a slow machine.
const BOUND: Duration = Duration::from_secs(150);

fn cocoon(url: &str, wallet: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cocoon"));
    c.args([
        "--network",
        "localnet",
        "--api-url",
        url,
        "--api-key",
        TEST_API_KEY,
    ])
    // Two processes share the key's 10 requests/s: each keeps within its half.
    .args(["--chain.rate-limit", "4", "--wallet.file"])
    .arg(wallet)
    .args(args)
    .env_remove("COCOON_ROOT")
    .env_remove("TONCENTER_API_KEY")
    .kill_on_drop(true);
    c
}

#[tokio::test]
async fn two_processes_on_one_wallet_both_end_clearly_within_their_bound() {
    let net = start_localnet_with(LocalnetTiming::REALISTIC)
        .await
        .unwrap();
    let url = net.url().to_owned();
    let dev = DevChain::on(net, registry(&[])).await.unwrap();
    let root = dev.root.to_hex();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.json");
    let phrase = generate_mnemonic();
    let w = Wallet::from_mnemonic_on(&phrase, WalletKind::V5r1, Network::Localnet).unwrap();
    let out = cocoon(&url, &file, &["wallet", "new", "--mnemonic", &phrase])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dev.localnet
        .fund(w.address(), 50 * cocoon_sdk::units::NANO_PER_TON)
        .await
        .unwrap();
    // A first deposit deploys the wallet and the Escrow, so both racers sign for an active one.
    let out = cocoon(&url, &file, &["escrow", "deposit", "--root", &root, "1"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = w.seqno(&dev.chain).await.unwrap();

    let started = Instant::now();
    let a = cocoon(&url, &file, &["escrow", "deposit", "--root", &root, "2"]).output();
    let b = cocoon(&url, &file, &["escrow", "deposit", "--root", &root, "3"]).output();
    let (a, b) = tokio::time::timeout(BOUND, async { tokio::join!(a, b) })
        .await
        .expect("both processes end within their bound");
    let waited = started.elapsed();
    let results = [a.unwrap(), b.unwrap()];
    let mut confirmed: u32 = 0;
    for (i, r) in results.iter().enumerate() {
        let err = String::from_utf8_lossy(&r.stderr).to_lowercase();
        if r.status.success() {
            confirmed += 1;
        } else {
            assert!(
                err.contains("superseded") || err.contains("refused") || err.contains("expired"),
                "process {i} failed without saying why the send did not happen:\n{err}"
            );
        }
    }
    assert!(confirmed >= 1, "at least one send lands: {results:?}");
    // On chain: one seqno per confirmed send, no more (a dropped duplicate never executes).
    let after = w.seqno(&dev.chain).await.unwrap();
    assert_eq!(after - before, confirmed, "waited {waited:?}: {results:?}");
}
