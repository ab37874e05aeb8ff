//! One request over the client's channels: sealed to the workers of K channels, posted with K
//! tickets, streamed back, its receipt checked and paid with the next voucher.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{debug, info, warn};

use super::error::{ChannelClientError, Result};
use super::{Inner, Lease, lock, save_store};
use crate::attest::EvidenceKind;
use crate::channel::{
    ChannelError, ChannelRef, RequestExpectation, SignedChannelReceipt, SignedVoucher,
};
use crate::client::ClientError;
use crate::client::Usage;
use crate::client::cost::TokenBound;
use crate::client::relayer::{api_error, unreachable};
use crate::client::sse::{SseEvent, SseParser};
use crate::job::{FinishReason, JobOutput, ModelKind, ModelSpec};
use crate::relay::channel::{
    ChannelEvent as Wire, ChannelRefusal, ChannelSubmit, ChannelTicket, ChannelVoucherPush,
};
use crate::relay::{CHANNEL_REQUESTS_PATH, CHANNEL_VOUCHERS_PATH, PROTOCOL_VERSION};
use crate::seal::{ClientSeal, JobContext, ResponseOpener, seal_input};
use crate::tlb::TonAddress;

/// A finished channel request whose receipt checked and was paid.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelResult {
    /// The channel that served it.
    pub channel: ChannelRef,
    /// The receipt's seq on that channel.
    pub seq: u32,
    /// The Worker contract that served it.
    pub worker: TonAddress,
    /// The model.
    pub model: ModelSpec,
    /// Generated text (empty for embeddings).
    pub text: String,
    /// Embedding vectors, for embedding requests.
    pub embeddings: Option<Vec<Vec<f32>>>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Tokens billed (equal to the receipt's).
    pub usage: Usage,
    /// nanoTON charged by the receipt.
    pub cost: u128,
    /// The most the request could have cost on that channel (its token bound at the channel's
    /// prices).
    pub max_cost: u128,
    /// The channel's cumulative amount paid after it (the voucher's).
    pub cumulative: u128,
    /// Its attestation kind ([`EvidenceKind::Simulated`] = UNATTESTED).
    pub attestation_kind: EvidenceKind,
    /// Its GPU evidence, verified and bound to its keys (none: it proved no GPU).
    pub gpu: Option<crate::attest::VerifiedGpu>,
    /// The worker's signed receipt.
    pub receipt: SignedChannelReceipt,
    /// The voucher signed for it.
    pub voucher: SignedVoucher,
    /// sha256 of the sealed input.
    pub input_commitment: [u8; 32],
    /// Commitment to the answer received (equal to the receipt's).
    pub output_commitment: [u8; 32],
}

/// What a channel request's stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelEvent {
    /// The relayer handed the request to one channel's worker; a later `Dispatched` is a
    /// failover, and what earlier attempts produced is void.
    Dispatched {
        /// The channel.
        channel: ChannelRef,
        /// Its worker.
        worker: TonAddress,
        /// Its attestation kind, as verified.
        attestation_kind: EvidenceKind,
        /// Attempt number.
        attempt: u32,
    },
    /// Newly generated text.
    Delta(String),
    /// The embedding vectors.
    Embeddings(Vec<Vec<f32>>),
    /// Done, the receipt checked and paid; nothing follows.
    Done(Box<ChannelResult>),
}

/// One ticket of the request and what the client knows of its worker.
#[derive(Debug, Clone)]
struct Named {
    channel: ChannelRef,
    worker: TonAddress,
    encryption_key: [u8; 32],
    kind: EvidenceKind,
    gpu: Option<crate::attest::VerifiedGpu>,
}

#[derive(Debug)]
struct Attempt {
    number: u32,
    ticket: usize,
    opener: ResponseOpener,
    chunks: u32,
    text: String,
    embeddings: Option<Vec<Vec<f32>>>,
    done: Option<(FinishReason, Usage)>,
}

/// The events of one channel request, as they arrive.
#[derive(Debug)]
pub struct ChannelStream {
    inner: Arc<Inner>,
    _lease: Lease,
    model: ModelSpec,
    bound: TokenBound,
    seal: ClientSeal,
    named: Vec<Named>,
    response: reqwest::Response,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    attempt: Option<Attempt>,
    /// The latest refusal and its detail.
    last_refusal: Option<(ChannelRefusal, String)>,
    finished: bool,
}

