//! `cocoon channel open|show|top-up|close` end to end against a localnet with a development
//! Root v2: the binary opens a channel (creating the Escrow), a settlement signed with the voucher
//! key the binary created shows up in `show`, a top-up, a close request, and the close after the
//! grace period.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use cocoon_sdk::channel::{Accumulator, ChannelReceipt, ChannelRef, Voucher};
use cocoon_sdk::contracts::v2::{EscrowClient, WorkerClient};
use cocoon_sdk::receipt::{ReceiptCommitments, ReceiptHashes};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::SendOptions;
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::{DevChainV2, dev};
use ed25519_dalek::SigningKey;
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
async fn channel_commands_open_show_top_up_and_close() {
    let net = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(1, [0xa1; 32])]),
    )
    .await
    .unwrap();
    let url = net.localnet.url().to_owned();
    let root = net.root.to_base64_url();
    let worker = net.register_worker(7, &[1], 1_000, 3_000).await.unwrap();
    let relayer = net.funded_wallet(NANO_PER_TON).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client.json");
    ok_json(&url, &client, &["wallet", "new"]);
    ok_json(&url, &client, &["wallet", "fund", "20"]);

    // Open: creates the Escrow, the voucher key beside the wallet file, and the channel.
    let o = ok_json(
        &url,
        &client,
        &[
            "channel",
            "open",
            "--root",
            &root,
            "--worker-owner",
            &worker.owner.address().to_base64_url(),
            "--relayer",
            &relayer.address().to_base64_url(),
            "--relayer-fee-bps",
            "500",
            "1",
        ],
    );
    let id: u64 = o["channel_id"].as_str().unwrap().parse().unwrap();
    let escrow = TonAddress::from_str(o["escrow"].as_str().unwrap()).unwrap();
    assert_eq!(
        TonAddress::from_str(o["worker"].as_str().unwrap()).unwrap(),
        worker.address
    );
    let seed = std::fs::read_to_string(client.with_extension("voucher-key")).unwrap();
    let voucher_key =
        SigningKey::from_bytes(&hex::decode(seed.trim()).unwrap().try_into().unwrap());
    let id_s = id.to_string();
    let show = |wallet: &Path| ok_json(&url, wallet, &["channel", "show", "--root", &root, &id_s]);
    let s = show(&client);
    assert_eq!(s["amount_nano"], "1000000000");
    assert_eq!(
        (s["last_seq"].as_u64(), s["price_in"].as_str()),
        (Some(0), Some("1000"))
    );
    assert_eq!(
        s["voucher_key"],
        hex::encode(voucher_key.verifying_key().to_bytes())
    );
    assert_eq!(s["settlements"], Value::Array(vec![]));

    // A request settled by the worker with a voucher signed by the key the binary created.
    let chain = &net.chain;
    let ec = EscrowClient::at(chain, net.root.clone(), escrow.clone());
    let channel = ChannelRef {
        global_id: ec.global_id().await.unwrap(),
        root: net.root.clone(),
        escrow: escrow.clone(),
        channel_id: id,
    };
    let mut acc = Accumulator::new(channel.clone(), 1_000, 3_000);
    let receipt = ChannelReceipt {
        channel: channel.clone(),
        seq: 1,
        worker: worker.address.clone(),
        model_id: 1,
        tokens_in: 10,
        tokens_out: 20,
        cost: 10 * 1_000 + 20 * 3_000,
        time: net.now().await.unwrap(),
        prev_acc: acc.acc(),
        hashes: ReceiptHashes {
            weights_hash: [1; 32],
            evidence_hash: worker.evidence.hash(),
        },
        commitments: ReceiptCommitments {
            input_commitment: [2; 32],
            output_commitment: [3; 32],
        },
    }
    .sign(&worker.signing)
    .unwrap();
    acc.append(&receipt.body).unwrap();
    let voucher = Voucher {
        channel,
        cumulative: acc.cumulative(),
        last_seq: 1,
        acc: acc.acc(),
        is_final: false,
    }
    .sign(&voucher_key)
    .unwrap();
    WorkerClient::at(chain, net.root.clone(), worker.address.clone())
        .submit_settlement(&worker.owner, &receipt, &voucher, &SendOptions::default())
        .await
        .unwrap();
    let s = show(&client);
    assert_eq!(
        (s["last_seq"].as_u64(), s["settled_nano"].as_str()),
        (Some(1), Some("70000"))
    );
    assert_eq!(s["settlements"][0]["acc"], hex::encode(acc.acc()));

    // Top up.
    ok_json(
        &url,
        &client,
        &["channel", "top-up", "--root", &root, &id_s, "0.5"],
    );
    assert_eq!(show(&client)["amount_nano"], "1500000000");

    // Close: first a close request (the worker keeps the grace period), then the close.
    let c = ok_json(&url, &client, &["channel", "close", "--root", &root, &id_s]);
    assert_eq!(c["op"], "request close");
    let (ok, _, err) = cocoon(&url, &client, &["channel", "close", "--root", &root, &id_s]);
    assert!(!ok && err.contains("already requested"), "{err}");
    net.localnet
        .advance_time(u64::from(dev::GRACE_PERIOD) + 1)
        .await
        .unwrap();
    let c = ok_json(&url, &client, &["channel", "close", "--root", &root, &id_s]);
    assert_eq!(c["op"], "close channel");
    let (ok, _, err) = cocoon(&url, &client, &["channel", "show", "--root", &root, &id_s]);
    assert!(!ok && err.contains("no channel"), "{err}");
    // What the channel did not spend is free again.
    assert!(
        ec.state().await.unwrap().free
            > NANO_PER_TON + NANO_PER_TON / 2 - 70_000 - NANO_PER_TON / 100
    );
}
