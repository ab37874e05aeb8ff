//! Integer dot products between ggml weight rows and activations quantised to 16 bits.
//!
//! A matrix-vector product over 4-bit weights is bound by how fast the weights become numbers
//! the CPU can multiply. Dequantising them to f32 costs a conversion, a multiply and an add per
//! weight plus a store and a reload; instead the activation row is quantised once per product
//! to blocks of 32 `i16` with an f32 scale, and each weight block's dot product is taken on
//! integers: its nibbles (or bytes) are widened to `i16` and multiplied by `vpmaddwd`, 16
//! products summed pairwise to `i32` per instruction. Only the block sums meet floating point:
//!
//! `Σ wᵢxᵢ ≈ d_w·d_x·Σ q_wᵢ q_xᵢ + m_w·d_x·Σ q_xᵢ` for a block `w = d_w·q_w + m_w` (Q4_1; Q4_0 has
//! `m_w = −8·d_w`, Q8_0 `m_w = 0`), where `x ≈ d_x·q_x`.
//!
//! Why 16 bits and not 8 as llama.cpp does: with 8-bit activations (`vpmaddubsw`, twice the
//! products per instruction) SmolLM2's first-step logits moved by 0.44 from the float64
//! reference and greedy decoding diverged, far outside the golden tests' 2e-2. The error comes
//! only from rounding `x`: each `xᵢ` moves by at most `d_x / 2 = max|x_block| / 65534`, so a
//! block's dot product moves by at most that times `Σ|wᵢ|` (the bound the tests check), 258
//! times less than with 8 bits. No sum overflows `i32`: a lane adds four products of at most
//! `128 · 32767`.
//!
//! These kernels run on x86-64 with AVX2 (through `pulp`'s safe intrinsics) when the CPU lacks
//! AVX-512 VNNI; with it, [`crate::qtile`]'s kernel uses the same [`QuantRow`]s. Other CPUs and
//! block formats keep [`crate::qmatmul`]'s dequantise-then-f32 path.

use crate::gguf::GgmlType;

/// Values per activation block (the block length of every weight format covered).
pub const QK: usize = 32;

/// Largest quantised magnitude (symmetric, so `−LEVEL..=LEVEL`).
const LEVEL: f32 = 32767.0;

/// An activation row quantised in blocks of [`QK`]: `x[i] ≈ d[i / QK] · q[i]`.
#[derive(Debug, Clone, Default)]
pub struct QuantRow {
    /// The quantised values, two per `i32` (even index in the low half): the pairs
    /// [`crate::qtile`]'s kernel broadcasts.
    pairs: Vec<i32>,
    /// Scale of each block.
    d: Vec<f32>,
    /// `d · Σq` of each block (what a weight block's constant term multiplies).
    s: Vec<f32>,
}

impl QuantRow {
    /// Quantises `x` (a whole number of blocks) to the nearest of 65535 levels per block.
    pub fn new(x: &[f32]) -> Self {
        debug_assert!(x.len().is_multiple_of(QK));
        let blocks = x.len() / QK;
        let mut row = Self {
            pairs: vec![0; x.len() / 2],
            d: Vec::with_capacity(blocks),
            s: Vec::with_capacity(blocks),
        };
        for (xb, pb) in x.chunks_exact(QK).zip(row.pairs.chunks_exact_mut(QK / 2)) {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / LEVEL;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut q = [0i32; QK];
            for (q, v) in q.iter_mut().zip(xb) {
                // Half away from zero, as `round` (a library call on baseline x86-64, and this
                // runs once per activation per product); `as` truncates.
                let y = (v * inv).clamp(-LEVEL, LEVEL);
                *q = (y + 0.5f32.copysign(y)) as i32;
            }
            let sum: i32 = q.iter().sum();
            for (p, q) in pb.iter_mut().zip(q.chunks_exact(2)) {
                *p = (q[0] & 0xffff) | (q[1] << 16);
            }
            row.d.push(d);
            row.s.push(d * sum as f32);
        }
        row
    }

    /// The quantised values.
    pub fn q(&self) -> &[i16] {
        pulp::bytemuck::cast_slice(&self.pairs)
    }

    /// The quantised values in pairs (see the field).
    pub fn pairs(&self) -> &[i32] {
        &self.pairs
    }

    /// Each block's scale.
    pub fn d(&self) -> &[f32] {
        &self.d
    }

