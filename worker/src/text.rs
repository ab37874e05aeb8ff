//! Text generation: a loaded Llama served by one scheduler thread that batches the decode steps
//! of every request in flight (continuous batching) and streams tokens back to the callers.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use burn::tensor::backend::Backend;
use tokenizers::Tokenizer;
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::gguf::Gguf;
use crate::hash::{WeightsHash, read_verified};
use crate::llama::{KvCache, Llama, LlamaConfig};
use crate::llama_cpu::{CpuKvCache, CpuLlama};
use crate::sampling::{Sampler, SamplingOptions};
use crate::tokenizer::{self, ChatMessage, ChatTemplate};

/// Requests decoded together in one step when no limit is configured.
pub const DEFAULT_MAX_BATCH: usize = 32;

/// Where a model's weights live and the sha256 they must have.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// Path of the weights file (GGUF for text models, safetensors for embedding models).
    pub path: PathBuf,
    /// The expected sha256 of that file; loading refuses any other content.
    pub sha256: WeightsHash,
}

/// What to continue.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Raw text, tokenised as is (special tokens such as `<|im_start|>` are recognised).
    Text(String),
    /// A conversation, rendered with the model's chat template.
    Chat(Vec<ChatMessage>),
    /// Token ids.
    Tokens(Vec<u32>),
}

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Upper bound on new tokens (the context length bounds it too).
    pub max_tokens: usize,
    /// Greedy or sampled.
    pub sampling: SamplingOptions,
    /// Extra token ids that end the generation (the model's end-of-turn token always does).
    pub stop_tokens: Vec<u32>,
    /// Keep going past end-of-turn tokens until `max_tokens` (benchmarks use it to get equal
    /// lengths); extra `stop_tokens` still stop.
    pub ignore_eos: bool,
}

impl GenerateRequest {
    /// A greedy request.
    pub fn greedy(prompt: Prompt, max_tokens: usize) -> Self {
        Self {
            prompt,
            max_tokens,
            sampling: SamplingOptions::default(),
            stop_tokens: Vec::new(),
            ignore_eos: false,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token was produced (it is counted but not part of the text).
    Stop,
    /// `max_tokens` or the context length was reached.
    Length,
}

/// A streamed token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    /// Token id.
    pub id: u32,
    /// Text this token completes (empty while a multi-byte character is still partial, and for
    /// stop tokens).
    pub text: String,
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated text, stop token excluded.
    pub text: String,
    /// Generated token ids, stop token included.
    pub tokens: Vec<u32>,
    /// Tokens in the prompt (what a receipt bills as input).
    pub prompt_tokens: usize,
    /// Tokens generated (what a receipt bills as output).
    pub completion_tokens: usize,
    /// Why it ended.
    pub finish: FinishReason,
}

/// A model the scheduler drives: it advances several sequences, each with its own cache, by one
/// forward pass. Implemented by the burn model ([`Llama`], any backend; quantised weights on
/// wgpu and cuda, f32 elsewhere) and the CPU model ([`CpuLlama`], quantised weights).
pub trait TextEngine: Send + 'static {
    /// One sequence's keys and values.
    type Cache: Send;
    /// Hyper-parameters.
    fn config(&self) -> &LlamaConfig;
    /// A cache for at most `capacity` positions.
    fn new_cache(&self, capacity: usize) -> Self::Cache;
    /// Appends each entry's tokens to its cache; returns the logits after each entry's last token
    /// (`entries × vocab`).
    fn forward(&self, batch: &mut [(&[u32], &mut Self::Cache)]) -> Result<Vec<f32>>;
    /// Bytes of weights and tables the model holds.
    fn resident_bytes(&self) -> usize;
}

impl<B: Backend> TextEngine for Llama<B> {
    type Cache = KvCache<B>;

    fn config(&self) -> &LlamaConfig {
        &self.config
    }

    fn new_cache(&self, capacity: usize) -> KvCache<B> {
        Llama::new_cache(self, capacity)
    }

