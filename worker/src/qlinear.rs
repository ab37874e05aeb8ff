//! Weight matrices of the burn model ([`crate::llama`]) kept in their GGUF quantisation on the
//! device, and the CubeCL kernels that multiply by them (`wgpu`, and `cuda` where it is built).
//!
//! A [`QuantMatrix`] holds a `[rows, cols]` matrix (`rows` outputs of `cols` inputs, the GGUF's
//! row-major layout) as two device buffers: the blocks' packed values (4 or 8 bits each, as in
//! the file) and their f16 scales (and Q4_1's minimums), repacked apart so that every read is
//! aligned. Together they are exactly the GGUF's bytes (one padding word at most). The kernels
//! dequantise inside the product and accumulate in f32; no f32 copy of a matrix is made, not even
//! for a prefill. A decode step (one input row) gives each output column 32 threads that read its
//! consecutive blocks side by side and sum in shared memory; a batch of rows gives each thread
//! one output column and a tile of 4 rows, so each weight is decoded once per tile.
//!
//! Backends without these kernels (burn-flex, a fused backend) get a [`Weight::Dense`] f32
//! matrix instead, as before: [`quantized_on`] says which one a backend gets.

use std::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Shape, Tensor, TensorData, TensorPrimitive};
use burn_cubecl::CubeRuntime;
use burn_cubecl::cubecl;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use crate::error::{Error, Result};
use crate::gguf::{GgmlType, Gguf};

/// Input rows each thread multiplies against the weights it decodes once (a prefill; a decode
/// step, one row, runs [`qmatvec_kernel`]).
const ROW_TILE: usize = 4;
/// Threads per cube along the output columns.
const CUBE_X: u32 = 64;

/// The block formats the kernels decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantKind {
    /// 32 values: f16 scale, 4-bit values offset by 8.
    Q4_0,
    /// 32 values: f16 scale and minimum, 4-bit values.
    Q4_1,
    /// 32 values: f16 scale, 8-bit signed values.
    Q8_0,
}

impl QuantKind {
    /// The kind for a ggml type, `None` for types these kernels do not decode.
    pub fn of(ty: GgmlType) -> Option<Self> {
        match ty {
            GgmlType::Q4_0 => Some(Self::Q4_0),
            GgmlType::Q4_1 => Some(Self::Q4_1),
            GgmlType::Q8_0 => Some(Self::Q8_0),
            _ => None,
        }
    }

    fn ggml(self) -> GgmlType {
        match self {
            Self::Q4_0 => GgmlType::Q4_0,
            Self::Q4_1 => GgmlType::Q4_1,
            Self::Q8_0 => GgmlType::Q8_0,
        }
    }

    /// Bytes of block header (scale, minimum) before the packed values.
    fn header(self) -> usize {
        match self {
            Self::Q4_0 | Self::Q8_0 => 2,
            Self::Q4_1 => 4,
        }
    }

    /// 32-bit words of packed values per block.
    fn words(self) -> usize {
        match self {
            Self::Q4_0 | Self::Q4_1 => 4,
            Self::Q8_0 => 8,
        }
    }

    /// The kernels' compile-time tag.
    fn tag(self) -> u32 {
        match self {
            Self::Q4_0 => KIND_Q4_0,
            Self::Q4_1 => KIND_Q4_1,
            Self::Q8_0 => KIND_Q8_0,
        }
    }
}

const KIND_Q4_0: u32 = 0;
const KIND_Q4_1: u32 = 1;
const KIND_Q8_0: u32 = 2;

/// Splits ggml blocks into packed values and scales, both as little-endian 32-bit words: Q4_1's
/// scale and minimum share one word per block (as in the file); the single f16 scales of Q4_0
/// and Q8_0 go two per word.
fn repack(kind: QuantKind, raw: &[u8]) -> (Vec<u32>, Vec<u32>) {
    let bb = kind.ggml().block_bytes();
    let blocks = raw.len() / bb;
    let mut qs = Vec::with_capacity(blocks * kind.words());
    let mut halves = Vec::with_capacity(blocks * 2);
    for b in raw.chunks_exact(bb) {
        for h in b[..kind.header()].chunks_exact(2) {
            halves.push(u16::from_le_bytes([h[0], h[1]]));
        }
        qs.extend(
            b[kind.header()..]
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])),
        );
    }
    if halves.len() % 2 == 1 {
        halves.push(0);
    }
    let scales = halves
        .chunks_exact(2)
        .map(|p| p[0] as u32 | (p[1] as u32) << 16)
        .collect();
    (qs, scales)
}

