//! Live worker sessions: one [`Session`] per connected worker, in the [`Sessions`] table the
//! dispatcher picks candidates from. The WebSocket endpoint that opens and closes them is
//! [`crate::api::worker`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cocoon_sdk::relay::client::WorkerInfo;
use cocoon_sdk::relay::worker::RelayMessage;
use ed25519_dalek::VerifyingKey;
use tokio::sync::mpsc;

use crate::config::TRUSTED_CAPACITY;
use crate::registry::OnChainWorker;

/// One authenticated worker connection.
#[derive(Debug)]
pub struct Session {
    /// Relayer-local id.
    pub id: u64,
    /// Worker contract address (raw).
    pub worker: String,
    /// What the chain and the hello say about it.
    pub chain: OnChainWorker,
    /// `chain.receipt_key` decoded once for the session, so that checking each receipt does not
    /// decode it again (`None`: not a valid key; every receipt then fails its check).
    pub(crate) receipt_verifier: Option<VerifyingKey>,
    /// Models it serves in this session.
    pub models: Vec<u32>,
    /// Evidence as served.
    pub evidence: Vec<u8>,
    pub(crate) tx: mpsc::Sender<Outbound>,
    pub(crate) load: AtomicU32,
    /// What the worker says it can run at once (hello, heartbeats).
    pub(crate) capacity: AtomicU32,
    pub(crate) assigned: AtomicU32,
    /// The most jobs it was seen answering at once (across its sessions in this process).
    pub(crate) served_peak: AtomicU32,
    pub(crate) last_seen: Mutex<Instant>,
}

/// A frame queued to a worker.
// A queue slot is as large as a RelayMessage, as it was when the queue held them directly;
// boxing the message would allocate once more per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A message the session's writer encodes.
    Message(RelayMessage),
    /// A message already encoded as its JSON text (see [`Session::send_encoded`]).
    Encoded(String),
}

impl Session {
    /// Queues a frame to the worker; `false` when the session is gone or hopelessly behind.
    pub fn send(&self, msg: RelayMessage) -> bool {
        self.tx.try_send(Outbound::Message(msg)).is_ok()
    }

    /// Queues a message already encoded as the JSON of a [`RelayMessage`] (the hot path builds
    /// channel dispatches from the client's own encoding of its voucher and input).
    pub(crate) fn send_encoded(&self, text: String) -> bool {
        self.tx.try_send(Outbound::Encoded(text)).is_ok()
    }

    /// Jobs running (the larger of what the worker reports and what the relayer assigned).
    pub fn load(&self) -> u32 {
        self.load
            .load(Ordering::Relaxed)
            .max(self.assigned.load(Ordering::Relaxed))
    }

    /// Jobs the relayer believes it can run at once: what it claims, but only up to what it
    /// has earned — the larger of [`TRUSTED_CAPACITY`] and twice the most jobs it was seen
    /// answering at once. A claim of 4,294,967,295 buys nothing.
    pub fn capacity(&self) -> u32 {
        let earned =
            TRUSTED_CAPACITY.max(self.served_peak.load(Ordering::Relaxed).saturating_mul(2));
        self.claimed_capacity().min(earned)
    }

    /// What the worker claims it can run at once.
    pub fn claimed_capacity(&self) -> u32 {
        self.capacity.load(Ordering::Relaxed)
    }

    /// An attempt of this session ended answered while `concurrent` jobs (itself included)
    /// were assigned to it; returns the peak so far.
    pub fn served(&self, concurrent: u32) -> u32 {
        self.served_peak
            .fetch_max(concurrent, Ordering::Relaxed)
            .max(concurrent)
    }

    /// Jobs assigned by this relayer now.
    pub fn assigned(&self) -> u32 {
        self.assigned.load(Ordering::Relaxed)
    }

    /// Heartbeats on time.
    pub fn healthy(&self, timeout: Duration) -> bool {
        self.last_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            < timeout
    }

    /// Counts a job assigned by this relayer (released with [`Session::release`]).
    pub fn assign(&self) {
        self.assigned.fetch_add(1, Ordering::Relaxed);
    }

    /// Releases an assigned job.
    pub fn release(&self) {
        let _ = self
            .assigned
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    pub(crate) fn touch(&self) {
        *self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// The public view handed to clients.
    pub fn info(&self, heartbeat_timeout: Duration) -> WorkerInfo {
        WorkerInfo {
            worker: self.worker.clone(),
            receipt_key: self.chain.receipt_key,
            encryption_key: self.chain.encryption_key,
            models: self.models.clone(),
            price_in: self.chain.price_in,
            price_out: self.chain.price_out,
            evidence: self.evidence.clone(),
            evidence_hash: self.chain.evidence_hash,
            attestation_kind: self.chain.attestation_kind,
            attestation_expires_at: self.chain.expires_at,
            load: self.load(),
            capacity: self.capacity(),
            healthy: self.healthy(heartbeat_timeout),
        }
    }
}

/// The live sessions, one per worker address (a new session replaces the old one).
#[derive(Debug, Default)]
pub struct Sessions {
    by_worker: RwLock<HashMap<String, Arc<Session>>>,
    /// Each worker's served peak, kept across its reconnections.
    peaks: Mutex<HashMap<String, u32>>,
    pub(crate) next_id: AtomicU64,
}

impl Sessions {
    /// The session of a worker.
    pub fn get(&self, worker: &str) -> Option<Arc<Session>> {
        self.by_worker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(worker)
            .cloned()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.by_worker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.by_worker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The served peak a worker earned in earlier sessions.
    pub fn earned_peak(&self, worker: &str) -> u32 {
        self.peaks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(worker)
            .copied()
            .unwrap_or(0)
    }

    /// Records a worker's served peak for its later sessions.
    pub fn remember_peak(&self, worker: &str, peak: u32) {
        let mut peaks = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
        let p = peaks.entry(worker.to_string()).or_insert(0);
        *p = (*p).max(peak);
    }

    pub(crate) fn insert(&self, session: Arc<Session>) -> Option<Arc<Session>> {
        self.by_worker
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.worker.clone(), session)
    }

    pub(crate) fn remove(&self, session: &Session) -> bool {
        let mut map = self.by_worker.write().unwrap_or_else(|e| e.into_inner());
        if map.get(&session.worker).is_some_and(|s| s.id == session.id) {
            map.remove(&session.worker);
            true
        } else {
            false
        }
    }
}
