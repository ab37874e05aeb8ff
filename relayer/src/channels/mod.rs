//! Channel mode (protocol v2): requests routed by payment channel, with no chain transaction and
//! nothing durable per request.
//!
//! ```text
//! client ─ChannelSubmit─▶ api::channel ─▶ ChannelRouter::admit (cached channel states)
//!                                              │
//!                                              ▼
//!            route::run: ticket by ticket ─ChannelDispatch─▶ the channel's worker session
//!                                              ▲
//! worker session ─ChannelChunk/Done/Refused────┘ (ChannelRouter::worker_frame)
//! ```
//!
//! Request state lives in memory only: a crash loses the requests in flight, which their
//! clients retry (the worker's ledger keeps a seq from being paid twice).

#[cfg(test)]
mod fixtures;
pub mod registry;
pub mod route;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cocoon_sdk::channel::ChannelState;
use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::channel::{
    ChannelChunk, ChannelDone, ChannelRefused, ChannelSubmit, ChannelTicket, ChannelVoucherPush,
};
use cocoon_sdk::relay::worker::{RelayMessage, WorkerMessage};
use cocoon_sdk::tlb::TonAddress;
use tracing::debug;

pub use registry::{
    ChannelBook, ChannelCache, ChannelReadError, DEFAULT_CHANNEL_TTL, NoChannels, SourceBook,
};

use crate::config::RelayerConfig;
use crate::sessions::{Session, Sessions};

/// Why the relayer does not route a ticket's channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketRefusal {
    /// The chain holds no such channel (or not with this Root and network).
    #[error("channel {channel_id} of {escrow} is unknown")]
    Unknown {
        /// Escrow (raw).
        escrow: String,
        /// Channel id.
        channel_id: u64,
    },
    /// The channel names another relayer.
    #[error("channel {channel_id} is routed by relayer {relayer}, not this one")]
    OtherRelayer {
        /// Channel id.
        channel_id: u64,
        /// The relayer it names (raw).
        relayer: String,
    },
    /// Expired, or its client asked to close it.
    #[error("channel {channel_id} is expired or closing")]
    NotServing {
        /// Channel id.
        channel_id: u64,
    },
    /// Everything locked in it is settled.
    #[error("channel {channel_id} is exhausted")]
    Exhausted {
        /// Channel id.
        channel_id: u64,
    },
    /// Its worker has no session here.
    #[error("the worker of channel {channel_id} is not connected")]
    WorkerOffline {
        /// Channel id.
        channel_id: u64,
    },
    /// The chain could not be read.
    #[error("{0}")]
    Chain(ChannelReadError),
}

/// A ticket the relayer may route: the ticket and its channel as the chain holds it.
#[derive(Debug, Clone)]
pub struct Routable {
    /// The client's ticket.
    pub ticket: ChannelTicket,
    /// The channel.
    pub state: ChannelState,
}

/// What a worker session said about a request.
#[derive(Debug)]
pub(crate) enum WorkerAnswer {
    Chunk(ChannelChunk),
    /// The answer, and its receipt exactly as the worker encoded it (base64 BOC), which is
    /// passed on once checked rather than encoded again.
    Done(ChannelDone, Option<String>),
    Refused(ChannelRefused),
    Disconnected,
}

#[derive(Debug)]
struct Route {
    session_id: u64,
    attempt: u32,
    tx: tokio::sync::mpsc::UnboundedSender<WorkerAnswer>,
}

/// Why a voucher could not be handed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherRefusal {
    /// No such channel.
    #[error("{0}")]
    Unknown(TicketRefusal),
    /// Its worker is not connected.
    #[error("the worker of channel {channel_id} is not connected")]
    WorkerOffline {
        /// Channel id.
        channel_id: u64,
    },
    /// The chain could not be read.
    #[error("{0}")]
    Chain(ChannelReadError),
}

