//! The client HTTP API against a real relayer on port 0: happy path, every malformed input, and
//! the read-only routes.

mod common;

use cocoon_relayer::RelayerConfig;
use cocoon_relayer::receipt::check_receipt;
use cocoon_relayer::store::JobState;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::{
    ApiError, ApiErrorCode, JobStatus, StreamEvent, SubmitAccepted, WorkerList,
};
use cocoon_testkit::stub::StubWorker;
use common::{fast_config, start};

#[tokio::test]
async fn sealed_input_is_dispatched_and_streamed_back_with_a_verified_receipt() {
    let r = start(fast_config()).await;
    let stub = StubWorker::new(1, vec![1]);
    let _h = r.worker(&stub).await;
    let input = b"\x01sealed-bytes".to_vec();
    let job = r.open(10, &input).await;

    let resp = r.submit(&job.job, &input, &[&stub.address]).await;
    assert_eq!(resp.status(), 202);
    let accepted: SubmitAccepted = resp.json().await.unwrap();
    assert_eq!(
        (accepted.job.clone(), accepted.state.as_str()),
        (job.job.clone(), "input_received")
    );

    let events = r.stream(&job.job).await;
    assert_eq!(
        events.first(),
        Some(&StreamEvent::Dispatched {
            worker: stub.address.clone(),
            attempt: 1
        }),
        "{events:?}"
    );
    let chunks: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Chunk { .. }))
        .collect();
    assert_eq!(chunks.len(), 2, "{events:?}");
    let Some(StreamEvent::Receipt {
        worker,
        receipt,
        cost,
        chunks: n,
        ..
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    assert_eq!((worker, *n), (&stub.address, 2));
    let key = stub.signing_key.verifying_key().to_bytes();
    let summary = check_receipt(receipt, &key, &job.job, &stub.address, job.max_cost).unwrap();
    assert_eq!(summary.cost, u128::from(*cost));

    // A late subscriber replays the same stream.
    assert_eq!(r.stream(&job.job).await, events);
    let status: JobStatus = r
        .client
        .get(format!(
            "{}/v1/jobs/{}/{}",
            r.http, job.job.escrow, job.job.job_id
        ))
        .bearer_auth(common::OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            status.state.as_str(),
            status.worker.as_deref(),
            status.attempts
        ),
        ("answered", Some(stub.address.as_str()), 1)
    );
    let stored = r.store.receipt(&job.job).await.unwrap().unwrap();
    assert_eq!(&stored.receipt, receipt);
}

async fn expect_error(resp: reqwest::Response, status: u16, code: ApiErrorCode) {
    assert_eq!(resp.status().as_u16(), status);
    let body: ApiError = resp.json().await.unwrap();
    assert_eq!(body.error, code, "{}", body.message);
}

