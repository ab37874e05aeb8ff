//! The dispatcher: hands each job with its sealed input to a worker, streams the worker's sealed
//! chunks to the client, checks and stores the receipt, and fails over to the next candidate on
//! timeout, disconnect, refusal or a bad receipt. With no candidate left the job waits (a worker
//! that connects later may take it) and otherwise expires on-chain, refunding the client.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_sdk::relay::worker::{
    Cancel, Chunk, Dispatch, Done, JobFailed, RelayMessage, WorkerMessage,
};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use crate::error::Error;
use crate::receipt::check_receipt;
use crate::relayer::Shared;
use crate::sessions::Session;
use crate::store::{JobRecord, JobState, SealedInput, now_unix};

/// Reason recorded on a job no connected candidate could take.
pub const WAITING_REASON: &str = "waiting for a candidate worker";

/// Most waiting jobs looked at when a worker becomes available.
const WAITING_SCAN_LIMIT: u32 = 256;

#[derive(Debug)]
enum AttemptEvent {
    Chunk(Chunk),
    Done(Done),
    Failed(JobFailed),
    Disconnected,
}

#[derive(Debug)]
struct Route {
    session_id: u64,
    attempt: u32,
    tx: mpsc::UnboundedSender<AttemptEvent>,
}

enum Outcome {
    Answered,
    /// The job left the dispatcher's hands (expired, settled elsewhere).
    Gone,
    Failover(String),
}

/// Routes worker answers to the attempts waiting for them and runs one task per job.
#[derive(Debug, Default)]
pub struct Dispatcher {
    routes: Mutex<HashMap<JobRef, Route>>,
    running: Mutex<HashSet<JobRef>>,
    active: AtomicUsize,
    idle: Notify,
    draining: AtomicBool,
    scanning: AtomicBool,
}

impl Dispatcher {
    /// Starts dispatching `job` unless it is already being dispatched or the relayer is draining.
    pub fn start(&self, shared: &Arc<Shared>, job: JobRef) {
        if self.draining.load(Ordering::SeqCst) {
            return;
        }
        if !self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.clone())
        {
            return;
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        tokio::spawn(async move {
            let result = run_job(&shared, &job).await;
            if let Err(e) = result {
                warn!(target: "relayer::dispatch", %job, error = %e, "dispatch stopped on an error");
            }
            let d = &shared.dispatcher;
            d.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&job);
            if d.active.fetch_sub(1, Ordering::SeqCst) == 1 {
                d.idle.notify_waiters();
            }
        });
    }

    /// A worker may take jobs: start the waiting ones (coalesced; one scan at a time).
    pub fn worker_available(&self, shared: &Arc<Shared>) {
        if self.draining.load(Ordering::SeqCst) || self.scanning.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let waiting = shared
                .store
                .jobs_in_state(JobState::InputReceived, WAITING_SCAN_LIMIT)
                .await;
            shared.dispatcher.scanning.store(false, Ordering::SeqCst);
            match waiting {
                Ok(jobs) => {
                    let now = now_unix();
                    for j in jobs
                        .into_iter()
                        .filter(|j| i64::from(j.opened.deadline) > now)
                    {
                        shared.dispatcher.start(&shared, j.opened.job);
                    }
                }
                Err(e) => {
                    warn!(target: "relayer::dispatch", error = %e, "could not list waiting jobs")
                }
            }
        });
    }

    /// An answer from a worker: delivered to the attempt it belongs to, dropped when late.
    pub fn worker_event(&self, session: &Session, msg: WorkerMessage) {
        let (job, attempt, event) = match msg {
            WorkerMessage::Chunk(c) => (c.job.clone(), c.attempt, AttemptEvent::Chunk(c)),
            WorkerMessage::Done(d) => (d.job.clone(), d.attempt, AttemptEvent::Done(d)),
            WorkerMessage::JobFailed(f) => (f.job.clone(), f.attempt, AttemptEvent::Failed(f)),
            WorkerMessage::Hello(_) | WorkerMessage::Heartbeat(_) => return,
        };
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        match routes.get(&job) {
            Some(r) if r.session_id == session.id && r.attempt == attempt => {
                let _ = r.tx.send(event);
            }
            _ => {
                debug!(target: "relayer::dispatch", %job, attempt, worker = %session.worker, "answer for no current attempt dropped")
            }
        }
    }

    /// A session ended: its attempts fail over.
    pub fn session_closed(&self, session: &Session) {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        for r in routes.values().filter(|r| r.session_id == session.id) {
            let _ = r.tx.send(AttemptEvent::Disconnected);
        }
    }

    /// Stops starting jobs (graceful shutdown); running ones go on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Jobs being dispatched now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Waits until no job is being dispatched, or `timeout`; returns whether it got idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.active() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.active() == 0;
            }
        }
    }

    fn route(
        &self,
        job: &JobRef,
        session_id: u64,
        attempt: u32,
    ) -> mpsc::UnboundedReceiver<AttemptEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                job.clone(),
                Route {
                    session_id,
                    attempt,
                    tx,
                },
            );
        rx
    }

    fn unroute(&self, job: &JobRef) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job);
    }
}

