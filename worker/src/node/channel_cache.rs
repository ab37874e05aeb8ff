//! Channel states as the chain holds them, cached per channel: the request path reads the chain
//! only when a channel is new to the node, when its entry is older than the cache's lifetime, or
//! when the caller asks for a fresh read (a voucher or seq that does not fit the cached state may
//! mean a top-up, a settlement or a close the node has not seen yet).
//!
//! The relayer's word is never taken for a channel: the state comes from the Escrow, and a state
//! whose network or Root differs from the request's channel is no channel of that request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cocoon_sdk::channel::{ChannelRef, ChannelSource, ChannelState};
use tracing::debug;

/// How long a channel state is used before it is read again (the relayer's cache too).
pub const DEFAULT_CHANNEL_TTL: Duration = Duration::from_secs(30);

/// A [`ChannelSource`] with a per-channel cache.
#[derive(Debug)]
pub struct ChannelCache<S> {
    source: S,
    ttl: Duration,
    entries: Mutex<HashMap<ChannelRef, (ChannelState, Instant)>>,
}

impl<S: ChannelSource> ChannelCache<S> {
    /// A cache over `source` whose entries live `ttl`.
    pub fn new(source: S, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The channel's state: the cached one while it is younger than the lifetime, else read.
    /// `Ok(None)`: the chain holds no such channel (never opened, closed, or another network's).
    pub async fn get(&self, channel: &ChannelRef) -> Result<Option<ChannelState>, S::Error> {
        if let Some((state, at)) = self.lock().get(channel)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(state.clone()));
        }
        self.fresh(channel).await
    }

    /// The channel's state read from the chain now (and cached).
    pub async fn fresh(&self, channel: &ChannelRef) -> Result<Option<ChannelState>, S::Error> {
        let read = self
            .source
            .channel(&channel.escrow, channel.channel_id)
            .await?
            .filter(|s| &s.channel == channel);
        debug!(target: "worker::node::channels", channel_id = channel.channel_id, escrow = %channel.escrow.to_hex(), found = read.is_some(), "channel read from the chain");
        let mut entries = self.lock();
        match &read {
            Some(state) => {
                entries.insert(channel.clone(), (state.clone(), Instant::now()));
            }
            None => {
                entries.remove(channel);
            }
        }
        Ok(read)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelRef, (ChannelState, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use cocoon_sdk::tlb::TonAddress;

    use super::*;

    fn addr(n: u8) -> TonAddress {
        TonAddress::new(0, [n; 32].into())
    }

    fn channel(id: u64) -> ChannelRef {
        ChannelRef {
            global_id: -239,
            root: addr(1),
            escrow: addr(2),
            channel_id: id,
        }
    }

    fn state(id: u64, amount: u128) -> ChannelState {
        ChannelState {
            channel: channel(id),
            amount,
            settled: 0,
            last_seq: 0,
            expires_at: 100,
            close_requested_at: 0,
            settle_until: 200,
            price_in: 1,
            price_out: 3,
            worker: addr(3),
            worker_owner: addr(4),
            relayer: addr(5),
            relayer_fee_bps: 100,
            protocol_fee_bps: 100,
            voucher_key: [9; 32],
            relayer_due: 0,
        }
    }

    /// Channel 7 exists with an amount that grows at every read; others do not.
    #[derive(Default)]
    struct Chain {
        reads: AtomicU32,
    }

    impl ChannelSource for Chain {
        type Error = std::io::Error;
        async fn channel(
            &self,
            _escrow: &TonAddress,
            id: u64,
        ) -> Result<Option<ChannelState>, std::io::Error> {
            let n = self.reads.fetch_add(1, Ordering::SeqCst);
            Ok((id == 7).then(|| state(7, 1_000 + u128::from(n))))
        }
    }

    #[tokio::test]
    async fn reads_once_per_lifetime_unless_asked_fresh() {
        let cache = ChannelCache::new(Chain::default(), Duration::from_secs(60));
        let first = cache.get(&channel(7)).await.unwrap().unwrap();
        assert_eq!(first.amount, 1_000);
        assert_eq!(cache.get(&channel(7)).await.unwrap().unwrap().amount, 1_000);
        assert_eq!(cache.source.reads.load(Ordering::SeqCst), 1);
        assert_eq!(
            cache.fresh(&channel(7)).await.unwrap().unwrap().amount,
            1_001
        );
        assert_eq!(cache.get(&channel(7)).await.unwrap().unwrap().amount, 1_001);
        // An unknown channel is read every time (it may be opened any moment).
        assert!(cache.get(&channel(8)).await.unwrap().is_none());
        assert!(cache.get(&channel(8)).await.unwrap().is_none());
        assert_eq!(cache.source.reads.load(Ordering::SeqCst), 4);

        let expired = ChannelCache::new(Chain::default(), Duration::ZERO);
        expired.get(&channel(7)).await.unwrap();
        assert_eq!(
            expired.get(&channel(7)).await.unwrap().unwrap().amount,
            1_001
        );
    }

    #[tokio::test]
    async fn a_channel_of_another_network_or_root_is_unknown() {
        let cache = ChannelCache::new(Chain::default(), Duration::from_secs(60));
        let mut other_root = channel(7);
        other_root.root = addr(9);
        assert!(cache.get(&other_root).await.unwrap().is_none());
        let mut other_net = channel(7);
        other_net.global_id = -3;
        assert!(cache.get(&other_net).await.unwrap().is_none());
    }
}
