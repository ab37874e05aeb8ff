//! Store behaviour on SQLite, and on PostgreSQL when `COCOON_TEST_PG_URL` is set.

mod common;

use cocoon_relayer::Error;
use cocoon_relayer::store::{Cursor, JobState, OutboxStatus, SealedInput, Store};
use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::JobRef;
use common::{opened, stores, worker_addr};

fn input(candidates: &[String]) -> SealedInput {
    SealedInput {
        ciphertext: vec![0xc1, 0xc2, 0xc3],
        candidates: candidates.to_vec(),
        reader: Some("ab".repeat(32)),
    }
}

#[tokio::test]
async fn job_lifecycle_to_settled() {
    for t in stores().await {
        let s = &t.store;
        let w = worker_addr(1);
        let job = opened(1, 7, &[0xc1, 0xc2, 0xc3]);
        assert!(s.insert_opened(&job).await.unwrap(), "{}", t.name);
        assert!(
            !s.insert_opened(&job).await.unwrap(),
            "{}: replay inserts nothing",
            t.name
        );
        let r = s.job(&job.job).await.unwrap().unwrap();
        assert_eq!((r.state, &r.opened), (JobState::Opened, &job), "{}", t.name);

        let r = s
            .submit_input(&job.job, &input(std::slice::from_ref(&w)))
            .await
            .unwrap();
        assert_eq!(r.state, JobState::InputReceived);
        assert_eq!(
            s.sealed_input(&job.job).await.unwrap().unwrap(),
            input(std::slice::from_ref(&w))
        );
        assert_eq!(
            s.reader_key(&job.job).await.unwrap(),
            Some("ab".repeat(32)),
            "{}",
            t.name
        );

        s.mark_dispatched(&job.job, &w, 1).await.unwrap();
        let r = s.job(&job.job).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.worker.as_deref(), r.attempts),
            (JobState::Dispatched, Some(w.as_str()), 1)
        );

        // A receipt from a worker the job was not dispatched to is refused.
        let err = s
            .record_receipt(&job.job, &worker_addr(2), b"boc", 10)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidTransition {
                    from: JobState::Dispatched,
                    ..
                }
            ),
            "{}: {err}",
            t.name
        );
        s.record_receipt(&job.job, &w, b"boc", 10).await.unwrap();
        assert_eq!(
            s.job(&job.job).await.unwrap().unwrap().state,
            JobState::Answered
        );
        assert_eq!(
            s.workers_with_unbatched_receipts().await.unwrap(),
            vec![w.clone()]
        );

        let (entry, taken) = s
            .create_batch(&w, std::slice::from_ref(&job.job))
            .await
            .unwrap();
        assert_eq!((entry.status, taken.len()), (OutboxStatus::Pending, 1));
        assert_eq!(
            s.job(&job.job).await.unwrap().unwrap().state,
            JobState::ReceiptQueued
        );
        assert!(
            s.unbatched_receipts(&w, 10).await.unwrap().is_empty(),
            "{}: batched once",
            t.name
        );
        let (_, again) = s
            .create_batch(&w, std::slice::from_ref(&job.job))
            .await
            .unwrap();
        assert!(
            again.is_empty(),
            "{}: a receipt joins one batch only",
            t.name
        );

        s.mark_sent(entry.id, 42, b"ext", &[7; 32]).await.unwrap();
        let e = s.outbox_entry(entry.id).await.unwrap().unwrap();
        assert_eq!(
            (e.status, e.seqno, e.attempts),
            (OutboxStatus::Sent, Some(42), 1)
        );
        assert_eq!(s.batch_receipts(entry.id).await.unwrap().len(), 1);
        s.mark_confirmed(entry.id, 99, &[8; 32]).await.unwrap();
        let r = s.job(&job.job).await.unwrap().unwrap();
        assert_eq!(
            r.state,
            JobState::Submitted,
            "{}: landed, not yet settled",
            t.name
        );
        let waiting = s.batches_awaiting_verdict(10).await.unwrap();
        assert_eq!(
            waiting.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![entry.id],
            "{}",
            t.name
        );
        // A submitted job is never expired over: the Escrow's verdict decides it.
        assert!(
            s.expire_due(i64::MAX, 0).await.unwrap().is_empty(),
            "{}",
            t.name
        );
        assert!(s.settle(&job.job, true, "accepted at lt 5").await.unwrap());
        assert!(
            !s.settle(&job.job, false, "again").await.unwrap(),
            "{}: decided once",
            t.name
        );
        let r = s.job(&job.job).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.reason.as_deref()),
            (JobState::Settled, Some("accepted at lt 5")),
            "{}",
            t.name
        );
        assert!(
            s.batches_awaiting_verdict(10).await.unwrap().is_empty(),
            "{}",
            t.name
        );
        // Confirmed is final: it can be neither re-sent nor failed.
        assert!(matches!(
            s.mark_sent(entry.id, 43, b"x", &[0; 32]).await,
            Err(Error::OutboxClosed { .. })
        ));
        assert!(matches!(
            s.mark_failed(entry.id, "x").await,
            Err(Error::OutboxClosed { .. })
        ));
        assert!(matches!(
            s.mark_confirmed(entry.id, 1, &[0; 32]).await,
            Err(Error::OutboxClosed { .. })
        ));

        let counts = s.count_by_state().await.unwrap();
        assert!(
            counts.contains(&(JobState::Settled, 1)) && counts.contains(&(JobState::Opened, 0)),
            "{counts:?}"
        );
    }
}

