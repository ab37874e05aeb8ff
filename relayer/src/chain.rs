//! The relayer's boundaries implemented over the sdk's chain layer (toncenter client, wallet,
//! contract getters): [`ChainRegistry`] reads Worker contracts, [`ChainTransactions`] feeds the
//! watcher, [`ChainWallet`] (V5R1) or [`HighloadChainWallet`] sends the submitter's batches.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cocoon_sdk::chain::{ChainApi, Transaction};
use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::contracts::{RootClient, StackReader};
use cocoon_sdk::messages::escrow::Settle;
use cocoon_sdk::messages::notify::LogReceiptSkipped;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::codec::{Codec as _, SetU32};
use cocoon_sdk::tlb::{ArcCell, Cell, CellBuilder, TlbType as _, TonAddress};
use cocoon_sdk::wallet::highload::{HighloadWallet, QueryId};
use cocoon_sdk::wallet::{OutMessage, Wallet};
use futures_util::future::BoxFuture;

use crate::registry::{OnChainWorker, RegistryError, WorkerRegistry, WorkerStatus};
use crate::submitter::{BatchOutcome, WalletSender};
use crate::watcher::{InMessage, SourceError, TransactionSource, WatchedTx};

/// How long Root's minimum stake is cached.
const PARAMS_TTL: Duration = Duration::from_secs(60);

/// How long a signed SubmitReceipts external stays valid.
pub const MESSAGE_TTL: Duration = Duration::from_secs(120);

fn reg_err(e: impl std::fmt::Display) -> RegistryError {
    RegistryError(e.to_string())
}

fn src_err(e: impl std::fmt::Display) -> SourceError {
    SourceError(e.to_string())
}

/// Reads Worker records from their contracts under one Root.
#[derive(Debug)]
pub struct ChainRegistry<C> {
    chain: Arc<C>,
    root: TonAddress,
    min_stake: Mutex<Option<(u128, Instant)>>,
}

impl<C: ChainApi + 'static> ChainRegistry<C> {
    /// A registry of the Workers of `root`.
    pub fn new(chain: Arc<C>, root: TonAddress) -> Self {
        Self {
            chain,
            root,
            min_stake: Mutex::new(None),
        }
    }

    async fn min_stake(&self) -> Result<u128, RegistryError> {
        if let Some((v, at)) = *self.min_stake.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < PARAMS_TTL
        {
            return Ok(v);
        }
        let params = RootClient::at(&*self.chain, self.root.clone())
            .params()
            .await
            .map_err(reg_err)?;
        *self.min_stake.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((params.min_stake, Instant::now()));
        Ok(params.min_stake)
    }

    async fn read(&self, worker: &str) -> Result<Option<OnChainWorker>, RegistryError> {
        let address = TonAddress::from_hex_str(worker).map_err(reg_err)?;
        let state = match self
            .chain
            .run_get_method(&address, "get_worker_state", &[])
            .await
        {
            Ok(r) => r,
            // No contract, or not one that answers the Worker getters.
            Err(cocoon_sdk::chain::ChainError::GetMethodFailed { .. }) => return Ok(None),
            Err(e) => return Err(reg_err(e)),
        };
        let mut s = StackReader::new("get_worker_state", state);
        let root = s.address("root").map_err(reg_err)?;
        let owner = s.address("owner").map_err(reg_err)?;
        let status: u8 = s.uint("status").map_err(reg_err)?;
        let stake: u128 = s.uint("stake").map_err(reg_err)?;
        // Genuine only if it sits at the address Root derives for its owner: anyone can deploy a
        // contract that answers these getters.
        if root != self.root {
            return Ok(None);
        }
        let expected = RootClient::at(&*self.chain, self.root.clone())
            .worker_address(&owner)
            .await
            .map_err(reg_err)?;
        if expected != address {
            return Ok(None);
        }
        let status = WorkerStatus::from_code(status)
            .ok_or_else(|| reg_err(format!("unknown worker status {status}")))?;
        if status == WorkerStatus::Uninitialised {
            return Ok(None);
        }
        let record = self
            .chain
            .run_get_method(&address, "get_worker_record", &[])
            .await
            .map_err(reg_err)?;
        let mut r = StackReader::new("get_worker_record", record);
        let receipt_key = r.bits256("receipt_key").map_err(reg_err)?;
        let encryption_key = r.bits256("encryption_key").map_err(reg_err)?;
        let price_in: u64 = r.uint("price_in").map_err(reg_err)?;
        let price_out: u64 = r.uint("price_out").map_err(reg_err)?;
        let models = models_from_root(r.maybe_cell("models").map_err(reg_err)?)?;
        let attestation_kind: u8 = r.uint("kind").map_err(reg_err)?;
        let _measurement = r.bits256("measurement").map_err(reg_err)?;
        let evidence_hash = r.bits256("evidence_hash").map_err(reg_err)?;
        let expires_at: u32 = r.uint("expires_at").map_err(reg_err)?;
        Ok(Some(OnChainWorker {
            status,
            stake,
            min_stake: self.min_stake().await?,
            receipt_key,
            encryption_key,
            price_in,
            price_out,
            models,
            attestation_kind,
            evidence_hash,
            expires_at,
        }))
    }
}

