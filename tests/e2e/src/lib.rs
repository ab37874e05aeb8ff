//! Cocoon end to end: a whole local network in one process.
//!
//! [`Devnet::start`] brings up, in this order: localnet (the real contracts in the TVM emulator,
//! a child `node` process), a Root that allows the Simulated TEE kind and registers the network's
//! models, a relayer (real SQLite store, watching the chain and submitting receipts from its own
//! wallet) and worker nodes (the real models on burn, registered on-chain with a stake, dialled
//! into the relayer). The demo (`cocoon-demo`), the long-running `cocoon-devnet` and the
//! cross-component tests in `tests/` all start the network this way.
//!
//! Everything it starts stops when the [`Devnet`] is dropped or [`Devnet::stop`]ped.
//!
//! # Layout
//! - [`chain`]: localnet, the governor wallet, Root deployment and model registration.
//! - [`devnet`]: the relayer and the worker nodes on top, and clients for apps.
//! - [`proxy`]: a recording, cuttable TCP proxy (what an observer of a link sees; a worker that
//!   vanishes from the network).

pub mod chain;
pub mod devnet;
pub mod proxy;
mod workers;

pub use chain::{LocalChain, RootSetup};
pub use devnet::{Devnet, DevnetOptions, WorkerSetup};
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
