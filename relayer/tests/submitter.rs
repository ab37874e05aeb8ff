//! The receipt submitter against a wallet double that records what reaches the "chain":
//! batching, confirmation, retries after 5xx, crash recovery, and never submitting a confirmed
//! receipt twice.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cocoon_relayer::metrics::Metrics;
use cocoon_relayer::store::{JobState, OutboxStatus, SealedInput, Store};
use cocoon_relayer::submitter::{
    BatchOutcome, SUBMIT_RECEIPTS_OP, Submitter, WalletSender, submit_receipts_body, submit_value,
};
use cocoon_relayer::watcher::SourceError;
use cocoon_sdk::relay::JobRef;
use cocoon_testkit::stub::{ReceiptFields, signed_receipt};
use ed25519_dalek::SigningKey;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tonlib_core::cell::{BagOfCells, Cell};

/// A wallet whose "chain" applies a message when its seqno matches, once.
#[derive(Default)]
struct Chain {
    seqno: u32,
    /// msg hash → (lt, body) of every applied message.
    landed: HashMap<[u8; 32], (u64, Cell)>,
    fail_broadcasts: u32,
    /// Apply broadcasts (false: they vanish, as if the node dropped them).
    deliver: bool,
    broadcasts: u32,
    /// Job ids whose settlement the "Escrow" refuses.
    refuse: Vec<u64>,
}

/// `JobNotFound`, the Escrow's answer to a settlement of a job no longer open.
const ESCROW_JOB_NOT_FOUND: i32 = cocoon_sdk::contracts::exit::JOB_NOT_FOUND;

struct Wallet(Mutex<Chain>);

impl WalletSender for Wallet {
    fn seqno(&self) -> BoxFuture<'_, Result<u32, SourceError>> {
        let s = self.0.lock().unwrap().seqno;
        Box::pin(async move { Ok(s) })
    }
    fn build(
        &self,
        seqno: u32,
        to: &str,
        value: u128,
        body: Cell,
    ) -> Result<(Vec<u8>, [u8; 32]), SourceError> {
        // Stand-in for a signed external: seqno, destination, value, body.
        let body = BagOfCells::from_root(body).serialize(false).unwrap();
        let mut msg = seqno.to_be_bytes().to_vec();
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes());
        msg.extend_from_slice(&body);
        msg.extend_from_slice(to.as_bytes());
        msg.extend_from_slice(&value.to_be_bytes());
        let hash = Sha256::digest(&msg).into();
        Ok((msg, hash))
    }
    fn broadcast<'a>(&'a self, boc: &'a [u8]) -> BoxFuture<'a, Result<(), SourceError>> {
        let mut c = self.0.lock().unwrap();
        c.broadcasts += 1;
        let out = if c.fail_broadcasts > 0 {
            c.fail_broadcasts -= 1;
            Err(SourceError("502 bad gateway".into()))
        } else {
            let seqno = u32::from_be_bytes(boc[..4].try_into().unwrap());
            if c.deliver && seqno == c.seqno {
                let hash: [u8; 32] = Sha256::digest(boc).into();
                let len = u32::from_be_bytes(boc[4..8].try_into().unwrap()) as usize;
                let body_boc = &boc[8..8 + len];
                let body = BagOfCells::parse(body_boc).unwrap().single_root().unwrap();
                c.seqno += 1;
                let lt = 1000 + u64::from(c.seqno);
                c.landed.insert(hash, (lt, (*body).clone()));
            }
            Ok(())
        };
        Box::pin(async move { out })
    }
    fn outcome<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<BatchOutcome>, SourceError>> {
        // Every Escrow accepts, except for the jobs listed in `refuse`.
        let c = self.0.lock().unwrap();
        let found = c.landed.get(msg_hash).map(|(lt, body)| BatchOutcome {
            settlements: body_jobs(body)
                .into_iter()
                .map(|j| {
                    let v = if c.refuse.contains(&j.job_id) {
                        Err(ESCROW_JOB_NOT_FOUND)
                    } else {
                        Ok(lt + 1)
                    };
                    (j, v)
                })
                .collect(),
            ..BatchOutcome::default()
        });
        Box::pin(async move { Ok(found) })
    }
    fn landed<'a>(
        &'a self,
        msg_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<(u64, [u8; 32])>, SourceError>> {
        let found = self
            .0
            .lock()
            .unwrap()
            .landed
            .get(msg_hash)
            .map(|(lt, _)| (*lt, [1; 32]));
        Box::pin(async move { Ok(found) })
    }
}

