//! Receipt cells (layout fixed in contracts/schema.tlb), signing, and the client-side check.

use cocoon_sdk::receipt::{
    RECEIPT_TAG, ReceiptBody, ReceiptCommitments, ReceiptError, ReceiptExpectation, ReceiptHashes,
    SignedReceipt, check_cost, check_receipt, expected_cost,
};
use cocoon_sdk::seal::{EncryptionKeyPair, JobContext, open_input, seal_input};
use cocoon_sdk::tlb::{CellBuilder, TlbError, TlbType};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use tonlib_core::TonAddress;

const PRICE_IN: u128 = 1_000;
const PRICE_OUT: u128 = 3_000;

fn worker_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn body() -> ReceiptBody {
    ReceiptBody {
        escrow: TonAddress::new(0, [0xE5; 32].into()),
        job_id: 42,
        worker: TonAddress::new(0, [0xAA; 32].into()),
        model_id: 7,
        tokens_in: 120,
        tokens_out: 480,
        cost: 120 * PRICE_IN + 480 * PRICE_OUT,
        time: 1_764_000_000,
        hashes: ReceiptHashes {
            weights_hash: [1; 32],
            evidence_hash: [2; 32],
        },
        commitments: ReceiptCommitments {
            input_commitment: [3; 32],
            output_commitment: [4; 32],
        },
    }
}

fn expectation(b: &ReceiptBody) -> ReceiptExpectation {
    ReceiptExpectation {
        escrow: b.escrow.clone(),
        job_id: b.job_id,
        worker: b.worker.clone(),
        model_id: b.model_id,
        receipt_key: worker_key().verifying_key().to_bytes(),
        evidence_hash: b.hashes.evidence_hash,
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        input_commitment: b.commitments.input_commitment,
        output_commitment: b.commitments.output_commitment,
        weights_hash: Some(b.hashes.weights_hash),
    }
}

#[test]
fn signed_receipt_passes_the_client_check() {
    let receipt = body().sign(&worker_key()).unwrap();
    receipt
        .verify_signature(&worker_key().verifying_key().to_bytes())
        .unwrap();
    check_receipt(&receipt, &expectation(&receipt.body)).unwrap();
}

#[test]
fn body_cell_starts_with_the_rcpt_tag() {
    let cell = body().to_cell().unwrap();
    assert_eq!(cell.data()[..4], RECEIPT_TAG.to_be_bytes());
    assert_eq!(cell.references().len(), 2);
}

#[test]
fn forged_signature_rejected() {
    let forger = SigningKey::from_bytes(&[8; 32]);
    let forged = body().sign(&forger).unwrap();
    let err = check_receipt(&forged, &expectation(&forged.body)).unwrap_err();
    assert!(matches!(err, ReceiptError::SignatureInvalid), "{err}");
    let mut flipped = body().sign(&worker_key()).unwrap();
    flipped.signature[10] ^= 1;
    let err = flipped
        .verify_signature(&worker_key().verifying_key().to_bytes())
        .unwrap_err();
    assert!(matches!(err, ReceiptError::SignatureInvalid), "{err}");
}

#[test]
fn field_changed_after_signing_rejected() {
    let exp = expectation(&body());
    let changes: [fn(&mut ReceiptBody); 6] = [
        |b| b.tokens_out += 1,
        |b| b.cost += 1,
        |b| b.job_id += 1,
        |b| b.time += 1,
        |b| b.hashes.weights_hash[0] ^= 1,
        |b| b.commitments.output_commitment[31] ^= 1,
    ];
    for change in changes {
        let mut receipt = body().sign(&worker_key()).unwrap();
        change(&mut receipt.body);
        let err = receipt.verify_signature(&exp.receipt_key).unwrap_err();
        assert!(matches!(err, ReceiptError::SignatureInvalid), "{err}");
    }
}