/// Seals and posts the request on the leased channels.
pub(super) async fn start(
    inner: Arc<Inner>,
    lease: Lease,
    model: ModelSpec,
    bound: TokenBound,
    plaintext: Vec<u8>,
) -> Result<ChannelStream> {
    let now32 = crate::clock::unix_now_u32();
    let (tickets, named) = {
        let slots = lock(&inner.slots);
        let cache = lock(&inner.workers);
        let mut tickets = Vec::new();
        let mut named = Vec::new();
        for id in &lease.ids {
            let s = slots
                .iter()
                .find(|s| s.id() == *id)
                .ok_or_else(|| ChannelClientError::Failed(format!("channel {id} vanished")))?;
            let w = cache.get(s.worker(), u64::from(now32)).ok_or_else(|| {
                ChannelClientError::Failed(format!("worker of channel {id} is no longer verified"))
            })?;
            tickets.push(ChannelTicket::from(s.session.next_request(now32)?));
            named.push(Named {
                channel: s.session.channel().clone(),
                worker: w.address.clone(),
                encryption_key: w.encryption_key,
                kind: w.kind(),
                gpu: w.attestation.gpu.clone(),
            });
        }
        (tickets, named)
    };
    let keys: Vec<[u8; 32]> = named.iter().map(|n| n.encryption_key).collect();
    let seal = seal_input(
        &plaintext,
        &keys,
        &JobContext::channel_request(inner.escrow.clone(), model.id),
    )?;
    {
        let mut slots = lock(&inner.slots);
        for (n, t) in named.iter().zip(&tickets) {
            if let Some(s) = slots.iter_mut().find(|s| s.id() == n.channel.channel_id) {
                s.unanswered.sent(
                    t.seq,
                    RequestExpectation {
                        model_id: model.id,
                        max_tokens: bound.output,
                        input_commitment: seal.input_commitment,
                        output_commitment: [0; 32],
                    },
                );
            }
        }
    }
    let submit = ChannelSubmit {
        version: PROTOCOL_VERSION,
        tickets,
        model_id: model.id,
        max_tokens: bound.output,
        sealed_input: seal.sealed.clone(),
    };
    let url = format!("{}{CHANNEL_REQUESTS_PATH}", inner.relayer.base_url());
    let response = inner
        .relayer
        .http()
        .post(&url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&submit)
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(api_error(response).await.into());
    }
    debug!(target: "sdk::channels", channels = ?named.iter().map(|n| n.channel.channel_id).collect::<Vec<_>>(), model = model.id, "request sent");
    Ok(ChannelStream {
        inner,
        _lease: lease,
        model,
        bound,
        seal,
        named,
        response,
        parser: SseParser::new(),
        ready: VecDeque::new(),
        attempt: None,
        last_refusal: None,
        finished: false,
    })
}

/// A worker's refusal as the client's error, its code in `snake_case` as on the wire.
fn refused(code: ChannelRefusal, message: String) -> ChannelClientError {
    let code = serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    ChannelClientError::Refused { code, message }
}

/// Why a request of `tickets` channels failed: the last refusal when it decides the request (no
/// other channel could overcome it — a prompt beyond the context, say — or it was the only
/// channel), else the relayer's reason.
fn failure(
    last_refusal: Option<(ChannelRefusal, String)>,
    tickets: usize,
    reason: String,
) -> ChannelClientError {
    match last_refusal {
        Some((code, message)) if !code.fails_over() || tickets == 1 => refused(code, message),
        _ => ChannelClientError::Failed(reason),
    }
}

fn bad(msg: impl Into<String>) -> ChannelClientError {
    ClientError::BadResponse(msg.into()).into()
}

impl ChannelStream {
    /// The channels the request named, most preferred first.
    pub fn channels(&self) -> Vec<ChannelRef> {
        self.named.iter().map(|n| n.channel.clone()).collect()
    }

