//! The whole service in-process through `service::spawn`: port 0, a static registry, a stub
//! worker, one job end to end, then a graceful shutdown that lets a job in flight finish.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cocoon_relayer::service::{self, ServiceConfig};
use cocoon_relayer::store::{JobState, Store};
use cocoon_relayer::{Error, StaticRegistry};
use cocoon_testkit::stub::{StubMode, StubWorker};
use common::{base64_encode, fast_config, opened};

async fn submit(
    client: &reqwest::Client,
    url: &str,
    job: &cocoon_sdk::relay::JobRef,
    input: &[u8],
    candidate: &str,
) -> u16 {
    let body = serde_json::json!({"version": 1, "sealed_input": base64_encode(input), "candidates": [candidate]});
    client
        .post(format!("{url}/v1/jobs/{}/{}/input", job.escrow, job.job_id))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn wait_state(store: &Store, job: &cocoon_sdk::relay::JobRef, want: JobState) {
    for _ in 0..200 {
        if store
            .job(job)
            .await
            .unwrap()
            .is_some_and(|r| r.state == want)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{job} never reached {want}: {:?}",
        store.job(job).await.unwrap()
    );
}

#[tokio::test]
async fn spawn_serves_a_job_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let registry = Arc::new(StaticRegistry::new());
    let good = StubWorker::new(7, vec![1]);
    registry.insert(good.address.clone(), good.on_chain());
    let mut slow = StubWorker::new(8, vec![1]);
    slow.mode = StubMode::Silent;
    registry.insert(slow.address.clone(), slow.on_chain());

    let mut config = ServiceConfig::new("127.0.0.1:0".parse().unwrap(), url.clone());
    config.relayer = fast_config();
    config.registry = Some(registry);
    let handle = service::spawn(config).await.unwrap();
    assert!(
        handle.url().starts_with("http://127.0.0.1:") && !handle.url().ends_with(":0"),
        "{}",
        handle.url()
    );
    assert!(handle.address().is_none(), "no chain, no wallet");

    let client = reqwest::Client::new();
    let health: serde_json::Value = client
        .get(format!("{}/health", handle.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let ws = handle.url().replace("http://", "ws://");
    let _g = good.connect(&ws).await.unwrap();
    let _s = slow.connect(&ws).await.unwrap();
    let input = b"sealed-a".to_vec();
    let a = opened(1, 1, &input);
    handle.store().insert_opened(&a).await.unwrap();
    assert_eq!(
        submit(&client, &handle.url(), &a.job, &input, &good.address).await,
        202
    );
    wait_state(handle.store(), &a.job, JobState::Answered).await;

    // A job stuck at a silent worker when shutdown starts: the drain waits for its attempt to
    // end (timeout → no other candidate → back to waiting), it is not cut off mid-attempt.
    let input_b = b"sealed-b".to_vec();
    let b = opened(1, 2, &input_b);
    handle.store().insert_opened(&b).await.unwrap();
    assert_eq!(
        submit(&client, &handle.url(), &b.job, &input_b, &slow.address).await,
        202
    );
    wait_state(handle.store(), &b.job, JobState::Dispatched).await;
    tokio::time::timeout(Duration::from_secs(40), handle.shutdown())
        .await
        .expect("shutdown finishes")
        .unwrap();

    let store = Store::connect(&url, 1).await.unwrap();
    assert_eq!(
        store.job(&a.job).await.unwrap().unwrap().state,
        JobState::Answered
    );
    let rb = store.job(&b.job).await.unwrap().unwrap();
    assert_eq!(
        rb.state,
        JobState::InputReceived,
        "the attempt ended before the server stopped: {rb:?}"
    );
    assert!(
        store.receipt(&a.job).await.unwrap().is_some(),
        "receipt kept for the submitter"
    );
}

#[tokio::test]
async fn spawn_reports_typed_errors() {
    let config = ServiceConfig::new("127.0.0.1:0".parse().unwrap(), "mysql://u:secret@h/db");
    let err = service::spawn(config).await.unwrap_err();
    assert!(matches!(err, Error::UnsupportedStore { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let first = service::spawn(ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        url.clone(),
    ))
    .await
    .unwrap();
    let taken = first.local_addr();
    let err = service::spawn(ServiceConfig::new(taken, url))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    first.shutdown().await.unwrap();
}