#[test]
fn cost_mismatch_rejected() {
    let mut b = body();
    b.cost += 1;
    let receipt = b.sign(&worker_key()).unwrap();
    let err = check_receipt(&receipt, &expectation(&receipt.body)).unwrap_err();
    assert!(
        matches!(err, ReceiptError::CostMismatch { expected, actual } if actual == expected + 1),
        "{err}"
    );
    let mut under = body();
    under.cost -= 1;
    assert!(check_cost(&under.sign(&worker_key()).unwrap(), PRICE_IN, PRICE_OUT).is_err());
}

#[test]
fn cost_overflow_is_an_error() {
    assert!(matches!(
        expected_cost(u32::MAX, 0, u128::MAX, 0),
        Err(ReceiptError::CostOverflow)
    ));
    assert_eq!(expected_cost(2, 3, 5, 7).unwrap(), 31);
}

#[test]
fn receipt_for_another_job_rejected() {
    let receipt = body().sign(&worker_key()).unwrap();
    let mut exp = expectation(&receipt.body);
    exp.job_id = 43;
    assert!(matches!(
        check_receipt(&receipt, &exp),
        Err(ReceiptError::FieldMismatch {
            field: "job_id",
            ..
        })
    ));
    let mut exp = expectation(&receipt.body);
    exp.escrow = TonAddress::new(0, [0xE6; 32].into());
    assert!(matches!(
        check_receipt(&receipt, &exp),
        Err(ReceiptError::FieldMismatch {
            field: "escrow",
            ..
        })
    ));
    let mut exp = expectation(&receipt.body);
    exp.worker = TonAddress::new(-1, [0xAA; 32].into());
    assert!(matches!(
        check_receipt(&receipt, &exp),
        Err(ReceiptError::FieldMismatch {
            field: "worker",
            ..
        })
    ));
    let mut exp = expectation(&receipt.body);
    exp.model_id = 8;
    assert!(matches!(
        check_receipt(&receipt, &exp),
        Err(ReceiptError::FieldMismatch {
            field: "model_id",
            ..
        })
    ));
    let mut exp = expectation(&receipt.body);
    exp.evidence_hash = [9; 32];
    assert!(matches!(
        check_receipt(&receipt, &exp),
        Err(ReceiptError::FieldMismatch {
            field: "evidence_hash",
            ..
        })
    ));
}

#[test]
fn output_commitment_mismatch_rejected() {
    let receipt = body().sign(&worker_key()).unwrap();
    let mut exp = expectation(&receipt.body);
    exp.output_commitment = [5; 32];
    assert!(matches!(
        check_receipt(&receipt, &exp),
        Err(ReceiptError::OutputCommitmentMismatch)
    ));
}

#[test]
fn wrong_registered_key_rejected() {
    let receipt = body().sign(&worker_key()).unwrap();
    let mut exp = expectation(&receipt.body);
    exp.receipt_key = SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes();
    assert!(matches!(
        check_receipt(&receipt, &exp),
        Err(ReceiptError::SignatureInvalid)
    ));
}

#[test]
fn decode_rejects_wrong_tag_and_trailing_data() {
    let cell = body().to_cell().unwrap();
    let mut b = CellBuilder::new();
    b.store_u32(32, 0x7263_7075).unwrap();
    b.store_bits(cell.bit_len() - 32, &cell.data()[4..])
        .unwrap();
    for r in cell.references() {
        b.store_reference(r).unwrap();
    }
    let err = ReceiptBody::from_cell(&b.build().unwrap()).unwrap_err();
    assert!(matches!(err, TlbError::WrongTag { .. }), "{err}");

    let mut b = CellBuilder::new();
    b.store_cell_data(&cell).unwrap();
    b.store_bit(true).unwrap();
    for r in cell.references() {
        b.store_reference(r).unwrap();
    }
    let err = ReceiptBody::from_cell(&b.build().unwrap()).unwrap_err();
    assert!(matches!(err, TlbError::TrailingData { .. }), "{err}");

    let boc = body().sign(&worker_key()).unwrap().to_boc().unwrap();
    assert!(SignedReceipt::from_boc(&boc[..boc.len() - 1]).is_err());
}

