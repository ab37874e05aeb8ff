//! One dispatched job: check the commitment, open the sealed input, run the model on a blocking
//! thread, stream sealed output chunks, then sign, record and send the receipt.
//!
//! ```text
//! Dispatch ─▶ sha256(sealed) = commitment? ─▶ open_input(enc key, job) ─▶ JobRequest
//!   ─▶ budget (max cost) ─▶ model ─▶ Delta… (sealed) ─▶ Done (sealed, final) ─▶ receipt ─▶ ledger ─▶ Done
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cocoon_sdk::job::{FinishReason, JobOutput, JobRequest, Task};
use cocoon_sdk::receipt::{
    ReceiptBody, ReceiptCommitments, ReceiptHashes, SignedReceipt, expected_cost,
};
use cocoon_sdk::relay::worker::{Chunk, Dispatch, Done, JobFailed, JobFailure, WorkerMessage};
use cocoon_sdk::seal::{JobContext, ResponseSealer, input_commitment, open_input};
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::NodeContext;
use super::metrics::JobOutcome;
use super::models::ModelHandle;
use super::pricing::{input_only_cost, output_budget};
use super::stop::StopFilter;
use crate::text::FinishReason as EngineFinish;
use crate::{ChatMessage, GenerateRequest, Prompt, SamplingOptions, TextModel};

/// Tokens batched into one sealed `Delta` chunk after the first (fewer, larger chunks cost less to
/// seal and relay; a handful keeps the stream live). The first text goes out alone, at once: time
/// to first token is what a user feels.
pub const TOKENS_PER_CHUNK: usize = 4;

/// Groups generated text into `Delta` chunks: the first text as soon as there is any, then one
/// chunk per [`TOKENS_PER_CHUNK`] tokens.
#[derive(Debug, Default)]
pub(crate) struct Chunker {
    pending: String,
    tokens: usize,
    sent_first: bool,
}

impl Chunker {
    /// Adds one token's (stop-filtered, possibly empty) text; returns a chunk when one is due.
    pub(crate) fn push(&mut self, text: &str) -> Option<String> {
        self.pending.push_str(text);
        self.tokens += 1;
        let due = !self.sent_first || self.tokens.is_multiple_of(TOKENS_PER_CHUNK);
        if due && !self.pending.is_empty() {
            self.sent_first = true;
            self.tokens = 0;
            return Some(std::mem::take(&mut self.pending));
        }
        None
    }

    /// What is left at the end (plus the stop filter's held-back text).
    pub(crate) fn finish(mut self, tail: &str) -> Option<String> {
        self.pending.push_str(tail);
        (!self.pending.is_empty()).then_some(self.pending)
    }
}

/// Why a job got no receipt.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Refused or failed: the relayer is told why.
    Failed(JobFailure, String),
    /// The relayer cancelled the attempt: nothing more is sent.
    Cancelled,
}

pub(crate) fn fail(code: JobFailure, message: impl Into<String>) -> Outcome {
    Outcome::Failed(code, message.into())
}

pub(crate) fn internal(message: impl Into<String>) -> Outcome {
    fail(JobFailure::Internal, message)
}

pub(crate) fn bad_input(message: impl Into<String>) -> Outcome {
    fail(JobFailure::BadInput, message)
}

/// How the engine's refusal of a request reads to the relayer: what no other worker could serve
/// either is final, the rest may succeed elsewhere.
pub(crate) fn engine_failure(what: &str, e: &crate::Error) -> Outcome {
    let code = match e {
        crate::Error::PromptTooLong { .. } => JobFailure::ContextLengthExceeded,
        crate::Error::EmptyPrompt
        | crate::Error::EmptyInput(_)
        | crate::Error::InvalidOptions(_) => JobFailure::BadInput,
        _ => JobFailure::Internal,
    };
    fail(code, format!("{what}: {e}"))
}

/// How a sealed input that does not open reads to the relayer: one not sealed to this worker
/// may open at another candidate; one that is malformed, bound to another job or tampered with
/// opens nowhere.
pub(crate) fn seal_failure(e: &cocoon_sdk::seal::SealError) -> Outcome {
    let code = match e {
        cocoon_sdk::seal::SealError::NotARecipient => JobFailure::NotARecipient,
        _ => JobFailure::CannotDecrypt,
    };
    fail(code, e.to_string())
}

