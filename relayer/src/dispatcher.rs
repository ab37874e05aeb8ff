//! The dispatcher: hands each job with its sealed input to a worker, streams the worker's sealed
//! chunks to the client, checks and stores the receipt, and fails over to the next candidate on
//! timeout, disconnect, refusal or a bad receipt. With no candidate left the job waits (a worker
//! that connects later may take it) and otherwise expires on-chain, refunding the client.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_sdk::relay::worker::{
    Cancel, Chunk, Dispatch, Done, JobFailed, JobFailure, RelayMessage, WorkerMessage,
};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use crate::config::RelayerConfig;
use crate::error::Error;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::queue::{WaitQueue, Waiting};
use crate::receipt::check_receipt;
use crate::sessions::{Session, Sessions};
use crate::store::{JobRecord, JobState, SealedInput, Store};

/// Reason recorded on a job no connected candidate could take.
pub const WAITING_REASON: &str = "waiting for a candidate worker";

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
    /// The worker refused the job for good ([`JobFailure::is_final`]): no other worker is tried.
    Refused(JobFailure, String),
    /// Its client stopped following it: cancelled, not retried.
    Abandoned,
}

/// Why a job whose client left is ended (stored as its reason and told to the worker).
pub const ABANDONED_REASON: &str = "abandoned: the client stopped following the job";

/// How often an attempt checks that someone still follows its job.
const ABANDON_CHECK: Duration = Duration::from_millis(250);

/// Whether `job`'s client followed it and then left for longer than the configured patience.
fn abandoned(d: &DispatchDeps, job: &JobRef) -> bool {
    d.hub
        .alone_for(job)
        .is_some_and(|alone| alone >= d.config.abandon_after)
}

fn cancel(session: &Session, job: &JobRef, attempt: u32, reason: &str) {
    session.send(RelayMessage::Cancel(Cancel {
        job: job.clone(),
        attempt,
        reason: reason.into(),
    }));
}

/// Longest worker detail kept with a refusal.
const MAX_REFUSAL_DETAIL: usize = 200;

/// The stored reason of a job a worker refused for good; [`parse_refusal`] reads it back.
pub fn refusal_reason(code: JobFailure, detail: &str) -> String {
    let detail: String = detail.chars().take(MAX_REFUSAL_DETAIL).collect();
    format!("{REFUSED_PREFIX}{code}: {detail}")
}

/// The code and detail of a stored refusal reason.
pub fn parse_refusal(reason: &str) -> Option<(JobFailure, String)> {
    let rest = reason.strip_prefix(REFUSED_PREFIX)?;
    let (code, detail) = rest.split_once(": ")?;
    Some((JobFailure::parse(code)?, detail.to_string()))
}

const REFUSED_PREFIX: &str = "refused by the worker: ";

/// What the dispatcher works with, handed over when it is built.
#[derive(Debug)]
pub struct DispatchDeps {
    /// The database (job states, sealed inputs, receipts).
    pub store: Store,
    /// The live worker sessions it picks candidates from.
    pub sessions: Arc<Sessions>,
    /// Where it publishes each job's events to clients.
    pub hub: Arc<Hub>,
    /// Dispatch metrics.
    pub metrics: Arc<Metrics>,
    /// Timeouts and leases.
    pub config: RelayerConfig,
}

/// Routes worker answers to the attempts waiting for them and runs one task per job. Cheap to
/// clone: clones share one dispatcher.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    deps: DispatchDeps,
    routes: Mutex<HashMap<JobRef, Route>>,
    /// Jobs being dispatched now; `true` when the job was offered again meanwhile (a worker
    /// freed up after it parked but before its task ended): it then runs once more.
    running: Mutex<HashMap<JobRef, bool>>,
    active: AtomicUsize,
    idle: Notify,
    draining: AtomicBool,
    /// Jobs no connected candidate could take, per (worker, model).
    waiting: WaitQueue,
}

impl Inner {
    fn running_now(&self, job: &JobRef) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(job)
    }
}

impl std::ops::Deref for Dispatcher {
    type Target = DispatchDeps;

    fn deref(&self) -> &DispatchDeps {
        &self.inner.deps
    }
}

impl Dispatcher {
    /// A dispatcher over these handles.
    pub fn new(deps: DispatchDeps) -> Self {
        Self {
            inner: Arc::new(Inner {
                deps,
                routes: Mutex::default(),
                running: Mutex::default(),
                active: AtomicUsize::new(0),
                idle: Notify::new(),
                draining: AtomicBool::new(false),
                waiting: WaitQueue::new(),
            }),
        }
    }

