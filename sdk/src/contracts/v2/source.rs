//! The chain-backed [`ChannelSource`]: `get_channel` on the Escrow, with the network's global id
//! and the Escrow's Root read once per Escrow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::escrow::EscrowClient;
use crate::chain::ChainApi;
use crate::channel::{ChannelSource, ChannelState};
use crate::contracts::{ContractError, ContractResult};
use crate::tlb::TonAddress;

/// Reads channels from their Escrows over any [`ChainApi`]. Not a cache of channels: every call
/// is one get-method (callers cache with their own policy); only what never changes for an
/// Escrow (its Root, the network) is remembered.
#[derive(Debug, Clone)]
pub struct ChainChannels<C> {
    chain: C,
    escrows: Arc<Mutex<HashMap<TonAddress, (TonAddress, i32)>>>,
}

impl<C: ChainApi> ChainChannels<C> {
    /// A reader over `chain`.
    pub fn new(chain: C) -> Self {
        Self {
            chain,
            escrows: Arc::default(),
        }
    }

    /// The chain it reads.
    pub fn chain(&self) -> &C {
        &self.chain
    }

    async fn identity(&self, escrow: &TonAddress) -> ContractResult<(TonAddress, i32)> {
        if let Some(v) = self.known(escrow) {
            return Ok(v);
        }
        // The root argument is a placeholder until the Escrow says which Root it belongs to.
        let probe = EscrowClient::at(&self.chain, escrow.clone(), escrow.clone());
        let root = probe.state().await?.root;
        let global_id = probe.global_id().await?;
        self.escrows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(escrow.clone(), (root.clone(), global_id));
        Ok((root, global_id))
    }

    fn known(&self, escrow: &TonAddress) -> Option<(TonAddress, i32)> {
        self.escrows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(escrow)
            .cloned()
    }
}

impl<C: ChainApi> ChannelSource for ChainChannels<C> {
    type Error = ContractError;

    async fn channel(&self, escrow: &TonAddress, id: u64) -> ContractResult<Option<ChannelState>> {
        let (root, global_id) = self.identity(escrow).await?;
        EscrowClient::at(&self.chain, root, escrow.clone())
            .channel_with(global_id, id)
            .await
    }
}