/// f16 bits (low 16 of `h`) to f32. Infinities and NaNs do not occur in weight scales and come
/// out as large finite values.
#[cube]
fn half_to_f32(h: u32) -> f32 {
    let sign = (h >> 15) & 1;
    let exp = (h >> 10) & 31;
    let mant = h & 1023;
    // Rebias the exponent from 15 to 127; subnormals (and zero) are mant · 2⁻²⁴.
    let normal = f32::reinterpret((sign << 31) | ((exp + 112) << 23) | (mant << 13));
    let tiny = f32::cast_from(mant) * 5.960_464_5e-8;
    let tiny = select(sign == 1, -tiny, tiny);
    select(exp == 0, tiny, normal)
}

/// Scale of block `blk`: a weight is `scale · q + offset` for its stored value `q`.
#[cube]
fn block_scale(scales: &Array<u32>, blk: usize, #[comptime] kind: u32) -> f32 {
    let word = if comptime![kind == KIND_Q4_1] {
        scales[blk]
    } else {
        scales[blk / 2] >> (u32::cast_from(blk % 2) * 16)
    };
    half_to_f32(word & 0xffff)
}

/// Offset of block `blk` with scale `d`: Q4_1's minimum, Q4_0's `-8 · d`; Q8_0's values are
/// signed and have none.
#[cube]
fn block_offset(scales: &Array<u32>, blk: usize, d: f32, #[comptime] kind: u32) -> f32 {
    let mut off = 0.0f32;
    if comptime![kind == KIND_Q4_1] {
        off = half_to_f32(scales[blk] >> 16);
    } else if comptime![kind == KIND_Q4_0] {
        off = d * -8.0;
    }
    off
}

/// `out[r, c] = Σₖ x[r, k] · W[c, k]` for `x` `[rows, k]`, `W` `[n, k]` in blocks, `out`
/// `[rows, n]`. Thread (c, t) computes column `c` for input rows `t·tile .. t·tile + tile`.
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
fn qmatmul_kernel(
    x: &Array<f32>,
    qs: &Array<u32>,
    scales: &Array<u32>,
    out: &mut Array<f32>,
    rows: usize,
    n: usize,
    k: usize,
    #[comptime] kind: u32,
    #[comptime] tile: usize,
) {
    let col = ABSOLUTE_POS_X as usize;
    let r0 = ABSOLUTE_POS_Y as usize * tile;
    if col >= n || r0 >= rows {
        terminate!();
    }
    let nb = k / 32;
    let words = comptime![if kind == KIND_Q8_0 { 8usize } else { 4usize }];
    // Rows past the end of `x` read its last row and are not written.
    let mut xrow = Array::<usize>::new(tile);
    let mut acc = Array::<f32>::new(tile);
    #[unroll]
    for t in 0..tile {
        xrow[t] = select(r0 + t < rows, r0 + t, rows - 1) * k;
        acc[t] = 0.0;
    }
    let mut sq = Array::<f32>::new(tile);
    let mut sx = Array::<f32>::new(tile);
    for b in 0..nb {
        let blk = col * nb + b;
        let d = block_scale(scales, blk, kind);
        let off = block_offset(scales, blk, d, kind);
        #[unroll]
        for t in 0..tile {
            sq[t] = 0.0;
            sx[t] = 0.0;
        }
        #[unroll]
        for i in 0..words {
            let w = qs[blk * words + i];
            #[unroll]
            for j in 0..4usize {
                if comptime![kind == KIND_Q8_0] {
                    let byte = (w >> (8 * u32::cast_from(j))) & 255;
                    let q = f32::cast_from(byte) - select(byte >= 128, 256.0, 0.0);
                    #[unroll]
                    for t in 0..tile {
                        sq[t] += q * x[xrow[t] + b * 32 + 4 * i + j];
                    }
                } else {
                    let lo = f32::cast_from((w >> (8 * u32::cast_from(j))) & 15);
                    let hi = f32::cast_from((w >> (8 * u32::cast_from(j) + 4)) & 15);
                    #[unroll]
                    for t in 0..tile {
                        let base = xrow[t] + b * 32 + 4 * i + j;
                        let xl = x[base];
                        let xh = x[base + 16];
                        sq[t] += lo * xl + hi * xh;
                        sx[t] += xl + xh;
                    }
                }
            }
        }
        #[unroll]
        for t in 0..tile {
            acc[t] += d * sq[t] + off * sx[t];
        }
    }
    #[unroll]
    for t in 0..tile {
        if r0 + t < rows {
            out[(r0 + t) * n + col] = acc[t];
        }
    }
}

