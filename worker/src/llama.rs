//! The Llama architecture (SmolLM2) and its Qwen2 variant on burn, loaded from GGUF (matrices
//! kept quantised on wgpu/cuda, f32 elsewhere), with a per-sequence KV cache and a forward pass
//! over several sequences at once (continuous batching). The `wgpu` backend runs this; on the CPU
//! ([`crate::llama_cpu`]) the weights stay quantised.

use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::gguf::Gguf;
use crate::qlinear::{Embedding, Weight};

/// The GGUF architectures this engine runs (`general.architecture`): one decoder design, with
/// the differences below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `llama` (SmolLM2): no biases; Q and K stored for interleaved RoPE.
    Llama,
    /// `qwen2` (Qwen2, Qwen2.5): biases on Q, K and V; Q and K stored as in the original
    /// checkpoint, so RoPE rotates the two halves of each head (llama.cpp's "NEOX" mode).
    Qwen2,
}

impl Arch {
    /// The `general.architecture` value, also the prefix of the hyper-parameter keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
        }
    }

    /// How RoPE pairs the values of a head.
    pub fn rope(self) -> RopeStyle {
        match self {
            Self::Llama => RopeStyle::Interleaved,
            Self::Qwen2 => RopeStyle::HalfSplit,
        }
    }

    /// Whether Q, K and V have biases (`blk.N.attn_{q,k,v}.bias`).
    pub fn qkv_bias(self) -> bool {
        matches!(self, Self::Qwen2)
    }
}

/// Which values of a head RoPE rotates together at frequency `j`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// `(2j, 2j + 1)`: the layout llama.cpp's converter writes Q and K in for `llama`.
    Interleaved,
    /// `(j, j + head_dim / 2)`: the original checkpoints' layout, kept for `qwen2`.
    HalfSplit,
}

/// Hyper-parameters read from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Architecture (decides the metadata prefix, the biases and the RoPE layout).
    pub arch: Arch,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Hidden size.
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub n_kv_heads: usize,
    /// Hidden size of the gated MLP.
    pub ffn: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Context length the model was trained for.
    pub context: usize,
    /// RMSNorm epsilon.
    pub eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f64,
}

impl LlamaConfig {
    /// Reads the `<arch>.*` keys (`llama.*` or `qwen2.*`).
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self> {
        let arch = match g.get_str("general.architecture")? {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => {
                return Err(Error::Metadata {
                    key: "general.architecture".into(),
                    reason: format!("{other:?} is not supported (llama, qwen2)"),
                });
            }
        };
        let a = arch.name();
        let u = |k: &str| g.get_u64(&format!("{a}.{k}")).map(|v| v as usize);
        let vocab = match g.get_u64(&format!("{a}.vocab_size")) {
            Ok(v) => v as usize,
            Err(_) => g.get_str_array("tokenizer.ggml.tokens")?.len(),
        };
        let cfg = Self {
            arch,
            n_layers: u("block_count")?,
            d_model: u("embedding_length")?,
            n_heads: u("attention.head_count")?,
            n_kv_heads: u("attention.head_count_kv")?,
            ffn: u("feed_forward_length")?,
            vocab,
            context: u("context_length")?,
            eps: g.get_f64(&format!("{a}.attention.layer_norm_rms_epsilon"))?,
            rope_theta: g
                .get_f64(&format!("{a}.rope.freq_base"))
                .unwrap_or(10_000.0),
        };
        let bad = |key: &str, reason: &str| Error::Metadata {
            key: format!("{a}.{key}"),
            reason: reason.into(),
        };
        if cfg.n_heads == 0 || cfg.n_kv_heads == 0 || !cfg.n_heads.is_multiple_of(cfg.n_kv_heads) {
            return Err(bad("attention.head_count_kv", "must divide head_count"));
        }
        if !cfg.d_model.is_multiple_of(cfg.n_heads)
            || !(cfg.d_model / cfg.n_heads).is_multiple_of(2)
        {
            return Err(bad(
                "embedding_length",
                "must be an even head size times head_count",
            ));
        }
        if cfg.n_layers == 0 || cfg.vocab == 0 || cfg.context == 0 {
            return Err(bad(
                "block_count",
                "layers, vocabulary and context must be non-zero",
            ));
        }
        Ok(cfg)
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }
}

