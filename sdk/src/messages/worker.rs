//! Messages to Worker.

use super::records::{WorkerConfig, WorkerRecord};
use super::{ReceiptList, msg_enum, tlb_struct};
use crate::receipt::SignedReceipt;
use crate::tlb::codec::*;

tlb_struct! {
    /// From Root only, with the state-init: initialises the Worker.
    ///
    /// `worker_init#c0c00201 query_id:uint64 stake:Coins record:^WorkerRecord
    /// config:^WorkerConfig = WorkerMsg;`
    pub struct WorkerInit [tag = 0xc0c00201] {
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
    /// From Root only: replaces the record.
    ///
    /// `worker_update#c0c00202 query_id:uint64 record:^WorkerRecord = WorkerMsg;`
    pub struct WorkerUpdate [tag = 0xc0c00202] {
        /// Query id.
        pub query_id: U64,
        /// New record.
        pub record: Ref<WorkerRecord>,
    }
}

tlb_struct! {
    /// A batch of signed receipts, with the gas to settle them.
    ///
    /// `submit_receipts#c0c00203 query_id:uint64 count:uint8 receipts:^ReceiptLink = WorkerMsg;`
    pub struct SubmitReceipts [tag = 0xc0c00203] {
        /// Query id.
        pub query_id: U64,
        /// Links to read (at most).
        pub count: U8,
        /// The signed receipts, first link first.
        pub receipts: ReceiptList,
    }
}

tlb_struct! {
    /// From an Escrow: credits `amount` to earned.
    ///
    /// `pay_worker#c0c00204 query_id:uint64 amount:Coins job_id:uint64 = WorkerMsg;`
    pub struct PayWorker [tag = 0xc0c00204] {
        /// Query id.
        pub query_id: U64,
        /// Amount.
        pub amount: Coins,
        /// Job.
        pub job_id: U64,
    }
}

tlb_struct! {
    /// Two different receipts for the same (escrow, job) → slash.
    ///
    /// `report_equivocation#c0c00205 query_id:uint64 receipt_a:^SignedReceipt
    /// receipt_b:^SignedReceipt = WorkerMsg;`
    pub struct ReportEquivocation [tag = 0xc0c00205] {
        /// Query id.
        pub query_id: U64,
        /// First signed receipt.
        pub receipt_a: Ref<SignedReceipt>,
        /// Second signed receipt.
        pub receipt_b: Ref<SignedReceipt>,
    }
}

tlb_struct! {
    /// Owner: adds stake; value >= amount.
    ///
    /// `top_up_stake#c0c00206 query_id:uint64 amount:Coins = WorkerMsg;`
    pub struct TopUpStake [tag = 0xc0c00206] {
        /// Query id.
        pub query_id: U64,
        /// Amount.
        pub amount: Coins,
    }
}

tlb_struct! {
    /// Owner: starts unbonding.
    ///
    /// `unbond#c0c00207 query_id:uint64 = WorkerMsg;`
    pub struct Unbond [tag = 0xc0c00207] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Owner: withdraws the stake after the unbonding delay.
    ///
    /// `withdraw_stake#c0c00208 query_id:uint64 = WorkerMsg;`
    pub struct WithdrawStake [tag = 0xc0c00208] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Owner: withdraws earnings.
    ///
    /// `withdraw_earnings#c0c00209 query_id:uint64 amount:Coins = WorkerMsg;`
    pub struct WithdrawEarnings [tag = 0xc0c00209] {
        /// Query id.
        pub query_id: U64,
        /// Amount.
        pub amount: Coins,
    }
}

msg_enum! {
    /// Every message Worker accepts.
    pub enum WorkerMsg {
        WorkerInit, WorkerUpdate, SubmitReceipts, PayWorker, ReportEquivocation, TopUpStake,
        Unbond, WithdrawStake, WithdrawEarnings,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::messages::testing::{Arb, check_round_trip};
    use crate::tlb::TlbType;

    macro_rules! round_trips {
        ($($t:ident),*) => { proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $( #[test] #[allow(non_snake_case)] fn $t(v in <$t as Arb>::arb()) {
                check_round_trip(&v, true)?;
                prop_assert_eq!(WorkerMsg::from_cell(&v.to_cell().unwrap()).unwrap(), WorkerMsg::$t(v));
            } )*
        } };
    }
    round_trips!(
        WorkerInit,
        WorkerUpdate,
        SubmitReceipts,
        PayWorker,
        ReportEquivocation,
        TopUpStake,
        Unbond,
        WithdrawStake,
        WithdrawEarnings
    );

    #[test]
    fn empty_receipt_batch_is_refused() {
        let m = SubmitReceipts {
            query_id: 0,
            count: 0,
            receipts: vec![],
        };
        assert!(matches!(
            m.to_cell(),
            Err(crate::tlb::TlbError::InvalidValue { .. })
        ));
    }
}
