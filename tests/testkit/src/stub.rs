//! A stub worker: dials the relayer's WebSocket like a real worker, authenticates with a real
//! ed25519 receipt key, and answers every dispatch at once with opaque chunks and a genuinely
//! signed receipt. It stands in for the inference engine in tests and in the relayer's benchmark
//! (`relayer/examples/bench.rs`); its modes misbehave on purpose to exercise failover.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use futures_util::{SinkExt as _, StreamExt as _};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tonlib_core::TonAddress;

use cocoon_sdk::channel::{ACC_ZERO, ChannelReceipt, SignedChannelReceipt};
use cocoon_sdk::job::{FinishReason, JobOutput, JobRequest, Task};
use cocoon_sdk::receipt::{ReceiptBody, ReceiptCommitments, ReceiptError, ReceiptHashes};
use cocoon_sdk::relay::auth::auth_payload;
use cocoon_sdk::relay::channel::{
    ChannelChunk, ChannelDispatch, ChannelDone, ChannelRefusal, ChannelRefused, ChannelVoucherPush,
};
use cocoon_sdk::relay::worker::{
    Chunk, Dispatch, Done, Heartbeat, Hello, JobFailed, JobFailure, RelayMessage, WorkerMessage,
};
use cocoon_sdk::relay::{JobRef, PROTOCOL_VERSION, WORKER_WS_PATH};
use cocoon_sdk::seal::{EncryptionKeyPair, JobContext, open_input};
use cocoon_sdk::tlb::{TlbError, TlbType as _};

use cocoon_relayer::registry::{OnChainWorker, WorkerStatus};

/// How a stub worker behaves when a job arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StubMode {
    /// Answers at once: chunks, then a valid receipt.
    Answer,
    /// Never answers (the relayer must time out and fail over).
    Silent,
    /// Sends one chunk, then drops the connection (failover mid-stream).
    DisconnectMidJob,
    /// Refuses every job as busy.
    Refuse,
    /// Answers with a receipt signed by the wrong key.
    BadReceipt,
    /// In channel mode with [`StubWorker::sealing`]: a correctly signed receipt that commits to
    /// another output than the one sent (only the client, which opens the answer, can tell).
    WrongOutput,
}

/// A stub worker's identity: receipt key, encryption key, address, evidence.
#[derive(Debug, Clone)]
pub struct StubWorker {
    /// Signs the session auth and receipts.
    pub signing_key: SigningKey,
    /// Worker contract address (raw).
    pub address: String,
    /// X25519 public key it claims (the stub never decrypts: the relayer never needs it to).
    pub encryption_key: [u8; 32],
    /// Evidence it serves.
    pub evidence: Vec<u8>,
    /// Models it serves.
    pub models: Vec<u32>,
    /// Jobs at once.
    pub capacity: u32,
    /// Output chunks per job.
    pub chunks: u32,
    /// nanoTON per input / output token.
    pub prices: (u64, u64),
    /// Behaviour.
    pub mode: StubMode,
    /// In channel mode: refuse every channel request with this code instead of serving it.
    pub channel_refusal: Option<ChannelRefusal>,
    /// In channel mode: the worker's encryption key pair. With it the stub answers like a real
    /// worker: it opens the sealed input, seals an echo of it, and signs a receipt that chains
    /// from the ticket's voucher with the real output commitment (what a client checks).
    pub sealing: Option<EncryptionKeyPair>,
    /// In channel mode without [`StubWorker::sealing`]: receipts signed ahead of time, answered
    /// instead of signing when one is exactly the receipt the stub would sign (the benchmark
    /// signs before its clock starts; tests leave this `None` and sign live).
    pub presigned: Option<Arc<PresignedReceipts>>,
}

/// Channel receipts signed ahead of time by one key, by (escrow, channel id, seq), each with
/// its base64 BOC encoded ahead too.
#[derive(Debug, Clone)]
pub struct PresignedReceipts {
    key: VerifyingKey,
    receipts: HashMap<(TonAddress, u64, u32), (SignedChannelReceipt, String)>,
}

impl PresignedReceipts {
    /// An empty table of receipts signed by `key`'s secret.
    pub fn new(key: VerifyingKey) -> Self {
        Self {
            key,
            receipts: HashMap::new(),
        }
    }