/// Serves one dispatch to the end, sending every message through `out`. Returns the signed
/// receipt when one was sent.
pub(crate) async fn serve(
    ctx: Arc<NodeContext>,
    d: Dispatch,
    out: UnboundedSender<WorkerMessage>,
    cancel: Arc<AtomicBool>,
) -> Option<SignedReceipt> {
    let started = std::time::Instant::now();
    match answer(&ctx, &d, &out, &cancel).await {
        Ok(receipt) => {
            ctx.metrics.job_ended(JobOutcome::Done, None);
            if let Ok(hash) = receipt.body.signing_hash() {
                ctx.metrics.receipt_signed(
                    hash,
                    receipt.body.tokens_in,
                    receipt.body.tokens_out,
                    receipt.body.cost,
                );
            }
            info!(target: "worker::node::job", job = %d.job, attempt = d.attempt, model = d.model_id, tokens_in = receipt.body.tokens_in, tokens_out = receipt.body.tokens_out, cost = receipt.body.cost, ms = started.elapsed().as_millis() as u64, "job done");
            Some(receipt)
        }
        Err(Outcome::Cancelled) => {
            ctx.metrics.job_ended(JobOutcome::Cancelled, None);
            info!(target: "worker::node::job", job = %d.job, attempt = d.attempt, "job cancelled by the relayer");
            None
        }
        Err(Outcome::Failed(code, message)) => {
            ctx.metrics
                .job_ended(JobOutcome::Failed, Some(code.as_str()));
            warn!(target: "worker::node::job", job = %d.job, attempt = d.attempt, ?code, %message, "job refused");
            let _ = out.send(WorkerMessage::JobFailed(JobFailed {
                job: d.job.clone(),
                attempt: d.attempt,
                code,
                message,
            }));
            None
        }
    }
}

/// Where a stream's sealed chunks go: `(seq, sealed bytes)`; false once nobody listens.
pub(crate) type ChunkSink<'a> = Box<dyn FnMut(u32, Vec<u8>) -> bool + Send + 'a>;

/// Seals output messages into numbered chunks of one attempt (a v1 job's or a channel
/// request's: the sink decides the message).
pub(crate) struct Stream<'a> {
    /// What the stream answers, for logs.
    pub(crate) label: String,
    pub(crate) sink: ChunkSink<'a>,
    pub(crate) sealer: ResponseSealer,
    pub(crate) seq: u32,
    /// When the dispatch arrived (time to first token counts from here).
    pub(crate) arrived: std::time::Instant,
    /// Where the time to first token and the decode rate are recorded.
    pub(crate) metrics: Arc<super::metrics::NodeMetrics>,
}

impl Stream<'_> {
    pub(crate) fn send(&mut self, msg: &JobOutput, is_final: bool) -> Result<(), Outcome> {
        let data = self
            .sealer
            .seal_chunk(&msg.encode(), is_final)
            .map_err(|e| internal(format!("sealing a chunk failed: {e}")))?;
        if !(self.sink)(self.seq, data) {
            return Err(internal("the relayer connection closed"));
        }
        self.seq += 1;
        Ok(())
    }
}

/// What the model did, in billing terms.
pub(crate) struct Usage {
    pub(crate) tokens_in: u32,
    pub(crate) tokens_out: u32,
    pub(crate) finish: FinishReason,
}

