//! SmolLM2 against the independent numpy + gguf reference (scripts/reference/golden.py):
//! tokenisation, first-step logits, greedy continuations, and the same under concurrency.

mod common;

use cocoon_worker::{ChatMessage, FinishReason, GenerateRequest, Prompt, SamplingOptions};

use common::Case;

fn cases() -> Vec<Case> {
    common::cases("smollm2.json")
}

/// f32 through 30 layers against a float64 reference: logits agree to a few thousandths.
const LOGIT_TOLERANCE: f32 = 2e-2;

#[test]
fn tokenizer_matches_reference() {
    common::assert_tokenizes_as_reference(common::smollm2(), &cases());
}

#[test]
fn first_step_logits_match_reference() {
    let model = common::smollm2();
    for c in cases() {
        let logits = model
            .next_token_logits(&Prompt::Tokens(c.prompt_tokens.clone()))
            .unwrap();
        assert_eq!(logits.len(), 49152);
        let worst = common::worst_logit_error(&logits, &c);
        eprintln!(
            "{}: max |burn - numpy| over checked logits = {worst:.2e}",
            c.name
        );
        assert!(
            worst <= LOGIT_TOLERANCE,
            "{}: logits differ by {worst}",
            c.name
        );
        assert_eq!(
            cocoon_worker::sampling::argmax(&logits),
            c.top20[0].0,
            "{}: arg-max",
            c.name
        );
    }
}

#[test]
fn greedy_tokens_are_identical_to_reference() {
    let model = common::smollm2();
    for c in cases() {
        let req = GenerateRequest::greedy(Prompt::Text(c.prompt.clone()), c.max_new);
        let mut streamed = String::new();
        let mut events = 0;
        let g = model
            .generate(&req, |t| {
                streamed.push_str(&t.text);
                events += 1;
            })
            .unwrap();
        assert_eq!(g.tokens, c.greedy, "{}", c.name);
        assert_eq!(g.text, c.text, "{}", c.name);
        assert_eq!(
            streamed, g.text,
            "{}: streamed pieces add up to the text",
            c.name
        );
        assert_eq!(events, g.completion_tokens);
        assert_eq!(g.prompt_tokens, c.prompt_tokens.len());
        let want_finish = if c.greedy.last() == Some(&2) {
            FinishReason::Stop
        } else {
            FinishReason::Length
        };
        assert_eq!(g.finish, want_finish, "{}", c.name);
    }
    let paris = model
        .generate(
            &GenerateRequest::greedy(Prompt::Text("The capital of France is".into()), 3),
            |_| {},
        )
        .unwrap();
    assert!(
        paris.text.trim_start().starts_with("Paris"),
        "{:?}",
        paris.text
    );
}

#[test]
fn concurrent_requests_batch_and_keep_greedy_tokens() {
    let model = common::smollm2();
    let cases = cases();
    // Every case twice, all in flight together.
    let results = common::greedy_concurrently(model, cases.iter().chain(&cases));
    for (got, c) in results.iter().zip(cases.iter().chain(&cases)) {
        assert_eq!(got, &c.greedy, "{} under concurrency", c.name);
    }
}

#[test]
fn chat_template_renders_chatml_with_default_system() {
    let model = common::smollm2();
    let chat = cases()
        .into_iter()
        .find(|c| c.name == "capital_chat")
        .unwrap();
    let rendered = model
        .render_chat(&[ChatMessage::new("user", "What is the capital of France?")])
        .unwrap();
    assert!(
        rendered.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
        "{rendered}"
    );
    assert!(rendered.ends_with(&chat.prompt), "{rendered}");
    let g = model
        .generate(
            &GenerateRequest::greedy(
                Prompt::Chat(vec![ChatMessage::new(
                    "user",
                    "What is the capital of France?",
                )]),
                16,
            ),
            |_| {},
        )
        .unwrap();
    assert!(g.text.contains("Paris"), "{:?}", g.text);
}

#[test]
fn seeded_sampling_replays_and_stop_tokens_stop() {
    let model = common::smollm2();
    let req = |seed| GenerateRequest {
        sampling: SamplingOptions {
            temperature: 0.9,
            top_k: 40,
            top_p: 0.95,
            seed,
        },
        ..GenerateRequest::greedy(Prompt::Text("Once upon a time".into()), 12)
    };
    let a = model.generate(&req(1), |_| {}).unwrap();
    let b = model.generate(&req(1), |_| {}).unwrap();
    assert_eq!(a.tokens, b.tokens, "same seed, same tokens");
    let others: Vec<Vec<u32>> = (2..6)
        .map(|s| model.generate(&req(s), |_| {}).unwrap().tokens)
        .collect();
    assert!(
        others.iter().any(|t| t != &a.tokens),
        "different seeds never diverged"
    );
    // Stop on the 3rd greedy token of the counting case: the generation ends right there.
    let count = cases().into_iter().find(|c| c.name == "count").unwrap();
    let stop = count.greedy[1];
    let g = model
        .generate(
            &GenerateRequest {
                stop_tokens: vec![stop],
                ..GenerateRequest::greedy(Prompt::Text(count.prompt), 10)
            },
            |_| {},
        )
        .unwrap();
    assert_eq!(g.tokens, count.greedy[..2].to_vec());
    assert_eq!(g.finish, FinishReason::Stop);
}

