//! Contract clients: deploy Root, register and manage Workers, create and drive Escrows, read
//! every getter as a typed struct, and derive child addresses from code + (root, owner).
//!
//! Every operation is one message sent through a [`MessageSender`] (a person's
//! [`crate::wallet::Wallet`], confirmed with [`crate::wallet::Wallet::send_and_confirm`], or a
//! service's [`crate::wallet::highload::HighloadSender`]) followed by a trace of the transactions
//! it caused ([`Outcome`]); a contract that refused it surfaces as [`ContractError::Failed`] with
//! the contract's named exit code.

mod code;
mod errors;
mod escrow;
mod outcome;
mod root;
mod stack;
pub mod v2;
mod worker;

pub use code::{Contract, code};
pub use errors::{error_name, exit};
pub use escrow::{EscrowClient, EscrowConfigView, EscrowState, JobView, OpenJobArgs};
pub use outcome::{Outcome, trace};
pub use root::{RootClient, RootOwner, RootPolicyView};
pub use stack::StackReader;
pub use worker::{WorkerClient, WorkerRecordView, WorkerState};

use std::time::Duration;

use crate::chain::{ChainApi, ChainError, StackEntry};
use crate::messages::records::{EscrowData, WorkerData};
use crate::tlb::{TlbError, TlbType, TonAddress};
use crate::wallet::{MessageSender, OutMessage, SendOptions, WalletError};

