//! An Escrow's free balance, rebuilt from its transactions as the chain API (toncenter v3)
//! reports them: what end-to-end tests check the Escrow's books against, to the nanoTON.

use cocoon_sdk::tlb::TonAddress;
use serde_json::Value;

/// `request_close#c0c02307`, the owner's close request, as toncenter v3 names an opcode.
pub const OP_REQUEST_CLOSE: &str = "0xc0c02307";

/// The account's transactions after `after_lt`, oldest first, as toncenter v3 reports them (the
/// raw JSON: the books need the storage phase, which the SDK's `Transaction` does not carry).
pub async fn transactions_after(api: &str, account: &TonAddress, after_lt: u64) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("{api}/api/v3/transactions"))
        .query(&[
            ("account", account.to_hex()),
            ("start_lt", (after_lt + 1).to_string()),
            ("sort", "asc".to_owned()),
            ("limit", "1000".to_owned()),
            ("offset", "0".to_owned()),
        ])
        .send()
        .await
        .expect("the chain API answers")
        .json()
        .await
        .expect("the chain API answers JSON");
    v["transactions"]
        .as_array()
        .expect("a transactions array")
        .clone()
}

/// A nanoTON amount toncenter prints as a decimal string.
pub fn nano(v: &Value) -> u128 {
    v.as_str()
        .unwrap_or_else(|| panic!("a nanoTON string, not {v}"))
        .parse()
        .unwrap()
}

/// What `txs` did to an Escrow's free balance besides the channels' releases, as
/// `(left, storage)`: the owner's close requests leave their unspent value (`in - total_fees`);
/// every other transaction (settlements, closes) spends only its storage fee. Panics on an
/// aborted transaction: none of an Escrow's may abort.
pub fn free_balance_effects<'a>(txs: impl IntoIterator<Item = &'a Value>) -> (u128, u128) {
    let (mut left, mut storage) = (0u128, 0u128);
    for t in txs {
        assert_eq!(t["description"]["aborted"], false, "{t}");
        if t["in_msg"]["opcode"].as_str() == Some(OP_REQUEST_CLOSE) {
            left += nano(&t["in_msg"]["value"]) - nano(&t["total_fees"]);
        } else {
            storage += nano(&t["description"]["storage_ph"]["storage_fees_collected"]);
        }
    }
    (left, storage)
}
