//! The HTTP listener Cocoon's servers share (the relayer's API and worker endpoint, the
//! gateway): one caller must not be able to hurt the others.
//!
//! ```text
//!  accept ─▶ caps (overall, per peer IP) ─▶ idle timeout (no byte either way)
//!         ─▶ hyper HTTP/1 (header read timeout, upgrades) ─▶ rate limit (per peer IP, 429)
//!         ─▶ body guard (Content-Length over the cap: 413 at once; body read timeout: 408)
//!         ─▶ the service's router
//! ```
//!
//! - [`serve`]: the accept loop with the connection caps, hyper's header timeout and graceful
//!   shutdown; every request carries the peer's [`axum::extract::ConnectInfo`].
//! - [`guard`]: the request layers (rate limit, body guard) and the [`Refusal`] each service
//!   renders in its own error format.
//! - [`caps`]: connection counting; [`idle`]: the idle timeout on a connection's bytes.
//!
//! Defaults are the constants below; each binary exposes them as flags in its own namespace.

#![warn(missing_docs)]

pub mod caps;
pub mod guard;
pub mod idle;
pub mod serve;

use std::time::Duration;

pub use guard::{Refusal, Render, harden};
pub use serve::serve;

/// Time a connection has to deliver a complete request head, counted from when the server
/// starts waiting for one (a new connection, or a kept-alive one between requests).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request body has to arrive in full once its head is read.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a connection may go without a byte read or written (streams send keep-alives well
/// within it).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections served at once; beyond it a new one is refused and closed. Kept well below the
/// common 1,024 open-file limit so the database, logs and chain client always have room.
pub const DEFAULT_MAX_CONNECTIONS: usize = 768;
/// Connections one peer IP may hold at once; beyond it its new ones are refused and closed.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// Requests per second one peer IP may make on average (0: no limit).
pub const DEFAULT_RATE_PER_SECOND: u32 = 200;
/// Requests one peer IP may make in a burst above the average.
pub const DEFAULT_RATE_BURST: u32 = 400;

/// What a listener enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`DEFAULT_BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// See [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// Largest request body, bytes: a larger `Content-Length` is refused before any of the body
    /// is read.
    pub max_body_bytes: usize,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`DEFAULT_MAX_CONNECTIONS_PER_IP`].
    pub max_connections_per_ip: usize,
    /// See [`DEFAULT_RATE_PER_SECOND`].
    pub rate_per_second: u32,
    /// See [`DEFAULT_RATE_BURST`].
    pub rate_burst: u32,
}

impl Limits {
    /// The defaults, with the service's own body cap.
    pub fn with_max_body(max_body_bytes: usize) -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_body_bytes,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            rate_burst: DEFAULT_RATE_BURST,
        }
    }
}
