//! all-MiniLM-L6-v2 (a BERT encoder) on burn, loaded from safetensors: sentence embeddings by
//! mean pooling over the attention mask, L2-normalised.

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// Fields of the HF `config.json` the encoder needs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BertConfig {
    /// Hidden size.
    pub hidden_size: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// MLP hidden size.
    pub intermediate_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Longest input in tokens.
    pub max_position_embeddings: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
}

struct Linear<B: Backend> {
    /// `[in, out]`
    w: Tensor<B, 2>,
    b: Tensor<B, 2>,
}

struct Norm<B: Backend> {
    w: Tensor<B, 3>,
    b: Tensor<B, 3>,
}

struct Layer<B: Backend> {
    qkv: Linear<B>,
    attn_out: Linear<B>,
    attn_norm: Norm<B>,
    inter: Linear<B>,
    out: Linear<B>,
    out_norm: Norm<B>,
}

/// A BERT encoder resident on one burn device.
pub struct Bert<B: Backend> {
    /// Hyper-parameters.
    pub config: BertConfig,
    word: Tensor<B, 2>,
    pos: Tensor<B, 2>,
    token_type: Tensor<B, 2>,
    emb_norm: Norm<B>,
    layers: Vec<Layer<B>>,
    device: B::Device,
}

struct Weights<'a> {
    st: SafeTensors<'a>,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| Error::MissingTensor(name.to_string()))?;
        if t.dtype() != Dtype::F32 {
            return Err(Error::Safetensors(format!(
                "{name} is {:?}, expected F32",
                t.dtype()
            )));
        }
        if t.shape() != shape {
            return Err(Error::ShapeMismatch {
                name: name.into(),
                expected: shape.to_vec(),
                actual: t.shape().to_vec(),
            });
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

impl<B: Backend> Bert<B> {
    /// Loads the encoder from the bytes of `model.safetensors` and its parsed `config.json`.
    pub fn load(config: BertConfig, safetensors: &[u8], device: &B::Device) -> Result<Self> {
        let st =
            SafeTensors::deserialize(safetensors).map_err(|e| Error::Safetensors(e.to_string()))?;
        let w = Weights { st };
        let c = &config;
        let d = c.hidden_size;
        if c.num_attention_heads == 0 || !d.is_multiple_of(c.num_attention_heads) {
            return Err(Error::Metadata {
                key: "num_attention_heads".into(),
                reason: "must divide hidden_size".into(),
            });
        }
        let t2 = |v: Vec<f32>, r: usize, cols: usize| {
            Tensor::<B, 2>::from_data(TensorData::new(v, [r, cols]), device)
        };
        // PyTorch stores Linear weights `[out, in]`; keep them `[in, out]` for `x @ w`.
        let weight_t = |name: &str, inp: usize, out: usize| -> Result<Tensor<B, 2>> {
            let v = w.get(name, &[out, inp])?;
            Ok(t2(v, out, inp).transpose())
        };
        let linear = |p: &str, inp: usize, out: usize| -> Result<Linear<B>> {
            Ok(Linear {
                w: weight_t(&format!("{p}.weight"), inp, out)?,
                b: t2(w.get(&format!("{p}.bias"), &[out])?, 1, out),
            })
        };
        let norm = |p: &str| -> Result<Norm<B>> {
            let v = |s: &str| -> Result<Tensor<B, 3>> {
                Ok(Tensor::from_data(
                    TensorData::new(w.get(&format!("{p}.{s}"), &[d])?, [1, 1, d]),
                    device,
                ))
            };
            Ok(Norm {
                w: v("weight")?,
                b: v("bias")?,
            })
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = linear(&format!("{p}.attention.self.query"), d, d)?;
            let k = linear(&format!("{p}.attention.self.key"), d, d)?;
            let v = linear(&format!("{p}.attention.self.value"), d, d)?;
            layers.push(Layer {
                qkv: Linear {
                    w: Tensor::cat(vec![q.w, k.w, v.w], 1),
                    b: Tensor::cat(vec![q.b, k.b, v.b], 1),
                },
                attn_out: linear(&format!("{p}.attention.output.dense"), d, d)?,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                inter: linear(&format!("{p}.intermediate.dense"), d, c.intermediate_size)?,
                out: linear(&format!("{p}.output.dense"), c.intermediate_size, d)?,
                out_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            word: t2(
                w.get("embeddings.word_embeddings.weight", &[c.vocab_size, d])?,
                c.vocab_size,
                d,
            ),
            pos: t2(
                w.get(
                    "embeddings.position_embeddings.weight",
                    &[c.max_position_embeddings, d],
                )?,
                c.max_position_embeddings,
                d,
            ),
            token_type: t2(
                w.get("embeddings.token_type_embeddings.weight", &[2, d])?,
                2,
                d,
            )
            .narrow(0, 0, 1),
            emb_norm: norm("embeddings.LayerNorm")?,
            layers,
            config,
            device: device.clone(),
        })
    }

    fn linear(x: Tensor<B, 3>, l: &Linear<B>) -> Tensor<B, 3> {
        let [b, n, d] = x.dims();
        let out = l.w.dims()[1];
        (x.reshape([b * n, d]).matmul(l.w.clone()) + l.b.clone()).reshape([b, n, out])
    }

    fn layer_norm(&self, x: Tensor<B, 3>, n: &Norm<B>) -> Tensor<B, 3> {
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().powf_scalar(2.0).mean_dim(2);
        centered * var.add_scalar(self.config.layer_norm_eps).sqrt().recip() * n.w.clone()
            + n.b.clone()
    }

    /// Embeds a batch of token-id sequences (each non-empty, at most `max_position_embeddings`
    /// long; the caller checks). Returns one L2-normalised vector per sequence, `[batch, hidden]`.
    pub fn embed(&self, batch: &[Vec<u32>]) -> Tensor<B, 2> {
        let c = &self.config;
        let (bsz, d, heads) = (batch.len(), c.hidden_size, c.num_attention_heads);
        let hd = d / heads;
        let len = batch.iter().map(Vec::len).max().unwrap_or(1);
        let mut ids = vec![0i64; bsz * len];
        let mut mask = vec![0f32; bsz * len];
        for (i, seq) in batch.iter().enumerate() {
            for (j, &t) in seq.iter().enumerate() {
                ids[i * len + j] = t as i64;
                mask[i * len + j] = 1.0;
            }
        }
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [bsz * len]), &self.device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [bsz, len]), &self.device);
        let x = self.word.clone().select(0, ids).reshape([bsz, len, d])
            + self.pos.clone().narrow(0, 0, len).reshape([1, len, d])
            + self.token_type.clone().reshape([1, 1, d]);
        let mut x = self.layer_norm(x, &self.emb_norm);
        // Padding keys get -inf before the softmax; every row keeps at least [CLS].
        let key_bias = mask
            .clone()
            .sub_scalar(1.0)
            .mul_scalar(1e30)
            .reshape([bsz, 1, 1, len]);
        let split = |t: Tensor<B, 3>| t.reshape([bsz, len, heads, hd]).swap_dims(1, 2);
        for l in &self.layers {
            let qkv = Self::linear(x.clone(), &l.qkv);
            let q = split(qkv.clone().narrow(2, 0, d));
            let k = split(qkv.clone().narrow(2, d, d));
            let v = split(qkv.narrow(2, 2 * d, d));
            let scores = q
                .matmul(k.swap_dims(2, 3))
                .mul_scalar(1.0 / (hd as f64).sqrt())
                + key_bias.clone();
            let a = softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([bsz, len, d]);
            x = self.layer_norm(Self::linear(a, &l.attn_out) + x, &l.attn_norm);
            let h = gelu(Self::linear(x.clone(), &l.inter));
            x = self.layer_norm(Self::linear(h, &l.out) + x, &l.out_norm);
        }
        let m = mask.reshape([bsz, len, 1]);
        let summed = (x * m.clone()).sum_dim(1).reshape([bsz, d]);
        let counts = m.sum_dim(1).reshape([bsz, 1]);
        let mean = summed / counts;
        let norm = mean.clone().powf_scalar(2.0).sum_dim(1).sqrt();
        mean / norm
    }
}
