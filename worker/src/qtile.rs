//! Weight matrices re-laid in tiles of 16 rows, and the AVX-512 VNNI kernel that multiplies
//! them by 16-bit activations: every matrix product on CPUs that have it (decode and prefill).
//!
//! [`crate::qdot`]'s kernels take one row's dot product at a time, so each weight block ends in
//! a horizontal sum and a scalar scale, and a prefill has to fall back to a dequantised f32 copy.
//! Here the lanes of a vector are 16 *rows*: `vpdpwssd` multiplies, for all 16 rows at once, two
//! adjacent columns by the same two activations (broadcast from memory) and adds into one `i32`
//! per row. A block of 32 columns is 16 such instructions per token, then one conversion and two
//! or three multiply-adds apply the 16 rows' scales; no horizontal sum anywhere. Each unpacked
//! weight vector feeds up to [`MAX_TOKENS`] tokens, so a prefill reuses it from registers and the
//! tile (≤ 16 KB for 1536 columns) from L1 for the rest.
//!
//! Activations keep [`QuantRow`]'s 16 bits (8 bits broke the golden tests; see `qdot`). The maths
//! per block is `qdot`'s; only the summation order of the f32 block terms differs.
//!
//! Layout, per tile of 16 rows and per block of 32 columns, one record of exactly 16 ggml blocks'
//! bytes (so the matrix keeps its GGUF size): the 16 rows' `f16` scales `d`, for Q4_1 their 16
//! `m`, then the quants. Q4_0/Q4_1: eight 32-byte chunks; byte `2r + e` of chunk `j` holds row
//! `r`'s column `4j + e` in its low nibble and `4j + 2 + e` in its high one, so one zero-extension
//! to `i16` and a mask (a shift) give the vector for columns `(4j, 4j+1)` (`(4j+2, 4j+3)`).
//! Q8_0: sixteen 32-byte chunks, chunk `p` byte `2r + e` = row `r`, column `2p + e`. Rows past
//! the matrix's end are zero blocks.

use crate::gguf::{GgmlType, dequantize_block};
use crate::qdot::QuantRow;

/// Rows per tile (the lanes of a 512-bit vector of `i32`).
pub const TILE: usize = 16;
/// Tokens one pass over a tile multiplies at once (their accumulators stay in registers).
pub const MAX_TOKENS: usize = 8;
/// Values per block.
const QK: usize = 32;

/// Whether this layout (and its kernel) handles the block format.
pub fn covers(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// Bytes of one tile's record for one block column.
pub fn record_bytes(ty: GgmlType) -> usize {
    TILE * ty.block_bytes()
}

/// Bytes of the scale fields at the start of a record.
pub(crate) fn header_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_1 => 4 * TILE,
        _ => 2 * TILE,
    }
}

/// Re-lays `rows` ggml rows of `cols` values (`data`, row-major blocks) as tiles.
pub fn tile(ty: GgmlType, rows: usize, cols: usize, data: &[u8]) -> Vec<u8> {
    debug_assert!(covers(ty));
    let (bb, rb, hdr) = (ty.block_bytes(), record_bytes(ty), header_bytes(ty));
    let blocks = cols / QK;
    let mut out = vec![0u8; rows.div_ceil(TILE) * blocks * rb];
    for r in 0..rows {
        let (g, lane) = (r / TILE, r % TILE);
        for b in 0..blocks {
            let src = &data[(r * blocks + b) * bb..][..bb];
            let rec = &mut out[(g * blocks + b) * rb..][..rb];
            rec[2 * lane..2 * lane + 2].copy_from_slice(&src[..2]);
            match ty {
                GgmlType::Q8_0 => {
                    for c in 0..QK {
                        rec[hdr + 32 * (c / 2) + 2 * lane + c % 2] = src[2 + c];
                    }
                }
                _ => {
                    let qs = &src[bb - 16..];
                    if ty == GgmlType::Q4_1 {
                        rec[2 * TILE + 2 * lane..][..2].copy_from_slice(&src[2..4]);
                    }
                    let q = |c: usize| if c < 16 { qs[c] & 15 } else { qs[c - 16] >> 4 };
                    for j in 0..8 {
                        for e in 0..2 {
                            rec[hdr + 32 * j + 2 * lane + e] = q(4 * j + e) | q(4 * j + 2 + e) << 4;
                        }
                    }
                }
            }
        }
    }
    out
}

