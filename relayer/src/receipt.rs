//! The checks the relayer makes on a worker's signed receipt before it forwards it to the client
//! or queues it for the chain ([`check_receipt`]). The relayer cannot forge receipts; it refuses
//! to relay ones the Worker contract would skip anyway (bad signature, wrong job or worker,
//! cost above the job's maximum), so a broken worker fails over instead of wasting gas.
//!
//! Layout (contracts/schema.tlb):
//! `signed_receipt$_ signature:bits512 body:^ReceiptBody`,
//! `receipt_body#72637074 escrow:MsgAddressInt job_id:uint64 worker:MsgAddressInt model_id:uint32
//!  tokens_in:uint32 tokens_out:uint32 cost:Coins time:uint32 hashes:^ReceiptHashes
//!  commitments:^ReceiptCommitments`.

use cocoon_sdk::receipt::{ReceiptError, SignedReceipt};
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::{TlbError, TlbType as _};

/// Largest receipt BOC accepted (a SignedReceipt is four small cells, well under 1 KiB).
pub const MAX_RECEIPT_BOC: usize = 4096;

/// The fields of a receipt the relayer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSummary {
    /// Model served.
    pub model_id: u32,
    /// Input tokens.
    pub tokens_in: u32,
    /// Output tokens.
    pub tokens_out: u32,
    /// Cost, nanoTON.
    pub cost: u128,
    /// Unix time the worker signed it.
    pub time: u32,
    /// Representation hash of the body cell (what the chain logs as receipt_hash).
    pub body_hash: [u8; 32],
}

/// Why a receipt is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptRejection {
    /// Not a BOC with one root of the SignedReceipt layout.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The body does not start with the receipt domain tag.
    #[error("wrong domain tag {0:#010x}")]
    WrongTag(u32),
    /// The signature does not verify with the worker's receipt key.
    #[error("signature does not verify with the worker's receipt key")]
    BadSignature,
    /// The receipt names another job.
    #[error("receipt is for {found}, not {expected}")]
    WrongJob {
        /// Job dispatched.
        expected: String,
        /// Job in the receipt.
        found: String,
    },
    /// The receipt names another Worker contract.
    #[error("receipt names worker {0}")]
    WrongWorker(String),
    /// The cost exceeds what the client locked.
    #[error("cost {cost} above the job's max cost {max_cost}")]
    CostTooHigh {
        /// Receipt cost.
        cost: u128,
        /// Job maximum.
        max_cost: u64,
    },
}

impl From<TlbError> for ReceiptRejection {
    fn from(e: TlbError) -> Self {
        match e {
            TlbError::WrongTag { found, .. } => ReceiptRejection::WrongTag(found as u32),
            other => ReceiptRejection::Malformed(other.to_string()),
        }
    }
}

