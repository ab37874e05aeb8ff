//! Sample channel values the channel modules' tests share.

use cocoon_sdk::channel::{ChannelReceipt, ChannelRef, SignedVoucher, Voucher};
use cocoon_sdk::receipt::{ReceiptCommitments, ReceiptHashes};
use cocoon_sdk::relay::channel::{ChannelSubmit, ChannelTicket};
use cocoon_sdk::tlb::TonAddress;
use ed25519_dalek::SigningKey;

pub fn addr(n: u8) -> TonAddress {
    TonAddress::new(0, [n; 32].into())
}

pub fn channel(id: u64) -> ChannelRef {
    ChannelRef {
        global_id: -239,
        root: addr(1),
        escrow: addr(2),
        channel_id: id,
    }
}

/// Channel `id`'s voucher for 5,000 nanoTON up to seq 4, signed by the client key `[2; 32]`.
pub fn voucher(id: u64) -> SignedVoucher {
    Voucher {
        channel: channel(id),
        cumulative: 5_000,
        last_seq: 4,
        acc: [3; 32],
        is_final: false,
    }
    .sign(&SigningKey::from_bytes(&[2; 32]))
    .unwrap()
}

/// A receipt for seq 3 of channel 7, unsigned.
pub fn sample_receipt() -> ChannelReceipt {
    ChannelReceipt {
        channel: channel(7),
        seq: 3,
        worker: addr(4),
        model_id: 1,
        tokens_in: 16,
        tokens_out: 8,
        cost: 40_000,
        time: 1_800_000_000,
        prev_acc: [5; 32],
        hashes: ReceiptHashes {
            weights_hash: [6; 32],
            evidence_hash: [7; 32],
        },
        commitments: ReceiptCommitments {
            input_commitment: [8; 32],
            output_commitment: [9; 32],
        },
    }
}

/// A request with two tickets: channel 1 at seq 5 with its voucher, channel 2's first request.
pub fn sample_submit() -> ChannelSubmit {
    ChannelSubmit {
        version: cocoon_sdk::relay::PROTOCOL_VERSION,
        tickets: vec![
            ChannelTicket {
                channel: channel(1),
                seq: 5,
                voucher: Some(voucher(1)),
            },
            ChannelTicket {
                channel: channel(2),
                seq: 1,
                voucher: None,
            },
        ],
        model_id: 3,
        max_tokens: 64,
        sealed_input: b"sealed input / with bytes \xff".to_vec(),
    }
}
