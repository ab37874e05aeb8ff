//! The protocol v2 golden vectors written by the TypeScript codec (tests/v2/vectors/*.json):
//! channel refs, receipts and vouchers decoded in Rust, compared field by field, re-encoded byte for
//! byte, their signatures reproduced from the seeds, and the receipt chain of `receipt_chain.json`
//! walked through the accumulator to the voucher the client signed — and proven included.

use base64::Engine as _;
use cocoon_sdk::channel::{
    ACC_ZERO, Accumulator, ChannelError, ChannelReceipt, ChannelRef, InclusionProof,
    SignedChannelReceipt, SignedVoucher, Voucher,
};
use cocoon_sdk::tlb::TlbType;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use tonlib_core::TonAddress;

const CHANNEL_REF: &str = include_str!("../../tests/v2/vectors/channel_ref.json");
const RECEIPT_BODY: &str = include_str!("../../tests/v2/vectors/receipt_body.json");
const SIGNED_RECEIPT: &str = include_str!("../../tests/v2/vectors/signed_receipt.json");
const VOUCHER_BODY: &str = include_str!("../../tests/v2/vectors/voucher_body.json");
const SIGNED_VOUCHER: &str = include_str!("../../tests/v2/vectors/signed_voucher.json");
const RECEIPT_CHAIN: &str = include_str!("../../tests/v2/vectors/receipt_chain.json");

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn vectors(json: &str) -> Vec<(Value, Vec<u8>)> {
    let all: Vec<Value> = serde_json::from_str(json).unwrap();
    assert!(!all.is_empty(), "no vectors");
    all.into_iter()
        .map(|v| (v["fields"].clone(), b64(v["boc"].as_str().unwrap())))
        .collect()
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hex64(v: &Value) -> [u8; 64] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn num(v: &Value) -> u128 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => u128::from(other.as_u64().unwrap()),
    }
}

fn address(v: &Value) -> TonAddress {
    let (wc, hash) = v.as_str().unwrap().split_once(':').unwrap();
    TonAddress::new(
        wc.parse().unwrap(),
        hex32(&Value::String(hash.into())).into(),
    )
}

fn channel_ref(f: &Value) -> ChannelRef {
    ChannelRef {
        global_id: i32::try_from(f["global_id"].as_i64().unwrap()).unwrap(),
        root: address(&f["root"]),
        escrow: address(&f["escrow"]),
        channel_id: u64::try_from(num(&f["channel_id"])).unwrap(),
    }
}

fn receipt(f: &Value) -> ChannelReceipt {
    ChannelReceipt {
        channel: channel_ref(&f["channel"]),
        seq: u32::try_from(num(&f["seq"])).unwrap(),
        worker: address(&f["worker"]),
        model_id: u32::try_from(num(&f["model_id"])).unwrap(),
        tokens_in: u32::try_from(num(&f["tokens_in"])).unwrap(),
        tokens_out: u32::try_from(num(&f["tokens_out"])).unwrap(),
        cost: num(&f["cost"]),
        time: u32::try_from(num(&f["time"])).unwrap(),
        prev_acc: hex32(&f["prev_acc"]),
        hashes: cocoon_sdk::receipt::ReceiptHashes {
            weights_hash: hex32(&f["hashes"]["weights_hash"]),
            evidence_hash: hex32(&f["hashes"]["evidence_hash"]),
        },
        commitments: cocoon_sdk::receipt::ReceiptCommitments {
            input_commitment: hex32(&f["commitments"]["input_commitment"]),
            output_commitment: hex32(&f["commitments"]["output_commitment"]),
        },
    }
}

fn voucher(f: &Value) -> Voucher {
    Voucher {
        channel: channel_ref(&f["channel"]),
        cumulative: num(&f["cumulative"]),
        last_seq: u32::try_from(num(&f["last_seq"])).unwrap(),
        acc: hex32(&f["acc"]),
        is_final: match &f["final"] {
            Value::Bool(b) => *b,
            other => other.as_u64().unwrap() != 0,
        },
    }
}

