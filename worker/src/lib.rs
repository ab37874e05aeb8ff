//! Cocoon worker: the inference engine.
//!
//! Models run on [burn](https://burn.dev): the `wgpu` backend is the GPU path, `flex` the fast
//! CPU path the golden tests use. Weights are read from local files only and their sha256 is
//! checked at load (it goes into every receipt).
//!
//! ```text
//! GGUF bytes ──sha256──▶ gguf::Gguf ──▶ tokenizer::from_gguf ─┐
//!                                   └──▶ llama::Llama<B> ─────┴─▶ TextModel ──(scheduler thread:
//!                                                                  continuous batching)──▶ tokens
//! safetensors ──sha256──▶ minilm::Bert<B> + tokenizer.json ──▶ EmbeddingModel ──▶ vectors
//! ```
//!
//! # Layout
//! - [`gguf`]: GGUF reader and dequantisers (F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K).
//! - [`qmatmul`]: quantised weight matrices and the CPU kernels that dequantise on the fly.
//! - [`hash`]: weights sha256, verified at load.
//! - [`tokenizer`]: BPE from the GGUF, `tokenizer.json`, the ChatML template.
//! - [`llama`], [`minilm`]: the model code, generic over the burn backend.
//! - [`llama_cpu`]: Llama on the CPU with quantised weights (what `flex` runs for text).
//! - [`qlinear`]: quantised weight matrices on the device and their CubeCL kernels (what the
//!   burn model uses on `wgpu` and `cuda`).
//! - [`sampling`]: greedy / temperature / top-k / top-p with a seed.
//! - [`text`], [`embed`]: the serving API ([`TextModel`], [`EmbeddingModel`]).
//! - [`backend`]: picking `flex` or `wgpu` at run time.
//! - [`models`]: the pinned models and the model cache location.
//! - [`bench`]: throughput and memory measurements against llama.cpp on the same GGUF.
//! - [`cli`]: the `cocoon-worker` command line (`src/main.rs` only parses it).
//! - [`node`]: the worker node: registration, the relayer session, jobs, receipts.
//!
//! # Example
//! ```no_run
//! use cocoon_worker::{BackendKind, GenerateRequest, Prompt, models};
//! let model = BackendKind::Flex.load_text(&models::smollm2(), 8)?;
//! let out = model.generate(&GenerateRequest::greedy(Prompt::Text("The capital of France is".into()), 8), |t| {
//!     print!("{}", t.text);
//! })?;
//! println!("\n{} tokens in, {} out, weights {}", out.prompt_tokens, out.completion_tokens, model.weights_hash());
//! # Ok::<(), cocoon_worker::Error>(())
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod bench;
pub mod cli;
pub mod embed;
pub mod error;
pub mod gguf;
pub mod hash;
pub mod llama;
pub mod llama_cpu;
pub mod minilm;
pub mod models;
pub mod node;
pub mod progress;
pub mod qamx;
pub mod qdot;
pub mod qlinear;
pub mod qmatmul;
pub mod qtile;
pub mod sampling;
pub mod text;
pub mod tokenizer;

pub use backend::BackendKind;
pub use embed::{EmbeddingModel, Embeddings};
pub use error::{Error, Result};
pub use hash::WeightsHash;
pub use sampling::SamplingOptions;
pub use text::{
    FinishReason, GenerateRequest, Generation, ModelSource, Prompt, TextModel, TokenEvent,
};
pub use tokenizer::ChatMessage;
