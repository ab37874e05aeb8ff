//! A fake relayer for the client tests: it answers the client API (health, worker list, input,
//! event stream) and plays the worker's part of a job — opening the sealed input, sealing the
//! answer, signing the receipt — so every path of the client can be driven, including the ones a
//! real relayer and worker never take ([`Script`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cocoon_sdk::client::Client;
use cocoon_sdk::job::{JobOutput, JobRequest, ModelSpec, Task};
use cocoon_sdk::receipt::{ReceiptBody, ReceiptCommitments, ReceiptHashes};
use cocoon_sdk::relay::client::{
    ApiError, ApiErrorCode, Health, JobStatus, StreamEvent, SubmitAccepted, SubmitInput,
    WorkerInfo, WorkerList,
};
use cocoon_sdk::relay::{JobRef, PROTOCOL_VERSION};
use cocoon_sdk::seal::{JobContext, open_input};
use cocoon_sdk::tlb::{TlbType, TonAddress};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{Wallet, WalletKind, generate_mnemonic};
use ed25519_dalek::SigningKey;
use serde::Deserialize;

use crate::chain::{DevChain, RegisteredWorker};

impl RegisteredWorker {
    /// How a relayer lists it.
    pub fn info(&self) -> WorkerInfo {
        WorkerInfo {
            worker: self.address.to_hex(),
            receipt_key: self.signing.verifying_key().to_bytes(),
            encryption_key: self.enc.public_key(),
            models: self.models.clone(),
            price_in: self.price_in as u64,
            price_out: self.price_out as u64,
            evidence: self.evidence.encode(),
            evidence_hash: self.evidence.hash(),
            attestation_kind: 0,
            attestation_expires_at: 0,
            load: 0,
            capacity: 4,
            healthy: true,
        }
    }
}

/// How the in-test relayer answers the next job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// The first candidate answers correctly.
    Answer,
    /// The first candidate streams one chunk and vanishes; the second answers (attempt 2), and a
    /// late chunk of attempt 1 arrives in between.
    Failover,
    /// A chunk is altered in transit.
    TamperChunk,
    /// The final chunk is dropped; the receipt follows.
    Truncate,
    /// The receipt is signed by another key.
    ForgedReceipt,
    /// The receipt charges more than the tokens at the registered prices.
    Overcharge,
    /// The relayer reports that no worker could answer.
    Fail,
    /// The stream stays open and says nothing.
    Hang,
    /// The first stream connection of each job drops in the middle of an event; the next one
    /// replays the job's events from the start, as the relayer does.
    DropOnce,
}

struct Secrets {
    worker: RegisteredWorker,
}

struct Shared {
    relayer_id: String,
    workers: Mutex<Vec<WorkerInfo>>,
    secrets: Mutex<HashMap<String, Secrets>>,
    script: Mutex<Script>,
    not_found: AtomicU32,
    lose_answers: AtomicU32,
    streams: Mutex<HashMap<JobRef, (Vec<StreamEvent>, Script)>>,
    connections: Mutex<HashMap<JobRef, u32>>,
    submitted: Mutex<Vec<SubmitInput>>,
}

