//! Re-attestation while serving: before the on-chain attestation expires the node asks its TEE
//! for fresh evidence, updates its Worker record (attestation only), swaps the evidence it
//! serves and reconnects to the relayer once the jobs in flight are done.
//!
//! The keys never change here, so the receipt ledger carries over: a job (or seq) already signed
//! is never signed again, before or after a renewal.

use std::sync::Arc;
use std::time::Duration;

use cocoon_sdk::chain::TonCenterClient;
use cocoon_sdk::contracts::RootVersion;
use cocoon_sdk::wallet::ServiceSender;
use tokio::sync::watch;
use tracing::{info, warn};

use super::onchain::{DEFAULT_ATTESTATION_TTL, RENEW_BEFORE, chain_now, renew_attestation};
use super::{NodeConfig, NodeContext, onchain_v2};

/// Default interval between expiry checks.
pub const DEFAULT_RENEW_CHECK: Duration = Duration::from_secs(60);

/// When the node renews its attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// Lifetime of a fresh attestation, seconds.
    pub ttl: u32,
    /// Renew when the attestation expires within this many seconds (of chain time).
    pub renew_before: u32,
    /// How often the serving node compares the expiry with the chain time.
    pub check_every: Duration,
}

impl Default for Renewal {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_ATTESTATION_TTL,
            renew_before: RENEW_BEFORE,
            check_every: DEFAULT_RENEW_CHECK,
        }
    }
}

/// Checks the expiry every `check_every` until shutdown; renews when due, through the Worker of
/// the Root's `version`. A failed renewal is retried at the next check (the old attestation stays
/// valid until its expiry).
pub(crate) async fn run(
    ctx: Arc<NodeContext>,
    cfg: NodeConfig,
    sender: ServiceSender,
    chain: TonCenterClient,
    version: RootVersion,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cfg.renewal.check_every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let expires_at = ctx.evidence().expires_at;
        let now = match chain_now(&chain, &cfg.root).await {
            Ok(now) => now,
            Err(e) => {
                warn!(target: "worker::node::renew", error = %e, "cannot read the chain time");
                continue;
            }
        };
        if now.saturating_add(cfg.renewal.renew_before) < expires_at {
            continue;
        }
        info!(target: "worker::node::renew", worker = %ctx.address_hex, expires_at, chain_time = now, "attestation expires soon: renewing");
        let renewed = match version {
            RootVersion::V1 => renew_attestation(&chain, &cfg, &sender, &ctx.address).await,
            RootVersion::V2 => {
                onchain_v2::renew_attestation(&chain, &cfg, &sender, &ctx.address).await
            }
        };
        match renewed {
            Ok(ev) => {
                let expires_at = ev.expires_at;
                ctx.set_evidence(ev);
                info!(target: "worker::node::renew", worker = %ctx.address_hex, expires_at, "attestation renewed");
            }
            Err(e) => {
                warn!(target: "worker::node::renew", error = %e, expires_at, "renewal failed; retrying at the next check");
            }
        }
    }
}
