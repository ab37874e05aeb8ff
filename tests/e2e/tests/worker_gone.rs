//! A job whose only worker disappears mid-job: the relayer has no one to fail over to and reports
//! the job failed; the client's funds stay locked until the deadline, and after deadline + grace
//! the job expires on-chain and every nanoTON returns to the escrow's free balance.

use std::time::Duration;

use cocoon_e2e::{Devnet, DevnetOptions, init_logs};
use cocoon_sdk::client::{Client, ClientError, JobEvent, JobOptions};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_of_a_vanished_worker_is_refunded_after_its_deadline() {
    init_logs("warn");
    let net = Devnet::start(DevnetOptions::default()).await.unwrap();
    let app = Client::connect(
        net.client_config(),
        net.funded_wallet(20 * NANO_PER_TON).await.unwrap(),
    )
    .await
    .unwrap();
    app.deposit(2 * NANO_PER_TON).await.unwrap();

    let deadline = Duration::from_secs(120);
    let request = JobRequest::chat(
        vec![ChatMessage::new(
            "user",
            "Write a long story about the sea.",
        )],
        GenerationParams {
            max_tokens: 400,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    );
    let options = JobOptions {
        deadline: Some(deadline),
        ..JobOptions::default()
    };
    let mut stream = app
        .open_job(SMOLLM2_135M.name, request, options)
        .await
        .unwrap();
    let job = stream.job().clone();
    let max_cost = stream.max_cost();
    // The moment the relayer hands the job over, the worker's link goes dead.
    loop {
        match stream
            .next()
            .await
            .expect("the stream goes on until the job ends")
        {
            Ok(JobEvent::Dispatched { .. }) => {
                net.workers[0].proxy.cut();
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("before dispatch: {e}"),
        }
    }
    let err = tokio::time::timeout(Duration::from_secs(180), stream.finish())
        .await
        .expect("the relayer gives up in time");
    assert!(
        matches!(
            err,
            Err(ClientError::JobFailed { .. } | ClientError::JobExpired { .. })
        ),
        "a job nobody can answer fails: {err:?}"
    );
    let during = app.balance().await.unwrap();
    assert_eq!(
        during.locked, max_cost,
        "the job's max cost stays locked until the deadline"
    );

    // After deadline + grace anyone may expire the job; the client does, and is refunded in full.
    net.chain
        .localnet
        .advance_time(deadline.as_secs() + u64::from(cocoon_testkit::dev::GRACE_PERIOD) + 5)
        .await
        .unwrap();
    app.expire(&job).await.unwrap();
    let after = app.balance().await.unwrap();
    assert_eq!(after.locked, 0);
    // The max cost returns to the free balance; the only other change is the Escrow's storage
    // fee over the skipped time (the expiry's gas is paid by the message that asked for it).
    let refunded = after.free - during.free;
    assert!(
        refunded <= max_cost && max_cost - refunded < 1_000_000,
        "refunded {refunded} of {max_cost}"
    );
    assert!(
        net.worker_earned(0).await.unwrap() == 0,
        "the vanished worker was paid nothing"
    );
    net.stop().await;
}