async fn answer(
    ctx: &NodeContext,
    d: &Dispatch,
    out: &UnboundedSender<WorkerMessage>,
    cancel: &Arc<AtomicBool>,
) -> Result<SignedReceipt, Outcome> {
    let arrived = std::time::Instant::now();
    // The receipt names the evidence in force when the job arrived (the one the client sealed
    // to), even if the node re-attests while the job runs.
    let evidence_hash = ctx.evidence().hash;
    let Some((spec, model)) = ctx.models.get(&d.model_id) else {
        return Err(fail(
            JobFailure::UnknownModel,
            format!("model {} is not served here", d.model_id),
        ));
    };
    // Security rule: work only on the input the client committed to on-chain.
    if input_commitment(&d.sealed_input) != d.input_commitment {
        return Err(fail(
            JobFailure::BadCommitment,
            "sha256 of the sealed input differs from the input commitment",
        ));
    }
    // Security rule: one receipt per job, ever (checked again, atomically, when recording).
    if ctx.ledger.contains(&d.job) {
        return Err(fail(
            JobFailure::Replayed,
            "a receipt for this job was already signed",
        ));
    }
    let escrow = TonAddress::from_hex_str(&d.job.escrow)
        .map_err(|e| internal(format!("escrow address {:?}: {e}", d.job.escrow)))?;
    let job_ctx = JobContext {
        escrow: escrow.clone(),
        job_id: d.job.job_id,
        model_id: d.model_id,
    };
    let opened = open_input(&d.sealed_input, ctx.keys.encryption(), &job_ctx)
        .map_err(|e| seal_failure(&e))?;
    let request = JobRequest::decode(&opened.plaintext)
        .and_then(|r| r.validate().map(|()| r))
        .map_err(|e| bad_input(format!("invalid job request: {e}")))?;
    if request.model_kind() != spec.kind {
        return Err(bad_input(format!(
            "a {:?} request for the {:?} model {}",
            request.model_kind(),
            spec.kind,
            spec.name
        )));
    }
    let (job, attempt) = (d.job.clone(), d.attempt);
    let mut stream = Stream {
        label: d.job.to_string(),
        sink: Box::new(move |seq, data| {
            out.send(WorkerMessage::Chunk(Chunk {
                job: job.clone(),
                attempt,
                seq,
                data,
            }))
            .is_ok()
        }),
        sealer: opened.response,
        seq: 0,
        arrived,
        metrics: ctx.metrics.clone(),
    };
    let max_cost = u128::from(d.max_cost);
    let usage = match (request.task, model) {
        (Task::Chat { messages, params }, ModelHandle::Text(m)) => {
            let messages = messages
                .into_iter()
                .map(|m| ChatMessage::new(&m.role, &m.content))
                .collect();
            let ids = tokenize_prompt(m, &Prompt::Chat(messages))?;
            let prices = (ctx.price_in, ctx.price_out);
            generate(m, ids, params, prices, max_cost, &mut stream, cancel).await?
        }
        (Task::Completion { prompt, params }, ModelHandle::Text(m)) => {
            let ids = tokenize_prompt(m, &Prompt::Text(prompt))?;
            let prices = (ctx.price_in, ctx.price_out);
            generate(m, ids, params, prices, max_cost, &mut stream, cancel).await?
        }
        (Task::Embeddings { input }, ModelHandle::Embedding(m)) => {
            let tokens_in = embedding_tokens(m, &input)?;
            input_only_cost(tokens_in, ctx.price_in, max_cost)
                .map_err(|e| bad_input(e.to_string()))?;
            embed(m, input, &mut stream, cancel).await?
        }
        _ => return Err(bad_input("request kind does not match the model")),
    };
    if cancel.load(Ordering::SeqCst) {
        return Err(Outcome::Cancelled);
    }
    let cost = expected_cost(
        usage.tokens_in,
        usage.tokens_out,
        ctx.price_in,
        ctx.price_out,
    )
    .map_err(|e| internal(e.to_string()))?;
    if cost > max_cost {
        return Err(internal(format!("cost {cost} above max cost {max_cost}")));
    }
    stream.send(
        &JobOutput::Done {
            finish_reason: usage.finish,
            prompt_tokens: usage.tokens_in,
            completion_tokens: usage.tokens_out,
        },
        true,
    )?;
    let output_commitment = stream
        .sealer
        .output_commitment()
        .map_err(|e| internal(e.to_string()))?;
    let body = ReceiptBody {
        escrow,
        job_id: d.job.job_id,
        worker: ctx.address.clone(),
        model_id: d.model_id,
        tokens_in: usage.tokens_in,
        tokens_out: usage.tokens_out,
        cost,
        time: cocoon_sdk::clock::unix_now_u32(),
        hashes: ReceiptHashes {
            weights_hash: model.weights_hash().0,
            evidence_hash,
        },
        commitments: ReceiptCommitments {
            input_commitment: d.input_commitment,
            output_commitment,
        },
    };
    let receipt = body
        .sign(ctx.keys.signing_key())
        .map_err(|e| internal(format!("signing: {e}")))?;
    let boc = receipt
        .to_boc()
        .map_err(|e| internal(format!("receipt encoding: {e}")))?;
    // Recorded durably before it leaves the process; a concurrent duplicate loses here.
    ctx.ledger
        .record(&d.job, &boc)
        .map_err(|e| internal(e.to_string()))?;
    out.send(WorkerMessage::Done(Done {
        job: d.job.clone(),
        attempt: d.attempt,
        chunks: stream.seq,
        receipt: boc,
        cost: u64::try_from(cost).map_err(|_| internal("cost exceeds u64"))?,
    }))
    .map_err(|_| internal("the relayer connection closed before the receipt was sent"))?;
    Ok(receipt)
}

