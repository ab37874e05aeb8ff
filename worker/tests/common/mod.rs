//! Shared helpers of the integration tests: the model cache, loaded once per test binary.

#![allow(dead_code)]

use std::sync::OnceLock;

use cocoon_worker::{
    BackendKind, EmbeddingModel, GenerateRequest, ModelSource, Prompt, TextModel, models,
};

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

/// One generation case of a golden file written by `scripts/reference/golden.py`.
pub struct Case {
    pub name: String,
    pub prompt: String,
    pub prompt_tokens: Vec<u32>,
    pub max_new: usize,
    /// The reference's 20 largest first-step logits, (token, logit).
    pub top20: Vec<(u32, f32)>,
    /// The reference's first 64 first-step logits.
    pub head64: Vec<f32>,
    pub greedy: Vec<u32>,
    pub text: String,
    /// The smallest lead of a greedy token over the runner-up, when the file records it.
    pub margin: Option<f32>,
}

/// A JSON array of token ids.
pub fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The generation cases of golden file `name`.
pub fn cases(name: &str) -> Vec<Case> {
    golden(name)["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().into(),
            prompt: c["prompt"].as_str().unwrap().into(),
            prompt_tokens: u32s(&c["prompt_tokens"]),
            max_new: c["max_new_tokens"].as_u64().unwrap() as usize,
            top20: c["first_logits_top20"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32))
                .collect(),
            head64: c["first_logits_head64"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect(),
            greedy: u32s(&c["greedy_tokens"]),
            text: c["greedy_text"].as_str().unwrap().into(),
            margin: c["min_greedy_margin"].as_f64().map(|m| m as f32),
        })
        .collect()
}

/// Each case's prompt text tokenises to the reference's ids.
pub fn assert_tokenizes_as_reference(model: &TextModel, cases: &[Case]) {
    for c in cases {
        assert_eq!(
            model.tokenize(&Prompt::Text(c.prompt.clone())).unwrap(),
            c.prompt_tokens,
            "{}",
            c.name
        );
    }
}

/// The largest |logit − reference| over the case's 20 largest and first 64 first-step logits.
pub fn worst_logit_error(logits: &[f32], c: &Case) -> f32 {
    c.top20
        .iter()
        .map(|&(id, want)| (logits[id as usize] - want).abs())
        .chain(logits.iter().zip(&c.head64).map(|(g, w)| (g - w).abs()))
        .fold(0f32, f32::max)
}

/// Each case's greedy tokens for its text prompt, every request in flight at once (prefills and
/// decode steps share forward passes).
pub fn greedy_concurrently<'a>(
    model: &TextModel,
    cases: impl IntoIterator<Item = &'a Case>,
) -> Vec<Vec<u32>> {
    std::thread::scope(|s| {
        let hs: Vec<_> = cases
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    model
                        .generate(
                            &GenerateRequest::greedy(Prompt::Text(c.prompt.clone()), c.max_new),
                            |_| {},
                        )
                        .unwrap()
                        .tokens
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