/// A `(HashmapE 32 Empty)` given as its root cell (or null) → the model ids.
fn models_from_root(root: Option<ArcCell>) -> Result<Vec<u32>, RegistryError> {
    let mut b = CellBuilder::new();
    match &root {
        Some(c) => b
            .store_bit(true)
            .and_then(|b| b.store_reference(c))
            .map_err(reg_err)?,
        None => b.store_bit(false).map_err(reg_err)?,
    };
    let cell = b.build().map_err(reg_err)?;
    Ok(SetU32::load(&mut cell.parser(), "models")
        .map_err(reg_err)?
        .into_iter()
        .collect())
}

impl<C: ChainApi + 'static> WorkerRegistry for ChainRegistry<C> {
    fn lookup<'a>(
        &'a self,
        worker: &'a str,
    ) -> BoxFuture<'a, Result<Option<OnChainWorker>, RegistryError>> {
        Box::pin(self.read(worker))
    }
}

/// The watcher's transactions, from the chain API (forward paging).
#[derive(Debug)]
pub struct ChainTransactions<C> {
    chain: Arc<C>,
}

impl<C: ChainApi + 'static> ChainTransactions<C> {
    /// Over `chain`.
    pub fn new(chain: Arc<C>) -> Self {
        Self { chain }
    }
}

impl<C: ChainApi + 'static> TransactionSource for ChainTransactions<C> {
    fn transactions_after<'a>(
        &'a self,
        address: &'a str,
        after_lt: u64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<WatchedTx>, SourceError>> {
        Box::pin(async move {
            let address = TonAddress::from_hex_str(address).map_err(src_err)?;
            let txs = self
                .chain
                .transactions(&address, after_lt, limit)
                .await
                .map_err(src_err)?;
            Ok(txs
                .into_iter()
                .map(|t| WatchedTx {
                    lt: t.id.lt,
                    hash: t.id.hash,
                    now: t.now,
                    aborted: t.aborted || t.failed(),
                    in_msg: t.in_msg.map(|m| InMessage {
                        source: m.source.map(|s| s.to_hex()),
                        bounced: m.bounced,
                        body: m.body,
                    }),
                })
                .collect())
        })
    }
}

/// The relayer's wallet over the sdk's [`Wallet`] and chain API.
#[derive(Debug)]
pub struct ChainWallet<C> {
    chain: Arc<C>,
    wallet: Wallet,
}

impl<C: ChainApi + 'static> ChainWallet<C> {
    /// `wallet` sending through `chain`.
    pub fn new(chain: Arc<C>, wallet: Wallet) -> Self {
        Self { chain, wallet }
    }
}

