//! Weight matrices kept in their GGUF quantisation, and the CPU kernels that multiply by them.
//!
//! A [`QMatrix`] holds the file's blocks (its memory is the tensor's bytes in the GGUF), in the
//! file's row order or, where the CPU has AVX-512 VNNI and the format is Q4_0/Q4_1/Q8_0, re-laid
//! in [`crate::qtile`]'s tiles of 16 rows. [`QMatrix::path`] picks the kernel:
//! - tiles: `qtile`'s integer kernel for every product, decode and prefill alike (register-
//!   blocked over up to 8 tokens, tiles split over the rayon pool burn-flex uses); from
//!   [`AMX_MIN_ROWS`] inputs on, where the CPU has AMX, [`crate::qamx`]'s kernel instead;
//! - rows, fewer than [`GEMM_MIN_ROWS`] inputs: [`crate::qdot`]'s AVX2 integer dot products,
//!   or, for other formats and CPUs, one row dequantised at a time and f32 dot products that
//!   LLVM vectorises (`pulp` compiles them a second time for the CPU's widest vector unit);
//! - rows, a prefill: a transient f32 copy of the matrix and burn-flex's GEMM.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::gguf::{GgmlType, Gguf, dequantize_block};
use crate::qamx::{Amx, AmxRows};
use crate::qdot::{self, Kernel, QuantRow};
use crate::qtile::{self, TILE, Vnni};

/// On the row layout, from this many input rows on (a prefill), the matrix is dequantised to a transient f32 copy
/// and multiplied by burn-flex's GEMM (register-blocked, cache-tiled): dequantising once is then
/// cheap next to the products, and a real GEMM beats row-by-row dot products several times.
/// The copy lives for one product; the model at rest stays quantised.
pub const GEMM_MIN_ROWS: usize = 16;

/// On tiles, from this many input rows on, [`crate::qamx`]'s AMX kernel (where the CPU has it)
/// instead of the VNNI one: below it, unpacking each tile for AMX costs more than it saves.
pub const AMX_MIN_ROWS: usize = 48;

/// Fewest output rows per parallel task (below this, scheduling costs more than it balances).
const MIN_ROWS_PER_TASK: usize = 16;
/// Tasks per pool thread: a few, so a thread slowed by other work is caught up by the rest, few
/// enough that a decode step (≈120 matrix products) does not pay thousands of task handoffs.
const TASKS_PER_THREAD: usize = 4;

/// How a [`QMatrix`] lays out its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As in the GGUF: each row `cols / block` blocks long, row after row.
    Rows,
    /// [`crate::qtile`]'s tiles of 16 rows (same bytes, plus zero rows up to a whole tile), for
    /// its AVX-512 VNNI kernel.
    Tiles,
}

impl Layout {
    /// Tiles where this CPU runs their kernel and it covers the format, rows otherwise.
    pub fn preferred(ty: GgmlType) -> Self {
        if qtile::covers(ty) && Vnni::detect().is_some() {
            Self::Tiles
        } else {
            Self::Rows
        }
    }
}

/// Which kernel a product runs on (chosen by [`QMatrix::path`]; tests pick each explicitly).
#[derive(Debug, Clone, Copy)]
pub enum Path {
    /// AVX-512 VNNI over tiles (any number of inputs).
    Tiles(Vnni),
    /// AMX over tiles (many inputs).
    Amx(Amx),
    /// AVX2 integer dot products, row by row (decode on rows).
    Int(Kernel),
    /// Dequantise a row at a time, f32 dot products (any CPU, any format).
    F32,
    /// Transient f32 copy of the matrix and burn-flex's GEMM (prefill on rows).
    Gemm,
}

/// A `[rows, cols]` matrix stored as ggml blocks, in the file's row order or in tiles.
#[derive(Debug, Clone)]
pub struct QMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    layout: Layout,
    data: Vec<u8>,
}

