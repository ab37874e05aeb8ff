//! Opening a job and following it: candidates, max cost, sealing, OpenJob, the sealed input to
//! the relayer, then the event stream opened chunk by chunk and the receipt checked.

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use sha2::Digest as _;
use tracing::{debug, info, warn};

use super::Client;
use super::cost::{max_cost, token_bound};
use super::error::{ClientError, Result};
use super::relayer::{EventStream, RelayerApi};
use super::workers::VerifiedWorker;
use crate::attest::EvidenceKind;
use crate::chain::ChainApi;
use crate::contracts::{EscrowClient, OpenJobArgs};
use crate::job::{FinishReason, JobError, JobOutput, JobRequest, ModelKind, ModelSpec};
use crate::receipt::{ReceiptError, ReceiptExpectation, SignedReceipt, check_receipt};
use crate::relay::JobRef;
use crate::relay::client::StreamEvent;
use crate::seal::{ClientSeal, JobContext, MAX_RECIPIENTS, ResponseOpener, seal_input};
use crate::tlb::{TlbType, TonAddress};

/// Times a dropped job stream is opened again before the job is given up.
pub const MAX_RECONNECTS: u32 = 5;
/// First pause before reopening a dropped stream (doubled each time).
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// Per-job choices; every field is optional and `Default` leaves each to the client's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// Most the job may cost, nanoTON. Default: the job's token bound at the prices of the most
    /// expensive candidate (see [`super::token_bound`]).
    pub max_cost: Option<u128>,
    /// Only this worker may serve (and settle) the job; OpenJob names it.
    pub worker: Option<TonAddress>,
    /// Workers to seal the input to (default: the config's).
    pub candidates: Option<usize>,
    /// Weakest attestation accepted: `SevSnp` or `Tdx` refuses Simulated workers.
    pub min_attestation: Option<EvidenceKind>,
    /// Highest price per input token accepted, nanoTON.
    pub max_price_in: Option<u128>,
    /// Highest price per output token accepted, nanoTON.
    pub max_price_out: Option<u128>,
    /// Workers to put first, in this order, when they qualify.
    pub preferred_workers: Vec<TonAddress>,
    /// Job deadline (default: the config's).
    pub deadline: Option<Duration>,
}

/// Tokens billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Usage {
    /// Input tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub completion_tokens: u32,
}

/// A finished job whose receipt checked.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    /// The job (Escrow, job id).
    pub job: JobRef,
    /// The model that served it.
    pub model: ModelSpec,
    /// Generated text (empty for embeddings).
    pub text: String,
    /// Embedding vectors, for embedding jobs.
    pub embeddings: Option<Vec<Vec<f32>>>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Tokens billed (equal to the receipt's).
    pub usage: Usage,
    /// nanoTON charged by the receipt.
    pub cost: u128,
    /// The Worker contract that served it.
    pub worker: TonAddress,
    /// Its attestation kind ([`EvidenceKind::Simulated`] = UNATTESTED).
    pub attestation_kind: EvidenceKind,
    /// Its GPU evidence, verified and bound to its keys (none: it proved no GPU).
    pub gpu: Option<crate::attest::VerifiedGpu>,
    /// The worker's signed receipt.
    pub receipt: SignedReceipt,
    /// Representation hash of the receipt body (what the Escrow's settlement log carries).
    pub receipt_hash: [u8; 32],
    /// Hash of the Escrow transaction that opened the job.
    pub open_tx: [u8; 32],
    /// Its logical time (settlements come after it).
    pub open_lt: u64,
    /// The max cost locked.
    pub max_cost: u128,
    /// sha256 of the sealed input.
    pub input_commitment: [u8; 32],
    /// Commitment to the answer received (equal to the receipt's).
    pub output_commitment: [u8; 32],
}

impl JobResult {
    /// Whether the answer came from a worker without a TEE (`UNATTESTED (SIMULATED TEE)`).
    pub fn unattested(&self) -> bool {
        self.attestation_kind == EvidenceKind::Simulated
    }
}

/// What a job's stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// The relayer handed the job to a worker; a later `Dispatched` is a failover, and the text
    /// of earlier attempts is void.
    Dispatched {
        /// The worker.
        worker: TonAddress,
        /// Attempt number.
        attempt: u32,
    },
    /// Newly generated text.
    Delta(String),
    /// The embedding vectors.
    Embeddings(Vec<Vec<f32>>),
    /// The job is done and its receipt checked; nothing follows.
    Done(Box<JobResult>),
}

