//! Finding a job's settlement on-chain and checking it against the receipt the client holds.

use std::time::Duration;

use tracing::{debug, info};

use super::Client;
use super::error::{ClientError, Result};
use super::job::JobResult;
use super::workers::read_worker;
use crate::chain::ChainApi;
use crate::contracts::EscrowClient;
use crate::messages::escrow::Settle;
use crate::messages::notify::LogSettled;
use crate::receipt::{ReceiptError, SignedReceipt, check_cost};
use crate::relay::JobRef;
use crate::tlb::{TlbType, TonAddress};

/// How long [`Client::verify_settlement`] waits for the relayer (or worker) to post the receipt.
pub const SETTLEMENT_TIMEOUT: Duration = Duration::from_secs(180);
/// Pause between looks at the Escrow's transactions.
const POLL: Duration = Duration::from_millis(500);
/// Transactions read per page.
const PAGE: u32 = 50;

/// A job's settlement as found on-chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Settlement {
    /// The job.
    pub job: JobRef,
    /// Hash of the Escrow transaction that accepted the settlement.
    #[serde(with = "hex32")]
    pub tx_hash: [u8; 32],
    /// Its logical time.
    pub lt: u64,
    /// Its unix time.
    pub now: u64,
    /// nanoTON paid (equal to the receipt's cost).
    pub cost: u128,
    /// The Worker contract that settled (equal to the receipt's).
    pub worker: TonAddress,
    /// The receipt hash the Escrow logged (equal to the client's receipt).
    #[serde(with = "hex32")]
    pub receipt_hash: [u8; 32],
}

mod hex32 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

/// What a settlement must match: the job and the receipt the client holds.
#[derive(Debug, Clone)]
struct Expected {
    job: JobRef,
    worker: TonAddress,
    cost: u128,
    receipt_hash: [u8; 32],
}

impl Client {
    /// Waits up to [`SETTLEMENT_TIMEOUT`] for the settlement of `result`'s job and checks it.
    pub async fn verify_settlement(&self, result: &JobResult) -> Result<Settlement> {
        self.verify_settlement_within(result, SETTLEMENT_TIMEOUT)
            .await
    }

    /// [`Client::verify_settlement`] with its own timeout (zero: one look).
    pub async fn verify_settlement_within(
        &self,
        result: &JobResult,
        timeout: Duration,
    ) -> Result<Settlement> {
        let expected = Expected {
            job: result.job.clone(),
            worker: result.worker.clone(),
            cost: result.cost,
            receipt_hash: result.receipt_hash,
        };
        self.wait_settlement(&expected, result.open_lt, timeout)
            .await
    }

    /// Checks a receipt kept from an earlier job (e.g. saved by `cocoon chat --json`): it is for
    /// this client's Escrow, signed by the receipt key its Worker contract holds now, and its
    /// cost is the tokens at the Worker's prices; then finds and checks its settlement, waiting up
    /// to `timeout`.
    pub async fn verify_receipt_settlement(
        &self,
        receipt: &SignedReceipt,
        timeout: Duration,
    ) -> Result<Settlement> {
        let b = &receipt.body;
        if b.escrow != *self.escrow_address() {
            return Err(ClientError::ReceiptInvalid(ReceiptError::FieldMismatch {
                field: "escrow",
                expected: self.escrow_address().to_hex(),
                actual: b.escrow.to_hex(),
            }));
        }
        let worker = read_worker(self.chain(), &b.worker).await?.ok_or_else(|| {
            ClientError::BadResponse(format!("no Worker contract at {}", b.worker))
        })?;
        receipt.verify_signature(&worker.record.receipt_key)?;
        check_cost(receipt, worker.record.price_in, worker.record.price_out)?;
        let expected = Expected {
            job: JobRef::new(b.escrow.to_hex(), b.job_id),
            worker: b.worker.clone(),
            cost: b.cost,
            receipt_hash: b.signing_hash()?,
        };
        self.wait_settlement(&expected, 0, timeout).await
    }