/// Value RegisterWorker carries on top of the stake (Root's and the Worker's gas, deploy fee).
pub const REGISTER_GAS: u128 = 50_000_000;
/// SubmitReceipts carries this plus [`SUBMIT_PER_RECEIPT`] per receipt.
pub const SUBMIT_BASE_GAS: u128 = 10_000_000;
/// Per-receipt value of SubmitReceipts (the Escrow's gas and the PayWorker message).
pub const SUBMIT_PER_RECEIPT: u128 = 15_000_000;
/// Most receipts in one SubmitReceipts.
pub const MAX_BATCH: usize = 100;
/// Gas attached to owner operations and other plain calls; leftovers stay with the contract (for
/// an Escrow: on the client's free balance).
pub const OP_GAS: u128 = 50_000_000;
/// Balance an Escrow keeps outside the client's free balance.
pub const ESCROW_STORAGE_RESERVE: u128 = 10_000_000;
/// Most a job may lock: max_cost < 2^64.
pub const MAX_COST_LIMIT: u128 = 1 << 64;
/// How long to wait for the transactions an operation causes.
pub const TRACE_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of contract operations.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The embedded compiled code is unusable.
    #[error("compiled {name} code: {reason}")]
    Code {
        /// Contract.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A contract refused the operation.
    #[error("{op}: {account} failed with exit code {exit_code} ({})", name.unwrap_or("TVM error"))]
    Failed {
        /// Operation.
        op: &'static str,
        /// Contract that failed.
        account: String,
        /// Exit code.
        exit_code: i32,
        /// Named error (see [`error_name`]).
        name: Option<&'static str>,
    },
    /// A precondition checked before sending failed (amount, job id, deadline).
    #[error("{op}: {reason}")]
    Invalid {
        /// Operation.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// The contract is not deployed.
    #[error("no contract at {0}")]
    NotDeployed(String),
    /// Encoding a message failed.
    #[error(transparent)]
    Tlb(#[from] TlbError),
    /// A chain call failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Sending failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// Result of contract operations.
pub type ContractResult<T> = Result<T, ContractError>;

/// Address of the Worker of `owner` under `root` (code = Root's current worker code).
pub fn worker_address(
    root: &TonAddress,
    owner: &TonAddress,
    worker_code: &crate::tlb::ArcCell,
) -> ContractResult<TonAddress> {
    let data = WorkerData::initial(root.clone(), owner.clone()).to_cell()?;
    Ok(crate::wallet::contract_address(
        worker_code,
        &std::sync::Arc::new(data),
    )?)
}

/// Address of the Escrow of `owner` under `root`.
pub fn escrow_address(
    root: &TonAddress,
    owner: &TonAddress,
    escrow_code: &crate::tlb::ArcCell,
) -> ContractResult<TonAddress> {
    let data = EscrowData::initial(root.clone(), owner.clone()).to_cell()?;
    Ok(crate::wallet::contract_address(
        escrow_code,
        &std::sync::Arc::new(data),
    )?)
}

/// A fresh query id: milliseconds since the epoch (unique enough per sender, and readable).
pub fn query_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs a get method of `address` and wraps its stack in a reader that names `method` in errors.
async fn get_method<C: ChainApi>(
    chain: &C,
    address: &TonAddress,
    method: &'static str,
    args: &[StackEntry],
) -> ContractResult<StackReader> {
    Ok(StackReader::new(
        method,
        chain.run_get_method(address, method, args).await?,
    ))
}

/// Sends one message from `wallet` and waits for the whole trace it causes: a refusal anywhere in
/// it is an error naming `op`. Every client operation goes through here.
async fn call<C: ChainApi>(
    chain: &C,
    wallet: &impl MessageSender,
    op: &'static str,
    msg: OutMessage,
    opts: &SendOptions,
) -> ContractResult<Outcome> {
    let tx = wallet.send_message(chain, msg, opts).await?;
    Outcome::of_tx(chain, op, tx, TRACE_TIMEOUT)
        .await?
        .ensure_success()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// `tests/vectors/child_addresses.json`: our derivation from the embedded codes equals the
    /// contract suite's for every (root, owner).
    #[test]
    fn child_addresses_match_the_contract_suite() {
        let text = include_str!("../../../tests/vectors/child_addresses.json");
        let v: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
        assert!(!v.is_empty());
        let wcode = code(Contract::Worker).unwrap();
        let ecode = code(Contract::Escrow).unwrap();
        for (i, c) in v.iter().enumerate() {
            let a = |k: &str| TonAddress::from_str(c[k].as_str().unwrap()).unwrap();
            assert_eq!(
                hex::encode(wcode.cell_hash().as_slice()),
                c["worker_code_hash"].as_str().unwrap(),
                "[{i}] worker code"
            );
            assert_eq!(
                hex::encode(ecode.cell_hash().as_slice()),
                c["escrow_code_hash"].as_str().unwrap(),
                "[{i}] escrow code"
            );
            assert_eq!(
                worker_address(&a("root"), &a("owner"), &wcode).unwrap(),
                a("worker_address"),
                "[{i}] worker"
            );
            assert_eq!(
                escrow_address(&a("root"), &a("owner"), &ecode).unwrap(),
                a("escrow_address"),
                "[{i}] escrow"
            );
        }
    }
}

/// Which protocol a Root speaks: v1 (per-job OpenJob/Settle) or v2 (payment channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootVersion {
    /// Per-job escrow (`contracts/*.tolk`).
    V1,
    /// Payment channels (`contracts/v2/*.tolk`).
    V2,
}

/// Asks the Root at `root` which protocol it speaks, so every binary takes the same `--root` for
/// either: only a v2 Root has the governance queue (`get_next_change_id`); a Root that answers
/// neither that nor v1's `get_owner` is refused.
pub async fn detect_root_version<C: ChainApi>(
    chain: &C,
    root: &TonAddress,
) -> ContractResult<RootVersion> {
    let st = chain.account(root).await?;
    if st.status != crate::chain::AccountStatus::Active {
        return Err(ContractError::NotDeployed(root.to_string()));
    }
    match chain.run_get_method(root, "get_next_change_id", &[]).await {
        Ok(_) => return Ok(RootVersion::V2),
        Err(ChainError::GetMethodFailed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    match chain.run_get_method(root, "get_owner", &[]).await {
        Ok(_) => Ok(RootVersion::V1),
        Err(ChainError::GetMethodFailed { .. }) => Err(ContractError::Invalid {
            op: "detect root version",
            reason: format!("{root} answers neither a v1 nor a v2 Root's getters"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The attestation policy the Root at `root` publishes, whichever protocol it speaks: its allowed
/// kinds and measurements, and on a v2 Root also its TEE policy (SEV-SNP minimum TCB, TDX
/// attributes and MRCONFIGID/MROWNER/RTMR3 allow-lists). `development` honours Root's Simulated
/// bit ([`crate::attest::Policy::development_from_root`]); never set it for mainnet.
pub async fn attestation_policy<C: ChainApi>(
    chain: &C,
    root: &TonAddress,
    development: bool,
) -> ContractResult<crate::attest::Policy> {
    use crate::attest::Policy;
    let view = RootClient::at(chain, root.clone()).policy().await?;
    let base = crate::messages::records::RootPolicy {
        allowed_kinds: view.allowed_kinds,
        measurements: view.measurements,
    };
    let policy = if development {
        Policy::development_from_root(&base)
    } else {
        Policy::from_root(&base)
    };
    Ok(match detect_root_version(chain, root).await? {
        RootVersion::V1 => policy,
        RootVersion::V2 => {
            let tee = v2::RootClient::at(chain, root.clone()).tee_policy().await?;
            policy.with_root_tee_policy(&tee)
        }
    })
}