/// Routes channel requests to worker sessions.
pub struct ChannelRouter {
    /// The channels, cached.
    pub cache: ChannelCache,
    relayer: RwLock<Option<TonAddress>>,
    sessions: Arc<Sessions>,
    routes: Mutex<HashMap<u64, Route>>,
    next_id: AtomicU64,
    pub(crate) first_chunk_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl std::fmt::Debug for ChannelRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRouter")
            .field("cache", &self.cache)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl ChannelRouter {
    /// A router over `sessions` that knows no channel until [`ChannelRouter::configure`].
    pub fn new(sessions: Arc<Sessions>, config: &RelayerConfig) -> Self {
        Self {
            cache: ChannelCache::new(Arc::new(NoChannels), DEFAULT_CHANNEL_TTL),
            relayer: RwLock::new(None),
            sessions,
            routes: Mutex::default(),
            next_id: AtomicU64::new(0),
            first_chunk_timeout: config.first_chunk_timeout,
            idle_timeout: config.idle_timeout,
        }
    }

    /// Reads channels from `book`; with `relayer`, routes only channels that name it.
    pub fn configure(&self, book: Arc<dyn ChannelBook>, relayer: Option<TonAddress>) {
        self.cache.set_book(book);
        *self.relayer.write().unwrap_or_else(|e| e.into_inner()) = relayer;
    }

    /// Requests being served.
    pub fn in_flight(&self) -> usize {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Looks up each ticket's channel (cache first, one chain read on a miss) and keeps those
    /// this relayer may route now, in the client's order; the refusals say why the others
    /// were left out.
    pub async fn admit(&self, submit: &ChannelSubmit) -> (Vec<Routable>, Vec<TicketRefusal>) {
        let now = u32::try_from(unix_now_i64()).unwrap_or(u32::MAX);
        let relayer = self
            .relayer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut ok = Vec::new();
        let mut refused = Vec::new();
        for t in &submit.tickets {
            match self.check(t, now, relayer.as_ref()).await {
                Ok(state) => ok.push(Routable {
                    ticket: t.clone(),
                    state,
                }),
                Err(r) => refused.push(r),
            }
        }
        (ok, refused)
    }

    async fn check(
        &self,
        t: &ChannelTicket,
        now: u32,
        relayer: Option<&TonAddress>,
    ) -> Result<ChannelState, TicketRefusal> {
        let channel_id = t.channel.channel_id;
        let unknown = || TicketRefusal::Unknown {
            escrow: t.channel.escrow.to_hex(),
            channel_id,
        };
        let state = self
            .cache
            .get(&t.channel.escrow, channel_id)
            .await
            .map_err(TicketRefusal::Chain)?
            .ok_or_else(unknown)?;
        // A ticket naming another Root or network is not this channel.
        if state.channel != t.channel {
            return Err(unknown());
        }
        if let Some(me) = relayer
            && &state.relayer != me
        {
            return Err(TicketRefusal::OtherRelayer {
                channel_id,
                relayer: state.relayer.to_hex(),
            });
        }
        if !state.serves_at(now) {
            return Err(TicketRefusal::NotServing { channel_id });
        }
        if state.unsettled_capacity() == 0 {
            return Err(TicketRefusal::Exhausted { channel_id });
        }
        Ok(state)
    }

    /// The live session of a channel's worker.
    pub fn session_of(&self, state: &ChannelState) -> Option<Arc<Session>> {
        self.sessions.get(&state.worker.to_hex())
    }

    /// Hands a voucher to the worker of its channel.
    pub async fn push_voucher(&self, push: ChannelVoucherPush) -> Result<(), VoucherRefusal> {
        let channel_id = push.channel.channel_id;
        let state = self
            .cache
            .get(&push.channel.escrow, channel_id)
            .await
            .map_err(VoucherRefusal::Chain)?
            .filter(|s| s.channel == push.channel)
            .ok_or_else(|| {
                VoucherRefusal::Unknown(TicketRefusal::Unknown {
                    escrow: push.channel.escrow.to_hex(),
                    channel_id,
                })
            })?;
        let session = self
            .session_of(&state)
            .ok_or(VoucherRefusal::WorkerOffline { channel_id })?;
        if session.send(RelayMessage::ChannelVoucher(push)) {
            Ok(())
        } else {
            Err(VoucherRefusal::WorkerOffline { channel_id })
        }
    }

    pub(crate) fn open_route(
        &self,
        session: &Session,
        attempt: u32,
    ) -> (u64, tokio::sync::mpsc::UnboundedReceiver<WorkerAnswer>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id,
                Route {
                    session_id: session.id,
                    attempt,
                    tx,
                },
            );
        (id, rx)
    }

    pub(crate) fn close_route(&self, id: u64) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// A channel-mode frame from a worker session: goes to the request's current attempt,
    /// if the frame is from the session that attempt was sent to. `encoded_receipt`: with a
    /// `ChannelDone`, its receipt field as the frame carried it.
    pub fn worker_frame(
        &self,
        session: &Session,
        msg: WorkerMessage,
        encoded_receipt: Option<String>,
    ) {
        let (id, attempt, answer) = match msg {
            WorkerMessage::ChannelChunk(c) => (c.request_id, c.attempt, WorkerAnswer::Chunk(c)),
            WorkerMessage::ChannelDone(d) => (
                d.request_id,
                d.attempt,
                WorkerAnswer::Done(d, encoded_receipt),
            ),
            WorkerMessage::ChannelRefused(r) => (r.request_id, r.attempt, WorkerAnswer::Refused(r)),
            _ => return,
        };
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        match routes.get(&id) {
            Some(r) if r.session_id == session.id && r.attempt == attempt => {
                let _ = r.tx.send(answer);
            }
            _ => {
                debug!(target: "relayer::channels", request = id, attempt, worker = %session.worker, "channel answer for no current attempt dropped")
            }
        }
    }

    /// A session ended: the requests sent to it fail over.
    pub fn session_closed(&self, session: &Session) {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        for r in routes.values().filter(|r| r.session_id == session.id) {
            let _ = r.tx.send(WorkerAnswer::Disconnected);
        }
    }
}