    /// Starts dispatching `job` unless the relayer is draining. A job already being dispatched
    /// runs once more after its current run (it may have parked just before this offer).
    pub fn start(&self, job: JobRef) {
        let d = &self.inner;
        if d.draining.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut running = d.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(again) = running.get_mut(&job) {
                *again = true;
                return;
            }
            running.insert(job.clone(), false);
        }
        d.active.fetch_add(1, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            let result = run_job(&this, &job).await;
            if let Err(e) = result {
                warn!(target: "relayer::dispatch", %job, error = %e, "dispatch stopped on an error");
            }
            let d = &this.inner;
            let again = d
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&job)
                .unwrap_or(false);
            if again {
                this.start(job);
            }
            if d.active.fetch_sub(1, Ordering::SeqCst) == 1 {
                d.idle.notify_waiters();
            }
        });
    }

    /// `session` may have free capacity: start as many of the jobs waiting for it as it has
    /// room for, earliest deadline first. Costs a few map lookups when none waits (heartbeats
    /// call it), whatever the number of jobs waiting for other workers.
    pub fn worker_free(&self, session: &Session) {
        if self.inner.draining.load(Ordering::SeqCst) {
            return;
        }
        let room = session.capacity().saturating_sub(session.load());
        let jobs = self.inner.waiting.take_for(
            &session.worker,
            &session.models,
            unix_now_i64(),
            usize::try_from(room).unwrap_or(usize::MAX),
        );
        for job in jobs {
            self.start(job);
        }
    }

    /// Adds to the waiting queue what the store has and it lacks (jobs parked before a restart
    /// or by another instance, attempts whose lease ran out) and offers those to every connected
    /// worker; returns how many. Runs at start and on the periodic sweep, never per heartbeat.
    /// (Jobs this process parked itself wait for a worker event: a new session, a heartbeat
    /// with room, a finished attempt.)
    pub async fn reload_waiting(&self) -> Result<usize, Error> {
        let waiting = self.store.waiting_jobs(unix_now_i64()).await?;
        let mut added = 0;
        for w in waiting {
            if !self.inner.running_now(&w.job) && self.inner.waiting.park(w) {
                added += 1;
            }
        }
        if added > 0 {
            for session in self.sessions.all() {
                self.worker_free(&session);
            }
        }
        Ok(added)
    }

    /// Jobs waiting in this process's queue (expired entries included until dropped).
    pub fn waiting(&self) -> usize {
        self.inner.waiting.len()
    }

    /// An answer from a worker: delivered to the attempt it belongs to, dropped when late.
    pub fn worker_event(&self, session: &Session, msg: WorkerMessage) {
        let (job, attempt, event) = match msg {
            WorkerMessage::Chunk(c) => (c.job.clone(), c.attempt, AttemptEvent::Chunk(c)),
            WorkerMessage::Done(d) => (d.job.clone(), d.attempt, AttemptEvent::Done(d)),
            WorkerMessage::JobFailed(f) => (f.job.clone(), f.attempt, AttemptEvent::Failed(f)),
            WorkerMessage::Hello(_) | WorkerMessage::Heartbeat(_) => return,
            // Channel-mode answers belong to the channel router, not to per-job dispatch.
            WorkerMessage::ChannelChunk(_)
            | WorkerMessage::ChannelDone(_)
            | WorkerMessage::ChannelRefused(_) => return,
        };
        let routes = self.inner.routes.lock().unwrap_or_else(|e| e.into_inner());
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
        let routes = self.inner.routes.lock().unwrap_or_else(|e| e.into_inner());
        for r in routes.values().filter(|r| r.session_id == session.id) {
            let _ = r.tx.send(AttemptEvent::Disconnected);
        }
    }

    /// Stops starting jobs (graceful shutdown); running ones go on.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Jobs being dispatched now.
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// Waits until no job is being dispatched, or `timeout`; returns whether it got idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.idle.notified();
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
        self.inner
            .routes
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
        self.inner
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job);
    }
}

/// Orders the connected candidates for a job: only healthy sessions with free capacity that serve
/// the model; then least loaded, cheapest (input + output price), and the client's order.
pub fn rank_candidates(
    d: &DispatchDeps,
    record: &JobRecord,
    input: &SealedInput,
    skip: &HashSet<String>,
) -> Vec<Arc<Session>> {
    let candidates: Vec<String> = match &record.opened.route_worker {
        Some(w) => vec![w.clone()],
        None => input.candidates.clone(),
    };
    let timeout = d.config.session_timeout();
    let mut ranked: Vec<(usize, Arc<Session>)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, w)| !skip.contains(*w))
        .filter_map(|(i, w)| d.sessions.get(w).map(|s| (i, s)))
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