/// Lanes that share one output column in [`qmatvec_kernel`].
const LANES: u32 = 32;
/// Output columns per cube in [`qmatvec_kernel`].
const COLS_PER_CUBE: u32 = 4;

/// `Σ` over block `blk` of `W` times the 32 values of `x` from `xbase`, dequantised on the fly.
#[cube]
fn block_dot(
    x: &Array<f32>,
    xbase: usize,
    qs: &Array<u32>,
    scales: &Array<u32>,
    blk: usize,
    #[comptime] kind: u32,
) -> f32 {
    let words = comptime![if kind == KIND_Q8_0 { 8usize } else { 4usize }];
    let d = block_scale(scales, blk, kind);
    let off = block_offset(scales, blk, d, kind);
    let mut sq = 0.0f32;
    let mut sx = 0.0f32;
    #[unroll]
    for i in 0..words {
        let w = qs[blk * words + i];
        #[unroll]
        for j in 0..4usize {
            if comptime![kind == KIND_Q8_0] {
                let byte = (w >> (8 * u32::cast_from(j))) & 255;
                let q = f32::cast_from(byte) - select(byte >= 128, 256.0, 0.0);
                sq += q * x[xbase + 4 * i + j];
            } else {
                let lo = f32::cast_from((w >> (8 * u32::cast_from(j))) & 15);
                let hi = f32::cast_from((w >> (8 * u32::cast_from(j) + 4)) & 15);
                let xl = x[xbase + 4 * i + j];
                let xh = x[xbase + 16 + 4 * i + j];
                sq += lo * xl + hi * xh;
                sx += xl + xh;
            }
        }
    }
    d * sq + off * sx
}

/// `out[c] = Σₖ x[k] · W[c, k]` for one input row (a decode step): the `LANES` threads of a
/// column read its consecutive blocks side by side (coalesced on a GPU) and sum their partial
/// products in shared memory.
#[cube(launch)]
fn qmatvec_kernel(
    x: &Array<f32>,
    qs: &Array<u32>,
    scales: &Array<u32>,
    out: &mut Array<f32>,
    n: usize,
    k: usize,
    #[comptime] kind: u32,
) {
    let lanes = comptime![LANES as usize];
    let lane = UNIT_POS_X as usize;
    let col = (CUBE_POS_X * CUBE_DIM_Y + UNIT_POS_Y) as usize;
    let nb = k / 32;
    let mut acc = 0.0f32;
    if col < n {
        let steps = nb.div_ceil(lanes);
        for s in 0..steps {
            let b = s * lanes + lane;
            if b < nb {
                acc += block_dot(x, b * 32, qs, scales, col * nb + b, kind);
            }
        }
    }
    let mut partial = SharedMemory::<f32>::new(comptime![(LANES * COLS_PER_CUBE) as usize]);
    let slot = UNIT_POS_Y as usize * lanes + lane;
    partial[slot] = acc;
    sync_cube();
    #[unroll]
    for step in 0..5u32 {
        let stride = comptime![(LANES >> (step + 1)) as usize];
        if lane < stride {
            partial[slot] += partial[slot + stride];
        }
        sync_cube();
    }
    if lane == 0 && col < n {
        out[col] = partial[slot];
    }
}

