//! The client-side receipt check: what a client must see before it accepts a receipt for its job.

use tonlib_core::TonAddress;

use super::body::SignedReceipt;
use super::error::{ReceiptError, Result};

/// What the client knows independently of the receipt: its job, the worker's on-chain record and
/// the answer it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptExpectation {
    /// The client's Escrow.
    pub escrow: TonAddress,
    /// The job id it opened.
    pub job_id: u64,
    /// The Worker contract chosen (or reported by the relayer and then read from chain).
    pub worker: TonAddress,
    /// The model requested.
    pub model_id: u32,
    /// The receipt key registered in the Worker contract.
    pub receipt_key: [u8; 32],
    /// The evidence hash registered in the Worker contract.
    pub evidence_hash: [u8; 32],
    /// Registered price per input token, nanoTON.
    pub price_in: u128,
    /// Registered price per output token, nanoTON.
    pub price_out: u128,
    /// sha256 of the sealed input the client sent (its OpenJob commitment).
    pub input_commitment: [u8; 32],
    /// The output commitment of the answer received (from `ResponseOpener::finish`).
    pub output_commitment: [u8; 32],
    /// The model's weights hash from Root's registry, when the client checks it.
    pub weights_hash: Option<[u8; 32]>,
}

/// tokens_in × price_in + tokens_out × price_out, or `CostOverflow`.
pub fn expected_cost(
    tokens_in: u32,
    tokens_out: u32,
    price_in: u128,
    price_out: u128,
) -> Result<u128> {
    let input = u128::from(tokens_in).checked_mul(price_in);
    let output = u128::from(tokens_out).checked_mul(price_out);
    input
        .zip(output)
        .and_then(|(i, o)| i.checked_add(o))
        .ok_or(ReceiptError::CostOverflow)
}

/// Security rule: the cost equals the tokens at the worker's registered prices, so a worker can
/// never charge more than it published.
pub fn check_cost(receipt: &SignedReceipt, price_in: u128, price_out: u128) -> Result<()> {
    let b = &receipt.body;
    let expected = expected_cost(b.tokens_in, b.tokens_out, price_in, price_out)?;
    if b.cost != expected {
        return Err(ReceiptError::CostMismatch {
            expected,
            actual: b.cost,
        });
    }
    Ok(())
}

fn same<T: PartialEq + std::fmt::Display>(
    field: &'static str,
    expected: T,
    actual: T,
) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(ReceiptError::FieldMismatch {
            field,
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// Security rule: the receipt is about this job — escrow, job id, worker, model, evidence, input.
pub fn check_job_fields(receipt: &SignedReceipt, exp: &ReceiptExpectation) -> Result<()> {
    let b = &receipt.body;
    same("escrow", exp.escrow.to_hex(), b.escrow.to_hex())?;
    same("job_id", exp.job_id, b.job_id)?;
    same("worker", exp.worker.to_hex(), b.worker.to_hex())?;
    same("model_id", exp.model_id, b.model_id)?;
    same(
        "evidence_hash",
        hex::encode(exp.evidence_hash),
        hex::encode(b.hashes.evidence_hash),
    )?;
    same(
        "input_commitment",
        hex::encode(exp.input_commitment),
        hex::encode(b.commitments.input_commitment),
    )?;
    if let Some(weights) = exp.weights_hash {
        same(
            "weights_hash",
            hex::encode(weights),
            hex::encode(b.hashes.weights_hash),
        )?;
    }
    Ok(())
}

/// Security rule: the receipt commits to the answer the client actually received.
pub fn check_output_commitment(receipt: &SignedReceipt, received: &[u8; 32]) -> Result<()> {
    if receipt.body.commitments.output_commitment != *received {
        return Err(ReceiptError::OutputCommitmentMismatch);
    }
    Ok(())
}

/// Everything a client checks before accepting a receipt: the signature by the registered key,
/// the job fields, the output commitment and the cost.
pub fn check_receipt(receipt: &SignedReceipt, exp: &ReceiptExpectation) -> Result<()> {
    receipt.verify_signature(&exp.receipt_key)?;
    check_job_fields(receipt, exp)?;
    check_output_commitment(receipt, &exp.output_commitment)?;
    check_cost(receipt, exp.price_in, exp.price_out)
}
