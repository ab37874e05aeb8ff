//! The dashboard's HTTP side: `GET /` (the page, embedded), `GET /api/overview` (JSON),
//! `GET /health`, on the hardened listener.

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

use super::collect::Collector;

/// The page: HTML with its CSS and JavaScript inline, plots drawn as SVG by the script.
pub const PAGE: &str = include_str!("page.html");
/// Largest request body the dashboard reads (it takes none).
const MAX_BODY_BYTES: usize = 1024;

/// The dashboard's routes over `collector`.
pub fn router(collector: Arc<Collector>) -> Router {
    let limits = cocoon_http::Limits::with_max_body(MAX_BODY_BYTES);
    let render: cocoon_http::Render = Arc::new(|r: &cocoon_http::Refusal| {
        (r.status(), Json(json!({"error": r.message()}))).into_response()
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/api/overview", get(overview))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .with_state(collector);
    cocoon_http::harden(router, &limits, render)
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            // Everything is inline: nothing may be loaded from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        Html(PAGE),
    )
}

async fn overview(State(c): State<Arc<Collector>>) -> impl IntoResponse {
    match c.overview().await {
        Ok(o) => (
            StatusCode::OK,
            Json(serde_json::to_value(o).unwrap_or_default()),
        ),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": format!("{e:#}")})),
        ),
    }
}

/// Serves the dashboard on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    collector: Arc<Collector>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = cocoon_http::Limits::with_max_body(MAX_BODY_BYTES);
    cocoon_http::serve(listener, router(collector), limits, shutdown).await
}
