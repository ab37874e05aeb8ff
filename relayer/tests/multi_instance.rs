//! Several relayer instances on one database (PostgreSQL when `COCOON_TEST_PG_URL` is set, and
//! SQLite always): claiming a job for dispatch and a batch for submission are row-level claims,
//! so two instances never dispatch one job twice, never submit one receipt twice, and a job
//! orphaned by a dead instance is taken over once its lease runs out.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cocoon_relayer::store::{JobState, SealedInput, Store};
use cocoon_relayer::{Relayer, RelayerConfig, StaticRegistry};
use cocoon_testkit::stub::StubWorker;
use common::{fast_config, opened};

struct Instance {
    relayer: Relayer,
    ws: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn instance(url: &str, registry: Arc<StaticRegistry>) -> Instance {
    let store = Store::connect(url, 4).await.unwrap();
    // A loaded CI machine can take longer than fast_config's 400 ms to a first chunk; a timeout
    // there is a legitimate fail-over (a second attempt), which is not what this file is about.
    let config = RelayerConfig {
        first_chunk_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        ..fast_config()
    };
    let relayer = Relayer::new(store, registry, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws = format!("ws://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relayer.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    Instance {
        relayer,
        ws,
        _stop: stop,
    }
}

#[tokio::test]
async fn two_relayers_never_dispatch_one_job_twice() {
    for t in common::stores().await {
        let registry = Arc::new(StaticRegistry::new());
        let a_worker = StubWorker::new(1, vec![1]);
        let b_worker = StubWorker::new(2, vec![1]);
        registry.insert(a_worker.address.clone(), a_worker.on_chain());
        registry.insert(b_worker.address.clone(), b_worker.on_chain());
        let a = instance(&t.url, registry.clone()).await;
        let b = instance(&t.url, registry.clone()).await;

        // Jobs wait with no worker anywhere; then a worker joins each instance at once, and both
        // instances scan the same waiting jobs and race for them.
        const JOBS: u64 = 40;
        let mut jobs = Vec::new();
        for id in 1..=JOBS {
            let input = format!("in {id}").into_bytes();
            let j = opened(1, id, &input);
            t.store.insert_opened(&j).await.unwrap();
            let sealed = SealedInput {
                ciphertext: input,
                candidates: vec![a_worker.address.clone(), b_worker.address.clone()],
                reader: None,
            };
            t.store.submit_input(&j.job, &sealed).await.unwrap();
            jobs.push(j.job);
        }
        let (ha, hb) = tokio::join!(a_worker.connect(&a.ws), b_worker.connect(&b.ws));
        let (ha, hb) = (ha.unwrap(), hb.unwrap());
        // On a loaded machine this can outlast the session timeout (3 heartbeats of 2 s): a
        // dropped session fails its jobs over, which is not what this file is about.
        ha.keep_alive(Duration::from_millis(500), 4);
        hb.keep_alive(Duration::from_millis(500), 4);
        for _ in 0..5 {
            let (ra, rb) = tokio::join!(
                a.relayer.shared().dispatcher.reload_waiting(),
                b.relayer.shared().dispatcher.reload_waiting()
            );
            ra.unwrap();
            rb.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let until = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut answered = 0;
            for j in &jobs {
                if t.store.job(j).await.unwrap().unwrap().state == JobState::Answered {
                    answered += 1;
                }
            }
            if answered == jobs.len() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{}: {answered}/{} answered",
                t.name,
                jobs.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for j in &jobs {
            let r = t.store.job(j).await.unwrap().unwrap();
            assert_eq!(r.attempts, 1, "{}: {j} dispatched once: {r:?}", t.name);
        }
        assert_eq!(
            u64::from(ha.jobs() + hb.jobs()),
            JOBS,
            "{}: every job reached exactly one worker (a {}, b {})",
            t.name,
            ha.jobs(),
            hb.jobs()
        );
    }
}

#[tokio::test]
async fn dispatch_claims_are_exclusive_and_orphans_are_requeued_after_their_lease() {
    for t in common::stores().await {
        let s = &t.store;
        let j = opened(1, 1, b"x");
        s.insert_opened(&j).await.unwrap();
        s.submit_input(
            &j.job,
            &SealedInput {
                ciphertext: b"x".to_vec(),
                candidates: vec!["w".into()],
                reader: None,
            },
        )
        .await
        .unwrap();
        // Two instances claim the same first attempt at once: one wins.
        let other = Store::connect(&t.url, 2).await.unwrap();
        let far = cocoon_sdk::clock::unix_now_i64() + 3600;
        let (x, y) = tokio::join!(
            s.claim_dispatch(&j.job, "wa", 1, JobState::InputReceived, far),
            other.claim_dispatch(&j.job, "wb", 1, JobState::InputReceived, far)
        );
        assert!(
            x.unwrap() ^ y.unwrap(),
            "{}: exactly one claim wins",
            t.name
        );
        // A stale attempt number loses even in the right state.
        assert!(
            !s.claim_dispatch(&j.job, "wc", 1, JobState::Dispatched, far)
                .await
                .unwrap()
        );
        // The holder fails over to its attempt 2; nobody else can.
        assert!(
            s.claim_dispatch(&j.job, "wc", 2, JobState::Dispatched, far)
                .await
                .unwrap()
        );
        assert!(
            !s.renew_lease(&j.job, 1, far).await.unwrap(),
            "{}: attempt 1 holds nothing",
            t.name
        );

        let now = cocoon_sdk::clock::unix_now_i64();
        assert!(
            s.requeue_expired_leases(now, "x").await.unwrap().is_empty(),
            "{}: lease still running",
            t.name
        );
        assert!(s.renew_lease(&j.job, 2, now - 1).await.unwrap());
        assert_eq!(
            s.requeue_expired_leases(now, "orphaned").await.unwrap(),
            vec![j.job.clone()],
            "{}",
            t.name
        );
        let r = s.job(&j.job).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.reason.as_deref(), r.attempts),
            (JobState::InputReceived, Some("orphaned"), 2)
        );
        // And it is claimable again, as attempt 3.
        assert!(
            other
                .claim_dispatch(&j.job, "wd", 3, JobState::InputReceived, far)
                .await
                .unwrap()
        );
        other.close().await;
    }
}
