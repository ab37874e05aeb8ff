//! The whole system, end to end on one machine: many concurrent jobs (chat and embeddings) from
//! two apps through the SDK, a relayer and a worker node running the real models; every answer
//! opens, every receipt checks, every job settles on-chain exactly as its receipt says, and the
//! split of every cost (worker share, relayer fee, protocol fee) is exact to the nanoTON.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use cocoon_e2e::{Devnet, DevnetOptions, init_logs};
use cocoon_sdk::client::{Client, ClientError, JobOptions, JobResult};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;

const CHAT_JOBS: usize = 4;

type Job<'a> = Pin<Box<dyn Future<Output = Result<(usize, JobResult), ClientError>> + Send + 'a>>;

fn chat(i: usize) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", format!("Name a colour. ({i})"))],
        GenerationParams {
            max_tokens: 6,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_jobs_settle_exactly_as_their_receipts_say() {
    init_logs("warn");
    let net = Devnet::start(DevnetOptions::default()).await.unwrap();
    let mut apps = Vec::new();
    for _ in 0..2 {
        let wallet = net.funded_wallet(20 * NANO_PER_TON).await.unwrap();
        let app = Client::connect(net.client_config(), wallet).await.unwrap();
        app.deposit(3 * NANO_PER_TON).await.unwrap();
        apps.push(app);
    }
    let fees_before = fees_due(&apps).await;
    let earned_before = net.worker_earned(0).await.unwrap();

    // Every job of both apps at once: the relayer and the worker interleave them (the worker
    // batches the generations), and each app's job ids stay strictly increasing on its Escrow.
    let mut tasks: Vec<Job<'_>> = Vec::new();
    for (a, app) in apps.iter().enumerate() {
        for i in 0..CHAT_JOBS {
            tasks.push(Box::pin(async move {
                let r = app
                    .open_job(SMOLLM2_135M.name, chat(a * 10 + i), JobOptions::default())
                    .await?
                    .finish()
                    .await?;
                Ok((a, r))
            }));
        }
        tasks.push(Box::pin(async move {
            let req = JobRequest::embeddings(vec!["hello world".into(), "goodbye moon".into()]);
            let r = app
                .open_job(ALL_MINILM_L6_V2.name, req, JobOptions::default())
                .await?
                .finish()
                .await?;
            Ok((a, r))
        }));
    }
    let results: Vec<(usize, JobResult)> = run_all(tasks).await;
    assert_eq!(results.len(), 2 * (CHAT_JOBS + 1));

    let worker = net.workers[0].address.clone();
    for (a, r) in &results {
        // What the client received: a real answer, billed exactly at the worker's prices.
        assert_eq!(r.worker, worker);
        match &r.embeddings {
            Some(v) => {
                assert_eq!(v.len(), 2);
                assert_eq!(v[0].len(), 384, "MiniLM-L6 vectors have 384 dimensions");
            }
            None => {
                assert!(!r.text.trim().is_empty(), "job {} answered nothing", r.job);
                assert!(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 6);
            }
        }
        let body = &r.receipt.body;
        assert_eq!(body.cost, r.cost);
        assert_eq!(body.tokens_in, r.usage.prompt_tokens);
        assert_eq!(body.tokens_out, r.usage.completion_tokens);
        assert_eq!(
            r.cost,
            u128::from(body.tokens_in) * 1_000 + u128::from(body.tokens_out) * 4_000
        );
        assert!(r.cost <= r.max_cost);
        // What the chain recorded: the settlement of this very receipt.
        let s = apps[*a].verify_settlement(r).await.unwrap();
        assert_eq!(
            s.cost, r.cost,
            "job {} settled for another amount than its receipt",
            r.job
        );
        assert_eq!(s.worker, worker);
    }

    // Exact accounting: the Worker earned each cost minus the relayer's and the protocol's
    // shares (floored basis points), and each Escrow owes the treasury exactly its protocol fees.
    let relayer_bps = u128::from(apps[0].config().relayer_fee_bps);
    let protocol_bps = u128::from(cocoon_testkit::dev::PROTOCOL_FEE_BPS);
    let protocol_fee = |cost: u128| cost * protocol_bps / 10_000;
    let share = |cost: u128| cost - cost * relayer_bps / 10_000 - protocol_fee(cost);
    let earned = net.worker_earned(0).await.unwrap() - earned_before;
    assert_eq!(
        earned,
        results.iter().map(|(_, r)| share(r.cost)).sum::<u128>()
    );
    let fees_after = fees_due(&apps).await;
    for a in 0..apps.len() {
        let fees: u128 = results
            .iter()
            .filter(|(x, _)| *x == a)
            .map(|(_, r)| protocol_fee(r.cost))
            .sum();
        assert_eq!(fees_after[a] - fees_before[a], fees, "app {a}");
        assert_eq!(
            apps[a].balance().await.unwrap().locked,
            0,
            "app {a} has jobs still locked"
        );
    }
    net.stop().await;
}

async fn fees_due(apps: &[Client]) -> Vec<u128> {
    let mut out = Vec::new();
    for a in apps {
        out.push(a.balance().await.unwrap().fees_due);
    }
    out
}

async fn run_all(tasks: Vec<Job<'_>>) -> Vec<(usize, JobResult)> {
    let all = futures_util::future::join_all(tasks);
    match tokio::time::timeout(Duration::from_secs(600), all).await {
        Ok(results) => results.into_iter().map(|r| r.expect("job")).collect(),
        Err(_) => panic!("jobs did not finish in 10 minutes"),
    }
}