    /// The next event; `None` after `Done` or an error.
    pub async fn next(&mut self) -> Option<Result<ChannelEvent>> {
        while !self.finished {
            let raw = match self.next_raw().await {
                Ok(Some(raw)) => raw,
                Ok(None) => {
                    self.finished = true;
                    return Some(Err(match self.last_refusal.take() {
                        Some((code, message)) => refused(code, message),
                        None => bad("the relayer closed the stream before the receipt"),
                    }));
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            };
            let ev: Wire = match serde_json::from_str(&raw.data) {
                Ok(ev) => ev,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(bad(format!("{} event does not parse: {e}", raw.event))));
                }
            };
            match self.handle(ev).await {
                Ok(Some(out)) => {
                    if matches!(out, ChannelEvent::Done(_)) {
                        self.finished = true;
                    }
                    return Some(Ok(out));
                }
                Ok(None) => {}
                Err(e) => {
                    self.finished = true;
                    warn!(target: "sdk::channels", error = %e, "channel request failed");
                    return Some(Err(e));
                }
            }
        }
        None
    }

    /// Reads the rest of the stream and returns the paid result.
    pub async fn finish(mut self) -> Result<ChannelResult> {
        while let Some(ev) = self.next().await {
            if let ChannelEvent::Done(r) = ev? {
                return Ok(*r);
            }
        }
        Err(bad("the stream ended without a result"))
    }

    async fn next_raw(&mut self) -> Result<Option<SseEvent>> {
        loop {
            if let Some(raw) = self.ready.pop_front() {
                return Ok(Some(raw));
            }
            match self.response.chunk().await.map_err(unreachable)? {
                Some(bytes) => {
                    let evs = self
                        .parser
                        .feed(&bytes)
                        .map_err(|e| bad(format!("event stream: {e}")))?;
                    self.ready.extend(evs);
                }
                None => return Ok(None),
            }
        }
    }

    async fn handle(&mut self, ev: Wire) -> Result<Option<ChannelEvent>> {
        match ev {
            Wire::Dispatched { channel, attempt } => self.dispatched(channel, attempt),
            Wire::Chunk { attempt, seq, data } => self.chunk(attempt, seq, &data),
            Wire::Receipt {
                attempt,
                chunks,
                receipt,
            } => self.receipt(attempt, chunks, receipt).await.map(Some),
            Wire::Refused {
                attempt,
                code,
                message,
                receipt,
                ..
            } => {
                info!(target: "sdk::channels", attempt, code = ?code, %message, "a worker refused; the relayer fails over when it can");
                if let (ChannelRefusal::SeqTaken, Some(r)) = (code, receipt) {
                    pay_lost_answer(&self.inner, r).await;
                }
                self.last_refusal = Some((code, message));
                Ok(None)
            }
            Wire::Failed { reason } => {
                Err(failure(self.last_refusal.take(), self.named.len(), reason))
            }
        }
    }

    fn dispatched(&mut self, channel: ChannelRef, attempt: u32) -> Result<Option<ChannelEvent>> {
        if let Some(a) = &self.attempt
            && attempt <= a.number
        {
            return Err(bad(format!(
                "dispatch attempt {attempt} after attempt {}",
                a.number
            )));
        }
        let ticket = self
            .named
            .iter()
            .position(|n| n.channel == channel)
            .ok_or_else(|| {
                bad(format!(
                    "dispatched on channel {}, which the request did not name",
                    channel.channel_id
                ))
            })?;
        let opener = self
            .seal
            .response_opener(&self.named[ticket].encryption_key)?;
        if self.attempt.is_some() {
            info!(target: "sdk::channels", channel_id = channel.channel_id, attempt, "failover: the answer restarts");
        }
        self.attempt = Some(Attempt {
            number: attempt,
            ticket,
            opener,
            chunks: 0,
            text: String::new(),
            embeddings: None,
            done: None,
        });
        Ok(Some(ChannelEvent::Dispatched {
            channel,
            worker: self.named[ticket].worker.clone(),
            attestation_kind: self.named[ticket].kind,
            attempt,
        }))
    }

    fn chunk(&mut self, attempt: u32, seq: u32, data: &[u8]) -> Result<Option<ChannelEvent>> {
        let kind = self.model.kind;
        let a = self
            .attempt
            .as_mut()
            .ok_or_else(|| bad("a chunk before any dispatch"))?;
        if attempt < a.number {
            return Ok(None);
        }
        if attempt > a.number {
            return Err(bad(format!(
                "a chunk of attempt {attempt} before its dispatch (now {})",
                a.number
            )));
        }
        if seq != a.chunks {
            return Err(bad(format!(
                "chunk {seq} arrived, expected {}: dropped or reordered",
                a.chunks
            )));
        }
        let plain = a
            .opener
            .open_chunk(data)
            .map_err(|e| bad(format!("chunk {seq} does not open: {e}")))?;
        a.chunks += 1;
        let out = JobOutput::decode(&plain)
            .map_err(|e| bad(format!("chunk {seq} is not a job output: {e}")))?;
        let is_final = a.opener.is_finished();
        let is_done = matches!(out, JobOutput::Done { .. });
        if is_done != is_final {
            return Err(bad("`done` must be exactly the final chunk"));
        }
        match out {
            JobOutput::Delta { text } if kind == ModelKind::Text => {
                a.text.push_str(&text);
                Ok(Some(ChannelEvent::Delta(text)))
            }
            JobOutput::Embeddings { vectors }
                if kind == ModelKind::Embedding && a.embeddings.is_none() =>
            {
                a.embeddings = Some(vectors.clone());
                Ok(Some(ChannelEvent::Embeddings(vectors)))
            }
            JobOutput::Done {
                finish_reason,
                prompt_tokens,
                completion_tokens,
            } => {
                a.done = Some((
                    finish_reason,
                    Usage {
                        prompt_tokens,
                        completion_tokens,
                    },
                ));
                Ok(None)
            }
            other => Err(bad(format!("unexpected output: {other:?}"))),
        }
    }

    async fn receipt(
        &mut self,
        attempt: u32,
        chunks: u32,
        receipt: SignedChannelReceipt,
    ) -> Result<ChannelEvent> {
        let a = self
            .attempt
            .take()
            .ok_or_else(|| bad("a receipt before any dispatch"))?;
        let named = self.named[a.ticket].clone();
        if attempt != a.number || receipt.body.channel != named.channel {
            return Err(bad(format!(
                "receipt of channel {} attempt {attempt}, but attempt {} was streamed on channel {}",
                receipt.body.channel.channel_id, a.number, named.channel.channel_id
            )));
        }
        // Kept before any other check: a validly signed receipt is evidence whatever else is
        // wrong with it.
        let key = lock(&self.inner.slots)
            .iter()
            .find(|s| s.id() == named.channel.channel_id)
            .map(|s| *s.session.receipt_key());
        if let Some(key) = key {
            super::equivocation::observe(&self.inner, key, &receipt).await;
        }
        if chunks != a.chunks {
            return Err(bad(format!(
                "the receipt covers {chunks} chunks, {} were received",
                a.chunks
            )));
        }
        let (finish_reason, usage) = a
            .done
            .ok_or_else(|| bad("the answer was truncated: no final chunk"))?;
        let output_commitment = a.opener.finish()?;
        let expectation = RequestExpectation {
            model_id: self.model.id,
            max_tokens: self.bound.output,
            input_commitment: self.seal.input_commitment,
            output_commitment,
        };
        let b = &receipt.body;
        if (b.tokens_in, b.tokens_out) != (usage.prompt_tokens, usage.completion_tokens) {
            return Err(bad(format!(
                "the receipt bills {}/{} tokens, the answer reported {}/{}",
                b.tokens_in, b.tokens_out, usage.prompt_tokens, usage.completion_tokens
            )));
        }
        let channel_id = named.channel.channel_id;
        let slot_prices;
        let voucher = {
            let mut slots = lock(&self.inner.slots);
            let slot = slots
                .iter_mut()
                .find(|s| s.id() == channel_id)
                .ok_or_else(|| {
                    ChannelClientError::Failed(format!("channel {channel_id} vanished"))
                })?;
            slot_prices = (
                slot.session.state().price_in,
                slot.session.state().price_out,
            );
            match slot.session.on_receipt(&receipt, &expectation) {
                Ok(v) => {
                    let v = v.clone();
                    slot.receipts.push(receipt.clone());
                    slot.unanswered = Default::default();
                    v
                }
                Err(e) => {
                    if matches!(e, ChannelError::BadSignature { .. }) {
                        // The record may have changed (a key rotation): read it again next time.
                        lock(&self.inner.workers).forget(&named.worker);
                    }
                    warn!(target: "sdk::channels", channel_id, seq = b.seq, error = %e, "receipt refused: no voucher signed");
                    return Err(e.into());
                }
            }
        };
        save_store(&self.inner)?;
        push_voucher(&self.inner, &named.channel, &voucher).await;
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
        debug!(target: "sdk::channels", channel_id, seq = b.seq, cost = %b.cost, cumulative = %voucher.body.cumulative, "receipt paid");
        Ok(ChannelEvent::Done(Box::new(ChannelResult {
            channel: named.channel,
            seq: b.seq,
            worker: named.worker,
            model: self.model,
            text: a.text,
            embeddings: a.embeddings,
            finish_reason,
            usage,
            cost: b.cost,
            max_cost: crate::client::cost_of(self.bound, slot_prices.0, slot_prices.1)
                .unwrap_or(u128::MAX),
            cumulative: voucher.body.cumulative,
            attestation_kind: named.kind,
            gpu: named.gpu,
            input_commitment: self.seal.input_commitment,
            output_commitment,
            receipt,
            voucher,
        })))
    }
}