/// Orders the connected candidates for a job: only healthy sessions with free capacity that serve
/// the model; then least loaded, cheapest (input + output price), and the client's order.
pub fn rank_candidates(
    shared: &Shared,
    record: &JobRecord,
    input: &SealedInput,
    skip: &HashSet<String>,
) -> Vec<Arc<Session>> {
    let candidates: Vec<String> = match &record.opened.route_worker {
        Some(w) => vec![w.clone()],
        None => input.candidates.clone(),
    };
    let timeout = shared.config.session_timeout();
    let mut ranked: Vec<(usize, Arc<Session>)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, w)| !skip.contains(*w))
        .filter_map(|(i, w)| shared.sessions.get(w).map(|s| (i, s)))
        .filter(|(_, s)| {
            s.models.contains(&record.opened.model_id)
                && s.healthy(timeout)
                && s.load() < s.capacity()
        })
        .collect();
    ranked.sort_by_key(|(i, s)| {
        // Load as a fraction of capacity, in thousandths, so bigger workers take more.
        let load = u64::from(s.load()) * 1000 / u64::from(s.capacity().max(1));
        let price = u128::from(s.chain.price_in) + u128::from(s.chain.price_out);
        (load, price, *i)
    });
    ranked.into_iter().map(|(_, s)| s).collect()
}

