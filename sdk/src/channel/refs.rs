//! The channel a receipt or voucher belongs to.

use serde::{Deserialize, Serialize};
use tonlib_core::TonAddress;

use super::serde_fields::raw_address;
use crate::tlb::{CellBuilder, CellParser, TlbResult, TlbType, load_address, store_address};

/// `channel_ref$_ global_id:int32 root:MsgAddressInt escrow:MsgAddressInt channel_id:uint64
///     = ChannelRef;`
///
/// Receipt and voucher of one channel carry the very same cell. In JSON (relay envelopes, saved
/// sessions) the addresses are raw `workchain:hex`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelRef {
    /// The network's global id (config param 19: -239 mainnet and localnet, -3 testnet).
    pub global_id: i32,
    /// The Root of the Escrow.
    #[serde(with = "raw_address")]
    pub root: TonAddress,
    /// The client's Escrow.
    #[serde(with = "raw_address")]
    pub escrow: TonAddress,
    /// The id the Escrow assigned at open (never reused).
    pub channel_id: u64,
}

impl TlbType for ChannelRef {
    const NAME: &'static str = "ChannelRef";

    fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
        b.store_i32(32, self.global_id)?;
        store_address(b, &self.root, "ChannelRef.root")?;
        store_address(b, &self.escrow, "ChannelRef.escrow")?;
        b.store_u64(64, self.channel_id)?;
        Ok(())
    }

    fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
        Ok(Self {
            global_id: p.load_i32(32)?,
            root: load_address(p, "ChannelRef.root")?,
            escrow: load_address(p, "ChannelRef.escrow")?,
            channel_id: p.load_u64(64)?,
        })
    }
}
