//! The localnet server's toncenter surface as other clients (relayer, `@ton/ton`) see it: v2 REST
//! and jsonRPC, newest-first paging of `getTransactions`, and its errors.

use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{OutMessage, SendOptions, WalletKind};
use serde_json::{Value, json};

use cocoon_testkit::chain::{funded_wallet, start_localnet};

#[tokio::test]
async fn v2_rest_jsonrpc_paging_and_errors() {
    let net = start_localnet().await.unwrap();
    let chain = net.client().unwrap();
    let http = reqwest::Client::new();
    let w = funded_wallet(&net, WalletKind::V5r1, 2 * NANO_PER_TON)
        .await
        .unwrap();
    for v in [1u128, 2] {
        w.send_and_confirm(
            &chain,
            &[OutMessage::transfer(w.address().clone(), v, false)],
            &SendOptions::default(),
        )
        .await
        .unwrap();
    }
    let addr = w.address().to_base64_url();

    // jsonRPC
    let r: Value = http
        .post(format!("{}/api/v2/jsonRPC", net.url()))
        .json(&json!({"id": 7, "jsonrpc": "2.0", "method": "getWalletInformation", "params": {"address": addr}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["id"], 7);
    assert_eq!(r["result"]["seqno"], 2);
    assert_eq!(r["result"]["wallet"], true);

    // getTransactions: newest first; `lt`+`hash` start a page, `to_lt` stops it.
    let url = format!("{}/api/v2/getTransactions", net.url());
    let all: Value = http
        .get(&url)
        .query(&[("address", addr.as_str()), ("limit", "100")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let txs = all["result"].as_array().unwrap();
    // faucet, 2 externals, 2 self-transfers
    assert_eq!(txs.len(), 5);
    let lts: Vec<u64> = txs
        .iter()
        .map(|t| t["transaction_id"]["lt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(lts.windows(2).all(|p| p[0] > p[1]), "{lts:?}");
    let page: Value = http
        .get(&url)
        .query(&[
            ("address", addr.as_str()),
            ("limit", "2"),
            ("lt", &lts[1].to_string()),
            ("to_lt", &lts[4].to_string()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page_lts: Vec<u64> = page["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transaction_id"]["lt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(page_lts, vec![lts[1], lts[2]]);

    // Errors: bad address (400), unknown method (404), malformed BOC (400), all with ok:false.
    for (path, status) in [
        (
            format!("{}/api/v2/getAddressBalance?address=nope", net.url()),
            400,
        ),
        (format!("{}/api/v2/getBlockHeader", net.url()), 404),
    ] {
        let r = http.get(&path).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["ok"], false);
    }
    let r = http
        .post(format!("{}/api/v2/sendBoc", net.url()))
        .json(&json!({"boc": "AAAA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = http
        .post(format!("{}/localnet/faucet", net.url()))
        .json(&json!({"address": addr}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "faucet without amount");
}
