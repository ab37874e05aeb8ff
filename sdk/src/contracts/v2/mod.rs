//! Protocol v2 contract clients (payment channels), beside the v1 ones of the parent module until
//! the request path moves to channels.
//!
//! - [`code`]: the embedded v2 code; [`worker_address`] / [`escrow_address`]: child addresses.
//! - [`RootClient`], [`WorkerClient`], [`EscrowClient`]: every getter as a typed struct, and the
//!   operations of the client (escrow, channels), the worker (register, settle) and governance.
//! - [`ChainChannels`]: the chain-backed [`crate::channel::ChannelSource`].
//! - [`SettlementLog`]: what a settlement recorded (seq, cumulative, accumulator, final,
//!   released) in its payout to the worker owner, read from an operation's trace or an Escrow's
//!   history, to prove a receipt with an [`crate::channel::InclusionProof`].
//!
//! Every value attached to a message is what the contract's `get_fees` getter says (computed
//! on-chain from the network config) plus what the message moves; no fee is a constant here. A
//! refusal is [`ContractError::Failed`] with the v2 name of its exit code; [`Exit::of`] types it.

mod code;
mod errors;
mod escrow;
mod logs;
mod root;
mod source;
mod worker;

pub use code::code;
pub use errors::{Exit, error_name};
pub use escrow::{
    ChannelOpen, EscrowClient, EscrowConfigView, EscrowFees, EscrowState, OpenChannelArgs,
};
pub use logs::{SettlementLog, channel_logs, settlement_logs, verify_inclusion};
pub use root::{PendingChangeView, RootClient, RootFees, RootPolicyView};
pub use source::ChainChannels;
pub use worker::{Settlement, WorkerClient, WorkerFees, WorkerRecordView, WorkerState};

use std::sync::Arc;

use super::{ContractError, ContractResult, Outcome, StackReader, TRACE_TIMEOUT};
use crate::chain::{ChainApi, StackEntry};
use crate::messages::v2::records::{EscrowData, WorkerData};
use crate::tlb::{ArcCell, Cell, TlbType, TonAddress};
use crate::wallet::{MessageSender, OutMessage, SendOptions};

pub use super::{Contract, query_id};

/// Address of the v2 Worker of `owner` under `root` with `worker_code`.
pub fn worker_address(
    root: &TonAddress,
    owner: &TonAddress,
    worker_code: &ArcCell,
) -> ContractResult<TonAddress> {
    let data = WorkerData::initial(root.clone(), owner.clone()).to_cell()?;
    Ok(crate::wallet::contract_address(
        worker_code,
        &Arc::new(data),
    )?)
}

/// Address of the v2 Escrow of `owner` under `root` with `escrow_code`.
pub fn escrow_address(
    root: &TonAddress,
    owner: &TonAddress,
    escrow_code: &ArcCell,
) -> ContractResult<TonAddress> {
    let data = EscrowData::initial(root.clone(), owner.clone()).to_cell()?;
    Ok(crate::wallet::contract_address(
        escrow_code,
        &Arc::new(data),
    )?)
}

/// Runs a get method and wraps its stack in a reader naming `method` in errors.
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

/// Sends `body` with `value` from `wallet` to `dest` and waits for the whole trace: a refusal
/// anywhere in it is [`ContractError::Failed`] with its v2 name.
async fn call<C: ChainApi>(
    chain: &C,
    wallet: &impl MessageSender,
    op: &'static str,
    dest: &TonAddress,
    value: u128,
    body: Cell,
    opts: &SendOptions,
) -> ContractResult<Outcome> {
    send(
        chain,
        wallet,
        op,
        OutMessage::call(dest.clone(), value, body),
        opts,
    )
    .await
}

async fn send<C: ChainApi>(
    chain: &C,
    wallet: &impl MessageSender,
    op: &'static str,
    msg: OutMessage,
    opts: &SendOptions,
) -> ContractResult<Outcome> {
    let tx = wallet.send_message(chain, msg, opts).await?;
    let outcome = Outcome::of_tx(chain, op, tx, TRACE_TIMEOUT).await?;
    ensure_success(outcome)
}

/// `Ok` unless a transaction of the trace refused its (not bounced) message. A wallet that fails
/// to process one of the contracts' notifications (a payout too small to pay for the wallet's own
/// gas, say) is no refusal: they are all non-bounceable, so the value stays with the wallet and
/// the contracts' state is final.
fn ensure_success(outcome: Outcome) -> ContractResult<Outcome> {
    let refused = outcome.txs.iter().find(|t| {
        t.failed()
            && t.in_msg
                .as_ref()
                .is_some_and(|m| !m.bounced && !is_wallet_notification(m.opcode))
    });
    match refused {
        None => Ok(outcome),
        Some(t) => {
            let exit_code = t.exit_code.or(t.action_result_code).unwrap_or(-1);
            tracing::debug!(target: "sdk::contracts::v2", op = outcome.op, account = %t.account, exit_code, "refused");
            Err(ContractError::Failed {
                op: outcome.op,
                account: t.account.to_base64_url(),
                exit_code,
                name: error_name(exit_code),
            })
        }
    }
}

fn is_wallet_notification(opcode: Option<u32>) -> bool {
    use crate::messages::v2::notify::{ChannelOpened, Excesses, Payout, RelayerFee};
    matches!(opcode, Some(op) if op == ChannelOpened::OP || op == RelayerFee::OP || op == Payout::OP || op == Excesses::OP)
}

fn invalid(op: &'static str, reason: impl Into<String>) -> ContractError {
    ContractError::Invalid {
        op,
        reason: reason.into(),
    }
}

/// Most a channel amount, cost or cumulative may be (the contracts refuse 2^64 and above).
pub const AMOUNT_LIMIT: u128 = 1 << 64;

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// `tests/v2/vectors/child_addresses.json`: our derivation with the embedded v2 codes equals
    /// the contract suite's for every (root, owner).
    #[test]
    fn v2_child_addresses_match_the_contract_suite() {
        let text = include_str!("../../../../tests/v2/vectors/child_addresses.json");
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
