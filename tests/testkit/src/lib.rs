//! Cocoon test kit: the one place tests get a development network and the peers around it.
//!
//! ```text
//!  DevChain ── localnet (scripts/localnet/server.js) + deploy_dev_root (the dev parameters)
//!     ├── funded wallets, registered Workers (Simulated evidence bound to their keys)
//!     ├── FakeRelayer (client API + scripted worker answers)   StubWorker (worker session)
//!     └── TcpProxy (records / cuts a link) → wire (decode as an observer)   FaultProxy (HTTP faults)
//! ```
//!
//! Every crate's tests take it as a dev-dependency (the cycle through a dev-dependency is one
//! cargo allows); the demo and the devnet take it as a dependency of the end-to-end crate.
//!
//! # Layout
//! - [`chain`]: [`DevChain`], [`deploy_dev_root`] and the development parameters ([`dev`]).
//! - [`chain_v2`]: [`DevChainV2`] and [`deploy_dev_root_v2`], the same for protocol v2 (channels).
//! - [`fake_relayer`]: [`FakeRelayer`], the client API over scripted answers.
//! - [`stub`]: [`StubWorker`], a worker session that answers at once with valid receipts.
//! - [`proxy`]: [`TcpProxy`], a recording, cuttable TCP proxy; [`wire`]: what an observer of
//!   its bytes can decode.
//! - [`faults`]: [`FaultProxy`], an HTTP proxy that injects errors, drops and delays.
//! - [`sse`]: [`collect_stream`], a job's event stream read to its end.
//! - [`escrow_books`]: an Escrow's free balance rebuilt from its transactions.
//! - [`gateway`]: [`start_gateway`], the OpenAI-compatible gateway on a loopback port.
//! - [`error`]: [`TestkitError`], the kit's one error.

#![warn(missing_docs)]

pub mod chain;
pub mod chain_v2;
pub mod error;
pub mod escrow_books;
pub mod fake_relayer;
pub mod faults;
pub mod gateway;
pub mod proxy;
pub mod sse;
pub mod stub;
pub mod wire;

pub use chain::{DevChain, RegisteredWorker, deploy_dev_root, dev};
pub use chain_v2::{DevChainV2, deploy_dev_root_v2};
pub use error::{Result, TestkitError};
pub use fake_relayer::{FakeRelayer, Script};
pub use faults::{Fault, FaultProxy};
pub use gateway::{start_gateway, start_gateway_over};
pub use proxy::{Flow, TcpProxy};
pub use sse::{collect_stream, collect_stream_with};
pub use stub::{StubHandle, StubMode, StubWorker};
