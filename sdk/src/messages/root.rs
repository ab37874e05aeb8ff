//! Messages to Root.

use super::records::{RootParams, WorkerRecord};
use super::{msg_enum, tlb_struct};
use crate::tlb::codec::*;

tlb_struct! {
    /// Registers (deploys) the sender's Worker with a stake; value >= stake + register gas.
    ///
    /// `register_worker#c0c00101 query_id:uint64 stake:Coins record:^WorkerRecord = RootMsg;`
    pub struct RegisterWorker [tag = 0xc0c00101] {
        /// Query id, echoed in replies.
        pub query_id: U64,
        /// Stake (nanoTON).
        pub stake: Coins,
        /// The worker's record.
        pub record: Ref<WorkerRecord>,
    }
}

tlb_struct! {
    /// Re-attest / change keys, prices or models of the sender's Worker.
    ///
    /// `update_worker#c0c00102 query_id:uint64 record:^WorkerRecord = RootMsg;`
    pub struct UpdateWorker [tag = 0xc0c00102] {
        /// Query id.
        pub query_id: U64,
        /// New record.
        pub record: Ref<WorkerRecord>,
    }
}

tlb_struct! {
    /// Deploys the sender's Escrow (or deposits into it); the remaining value is the deposit.
    ///
    /// `create_escrow#c0c00103 query_id:uint64 = RootMsg;`
    pub struct CreateEscrow [tag = 0xc0c00103] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Owner: replaces the parameters.
    ///
    /// `set_params#c0c00110 query_id:uint64 params:^RootParams = RootMsg;`
    pub struct SetParams [tag = 0xc0c00110] {
        /// Query id.
        pub query_id: U64,
        /// New parameters.
        pub params: Ref<RootParams>,
    }
}

tlb_struct! {
    /// Owner: sets the allowed TEE kinds mask.
    ///
    /// `set_allowed_kinds#c0c00111 query_id:uint64 allowed_kinds:uint8 = RootMsg;`
    pub struct SetAllowedKinds [tag = 0xc0c00111] {
        /// Query id.
        pub query_id: U64,
        /// Bit mask.
        pub allowed_kinds: U8,
    }
}

tlb_struct! {
    /// Owner: allow-lists a measurement.
    ///
    /// `add_measurement#c0c00112 query_id:uint64 measurement:bits256 = RootMsg;`
    pub struct AddMeasurement [tag = 0xc0c00112] {
        /// Query id.
        pub query_id: U64,
        /// Measurement.
        pub measurement: Bits256,
    }
}

tlb_struct! {
    /// Owner: removes a measurement.
    ///
    /// `remove_measurement#c0c00113 query_id:uint64 measurement:bits256 = RootMsg;`
    pub struct RemoveMeasurement [tag = 0xc0c00113] {
        /// Query id.
        pub query_id: U64,
        /// Measurement.
        pub measurement: Bits256,
    }
}

tlb_struct! {
    /// Owner: adds or replaces a model; `model_hash` = sha256("name@revision:weights-sha256").
    ///
    /// `set_model#c0c00114 query_id:uint64 model_id:uint32 model_hash:bits256 = RootMsg;`
    pub struct SetModel [tag = 0xc0c00114] {
        /// Query id.
        pub query_id: U64,
        /// Model id.
        pub model_id: U32,
        /// Model hash.
        pub model_hash: Bits256,
    }
}

tlb_struct! {
    /// Owner: removes a model.
    ///
    /// `remove_model#c0c00115 query_id:uint64 model_id:uint32 = RootMsg;`
    pub struct RemoveModel [tag = 0xc0c00115] {
        /// Query id.
        pub query_id: U64,
        /// Model id.
        pub model_id: U32,
    }
}

tlb_struct! {
    /// Owner: new child codes (apply to children deployed afterwards).
    ///
    /// `set_codes#c0c00116 query_id:uint64 worker_code:^Cell escrow_code:^Cell = RootMsg;`
    pub struct SetCodes [tag = 0xc0c00116] {
        /// Query id.
        pub query_id: U64,
        /// Worker code.
        pub worker_code: AnyRef,
        /// Escrow code.
        pub escrow_code: AnyRef,
    }
}

tlb_struct! {
    /// Owner: first step of an ownership transfer.
    ///
    /// `transfer_ownership#c0c00117 query_id:uint64 new_owner:MsgAddressInt = RootMsg;`
    pub struct TransferOwnership [tag = 0xc0c00117] {
        /// Query id.
        pub query_id: U64,
        /// Owner-to-be.
        pub new_owner: Addr,
    }
}

tlb_struct! {
    /// Pending owner: second step.
    ///
    /// `accept_ownership#c0c00118 query_id:uint64 = RootMsg;`
    pub struct AcceptOwnership [tag = 0xc0c00118] {
        /// Query id.
        pub query_id: U64,
    }
}

msg_enum! {
    /// Every message Root accepts.
    pub enum RootMsg {
        RegisterWorker, UpdateWorker, CreateEscrow, SetParams, SetAllowedKinds, AddMeasurement,
        RemoveMeasurement, SetModel, RemoveModel, SetCodes, TransferOwnership, AcceptOwnership,
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
                let via_enum = RootMsg::from_cell(&v.to_cell().unwrap()).unwrap();
                prop_assert_eq!(via_enum, RootMsg::$t(v));
            } )*
        } };
    }
    round_trips!(
        RegisterWorker,
        UpdateWorker,
        CreateEscrow,
        SetParams,
        SetAllowedKinds,
        AddMeasurement,
        RemoveMeasurement,
        SetModel,
        RemoveModel,
        SetCodes,
        TransferOwnership,
        AcceptOwnership
    );

    #[test]
    fn unknown_opcode_is_wrong_tag() {
        let mut b = crate::tlb::CellBuilder::new();
        b.store_u32(32, 0xdeadbeef)
            .unwrap()
            .store_u64(64, 0)
            .unwrap();
        assert!(matches!(
            RootMsg::from_cell(&b.build().unwrap()),
            Err(crate::tlb::TlbError::WrongTag {
                found: 0xdeadbeef,
                ..
            })
        ));
    }
}
