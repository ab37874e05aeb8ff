//! The node's payment channels: one [`WorkerChannel`] per channel it serves, restored from the
//! durable ledger, kept in step with the chain through the [`ChannelCache`], and the client's
//! vouchers taken in (checked against the node's own receipts, then persisted).
//!
//! ```text
//! start:    ledger.channels() ─▶ chain state ─▶ ledger.restore ─▶ book
//! request:  cache.get(channel) ─▶ book (restored or new) ─▶ refresh when the chain moved
//! voucher:  accept_voucher ─▶ (better) ledger.record_voucher
//!           over the amount? read the chain afresh (a top-up) and try once more
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cocoon_sdk::chain::TonCenterClient;
use cocoon_sdk::channel::{
    ChannelError, ChannelRef, ChannelState, SignedVoucher, VoucherIntake, WorkerChannel,
    request_max_cost,
};
use cocoon_sdk::contracts::v2::ChainChannels;
use cocoon_sdk::relay::channel::{ChannelRefusal, ChannelRefused};
use cocoon_sdk::tlb::TonAddress;
use tokio::sync::Mutex as AsyncMutex;
use tracing::{info, warn};

use super::channel_cache::ChannelCache;
use super::channel_ledger::ChannelLedger;

/// One channel's book, locked while a request or a voucher changes it.
pub(crate) type Book = Arc<AsyncMutex<WorkerChannel>>;

/// Why the node does not serve a channel request (sent as [`ChannelRefused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: ChannelRefusal,
    pub message: String,
    pub expected_seq: Option<u32>,
    pub receipt: Option<cocoon_sdk::channel::SignedChannelReceipt>,
}

impl Refusal {
    pub(crate) fn new(code: ChannelRefusal, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            expected_seq: None,
            receipt: None,
        }
    }

    /// The refusal for a channel rule the request broke.
    pub(crate) fn of(e: &ChannelError) -> Self {
        Self::new(ChannelRefusal::of(e), e.to_string())
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ChannelRefusal::Internal, message)
    }

    pub(crate) fn into_message(self, request_id: u64, attempt: u32) -> ChannelRefused {
        ChannelRefused {
            request_id,
            attempt,
            code: self.code,
            message: self.message,
            expected_seq: self.expected_seq,
            receipt: self.receipt,
        }
    }
}

/// How much a channel's client may leave unpaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credit {
    /// A fixed amount, nanoTON.
    Fixed(u128),
    /// One request's maximum cost at this many input and output tokens (the largest context the
    /// node serves), at the channel's prices.
    OneRequest { tokens: u32 },
}

/// The channels of a node.
pub(crate) struct ChannelDesk {
    cache: ChannelCache<ChainChannels<TonCenterClient>>,
    pub(crate) ledger: ChannelLedger,
    books: Mutex<HashMap<ChannelRef, Book>>,
    pub(crate) worker: TonAddress,
    credit: Credit,
}

impl ChannelDesk {
    pub(crate) fn new(
        cache: ChannelCache<ChainChannels<TonCenterClient>>,
        ledger: ChannelLedger,
        worker: TonAddress,
        credit: Credit,
    ) -> Self {
        Self {
            cache,
            ledger,
            books: Mutex::new(HashMap::new()),
            worker,
            credit,
        }
    }

    fn credit_for(&self, state: &ChannelState) -> u128 {
        match self.credit {
            Credit::Fixed(c) => c,
            Credit::OneRequest { tokens } => {
                request_max_cost(state, tokens, tokens).unwrap_or(u128::MAX)
            }
        }
    }

    /// Rebuilds every channel the ledger holds receipts of (start-up). A channel the chain no
    /// longer holds (closed) or that does not rebuild is logged and left out.
    pub(crate) async fn restore_all(&self) -> Result<usize, super::NodeError> {
        let mut n = 0;
        for ch in self.ledger.channels().await? {
            match self.book(&ch).await {
                Ok(_) => n += 1,
                Err(r) => {
                    warn!(target: "worker::node::channels", channel_id = ch.channel_id, escrow = %ch.escrow.to_hex(), code = ?r.code, reason = %r.message, "channel in the ledger not restored")
                }
            }
        }
        info!(target: "worker::node::channels", channels = n, "channels restored from the ledger");
        Ok(n)
    }