/// `out[i, c] = W[ids[i], c]`: rows of a block matrix dequantised (an embedding lookup).
#[cube(launch)]
fn qrows_kernel(
    ids: &Array<u32>,
    qs: &Array<u32>,
    scales: &Array<u32>,
    out: &mut Array<f32>,
    count: usize,
    k: usize,
    #[comptime] kind: u32,
) {
    let c = ABSOLUTE_POS_X as usize;
    let i = ABSOLUTE_POS_Y as usize;
    if c >= k || i >= count {
        terminate!();
    }
    let words = comptime![if kind == KIND_Q8_0 { 8usize } else { 4usize }];
    let blk = usize::cast_from(ids[i]) * (k / 32) + c / 32;
    let e = c % 32;
    let d = block_scale(scales, blk, kind);
    let off = block_offset(scales, blk, d, kind);
    let q = if comptime![kind == KIND_Q8_0] {
        let byte = (qs[blk * words + e / 4] >> (8 * u32::cast_from(e % 4))) & 255;
        f32::cast_from(byte) - select(byte >= 128, 256.0, 0.0)
    } else {
        // Byte j holds value j in its low nibble and value j + 16 in its high one.
        let j = e % 16;
        let shift = 8 * u32::cast_from(j % 4) + select(e >= 16, 4u32, 0u32);
        f32::cast_from((qs[blk * words + j / 4] >> shift) & 15)
    };
    out[i * k + c] = d * q + off;
}

/// A `[rows, cols]` weight matrix in ggml blocks on a device.
pub struct QuantMatrix<B: Backend> {
    kind: QuantKind,
    rows: usize,
    cols: usize,
    qs: Tensor<B, 1, Int>,
    scales: Tensor<B, 1, Int>,
}

impl<B: Backend> std::fmt::Debug for QuantMatrix<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QuantMatrix({:?}, [{}, {}])",
            self.kind, self.rows, self.cols
        )
    }
}

impl<B: Backend> Clone for QuantMatrix<B> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            rows: self.rows,
            cols: self.cols,
            qs: self.qs.clone(),
            scales: self.scales.clone(),
        }
    }
}

impl<B: Backend> QuantMatrix<B> {
    /// Uploads raw ggml blocks of a `[rows, cols]` matrix.
    pub fn new(
        kind: QuantKind,
        rows: usize,
        cols: usize,
        raw: &[u8],
        device: &B::Device,
    ) -> Result<Self> {
        let ty = kind.ggml();
        if cols == 0 || !cols.is_multiple_of(ty.block_elems()) {
            return Err(Error::Malformed(format!(
                "a row of {cols} values is not a whole number of {ty:?} blocks"
            )));
        }
        let need = rows * cols / ty.block_elems() * ty.block_bytes();
        if raw.len() != need {
            return Err(Error::Malformed(format!(
                "{ty:?} matrix [{rows}, {cols}] needs {need} bytes, got {}",
                raw.len()
            )));
        }
        let (qs, scales) = repack(kind, raw);
        // Int tensors carry the words: the kernels read their buffers as u32, bit for bit.
        let words = |v: Vec<u32>| {
            let n = v.len();
            let v: Vec<i32> = v.into_iter().map(|w| w as i32).collect();
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [n]), device)
        };
        Ok(Self {
            kind,
            rows,
            cols,
            qs: words(qs),
            scales: words(scales),
        })
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Block format.
    pub fn kind(&self) -> QuantKind {
        self.kind
    }

    /// Device bytes held.
    pub fn bytes(&self) -> usize {
        (self.qs.shape().num_elements() + self.scales.shape().num_elements()) * 4
    }

    /// `x · Wᵀ`: `x` `[n, cols]` → `[n, rows]`.
    pub fn matmul(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, k] = x.dims();
        assert_eq!(k, self.cols, "input width");
        let out = launcher::<B>().matmul(Box::new(x.into_primitive().tensor()), self, n);
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// Rows `ids` of the matrix, dequantised: `[ids.len(), cols]`.
    pub fn rows_of(&self, ids: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let count = ids.dims()[0];
        let out = launcher::<B>().rows(Box::new(ids.into_primitive()), self, count);
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}

/// A linear layer's weight: quantised where the backend has the kernels, f32 elsewhere.
pub enum Weight<B: Backend> {
    /// f32, `[in, out]` (`x · W`).
    Dense(Tensor<B, 2>),
    /// ggml blocks, `[out, in]` (`x · Wᵀ`), split where the parts' formats differ.
    Quant(Vec<QuantMatrix<B>>),
}

impl<B: Backend> Clone for Weight<B> {
    fn clone(&self) -> Self {
        match self {
            Self::Dense(t) => Self::Dense(t.clone()),
            Self::Quant(p) => Self::Quant(p.clone()),
        }
    }
}

