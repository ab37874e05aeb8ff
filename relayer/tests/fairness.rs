//! Fair scheduling: jobs that cannot run now (for absent workers, past their deadline) never
//! hold back one that can, and a worker flooding heartbeats does not slow dispatch down.

mod common;

use std::time::{Duration, Instant};

use cocoon_relayer::RelayerConfig;
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_testkit::stub::StubWorker;
use common::{TestRelayer, fast_config, start};

/// A relayer whose expiry sweep leaves jobs past their deadline alone for an hour (so they sit
/// in the store as waiting junk). A slow first chunk on a loaded machine is not what these tests
/// are about: generous stream timeouts keep a late stub from counting as a failure.
fn lingering_expired() -> RelayerConfig {
    RelayerConfig {
        grace_period: 3600,
        first_chunk_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        ..fast_config()
    }
}

/// Submits `n` jobs through the API, each for `candidate`, with deadlines `deadline_in`
/// seconds from now (negative: already past), ids from `first_id`.
async fn junk(r: &TestRelayer, first_id: u64, n: u64, candidate: &str, deadline_in: i64) {
    for id in first_id..first_id + n {
        let input = format!("junk {id}").into_bytes();
        let mut job = common::opened(1, id, &input);
        job.max_cost = 0;
        job.deadline = (cocoon_sdk::clock::unix_now_i64() + deadline_in) as u32;
        r.store.insert_opened(&job).await.unwrap();
        assert_eq!(r.submit(&job.job, &input, &[candidate]).await.status(), 202);
    }
}

#[tokio::test]
async fn three_hundred_junk_jobs_do_not_delay_a_real_one() {
    let r = start(lingering_expired()).await;
    let worker = StubWorker::new(1, vec![1]);
    let absent = StubWorker::new(9, vec![1]);
    // Earlier deadlines than the real job: 150 for a worker that never connects, 150 for the
    // real job's own worker but already past their deadline.
    junk(&r, 1000, 150, &absent.address, 60).await;
    junk(&r, 2000, 150, &worker.address, -10).await;
    let input = b"the real one".to_vec();
    let real = r.open(1, &input).await;
    assert_eq!(
        r.submit(&real.job, &input, &[&worker.address])
            .await
            .status(),
        202
    );
    // The worker connects: the real job goes to it at once.
    let started = Instant::now();
    let h = r.worker(&worker).await;
    h.keep_alive(Duration::from_millis(500), 4);
    let events = r.stream_within(&real.job, Duration::from_secs(30)).await;
    assert!(
        matches!(events.last(), Some(StreamEvent::Receipt { .. })),
        "{events:?}"
    );
    // Starved, it would wait for the junk to leave the store: an hour. The bound only tells
    // "dispatched when the worker came" from that, with room for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(h.jobs(), 1, "no expired job was dispatched");
}

/// Submits a job for `worker` and returns the time from submission to its receipt.
async fn one_job(r: &TestRelayer, id: u64, worker: &str) -> Duration {
    let input = format!("timed {id}").into_bytes();
    let job = r.open(id, &input).await;
    let started = Instant::now();
    assert_eq!(r.submit(&job.job, &input, &[worker]).await.status(), 202);
    let events = r.stream(&job.job).await;
    assert!(matches!(events.last(), Some(StreamEvent::Receipt { .. })));
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_flood_does_not_raise_dispatch_latency() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;

    let r = std::sync::Arc::new(start(lingering_expired()).await);
    let honest = StubWorker::new(1, vec![1]);
    let _h = r.worker(&honest).await;
    // Waiting junk for a worker that never comes: what a rescan per heartbeat would read.
    let absent = StubWorker::new(9, vec![1]);
    junk(&r, 1000, 300, &absent.address, 600).await;
    let baseline = {
        let mut t = Vec::new();
        for id in 1..=10 {
            t.push(one_job(&r, id, &honest.address).await);
        }
        median(t)
    };
    // A registered worker with free capacity sends heartbeats as fast as it can.
    let flooder = StubWorker::new(2, vec![1]);
    let mut ws = common::raw_session(&r, &flooder).await;
    let frame = serde_json::to_string(&StubWorker::heartbeat(0, 4)).unwrap();
    let flood = tokio::spawn(async move {
        let mut sent = 0u32;
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            if ws.send(Message::Text(frame.clone().into())).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = {
        let mut t = Vec::new();
        for id in 11..=20 {
            t.push(one_job(&r, id, &honest.address).await);
        }
        median(t)
    };
    let sent = flood.await.unwrap();
    assert!(sent >= 1500, "only {sent} heartbeats sent");
    assert!(
        during <= baseline * 3 + Duration::from_millis(30),
        "dispatch latency {during:?} under a flood of {sent} heartbeats, {baseline:?} without"
    );
    assert_eq!(
        r.relayer.shared().dispatcher.waiting(),
        300,
        "the junk still waits"
    );
}