#[tokio::test]
async fn submit_input_errors_store_nothing() {
    for t in stores().await {
        let s = &t.store;
        let unknown = JobRef::new(common::escrow(9), 1);
        assert!(
            matches!(
                s.submit_input(&unknown, &input(&[])).await,
                Err(Error::JobNotFound { .. })
            ),
            "{}",
            t.name
        );
        assert!(s.sealed_input(&unknown).await.unwrap().is_none());

        let job = opened(1, 1, b"x");
        s.insert_opened(&job).await.unwrap();
        s.submit_input(&job.job, &input(&[])).await.unwrap();
        let second = SealedInput {
            ciphertext: vec![9],
            candidates: vec![],
            reader: None,
        };
        assert!(
            matches!(
                s.submit_input(&job.job, &second).await,
                Err(Error::AlreadySubmitted { .. })
            ),
            "{}",
            t.name
        );
        assert_eq!(
            s.sealed_input(&job.job).await.unwrap().unwrap().ciphertext,
            vec![0xc1, 0xc2, 0xc3]
        );

        let expired = opened(1, 2, b"y");
        s.insert_opened(&expired).await.unwrap();
        s.transition(&expired.job, JobState::Expired, Some("test"))
            .await
            .unwrap();
        let err = s.submit_input(&expired.job, &input(&[])).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotOpen {
                    state: JobState::Expired,
                    ..
                }
            ),
            "{}: {err}",
            t.name
        );
        assert!(s.sealed_input(&expired.job).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn concurrent_submissions_have_one_winner() {
    for t in stores().await {
        let s = t.store.clone();
        let job = opened(3, 5, b"z");
        s.insert_opened(&job).await.unwrap();
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let s = s.clone();
                let j = job.job.clone();
                tokio::spawn(async move {
                    s.submit_input(
                        &j,
                        &SealedInput {
                            ciphertext: vec![i],
                            candidates: vec![],
                            reader: None,
                        },
                    )
                    .await
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(Error::AlreadySubmitted { .. } | Error::NotOpen { .. }) => {}
                // SQLite may refuse a writer outright under contention; it must store nothing.
                Err(Error::Store(_)) if t.name == "sqlite" => {}
                Err(e) => panic!("{}: {e}", t.name),
            }
        }
        assert_eq!(ok, 1, "{}", t.name);
    }
}

/// A dispatcher that read a job as waiting, then found no candidate of its own, must not put
/// back a job another instance claimed meanwhile (a third run would then claim it again and the
/// job would be dispatched twice); it puts back only the attempt it holds.
#[tokio::test]
async fn parking_never_takes_back_a_job_claimed_elsewhere() {
    for t in stores().await {
        let s = &t.store;
        let job = opened(3, 9, b"p");
        s.insert_opened(&job).await.unwrap();
        s.submit_input(&job.job, &input(&[worker_addr(1)]))
            .await
            .unwrap();
        let lease = unix_now_i64() + 60;
        assert!(
            s.claim_dispatch(&job.job, &worker_addr(1), 1, JobState::InputReceived, lease)
                .await
                .unwrap()
        );
        // The stale run (it held no attempt) and a run holding another attempt: both refused.
        assert!(
            !s.park(&job.job, None, "waiting").await.unwrap(),
            "{}",
            t.name
        );
        assert!(
            !s.park(&job.job, Some(2), "waiting").await.unwrap(),
            "{}",
            t.name
        );
        let r = s.job(&job.job).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.attempts),
            (JobState::Dispatched, 1),
            "{}",
            t.name
        );
        // The holder of attempt 1 failed over and ran out of candidates: it parks the job.
        assert!(
            s.park(&job.job, Some(1), "waiting").await.unwrap(),
            "{}",
            t.name
        );
        let r = s.job(&job.job).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.attempts, r.reason.as_deref()),
            (JobState::InputReceived, 1, Some("waiting")),
            "{}",
            t.name
        );
        // Waiting, it may be parked again (a new reason) by a run that holds nothing.
        assert!(
            s.park(&job.job, None, "still waiting").await.unwrap(),
            "{}",
            t.name
        );
    }
}