/// Decodes `boc`, checks it equals `expected`, and re-encodes it byte for byte.
fn roundtrip<T: TlbType + PartialEq + std::fmt::Debug>(expected: &T, boc: &[u8]) {
    let decoded = T::from_boc(boc).unwrap();
    assert_eq!(&decoded, expected);
    assert_eq!(
        decoded.to_boc().unwrap(),
        boc,
        "{} re-encodes byte for byte",
        T::NAME
    );
}

#[test]
fn channel_refs_receipts_and_vouchers_decode_and_reencode_byte_exact() {
    for (f, boc) in vectors(CHANNEL_REF) {
        roundtrip(&channel_ref(&f), &boc);
    }
    for (f, boc) in vectors(RECEIPT_BODY) {
        roundtrip(&receipt(&f), &boc);
    }
    for (f, boc) in vectors(SIGNED_RECEIPT) {
        let signed = SignedChannelReceipt {
            signature: hex64(&f["signature"]),
            body: receipt(&f["body"]),
        };
        roundtrip(&signed, &boc);
    }
    for (f, boc) in vectors(VOUCHER_BODY) {
        roundtrip(&voucher(&f), &boc);
    }
    for (f, boc) in vectors(SIGNED_VOUCHER) {
        let signed = SignedVoucher {
            signature: hex64(&f["signature"]),
            body: voucher(&f["body"]),
        };
        roundtrip(&signed, &boc);
    }
}

#[test]
fn trailing_data_and_a_v1_tag_are_refused() {
    let (f, boc) = vectors(RECEIPT_BODY).remove(0);
    let body = receipt(&f);
    // A v1 receipt tag ("rcpt") in place of "rcv2".
    let mut cell = body.to_cell().unwrap();
    let mut bytes = cocoon_sdk::tlb::cell_to_boc(&cell).unwrap();
    assert_eq!(bytes, boc);
    let v1 = 0x7263_7074u32.to_be_bytes();
    let at = bytes
        .windows(4)
        .position(|w| w == 0x7263_7632u32.to_be_bytes())
        .unwrap();
    bytes[at..at + 4].copy_from_slice(&v1);
    assert!(ChannelReceipt::from_boc(&bytes).is_err());
    // One bit too many.
    let mut b = tonlib_core::cell::CellBuilder::new();
    body.store(&mut b).unwrap();
    b.store_bit(true).unwrap();
    cell = b.build().unwrap();
    assert!(ChannelReceipt::from_cell(&cell).is_err());
}