impl QMatrix {
    /// Wraps raw ggml data of `rows` rows of `cols` values, re-laid as [`Layout::preferred`].
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: Vec<u8>) -> Result<Self> {
        Self::with_layout(ty, rows, cols, data, Layout::preferred(ty))
    }

    /// [`new`](Self::new) with the layout chosen by the caller (`Tiles` only for the formats
    /// [`qtile::covers`]).
    pub fn with_layout(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: Vec<u8>,
        layout: Layout,
    ) -> Result<Self> {
        Self::build(ty, rows, cols, std::borrow::Cow::Owned(data), layout)
    }

    /// Checks the sizes, then keeps `data` (rows) or tiles it (with no copy in between: a
    /// transient copy per tensor at load leaves the allocator holding memory it never returns).
    fn build(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: std::borrow::Cow<'_, [u8]>,
        layout: Layout,
    ) -> Result<Self> {
        if cols == 0 || !cols.is_multiple_of(ty.block_elems()) {
            return Err(Error::Malformed(format!(
                "a row of {cols} values is not a whole number of {ty:?} blocks"
            )));
        }
        let row_bytes = cols / ty.block_elems() * ty.block_bytes();
        if data.len() != rows * row_bytes {
            return Err(Error::Malformed(format!(
                "{ty:?} matrix [{rows}, {cols}] needs {} bytes, got {}",
                rows * row_bytes,
                data.len()
            )));
        }
        let data = match layout {
            Layout::Rows => data.into_owned(),
            Layout::Tiles if qtile::covers(ty) => qtile::tile(ty, rows, cols, &data),
            Layout::Tiles => {
                return Err(Error::Malformed(format!("{ty:?} has no tiled layout")));
            }
        };
        Ok(Self {
            ty,
            rows,
            cols,
            row_bytes,
            layout,
            data,
        })
    }

    /// Copies a GGUF tensor of row-major shape `[rows, cols]` (ggml dims `[cols, rows]`) as is.
    pub fn from_gguf(g: &Gguf<'_>, name: &str, rows: usize, cols: usize) -> Result<Self> {
        let (info, raw) = g.raw(name)?;
        if info.shape() != [rows, cols] {
            return Err(Error::ShapeMismatch {
                name: name.into(),
                expected: vec![rows, cols],
                actual: info.shape(),
            });
        }
        let ty = info.ggml_type;
        Self::build(ty, rows, cols, raw.into(), Layout::preferred(ty))
    }

    /// Stacks matrices with the same column count and type on the row axis (Q, K and V become
    /// one matrix, so one pass over the input computes all three). `None` when types differ.
    /// Tiled parts stack only when each fills whole tiles.
    pub fn stack(parts: &[&QMatrix]) -> Option<Self> {
        let first = parts.first()?;
        if parts.iter().any(|p| {
            p.ty != first.ty
                || p.cols != first.cols
                || p.layout != first.layout
                || (p.layout == Layout::Tiles && !p.rows.is_multiple_of(TILE))
        }) {
            return None;
        }
        let data = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        Some(Self {
            ty: first.ty,
            rows: parts.iter().map(|p| p.rows).sum(),
            cols: first.cols,
            row_bytes: first.row_bytes,
            layout: first.layout,
            data,
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

    /// Storage type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }

    /// Block layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Bytes held (the quantised data).
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Dequantises row `r` into `out` (`cols` values).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        match self.layout {
            Layout::Rows => dequantize_row(self.ty, self.row(r), out),
            Layout::Tiles => qtile::dequantize_row(self.ty, &self.data, self.cols, r, out),
        }
    }

    /// Row `r`'s blocks (row layout only).
    fn row(&self, r: usize) -> &[u8] {
        debug_assert_eq!(self.layout, Layout::Rows);
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// `x · Wᵀ`: `x` holds `n` rows of `cols` values; returns `n` rows of `rows` values.
    pub fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0f32; n * self.rows];
        self.matmul_into(x, n, &mut y);
        y
    }

    /// The fastest kernel this CPU has for this matrix and `n` inputs.
    pub fn path(&self, n: usize) -> Path {
        if self.layout == Layout::Tiles {
            if n >= AMX_MIN_ROWS
                && let Some(a) = Amx::detect()
            {
                return Path::Amx(a);
            }
            if let Some(v) = Vnni::detect() {
                return Path::Tiles(v);
            }
        }
        if n >= GEMM_MIN_ROWS {
            return Path::Gemm;
        }
        match Kernel::detect() {
            Some(k) if self.layout == Layout::Rows && qdot::covers(self.ty) => Path::Int(k),
            _ => Path::F32,
        }
    }

    /// [`matmul`](Self::matmul) into a caller's buffer of `n * rows` values.
    pub fn matmul_into(&self, x: &[f32], n: usize, y: &mut [f32]) {
        self.matmul_on(self.path(n), x, n, y);
    }

    /// [`matmul_into`](Self::matmul_into) on a given kernel (`Tiles` needs the tiled layout,
    /// `Int` the row layout and a format [`qdot::covers`]).
    pub fn matmul_on(&self, path: Path, x: &[f32], n: usize, y: &mut [f32]) {
        assert_eq!(x.len(), n * self.cols, "input is n × cols");
        assert_eq!(y.len(), n * self.rows, "output is n × rows");
        if n == 0 {
            return;
        }
        let kernel = match path {
            Path::Tiles(v) => return self.matmul_tiles(v, x, n, y),
            Path::Amx(a) => return self.matmul_amx(a, x, y),
            Path::Gemm => return self.matmul_gemm(x, n, y),
            Path::Int(k) => {
                assert!(self.layout == Layout::Rows && qdot::covers(self.ty));
                Some(k)
            }
            Path::F32 => None,
        };
        // Tasks own disjoint output rows, so they write `[rows, n]` (the transpose) and it is
        // turned around once at the end; for a single input row the two layouts coincide.
        let per_task = self
            .rows
            .div_ceil(TASKS_PER_THREAD * rayon::current_num_threads())
            .max(MIN_ROWS_PER_TASK);
        // The integer path quantises each input row once, before the tasks share it.
        let xq: Vec<QuantRow> = match kernel {
            Some(_) => x.chunks_exact(self.cols).map(QuantRow::new).collect(),
            None => Vec::new(),
        };
        let run = |yt: &mut [f32]| {
            yt.par_chunks_mut(per_task * n)
                .enumerate()
                .for_each(|(task, out)| {
                    let r0 = task * per_task;
                    match kernel {
                        Some(k) => k.vectorize(IntRowsTask {
                            m: self,
                            k,
                            r0,
                            xq: &xq,
                            out,
                        }),
                        None => pulp::Arch::new().dispatch(RowsTask {
                            m: self,
                            r0,
                            x,
                            n,
                            out,
                        }),
                    }
                });
        };
        if n == 1 {
            run(y);
            return;
        }
        let mut yt = vec![0f32; n * self.rows];
        run(&mut yt);
        for (r, col) in yt.chunks_exact(n).enumerate() {
            for (t, v) in col.iter().enumerate() {
                y[t * self.rows + r] = *v;
            }
        }
    }
}