    fn forward(&self, batch: &mut [(&[u32], &mut KvCache<B>)]) -> Result<Vec<f32>> {
        Llama::forward(self, batch)?
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| Error::Backend(format!("{e:?}")))
    }

    fn resident_bytes(&self) -> usize {
        Llama::resident_bytes(self)
    }
}

impl TextEngine for CpuLlama {
    type Cache = CpuKvCache;

    fn config(&self) -> &LlamaConfig {
        &self.config
    }

    fn new_cache(&self, capacity: usize) -> CpuKvCache {
        CpuLlama::new_cache(self, capacity)
    }

    fn forward(&self, batch: &mut [(&[u32], &mut CpuKvCache)]) -> Result<Vec<f32>> {
        CpuLlama::forward(self, batch)
    }

    fn resident_bytes(&self) -> usize {
        CpuLlama::resident_bytes(self)
    }
}

enum Job {
    Generate {
        prompt: Vec<u32>,
        max_tokens: usize,
        sampling: SamplingOptions,
        stop: Vec<u32>,
        ignore_eos: bool,
        events: mpsc::Sender<Event>,
    },
    Logits {
        prompt: Vec<u32>,
        reply: mpsc::Sender<Result<Vec<f32>>>,
    },
}

enum Event {
    Token(u32),
    Done(FinishReason),
    Failed(Error),
}

/// Facts about a loaded text model.
#[derive(Debug, Clone)]
pub struct TextModelInfo {
    /// Hyper-parameters.
    pub config: LlamaConfig,
    /// sha256 of the GGUF (goes into every receipt).
    pub weights_hash: WeightsHash,
    /// `general.name` of the GGUF, when present.
    pub name: Option<String>,
    /// Token ids that end a turn.
    pub eos: Vec<u32>,
    /// Bytes of tensor data in the GGUF.
    pub tensor_bytes: usize,
    /// Bytes of weights and tables the loaded model holds.
    pub resident_bytes: usize,
}

/// A text model served by a background scheduler. Cheap to share by reference across threads;
/// every [`generate`](Self::generate) call joins the running batch.
pub struct TextModel {
    info: TextModelInfo,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<thread::JoinHandle<()>>,
    load: Arc<SchedulerLoad>,
}

/// What the scheduler is doing now, for the node's metrics (updated at every decode step).
#[derive(Debug, Default)]
pub struct SchedulerLoad {
    batch: AtomicUsize,
    waiting: AtomicUsize,
}

impl SchedulerLoad {
    /// Sequences in the last decode step.
    pub fn batch(&self) -> usize {
        self.batch.load(Ordering::Relaxed)
    }

    /// Sequences waiting for a batch slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn set(&self, batch: usize, waiting: usize) {
        self.batch.store(batch, Ordering::Relaxed);
        self.waiting.store(waiting, Ordering::Relaxed);
    }
}

impl TextModel {
    /// Reads and verifies the GGUF, builds the tokenizer, loads the weights onto `device`
    /// (kept in their GGUF blocks where the backend has kernels for them, see
    /// [`crate::qlinear`]; else dequantised to f32) and starts the scheduler (at most `max_batch` sequences
    /// decode together).
    pub fn load<B: Backend>(
        source: &ModelSource,
        device: B::Device,
        max_batch: usize,
    ) -> Result<Self> {
        let (bytes, weights_hash) = read_verified(&source.path, Some(&source.sha256))?;
        Self::from_bytes::<B>(&bytes, weights_hash, device, max_batch)
    }

    /// Loads from GGUF bytes already verified by the caller (their hash is passed along).
    pub fn from_bytes<B: Backend>(
        bytes: &[u8],
        weights_hash: WeightsHash,
        device: B::Device,
        max_batch: usize,
    ) -> Result<Self> {
        let g = Gguf::parse(bytes)?;
        let model = Llama::<B>::load(&g, &device)?;
        Self::start(&g, model, weights_hash, max_batch)
    }