impl<C: ChainApi + 'static> WalletSender for ChainWallet<C> {
    fn seqno(&self) -> BoxFuture<'_, Result<u32, SourceError>> {
        Box::pin(async move { self.wallet.seqno(&*self.chain).await.map_err(src_err) })
    }

    fn build(
        &self,
        seqno: u32,
        to: &str,
        value: u128,
        body: Cell,
    ) -> Result<(Vec<u8>, [u8; 32]), SourceError> {
        let dest = TonAddress::from_hex_str(to).map_err(src_err)?;
        let valid_until =
            u32::try_from(unix_now_i64() + MESSAGE_TTL.as_secs() as i64).unwrap_or(u32::MAX);
        let signed = self
            .wallet
            .sign_external(
                seqno,
                valid_until,
                &[OutMessage::call(dest, value, body)],
                // Seqno 0: the wallet may not be deployed yet (a fresh relayer); the state init
                // deploys it, and is ignored by an active one.
                seqno == 0,
            )
            .map_err(src_err)?;
        Ok((signed.boc, signed.hash_norm))
    }

    fn broadcast<'a>(&'a self, boc: &'a [u8]) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move { self.chain.send_boc(boc).await.map(|_| ()).map_err(src_err) })
    }

    fn outcome<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<BatchOutcome>, SourceError>> {
        Box::pin(batch_outcome(&*self.chain, self.wallet.address(), msg_hash))
    }

    fn landed<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<(u64, [u8; 32])>, SourceError>> {
        Box::pin(async move {
            let txs = self
                .chain
                .transactions_by_message(msg_hash)
                .await
                .map_err(src_err)?;
            Ok(txs
                .into_iter()
                .find(|t| t.account == *self.wallet.address())
                .map(|t| (t.id.lt, t.id.hash)))
        })
    }
}

/// The relayer's highload wallet (Highload Wallet v3 of the relayer's key) over the sdk's
/// [`HighloadWallet`]: each batch is signed under a fresh query id instead of a seqno, so another
/// process sending from the same wallet never races the submitter for a slot. Its address
/// differs from the V5R1 one and must hold the TON that pays for `SubmitReceipts`.
#[derive(Debug)]
pub struct HighloadChainWallet<C> {
    chain: Arc<C>,
    wallet: HighloadWallet,
    /// The next query id, and what the chain said at the last [`WalletSender::seqno`]: whether
    /// the wallet is deployed and the chain's time (what `created_at` is set from).
    state: Mutex<(QueryId, bool, u64)>,
}

impl<C: ChainApi + 'static> HighloadChainWallet<C> {
    /// `wallet` sending through `chain`.
    pub fn new(chain: Arc<C>, wallet: HighloadWallet) -> Self {
        // A start shift from the clock: a restarted relayer (the ids of the previous run stay
        // marked for the wallet's timeout) most likely starts on unused ids; a collision is
        // still caught: the query id reads processed without this message, and the batch is
        // released and signed again.
        let shift = (unix_now_i64().rem_euclid(i64::from(QueryId::MAX_SHIFT) + 1)) as u16;
        let first = QueryId::new(shift, 0).unwrap_or(QueryId::new(0, 0).expect("0 is a query id"));
        Self {
            chain,
            wallet,
            state: Mutex::new((first, false, 0)),
        }
    }

    /// Seconds after which a message it signed can certainly no longer execute (the wallet's
    /// timeout plus a slack for the index): the submitter's message expiry.
    pub fn message_expiry(&self) -> i64 {
        i64::from(self.wallet.timeout()) + 60
    }
}

fn query_id_of(slot: u32) -> Result<QueryId, SourceError> {
    QueryId::new((slot >> 10) as u16, (slot & 0x3ff) as u16)
        .ok_or_else(|| SourceError(format!("{slot} is not a highload query id")))
}

