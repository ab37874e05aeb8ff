//! Throughput measurements (not tests): prefill and decode tokens/s and memory at load of our
//! engine per backend and of llama.cpp (the prebuilt binaries of the npm package `node-llama-cpp`,
//! installed by `scripts/bench-reference`), on the same GGUF, prompt token ids and thread count,
//! in one run, so the ratios compare like with like.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::text::{GenerateRequest, ModelSource, Prompt, TextModel};

/// llama.cpp's side of the benchmark, run by `node`; see the file's header for its protocol.
const LLAMA_CPP_SCRIPT: &str = include_str!("../bench/llama_cpp.mjs");

/// Environment variable naming where `scripts/bench-reference` installed node-llama-cpp.
pub const REFERENCE_DIR_ENV: &str = "COCOON_BENCH_REFERENCE_DIR";

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// New tokens per sequence. The default, 128, is long enough for a steady rate: with 32,
    /// llama.cpp's batch-1 figure jumped between about 55 and 155 tok/s from run to run.
    pub decode_tokens: usize,
    /// Batch sizes for the decode figures (1 = single stream; more = concurrent requests).
    pub batches: Vec<usize>,
    /// Timed prefills per implementation; the median is reported.
    pub repeats: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            prompt_tokens: 64,
            decode_tokens: 128,
            batches: vec![1, 8, 32],
            repeats: 3,
        }
    }
}

/// Measured figures of one implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Implementation and backend, e.g. `cocoon/flex`.
    pub label: String,
    /// Prompt tokens/s at batch 1 (median of the repeats).
    pub prefill_tok_s: f64,
    /// `(batch, aggregate decode tokens/s)`.
    pub decode_tok_s: Vec<(usize, f64)>,
    /// Growth of the process's resident memory from before loading to after the first prefill.
    pub rss_load_bytes: Option<u64>,
    /// Weight bytes the engine reads per decoded token (all its weights once).
    pub weight_bytes: Option<usize>,
    /// Whether this is the reference the ratios are taken to.
    pub reference: bool,
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

/// This process's resident memory (Linux `/proc/self/status`; `None` elsewhere).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Loads with `load`, then measures our engine. The first (warm-up) prefill is not timed: on wgpu
/// it compiles shaders.
pub fn bench_engine(
    load: impl FnOnce() -> Result<TextModel>,
    label: &str,
    ids: &[u32],
    cfg: &BenchConfig,
) -> Result<Figures> {
    let before = rss_bytes();
    let model = load()?;
    let ids = ids.to_vec();
    model.next_token_logits(&Prompt::Tokens(ids.clone()))?;
    let rss_load_bytes = before.zip(rss_bytes()).map(|(b, a)| a.saturating_sub(b));
    let mut runs = Vec::with_capacity(cfg.repeats.max(1));
    for _ in 0..cfg.repeats.max(1) {
        let t = Instant::now();
        model.next_token_logits(&Prompt::Tokens(ids.clone()))?;
        runs.push(per_s(ids.len(), t.elapsed()));
    }
    runs.sort_by(f64::total_cmp);
    let prefill_tok_s = runs[runs.len() / 2];
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
        rss_load_bytes,
        weight_bytes: Some(model.info().resident_bytes),
        reference: false,
    })
}

/// Where to find llama.cpp for the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaCpp {
    /// The directory `scripts/bench-reference` installed node-llama-cpp into.
    pub dir: PathBuf,
    /// The `node` executable.
    pub node: PathBuf,
    /// Offload to a GPU (the CUDA or Vulkan binaries, `scripts/bench-reference --gpu`).
    pub gpu: bool,
}