/// The in-test relayer (see the module doc).
pub struct FakeRelayer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its identity (a wallet address nobody controls in the test).
    pub id: TonAddress,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRelayer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeRelayer {
    /// Starts on a free port, listing no workers.
    pub async fn start() -> Self {
        let id = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V5r1)
            .unwrap()
            .address()
            .clone();
        let shared = Arc::new(Shared {
            relayer_id: id.to_hex(),
            workers: Mutex::new(Vec::new()),
            secrets: Mutex::new(HashMap::new()),
            script: Mutex::new(Script::Answer),
            not_found: AtomicU32::new(0),
            lose_answers: AtomicU32::new(0),
            streams: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            submitted: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/health", get(health))
            .route("/v1/workers", get(workers))
            .route("/v1/jobs/{escrow}/{job_id}/input", post(input))
            .route("/v1/jobs/{escrow}/{job_id}/stream", get(stream))
            .route("/v1/jobs/{escrow}/{job_id}", get(status))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            id,
            shared,
            task,
        }
    }

    /// Lists `info` for a worker whose keys it holds (to answer as it).
    pub fn list(&self, worker: &RegisteredWorker, info: WorkerInfo) {
        self.shared.secrets.lock().unwrap().insert(
            worker.address.to_hex(),
            Secrets {
                worker: worker.clone(),
            },
        );
        self.shared.workers.lock().unwrap().push(info);
    }

    /// Lists nothing any more.
    pub fn clear(&self) {
        self.shared.workers.lock().unwrap().clear();
    }

    /// How the next jobs are answered.
    pub fn script(&self, s: Script) {
        *self.shared.script.lock().unwrap() = s;
    }

    /// Answers the next `n` submissions with `404 job_not_found` (a watcher that lags).
    pub fn not_found_first(&self, n: u32) {
        self.shared.not_found.store(n, Ordering::SeqCst);
    }

    /// How many times the stream of `job` was opened.
    pub fn stream_connections(&self, job: &JobRef) -> u32 {
        self.shared
            .connections
            .lock()
            .unwrap()
            .get(job)
            .copied()
            .unwrap_or(0)
    }

    /// Takes the next `n` submissions but answers each with `503` (as a proxy whose upstream
    /// answer was lost would); a repeated submission then meets `409 already_submitted`.
    pub fn lose_answers(&self, n: u32) {
        self.shared.lose_answers.store(n, Ordering::SeqCst);
    }

    /// Inputs submitted so far.
    pub fn submitted(&self) -> Vec<SubmitInput> {
        self.shared.submitted.lock().unwrap().clone()
    }

    /// A funded wallet on `net` connected as a client to this relayer.
    pub async fn client(&self, net: &DevChain) -> Client {
        let wallet = net.funded_wallet(50 * NANO_PER_TON).await.unwrap();
        Client::connect(net.client_config(&self.url), wallet)
            .await
            .unwrap()
    }
}

async fn health(State(s): State<Arc<Shared>>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: PROTOCOL_VERSION,
        workers: s.workers.lock().unwrap().len() as u32,
        store: true,
        relayer_id: s.relayer_id.clone(),
        chain: None,
        chain_error: None,
    })
}

#[derive(Deserialize)]
struct WorkersQuery {
    model: Option<u32>,
}

async fn workers(State(s): State<Arc<Shared>>, Query(q): Query<WorkersQuery>) -> Json<WorkerList> {
    let workers = s
        .workers
        .lock()
        .unwrap()
        .iter()
        .filter(|w| q.model.is_none_or(|m| w.models.contains(&m)))
        .cloned()
        .collect();
    Json(WorkerList { workers })
}

fn api_error(status: StatusCode, error: ApiErrorCode, message: &str) -> Response {
    (
        status,
        Json(ApiError {
            error,
            message: message.into(),
        }),
    )
        .into_response()
}

async fn input(
    State(s): State<Arc<Shared>>,
    Path((escrow, job_id)): Path<(String, u64)>,
    Json(req): Json<SubmitInput>,
) -> Response {
    if s.not_found
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return api_error(
            StatusCode::NOT_FOUND,
            ApiErrorCode::JobNotFound,
            "not seen yet",
        );
    }
    let job = JobRef::new(escrow, job_id);
    if s.streams.lock().unwrap().contains_key(&job) {
        return api_error(
            StatusCode::CONFLICT,
            ApiErrorCode::AlreadySubmitted,
            "input already submitted",
        );
    }
    s.submitted.lock().unwrap().push(req.clone());
    let script = s.script.lock().unwrap().clone();
    let events = {
        let secrets = s.secrets.lock().unwrap();
        let workers: Vec<&RegisteredWorker> = req
            .candidates
            .iter()
            .filter_map(|c| secrets.get(c).map(|s| &s.worker))
            .collect();
        match play(&job, &req.sealed_input, &workers, &script) {
            Ok(e) => e,
            Err(msg) => {
                return api_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ApiErrorCode::BadRequest,
                    &msg,
                );
            }
        }
    };
    s.streams
        .lock()
        .unwrap()
        .insert(job.clone(), (events, script));
    if s.lose_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorCode::Internal,
            "upstream answer lost",
        );
    }
    let stream = format!("/v1/jobs/{}/{}/stream", job.escrow, job.job_id);
    (
        StatusCode::ACCEPTED,
        Json(SubmitAccepted {
            job,
            state: "input_received".into(),
            stream,
        }),
    )
        .into_response()
}