/// Rebuilds row `r`'s ggml block `b` from the tiles (the inverse of [`tile`]).
fn untile_block(ty: GgmlType, rec: &[u8], lane: usize, block: &mut [u8]) {
    let (bb, hdr) = (ty.block_bytes(), header_bytes(ty));
    block[..2].copy_from_slice(&rec[2 * lane..2 * lane + 2]);
    match ty {
        GgmlType::Q8_0 => {
            for c in 0..QK {
                block[2 + c] = rec[hdr + 32 * (c / 2) + 2 * lane + c % 2];
            }
        }
        _ => {
            if ty == GgmlType::Q4_1 {
                block[2..4].copy_from_slice(&rec[2 * TILE + 2 * lane..][..2]);
            }
            let mut q = [0u8; QK];
            for j in 0..8 {
                for e in 0..2 {
                    let byte = rec[hdr + 32 * j + 2 * lane + e];
                    q[4 * j + e] = byte & 15;
                    q[4 * j + 2 + e] = byte >> 4;
                }
            }
            let qs = &mut block[bb - 16..bb];
            for (c, o) in qs.iter_mut().enumerate() {
                *o = q[c] | q[c + 16] << 4;
            }
        }
    }
}

/// Dequantises row `r` of a tiled matrix of `cols` columns into `out`, exactly as
/// [`dequantize_block`] does the untiled blocks.
pub fn dequantize_row(ty: GgmlType, data: &[u8], cols: usize, r: usize, out: &mut [f32]) {
    let (rb, blocks) = (record_bytes(ty), cols / QK);
    let (g, lane) = (r / TILE, r % TILE);
    let mut block = [0u8; 34];
    for (b, o) in out.chunks_exact_mut(QK).enumerate() {
        let rec = &data[(g * blocks + b) * rb..][..rb];
        untile_block(ty, rec, lane, &mut block);
        dequantize_block(ty, &block[..ty.block_bytes()], o);
    }
}

/// The AVX-512 VNNI instructions the kernel needs, found on this CPU.
#[derive(Debug, Clone, Copy)]
pub struct Vnni(());

