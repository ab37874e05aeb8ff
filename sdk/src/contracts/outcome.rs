//! What an operation caused on chain: the wallet's transaction and every transaction its
//! messages led to.

use std::collections::VecDeque;
use std::time::Duration;

use tracing::debug;

use super::{ContractError, ContractResult, error_name};
use crate::chain::{ChainApi, ChainResult, Transaction};
use crate::wallet::Confirmation;

/// Most transactions followed from one operation (a guard against message loops).
const MAX_TRACE: usize = 64;
/// Poll interval while waiting for a child transaction.
const POLL: Duration = Duration::from_millis(300);

/// The transactions of one operation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Operation name, for errors.
    pub op: &'static str,
    /// The wallet's transaction that sent the operation's message (for a highload batch: the
    /// batch's transaction, its `out_msgs` narrowed to this operation's message).
    pub wallet_tx: Transaction,
    /// Descendant transactions in the order they were found (breadth first).
    pub txs: Vec<Transaction>,
}

impl Outcome {
    /// Traces the descendants of a confirmed transfer.
    pub async fn of<C: ChainApi>(
        chain: &C,
        op: &'static str,
        c: Confirmation,
        timeout: Duration,
    ) -> ChainResult<Self> {
        let txs = trace(chain, &c.tx, timeout).await?;
        Ok(Self {
            op,
            wallet_tx: c.tx,
            txs,
        })
    }

    /// Traces the descendants of the transaction that sent an operation's message (what
    /// [`crate::wallet::MessageSender::send_message`] returns).
    pub async fn of_tx<C: ChainApi>(
        chain: &C,
        op: &'static str,
        tx: Transaction,
        timeout: Duration,
    ) -> ChainResult<Self> {
        let txs = trace(chain, &tx, timeout).await?;
        Ok(Self {
            op,
            wallet_tx: tx,
            txs,
        })
    }

    /// The first transaction that failed while processing a regular (not bounced) message.
    pub fn first_failure(&self) -> Option<&Transaction> {
        self.txs
            .iter()
            .find(|t| t.failed() && !t.in_msg.as_ref().is_some_and(|m| m.bounced))
    }

    /// `Ok(self)` if nothing failed, else [`ContractError::Failed`] naming the contract and code.
    pub fn ensure_success(self) -> ContractResult<Self> {
        match self.first_failure() {
            None => Ok(self),
            Some(t) => {
                let exit_code = t.exit_code.or(t.action_result_code).unwrap_or(-1);
                Err(ContractError::Failed {
                    op: self.op,
                    account: t.account.to_base64_url(),
                    exit_code,
                    name: error_name(exit_code),
                })
            }
        }
    }

    /// Sum of the fees of every transaction (nanoTON).
    pub fn total_fees(&self) -> u128 {
        self.wallet_tx.total_fees + self.txs.iter().map(|t| t.total_fees).sum::<u128>()
    }
}

/// Follows the internal messages sent by `root` and their consequences, waiting up to `timeout`
/// for each child to appear.
pub async fn trace<C: ChainApi>(
    chain: &C,
    root: &Transaction,
    timeout: Duration,
) -> ChainResult<Vec<Transaction>> {
    let mut out: Vec<Transaction> = Vec::new();
    let mut queue: VecDeque<_> = root
        .out_msgs
        .iter()
        .filter(|m| m.destination.is_some())
        .cloned()
        .collect();
    while let Some(m) = queue.pop_front() {
        if out.len() >= MAX_TRACE {
            break;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let found = loop {
            let txs = chain.transactions_by_message(&m.hash).await?;
            let mine: Vec<_> = txs
                .into_iter()
                .filter(|t| Some(&t.account) == m.destination.as_ref())
                .collect();
            if !mine.is_empty() || tokio::time::Instant::now() > deadline {
                break mine;
            }
            tokio::time::sleep(POLL).await;
        };
        for t in found {
            debug!(target: "sdk::contracts", account = %t.account, lt = t.id.lt, exit_code = ?t.exit_code, "traced");
            queue.extend(
                t.out_msgs
                    .iter()
                    .filter(|m| m.destination.is_some())
                    .cloned(),
            );
            out.push(t);
        }
    }
    Ok(out)
}