    /// Adds a receipt signed by the table's key (answered as it is: whoever receives it checks
    /// its signature, as the relayer and clients do).
    pub fn insert(&mut self, receipt: SignedChannelReceipt) -> Result<(), TlbError> {
        let encoded = STANDARD.encode(receipt.to_boc()?);
        let c = &receipt.body.channel;
        self.receipts.insert(
            (c.escrow.clone(), c.channel_id, receipt.body.seq),
            (receipt, encoded),
        );
        Ok(())
    }

    /// Receipts held.
    pub fn len(&self) -> usize {
        self.receipts.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
    }

    fn entry(&self, body: &ChannelReceipt) -> Option<&(SignedChannelReceipt, String)> {
        let c = &body.channel;
        self.receipts
            .get(&(c.escrow.clone(), c.channel_id, body.seq))
            .filter(|(r, _)| &r.body == body)
    }

    /// The receipt signed for exactly `body` by `key`, if held.
    fn get(&self, body: &ChannelReceipt, key: &SigningKey) -> Option<SignedChannelReceipt> {
        if key.verifying_key() != self.key {
            return None;
        }
        self.entry(body).map(|(r, _)| r.clone())
    }

    /// The encoding of `receipt`, if this table holds exactly it.
    fn encoded(&self, receipt: &SignedChannelReceipt) -> Option<&str> {
        self.entry(&receipt.body)
            .filter(|(r, _)| r == receipt)
            .map(|(_, e)| e.as_str())
    }
}

/// A `channel_done` frame written with its receipt already encoded: the text serde writes for
/// [`WorkerMessage::ChannelDone`] (its tag first, then the fields in order).
#[derive(serde::Serialize)]
struct DoneFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: u64,
    attempt: u32,
    chunks: u32,
    receipt: &'a str,
    #[serde(with = "cocoon_sdk::channel::serde_fields::nano")]
    cost: u128,
}

impl StubWorker {
    /// A stub with keys derived from `seed`, serving `models`.
    pub fn new(seed: u8, models: Vec<u32>) -> Self {
        let signing_key = SigningKey::from_bytes(
            &Sha256::digest([b"stub-worker-key".as_slice(), &[seed]].concat()).into(),
        );
        let address = format!(
            "0:{}",
            hex::encode(Sha256::digest(
                [b"stub-worker-addr".as_slice(), &[seed]].concat()
            ))
        );
        Self {
            signing_key,
            address,
            encryption_key: Sha256::digest([b"stub-worker-x25519".as_slice(), &[seed]].concat())
                .into(),
            evidence: format!("simulated evidence of stub worker {seed}").into_bytes(),
            models,
            capacity: 64,
            chunks: 2,
            prices: (1, 2),
            mode: StubMode::Answer,
            channel_refusal: None,
            sealing: None,
            presigned: None,
        }
    }

    /// The Worker record the chain would hold for this stub (for a [`crate::StaticRegistry`]).
    pub fn on_chain(&self) -> OnChainWorker {
        OnChainWorker {
            status: WorkerStatus::Active,
            stake: 1_000_000_000_000,
            min_stake: 1_000_000_000,
            receipt_key: self.signing_key.verifying_key().to_bytes(),
            encryption_key: self.encryption_key,
            price_in: self.prices.0,
            price_out: self.prices.1,
            models: self.models.clone(),
            attestation_kind: 0,
            evidence_hash: Sha256::digest(&self.evidence).into(),
            expires_at: u32::MAX,
        }
    }