impl QMatrix {
    /// Tiles each parallel task of a tiled product owns.
    fn tiles_per_task(&self) -> usize {
        assert_eq!(self.layout, Layout::Tiles);
        self.rows
            .div_ceil(TILE)
            .div_ceil(TASKS_PER_THREAD * rayon::current_num_threads())
            .max(1)
    }

    /// The AMX path: `qamx` splits the tiles over the pool and writes `y` in place.
    fn matmul_amx(&self, a: Amx, x: &[f32], y: &mut [f32]) {
        let per_task = self.tiles_per_task();
        let xa = AmxRows::new(a, x, self.cols);
        a.matmul(self.ty, &self.data, self.rows, &xa, y, per_task);
    }

    /// The VNNI path: tiles split over the pool, each multiplied by every input at once.
    fn matmul_tiles(&self, v: Vnni, x: &[f32], n: usize, y: &mut [f32]) {
        let per_task = self.tiles_per_task();
        let tiles = self.rows.div_ceil(TILE);
        let xq: Vec<QuantRow> = if n >= 4 {
            x.par_chunks_exact(self.cols).map(QuantRow::new).collect()
        } else {
            x.chunks_exact(self.cols).map(QuantRow::new).collect()
        };
        let tile_bytes = self.cols / qdot::QK * qtile::record_bytes(self.ty);
        // `[tile][input][TILE]`: each task owns whole tiles.
        let mut yt = vec![0f32; tiles * n * TILE];
        yt.par_chunks_mut(per_task * n * TILE)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * per_task;
                let data = &self.data[first * tile_bytes..][..out.len() / (n * TILE) * tile_bytes];
                for (tile, o) in data
                    .chunks_exact(tile_bytes)
                    .zip(out.chunks_exact_mut(n * TILE))
                {
                    v.tile_product(self.ty, tile, &xq, o);
                }
            });
        // Back to `[input][rows]`, one input row per task from 4 inputs on (done serially, it
        // left the other cores idle).
        let scatter = |(t, y): (usize, &mut [f32])| {
            for (g, out) in y.chunks_mut(TILE).enumerate() {
                out.copy_from_slice(&yt[(g * n + t) * TILE..][..out.len()]);
            }
        };
        if n >= 4 {
            y.par_chunks_exact_mut(self.rows)
                .enumerate()
                .for_each(scatter);
        } else {
            y.chunks_exact_mut(self.rows).enumerate().for_each(scatter);
        }
    }

    /// Output rows `r0..` of every quantised input into `out` (`[rows of this task, n]`).
    #[inline(always)]
    fn int_rows(&self, k: Kernel, r0: usize, xq: &[QuantRow], out: &mut [f32]) {
        for (i, o) in out.chunks_exact_mut(xq.len()).enumerate() {
            let row = self.row(r0 + i);
            // Four inputs at a time: every weight block unpacked feeds four products.
            let mut t = 0;
            while t + 4 <= xq.len() {
                let x = [&xq[t], &xq[t + 1], &xq[t + 2], &xq[t + 3]];
                o[t..t + 4].copy_from_slice(&k.dot_n(self.ty, row, x));
                t += 4;
            }
            for (slot, x) in o.iter_mut().zip(xq).skip(t) {
                *slot = k.dot(self.ty, row, x);
            }
        }
    }

    /// The prefill path: a transient f32 copy of the matrix, then burn-flex's matmul.
    fn matmul_gemm(&self, x: &[f32], n: usize, y: &mut [f32]) {
        let mut w = vec![0f32; self.rows * self.cols];
        w.par_chunks_mut(self.cols * MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(task, out)| {
                for (i, row) in out.chunks_exact_mut(self.cols).enumerate() {
                    self.dequantize_row(task * MIN_ROWS_PER_TASK + i, row);
                }
            });
        let device = Default::default();
        let w = Tensor::<Flex, 2>::from_data(TensorData::new(w, [self.rows, self.cols]), &device);
        let x = Tensor::<Flex, 2>::from_data(TensorData::new(x.to_vec(), [n, self.cols]), &device);
        let out = x
            .matmul(w.transpose())
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("an f32 tensor reads back as f32");
        y.copy_from_slice(&out);
    }
}