impl LlamaCpp {
    /// `$COCOON_BENCH_REFERENCE_DIR`, else `$HOME/.cache/cocoon/llama-cpp-bench` (the default of
    /// scripts/bench-reference).
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os(REFERENCE_DIR_ENV) {
            return PathBuf::from(d);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".cache/cocoon/llama-cpp-bench")
    }

    fn installed(&self) -> bool {
        self.dir
            .join("node_modules/node-llama-cpp/package.json")
            .is_file()
    }

    /// Runs llama.cpp on `source` with the same prompt ids, decode length, batches and threads.
    pub fn bench(
        &self,
        source: &ModelSource,
        ids: &[u32],
        cfg: &BenchConfig,
        threads: usize,
    ) -> Result<Figures> {
        if !self.installed() {
            return Err(Error::Backend(format!(
                "llama.cpp reference not installed in {} (run scripts/bench-reference, or pass --no-reference)",
                self.dir.display()
            )));
        }
        crate::hash::read_verified(&source.path, Some(&source.sha256))?;
        let input = serde_json::json!({
            "dir": self.dir,
            "model": source.path,
            "tokens": ids,
            "decode": cfg.decode_tokens,
            "batches": cfg.batches,
            "threads": threads,
            "gpu": self.gpu,
            "repeats": cfg.repeats.max(1),
        });
        // Run from a file: node-llama-cpp tests its binary in a child process that inherits
        // node's flags, which `-e` would turn into a second copy of this script.
        let script = self.dir.join("cocoon-bench.mjs");
        std::fs::write(&script, LLAMA_CPP_SCRIPT).map_err(|e| Error::Io {
            path: script.clone(),
            source: e,
        })?;
        let out = Command::new(&self.node)
            .arg(&script)
            .env("COCOON_BENCH_INPUT", input.to_string())
            .output()
            .map_err(|e| Error::Io {
                path: self.node.clone(),
                source: e,
            })?;
        if !out.status.success() {
            return Err(Error::Backend(format!(
                "llama.cpp bench failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut f = parse_llama_cpp(&String::from_utf8_lossy(&out.stdout))?;
        // llama.cpp reads the GGUF's tensors as stored.
        f.weight_bytes = Some(std::fs::metadata(&source.path).map_or(0, |m| m.len() as usize));
        Ok(f)
    }
}

/// Reads the JSON line the llama.cpp script prints last.
fn parse_llama_cpp(stdout: &str) -> Result<Figures> {
    let bad = |why: &str| Error::Backend(format!("llama.cpp bench output: {why}: {stdout:?}"));
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| bad("no JSON line"))?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad("invalid JSON"))?;
    let prefill_tok_s = v["prefill_tok_s"]
        .as_f64()
        .ok_or_else(|| bad("no prefill_tok_s"))?;
    let decode_tok_s = v["decode_tok_s"]
        .as_array()
        .ok_or_else(|| bad("no decode_tok_s"))?
        .iter()
        .map(|p| Some((p[0].as_u64()? as usize, p[1].as_f64()?)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("decode_tok_s is not [[batch, tok/s]]"))?;
    Ok(Figures {
        label: format!(
            "llama.cpp ({}, {})",
            v["version"].as_str().unwrap_or("node-llama-cpp"),
            v["backend"].as_str().unwrap_or("cpu")
        ),
        prefill_tok_s,
        decode_tok_s,
        rss_load_bytes: v["rss_load_bytes"].as_u64(),
        weight_bytes: None,
        reference: true,
    })
}

/// A Markdown table of all figures, with each engine's ratio to the reference (the entry marked
/// [`Figures::reference`]), memory at load against the GGUF's tensor bytes and, given the
/// device's memory bandwidth, the fraction of the bandwidth roofline reached at batch 1.
pub fn report(figures: &[Figures], tensor_bytes: usize, bandwidth_gbs: Option<f64>) -> String {
    let reference = figures.iter().find(|f| f.reference);
    let batches: Vec<usize> = figures
        .iter()
        .flat_map(|f| f.decode_tok_s.iter().map(|d| d.0))
        .fold(Vec::new(), |mut v, b| {
            if !v.contains(&b) {
                v.push(b);
            }
            v
        });
    let mut out = String::from("| implementation | prefill tok/s (b=1) |");
    for b in &batches {
        out.push_str(&format!(" decode tok/s b={b} |"));
    }
    out.push_str(" RSS growth at load |");
    if bandwidth_gbs.is_some() {
        out.push_str(" roofline b=1 |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(batches.len() + 1 + usize::from(bandwidth_gbs.is_some())));
    out.push('\n');
    let cell = |v: f64, r: Option<f64>| match r {
        Some(r) if r > 0.0 => format!(" {v:.1} ({:.2}×) |", v / r),
        _ => format!(" {v:.1} |"),
    };
    for f in figures {
        let r = reference.filter(|_| !f.reference);
        out.push_str(&format!(
            "| {} |{}",
            f.label,
            cell(f.prefill_tok_s, r.map(|r| r.prefill_tok_s))
        ));
        for b in &batches {
            match f.decode_tok_s.iter().find(|d| d.0 == *b) {
                Some((_, v)) => {
                    let rv = r
                        .and_then(|r| r.decode_tok_s.iter().find(|d| d.0 == *b))
                        .map(|d| d.1);
                    out.push_str(&cell(*v, rv));
                }
                None => out.push_str(" – |"),
            }
        }
        match f.rss_load_bytes {
            Some(m) => out.push_str(&format!(
                " {:.1} MB ({:.2}× GGUF tensors) |",
                m as f64 / 1e6,
                m as f64 / tensor_bytes.max(1) as f64
            )),
            None => out.push_str(" – |"),
        }
        if let Some(bw) = bandwidth_gbs {
            let b1 = f.decode_tok_s.iter().find(|d| d.0 == 1).map(|d| d.1);
            match (b1, f.weight_bytes) {
                (Some(tps), Some(bytes)) if bw > 0.0 => out.push_str(&format!(
                    " {:.1} % ({:.0} MB/token) |",
                    100.0 * tps * bytes as f64 / (bw * 1e9),
                    bytes as f64 / 1e6
                )),
                _ => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "(×: ratio to llama.cpp measured in the same run; GGUF tensors: {:.1} MB)\n",
        tensor_bytes as f64 / 1e6
    ));
    out
}

/// Whether `path` looks like a runnable `node` (used to give a clear error before measuring).
pub fn node_available(node: &Path) -> bool {
    Command::new(node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_line_and_rejects_garbage() {
        let f = parse_llama_cpp(
            "noise\n{\"version\":\"node-llama-cpp 3.21.1\",\"backend\":\"cpu\",\"prefill_tok_s\":300.5,\"decode_tok_s\":[[1,60.0],[8,200.0]],\"rss_load_bytes\":1000}\n",
        )
        .unwrap();
        assert_eq!(f.decode_tok_s, vec![(1, 60.0), (8, 200.0)]);
        assert!(f.reference && f.label.contains("3.21.1"));
        assert!(parse_llama_cpp("").is_err());
        assert!(parse_llama_cpp("{\"prefill_tok_s\":1}").is_err());
        assert!(parse_llama_cpp("{\"prefill_tok_s\":1,\"decode_tok_s\":[[\"x\"]]}").is_err());
    }

    #[test]
    fn report_shows_ratios_to_the_reference_and_memory() {
        let ours = Figures {
            label: "cocoon/flex".into(),
            prefill_tok_s: 150.0,
            decode_tok_s: vec![(1, 30.0), (8, 100.0)],
            rss_load_bytes: Some(110_000_000),
            weight_bytes: Some(100_000_000),
            reference: false,
        };
        let theirs = Figures {
            label: "llama.cpp".into(),
            prefill_tok_s: 300.0,
            decode_tok_s: vec![(1, 60.0)],
            rss_load_bytes: None,
            weight_bytes: None,
            reference: true,
        };
        let t = report(&[ours.clone(), theirs.clone()], 100_000_000, None);
        assert!(t.contains("| cocoon/flex | 150.0 (0.50×) | 30.0 (0.50×) | 100.0 | 110.0 MB (1.10× GGUF tensors) |\n"), "{t}");
        assert!(t.contains("| llama.cpp | 300.0 | 60.0 | – | – |\n"), "{t}");
        // 30 tok/s × 100 MB = 3 GB/s of 1000 GB/s.
        let t = report(&[ours, theirs], 100_000_000, Some(1000.0));
        assert!(t.contains("| 0.3 % (100 MB/token) |\n"), "{t}");
        assert!(t.contains("| – | – | – |\n"), "{t}");
    }
}
