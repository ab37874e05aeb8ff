//! What contracts send to wallets (notifications, payouts) and their external-out logs.

use super::records::JobRoute;
use super::tlb_struct;
use crate::tlb::codec::*;

tlb_struct! {
    /// Escrow → relayer: a job was opened.
    ///
    /// `job_opened#c0c00401 query_id:uint64 escrow_owner:MsgAddressInt job_id:uint64
    /// model_id:uint32 max_cost:Coins deadline:uint32 relayer_fee_bps:uint16
    /// input_commitment:bits256 route:^JobRoute = JobOpened;`
    pub struct JobOpened [tag = 0xc0c00401] {
        /// Query id.
        pub query_id: U64,
        /// Escrow owner (to recompute the Escrow address).
        pub escrow_owner: Addr,
        /// Job id.
        pub job_id: U64,
        /// Model.
        pub model_id: U32,
        /// Max cost.
        pub max_cost: Coins,
        /// Deadline.
        pub deadline: U32,
        /// Relayer fee (bps).
        pub relayer_fee_bps: U16,
        /// Input commitment.
        pub input_commitment: Bits256,
        /// Route.
        pub route: Ref<JobRoute>,
    }
}

tlb_struct! {
    /// Escrow → relayer: the relayer fee of a settled job.
    ///
    /// `relayer_fee#c0c00402 query_id:uint64 job_id:uint64 = RelayerFee;`
    pub struct RelayerFee [tag = 0xc0c00402] {
        /// Query id.
        pub query_id: U64,
        /// Job.
        pub job_id: U64,
    }
}

/// `Payout.reason` values.
pub mod payout_reason {
    /// Stake withdrawn.
    pub const STAKE_WITHDRAWN: u8 = 1;
    /// Earnings withdrawn.
    pub const EARNINGS_WITHDRAWN: u8 = 2;
    /// Escrow withdrawal.
    pub const ESCROW_WITHDRAWAL: u8 = 3;
    /// Escrow closed.
    pub const ESCROW_CLOSED: u8 = 4;
    /// Slash reward to the reporter.
    pub const SLASH_REWARD: u8 = 5;
    /// Slashed stake to the treasury.
    pub const SLASHED_STAKE: u8 = 6;
    /// Protocol fees to the treasury.
    pub const PROTOCOL_FEES: u8 = 7;
    /// Refused registration refunded.
    pub const REGISTRATION_REFUND: u8 = 9;
}

tlb_struct! {
    /// Any contract → owner / treasury / reporter.
    ///
    /// `payout#c0c00406 query_id:uint64 reason:uint8 = Payout;`
    pub struct Payout [tag = 0xc0c00406] {
        /// Query id.
        pub query_id: U64,
        /// [`payout_reason`].
        pub reason: U8,
    }
}

tlb_struct! {
    /// Excess gas returned.
    ///
    /// `excesses#d53276db query_id:uint64 = Excesses;`
    pub struct Excesses [tag = 0xd53276db] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Escrow log: a job was settled.
    ///
    /// `log_settled#c0c00501 job_id:uint64 cost:Coins receipt_hash:bits256 = LogSettled;`
    pub struct LogSettled [tag = 0xc0c00501] {
        /// Job.
        pub job_id: U64,
        /// Cost paid.
        pub cost: Coins,
        /// Representation hash of the receipt body.
        pub receipt_hash: Bits256,
    }
}

tlb_struct! {
    /// Worker log: receipt `index` of a batch was skipped with error `error`.
    ///
    /// `log_receipt_skipped#c0c00502 query_id:uint64 index:uint8 error:uint16 =
    /// LogReceiptSkipped;`
    pub struct LogReceiptSkipped [tag = 0xc0c00502] {
        /// Query id of the batch.
        pub query_id: U64,
        /// Index in the batch.
        pub index: U8,
        /// Error code.
        pub error: U16,
    }
}

tlb_struct! {
    /// Escrow log: a job expired unsettled.
    ///
    /// `log_job_expired#c0c00503 job_id:uint64 = LogJobExpired;`
    pub struct LogJobExpired [tag = 0xc0c00503] {
        /// Job.
        pub job_id: U64,
    }
}

tlb_struct! {
    /// Worker log: slashed.
    ///
    /// `log_slashed#c0c00504 reporter:MsgAddressInt reward:Coins = LogSlashed;`
    pub struct LogSlashed [tag = 0xc0c00504] {
        /// Reporter.
        pub reporter: Addr,
        /// Reward paid.
        pub reward: Coins,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::messages::testing::{Arb, check_round_trip};

    macro_rules! round_trips {
        ($($t:ident),*) => { proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $( #[test] #[allow(non_snake_case)] fn $t(v in <$t as Arb>::arb()) { check_round_trip(&v, true)?; } )*
        } };
    }
    round_trips!(
        JobOpened,
        RelayerFee,
        Payout,
        Excesses,
        LogSettled,
        LogReceiptSkipped,
        LogJobExpired,
        LogSlashed
    );
}
