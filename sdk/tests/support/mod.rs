//! Helpers shared by the attestation tests.
#![allow(dead_code)]

pub mod fake_tsm;
pub mod http_stub;
