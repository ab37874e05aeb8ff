//! Helpers shared by the attestation tests.
#![allow(dead_code)]

pub mod amd_pki;
pub mod fake_tsm;
pub mod http_stub;
pub mod nv_pki;
