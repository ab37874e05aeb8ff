//! The Llama architecture (and its Qwen2 variant) on the CPU with its weights kept quantised ([`QMatrix`]): what the
//! `flex` backend runs for text models. Same maths as the burn model in [`crate::llama`] (which
//! the `wgpu` backend runs), with per-sequence KV caches sized once and appended to in place.
//!
//! Threads: the rayon pool burn-flex uses (`RAYON_NUM_THREADS`, default one per core).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::gguf::Gguf;
use crate::llama::{LlamaConfig, RopeStyle};
use crate::qmatmul::{QMatrix, dot};

/// From this many rows on (a prefill, a large batch), norms and activations are split over
/// the pool too: serial, they left the other cores idle for a tenth of a prefill.
const PARALLEL_ROWS: usize = 8;

/// `eˣ` to about 2⁻²³ relative, in arithmetic LLVM vectorises (libm's `expf` is a call per
/// value: a tenth of a prefill went to SiLU's and softmax's).
#[inline]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that `x − n·ln 2` stays exact for |n| ≤ 128.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer (no `roundf` call).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor to r⁷ on |r| ≤ ln 2 / 2: the first term left out is below 2⁻²⁴.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// A weight that is either one stacked matrix or its parts (when the GGUF stores them in
/// different types); the output columns are the parts side by side either way.
enum Proj {
    Stacked(QMatrix),
    Parts(Vec<QMatrix>),
}

impl Proj {
    fn new(parts: Vec<QMatrix>) -> Self {
        let refs: Vec<&QMatrix> = parts.iter().collect();
        match QMatrix::stack(&refs) {
            Some(m) => Self::Stacked(m),
            None => Self::Parts(parts),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Stacked(m) => m.bytes(),
            Self::Parts(p) => p.iter().map(QMatrix::bytes).sum(),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Self::Stacked(m) => m.rows(),
            Self::Parts(p) => p.iter().map(QMatrix::rows).sum(),
        }
    }

    /// `n` rows of all outputs side by side.
    fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        match self {
            Self::Stacked(m) => m.matmul(x, n),
            Self::Parts(parts) => {
                let total = self.rows();
                let mut y = vec![0f32; n * total];
                let mut c0 = 0;
                for p in parts {
                    let part = p.matmul(x, n);
                    for t in 0..n {
                        y[t * total + c0..t * total + c0 + p.rows()]
                            .copy_from_slice(&part[t * p.rows()..(t + 1) * p.rows()]);
                    }
                    c0 += p.rows();
                }
                y
            }
        }
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    /// Q, K and V: output columns `[d_model | kv_dim | kv_dim]`.
    qkv: Proj,
    /// Biases of Q, K and V side by side (Qwen2), added after the product.
    qkv_bias: Option<Vec<f32>>,
    wo: QMatrix,
    ffn_norm: Vec<f32>,
    /// Gate and up: output columns `[ffn | ffn]`.
    gate_up: Proj,
    down: QMatrix,
}

/// Keys and values of one sequence: per layer, `capacity` positions of `kv_dim` values, reserved
/// when the sequence starts and filled in place (never reallocated, never copied).
pub struct CpuKvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
    capacity: usize,
}

