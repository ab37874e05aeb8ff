//! Throughput measurements (not tests): prefill and decode tokens/s of our engine per backend and
//! of a reference implementation (candle's quantized Llama on the same GGUF), measured in the
//! same process so the ratio compares like with like.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::text::{GenerateRequest, Prompt, TextModel};

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// New tokens per sequence.
    pub decode_tokens: usize,
    /// Batch sizes for the decode figures (1 = single stream; more = concurrent requests).
    pub batches: Vec<usize>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            prompt_tokens: 64,
            decode_tokens: 32,
            batches: vec![1, 8, 32],
        }
    }
}

/// Measured figures of one implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Implementation and backend, e.g. `cocoon/flex`.
    pub label: String,
    /// Prompt tokens/s at batch 1.
    pub prefill_tok_s: f64,
    /// `(batch, aggregate decode tokens/s)`.
    pub decode_tok_s: Vec<(usize, f64)>,
}

/// Token ids of a fixed English text, repeated to `n` tokens.
pub fn prompt_ids(model: &TextModel, n: usize) -> Result<Vec<u32>> {
    let base = model.tokenize(&Prompt::Text(
        "The history of the printing press begins in the fifteenth century, when movable type \
         changed how knowledge spread across Europe and, later, the rest of the world. "
            .into(),
    ))?;
    Ok(base.iter().cycle().take(n).copied().collect())
}

fn per_s(tokens: usize, d: Duration) -> f64 {
    tokens as f64 / d.as_secs_f64().max(1e-9)
}

/// Measures our engine. The first (warm-up) prefill is not timed: on wgpu it compiles shaders.
pub fn bench_engine(model: &TextModel, label: &str, cfg: &BenchConfig) -> Result<Figures> {
    let ids = prompt_ids(model, cfg.prompt_tokens)?;
    model.next_token_logits(&Prompt::Tokens(ids.clone()))?;
    let t = Instant::now();
    model.next_token_logits(&Prompt::Tokens(ids.clone()))?;
    let prefill_tok_s = per_s(ids.len(), t.elapsed());
    let mut decode_tok_s = Vec::new();
    for &b in &cfg.batches {
        let req = GenerateRequest {
            ignore_eos: true,
            ..GenerateRequest::greedy(Prompt::Tokens(ids.clone()), cfg.decode_tokens)
        };
        // Every request records when each of its tokens arrived; the decode rate counts the
        // tokens produced after the last request got its first token (all prefills done) until
        // the last token, so prefill time does not dilute it.
        let stamps: Vec<Vec<Instant>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..b)
                .map(|_| {
                    s.spawn(|| {
                        let mut times = Vec::with_capacity(cfg.decode_tokens);
                        model
                            .generate(&req, |_| times.push(Instant::now()))
                            .map(|_| times)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| Error::EngineStopped)?)
                .collect::<Result<_>>()
        })?;
        let start = stamps.iter().filter_map(|t| t.first()).max().copied();
        let end = stamps.iter().filter_map(|t| t.last()).max().copied();
        let (Some(start), Some(end)) = (start, end) else {
            continue;
        };
        let n = stamps.iter().flatten().filter(|t| **t > start).count();
        decode_tok_s.push((b, per_s(n, end - start)));
    }
    Ok(Figures {
        label: label.to_string(),
        prefill_tok_s,
        decode_tok_s,
    })
}