/// The input tokens of an embeddings request.
pub(crate) fn embedding_tokens(
    m: &crate::EmbeddingModel,
    input: &[String],
) -> Result<u32, Outcome> {
    let tokens_in = input
        .iter()
        .map(|t| m.tokenize(t).map(|ids| ids.len()))
        .sum::<crate::Result<usize>>()
        .map_err(|e| engine_failure("cannot tokenize", &e))?;
    u32::try_from(tokens_in).map_err(|_| bad_input("input too long"))
}

/// Embeds `input` on a blocking thread and streams the vectors as one chunk.
pub(crate) async fn embed(
    m: &Arc<crate::EmbeddingModel>,
    input: Vec<String>,
    stream: &mut Stream<'_>,
    cancel: &Arc<AtomicBool>,
) -> Result<Usage, Outcome> {
    let model = m.clone();
    let e = tokio::task::spawn_blocking(move || model.embed(&input))
        .await
        .map_err(|e| internal(format!("embedding task: {e}")))?
        .map_err(|e| engine_failure("embedding failed", &e))?;
    if cancel.load(Ordering::SeqCst) {
        return Err(Outcome::Cancelled);
    }
    stream.send(&JobOutput::Embeddings { vectors: e.vectors }, false)?;
    Ok(Usage {
        tokens_in: u32::try_from(e.prompt_tokens).map_err(|_| internal("input too long"))?,
        tokens_out: 0,
        finish: FinishReason::Stop,
    })
}

/// The prompt's tokens, refused before any work when they cannot fit the model's context (no
/// other worker of this model could serve it either).
pub(crate) fn tokenize_prompt(model: &TextModel, prompt: &Prompt) -> Result<Vec<u32>, Outcome> {
    let ids = model
        .tokenize(prompt)
        .map_err(|e| engine_failure("cannot tokenize the prompt", &e))?;
    let context = model.info().config.context;
    if ids.len() >= context {
        return Err(fail(
            JobFailure::ContextLengthExceeded,
            format!(
                "prompt of {} tokens does not fit the context of {context} tokens",
                ids.len()
            ),
        ));
    }
    Ok(ids)
}

