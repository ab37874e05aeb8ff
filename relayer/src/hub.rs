//! Per-job event streams to clients: every event of a job is kept (in memory) and broadcast, so
//! a client that connects late still receives the whole stream from its start, with no gap.
//!
//! The hub also counts each job's live followers, so the dispatcher can tell a caller who hung
//! up ([`Hub::alone_for`]) and cancel work nobody will read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::StreamEvent;
use tokio::sync::broadcast;

/// How long a finished job's stream stays replayable in memory (afterwards the API rebuilds the
/// final events from the store).
pub const FINISHED_RETENTION: Duration = Duration::from_secs(300);

const BROADCAST_CAPACITY: usize = 1024;

#[derive(Debug)]
struct Channel {
    history: Vec<StreamEvent>,
    tx: broadcast::Sender<StreamEvent>,
    finished_at: Option<Instant>,
    /// Live followers now.
    followers: usize,
    /// Since when a job that had followers has none.
    alone_since: Option<Instant>,
}

impl Channel {
    fn new() -> Self {
        Self {
            history: Vec::new(),
            tx: broadcast::channel(BROADCAST_CAPACITY).0,
            finished_at: None,
            followers: 0,
            alone_since: None,
        }
    }
}

/// A subscription: the events so far, then the live ones.
#[derive(Debug)]
pub struct Subscription {
    /// Events published before the subscription.
    pub history: Vec<StreamEvent>,
    /// Live events after `history` (none when the stream already ended).
    pub live: Option<broadcast::Receiver<StreamEvent>>,
}

/// The per-job streams.
#[derive(Debug, Default)]
pub struct Hub {
    jobs: Mutex<HashMap<JobRef, Channel>>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event to a job's stream.
    pub fn publish(&self, job: &JobRef, event: StreamEvent) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let ch = jobs.entry(job.clone()).or_insert_with(Channel::new);
        if event.is_final() {
            ch.finished_at = Some(Instant::now());
        }
        ch.history.push(event.clone());
        // No receiver is fine: the event is in the history for later subscribers.
        let _ = ch.tx.send(event);
    }

    /// Subscribes to a job's stream; `None` when the hub holds nothing for it.
    pub fn subscribe(&self, job: &JobRef) -> Option<Subscription> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let ch = jobs.get(job)?;
        let live = if ch.finished_at.is_some() {
            None
        } else {
            Some(ch.tx.subscribe())
        };
        Some(Subscription {
            history: ch.history.clone(),
            live,
        })
    }

    /// Subscribes, creating an empty stream when none exists (a client waiting for a job that has
    /// not started yet).
    pub fn subscribe_or_create(&self, job: &JobRef) -> Subscription {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let ch = jobs.entry(job.clone()).or_insert_with(Channel::new);
        let live = if ch.finished_at.is_some() {
            None
        } else {
            Some(ch.tx.subscribe())
        };
        Subscription {
            history: ch.history.clone(),
            live,
        }
    }

    /// Counts a live follower of `job` until the returned guard is dropped.
    pub fn follow(self: &Arc<Self>, job: &JobRef) -> Follower {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let ch = jobs.entry(job.clone()).or_insert_with(Channel::new);
        ch.followers += 1;
        ch.alone_since = None;
        Follower {
            hub: self.clone(),
            job: job.clone(),
        }
    }

    fn unfollow(&self, job: &JobRef) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ch) = jobs.get_mut(job) {
            ch.followers = ch.followers.saturating_sub(1);
            if ch.followers == 0 {
                ch.alone_since = Some(Instant::now());
            }
        }
    }

    /// How long `job` has had no follower after having had one; `None` while it is followed or
    /// was never followed through this hub (a client that polls, or follows at another relayer
    /// instance, is never taken for gone).
    pub fn alone_for(&self, job: &JobRef) -> Option<Duration> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.get(job)?.alone_since.map(|t| t.elapsed())
    }

    /// Drops streams finished longer than `retention` ago; returns how many.
    pub fn evict_finished(&self, retention: Duration) -> usize {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let before = jobs.len();
        jobs.retain(|_, ch| ch.finished_at.is_none_or(|t| t.elapsed() < retention));
        before - jobs.len()
    }

    /// Drops a job's stream (expired jobs).
    pub fn remove(&self, job: &JobRef) {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job);
    }
}

/// Shared handle.
pub type SharedHub = Arc<Hub>;

/// A live follower of a job's stream, counted until dropped.
#[derive(Debug)]
pub struct Follower {
    hub: Arc<Hub>,
    job: JobRef,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.hub.unfollow(&self.job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seq: u32) -> StreamEvent {
        StreamEvent::Chunk {
            attempt: 1,
            seq,
            data: vec![seq as u8],
        }
    }

    #[tokio::test]
    async fn late_subscribers_get_history_then_live_without_gaps() {
        let hub = Hub::new();
        let job = JobRef::new("0:00", 1);
        hub.publish(&job, chunk(0));
        let mut sub = hub.subscribe(&job).unwrap();
        assert_eq!(sub.history, vec![chunk(0)]);
        hub.publish(&job, chunk(1));
        assert_eq!(sub.live.as_mut().unwrap().recv().await.unwrap(), chunk(1));
        hub.publish(&job, StreamEvent::Failed { reason: "x".into() });
        let done = hub.subscribe(&job).unwrap();
        assert_eq!(done.history.len(), 3);
        assert!(done.live.is_none(), "a finished stream has no live part");
        assert_eq!(hub.evict_finished(Duration::from_secs(60)), 0);
        assert_eq!(hub.evict_finished(Duration::ZERO), 1);
        assert!(hub.subscribe(&job).is_none());
    }

    #[test]
    fn a_job_is_alone_only_after_its_last_follower_left() {
        let hub = Arc::new(Hub::new());
        let job = JobRef::new("0:00", 1);
        hub.publish(&job, chunk(0));
        assert_eq!(hub.alone_for(&job), None, "never followed");
        let a = hub.follow(&job);
        let b = hub.follow(&job);
        drop(a);
        assert_eq!(hub.alone_for(&job), None, "one follower is left");
        drop(b);
        assert!(hub.alone_for(&job).is_some(), "nobody follows it now");
        let back = hub.follow(&job);
        assert_eq!(hub.alone_for(&job), None, "a reconnect clears it");
        drop(back);
        assert!(
            hub.alone_for(&JobRef::new("0:00", 2)).is_none(),
            "unknown job"
        );
    }
}