    /// Like [`load`](Self::load), on the CPU with the weights kept quantised ([`CpuLlama`]).
    pub fn load_quantized(source: &ModelSource, max_batch: usize) -> Result<Self> {
        let (bytes, weights_hash) = read_verified(&source.path, Some(&source.sha256))?;
        Self::from_bytes_quantized(&bytes, weights_hash, max_batch)
    }

    /// Like [`from_bytes`](Self::from_bytes), on the CPU with the weights kept quantised.
    pub fn from_bytes_quantized(
        bytes: &[u8],
        weights_hash: WeightsHash,
        max_batch: usize,
    ) -> Result<Self> {
        let g = Gguf::parse(bytes)?;
        let model = CpuLlama::load(&g)?;
        Self::start(&g, model, weights_hash, max_batch)
    }

    /// Builds the tokenizer and starts the scheduler thread around a loaded model.
    fn start<E: TextEngine>(
        g: &Gguf<'_>,
        model: E,
        weights_hash: WeightsHash,
        max_batch: usize,
    ) -> Result<Self> {
        let tokenizer = tokenizer::from_gguf(g)?;
        let template = ChatTemplate::from_gguf(g).ok();
        // End of generation: the GGUF's end-of-sequence and end-of-turn ids, and ChatML's two
        // end tokens where the vocabulary has them (a ChatML model may name only one of them).
        let mut eos = vec![g.get_u64("tokenizer.ggml.eos_token_id")? as u32];
        let eot = g
            .get_u64("tokenizer.ggml.eot_token_id")
            .ok()
            .map(|v| v as u32);
        let chatml = ["<|im_end|>", "<|endoftext|>"].map(|t| tokenizer.token_to_id(t));
        for id in eot.into_iter().chain(chatml.into_iter().flatten()) {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
        let info = TextModelInfo {
            config: model.config().clone(),
            weights_hash,
            name: g.get_str("general.name").ok().map(str::to_string),
            eos: eos.clone(),
            tensor_bytes: g.tensors.values().map(|t| t.n_bytes).sum(),
            resident_bytes: model.resident_bytes(),
        };
        info!(target: "worker::engine", hash = %weights_hash, layers = info.config.n_layers, "text model loaded");
        let (tx, rx) = mpsc::channel();
        let max_batch = max_batch.max(1);
        let load = Arc::new(SchedulerLoad::default());
        let shared_load = load.clone();
        let worker = thread::Builder::new()
            .name("cocoon-decode".into())
            .spawn(move || {
                Scheduler {
                    model,
                    eos,
                    max_batch,
                    load: shared_load,
                }
                .run(rx)
            })
            .map_err(|e| Error::Backend(format!("cannot start the scheduler thread: {e}")))?;
        Ok(Self {
            info,
            tokenizer,
            template,
            jobs: Some(tx),
            worker: Some(worker),
            load,
        })
    }

    /// Batch and queue of the scheduler now.
    pub fn scheduler_load(&self) -> &SchedulerLoad {
        &self.load
    }

    /// Facts about the model.
    pub fn info(&self) -> &TextModelInfo {
        &self.info
    }

    /// The sha256 of the weights file.
    pub fn weights_hash(&self) -> WeightsHash {
        self.info.weights_hash
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Renders a conversation with the model's chat template.
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String> {
        let t = self.template.as_ref().ok_or_else(|| Error::Metadata {
            key: "tokenizer.chat_template".into(),
            reason: "missing or not ChatML".into(),
        })?;
        Ok(t.render(messages))
    }

    /// Token ids of a prompt.
    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        let ids = match prompt {
            Prompt::Text(t) => tokenizer::encode(&self.tokenizer, t, false)?,
            Prompt::Chat(m) => tokenizer::encode(&self.tokenizer, &self.render_chat(m)?, false)?,
            Prompt::Tokens(t) => t.clone(),
        };
        if ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if let Some(bad) = ids.iter().find(|&&t| t as usize >= self.info.config.vocab) {
            return Err(Error::InvalidOptions(format!(
                "token id {bad} is outside the vocabulary"
            )));
        }
        if ids.len() >= self.info.config.context {
            return Err(Error::PromptTooLong {
                prompt_tokens: ids.len(),
                context: self.info.config.context,
            });
        }
        Ok(ids)
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .ok_or(Error::EngineStopped)?
            .send(job)
            .map_err(|_| Error::EngineStopped)
    }

    /// Generates, calling `on_token` for every token as it is produced, and returns the text and
    /// the token counts. Blocks the calling thread; other callers' requests decode in the same
    /// batched steps meanwhile.
    pub fn generate(
        &self,
        req: &GenerateRequest,
        mut on_token: impl FnMut(&TokenEvent),
    ) -> Result<Generation> {
        self.generate_until(req, |t| {
            on_token(t);
            ControlFlow::Continue(())
        })
    }

    /// Like [`generate`](Self::generate), but `on_token` may end the generation early (a stop
    /// string, a cancelled job): on `Break` the sequence leaves the batch at once and the result
    /// holds what was produced so far, with [`FinishReason::Stop`]. Every token produced,
    /// including the one the callback broke on, is counted in `completion_tokens`.
    pub fn generate_until(
        &self,
        req: &GenerateRequest,
        mut on_token: impl FnMut(&TokenEvent) -> ControlFlow<()>,
    ) -> Result<Generation> {
        req.sampling.validate()?;
        if req.max_tokens == 0 {
            return Err(Error::InvalidOptions(
                "max_tokens must be at least 1".into(),
            ));
        }
        let prompt = self.tokenize(&req.prompt)?;
        let prompt_tokens = prompt.len();
        let max_tokens = req.max_tokens.min(self.info.config.context - prompt_tokens);
        let (tx, rx) = mpsc::channel();
        self.send(Job::Generate {
            prompt,
            max_tokens,
            sampling: req.sampling.clone(),
            stop: req.stop_tokens.clone(),
            ignore_eos: req.ignore_eos,
            events: tx,
        })?;
        let mut tokens = Vec::new();
        let mut emitted = String::new();
        let eos: &[u32] = if req.ignore_eos { &[] } else { &self.info.eos };
        let stops: Vec<u32> = eos.iter().chain(&req.stop_tokens).copied().collect();
        loop {
            match rx.recv().map_err(|_| Error::EngineStopped)? {
                Event::Token(id) => {
                    tokens.push(id);
                    let text = if stops.contains(&id) {
                        String::new()
                    } else {
                        let full = self.decode_text(&tokens, &stops)?;
                        // Hold back a trailing partial UTF-8 sequence until it completes.
                        if full.ends_with('\u{fffd}') || !full.starts_with(&emitted) {
                            String::new()
                        } else {
                            let piece = full[emitted.len()..].to_string();
                            emitted = full;
                            piece
                        }
                    };
                    if on_token(&TokenEvent { id, text }).is_break() {
                        // Dropping `rx` makes the scheduler's next send fail, which drops the
                        // sequence from the batch.
                        let text = self.decode_text(&tokens, &stops)?;
                        return Ok(Generation {
                            text,
                            completion_tokens: tokens.len(),
                            tokens,
                            prompt_tokens,
                            finish: FinishReason::Stop,
                        });
                    }
                }
                Event::Done(finish) => {
                    let text = self.decode_text(&tokens, &stops)?;
                    return Ok(Generation {
                        text,
                        completion_tokens: tokens.len(),
                        tokens,
                        prompt_tokens,
                        finish,
                    });
                }
                Event::Failed(e) => return Err(e),
            }
        }
    }

    fn decode_text(&self, tokens: &[u32], stops: &[u32]) -> Result<String> {
        let body: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|t| !stops.contains(t))
            .collect();
        self.tokenizer
            .decode(&body, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Logits of the token after `prompt` (for checks against a reference).
    pub fn next_token_logits(&self, prompt: &Prompt) -> Result<Vec<f32>> {
        let prompt = self.tokenize(prompt)?;
        let (tx, rx) = mpsc::channel();
        self.send(Job::Logits { prompt, reply: tx })?;
        rx.recv().map_err(|_| Error::EngineStopped)?
    }
}

impl Drop for TextModel {
    fn drop(&mut self) {
        // Closing the channel ends the scheduler once the requests in flight are done.
        self.jobs.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

struct Active<E: TextEngine> {
    cache: E::Cache,
    /// Tokens to feed on the next step: the prompt first, then the last sampled token.
    pending: Vec<u32>,
    sampler: Sampler,
    produced: usize,
    max_tokens: usize,
    stop: Vec<u32>,
    events: mpsc::Sender<Event>,
}

struct Scheduler<E: TextEngine> {
    model: E,
    eos: Vec<u32>,
    max_batch: usize,
    load: Arc<SchedulerLoad>,
}

impl<E: TextEngine> Scheduler<E> {
    fn run(self, jobs: mpsc::Receiver<Job>) {
        let mut active: Vec<Active<E>> = Vec::new();
        let mut waiting: VecDeque<Job> = VecDeque::new();
        loop {
            if active.is_empty() && waiting.is_empty() {
                self.load.set(0, 0);
                match jobs.recv() {
                    Ok(j) => waiting.push_back(j),
                    Err(_) => return,
                }
            }
            waiting.extend(jobs.try_iter());
            while active.len() < self.max_batch {
                let Some(job) = waiting.pop_front() else {
                    break;
                };
                match job {
                    Job::Logits { prompt, reply } => {
                        let _ = reply.send(self.logits(&prompt));
                    }
                    Job::Generate {
                        prompt,
                        max_tokens,
                        sampling,
                        mut stop,
                        ignore_eos,
                        events,
                    } => active.push(Active {
                        // Every position the sequence can reach: the last sampled token is
                        // never fed back, so prompt + max_tokens - 1 would do; one spare.
                        cache: self.model.new_cache(prompt.len() + max_tokens),
                        pending: prompt,
                        sampler: Sampler::new(sampling),
                        produced: 0,
                        max_tokens,
                        stop: {
                            if !ignore_eos {
                                stop.extend(&self.eos);
                            }
                            stop
                        },
                        events,
                    }),
                }
            }
            if active.is_empty() {
                continue;
            }
            self.load.set(active.len(), waiting.len());
            debug!(target: "worker::engine", batch = active.len(), waiting = waiting.len(), "decode step");
            let logits = {
                let mut batch: Vec<(&[u32], &mut E::Cache)> = active
                    .iter_mut()
                    .map(|a| (a.pending.as_slice(), &mut a.cache))
                    .collect();
                self.model.forward(&mut batch)
            };
            let logits = match logits {
                Ok(l) => l,
                Err(e) => {
                    for a in active.drain(..) {
                        let _ = a.events.send(Event::Failed(Error::Backend(e.to_string())));
                    }
                    continue;
                }
            };
            let vocab = self.model.config().vocab;
            let mut keep = Vec::with_capacity(active.len());
            for (a, row) in active.drain(..).zip(logits.chunks_exact(vocab)) {
                let mut a = a;
                let id = a.sampler.sample(row);
                a.produced += 1;
                // A closed channel means the caller went away: drop the sequence.
                if a.events.send(Event::Token(id)).is_err() {
                    continue;
                }
                let finish = if a.stop.contains(&id) {
                    Some(FinishReason::Stop)
                } else if a.produced >= a.max_tokens {
                    Some(FinishReason::Length)
                } else {
                    None
                };
                match finish {
                    Some(f) => {
                        let _ = a.events.send(Event::Done(f));
                    }
                    None => {
                        a.pending = vec![id];
                        keep.push(a);
                    }
                }
            }
            active = keep;
        }
    }

    fn logits(&self, prompt: &[u32]) -> Result<Vec<f32>> {
        let mut cache = self.model.new_cache(prompt.len());
        self.model.forward(&mut [(prompt, &mut cache)])
    }
}

/// Reads the weights file's sha256 without loading it (for `--print-hash` style tooling).
pub fn hash_file(path: &Path) -> Result<WeightsHash> {
    read_verified(path, None).map(|(_, h)| h)
}