    /// Connects to the relayer at `base` (e.g. `ws://127.0.0.1:PORT`) and serves until the
    /// connection ends. Returns once the relayer welcomed the session.
    pub async fn connect(&self, base: &str) -> Result<StubHandle, StubError> {
        let url = format!("{base}{WORKER_WS_PATH}");
        // Nagle off, as a real worker should: its chunks are small writes.
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, None, true)
            .await
            .map_err(|e| StubError(e.to_string()))?;
        let challenge = match next_message(&mut ws).await? {
            RelayMessage::Challenge(c) => c,
            other => return Err(StubError(format!("expected a challenge, got {other:?}"))),
        };
        let receipt_key = self.signing_key.verifying_key().to_bytes();
        let payload = auth_payload(
            PROTOCOL_VERSION,
            &challenge.nonce,
            &challenge.relayer_id,
            &self.address,
            &receipt_key,
        );
        let hello = Hello {
            version: PROTOCOL_VERSION,
            worker: self.address.clone(),
            receipt_key,
            encryption_key: self.encryption_key,
            models: self.models.clone(),
            capacity: self.capacity,
            evidence: self.evidence.clone(),
            signature: self.signing_key.sign(&payload).to_bytes(),
        };
        send(&mut ws, &WorkerMessage::Hello(hello)).await?;
        match next_message(&mut ws).await? {
            RelayMessage::Welcome(_) => {}
            RelayMessage::Error(e) => {
                return Err(StubError(format!("refused: {:?}: {}", e.code, e.message)));
            }
            other => return Err(StubError(format!("expected welcome, got {other:?}"))),
        }
        let jobs = Arc::new(AtomicU32::new(0));
        let vouchers = Arc::new(Mutex::new(Vec::new()));
        let seen = Seen {
            jobs: jobs.clone(),
            vouchers: vouchers.clone(),
        };
        let me = self.clone();
        let (frames, outbox) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move { me.serve(ws, seen, outbox).await });
        Ok(StubHandle {
            jobs,
            vouchers,
            frames,
            task,
        })
    }

    async fn serve(
        self,
        mut ws: Ws,
        seen: Seen,
        mut outbox: mpsc::UnboundedReceiver<WorkerMessage>,
    ) {
        loop {
            let msg = tokio::select! {
                m = next_message(&mut ws) => match m {
                    Ok(m) => m,
                    Err(_) => return,
                },
                Some(frame) = outbox.recv() => {
                    if send(&mut ws, &frame).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let d = match msg {
                RelayMessage::Dispatch(d) => d,
                RelayMessage::ChannelDispatch(d) => {
                    seen.jobs.fetch_add(1, Ordering::SeqCst);
                    if self.mode == StubMode::Silent {
                        continue;
                    }
                    let Ok(frames) = self.answer_channel_frames(&d) else {
                        return;
                    };
                    // Written together and flushed once, as a worker writes what it has.
                    for text in frames {
                        if ws.feed(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    if ws.flush().await.is_err() {
                        return;
                    }
                    continue;
                }
                RelayMessage::ChannelVoucher(v) => {
                    seen.vouchers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(v);
                    continue;
                }
                _ => continue,
            };
            seen.jobs.fetch_add(1, Ordering::SeqCst);
            let replies = match self.mode {
                StubMode::Silent => continue,
                StubMode::Refuse => vec![WorkerMessage::JobFailed(JobFailed {
                    job: d.job.clone(),
                    attempt: d.attempt,
                    code: JobFailure::Busy,
                    message: "busy".into(),
                })],
                StubMode::DisconnectMidJob => {
                    let _ = send(&mut ws, &WorkerMessage::Chunk(self.chunk(&d, 0))).await;
                    let _ = ws.close(None).await;
                    return;
                }
                StubMode::Answer | StubMode::BadReceipt | StubMode::WrongOutput => self.answer(&d),
            };
            for r in replies {
                if send(&mut ws, &r).await.is_err() {
                    return;
                }
            }
        }
    }

    fn chunk(&self, d: &Dispatch, seq: u32) -> Chunk {
        // Opaque bytes standing in for sealed output: the relayer must pass them through as is.
        let data =
            Sha256::digest([d.sealed_input.as_slice(), &seq.to_be_bytes()].concat()).to_vec();
        Chunk {
            job: d.job.clone(),
            attempt: d.attempt,
            seq,
            data,
        }
    }

    /// The messages a well-behaved worker sends for `d`.
    pub fn answer(&self, d: &Dispatch) -> Vec<WorkerMessage> {
        let mut out: Vec<WorkerMessage> = (0..self.chunks)
            .map(|i| WorkerMessage::Chunk(self.chunk(d, i)))
            .collect();
        let (tokens_in, tokens_out) = (16u32, 8 * self.chunks);
        let cost = (u64::from(tokens_in) * self.prices.0 + u64::from(tokens_out) * self.prices.1)
            .min(d.max_cost);
        let key = if self.mode == StubMode::BadReceipt {
            SigningKey::from_bytes(&[7; 32])
        } else {
            self.signing_key.clone()
        };
        let fields = ReceiptFields {
            job: d.job.clone(),
            worker: self.address.clone(),
            model_id: d.model_id,
            tokens_in,
            tokens_out,
            cost: u128::from(cost),
            time: 1_800_000_000,
            weights_hash: [0x11; 32],
            evidence_hash: Sha256::digest(&self.evidence).into(),
            input_commitment: d.input_commitment,
            output_commitment: [0x22; 32],
        };
        let receipt = signed_receipt(&key, &fields).unwrap_or_default();
        out.push(WorkerMessage::Done(Done {
            job: d.job.clone(),
            attempt: d.attempt,
            chunks: self.chunks,
            receipt,
            cost,
        }));
        out
    }

    /// [`StubWorker::answer_channel`] as the text frames sent: a receipt from
    /// [`StubWorker::presigned`] goes out as it was encoded ahead, any other is encoded now.
    pub fn answer_channel_frames(&self, d: &ChannelDispatch) -> serde_json::Result<Vec<String>> {
        self.answer_channel(d)
            .iter()
            .map(|m| {
                let WorkerMessage::ChannelDone(done) = m else {
                    return serde_json::to_string(m);
                };
                match self
                    .presigned
                    .as_ref()
                    .and_then(|t| t.encoded(&done.receipt))
                {
                    Some(receipt) => serde_json::to_string(&DoneFrame {
                        kind: "channel_done",
                        request_id: done.request_id,
                        attempt: done.attempt,
                        chunks: done.chunks,
                        receipt,
                        cost: done.cost,
                    }),
                    None => serde_json::to_string(m),
                }
            })
            .collect()
    }

    /// The messages this stub sends for a channel request: its refusal, or chunks and a
    /// ChannelDone whose receipt it signs for the ticket's (channel, seq) at its prices.
    pub fn answer_channel(&self, d: &ChannelDispatch) -> Vec<WorkerMessage> {
        if let Some(code) = self.channel_refusal {
            return vec![WorkerMessage::ChannelRefused(ChannelRefused {
                request_id: d.request_id,
                attempt: d.attempt,
                code,
                message: format!("stub refuses: {code:?}"),
                expected_seq: None,
                receipt: None,
            })];
        }
        if let Some(enc) = &self.sealing {
            return self.answer_channel_sealed(d, enc);
        }
        let mut out: Vec<WorkerMessage> = (0..self.chunks)
            .map(|seq| {
                WorkerMessage::ChannelChunk(ChannelChunk {
                    request_id: d.request_id,
                    attempt: d.attempt,
                    seq,
                    data: Sha256::digest([d.sealed_input.as_slice(), &seq.to_be_bytes()].concat())
                        .to_vec(),
                })
            })
            .collect();
        let (tokens_in, tokens_out) = (16u32, 8 * self.chunks);
        let cost = u128::from(tokens_in) * u128::from(self.prices.0)
            + u128::from(tokens_out) * u128::from(self.prices.1);
        match self.channel_receipt(d, tokens_in, tokens_out, cost) {
            Ok(receipt) => out.push(WorkerMessage::ChannelDone(ChannelDone {
                request_id: d.request_id,
                attempt: d.attempt,
                chunks: self.chunks,
                receipt,
                cost,
            })),
            Err(e) => out.push(WorkerMessage::ChannelRefused(ChannelRefused {
                request_id: d.request_id,
                attempt: d.attempt,
                code: ChannelRefusal::Internal,
                message: format!("stub could not sign: {e}"),
                expected_seq: None,
                receipt: None,
            })),
        }
        out
    }

    /// A sealed answer (see [`StubWorker::sealing`]), or a `bad_request` refusal when the input
    /// does not open.
    fn answer_channel_sealed(
        &self,
        d: &ChannelDispatch,
        enc: &EncryptionKeyPair,
    ) -> Vec<WorkerMessage> {
        let refuse = |message: String| {
            vec![WorkerMessage::ChannelRefused(ChannelRefused {
                request_id: d.request_id,
                attempt: d.attempt,
                code: ChannelRefusal::BadRequest,
                message,
                expected_seq: None,
                receipt: None,
            })]
        };
        let cx = JobContext::channel_request(d.ticket.channel.escrow.clone(), d.model_id);
        let opened = match open_input(&d.sealed_input, enc, &cx) {
            Ok(o) => o,
            Err(e) => return refuse(format!("cannot open the input: {e}")),
        };
        let request = match JobRequest::decode(&opened.plaintext) {
            Ok(r) => r,
            Err(e) => return refuse(format!("not a request: {e}")),
        };
        let mut outputs = Vec::new();
        let tokens_in = opened.plaintext.len() as u32 / 4;
        let tokens_out = match &request.task {
            Task::Chat { messages, .. } => {
                let last = messages.last().map(|m| m.content.as_str()).unwrap_or("");
                let words: Vec<String> = format!("echo: {last}")
                    .split(' ')
                    .map(|w| format!("{w} "))
                    .collect();
                for w in &words {
                    outputs.push(JobOutput::Delta { text: w.clone() });
                }
                words.len() as u32
            }
            Task::Completion { prompt, .. } => {
                outputs.push(JobOutput::Delta {
                    text: format!("{prompt}!"),
                });
                1
            }
            Task::Embeddings { input } => {
                outputs.push(JobOutput::Embeddings {
                    vectors: input.iter().map(|t| vec![t.len() as f32, 1.0]).collect(),
                });
                0
            }
        };
        outputs.push(JobOutput::Done {
            finish_reason: FinishReason::Stop,
            prompt_tokens: tokens_in,
            completion_tokens: tokens_out,
        });
        let mut sealer = opened.response;
        let n = outputs.len();
        let mut out = Vec::new();
        for (i, o) in outputs.iter().enumerate() {
            match sealer.seal_chunk(&o.encode(), i + 1 == n) {
                Ok(data) => out.push(WorkerMessage::ChannelChunk(ChannelChunk {
                    request_id: d.request_id,
                    attempt: d.attempt,
                    seq: i as u32,
                    data,
                })),
                Err(e) => return refuse(format!("cannot seal: {e}")),
            }
        }
        let cost = u128::from(tokens_in) * u128::from(self.prices.0)
            + u128::from(tokens_out) * u128::from(self.prices.1);
        // The receipt chains from what the ticket's voucher paid (a stub keeps no ledger).
        let prev_acc = match &d.ticket.voucher {
            Some(v) if v.body.last_seq + 1 == d.ticket.seq => v.body.acc,
            _ => ACC_ZERO,
        };
        let signed = TonAddress::from_hex_str(&self.address)
            .map_err(|e| e.to_string())
            .and_then(|worker| {
                let key = if self.mode == StubMode::BadReceipt {
                    SigningKey::from_bytes(&[7; 32])
                } else {
                    self.signing_key.clone()
                };
                ChannelReceipt {
                    channel: d.ticket.channel.clone(),
                    seq: d.ticket.seq,
                    worker,
                    model_id: d.model_id,
                    tokens_in,
                    tokens_out,
                    cost,
                    time: 1_800_000_000,
                    prev_acc,
                    hashes: ReceiptHashes {
                        weights_hash: [0x11; 32],
                        evidence_hash: Sha256::digest(&self.evidence).into(),
                    },
                    commitments: ReceiptCommitments {
                        input_commitment: opened.input_commitment,
                        output_commitment: if self.mode == StubMode::WrongOutput {
                            [0x22; 32]
                        } else {
                            sealer.output_commitment().map_err(|e| e.to_string())?
                        },
                    },
                }
                .sign(&key)
                .map_err(|e| e.to_string())
            });
        match signed {
            Ok(receipt) => out.push(WorkerMessage::ChannelDone(ChannelDone {
                request_id: d.request_id,
                attempt: d.attempt,
                chunks: n as u32,
                receipt,
                cost,
            })),
            Err(e) => return refuse(format!("cannot sign: {e}")),
        }
        out
    }

    fn channel_receipt(
        &self,
        d: &ChannelDispatch,
        tokens_in: u32,
        tokens_out: u32,
        cost: u128,
    ) -> Result<SignedChannelReceipt, String> {
        let worker = TonAddress::from_hex_str(&self.address).map_err(|e| e.to_string())?;
        let key = if self.mode == StubMode::BadReceipt {
            SigningKey::from_bytes(&[7; 32])
        } else {
            self.signing_key.clone()
        };
        let body = ChannelReceipt {
            channel: d.ticket.channel.clone(),
            seq: d.ticket.seq,
            worker,
            model_id: d.model_id,
            tokens_in,
            tokens_out,
            cost,
            time: 1_800_000_000,
            // The relayer does not follow the accumulator; the client does.
            prev_acc: [0; 32],
            hashes: ReceiptHashes {
                weights_hash: [0x11; 32],
                evidence_hash: Sha256::digest(&self.evidence).into(),
            },
            commitments: ReceiptCommitments {
                input_commitment: Sha256::digest(&d.sealed_input).into(),
                output_commitment: [0x22; 32],
            },
        };
        if let Some(signed) = self.presigned.as_ref().and_then(|t| t.get(&body, &key)) {
            return Ok(signed);
        }
        body.sign(&key).map_err(|e| e.to_string())
    }

    /// A heartbeat frame (tests send it by hand through their own sockets).
    pub fn heartbeat(load: u32, capacity: u32) -> WorkerMessage {
        WorkerMessage::Heartbeat(Heartbeat { load, capacity })
    }
}

/// A running stub session.
#[derive(Debug)]
pub struct StubHandle {
    jobs: Arc<AtomicU32>,
    vouchers: Arc<Mutex<Vec<ChannelVoucherPush>>>,
    frames: mpsc::UnboundedSender<WorkerMessage>,
    task: JoinHandle<()>,
}

impl StubHandle {
    /// Dispatches received so far.
    pub fn jobs(&self) -> u32 {
        self.jobs.load(Ordering::SeqCst)
    }

    /// Sends a heartbeat reporting `load` jobs running of `capacity` (a stub sends none unless
    /// told to, so a relayer with a short heartbeat interval drops it as gone).
    pub fn heartbeat(&self, load: u32, capacity: u32) {
        let _ = self.frames.send(StubWorker::heartbeat(load, capacity));
    }

    /// Sends a heartbeat (no load, `capacity`) every `every` while the session lasts, as a live
    /// worker does: a test whose chain is slow (the realistic profile, injected faults) keeps
    /// its stub connected until the jobs come.
    pub fn keep_alive(&self, every: std::time::Duration, capacity: u32) {
        let frames = self.frames.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                // Fails once the session has ended (its receiver is gone).
                if frames.send(StubWorker::heartbeat(0, capacity)).is_err() {
                    return;
                }
            }
        });
    }

    /// Channel vouchers the relayer handed on so far.
    pub fn vouchers(&self) -> Vec<ChannelVoucherPush> {
        self.vouchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Drops the connection.
    pub fn disconnect(self) {
        self.task.abort();
    }
}

/// What a stub session saw, shared with its handle.
struct Seen {
    jobs: Arc<AtomicU32>,
    vouchers: Arc<Mutex<Vec<ChannelVoucherPush>>>,
}

/// A stub connection failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("stub worker: {0}")]
pub struct StubError(pub String);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(ws: &mut Ws) -> Result<RelayMessage, StubError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t).map_err(|e| StubError(e.to_string()));
            }
            Some(Ok(Message::Close(_))) | None => return Err(StubError("closed".into())),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(StubError(e.to_string())),
        }
    }
}

