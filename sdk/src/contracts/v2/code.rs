//! Compiled v2 contract code, embedded from `contracts/v2/compiled/*.json` (written by
//! `scripts/contracts/compile-v2`; `tests/v2/compiled.spec.ts` fails when they no longer match the
//! Tolk sources, and the test below when the embedded BOC no longer matches its recorded hash).

use std::sync::OnceLock;

use super::super::code::parse;
use super::super::{Contract, ContractError};
use crate::tlb::ArcCell;

const ROOT_JSON: &str = include_str!("../../../../contracts/v2/compiled/root.json");
const WORKER_JSON: &str = include_str!("../../../../contracts/v2/compiled/worker.json");
const ESCROW_JSON: &str = include_str!("../../../../contracts/v2/compiled/escrow.json");

/// The compiled v2 code of a contract.
pub fn code(c: Contract) -> Result<ArcCell, ContractError> {
    static ROOT: OnceLock<Result<ArcCell, String>> = OnceLock::new();
    static WORKER: OnceLock<Result<ArcCell, String>> = OnceLock::new();
    static ESCROW: OnceLock<Result<ArcCell, String>> = OnceLock::new();
    let (slot, name, json) = match c {
        Contract::Root => (&ROOT, "v2 root", ROOT_JSON),
        Contract::Worker => (&WORKER, "v2 worker", WORKER_JSON),
        Contract::Escrow => (&ESCROW, "v2 escrow", ESCROW_JSON),
    };
    slot.get_or_init(|| parse(name, json).map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| ContractError::Code { name, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each embedded code parses and its hash is the `codeHashHex` the compiler recorded beside
    /// it (parse checks it), and the three differ from v1's.
    #[test]
    fn embedded_v2_codes_match_their_compiled_hashes() {
        for (c, json) in [
            (Contract::Root, ROOT_JSON),
            (Contract::Worker, WORKER_JSON),
            (Contract::Escrow, ESCROW_JSON),
        ] {
            let cell = code(c).unwrap();
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(
                hex::encode_upper(cell.cell_hash().as_slice()),
                v["codeHashHex"].as_str().unwrap().to_uppercase()
            );
            assert_ne!(
                cell.cell_hash(),
                crate::contracts::code(c).unwrap().cell_hash()
            );
        }
    }
}
