//! Fixtures of the channel tests: one channel, its keys, and requests with their receipts.

use ed25519_dalek::SigningKey;
use tonlib_core::TonAddress;

use super::{ChannelRef, ChannelState, ReceiptDraft, RequestExpectation};
use crate::receipt::{ReceiptCommitments, ReceiptHashes};

pub const PRICE_IN: u128 = 1_000;
pub const PRICE_OUT: u128 = 3_000;
pub const NOW: u32 = 1_800_000_000;

pub fn addr(b: u8) -> TonAddress {
    TonAddress::new(0, [b; 32].into())
}

pub fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

pub fn worker_key() -> SigningKey {
    SigningKey::from_bytes(&[22; 32])
}

pub fn receipt_key() -> [u8; 32] {
    worker_key().verifying_key().to_bytes()
}

pub fn worker() -> TonAddress {
    addr(4)
}

pub fn channel() -> ChannelRef {
    ChannelRef {
        global_id: -239,
        root: addr(1),
        escrow: addr(2),
        channel_id: 7,
    }
}

pub fn state(amount: u128) -> ChannelState {
    ChannelState {
        channel: channel(),
        amount,
        settled: 0,
        last_seq: 0,
        expires_at: NOW + 86_400,
        close_requested_at: 0,
        settle_until: NOW + 86_400 + 21_600,
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        worker: worker(),
        worker_owner: addr(5),
        relayer: addr(6),
        relayer_fee_bps: 500,
        protocol_fee_bps: 100,
        voucher_key: client_key().verifying_key().to_bytes(),
        relayer_due: 0,
    }
}

/// A served request: `tokens_in` in, `tokens_out` out, commitments derived from `n`.
pub fn draft(n: u8, tokens_in: u32, tokens_out: u32) -> ReceiptDraft {
    ReceiptDraft {
        model_id: 3,
        tokens_in,
        tokens_out,
        time: NOW,
        hashes: ReceiptHashes {
            weights_hash: [0xee; 32],
            evidence_hash: [0xdd; 32],
        },
        commitments: ReceiptCommitments {
            input_commitment: [n; 32],
            output_commitment: [n.wrapping_add(100); 32],
        },
    }
}

/// What the client knows of the request `draft` answers, allowing `max_tokens`.
pub fn expectation(d: &ReceiptDraft, max_tokens: u32) -> RequestExpectation {
    RequestExpectation {
        model_id: d.model_id,
        max_tokens,
        input_commitment: d.commitments.input_commitment,
        output_commitment: d.commitments.output_commitment,
    }
}

/// The receipt the channel's worker signs for `d` at `seq` after `prev_acc`, at the channel's
/// prices (tests tweak the body and re-sign it to make a well-signed bad receipt).
pub fn receipt_body(seq: u32, prev_acc: [u8; 32], d: &ReceiptDraft) -> super::ChannelReceipt {
    super::ChannelReceipt {
        channel: channel(),
        seq,
        worker: worker(),
        model_id: d.model_id,
        tokens_in: d.tokens_in,
        tokens_out: d.tokens_out,
        cost: u128::from(d.tokens_in) * PRICE_IN + u128::from(d.tokens_out) * PRICE_OUT,
        time: d.time,
        prev_acc,
        hashes: d.hashes.clone(),
        commitments: d.commitments.clone(),
    }
}
