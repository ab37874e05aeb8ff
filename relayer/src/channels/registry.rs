//! The channels the relayer routes, as the chain holds them: a cache of [`ChannelState`]s in
//! front of a [`ChannelSource`]. A miss reads the chain once; a hit reads nothing, so the hot
//! path of a known channel never waits for the chain. Entries age out after
//! [`DEFAULT_CHANNEL_TTL`] (top-ups and close requests show up then), and a worker refusal that
//! says the channel changed drops its entry at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cocoon_sdk::channel::{ChannelSource, ChannelState};
use cocoon_sdk::tlb::TonAddress;
use futures_util::future::BoxFuture;

/// How long a cached channel is trusted before it is read again.
pub const DEFAULT_CHANNEL_TTL: Duration = Duration::from_secs(30);

/// A failed chain read (not "no such channel").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading channel {channel_id} of {escrow}: {detail}")]
pub struct ChannelReadError {
    /// The Escrow (raw address).
    pub escrow: String,
    /// The channel id.
    pub channel_id: u64,
    /// What went wrong.
    pub detail: String,
}

/// An object-safe [`ChannelSource`] (the sdk trait returns `impl Future`).
pub trait ChannelBook: Send + Sync + 'static {
    /// The channel `id` of `escrow` now; `Ok(None)`: no such channel.
    fn read<'a>(
        &'a self,
        escrow: &'a TonAddress,
        id: u64,
    ) -> BoxFuture<'a, Result<Option<ChannelState>, ChannelReadError>>;
}

/// Any [`ChannelSource`] as a [`ChannelBook`].
#[derive(Debug, Clone)]
pub struct SourceBook<S>(pub S);

impl<S: ChannelSource + 'static> ChannelBook for SourceBook<S> {
    fn read<'a>(
        &'a self,
        escrow: &'a TonAddress,
        id: u64,
    ) -> BoxFuture<'a, Result<Option<ChannelState>, ChannelReadError>> {
        Box::pin(async move {
            self.0
                .channel(escrow, id)
                .await
                .map_err(|e| ChannelReadError {
                    escrow: escrow.to_hex(),
                    channel_id: id,
                    detail: e.to_string(),
                })
        })
    }
}

/// A book that knows no channel (a relayer without a v2 chain).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoChannels;

impl ChannelBook for NoChannels {
    fn read<'a>(
        &'a self,
        _escrow: &'a TonAddress,
        _id: u64,
    ) -> BoxFuture<'a, Result<Option<ChannelState>, ChannelReadError>> {
        Box::pin(async { Ok(None) })
    }
}

type Key = (TonAddress, u64);

/// Cached channel states over a [`ChannelBook`].
pub struct ChannelCache {
    book: RwLock<Arc<dyn ChannelBook>>,
    ttl: Duration,
    entries: RwLock<HashMap<Key, (ChannelState, Instant)>>,
}

impl std::fmt::Debug for ChannelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl ChannelCache {
    /// An empty cache over `book`, trusting entries for `ttl`.
    pub fn new(book: Arc<dyn ChannelBook>, ttl: Duration) -> Self {
        Self {
            book: RwLock::new(book),
            ttl,
            entries: RwLock::default(),
        }
    }

    /// Reads channels from `book` from now on (and forgets what the old one said).
    pub fn set_book(&self, book: Arc<dyn ChannelBook>) {
        *self.book.write().unwrap_or_else(|e| e.into_inner()) = book;
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The cached state of a channel, if fresh.
    pub fn cached(&self, escrow: &TonAddress, id: u64) -> Option<ChannelState> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let (state, at) = entries.get(&(escrow.clone(), id))?;
        (at.elapsed() < self.ttl).then(|| state.clone())
    }

    /// The state of a channel: the cache, or one chain read on a miss. Unknown channels are not
    /// remembered (one may be opened a moment later).
    pub async fn get(
        &self,
        escrow: &TonAddress,
        id: u64,
    ) -> Result<Option<ChannelState>, ChannelReadError> {
        if let Some(s) = self.cached(escrow, id) {
            return Ok(Some(s));
        }
        let book = self.book.read().unwrap_or_else(|e| e.into_inner()).clone();
        let read = book.read(escrow, id).await?;
        if let Some(s) = &read {
            self.entries
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert((escrow.clone(), id), (s.clone(), Instant::now()));
        }
        Ok(read)
    }

    /// Drops a channel's entry (its worker says it changed).
    pub fn forget(&self, escrow: &TonAddress, id: u64) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(escrow.clone(), id));
    }

    /// Number of cached channels.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
