//! Messages to Root v2. Governance messages from the owner are queued and applied after the
//! governance delay ([`ApplyChange`]); the owner may cancel them ([`CancelChange`]).

use super::records::{RootParams, TeePolicy, WorkerRecord};
use crate::messages::{msg_enum, tlb_struct};
use crate::tlb::codec::*;

tlb_struct! {
    /// From a worker owner: registers its Worker with `stake` (value = stake + Root's
    /// `get_fees().register`).
    ///
    /// `register_worker#c0c02101 query_id:uint64 stake:Coins record:^WorkerRecord = RootMsg;`
    pub struct RegisterWorker [tag = 0xc0c02101] {
        /// Query id.
        pub query_id: U64,
        /// Stake (nanoTON).
        pub stake: Coins,
        /// Record.
        pub record: Ref<WorkerRecord>,
    }
}

tlb_struct! {
    /// From a Worker (on its owner's UpdateRecord): Root checks the sender under the named code.
    ///
    /// `update_worker#c0c02102 query_id:uint64 owner:MsgAddressInt worker_code_hash:bits256
    /// record:^WorkerRecord = RootMsg;`
    pub struct UpdateWorker [tag = 0xc0c02102] {
        /// Query id.
        pub query_id: U64,
        /// The Worker's owner.
        pub owner: Addr,
        /// Hash of the code the Worker runs (current or retired).
        pub worker_code_hash: Bits256,
        /// New record.
        pub record: Ref<WorkerRecord>,
    }
}

tlb_struct! {
    /// Deploys (or refreshes) the sender's Escrow; the value beyond the fee is a deposit.
    ///
    /// `create_escrow#c0c02103 query_id:uint64 = RootMsg;`
    pub struct CreateEscrow [tag = 0xc0c02103] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// Governance: new parameters.
    ///
    /// `set_params#c0c02110 query_id:uint64 params:^RootParams = RootMsg;`
    pub struct SetParams [tag = 0xc0c02110] {
        /// Query id.
        pub query_id: U64,
        /// Parameters.
        pub params: Ref<RootParams>,
    }
}

tlb_struct! {
    /// Governance: allowed TEE kinds.
    ///
    /// `set_allowed_kinds#c0c02111 query_id:uint64 allowed_kinds:uint8 = RootMsg;`
    pub struct SetAllowedKinds [tag = 0xc0c02111] {
        /// Query id.
        pub query_id: U64,
        /// Mask.
        pub allowed_kinds: U8,
    }
}

tlb_struct! {
    /// Governance: allow a measurement.
    ///
    /// `add_measurement#c0c02112 query_id:uint64 measurement:bits256 = RootMsg;`
    pub struct AddMeasurement [tag = 0xc0c02112] {
        /// Query id.
        pub query_id: U64,
        /// Measurement.
        pub measurement: Bits256,
    }
}

tlb_struct! {
    /// Governance: disallow a measurement.
    ///
    /// `remove_measurement#c0c02113 query_id:uint64 measurement:bits256 = RootMsg;`
    pub struct RemoveMeasurement [tag = 0xc0c02113] {
        /// Query id.
        pub query_id: U64,
        /// Measurement.
        pub measurement: Bits256,
    }
}

tlb_struct! {
    /// Governance: register a model.
    ///
    /// `set_model#c0c02114 query_id:uint64 model_id:uint32 model_hash:bits256 = RootMsg;`
    pub struct SetModel [tag = 0xc0c02114] {
        /// Query id.
        pub query_id: U64,
        /// Model id.
        pub model_id: U32,
        /// Registry hash.
        pub model_hash: Bits256,
    }
}

tlb_struct! {
    /// Governance: unregister a model.
    ///
    /// `remove_model#c0c02115 query_id:uint64 model_id:uint32 = RootMsg;`
    pub struct RemoveModel [tag = 0xc0c02115] {
        /// Query id.
        pub query_id: U64,
        /// Model id.
        pub model_id: U32,
    }
}

tlb_struct! {
    /// Governance: new Worker and Escrow codes (the old worker code stays known).
    ///
    /// `set_codes#c0c02116 query_id:uint64 worker_code:^Cell escrow_code:^Cell = RootMsg;`
    pub struct SetCodes [tag = 0xc0c02116] {
        /// Query id.
        pub query_id: U64,
        /// Worker code.
        pub worker_code: AnyRef,
        /// Escrow code.
        pub escrow_code: AnyRef,
    }
}

tlb_struct! {
    /// Governance: first step of an ownership transfer.
    ///
    /// `transfer_ownership#c0c02117 query_id:uint64 new_owner:MsgAddressInt = RootMsg;`
    pub struct TransferOwnership [tag = 0xc0c02117] {
        /// Query id.
        pub query_id: U64,
        /// New owner.
        pub new_owner: Addr,
    }
}

tlb_struct! {
    /// From the pending owner: completes the transfer.
    ///
    /// `accept_ownership#c0c02118 query_id:uint64 = RootMsg;`
    pub struct AcceptOwnership [tag = 0xc0c02118] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// From anyone, after the governance delay: applies a queued change.
    ///
    /// `apply_change#c0c02119 query_id:uint64 change_id:uint32 = RootMsg;`
    pub struct ApplyChange [tag = 0xc0c02119] {
        /// Query id.
        pub query_id: U64,
        /// Change id.
        pub change_id: U32,
    }
}

tlb_struct! {
    /// From the owner: drops a queued change.
    ///
    /// `cancel_change#c0c0211a query_id:uint64 change_id:uint32 = RootMsg;`
    pub struct CancelChange [tag = 0xc0c0211a] {
        /// Query id.
        pub query_id: U64,
        /// Change id.
        pub change_id: U32,
    }
}

tlb_struct! {
    /// Governance: replaces the TEE policy as a whole (queued like every change).
    ///
    /// `set_tee_policy#c0c0211b query_id:uint64 tee:^TeePolicy = RootMsg;`
    pub struct SetTeePolicy [tag = 0xc0c0211b] {
        /// Query id.
        pub query_id: U64,
        /// The new policy.
        pub tee: Ref<TeePolicy>,
    }
}

msg_enum! {
    /// Every message Root v2 accepts.
    pub enum RootMsg {
        RegisterWorker, UpdateWorker, CreateEscrow, SetParams, SetAllowedKinds, AddMeasurement,
        RemoveMeasurement, SetModel, RemoveModel, SetCodes, TransferOwnership, AcceptOwnership,
        ApplyChange, CancelChange, SetTeePolicy,
    }
}