/// Pays the receipt a worker resent for a seq the client asked for again (`seq_taken`): the
/// answer of an earlier request with that seq was lost on the way (a relayer crash after the
/// worker signed), and the worker serves the channel no more until it is paid. Only a receipt
/// for one of the requests the client sent with that seq and never got an answer to is paid
/// (every check but the output commitment, which the client never saw); anything else is left
/// unpaid and the channel is not used on.
async fn pay_lost_answer(inner: &Inner, receipt: SignedChannelReceipt) {
    let channel = receipt.body.channel.clone();
    let key = lock(&inner.slots)
        .iter()
        .find(|s| s.session.channel() == &channel)
        .map(|s| *s.session.receipt_key());
    let Some(key) = key else {
        return;
    };
    super::equivocation::observe(inner, key, &receipt).await;
    let voucher = {
        let mut slots = lock(&inner.slots);
        let Some(slot) = slots.iter_mut().find(|s| s.session.channel() == &channel) else {
            return;
        };
        let b = &receipt.body;
        if slot.unanswered.seq != b.seq {
            debug!(target: "sdk::channels", channel_id = channel.channel_id, seq = b.seq, "seq taken by a receipt of no request left unanswered");
            return;
        }
        let Some(request) = slot
            .unanswered
            .requests
            .iter()
            .find(|r| r.input_commitment == b.commitments.input_commitment)
            .cloned()
        else {
            warn!(target: "sdk::channels", channel_id = channel.channel_id, seq = b.seq, "the worker resent a receipt for an input this client never sent: not paid");
            return;
        };
        match slot.session.on_receipt_without_answer(&receipt, &request) {
            Ok(v) => {
                let v = v.clone();
                slot.receipts.push(receipt.clone());
                slot.unanswered = Default::default();
                v
            }
            Err(e) => {
                warn!(target: "sdk::channels", channel_id = channel.channel_id, seq = b.seq, error = %e, "resent receipt refused: not paid");
                return;
            }
        }
    };
    info!(target: "sdk::channels", channel_id = channel.channel_id, seq = receipt.body.seq, cost = %receipt.body.cost, "paid the receipt of a request whose answer was lost");
    if let Err(e) = save_store(inner) {
        warn!(target: "sdk::channels", channel_id = channel.channel_id, error = %e, "channels not saved");
    }
    push_voucher(inner, &channel, &voucher).await;
}