/// The whole path: seal → open → answer → receipt → client check.
#[test]
fn end_to_end_sealed_job_receipt_checks() {
    let job = JobContext {
        escrow: TonAddress::new(0, [0xE5; 32].into()),
        job_id: 9,
        model_id: 3,
    };
    let enc = EncryptionKeyPair::from_seed(&[5; 32]);
    let client = seal_input(b"2+2?", &[enc.public_key()], &job).unwrap();

    let mut opened = open_input(&client.sealed, &enc, &job).unwrap();
    let chunk = opened.response.seal_chunk(b"4", true).unwrap();
    let receipt = ReceiptBody {
        escrow: job.escrow.clone(),
        job_id: job.job_id,
        worker: TonAddress::new(0, [0xAA; 32].into()),
        model_id: job.model_id,
        tokens_in: 3,
        tokens_out: 1,
        cost: expected_cost(3, 1, PRICE_IN, PRICE_OUT).unwrap(),
        time: 1_764_000_000,
        hashes: ReceiptHashes {
            weights_hash: [1; 32],
            evidence_hash: [2; 32],
        },
        commitments: ReceiptCommitments {
            input_commitment: opened.input_commitment,
            output_commitment: opened.response.output_commitment().unwrap(),
        },
    }
    .sign(&worker_key())
    .unwrap();
    let receipt = SignedReceipt::from_boc(&receipt.to_boc().unwrap()).unwrap();

    let mut opener = client.response_opener(&enc.public_key()).unwrap();
    assert_eq!(opener.open_chunk(&chunk).unwrap(), b"4");
    let received = opener.finish().unwrap();
    let exp = ReceiptExpectation {
        escrow: job.escrow.clone(),
        job_id: job.job_id,
        worker: TonAddress::new(0, [0xAA; 32].into()),
        model_id: job.model_id,
        receipt_key: worker_key().verifying_key().to_bytes(),
        evidence_hash: [2; 32],
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        input_commitment: client.input_commitment,
        output_commitment: received,
        weights_hash: None,
    };
    check_receipt(&receipt, &exp).unwrap();
}

fn arb_address() -> impl Strategy<Value = TonAddress> {
    (any::<i8>(), proptest::array::uniform32(any::<u8>()))
        .prop_map(|(wc, h)| TonAddress::new(wc.into(), h.into()))
}

fn arb_body() -> impl Strategy<Value = ReceiptBody> {
    (
        arb_address(),
        any::<u64>(),
        arb_address(),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            0u128..(1u128 << 120),
            any::<u32>(),
        ),
        proptest::array::uniform32(any::<u8>()),
        proptest::array::uniform32(any::<u8>()),
    )
        .prop_map(
            |(escrow, job_id, worker, (model_id, tokens_in, tokens_out, cost, time), h1, h2)| {
                ReceiptBody {
                    escrow,
                    job_id,
                    worker,
                    model_id,
                    tokens_in,
                    tokens_out,
                    cost,
                    time,
                    hashes: ReceiptHashes {
                        weights_hash: h1,
                        evidence_hash: h2,
                    },
                    commitments: ReceiptCommitments {
                        input_commitment: h2,
                        output_commitment: h1,
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn receipt_round_trips(body in arb_body(), sig in proptest::collection::vec(any::<u8>(), 64)) {
        let decoded = ReceiptBody::from_cell(&body.to_cell().unwrap()).unwrap();
        prop_assert_eq!(&decoded, &body);
        let signed = SignedReceipt { signature: sig.try_into().unwrap(), body };
        let boc = signed.to_boc().unwrap();
        let decoded = SignedReceipt::from_boc(&boc).unwrap();
        prop_assert_eq!(decoded.to_boc().unwrap(), boc);
        prop_assert_eq!(decoded, signed);
    }
}
