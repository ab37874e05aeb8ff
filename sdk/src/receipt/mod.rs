//! Receipts: the cell the worker signs for every job (layout fixed in `contracts/schema.tlb`),
//! its ed25519 signature over the body's representation hash, and the client-side check.
//!
//! ```text
//! worker: ReceiptBody { job, tokens, cost, hashes, commitments }.sign(receipt key) ─▶ SignedReceipt
//! chain:  Worker contract checks signature + cost, forwards settlement to Escrow
//! client: check_receipt(receipt, expectation from chain + received answer)
//! ```

mod body;
mod check;
mod error;
mod sign;

pub use body::{RECEIPT_TAG, ReceiptBody, ReceiptCommitments, ReceiptHashes, SignedReceipt};
pub use check::{
    ReceiptExpectation, check_cost, check_job_fields, check_output_commitment, check_receipt,
    expected_cost,
};
pub use error::{ReceiptError, Result};