impl<C: ChainApi + 'static> WalletSender for HighloadChainWallet<C> {
    fn seqno(&self) -> BoxFuture<'_, Result<u32, SourceError>> {
        Box::pin(async move {
            let (deployed, chain_time) = self.wallet.status(&*self.chain).await.map_err(src_err)?;
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let id = st.0;
            *st = (id.next(), deployed, chain_time);
            Ok(id.value())
        })
    }

    fn used(&self, sent_with: u32) -> BoxFuture<'_, Result<bool, SourceError>> {
        Box::pin(async move {
            self.wallet
                .processed(&*self.chain, query_id_of(sent_with)?)
                .await
                .map_err(src_err)
        })
    }

    fn build(
        &self,
        seqno: u32,
        to: &str,
        value: u128,
        body: Cell,
    ) -> Result<(Vec<u8>, [u8; 32]), SourceError> {
        let dest = TonAddress::from_hex_str(to).map_err(src_err)?;
        let (_, deployed, chain_time) = *self.state.lock().unwrap_or_else(|e| e.into_inner());
        let signed = self
            .wallet
            .sign(
                query_id_of(seqno)?,
                HighloadWallet::created_at(chain_time),
                &[OutMessage::call(dest, value, body)],
                // The first external deploys the wallet; an active one ignores the state-init.
                !deployed,
            )
            .map_err(src_err)?;
        Ok((signed.boc, signed.hash_norm))
    }

    fn broadcast<'a>(&'a self, boc: &'a [u8]) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move { self.chain.send_boc(boc).await.map(|_| ()).map_err(src_err) })
    }

    fn outcome<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<BatchOutcome>, SourceError>> {
        Box::pin(batch_outcome(&*self.chain, self.wallet.address(), msg_hash))
    }

    fn landed<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<(u64, [u8; 32])>, SourceError>> {
        Box::pin(async move {
            Ok(tx_of(&*self.chain, self.wallet.address(), msg_hash)
                .await?
                .map(|t| (t.id.lt, t.id.hash)))
        })
    }
}

/// The transaction of `account` that processed the message with this hash, if visible yet.
async fn tx_of<C: ChainApi>(
    chain: &C,
    account: &TonAddress,
    msg_hash: &[u8; 32],
) -> Result<Option<Transaction>, SourceError> {
    let txs = chain
        .transactions_by_message(msg_hash)
        .await
        .map_err(src_err)?;
    Ok(txs.into_iter().find(|t| t.account == *account))
}

fn exit_code(t: &Transaction) -> i32 {
    t.exit_code
        .filter(|c| *c != 0)
        .or(t.action_result_code)
        .unwrap_or(-1)
}

/// Follows a landed SubmitReceipts: wallet transaction → the Worker's transaction → one Settle per
/// accepted receipt → each Escrow's transaction. `None` while any of them is not visible yet.
pub async fn batch_outcome<C: ChainApi>(
    chain: &C,
    wallet: &TonAddress,
    msg_hash: &[u8; 32],
) -> Result<Option<BatchOutcome>, SourceError> {
    let Some(wallet_tx) = tx_of(chain, wallet, msg_hash).await? else {
        return Ok(None);
    };
    let Some(out) = wallet_tx.out_msgs.iter().find(|m| m.destination.is_some()) else {
        return Ok(Some(BatchOutcome {
            refused: Some(("wallet", exit_code(&wallet_tx))),
            ..BatchOutcome::default()
        }));
    };
    let worker = out.destination.clone().unwrap_or(TonAddress::NULL);
    let Some(worker_tx) = tx_of(chain, &worker, &out.hash).await? else {
        return Ok(None);
    };
    if worker_tx.failed() {
        return Ok(Some(BatchOutcome {
            refused: Some(("Worker contract", exit_code(&worker_tx))),
            ..BatchOutcome::default()
        }));
    }
    let mut outcome = BatchOutcome::default();
    for m in &worker_tx.out_msgs {
        let Some(body) = &m.body else { continue };
        match (&m.destination, m.opcode) {
            (Some(escrow), Some(Settle::OP)) => {
                let Ok(settle) = Settle::from_cell(body) else {
                    continue;
                };
                let Some(escrow_tx) = tx_of(chain, escrow, &m.hash).await? else {
                    return Ok(None);
                };
                let verdict = if escrow_tx.succeeded() {
                    Ok(escrow_tx.id.lt)
                } else {
                    Err(exit_code(&escrow_tx))
                };
                outcome
                    .settlements
                    .push((JobRef::new(escrow.to_hex(), settle.job_id), verdict));
            }
            (None, Some(LogReceiptSkipped::OP)) => {
                if let Ok(log) = LogReceiptSkipped::from_cell(body) {
                    outcome
                        .skipped
                        .push((u32::from(log.index), i32::from(log.error)));
                }
            }
            _ => {}
        }
    }
    Ok(Some(outcome))
}