#[test]
fn the_receipt_chain_walks_to_the_signed_voucher_and_proves_inclusion() {
    let chain: Value = serde_json::from_str(RECEIPT_CHAIN).unwrap();
    let worker_key = SigningKey::from_bytes(&hex32(&chain["receipt_key_seed"]));
    let client_key = SigningKey::from_bytes(&hex32(&chain["voucher_key_seed"]));
    let steps = chain["steps"].as_array().unwrap();
    assert!(steps.len() >= 2);

    let first = receipt(&steps[0]["receipt"]["body"]);
    let price_in = 1_000u128;
    let price_out = 3_000u128;
    assert_eq!(
        first.expected_cost(price_in, price_out).unwrap(),
        first.cost,
        "vector prices"
    );
    let mut acc = Accumulator::new(first.channel.clone(), price_in, price_out);
    let mut hashes = Vec::new();
    for step in steps {
        let body = receipt(&step["receipt"]["body"]);
        // The worker's signature is reproduced from its seed, and verifies.
        let signed = body.clone().sign(&worker_key).unwrap();
        assert_eq!(signed.signature, hex64(&step["receipt"]["signature"]));
        signed
            .verify_signature(&worker_key.verifying_key().to_bytes())
            .unwrap();
        assert_eq!(
            signed.to_boc().unwrap(),
            b64(step["receipt_boc"].as_str().unwrap())
        );
        assert_eq!(body.hash().unwrap(), hex32(&step["receipt_hash"]));
        assert_eq!(acc.append(&body).unwrap(), hex32(&step["acc_after"]));
        assert_eq!(acc.cumulative(), num(&step["cumulative"]));
        hashes.push(body.hash().unwrap());
    }

    // The client's voucher over the last receipt: same accumulator, seq and cumulative.
    let v = voucher(&chain["voucher"]["body"]);
    assert_eq!(
        (v.last_seq, v.acc, v.cumulative),
        (acc.seq(), acc.acc(), acc.cumulative())
    );
    let signed = v.clone().sign(&client_key).unwrap();
    assert_eq!(signed.signature, hex64(&chain["voucher"]["signature"]));
    assert_eq!(
        signed.to_boc().unwrap(),
        b64(chain["voucher_boc"].as_str().unwrap())
    );
    signed
        .verify_signature(&client_key.verifying_key().to_bytes())
        .unwrap();
    assert!(matches!(
        signed.verify_signature(&worker_key.verifying_key().to_bytes()),
        Err(ChannelError::BadSignature { what: "voucher" })
    ));
    // The final flag is signed: flipping it (turning a plain voucher into one that closes the
    // channel, or back) breaks the signature.
    let mut flipped = signed.clone();
    flipped.body.is_final = !flipped.body.is_final;
    assert!(matches!(
        flipped.verify_signature(&client_key.verifying_key().to_bytes()),
        Err(ChannelError::BadSignature { what: "voucher" })
    ));

    // Every receipt is provable against what a settlement of the voucher logs.
    for (i, step) in steps.iter().enumerate() {
        let body = receipt(&step["receipt"]["body"]);
        let proof = InclusionProof {
            later: hashes[i + 1..].to_vec(),
        };
        proof.verify(&body, v.last_seq, &v.acc).unwrap();
        // A proof one hash short, or against another accumulator, fails.
        if !proof.later.is_empty() {
            let short = InclusionProof {
                later: proof.later[1..].to_vec(),
            };
            assert!(matches!(
                short.verify(&body, v.last_seq, &v.acc),
                Err(ChannelError::NotIncluded)
            ));
        }
        assert!(matches!(
            proof.verify(&body, v.last_seq, &ACC_ZERO),
            Err(ChannelError::NotIncluded)
        ));
    }
}

#[test]
fn the_accumulator_refuses_what_does_not_continue_the_channel() {
    let chain: Value = serde_json::from_str(RECEIPT_CHAIN).unwrap();
    let steps = chain["steps"].as_array().unwrap();
    let first = receipt(&steps[0]["receipt"]["body"]);
    let second = receipt(&steps[1]["receipt"]["body"]);
    let fresh = || Accumulator::new(first.channel.clone(), 1_000, 3_000);

    // Out of order.
    let mut a = fresh();
    assert!(matches!(
        a.append(&second),
        Err(ChannelError::WrongSeq {
            got: 2,
            expected: 1
        })
    ));
    // Another channel (network, Escrow or id).
    for tweak in [
        |r: &mut ChannelReceipt| r.channel.global_id = -3,
        |r: &mut ChannelReceipt| r.channel.channel_id += 1,
        |r: &mut ChannelReceipt| r.channel.escrow = r.channel.root.clone(),
    ] {
        let mut r = first.clone();
        tweak(&mut r);
        assert!(matches!(
            fresh().append(&r),
            Err(ChannelError::WrongChannel { .. })
        ));
    }
    // A forged history.
    let mut r = first.clone();
    r.prev_acc = [9; 32];
    assert!(matches!(
        fresh().append(&r),
        Err(ChannelError::BrokenChain { seq: 1 })
    ));
    // Above the channel's prices (a worker that raised its price after the open).
    let mut r = first.clone();
    r.cost += 1;
    assert!(matches!(
        fresh().append(&r),
        Err(ChannelError::WrongCost { .. })
    ));
    // A refused receipt changes nothing; the right one still goes in.
    let mut a = fresh();
    assert!(a.append(&r).is_err());
    assert_eq!((a.seq(), a.acc(), a.cumulative()), (0, ACC_ZERO, 0));
    a.append(&first).unwrap();
    a.append(&second).unwrap();
    assert_eq!(a.seq(), 2);
}
