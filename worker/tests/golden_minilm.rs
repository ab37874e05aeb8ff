//! MiniLM embeddings against the independent numpy reference (scripts/reference/golden.py).

mod common;

use cocoon_worker::{BackendKind, Error, models};

fn cases() -> Vec<(String, Vec<u32>, Vec<f32>)> {
    let g = common::golden("minilm.json");
    g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids = c["token_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let e = c["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            (c["text"].as_str().unwrap().to_string(), ids, e)
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn embeddings_match_reference_in_one_padded_batch() {
    let model = common::minilm();
    let cases = cases();
    let texts: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    let out = model.embed(&texts).unwrap();
    assert_eq!(out.vectors.len(), cases.len());
    let mut tokens = 0;
    for ((text, ids, want), got) in cases.iter().zip(&out.vectors) {
        assert_eq!(&model.tokenize(text).unwrap(), ids, "token ids of {text:?}");
        tokens += ids.len();
        let diff = max_abs_diff(got, want);
        assert!(diff <= 1e-5, "{text:?}: max |burn - numpy| = {diff}");
        let norm: f32 = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "not unit length: {norm}");
    }
    assert_eq!(out.prompt_tokens, tokens);
    // Batched (padded) and single encodings agree: padding must not leak into the pooling.
    let single = model.embed(&[texts[0]]).unwrap();
    assert!(max_abs_diff(&single.vectors[0], &out.vectors[0]) <= 1e-5);
}

#[test]
fn bad_embedding_inputs_are_typed_errors() {
    let model = common::minilm();
    assert!(matches!(
        model.embed::<&str>(&[]),
        Err(Error::EmptyInput(_))
    ));
    assert!(matches!(
        model.embed(&["ok", "  "]),
        Err(Error::EmptyInput(_))
    ));
    let long = "word ".repeat(600);
    assert!(matches!(
        model.embed(&[long.as_str()]),
        Err(Error::PromptTooLong { context: 512, .. })
    ));
}

/// The wgpu code path for real (Mesa lavapipe in CI): a small batch must match flex.
#[test]
fn wgpu_embeddings_match_flex() {
    let flex = common::minilm();
    let wgpu = BackendKind::Wgpu
        .load_embedding(&models::minilm())
        .expect("MiniLM loads on wgpu");
    let texts = ["Hello world", "Rust is a systems programming language"];
    let a = flex.embed(&texts).unwrap();
    let b = wgpu.embed(&texts).unwrap();
    for (x, y) in a.vectors.iter().zip(&b.vectors) {
        let diff = max_abs_diff(x, y);
        assert!(diff <= 1e-5, "wgpu vs flex: {diff}");
    }
    assert_eq!(wgpu.weights_hash(), flex.weights_hash());
}