/// Measures candle-transformers' `quantized_llama` (Q4_1 kernels on the CPU) on the same GGUF
/// and the same prompt tokens.
#[cfg(feature = "reference-bench")]
pub fn bench_candle(
    source: &crate::text::ModelSource,
    ids: &[u32],
    cfg: &BenchConfig,
) -> Result<Figures> {
    use candle_core::quantized::gguf_file;
    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_llama::ModelWeights;
    use std::path::Path;

    let c = |e: candle_core::Error| Error::Backend(format!("candle: {e}"));
    let device = Device::Cpu;
    let load = |path: &Path| -> Result<ModelWeights> {
        let mut f = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let content = gguf_file::Content::read(&mut f).map_err(c)?;
        ModelWeights::from_gguf(content, &mut f, &device).map_err(c)
    };
    crate::hash::read_verified(&source.path, Some(&source.sha256))?;
    let mut model = load(&source.path)?;
    let prompt = |b: usize| -> Result<Tensor> {
        let rows: Vec<u32> = (0..b).flat_map(|_| ids.iter().copied()).collect();
        Tensor::from_vec(rows, (b, ids.len()), &device).map_err(c)
    };
    model.forward(&prompt(1)?, 0).map_err(c)?; // warm-up
    model.clear_kv_cache();
    let t = Instant::now();
    model.forward(&prompt(1)?, 0).map_err(c)?;
    let prefill_tok_s = per_s(ids.len(), t.elapsed());
    let mut decode_tok_s = Vec::new();
    for &b in &cfg.batches {
        model.clear_kv_cache();
        // quantized_llama cannot take a multi-row prompt for batch > 1 (its last-position slice
        // is not contiguous for the output matmul), so batched prompts go in one position at a
        // time; only the decode steps after them are timed.
        let logits = if b == 1 {
            model.forward(&prompt(1)?, 0).map_err(c)?
        } else {
            let all = prompt(b)?;
            let mut last = None;
            for pos in 0..ids.len() {
                let col = all.narrow(1, pos, 1).map_err(c)?.contiguous().map_err(c)?;
                last = Some(model.forward(&col, pos).map_err(c)?);
            }
            last.ok_or_else(|| Error::InvalidOptions("empty bench prompt".into()))?
        };
        let mut next = logits
            .argmax(1)
            .map_err(c)?
            .to_dtype(candle_core::DType::U32)
            .map_err(c)?;
        let t = Instant::now();
        for step in 1..cfg.decode_tokens {
            let input = next.reshape((b, 1)).map_err(c)?;
            let logits = model.forward(&input, ids.len() + step - 1).map_err(c)?;
            next = logits
                .argmax(1)
                .map_err(c)?
                .to_dtype(candle_core::DType::U32)
                .map_err(c)?;
        }
        next.to_vec1::<u32>().map_err(c)?;
        decode_tok_s.push((b, per_s(b * (cfg.decode_tokens - 1), t.elapsed())));
    }
    Ok(Figures {
        label: "candle quantized_llama (reference)".into(),
        prefill_tok_s,
        decode_tok_s,
    })
}

/// A Markdown table of all figures, with each engine's ratio to the reference (the last entry
/// labelled `reference`).
pub fn report(figures: &[Figures]) -> String {
    let reference = figures.iter().find(|f| f.label.contains("reference"));
    let mut out = String::from("| implementation | prefill tok/s (b=1) |");
    let batches: Vec<usize> = figures
        .first()
        .map(|f| f.decode_tok_s.iter().map(|d| d.0).collect())
        .unwrap_or_default();
    for b in &batches {
        out.push_str(&format!(" decode tok/s b={b} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(batches.len()));
    out.push('\n');
    let cell = |v: f64, r: Option<f64>| match r {
        Some(r) if r > 0.0 => format!(" {v:.1} ({:.2}×) |", v / r),
        _ => format!(" {v:.1} |"),
    };
    for f in figures {
        let is_ref = reference.is_some_and(|r| std::ptr::eq(r, f));
        let rp = reference.filter(|_| !is_ref).map(|r| r.prefill_tok_s);
        out.push_str(&format!("| {} |{}", f.label, cell(f.prefill_tok_s, rp)));
        for (b, v) in &f.decode_tok_s {
            let rv = reference
                .filter(|_| !is_ref)
                .and_then(|r| r.decode_tok_s.iter().find(|d| d.0 == *b))
                .map(|d| d.1);
            out.push_str(&cell(*v, rv));
        }
        out.push('\n');
    }
    out.push_str("(×: ratio to the reference measured in the same run)\n");
    out
}