/// Hands `voucher` to the channel's worker through the relayer (so the worker can settle it). A
/// failure is logged, not returned: the next request carries the voucher anyway.
pub(super) async fn push_voucher(inner: &Inner, channel: &ChannelRef, voucher: &SignedVoucher) {
    let body = ChannelVoucherPush {
        version: PROTOCOL_VERSION,
        channel: channel.clone(),
        voucher: voucher.clone(),
    };
    let url = format!("{}{CHANNEL_VOUCHERS_PATH}", inner.relayer.base_url());
    match inner.relayer.http().post(&url).json(&body).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let e = api_error(r).await;
            warn!(target: "sdk::channels", channel_id = channel.channel_id, error = %e, "voucher not delivered");
        }
        Err(e) => {
            warn!(target: "sdk::channels", channel_id = channel.channel_id, error = %e, "voucher not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: &ChannelClientError) -> Option<&str> {
        match e {
            ChannelClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    #[test]
    fn a_final_refusal_decides_the_request_whatever_the_number_of_channels() {
        let too_long = || Some((ChannelRefusal::ContextLengthExceeded, "8193 tokens".into()));
        for tickets in [1, 2, 8] {
            let e = failure(too_long(), tickets, "no channel left".into());
            assert_eq!(
                code_of(&e),
                Some("context_length_exceeded"),
                "{tickets}: {e}"
            );
        }
        // A refusal about one channel only speaks for the request when it was the only one.
        let busy = || Some((ChannelRefusal::Busy, "serving seq 3".into()));
        assert_eq!(code_of(&failure(busy(), 1, "x".into())), Some("busy"));
        assert!(matches!(
            failure(busy(), 2, "every channel refused".into()),
            ChannelClientError::Failed(r) if r == "every channel refused"
        ));
        assert!(matches!(
            failure(None, 1, "worker offline".into()),
            ChannelClientError::Failed(_)
        ));
    }
}
