//! `cocoon dashboard`: one web page that shows the network — Root's parameters, the workers with
//! their attestation, prices, stake and load, settlements over time with plots, the relayer's
//! health — served by this binary with every asset embedded (no framework fetched at run time),
//! readable on a phone, updating live by polling a small JSON API.
//!
//! ```text
//!  browser ──GET / (page.html: inline CSS, JS, SVG plots)──▶ dashboard ──▶ chain (toncenter)
//!          ──GET /api/overview every few seconds────────▶ (this)     ──▶ relayer (/health, /v1/workers)
//! ```
//!
//! - [`collect`]: reads the chain and the relayer into an [`Overview`] (settlements are kept
//!   between polls, so each poll reads only new transactions); on a Root v2, [`v2`] reads the
//!   governance queue, Worker v2 contracts and channel settlements from the Escrows, and
//!   [`earnings`] sums each Worker v2's earnings from those settlements.
//! - [`server`]: the router on the hardened `cocoon-http` listener.

pub mod collect;
mod earnings;
pub mod server;
mod v2;

pub use collect::{Collector, Overview, SettlementPoint, WorkerRow};
pub use server::{PAGE, router, serve};

/// Default address of the dashboard: loopback (put a reverse proxy in front to publish it).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8088";
/// How often the page polls the API, milliseconds (the page reads it from the overview).
pub const DEFAULT_POLL_MS: u64 = 3_000;