async fn run_job(d: &Dispatcher, job: &JobRef) -> Result<(), Error> {
    let Some(record) = d.store.job(job).await? else {
        return Ok(());
    };
    // A dispatched job is held by an attempt (here or at another relayer instance on the same
    // database) until its lease runs out; only waiting jobs are claimed.
    if record.state != JobState::InputReceived {
        return Ok(());
    }
    let Some(input) = d.store.sealed_input(job).await? else {
        return Ok(());
    };
    let mut tried = HashSet::new();
    let mut attempt = record.attempts;
    let mut failed_over = false;
    loop {
        if i64::from(record.opened.deadline) <= unix_now_i64() {
            // The expiry sweep closes the books on it.
            return Ok(());
        }
        if abandoned(d, job) {
            return end_abandoned(d, job).await;
        }
        let Some(session) = rank_candidates(d, &record, &input, &tried)
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
        let lease = lease_until(d);
        if !d
            .store
            .claim_dispatch(job, &session.worker, attempt, from, lease)
            .await?
        {
            debug!(target: "relayer::dispatch", %job, attempt, "claimed elsewhere (another instance or attempt)");
            return Ok(());
        }
        d.metrics.dispatch_attempts.inc();
        let rx = d.route(job, session.id, attempt);
        session.assign();
        d.hub.publish(
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
            follow(d, job, &record, &session, attempt, rx).await
        } else {
            Ok(Outcome::Failover("worker session closed".into()))
        };
        d.unroute(job);
        session.release();
        // Its place is free at once: the next job waiting for it need not wait for a heartbeat.
        d.worker_free(&session);
        match outcome? {
            Outcome::Answered | Outcome::Gone => return Ok(()),
            Outcome::Refused(code, detail) => {
                return end_refused(d, job, &session, attempt, code, &detail).await;
            }
            Outcome::Abandoned => return end_abandoned(d, job).await,
            Outcome::Failover(reason) => {
                d.metrics.failovers.inc();
                failed_over = true;
                warn!(target: "relayer::dispatch", %job, worker = %session.worker, attempt, %reason, "attempt failed, trying the next candidate");
            }
        }
    }
    // What this run holds: the attempt it claimed last, if it claimed any.
    let held = failed_over.then_some(attempt);
    park_waiting(d, job, &record, &input, held).await
}

