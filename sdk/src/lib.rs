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

pub mod attest;
pub mod seal;
