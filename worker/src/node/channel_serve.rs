//! One channel request end to end: the channel and voucher checked against the chain and the
//! node's own ledger (never the relayer's word), the input opened, the request admitted within
//! the channel's amount and the client's credit, the model run through the same engine path as
//! a v1 job (first text out as soon as it is generated), then the receipt for (channel, seq) at
//! the channel's prices — persisted before it is sent.
//!
//! ```text
//! ChannelDispatch ─▶ book (chain, cached) ─▶ voucher ─▶ seq ─▶ open_input ─▶ tokens ─▶ max cost
//!   ─▶ admit ─▶ model ─▶ ChannelChunk… ─▶ sign ─▶ ledger ─▶ commit ─▶ ChannelDone
//! any refusal ─▶ ChannelRefused { code (fails over or final), expected_seq, existing receipt }
//! ```

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cocoon_sdk::channel::{
    ChannelError, ReceiptDraft, WorkerChannel, request_max_cost, request_seal_context,
};
use cocoon_sdk::job::{JobOutput, JobRequest, Task};
use cocoon_sdk::receipt::{ReceiptCommitments, ReceiptHashes};
use cocoon_sdk::relay::channel::{ChannelChunk, ChannelDispatch, ChannelDone, ChannelRefusal};
use cocoon_sdk::relay::worker::{JobFailure, WorkerMessage};
use cocoon_sdk::seal::{SealError, input_commitment, open_input};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::NodeContext;
use super::channel_desk::{ChannelDesk, Refusal};
use super::channel_ledger::ChannelLedgerError;
use super::job::{
    Outcome, Stream, Usage, bad_input, embed, embedding_tokens, generate, tokenize_prompt,
};
use super::models::ModelHandle;
use crate::{ChatMessage, Prompt};

/// Serves one channel dispatch, sending its chunks and its answer (done or refused) to `out`.
/// Returns whether a receipt was sent.
pub(crate) async fn serve(
    ctx: Arc<NodeContext>,
    desk: Arc<ChannelDesk>,
    d: ChannelDispatch,
    out: UnboundedSender<WorkerMessage>,
) -> bool {
    let started = std::time::Instant::now();
    let (request_id, attempt) = (d.request_id, d.attempt);
    let (channel_id, seq) = (d.ticket.channel.channel_id, d.ticket.seq);
    match answer(&ctx, &desk, d, &out).await {
        Ok(done) => {
            let b = &done.receipt.body;
            info!(target: "worker::node::channel", request = request_id, attempt, channel_id, seq, tokens_in = b.tokens_in, tokens_out = b.tokens_out, cost = %done.cost, ms = started.elapsed().as_millis() as u64, "channel request served");
            out.send(WorkerMessage::ChannelDone(done)).is_ok()
        }
        Err(r) => {
            warn!(target: "worker::node::channel", request = request_id, attempt, channel_id, seq, code = ?r.code, reason = %r.message, "channel request refused");
            let _ = out.send(WorkerMessage::ChannelRefused(
                r.into_message(request_id, attempt),
            ));
            false
        }
    }
}

/// How an engine or input failure reads to the relayer: what no worker could serve is a bad
/// request (final); the rest may succeed on another ticket's channel.
fn refusal_of(o: Outcome) -> Refusal {
    match o {
        Outcome::Failed(JobFailure::ContextLengthExceeded, message) => {
            Refusal::new(ChannelRefusal::ContextLengthExceeded, message)
        }
        Outcome::Failed(code, message) if code.is_final() => Refusal::new(
            ChannelRefusal::BadRequest,
            format!("{}: {message}", code.as_str()),
        ),
        Outcome::Failed(code, message) => {
            Refusal::internal(format!("{}: {message}", code.as_str()))
        }
        Outcome::Cancelled => Refusal::internal("cancelled"),
    }
}

/// The refusal of a seq already signed: the receipt signed for it, resent (never a second one).
async fn seq_taken(desk: &ChannelDesk, book: &WorkerChannel, seq: u32) -> Refusal {
    let next = book.accumulator().seq().saturating_add(1);
    let existing = desk.ledger.receipt(&book.state().channel, seq).await;
    let mut r = Refusal::new(
        ChannelRefusal::SeqTaken,
        format!("seq {seq} already has a receipt; the next seq is {next}"),
    );
    r.expected_seq = Some(next);
    match existing {
        Ok(Some(receipt)) => r.receipt = Some(receipt),
        Ok(None) => {
            r.message = format!("seq {seq} is settled and no longer held; the next seq is {next}")
        }
        Err(e) => r.message = format!("seq {seq} already has a receipt (unreadable now: {e})"),
    }
    r
}

