//! Cocoon applications over the sdk: the `cocoon` command line, the OpenAI-compatible gateway,
//! and the local network launcher.
//!
//! ```text
//!  cocoon (src/main.rs) ──▶ commands ──▶ cocoon_sdk (protocol, chain, client)
//!                              │
//!                              ├──▶ gateway (axum) ──▶ cocoon_sdk::client
//!                              └──▶ localnet (Node: scripts/localnet/server.js)
//! ```
//!
//! # Layout
//!
//! - [`commands`]: the command line, one module per command family (`wallet`, `escrow`,
//!   `worker`, `root`, `deploy`, `localnet`, the client commands, `gateway`).
//! - [`gateway`]: the OpenAI-compatible HTTP gateway (`cocoon gateway`).
//! - [`watch`]: the equivocation watcher (`cocoon watch`).
//! - [`dashboard`]: the network dashboard (`cocoon dashboard`): one embedded page and its JSON API.
//! - [`localnet`]: starts/stops the local network (sandbox emulator behind a toncenter API);
//!   `cocoon localnet` and the test kit use it.
//!
//! The sdk stays a library of protocol, chain and client code; everything that owns a process,
//! a listener or a terminal lives here, so the worker (the binary inside the TEE) links none of it.

#![warn(missing_docs)]

pub mod commands;
pub mod dashboard;
pub mod gateway;
pub mod localnet;
mod output;
pub mod watch;

pub use commands::{Cli, Command, run};
pub use localnet::{Localnet, LocalnetConfig, LocalnetError, LocalnetTiming};
pub use output::{OutputArgs, Printer};