/// Rank of an attestation kind for [`JobOptions::min_attestation`]: hardware TEEs rank above
/// Simulated and equal to each other.
pub(crate) fn attestation_rank(kind: EvidenceKind) -> u8 {
    match kind {
        EvidenceKind::Simulated => 0,
        EvidenceKind::SevSnp | EvidenceKind::Tdx => 1,
    }
}

/// Picks up to `k` candidates among verified workers: the pinned worker only, when one is
/// given; workers meeting the attestation minimum and price limits, with free capacity;
/// preferred workers first, then the relayer's order. [`ClientError::NoWorker`] names the
/// condition that left none.
pub fn select_candidates(
    model: &str,
    verified: Vec<VerifiedWorker>,
    options: &JobOptions,
    k: usize,
) -> Result<Vec<VerifiedWorker>> {
    let none = |reason: String| ClientError::NoWorker {
        model: model.to_owned(),
        reason,
    };
    if verified.is_empty() {
        return Err(none("no attested worker serves it".into()));
    }
    let total = verified.len();
    let mut pool = verified;
    if let Some(pinned) = &options.worker {
        pool.retain(|w| w.address == *pinned);
        if pool.is_empty() {
            return Err(none(format!(
                "the pinned worker {pinned} is not among the {total} verified workers serving it"
            )));
        }
    }
    if let Some(min) = options.min_attestation {
        pool.retain(|w| attestation_rank(w.kind()) >= attestation_rank(min));
        if pool.is_empty() {
            return Err(none(format!(
                "none of the {total} verified workers meets the minimum attestation {min}"
            )));
        }
    }
    let (max_in, max_out) = (
        options.max_price_in.unwrap_or(u128::MAX),
        options.max_price_out.unwrap_or(u128::MAX),
    );
    pool.retain(|w| w.price_in <= max_in && w.price_out <= max_out);
    if pool.is_empty() {
        return Err(none(format!(
            "none of the {total} verified workers is within the price limits (in ≤ {}, out ≤ {})",
            options.max_price_in.map_or("any".into(), |p| p.to_string()),
            options
                .max_price_out
                .map_or("any".into(), |p| p.to_string()),
        )));
    }
    let qualified = pool.len();
    pool.retain(VerifiedWorker::has_capacity);
    if pool.is_empty() {
        return Err(none(format!(
            "all {qualified} qualifying workers are busy or unhealthy (no free capacity)"
        )));
    }
    // Stable: preferred workers in the caller's order, then the rest in the relayer's order.
    pool.sort_by_key(|w| {
        options
            .preferred_workers
            .iter()
            .position(|p| *p == w.address)
            .unwrap_or(usize::MAX)
    });
    pool.truncate(k.clamp(1, MAX_RECIPIENTS));
    Ok(pool)
}

