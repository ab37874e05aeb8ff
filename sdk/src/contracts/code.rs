//! Compiled contract code, embedded from `contracts/compiled/*.json` (written by the contract
//! build; a contract test fails when they no longer match the sources).

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::ContractError;
use crate::tlb::{self, ArcCell};

const ROOT_JSON: &str = include_str!("../../../contracts/compiled/root.json");
const WORKER_JSON: &str = include_str!("../../../contracts/compiled/worker.json");
const ESCROW_JSON: &str = include_str!("../../../contracts/compiled/escrow.json");

/// The three contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// Root.
    Root,
    /// Worker.
    Worker,
    /// Escrow.
    Escrow,
}

pub(super) fn parse(name: &'static str, json: &str) -> Result<ArcCell, ContractError> {
    let bad = |reason: String| ContractError::Code { name, reason };
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let b64 = v
        .get("codeBoc64")
        .and_then(|x| x.as_str())
        .ok_or_else(|| bad("no codeBoc64".into()))?;
    let boc = STANDARD.decode(b64).map_err(|e| bad(e.to_string()))?;
    let cell = tlb::boc_root(&boc).map_err(|e| bad(e.to_string()))?;
    if let Some(h) = v.get("codeHashHex").and_then(|x| x.as_str()) {
        let ours = hex::encode(cell.cell_hash().as_slice());
        if !ours.eq_ignore_ascii_case(h) {
            return Err(bad(format!("hash {ours} differs from codeHashHex {h}")));
        }
    }
    Ok(cell)
}

/// The compiled code of a contract.
pub fn code(c: Contract) -> Result<ArcCell, ContractError> {
    static ROOT: OnceLock<Result<ArcCell, String>> = OnceLock::new();
    static WORKER: OnceLock<Result<ArcCell, String>> = OnceLock::new();
    static ESCROW: OnceLock<Result<ArcCell, String>> = OnceLock::new();
    let (slot, name, json) = match c {
        Contract::Root => (&ROOT, "root", ROOT_JSON),
        Contract::Worker => (&WORKER, "worker", WORKER_JSON),
        Contract::Escrow => (&ESCROW, "escrow", ESCROW_JSON),
    };
    slot.get_or_init(|| parse(name, json).map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| ContractError::Code { name, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_codes_parse_and_match_their_hashes() {
        for c in [Contract::Root, Contract::Worker, Contract::Escrow] {
            let cell = code(c).unwrap();
            assert!(cell.bit_len() > 0);
        }
        assert!(matches!(parse("x", "{}"), Err(ContractError::Code { .. })));
        assert!(matches!(
            parse(
                "x",
                r#"{"codeBoc64":"te6cckEBAQEAAgAAAEysuc0=","codeHashHex":"00"}"#
            ),
            Err(ContractError::Code { .. })
        ));
    }
}
