//! The chain watcher: follows the transactions of the relayer's address, decodes the
//! `job_opened` notifications Escrows send it, authenticates each Escrow by recomputing its
//! address, and records the jobs — each transaction and the cursor past it in one database
//! transaction, so a crash at any point neither loses nor duplicates a job, and a restart
//! catches up from the persisted cursor.
//!
//! Chain access is behind [`TransactionSource`]; the sdk's toncenter client implements it
//! through an adapter, tests use recorded transactions.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, Cell, CellBuilder, TonCellError};
use tracing::{debug, info, warn};

use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::messages::notify::JobOpened;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::{TlbError, TlbType as _};

use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::{Cursor, OpenedJob, Store};

/// Opcode of `job_opened` (contracts/schema.tlb).
pub const JOB_OPENED_OP: u32 = 0xc0c0_0401;

/// Transactions fetched per request.
pub const DEFAULT_PAGE: u32 = 100;

/// How often the watcher polls when it is caught up.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The incoming message of a transaction, as far as the watcher needs it.
#[derive(Debug, Clone)]
pub struct InMessage {
    /// Sender (raw address); `None` for external messages.
    pub source: Option<String>,
    /// Whether it is a bounce.
    pub bounced: bool,
    /// Body cell.
    pub body: Option<ArcCell>,
}

/// One transaction of the watched account.
#[derive(Debug, Clone)]
pub struct WatchedTx {
    /// Logical time.
    pub lt: u64,
    /// Hash.
    pub hash: [u8; 32],
    /// Unix time of the block.
    pub now: u64,
    /// Whether the relayer's transaction aborted. It does not matter for a `job_opened`: the
    /// Escrow sent it from a committed transaction, so the job exists whatever the relayer's
    /// account did with it (an undeployed relayer wallet aborts every incoming message).
    pub aborted: bool,
    /// Incoming message.
    pub in_msg: Option<InMessage>,
}

/// Why transactions could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("chain: {0}")]
pub struct SourceError(pub String);

/// Reads an account's transactions.
pub trait TransactionSource: Send + Sync + 'static {
    /// Transactions of `address` with logical time strictly above `after_lt`, oldest first, at
    /// most `limit`.
    fn transactions_after<'a>(
        &'a self,
        address: &'a str,
        after_lt: u64,
        limit: u32,
    ) -> BoxFuture<'a, std::result::Result<Vec<WatchedTx>, SourceError>>;
}

/// Decides whether `escrow` is the genuine Escrow of `owner` (address recomputed from the Escrow
/// code and init data), so nobody can open fake jobs by sending lookalike notifications.
pub trait EscrowCheck: Send + Sync + 'static {
    /// Whether the pair is genuine.
    fn is_genuine(&self, escrow: &str, owner: &str) -> bool;
}

/// The real check: `escrow == address(StateInit{escrow_code, escrow_init_data(root, owner)})` in
/// workchain 0, where the init data is `root owner` followed by 74 zero bits and no references
/// (contracts/schema.tlb `escrow_data`).
#[derive(Debug, Clone)]
pub struct EscrowAddressCheck {
    /// The Root contract.
    pub root: TonAddress,
    /// Root's Escrow code (`get_codes`).
    pub escrow_code: ArcCell,
}

impl EscrowAddressCheck {
    /// The address the Escrow of `owner` has.
    pub fn escrow_address(
        &self,
        owner: &TonAddress,
    ) -> std::result::Result<TonAddress, TonCellError> {
        let data = CellBuilder::new()
            .store_address(&self.root)?
            .store_address(owner)?
            .store_u64(64, 0)?
            .store_u8(8, 0)?
            .store_u8(2, 0)?
            .build()?;
        TonAddress::derive(0, self.escrow_code.clone(), Arc::new(data))
    }
}

impl EscrowCheck for EscrowAddressCheck {
    fn is_genuine(&self, escrow: &str, owner: &str) -> bool {
        let Ok(owner) = TonAddress::from_hex_str(owner) else {
            return false;
        };
        self.escrow_address(&owner)
            .map(|a| a.to_hex() == escrow)
            .unwrap_or(false)
    }
}

/// A decoded `job_opened` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOpenedMsg {
    /// Query id.
    pub query_id: u64,
    /// Escrow owner (raw).
    pub escrow_owner: String,
    /// Job id.
    pub job_id: u64,
    /// Model.
    pub model_id: u32,
    /// Max cost, nanoTON.
    pub max_cost: u128,
    /// Deadline.
    pub deadline: u32,
    /// Share of the cost paid to the relayer, basis points.
    pub relayer_fee_bps: u16,
    /// sha256 of the sealed input.
    pub input_commitment: [u8; 32],
    /// Relayer named in the route (raw).
    pub relayer: String,
    /// Worker named in the route, if any (raw).
    pub worker: Option<String>,
}

