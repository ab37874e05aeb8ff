//! Private by default: a job's status and stream are readable by the client that submitted its
//! input (read proofs signed with the reader key it named) and by the operator, by nobody else;
//! `/metrics` and the worker list carry nothing about clients.

mod common;

use std::time::Duration;

use cocoon_sdk::client::{ClientError, RelayerApi};
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::{ApiError, ApiErrorCode, StreamEvent};
use cocoon_sdk::relay::read_auth::{READ_PROOF_WINDOW, ReadProof};
use cocoon_testkit::collect_stream_with;
use cocoon_testkit::stub::StubWorker;
use common::{OPERATOR_TOKEN, TestRelayer, fast_config, start};

const OWNER: [u8; 32] = [0x0a; 32];
const STRANGER: [u8; 32] = [0x0b; 32];

fn api(r: &TestRelayer) -> RelayerApi {
    RelayerApi::new(&r.http).unwrap()
}

/// Runs one job for `owner` through a stub worker; returns it once answered.
async fn owned_job(r: &TestRelayer, id: u64) -> JobRef {
    let stub = StubWorker::new(1, vec![1]);
    let _h = r.worker(&stub).await;
    let input = format!("private {id}").into_bytes();
    let job = r.open(id, &input).await.job;
    api(r)
        .with_reader(OWNER)
        .submit_input(
            &job,
            &input,
            std::slice::from_ref(&stub.address),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let events = collect_stream_with(&api(r).with_reader(OWNER), &job, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        matches!(events.last(), Some(StreamEvent::Receipt { .. })),
        "{events:?}"
    );
    job
}

fn refused(got: Result<impl std::fmt::Debug, ClientError>, status: u16, code: &str) {
    match got {
        Err(ClientError::Relayer {
            status: s, code: c, ..
        }) if s == status && c == code => {}
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

async fn raw_read(r: &TestRelayer, path: &str, auth: Option<String>) -> reqwest::Response {
    let mut req = r.client.get(format!("{}{path}", r.http));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn only_the_owner_and_the_operator_read_a_job() {
    let r = start(fast_config()).await;
    let job = owned_job(&r, 1).await;

    // The owner reads status and stream with its proofs.
    let owner = api(&r).with_reader(OWNER);
    assert_eq!(owner.job_status(&job).await.unwrap().job, job);
    let events = collect_stream_with(&owner, &job, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(events.last(), Some(StreamEvent::Receipt { .. })));

    // The operator reads it too.
    let operator = api(&r).with_operator_token(OPERATOR_TOKEN);
    operator.job_status(&job).await.unwrap();
    assert_eq!(
        collect_stream_with(&operator, &job, Duration::from_secs(5))
            .await
            .unwrap(),
        events
    );

    // A stranger with a valid proof of its own key learns what it would of an unknown job.
    let stranger = api(&r).with_reader(STRANGER);
    refused(stranger.job_status(&job).await, 404, "job_not_found");
    refused(stranger.stream(&job).await, 404, "job_not_found");
    let unknown = JobRef::new(job.escrow.clone(), 999);
    refused(stranger.job_status(&unknown).await, 404, "job_not_found");

    // Without a proof, with a wrong operator token, a stale proof or one for another job: 401.
    refused(api(&r).job_status(&job).await, 401, "unauthorized");
    refused(api(&r).stream(&job).await, 401, "unauthorized");
    refused(
        api(&r).with_operator_token("wrong").job_status(&job).await,
        401,
        "unauthorized",
    );
    let path = format!("/v1/jobs/{}/{}", job.escrow, job.job_id);
    let now = cocoon_sdk::clock::unix_now();
    let stale = ReadProof::sign(&OWNER, &job, now - READ_PROOF_WINDOW - 5).header();
    let other_job = ReadProof::sign(&OWNER, &unknown, now).header();
    for auth in [
        None,
        Some(stale),
        Some(other_job),
        Some("Cocoon-Read zz.1.zz".into()),
    ] {
        let resp = raw_read(&r, &path, auth.clone()).await;
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("Cocoon-Read"),
            "{auth:?}"
        );
        let body: ApiError = resp.json().await.unwrap();
        assert_eq!(body.error, ApiErrorCode::Unauthorized);
    }
    // The scheme name is case-insensitive.
    let lower = ReadProof::sign(&OWNER, &job, now)
        .header()
        .replace("Cocoon-Read", "cocoon-read");
    assert_eq!(raw_read(&r, &path, Some(lower)).await.status(), 200);

    // Nobody but the operator lists jobs, not even an owner with a valid proof.
    let proof = ReadProof::sign(&OWNER, &job, now).header();
    assert_eq!(raw_read(&r, "/v1/jobs", Some(proof)).await.status(), 403);
    assert_eq!(
        raw_read(&r, "/v1/jobs", Some(format!("Bearer {OPERATOR_TOKEN}")))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_job_submitted_without_a_reader_key_is_the_operators_alone() {
    let r = start(fast_config()).await;
    let input = b"no reader".to_vec();
    let job = r.open(2, &input).await.job;
    assert_eq!(
        r.submit(&job, &input, &[&common::worker_addr(1)])
            .await
            .status(),
        202
    );
    refused(
        api(&r).with_reader(OWNER).job_status(&job).await,
        404,
        "job_not_found",
    );
    api(&r)
        .with_operator_token(OPERATOR_TOKEN)
        .job_status(&job)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reader_that_is_not_an_ed25519_key_is_refused_and_nothing_is_stored() {
    let r = start(fast_config()).await;
    let input = b"bad reader".to_vec();
    let job = r.open(3, &input).await.job;
    for reader in ["", "zz", &"00".repeat(31), &"02".repeat(32)] {
        let body = serde_json::json!({
            "version": 1,
            "sealed_input": common::base64_encode(&input),
            "candidates": [common::worker_addr(1)],
            "reader": reader,
        });
        let resp = r
            .client
            .post(format!(
                "{}/v1/jobs/{}/{}/input",
                r.http, job.escrow, job.job_id
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{reader:?}");
    }
    assert!(r.store.sealed_input(&job).await.unwrap().is_none());
}

#[tokio::test]
async fn metrics_and_the_worker_list_name_no_client() {
    let r = start(fast_config()).await;
    let job = owned_job(&r, 4).await;
    let owner_key = hex::encode(ReadProof::sign(&OWNER, &job, 0).key);
    for path in ["/metrics", "/v1/workers", "/health"] {
        let body = raw_read(&r, path, None).await.text().await.unwrap();
        let escrow_hex = job.escrow.split(':').nth(1).unwrap();
        assert!(
            !body.contains(escrow_hex) && !body.contains(&owner_key),
            "{path} names a client: {body}"
        );
    }
}
