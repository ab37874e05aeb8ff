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

use ed25519_dalek::{Signature, VerifyingKey};
use tonlib_core::cell::{ArcCell, BagOfCells, CellParser, TonCellError};

use cocoon_sdk::relay::JobRef;

/// Domain tag of a receipt body ("rcpt").
pub const RECEIPT_TAG: u32 = 0x7263_7074;

/// Largest receipt BOC accepted (a SignedReceipt is four small cells, well under 1 KiB).
pub const MAX_RECEIPT_BOC: usize = 4096;

/// Parses a worker-supplied BOC with one root without trusting it: tonlib-core 0.26.11's parser
/// panics or tries huge allocations on some malformed inputs (sdk/fuzz/regressions), so the
/// header's counts are checked against the length first and any remaining panic is contained.
pub fn untrusted_boc_root(bytes: &[u8]) -> Result<ArcCell, ReceiptRejection> {
    let bad = |why: &str| ReceiptRejection::Malformed(why.to_string());
    if bytes.len() > MAX_RECEIPT_BOC {
        return Err(bad("BOC too large"));
    }
    if bytes.len() < 6 || bytes[..4] != [0xb5, 0xee, 0x9c, 0x72] {
        return Err(bad("not a BOC"));
    }
    let size = usize::from(bytes[4] & 0x07);
    let off_bytes = usize::from(bytes[5]);
    if !(1..=4).contains(&size) || !(1..=8).contains(&off_bytes) || bytes.len() < 6 + 3 * size {
        return Err(bad("bad BOC header"));
    }
    let read = |at: usize| bytes[at..at + size].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    let (cells, roots) = (read(6), read(6 + size));
    // Every cell takes at least two descriptor bytes.
    if roots != 1 || cells == 0 || cells > bytes.len() / 2 {
        return Err(bad("bad BOC cell count"));
    }
    let owned = bytes.to_vec();
    let parsed = std::panic::catch_unwind(move || BagOfCells::parse(&owned).and_then(|b| b.single_root()))
        .map_err(|_| bad("BOC parser failed"))?;
    Ok(parsed?)
}

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

impl From<TonCellError> for ReceiptRejection {
    fn from(e: TonCellError) -> Self {
        ReceiptRejection::Malformed(e.to_string())
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
    let root = untrusted_boc_root(boc)?;
    let mut p = root.parser();
    let mut signature = [0u8; 64];
    p.load_slice(&mut signature)?;
    let body = p.next_reference()?;
    p.ensure_empty()?;

    let mut b = body.parser();
    let tag = b.load_u32(32)?;
    if tag != RECEIPT_TAG {
        return Err(ReceiptRejection::WrongTag(tag));
    }
    let escrow = b.load_address()?.to_hex();
    let job_id = b.load_u64(64)?;
    let receipt_worker = b.load_address()?.to_hex();
    let model_id = b.load_u32(32)?;
    let tokens_in = b.load_u32(32)?;
    let tokens_out = b.load_u32(32)?;
    let cost = load_coins(&mut b)?;
    let time = b.load_u32(32)?;
    b.next_reference()?;
    b.next_reference()?;
    b.ensure_empty()?;

    let body_hash: [u8; 32] = body.cell_hash().into();
    let key = VerifyingKey::from_bytes(receipt_key).map_err(|_| ReceiptRejection::BadSignature)?;
    key.verify_strict(&body_hash, &Signature::from_bytes(&signature)).map_err(|_| ReceiptRejection::BadSignature)?;

    if escrow != job.escrow || job_id != job.job_id {
        return Err(ReceiptRejection::WrongJob { expected: job.to_string(), found: format!("{escrow}/{job_id}") });
    }
    if receipt_worker != worker {
        return Err(ReceiptRejection::WrongWorker(receipt_worker));
    }
    if cost > u128::from(max_cost) {
        return Err(ReceiptRejection::CostTooHigh { cost, max_cost });
    }
    Ok(ReceiptSummary { model_id, tokens_in, tokens_out, cost, time, body_hash })
}

/// `Coins` (VarUInteger 16): a 4-bit byte length, then that many bytes big-endian.
fn load_coins(p: &mut CellParser<'_>) -> Result<u128, ReceiptRejection> {
    let len = usize::from(p.load_u8(4)?);
    let mut v: u128 = 0;
    for _ in 0..len {
        v = (v << 8) | u128::from(p.load_u8(8)?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::stub::{ReceiptFields, signed_receipt};

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
        let s = check_receipt(&boc, &key.verifying_key().to_bytes(), &f.job, &f.worker, 1_000).unwrap();
        assert_eq!((s.model_id, s.tokens_in, s.tokens_out, s.cost, s.time), (3, 10, 20, 1_000, 1_700_000_000));
    }

    #[test]
    fn every_violation_is_refused() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let pk = key.verifying_key().to_bytes();
        let f = fields();
        let boc = signed_receipt(&key, &f).unwrap();
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert_eq!(check_receipt(&boc, &other, &f.job, &f.worker, 1_000), Err(ReceiptRejection::BadSignature));
        assert!(matches!(
            check_receipt(&boc, &pk, &JobRef::new(f.job.escrow.clone(), 1), &f.worker, 1_000),
            Err(ReceiptRejection::WrongJob { .. })
        ));
        assert!(matches!(check_receipt(&boc, &pk, &f.job, &f.job.escrow, 1_000), Err(ReceiptRejection::WrongWorker(_))));
        assert_eq!(
            check_receipt(&boc, &pk, &f.job, &f.worker, 999),
            Err(ReceiptRejection::CostTooHigh { cost: 1_000, max_cost: 999 })
        );
        assert!(matches!(check_receipt(b"not a boc", &pk, &f.job, &f.worker, 1_000), Err(ReceiptRejection::Malformed(_))));
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
        for name in ["tonlib_boc_huge_cell_count.boc", "tonlib_boc_ref_out_of_range.boc"] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            assert!(matches!(check_receipt(&bytes, &pk, &job, "0:00", 1), Err(ReceiptRejection::Malformed(_))), "{name}");
        }
        assert!(check_receipt(&vec![0xb5; MAX_RECEIPT_BOC + 1], &pk, &job, "0:00", 1).is_err());
    }
}