/// Decodes `job_opened#c0c00401 query_id:uint64 escrow_owner:MsgAddressInt job_id:uint64
/// model_id:uint32 max_cost:Coins deadline:uint32 relayer_fee_bps:uint16 input_commitment:bits256
/// route:^JobRoute` with the sdk's typed message (the layout the contracts and golden vectors
/// pin), rejecting another opcode and trailing data.
pub fn decode_job_opened(body: &Cell) -> std::result::Result<JobOpenedMsg, TlbError> {
    let m = JobOpened::from_cell(body)?;
    Ok(JobOpenedMsg {
        query_id: m.query_id,
        escrow_owner: m.escrow_owner.to_hex(),
        job_id: m.job_id,
        model_id: m.model_id,
        max_cost: m.max_cost,
        deadline: m.deadline,
        relayer_fee_bps: m.relayer_fee_bps,
        input_commitment: m.input_commitment,
        relayer: m.route.relayer.to_hex(),
        worker: m.route.worker.map(|w| w.to_hex()),
    })
}

/// Follows one address.
pub struct Watcher {
    store: Store,
    source: Arc<dyn TransactionSource>,
    escrows: Arc<dyn EscrowCheck>,
    address: String,
    metrics: Option<Arc<Metrics>>,
    page: u32,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// A watcher of `address` (the relayer's, raw form).
    pub fn new(
        store: Store,
        source: Arc<dyn TransactionSource>,
        escrows: Arc<dyn EscrowCheck>,
        address: String,
    ) -> Self {
        Self {
            store,
            source,
            escrows,
            address,
            metrics: None,
            page: DEFAULT_PAGE,
        }
    }

    /// Reports chain lag into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Transactions fetched per request (at least 1).
    pub fn with_page(mut self, page: u32) -> Self {
        self.page = page.max(1);
        self
    }

    /// Processes every transaction past the cursor (all pages); returns the jobs newly recorded.
    pub async fn poll_once(&self) -> Result<Vec<JobRef>> {
        let mut new_jobs = Vec::new();
        loop {
            let after = self
                .store
                .cursor(&self.address)
                .await?
                .map(|c| c.lt)
                .unwrap_or(0);
            let txs = self
                .source
                .transactions_after(&self.address, after, self.page)
                .await
                .map_err(|e| crate::Error::RegistryUnavailable(e.to_string()))?;
            let full_page = txs.len() as u32 >= self.page;
            for tx in txs.into_iter().filter(|t| t.lt > after) {
                let jobs = self.jobs_in(&tx);
                let cursor = Cursor {
                    lt: tx.lt,
                    hash: tx.hash,
                };
                let fresh = self
                    .store
                    .apply_transaction(&self.address, cursor, &jobs)
                    .await?;
                if fresh > 0 {
                    new_jobs.extend(jobs.into_iter().map(|j| j.job));
                }
                if let Some(m) = &self.metrics {
                    m.chain_lag.set(
                        unix_now_i64()
                            .saturating_sub(i64::try_from(tx.now).unwrap_or(i64::MAX))
                            .max(0),
                    );
                }
            }
            if !full_page {
                return Ok(new_jobs);
            }
        }
    }

    fn jobs_in(&self, tx: &WatchedTx) -> Vec<OpenedJob> {
        let Some(msg) = tx.in_msg.as_ref() else {
            return vec![];
        };
        let (Some(source), Some(body), false) = (&msg.source, &msg.body, msg.bounced) else {
            return vec![];
        };
        let Ok(n) = decode_job_opened(body) else {
            return vec![];
        };
        if n.relayer != self.address {
            debug!(target: "relayer::watcher", lt = tx.lt, "job_opened for another relayer ignored");
            return vec![];
        }
        if !self.escrows.is_genuine(source, &n.escrow_owner) {
            warn!(target: "relayer::watcher", lt = tx.lt, %source, "job_opened from a contract that is not a genuine Escrow ignored");
            return vec![];
        }
        let Ok(max_cost) = u64::try_from(n.max_cost) else {
            return vec![];
        };
        info!(target: "relayer::watcher", lt = tx.lt, escrow = %source, job_id = n.job_id, model = n.model_id, "job opened");
        vec![OpenedJob {
            job: JobRef::new(source.clone(), n.job_id),
            escrow_owner: n.escrow_owner,
            model_id: n.model_id,
            max_cost,
            deadline: n.deadline,
            input_commitment: n.input_commitment,
            route_worker: n.worker,
            opened_lt: tx.lt,
        }]
    }
}
