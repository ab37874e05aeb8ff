//! Records of protocol v2: parameters, policy, codes, the governance queue, worker records,
//! channels and the contracts' persistent data (`contracts/v2/schema.tlb`, "Records" and
//! "Contract data").

use crate::messages::tlb_struct;
use crate::tlb::TonAddress;
use crate::tlb::codec::*;

// `unit$_ = Empty;` is the value type of sets: see the `SetU32` / `Set256` codecs.

/// TEE kinds, as bit positions of `RootPolicy.allowed_kinds` and values of `Attestation.kind`.
pub use crate::messages::records::tee_kind;

/// `WorkerData.status` values.
pub mod worker_status {
    /// Deployed, not initialised by Root yet.
    pub const UNINIT: u8 = 0;
    /// Registered: may settle and be slashed.
    pub const ACTIVE: u8 = 1;
    /// Unbonding: may still settle and be slashed.
    pub const UNBONDING: u8 = 2;
    /// Slashed, forever.
    pub const SLASHED: u8 = 3;
    /// Stake withdrawn (may register again).
    pub const EXITED: u8 = 4;
}

tlb_struct! {
    /// Root parameters (governed, timelocked).
    ///
    /// `root_params$_ min_stake:Coins unbonding_delay:uint32 grace_period:uint32
    /// max_channel_lifetime:uint32 governance_delay:uint32 relayer_fee_cap_bps:uint16
    /// protocol_fee_bps:uint16 reporter_reward_bps:uint16 treasury:MsgAddressInt = RootParams;`
    pub struct RootParams {
        /// Smallest stake RegisterWorker accepts (nanoTON).
        pub min_stake: Coins,
        /// Seconds between Unbond and the earliest WithdrawStake.
        pub unbonding_delay: U32,
        /// Seconds after a channel's expiry (or close request) during which the worker may settle.
        pub grace_period: U32,
        /// OpenChannel refuses an expiry beyond now + this (seconds).
        pub max_channel_lifetime: U32,
        /// Seconds between queueing a governance change and the earliest ApplyChange.
        pub governance_delay: U32,
        /// Highest relayer fee a channel may name (bps).
        pub relayer_fee_cap_bps: U16,
        /// Treasury share of each settled amount (bps).
        pub protocol_fee_bps: U16,
        /// Reporter share of a slashed stake (bps).
        pub reporter_reward_bps: U16,
        /// Receives protocol fees and slashed stake.
        pub treasury: Addr,
    }
}

tlb_struct! {
    /// Attestation policy and the model registry.
    ///
    /// `root_policy$_ allowed_kinds:uint8 measurements:(HashmapE 256 Empty)
    /// models:(HashmapE 32 bits256) = RootPolicy;`
    pub struct RootPolicy {
        /// Bit `1 << kind` set = kind allowed (see [`tee_kind`]).
        pub allowed_kinds: U8,
        /// Allow-listed measurements / image hashes.
        pub measurements: Set256,
        /// Model id → hash of `name@revision:weights-sha256`.
        pub models: MapU32Bits256,
    }
}

tlb_struct! {
    /// The codes Root deploys, and every worker code it issued before (so Workers deployed with
    /// them can still update their record).
    ///
    /// `root_codes$_ worker_code:^Cell escrow_code:^Cell retired_worker_codes:(HashmapE 256 ^Cell)
    /// = RootCodes;`
    pub struct RootCodes {
        /// Current Worker code.
        pub worker_code: AnyRef,
        /// Current Escrow code.
        pub escrow_code: AnyRef,
        /// Earlier worker codes by their hash.
        pub retired_worker_codes: Map256Cell,
    }
}

tlb_struct! {
    /// A queued governance change.
    ///
    /// `pending_change$_ ready_at:uint32 body:^Cell = PendingChange;`
    pub struct PendingChange {
        /// Earliest unix time ApplyChange accepts it.
        pub ready_at: U32,
        /// The owner's message as sent (set_params … transfer_ownership).
        pub body: AnyRef,
    }
}