    /// Each block's `d · Σq`.
    pub fn s(&self) -> &[f32] {
        &self.s
    }

    /// The dequantised values (what the integer kernels effectively multiply by).
    #[cfg(test)]
    pub fn values(&self) -> Vec<f32> {
        self.q()
            .iter()
            .enumerate()
            .map(|(i, q)| *q as f32 * self.d[i / QK])
            .collect()
    }
}

/// Whether [`Kernel`] handles this block format.
pub fn covers(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// The integer kernels, when this CPU has the instructions they need.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    #[cfg(target_arch = "x86_64")]
    simd: pulp::x86::V3,
}

impl Kernel {
    /// `None` on a CPU (or architecture) without AVX2.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            pulp::x86::V3::try_new().map(|simd| Self { simd })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// Runs `op` with the kernel's instruction set enabled. It must be a [`pulp::WithSimd`]
    /// whose `with_simd` is `#[inline(always)]`: a closure is not reliably inlined, and the
    /// intrinsics inside it then become calls, an order of magnitude slower.
    pub fn vectorize<Op: pulp::WithSimd>(self, op: Op) -> Op::Output {
        #[cfg(target_arch = "x86_64")]
        {
            pulp::Simd::vectorize(self.simd, op)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            pulp::Simd::vectorize(pulp::Scalar::new(), op)
        }
    }

    /// `Σ w·x` for one weight row of format `ty` (one of those [`covers`] accepts) and a
    /// quantised activation row of the same length.
    #[inline(always)]
    pub fn dot(self, ty: GgmlType, row: &[u8], x: &QuantRow) -> f32 {
        self.dot_n(ty, row, [x])[0]
    }

