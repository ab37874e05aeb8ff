//! The engine's error type.

use std::path::PathBuf;

/// Result alias of the inference engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading a model or serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configured expected sha256 is not 64 hex digits.
    #[error("expected sha256 {0:?} is not 64 hex digits")]
    InvalidExpectedHash(String),
    /// The weights file's sha256 differs from the configured one: the engine refuses to serve it.
    #[error("sha256 of {path} is {actual}, expected {expected}: refusing to load")]
    HashMismatch {
        /// The weights file.
        path: PathBuf,
        /// The configured hash (hex).
        expected: String,
        /// The hash of the bytes read (hex).
        actual: String,
    },
    /// The file ends before a structure it announces (a truncated download, a wrong file).
    #[error("GGUF truncated: {what} needs {needed} bytes at offset {offset}, file has {len}")]
    Truncated {
        /// What was being read.
        what: String,
        /// Offset of the read.
        offset: u64,
        /// Bytes the read needs.
        needed: u64,
        /// Length of the file.
        len: u64,
    },
    /// The file does not start with the GGUF magic.
    #[error("not a GGUF file: magic {0:#010x}")]
    BadMagic(u32),
    /// A GGUF version this reader does not know.
    #[error("unsupported GGUF version {0} (supported: 2, 3)")]
    UnsupportedVersion(u32),
    /// A tensor stored in a ggml type this engine cannot dequantise.
    #[error("tensor {name} has unknown or unsupported ggml type {type_id}")]
    UnknownTensorType {
        /// The tensor.
        name: String,
        /// The raw ggml type id.
        type_id: u32,
    },
    /// A structurally invalid GGUF (bad value type, bad UTF-8, absurd dimensions, overlapping data).
    #[error("malformed GGUF: {0}")]
    Malformed(String),
    /// A metadata key the model needs is absent or has the wrong type.
    #[error("metadata {key}: {reason}")]
    Metadata {
        /// The GGUF metadata key or config field.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor the model needs is absent.
    #[error("tensor {0} is missing")]
    MissingTensor(String),
    /// A tensor has another shape than the model's configuration implies.
    #[error("tensor {name} has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The tensor.
        name: String,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape in the file.
        actual: Vec<usize>,
    },
    /// A safetensors file that cannot be parsed or holds an unexpected dtype.
    #[error("safetensors: {0}")]
    Safetensors(String),
    /// The tokenizer could not be built or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A generation request with no prompt tokens.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// Prompt tokens plus requested new tokens do not fit in the model's context.
    #[error("prompt of {prompt_tokens} tokens does not fit the context of {context} tokens")]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The model's context length.
        context: usize,
    },
    /// An embedding request with no texts, or with an empty text.
    #[error("nothing to embed: {0}")]
    EmptyInput(String),
    /// Sampling options out of range.
    #[error("invalid generation options: {0}")]
    InvalidOptions(String),
    /// The backend returned data of an unexpected type (a bug or a backend limitation).
    #[error("backend: {0}")]
    Backend(String),
    /// The engine's scheduler thread has stopped; the request was not served.
    #[error("the engine has shut down")]
    EngineStopped,
}
