//! Crash safety: the `cocoon-relayer` binary on localnet with a stub worker, SIGKILLed at random
//! points while it runs many jobs and restarted each time. Every job must end settled, none lost,
//! none settled twice — checked on-chain.

mod binary;
mod localnet;

use std::process::Child;
use std::time::Duration;

use binary::{free_port, spawn_relayer};
use cocoon_relayer::store::{JobState, Store};
use cocoon_sdk::chain::ChainApi;
use cocoon_sdk::messages::escrow::Settle;
use cocoon_sdk::tlb::TlbType as _;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::stub::{StubHandle, StubWorker};
use localnet::{GRACE, Net, setup};
use rand::{Rng as _, SeedableRng as _};

const JOBS: u64 = 10;
const KILLS: usize = 5;

fn start(n: &Net, port: u16, db: &str, log: &std::path::Path) -> Child {
    let grace = GRACE.to_string();
    spawn_relayer(
        n.dev.localnet.url(),
        &n.root.to_hex(),
        &n.relayer_mnemonic,
        port,
        db,
        log,
        &[
            "--relayer.first-chunk-timeout",
            "2",
            "--relayer.idle-timeout",
            "2",
            "--relayer.grace-period",
            &grace,
        ],
    )
}

/// Connects the stub once the relayer answers (it may have died again meanwhile: then `None`).
async fn connect(stub: &StubWorker, port: u16) -> Option<StubHandle> {
    for _ in 0..50 {
        if let Ok(h) = stub.connect(&format!("ws://127.0.0.1:{port}")).await {
            return Some(h);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Posts a job's sealed input until the relayer has it (202, or 409 already submitted).
async fn submit_until_taken(
    port: u16,
    job: &cocoon_sdk::relay::JobRef,
    input: &[u8],
    worker: &str,
) -> bool {
    use base64::Engine as _;
    let body = serde_json::json!({
        "version": 1,
        "sealed_input": base64::engine::general_purpose::STANDARD.encode(input),
        "candidates": [worker],
    });
    let url = format!(
        "http://127.0.0.1:{port}/v1/jobs/{}/{}/input",
        job.escrow, job.job_id
    );
    match reqwest::Client::new()
        .post(url)
        .json(&body)
        .timeout(Duration::from_secs(2))
        .send()
        .await
    {
        Ok(r) => matches!(r.status().as_u16(), 202 | 409),
        Err(_) => false,
    }
}

#[tokio::test]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let seed: u64 = std::env::var("COCOON_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (COCOON_CRASH_SEED={seed} replays the kill schedule)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = setup(StubWorker::new(5, vec![1]), 5 * NANO_PER_TON).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let log = dir.path().join("relayer.log");
    let port = free_port();

    let mut jobs = Vec::new();
    let mut pending: Vec<(cocoon_sdk::relay::JobRef, Vec<u8>)> = Vec::new();
    let mut next_id = 1;
    for round in 0..=KILLS {
        let mut child = start(&n, port, &db, &log);
        let _stub = connect(&n.stub, port).await;
        // Open some jobs on-chain while it runs (the watcher picks them up now or after a
        // restart) and hand it the inputs it does not have yet.
        while next_id <= JOBS && next_id <= (round as u64 + 1) * JOBS.div_ceil(KILLS as u64 + 1) {
            let input = format!("sealed input {next_id}").into_bytes();
            let job = n.open(next_id, &input, 600).await;
            jobs.push(job.clone());
            pending.push((job, input));
            next_id += 1;
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(rng.gen_range(500..4000));
        while tokio::time::Instant::now() < until {
            let mut left = Vec::new();
            for (job, input) in pending.drain(..) {
                if !submit_until_taken(port, &job, &input, &n.stub.address).await {
                    left.push((job, input));
                }
            }
            pending = left;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if round < KILLS {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        } else {
            // The last instance runs until every job is final.
            let store = Store::connect(&db, 1).await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
            loop {
                let mut left = Vec::new();
                for (job, input) in pending.drain(..) {
                    if !submit_until_taken(port, &job, &input, &n.stub.address).await {
                        left.push((job, input));
                    }
                }
                pending = left;
                let mut open = 0;
                for j in &jobs {
                    if !store
                        .job(j)
                        .await
                        .unwrap()
                        .is_some_and(|r| r.state.is_final())
                    {
                        open += 1;
                    }
                }
                if open == 0 {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: String = text
                        .lines()
                        .rev()
                        .take(40)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n");
                    panic!(
                        "seed {seed}: {open} jobs not final after the last restart; relayer log tail:\n{tail}"
                    );
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            for j in &jobs {
                let r = store.job(j).await.unwrap().unwrap();
                assert_eq!(r.state, JobState::Settled, "seed {seed}: {j}: {r:?}");
            }
            store.close().await;
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    // On-chain: every job closed, each settled exactly once.
    let escrow = n.escrow().await;
    for j in &jobs {
        assert_eq!(
            escrow.job(j.job_id).await.unwrap(),
            None,
            "seed {seed}: {j} still open on-chain"
        );
    }
    let mut counts = std::collections::HashMap::<u64, u32>::new();
    let mut after = 0;
    loop {
        let txs = n.chain.transactions(&n.escrow, after, 100).await.unwrap();
        let len = txs.len();
        for t in txs {
            after = after.max(t.id.lt);
            let Some(m) = &t.in_msg else { continue };
            if m.opcode == Some(Settle::OP)
                && t.succeeded()
                && let Some(s) = m.body.as_ref().and_then(|b| Settle::from_cell(b).ok())
            {
                *counts.entry(s.job_id).or_insert(0) += 1;
            }
        }
        if len < 100 {
            break;
        }
    }
    assert_eq!(
        counts,
        jobs.iter().map(|j| (j.job_id, 1)).collect(),
        "seed {seed}: each job settled exactly once"
    );
}