#[tokio::test]
async fn malformed_input_gets_clear_4xx_and_stores_nothing() {
    let r = start(fast_config()).await;
    let w = StubWorker::new(1, vec![1]).address;
    let input = b"ciphertext".to_vec();
    let job = r.open(1, &input).await;
    let url = format!(
        "{}/v1/jobs/{}/{}/input",
        r.http, job.job.escrow, job.job.job_id
    );
    let post = |body: String| {
        r.client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    expect_error(
        post("{not json".into()).await.unwrap(),
        400,
        ApiErrorCode::BadRequest,
    )
    .await;
    expect_error(
        post(r#"{"version":1}"#.into()).await.unwrap(),
        400,
        ApiErrorCode::BadRequest,
    )
    .await;
    expect_error(
        post(r#"{"version":1,"sealed_input":"%%%","candidates":[]}"#.into())
            .await
            .unwrap(),
        400,
        ApiErrorCode::BadRequest,
    )
    .await;
    expect_error(
        post(r#"{"version":1,"sealed_input":"AA==","extra":true}"#.into())
            .await
            .unwrap(),
        400,
        ApiErrorCode::BadRequest,
    )
    .await;
    expect_error(
        post(r#"{"version":1,"sealed_input":""}"#.into())
            .await
            .unwrap(),
        400,
        ApiErrorCode::BadRequest,
    )
    .await;
    let v2 = format!(
        r#"{{"version":2,"sealed_input":"{}","candidates":["{w}"]}}"#,
        common::base64_encode(&input)
    );
    expect_error(
        post(v2).await.unwrap(),
        400,
        ApiErrorCode::UnsupportedVersion,
    )
    .await;
    // Over the HTTP body limit, and over the sealed-input limit inside an accepted body.
    let huge = format!(
        r#"{{"version":1,"sealed_input":"{}"}}"#,
        "A".repeat(2 << 20)
    );
    expect_error(post(huge).await.unwrap(), 413, ApiErrorCode::TooLarge).await;
    let big = vec![7u8; 64 * 1024 + 1];
    expect_error(
        r.submit(&job.job, &big, &[&w]).await,
        413,
        ApiErrorCode::TooLarge,
    )
    .await;
    // Wrong ids.
    for (escrow, id) in [
        ("nope", "1"),
        (job.job.escrow.as_str(), "abc"),
        (job.job.escrow.as_str(), "-1"),
        (job.job.escrow.as_str(), "18446744073709551616"),
    ] {
        let resp = r
            .client
            .post(format!("{}/v1/jobs/{escrow}/{id}/input", r.http))
            .body("{}")
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, ApiErrorCode::BadParameter).await;
    }
    expect_error(
        r.submit(&JobRef::new(job.job.escrow.clone(), 999), &input, &[&w])
            .await,
        404,
        ApiErrorCode::JobNotFound,
    )
    .await;
    expect_error(
        r.submit(&job.job, b"other ciphertext", &[&w]).await,
        422,
        ApiErrorCode::CommitmentMismatch,
    )
    .await;
    expect_error(
        r.submit(&job.job, &input, &[]).await,
        422,
        ApiErrorCode::NoCandidates,
    )
    .await;
    expect_error(
        r.submit(&job.job, &input, &["0:zz"]).await,
        400,
        ApiErrorCode::BadParameter,
    )
    .await;
    // A job that is no longer open.
    let expired = r.open(2, &input).await;
    r.store
        .transition(&expired.job, JobState::Expired, Some("test"))
        .await
        .unwrap();
    expect_error(
        r.submit(&expired.job, &input, &[&w]).await,
        409,
        ApiErrorCode::NotOpen,
    )
    .await;

    // Nothing was stored by any of that.
    for j in [&job.job, &expired.job] {
        assert!(r.store.sealed_input(j).await.unwrap().is_none(), "{j}");
    }
    assert_eq!(
        r.store.job(&job.job).await.unwrap().unwrap().state,
        JobState::Opened
    );

    // The first valid submission wins; a second is a conflict.
    assert_eq!(r.submit(&job.job, &input, &[&w]).await.status(), 202);
    expect_error(
        r.submit(&job.job, &input, &[&w]).await,
        409,
        ApiErrorCode::AlreadySubmitted,
    )
    .await;

    let metrics = r.metrics().await;
    assert!(
        metrics.contains(r#"cocoon_relayer_rejected_inputs_total{code="commitment_mismatch"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn read_routes_answer_json() {
    let r = start(fast_config()).await;
    let stub = StubWorker::new(3, vec![1, 2]);
    let _h = r.worker(&stub).await;

    let list: WorkerList = r
        .client
        .get(format!("{}/v1/workers?model=2", r.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.workers.len(), 1);
    let w = &list.workers[0];
    let chain = stub.on_chain();
    assert_eq!(
        (&w.worker, w.price_in, w.price_out, &w.evidence, w.healthy),
        (
            &stub.address,
            chain.price_in,
            chain.price_out,
            &stub.evidence,
            true
        )
    );
    assert_eq!(w.evidence_hash, chain.evidence_hash);
    let none: WorkerList = r
        .client
        .get(format!("{}/v1/workers?model=99", r.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.workers.is_empty());
    expect_error(
        r.client
            .get(format!("{}/v1/workers?model=x", r.http))
            .send()
            .await
            .unwrap(),
        400,
        ApiErrorCode::BadParameter,
    )
    .await;

    let health: serde_json::Value = r
        .client
        .get(format!("{}/health", r.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            health["status"].as_str(),
            health["workers"].as_u64(),
            health["store"].as_bool()
        ),
        (Some("ok"), Some(1), Some(true))
    );
    let metrics = r.metrics().await;
    assert!(
        metrics.contains(r#"cocoon_relayer_jobs{state="opened"} 0"#)
            && metrics.contains("cocoon_relayer_worker_sessions 1"),
        "{metrics}"
    );

    let job = JobRef::new(common::escrow(1), 5);
    expect_error(
        r.client
            .get(format!("{}/v1/jobs/{}/{}", r.http, job.escrow, job.job_id))
            .bearer_auth(common::OPERATOR_TOKEN)
            .send()
            .await
            .unwrap(),
        404,
        ApiErrorCode::JobNotFound,
    )
    .await;
    expect_error(
        r.client
            .get(format!(
                "{}/v1/jobs/{}/{}/stream",
                r.http, job.escrow, job.job_id
            ))
            .bearer_auth(common::OPERATOR_TOKEN)
            .send()
            .await
            .unwrap(),
        404,
        ApiErrorCode::JobNotFound,
    )
    .await;
    assert_eq!(
        r.client
            .get(format!("{}/nope", r.http))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn a_stranger_cannot_list_the_jobs() {
    // With no operator token configured nobody may list; with one, only its bearer.
    for token in [None, Some("op-token")] {
        let r = start(RelayerConfig {
            operator_token: token.map(str::to_string),
            ..fast_config()
        })
        .await;
        r.open(1, b"a").await;
        for auth in [None, Some("Bearer wrong"), Some("Basic op-token")] {
            let mut req = r.client.get(format!("{}/v1/jobs", r.http));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 403, "{token:?} {auth:?}");
            let e: ApiError = resp.json().await.unwrap();
            assert_eq!(e.error, ApiErrorCode::Forbidden);
        }
    }
    // /metrics carries counts, never a client's job.
    let r = start(fast_config()).await;
    let j = r.open(1, b"a").await;
    let metrics = r.metrics().await;
    assert!(!metrics.contains(&j.job.escrow[2..]), "{metrics}");
    assert!(!metrics.contains(&j.escrow_owner[2..]), "{metrics}");
}

#[tokio::test]
async fn job_list_filters_by_state_and_refuses_unknown_states() {
    let r = start(RelayerConfig {
        operator_token: Some("op-token".into()),
        ..fast_config()
    })
    .await;
    let a = r.open(1, b"a").await;
    let b = r.open(2, b"b").await;
    r.store
        .transition(&b.job, JobState::Failed, Some("given up"))
        .await
        .unwrap();
    let get = |q: &'static str| {
        let url = format!("{}/v1/jobs{q}", r.http);
        let c = r.client.clone();
        async move { c.get(url).bearer_auth("op-token").send().await.unwrap() }
    };
    let all: cocoon_relayer::api::JobList = get("").await.json().await.unwrap();
    assert_eq!(
        all.jobs
            .iter()
            .map(|j| (j.job.clone(), j.state.as_str()))
            .collect::<Vec<_>>(),
        vec![(a.job.clone(), "opened"), (b.job.clone(), "failed")]
    );
    let failed: cocoon_relayer::api::JobList = get("?state=failed").await.json().await.unwrap();
    assert_eq!(failed.jobs.len(), 1);
    assert_eq!(failed.jobs[0].reason.as_deref(), Some("given up"));
    let one: cocoon_relayer::api::JobList = get("?limit=1").await.json().await.unwrap();
    assert_eq!(one.jobs.len(), 1);
    for q in ["?state=bogus", "?limit=x"] {
        let resp = get(q).await;
        assert_eq!(resp.status(), 400, "{q}");
        let e: ApiError = resp.json().await.unwrap();
        assert_eq!(e.error, ApiErrorCode::BadParameter, "{q}");
    }
}