impl Client {
    /// Opens a job for `model` (a name such as `smollm2-135m-instruct`, or a registry id) and
    /// returns its stream. Everything that can be refused without spending is checked before
    /// OpenJob is sent: the model, the request, the workers, the balance.
    pub async fn open_job(
        &self,
        model: &str,
        request: JobRequest,
        options: JobOptions,
    ) -> Result<JobStream> {
        let spec = self.resolve_model(model).await?;
        if request.model_kind() != spec.kind {
            return Err(ClientError::InvalidRequest(JobError::Invalid(format!(
                "{} is {} model, the request needs {}",
                spec.name,
                kind_name(spec.kind),
                kind_name(request.model_kind())
            ))));
        }
        let plaintext = request.encode()?;
        let root = self.root_view(false).await?;
        let screened = self.screen_model(&root, spec.id).await?;
        if let Some(pinned) = &options.worker
            && let Some(r) = screened
                .rejected
                .iter()
                .find(|r| TonAddress::from_str(&r.worker).is_ok_and(|a| a == *pinned))
        {
            return Err(ClientError::AttestationRejected {
                worker: r.worker.clone(),
                reason: r.reason.clone(),
            });
        }
        let k = options.candidates.unwrap_or(self.inner.config.candidates);
        let candidates = select_candidates(spec.name, screened.into_verified()?, &options, k)?;
        let bound = token_bound(&request);
        let deadline_after = options.deadline.unwrap_or(self.inner.config.deadline);
        let fee_bps = self
            .inner
            .config
            .relayer_fee_bps
            .min(root.params.relayer_fee_cap_bps);
        let chain = &self.inner.chain;
        let escrow =
            EscrowClient::for_owner(chain, &self.inner.config.root, self.inner.wallet.address())
                .await?;

        // One job at a time from here to the confirmed OpenJob: the free balance, the job id and
        // the wallet's seqno must not be raced by this client's other jobs.
        let mut next_id = self.inner.sending.lock().await;
        let account = chain.account(&self.inner.escrow).await?;
        let (free, last_job_id) = if account.status == crate::chain::AccountStatus::Active {
            let st = escrow.state().await?;
            (st.free, st.last_job_id)
        } else {
            (0, 0)
        };
        let max_cost = max_cost(
            options.max_cost,
            bound,
            candidates.iter().map(|w| (w.price_in, w.price_out)),
            free,
        )?;
        if account.status != crate::chain::AccountStatus::Active {
            // No Escrow yet (even a zero max cost cannot be opened on nothing).
            return Err(ClientError::InsufficientBalance {
                needed: max_cost,
                free: 0,
            });
        }
        let job_id = (last_job_id + 1).max(*next_id);
        let ctx = JobContext {
            escrow: self.inner.escrow.clone(),
            job_id,
            model_id: spec.id,
        };
        let keys: Vec<[u8; 32]> = candidates.iter().map(|w| w.encryption_key).collect();
        let seal = seal_input(&plaintext, &keys, &ctx)?;
        let deadline_secs = u32::try_from(deadline_after.as_secs()).unwrap_or(u32::MAX);
        let deadline = u32::try_from(account.sync_utime)
            .unwrap_or(u32::MAX)
            .saturating_add(deadline_secs);
        let args = OpenJobArgs {
            job_id,
            model_id: spec.id,
            max_cost,
            deadline,
            relayer_fee_bps: fee_bps,
            input_commitment: seal.input_commitment,
            relayer: self.inner.relayer_id.clone(),
            worker: options.worker.clone(),
        };
        let started = Instant::now();
        let outcome = escrow
            .open_job(&self.inner.wallet, args, &self.inner.config.send)
            .await?;
        let open_timing = started.elapsed();
        *next_id = job_id + 1;
        drop(next_id);

        let job = JobRef::new(self.inner.escrow.to_hex(), job_id);
        let open = outcome
            .txs
            .iter()
            .find(|t| t.account == self.inner.escrow)
            .unwrap_or(&outcome.wallet_tx);
        let (open_tx, open_lt) = (open.id.hash, open.id.lt);
        info!(target: "sdk::client", %job, model = spec.name, max_cost = %max_cost, candidates = candidates.len(), open_ms = open_timing.as_millis() as u64, "job opened");

        let deadline_at = tokio::time::Instant::now() + deadline_after;
        let names: Vec<String> = candidates.iter().map(|w| w.address.to_hex()).collect();
        let wait = self.inner.config.submit_wait.min(deadline_after);
        let submitted = self
            .inner
            .relayer
            .submit_input(&job, &seal.sealed, &names, wait)
            .await;
        if let Err(e) = &submitted {
            warn!(target: "sdk::client", %job, error = %e, "the relayer did not take the input; the job expires at its deadline and can then be refunded with Client::expire");
        }
        submitted?;
        let events = self.inner.relayer.stream(&job).await?;
        Ok(JobStream {
            escrow: self.inner.escrow.clone(),
            job,
            model: spec,
            seal,
            candidates,
            max_cost,
            open_tx,
            open_lt,
            open_timing,
            deadline_at,
            events,
            attempt: None,
            finished: false,
            relayer: self.inner.relayer.clone(),
            seen: Vec::new(),
            replayed: 0,
            reconnects: 0,
        })
    }
}

pub(crate) fn kind_name(k: ModelKind) -> &'static str {
    match k {
        ModelKind::Text => "a text",
        ModelKind::Embedding => "an embedding",
    }
}

/// The attempt now being streamed.
#[derive(Debug)]
struct Attempt {
    number: u32,
    /// Index into the stream's candidates.
    worker: usize,
    opener: ResponseOpener,
    chunks: u32,
    text: String,
    embeddings: Option<Vec<Vec<f32>>>,
    done: Option<(FinishReason, Usage)>,
}

