//! `cocoon watch` end to end on a localnet with a development Root v2: a worker made to
//! equivocate (two different receipts signed for one (channel, seq)) is reported by the binary
//! without any manual step; its stake is slashed and the reporter is paid. A lone receipt, a
//! repeated one, and a receipt the worker did not sign are not reported.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use cocoon_sdk::chain::{ChainApi as _, Network};
use cocoon_sdk::channel::{ChannelReceipt, ChannelRef};
use cocoon_sdk::contracts::v2::WorkerClient;
use cocoon_sdk::receipt::{ReceiptCommitments, ReceiptHashes};
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use cocoon_testkit::DevChainV2;
use cocoon_testkit::chain::start_localnet;
use ed25519_dalek::SigningKey;
use serde_json::Value;

const PRICE_IN: u128 = 1_000;
const PRICE_OUT: u128 = 3_000;

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

fn receipt(channel: &ChannelRef, worker: &TonAddress, seq: u32, tokens_out: u32) -> ChannelReceipt {
    ChannelReceipt {
        channel: channel.clone(),
        seq,
        worker: worker.clone(),
        model_id: 1,
        tokens_in: 10,
        tokens_out,
        cost: 10 * PRICE_IN + u128::from(tokens_out) * PRICE_OUT,
        time: 1_000,
        prev_acc: [0; 32],
        hashes: ReceiptHashes {
            weights_hash: [4; 32],
            evidence_hash: [5; 32],
        },
        commitments: ReceiptCommitments {
            input_commitment: [6; 32],
            output_commitment: [7; 32],
        },
    }
}

#[tokio::test]
async fn an_equivocating_worker_is_reported_and_slashed() {
    let net = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(1, [0xa1; 32])]),
    )
    .await
    .unwrap();
    let url = net.localnet.url().to_owned();
    let root = net.root.to_base64_url();
    let worker = net
        .register_worker(9, &[1], PRICE_IN, PRICE_OUT)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reporter = dir.path().join("reporter.json");
    assert!(cocoon(&url, &reporter, &["wallet", "new"]).0);
    assert!(cocoon(&url, &reporter, &["wallet", "fund", "5"]).0);

    let channel = ChannelRef {
        global_id: Network::Localnet.global_id(),
        root: net.root.clone(),
        escrow: TonAddress::new(0, [0x33; 32].into()),
        channel_id: 4,
    };
    let honest = receipt(&channel, &worker.address, 2, 5)
        .sign(&worker.signing)
        .unwrap();
    let twin = receipt(&channel, &worker.address, 2, 6)
        .sign(&worker.signing)
        .unwrap();
    let forged = receipt(&channel, &worker.address, 3, 5)
        .sign(&SigningKey::from_bytes(&[0x77; 32]))
        .unwrap();
    // Binary BOC, base64 text, hex text: every form the watcher takes.
    let a = dir.path().join("a.boc");
    std::fs::write(&a, honest.to_boc().unwrap()).unwrap();
    let b = dir.path().join("b.txt");
    std::fs::write(
        &b,
        base64::engine::general_purpose::STANDARD.encode(twin.to_boc().unwrap()),
    )
    .unwrap();
    let f = dir.path().join("forged.hex");
    std::fs::write(&f, hex::encode(forged.to_boc().unwrap())).unwrap();
    let (a, b, f) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        f.to_str().unwrap(),
    );

    // A receipt alone, or twice: nothing to report.
    let (ok, out, err) = cocoon(&url, &reporter, &["--json", "watch", "--root", &root, a, a]);
    assert!(ok, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reports"], 0, "{out}");

    // A receipt the worker did not sign is refused, naming the file; nothing is sent.
    let (ok, out, err) = cocoon(&url, &reporter, &["watch", "--root", &root, f]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("forged.hex") && err.to_lowercase().contains("signature"),
        "{err}"
    );

    let wc = WorkerClient::at(&net.chain, net.root.clone(), worker.address.clone());
    let before = wc.state().await.unwrap();
    assert_eq!(before.status, 1, "active before the report");
    let reporter_address = {
        let (ok, out, _) = cocoon(&url, &reporter, &["--json", "wallet", "show"]);
        assert!(ok);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["address"]
            .as_str()
            .unwrap()
            .parse::<TonAddress>()
            .unwrap()
    };
    let balance_before = net.chain.account(&reporter_address).await.unwrap().balance;

    // Two different receipts for one (channel, seq): reported, slashed, the reporter paid.
    let (ok, out, err) = cocoon(&url, &reporter, &["--json", "watch", "--root", &root, a, b]);
    assert!(ok, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["worker"], worker.address.to_hex(), "{out}");
    let after = wc.state().await.unwrap();
    assert_eq!((after.status, after.stake), (3, 0), "slashed");
    let balance_after = net.chain.account(&reporter_address).await.unwrap().balance;
    assert!(
        balance_after > balance_before,
        "the reporter's reward exceeds the report's fees: {balance_before} -> {balance_after}"
    );
}
