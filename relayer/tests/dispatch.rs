//! Dispatch and failover with real WebSocket clients playing workers.

mod common;

use std::time::Duration;

use cocoon_relayer::RelayerConfig;
use cocoon_relayer::dispatcher::WAITING_REASON;
use cocoon_relayer::store::JobState;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::{StreamEvent, WorkerList};
use cocoon_sdk::relay::worker::JobFailure;
use cocoon_testkit::stub::{StubMode, StubWorker};
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
    job.deadline = (cocoon_sdk::clock::unix_now_i64() + 2) as u32;
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

/// Waits until the relayer reports `worker` with `load` jobs running (its heartbeat arrived).
async fn reported_load(r: &common::TestRelayer, worker: &str, load: u32) {
    for _ in 0..100 {
        let list: WorkerList = r
            .client
            .get(format!("{}/v1/workers", r.http))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list
            .workers
            .iter()
            .any(|w| w.worker == worker && w.load == load)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{worker} never reported load {load}");
}

/// Submits a job listing `candidates` in that order and returns who it was dispatched to.
async fn dispatch_order(
    r: &common::TestRelayer,
    job_id: u64,
    candidates: &[&str],
) -> Vec<(String, u32)> {
    let input = format!("sealed {job_id}").into_bytes();
    let job = r.open(job_id, &input).await;
    assert_eq!(r.submit(&job.job, &input, candidates).await.status(), 202);
    dispatched(&r.stream(&job.job).await)
}

#[tokio::test]
async fn cheaper_and_less_loaded_workers_are_preferred() {
    let r = start(fast_config()).await;
    let mut pricey = StubWorker::new(1, vec![1]);
    pricey.prices = (10, 10);
    let cheap = StubWorker::new(2, vec![1]);
    let _a = r.worker(&pricey).await;
    let b = r.worker(&cheap).await;
    // Equal load: the cheaper one, though the client listed it second.
    assert_eq!(
        dispatch_order(&r, 1, &[&pricey.address, &cheap.address]).await,
        vec![(cheap.address.clone(), 1)]
    );
    // The cheap one now reports 3 of its 4 slots busy: load outranks price and the client's
    // order, so the idle (pricier) one takes the job.
    b.heartbeat(3, cheap.capacity);
    reported_load(&r, &cheap.address, 3).await;
    assert_eq!(
        dispatch_order(&r, 2, &[&cheap.address, &pricey.address]).await,
        vec![(pricey.address.clone(), 1)]
    );
    // Full: never a candidate, even alone.
    b.heartbeat(cheap.capacity, cheap.capacity);
    reported_load(&r, &cheap.address, cheap.capacity).await;
    assert_eq!(
        dispatch_order(&r, 3, &[&cheap.address, &pricey.address]).await,
        vec![(pricey.address.clone(), 1)]
    );
}

#[tokio::test]
async fn a_worker_that_misses_its_heartbeats_gets_no_job() {
    // Heartbeats every 150 ms: a session silent for 3 intervals is gone.
    let r = start(RelayerConfig {
        heartbeat_interval: Duration::from_millis(150),
        ..fast_config()
    })
    .await;
    let stale = StubWorker::new(1, vec![1]);
    let mut live = StubWorker::new(2, vec![1]);
    live.prices = (10, 10);
    let _s = r.worker(&stale).await;
    let l = r.worker(&live).await;
    let beat = tokio::spawn(async move {
        loop {
            l.heartbeat(0, 4);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(900)).await;
    // The stale one is cheaper and listed first, but it stopped heartbeating.
    assert_eq!(
        dispatch_order(&r, 1, &[&stale.address, &live.address]).await,
        vec![(live.address.clone(), 1)]
    );
    beat.abort();
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

/// The first candidate refuses with `code`; the second would answer.
async fn refused_by(code: JobFailure) -> (Vec<StreamEvent>, cocoon_relayer::JobRecord, u32, u32) {
    let r = start(fast_config()).await;
    let refuser = StubWorker::new(1, vec![1]);
    let mut good = StubWorker::new(2, vec![1]);
    // Pricier, so the refuser is tried first.
    good.prices = (10, 10);
    let refused = common::refusing_worker(&r, &refuser, code).await;
    let g = r.worker(&good).await;
    let input = b"sealed".to_vec();
    let job = r.open(1, &input).await;
    assert_eq!(
        r.submit(&job.job, &input, &[&refuser.address, &good.address])
            .await
            .status(),
        202
    );
    let started = std::time::Instant::now();
    let events = r.stream(&job.job).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let rec = r.store.job(&job.job).await.unwrap().unwrap();
    (
        events,
        rec,
        refused.load(std::sync::atomic::Ordering::SeqCst),
        g.jobs(),
    )
}

#[tokio::test]
async fn final_refusals_end_the_job_in_one_attempt() {
    for code in [JobFailure::CannotDecrypt, JobFailure::ContextLengthExceeded] {
        let (events, rec, refused, answered) = refused_by(code).await;
        assert_eq!(dispatched(&events).len(), 1, "{code}: {events:?}");
        assert!(
            matches!(events.last(), Some(StreamEvent::Refused { code: c, .. }) if *c == code),
            "{code}: {events:?}"
        );
        assert_eq!(
            (refused, answered),
            (1, 0),
            "{code}: no other worker is tried"
        );
        assert_eq!((rec.state, rec.attempts), (JobState::Failed, 1), "{code}");
        assert!(
            rec.reason.as_deref().unwrap().contains(code.as_str()),
            "{rec:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_job_stream_read_later_still_tells_the_code() {
    let r = start(fast_config()).await;
    let refuser = StubWorker::new(1, vec![1]);
    common::refusing_worker(&r, &refuser, JobFailure::ContextLengthExceeded).await;
    let input = b"sealed".to_vec();
    let job = r.open(1, &input).await;
    r.submit(&job.job, &input, &[&refuser.address]).await;
    let live = r.stream(&job.job).await;
    // Forget the in-memory stream: the end is rebuilt from the store.
    r.relayer.shared().hub.evict_finished(Duration::ZERO);
    let rebuilt = r.stream(&job.job).await;
    assert_eq!(rebuilt.last(), live.last(), "{rebuilt:?}");
}

#[tokio::test]
async fn retryable_refusals_fail_over() {
    let (events, rec, refused, answered) = refused_by(JobFailure::NotARecipient).await;
    assert_eq!(dispatched(&events).len(), 2, "{events:?}");
    assert!(matches!(events.last(), Some(StreamEvent::Receipt { .. })));
    assert_eq!((refused, answered), (1, 1));
    assert_eq!(rec.state, JobState::Answered);
}

#[tokio::test]
async fn a_claimed_capacity_counts_only_as_far_as_it_was_earned() {
    let r = start(fast_config()).await;
    let mut honest = StubWorker::new(1, vec![1]);
    honest.capacity = 4;
    let mut liar = StubWorker::new(2, vec![1]);
    liar.capacity = u32::MAX;
    let h = r.worker(&honest).await;
    let l = r.worker(&liar).await;
    // Both report two jobs running: the liar's claim would make that 0 % of its capacity
    // against the honest one's 50 %.
    h.heartbeat(2, 4);
    l.heartbeat(2, u32::MAX);
    reported_load(&r, &honest.address, 2).await;
    reported_load(&r, &liar.address, 2).await;
    let list: WorkerList = r
        .client
        .get(format!("{}/v1/workers", r.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let believed = |w: &str| {
        list.workers
            .iter()
            .find(|i| i.worker == w)
            .unwrap()
            .capacity
    };
    assert_eq!(believed(&liar.address), 4, "believed no more than trusted");
    assert_eq!(believed(&honest.address), 4);
    // Equal load and price: the client's order decides, not the claim.
    assert_eq!(
        dispatch_order(&r, 1, &[&honest.address, &liar.address]).await,
        vec![(honest.address.clone(), 1)]
    );
}

/// A worker that takes every dispatch and never answers; what the relayer tells it comes out of
/// the returned channel.
async fn mute_worker(
    r: &common::TestRelayer,
    stub: &StubWorker,
) -> tokio::sync::mpsc::UnboundedReceiver<cocoon_sdk::relay::worker::RelayMessage> {
    let mut ws = common::raw_session(r, stub).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(msg) = common::next_message(&mut ws).await {
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    rx
}

/// Opens a job's event stream as its reader would and returns it once the dispatch shows.
async fn follow_until_dispatched(r: &common::TestRelayer, job: &JobRef) -> reqwest::Response {
    let mut resp = r
        .client
        .get(format!(
            "{}/v1/jobs/{}/{}/stream",
            r.http, job.escrow, job.job_id
        ))
        .bearer_auth(common::OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    while !seen.contains("event: dispatched") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .expect("the dispatch shows within 5 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    resp
}

/// Whether the relayer cancels `job` at the worker within `within`.
async fn cancelled_within(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<cocoon_sdk::relay::worker::RelayMessage>,
    job: &JobRef,
    within: Duration,
) -> Option<String> {
    use cocoon_sdk::relay::worker::RelayMessage;
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(RelayMessage::Cancel(c))) if c.job == *job => return Some(c.reason),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

fn patient_config() -> RelayerConfig {
    RelayerConfig {
        // Only the client's absence may end these attempts.
        first_chunk_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        abandon_after: Duration::from_millis(600),
        ..fast_config()
    }
}

#[tokio::test]
async fn a_job_whose_client_hung_up_is_cancelled_unanswered_and_never_billed() {
    use cocoon_relayer::dispatcher::ABANDONED_REASON;
    let r = start(patient_config()).await;
    let stub = StubWorker::new(1, vec![1]);
    let mut worker = mute_worker(&r, &stub).await;
    let input = b"sealed".to_vec();
    let job = r.open(1, &input).await;
    assert_eq!(
        r.submit(&job.job, &input, &[&stub.address]).await.status(),
        202
    );

    let stream = follow_until_dispatched(&r, &job.job).await;
    drop(stream); // the caller hangs up

    let reason = cancelled_within(&mut worker, &job.job, Duration::from_secs(5)).await;
    assert_eq!(
        reason.as_deref(),
        Some(ABANDONED_REASON),
        "the worker is told to stop"
    );
    // The cancel goes out first; the books follow.
    let mut rec = r.store.job(&job.job).await.unwrap().unwrap();
    for _ in 0..40 {
        if rec.state != JobState::Dispatched {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        rec = r.store.job(&job.job).await.unwrap().unwrap();
    }
    assert_eq!(
        (rec.state, rec.reason.as_deref(), rec.attempts),
        (JobState::Failed, Some(ABANDONED_REASON), 1),
        "ended in its one attempt, not retried elsewhere"
    );
    assert!(
        r.store.receipt(&job.job).await.unwrap().is_none(),
        "nothing to bill"
    );
    // Whoever reads the stream later learns why it ended.
    assert_eq!(
        r.stream(&job.job).await.last(),
        Some(&StreamEvent::Failed {
            reason: ABANDONED_REASON.into()
        })
    );
    let metrics = r.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cocoon_relayer_abandoned_jobs_total") && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_client_that_reconnects_in_time_or_never_followed_keeps_its_job() {
    let r = start(patient_config()).await;
    let stub = StubWorker::new(1, vec![1]);
    let mut worker = mute_worker(&r, &stub).await;
    let input = b"sealed".to_vec();
    let followed = r.open(1, &input).await;
    let polled = r.open(2, b"other").await;
    assert_eq!(
        r.submit(&followed.job, &input, &[&stub.address])
            .await
            .status(),
        202
    );
    assert_eq!(
        r.submit(&polled.job, b"other", &[&stub.address])
            .await
            .status(),
        202
    );

    let first = follow_until_dispatched(&r, &followed.job).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _again = follow_until_dispatched(&r, &followed.job).await;

    for job in [&followed.job, &polled.job] {
        assert_eq!(
            cancelled_within(&mut worker, job, Duration::from_millis(1500)).await,
            None,
            "{job}: still followed, or never followed at all"
        );
        let rec = r.store.job(job).await.unwrap().unwrap();
        assert_eq!(rec.state, JobState::Dispatched, "{job}");
    }
}