    async fn wait_settlement(
        &self,
        expected: &Expected,
        after_lt: u64,
        timeout: Duration,
    ) -> Result<Settlement> {
        let until = tokio::time::Instant::now() + timeout;
        let mut after_lt = after_lt;
        loop {
            let (found, last) = self.find_settlement(expected, after_lt).await?;
            if let Some(s) = found {
                return Ok(s);
            }
            after_lt = last;
            if tokio::time::Instant::now() + POLL > until {
                return Err(ClientError::Timeout(format!(
                    "no settlement of job {} on-chain within {} s",
                    expected.job,
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One look at the Escrow's transactions after `after_lt`: the checked settlement of the job
    /// if there is one, and the logical time read up to.
    async fn find_settlement(
        &self,
        expected: &Expected,
        mut after_lt: u64,
    ) -> Result<(Option<Settlement>, u64)> {
        let escrow = self.escrow_address().clone();
        if expected.job.escrow != escrow.to_hex() {
            return Err(ClientError::BadResponse(format!(
                "job {} is not on this client's Escrow",
                expected.job
            )));
        }
        loop {
            let txs = self.chain().transactions(&escrow, after_lt, PAGE).await?;
            let n = txs.len();
            for tx in txs {
                after_lt = after_lt.max(tx.id.lt);
                let Some(msg) = &tx.in_msg else { continue };
                if msg.opcode != Some(Settle::OP) || msg.bounced {
                    continue;
                }
                let Some(body) = &msg.body else { continue };
                let Ok(settle) = Settle::from_cell(body) else {
                    continue;
                };
                if settle.job_id != expected.job.job_id {
                    continue;
                }
                if !tx.succeeded() {
                    // A refused settlement (late, wrong worker, ...) settles nothing: keep looking.
                    debug!(target: "sdk::client", job = %expected.job, lt = tx.id.lt, exit_code = ?tx.exit_code, "refused settlement attempt");
                    continue;
                }
                let settlement = check(expected, &tx, msg.source.as_ref(), &settle)?;
                // The job must be gone from the Escrow: settled once, never again.
                let client = EscrowClient::for_owner(
                    self.chain(),
                    &self.config().root,
                    self.wallet_address(),
                )
                .await?;
                if client.job(expected.job.job_id).await?.is_some() {
                    return Err(ClientError::BadResponse(format!(
                        "job {} is still open after its settlement transaction",
                        expected.job
                    )));
                }
                info!(target: "sdk::client", job = %expected.job, lt = settlement.lt, cost = %settlement.cost, "settlement verified");
                return Ok((Some(settlement), after_lt));
            }
            if n < PAGE as usize {
                return Ok((None, after_lt));
            }
        }
    }
}

/// The settlement in `tx` must pay the receipt the client verified: same worker, cost and
/// receipt hash (in the settle message and in the Escrow's log).
fn check(
    result: &Expected,
    tx: &crate::chain::Transaction,
    source: Option<&TonAddress>,
    settle: &Settle,
) -> Result<Settlement> {
    let mismatch = |field: &'static str, expected: String, actual: String| {
        ClientError::ReceiptInvalid(ReceiptError::FieldMismatch {
            field,
            expected,
            actual,
        })
    };
    if source != Some(&result.worker) {
        return Err(mismatch(
            "settled by",
            result.worker.to_hex(),
            source.map_or("nobody".into(), |s| s.to_hex()),
        ));
    }
    if settle.cost != result.cost {
        return Err(mismatch(
            "settled cost",
            result.cost.to_string(),
            settle.cost.to_string(),
        ));
    }
    if settle.receipt_hash != result.receipt_hash {
        return Err(mismatch(
            "settled receipt hash",
            hex::encode(result.receipt_hash),
            hex::encode(settle.receipt_hash),
        ));
    }
    let log = tx
        .out_msgs
        .iter()
        .filter(|m| m.destination.is_none() && m.opcode == Some(LogSettled::OP))
        .find_map(|m| m.body.as_ref().and_then(|b| LogSettled::from_cell(b).ok()));
    match log {
        Some(l)
            if l.job_id == result.job.job_id
                && l.cost == result.cost
                && l.receipt_hash == result.receipt_hash => {}
        Some(l) => {
            return Err(mismatch(
                "settlement log",
                format!("job {} cost {}", result.job.job_id, result.cost),
                format!("job {} cost {}", l.job_id, l.cost),
            ));
        }
        None => {
            return Err(ClientError::BadResponse(
                "the settlement transaction has no settlement log".into(),
            ));
        }
    }
    Ok(Settlement {
        job: result.job.clone(),
        tx_hash: tx.id.hash,
        lt: tx.id.lt,
        now: tx.now,
        cost: settle.cost,
        worker: result.worker.clone(),
        receipt_hash: settle.receipt_hash,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::chain::{Message, Transaction, TxId};

    fn addr(n: u8) -> TonAddress {
        TonAddress::new(0, [n; 32].into())
    }

    fn expected() -> Expected {
        Expected {
            job: JobRef::new(addr(1).to_hex(), 7),
            worker: addr(2),
            cost: 1_000,
            receipt_hash: [9; 32],
        }
    }

    fn settle() -> Settle {
        Settle {
            query_id: 1,
            worker_owner: addr(3),
            job_id: 7,
            model_id: 1,
            cost: 1_000,
            input_commitment: [4; 32],
            receipt_hash: [9; 32],
        }
    }

    fn tx(log: Option<LogSettled>) -> Transaction {
        let out_msgs = log
            .into_iter()
            .map(|l| Message {
                hash: [0; 32],
                hash_norm: None,
                source: Some(addr(1)),
                destination: None,
                value: None,
                bounced: false,
                opcode: Some(LogSettled::OP),
                body: Some(Arc::new(l.to_cell().unwrap())),
            })
            .collect();
        Transaction {
            account: addr(1),
            id: TxId {
                lt: 42,
                hash: [5; 32],
            },
            now: 100,
            in_msg: None,
            out_msgs,
            exit_code: Some(0),
            action_result_code: Some(0),
            aborted: false,
            total_fees: 0,
        }
    }

    fn log(job_id: u64, cost: u128) -> LogSettled {
        LogSettled {
            job_id,
            cost,
            receipt_hash: [9; 32],
        }
    }

    fn field(r: Result<Settlement>) -> String {
        match r {
            Err(ClientError::ReceiptInvalid(ReceiptError::FieldMismatch { field, .. })) => {
                field.to_owned()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_settlement_of_the_receipt_passes() {
        let s = check(
            &expected(),
            &tx(Some(log(7, 1_000))),
            Some(&addr(2)),
            &settle(),
        )
        .unwrap();
        assert_eq!((s.lt, s.cost, s.tx_hash), (42, 1_000, [5; 32]));
    }

    #[test]
    fn another_worker_cost_receipt_or_log_is_refused() {
        let e = expected();
        let good = tx(Some(log(7, 1_000)));
        assert_eq!(
            field(check(&e, &good, Some(&addr(8)), &settle())),
            "settled by"
        );
        assert_eq!(field(check(&e, &good, None, &settle())), "settled by");
        let cheaper = Settle {
            cost: 999,
            ..settle()
        };
        assert_eq!(
            field(check(&e, &good, Some(&addr(2)), &cheaper)),
            "settled cost"
        );
        let other = Settle {
            receipt_hash: [8; 32],
            ..settle()
        };
        assert_eq!(
            field(check(&e, &good, Some(&addr(2)), &other)),
            "settled receipt hash"
        );
        assert_eq!(
            field(check(
                &e,
                &tx(Some(log(6, 1_000))),
                Some(&addr(2)),
                &settle()
            )),
            "settlement log"
        );
        assert!(matches!(
            check(&e, &tx(None), Some(&addr(2)), &settle()),
            Err(ClientError::BadResponse(_))
        ));
    }
}