/// The jobs of a SubmitReceipts body, in batch order.
fn body_jobs(body: &Cell) -> Vec<JobRef> {
    let mut out = Vec::new();
    let mut p = body.parser();
    p.load_u32(32).unwrap();
    p.load_u64(64).unwrap();
    let count = p.load_u8(8).unwrap();
    let mut link = p.next_reference().unwrap();
    for i in 0..count {
        let receipt = link.reference(0).unwrap().clone();
        let mut b = receipt.reference(0).unwrap().parser();
        b.load_u32(32).unwrap();
        let escrow = b.load_address().unwrap().to_hex();
        out.push(JobRef::new(escrow, b.load_u64(64).unwrap()));
        if i + 1 < count {
            link = link.reference(1).unwrap().clone();
        }
    }
    out
}

/// Counts receipts per job across every applied SubmitReceipts.
fn settled_counts(chain: &Chain) -> HashMap<u64, u32> {
    let mut out = HashMap::new();
    for (_, body) in chain.landed.values() {
        let mut p = body.parser();
        assert_eq!(p.load_u32(32).unwrap(), SUBMIT_RECEIPTS_OP);
        p.load_u64(64).unwrap();
        let count = p.load_u8(8).unwrap();
        let mut link = p.next_reference().unwrap();
        for i in 0..count {
            let receipt = link.reference(0).unwrap().clone();
            let body = receipt.reference(0).unwrap();
            let mut b = body.parser();
            b.load_u32(32).unwrap();
            b.load_address().unwrap();
            *out.entry(b.load_u64(64).unwrap()).or_insert(0) += 1;
            if i + 1 < count {
                link = link.reference(1).unwrap().clone();
            }
        }
    }
    out
}

async fn answered_jobs(store: &Store, worker: &str, n: u64) -> Vec<JobRef> {
    let key = SigningKey::from_bytes(&[5; 32]);
    let mut jobs = Vec::new();
    for id in 1..=n {
        let j = common::opened(1, id, b"in");
        store.insert_opened(&j).await.unwrap();
        store
            .submit_input(
                &j.job,
                &SealedInput {
                    ciphertext: b"in".to_vec(),
                    candidates: vec![worker.into()],
                    reader: None,
                },
            )
            .await
            .unwrap();
        store.mark_dispatched(&j.job, worker, 1).await.unwrap();
        let f = ReceiptFields {
            job: j.job.clone(),
            worker: worker.into(),
            model_id: 1,
            tokens_in: 1,
            tokens_out: 1,
            cost: 3,
            time: 1,
            weights_hash: [0; 32],
            evidence_hash: [0; 32],
            input_commitment: j.input_commitment,
            output_commitment: [0; 32],
        };
        store
            .record_receipt(&j.job, worker, &signed_receipt(&key, &f).unwrap(), 3)
            .await
            .unwrap();
        jobs.push(j.job);
    }
    jobs
}

fn wallet(deliver: bool, fail: u32) -> Arc<Wallet> {
    Arc::new(Wallet(Mutex::new(Chain {
        deliver,
        fail_broadcasts: fail,
        ..Chain::default()
    })))
}

#[test]
fn body_layout_and_value() {
    let key = SigningKey::from_bytes(&[5; 32]);
    let f = ReceiptFields {
        job: JobRef::new(common::escrow(1), 1),
        worker: common::worker_addr(1),
        model_id: 1,
        tokens_in: 1,
        tokens_out: 1,
        cost: 1,
        time: 1,
        weights_hash: [0; 32],
        evidence_hash: [0; 32],
        input_commitment: [0; 32],
        output_commitment: [0; 32],
    };
    let r = signed_receipt(&key, &f).unwrap();
    let body = submit_receipts_body(9, &[r.clone(), r.clone()]).unwrap();
    let mut p = body.parser();
    assert_eq!(
        (
            p.load_u32(32).unwrap(),
            p.load_u64(64).unwrap(),
            p.load_u8(8).unwrap()
        ),
        (SUBMIT_RECEIPTS_OP, 9, 2)
    );
    assert!(submit_receipts_body(1, &[]).is_err());
    assert!(submit_receipts_body(1, &vec![r; 101]).is_err());
    assert_eq!(submit_value(2), 10_000_000 + 2 * 15_000_000);
}

