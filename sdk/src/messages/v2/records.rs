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
    /// Attestation policy, the model registry and the TEE policy.
    ///
    /// `root_policy$_ allowed_kinds:uint8 measurements:(HashmapE 256 Empty)
    /// models:(HashmapE 32 bits256) tee:^TeePolicy = RootPolicy;`
    pub struct RootPolicy {
        /// Bit `1 << kind` set = kind allowed (see [`tee_kind`]).
        pub allowed_kinds: U8,
        /// Allow-listed measurements / image hashes.
        pub measurements: Set256,
        /// Model id → hash of `name@revision:weights-sha256`.
        pub models: MapU32Bits256,
        /// What SEV-SNP and TDX evidence must show beyond the measurement.
        pub tee: Ref<TeePolicy>,
    }
}

tlb_struct! {
    /// SEV-SNP minimum TCB, per component of the report's `TCB_VERSION`: a report passes when
    /// every component it reports is at least this. `fmc` is reported (and checked) only by
    /// Turin-era (family 1Ah) processors.
    ///
    /// `snp_min_tcb$_ boot_loader:uint8 tee:uint8 snp:uint8 microcode:uint8 fmc:uint8 =
    /// SnpMinTcb;`
    pub struct SnpMinTcb {
        /// Boot loader SVN.
        pub boot_loader: U8,
        /// PSP OS (TEE) SVN.
        pub tee: U8,
        /// SNP firmware SVN.
        pub snp: U8,
        /// Microcode patch level.
        pub microcode: U8,
        /// Firmware mitigation control (Turin-era reports only).
        pub fmc: U8,
    }
}

tlb_struct! {
    /// TDX rules: `attributes & td_attributes_mask == td_attributes_value`, and MRCONFIGID,
    /// MROWNER and RTMR3 each in its allow-list where that list is not empty (empty: any value).
    ///
    /// `tdx_policy$_ td_attributes_mask:uint64 td_attributes_value:uint64
    /// mr_config_ids:(HashmapE 384 Empty) mr_owners:(HashmapE 384 Empty)
    /// rtmr3s:(HashmapE 384 Empty) = TdxPolicy;`
    pub struct TdxPolicy {
        /// TD attribute bits the rule looks at.
        pub td_attributes_mask: U64,
        /// Their required values (no bit outside the mask: Root refuses such a policy, 105).
        pub td_attributes_value: U64,
        /// Allowed MRCONFIGID values (empty: any).
        pub mr_config_ids: Set384,
        /// Allowed MROWNER values (empty: any).
        pub mr_owners: Set384,
        /// Allowed RTMR3 values (empty: any).
        pub rtmr3s: Set384,
    }
}

tlb_struct! {
    /// The TEE policy Root holds (changed only through the governance queue, `set_tee_policy`).
    ///
    /// `tee_policy$_ snp_min_tcb:SnpMinTcb tdx:TdxPolicy = TeePolicy;`
    pub struct TeePolicy {
        /// SEV-SNP minimum TCB.
        pub snp_min_tcb: Inline<SnpMinTcb>,
        /// TDX rules.
        pub tdx: Inline<TdxPolicy>,
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
    /// The parties a client names at open (kept by the Escrow as received).
    ///
    /// `channel_parties$_ worker_owner:MsgAddressInt relayer:MsgAddressInt voucher_key:bits256 =
    /// ChannelParties;`
    pub struct ChannelParties {
        /// Owner of the only Worker the channel pays (who settlements pay).
        pub worker_owner: Addr,
        /// The relayer.
        pub relayer: Addr,
        /// The client's ed25519 voucher key.
        pub voucher_key: Bits256,
    }
}

tlb_struct! {
    /// An open channel (dictionary value keyed by channel id).
    ///
    /// `channel$_ amount:Coins settled:Coins relayer_due:Coins last_seq:uint32 expires_at:uint32
    /// close_requested_at:uint32 settle_until:uint32 price_in:Coins price_out:Coins
    /// worker:MsgAddressInt relayer_fee_bps:uint16 protocol_fee_bps:uint16
    /// parties:^ChannelParties = Channel;`
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
        /// The Worker contract of the worker owner (the only settlement sender).
        pub worker: Addr,
        /// Relayer share of each settlement (bps).
        pub relayer_fee_bps: U16,
        /// Protocol share, copied from the config at open (bps).
        pub protocol_fee_bps: U16,
        /// Worker owner, relayer and voucher key, as the open sent them.
        pub parties: Ref<ChannelParties>,
    }
}

tlb_struct! {
    /// The proof a settlement carries from the worker node through the Worker to the Escrow: the
    /// client's voucher (signature, cumulative, final) and the receipt's seq, tokens and cost.
    ///
    /// `settle_proof$_ voucher_signature:bits512 cumulative:Coins final:Bool seq:uint32
    /// tokens_in:uint32 tokens_out:uint32 cost:Coins = SettleProof;`
    pub struct SettleProof {
        /// The client's voucher signature.
        pub voucher_signature: Bits512,
        /// The voucher's cumulative amount.
        pub cumulative: Coins,
        /// The voucher's final flag (TL-B `final`).
        pub is_final: Bool,
        /// The receipt's seq (the voucher's `last_seq`).
        pub seq: U32,
        /// The receipt's input tokens.
        pub tokens_in: U32,
        /// The receipt's output tokens.
        pub tokens_out: U32,
        /// The receipt's cost.
        pub cost: Coins,
    }
}