/// A worker refused the job for a reason no worker can get past: it fails at once, with no
/// receipt (nothing is charged; the Escrow refunds it after the deadline), and the client is told
/// why.
async fn end_refused(
    d: &DispatchDeps,
    job: &JobRef,
    session: &Session,
    attempt: u32,
    code: JobFailure,
    detail: &str,
) -> Result<(), Error> {
    let reason = refusal_reason(code, detail);
    match d
        .store
        .transition(job, JobState::Failed, Some(&reason))
        .await
    {
        Ok(_) => {}
        // Settled or expired meanwhile: its end is already told.
        Err(Error::InvalidTransition { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    d.metrics.final_refusals.inc();
    warn!(target: "relayer::dispatch", %job, worker = %session.worker, attempt, %code, "worker refused the job for good; not retried");
    d.hub.publish(
        job,
        StreamEvent::Refused {
            code,
            reason: detail.chars().take(MAX_REFUSAL_DETAIL).collect(),
        },
    );
    Ok(())
}

/// Its client hung up: the job ends unanswered, so no receipt bills it, and the Escrow refunds it
/// after the deadline (the gateway and the SDK reclaim expired jobs by themselves).
async fn end_abandoned(d: &DispatchDeps, job: &JobRef) -> Result<(), Error> {
    match d
        .store
        .transition(job, JobState::Failed, Some(ABANDONED_REASON))
        .await
    {
        Ok(_) => {}
        Err(Error::InvalidTransition { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    d.metrics.abandoned.inc();
    info!(target: "relayer::dispatch", %job, "client stopped following the job; cancelled unanswered");
    d.hub.publish(
        job,
        StreamEvent::Failed {
            reason: ABANDONED_REASON.into(),
        },
    );
    Ok(())
}

/// Nobody could take the job now. A worker that connects (or frees capacity) before the
/// deadline picks it up; otherwise it expires on-chain and the client is refunded.
async fn park_waiting(
    d: &Dispatcher,
    job: &JobRef,
    record: &JobRecord,
    input: &SealedInput,
    held: Option<u32>,
) -> Result<(), Error> {
    // Only what this run holds is put back: a job another instance claimed after this run read
    // it (its candidates are connected there, not here) stays with that attempt. An
    // unconditional move back to waiting let a third run claim it again: dispatched twice.
    if !d.store.park(job, held, WAITING_REASON).await? {
        debug!(target: "relayer::dispatch", %job, "claimed elsewhere meanwhile; not parked");
        return Ok(());
    }
    let failed_over = held.is_some();
    d.inner.waiting.park(Waiting {
        job: job.clone(),
        deadline: record.opened.deadline,
        model_id: record.opened.model_id,
        candidates: match &record.opened.route_worker {
            Some(w) => vec![w.clone()],
            None => input.candidates.clone(),
        },
    });
    if failed_over || record.state == JobState::InputReceived && record.reason.is_none() {
        d.hub.publish(
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
fn lease_until(d: &DispatchDeps) -> i64 {
    unix_now_i64()
        .saturating_add(i64::try_from(d.config.dispatch_lease().as_secs()).unwrap_or(i64::MAX))
}

async fn follow(
    d: &Dispatcher,
    job: &JobRef,
    record: &JobRecord,
    session: &Session,
    attempt: u32,
    mut rx: mpsc::UnboundedReceiver<AttemptEvent>,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let mut chunks: u32 = 0;
    let mut renewed = Instant::now();
    // One clock for the whole attempt: a fast stream of chunks must not keep putting the check off.
    let mut check = tokio::time::interval(ABANDON_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let budget = if chunks == 0 {
            d.config.first_chunk_timeout
        } else {
            d.config.idle_timeout
        };
        let to_deadline = Duration::from_secs(
            u64::try_from(i64::from(record.opened.deadline) - unix_now_i64()).unwrap_or(0),
        );
        let until = tokio::time::Instant::now() + budget.min(to_deadline);
        let got = loop {
            tokio::select! {
                got = rx.recv() => break got,
                _ = tokio::time::sleep_until(until) => {
                    cancel(session, job, attempt, "timeout");
                    return Ok(Outcome::Failover("timeout".into()));
                }
                _ = check.tick() => {
                    if abandoned(d, job) {
                        cancel(session, job, attempt, ABANDONED_REASON);
                        return Ok(Outcome::Abandoned);
                    }
                }
            }
        };
        let Some(event) = got else {
            return Ok(Outcome::Failover("route dropped".into()));
        };
        match event {
            AttemptEvent::Chunk(c) => {
                chunks = chunks.saturating_add(1);
                // A long answer keeps its claim; at most one lease write per second.
                if renewed.elapsed() >= Duration::from_secs(1) {
                    renewed = Instant::now();
                    if !d.store.renew_lease(job, attempt, lease_until(d)).await? {
                        return Ok(Outcome::Gone);
                    }
                }
                d.hub.publish(
                    job,
                    StreamEvent::Chunk {
                        attempt,
                        seq: c.seq,
                        data: c.data,
                    },
                );
            }
            AttemptEvent::Failed(f) if f.code.is_final() => {
                return Ok(Outcome::Refused(f.code, f.message));
            }
            AttemptEvent::Failed(f) => {
                return Ok(Outcome::Failover(format!("worker refused ({})", f.code)));
            }
            AttemptEvent::Disconnected => {
                return Ok(Outcome::Failover("worker disconnected".into()));
            }
            AttemptEvent::Done(done) => {
                return finish(d, job, record, session, attempt, chunks, started, done).await;
            }
        }
    }
}

/// The worker's `Done`: its receipt checked and recorded, then published to the client.
#[allow(clippy::too_many_arguments)]
async fn finish(
    d: &DispatchDeps,
    job: &JobRef,
    record: &JobRecord,
    session: &Session,
    attempt: u32,
    chunks: u32,
    started: Instant,
    done: Done,
) -> Result<Outcome, Error> {
    let summary = match check_receipt(
        &done.receipt,
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
    match d
        .store
        .record_receipt(job, &session.worker, &done.receipt, cost)
        .await
    {
        Ok(()) => {}
        Err(Error::InvalidTransition { .. }) => return Ok(Outcome::Gone),
        Err(e) => return Err(e),
    }
    d.metrics
        .dispatch_latency
        .observe(started.elapsed().as_secs_f64());
    // Capacity is earned: what it answered at once raises what the relayer believes of it.
    let peak = session.served(session.assigned());
    d.sessions.remember_peak(&session.worker, peak);
    d.hub.publish(
        job,
        StreamEvent::Receipt {
            worker: session.worker.clone(),
            attempt,
            chunks: done.chunks,
            receipt: done.receipt,
            cost,
        },
    );
    info!(target: "relayer::dispatch", %job, worker = %session.worker, attempt, chunks, cost, "answered");
    Ok(Outcome::Answered)
}
