//! The router and the server loop. [`serve`] takes its listener and shutdown signal as
//! arguments, so tests start the real server on port 0.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use super::backend::Backend;
use super::config::GatewayConfig;
use super::error::GatewayError;
use super::health;
use super::metrics::{self, GatewayMetrics};
use super::middleware::{ApiKey, Cors, cors, require_key};
use super::routes::{Shared, embeddings, jobs, models, text};

/// The gateway's HTTP API over `backend`:
///
/// | route | |
/// |---|---|
/// | `POST /v1/chat/completions` | chat, JSON or SSE (`stream: true`) |
/// | `POST /v1/completions` | raw completion, JSON or SSE |
/// | `POST /v1/embeddings` | embeddings (`float` or `base64`) |
/// | `GET /v1/models`, `GET /v1/models/{model}` | models, attested workers, prices |
/// | `GET /v1/cocoon/jobs/{escrow}/{id}` | on-chain settlement of a job |
/// | `GET /health` | readiness: relayer and chain answer (no key needed) |
/// | `GET /metrics` | Prometheus text: requests by route and status, latency (no key needed) |
pub fn router<B: Backend>(backend: B, config: GatewayConfig) -> Router {
    let key = Arc::new(ApiKey::new(config.api_key.as_deref()));
    let cors_cfg = Arc::new(Cors::new(&config.cors_origins));
    let body_limit = config.max_body_bytes;
    let limits = config.listener_limits();
    let render = GatewayError::render_refusal();
    let metrics_state = Arc::new(GatewayMetrics::new());
    let shared = Arc::new(Shared { backend, config });
    let api = Router::new()
        .route("/v1/chat/completions", post(text::chat::<B>))
        .route("/v1/completions", post(text::completions::<B>))
        .route("/v1/embeddings", post(embeddings::embeddings::<B>))
        .route("/v1/models", get(models::list::<B>))
        .route("/v1/models/{model}", get(models::get::<B>))
        .route("/v1/cocoon/jobs/{*job}", get(jobs::settlement::<B>))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared.clone());
    // The key is checked before any of the body is read (a caller without it never gets to
    // send one); the rate limit comes before both.
    let api = cocoon_http::guard::guard_body(api, &limits, render.clone())
        .layer(from_fn_with_state(key, require_key));
    let router = Router::new()
        .route("/health", get(health::health::<B>))
        .with_state(shared)
        .route("/metrics", get(metrics::render))
        .with_state(metrics_state.clone())
        .merge(api);
    let router = cocoon_http::guard::limit_rate(router, &limits, render);
    let router = if cors_cfg.enabled() {
        router.layer(from_fn_with_state(cors_cfg, cors))
    } else {
        router
    };
    // Outermost: refusals by the rate limit and the key count too.
    router.layer(from_fn_with_state(metrics_state, metrics::track))
}

async fn not_found(uri: axum::http::Uri) -> GatewayError {
    GatewayError::NotFound(format!("no route {}", uri.path()))
}

/// Serves the gateway on `listener` until `shutdown` completes (in-flight requests finish).
pub async fn serve<B: Backend>(
    listener: TcpListener,
    backend: B,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(target: "gateway::http", %addr, key = config.api_key.is_some(), cors = ?config.cors_origins, "gateway listening");
    // The listener sets TCP_NODELAY: without it the first small SSE write waits on the peer's
    // delayed ACK (~40 ms of time to first token on loopback, examples/gateway_overhead.rs).
    let limits = config.listener_limits();
    cocoon_http::serve(listener, router(backend, config), limits, shutdown).await
}
