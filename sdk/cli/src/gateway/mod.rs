//! The OpenAI-compatible gateway (`cocoon gateway`): an HTTP server on the caller's side that
//! speaks the OpenAI API and does the confidential work through the SDK client — worker choice,
//! attestation checks, sealing, escrow jobs, receipt verification — so an existing OpenAI app
//! only changes its base URL and key.
//!
//! ```text
//!  OpenAI app ──HTTP/JSON, SSE──▶ gateway ──Backend (sdk client)──▶ chain + relayer ──▶ worker
//!                                 (this)    seal · open job · verify receipt
//! ```
//!
//! - [`server`]: the router and [`serve`].
//! - [`routes`]: one module per route family.
//! - [`openai`]: request parsing and mapping to [`cocoon_sdk::job::JobRequest`], response shapes with
//!   the `cocoon` fields.
//! - [`sse`]: the streaming framing.
//! - [`backend`]: the [`Backend`] trait the routes call; [`client_backend`]: it over the SDK client.
//! - [`middleware`]: API key and CORS.
//! - [`health`]: `/health` from the backend's readiness probes; [`metrics`]: `/metrics`.
//! - [`config`]: limits and job policy; [`error`]: [`GatewayError`] in the OpenAI error format.

pub mod backend;
pub mod channel_backend;
pub mod client_backend;
pub mod config;
pub mod error;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod openai;
pub mod routes;
pub mod server;
pub mod sse;

pub use backend::{
    Backend, BackendEvent, BackendEvents, ChannelSummary, JobSummary, ModelInfo, SettlementInfo,
};
pub use channel_backend::ChannelBackend;
pub use client_backend::ClientBackend;
pub use config::{GatewayConfig, JobPolicy};
pub use error::{GatewayError, Result};
pub use routes::ATTESTATION_HEADER;
pub use server::{router, serve};
