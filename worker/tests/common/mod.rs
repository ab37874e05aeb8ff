//! Shared helpers of the integration tests: the model cache, loaded once per test binary.

#![allow(dead_code)]

use std::sync::OnceLock;

use cocoon_worker::{BackendKind, EmbeddingModel, ModelSource, TextModel, models};

/// The pinned source when its file is in the cache; otherwise prints why the test is skipped.
pub fn source_or_skip(source: ModelSource, test: &str) -> Option<ModelSource> {
    if source.path.is_file() {
        Some(source)
    } else {
        eprintln!(
            "SKIPPED {test}: {} is missing; run scripts/fetch-models (set COCOON_MODELS_DIR for another cache)",
            source.path.display()
        );
        None
    }
}

/// SmolLM2 on flex, loaded once.
pub fn smollm2(test: &str) -> Option<&'static TextModel> {
    static MODEL: OnceLock<TextModel> = OnceLock::new();
    let source = source_or_skip(models::smollm2(), test)?;
    Some(MODEL.get_or_init(|| BackendKind::Flex.load_text(&source, 8).expect("SmolLM2 loads on flex")))
}

/// MiniLM on flex, loaded once.
pub fn minilm(test: &str) -> Option<&'static EmbeddingModel> {
    static MODEL: OnceLock<EmbeddingModel> = OnceLock::new();
    let source = source_or_skip(models::minilm(), test)?;
    Some(MODEL.get_or_init(|| BackendKind::Flex.load_embedding(&source).expect("MiniLM loads on flex")))
}

/// A committed golden file.
pub fn golden(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).expect("golden JSON")
}
