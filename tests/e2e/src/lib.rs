//! Cocoon end to end: a whole local network in one process.
//!
//! [`Devnet::start`] brings up, in this order: the test kit's development chain (localnet — the
//! real contracts in the TVM emulator, a child `node` process — and the development Root, which
//! allows the Simulated TEE kind and registers the network's models; a Root v2 under
//! [`Protocol::Channels`]), a relayer (real SQLite store, watching the chain and submitting receipts from its own
//! wallet) and worker nodes (the real models on burn, registered on-chain with a stake, dialled
//! into the relayer). The demo (`cocoon-demo`), the long-running `cocoon-devnet` and the
//! cross-component tests in `tests/` all start the network this way.
//!
//! Everything it starts stops when the [`Devnet`] is dropped or [`Devnet::stop`]ped.
//!
//! # Layout
//! - [`canary`]: what the confidentiality (canary) tests share.
//! - [`devnet`]: the relayer and the worker nodes on top of a `cocoon_testkit::DevChain`, and
//!   clients for apps. Links to workers go through the test kit's recording `TcpProxy`.

#![warn(missing_docs)]

pub mod canary;
pub mod devnet;
mod workers;

pub use devnet::{Devnet, DevnetOptions, Protocol, WorkerSetup};
pub use workers::RunningWorker;

/// Logs to stderr for binaries and tests: `RUST_LOG` when set, else `default`.
pub fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