#[tokio::test]
async fn receipts_are_batched_sent_confirmed_and_never_resent() {
    for t in common::stores().await {
        let w = common::worker_addr(1);
        let jobs = answered_jobs(&t.store, &w, 5).await;
        let wal = wallet(true, 0);
        let sub =
            Submitter::new(t.store.clone(), wal.clone(), Arc::new(Metrics::new())).with_batch(3);
        let r1 = sub.tick().await.unwrap();
        assert_eq!((r1.batched, r1.broadcast), (1, 1), "{}", t.name);
        assert_eq!(
            t.store.job(&jobs[0]).await.unwrap().unwrap().state,
            JobState::ReceiptQueued
        );
        for _ in 0..5 {
            sub.tick().await.unwrap();
        }
        for j in &jobs {
            assert_eq!(
                t.store.job(j).await.unwrap().unwrap().state,
                JobState::Settled,
                "{}: {j}",
                t.name
            );
        }
        let chain = wal.0.lock().unwrap();
        let counts = settled_counts(&chain);
        assert_eq!(counts.len(), 5, "{}", t.name);
        assert!(
            counts.values().all(|c| *c == 1),
            "{}: each receipt once: {counts:?}",
            t.name
        );
        assert_eq!(chain.landed.len(), 2, "two batches (3 + 2)");
    }
}

#[tokio::test]
async fn failed_broadcasts_are_retried_with_the_same_bytes() {
    let t = common::sqlite().await;
    let w = common::worker_addr(1);
    let jobs = answered_jobs(&t.store, &w, 2).await;
    let wal = wallet(true, 2);
    let metrics = Arc::new(Metrics::new());
    let sub = Submitter::new(t.store.clone(), wal.clone(), metrics.clone());
    sub.tick().await.unwrap();
    let sent = t.store.outbox_in_status(OutboxStatus::Sent).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("502")
    );
    for _ in 0..4 {
        sub.tick().await.unwrap();
    }
    assert_eq!(
        t.store.job(&jobs[1]).await.unwrap().unwrap().state,
        JobState::Settled
    );
    let chain = wal.0.lock().unwrap();
    assert_eq!(chain.landed.len(), 1);
    assert!(settled_counts(&chain).values().all(|c| *c == 1));
    assert!(
        metrics
            .render()
            .contains("cocoon_relayer_submit_failures_total 2")
    );
}

#[tokio::test]
async fn a_crash_between_recording_and_broadcasting_sends_once() {
    let t = common::sqlite().await;
    let w = common::worker_addr(1);
    let jobs = answered_jobs(&t.store, &w, 1).await;
    // The first process records the message, then "dies" before it reaches the node.
    let lost = wallet(false, 0);
    Submitter::new(t.store.clone(), lost, Arc::new(Metrics::new()))
        .tick()
        .await
        .unwrap();
    assert_eq!(
        t.store
            .outbox_in_status(OutboxStatus::Sent)
            .await
            .unwrap()
            .len(),
        1
    );
    // The restarted process re-broadcasts those bytes; they land once.
    let wal = wallet(true, 0);
    let sub = Submitter::new(t.store.clone(), wal.clone(), Arc::new(Metrics::new()));
    for _ in 0..3 {
        sub.tick().await.unwrap();
    }
    assert_eq!(
        t.store.job(&jobs[0]).await.unwrap().unwrap().state,
        JobState::Settled
    );
    assert_eq!(wal.0.lock().unwrap().landed.len(), 1);
}