async fn run_job(shared: &Arc<Shared>, job: &JobRef) -> Result<(), Error> {
    let Some(record) = shared.store.job(job).await? else {
        return Ok(());
    };
    // A dispatched job is held by an attempt (here or at another relayer instance on the same
    // database) until its lease runs out; only waiting jobs are claimed.
    if record.state != JobState::InputReceived {
        return Ok(());
    }
    let Some(input) = shared.store.sealed_input(job).await? else {
        return Ok(());
    };
    let mut tried = HashSet::new();
    let mut attempt = record.attempts;
    let mut failed_over = false;
    loop {
        if i64::from(record.opened.deadline) <= now_unix() {
            // The expiry sweep closes the books on it.
            return Ok(());
        }
        let Some(session) = rank_candidates(shared, &record, &input, &tried)
            .into_iter()
            .next()
        else {
            break;
        };
        tried.insert(session.worker.clone());
        let from = if attempt == record.attempts {
            JobState::InputReceived
        } else {
            JobState::Dispatched
        };
        attempt += 1;
        let lease = lease_until(shared);
        if !shared
            .store
            .claim_dispatch(job, &session.worker, attempt, from, lease)
            .await?
        {
            debug!(target: "relayer::dispatch", %job, attempt, "claimed elsewhere (another instance or attempt)");
            return Ok(());
        }
        shared.metrics.dispatch_attempts.inc();
        let rx = shared.dispatcher.route(job, session.id, attempt);
        session.assign();
        shared.hub.publish(
            job,
            StreamEvent::Dispatched {
                worker: session.worker.clone(),
                attempt,
            },
        );
        info!(target: "relayer::dispatch", %job, worker = %session.worker, attempt, input_bytes = input.ciphertext.len(), "dispatched");
        let dispatch = Dispatch {
            job: job.clone(),
            attempt,
            model_id: record.opened.model_id,
            max_cost: record.opened.max_cost,
            deadline: record.opened.deadline,
            input_commitment: record.opened.input_commitment,
            sealed_input: input.ciphertext.clone(),
        };
        let outcome = if session.send(RelayMessage::Dispatch(dispatch)) {
            follow(shared, job, &record, &session, attempt, rx).await
        } else {
            Ok(Outcome::Failover("worker session closed".into()))
        };
        shared.dispatcher.unroute(job);
        session.release();
        match outcome? {
            Outcome::Answered | Outcome::Gone => return Ok(()),
            Outcome::Failover(reason) => {
                shared.metrics.failovers.inc();
                failed_over = true;
                warn!(target: "relayer::dispatch", %job, worker = %session.worker, attempt, %reason, "attempt failed, trying the next candidate");
            }
        }
    }
    // Nobody could take it now. A worker that connects (or frees capacity) before the deadline
    // picks it up; otherwise it expires on-chain and the client is refunded.
    match shared
        .store
        .transition(job, JobState::InputReceived, Some(WAITING_REASON))
        .await
    {
        Ok(_)
        | Err(Error::InvalidTransition {
            from: JobState::InputReceived,
            ..
        }) => {}
        Err(Error::InvalidTransition { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    if failed_over || record.state == JobState::InputReceived && record.reason.is_none() {
        shared.hub.publish(
            job,
            StreamEvent::Status {
                state: JobState::InputReceived.to_string(),
                reason: Some(WAITING_REASON.into()),
            },
        );
    }
    Ok(())
}

/// The lease an attempt starting (or streaming) now holds its job with.
fn lease_until(shared: &Shared) -> i64 {
    now_unix()
        .saturating_add(i64::try_from(shared.config.dispatch_lease().as_secs()).unwrap_or(i64::MAX))
}

async fn follow(
    shared: &Arc<Shared>,
    job: &JobRef,
    record: &JobRecord,
    session: &Session,
    attempt: u32,
    mut rx: mpsc::UnboundedReceiver<AttemptEvent>,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let mut chunks: u32 = 0;
    let mut renewed = Instant::now();
    loop {
        let budget = if chunks == 0 {
            shared.config.first_chunk_timeout
        } else {
            shared.config.idle_timeout
        };
        let to_deadline = Duration::from_secs(
            u64::try_from(i64::from(record.opened.deadline) - now_unix()).unwrap_or(0),
        );
        let event = match tokio::time::timeout(budget.min(to_deadline), rx.recv()).await {
            Err(_) => {
                session.send(RelayMessage::Cancel(Cancel {
                    job: job.clone(),
                    attempt,
                    reason: "timeout".into(),
                }));
                return Ok(Outcome::Failover("timeout".into()));
            }
            Ok(None) => return Ok(Outcome::Failover("route dropped".into())),
            Ok(Some(e)) => e,
        };
        match event {
            AttemptEvent::Chunk(c) => {
                chunks = chunks.saturating_add(1);
                // A long answer keeps its claim; at most one lease write per second.
                if renewed.elapsed() >= Duration::from_secs(1) {
                    renewed = Instant::now();
                    if !shared
                        .store
                        .renew_lease(job, attempt, lease_until(shared))
                        .await?
                    {
                        return Ok(Outcome::Gone);
                    }
                }
                shared.hub.publish(
                    job,
                    StreamEvent::Chunk {
                        attempt,
                        seq: c.seq,
                        data: c.data,
                    },
                );
            }
            AttemptEvent::Failed(f) => {
                return Ok(Outcome::Failover(format!("worker refused ({:?})", f.code)));
            }
            AttemptEvent::Disconnected => {
                return Ok(Outcome::Failover("worker disconnected".into()));
            }
            AttemptEvent::Done(d) => {
                let summary = match check_receipt(
                    &d.receipt,
                    &session.chain.receipt_key,
                    job,
                    &session.worker,
                    record.opened.max_cost,
                ) {
                    Ok(s) => s,
                    Err(why) => return Ok(Outcome::Failover(format!("receipt refused: {why}"))),
                };
                // cost <= max_cost < 2^64 was just checked.
                let cost = u64::try_from(summary.cost).unwrap_or(u64::MAX);
                match shared
                    .store
                    .record_receipt(job, &session.worker, &d.receipt, cost)
                    .await
                {
                    Ok(()) => {}
                    Err(Error::InvalidTransition { .. }) => return Ok(Outcome::Gone),
                    Err(e) => return Err(e),
                }
                shared
                    .metrics
                    .dispatch_latency
                    .observe(started.elapsed().as_secs_f64());
                shared.hub.publish(
                    job,
                    StreamEvent::Receipt {
                        worker: session.worker.clone(),
                        attempt,
                        chunks: d.chunks,
                        receipt: d.receipt,
                        cost,
                    },
                );
                info!(target: "relayer::dispatch", %job, worker = %session.worker, attempt, chunks, cost, "answered");
                return Ok(Outcome::Answered);
            }
        }
    }
}
