//! The Qwen2 architecture against the independent numpy reference (scripts/reference/golden.py),
//! on the tiny random-weight Qwen2 GGUF committed in tests/models (scripts/reference/tiny_qwen2.py
//! writes it): tokenisation with Qwen2's pre-tokenizer, the ChatML template with Qwen's default
//! system message, first-step logits, greedy continuations, KV-cache decoding against full
//! recomputation, and batching, on the quantised CPU model (`flex`), the burn model on flex, and
//! `wgpu`. A real Qwen2.5 GGUF, given by path, is checked by the ignored test at the end.

mod common;

use std::path::PathBuf;

use burn::backend::Flex;
use cocoon_worker::gguf::Gguf;
use cocoon_worker::llama::{Arch, Llama};
use cocoon_worker::llama_cpu::CpuLlama;
use cocoon_worker::{
    BackendKind, ChatMessage, FinishReason, GenerateRequest, ModelSource, Prompt, TextModel,
    WeightsHash,
};
use common::{Case, u32s, worst_logit_error};

/// sha256 of tests/models/qwen2-tiny.gguf (`tiny_qwen2.py --check` proves the generator still
/// writes exactly these bytes).
const TINY_SHA256: &str = "e34ab5cdc23f4a4a9cd3c21397b8631306aac5b55ececfba688f01f9bf2b3646";

/// f32 through two small layers against float64: the logits agree far closer than this.
const LOGIT_TOLERANCE: f32 = 2e-3;

/// The quantised CPU kernels sum in an order that depends on how many rows a product has (four
/// inputs per unpacked weight block, burn's GEMM from 16 rows on), so the same position computed
/// in a pass of 1 or of 13 rows agrees to rounding, not bit for bit.
const ROW_COUNT_TOLERANCE: f32 = 1e-3;

/// Environment variable naming a real Qwen2/Qwen2.5 GGUF for the ignored test.
const REAL_GGUF_ENV: &str = "COCOON_QWEN2_GGUF";
/// Optional: the sha256 that file must have.
const REAL_SHA_ENV: &str = "COCOON_QWEN2_SHA256";

fn tiny_source() -> ModelSource {
    ModelSource {
        path: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/models/qwen2-tiny.gguf"),
        sha256: WeightsHash::from_hex(TINY_SHA256).unwrap(),
    }
}

fn tiny_bytes() -> Vec<u8> {
    std::fs::read(tiny_source().path).expect("the committed tiny Qwen2 GGUF")
}

/// The quantised CPU model (what `flex` serves), loaded once.
fn flex() -> &'static TextModel {
    static MODEL: std::sync::OnceLock<TextModel> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        BackendKind::Flex
            .load_text(&tiny_source(), 8)
            .expect("the tiny Qwen2 loads on flex")
    })
}

fn golden() -> serde_json::Value {
    common::golden("qwen2_tiny.json")
}

fn cases() -> Vec<Case> {
    common::cases("qwen2_tiny.json")
}

#[test]
fn fixture_is_the_pinned_file_and_reads_as_qwen2() {
    let (bytes, hash) = (tiny_bytes(), tiny_source().sha256);
    assert_eq!(
        WeightsHash::of(&bytes),
        hash,
        "tests/models/qwen2-tiny.gguf changed"
    );
    let g = Gguf::parse(&bytes).unwrap();
    let cfg = cocoon_worker::llama::LlamaConfig::from_gguf(&g).unwrap();
    assert_eq!(cfg.arch, Arch::Qwen2);
    assert!(cfg.n_kv_heads < cfg.n_heads, "grouped-query attention");
    assert!(g.tensors.contains_key("output.weight"), "untied head");
    assert!(g.tensors.contains_key("blk.0.attn_q.bias"));
}

#[test]
fn golden_greedy_picks_are_robust() {
    // Greedy tokens are only worth comparing when no step is a near-tie at our tolerance.
    for c in cases() {
        let margin = c.margin.expect("qwen2_tiny.json records the greedy margin");
        assert!(
            margin > 4.0 * LOGIT_TOLERANCE,
            "{}: top-2 margin {margin} is within the tolerance",
            c.name
        );
        let spread = c.top20[0].1 - c.top20[19].1;
        assert!(spread > 2.0, "{}: flat logits ({spread})", c.name);
    }
}

#[test]
fn tokenizer_matches_reference() {
    common::assert_tokenizes_as_reference(flex(), &cases());
}

