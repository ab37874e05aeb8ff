//! Jobs waiting for a worker, queued per (candidate worker, model), earliest deadline first.
//!
//! A worker that frees up looks only at its own queues and takes from their fronts: jobs that
//! name other workers or models are never in the way, and an entry past its deadline is dropped
//! the moment it reaches a front. Each operation costs O(log n) in the number of waiting jobs,
//! whatever the queue holds; nothing is rescanned when a heartbeat arrives.
//!
//! The queue is what this process knows; the store stays the truth. It is rebuilt from the
//! store at start and on the periodic sweep (jobs another instance parked, leases that ran out).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use cocoon_sdk::relay::JobRef;

/// A job as the queue knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The job.
    pub job: JobRef,
    /// Unix deadline.
    pub deadline: u32,
    /// Model asked for.
    pub model_id: u32,
    /// The workers that may take it.
    pub candidates: Vec<String>,
}

/// Position in one queue: deadline first, then arrival order.
type Key = (u32, u64);

#[derive(Debug, Default)]
struct State {
    queues: HashMap<(String, u32), BTreeSet<(Key, JobRef)>>,
    jobs: HashMap<JobRef, (Key, Waiting)>,
    arrivals: u64,
}

/// The waiting jobs.
#[derive(Debug, Default)]
pub struct WaitQueue {
    state: Mutex<State>,
}

impl WaitQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `w` for each of its candidates; `false` when it was queued already (it keeps its
    /// place).
    pub fn park(&self, w: Waiting) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.jobs.contains_key(&w.job) {
            return false;
        }
        st.arrivals += 1;
        let key = (w.deadline, st.arrivals);
        for c in &w.candidates {
            st.queues
                .entry((c.clone(), w.model_id))
                .or_default()
                .insert((key, w.job.clone()));
        }
        st.jobs.insert(w.job.clone(), (key, w));
        true
    }

    /// Takes up to `n` jobs `worker` may run (serving `models`), earliest deadline first,
    /// dropping every entry whose deadline is not after `now` on the way.
    pub fn take_for(&self, worker: &str, models: &[u32], now: i64, n: usize) -> Vec<JobRef> {
        let mut out = Vec::new();
        if n == 0 {
            return out;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while out.len() < n {
            let mut best: Option<(Key, JobRef)> = None;
            for m in models {
                let Some(q) = st.queues.get(&(worker.to_string(), *m)) else {
                    continue;
                };
                if let Some(front) = q.first()
                    && best.as_ref().is_none_or(|b| front.0 < b.0)
                {
                    best = Some(front.clone());
                }
            }
            let Some((key, job)) = best else { break };
            remove(&mut st, &job);
            if i64::from(key.0) > now {
                out.push(job);
            }
        }
        out
    }

    /// Forgets a job (started elsewhere, finished, expired).
    pub fn remove(&self, job: &JobRef) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        remove(&mut st, job);
    }

    /// Whether `worker` has a job waiting for any of `models` (expired ones included until
    /// they reach a front).
    pub fn has_work_for(&self, worker: &str, models: &[u32]) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        models.iter().any(|m| {
            st.queues
                .get(&(worker.to_string(), *m))
                .is_some_and(|q| !q.is_empty())
        })
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .jobs
            .len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn remove(st: &mut State, job: &JobRef) {
    let Some((key, w)) = st.jobs.remove(job) else {
        return;
    };
    for c in &w.candidates {
        let qk = (c.clone(), w.model_id);
        if let Some(q) = st.queues.get_mut(&qk) {
            q.remove(&(key, job.clone()));
            if q.is_empty() {
                st.queues.remove(&qk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: u64, deadline: u32, model: u32, candidates: &[&str]) -> Waiting {
        Waiting {
            job: JobRef::new("0:00", id),
            deadline,
            model_id: model,
            candidates: candidates.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn a_worker_takes_its_own_jobs_earliest_deadline_first_past_junk() {
        let q = WaitQueue::new();
        // 300 junk entries with earlier deadlines: for another worker, another model, or past
        // their deadline.
        for i in 0..100 {
            q.park(w(i, 10, 1, &["other"]));
            q.park(w(1000 + i, 10, 2, &["me"]));
            q.park(w(2000 + i, 50, 1, &["me", "other"]));
        }
        q.park(w(5001, 200, 1, &["me"]));
        q.park(w(5000, 150, 1, &["other", "me"]));
        assert_eq!(
            q.take_for("me", &[1], 100, 5),
            vec![JobRef::new("0:00", 5000), JobRef::new("0:00", 5001)]
        );
        // The expired ones were dropped everywhere, the other worker's jobs stay.
        assert_eq!(q.len(), 200);
        assert!(!q.has_work_for("me", &[1]));
        assert!(q.has_work_for("me", &[2]));
        assert_eq!(
            q.take_for("other", &[1], 0, 1),
            vec![JobRef::new("0:00", 0)]
        );
        q.remove(&JobRef::new("0:00", 1));
        assert_eq!(q.len(), 198);
        // Parking again keeps the place; taking none takes none.
        assert!(!q.park(w(2, 10, 1, &["other"])));
        assert_eq!(q.len(), 198);
        assert!(q.take_for("other", &[1], 0, 0).is_empty());
    }
}