#[tokio::test]
async fn state_machine_refuses_illegal_moves() {
    for t in stores().await {
        let s = &t.store;
        let job = opened(1, 3, b"x");
        s.insert_opened(&job).await.unwrap();
        for to in [
            JobState::Opened,
            JobState::Dispatched,
            JobState::Answered,
            JobState::ReceiptQueued,
        ] {
            let err = s.transition(&job.job, to, None).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidTransition {
                        from: JobState::Opened,
                        ..
                    }
                ),
                "{}: {to}: {err}",
                t.name
            );
        }
        assert!(matches!(
            s.mark_dispatched(&job.job, "w", 1).await,
            Err(Error::InvalidTransition { .. })
        ));
        s.transition(
            &job.job,
            JobState::Failed,
            Some("no worker serves the model"),
        )
        .await
        .unwrap();
        let r = s.job(&job.job).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.reason.as_deref()),
            (JobState::Failed, Some("no worker serves the model"))
        );
        for to in JobState::ALL {
            assert!(
                s.transition(&job.job, to, None).await.is_err(),
                "{}: failed is final ({to})",
                t.name
            );
        }
        let missing = JobRef::new(common::escrow(8), 8);
        assert!(matches!(
            s.transition(&missing, JobState::Failed, None).await,
            Err(Error::JobNotFound { .. })
        ));
    }
}

#[test]
fn state_machine_table() {
    use JobState::*;
    assert!(Opened.can_move_to(InputReceived) && InputReceived.can_move_to(Dispatched));
    assert!(Dispatched.can_move_to(Dispatched) && Dispatched.can_move_to(InputReceived));
    assert!(
        Dispatched.can_move_to(Answered)
            && Answered.can_move_to(ReceiptQueued)
            && ReceiptQueued.can_move_to(Submitted)
            && Submitted.can_move_to(Settled)
            && Submitted.can_move_to(Failed)
    );
    assert!(
        !Submitted.can_move_to(Expired),
        "the Escrow's verdict decides a submitted job"
    );
    assert!(!Opened.can_move_to(Answered) && !Answered.can_move_to(Dispatched));
    for fin in [Settled, Expired, Failed] {
        assert!(fin.is_final());
        assert!(
            JobState::ALL.iter().all(|to| !fin.can_move_to(*to)),
            "{fin} is final"
        );
    }
    for st in JobState::ALL {
        assert_eq!(JobState::parse(st.as_str()), Some(st));
    }
    assert_eq!(JobState::parse("bogus"), None);
}

#[tokio::test]
async fn expiry_marks_only_unfinished_jobs_past_deadline() {
    for t in stores().await {
        let s = &t.store;
        let mut late = opened(1, 1, b"a");
        late.deadline = (unix_now_i64() - 100) as u32;
        let fresh = opened(1, 2, b"b");
        let mut settled = opened(1, 3, b"c");
        settled.deadline = late.deadline;
        for j in [&late, &fresh, &settled] {
            s.insert_opened(j).await.unwrap();
        }
        s.transition(&settled.job, JobState::Settled, None)
            .await
            .unwrap();
        // Inside the grace period nothing expires.
        assert!(
            s.expire_due(unix_now_i64(), 200).await.unwrap().is_empty(),
            "{}",
            t.name
        );
        assert_eq!(
            s.expire_due(unix_now_i64(), 50).await.unwrap(),
            vec![late.job.clone()],
            "{}",
            t.name
        );
        assert_eq!(
            s.job(&late.job).await.unwrap().unwrap().state,
            JobState::Expired
        );
        assert_eq!(
            s.job(&settled.job).await.unwrap().unwrap().state,
            JobState::Settled
        );
        assert!(
            s.expire_due(unix_now_i64(), 50).await.unwrap().is_empty(),
            "{}: idempotent",
            t.name
        );
    }
}