    /// Every channel's book held now.
    pub(crate) fn books(&self) -> Vec<(ChannelRef, Book)> {
        self.lock()
            .iter()
            .map(|(c, b)| (c.clone(), b.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelRef, Book>> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The channel's book, in step with the cached chain state; restored from the ledger the
    /// first time the node meets the channel.
    pub(crate) async fn book(&self, ch: &ChannelRef) -> Result<Book, Refusal> {
        let state = self.read(ch, false).await?;
        let held = self.lock().get(ch).cloned();
        if let Some(book) = held {
            let mut b = book.lock().await;
            if b.state() != &state
                && let Err(e) = b.refresh(state)
            {
                warn!(target: "worker::node::channels", channel_id = ch.channel_id, error = %e, "chain state of the channel not taken");
            }
            drop(b);
            return Ok(book);
        }
        let credit = self.credit_for(&state);
        let restored = self
            .ledger
            .restore(state, &self.worker, credit)
            .await
            .map_err(|e| match e {
                super::channel_ledger::ChannelLedgerError::Channel(c) => Refusal::of(&c),
                other => Refusal::internal(other.to_string()),
            })?;
        Ok(self
            .lock()
            .entry(ch.clone())
            .or_insert_with(|| Arc::new(AsyncMutex::new(restored)))
            .clone())
    }

    async fn read(&self, ch: &ChannelRef, fresh: bool) -> Result<ChannelState, Refusal> {
        let read = if fresh {
            self.cache.fresh(ch).await
        } else {
            self.cache.get(ch).await
        };
        read.map_err(|e| Refusal::internal(format!("cannot read the channel from the chain: {e}")))?
            .ok_or_else(|| {
                Refusal::new(
                    ChannelRefusal::UnknownChannel,
                    format!(
                        "the chain holds no channel {} on {}",
                        ch.channel_id,
                        ch.escrow.to_hex()
                    ),
                )
            })
    }

    /// Reads the channel afresh from the chain into `book` (a top-up, a settlement, a close).
    pub(crate) async fn refresh(&self, book: &mut WorkerChannel) -> Result<(), Refusal> {
        let ch = book.state().channel.clone();
        let state = self.read(&ch, true).await?;
        book.refresh(state).map_err(|e| Refusal::of(&e))
    }

    /// Reads the channel from the cache into `book` (no chain read while the cache is fresh).
    pub(crate) async fn refresh_cached(&self, book: &mut WorkerChannel) -> Result<(), Refusal> {
        let ch = book.state().channel.clone();
        let state = self.read(&ch, false).await?;
        if book.state() != &state {
            book.refresh(state).map_err(|e| Refusal::of(&e))?;
        }
        Ok(())
    }

    /// Takes a voucher of the client into `book` and persists it when it improves the claim.
    pub(crate) async fn take_voucher(
        &self,
        book: &mut WorkerChannel,
        voucher: &SignedVoucher,
    ) -> Result<VoucherIntake, Refusal> {
        let intake = match book.accept_voucher(voucher) {
            Err(ChannelError::OverAmount { .. }) => {
                self.refresh(book).await?;
                book.accept_voucher(voucher)
            }
            other => other,
        }
        .map_err(|e| Refusal::of(&e))?;
        if intake == VoucherIntake::Better {
            self.ledger
                .record_voucher(voucher)
                .await
                .map_err(|e| Refusal::internal(format!("cannot record the voucher: {e}")))?;
        }
        Ok(intake)
    }

    /// A voucher pushed outside a request (the latest, or a final one).
    pub(crate) async fn push_voucher(
        &self,
        ch: &ChannelRef,
        voucher: &SignedVoucher,
    ) -> Result<VoucherIntake, Refusal> {
        if &voucher.body.channel != ch {
            return Err(Refusal::new(
                ChannelRefusal::BadVoucher,
                "the voucher names another channel",
            ));
        }
        let book = self.book(ch).await?;
        let mut b = book.lock().await;
        self.take_voucher(&mut b, voucher).await
    }
}
