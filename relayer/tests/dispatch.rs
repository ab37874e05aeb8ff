//! Dispatch and failover with real WebSocket clients playing workers.

mod common;

use std::time::Duration;

use cocoon_relayer::dispatcher::WAITING_REASON;
use cocoon_relayer::store::JobState;
use cocoon_relayer::stub::{StubMode, StubWorker};
use cocoon_sdk::relay::client::StreamEvent;
use common::{fast_config, start};

fn dispatched(events: &[StreamEvent]) -> Vec<(String, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Dispatched { worker, attempt } => Some((worker.clone(), *attempt)),
            _ => None,
        })
        .collect()
}

/// The first candidate misbehaves in `mode`; the second answers. The job must end answered by the
/// second, with the failover visible in the stream.
async fn fails_over_from(mode: StubMode) {
    let r = start(fast_config()).await;
    let mut bad = StubWorker::new(1, vec![1]);
    bad.mode = mode;
    let good = StubWorker::new(2, vec![1]);
    let _b = r.worker(&bad).await;
    let _g = r.worker(&good).await;
    let input = b"sealed".to_vec();
    let job = r.open(1, &input).await;
    assert_eq!(
        r.submit(&job.job, &input, &[&bad.address, &good.address])
            .await
            .status(),
        202
    );
    let events = r.stream(&job.job).await;
    assert_eq!(
        dispatched(&events),
        vec![(bad.address.clone(), 1), (good.address.clone(), 2)],
        "{mode:?}: {events:?}"
    );
    assert!(
        matches!(events.last(), Some(StreamEvent::Receipt { worker, attempt: 2, .. }) if *worker == good.address),
        "{mode:?}: {events:?}"
    );
    let rec = r.store.job(&job.job).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.attempts, rec.worker.as_deref()),
        (JobState::Answered, 2, Some(good.address.as_str()))
    );
}

#[tokio::test]
async fn silent_worker_times_out_and_the_next_answers() {
    fails_over_from(StubMode::Silent).await;
}

#[tokio::test]
async fn worker_disconnecting_mid_job_fails_over() {
    fails_over_from(StubMode::DisconnectMidJob).await;
}

#[tokio::test]
async fn refusing_worker_fails_over() {
    fails_over_from(StubMode::Refuse).await;
}

#[tokio::test]
async fn forged_receipt_is_not_relayed() {
    fails_over_from(StubMode::BadReceipt).await;
}

#[tokio::test]
async fn with_no_candidate_left_the_job_waits_then_expires() {
    let mut cfg = fast_config();
    cfg.grace_period = 0;
    let r = start(cfg).await;
    let mut silent = StubWorker::new(1, vec![1]);
    silent.mode = StubMode::Silent;
    let _s = r.worker(&silent).await;
    let input = b"sealed".to_vec();
    let mut job = r.open(1, &input).await;
    // Replace with a job whose deadline is two seconds away.
    job.job.job_id = 2;
    job.deadline = (cocoon_relayer::store::now_unix() + 2) as u32;
    r.store.insert_opened(&job).await.unwrap();
    assert_eq!(
        r.submit(&job.job, &input, &[&silent.address])
            .await
            .status(),
        202
    );
    let events = r.stream(&job.job).await;
    assert_eq!(
        dispatched(&events),
        vec![(silent.address.clone(), 1)],
        "{events:?}"
    );
    assert!(
        events.contains(&StreamEvent::Status {
            state: "input_received".into(),
            reason: Some(WAITING_REASON.into())
        }),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(StreamEvent::Failed { .. })),
        "{events:?}"
    );
    let rec = r.store.job(&job.job).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Expired);
}

#[tokio::test]
async fn a_waiting_job_goes_to_a_worker_that_connects_later() {
    let r = start(fast_config()).await;
    let late = StubWorker::new(5, vec![1]);
    let input = b"sealed".to_vec();
    let job = r.open(1, &input).await;
    assert_eq!(
        r.submit(&job.job, &input, &[&late.address]).await.status(),
        202
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        r.store.job(&job.job).await.unwrap().unwrap().state,
        JobState::InputReceived
    );
    let _h = r.worker(&late).await;
    let events = r.stream(&job.job).await;
    assert!(
        matches!(events.last(), Some(StreamEvent::Receipt { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_job_route_overrides_the_client_candidates() {
    let r = start(fast_config()).await;
    let named = StubWorker::new(1, vec![1]);
    let other = StubWorker::new(2, vec![1]);
    let _a = r.worker(&named).await;
    let _b = r.worker(&other).await;
    let input = b"sealed".to_vec();
    let mut job = common::opened(1, 1, &input);
    job.route_worker = Some(named.address.clone());
    r.store.insert_opened(&job).await.unwrap();
    assert_eq!(
        r.submit(&job.job, &input, &[&other.address]).await.status(),
        202
    );
    let events = r.stream(&job.job).await;
    assert_eq!(
        dispatched(&events),
        vec![(named.address.clone(), 1)],
        "{events:?}"
    );
}

#[tokio::test]
async fn cheaper_and_less_loaded_workers_are_preferred() {
    let r = start(fast_config()).await;
    let mut pricey = StubWorker::new(1, vec![1]);
    pricey.prices = (10, 10);
    let cheap = StubWorker::new(2, vec![1]);
    let _a = r.worker(&pricey).await;
    let _b = r.worker(&cheap).await;
    let input = b"sealed".to_vec();
    let job = r.open(1, &input).await;
    assert_eq!(
        r.submit(&job.job, &input, &[&pricey.address, &cheap.address])
            .await
            .status(),
        202
    );
    let events = r.stream(&job.job).await;
    assert_eq!(
        dispatched(&events),
        vec![(cheap.address.clone(), 1)],
        "{events:?}"
    );
}

#[tokio::test]
async fn many_concurrent_jobs_all_answer() {
    let r = start(fast_config()).await;
    let a = StubWorker::new(1, vec![1]);
    let b = StubWorker::new(2, vec![1]);
    let ha = r.worker(&a).await;
    let hb = r.worker(&b).await;
    let r = std::sync::Arc::new(r);
    let tasks: Vec<_> = (1..=40u64)
        .map(|id| {
            let r = r.clone();
            let (a, b) = (a.address.clone(), b.address.clone());
            tokio::spawn(async move {
                let input = format!("sealed input {id}").into_bytes();
                let job = r.open(id, &input).await;
                assert_eq!(r.submit(&job.job, &input, &[&a, &b]).await.status(), 202);
                let events = r.stream(&job.job).await;
                assert!(
                    matches!(events.last(), Some(StreamEvent::Receipt { .. })),
                    "{id}: {events:?}"
                );
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ha.jobs() + hb.jobs(), 40);
    let counts = r.store.count_by_state().await.unwrap();
    assert!(counts.contains(&(JobState::Answered, 40)), "{counts:?}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_restart_requeues() {
    let mut r = start(fast_config()).await;
    let stub = StubWorker::new(1, vec![1]);
    let _h = r.worker(&stub).await;
    let input = b"sealed".to_vec();
    let job = r.open(1, &input).await;
    assert_eq!(
        r.submit(&job.job, &input, &[&stub.address]).await.status(),
        202
    );
    let events = r.stream(&job.job).await;
    assert!(matches!(events.last(), Some(StreamEvent::Receipt { .. })));
    r.stop().await;
    assert_eq!(
        r.store.job(&job.job).await.unwrap().unwrap().state,
        JobState::Answered
    );
}