async fn stream(
    State(s): State<Arc<Shared>>,
    Path((escrow, job_id)): Path<(String, u64)>,
) -> Response {
    let job = JobRef::new(escrow, job_id);
    let connection = {
        let mut c = s.connections.lock().unwrap();
        let n = c.entry(job.clone()).or_default();
        *n += 1;
        *n
    };
    let Some((events, script)) = s.streams.lock().unwrap().get(&job).cloned() else {
        return api_error(
            StatusCode::NOT_FOUND,
            ApiErrorCode::JobNotFound,
            "no such job",
        );
    };
    // Mixed line endings and comments, cut into small pieces: the client's parser must cope.
    let mut text = String::from(": hello\n\n");
    for (i, ev) in events.iter().enumerate() {
        let data = serde_json::to_string(ev).unwrap();
        if i % 2 == 0 {
            text.push_str(&format!("event: {}\ndata: {data}\n\n", ev.name()));
        } else {
            text.push_str(&format!(
                "event: {}\r\ndata: {data}\r\n\r\n: keep-alive\r\n\r\n",
                ev.name()
            ));
        }
    }
    if script == Script::DropOnce && connection == 1 {
        // Cut inside the third event's data line.
        let third = text.match_indices("event:").nth(2).map(|(i, _)| i).unwrap();
        text.truncate(third + 20);
    }
    let pieces: Vec<Result<Bytes, Infallible>> = text
        .into_bytes()
        .chunks(97)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    use tokio_stream::StreamExt as _;
    let body = tokio_stream::iter(pieces);
    let body = if script == Script::Hang {
        Body::from_stream(body.chain(tokio_stream::pending()))
    } else {
        Body::from_stream(body)
    };
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

async fn status(
    State(s): State<Arc<Shared>>,
    Path((escrow, job_id)): Path<(String, u64)>,
) -> Response {
    let job = JobRef::new(escrow, job_id);
    let Some((events, _)) = s.streams.lock().unwrap().get(&job).cloned() else {
        return api_error(
            StatusCode::NOT_FOUND,
            ApiErrorCode::JobNotFound,
            "no such job",
        );
    };
    let state = match events.last() {
        Some(StreamEvent::Receipt { .. }) => "answered",
        Some(StreamEvent::Failed { .. }) => "failed",
        _ => "dispatched",
    };
    Json(JobStatus {
        job,
        state: state.into(),
        reason: None,
        worker: events.iter().find_map(|e| match e {
            StreamEvent::Dispatched { worker, .. } => Some(worker.clone()),
            _ => None,
        }),
        attempts: 1,
        deadline: 0,
    })
    .into_response()
}

/// What a worker answers: the chunks of the answer (opened, decoded, answered, sealed) and its
/// receipt, for this attempt.
struct Answer {
    chunks: Vec<Vec<u8>>,
    receipt: Vec<u8>,
    cost: u64,
}

fn answer(
    job: &JobRef,
    sealed: &[u8],
    w: &RegisteredWorker,
    key: &SigningKey,
    overcharge: bool,
) -> Result<Answer, String> {
    let escrow = TonAddress::from_hex_str(&job.escrow).map_err(|e| e.to_string())?;
    // The relayer knows the job's model from the chain; this stand-in tries the worker's models.
    let (model_id, opened) = w
        .models
        .iter()
        .find_map(|&m| {
            let cx = JobContext {
                escrow: escrow.clone(),
                job_id: job.job_id,
                model_id: m,
            };
            open_input(sealed, &w.enc, &cx).ok().map(|o| (m, o))
        })
        .ok_or("cannot_decrypt")?;
    let mut sealer = opened.response;
    let request = JobRequest::decode(&opened.plaintext).map_err(|e| e.to_string())?;
    let mut outputs = Vec::new();
    let (tokens_in, tokens_out) = match &request.task {
        Task::Chat { messages, .. } => {
            let last = &messages.last().unwrap().content;
            let words: Vec<String> = format!("echo: {last}")
                .split(' ')
                .map(|w| format!("{w} "))
                .collect();
            for w in &words {
                outputs.push(JobOutput::Delta { text: w.clone() });
            }
            (opened.plaintext.len() as u32 / 4, words.len() as u32)
        }
        Task::Completion { prompt, .. } => {
            outputs.push(JobOutput::Delta {
                text: format!("{prompt}!"),
            });
            (prompt.len() as u32, 1)
        }
        Task::Embeddings { input } => {
            outputs.push(JobOutput::Embeddings {
                vectors: input
                    .iter()
                    .map(|t| vec![t.len() as f32, 1.0, -0.5])
                    .collect(),
            });
            (input.iter().map(|t| t.len() as u32 + 2).sum(), 0)
        }
    };
    outputs.push(JobOutput::Done {
        finish_reason: cocoon_sdk::job::FinishReason::Stop,
        prompt_tokens: tokens_in,
        completion_tokens: tokens_out,
    });
    let n = outputs.len();
    let mut chunks = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        chunks.push(
            sealer
                .seal_chunk(&o.encode(), i + 1 == n)
                .map_err(|e| e.to_string())?,
        );
    }
    let model = ModelSpec::by_id(model_id).unwrap();
    let mut cost = u128::from(tokens_in) * w.price_in + u128::from(tokens_out) * w.price_out;
    if overcharge {
        cost += 1;
    }
    let body = ReceiptBody {
        escrow,
        job_id: job.job_id,
        worker: w.address.clone(),
        model_id,
        tokens_in,
        tokens_out,
        cost,
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32,
        hashes: ReceiptHashes {
            weights_hash: model.weights_hash(),
            evidence_hash: w.evidence.hash(),
        },
        commitments: ReceiptCommitments {
            input_commitment: opened.input_commitment,
            output_commitment: sealer.output_commitment().map_err(|e| e.to_string())?,
        },
    };
    let receipt = body
        .sign(key)
        .map_err(|e| e.to_string())?
        .to_boc()
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        chunks,
        receipt,
        cost: cost as u64,
    })
}