impl Vnni {
    /// `None` on CPUs without AVX-512 F/BW/DQ and VNNI (then [`crate::qdot`]'s AVX2 kernels or
    /// the f32 path run instead).
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            let all = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vnni");
            all.then_some(Self(()))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// One tile's outputs for every activation row: `tile_data` is the tile's records (all its
    /// block columns), `out` is `[x.len()][TILE]`.
    pub fn tile_product(self, ty: GgmlType, tile_data: &[u8], x: &[QuantRow], out: &mut [f32]) {
        assert!(covers(ty));
        assert_eq!(out.len(), x.len() * TILE);
        let blocks = tile_data.len() / record_bytes(ty);
        assert!(x.iter().all(|x| x.pairs().len() == blocks * QK / 2));
        #[cfg(target_arch = "x86_64")]
        {
            #[allow(unsafe_code)]
            // SAFETY: a `Vnni` is only made by `detect`, after the CPU reported every feature
            // `avx512::tile_product` is compiled with.
            unsafe {
                avx512::tile_product(ty, tile_data, x, out)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            unreachable!("no Vnni on this architecture")
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::*;

    use pulp::bytemuck::cast;

    use super::{GgmlType, MAX_TOKENS, QuantRow, TILE, header_bytes, record_bytes};

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    fn load256(b: &[u8]) -> __m256i {
        let a: [u8; 32] = b[..32].try_into().unwrap();
        cast(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    fn store(v: __m512, out: &mut [f32]) {
        let lo: [f32; 8] = cast(_mm512_castps512_ps256(v));
        let hi: [f32; 8] = cast(_mm512_extractf32x8_ps::<1>(v));
        out[..8].copy_from_slice(&lo);
        out[8..16].copy_from_slice(&hi);
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    pub fn tile_product(ty: GgmlType, tile_data: &[u8], x: &[QuantRow], out: &mut [f32]) {
        let mut t = 0;
        while t < x.len() {
            let n = (x.len() - t).min(MAX_TOKENS);
            let (x, out) = (&x[t..t + n], &mut out[t * TILE..(t + n) * TILE]);
            match n {
                8 => tokens::<8>(ty, tile_data, x, out),
                7 => tokens::<7>(ty, tile_data, x, out),
                6 => tokens::<6>(ty, tile_data, x, out),
                5 => tokens::<5>(ty, tile_data, x, out),
                4 => tokens::<4>(ty, tile_data, x, out),
                3 => tokens::<3>(ty, tile_data, x, out),
                2 => tokens::<2>(ty, tile_data, x, out),
                _ => tokens::<1>(ty, tile_data, x, out),
            }
            t += n;
        }
    }

    /// `T` tokens against one tile. Two `i32` accumulators per token (even and odd column
    /// pairs) halve the dependency chain a single token would otherwise wait on.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    fn tokens<const T: usize>(ty: GgmlType, tile_data: &[u8], x: &[QuantRow], out: &mut [f32]) {
        let (rb, hdr) = (record_bytes(ty), header_bytes(ty));
        let x: [&QuantRow; T] = core::array::from_fn(|t| &x[t]);
        let mut acc = [_mm512_setzero_ps(); T];
        let nibble = _mm512_set1_epi16(0x0f);
        for (b, rec) in tile_data.chunks_exact(rb).enumerate() {
            let d = _mm512_cvtph_ps(load256(&rec[..32]));
            let xp: [&[i32; 16]; T] =
                core::array::from_fn(|t| x[t].pairs()[16 * b..16 * b + 16].try_into().unwrap());
            let mut even = [_mm512_setzero_si512(); T];
            let mut odd = [_mm512_setzero_si512(); T];
            let qs = &rec[hdr..];
            if ty == GgmlType::Q8_0 {
                for j in 0..8 {
                    let wa = _mm512_cvtepi8_epi16(load256(&qs[64 * j..]));
                    let wb = _mm512_cvtepi8_epi16(load256(&qs[64 * j + 32..]));
                    for t in 0..T {
                        let (a, c) = (xp[t][2 * j], xp[t][2 * j + 1]);
                        even[t] = _mm512_dpwssd_epi32(even[t], wa, _mm512_set1_epi32(a));
                        odd[t] = _mm512_dpwssd_epi32(odd[t], wb, _mm512_set1_epi32(c));
                    }
                }
            } else {
                for j in 0..8 {
                    let raw = _mm512_cvtepu8_epi16(load256(&qs[32 * j..]));
                    let wa = _mm512_and_si512(raw, nibble);
                    let wb = _mm512_srli_epi16::<4>(raw);
                    for t in 0..T {
                        let (a, c) = (xp[t][2 * j], xp[t][2 * j + 1]);
                        even[t] = _mm512_dpwssd_epi32(even[t], wa, _mm512_set1_epi32(a));
                        odd[t] = _mm512_dpwssd_epi32(odd[t], wb, _mm512_set1_epi32(c));
                    }
                }
            }
            // Σ w x over the block = d·(d_x Σ q_w q_x) + c·s_x, c the block's constant term.
            match ty {
                GgmlType::Q4_1 => {
                    let m = _mm512_cvtph_ps(load256(&rec[32..64]));
                    for t in 0..T {
                        let s = _mm512_cvtepi32_ps(_mm512_add_epi32(even[t], odd[t]));
                        let s = _mm512_mul_ps(s, _mm512_set1_ps(x[t].d()[b]));
                        acc[t] = _mm512_fmadd_ps(d, s, acc[t]);
                        acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(x[t].s()[b]), acc[t]);
                    }
                }
                GgmlType::Q4_0 => {
                    for t in 0..T {
                        let s = _mm512_cvtepi32_ps(_mm512_add_epi32(even[t], odd[t]));
                        let s = _mm512_fmsub_ps(
                            s,
                            _mm512_set1_ps(x[t].d()[b]),
                            _mm512_set1_ps(8.0 * x[t].s()[b]),
                        );
                        acc[t] = _mm512_fmadd_ps(d, s, acc[t]);
                    }
                }
                _ => {
                    for t in 0..T {
                        let s = _mm512_cvtepi32_ps(_mm512_add_epi32(even[t], odd[t]));
                        let s = _mm512_mul_ps(s, _mm512_set1_ps(x[t].d()[b]));
                        acc[t] = _mm512_fmadd_ps(d, s, acc[t]);
                    }
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            store(*a, &mut out[t * TILE..(t + 1) * TILE]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiling_round_trips_every_row() {
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let (rows, cols) = (21, 64);
            let bytes = rows * cols / QK * ty.block_bytes();
            let data: Vec<u8> = (0..bytes).map(|i| (i * 131 % 251) as u8).collect();
            let tiled = tile(ty, rows, cols, &data);
            assert_eq!(tiled.len(), 2 * (cols / QK) * record_bytes(ty), "{ty:?}");
            let want = crate::gguf::dequantize(ty, &data);
            let mut got = vec![0f32; cols];
            for r in 0..rows {
                dequantize_row(ty, &tiled, cols, r, &mut got);
                let w = &want[r * cols..(r + 1) * cols];
                assert!(
                    got.iter()
                        .zip(w)
                        .all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()),
                    "{ty:?} row {r}"
                );
            }
        }
    }
}