/// Output rows `r0..` of all `n` inputs into `out` (`[rows of this task, n]`), compiled for the
/// widest vector unit the CPU has.
struct RowsTask<'a> {
    m: &'a QMatrix,
    r0: usize,
    x: &'a [f32],
    n: usize,
    out: &'a mut [f32],
}

impl pulp::WithSimd for RowsTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self { m, r0, x, n, out } = self;
        let cols = m.cols;
        let mut w = vec![0f32; cols];
        for (i, o) in out.chunks_exact_mut(n).enumerate() {
            m.dequantize_row(r0 + i, &mut w);
            let xt = |t: usize| &x[t * cols..(t + 1) * cols];
            // Four inputs at a time: every weight vector loaded feeds four products.
            let mut t = 0;
            while t + 4 <= n {
                o[t..t + 4].copy_from_slice(&dot4(
                    simd,
                    &w,
                    [xt(t), xt(t + 1), xt(t + 2), xt(t + 3)],
                ));
                t += 4;
            }
            for (t, slot) in o.iter_mut().enumerate().skip(t) {
                *slot = dot_simd(simd, &w, xt(t));
            }
        }
    }
}

/// [`RowsTask`] on the integer kernels, against quantised inputs.
struct IntRowsTask<'a> {
    m: &'a QMatrix,
    k: Kernel,
    r0: usize,
    xq: &'a [QuantRow],
    out: &'a mut [f32],
}