/// Runs `ids` through the model within `max_cost` at `prices` (input, output), streaming the
/// text: the first text alone as soon as it is generated, then [`TOKENS_PER_CHUNK`] at a time.
pub(crate) async fn generate(
    model: &Arc<TextModel>,
    ids: Vec<u32>,
    params: cocoon_sdk::job::GenerationParams,
    prices: (u128, u128),
    max_cost: u128,
    stream: &mut Stream<'_>,
    cancel: &Arc<AtomicBool>,
) -> Result<Usage, Outcome> {
    let tokens_in = u32::try_from(ids.len()).map_err(|_| bad_input("prompt too long"))?;
    let budget = output_budget(tokens_in, params.max_tokens, prices.0, prices.1, max_cost)
        .map_err(|e| bad_input(e.to_string()))?;
    let req = GenerateRequest {
        prompt: Prompt::Tokens(ids),
        max_tokens: budget as usize,
        sampling: SamplingOptions {
            temperature: params.temperature,
            top_k: 0,
            top_p: params.top_p,
            seed: params.seed.unwrap_or_else(rand::random),
        },
        stop_tokens: Vec::new(),
        ignore_eos: false,
    };
    debug!(target: "worker::node::job", request = %stream.label, tokens_in, budget, "generating");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let model = model.clone();
    let cancel_flag = cancel.clone();
    let stops = params.stop.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut filter = StopFilter::new(&stops);
        let mut chunks = Chunker::default();
        let mut held = String::new();
        let result = model.generate_until(&req, |t| {
            if cancel_flag.load(Ordering::SeqCst) {
                return std::ops::ControlFlow::Break(());
            }
            let text = filter.push(&t.text);
            if filter.stopped() {
                held.push_str(&text);
                return std::ops::ControlFlow::Break(());
            }
            if let Some(chunk) = chunks.push(&text) {
                let _ = tx.send(chunk);
            }
            std::ops::ControlFlow::Continue(())
        });
        held.push_str(&filter.finish());
        if let Some(rest) = chunks.finish(&held) {
            let _ = tx.send(rest);
        }
        (result, filter.stopped())
    });
    let mut first_text = None;
    while let Some(text) = rx.recv().await {
        if first_text.is_none() {
            let now = std::time::Instant::now();
            stream
                .metrics
                .time_to_first_token
                .observe(now.duration_since(stream.arrived).as_secs_f64());
            first_text = Some(now);
        }
        if let Err(e) = stream.send(&JobOutput::Delta { text }, false) {
            // Nobody will read the rest: free the batch slot.
            cancel.store(true, Ordering::SeqCst);
            return Err(e);
        }
    }
    let (result, hit_stop) = task
        .await
        .map_err(|e| internal(format!("generation task: {e}")))?;
    if cancel.load(Ordering::SeqCst) {
        return Err(Outcome::Cancelled);
    }
    let g = result.map_err(|e| engine_failure("generation failed", &e))?;
    if let Some(first) = first_text {
        let secs = first.elapsed().as_secs_f64();
        // One token (or all in one chunk) gives no interval to measure a rate over.
        if g.completion_tokens > 1 && secs > 0.0 {
            stream
                .metrics
                .decode_tokens_per_second
                .observe((g.completion_tokens - 1) as f64 / secs);
        }
    }
    let finish = match (hit_stop, g.finish) {
        (true, _) | (false, EngineFinish::Stop) => FinishReason::Stop,
        (false, EngineFinish::Length) => FinishReason::Length,
    };
    Ok(Usage {
        tokens_in,
        tokens_out: u32::try_from(g.completion_tokens).map_err(|_| internal("output too long"))?,
        finish,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(o: Outcome) -> JobFailure {
        match o {
            Outcome::Failed(c, _) => c,
            Outcome::Cancelled => panic!("cancelled"),
        }
    }

    #[test]
    fn refusals_no_worker_can_get_past_are_final() {
        let too_long = crate::Error::PromptTooLong {
            prompt_tokens: 12_031,
            context: 8_192,
        };
        let c = code(engine_failure("generation failed", &too_long));
        assert_eq!(c, JobFailure::ContextLengthExceeded);
        assert!(c.is_final());
        assert!(code(engine_failure("x", &crate::Error::EmptyPrompt)).is_final());
        assert!(!code(engine_failure("x", &crate::Error::EngineStopped)).is_final());
        use cocoon_sdk::seal::SealError;
        let elsewhere = code(seal_failure(&SealError::NotARecipient));
        assert_eq!(elsewhere, JobFailure::NotARecipient);
        assert!(!elsewhere.is_final(), "another candidate may open it");
        for garbage in [
            SealError::ContentAuthFailed,
            SealError::KeyUnwrapFailed,
            SealError::Truncated { field: "x" },
        ] {
            assert_eq!(code(seal_failure(&garbage)), JobFailure::CannotDecrypt);
        }
    }

    #[test]
    fn the_first_text_goes_out_alone_then_chunks_of_four_tokens() {
        let mut c = Chunker::default();
        // A token whose text the stop filter holds back sends nothing yet.
        assert_eq!(c.push(""), None);
        assert_eq!(c.push("The").as_deref(), Some("The"));
        assert_eq!(c.push(" capital"), None);
        assert_eq!(c.push(" of"), None);
        assert_eq!(c.push(" France"), None);
        assert_eq!(c.push(" is").as_deref(), Some(" capital of France is"));
        assert_eq!(c.push(" Paris"), None);
        assert_eq!(c.finish(".").as_deref(), Some(" Paris."));
        assert_eq!(Chunker::default().finish(""), None);
    }
}