impl<B: Backend> Weight<B> {
    /// The GGUF matrices `names` (each `[out_i, inp]`) side by side on the output axis, as one
    /// weight `[inp, Σ out_i]`: kept in blocks when the backend has kernels for all of them,
    /// stacked into as few matrices as their formats allow; else dequantised to f32.
    pub fn load(
        g: &Gguf<'_>,
        names: &[(&str, usize)],
        inp: usize,
        device: &B::Device,
    ) -> Result<Self> {
        for &(name, out) in names {
            let info = g.tensor(name)?;
            if info.shape() != [out, inp] {
                return Err(Error::ShapeMismatch {
                    name: name.into(),
                    expected: vec![out, inp],
                    actual: info.shape(),
                });
            }
        }
        let kinds: Option<Vec<QuantKind>> = names
            .iter()
            .map(|(n, _)| g.tensor(n).ok().and_then(|i| QuantKind::of(i.ggml_type)))
            .collect();
        match kinds {
            Some(kinds) if quantized_on::<B>() => {
                // Rows stacked in the file's layout are the blocks one after the other, so a
                // run of one kind is uploaded as one matrix.
                let mut parts = Vec::new();
                let mut run: (Vec<u8>, usize) = (Vec::new(), 0);
                for (i, (&(name, out), &kind)) in names.iter().zip(&kinds).enumerate() {
                    run.0.extend_from_slice(g.raw(name)?.1);
                    run.1 += out;
                    if kinds.get(i + 1) != Some(&kind) {
                        parts.push(QuantMatrix::new(kind, run.1, inp, &run.0, device)?);
                        run = (Vec::new(), 0);
                    }
                }
                Ok(Self::Quant(parts))
            }
            _ => {
                let mut rows = Vec::new();
                for &(name, _) in names {
                    rows.extend(g.dequantize(name)?);
                }
                let out = rows.len() / inp;
                let w = transpose(&rows, out, inp);
                Ok(Self::Dense(Tensor::from_data(
                    TensorData::new(w, [inp, out]),
                    device,
                )))
            }
        }
    }

    /// `x · W`: `[n, in]` → `[n, out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Dense(w) => x.matmul(w.clone()),
            Self::Quant(parts) if parts.len() == 1 => parts[0].matmul(x),
            Self::Quant(parts) => {
                Tensor::cat(parts.iter().map(|p| p.matmul(x.clone())).collect(), 1)
            }
        }
    }

    /// Device bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Dense(w) => w.shape().num_elements() * 4,
            Self::Quant(parts) => parts.iter().map(QuantMatrix::bytes).sum(),
        }
    }
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// Whether backend `B` runs the quantised kernels (burn's CubeCL backends on wgpu or cuda, not
/// fused); others get f32 weights.
pub fn quantized_on<B: Backend>() -> bool {
    runtimes::<B>().is_some()
}

/// The CubeCL runtime behind `B`, when it is one this module launches kernels on.
fn runtimes<B: Backend>() -> Option<&'static dyn Launch<B>> {
    fn on<B: Backend, R: CubeRuntime>() -> bool {
        TypeId::of::<B::FloatTensorPrimitive>() == TypeId::of::<CubeTensor<R>>()
            && TypeId::of::<B::IntTensorPrimitive>() == TypeId::of::<CubeTensor<R>>()
    }
    if on::<B, burn::backend::wgpu::WgpuRuntime>() {
        return Some(&On::<burn::backend::wgpu::WgpuRuntime>(
            std::marker::PhantomData,
        ));
    }
    #[cfg(feature = "cuda")]
    if on::<B, cubecl::cuda::CudaRuntime>() {
        return Some(&On::<cubecl::cuda::CudaRuntime>(std::marker::PhantomData));
    }
    None
}

/// Moves a value between two types known (by their `TypeId`) to be the same.
fn same<T: 'static, U: 'static>(t: T) -> U {
    *(Box::new(t) as Box<dyn Any>)
        .downcast::<U>()
        .expect("types checked equal")
}

fn launcher<B: Backend>() -> &'static dyn Launch<B> {
    runtimes::<B>().expect("quantised weights only exist on backends with kernels")
}

/// The kernels' launches for one runtime, behind `B`'s primitive types.
trait Launch<B: Backend>: Sync {
    fn matmul(&self, x: Box<dyn Any>, w: &QuantMatrix<B>, n: usize) -> B::FloatTensorPrimitive;
    fn rows(&self, ids: Box<dyn Any>, w: &QuantMatrix<B>, count: usize) -> B::FloatTensorPrimitive;
}