impl pulp::WithSimd for IntRowsTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.m.int_rows(self.k, self.r0, self.xq, self.out);
    }
}

/// Dequantises a whole row of ggml blocks.
#[inline(always)]
pub fn dequantize_row(ty: GgmlType, raw: &[u8], out: &mut [f32]) {
    let (elems, bytes) = (ty.block_elems(), ty.block_bytes());
    for (b, o) in raw.chunks_exact(bytes).zip(out.chunks_exact_mut(elems)) {
        dequantize_block(ty, b, o);
    }
}

/// `Σ a·b` (plain loop with independent partial sums, for callers outside a SIMD context).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let (ac, ar) = a.as_chunks::<L>();
    let (bc, br) = b.as_chunks::<L>();
    let mut acc = [0f32; L];
    for (x, y) in ac.iter().zip(bc) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `Σ a·b` on vector registers, two independent accumulators to hide the FMA latency.
#[inline(always)]
fn dot_simd<S: pulp::Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (av, at) = S::as_simd_f32s(a);
    let (bv, bt) = S::as_simd_f32s(b);
    let (mut s0, mut s1) = (simd.splat_f32s(0.0), simd.splat_f32s(0.0));
    let mut pairs = av.chunks_exact(2).zip(bv.chunks_exact(2));
    for (x, y) in &mut pairs {
        s0 = simd.mul_add_e_f32s(x[0], y[0], s0);
        s1 = simd.mul_add_e_f32s(x[1], y[1], s1);
    }
    if av.len() % 2 == 1 {
        s0 = simd.mul_add_e_f32s(av[av.len() - 1], bv[av.len() - 1], s0);
    }
    let tail: f32 = at.iter().zip(bt).map(|(x, y)| x * y).sum();
    simd.reduce_sum_f32s(simd.add_f32s(s0, s1)) + tail
}

/// `Σ w·xₖ` for four vectors at once.
#[inline(always)]
fn dot4<S: pulp::Simd>(simd: S, w: &[f32], x: [&[f32]; 4]) -> [f32; 4] {
    let (wv, wt) = S::as_simd_f32s(w);
    let (x0, t0) = S::as_simd_f32s(x[0]);
    let (x1, t1) = S::as_simd_f32s(x[1]);
    let (x2, t2) = S::as_simd_f32s(x[2]);
    let (x3, t3) = S::as_simd_f32s(x[3]);
    let z = simd.splat_f32s(0.0);
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    for ((w, (v0, v1)), (v2, v3)) in wv.iter().zip(x0.iter().zip(x1)).zip(x2.iter().zip(x3)) {
        a0 = simd.mul_add_e_f32s(*w, *v0, a0);
        a1 = simd.mul_add_e_f32s(*w, *v1, a1);
        a2 = simd.mul_add_e_f32s(*w, *v2, a2);
        a3 = simd.mul_add_e_f32s(*w, *v3, a3);
    }
    let tail = |t: &[f32]| -> f32 { wt.iter().zip(t).map(|(a, b)| a * b).sum() };
    [
        simd.reduce_sum_f32s(a0) + tail(t0),
        simd.reduce_sum_f32s(a1) + tail(t1),
        simd.reduce_sum_f32s(a2) + tail(t2),
        simd.reduce_sum_f32s(a3) + tail(t3),
    ]
}