tlb_struct! {
    /// Root's governance queue.
    ///
    /// `governance_queue$_ next_id:uint32 changes:(HashmapE 32 PendingChange) = GovernanceQueue;`
    pub struct GovernanceQueue {
        /// Id the next queued change gets.
        pub next_id: U32,
        /// Queued changes by id.
        pub changes: MapU32<PendingChange>,
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
    /// What a worker registers or updates (its published prices; a channel fixes its own).
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
    /// Root parameters and code an Escrow keeps (copied at EscrowInit; a later CreateEscrow
    /// refreshes them).
    ///
    /// `escrow_config$_ worker_code:^Cell grace_period:uint32 max_channel_lifetime:uint32
    /// relayer_fee_cap_bps:uint16 protocol_fee_bps:uint16 treasury:MsgAddressInt = EscrowConfig;`
    pub struct EscrowConfig {
        /// Worker code, to compute a channel's Worker address.
        pub worker_code: AnyRef,
        /// Grace period (s).
        pub grace_period: U32,
        /// Longest channel lifetime (s).
        pub max_channel_lifetime: U32,
        /// Relayer fee cap (bps).
        pub relayer_fee_cap_bps: U16,
        /// Protocol fee (bps).
        pub protocol_fee_bps: U16,
        /// Treasury.
        pub treasury: Addr,
    }
}

tlb_struct! {
    /// A channel's fixed terms.
    ///
    /// `channel_terms$_ worker:MsgAddressInt relayer:MsgAddressInt relayer_fee_bps:uint16
    /// protocol_fee_bps:uint16 voucher_key:bits256 = ChannelTerms;`
    pub struct ChannelTerms {
        /// The Worker contract of the chosen worker owner (the only settlement sender).
        pub worker: Addr,
        /// The relayer.
        pub relayer: Addr,
        /// Relayer share of each settlement (bps).
        pub relayer_fee_bps: U16,
        /// Protocol share, copied from the config at open (bps).
        pub protocol_fee_bps: U16,
        /// The client's ed25519 voucher key.
        pub voucher_key: Bits256,
    }
}

tlb_struct! {
    /// An open channel (dictionary value keyed by channel id).
    ///
    /// `channel$_ amount:Coins settled:Coins relayer_due:Coins last_seq:uint32 expires_at:uint32
    /// close_requested_at:uint32 settle_until:uint32 price_in:Coins price_out:Coins
    /// worker_owner:MsgAddressInt terms:^ChannelTerms = Channel;`
    pub struct Channel {
        /// Locked at open plus every top-up.
        pub amount: Coins,
        /// Cumulative amount of the last settled voucher.
        pub settled: Coins,
        /// Relayer fees accrued, paid when the channel ends.
        pub relayer_due: Coins,
        /// Seq of the last settled voucher.
        pub last_seq: U32,
        /// Unix expiry.
        pub expires_at: U32,
        /// Unix time of the close request (0: none).
        pub close_requested_at: U32,
        /// Last unix time a settlement is accepted.
        pub settle_until: U32,
        /// Price per input token (fixed at open).
        pub price_in: Coins,
        /// Price per output token (fixed at open).
        pub price_out: Coins,
        /// Who settlements pay.
        pub worker_owner: Addr,
        /// Fixed terms.
        pub terms: Ref<ChannelTerms>,
    }
}

tlb_struct! {
    /// What a settle carries in its one ref.
    ///
    /// `settle_proof$_ acc:bits256 voucher_signature:bits512 tokens_in:uint32 tokens_out:uint32
    /// cost:Coins = SettleProof;`
    pub struct SettleProof {
        /// acc_seq, computed by the Worker from the receipt.
        pub acc: Bits256,
        /// The client's voucher signature.
        pub voucher_signature: Bits512,
        /// The receipt's input tokens.
        pub tokens_in: U32,
        /// The receipt's output tokens.
        pub tokens_out: U32,
        /// The receipt's cost.
        pub cost: Coins,
    }
}

tlb_struct! {
    /// Who routes a channel's requests and what it earns.
    ///
    /// `channel_route$_ relayer:MsgAddressInt relayer_fee_bps:uint16 = ChannelRoute;`
    pub struct ChannelRoute {
        /// Relayer wallet.
        pub relayer: Addr,
        /// Relayer fee (bps).
        pub relayer_fee_bps: U16,
    }
}

tlb_struct! {
    /// Root's persistent data.
    ///
    /// `root_data$_ owner:MsgAddressInt pending_owner:MsgAddress params:^RootParams
    /// policy:^RootPolicy codes:^RootCodes queue:^GovernanceQueue = RootData;`
    pub struct RootData {
        /// Owner (governance).
        pub owner: Addr,
        /// Owner-to-be during a transfer.
        pub pending_owner: MaybeAddr,
        /// Parameters.
        pub params: Ref<RootParams>,
        /// Attestation policy and models.
        pub policy: Ref<RootPolicy>,
        /// Codes.
        pub codes: Ref<RootCodes>,
        /// Governance queue.
        pub queue: Ref<GovernanceQueue>,
    }
}

tlb_struct! {
    /// Worker's persistent data (the initial data, [`WorkerData::initial`], fixes its address).
    ///
    /// `worker_data$_ root:MsgAddressInt owner:MsgAddressInt status:uint8 stake:Coins
    /// unlock_at:uint32 key_count:uint8 receipt_keys:(HashmapE 256 Empty)
    /// record:(Maybe ^WorkerRecord) config:(Maybe ^WorkerConfig) = WorkerData;`
    pub struct WorkerData {
        /// Root.
        pub root: Addr,
        /// Owner wallet.
        pub owner: Addr,
        /// Status ([`worker_status`]).
        pub status: U8,
        /// Stake (nanoTON).
        pub stake: Coins,
        /// Earliest stake withdrawal (unix).
        pub unlock_at: U32,
        /// Receipt keys ever registered.
        pub key_count: U8,
        /// Every receipt key ever registered (at most 16).
        pub receipt_keys: Set256,
        /// Current record.
        pub record: MaybeRef<WorkerRecord>,
        /// Root parameters it keeps.
        pub config: MaybeRef<WorkerConfig>,
    }
}

tlb_struct! {
    /// Escrow's persistent data (the initial data, [`EscrowData::initial`], fixes its address).
    ///
    /// `escrow_data$_ root:MsgAddressInt owner:MsgAddressInt next_channel_id:uint64
    /// open_channels:uint8 locked:Coins fees_due:Coins channels:(HashmapE 64 Channel)
    /// config:(Maybe ^EscrowConfig) = EscrowData;`
    pub struct EscrowData {
        /// Root.
        pub root: Addr,
        /// Owner (the client).
        pub owner: Addr,
        /// Id the next channel gets (never reset).
        pub next_channel_id: U64,
        /// Channels open (at most 16).
        pub open_channels: U8,
        /// Locked by channels.
        pub locked: Coins,
        /// Protocol fees owed to the treasury.
        pub fees_due: Coins,
        /// Open channels by id.
        pub channels: MapU64<Channel>,
        /// Config from Root.
        pub config: MaybeRef<EscrowConfig>,
    }
}

impl WorkerData {
    /// The data a Worker of `owner` under `root` is deployed with.
    pub fn initial(root: TonAddress, owner: TonAddress) -> Self {
        Self {
            root,
            owner,
            status: worker_status::UNINIT,
            stake: 0,
            unlock_at: 0,
            key_count: 0,
            receipt_keys: Default::default(),
            record: None,
            config: None,
        }
    }
}

impl EscrowData {
    /// The data an Escrow of `owner` under `root` is deployed with.
    pub fn initial(root: TonAddress, owner: TonAddress) -> Self {
        Self {
            root,
            owner,
            next_channel_id: 0,
            open_channels: 0,
            locked: 0,
            fees_due: 0,
            channels: Default::default(),
            config: None,
        }
    }
}