#[tokio::test]
async fn failed_batch_releases_receipts_for_a_new_one() {
    for t in stores().await {
        let s = &t.store;
        let w = worker_addr(1);
        let mut jobs = Vec::new();
        for id in 1..=3 {
            let j = opened(2, id, b"q");
            s.insert_opened(&j).await.unwrap();
            s.submit_input(&j.job, &input(std::slice::from_ref(&w)))
                .await
                .unwrap();
            s.mark_dispatched(&j.job, &w, 1).await.unwrap();
            s.record_receipt(&j.job, &w, &[id as u8], id).await.unwrap();
            jobs.push(j.job);
        }
        let (entry, taken) = s.create_batch(&w, &jobs).await.unwrap();
        assert_eq!(taken, jobs);
        s.mark_failed(entry.id, "seqno consumed").await.unwrap();
        assert_eq!(
            s.outbox_entry(entry.id).await.unwrap().unwrap().status,
            OutboxStatus::Failed
        );
        assert_eq!(
            s.unbatched_receipts(&w, 10).await.unwrap().len(),
            3,
            "{}",
            t.name
        );
        assert!(jobs.iter().all(|_| true));
        for j in &jobs {
            assert_eq!(s.job(j).await.unwrap().unwrap().state, JobState::Answered);
        }
        let (entry2, taken2) = s.create_batch(&w, &jobs).await.unwrap();
        assert_eq!(taken2.len(), 3);
        assert_ne!(entry.id, entry2.id);
        assert_eq!(
            s.outbox_in_status(OutboxStatus::Pending)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn watcher_cursor_is_atomic_with_the_jobs_and_idempotent() {
    for t in stores().await {
        let s = &t.store;
        let addr = worker_addr(7);
        assert_eq!(s.cursor(&addr).await.unwrap(), None);
        let a = opened(4, 1, b"a");
        let b = opened(4, u64::MAX, b"b");
        let c1 = Cursor {
            lt: 10,
            hash: [1; 32],
        };
        assert_eq!(
            s.apply_transaction(&addr, c1, &[a.clone(), b.clone()])
                .await
                .unwrap(),
            2
        );
        assert_eq!(s.cursor(&addr).await.unwrap(), Some(c1));
        // Replaying the same transaction after a crash inserts nothing.
        assert_eq!(
            s.apply_transaction(&addr, c1, &[a.clone(), b.clone()])
                .await
                .unwrap(),
            0
        );
        let c2 = Cursor {
            lt: u64::MAX - 1,
            hash: [2; 32],
        };
        assert_eq!(s.apply_transaction(&addr, c2, &[]).await.unwrap(), 0);
        assert_eq!(
            s.cursor(&addr).await.unwrap(),
            Some(c2),
            "{}: full u64 range",
            t.name
        );
        assert_eq!(
            s.job(&b.job).await.unwrap().unwrap().opened,
            b,
            "{}: u64::MAX job id",
            t.name
        );
    }
}

#[tokio::test]
async fn sqlite_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let job = opened(1, 1, b"x");
    {
        let s = Store::connect(&url, 2).await.unwrap();
        s.insert_opened(&job).await.unwrap();
        s.apply_transaction(
            "0:00",
            Cursor {
                lt: 5,
                hash: [5; 32],
            },
            &[],
        )
        .await
        .unwrap();
        s.close().await;
    }
    let s = Store::connect(&url, 2).await.unwrap();
    assert_eq!(
        s.job(&job.job).await.unwrap().unwrap().state,
        JobState::Opened
    );
    assert_eq!(s.cursor("0:00").await.unwrap().unwrap().lt, 5);
}

#[tokio::test]
async fn bad_store_urls_are_typed_errors() {
    assert!(matches!(
        Store::connect("mysql://x/y", 1).await,
        Err(Error::UnsupportedStore { .. })
    ));
    let err = Store::connect("sqlite:///nonexistent-dir/x/y.db", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err}");
}