#[test]
fn chat_template_and_stop_tokens_come_from_the_gguf() {
    let model = flex();
    let chat = cases()
        .into_iter()
        .find(|c| c.name == "capital_chat")
        .unwrap();
    let rendered = model
        .render_chat(&[ChatMessage::new("user", "What is the capital of France?")])
        .unwrap();
    let system = golden()["system"].as_str().unwrap().to_string();
    assert!(
        rendered.starts_with(&format!("<|im_start|>system\n{system}<|im_end|>\n")),
        "{rendered}"
    );
    assert_eq!(rendered, chat.prompt);
    // An explicit system message replaces the default one.
    let own = model
        .render_chat(&[
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
        ])
        .unwrap();
    assert_eq!(
        own,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    let mut eos = model.info().eos.clone();
    eos.sort();
    assert_eq!(eos, u32s(&golden()["eos"]), "<|im_end|> and <|endoftext|>");
    let tk = model.tokenizer();
    for t in ["<|im_end|>", "<|endoftext|>"] {
        assert!(eos.contains(&tk.token_to_id(t).unwrap()), "{t}");
    }
}

#[test]
fn first_step_logits_match_reference() {
    let model = flex();
    for c in cases() {
        let logits = model
            .next_token_logits(&Prompt::Tokens(c.prompt_tokens.clone()))
            .unwrap();
        assert_eq!(logits.len(), model.info().config.vocab);
        let worst = worst_logit_error(&logits, &c);
        eprintln!("{}: max |flex - numpy| = {worst:.2e}", c.name);
        assert!(
            worst <= LOGIT_TOLERANCE,
            "{}: logits differ by {worst}",
            c.name
        );
        assert_eq!(cocoon_worker::sampling::argmax(&logits), c.top20[0].0);
    }
}

#[test]
fn greedy_tokens_are_identical_to_reference() {
    let model = flex();
    let eos = model.info().eos.clone();
    for c in cases() {
        let req = GenerateRequest::greedy(Prompt::Text(c.prompt.clone()), c.max_new);
        let mut events = 0;
        let g = model.generate(&req, |_| events += 1).unwrap();
        assert_eq!(g.tokens, c.greedy, "{}", c.name);
        assert_eq!(g.text, c.text, "{}", c.name);
        assert_eq!(events, g.completion_tokens);
        let want = if c.greedy.last().is_some_and(|t| eos.contains(t)) {
            FinishReason::Stop
        } else {
            FinishReason::Length
        };
        assert_eq!(g.finish, want, "{}", c.name);
    }
}

/// Logits after every prefix of `tokens`, each from a fresh cache (full recomputation).
fn recomputed<F: FnMut(&[u32]) -> Vec<f32>>(
    tokens: &[u32],
    from: usize,
    mut run: F,
) -> Vec<Vec<f32>> {
    (from..=tokens.len()).map(|n| run(&tokens[..n])).collect()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(x, y)| (x - y).abs()))
        .fold(0f32, f32::max)
}

#[test]
fn kv_cache_decoding_equals_full_recomputation() {
    let bytes = tiny_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let c = &cases()[0];
    let seq: Vec<u32> = c.prompt_tokens.iter().chain(&c.greedy).copied().collect();
    let p = c.prompt_tokens.len();

    let cpu = CpuLlama::load(&g).unwrap();
    let mut cache = cpu.new_cache(seq.len());
    let mut stepped = vec![cpu.forward(&mut [(&seq[..p], &mut cache)]).unwrap()];
    for t in &seq[p..] {
        stepped.push(cpu.forward(&mut [(&[*t], &mut cache)]).unwrap());
    }
    let full = recomputed(&seq, p, |s| {
        let mut cache = cpu.new_cache(s.len());
        cpu.forward(&mut [(s, &mut cache)]).unwrap()
    });
    let d = max_diff(&stepped, &full);
    assert!(
        d <= ROW_COUNT_TOLERANCE,
        "quantised CPU model: cached decode differs by {d}"
    );

    let burn = Llama::<Flex>::load(&g, &Default::default()).unwrap();
    let to_vec = |t: burn::tensor::Tensor<Flex, 2>| t.into_data().to_vec::<f32>().unwrap();
    let mut cache = burn.new_cache(seq.len());
    let mut stepped = vec![to_vec(
        burn.forward(&mut [(&seq[..p], &mut cache)]).unwrap(),
    )];
    for t in &seq[p..] {
        stepped.push(to_vec(burn.forward(&mut [(&[*t], &mut cache)]).unwrap()));
    }
    let full = recomputed(&seq, p, |s| {
        let mut cache = burn.new_cache(s.len());
        to_vec(burn.forward(&mut [(s, &mut cache)]).unwrap())
    });
    let d = max_diff(&stepped, &full);
    assert!(d <= 1e-4, "burn model: cached decode differs by {d}");
}