struct On<R>(std::marker::PhantomData<R>);

impl<B: Backend, R: CubeRuntime> Launch<B> for On<R> {
    fn matmul(&self, x: Box<dyn Any>, w: &QuantMatrix<B>, n: usize) -> B::FloatTensorPrimitive {
        let x: CubeTensor<R> = *x.downcast().expect("checked runtime");
        assert_eq!(x.dtype, DType::F32, "the kernels take f32 activations");
        let x = into_contiguous(x);
        let (qs, sc, out) = operands::<B, R>(w, [n, w.rows]);
        let client = x.client.clone();
        if n == 1 {
            qmatvec_kernel::launch::<R>(
                &client,
                CubeCount::Static((w.rows as u32).div_ceil(COLS_PER_CUBE), 1, 1),
                CubeDim::new_2d(LANES, COLS_PER_CUBE),
                x.clone().into_array_arg(),
                qs.clone().into_array_arg(),
                sc.clone().into_array_arg(),
                out.clone().into_array_arg(),
                w.rows,
                w.cols,
                w.kind.tag(),
            );
            return same(out);
        }
        let tile = ROW_TILE;
        let count = CubeCount::Static((w.rows as u32).div_ceil(CUBE_X), n.div_ceil(tile) as u32, 1);
        qmatmul_kernel::launch::<R>(
            &client,
            count,
            CubeDim::new_2d(CUBE_X, 1),
            x.clone().into_array_arg(),
            qs.clone().into_array_arg(),
            sc.clone().into_array_arg(),
            out.clone().into_array_arg(),
            n,
            w.rows,
            w.cols,
            w.kind.tag(),
            tile,
        );
        same(out)
    }

    fn rows(&self, ids: Box<dyn Any>, w: &QuantMatrix<B>, count: usize) -> B::FloatTensorPrimitive {
        let ids: CubeTensor<R> = *ids.downcast().expect("checked runtime");
        assert_eq!(ids.dtype.size(), 4, "token ids are 32-bit on this backend");
        let ids = into_contiguous(ids);
        let (qs, sc, out) = operands::<B, R>(w, [count, w.cols]);
        let client = qs.client.clone();
        qrows_kernel::launch::<R>(
            &client,
            CubeCount::Static((w.cols as u32).div_ceil(CUBE_X), count as u32, 1),
            CubeDim::new_2d(CUBE_X, 1),
            ids.clone().into_array_arg(),
            qs.clone().into_array_arg(),
            sc.clone().into_array_arg(),
            out.clone().into_array_arg(),
            count,
            w.cols,
            w.kind.tag(),
        );
        same(out)
    }
}

/// The matrix's blocks and scales on runtime `R`, and an f32 output of `shape` beside them.
fn operands<B: Backend, R: CubeRuntime>(
    w: &QuantMatrix<B>,
    shape: [usize; 2],
) -> (CubeTensor<R>, CubeTensor<R>, CubeTensor<R>) {
    let qs: CubeTensor<R> = same(w.qs.clone().into_primitive());
    let sc: CubeTensor<R> = same(w.scales.clone().into_primitive());
    let out = empty_device_contiguous_dtype(
        qs.client.clone(),
        qs.device.clone(),
        Shape::new(shape),
        DType::F32,
    );
    (qs, sc, out)
}

/// The token embedding: looked up by rows, and the output head when the model ties them.
pub enum Embedding<B: Backend> {
    /// f32, `[vocab, d_model]`.
    Dense(Tensor<B, 2>),
    /// ggml blocks, `[vocab, d_model]`.
    Quant(QuantMatrix<B>),
}

impl<B: Backend> Embedding<B> {
    /// The GGUF matrix `name`, `[vocab, d]`: in blocks where the backend has kernels for them.
    pub fn load(
        g: &Gguf<'_>,
        name: &str,
        vocab: usize,
        d: usize,
        device: &B::Device,
    ) -> Result<Self> {
        let info = g.tensor(name)?;
        if info.shape() != [vocab, d] {
            return Err(Error::ShapeMismatch {
                name: name.into(),
                expected: vec![vocab, d],
                actual: info.shape(),
            });
        }
        match QuantKind::of(info.ggml_type) {
            Some(kind) if quantized_on::<B>() => {
                let (_, raw) = g.raw(name)?;
                Ok(Self::Quant(QuantMatrix::new(kind, vocab, d, raw, device)?))
            }
            _ => Ok(Self::Dense(Tensor::from_data(
                TensorData::new(g.dequantize(name)?, [vocab, d]),
                device,
            ))),
        }
    }