fn play(
    job: &JobRef,
    sealed: &[u8],
    workers: &[&RegisteredWorker],
    script: &Script,
) -> Result<Vec<StreamEvent>, String> {
    let first = *workers.first().ok_or("no known candidate")?;
    let mut ev = vec![StreamEvent::Status {
        state: "input_received".into(),
        reason: None,
    }];
    let dispatched = |w: &RegisteredWorker, attempt| StreamEvent::Dispatched {
        worker: w.address.to_hex(),
        attempt,
    };
    let chunk = |attempt, seq: usize, data: &[u8]| StreamEvent::Chunk {
        attempt,
        seq: seq as u32,
        data: data.to_vec(),
    };
    let receipt = |w: &RegisteredWorker, attempt, a: &Answer, chunks: usize| StreamEvent::Receipt {
        worker: w.address.to_hex(),
        attempt,
        chunks: chunks as u32,
        receipt: a.receipt.clone(),
        cost: a.cost,
    };
    let full = |ev: &mut Vec<StreamEvent>, w: &RegisteredWorker, attempt, a: &Answer| {
        ev.push(dispatched(w, attempt));
        for (i, c) in a.chunks.iter().enumerate() {
            ev.push(chunk(attempt, i, c));
        }
        ev.push(receipt(w, attempt, a, a.chunks.len()));
    };
    match script {
        Script::Answer | Script::DropOnce => full(
            &mut ev,
            first,
            1,
            &answer(job, sealed, first, &first.signing, false)?,
        ),
        Script::Failover => {
            let second = *workers.get(1).ok_or("failover needs two candidates")?;
            let a1 = answer(job, sealed, first, &first.signing, false)?;
            let a2 = answer(job, sealed, second, &second.signing, false)?;
            ev.push(dispatched(first, 1));
            ev.push(chunk(1, 0, &a1.chunks[0]));
            ev.push(dispatched(second, 2));
            ev.push(chunk(2, 0, &a2.chunks[0]));
            // A late chunk of the abandoned attempt.
            ev.push(chunk(1, 1, &a1.chunks[1]));
            for (i, c) in a2.chunks.iter().enumerate().skip(1) {
                ev.push(chunk(2, i, c));
            }
            ev.push(receipt(second, 2, &a2, a2.chunks.len()));
        }
        Script::TamperChunk => {
            let mut a = answer(job, sealed, first, &first.signing, false)?;
            let last = a.chunks[0].len() - 1;
            a.chunks[0][last] ^= 1;
            full(&mut ev, first, 1, &a);
        }
        Script::Truncate => {
            let mut a = answer(job, sealed, first, &first.signing, false)?;
            a.chunks.pop();
            full(&mut ev, first, 1, &a);
        }
        Script::ForgedReceipt => {
            let other = SigningKey::from_bytes(&[0xee; 32]);
            full(
                &mut ev,
                first,
                1,
                &answer(job, sealed, first, &other, false)?,
            );
        }
        Script::Overcharge => full(
            &mut ev,
            first,
            1,
            &answer(job, sealed, first, &first.signing, true)?,
        ),
        Script::Fail => {
            ev.push(dispatched(first, 1));
            ev.push(StreamEvent::Failed {
                reason: "every candidate failed".into(),
            });
        }
        Script::Hang => ev.push(dispatched(first, 1)),
    }
    Ok(ev)
}

/// Waits a little for something the chain does asynchronously.
pub async fn settle_time() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}