struct Layer<B: Backend> {
    attn_norm: Tensor<B, 2>,
    /// Q, K and V projections side by side, `[d_model, d_model + 2 * kv_dim]`.
    wqkv: Weight<B>,
    /// Their biases side by side, `[1, d_model + 2 * kv_dim]` (Qwen2).
    bqkv: Option<Tensor<B, 2>>,
    wo: Weight<B>,
    ffn_norm: Tensor<B, 2>,
    /// Gate and up projections side by side, `[d_model, 2 * ffn]`.
    w_gate_up: Weight<B>,
    w_down: Weight<B>,
}

/// Keys and values of one sequence, per layer, each `[kv_heads, capacity, head_dim]`: allocated
/// once when the sequence starts (prompt plus new tokens) and written in place at each step.
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 3>, Tensor<B, 3>)>>,
    len: usize,
    capacity: usize,
}

impl<B: Backend> KvCache<B> {
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

/// A Llama model resident on one burn device.
pub struct Llama<B: Backend> {
    /// Hyper-parameters.
    pub config: LlamaConfig,
    embed: Embedding<B>,
    /// The output head (the embedding's own blocks when tied and quantised).
    head: Weight<B>,
    head_shared: bool,
    out_norm: Tensor<B, 2>,
    layers: Vec<Layer<B>>,
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
    device: B::Device,
}

impl<B: Backend> Llama<B> {
    /// Loads the GGUF onto `device`: the matrices stay in their Q4_0/Q4_1/Q8_0 blocks where the
    /// backend has kernels for them ([`crate::qlinear`]), else are dequantised to f32.
    pub fn load(g: &Gguf<'_>, device: &B::Device) -> Result<Self> {
        let cfg = LlamaConfig::from_gguf(g)?;
        let d = cfg.d_model;
        let kvd = cfg.n_kv_heads * cfg.head_dim();
        let linear = |names: &[(&str, usize)], inp: usize| Weight::load(g, names, inp, device);
        let vector = |name: &str, len: usize| -> Result<Tensor<B, 2>> {
            let info = g.tensor(name)?;
            if info.shape() != [len] {
                return Err(Error::ShapeMismatch {
                    name: name.into(),
                    expected: vec![len],
                    actual: info.shape(),
                });
            }
            Ok(Tensor::from_data(
                TensorData::new(g.dequantize(name)?, [1, len]),
                device,
            ))
        };
        let t2 = |v: Vec<f32>, r: usize, c: usize| {
            Tensor::<B, 2>::from_data(TensorData::new(v, [r, c]), device)
        };

        let embed = Embedding::load(g, "token_embd.weight", cfg.vocab, d, device)?;
        let (head, head_shared) = match g.tensors.get("output.weight") {
            Some(_) => (linear(&[("output.weight", cfg.vocab)], d)?, false),
            None => (embed.tied_head(), embed.head_is_shared()),
        };

        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            let (q, k, v) = (p("attn_q"), p("attn_k"), p("attn_v"));
            let (gate, up) = (p("ffn_gate"), p("ffn_up"));
            let bqkv = if cfg.arch.qkv_bias() {
                let b = |s: &str, len| vector(&format!("blk.{i}.{s}.bias"), len);
                Some(Tensor::cat(
                    vec![b("attn_q", d)?, b("attn_k", kvd)?, b("attn_v", kvd)?],
                    1,
                ))
            } else {
                None
            };
            layers.push(Layer {
                attn_norm: vector(&p("attn_norm"), d)?,
                wqkv: linear(&[(&q, d), (&k, kvd), (&v, kvd)], d)?,
                bqkv,
                wo: linear(&[(&p("attn_output"), d)], d)?,
                ffn_norm: vector(&p("ffn_norm"), d)?,
                w_gate_up: linear(&[(&gate, cfg.ffn), (&up, cfg.ffn)], d)?,
                w_down: linear(&[(&p("ffn_down"), d)], cfg.ffn)?,
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
            cos: t2(cos, cfg.context, half),
            sin: t2(sin, cfg.context, half),
            config: cfg,
            embed,
            head,
            head_shared,
            out_norm,
            layers,
            device: device.clone(),
        })
    }

