//! Shared helpers of the integration tests: the model cache, loaded once per test binary.

#![allow(dead_code)]

use std::sync::OnceLock;

use cocoon_worker::{BackendKind, EmbeddingModel, ModelSource, TextModel, models};

/// The pinned source, whose file must be in the model cache: a test that needs a model fails
/// without it (naming the command that fetches it) instead of passing without checking anything.
pub fn require(source: ModelSource) -> ModelSource {
    assert!(
        source.path.is_file(),
        "{} is missing: run scripts/fetch-models (it fills ${}, default ~/.cache/cocoon/models)",
        source.path.display(),
        models::MODELS_DIR_ENV
    );
    source
}

/// SmolLM2 on flex, loaded once.
pub fn smollm2() -> &'static TextModel {
    static MODEL: OnceLock<TextModel> = OnceLock::new();
    let source = require(models::smollm2());
    MODEL.get_or_init(|| {
        BackendKind::Flex
            .load_text(&source, 8)
            .expect("SmolLM2 loads on flex")
    })
}

/// MiniLM on flex, loaded once.
pub fn minilm() -> &'static EmbeddingModel {
    static MODEL: OnceLock<EmbeddingModel> = OnceLock::new();
    let source = require(models::minilm());
    MODEL.get_or_init(|| {
        BackendKind::Flex
            .load_embedding(&source)
            .expect("MiniLM loads on flex")
    })
}

/// A committed golden file.
pub fn golden(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file"))
        .expect("golden JSON")
}