/// The work a request asks for, with its input tokens counted.
enum Work {
    Generate {
        model: Arc<crate::TextModel>,
        ids: Vec<u32>,
        params: cocoon_sdk::job::GenerationParams,
    },
    Embed {
        model: Arc<crate::EmbeddingModel>,
        input: Vec<String>,
        tokens_in: u32,
    },
}

async fn answer(
    ctx: &NodeContext,
    desk: &ChannelDesk,
    d: ChannelDispatch,
    out: &UnboundedSender<WorkerMessage>,
) -> Result<ChannelDone, Refusal> {
    let arrived = std::time::Instant::now();
    // The receipt names the evidence in force when the request arrived (the one sealed to).
    let evidence_hash = ctx.evidence().hash;
    let ticket = &d.ticket;
    let seq = ticket.seq;
    let Some((spec, handle)) = ctx.models.get(&d.model_id) else {
        return Err(Refusal::internal(format!(
            "model {} is not served here",
            d.model_id
        )));
    };
    let book = desk.book(&ticket.channel).await?;
    {
        let mut b = book.lock().await;
        if let Some(v) = &ticket.voucher {
            desk.take_voucher(&mut b, v).await?;
        }
        let next = b.accumulator().seq().saturating_add(1);
        if seq < next {
            return Err(seq_taken(desk, &b, seq).await);
        }
        if seq > next {
            let mut r = Refusal::of(&ChannelError::WrongSeq {
                got: seq,
                expected: next,
            });
            r.expected_seq = Some(next);
            return Err(r);
        }
    }
    let ctx_seal = request_seal_context(&ticket.channel.escrow, d.model_id);
    let opened = open_input(&d.sealed_input, ctx.keys.encryption(), &ctx_seal).map_err(|e| {
        match e {
            // Sealed to the other tickets' workers, not this one: another may open it.
            SealError::NotARecipient => Refusal::internal(e.to_string()),
            _ => Refusal::new(
                ChannelRefusal::BadRequest,
                format!("undecryptable input: {e}"),
            ),
        }
    })?;
    let request = JobRequest::decode(&opened.plaintext)
        .and_then(|r| r.validate().map(|()| r))
        .map_err(|e| refusal_of(bad_input(format!("invalid request: {e}"))))?;
    if request.model_kind() != spec.kind {
        return Err(refusal_of(bad_input(format!(
            "a {:?} request for the {:?} model {}",
            request.model_kind(),
            spec.kind,
            spec.name
        ))));
    }
    let work = match (request.task, handle) {
        (
            Task::Chat {
                messages,
                mut params,
            },
            ModelHandle::Text(m),
        ) => {
            let messages = messages
                .into_iter()
                .map(|m| ChatMessage::new(&m.role, &m.content))
                .collect();
            params.max_tokens = params.max_tokens.min(d.max_tokens);
            let ids = tokenize_prompt(m, &Prompt::Chat(messages)).map_err(refusal_of)?;
            Work::Generate {
                model: m.clone(),
                ids,
                params,
            }
        }
        (Task::Completion { prompt, mut params }, ModelHandle::Text(m)) => {
            params.max_tokens = params.max_tokens.min(d.max_tokens);
            let ids = tokenize_prompt(m, &Prompt::Text(prompt)).map_err(refusal_of)?;
            Work::Generate {
                model: m.clone(),
                ids,
                params,
            }
        }
        (Task::Embeddings { input }, ModelHandle::Embedding(m)) => {
            let tokens_in = embedding_tokens(m, &input).map_err(refusal_of)?;
            Work::Embed {
                model: m.clone(),
                input,
                tokens_in,
            }
        }
        _ => {
            return Err(refusal_of(bad_input(
                "request kind does not match the model",
            )));
        }
    };
    let (tokens_in, max_out) = match &work {
        Work::Generate { ids, params, .. } => (
            u32::try_from(ids.len()).map_err(|_| refusal_of(bad_input("prompt too long")))?,
            params.max_tokens,
        ),
        Work::Embed { tokens_in, .. } => (*tokens_in, 0),
    };

    // Admission: the seq reserved, within the channel's amount and the client's credit.
    let (prices, max_cost) = {
        let mut b = book.lock().await;
        let max_cost =
            request_max_cost(b.state(), tokens_in, max_out).map_err(|e| Refusal::of(&e))?;
        let now = cocoon_sdk::clock::unix_now_u32();
        let admitted = match b.admit(now, seq, max_cost) {
            // The chain may hold a top-up (or a close) the cache has not seen yet.
            Err(ChannelError::Exhausted { .. } | ChannelError::NotServing { .. }) => {
                desk.refresh(&mut b).await?;
                b.admit(now, seq, max_cost)
            }
            other => other,
        };
        match admitted {
            Ok(_) => {}
            Err(ChannelError::SeqTaken { .. }) => return Err(seq_taken(desk, &b, seq).await),
            Err(e) => return Err(Refusal::of(&e)),
        }
        ((b.state().price_in, b.state().price_out), max_cost)
    };

    let (request_id, attempt) = (d.request_id, d.attempt);
    let sender = out.clone();
    let mut stream = Stream {
        label: format!("channel {} seq {seq}", ticket.channel.channel_id),
        sink: Box::new(move |chunk_seq, data| {
            sender
                .send(WorkerMessage::ChannelChunk(ChannelChunk {
                    request_id,
                    attempt,
                    seq: chunk_seq,
                    data,
                }))
                .is_ok()
        }),
        sealer: opened.response,
        seq: 0,
        arrived,
        metrics: ctx.metrics.clone(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let weights_hash = handle.weights_hash().0;
    let ran = run(work, prices, max_cost, &mut stream, &cancel).await;
    let release = |b: &mut WorkerChannel| {
        if let Err(e) = b.release(seq) {
            warn!(target: "worker::node::channel", seq, error = %e, "releasing the seq failed");
        }
    };
    let usage = match ran {
        Ok(u) => u,
        Err(o) => {
            release(&mut *book.lock().await);
            return Err(refusal_of(o));
        }
    };
    let output_commitment = match stream
        .send(
            &JobOutput::Done {
                finish_reason: usage.finish,
                prompt_tokens: usage.tokens_in,
                completion_tokens: usage.tokens_out,
            },
            true,
        )
        .and_then(|()| {
            stream
                .sealer
                .output_commitment()
                .map_err(|e| super::job::internal(e.to_string()))
        }) {
        Ok(c) => c,
        Err(o) => {
            release(&mut *book.lock().await);
            return Err(refusal_of(o));
        }
    };
    let draft = ReceiptDraft {
        model_id: d.model_id,
        tokens_in: usage.tokens_in,
        tokens_out: usage.tokens_out,
        time: cocoon_sdk::clock::unix_now_u32(),
        hashes: ReceiptHashes {
            weights_hash,
            evidence_hash,
        },
        commitments: ReceiptCommitments {
            input_commitment: input_commitment(&d.sealed_input),
            output_commitment,
        },
    };

    // Signed, persisted, committed — only then sent.
    let mut b = book.lock().await;
    let persist = match b.sign_receipt(seq, draft, ctx.keys.signing_key()) {
        Ok(p) => p,
        Err(e) => {
            release(&mut b);
            return Err(Refusal::internal(format!("cannot sign the receipt: {e}")));
        }
    };
    if let Err(e) = desk.ledger.record_receipt(&persist).await {
        release(&mut b);
        return Err(match e {
            ChannelLedgerError::AlreadySigned { .. } => seq_taken(desk, &b, seq).await,
            other => Refusal::internal(format!("cannot record the receipt: {other}")),
        });
    }
    b.commit(&persist)
        .map_err(|e| Refusal::internal(format!("receipt recorded but not committed: {e}")))?;
    drop(b);
    Ok(ChannelDone {
        request_id,
        attempt,
        chunks: stream.seq,
        cost: persist.receipt.body.cost,
        receipt: persist.receipt,
    })
}

async fn run(
    work: Work,
    prices: (u128, u128),
    max_cost: u128,
    stream: &mut Stream<'_>,
    cancel: &Arc<AtomicBool>,
) -> Result<Usage, Outcome> {
    match work {
        Work::Generate { model, ids, params } => {
            generate(&model, ids, params, prices, max_cost, stream, cancel).await
        }
        Work::Embed { model, input, .. } => embed(&model, input, stream, cancel).await,
    }
}
