//! Records: parameters, policy, worker record, jobs and the contracts' persistent data.

use crate::tlb::codec::*;

use super::tlb_struct;

// `unit$_ = Empty;` is the value type of sets: see the `SetU32` / `Set256` codecs.

/// TEE kinds, as bit positions of `RootPolicy.allowed_kinds` and values of `Attestation.kind`.
pub mod tee_kind {
    /// Simulated (local development only; never allowed on a production Root).
    pub const SIMULATED: u8 = 0;
    /// AMD SEV-SNP.
    pub const SEV_SNP: u8 = 1;
    /// Intel TDX.
    pub const TDX: u8 = 2;
}

tlb_struct! {
    /// Owner-governed protocol parameters of Root.
    ///
    /// `root_params$_ min_stake:Coins unbonding_delay:uint32 grace_period:uint32
    /// relayer_fee_cap_bps:uint16 protocol_fee_bps:uint16 reporter_reward_bps:uint16
    /// treasury:MsgAddressInt = RootParams;`
    pub struct RootParams {
        /// Smallest stake RegisterWorker accepts (nanoTON).
        pub min_stake: Coins,
        /// Seconds between Unbond and the earliest WithdrawStake.
        pub unbonding_delay: U32,
        /// Seconds after a job's deadline during which a settlement is still accepted.
        pub grace_period: U32,
        /// Highest relayer fee an OpenJob may name (bps).
        pub relayer_fee_cap_bps: U16,
        /// Treasury share of each settled cost (bps).
        pub protocol_fee_bps: U16,
        /// Reporter share of a slashed stake (bps).
        pub reporter_reward_bps: U16,
        /// Receives protocol fees and slashed stake.
        pub treasury: Addr,
    }
}

tlb_struct! {
    /// Attestation policy.
    ///
    /// `root_policy$_ allowed_kinds:uint8 measurements:(HashmapE 256 Empty) = RootPolicy;`
    pub struct RootPolicy {
        /// Bit `1 << kind` set = kind allowed (see [`tee_kind`]).
        pub allowed_kinds: U8,
        /// Allow-listed measurements / image hashes.
        pub measurements: Set256,
    }
}

tlb_struct! {
    /// A worker's attestation as recorded on-chain.
    ///
    /// `attestation$_ kind:uint8 measurement:bits256 evidence_hash:bits256 expires_at:uint32 =
    /// Attestation;`
    pub struct Attestation {
        /// TEE kind ([`tee_kind`]).
        pub kind: U8,
        /// Launch measurement / image hash.
        pub measurement: Bits256,
        /// sha256 of the evidence the worker serves.
        pub evidence_hash: Bits256,
        /// Unix time after which clients must not trust it.
        pub expires_at: U32,
    }
}

tlb_struct! {
    /// What a worker registers or re-registers.
    ///
    /// `worker_record$_ receipt_key:bits256 encryption_key:bits256 price_in:Coins price_out:Coins
    /// models:(HashmapE 32 Empty) attestation:^Attestation = WorkerRecord;`
    pub struct WorkerRecord {
        /// ed25519 public key that signs receipts.
        pub receipt_key: Bits256,
        /// X25519 public key inputs are sealed to.
        pub encryption_key: Bits256,
        /// nanoTON per input token.
        pub price_in: Coins,
        /// nanoTON per output token.
        pub price_out: Coins,
        /// Model ids served.
        pub models: SetU32,
        /// Attestation.
        pub attestation: Ref<Attestation>,
    }
}

tlb_struct! {
    /// Root parameters a Worker keeps.
    ///
    /// `worker_config$_ unbonding_delay:uint32 reporter_reward_bps:uint16 treasury:MsgAddressInt
    /// = WorkerConfig;`
    pub struct WorkerConfig {
        /// Seconds of unbonding.
        pub unbonding_delay: U32,
        /// Reporter share of a slash (bps).
        pub reporter_reward_bps: U16,
        /// Treasury.
        pub treasury: Addr,
    }
}

tlb_struct! {
    /// Root parameters and code an Escrow keeps.
    ///
    /// `escrow_config$_ worker_code:^Cell grace_period:uint32 relayer_fee_cap_bps:uint16
    /// protocol_fee_bps:uint16 treasury:MsgAddressInt = EscrowConfig;`
    pub struct EscrowConfig {
        /// Worker code, to authenticate Worker addresses.
        pub worker_code: AnyRef,
        /// Grace period (s).
        pub grace_period: U32,
        /// Relayer fee cap (bps).
        pub relayer_fee_cap_bps: U16,
        /// Protocol fee (bps).
        pub protocol_fee_bps: U16,
        /// Treasury.
        pub treasury: Addr,
    }
}

tlb_struct! {
    /// Who dispatches a job and, optionally, the only Worker allowed to settle it.
    ///
    /// `job_route$_ relayer:MsgAddressInt worker:MsgAddress = JobRoute;`
    pub struct JobRoute {
        /// Relayer wallet.
        pub relayer: Addr,
        /// Worker contract, if one is named.
        pub worker: MaybeAddr,
    }
}