/// Greedy tokens, first-step logits (on the first case) and a batched pass of every case on one
/// loaded model: what each backend must reproduce.
fn check_model_against_reference(model: &cocoon_worker::TextModel, label: &str) {
    let cases = cases();
    let first = &cases[0];
    let logits = model
        .next_token_logits(&Prompt::Tokens(first.prompt_tokens.clone()))
        .unwrap();
    let worst = common::worst_logit_error(&logits, first);
    assert!(
        worst <= LOGIT_TOLERANCE,
        "{label}: logits differ by {worst}"
    );
    let results = common::greedy_concurrently(model, &cases);
    for (got, c) in results.iter().zip(&cases) {
        assert_eq!(got, &c.greedy, "{label}: {}", c.name);
    }
}

/// The burn model (f32 weights, KV cache written in place by `slice_assign`), which the wgpu
/// backend runs, checked on burn-flex where it is fast.
#[test]
fn burn_f32_model_matches_reference_on_flex() {
    let source = common::require(cocoon_worker::models::smollm2());
    let model =
        cocoon_worker::TextModel::load::<burn::backend::Flex>(&source, Default::default(), 4)
            .expect("SmolLM2 loads on burn-flex");
    check_model_against_reference(&model, "burn f32 on flex");
}

/// The wgpu backend for real (Mesa lavapipe on CPU-only machines: slow, so one model load).
#[test]
fn wgpu_matches_reference() {
    let source = common::require(cocoon_worker::models::smollm2());
    let model = cocoon_worker::BackendKind::Wgpu
        .load_text(&source, 4)
        .expect("SmolLM2 loads on wgpu");
    // The Q4_1 layers and the Q8_0 embedding (also the tied head) stay in their blocks.
    let info = model.info();
    let ratio = info.resident_bytes as f64 / info.tensor_bytes as f64;
    eprintln!(
        "wgpu: resident {} B for {} B of GGUF tensors ({ratio:.3}×)",
        info.resident_bytes, info.tensor_bytes
    );
    assert!(ratio <= 1.2, "{ratio}");
    check_model_against_reference(&model, "wgpu");
}

/// The quantised CPU model holds the GGUF's tensors as stored: within 1.2× their bytes.
#[test]
fn quantized_model_stays_near_the_gguf_size() {
    let info = common::smollm2().info();
    let ratio = info.resident_bytes as f64 / info.tensor_bytes as f64;
    eprintln!(
        "resident {} B for {} B of GGUF tensors ({ratio:.3}×)",
        info.resident_bytes, info.tensor_bytes
    );
    assert!(ratio <= 1.2, "{ratio}");
}

/// A cache is sized once; a pass that would outgrow it fails and leaves it as it was.
#[test]
fn kv_cache_refuses_to_outgrow_its_capacity() {
    use cocoon_worker::gguf::Gguf;
    use cocoon_worker::llama_cpu::CpuLlama;
    let source = common::require(cocoon_worker::models::smollm2());
    let bytes = std::fs::read(&source.path).unwrap();
    let model = CpuLlama::load(&Gguf::parse(&bytes).unwrap()).unwrap();
    let mut cache = model.new_cache(3);
    assert_eq!(cache.capacity(), 3);
    let err = model
        .forward(&mut [(&[1, 2, 3, 4], &mut cache)])
        .unwrap_err();
    assert!(err.to_string().contains("outgrows"), "{err}");
    assert!(cache.is_empty());
    let logits = model.forward(&mut [(&[1, 2, 3], &mut cache)]).unwrap();
    assert_eq!((logits.len(), cache.len()), (model.config.vocab, 3));
    assert!(model.forward(&mut [(&[4], &mut cache)]).is_err());
    assert_eq!(cache.len(), 3);
}

/// On a GPU machine (`scripts/bench-gpu` runs it): every backend named in `COCOON_GPU_BACKENDS`
/// (`wgpu`, `cuda`) reproduces the reference.
#[test]
#[ignore = "needs a GPU: scripts/bench-gpu runs it with COCOON_GPU_BACKENDS"]
fn gpu_backends_match_reference() {
    use cocoon_worker::BackendKind;
    let list = std::env::var("COCOON_GPU_BACKENDS")
        .expect("COCOON_GPU_BACKENDS names the GPU backends to check, e.g. wgpu,cuda");
    let source = common::require(cocoon_worker::models::smollm2());
    for name in list.split(',').filter(|s| !s.is_empty()) {
        let backend = match name {
            "wgpu" => BackendKind::Wgpu,
            #[cfg(feature = "cuda")]
            "cuda" => BackendKind::Cuda,
            other => panic!("unknown or not built GPU backend {other:?}"),
        };
        let model = backend
            .load_text(&source, 4)
            .unwrap_or_else(|e| panic!("SmolLM2 loads on {name}: {e}"));
        check_model_against_reference(&model, name);
    }
}
