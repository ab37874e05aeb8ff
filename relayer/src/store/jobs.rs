//! Jobs and their state machine, and the sealed inputs attached to them.

use std::fmt;

use cocoon_sdk::clock::unix_now_i64;
use cocoon_sdk::relay::JobRef;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, corrupt, from_db, hash32, money, to_db};
use crate::error::{Error, Result};

/// Where a job stands.
///
/// ```text
/// opened → input_received → dispatched → answered → receipt_queued → submitted → settled
///                 ↑              │                                        └─────→ failed (Escrow refused)
///                 └── requeue ───┘            (any non-final state) → expired | failed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Seen on-chain (JobOpened); waiting for the client's sealed input.
    Opened,
    /// Sealed input stored; waiting for a worker.
    InputReceived,
    /// Handed to a worker.
    Dispatched,
    /// The worker answered with a signed receipt.
    Answered,
    /// The receipt waits in the outbox for a SubmitReceipts batch.
    ReceiptQueued,
    /// Its SubmitReceipts landed on-chain; waiting for the Escrow's verdict on the settlement.
    Submitted,
    /// The Escrow accepted the settlement on-chain.
    Settled,
    /// The deadline passed unsettled; the client is refunded on-chain.
    Expired,
    /// Given up, with a reason.
    Failed,
}

impl JobState {
    /// Every state, in flow order.
    pub const ALL: [JobState; 9] = [
        JobState::Opened,
        JobState::InputReceived,
        JobState::Dispatched,
        JobState::Answered,
        JobState::ReceiptQueued,
        JobState::Submitted,
        JobState::Settled,
        JobState::Expired,
        JobState::Failed,
    ];

    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Opened => "opened",
            JobState::InputReceived => "input_received",
            JobState::Dispatched => "dispatched",
            JobState::Answered => "answered",
            JobState::ReceiptQueued => "receipt_queued",
            JobState::Submitted => "submitted",
            JobState::Settled => "settled",
            JobState::Expired => "expired",
            JobState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No transition leaves a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Settled | JobState::Expired | JobState::Failed
        )
    }

    /// States from which `self` may be entered.
    pub fn allowed_from(self) -> &'static [JobState] {
        use JobState::*;
        match self {
            Opened => &[],
            // Requeue: the attempt failed and the job waits for the next candidate.
            InputReceived => &[Opened, Dispatched],
            // Dispatched → Dispatched: straight on to the next candidate.
            Dispatched => &[InputReceived, Dispatched],
            Answered => &[Dispatched],
            ReceiptQueued => &[Answered],
            Submitted => &[ReceiptQueued],
            // A settlement may be seen on-chain at any point (the worker may post it itself).
            Settled | Failed => &[
                Opened,
                InputReceived,
                Dispatched,
                Answered,
                ReceiptQueued,
                Submitted,
            ],
            // A submitted job waits for the Escrow's verdict (the Escrow accepts a settlement
            // only before deadline + grace, so the verdict exists by then): never expired
            // over it.
            Expired => &[Opened, InputReceived, Dispatched, Answered, ReceiptQueued],
        }
    }

    /// Whether the state machine allows `self → to`.
    pub fn can_move_to(self, to: JobState) -> bool {
        to.allowed_from().contains(&self)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as announced on-chain by its Escrow (`job_opened`, contracts/schema.tlb).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedJob {
    /// The job.
    pub job: JobRef,
    /// Owner of the Escrow (lets anyone recompute and so authenticate the Escrow address).
    pub escrow_owner: String,
    /// Model asked for.
    pub model_id: u32,
    /// Most the client pays, nanoTON.
    pub max_cost: u64,
    /// Unix deadline.
    pub deadline: u32,
    /// sha256 of the sealed input.
    pub input_commitment: [u8; 32],
    /// The only worker allowed to settle it, when the client named one.
    pub route_worker: Option<String>,
    /// Logical time of the transaction that announced it.
    pub opened_lt: u64,
}

/// A job with its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// What the chain said.
    pub opened: OpenedJob,
    /// Where it stands.
    pub state: JobState,
    /// Why, when that needs saying.
    pub reason: Option<String>,
    /// Worker now (or last) working on it.
    pub worker: Option<String>,
    /// Dispatch attempts so far.
    pub attempts: u32,
    /// Unix time of the last change.
    pub updated_at: i64,
}