tlb_struct! {
    /// An open job as the Escrow stores it.
    ///
    /// `job$_ model_id:uint32 max_cost:Coins deadline:uint32 relayer_fee_bps:uint16
    /// input_commitment:bits256 route:^JobRoute = Job;`
    pub struct Job {
        /// Model id.
        pub model_id: U32,
        /// Locked funds (nanoTON, < 2^64).
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
    /// Codes Root deploys children with.
    ///
    /// `root_codes$_ worker_code:^Cell escrow_code:^Cell = RootCodes;`
    pub struct RootCodes {
        /// Worker code.
        pub worker_code: AnyRef,
        /// Escrow code.
        pub escrow_code: AnyRef,
    }
}

tlb_struct! {
    /// Root's persistent data (also its initial data at deployment).
    ///
    /// `root_data$_ owner:MsgAddressInt pending_owner:MsgAddress params:^RootParams
    /// policy:^RootPolicy models:(HashmapE 32 bits256) codes:^RootCodes = RootData;`
    pub struct RootData {
        /// Governance owner.
        pub owner: Addr,
        /// Owner-to-be during a two-step transfer.
        pub pending_owner: MaybeAddr,
        /// Parameters.
        pub params: Ref<RootParams>,
        /// Attestation policy.
        pub policy: Ref<RootPolicy>,
        /// Model registry: id → sha256("name@revision:weights-sha256").
        pub models: MapU32Bits256,
        /// Child codes.
        pub codes: Ref<RootCodes>,
    }
}

/// Worker status values (`WorkerData.status`).
pub mod worker_status {
    /// Not initialised yet.
    pub const UNINITIALIZED: u8 = 0;
    /// Serving.
    pub const ACTIVE: u8 = 1;
    /// Unbonding: no new work, stake locked until `unlock_at`.
    pub const UNBONDING: u8 = 2;
    /// Slashed forever.
    pub const SLASHED: u8 = 3;
    /// Stake withdrawn; may register again.
    pub const EXITED: u8 = 4;
}

tlb_struct! {
    /// Worker's persistent data; with everything zero/absent it is the initial data that fixes
    /// the Worker address for (root, owner).
    ///
    /// `worker_data$_ root:MsgAddressInt owner:MsgAddressInt status:uint8 stake:Coins earned:Coins
    /// unlock_at:uint32 record:(Maybe ^WorkerRecord) config:(Maybe ^WorkerConfig) = WorkerData;`
    pub struct WorkerData {
        /// Root.
        pub root: Addr,
        /// Owner wallet.
        pub owner: Addr,
        /// [`worker_status`].
        pub status: U8,
        /// Stake (nanoTON).
        pub stake: Coins,
        /// Earned, withdrawable (nanoTON).
        pub earned: Coins,
        /// Earliest stake withdrawal (unix).
        pub unlock_at: U32,
        /// Registered record.
        pub record: MaybeRef<WorkerRecord>,
        /// Config copied from Root.
        pub config: MaybeRef<WorkerConfig>,
    }
}

impl WorkerData {
    /// The initial data of the Worker of `owner` under `root`.
    pub fn initial(root: crate::tlb::TonAddress, owner: crate::tlb::TonAddress) -> Self {
        Self {
            root,
            owner,
            status: 0,
            stake: 0,
            earned: 0,
            unlock_at: 0,
            record: None,
            config: None,
        }
    }
}

tlb_struct! {
    /// Escrow's persistent data; zero/absent fields give the initial data for (root, owner).
    ///
    /// `escrow_data$_ root:MsgAddressInt owner:MsgAddressInt last_job_id:uint64 locked:Coins
    /// fees_due:Coins jobs:(HashmapE 64 Job) config:(Maybe ^EscrowConfig) = EscrowData;`
    pub struct EscrowData {
        /// Root.
        pub root: Addr,
        /// Client wallet.
        pub owner: Addr,
        /// Highest job id opened.
        pub last_job_id: U64,
        /// Locked by open jobs (nanoTON).
        pub locked: Coins,
        /// Protocol fees owed to the treasury (nanoTON).
        pub fees_due: Coins,
        /// Open jobs.
        pub jobs: MapU64<Job>,
        /// Config copied from Root.
        pub config: MaybeRef<EscrowConfig>,
    }
}

impl EscrowData {
    /// The initial data of the Escrow of `owner` under `root`.
    pub fn initial(root: crate::tlb::TonAddress, owner: crate::tlb::TonAddress) -> Self {
        Self {
            root,
            owner,
            last_job_id: 0,
            locked: 0,
            fees_due: 0,
            jobs: Default::default(),
            config: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::messages::testing::{Arb, check_round_trip};
    use crate::tlb::{TlbType, TonAddress};

    macro_rules! round_trips {
        ($($t:ident),*) => { proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $( #[test] #[allow(non_snake_case)] fn $t(v in <$t as Arb>::arb()) { check_round_trip(&v, false)?; } )*
        } };
    }
    round_trips!(
        RootParams,
        RootPolicy,
        Attestation,
        WorkerRecord,
        WorkerConfig,
        EscrowConfig,
        JobRoute,
        Job,
        RootCodes,
        RootData,
        WorkerData,
        EscrowData
    );

    #[test]
    fn initial_data_has_the_documented_shape() {
        // "the two addresses followed by 50 (worker) / 74 (escrow) zero bits and no references"
        let a = TonAddress::NULL;
        let w = WorkerData::initial(a.clone(), a.clone()).to_cell().unwrap();
        assert_eq!((w.bit_len(), w.references().len()), (2 * 267 + 50, 0));
        let e = EscrowData::initial(a.clone(), a).to_cell().unwrap();
        assert_eq!((e.bit_len(), e.references().len()), (2 * 267 + 74, 0));
    }
}
