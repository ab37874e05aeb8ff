//! Cocoon protocol SDK.
//!
//! Everything a program needs to speak the Cocoon protocol on TON: typed contract messages,
//! chain access, attestation evidence and policy, HPKE sealing, receipts, and the client API.
//!
//! # Layout
//! (modules are added as the areas land)
//!
//! - [`attest`]: TEE evidence (SEV-SNP, TDX, Simulated), verification policy, key binding, providers.
//! - [`seal`]: HPKE sealing to one or K workers, the sealed response stream, commitments.
//! - [`chain`]: the [`chain::ChainApi`] trait and its toncenter v2/v3 client.
//! - [`channel`]: protocol v2 payment channels: the per-request receipt, the client's voucher, the
//!   receipt accumulator and inclusion proofs (`contracts/v2/schema.tlb`).
//! - [`cli`]: the `cocoon` command line (used by `src/bin/cocoon.rs`).
//! - [`client`]: the client API: connect, deposit, verified workers, open a job, follow its
//!   stream, check its receipt and its settlement.
//! - [`contracts`]: Root / Worker / Escrow clients, typed getters, child address derivation.
//! - [`error`]: the top-level [`Error`], wrapping each area's error enum.
//! - [`gateway`]: the OpenAI-compatible HTTP gateway (`cocoon gateway`).
//! - [`job`]: the sealed payloads (job request, output chunks) and the network's models.
//! - [`localnet`]: starts/stops the local network (sandbox emulator behind a toncenter API).
//! - [`messages`]: typed contract messages and records (`contracts/schema.tlb`).
//! - [`receipt`]: the signed receipt cell, signing, verification and the client-side check.
//! - [`relay`]: wire types between the relayer, workers and clients (worker sessions, client API).
//! - [`tlb`]: TL-B conventions and field helpers shared by every wire type.
//! - [`units`]: TON ↔ nanoTON, exact.
//! - [`wallet`]: mnemonics, Wallet V5R1 / V4R2, `send_and_confirm` without double sends.

pub mod attest;
pub mod chain;
pub mod channel;
pub mod cli;
pub mod client;
pub mod contracts;
pub mod error;
pub mod gateway;
pub mod job;
pub mod localnet;
pub mod messages;
pub mod receipt;
pub mod relay;
pub mod seal;
pub mod tlb;
pub mod units;
pub mod wallet;

pub use error::{Error, Result};
