//! The send queue of a highload wallet: callers hand it one message each and get back the
//! transaction that sent it; the queue batches what arrives together under one query id,
//! confirms each batch by its normalised hash, and signs a batch again (new query id) only once
//! the chain proves the old external can never execute.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{
    HighloadError, HighloadResult, HighloadWallet, MAX_BATCH, QueryConfirmation, QueryId,
    SignedQuery,
};
use crate::chain::{ChainApi, ChainError, Transaction};
use crate::wallet::{OutMessage, WalletError};

/// Slack after `created_at + timeout` before an unconfirmed external is judged, covering an
/// index that trails the chain.
const DECISION_SLACK: u64 = 10;

/// Settings of a [`HighloadSender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighloadConfig {
    /// How long the queue waits for more messages before it signs a batch.
    pub linger: Duration,
    /// Most messages per external (at most [`MAX_BATCH`]).
    pub max_batch: usize,
    /// Interval between confirmation polls.
    pub poll_interval: Duration,
    /// How many externals one message may go through before it is given up (each one provably
    /// never executed).
    pub max_attempts: u32,
}

impl Default for HighloadConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(20),
            max_batch: MAX_BATCH,
            poll_interval: Duration::from_millis(500),
            max_attempts: 5,
        }
    }
}

/// A message the wallet sent: the query id of its external and the transaction whose out
/// messages hold it (at `index`).
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// Query id of the external that carried it.
    pub query_id: QueryId,
    /// The transaction that sent it.
    pub tx: Transaction,
    /// Its position among that transaction's out messages.
    pub index: usize,
}

struct Job {
    msg: OutMessage,
    attempts: u32,
    done: oneshot::Sender<HighloadResult<SentMessage>>,
}

/// A handle on a highload wallet's send queue (cheap to clone; the queue stops when every
/// handle is dropped and its batches are decided).
#[derive(Clone)]
pub struct HighloadSender {
    jobs: mpsc::UnboundedSender<Job>,
    address: crate::tlb::TonAddress,
}

impl HighloadSender {
    /// Starts the queue of `wallet` on `chain`.
    pub fn spawn<C: ChainApi + 'static>(
        chain: Arc<C>,
        wallet: HighloadWallet,
        cfg: HighloadConfig,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let address = wallet.address().clone();
        let queue = Queue {
            chain,
            wallet: Arc::new(wallet),
            cfg: HighloadConfig {
                max_batch: cfg.max_batch.clamp(1, MAX_BATCH),
                ..cfg
            },
            requeue: tx.downgrade(),
            next_id: first_query_id(),
        };
        tokio::spawn(queue.run(rx));
        Self { jobs: tx, address }
    }

    /// The wallet's address.
    pub fn address(&self) -> &crate::tlb::TonAddress {
        &self.address
    }

    /// Sends `msg` and waits until the chain shows it sent (or proves it never will be).
    pub async fn send(&self, msg: OutMessage) -> HighloadResult<SentMessage> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job {
                msg,
                attempts: 0,
                done,
            })
            .map_err(|_| WalletError::Build("the highload send queue has stopped".into()))?;
        wait.await
            .map_err(|_| WalletError::Build("the highload send queue has stopped".into()))?
    }
}

/// A random starting shift: another process (or an earlier run) of the same wallet most likely
/// used other ids within the timeout; a collision is still caught (exit 36, or superseded).
fn first_query_id() -> QueryId {
    let shift = rand::random::<u16>() % (QueryId::MAX_SHIFT + 1);
    QueryId::new(shift, 0).unwrap_or(QueryId { shift: 0, bit: 0 })
}

struct Queue<C> {
    chain: Arc<C>,
    wallet: Arc<HighloadWallet>,
    cfg: HighloadConfig,
    // Weak, so the queue ends once every handle is dropped (a caller waiting in `send` holds one).
    requeue: mpsc::WeakUnboundedSender<Job>,
    next_id: QueryId,
}

impl<C: ChainApi + 'static> Queue<C> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let until = tokio::time::Instant::now() + self.cfg.linger;
            while batch.len() < self.cfg.max_batch {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                }
            }
            let query_id = self.next_id;
            self.next_id = self.next_id.next();
            let batch_job = Batch {
                chain: self.chain.clone(),
                wallet: self.wallet.clone(),
                cfg: self.cfg,
                requeue: self.requeue.clone(),
            };
            tokio::spawn(batch_job.run(query_id, batch));
        }
        debug!(target: "sdk::wallet::highload", "every handle dropped; the queue stops");
    }
}

struct Batch<C> {
    chain: Arc<C>,
    wallet: Arc<HighloadWallet>,
    cfg: HighloadConfig,
    requeue: mpsc::WeakUnboundedSender<Job>,
}