/// A job in flight: its events as they arrive, ending with [`JobEvent::Done`] or an error.
#[derive(Debug)]
pub struct JobStream {
    escrow: TonAddress,
    job: JobRef,
    model: ModelSpec,
    seal: ClientSeal,
    candidates: Vec<VerifiedWorker>,
    max_cost: u128,
    open_tx: [u8; 32],
    open_lt: u64,
    open_timing: Duration,
    deadline_at: tokio::time::Instant,
    events: EventStream,
    attempt: Option<Attempt>,
    finished: bool,
    relayer: RelayerApi,
    /// sha256 of every event handled, in order (to skip them when a reconnected stream replays).
    seen: Vec<[u8; 32]>,
    /// How many events of the current connection matched `seen`.
    replayed: usize,
    reconnects: u32,
}

impl JobStream {
    /// The job (Escrow, job id).
    pub fn job(&self) -> &JobRef {
        &self.job
    }

    /// Time spent opening the job on-chain (OpenJob sent until confirmed).
    pub fn open_timing(&self) -> Duration {
        self.open_timing
    }

    /// The max cost locked for the job.
    pub fn max_cost(&self) -> u128 {
        self.max_cost
    }

    /// The workers the input was sealed to, most preferred first.
    pub fn candidates(&self) -> &[VerifiedWorker] {
        &self.candidates
    }

    /// The next event; `None` after [`JobEvent::Done`] or an error.
    pub async fn next(&mut self) -> Option<Result<JobEvent>> {
        if self.finished {
            return None;
        }
        loop {
            let got = match tokio::time::timeout_at(self.deadline_at, self.events.next()).await {
                Ok(got) => got,
                Err(_) => Err(ClientError::JobExpired {
                    job: self.job.clone(),
                }),
            };
            let step = match got {
                Ok(Some(ev)) => self.replayed_or_handle(ev),
                // The connection ended before the job did: read the stream again.
                Ok(None) | Err(ClientError::RelayerUnreachable(_))
                    if self.reconnects < MAX_RECONNECTS =>
                {
                    match self.reconnect().await {
                        Ok(()) => continue,
                        Err(e) => Err(e),
                    }
                }
                Ok(None) => Err(ClientError::BadResponse(
                    "the relayer closed the job's stream before its receipt".into(),
                )),
                Err(e) => Err(e),
            };
            match step {
                Ok(Some(ev)) => {
                    if matches!(ev, JobEvent::Done(_)) {
                        self.finished = true;
                    }
                    return Some(Ok(ev));
                }
                Ok(None) => continue,
                Err(e) => {
                    self.finished = true;
                    warn!(target: "sdk::client", job = %self.job, error = %e, "job failed");
                    return Some(Err(e));
                }
            }
        }
    }

