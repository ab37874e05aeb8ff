//! Sentence embeddings (MiniLM): tokenise, encode a padded batch, mean-pool, L2-normalise.

use std::path::Path;
use std::sync::Mutex;

use burn::tensor::backend::Backend;
use tokenizers::Tokenizer;
use tracing::info;

use crate::error::{Error, Result};
use crate::hash::{WeightsHash, read_verified};
use crate::minilm::{Bert, BertConfig};
use crate::text::ModelSource;
use crate::tokenizer;

/// Embeddings of a batch and the tokens they consumed.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One unit-length vector per input text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens over all inputs, special tokens included (what a receipt bills as input).
    pub prompt_tokens: usize,
}

/// The bits of a loaded embedding model that do not depend on the backend.
trait Encoder: Send {
    fn embed(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>>;
}

impl<B: Backend> Encoder for Bert<B> {
    fn embed(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>> {
        Bert::embed(self, batch)
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| Error::Backend(format!("{e:?}")))
    }
}

/// A sentence-embedding model. Batches are encoded one at a time (the mutex), each batch in a
/// single forward pass.
pub struct EmbeddingModel {
    encoder: Mutex<Box<dyn Encoder>>,
    tokenizer: Tokenizer,
    config: BertConfig,
    weights_hash: WeightsHash,
}

impl EmbeddingModel {
    /// Loads `model.safetensors` (verified against `source.sha256`) with the `config.json` and
    /// `tokenizer.json` beside it.
    pub fn load<B: Backend>(source: &ModelSource, device: B::Device) -> Result<Self> {
        let dir = source.path.parent().unwrap_or(Path::new("."));
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|source| Error::Io { path: p, source })
        };
        let config: BertConfig =
            serde_json::from_slice(&read("config.json")?).map_err(|e| Error::Metadata {
                key: "config.json".into(),
                reason: e.to_string(),
            })?;
        let tokenizer = tokenizer::from_json_bytes(&read("tokenizer.json")?)?;
        let (bytes, weights_hash) = read_verified(&source.path, Some(&source.sha256))?;
        let bert = Bert::<B>::load(config.clone(), &bytes, &device)?;
        info!(target: "worker::engine", hash = %weights_hash, layers = config.num_hidden_layers, "embedding model loaded");
        Ok(Self {
            encoder: Mutex::new(Box::new(bert)),
            tokenizer,
            config,
            weights_hash,
        })
    }

    /// The sha256 of the weights file.
    pub fn weights_hash(&self) -> WeightsHash {
        self.weights_hash
    }

    /// Width of the embeddings.
    pub fn dimension(&self) -> usize {
        self.config.hidden_size
    }

    /// Token ids of one text, `[CLS]` and `[SEP]` included.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        tokenizer::encode(&self.tokenizer, text, true)
    }

    /// Embeds a batch of texts.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Embeddings> {
        if texts.is_empty() {
            return Err(Error::EmptyInput("no texts".into()));
        }
        let mut batch = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            if t.as_ref().trim().is_empty() {
                return Err(Error::EmptyInput(format!("text {i} is empty")));
            }
            let ids = self.tokenize(t.as_ref())?;
            if ids.len() > self.config.max_position_embeddings {
                return Err(Error::PromptTooLong {
                    prompt_tokens: ids.len(),
                    context: self.config.max_position_embeddings,
                });
            }
            batch.push(ids);
        }
        let flat = self
            .encoder
            .lock()
            .map_err(|_| Error::EngineStopped)?
            .embed(&batch)?;
        let d = self.config.hidden_size;
        Ok(Embeddings {
            vectors: flat.chunks_exact(d).map(<[f32]>::to_vec).collect(),
            prompt_tokens: batch.iter().map(Vec::len).sum(),
        })
    }
}