impl CpuKvCache {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been run yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions reserved.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A Llama (or Qwen2) model with quantised weights, on the CPU.
pub struct CpuLlama {
    /// Hyper-parameters.
    pub config: LlamaConfig,
    embed: QMatrix,
    /// `output.weight`, or `None` when the head is tied to the embeddings.
    head: Option<QMatrix>,
    out_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// `[context, head_dim / 2]` rotation angles' cosines and sines.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl CpuLlama {
    /// Copies the GGUF's tensors as they are stored (no dequantisation).
    pub fn load(g: &Gguf<'_>) -> Result<Self> {
        let cfg = LlamaConfig::from_gguf(g)?;
        let d = cfg.d_model;
        let kvd = cfg.n_kv_heads * cfg.head_dim();
        let vector = |name: &str, len: usize| -> Result<Vec<f32>> {
            let info = g.tensor(name)?;
            if info.shape() != [len] {
                return Err(Error::ShapeMismatch {
                    name: name.into(),
                    expected: vec![len],
                    actual: info.shape(),
                });
            }
            g.dequantize(name)
        };
        let embed = QMatrix::from_gguf(g, "token_embd.weight", cfg.vocab, d)?;
        let head = match g.tensors.get("output.weight") {
            Some(_) => Some(QMatrix::from_gguf(g, "output.weight", cfg.vocab, d)?),
            None => None,
        };
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            let m = |s: &str, rows, cols| QMatrix::from_gguf(g, &p(s), rows, cols);
            let qkv_bias = if cfg.arch.qkv_bias() {
                let b = |s: &str, len| vector(&format!("blk.{i}.{s}.bias"), len);
                Some([b("attn_q", d)?, b("attn_k", kvd)?, b("attn_v", kvd)?].concat())
            } else {
                None
            };
            layers.push(Layer {
                qkv_bias,
                attn_norm: vector(&p("attn_norm"), d)?,
                qkv: Proj::new(vec![
                    m("attn_q", d, d)?,
                    m("attn_k", kvd, d)?,
                    m("attn_v", kvd, d)?,
                ]),
                wo: m("attn_output", d, d)?,
                ffn_norm: vector(&p("ffn_norm"), d)?,
                gate_up: Proj::new(vec![m("ffn_gate", cfg.ffn, d)?, m("ffn_up", cfg.ffn, d)?]),
                down: m("ffn_down", d, cfg.ffn)?,
            });
        }
        let out_norm = vector("output_norm.weight", d)?;
        // RoPE tables, computed in f64 so long positions keep their precision.
        let half = cfg.head_dim() / 2;
        let mut cos = Vec::with_capacity(cfg.context * half);
        let mut sin = Vec::with_capacity(cfg.context * half);
        for pos in 0..cfg.context {
            for j in 0..half {
                let freq = cfg
                    .rope_theta
                    .powf(-(2.0 * j as f64) / cfg.head_dim() as f64);
                let a = pos as f64 * freq;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Ok(Self {
            config: cfg,
            embed,
            head,
            out_norm,
            layers,
            cos,
            sin,
        })
    }

    /// Bytes the model holds: quantised weights, norms and RoPE tables.
    pub fn resident_bytes(&self) -> usize {
        let f = std::mem::size_of::<f32>();
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.qkv.bytes()
                    + l.wo.bytes()
                    + l.gate_up.bytes()
                    + l.down.bytes()
                    + (l.attn_norm.len()
                        + l.ffn_norm.len()
                        + l.qkv_bias.as_ref().map_or(0, Vec::len))
                        * f
            })
            .sum();
        layers
            + self.embed.bytes()
            + self.head.as_ref().map_or(0, QMatrix::bytes)
            + (self.out_norm.len() + self.cos.len() + self.sin.len()) * f
    }

    /// A cache for a sequence of at most `capacity` positions (prompt plus new tokens).
    pub fn new_cache(&self, capacity: usize) -> CpuKvCache {
        let capacity = capacity.min(self.config.context);
        let kvd = self.config.n_kv_heads * self.config.head_dim();
        let reserve = || {
            (0..self.config.n_layers)
                .map(|_| Vec::with_capacity(capacity * kvd))
                .collect()
        };
        CpuKvCache {
            k: reserve(),
            v: reserve(),
            len: 0,
            capacity,
        }
    }

    fn rms_norm(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let d = w.len();
        let mut out = vec![0f32; x.len()];
        let norm = |(o, x): (&mut [f32], &[f32])| {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / d as f32;
            let s = 1.0 / (ms + self.config.eps as f32).sqrt();
            for ((o, x), w) in o.iter_mut().zip(x).zip(w) {
                *o = x * s * w;
            }
        };
        if x.len() >= PARALLEL_ROWS * d {
            out.par_chunks_exact_mut(d)
                .zip(x.par_chunks_exact(d))
                .for_each(norm);
        } else {
            out.chunks_exact_mut(d)
                .zip(x.chunks_exact(d))
                .for_each(norm);
        }
        out
    }

