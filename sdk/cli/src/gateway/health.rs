//! `GET /health`: whether the gateway can serve now. It is ready when what a request needs
//! answers: the relayer (its own `/health`, with at least one worker session) and the chain
//! (toncenter answers for the gateway's Escrow). 200 when ready, 503 with the failing checks
//! otherwise, so a load balancer takes a gateway out of rotation while its upstreams are down.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use super::backend::Backend;
use super::routes::Shared;

/// Longest one readiness probe may take: a health check must answer even when an upstream hangs.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One upstream probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was probed: `relayer`, `workers`, `chain`.
    pub name: &'static str,
    /// It answered as needed.
    pub ok: bool,
    /// What it said, or why it failed.
    pub detail: String,
}

impl Check {
    /// A passed check.
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            detail: detail.into(),
        }
    }

    /// A failed check.
    pub fn fail(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            detail: detail.into(),
        }
    }
}

/// What a backend reports about its upstreams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Every probe made (none: the backend has no upstream to probe).
    pub checks: Vec<Check>,
}

impl Readiness {
    /// Whether every check passed.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Runs `probe` within [`PROBE_TIMEOUT`]: a hung upstream is a failed check named `name`.
pub async fn probe(name: &'static str, probe: impl Future<Output = Check>) -> Check {
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .unwrap_or_else(|_| {
            Check::fail(
                name,
                format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
            )
        })
}

/// The probes of the SDK client's upstreams: the relayer answers `/health` as ok with at least
/// one worker session, and the chain answers for the client's Escrow.
pub async fn client_readiness(client: &cocoon_sdk::client::Client) -> Readiness {
    use cocoon_sdk::chain::ChainApi as _;
    let relayer = probe("relayer", async {
        match client.relayer().health().await {
            Ok(h) if h.status == "ok" && h.workers > 0 => {
                Check::pass("relayer", format!("{} worker sessions", h.workers))
            }
            Ok(h) if h.status == "ok" => Check::fail("relayer", "no worker is connected"),
            Ok(h) => Check::fail("relayer", format!("relayer reports {}", h.status)),
            Err(e) => Check::fail("relayer", e.to_string()),
        }
    });
    let chain = probe("chain", async {
        match client.chain().account(client.escrow_address()).await {
            Ok(_) => Check::pass("chain", client.chain().base_url().to_owned()),
            Err(e) => Check::fail("chain", e.to_string()),
        }
    });
    let (relayer, chain) = tokio::join!(relayer, chain);
    Readiness {
        checks: vec![relayer, chain],
    }
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    checks: Vec<Check>,
}

/// `GET /health` (no key needed).
pub async fn health<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> impl IntoResponse {
    let r = shared.backend.readiness().await;
    let ready = r.ready();
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(HealthBody {
            status: if ready { "ok" } else { "degraded" },
            checks: r.checks,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_probe_fails_its_check_in_time() {
        let started = std::time::Instant::now();
        let c = probe("relayer", std::future::pending()).await;
        assert!(!c.ok);
        assert_eq!(c.name, "relayer");
        assert!(started.elapsed() < PROBE_TIMEOUT + Duration::from_secs(2));
        let r = Readiness {
            checks: vec![Check::pass("chain", "ok"), c],
        };
        assert!(!r.ready());
        assert!(Readiness::default().ready());
    }
}
