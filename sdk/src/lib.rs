//! Cocoon protocol SDK.
//!
//! Everything a program needs to speak the Cocoon protocol on TON: typed contract messages,
//! chain access, attestation evidence and policy, HPKE sealing, receipts, and the client API.
//! Applications (the `cocoon` command line, the OpenAI gateway, the localnet launcher) live in
//! the `cocoon-cli` crate beside this one, so the worker links only protocol code.
//!
//! ```text
//!  client ──seal──▶ relay (wire types) ──▶ worker ──receipt──▶ chain (contracts, messages, tlb)
//!     └── attest: verify evidence against the Root's policy
//! ```
//!
//! # Layout
//!
//! - [`args`] (feature `clap`): the `--chain.*` and `--wallet.*` flags every binary shares, and
//!   the `--config <FILE>` TOML file every binary reads ([`args::config_file`]).
//! - [`attest`]: TEE evidence (SEV-SNP, TDX, Simulated), verification policy, key binding, providers.
//! - [`seal`]: HPKE sealing to one or K workers, the sealed response stream, commitments.
//! - [`chain`]: the [`chain::ChainApi`] trait and its toncenter v2/v3 client.
//! - [`channel`]: protocol v2 payment channels: the per-request receipt, the client's voucher, the
//!   receipt accumulator and inclusion proofs (`contracts/v2/schema.tlb`); the client's
//!   [`channel::ChannelSession`] and the worker's [`channel::WorkerChannel`] (credit, settlement
//!   policy).
//! - [`clock`]: the one "unix seconds now" of the workspace.
//! - [`client`]: the client API: connect, deposit, verified workers, open a job, follow its
//!   stream, check its receipt and its settlement.
//! - [`contracts`]: Root / Worker / Escrow clients, typed getters, child address derivation.
//! - [`error`]: the top-level [`Error`], wrapping each area's error enum.
//! - [`job`]: the sealed payloads (job request, output chunks) and the network's models.
//! - [`messages`]: typed contract messages and records (`contracts/schema.tlb`).
//! - [`receipt`]: the signed receipt cell, signing, verification and the client-side check.
//! - [`relay`]: wire types between the relayer, workers and clients (worker sessions, client API).
//! - [`tlb`]: TL-B conventions and field helpers shared by every wire type.
//! - [`units`]: TON ↔ nanoTON, exact.
//! - [`wallet`]: mnemonics, Wallet V5R1 / V4R2, `send_and_confirm` without double sends.

#![warn(missing_docs)]

#[cfg(feature = "clap")]
pub mod args;
pub mod attest;
pub mod chain;
pub mod channel;
pub mod client;
pub mod clock;
pub mod contracts;
pub mod error;
pub mod job;
pub mod messages;
pub mod receipt;
pub mod relay;
pub mod seal;
pub mod tlb;
pub mod units;
pub mod wallet;

pub use error::{Error, Result};