    /// Rows `ids`, `[ids.len(), d]`.
    pub fn lookup(&self, ids: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        match self {
            Self::Dense(e) => e.clone().select(0, ids),
            Self::Quant(m) => m.rows_of(ids),
        }
    }

    /// The tied output head, `x · Eᵀ`: the same device buffers when quantised, an f32
    /// transposed copy (`[d, vocab]`) otherwise.
    pub fn tied_head(&self) -> Weight<B> {
        match self {
            Self::Dense(e) => {
                let [vocab, d] = e.dims();
                let v = e.to_data().to_vec::<f32>().expect("f32 embedding");
                Weight::Dense(Tensor::from_data(
                    TensorData::new(transpose(&v, vocab, d), [d, vocab]),
                    &e.device(),
                ))
            }
            Self::Quant(m) => Weight::Quant(vec![m.clone()]),
        }
    }

    /// Whether [`tied_head`](Self::tied_head) shares this embedding's device buffers.
    pub fn head_is_shared(&self) -> bool {
        matches!(self, Self::Quant(_))
    }

    /// Device bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Dense(e) => e.shape().num_elements() * 4,
            Self::Quant(m) => m.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::wgpu::WgpuDevice;
    use burn::backend::{Flex, Wgpu};
    use half::f16;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::qmatmul::QMatrix;

    const KINDS: [QuantKind; 3] = [QuantKind::Q4_0, QuantKind::Q4_1, QuantKind::Q8_0];

