//! Messages to Escrow.

use super::records::{EscrowConfig, JobRoute};
use super::{msg_enum, tlb_struct};
use crate::tlb::codec::*;

tlb_struct! {
    /// From Root only, with the state-init: sets the config; the value is a deposit.
    ///
    /// `escrow_init#c0c00301 query_id:uint64 config:^EscrowConfig = EscrowMsg;`
    pub struct EscrowInit [tag = 0xc0c00301] {
        /// Query id.
        pub query_id: U64,
        /// Config.
        pub config: Ref<EscrowConfig>,
    }
}

tlb_struct! {
    /// From anyone: the value is a deposit.
    ///
    /// `deposit#c0c00302 query_id:uint64 = EscrowMsg;`
    pub struct Deposit [tag = 0xc0c00302] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// From the owner: opens a job, locking `max_cost`.
    ///
    /// `open_job#c0c00303 query_id:uint64 job_id:uint64 model_id:uint32 max_cost:Coins
    /// deadline:uint32 relayer_fee_bps:uint16 input_commitment:bits256 route:^JobRoute =
    /// EscrowMsg;`
    pub struct OpenJob [tag = 0xc0c00303] {
        /// Query id.
        pub query_id: U64,
        /// Job id, strictly above the last one.
        pub job_id: U64,
        /// Model.
        pub model_id: U32,
        /// Most the job may cost (nanoTON).
        pub max_cost: Coins,
        /// Unix deadline.
        pub deadline: U32,
        /// Relayer fee (bps).
        pub relayer_fee_bps: U16,
        /// sha256 of the sealed input.
        pub input_commitment: Bits256,
        /// Route.
        pub route: Ref<JobRoute>,
    }
}

tlb_struct! {
    /// From a Worker only, for a receipt it verified: the fields the Escrow checks and the
    /// receipt's hash (the receipt itself is not forwarded: forward fees are charged per bit).
    ///
    /// `settle#c0c00304 query_id:uint64 worker_owner:MsgAddressInt job_id:uint64 model_id:uint32
    /// cost:Coins input_commitment:bits256 receipt_hash:bits256 = EscrowMsg;`
    pub struct Settle [tag = 0xc0c00304] {
        /// Query id.
        pub query_id: U64,
        /// Owner of the sending Worker (to recompute its address).
        pub worker_owner: Addr,
        /// Job.
        pub job_id: U64,
        /// Model.
        pub model_id: U32,
        /// Cost (nanoTON).
        pub cost: Coins,
        /// Input commitment.
        pub input_commitment: Bits256,
        /// Representation hash of the ReceiptBody cell.
        pub receipt_hash: Bits256,
    }
}

tlb_struct! {
    /// From anyone after deadline + grace: unlocks the job's funds.
    ///
    /// `expire_job#c0c00305 query_id:uint64 job_id:uint64 = EscrowMsg;`
    pub struct ExpireJob [tag = 0xc0c00305] {
        /// Query id.
        pub query_id: U64,
        /// Job.
        pub job_id: U64,
    }
}

tlb_struct! {
    /// Owner: withdraws free balance.
    ///
    /// `withdraw#c0c00306 query_id:uint64 amount:Coins = EscrowMsg;`
    pub struct Withdraw [tag = 0xc0c00306] {
        /// Query id.
        pub query_id: U64,
        /// Amount (nanoTON).
        pub amount: Coins,
    }
}

tlb_struct! {
    /// Owner: closes the escrow.
    ///
    /// `close#c0c00307 query_id:uint64 = EscrowMsg;`
    pub struct Close [tag = 0xc0c00307] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Anyone: pays fees due to the treasury.
    ///
    /// `collect_fees#c0c00308 query_id:uint64 = EscrowMsg;`
    pub struct CollectFees [tag = 0xc0c00308] {
        /// Query id.
        pub query_id: U64,
    }
}

msg_enum! {
    /// Every message Escrow accepts (an empty body is a deposit too).
    pub enum EscrowMsg {
        EscrowInit, Deposit, OpenJob, Settle, ExpireJob, Withdraw, Close, CollectFees,
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
                prop_assert_eq!(EscrowMsg::from_cell(&v.to_cell().unwrap()).unwrap(), EscrowMsg::$t(v));
            } )*
        } };
    }
    round_trips!(
        EscrowInit,
        Deposit,
        OpenJob,
        Settle,
        ExpireJob,
        Withdraw,
        Close,
        CollectFees
    );
}
