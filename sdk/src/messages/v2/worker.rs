//! Messages to Worker v2.

use super::records::{ReceiptRefHashes, ReceiptSeal, SettleProof, WorkerConfig, WorkerRecord};
use crate::channel::{ChannelRef, SignedChannelReceipt, SignedVoucher};
use crate::messages::{msg_enum, tlb_struct};
use crate::tlb::codec::*;
use crate::tlb::{TlbResult, TlbType};

tlb_struct! {
    /// From Root only, with the state-init: initialises the Worker.
    ///
    /// `worker_init#c0c02201 query_id:uint64 stake:Coins record:^WorkerRecord
    /// config:^WorkerConfig = WorkerMsg;`
    pub struct WorkerInit [tag = 0xc0c02201] {
        /// Query id.
        pub query_id: U64,
        /// Stake.
        pub stake: Coins,
        /// Record.
        pub record: Ref<WorkerRecord>,
        /// Config.
        pub config: Ref<WorkerConfig>,
    }
}

tlb_struct! {
    /// From Root only: installs a record Root checked.
    ///
    /// `worker_update#c0c02202 query_id:uint64 record:^WorkerRecord = WorkerMsg;`
    pub struct WorkerUpdate [tag = 0xc0c02202] {
        /// Query id.
        pub query_id: U64,
        /// Record.
        pub record: Ref<WorkerRecord>,
    }
}

tlb_struct! {
    /// From anyone: the receipt of the channel's latest request, taken apart (the Worker rebuilds
    /// its body with its own address as `worker`, so nothing it can rebuild travels), and the
    /// client's voucher over it inside the proof. Value: the Worker's `get_fees().settle`. Build
    /// it with [`SubmitSettlement::new`].
    ///
    /// `submit_settlement#c0c02203 query_id:uint64 model_id:uint32 time:uint32
    /// channel:^ChannelRef seal:^ReceiptSeal ref_hashes:^ReceiptRefHashes proof:^SettleProof
    /// = WorkerMsg;`
    pub struct SubmitSettlement [tag = 0xc0c02203] {
        /// Query id.
        pub query_id: U64,
        /// The receipt's model.
        pub model_id: U32,
        /// The receipt's time.
        pub time: U32,
        /// The receipt's channel reference (the very cell it signed).
        pub channel: Ref<ChannelRef>,
        /// The receipt's signature and prev_acc.
        pub seal: Ref<ReceiptSeal>,
        /// Hashes of the receipt's hashes and commitments cells.
        pub ref_hashes: Ref<ReceiptRefHashes>,
        /// The voucher's signature, cumulative and final; the receipt's seq, tokens and cost.
        pub proof: Ref<SettleProof>,
    }
}

impl SubmitSettlement {
    /// The submission of `receipt` and the client's `voucher` over it, as the worker node sends
    /// it. The voucher's channel, seq and accumulator travel only as the receipt's (the Escrow
    /// rebuilds the voucher body from them), so a voucher over another receipt fails on-chain:
    /// check that it covers this one first (`contracts::v2::Settlement::check`).
    pub fn new(
        query_id: u64,
        receipt: &SignedChannelReceipt,
        voucher: &SignedVoucher,
    ) -> TlbResult<Self> {
        let r = &receipt.body;
        Ok(Self {
            query_id,
            model_id: r.model_id,
            time: r.time,
            channel: r.channel.clone(),
            seal: ReceiptSeal {
                signature: receipt.signature,
                prev_acc: r.prev_acc,
            },
            ref_hashes: ReceiptRefHashes {
                hashes_hash: r.hashes.to_cell()?.cell_hash().into(),
                commitments_hash: r.commitments.to_cell()?.cell_hash().into(),
            },
            proof: SettleProof {
                voucher_signature: voucher.signature,
                cumulative: voucher.body.cumulative,
                is_final: voucher.body.is_final,
                seq: r.seq,
                tokens_in: r.tokens_in,
                tokens_out: r.tokens_out,
                cost: r.cost,
            },
        })
    }
}

tlb_struct! {
    /// From anyone: two different receipts for one (channel, seq), each signed by a receipt key
    /// this Worker ever registered.
    ///
    /// `report_equivocation#c0c02205 query_id:uint64 key_a:bits256 receipt_a:^SignedReceipt
    /// key_b:bits256 receipt_b:^SignedReceipt = WorkerMsg;`
    pub struct ReportEquivocation [tag = 0xc0c02205] {
        /// Query id.
        pub query_id: U64,
        /// Key of the first receipt.
        pub key_a: Bits256,
        /// First receipt.
        pub receipt_a: Ref<SignedChannelReceipt>,
        /// Key of the second receipt.
        pub key_b: Bits256,
        /// Second receipt.
        pub receipt_b: Ref<SignedChannelReceipt>,
    }
}

tlb_struct! {
    /// Owner: adds stake (value = amount + `get_fees().stake_op`).
    ///
    /// `top_up_stake#c0c02206 query_id:uint64 amount:Coins = WorkerMsg;`
    pub struct TopUpStake [tag = 0xc0c02206] {
        /// Query id.
        pub query_id: U64,
        /// Amount added to the stake.
        pub amount: Coins,
    }
}

tlb_struct! {
    /// Owner: starts unbonding.
    ///
    /// `unbond#c0c02207 query_id:uint64 = WorkerMsg;`
    pub struct Unbond [tag = 0xc0c02207] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Owner: withdraws the stake after the unbonding delay.
    ///
    /// `withdraw_stake#c0c02208 query_id:uint64 = WorkerMsg;`
    pub struct WithdrawStake [tag = 0xc0c02208] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Owner: a new record (renewed attestation, keys, prices, models), checked by Root.
    ///
    /// `update_record#c0c0220a query_id:uint64 record:^WorkerRecord = WorkerMsg;`
    pub struct UpdateRecord [tag = 0xc0c0220a] {
        /// Query id.
        pub query_id: U64,
        /// Record.
        pub record: Ref<WorkerRecord>,
    }
}

msg_enum! {
    /// Every message Worker v2 accepts.
    pub enum WorkerMsg {
        WorkerInit, WorkerUpdate, SubmitSettlement, ReportEquivocation, TopUpStake, Unbond,
        WithdrawStake, UpdateRecord,
    }
}