#[tokio::test]
async fn a_batch_whose_seqno_was_taken_is_rebatched() {
    let t = common::sqlite().await;
    let w = common::worker_addr(1);
    let jobs = answered_jobs(&t.store, &w, 2).await;
    let wal = wallet(false, 0);
    let sub = Submitter::new(t.store.clone(), wal.clone(), Arc::new(Metrics::new()))
        .with_confirm_grace(0);
    sub.tick().await.unwrap();
    // Something else used the wallet's seqno: this message can never land.
    {
        let mut c = wal.0.lock().unwrap();
        c.seqno += 1;
        c.deliver = true;
    }
    let r = sub.tick().await.unwrap();
    assert_eq!(r.failed, 1);
    for _ in 0..3 {
        sub.tick().await.unwrap();
    }
    for j in &jobs {
        assert_eq!(
            t.store.job(j).await.unwrap().unwrap().state,
            JobState::Settled
        );
    }
    assert!(
        settled_counts(&wal.0.lock().unwrap())
            .values()
            .all(|c| *c == 1)
    );
    assert_eq!(
        t.store
            .outbox_in_status(OutboxStatus::Failed)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_expired_message_is_given_up_and_its_receipts_resent_once() {
    let t = common::sqlite().await;
    let w = common::worker_addr(1);
    let jobs = answered_jobs(&t.store, &w, 1).await;
    let wal = wallet(false, 0);
    let sub = Submitter::new(t.store.clone(), wal.clone(), Arc::new(Metrics::new()))
        .with_message_expiry(0);
    sub.tick().await.unwrap();
    // The node dropped it and it expired: the seqno never moved.
    let r = sub.tick().await.unwrap();
    assert_eq!(r.failed, 1);
    wal.0.lock().unwrap().deliver = true;
    for _ in 0..3 {
        sub.tick().await.unwrap();
    }
    assert_eq!(
        t.store.job(&jobs[0]).await.unwrap().unwrap().state,
        JobState::Settled
    );
    assert_eq!(wal.0.lock().unwrap().landed.len(), 1);
}

#[tokio::test]
async fn a_landed_batch_settles_only_what_the_escrow_accepted() {
    for t in common::stores().await {
        let w = common::worker_addr(1);
        let jobs = answered_jobs(&t.store, &w, 3).await;
        let wal = wallet(true, 0);
        wal.0.lock().unwrap().refuse = vec![jobs[1].job_id];
        let sub = Submitter::new(t.store.clone(), wal.clone(), Arc::new(Metrics::new()));
        let mut settled = 0;
        let mut refused = 0;
        for _ in 0..3 {
            let r = sub.tick().await.unwrap();
            settled += r.settled;
            refused += r.refused;
        }
        assert_eq!((settled, refused), (2, 1), "{}", t.name);
        let states: Vec<_> = futures_util::future::join_all(jobs.iter().map(|j| t.store.job(j)))
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        assert_eq!(
            states.iter().map(|r| r.state).collect::<Vec<_>>(),
            vec![JobState::Settled, JobState::Failed, JobState::Settled],
            "{}",
            t.name
        );
        let why = states[1].reason.as_deref().unwrap_or_default();
        assert!(
            why.contains("Escrow refused") && why.contains("306") && why.contains("JobNotFound"),
            "{why}"
        );
        // Decided jobs are not followed again, and the refused receipt is never re-sent.
        assert!(
            t.store
                .batches_awaiting_verdict(10)
                .await
                .unwrap()
                .is_empty()
        );
        sub.tick().await.unwrap();
        assert_eq!(wal.0.lock().unwrap().landed.len(), 1, "{}", t.name);
    }
}

#[test]
fn verdicts_name_who_refused_and_why() {
    use cocoon_relayer::submitter::verdict;
    let job = JobRef::new(common::escrow(1), 4);
    let worker_refused = BatchOutcome {
        refused: Some(("Worker contract", 203)),
        ..BatchOutcome::default()
    };
    let (ok, why) = verdict(&worker_refused, &job, 0);
    assert!(
        !ok && why.contains("Worker contract") && why.contains("203"),
        "{why}"
    );
    let skipped = BatchOutcome {
        skipped: vec![(1, 77)],
        ..BatchOutcome::default()
    };
    let (ok, why) = verdict(&skipped, &job, 1);
    assert!(
        !ok && why.contains("skipped") && why.contains("77"),
        "{why}"
    );
    let (ok, why) = verdict(&skipped, &job, 0);
    assert!(!ok && why.contains("no settlement"), "{why}");
    let accepted = BatchOutcome {
        settlements: vec![(job.clone(), Ok(55))],
        ..BatchOutcome::default()
    };
    assert_eq!(
        verdict(&accepted, &job, 0),
        (true, "settled: the Escrow accepted it at lt 55".into())
    );
}

#[tokio::test]
async fn two_submitters_on_one_database_never_send_a_receipt_twice() {
    for t in common::stores().await {
        let w = common::worker_addr(1);
        let jobs = answered_jobs(&t.store, &w, 12).await;
        // One wallet and chain, two instances with their own connection pools.
        let wal = wallet(true, 0);
        let other = Store::connect(&t.url, 4).await.unwrap();
        let a =
            Submitter::new(t.store.clone(), wal.clone(), Arc::new(Metrics::new())).with_batch(3);
        let b = Submitter::new(other.clone(), wal.clone(), Arc::new(Metrics::new())).with_batch(3);
        for _ in 0..20 {
            let (x, y) = tokio::join!(a.tick(), b.tick());
            x.unwrap();
            y.unwrap();
        }
        for j in &jobs {
            assert_eq!(
                t.store.job(j).await.unwrap().unwrap().state,
                JobState::Settled,
                "{}: {j}",
                t.name
            );
        }
        let counts = settled_counts(&wal.0.lock().unwrap());
        assert_eq!(counts.len(), 12, "{}", t.name);
        assert!(
            counts.values().all(|c| *c == 1),
            "{}: each receipt once: {counts:?}",
            t.name
        );
        other.close().await;
    }
}