/// A client's sealed input (ciphertext) and the workers it is sealed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInput {
    /// The HPKE ciphertext, exactly as submitted.
    pub ciphertext: Vec<u8>,
    /// Worker addresses it is sealed to, most preferred first.
    pub candidates: Vec<String>,
    /// The client's reader key (ed25519, lowercase hex), when it named one: the key whose
    /// read proofs may see the job.
    pub reader: Option<String>,
}

const JOB_COLUMNS: &str = "escrow, job_id, escrow_owner, model_id, max_cost, deadline, input_commitment, \
     route_worker, opened_lt, state, reason, worker, attempts, updated_at";

/// Inserts a job seen on-chain unless it is known; shared by [`Store::insert_opened`] and the
/// watcher's transactional [`Store::apply_transaction`].
pub(super) const INSERT_OPENED: &str = "INSERT INTO jobs (escrow, job_id, escrow_owner, model_id, max_cost, deadline, \
     input_commitment, route_worker, opened_lt, state, attempts, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $11) ON CONFLICT DO NOTHING";

/// Binds the parameters of [`INSERT_OPENED`].
pub(super) fn bind_opened<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    job: &OpenedJob,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(job.job.escrow.clone())
        .bind(to_db(job.job.job_id))
        .bind(job.escrow_owner.clone())
        .bind(i64::from(job.model_id))
        .bind(job.max_cost.to_string())
        .bind(i64::from(job.deadline))
        .bind(job.input_commitment.to_vec())
        .bind(job.route_worker.clone())
        .bind(to_db(job.opened_lt))
        .bind(JobState::Opened.as_str())
        .bind(now)
}

