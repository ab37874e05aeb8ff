//! Messages to Worker v2.

use super::records::{WorkerConfig, WorkerRecord};
use crate::channel::SignedChannelReceipt;
use crate::messages::{msg_enum, tlb_struct};
use crate::tlb::codec::*;

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
    /// From anyone: the receipt of the channel's latest request and the client's voucher over it
    /// (its signature, cumulative and final flag; the rest of the voucher is implied by the
    /// receipt). Value: the Worker's `get_fees().settle`.
    ///
    /// `submit_settlement#c0c02203 query_id:uint64 receipt:^SignedReceipt
    /// voucher_signature:bits512 cumulative:Coins final:Bool = WorkerMsg;`
    pub struct SubmitSettlement [tag = 0xc0c02203] {
        /// Query id.
        pub query_id: U64,
        /// The worker-signed receipt.
        pub receipt: Ref<SignedChannelReceipt>,
        /// The client's voucher signature.
        pub voucher_signature: Bits512,
        /// The voucher's cumulative amount.
        pub cumulative: Coins,
        /// The voucher's final flag (TL-B `final`).
        pub is_final: Bool,
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