    /// [`dot`](Self::dot) against `N` activation rows at once: each weight block is unpacked
    /// once for all of them (a batched decode step).
    #[inline(always)]
    pub fn dot_n<const N: usize>(self, ty: GgmlType, row: &[u8], x: [&QuantRow; N]) -> [f32; N] {
        #[cfg(target_arch = "x86_64")]
        {
            match ty {
                GgmlType::Q4_1 => x86::dot_q4_1(self.simd, row, x),
                GgmlType::Q4_0 => x86::dot_q4_0(self.simd, row, x),
                GgmlType::Q8_0 => x86::dot_q8_0(self.simd, row, x),
                _ => unreachable!("{ty:?} has no integer kernel"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (row, x);
            unreachable!("{ty:?} has no integer kernel on this architecture")
        }
    }
}

/// IEEE half to single precision, inlinable into the kernels (`half`'s conversion is a call
/// behind a run-time CPU check). Scaling by 2¹¹² rebiases the exponent of normal and subnormal
/// halves alike; infinities and NaNs are rebuilt explicitly.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let mag = (h & 0x7fff) as u32;
    let v = if mag >= 0x7c00 {
        f32::from_bits(0x7f80_0000 | ((mag & 0x3ff) << 13))
    } else {
        f32::from_bits(mag << 13) * f32::from_bits((127 + 112) << 23)
    };
    if h & 0x8000 != 0 { -v } else { v }
}

#[inline(always)]
fn f16_le(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{__m128i, __m256, __m256i};

    use pulp::bytemuck::cast;
    use pulp::x86::V3;

    use super::{QK, QuantRow, f16_le};

    #[inline(always)]
    fn load16(b: &[u8]) -> __m128i {
        let a: [u8; 16] = b[..16].try_into().unwrap();
        cast(a)
    }

    #[inline(always)]
    fn load_i16(q: &[i16]) -> __m256i {
        let a: [i16; 16] = q[..16].try_into().unwrap();
        cast(a)
    }

    /// Σ of the 32 products of two `i16` vector pairs, as 8 f32 partial sums.
    #[inline(always)]
    fn products(s: V3, w: [__m256i; 2], xq: &[i16]) -> __m256 {
        let lo = s.avx2._mm256_madd_epi16(w[0], load_i16(xq));
        let hi = s.avx2._mm256_madd_epi16(w[1], load_i16(&xq[16..]));
        s.avx._mm256_cvtepi32_ps(s.avx2._mm256_add_epi32(lo, hi))
    }

    /// 16 bytes of packed nibbles → values 0–15 (the low nibbles) and 16–31 (the high ones),
    /// as ggml packs Q4_0/Q4_1, widened to `i16`.
    #[inline(always)]
    fn unpack_nibbles(s: V3, b: &[u8]) -> [__m256i; 2] {
        let bytes = load16(b);
        let m4 = s.sse2._mm_set1_epi8(0x0f);
        let lo = s.sse2._mm_and_si128(bytes, m4);
        let hi = s.sse2._mm_and_si128(s.sse2._mm_srli_epi16::<4>(bytes), m4);
        [
            s.avx2._mm256_cvtepu8_epi16(lo),
            s.avx2._mm256_cvtepu8_epi16(hi),
        ]
    }

    /// 32 signed bytes widened to `i16`.
    #[inline(always)]
    fn widen_i8(s: V3, b: &[u8]) -> [__m256i; 2] {
        [
            s.avx2._mm256_cvtepi8_epi16(load16(b)),
            s.avx2._mm256_cvtepi8_epi16(load16(&b[16..])),
        ]
    }

    #[inline(always)]
    fn hsum(v: __m256) -> f32 {
        let a: [f32; 8] = cast(v);
        ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
    }

    /// Shared loop: `Σ d_w d_x Σq_w q_x + Σ c_w s_x` for each of the `N` activation rows, where
    /// `block` gives a weight block's scale, its constant term `c_w` (`m` for Q4_1, `−8d` for
    /// Q4_0, 0 for Q8_0) and its widened values. A single row alternates two accumulators to
    /// hide the FMA latency; several rows hide it by themselves.
    #[inline(always)]
    fn dot_blocks<const N: usize>(
        s: V3,
        row: &[u8],
        x: [&QuantRow; N],
        block_bytes: usize,
        block: impl Fn(&[u8]) -> (f32, f32, [__m256i; 2]),
    ) -> [f32; N] {
        let split = if N == 1 { 2 } else { 1 };
        let mut acc = [[s.avx._mm256_setzero_ps(); 2]; N];
        let mut constant = [0f32; N];
        for (i, b) in row.chunks_exact(block_bytes).enumerate() {
            let (d, c, w) = block(b);
            let k = i % split;
            for t in 0..N {
                let p = products(s, w, &x[t].q()[i * QK..(i + 1) * QK]);
                let scale = s.avx._mm256_set1_ps(d * x[t].d[i]);
                acc[t][k] = s.fma._mm256_fmadd_ps(scale, p, acc[t][k]);
                constant[t] += c * x[t].s[i];
            }
        }
        core::array::from_fn(|t| hsum(s.avx._mm256_add_ps(acc[t][0], acc[t][1])) + constant[t])
    }

    #[inline(always)]
    pub fn dot_q4_1<const N: usize>(s: V3, row: &[u8], x: [&QuantRow; N]) -> [f32; N] {
        dot_blocks(s, row, x, 20, |b| {
            (f16_le(b, 0), f16_le(b, 2), unpack_nibbles(s, &b[4..]))
        })
    }

    #[inline(always)]
    pub fn dot_q4_0<const N: usize>(s: V3, row: &[u8], x: [&QuantRow; N]) -> [f32; N] {
        dot_blocks(s, row, x, 18, |b| {
            let d = f16_le(b, 0);
            (d, -8.0 * d, unpack_nibbles(s, &b[2..]))
        })
    }

    #[inline(always)]
    pub fn dot_q8_0<const N: usize>(s: V3, row: &[u8], x: [&QuantRow; N]) -> [f32; N] {
        dot_blocks(s, row, x, 34, |b| (f16_le(b, 0), 0.0, widen_i8(s, &b[2..])))
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    #[test]
    fn f16_conversion_matches_half_for_every_value() {
        for h in 0..=u16::MAX {
            let want = f16::from_bits(h).to_f32();
            let got = f16_to_f32(h);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{h:#06x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn quantised_row_is_within_half_a_step() {
        let x: Vec<f32> = (0..96)
            .map(|i| ((i * 37) % 101) as f32 / 13.0 - 3.0)
            .collect();
        let q = QuantRow::new(&x);
        for (b, (xb, vb)) in x.chunks(QK).zip(q.values().chunks(QK)).enumerate() {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, v) in xb.iter().zip(vb) {
                assert!(
                    (a - v).abs() <= amax / (2.0 * LEVEL) * 1.0001,
                    "block {b}: {a} vs {v}"
                );
            }
        }
        let zeros = QuantRow::new(&[0.0; QK]);
        assert_eq!(zeros.values(), vec![0.0; QK]);
    }
}