fn job_from_row(row: &AnyRow) -> Result<JobRecord> {
    let state: String = row.try_get("state")?;
    let model_id: i64 = row.try_get("model_id")?;
    let deadline: i64 = row.try_get("deadline")?;
    let attempts: i64 = row.try_get("attempts")?;
    let max_cost: String = row.try_get("max_cost")?;
    Ok(JobRecord {
        opened: OpenedJob {
            job: JobRef::new(
                row.try_get::<String, _>("escrow")?,
                from_db(row.try_get("job_id")?),
            ),
            escrow_owner: row.try_get("escrow_owner")?,
            model_id: u32::try_from(model_id)
                .map_err(|_| corrupt("jobs", "model_id", model_id.to_string()))?,
            max_cost: money("jobs", "max_cost", &max_cost)?,
            deadline: u32::try_from(deadline)
                .map_err(|_| corrupt("jobs", "deadline", deadline.to_string()))?,
            input_commitment: hash32("jobs", "input_commitment", row.try_get("input_commitment")?)?,
            route_worker: row.try_get("route_worker")?,
            opened_lt: from_db(row.try_get("opened_lt")?),
        },
        state: JobState::parse(&state).ok_or_else(|| corrupt("jobs", "state", state.clone()))?,
        reason: row.try_get("reason")?,
        worker: row.try_get("worker")?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt("jobs", "attempts", attempts.to_string()))?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Records a job seen on-chain. Idempotent: returns `false` when it was already known (a
    /// replayed transaction never resets a job).
    pub async fn insert_opened(&self, job: &OpenedJob) -> Result<bool> {
        let done = bind_opened(sqlx::query(INSERT_OPENED), job, unix_now_i64())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The job, if the relayer has seen it.
    pub async fn job(&self, job: &JobRef) -> Result<Option<JobRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE escrow = $1 AND job_id = $2"
        ))
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Jobs in `state`, oldest deadline first, at most `limit`.
    pub async fn jobs_in_state(&self, state: JobState, limit: u32) -> Result<Vec<JobRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY deadline, escrow, job_id LIMIT $2"
        ))
        .bind(state.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Every job waiting for a worker (input received, deadline after `now`) with the workers
    /// that may take it: what the dispatcher's queue is rebuilt from.
    pub async fn waiting_jobs(&self, now: i64) -> Result<Vec<crate::queue::Waiting>> {
        let rows = sqlx::query(
            "SELECT j.escrow, j.job_id, j.deadline, j.model_id, j.route_worker, s.candidates \
             FROM jobs j JOIN sealed_inputs s ON s.escrow = j.escrow AND s.job_id = j.job_id \
             WHERE j.state = $1 AND j.deadline > $2",
        )
        .bind(JobState::InputReceived.as_str())
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let deadline: i64 = row.try_get("deadline")?;
                let model_id: i64 = row.try_get("model_id")?;
                let route: Option<String> = row.try_get("route_worker")?;
                let candidates: String = row.try_get("candidates")?;
                Ok(crate::queue::Waiting {
                    job: JobRef::new(
                        row.try_get::<String, _>("escrow")?,
                        from_db(row.try_get("job_id")?),
                    ),
                    deadline: u32::try_from(deadline)
                        .map_err(|_| corrupt("jobs", "deadline", deadline.to_string()))?,
                    model_id: u32::try_from(model_id)
                        .map_err(|_| corrupt("jobs", "model_id", model_id.to_string()))?,
                    candidates: match route {
                        Some(w) => vec![w],
                        None => serde_json::from_str(&candidates)
                            .map_err(|e| corrupt("sealed_inputs", "candidates", e.to_string()))?,
                    },
                })
            })
            .collect()
    }

    /// Every job (or every job in `state`), oldest opened first, at most `limit`: the relayer's
    /// books for reconciliation.
    pub async fn list_jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<JobRecord>> {
        let rows = match state {
            Some(st) => {
                sqlx::query(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY created_at, escrow, job_id LIMIT $2"
                ))
                .bind(st.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at, escrow, job_id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(job_from_row).collect()
    }

    /// How many jobs are in each state (states with none are listed with 0).
    pub async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        let mut out: Vec<(JobState, u64)> = JobState::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            let st =
                JobState::parse(&state).ok_or_else(|| corrupt("jobs", "state", state.clone()))?;
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == st) {
                slot.1 = n.max(0) as u64;
            }
        }
        Ok(out)
    }

    /// Moves a job to `to` if the state machine allows it from its current state; `reason`
    /// replaces the stored one when given.
    pub async fn transition(
        &self,
        job: &JobRef,
        to: JobState,
        reason: Option<&str>,
    ) -> Result<JobRecord> {
        let from = to.allowed_from();
        if from.is_empty() {
            let record = self.job(job).await?.ok_or_else(|| Error::JobNotFound {
                job: job.to_string(),
            })?;
            return Err(Error::InvalidTransition {
                job: job.to_string(),
                from: record.state,
                to,
            });
        }
        let in_list: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 6)).collect();
        let sql = format!(
            "UPDATE jobs SET state = $1, reason = COALESCE($2, reason), updated_at = $3 \
             WHERE escrow = $4 AND job_id = $5 AND state IN ({})",
            in_list.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(reason.map(str::to_string))
            .bind(unix_now_i64())
            .bind(&job.escrow)
            .bind(to_db(job.job_id));
        for st in from {
            q = q.bind(st.as_str());
        }
        let done = q.execute(self.pool()).await?;
        let record = self.job(job).await?.ok_or_else(|| Error::JobNotFound {
            job: job.to_string(),
        })?;
        if done.rows_affected() == 1 {
            Ok(record)
        } else {
            Err(Error::InvalidTransition {
                job: job.to_string(),
                from: record.state,
                to,
            })
        }
    }

    /// Records that attempt `attempt` of a job goes to `worker` (input_received or dispatched →
    /// dispatched).
    pub async fn mark_dispatched(&self, job: &JobRef, worker: &str, attempt: u32) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, worker = $2, attempts = $3, reason = NULL, updated_at = $4 \
             WHERE escrow = $5 AND job_id = $6 AND state IN ($7, $8)",
        )
        .bind(JobState::Dispatched.as_str())
        .bind(worker)
        .bind(i64::from(attempt))
        .bind(unix_now_i64())
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(JobState::InputReceived.as_str())
        .bind(JobState::Dispatched.as_str())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let record = self.job(job).await?.ok_or_else(|| Error::JobNotFound {
            job: job.to_string(),
        })?;
        Err(Error::InvalidTransition {
            job: job.to_string(),
            from: record.state,
            to: JobState::Dispatched,
        })
    }

    /// Claims `job` for dispatch attempt `attempt` to `worker`: a row-level compare-and-set that
    /// succeeds only if the job is still in `from` (input_received for a first attempt,
    /// dispatched for this dispatcher's failover) with `attempt - 1` attempts. Two relayer
    /// instances racing for one job cannot both win. The attempt holds the job until
    /// `lease_until` (renewed while it streams); returns whether the claim was won.
    pub async fn claim_dispatch(
        &self,
        job: &JobRef,
        worker: &str,
        attempt: u32,
        from: JobState,
        lease_until: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, worker = $2, attempts = $3, reason = NULL, updated_at = $4, lease_until = $5 \
             WHERE escrow = $6 AND job_id = $7 AND state = $8 AND attempts = $9",
        )
        .bind(JobState::Dispatched.as_str())
        .bind(worker)
        .bind(i64::from(attempt))
        .bind(unix_now_i64())
        .bind(lease_until)
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(from.as_str())
        .bind(i64::from(attempt.saturating_sub(1)))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Parks a job to wait for a worker, with `reason`. `held` is the attempt this dispatcher
    /// holds (it failed over and ran out of candidates): only that attempt is put back. With
    /// none, the job must still be waiting, untouched. Returns whether it parked: `false` when
    /// another attempt (another relayer instance, a later start here) has claimed the job
    /// meanwhile, which must then be left alone.
    pub async fn park(&self, job: &JobRef, held: Option<u32>, reason: &str) -> Result<bool> {
        let (from, attempts_clause) = match held {
            Some(_) => (JobState::Dispatched, " AND attempts = $7"),
            None => (JobState::InputReceived, ""),
        };
        let sql = format!(
            "UPDATE jobs SET state = $1, reason = $2, updated_at = $3 \
             WHERE escrow = $4 AND job_id = $5 AND state = $6{attempts_clause}"
        );
        let mut q = sqlx::query(&sql)
            .bind(JobState::InputReceived.as_str())
            .bind(reason)
            .bind(unix_now_i64())
            .bind(&job.escrow)
            .bind(to_db(job.job_id))
            .bind(from.as_str());
        if let Some(attempt) = held {
            q = q.bind(i64::from(attempt));
        }
        Ok(q.execute(self.pool()).await?.rows_affected() == 1)
    }

    /// Extends the lease of attempt `attempt` (only while that attempt still holds the job).
    pub async fn renew_lease(&self, job: &JobRef, attempt: u32, lease_until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $1 WHERE escrow = $2 AND job_id = $3 AND state = $4 AND attempts = $5",
        )
        .bind(lease_until)
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(JobState::Dispatched.as_str())
        .bind(i64::from(attempt))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts back to waiting every dispatched job whose lease ran out before `now` (its relayer
    /// instance stopped mid-attempt) and returns them.
    pub async fn requeue_expired_leases(&self, now: i64, reason: &str) -> Result<Vec<JobRef>> {
        let rows =
            sqlx::query("SELECT escrow, job_id FROM jobs WHERE state = $1 AND lease_until < $2")
                .bind(JobState::Dispatched.as_str())
                .bind(now)
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::new();
        for row in rows {
            let job = JobRef::new(
                row.try_get::<String, _>("escrow")?,
                from_db(row.try_get("job_id")?),
            );
            let done = sqlx::query(
                "UPDATE jobs SET state = $1, reason = $2, updated_at = $3 \
                 WHERE escrow = $4 AND job_id = $5 AND state = $6 AND lease_until < $7",
            )
            .bind(JobState::InputReceived.as_str())
            .bind(reason.to_string())
            .bind(unix_now_i64())
            .bind(&job.escrow)
            .bind(to_db(job.job_id))
            .bind(JobState::Dispatched.as_str())
            .bind(now)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Stores the client's sealed input and moves the job from opened to input_received, in one
    /// transaction. Fails with [`Error::JobNotFound`], [`Error::AlreadySubmitted`] or
    /// [`Error::NotOpen`] and then stores nothing.
    pub async fn submit_input(&self, job: &JobRef, input: &SealedInput) -> Result<JobRecord> {
        let mut tx = self.pool().begin().await?;
        let now = unix_now_i64();
        let moved = sqlx::query(
            "UPDATE jobs SET state = $1, updated_at = $2 WHERE escrow = $3 AND job_id = $4 AND state = $5",
        )
        .bind(JobState::InputReceived.as_str())
        .bind(now)
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(JobState::Opened.as_str())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            let has_input = self.sealed_input(job).await?.is_some();
            return match self.job(job).await? {
                None => Err(Error::JobNotFound {
                    job: job.to_string(),
                }),
                Some(_) if has_input => Err(Error::AlreadySubmitted {
                    job: job.to_string(),
                }),
                Some(r) => Err(Error::NotOpen {
                    job: job.to_string(),
                    state: r.state,
                }),
            };
        }
        let candidates = serde_json::to_string(&input.candidates).unwrap_or_else(|_| "[]".into());
        let inserted = sqlx::query(
            "INSERT INTO sealed_inputs (escrow, job_id, ciphertext, candidates, received_at, reader_key) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .bind(input.ciphertext.clone())
        .bind(candidates)
        .bind(now)
        .bind(input.reader.clone())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(Error::AlreadySubmitted {
                job: job.to_string(),
            });
        }
        tx.commit().await?;
        self.job(job).await?.ok_or_else(|| Error::JobNotFound {
            job: job.to_string(),
        })
    }

    /// The sealed input of a job, if submitted.
    pub async fn sealed_input(&self, job: &JobRef) -> Result<Option<SealedInput>> {
        let row = sqlx::query(
            "SELECT ciphertext, candidates, reader_key FROM sealed_inputs WHERE escrow = $1 AND job_id = $2",
        )
        .bind(&job.escrow)
        .bind(to_db(job.job_id))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let candidates: String = row.try_get("candidates")?;
        Ok(Some(SealedInput {
            ciphertext: row.try_get("ciphertext")?,
            candidates: serde_json::from_str(&candidates)
                .map_err(|e| corrupt("sealed_inputs", "candidates", e.to_string()))?,
            reader: row.try_get("reader_key")?,
        }))
    }

    /// The reader key the client named with the job's sealed input: `None` when no input was
    /// submitted or it named none (then only the operator may read the job).
    pub async fn reader_key(&self, job: &JobRef) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT reader_key FROM sealed_inputs WHERE escrow = $1 AND job_id = $2")
                .bind(&job.escrow)
                .bind(to_db(job.job_id))
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some(row) => row.try_get("reader_key")?,
            None => None,
        })
    }

    /// Marks every unfinished job whose deadline + `grace` lies before `now` as expired and
    /// returns them. The Escrow refunds such jobs on-chain; this keeps the books in step.
    pub async fn expire_due(&self, now: i64, grace: u32) -> Result<Vec<JobRef>> {
        let cutoff = now - i64::from(grace);
        let rows = sqlx::query(
            "SELECT escrow, job_id FROM jobs WHERE deadline < $1 AND state NOT IN ($2, $3, $4, $5)",
        )
        .bind(cutoff)
        .bind(JobState::Submitted.as_str())
        .bind(JobState::Settled.as_str())
        .bind(JobState::Expired.as_str())
        .bind(JobState::Failed.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in rows {
            let job = JobRef::new(
                row.try_get::<String, _>("escrow")?,
                from_db(row.try_get("job_id")?),
            );
            match self
                .transition(&job, JobState::Expired, Some("deadline passed unsettled"))
                .await
            {
                Ok(_) => expired.push(job),
                // Settled or finished meanwhile (another instance, the submitter): nothing to do.
                Err(Error::InvalidTransition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }
}