    /// An empty cache for a sequence of at most `capacity` positions (prompt plus new tokens).
    pub fn new_cache(&self, capacity: usize) -> KvCache<B> {
        let capacity = capacity.clamp(1, self.config.context);
        let shape = [self.config.n_kv_heads, capacity, self.config.head_dim()];
        KvCache {
            layers: (0..self.config.n_layers)
                .map(|_| {
                    Some((
                        Tensor::zeros(shape, &self.device),
                        Tensor::zeros(shape, &self.device),
                    ))
                })
                .collect(),
            len: 0,
            capacity,
        }
    }

    /// Bytes of weights (quantised blocks or f32) and tables held on the device.
    pub fn resident_bytes(&self) -> usize {
        let n = |t: &Tensor<B, 2>| t.shape().num_elements() * std::mem::size_of::<f32>();
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                n(&l.attn_norm)
                    + l.wqkv.bytes()
                    + l.bqkv.as_ref().map_or(0, n)
                    + l.wo.bytes()
                    + n(&l.ffn_norm)
                    + l.w_gate_up.bytes()
                    + l.w_down.bytes()
            })
            .sum();
        let head = if self.head_shared {
            0
        } else {
            self.head.bytes()
        };
        layers + self.embed.bytes() + head + n(&self.out_norm) + n(&self.cos) + n(&self.sin)
    }

    fn rms_norm(&self, x: Tensor<B, 2>, w: &Tensor<B, 2>) -> Tensor<B, 2> {
        let ms = x.clone().powf_scalar(2.0).mean_dim(1);
        x * ms.add_scalar(self.config.eps).sqrt().recip() * w.clone()
    }

    /// Rotates the value pairs of every head that [`RopeStyle`] names for the architecture.
    fn rope(&self, x: Tensor<B, 3>, start: usize) -> Tensor<B, 3> {
        match self.config.arch.rope() {
            RopeStyle::Interleaved => self.rope_interleaved(x, start),
            RopeStyle::HalfSplit => self.rope_half_split(x, start),
        }
    }

    /// Rotates `(j, j + head_dim / 2)` of every head.
    fn rope_half_split(&self, x: Tensor<B, 3>, start: usize) -> Tensor<B, 3> {
        let [_, n, hd] = x.dims();
        let half = hd / 2;
        let x0 = x.clone().narrow(2, 0, half);
        let x1 = x.narrow(2, half, half);
        let c = self.cos.clone().narrow(0, start, n).reshape([1, n, half]);
        let s = self.sin.clone().narrow(0, start, n).reshape([1, n, half]);
        let r0 = x0.clone() * c.clone() - x1.clone() * s.clone();
        let r1 = x0 * s + x1 * c;
        Tensor::cat(vec![r0, r1], 2)
    }

    /// Rotates adjacent pairs `(2j, 2j+1)` of every head.
    fn rope_interleaved(&self, x: Tensor<B, 3>, start: usize) -> Tensor<B, 3> {
        let [h, n, hd] = x.dims();
        let x = x.reshape([h, n, hd / 2, 2]);
        let x0 = x.clone().narrow(3, 0, 1);
        let x1 = x.narrow(3, 1, 1);
        let c = self
            .cos
            .clone()
            .narrow(0, start, n)
            .reshape([1, n, hd / 2, 1]);
        let s = self
            .sin
            .clone()
            .narrow(0, start, n)
            .reshape([1, n, hd / 2, 1]);
        let r0 = x0.clone() * c.clone() - x1.clone() * s.clone();
        let r1 = x0 * s + x1 * c;
        Tensor::cat(vec![r0, r1], 3).reshape([h, n, hd])
    }

    /// Runs new tokens for several sequences in one pass and returns the logits of each
    /// sequence's last new token, `[sequences, vocab]`.
    ///
    /// Each entry pairs the tokens to append with that sequence's cache; a prompt (many tokens)
    /// and decode steps (one token) can share a pass. The matrix multiplications run once over
    /// all rows; attention runs per sequence against its own cache. Fails (touching no cache)
    /// when a sequence would outgrow its cache.
    pub fn forward(&self, batch: &mut [(&[u32], &mut KvCache<B>)]) -> Result<Tensor<B, 2>> {
        for (tokens, cache) in batch.iter() {
            if cache.len + tokens.len() > cache.capacity {
                return Err(Error::Backend(format!(
                    "a sequence of {} positions outgrows its KV cache of {}",
                    cache.len + tokens.len(),
                    cache.capacity
                )));
            }
        }
        let cfg = &self.config;
        let (d, hd) = (cfg.d_model, cfg.head_dim());
        let kvd = cfg.n_kv_heads * hd;
        let group = cfg.n_heads / cfg.n_kv_heads;
        let ids: Vec<i64> = batch
            .iter()
            .flat_map(|(t, _)| t.iter().map(|&i| i as i64))
            .collect();
        let rows = ids.len();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [rows]), &self.device);
        let mut x = self.embed.lookup(ids);

        for (li, layer) in self.layers.iter().enumerate() {
            let h = self.rms_norm(x.clone(), &layer.attn_norm);
            let mut qkv = layer.wqkv.forward(h);
            if let Some(b) = &layer.bqkv {
                qkv = qkv + b.clone();
            }
            let mut outs = Vec::with_capacity(batch.len());
            let mut r0 = 0;
            for (tokens, cache) in batch.iter_mut() {
                let n = tokens.len();
                let start = cache.len;
                let part = qkv.clone().narrow(0, r0, n);
                r0 += n;
                let heads = |t: Tensor<B, 2>, nh: usize| t.reshape([n, nh, hd]).swap_dims(0, 1);
                let q = self.rope(heads(part.clone().narrow(1, 0, d), cfg.n_heads), start);
                let k = self.rope(heads(part.clone().narrow(1, d, kvd), cfg.n_kv_heads), start);
                let v = heads(part.narrow(1, d + kvd, kvd), cfg.n_kv_heads);
                let total = start + n;
                // Taken out so the cache tensor is the only handle: the backend writes in place.
                let (ck, cv) = cache.layers[li].take().expect("every layer has a cache");
                let at = [0..cfg.n_kv_heads, start..total, 0..hd];
                let ck = ck.slice_assign(at.clone(), k);
                let cv = cv.slice_assign(at, v);
                let (k, v) = (
                    ck.clone().narrow(1, 0, total),
                    cv.clone().narrow(1, 0, total),
                );
                cache.layers[li] = Some((ck, cv));
                // Query heads of one KV group are stacked on the row axis, so each group's
                // attention is a single matmul against its shared keys, with no K/V copies.
                let q = q.reshape([cfg.n_kv_heads, group * n, hd]);
                let mut scores = q
                    .matmul(k.swap_dims(1, 2))
                    .mul_scalar(1.0 / (hd as f64).sqrt());
                if n > 1 {
                    let mut mask = vec![0f32; group * n * total];
                    for g in 0..group {
                        for i in 0..n {
                            let row = (g * n + i) * total;
                            for j in (start + i + 1)..total {
                                mask[row + j] = f32::NEG_INFINITY;
                            }
                        }
                    }
                    let mask = Tensor::<B, 3>::from_data(
                        TensorData::new(mask, [1, group * n, total]),
                        &self.device,
                    );
                    scores = scores + mask;
                }
                let attn = softmax(scores, 2).matmul(v); // [kv, group * n, hd]
                outs.push(
                    attn.reshape([cfg.n_heads, n, hd])
                        .swap_dims(0, 1)
                        .reshape([n, d]),
                );
            }
            let attn = if outs.len() == 1 {
                outs.pop().expect("one output")
            } else {
                Tensor::cat(outs, 0)
            };
            x = x + layer.wo.forward(attn);
            let h = self.rms_norm(x.clone(), &layer.ffn_norm);
            let gu = layer.w_gate_up.forward(h);
            let gate = gu.clone().narrow(1, 0, cfg.ffn);
            let up = gu.narrow(1, cfg.ffn, cfg.ffn);
            x = x + layer.w_down.forward(silu(gate) * up);
        }
        for (tokens, cache) in batch.iter_mut() {
            cache.len += tokens.len();
        }
        // Last row of each sequence.
        let mut last = Vec::with_capacity(batch.len());
        let mut end = 0i64;
        for (tokens, _) in batch.iter() {
            end += tokens.len() as i64;
            last.push(end - 1);
        }
        let n_seq = last.len();
        let last = Tensor::<B, 1, Int>::from_data(TensorData::new(last, [n_seq]), &self.device);
        let x = self.rms_norm(x.select(0, last), &self.out_norm);
        Ok(self.head.forward(x))
    }
}