    /// Opens the job's stream again after a dropped connection, with backoff. The relayer
    /// replays a job's events from the start, so the events already handled are skipped.
    async fn reconnect(&mut self) -> Result<()> {
        loop {
            self.reconnects += 1;
            let pause = RECONNECT_PAUSE * 2u32.pow(self.reconnects.min(6) - 1);
            warn!(target: "sdk::client", job = %self.job, attempt = self.reconnects, "job stream dropped; reconnecting");
            tokio::time::sleep_until((tokio::time::Instant::now() + pause).min(self.deadline_at))
                .await;
            if tokio::time::Instant::now() >= self.deadline_at {
                return Err(ClientError::JobExpired {
                    job: self.job.clone(),
                });
            }
            match self.relayer.stream(&self.job).await {
                Ok(events) => {
                    self.events = events;
                    self.replayed = 0;
                    return Ok(());
                }
                Err(ClientError::RelayerUnreachable(_)) if self.reconnects < MAX_RECONNECTS => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Skips an event this stream already handled (a replay after reconnecting); handles any
    /// other. A replay that diverges from what was seen is handled as new from there on.
    fn replayed_or_handle(&mut self, ev: StreamEvent) -> Result<Option<JobEvent>> {
        let digest: [u8; 32] =
            sha2::Sha256::digest(serde_json::to_vec(&ev).unwrap_or_default()).into();
        if self.replayed < self.seen.len() {
            if self.seen[self.replayed] == digest {
                self.replayed += 1;
                return Ok(None);
            }
            debug!(target: "sdk::client", job = %self.job, at = self.replayed, "the replayed stream diverges from what was seen");
            self.seen.truncate(self.replayed);
        }
        self.seen.push(digest);
        self.replayed = self.seen.len();
        self.handle(ev)
    }

    /// Reads the rest of the stream and returns the checked result.
    pub async fn finish(mut self) -> Result<JobResult> {
        while let Some(ev) = self.next().await {
            if let JobEvent::Done(result) = ev? {
                return Ok(*result);
            }
        }
        Err(ClientError::BadResponse(
            "the job's stream ended without a result".into(),
        ))
    }

    fn handle(&mut self, ev: StreamEvent) -> Result<Option<JobEvent>> {
        match ev {
            StreamEvent::Status { state, reason } => {
                debug!(target: "sdk::client", job = %self.job, %state, ?reason, "job status");
                Ok(None)
            }
            StreamEvent::Dispatched { worker, attempt } => self.dispatched(&worker, attempt),
            StreamEvent::Chunk { attempt, seq, data } => self.chunk(attempt, seq, &data),
            StreamEvent::Receipt {
                worker,
                attempt,
                chunks,
                receipt,
                cost,
            } => self
                .receipt(&worker, attempt, chunks, &receipt, cost)
                .map(|r| Some(JobEvent::Done(Box::new(r)))),
            StreamEvent::Failed { reason } => Err(ClientError::JobFailed {
                job: self.job.clone(),
                reason,
            }),
            StreamEvent::Refused { code, reason } => Err(ClientError::JobRefused {
                job: self.job.clone(),
                code,
                reason,
            }),
        }
    }

    fn dispatched(&mut self, worker: &str, attempt: u32) -> Result<Option<JobEvent>> {
        if let Some(a) = &self.attempt
            && attempt <= a.number
        {
            return Err(ClientError::BadResponse(format!(
                "dispatch attempt {attempt} after attempt {}",
                a.number
            )));
        }
        let address = TonAddress::from_str(worker).map_err(|e| {
            ClientError::BadResponse(format!("dispatched to {worker:?}, not an address: {e}"))
        })?;
        let index = self
            .candidates
            .iter()
            .position(|w| w.address == address)
            .ok_or_else(|| {
                ClientError::BadResponse(format!(
                    "dispatched to {worker}, which is not a worker the input was sealed to"
                ))
            })?;
        let opener = self
            .seal
            .response_opener(&self.candidates[index].encryption_key)?;
        if self.attempt.is_some() {
            info!(target: "sdk::client", job = %self.job, %address, attempt, "failover: the answer restarts");
        }
        self.attempt = Some(Attempt {
            number: attempt,
            worker: index,
            opener,
            chunks: 0,
            text: String::new(),
            embeddings: None,
            done: None,
        });
        Ok(Some(JobEvent::Dispatched {
            worker: address,
            attempt,
        }))
    }

    fn chunk(&mut self, attempt: u32, seq: u32, data: &[u8]) -> Result<Option<JobEvent>> {
        let kind = self.model.kind;
        let a = self
            .attempt
            .as_mut()
            .ok_or_else(|| ClientError::BadResponse("a chunk before any dispatch".into()))?;
        if attempt < a.number {
            // Late output of an abandoned attempt: void.
            return Ok(None);
        }
        if attempt > a.number {
            return Err(ClientError::BadResponse(format!(
                "a chunk of attempt {attempt} before its dispatch (now {})",
                a.number
            )));
        }
        if seq != a.chunks {
            return Err(ClientError::BadResponse(format!(
                "chunk {seq} arrived, expected {}: dropped or reordered",
                a.chunks
            )));
        }
        let plain = a
            .opener
            .open_chunk(data)
            .map_err(|e| ClientError::BadResponse(format!("chunk {seq} does not open: {e}")))?;
        a.chunks += 1;
        let out = JobOutput::decode(&plain).map_err(|e| {
            ClientError::BadResponse(format!("chunk {seq} is not a job output: {e}"))
        })?;
        let is_final = a.opener.is_finished();
        let is_done = matches!(out, JobOutput::Done { .. });
        match out {
            _ if is_done && !is_final => Err(ClientError::BadResponse(
                "`done` in a chunk that is not the final one".into(),
            )),
            _ if is_final && !is_done => Err(ClientError::BadResponse(
                "the final chunk is not `done`".into(),
            )),
            JobOutput::Delta { text } if kind == ModelKind::Text => {
                a.text.push_str(&text);
                Ok(Some(JobEvent::Delta(text)))
            }
            JobOutput::Embeddings { vectors }
                if kind == ModelKind::Embedding && a.embeddings.is_none() =>
            {
                a.embeddings = Some(vectors.clone());
                Ok(Some(JobEvent::Embeddings(vectors)))
            }
            JobOutput::Done {
                finish_reason,
                prompt_tokens,
                completion_tokens,
            } => {
                if kind == ModelKind::Embedding && a.embeddings.is_none() {
                    return Err(ClientError::BadResponse(
                        "an embeddings job ended without vectors".into(),
                    ));
                }
                a.done = Some((
                    finish_reason,
                    Usage {
                        prompt_tokens,
                        completion_tokens,
                    },
                ));
                Ok(None)
            }
            other => Err(ClientError::BadResponse(format!(
                "unexpected output for {} job: {other:?}",
                kind_name(kind)
            ))),
        }
    }

    fn receipt(
        &mut self,
        worker: &str,
        attempt: u32,
        chunks: u32,
        receipt: &[u8],
        relayer_cost: u64,
    ) -> Result<JobResult> {
        let a = self
            .attempt
            .take()
            .ok_or_else(|| ClientError::BadResponse("a receipt before any dispatch".into()))?;
        let served = &self.candidates[a.worker];
        if attempt != a.number
            || TonAddress::from_str(worker).ok().as_ref() != Some(&served.address)
        {
            return Err(ClientError::BadResponse(format!(
                "receipt of {worker} attempt {attempt}, but attempt {} was streamed by {}",
                a.number, served.address
            )));
        }
        if chunks != a.chunks {
            return Err(ClientError::BadResponse(format!(
                "the receipt covers {chunks} chunks, {} were received",
                a.chunks
            )));
        }
        let (finish_reason, usage) = a.done.ok_or_else(|| {
            ClientError::BadResponse("the answer was truncated: no final chunk".into())
        })?;
        let output_commitment = a.opener.finish()?;
        let receipt = SignedReceipt::from_boc(receipt).map_err(ReceiptError::from)?;
        check_receipt(
            &receipt,
            &ReceiptExpectation {
                escrow: self.escrow.clone(),
                job_id: self.job.job_id,
                worker: served.address.clone(),
                model_id: self.model.id,
                receipt_key: served.receipt_key,
                evidence_hash: served.evidence_hash,
                price_in: served.price_in,
                price_out: served.price_out,
                input_commitment: self.seal.input_commitment,
                output_commitment,
                weights_hash: Some(self.model.weights_hash()),
            },
        )?;
        let b = &receipt.body;
        let mismatch = |field: &'static str, expected: String, actual: String| {
            ClientError::ReceiptInvalid(ReceiptError::FieldMismatch {
                field,
                expected,
                actual,
            })
        };
        if b.tokens_in != usage.prompt_tokens || b.tokens_out != usage.completion_tokens {
            return Err(mismatch(
                "tokens",
                format!(
                    "{} in / {} out (the answer's)",
                    usage.prompt_tokens, usage.completion_tokens
                ),
                format!("{} in / {} out", b.tokens_in, b.tokens_out),
            ));
        }
        if b.cost > self.max_cost {
            return Err(mismatch(
                "cost",
                format!("at most the max cost {}", self.max_cost),
                b.cost.to_string(),
            ));
        }
        if u128::from(relayer_cost) != b.cost {
            debug!(target: "sdk::client", job = %self.job, relayer_cost, receipt_cost = %b.cost, "the relayer's cost differs from the receipt's (the receipt counts)");
        }
        let receipt_hash = b.signing_hash()?;
        info!(target: "sdk::client", job = %self.job, worker = %served.address, cost = %b.cost, tokens_in = b.tokens_in, tokens_out = b.tokens_out, attestation = %served.kind(), "receipt verified");
        Ok(JobResult {
            job: self.job.clone(),
            model: self.model,
            text: a.text,
            embeddings: a.embeddings,
            finish_reason,
            usage,
            cost: b.cost,
            worker: served.address.clone(),
            attestation_kind: served.kind(),
            gpu: served.attestation.gpu.clone(),
            receipt_hash,
            open_tx: self.open_tx,
            open_lt: self.open_lt,
            max_cost: self.max_cost,
            input_commitment: self.seal.input_commitment,
            output_commitment,
            receipt,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::attest::{Tcb, Verified};

    fn worker(n: u8, kind: EvidenceKind, price_in: u128, load: u32) -> VerifiedWorker {
        VerifiedWorker {
            address: TonAddress::new(0, [n; 32].into()),
            owner: TonAddress::new(0, [n + 100; 32].into()),
            receipt_key: [n; 32],
            encryption_key: [n; 32],
            price_in,
            price_out: 1,
            models: BTreeSet::from([1]),
            stake: 1,
            evidence_hash: [n; 32],
            expires_at: u32::MAX,
            attestation: Verified {
                kind,
                measurement: [0; 48],
                tcb: Tcb::Simulated,
                report_data: [0; 64],
                evidence_hash: [n; 32],
                gpu: None,
            },
            load,
            capacity: 2,
            healthy: true,
        }
    }

    fn addrs(ws: &[VerifiedWorker]) -> Vec<u8> {
        ws.iter()
            .map(|w| w.address.hash_part.as_slice()[0])
            .collect()
    }

    fn pool() -> Vec<VerifiedWorker> {
        vec![
            worker(1, EvidenceKind::Simulated, 10, 0),
            worker(2, EvidenceKind::SevSnp, 20, 1),
            worker(3, EvidenceKind::Tdx, 30, 2),
            worker(4, EvidenceKind::Tdx, 40, 0),
        ]
    }

    #[test]
    fn preferred_first_then_relayer_order_busy_left_out_k_kept() {
        let opts = JobOptions {
            preferred_workers: vec![worker(4, EvidenceKind::Tdx, 0, 0).address],
            ..JobOptions::default()
        };
        let got = select_candidates("m", pool(), &opts, 3).unwrap();
        assert_eq!(addrs(&got), vec![4, 1, 2]);
        assert_eq!(
            addrs(&select_candidates("m", pool(), &opts, 1).unwrap()),
            vec![4]
        );
        // k is clamped to 1..=MAX_RECIPIENTS.
        assert_eq!(select_candidates("m", pool(), &opts, 0).unwrap().len(), 1);
    }

    #[test]
    fn limits_filter_and_name_the_condition() {
        let hw = JobOptions {
            min_attestation: Some(EvidenceKind::SevSnp),
            ..JobOptions::default()
        };
        assert_eq!(
            addrs(&select_candidates("m", pool(), &hw, 8).unwrap()),
            vec![2, 4]
        );
        let cheap = JobOptions {
            max_price_in: Some(20),
            ..JobOptions::default()
        };
        assert_eq!(
            addrs(&select_candidates("m", pool(), &cheap, 8).unwrap()),
            vec![1, 2]
        );
        let reason = |opts: &JobOptions, ws: Vec<VerifiedWorker>| match select_candidates(
            "m", ws, opts, 3,
        ) {
            Err(ClientError::NoWorker { model, reason }) => {
                assert_eq!(model, "m");
                reason
            }
            other => panic!("{other:?}"),
        };
        assert!(reason(&JobOptions::default(), vec![]).contains("no attested worker"));
        let too_cheap = JobOptions {
            max_price_in: Some(5),
            ..JobOptions::default()
        };
        assert!(reason(&too_cheap, pool()).contains("price limits"));
        let only_sim = vec![worker(1, EvidenceKind::Simulated, 10, 0)];
        assert!(reason(&hw, only_sim).contains("minimum attestation"));
        let busy = vec![worker(3, EvidenceKind::Tdx, 30, 2)];
        assert!(reason(&JobOptions::default(), busy).contains("busy"));
        let pinned = JobOptions {
            worker: Some(worker(9, EvidenceKind::Tdx, 0, 0).address),
            ..JobOptions::default()
        };
        assert!(reason(&pinned, pool()).contains("pinned"));
        let pinned_ok = JobOptions {
            worker: Some(worker(2, EvidenceKind::Tdx, 0, 0).address),
            ..JobOptions::default()
        };
        assert_eq!(
            addrs(&select_candidates("m", pool(), &pinned_ok, 3).unwrap()),
            vec![2]
        );
    }
}