/// Checks a SignedReceipt BOC against the job it answers: layout, signature by `receipt_key`
/// over the body's representation hash, escrow and job id, worker, and `cost <= max_cost`.
pub fn check_receipt(
    boc: &[u8],
    receipt_key: &[u8; 32],
    job: &JobRef,
    worker: &str,
    max_cost: u64,
) -> Result<ReceiptSummary, ReceiptRejection> {
    if boc.len() > MAX_RECEIPT_BOC {
        return Err(ReceiptRejection::Malformed("BOC too large".into()));
    }
    // The sdk's BOC reader refuses hostile headers before tonlib-core sees them.
    let receipt = SignedReceipt::from_boc(boc)?;
    receipt.verify_signature(receipt_key).map_err(|e| match e {
        ReceiptError::Tlb(t) => ReceiptRejection::from(t),
        _ => ReceiptRejection::BadSignature,
    })?;
    let b = &receipt.body;
    let (escrow, job_id, receipt_worker) = (b.escrow.to_hex(), b.job_id, b.worker.to_hex());
    let (model_id, tokens_in, tokens_out, cost, time) =
        (b.model_id, b.tokens_in, b.tokens_out, b.cost, b.time);
    let body_hash = b
        .signing_hash()
        .map_err(|e| ReceiptRejection::Malformed(e.to_string()))?;

    if escrow != job.escrow || job_id != job.job_id {
        return Err(ReceiptRejection::WrongJob {
            expected: job.to_string(),
            found: format!("{escrow}/{job_id}"),
        });
    }
    if receipt_worker != worker {
        return Err(ReceiptRejection::WrongWorker(receipt_worker));
    }
    if cost > u128::from(max_cost) {
        return Err(ReceiptRejection::CostTooHigh { cost, max_cost });
    }
    Ok(ReceiptSummary {
        model_id,
        tokens_in,
        tokens_out,
        cost,
        time,
        body_hash,
    })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use cocoon_testkit::stub::{ReceiptFields, signed_receipt};

    fn fields() -> ReceiptFields {
        ReceiptFields {
            job: JobRef::new(format!("0:{}", "aa".repeat(32)), u64::MAX),
            worker: format!("0:{}", "bb".repeat(32)),
            model_id: 3,
            tokens_in: 10,
            tokens_out: 20,
            cost: 1_000,
            time: 1_700_000_000,
            weights_hash: [1; 32],
            evidence_hash: [2; 32],
            input_commitment: [3; 32],
            output_commitment: [4; 32],
        }
    }

    #[test]
    fn a_genuine_receipt_passes_and_reads_back() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let f = fields();
        let boc = signed_receipt(&key, &f).unwrap();
        let s = check_receipt(
            &boc,
            &key.verifying_key().to_bytes(),
            &f.job,
            &f.worker,
            1_000,
        )
        .unwrap();
        assert_eq!(
            (s.model_id, s.tokens_in, s.tokens_out, s.cost, s.time),
            (3, 10, 20, 1_000, 1_700_000_000)
        );
    }

    #[test]
    fn every_violation_is_refused() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let pk = key.verifying_key().to_bytes();
        let f = fields();
        let boc = signed_receipt(&key, &f).unwrap();
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert_eq!(
            check_receipt(&boc, &other, &f.job, &f.worker, 1_000),
            Err(ReceiptRejection::BadSignature)
        );
        assert!(matches!(
            check_receipt(
                &boc,
                &pk,
                &JobRef::new(f.job.escrow.clone(), 1),
                &f.worker,
                1_000
            ),
            Err(ReceiptRejection::WrongJob { .. })
        ));
        assert!(matches!(
            check_receipt(&boc, &pk, &f.job, &f.job.escrow, 1_000),
            Err(ReceiptRejection::WrongWorker(_))
        ));
        assert_eq!(
            check_receipt(&boc, &pk, &f.job, &f.worker, 999),
            Err(ReceiptRejection::CostTooHigh {
                cost: 1_000,
                max_cost: 999
            })
        );
        assert!(matches!(
            check_receipt(b"not a boc", &pk, &f.job, &f.worker, 1_000),
            Err(ReceiptRejection::Malformed(_))
        ));
        let mut flipped = boc.clone();
        let last = flipped.len() - 8;
        flipped[last] ^= 1;
        assert!(check_receipt(&flipped, &pk, &f.job, &f.worker, 1_000).is_err());
    }

    #[test]
    fn hostile_bocs_are_refused_without_panicking() {
        let pk = [0u8; 32];
        let job = fields().job;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/fuzz/regressions");
        for name in [
            "tonlib_boc_huge_cell_count.boc",
            "tonlib_boc_ref_out_of_range.boc",
        ] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            assert!(
                matches!(
                    check_receipt(&bytes, &pk, &job, "0:00", 1),
                    Err(ReceiptRejection::Malformed(_))
                ),
                "{name}"
            );
        }
        assert!(check_receipt(&vec![0xb5; MAX_RECEIPT_BOC + 1], &pk, &job, "0:00", 1).is_err());
    }
}
