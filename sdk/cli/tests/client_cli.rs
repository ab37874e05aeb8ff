//! The app developer's `cocoon` commands (chat, embed, models, job verify) end to end against
//! localnet and the in-test relayer: streamed text, JSON output, receipts checked, settlement
//! verified from a saved receipt, and typed failures.

mod cli_run;

use cli_run::{cocoon, ok_json};

use cocoon_cli::commands::client::parse_receipt;
use cocoon_sdk::contracts::WorkerClient;
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::tlb::TlbType;
use cocoon_sdk::wallet::SendOptions;
use serde_json::Value;

use cocoon_testkit::{DevChain, FakeRelayer};

#[tokio::test]
async fn chat_embed_models_and_verify_from_the_command_line() {
    let net = DevChain::start(&[SMOLLM2_135M, ALL_MINILM_L6_V2])
        .await
        .unwrap();
    let relayer = FakeRelayer::start().await;
    let a = net.register_worker(1, &[1, 2], 1_000, 3_000).await.unwrap();
    relayer.list(&a, a.info());
    let url = net.localnet.url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("client.json");
    let root = net.root.to_hex();
    let base = ["--root", root.as_str(), "--relayer", relayer.url.as_str()];
    let with = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(base.iter().map(|s| s.to_string()));
        v
    };

    ok_json(&url, &wallet, &["wallet", "new"]).await;
    ok_json(&url, &wallet, &["wallet", "fund", "10"]).await;
    ok_json(&url, &wallet, &["escrow", "deposit", "--root", &root, "2"]).await;

    // --- chat, text mode: the answer on stdout, the receipt summary and the warning on stderr
    let args = [with(&["chat"]), vec!["hello there".into()]].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = cocoon(&url, &wallet, &args).await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.trim_end(), "echo: hello there");
    assert!(err.contains("UNATTESTED (SIMULATED TEE)"), "{err}");
    assert!(err.contains("receipt "), "{err}");

    // --- chat, JSON: everything needed to verify later
    let args = [
        with(&["chat", "--max-tokens", "8"]),
        vec!["hello there".into()],
    ]
    .concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let j = ok_json(&url, &wallet, &args).await;
    assert_eq!(j["text"], "echo: hello there ");
    assert_eq!(j["unattested"], true);
    assert_eq!(j["job"]["job_id"], 2);
    assert_eq!(j["usage"]["completion_tokens"], 3);
    let receipt_b64 = j["receipt_boc"].as_str().unwrap().to_owned();
    let receipt = parse_receipt(&receipt_b64).unwrap();
    assert_eq!(
        hex::encode(receipt.body.signing_hash().unwrap()),
        j["receipt_hash"].as_str().unwrap()
    );
    assert_eq!(
        receipt.body.cost.to_string(),
        j["cost_nano"].as_str().unwrap()
    );

    // --- embed
    let args = [with(&["embed"]), vec!["ab".into(), "cde".into()]].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = ok_json(&url, &wallet, &args).await;
    assert_eq!(e["model"], ALL_MINILM_L6_V2.name);
    assert_eq!(e["embeddings"][1][0], 3.0);

    // --- models, with their verified workers
    let args = with(&["models", "--workers"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = ok_json(&url, &wallet, &args).await;
    let models = m["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["name"], SMOLLM2_135M.name);
    assert_eq!(models[0]["workers"], 1);
    assert_eq!(models[0]["min_price_out_nano"], "3000");
    assert_eq!(
        models[0]["verified_workers"][0]["attestation"],
        "UNATTESTED (SIMULATED TEE)"
    );

    // --- models without a relayer: Root's registry, read from the chain alone
    let m = ok_json(&url, &wallet, &["models", "--root", root.as_str()]).await;
    let models = m["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["name"], SMOLLM2_135M.name);
    assert!(models[0].get("workers").is_none());

    // --- job verify: not settled yet (short wait), then settled after the receipt goes on-chain
    let mut args = with(&["job", "verify", "--timeout", "1"]);
    args.extend(["--receipt".to_owned(), receipt_b64.clone()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = cocoon(&url, &wallet, &argv).await;
    assert!(!ok && err.contains("no settlement"), "{err}");
    WorkerClient::for_owner(&net.chain, &net.root, a.owner.address())
        .await
        .unwrap()
        .submit_receipts(&a.owner, vec![receipt.clone()], &SendOptions::default())
        .await
        .unwrap();
    let v = ok_json(&url, &wallet, &argv).await;
    assert_eq!(v["job"]["job_id"], 2);
    assert_eq!(
        v["settlement"]["cost_nano"].as_str().unwrap(),
        receipt.body.cost.to_string()
    );

    // --- a receipt altered after signing is refused before any chain lookup succeeds
    let mut forged = receipt.clone();
    forged.body.cost += 1;
    let forged_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(forged.to_boc().unwrap())
    };
    let last = argv.len() - 1;
    let mut forged_argv = argv.clone();
    forged_argv[last] = &forged_b64;
    let (ok, _, err) = cocoon(&url, &wallet, &forged_argv).await;
    assert!(!ok && err.contains("signature"), "{err}");

    // --- job status: answered by the relayer, settled (no longer open) on-chain; unknown job
    let args = with(&["job", "status", "--job", "2"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let st = ok_json(&url, &wallet, &args).await;
    assert_eq!(st["relayer"]["state"], "answered");
    assert_eq!(st["open_on_chain"], false);
    let args = with(&["job", "status", "--job", "1"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let st = ok_json(&url, &wallet, &args).await;
    assert_eq!(st["open_on_chain"], true, "job 1 was never settled");
    let args = with(&["job", "status", "--job", "99"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let st = ok_json(&url, &wallet, &args).await;
    assert_eq!(st["relayer"], Value::Null);

    // --- typed failures
    let args = [with(&["chat", "--model", "gpt-4"]), vec!["hi".into()]].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = cocoon(&url, &wallet, &args).await;
    assert!(!ok && err.contains("unknown model"), "{err}");
    let args = [with(&["chat", "--max-cost", "100"]), vec!["hi".into()]].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = cocoon(&url, &wallet, &args).await;
    assert!(!ok && err.contains("escrow balance too low"), "{err}");
}
