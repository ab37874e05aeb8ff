//! The node's status listener (`--metrics.listen`): `GET /metrics` (Prometheus text, see
//! [`super::metrics`]) and `GET /health` (ready when every model is loaded, a relayer session is
//! up and the chain answers; 503 otherwise, with the failing checks), on the hardened
//! `cocoon-http` listener. While it runs, a watcher reads the node's own Worker contract so the
//! unsettled value falls as settlements land, whoever posted them (the node or a relayer).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cocoon_sdk::chain::{ChainApi, TonCenterClient};
use cocoon_sdk::messages::escrow::Settle;
use cocoon_sdk::tlb::TlbType as _;
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::{debug, info};

use super::NodeContext;
use super::models::ModelHandle;

/// Default address of the status listener: loopback only (metrics are for the operator).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9480";
/// Longest the chain probe of `/health` may take.
pub const CHAIN_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between looks at the Worker contract's transactions for settlements.
pub const SETTLEMENT_POLL: Duration = Duration::from_secs(5);
/// Largest request the status listener reads (it takes none with a body).
const MAX_BODY_BYTES: usize = 1024;
/// Transactions read per page.
const PAGE: u32 = 50;

/// What the status listener reads: the running node's context and its chain client.
#[derive(Clone)]
pub struct StatusSource {
    pub(crate) ctx: Arc<NodeContext>,
    pub(crate) chain: TonCenterClient,
}

impl std::fmt::Debug for StatusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusSource")
            .field("worker", &self.ctx.address_hex)
            .finish()
    }
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `models`, `relayer` or `chain`.
    pub name: &'static str,
    /// It passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// The `/health` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// The Worker contract.
    pub worker: String,
    /// Jobs running now.
    pub load: u32,
    /// Every check.
    pub checks: Vec<Check>,
}

impl StatusSource {
    /// Checks readiness now.
    pub async fn health(&self) -> Health {
        let models: Vec<String> = self
            .ctx
            .models
            .values()
            .map(|(spec, _)| spec.name.to_string())
            .collect();
        let models = Check {
            name: "models",
            ok: !models.is_empty(),
            detail: models.join(", "),
        };
        let connected = *self.ctx.connected.borrow();
        let relayer = Check {
            name: "relayer",
            ok: connected,
            detail: if connected {
                "session up"
            } else {
                "no session"
            }
            .into(),
        };
        let chain =
            match tokio::time::timeout(CHAIN_PROBE_TIMEOUT, self.chain.account(&self.ctx.address))
                .await
            {
                Ok(Ok(_)) => Check {
                    name: "chain",
                    ok: true,
                    detail: self.chain.base_url().to_owned(),
                },
                Ok(Err(e)) => Check {
                    name: "chain",
                    ok: false,
                    detail: e.to_string(),
                },
                Err(_) => Check {
                    name: "chain",
                    ok: false,
                    detail: format!("no answer within {} s", CHAIN_PROBE_TIMEOUT.as_secs()),
                },
            };
        let checks = vec![models, relayer, chain];
        Health {
            status: if checks.iter().all(|c| c.ok) {
                "ok"
            } else {
                "degraded"
            },
            worker: self.ctx.address_hex.clone(),
            load: self.ctx.load(),
            checks,
        }
    }

    /// The metrics text, with the gauges read now.
    pub fn metrics_text(&self) -> String {
        let m = &self.ctx.metrics;
        m.jobs_in_flight.set(i64::from(self.ctx.load()));
        m.relayer_connected
            .set(i64::from(*self.ctx.connected.borrow()));
        let mut waiting = 0usize;
        for (spec, handle) in self.ctx.models.values() {
            if let ModelHandle::Text(t) = handle {
                let load = t.scheduler_load();
                m.set_batch(spec.name, load.batch());
                waiting += load.waiting();
            }
        }
        m.queue.set(i64::try_from(waiting).unwrap_or(i64::MAX));
        m.render()
    }

    /// One look at the Worker contract's transactions after `after_lt`: settlements it sent
    /// clear their receipts from the unsettled value. Returns the logical time read up to.
    pub async fn scan_settlements(&self, mut after_lt: u64) -> u64 {
        loop {
            let txs = match self
                .chain
                .transactions(&self.ctx.address, after_lt, PAGE)
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    debug!(target: "worker::node::status", error = %e, "reading the Worker's transactions failed");
                    return after_lt;
                }
            };
            let n = txs.len();
            for tx in txs {
                after_lt = after_lt.max(tx.id.lt);
                if tx.failed() {
                    continue;
                }
                for m in &tx.out_msgs {
                    if m.opcode != Some(Settle::OP) {
                        continue;
                    }
                    let Some(settle) = m.body.as_ref().and_then(|b| Settle::from_cell(b).ok())
                    else {
                        continue;
                    };
                    if self.ctx.metrics.settled(&settle.receipt_hash) {
                        debug!(target: "worker::node::status", job = settle.job_id, cost = settle.cost, "receipt settled");
                    }
                }
            }
            if n < PAGE as usize {
                return after_lt;
            }
        }
    }
}

fn router(source: StatusSource) -> Router {
    let limits = cocoon_http::Limits::with_max_body(MAX_BODY_BYTES);
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(source);
    let render: cocoon_http::Render =
        Arc::new(|r: &cocoon_http::Refusal| (r.status(), r.message()).into_response());
    cocoon_http::harden(router, &limits, render)
}

async fn metrics(State(s): State<StatusSource>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics_text(),
    )
}

async fn health(State(s): State<StatusSource>) -> impl IntoResponse {
    let h = s.health().await;
    (
        if h.status == "ok" {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(h),
    )
}

/// Serves `/metrics` and `/health` on `listener` until `shutdown` resolves, and watches the
/// Worker contract for settlements meanwhile. Settlements that landed before the listener
/// started are not looked for (their receipts were signed by an earlier run, if any).
pub async fn serve(
    source: StatusSource,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    info!(target: "worker::node::status", %addr, "status listener (/metrics, /health)");
    let watcher = {
        let source = source.clone();
        tokio::spawn(async move {
            let mut after_lt = source
                .chain
                .account(&source.ctx.address)
                .await
                .map(|a| a.last_tx.map_or(0, |t| t.lt))
                .unwrap_or(0);
            loop {
                tokio::time::sleep(SETTLEMENT_POLL).await;
                after_lt = source.scan_settlements(after_lt).await;
            }
        })
    };
    let limits = cocoon_http::Limits::with_max_body(MAX_BODY_BYTES);
    let served = cocoon_http::serve(listener, router(source), limits, shutdown).await;
    watcher.abort();
    served
}
