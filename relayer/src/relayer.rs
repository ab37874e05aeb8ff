//! The relayer service: the HTTP/WebSocket server over the [`Shared`] state, and its background
//! tasks (expiry sweep, orphaned attempts).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::client::StreamEvent;

use crate::config::RelayerConfig;
use crate::error::Result;
use crate::hub::FINISHED_RETENTION;
use crate::registry::WorkerRegistry;
pub use crate::state::Shared;
use crate::store::Store;

/// How long a graceful shutdown waits for jobs being dispatched to finish.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A relayer ready to serve.
#[derive(Debug, Clone)]
pub struct Relayer {
    shared: Arc<Shared>,
}

impl Relayer {
    /// A relayer over `store`, verifying workers with `registry`.
    pub fn new(store: Store, registry: Arc<dyn WorkerRegistry>, config: RelayerConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(store, registry, config)),
        }
    }

    /// The shared state (tests and the benchmark look inside).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The HTTP router: client API, worker WebSocket, health and metrics.
    pub fn router(&self) -> axum::Router {
        crate::api::router(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then shuts down gracefully: stops starting
    /// jobs, lets jobs being dispatched finish (up to [`DEFAULT_DRAIN_TIMEOUT`]), then closes
    /// worker sessions and client streams.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let shared = self.shared.clone();
        recover(&shared).await?;
        let sweeper = tokio::spawn(sweep(shared.clone()));
        let addr = listener.local_addr()?;
        info!(target: "relayer::server", %addr, "serving");
        let drain = {
            let shared = shared.clone();
            async move {
                shutdown.await;
                info!(target: "relayer::server", active = shared.dispatcher.active(), "shutting down: draining jobs");
                shared.dispatcher.drain();
                if !shared.dispatcher.wait_idle(DEFAULT_DRAIN_TIMEOUT).await {
                    warn!(target: "relayer::server", active = shared.dispatcher.active(), "drain timed out");
                }
                shared.close();
            }
        };
        let limits = shared.config.listener_limits();
        let router = cocoon_http::harden(self.router(), &limits, crate::api::render_refusal());
        let result = cocoon_http::serve(listener, router, limits, drain).await;
        sweeper.abort();
        info!(target: "relayer::server", "stopped");
        result.map_err(Into::into)
    }
}

/// After a restart: attempts whose lease ran out are lost with their sessions; put those jobs
/// back to waiting so the next connecting worker takes them. (Attempts still within their lease
/// may belong to another instance on the same database; the sweep picks them up once it ends.)
async fn recover(shared: &Shared) -> Result<()> {
    requeue_orphans(shared).await?;
    shared.dispatcher.reload_waiting().await?;
    Ok(())
}

/// Attempts whose lease ran out belong to a relayer instance that stopped mid-attempt (this one
/// before a restart, or another on the same database): their jobs wait for the next worker.
async fn requeue_orphans(shared: &Shared) -> Result<usize> {
    let jobs = shared
        .store
        .requeue_expired_leases(unix_now_i64(), "relayer stopped mid-attempt")
        .await?;
    for job in &jobs {
        info!(target: "relayer::dispatch", %job, "orphaned attempt requeued");
    }
    Ok(jobs.len())
}

/// Background upkeep: expire jobs past deadline + grace, and forget old finished streams.
async fn sweep(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.expiry_sweep);
    loop {
        tick.tick().await;
        match shared
            .store
            .expire_due(unix_now_i64(), shared.config.grace_period)
            .await
        {
            Ok(expired) => {
                for job in expired {
                    info!(target: "relayer::expiry", %job, "job expired unsettled");
                    shared.hub.publish(
                        &job,
                        StreamEvent::Failed {
                            reason: "deadline passed; refunded on-chain".into(),
                        },
                    );
                }
            }
            Err(e) => warn!(target: "relayer::expiry", error = %e, "expiry sweep failed"),
        }
        if let Err(e) = requeue_orphans(&shared).await {
            warn!(target: "relayer::dispatch", error = %e, "orphan sweep failed");
        }
        // Jobs parked by another instance on the same database, or requeued just now.
        if let Err(e) = shared.dispatcher.reload_waiting().await {
            warn!(target: "relayer::dispatch", error = %e, "reloading waiting jobs failed");
        }
        shared.hub.evict_finished(FINISHED_RETENTION);
    }
}
