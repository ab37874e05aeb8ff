//! What the v2 contracts send to wallets (all non-bounceable) and their external-out logs. A
//! channel settlement logs nothing: its record travels in the payout to the worker owner.

use crate::messages::{msg_enum, tlb_struct};
use crate::tlb::codec::*;

tlb_struct! {
    /// Escrow → relayer at open (zero value): a channel it routes.
    ///
    /// Sent only when the open asked for it (`notify_relayer`); the channel's Worker and parties
    /// are in the Escrow's `get_channel`.
    ///
    /// `channel_opened#c0c02401 query_id:uint64 channel_id:uint64 amount:Coins expires_at:uint32
    /// relayer_fee_bps:uint16 = WalletMsg;`
    pub struct ChannelOpened [tag = 0xc0c02401] {
        /// Query id of the OpenChannel.
        pub query_id: U64,
        /// The id the Escrow assigned.
        pub channel_id: U64,
        /// Amount locked.
        pub amount: Coins,
        /// Unix expiry.
        pub expires_at: U32,
        /// Relayer fee (bps).
        pub relayer_fee_bps: U16,
    }
}

tlb_struct! {
    /// Escrow → relayer: the relayer fees a channel accrued, paid once when it ends.
    ///
    /// `relayer_fee#c0c02402 query_id:uint64 channel_id:uint64 = WalletMsg;`
    pub struct RelayerFee [tag = 0xc0c02402] {
        /// Query id.
        pub query_id: U64,
        /// Channel.
        pub channel_id: U64,
    }
}

/// `Payout.reason` values of v2.
pub mod payout_reason {
    /// Stake withdrawn.
    pub const STAKE: u8 = 1;
    /// Escrow withdrawal.
    pub const ESCROW_WITHDRAWAL: u8 = 3;
    /// Slash reward to the reporter.
    pub const SLASH_REWARD: u8 = 5;
    /// Slashed stake to the treasury.
    pub const SLASHED_STAKE: u8 = 6;
    /// Protocol fees to the treasury.
    pub const PROTOCOL_FEES: u8 = 7;
    /// A registration Root or the Worker refused, refunded.
    pub const REGISTRATION_REFUND: u8 = 9;
    /// A channel settled: worker share + unspent settlement value.
    pub const CHANNEL_SETTLED: u8 = 10;
    /// A record update refused, refunded.
    pub const UPDATE_REFUSED: u8 = 11;
    /// A settlement the Escrow refused: the unspent value.
    pub const SETTLEMENT_REFUSED: u8 = 12;
}

tlb_struct! {
    /// What a channel settlement did, recorded in its payout to the worker owner (the Escrow
    /// sends no separate log): any receipt of the channel up to `seq` is provable against `acc`.
    ///
    /// `settlement_record$_ channel_id:uint64 seq:uint32 cumulative:Coins acc:bits256 final:Bool
    /// released:Coins = SettlementRecord;`
    pub struct SettlementRecord {
        /// Channel.
        pub channel_id: U64,
        /// Seq of the receipt settled (the voucher's `last_seq`).
        pub seq: U32,
        /// The voucher's cumulative amount.
        pub cumulative: Coins,
        /// The accumulator after receipt `seq`.
        pub acc: Bits256,
        /// Whether the voucher was final (the channel closed in this settlement).
        pub is_final: Bool,
        /// Returned to the client's free balance (0 unless final).
        pub released: Coins,
    }
}

tlb_struct! {
    /// A payment to a wallet ([`payout_reason`]); a channel settlement's payout
    /// ([`payout_reason::CHANNEL_SETTLED`]) carries its record.
    ///
    /// `payout#c0c02406 query_id:uint64 reason:uint8 settlement:(Maybe SettlementRecord)
    /// = WalletMsg;`
    pub struct Payout [tag = 0xc0c02406] {
        /// Query id.
        pub query_id: U64,
        /// Why.
        pub reason: U8,
        /// The settlement's record, exactly on a channel settlement's payout.
        pub settlement: Maybe<SettlementRecord>,
    }
}

tlb_struct! {
    /// What a message's value did not spend, returned.
    ///
    /// `excesses#d53276db query_id:uint64 = WalletMsg;`
    pub struct Excesses [tag = 0xd53276db] {
        /// Query id.
        pub query_id: U64,
    }
}

msg_enum! {
    /// Every message the v2 contracts send to wallets.
    pub enum WalletMsg { ChannelOpened, RelayerFee, Payout, Excesses }
}

tlb_struct! {
    /// The client asked to close a channel.
    ///
    /// `log_close_requested#c0c02502 channel_id:uint64 close_requested_at:uint32 = Log;`
    pub struct LogCloseRequested [tag = 0xc0c02502] {
        /// Channel.
        pub channel_id: U64,
        /// Unix time of the request.
        pub close_requested_at: U32,
    }
}

tlb_struct! {
    /// A channel closed after its settlement window.
    ///
    /// `log_channel_closed#c0c02503 channel_id:uint64 settled:Coins released:Coins = Log;`
    pub struct LogChannelClosed [tag = 0xc0c02503] {
        /// Channel.
        pub channel_id: U64,
        /// Cumulative amount settled over its life.
        pub settled: Coins,
        /// Returned to the free balance.
        pub released: Coins,
    }
}

tlb_struct! {
    /// A Worker was slashed.
    ///
    /// `log_slashed#c0c02504 reporter:MsgAddressInt reward:Coins to_treasury:Coins = Log;`
    pub struct LogSlashed [tag = 0xc0c02504] {
        /// Reporter.
        pub reporter: Addr,
        /// Reporter's reward.
        pub reward: Coins,
        /// Sent to the treasury.
        pub to_treasury: Coins,
    }
}

tlb_struct! {
    /// A governance change was queued.
    ///
    /// `log_change_queued#c0c02505 change_id:uint32 ready_at:uint32 body_hash:bits256 = Log;`
    pub struct LogChangeQueued [tag = 0xc0c02505] {
        /// Change id.
        pub change_id: U32,
        /// Earliest apply time.
        pub ready_at: U32,
        /// Hash of the queued body.
        pub body_hash: Bits256,
    }
}

tlb_struct! {
    /// A governance change was applied.
    ///
    /// `log_change_applied#c0c02506 change_id:uint32 = Log;`
    pub struct LogChangeApplied [tag = 0xc0c02506] {
        /// Change id.
        pub change_id: U32,
    }
}

tlb_struct! {
    /// A governance change was cancelled.
    ///
    /// `log_change_cancelled#c0c02507 change_id:uint32 = Log;`
    pub struct LogChangeCancelled [tag = 0xc0c02507] {
        /// Change id.
        pub change_id: U32,
    }
}

msg_enum! {
    /// Every external-out log of the v2 contracts.
    pub enum Log {
        LogCloseRequested, LogChannelClosed, LogSlashed, LogChangeQueued, LogChangeApplied,
        LogChangeCancelled,
    }
}