impl<C: ChainApi> Batch<C> {
    async fn run(self, query_id: QueryId, jobs: Vec<Job>) {
        let outcome = self.send_and_decide(query_id, &jobs).await;
        match outcome {
            Ok(conf) => {
                for (index, job) in jobs.into_iter().enumerate() {
                    let _ = job.done.send(Ok(SentMessage {
                        query_id,
                        tx: conf.sending_tx.clone(),
                        index,
                    }));
                }
            }
            Err(e) if e.is_resendable() => {
                warn!(target: "sdk::wallet::highload", query_id = query_id.value(), error = %e, messages = jobs.len(), "external can never execute; signing its messages again");
                for mut job in jobs {
                    job.attempts += 1;
                    let requeue = self.requeue.upgrade();
                    match requeue {
                        Some(q) if job.attempts < self.cfg.max_attempts => {
                            if let Err(mpsc::error::SendError(job)) = q.send(job) {
                                let _ = job.done.send(Err(clone_error(&e)));
                            }
                        }
                        _ => {
                            let _ = job.done.send(Err(clone_error(&e)));
                        }
                    }
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.done.send(Err(clone_error(&e)));
                }
            }
        }
    }

    async fn send_and_decide(
        &self,
        query_id: QueryId,
        jobs: &[Job],
    ) -> HighloadResult<QueryConfirmation> {
        let (deployed, chain_time) = self.wallet.status(&*self.chain).await?;
        let created_at = HighloadWallet::created_at(chain_time);
        let msgs: Vec<OutMessage> = jobs.iter().map(|j| j.msg.clone()).collect();
        let signed = self.wallet.sign(query_id, created_at, &msgs, !deployed)?;
        info!(target: "sdk::wallet::highload", address = %self.wallet.address(), query_id = query_id.value(), created_at, messages = msgs.len(), hash_norm = %hex::encode(signed.hash_norm), "sending");
        match self.chain.send_boc(&signed.boc).await {
            Ok(_) => {}
            Err(ChainError::Rejected {
                exit_code, message, ..
            }) => {
                // A lost response and a retry can make the node refuse our own executed copy
                // (exit 36): only the index tells.
                if let Some(conf) = self.wallet.find(&*self.chain, &signed).await? {
                    return Ok(conf);
                }
                return Err(HighloadError::Rejected {
                    query_id: query_id.value(),
                    exit_code,
                    message,
                });
            }
            Err(e) if e.is_transient() || matches!(e, ChainError::RetriesExhausted { .. }) => {
                warn!(target: "sdk::wallet::highload", error = %e, "broadcast outcome unknown; waiting for the transaction");
            }
            Err(e) => return Err(WalletError::from(e).into()),
        }
        self.confirm(&signed).await
    }

    /// Waits for the external's transactions; once the chain's time is past `created_at +
    /// timeout` (plus slack for the index) it decides: found, or processed by another message
    /// (superseded), or never processed (expired).
    async fn confirm(&self, signed: &SignedQuery) -> HighloadResult<QueryConfirmation> {
        let decide_after = signed.created_at + u64::from(self.wallet.timeout()) + DECISION_SLACK;
        loop {
            match self.wallet.find(&*self.chain, signed).await {
                Ok(Some(conf)) => return Ok(conf),
                Ok(None) => {}
                Err(HighloadError::Wallet(WalletError::Chain(e))) => {
                    debug!(target: "sdk::wallet::highload", error = %e, "lookup failed, will retry");
                }
                Err(e) => return Err(e),
            }
            if let Ok((_, chain_time)) = self.wallet.status(&*self.chain).await
                && crate::clock::unix_now().max(chain_time) > decide_after
            {
                if let Some(conf) = self.wallet.find(&*self.chain, signed).await? {
                    return Ok(conf);
                }
                let query_id = signed.query_id.value();
                return Err(
                    if self.wallet.processed(&*self.chain, signed.query_id).await? {
                        HighloadError::Superseded { query_id }
                    } else {
                        HighloadError::Expired {
                            query_id,
                            created_at: signed.created_at,
                        }
                    },
                );
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }
}

/// Every caller of a batch gets the batch's error (errors are not `Clone`: chain errors carry
/// sources).
fn clone_error(e: &HighloadError) -> HighloadError {
    match e {
        HighloadError::BatchSize(n) => HighloadError::BatchSize(*n),
        HighloadError::Expired {
            query_id,
            created_at,
        } => HighloadError::Expired {
            query_id: *query_id,
            created_at: *created_at,
        },
        HighloadError::Superseded { query_id } => HighloadError::Superseded {
            query_id: *query_id,
        },
        HighloadError::Rejected {
            query_id,
            exit_code,
            message,
        } => HighloadError::Rejected {
            query_id: *query_id,
            exit_code: *exit_code,
            message: message.clone(),
        },
        HighloadError::NotSent {
            query_id,
            sent,
            expected,
        } => HighloadError::NotSent {
            query_id: *query_id,
            sent: *sent,
            expected: *expected,
        },
        HighloadError::Wallet(w) => HighloadError::Wallet(WalletError::Build(w.to_string())),
    }
}