    /// Rotates each head of `v` (one position's heads) in the architecture's [`RopeStyle`].
    fn rope(&self, v: &mut [f32], pos: usize) {
        let half = self.config.head_dim() / 2;
        let (c, s) = (
            &self.cos[pos * half..(pos + 1) * half],
            &self.sin[pos * half..(pos + 1) * half],
        );
        if self.config.arch.rope() == RopeStyle::HalfSplit {
            for head in v.chunks_exact_mut(2 * half) {
                let (a, b) = head.split_at_mut(half);
                for j in 0..half {
                    let (x0, x1) = (a[j], b[j]);
                    a[j] = x0 * c[j] - x1 * s[j];
                    b[j] = x0 * s[j] + x1 * c[j];
                }
            }
            return;
        }
        for head in v.chunks_exact_mut(2 * half) {
            for (j, pair) in head.chunks_exact_mut(2).enumerate() {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c[j] - x1 * s[j];
                pair[1] = x0 * s[j] + x1 * c[j];
            }
        }
    }

    /// Runs new tokens for several sequences in one pass and returns the logits of each
    /// sequence's last new token, `sequences × vocab` values.
    ///
    /// Matrix products run once over all rows; attention runs per sequence and head against
    /// that sequence's cache. Fails (touching no cache) when a sequence would outgrow its cache.
    pub fn forward(&self, batch: &mut [(&[u32], &mut CpuKvCache)]) -> Result<Vec<f32>> {
        let cfg = &self.config;
        let (d, hd) = (cfg.d_model, cfg.head_dim());
        let kvd = cfg.n_kv_heads * hd;
        let qkv_w = d + 2 * kvd;
        let group = cfg.n_heads / cfg.n_kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        for (tokens, cache) in batch.iter() {
            if cache.len + tokens.len() > cache.capacity {
                return Err(Error::Backend(format!(
                    "a sequence of {} positions outgrows its KV cache of {}",
                    cache.len + tokens.len(),
                    cache.capacity
                )));
            }
            if let Some(bad) = tokens.iter().find(|&&t| t as usize >= cfg.vocab) {
                return Err(Error::InvalidOptions(format!(
                    "token id {bad} is outside the vocabulary"
                )));
            }
        }
        let rows: usize = batch.iter().map(|(t, _)| t.len()).sum();
        let mut x = vec![0f32; rows * d];
        for (id, row) in batch
            .iter()
            .flat_map(|(t, _)| t.iter())
            .zip(x.chunks_exact_mut(d))
        {
            self.embed.dequantize_row(*id as usize, row);
        }

        for (li, layer) in self.layers.iter().enumerate() {
            let h = self.rms_norm(&x, &layer.attn_norm);
            let mut qkv = layer.qkv.matmul(&h, rows);
            if let Some(bias) = &layer.qkv_bias {
                for row in qkv.chunks_exact_mut(qkv_w) {
                    for (x, b) in row.iter_mut().zip(bias) {
                        *x += b;
                    }
                }
            }
            // Rotate Q and K in place, append K and V to each sequence's cache.
            let mut r0 = 0;
            for (tokens, cache) in batch.iter_mut() {
                for i in 0..tokens.len() {
                    let row = &mut qkv[(r0 + i) * qkv_w..(r0 + i + 1) * qkv_w];
                    let pos = cache.len + i;
                    self.rope(&mut row[..d + kvd], pos);
                    cache.k[li].extend_from_slice(&row[d..d + kvd]);
                    cache.v[li].extend_from_slice(&row[d + kvd..]);
                }
                r0 += tokens.len();
            }
            // Attention: one task per (sequence, query head).
            let mut starts = Vec::with_capacity(batch.len());
            let mut r0 = 0;
            for (tokens, cache) in batch.iter() {
                starts.push((r0, tokens.len(), cache.len, &**cache));
                r0 += tokens.len();
            }
            let tasks: Vec<(usize, usize)> = (0..starts.len())
                .flat_map(|s| (0..cfg.n_heads).map(move |h| (s, h)))
                .collect();
            let outs: Vec<Vec<f32>> = tasks
                .par_iter()
                .map(|&(s, h)| {
                    let (r0, n, past, cache) = starts[s];
                    let (k, v) = (&cache.k[li], &cache.v[li]);
                    let kv_off = (h / group) * hd;
                    let mut out = vec![0f32; n * hd];
                    let mut scores = Vec::with_capacity(past + n);
                    for i in 0..n {
                        let q = &qkv[(r0 + i) * qkv_w + h * hd..(r0 + i) * qkv_w + (h + 1) * hd];
                        let visible = past + i + 1; // causal: itself and everything before
                        scores.clear();
                        scores.extend(
                            (0..visible).map(|p| {
                                dot(q, &k[p * kvd + kv_off..p * kvd + kv_off + hd]) * scale
                            }),
                        );
                        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let mut sum = 0f32;
                        for s in scores.iter_mut() {
                            *s = exp(*s - max);
                            sum += *s;
                        }
                        let o = &mut out[i * hd..(i + 1) * hd];
                        for (p, w) in scores.iter().enumerate() {
                            let w = w / sum;
                            let vrow = &v[p * kvd + kv_off..p * kvd + kv_off + hd];
                            for (o, v) in o.iter_mut().zip(vrow) {
                                *o += w * v;
                            }
                        }
                    }
                    out
                })
                .collect();
            let mut attn = vec![0f32; rows * d];
            for (&(s, h), out) in tasks.iter().zip(&outs) {
                let (r0, n, _, _) = starts[s];
                for i in 0..n {
                    attn[(r0 + i) * d + h * hd..(r0 + i) * d + (h + 1) * hd]
                        .copy_from_slice(&out[i * hd..(i + 1) * hd]);
                }
            }
            drop(starts);
            for (tokens, cache) in batch.iter_mut() {
                // Only the last layer's append moves the length (all layers see the same
                // positions); every layer's vector grew by the same rows above.
                if li + 1 == self.layers.len() {
                    cache.len += tokens.len();
                }
            }
            let o = layer.wo.matmul(&attn, rows);
            for (x, o) in x.iter_mut().zip(&o) {
                *x += o;
            }
            let h = self.rms_norm(&x, &layer.ffn_norm);
            let gu = layer.gate_up.matmul(&h, rows);
            let mut act = vec![0f32; rows * cfg.ffn];
            let silu = |(a, gu): (&mut [f32], &[f32])| {
                let (g, u) = gu.split_at(cfg.ffn);
                for ((a, g), u) in a.iter_mut().zip(g).zip(u) {
                    *a = g / (1.0 + exp(-g)) * u;
                }
            };
            if rows >= PARALLEL_ROWS {
                act.par_chunks_exact_mut(cfg.ffn)
                    .zip(gu.par_chunks_exact(2 * cfg.ffn))
                    .for_each(silu);
            } else {
                act.chunks_exact_mut(cfg.ffn)
                    .zip(gu.chunks_exact(2 * cfg.ffn))
                    .for_each(silu);
            }
            let down = layer.down.matmul(&act, rows);
            for (x, o) in x.iter_mut().zip(&down) {
                *x += o;
            }
        }
        // Last row of each sequence through the final norm and the head.
        let mut last = Vec::with_capacity(batch.len() * d);
        let mut end = 0;
        for (tokens, _) in batch.iter() {
            end += tokens.len();
            last.extend_from_slice(&x[(end - 1) * d..end * d]);
        }
        let last = self.rms_norm(&last, &self.out_norm);
        let head = self.head.as_ref().unwrap_or(&self.embed);
        Ok(head.matmul(&last, batch.len()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_agrees_with_libm() {
        let mut worst = 0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.35e-4; // ±87: below, both are under 2⁻¹²⁵
            let (got, want) = (super::exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 4e-7, "worst relative error {worst:e}");
        assert!(super::exp(-1e4) > 0.0 && super::exp(-1e4) < 1e-37);
        assert!(super::exp(1e4).is_finite());
    }
}