async fn send(ws: &mut Ws, msg: &WorkerMessage) -> Result<(), StubError> {
    let text = serde_json::to_string(msg).map_err(|e| StubError(e.to_string()))?;
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| StubError(e.to_string()))
}

/// The fields of a receipt body (contracts/schema.tlb `receipt_body`).
#[derive(Debug, Clone)]
pub struct ReceiptFields {
    /// Escrow and job id.
    pub job: JobRef,
    /// Worker contract (raw address).
    pub worker: String,
    /// Model.
    pub model_id: u32,
    /// Input tokens.
    pub tokens_in: u32,
    /// Output tokens.
    pub tokens_out: u32,
    /// nanoTON.
    pub cost: u128,
    /// Unix time.
    pub time: u32,
    /// Weights hash.
    pub weights_hash: [u8; 32],
    /// Evidence hash.
    pub evidence_hash: [u8; 32],
    /// Input commitment.
    pub input_commitment: [u8; 32],
    /// Output commitment.
    pub output_commitment: [u8; 32],
}

/// Builds and signs a SignedReceipt cell with the sdk and returns its BOC.
pub fn signed_receipt(key: &SigningKey, f: &ReceiptFields) -> Result<Vec<u8>, ReceiptError> {
    let address = |a: &str| {
        TonAddress::from_hex_str(a).map_err(|e| TlbError::InvalidValue {
            field: "ReceiptFields.address",
            reason: e.to_string(),
        })
    };
    let body = ReceiptBody {
        escrow: address(&f.job.escrow)?,
        job_id: f.job.job_id,
        worker: address(&f.worker)?,
        model_id: f.model_id,
        tokens_in: f.tokens_in,
        tokens_out: f.tokens_out,
        cost: f.cost,
        time: f.time,
        hashes: ReceiptHashes {
            weights_hash: f.weights_hash,
            evidence_hash: f.evidence_hash,
        },
        commitments: ReceiptCommitments {
            input_commitment: f.input_commitment,
            output_commitment: f.output_commitment,
        },
    };
    Ok(body.sign(key)?.to_boc()?)
}

