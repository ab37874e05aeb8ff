//! Messages to Escrow v2: deposits, channels, withdrawal, protocol fees.

use super::records::{ChannelParties, EscrowConfig, SettleProof};
use crate::messages::{msg_enum, tlb_struct};
use crate::tlb::codec::*;

tlb_struct! {
    /// From Root only, with the state-init (or later, to refresh the config): the value is a
    /// deposit.
    ///
    /// `escrow_init#c0c02301 query_id:uint64 config:^EscrowConfig = EscrowMsg;`
    pub struct EscrowInit [tag = 0xc0c02301] {
        /// Query id.
        pub query_id: U64,
        /// Config.
        pub config: Ref<EscrowConfig>,
    }
}

tlb_struct! {
    /// From anyone: the value is a deposit.
    ///
    /// `deposit#c0c02302 query_id:uint64 = EscrowMsg;`
    pub struct Deposit [tag = 0xc0c02302] {
        /// Query id.
        pub query_id: U64,
    }
}

tlb_struct! {
    /// From the owner: opens a channel, locking `amount` from the free balance (the value beyond
    /// the open fee is a deposit).
    ///
    /// `open_channel#c0c02303 query_id:uint64 amount:Coins expires_at:uint32 price_in:Coins
    /// price_out:Coins relayer_fee_bps:uint16 notify_relayer:Bool parties:^ChannelParties
    /// = EscrowMsg;`
    pub struct OpenChannel [tag = 0xc0c02303] {
        /// Query id.
        pub query_id: U64,
        /// Locked for the worker.
        pub amount: Coins,
        /// Unix expiry.
        pub expires_at: U32,
        /// Price per input token, fixed for the channel's life.
        pub price_in: Coins,
        /// Price per output token, fixed for the channel's life.
        pub price_out: Coins,
        /// Relayer fee (bps, at most Root's cap).
        pub relayer_fee_bps: U16,
        /// Whether the Escrow sends `channel_opened` to the relayer.
        pub notify_relayer: Bool,
        /// Worker owner, relayer, voucher key.
        pub parties: Ref<ChannelParties>,
    }
}

tlb_struct! {
    /// From the channel's Worker only: the channel, the accumulator the Worker computed from the
    /// receipt it checked, and the proof as the worker node sent it.
    ///
    /// `settle#c0c02304 query_id:uint64 channel_id:uint64 acc:bits256 proof:^SettleProof
    /// = EscrowMsg;`
    pub struct Settle [tag = 0xc0c02304] {
        /// Query id.
        pub query_id: U64,
        /// Channel.
        pub channel_id: U64,
        /// `acc_seq = sha256(receipt.prev_acc ‖ repr_hash(receipt.body))`.
        pub acc: Bits256,
        /// Voucher signature, cumulative and final; the receipt's seq, tokens and cost.
        pub proof: Ref<SettleProof>,
    }
}

tlb_struct! {
    /// From the owner: adds `amount` of the free balance to a channel.
    ///
    /// `top_up#c0c02305 query_id:uint64 channel_id:uint64 amount:Coins = EscrowMsg;`
    pub struct TopUp [tag = 0xc0c02305] {
        /// Query id.
        pub query_id: U64,
        /// Channel.
        pub channel_id: U64,
        /// Amount added.
        pub amount: Coins,
    }
}

tlb_struct! {
    /// From the owner: withdraws free balance.
    ///
    /// `withdraw#c0c02306 query_id:uint64 amount:Coins = EscrowMsg;`
    pub struct Withdraw [tag = 0xc0c02306] {
        /// Query id.
        pub query_id: U64,
        /// Amount (nanoTON).
        pub amount: Coins,
    }
}

tlb_struct! {
    /// From the owner: asks to close a channel early (the worker keeps the grace period).
    ///
    /// `request_close#c0c02307 query_id:uint64 channel_id:uint64 = EscrowMsg;`
    pub struct RequestClose [tag = 0xc0c02307] {
        /// Query id.
        pub query_id: U64,
        /// Channel.
        pub channel_id: U64,
    }
}

tlb_struct! {
    /// From anyone once the settlement window ended: the rest returns to the free balance.
    ///
    /// `close_channel#c0c02308 query_id:uint64 channel_id:uint64 = EscrowMsg;`
    pub struct CloseChannel [tag = 0xc0c02308] {
        /// Query id.
        pub query_id: U64,
        /// Channel.
        pub channel_id: U64,
    }
}

tlb_struct! {
    /// From anyone: pays the protocol fees due to the treasury.
    ///
    /// `collect_fees#c0c02309 query_id:uint64 = EscrowMsg;`
    pub struct CollectFees [tag = 0xc0c02309] {
        /// Query id.
        pub query_id: U64,
    }
}

msg_enum! {
    /// Every message Escrow v2 accepts (an empty body is a deposit too).
    pub enum EscrowMsg {
        EscrowInit, Deposit, OpenChannel, Settle, TopUp, Withdraw, RequestClose, CloseChannel,
        CollectFees,
    }
}
