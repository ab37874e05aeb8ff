//! Bad inputs give typed errors, never panics: corrupted or truncated weights, wrong hashes,
//! empty or over-long prompts, bad options.

mod common;

use cocoon_worker::{
    BackendKind, Error, GenerateRequest, ModelSource, Prompt, SamplingOptions, WeightsHash, models,
};

fn copy_with(
    source: &ModelSource,
    edit: impl FnOnce(&mut Vec<u8>),
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let mut bytes = std::fs::read(&source.path).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn wrong_hash_is_refused() {
    let source = common::require(models::smollm2());
    let wrong = ModelSource {
        sha256: WeightsHash([7; 32]),
        ..source.clone()
    };
    assert!(matches!(
        BackendKind::Flex.load_text(&wrong, 1),
        Err(Error::HashMismatch { .. })
    ));
    // One flipped bit in the weights: the pinned hash no longer matches.
    let (_d, path) = copy_with(&source, |b| {
        let i = b.len() - 1000;
        b[i] ^= 1;
    });
    let flipped = ModelSource { path, ..source };
    match BackendKind::Flex.load_text(&flipped, 1) {
        Err(Error::HashMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, models::SMOLLM2_SHA256);
            assert_ne!(actual, expected);
        }
        other => panic!("expected HashMismatch, got {:?}", other.err()),
    }
    assert!(matches!(
        WeightsHash::from_hex("abc"),
        Err(Error::InvalidExpectedHash(_))
    ));
}

#[test]
fn truncated_and_corrupted_gguf_are_typed_errors() {
    let source = common::require(models::smollm2());
    let bytes = std::fs::read(&source.path).unwrap();
    // Truncated anywhere (the hash is recomputed for the cut bytes, so parsing is what fails).
    for cut in [0, 3, 20, 1_000, 500_000, 10_000_000, bytes.len() - 1] {
        let part = &bytes[..cut];
        let r = cocoon_worker::TextModel::from_bytes::<burn::backend::Flex>(
            part,
            WeightsHash::of(part),
            Default::default(),
            1,
        );
        assert!(
            matches!(r, Err(Error::Truncated { .. })),
            "cut at {cut}: {:?}",
            r.err()
        );
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    let r = cocoon_worker::TextModel::from_bytes::<burn::backend::Flex>(
        &bad,
        WeightsHash::of(&bad),
        Default::default(),
        1,
    );
    assert!(matches!(r, Err(Error::BadMagic(_))));
    // The first tensor's ggml type field set to an id no reader knows.
    let g = cocoon_worker::gguf::Gguf::parse(&bytes).unwrap();
    drop(g);
    let name = b"token_embd.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
    // name, then n_dims u32 (2), two u64 dims, then the u32 type.
    let type_at = at + name.len() + 4 + 16;
    let mut bad = bytes.clone();
    bad[type_at..type_at + 4].copy_from_slice(&77u32.to_le_bytes());
    let r = cocoon_worker::gguf::Gguf::parse(&bad);
    assert!(
        matches!(r, Err(Error::UnknownTensorType { type_id: 77, .. })),
        "{:?}",
        r.err()
    );
}

#[test]
fn bad_prompts_and_options_are_typed_errors() {
    let model = common::smollm2();
    let gen_err = |req: GenerateRequest| model.generate(&req, |_| {}).unwrap_err();
    assert!(matches!(
        gen_err(GenerateRequest::greedy(Prompt::Text(String::new()), 4)),
        Error::EmptyPrompt
    ));
    assert!(matches!(
        gen_err(GenerateRequest::greedy(Prompt::Tokens(vec![]), 4)),
        Error::EmptyPrompt
    ));
    let context = model.info().config.context;
    assert!(matches!(
        gen_err(GenerateRequest::greedy(Prompt::Tokens(vec![28; context]), 4)),
        Error::PromptTooLong { prompt_tokens, context: c } if prompt_tokens == context && c == context
    ));
    assert!(matches!(
        gen_err(GenerateRequest::greedy(Prompt::Tokens(vec![49_152]), 4)),
        Error::InvalidOptions(_)
    ));
    assert!(matches!(
        gen_err(GenerateRequest::greedy(Prompt::Text("hi".into()), 0)),
        Error::InvalidOptions(_)
    ));
    let hot = GenerateRequest {
        sampling: SamplingOptions {
            temperature: -1.0,
            ..Default::default()
        },
        ..GenerateRequest::greedy(Prompt::Text("hi".into()), 4)
    };
    assert!(matches!(gen_err(hot), Error::InvalidOptions(_)));
    // The engine still serves after the errors.
    assert!(
        model
            .generate(
                &GenerateRequest::greedy(Prompt::Text("hi".into()), 1),
                |_| {}
            )
            .is_ok()
    );
}