    /// Random blocks with small finite f16 scales (a negative minimum for Q4_1) and random
    /// packed values.
    fn blocks(kind: QuantKind, rows: usize, cols: usize, rng: &mut StdRng) -> Vec<u8> {
        let ty = kind.ggml();
        let mut raw = Vec::with_capacity(rows * cols / 32 * ty.block_bytes());
        for _ in 0..rows * cols / 32 {
            raw.extend(f16::from_f32(rng.gen_range(0.001..0.05)).to_le_bytes());
            if kind == QuantKind::Q4_1 {
                raw.extend(f16::from_f32(rng.gen_range(-0.3..0.0)).to_le_bytes());
            }
            for _ in kind.header()..ty.block_bytes() {
                raw.push(rng.r#gen());
            }
        }
        raw
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 2e-3 * scale + 1e-5,
                "{what}: [{i}] {g} vs {w} (largest {scale})"
            );
        }
    }

    fn device() -> WgpuDevice {
        WgpuDevice::default()
    }

    /// The kernels' products equal the CPU's [`QMatrix`] on the same blocks, for each format,
    /// for one row (decode), a batch that is not a whole number of row tiles, and a prefill.
    #[test]
    fn wgpu_quantised_matmul_matches_the_cpu_kernels() {
        let mut rng = StdRng::seed_from_u64(15);
        let dev = device();
        for kind in KINDS {
            for (n_out, k) in [(70, 64), (130, 576)] {
                let raw = blocks(kind, n_out, k, &mut rng);
                let cpu = QMatrix::new(kind.ggml(), n_out, k, raw.clone()).unwrap();
                let gpu = QuantMatrix::<Wgpu>::new(kind, n_out, k, &raw, &dev).unwrap();
                assert_eq!(gpu.bytes(), raw.len().next_multiple_of(4), "{kind:?} bytes");
                for rows in [1, 5, 17] {
                    let x: Vec<f32> = (0..rows * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let want = cpu.matmul(&x, rows);
                    let xt = Tensor::<Wgpu, 2>::from_data(TensorData::new(x, [rows, k]), &dev);
                    let got = gpu.matmul(xt).into_data();
                    assert_eq!(got.shape, Shape::new([rows, n_out]));
                    close(
                        &got.to_vec::<f32>().unwrap(),
                        &want,
                        &format!("{kind:?} [{rows}x{k}]·[{n_out}x{k}]ᵀ"),
                    );
                }
            }
        }
    }

    /// An embedding lookup dequantises exactly the rows the CPU does.
    #[test]
    fn wgpu_quantised_rows_match_the_cpu_dequantisation() {
        let mut rng = StdRng::seed_from_u64(16);
        let dev = device();
        for kind in KINDS {
            let (vocab, d) = (50, 96);
            let raw = blocks(kind, vocab, d, &mut rng);
            let cpu = QMatrix::new(kind.ggml(), vocab, d, raw.clone()).unwrap();
            let gpu = QuantMatrix::<Wgpu>::new(kind, vocab, d, &raw, &dev).unwrap();
            let ids = [3i64, 0, 49, 3, 17];
            let mut want = vec![0f32; ids.len() * d];
            for (i, &id) in ids.iter().enumerate() {
                cpu.dequantize_row(id as usize, &mut want[i * d..(i + 1) * d]);
            }
            let t = Tensor::<Wgpu, 1, Int>::from_data(TensorData::new(ids.to_vec(), [5]), &dev);
            let got = gpu.rows_of(t).into_data().to_vec::<f32>().unwrap();
            close(&got, &want, &format!("{kind:?} rows"));
        }
    }

    /// A weight of several GGUF-like parts equals the concatenation of their products, and the
    /// f32 fallback (flex) gives the same numbers as the kernels.
    #[test]
    fn stacked_parts_and_the_dense_fallback_agree() {
        assert!(quantized_on::<Wgpu>());
        assert!(!quantized_on::<Flex>());
        let mut rng = StdRng::seed_from_u64(17);
        let (k, outs) = (64, [40usize, 8, 8]);
        let raws: Vec<Vec<u8>> = outs
            .iter()
            .map(|&o| blocks(QuantKind::Q4_1, o, k, &mut rng))
            .collect();
        let all: Vec<u8> = raws.concat();
        let cpu = QMatrix::new(GgmlType::Q4_1, 56, k, all).unwrap();
        let x: Vec<f32> = (0..3 * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let want = cpu.matmul(&x, 3);

        let dev = device();
        let parts: Vec<QuantMatrix<Wgpu>> = raws
            .iter()
            .zip(outs)
            .map(|(r, o)| QuantMatrix::new(QuantKind::Q4_1, o, k, r, &dev).unwrap())
            .collect();
        let w = Weight::Quant(parts);
        let xt = Tensor::<Wgpu, 2>::from_data(TensorData::new(x.clone(), [3, k]), &dev);
        let got = w.forward(xt).into_data().to_vec::<f32>().unwrap();
        close(&got, &want, "parts");

        let mut dense = vec![0f32; 56 * k];
        for r in 0..56 {
            cpu.dequantize_row(r, &mut dense[r * k..(r + 1) * k]);
        }
        let w = Weight::<Flex>::Dense(Tensor::from_data(
            TensorData::new(transpose(&dense, 56, k), [k, 56]),
            &Default::default(),
        ));
        let xt = Tensor::<Flex, 2>::from_data(TensorData::new(x, [3, k]), &Default::default());
        close(
            &w.forward(xt).into_data().to_vec::<f32>().unwrap(),
            &want,
            "dense",
        );
    }

    #[test]
    fn half_decoding_covers_subnormals_and_signs() {
        // Through the kernel: a Q8_0 row whose scales are a subnormal, a negative and a large
        // f16, each times q = 1.
        let dev = device();
        let scales = [
            f16::from_bits(0x0001),
            f16::from_f32(-0.375),
            f16::from_f32(1000.0),
        ];
        let mut raw = Vec::new();
        for s in scales {
            raw.extend(s.to_le_bytes());
            raw.extend([1u8; 32]);
        }
        let m = QuantMatrix::<Wgpu>::new(QuantKind::Q8_0, 3, 32, &raw, &dev).unwrap();
        let ids = Tensor::<Wgpu, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 2], [3]), &dev);
        let got = m.rows_of(ids).into_data().to_vec::<f32>().unwrap();
        for (r, s) in scales.iter().enumerate() {
            assert_eq!(got[r * 32], s.to_f32(), "scale {s}");
        }
    }

    #[test]
    fn malformed_matrices_are_refused() {
        let dev = device();
        let err = QuantMatrix::<Wgpu>::new(QuantKind::Q4_0, 2, 40, &[0; 40], &dev).unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
        let err = QuantMatrix::<Wgpu>::new(QuantKind::Q4_0, 2, 32, &[0; 18], &dev).unwrap_err();
        assert!(err.to_string().contains("needs 36 bytes"), "{err}");
    }
}
