//! The relayer's state: what the HTTP handlers and the background tasks share. Each part is
//! built with the handles it needs — the dispatcher gets the store, the sessions table, the hub
//! and the metrics here; the worker endpoint gets the dispatcher and the registry when the router
//! is built — so no part reaches back into this struct.

use std::sync::Arc;

use tokio::sync::watch;

use crate::chain_health::ChainHealth;
use crate::channels::ChannelRouter;
use crate::config::RelayerConfig;
use crate::dispatcher::{DispatchDeps, Dispatcher};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::registry::WorkerRegistry;
use crate::sessions::Sessions;
use crate::store::Store;

/// State shared by the HTTP handlers and the background tasks.
pub struct Shared {
    /// The database.
    pub store: Store,
    /// Where worker records are read.
    pub registry: Arc<dyn WorkerRegistry>,
    /// Live worker sessions.
    pub sessions: Arc<Sessions>,
    /// Per-job event streams.
    pub hub: Arc<Hub>,
    /// Job dispatch.
    pub dispatcher: Dispatcher,
    /// Channel-mode routing (protocol v2).
    pub channels: Arc<ChannelRouter>,
    /// Metrics (shared with the watcher and the submitter).
    pub metrics: Arc<Metrics>,
    /// Tunables.
    pub config: RelayerConfig,
    /// Whether the chain answers (reported by `/health`).
    pub chain: ChainHealth,
    close: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The state of a relayer over `store`, verifying workers with `registry`.
    pub fn new(store: Store, registry: Arc<dyn WorkerRegistry>, config: RelayerConfig) -> Self {
        let sessions = Arc::new(Sessions::default());
        let hub = Arc::new(Hub::new());
        let metrics = Arc::new(Metrics::new());
        let dispatcher = Dispatcher::new(DispatchDeps {
            store: store.clone(),
            sessions: sessions.clone(),
            hub: hub.clone(),
            metrics: metrics.clone(),
            config: config.clone(),
        });
        let channels = Arc::new(ChannelRouter::new(sessions.clone(), &config));
        Self {
            store,
            registry,
            sessions,
            hub,
            dispatcher,
            channels,
            metrics,
            config,
            chain: ChainHealth::default(),
            close: watch::channel(false).0,
        }
    }

    /// Fires (changes to `true`) when sessions and streams must close.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.close.subscribe()
    }

    /// Tells sessions and streams to close.
    pub fn close(&self) {
        let _ = self.close.send(true);
    }
}