#[cfg(test)]
mod tests {
    use half::f16;
    use proptest::prelude::*;

    use super::*;
    use crate::gguf::dequantize;

    const TYPES: [GgmlType; 5] = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ];

    /// Random blocks whose f16 scale fields are small finite numbers (random bytes there could
    /// be NaN or 65504, which no real file holds).
    fn random_blocks(ty: GgmlType, n_blocks: usize, seed: u64) -> Vec<u8> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let bytes = ty.block_bytes();
        let scales: &[usize] = match ty {
            GgmlType::Q4_0 | GgmlType::Q8_0 => &[0],
            GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_1 => &[0, 2],
            GgmlType::Q5_0 => &[0],
            GgmlType::Q6_K => &[208],
            GgmlType::F32 | GgmlType::F16 => &[],
        };
        let mut data: Vec<u8> = (0..n_blocks * bytes).map(|_| rng.r#gen()).collect();
        for b in data.chunks_exact_mut(bytes) {
            for &at in scales {
                let s = f16::from_f32(rng.gen_range(-0.05f32..0.05)).to_le_bytes();
                b[at..at + 2].copy_from_slice(&s);
            }
        }
        data
    }

    /// Reference: dequantise the whole matrix, then a plain f64 matrix product.
    /// The whole matrix in f32, through the row layout's dequantiser.
    fn dequantize_all(m: &QMatrix) -> Vec<f32> {
        let mut w = vec![0f32; m.rows * m.cols];
        for (r, row) in w.chunks_exact_mut(m.cols).enumerate() {
            m.dequantize_row(r, row);
        }
        w
    }

    fn reference(m: &QMatrix, x: &[f32], n: usize) -> (Vec<f32>, Vec<f32>) {
        let w = dequantize_all(m);
        let mut y = vec![0f32; n * m.rows];
        let mut mag = vec![0f32; n * m.rows];
        for t in 0..n {
            for r in 0..m.rows {
                let (mut s, mut a) = (0f64, 0f64);
                for c in 0..m.cols {
                    let p = w[r * m.cols + c] as f64 * x[t * m.cols + c] as f64;
                    s += p;
                    a += p.abs();
                }
                y[t * m.rows + r] = s as f32;
                mag[t * m.rows + r] = a as f32;
            }
        }
        (y, mag)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every kernel this CPU has equals dequantise-then-f32-matmul for every format, input
        /// count (the 4- and 8-wide paths and their remainders) and row count (partial tasks
        /// and tiles).
        #[test]
        fn matmul_equals_dequantize_then_matmul(
            ty_index in 0usize..TYPES.len(),
            rows in 1usize..40,
            blocks_per_row in 1usize..4,
            n in prop_oneof![1usize..7, 7usize..GEMM_MIN_ROWS + 3],
            seed in any::<u64>(),
        ) {
            let ty = TYPES[ty_index];
            let cols = blocks_per_row * ty.block_elems();
            let raw = random_blocks(ty, rows * blocks_per_row, seed);
            let x: Vec<f32> = (0..n * cols).map(|i| ((i * 7919 + seed as usize) % 2001) as f32 / 1000.0 - 1.0).collect();
            for (layout, path) in paths(ty, n) {
                let m = QMatrix::with_layout(ty, rows, cols, raw.clone(), layout).unwrap();
                let mut got = vec![0f32; n * rows];
                m.matmul_on(path, &x, n, &mut got);
                check(&m, &x, n, &got, path)?;
            }
        }
    }

    /// Each (layout, kernel) pair this CPU runs for `n` inputs of format `ty`.
    fn paths(ty: GgmlType, n: usize) -> Vec<(Layout, Path)> {
        let mut out = vec![(Layout::Rows, Path::F32), (Layout::Rows, Path::Gemm)];
        if qtile::covers(ty) {
            out.push((Layout::Tiles, Path::F32));
            if let Some(v) = Vnni::detect() {
                out.push((Layout::Tiles, Path::Tiles(v)));
            }
            if let Some(a) = Amx::detect() {
                out.push((Layout::Tiles, Path::Amx(a)));
            }
        }
        if let Some(k) = Kernel::detect().filter(|_| qdot::covers(ty) && n < GEMM_MIN_ROWS + 3) {
            out.push((Layout::Rows, Path::Int(k)));
        }
        out
    }

    fn check(
        m: &QMatrix,
        x: &[f32],
        n: usize,
        got: &[f32],
        path: Path,
    ) -> Result<(), TestCaseError> {
        let (ty, rows, cols) = (m.ty, m.rows, m.cols);
        let integer = matches!(path, Path::Tiles(_) | Path::Amx(_) | Path::Int(_));
        // The integer kernels multiply by the quantised activations exactly (up to f32
        // rounding); the f32 paths by the activations themselves.
        let exact_x: Vec<f32> = if integer {
            x.chunks(cols)
                .flat_map(|r| QuantRow::new(r).values())
                .collect()
        } else {
            x.to_vec()
        };
        let (want, mag) = reference(m, &exact_x, n);
        for i in 0..got.len() {
            // f32 rounding over `cols` products: relative to the sum of magnitudes.
            // AMX multiplies bf16 head + tail pairs: 16 bits of each operand, so about 4·2⁻¹⁶
            // of each product's magnitude.
            let rel = if matches!(path, Path::Amx(_)) {
                8e-5
            } else {
                1e-5
            };
            let tol = rel * mag[i].max(1e-6);
            prop_assert!(
                (got[i] - want[i]).abs() <= tol,
                "{ty:?} {path:?} [{rows}x{cols}] n={n} at {i}: {} vs {} (tol {tol})",
                got[i],
                want[i]
            );
        }
        if integer {
            // Against the unquantised activations: rounding moves each x by at most half a
            // step, max|x_block| / 65534, so output r moves by at most Σ_blocks that · Σ|w|.
            let (want, mag) = reference(m, x, n);
            let w = dequantize_all(m);
            for t in 0..n {
                for r in 0..rows {
                    let mut bound = 1e-5 * mag[t * rows + r].max(1e-6);
                    for b in 0..cols / qdot::QK {
                        let span = b * qdot::QK..(b + 1) * qdot::QK;
                        let xb = &x[t * cols..][span.clone()];
                        let half_step = xb.iter().fold(0f32, |a, v| a.max(v.abs())) / 65534.0;
                        let wsum: f32 = w[r * cols..][span].iter().map(|v| v.abs()).sum();
                        bound += half_step * wsum * 1.0001;
                    }
                    let i = t * rows + r;
                    prop_assert!(
                        (got[i] - want[i]).abs() <= bound,
                        "{ty:?} {path:?} n={n} at {i}: {} vs f32 {} (bound {bound})",
                        got[i],
                        want[i]
                    );
                }
            }
        }
        Ok(())
    }

    /// The proptest's inputs stay under 19 rows; AMX keeps at most four groups of 16 tokens
    /// in its tile registers, so more inputs take several passes over each tile.
    #[test]
    fn amx_takes_any_number_of_token_groups() {
        let Some(amx) = Amx::detect() else {
            assert!(!matches!(
                QMatrix::new(GgmlType::Q4_0, 16, 32, vec![0; 288])
                    .unwrap()
                    .path(100),
                Path::Amx(_)
            ));
            return;
        };
        for ty in TYPES.iter().copied().filter(|&t| qtile::covers(t)) {
            let (rows, cols) = (37, 3 * ty.block_elems());
            let raw = random_blocks(ty, rows * 3, 7);
            let m = QMatrix::with_layout(ty, rows, cols, raw, Layout::Tiles).unwrap();
            for n in [63, 64, 65, 130] {
                let x: Vec<f32> = (0..n * cols)
                    .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
                    .collect();
                let mut got = vec![0f32; n * rows];
                m.matmul_on(Path::Amx(amx), &x, n, &mut got);
                check(&m, &x, n, &got, Path::Amx(amx)).unwrap();
            }
        }
    }

    #[test]
    fn this_cpu_gets_the_tiled_kernel_when_it_has_vnni() {
        let vnni = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vnni");
        let m = QMatrix::new(GgmlType::Q4_1, 16, 32, vec![0; 320]).unwrap();
        assert_eq!(m.layout() == Layout::Tiles, vnni);
        assert_eq!(matches!(m.path(1), Path::Tiles(_)), vnni);
        let k = QMatrix::new(GgmlType::Q4_K, 1, 256, vec![0; 144]).unwrap();
        assert_eq!(k.layout(), Layout::Rows);
    }

    #[test]
    fn dequantisers_match_the_gguf_package() {
        // worker/tests/golden/quant_blocks.json: random blocks dequantised by PyPI `gguf`'s own
        // numpy code (scripts/reference/quant_blocks.py).
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../tests/golden/quant_blocks.json")).unwrap();
        for (name, ty) in [
            ("Q4_0", GgmlType::Q4_0),
            ("Q4_1", GgmlType::Q4_1),
            ("Q5_0", GgmlType::Q5_0),
            ("Q5_1", GgmlType::Q5_1),
            ("Q8_0", GgmlType::Q8_0),
            ("Q4_K", GgmlType::Q4_K),
            ("Q6_K", GgmlType::Q6_K),
        ] {
            let raw = hex::decode(golden[name]["hex"].as_str().unwrap()).unwrap();
            let want: Vec<f32> = golden[name]["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let got = dequantize(ty, &raw);
            assert_eq!(got.len(), want.len(), "{name}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{name}[{i}]: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn rejects_ragged_rows_and_wrong_lengths() {
        assert!(QMatrix::new(GgmlType::Q4_1, 2, 48, vec![0; 80]).is_err());
        assert!(QMatrix::new(GgmlType::Q4_1, 2, 32, vec![0; 39]).is_err());
        let rows = |ty, r, bytes| QMatrix::with_layout(ty, r, 32, vec![0; bytes], Layout::Rows);
        let a = rows(GgmlType::Q4_1, 2, 40).unwrap();
        let b = rows(GgmlType::Q8_0, 1, 34).unwrap();
        assert!(QMatrix::stack(&[&a, &b]).is_none());
        assert_eq!(QMatrix::stack(&[&a, &a]).unwrap().rows(), 4);
        // Tiles stack when every part fills whole tiles, and not across layouts.
        let tiles = |r| QMatrix::with_layout(GgmlType::Q4_1, r, 32, vec![0; 20 * r], Layout::Tiles);
        let (t16, t2) = (tiles(16).unwrap(), tiles(2).unwrap());
        assert_eq!(QMatrix::stack(&[&t16, &t16]).unwrap().rows(), 32);
        assert!(QMatrix::stack(&[&t2, &t2]).is_none());
        assert!(QMatrix::stack(&[&a, &t2]).is_none());
        assert!(QMatrix::with_layout(GgmlType::Q4_K, 1, 256, vec![0; 144], Layout::Tiles).is_err());
    }
}