#[test]
fn a_batched_pass_equals_separate_passes() {
    let bytes = tiny_bytes();
    let cpu = CpuLlama::load(&Gguf::parse(&bytes).unwrap()).unwrap();
    let cases = cases();
    let alone: Vec<Vec<f32>> = cases
        .iter()
        .map(|c| {
            let mut cache = cpu.new_cache(c.prompt_tokens.len());
            cpu.forward(&mut [(&c.prompt_tokens, &mut cache)]).unwrap()
        })
        .collect();
    let mut caches: Vec<_> = cases
        .iter()
        .map(|c| cpu.new_cache(c.prompt_tokens.len()))
        .collect();
    let mut batch: Vec<(&[u32], &mut _)> = cases
        .iter()
        .zip(caches.iter_mut())
        .map(|(c, k)| (c.prompt_tokens.as_slice(), k))
        .collect();
    let together = cpu.forward(&mut batch).unwrap();
    let together: Vec<Vec<f32>> = together
        .chunks_exact(cpu.config.vocab)
        .map(<[f32]>::to_vec)
        .collect();
    let d = max_diff(&alone, &together);
    assert!(d <= ROW_COUNT_TOLERANCE, "batched logits differ by {d}");
}

/// First-step logits of every case and greedy tokens of every case (all in flight together, twice
/// over: prefills and decode steps share passes) on one loaded model.
fn check_model_against_reference(model: &TextModel, label: &str) {
    let cases = cases();
    for c in &cases {
        let logits = model
            .next_token_logits(&Prompt::Tokens(c.prompt_tokens.clone()))
            .unwrap();
        let worst = worst_logit_error(&logits, c);
        eprintln!("{label} {}: max |logit - numpy| = {worst:.2e}", c.name);
        assert!(
            worst <= LOGIT_TOLERANCE,
            "{label} {}: logits differ by {worst}",
            c.name
        );
    }
    let results = common::greedy_concurrently(model, cases.iter().chain(&cases));
    for (got, c) in results.iter().zip(cases.iter().chain(&cases)) {
        assert_eq!(got, &c.greedy, "{label}: {}", c.name);
    }
}

#[test]
fn flex_matches_reference_under_concurrency() {
    check_model_against_reference(flex(), "flex");
}

/// The burn model (f32 weights), which the wgpu backend runs, checked on burn-flex.
#[test]
fn burn_f32_model_matches_reference_on_flex() {
    let model = TextModel::load::<Flex>(&tiny_source(), Default::default(), 4)
        .expect("the tiny Qwen2 loads on burn-flex");
    check_model_against_reference(&model, "burn f32 on flex");
}

/// The wgpu backend for real (Mesa lavapipe on CPU-only machines).
#[test]
fn wgpu_matches_reference() {
    let model = BackendKind::Wgpu
        .load_text(&tiny_source(), 4)
        .expect("the tiny Qwen2 loads on wgpu");
    check_model_against_reference(&model, "wgpu");
}

/// A real Qwen2.5 instruct GGUF (e.g. Qwen2.5-0.5B-Instruct Q4_K_M: Q4_K, Q6_K, Q5_0 and Q8_0
/// tensors) from a local path, on flex: memory at load, and a greedy chat answer.
#[test]
#[ignore = "needs a real Qwen2/Qwen2.5 GGUF: set COCOON_QWEN2_GGUF=/path/to/file.gguf"]
fn real_qwen2_gguf_answers_paris() {
    let path = std::env::var_os(REAL_GGUF_ENV).unwrap_or_else(|| {
        panic!(
            "set {REAL_GGUF_ENV} to the path of a Qwen2/Qwen2.5 instruct GGUF \
             (e.g. qwen2.5-0.5b-instruct-q4_k_m.gguf); {REAL_SHA_ENV} optionally pins its sha256"
        )
    });
    let path = PathBuf::from(path);
    let sha256 = cocoon_worker::text::hash_file(&path)
        .unwrap_or_else(|e| panic!("{REAL_GGUF_ENV}={}: {e}", path.display()));
    eprintln!("{}: sha256 {sha256}", path.display());
    if let Ok(want) = std::env::var(REAL_SHA_ENV) {
        assert_eq!(
            sha256,
            WeightsHash::from_hex(want.trim()).expect("a hex sha256"),
            "{REAL_SHA_ENV} does not match the file"
        );
    }
    let model = BackendKind::Flex
        .load_text(&ModelSource { path, sha256 }, 1)
        .expect("the Qwen2 GGUF loads on flex");
    let info = model.info();
    assert_eq!(info.config.arch, Arch::Qwen2);
    let ratio = info.resident_bytes as f64 / info.tensor_bytes as f64;
    eprintln!(
        "resident {} B for {} B of GGUF tensors ({ratio:.3}×)",
        info.resident_bytes, info.tensor_bytes
    );
    assert!(ratio <= 1.2, "{ratio}");
    let g = model
        .generate(
            &GenerateRequest::greedy(
                Prompt::Chat(vec![ChatMessage::new(
                    "user",
                    "What is the capital of France?",
                )]),
                32,
            ),
            |_| {},
        )
        .unwrap();
    eprintln!("answer: {:?}", g.text);
    assert!(g.text.contains("Paris"), "{:?}", g.text);
}