#[cfg(test)]
mod tests {
    use cocoon_sdk::channel::ChannelRef;
    use cocoon_sdk::relay::channel::ChannelTicket;

    use super::*;

    fn dispatch(seq: u32, input: &[u8]) -> ChannelDispatch {
        ChannelDispatch {
            request_id: 1,
            attempt: 1,
            ticket: ChannelTicket {
                channel: ChannelRef {
                    global_id: -239,
                    root: TonAddress::new(0, [1; 32].into()),
                    escrow: TonAddress::new(0, [2; 32].into()),
                    channel_id: 5,
                },
                seq,
                voucher: None,
            },
            model_id: 1,
            max_tokens: 8,
            sealed_input: input.to_vec(),
        }
    }

    fn receipt_of(answer: &[WorkerMessage]) -> SignedChannelReceipt {
        match answer.last() {
            Some(WorkerMessage::ChannelDone(d)) => d.receipt.clone(),
            other => panic!("no receipt: {other:?}"),
        }
    }

    #[test]
    fn a_presigned_receipt_is_answered_only_for_the_exact_receipt_the_stub_would_sign() {
        let live = StubWorker::new(1, vec![1]);
        let key = live.signing_key.verifying_key();
        let first = receipt_of(&live.answer_channel(&dispatch(1, b"in")));
        let mut table = PresignedReceipts::new(key);
        // A marker signature shows which answers come from the table.
        let mut marked = first.clone();
        marked.signature = [0xaa; 64];
        table.insert(marked.clone()).unwrap();
        assert_eq!(table.len(), 1);
        let mut stub = live.clone();
        stub.presigned = Some(Arc::new(table.clone()));
        assert_eq!(
            receipt_of(&stub.answer_channel(&dispatch(1, b"in"))),
            marked
        );
        // Its frames, written with the receipt encoded ahead, are the ones serde writes.
        for d in [dispatch(1, b"in"), dispatch(2, b"in")] {
            let expected: Vec<String> = stub
                .answer_channel(&d)
                .iter()
                .map(|m| serde_json::to_string(m).unwrap())
                .collect();
            assert_eq!(stub.answer_channel_frames(&d).unwrap(), expected);
        }
        // Another input or seq: signed live, as without the table.
        for d in [dispatch(1, b"other"), dispatch(2, b"in")] {
            let answered = receipt_of(&stub.answer_channel(&d));
            assert_eq!(answered, receipt_of(&live.answer_channel(&d)));
            answered.verify_signature(&key.to_bytes()).unwrap();
        }
        // A stub that signs with another key never answers from this table.
        stub.mode = StubMode::BadReceipt;
        let bad = receipt_of(&stub.answer_channel(&dispatch(1, b"in")));
        assert_ne!(bad, marked);
        assert!(bad.verify_signature(&key.to_bytes()).is_err());
    }
}