tlb_struct! {
    /// A receipt's signature and the accumulator before it.
    ///
    /// `receipt_seal$_ signature:bits512 prev_acc:bits256 = ReceiptSeal;`
    pub struct ReceiptSeal {
        /// The worker's receipt signature.
        pub signature: Bits512,
        /// `acc_{seq-1}`.
        pub prev_acc: Bits256,
    }
}

tlb_struct! {
    /// The representation hashes of a receipt's hashes and commitments cells.
    ///
    /// `receipt_ref_hashes$_ hashes_hash:bits256 commitments_hash:bits256 = ReceiptRefHashes;`
    pub struct ReceiptRefHashes {
        /// Hash of the `ReceiptHashes` cell.
        pub hashes_hash: Bits256,
        /// Hash of the `ReceiptCommitments` cell.
        pub commitments_hash: Bits256,
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
    /// `worker_data$_ root:MsgAddressInt status:uint8 receipt_key:bits256
    /// models:(HashmapE 32 Empty) owner:MsgAddressInt stake:Coins unlock_at:uint32 key_count:uint8
    /// receipt_keys:(HashmapE 256 Empty) record:(Maybe ^WorkerRecord)
    /// config:(Maybe ^WorkerConfig) = WorkerData;`
    pub struct WorkerData {
        /// Root.
        pub root: Addr,
        /// Status ([`worker_status`]).
        pub status: U8,
        /// The current record's receipt key (a copy beside the status, read by settlements).
        pub receipt_key: Bits256,
        /// The current record's models (a copy, like `receipt_key`).
        pub models: SetU32,
        /// Owner wallet.
        pub owner: Addr,
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
            status: worker_status::UNINIT,
            receipt_key: [0; 32],
            models: Default::default(),
            owner,
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

impl SnpMinTcb {
    /// Whether a report's TCB components meet this minimum: each of boot loader, TEE, SNP and
    /// microcode at least the policy's, and `fmc` too where the report has one (`Some` on
    /// Turin-era reports only).
    pub fn admits(
        &self,
        boot_loader: u8,
        tee: u8,
        snp: u8,
        microcode: u8,
        fmc: Option<u8>,
    ) -> bool {
        boot_loader >= self.boot_loader
            && tee >= self.tee
            && snp >= self.snp
            && microcode >= self.microcode
            && fmc.is_none_or(|f| f >= self.fmc)
    }
}

impl TdxPolicy {
    /// Whether a TD's attributes and registers satisfy these rules: the masked attributes equal
    /// the required value, and each register is in its allow-list unless that list is empty.
    pub fn admits(
        &self,
        td_attributes: u64,
        mr_config_id: &[u8; 48],
        mr_owner: &[u8; 48],
        rtmr3: &[u8; 48],
    ) -> bool {
        let listed = |set: &std::collections::BTreeSet<[u8; 48]>, v: &[u8; 48]| {
            set.is_empty() || set.contains(v)
        };
        td_attributes & self.td_attributes_mask == self.td_attributes_value
            && listed(&self.mr_config_ids, mr_config_id)
            && listed(&self.mr_owners, mr_owner)
            && listed(&self.rtmr3s, rtmr3)
    }
}

impl TeePolicy {
    /// The policy that adds nothing to the measurement check: minimum TCB 0 everywhere, no TDX
    /// attribute rule, every allow-list empty (any value).
    pub fn any() -> Self {
        Self {
            snp_min_tcb: SnpMinTcb {
                boot_loader: 0,
                tee: 0,
                snp: 0,
                microcode: 0,
                fmc: 0,
            },
            tdx: TdxPolicy {
                td_attributes_mask: 0,
                td_attributes_value: 0,
                mr_config_ids: Default::default(),
                mr_owners: Default::default(),
                rtmr3s: Default::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snp_minimum_tcb_checks_every_component_and_fmc_only_where_reported() {
        let min = SnpMinTcb {
            boot_loader: 8,
            tee: 15,
            snp: 22,
            microcode: 29,
            fmc: 36,
        };
        assert!(min.admits(8, 15, 22, 29, None));
        assert!(min.admits(9, 16, 23, 30, Some(36)));
        for low in [
            (7, 15, 22, 29, None),
            (8, 14, 22, 29, None),
            (8, 15, 21, 29, None),
            (8, 15, 22, 28, None),
            (8, 15, 22, 29, Some(35)),
        ] {
            assert!(!min.admits(low.0, low.1, low.2, low.3, low.4), "{low:?}");
        }
        assert!(TeePolicy::any().snp_min_tcb.admits(0, 0, 0, 0, Some(0)));
    }

    #[test]
    fn tdx_rules_mask_the_attributes_and_empty_lists_allow_any_value() {
        let (a, b) = ([0x3c; 48], [0x3d; 48]);
        let mut p = TeePolicy::any().tdx;
        assert!(p.admits(u64::MAX, &a, &a, &a));
        // Debug (bit 0) must be clear, bit 28 (SEPT_VE_DISABLE) set; other bits are free.
        p.td_attributes_mask = 1 | 1 << 28;
        p.td_attributes_value = 1 << 28;
        assert!(p.admits(1 << 28 | 1 << 5, &a, &a, &a));
        assert!(!p.admits(1 << 28 | 1, &a, &a, &a));
        assert!(!p.admits(0, &a, &a, &a));
        p.mr_owners.insert(a);
        assert!(p.admits(1 << 28, &b, &a, &b));
        assert!(!p.admits(1 << 28, &a, &b, &a));
    }
}
