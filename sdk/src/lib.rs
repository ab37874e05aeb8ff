//! Cocoon protocol SDK.
//!
//! Everything a program needs to speak the Cocoon protocol on TON: typed contract messages,
//! chain access, attestation evidence and policy, HPKE sealing, receipts, and the client API.
//!
//! # Layout
//! (modules are added as the areas land)
