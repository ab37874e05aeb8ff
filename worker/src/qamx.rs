//! Intel AMX for products by many tokens at once (prefill, large decode batches) over
//! [`crate::qtile`]'s tiles.
//!
//! `vpdpwssd` does 32 multiply-adds per instruction; an AMX `TDPBF16PS` does 16 tokens × 16
//! rows × 32 columns, accumulating in `f32` across the whole row. bf16 alone keeps 8 bits of
//! each operand, too few for the golden tests, so each operand is split exactly into a bf16
//! head and a bf16 tail (`v ≈ hi + lo`, 16 significant bits) and three products are summed:
//! `hi·hi + hi·lo + lo·hi`. The result is within about 2⁻¹⁶ of each product, as precise as the
//! VNNI kernel's 16-bit activations, and needs no per-block scaling: each tile's weights are
//! dequantised (`d·q`, `+ m` for Q4_1) once per product into AMX's layout, and the weights at
//! rest stay in the tiled GGUF bytes.
//!
//! Linux hands AMX's tile registers to a process only on request (`arch_prctl`,
//! `ARCH_REQ_XCOMP_PERM`); [`Amx::detect`] asks once and answers `None` where the CPU, the
//! kernel or the hypervisor says no. Neither `core::arch`'s AMX intrinsics nor AMX feature
//! detection are stable Rust, so the tile instructions are inline assembly and detection reads
//! CPUID.

use rayon::prelude::*;

use crate::gguf::GgmlType;
use crate::qdot::QK;
use crate::qtile::{TILE, covers, header_bytes, record_bytes};

/// Tokens per AMX tile (the rows of its `A` operand).
pub const GROUP: usize = 16;
/// Bytes of one 16 × 32 bf16 operand tile (an activation group's block, or a weight tile's).
const OPERAND_BYTES: usize = 16 * QK * 2;

/// AMX (tile registers, bf16 dot products) with AVX-512 BF16 on this CPU, usable by this
/// process.
#[derive(Debug, Clone, Copy)]
pub struct Amx(());

impl Amx {
    /// `Some` where the CPU has AMX-TILE, AMX-BF16, AVX-512 F/BW/BF16 and Linux granted the
    /// tile registers to this process.
    pub fn detect() -> Option<Self> {
        static USABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        USABLE
            .get_or_init(|| cpu_has_amx_bf16() && os::request_tiles())
            .then_some(Self(()))
    }

    /// `y = x · Wᵀ` for a whole tiled matrix `data` of `rows` rows (format `ty`): `y` holds
    /// `x`'s tokens' rows of `rows` values. Tiles are split over the rayon pool in runs of
    /// `per_task`; each task writes its tiles' columns of `y` in place (no transposed copy).
    pub fn matmul(
        self,
        ty: GgmlType,
        data: &[u8],
        rows: usize,
        x: &AmxRows,
        y: &mut [f32],
        per_task: usize,
    ) {
        assert!(covers(ty) && per_task > 0);
        let tile_bytes = x.blocks * record_bytes(ty);
        let tiles = rows.div_ceil(TILE);
        assert!(x.blocks > 0 && data.len() == tiles * tile_bytes);
        assert_eq!(y.len(), x.tokens * rows);
        // Tasks write disjoint columns of every row of `y`, which no slice split expresses;
        // its address goes to each task instead (as a plain integer, so the closure is
        // `Sync`), while `y` stays borrowed mutably for the whole loop.
        let base = y.as_mut_ptr() as usize;
        (0..tiles.div_ceil(per_task))
            .into_par_iter()
            .for_each(|task| {
                let first = task * per_task;
                let last = (first + per_task).min(tiles);
                let data = &data[first * tile_bytes..last * tile_bytes];
                #[cfg(target_arch = "x86_64")]
                {
                    #[allow(unsafe_code)]
                    // SAFETY: an `Amx` is only made by `detect`, after CPUID reported AMX-TILE,
                    // AMX-BF16 and every feature `kernel::tiles` is compiled with, and Linux
                    // granted this process the tile registers; the kernel configures the tiles it
                    // uses and releases them before it returns. `base` is `y`, exclusively
                    // borrowed until every task is done, `x.tokens × rows` values (asserted
                    // above); this task writes only columns `TILE·first .. min(TILE·last, rows)`
                    // of each row, which no other task writes.
                    unsafe {
                        kernel::tiles(ty, data, first, rows, x, base as *mut f32)
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (data, base);
                    unreachable!("no Amx on this architecture")
                }
            });
    }

    /// 32 values as bf16 heads and tails (`head`, `tail`: 64 bytes each).
    fn split(self, v: &[f32; QK], head: &mut [u8], tail: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        {
            #[allow(unsafe_code)]
            // SAFETY: an `Amx` is only made after CPUID reported AVX-512 F/BW/BF16.
            unsafe {
                kernel::split(v, head, tail)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            unreachable!("no Amx on this architecture")
        }
    }
}

/// Activations laid out for AMX's `A` operand: per group of [`GROUP`] tokens and per block of
/// 32 columns, the heads' tile then the tails' tile (each token one row of 32 bf16; rows past
/// the last token zero).
pub struct AmxRows {
    tokens: usize,
    blocks: usize,
    bytes: Vec<u8>,
}

impl AmxRows {
    /// `x` holds `tokens` rows of `cols` values (a whole number of blocks). Takes an [`Amx`]:
    /// the split runs on AVX-512 BF16.
    pub fn new(amx: Amx, x: &[f32], cols: usize) -> Self {
        assert!(cols > 0 && cols.is_multiple_of(QK) && x.len().is_multiple_of(cols));
        let (tokens, blocks) = (x.len() / cols, cols / QK);
        let mut bytes = vec![0u8; tokens.div_ceil(GROUP) * blocks * 2 * OPERAND_BYTES];
        bytes
            .par_chunks_mut(blocks * 2 * OPERAND_BYTES)
            .zip(x.par_chunks(GROUP * cols))
            .for_each(|(out, rows)| {
                for (m, row) in rows.chunks_exact(cols).enumerate() {
                    for (b, v) in row.chunks_exact(QK).enumerate() {
                        let at = b * 2 * OPERAND_BYTES + m * QK * 2;
                        let (head, tail) = out[at..].split_at_mut(OPERAND_BYTES);
                        amx.split(
                            v.try_into().unwrap(),
                            &mut head[..QK * 2],
                            &mut tail[..QK * 2],
                        );
                    }
                }
            });
        Self {
            tokens,
            blocks,
            bytes,
        }
    }

    /// Group `g`'s two tiles for block `b`.
    #[cfg(target_arch = "x86_64")]
    fn tiles(&self, g: usize, b: usize) -> &[u8] {
        &self.bytes[(g * self.blocks + b) * 2 * OPERAND_BYTES..][..2 * OPERAND_BYTES]
    }
}

/// CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE; the AVX-512 parts come from std.
fn cpu_has_amx_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let edx = core::arch::x86_64::__cpuid_count(7, 0).edx;
        edx & (1 << 22) != 0
            && edx & (1 << 24) != 0
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_os = "linux")]
mod os {
    /// `arch_prctl` codes from Linux's `asm/prctl.h` and the XSAVE component of tile data.
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;

    /// Asks Linux for the tile registers (once per process; every thread may then use them).
    pub fn request_tiles() -> bool {
        #[allow(unsafe_code)]
        // SAFETY: a plain system call with two integer arguments; it touches no memory of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        };
        if r != 0 {
            tracing::debug!(target: "worker::engine", error = %std::io::Error::last_os_error(), "AMX tile registers refused");
        }
        r == 0
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    pub fn request_tiles() -> bool {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod kernel {
    use core::arch::asm;
    use core::arch::x86_64::*;

    use pulp::bytemuck::cast;

    use super::{AmxRows, GROUP, GgmlType, OPERAND_BYTES, QK, TILE, header_bytes, record_bytes};

    /// `LDTILECFG`'s 64 bytes (palette 1), every tile 16 × 64 bytes: tmm0–tmm3 the sums of
    /// up to [`GROUPS`] token groups (16 tokens × 16 rows of `f32`), tmm4/tmm5 an activation
    /// block's heads and tails, tmm6/tmm7 the weight block's.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    const CONFIG: TileConfig = {
        let mut colsb = [0u16; 16];
        let mut rows = [0u8; 16];
        let mut i = 0;
        while i < 8 {
            colsb[i] = 64;
            rows[i] = 16;
            i += 1;
        }
        TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb,
            rows,
        }
    };

    /// Both 16 × 64-byte tiles of one block of a tile's weights: row `j` holds, for each of
    /// the 16 rows, columns `2j` and `2j + 1` as bf16 (heads, then tails).
    type Weights = [u8; 2 * OPERAND_BYTES];

    /// 32 `f32`s as bf16 heads (nearest even) and tails (the bf16 of what the head leaves,
    /// exact in `f32`), 64 bytes each.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn heads_tails(v: [__m512; 2]) -> ([u8; 64], [u8; 64]) {
        let head = _mm512_cvtne2ps_pbh(v[1], v[0]);
        let h: [__m256bh; 2] = cast(head);
        let tail = _mm512_cvtne2ps_pbh(
            _mm512_sub_ps(v[1], _mm512_cvtpbh_ps(h[1])),
            _mm512_sub_ps(v[0], _mm512_cvtpbh_ps(h[0])),
        );
        (cast(head), cast(tail))
    }

    /// See [`super::Amx::split`].
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn split(v: &[f32; QK], head: &mut [u8], tail: &mut [u8]) {
        let halves: [[f32; 16]; 2] = cast(*v);
        let (h, t) = heads_tails([cast(halves[0]), cast(halves[1])]);
        head[..64].copy_from_slice(&h);
        tail[..64].copy_from_slice(&t);
    }

    /// The block's weights as `f32` in AMX's pair order: `(rows 0–7, rows 8–15)` of column
    /// pair `j`, each row's two columns adjacent.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn split_store(w: [__m512; 2], j: usize, out: &mut Weights) {
        let (h, t) = heads_tails(w);
        out[64 * j..][..64].copy_from_slice(&h);
        out[OPERAND_BYTES + 64 * j..][..64].copy_from_slice(&t);
    }

    /// Dequantises one record (16 rows × 32 columns) into `out`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn dequantize(ty: GgmlType, rec: &[u8], hdr: usize, out: &mut Weights) {
        let f16s = |b: &[u8]| -> __m512 {
            let h: [u8; 32] = b[..32].try_into().unwrap();
            _mm512_cvtph_ps(cast(h))
        };
        // Each row's scale twice (two columns of a pair), rows 0–7 then 8–15.
        let twice = |v: __m512| -> [__m512; 2] {
            let lo = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
            let hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
            [_mm512_permutexvar_ps(lo, v), _mm512_permutexvar_ps(hi, v)]
        };
        let d = twice(f16s(rec));
        let m = (ty == GgmlType::Q4_1).then(|| twice(f16s(&rec[32..])));
        let qs = &rec[hdr..];
        let load = |s: &[u8]| -> __m256i { cast::<[u8; 32], _>(s[..32].try_into().unwrap()) };
        // 32 quants (one column pair of 16 rows) to f32 weights.
        let weights = |q: __m256i, signed: bool| -> [__m512; 2] {
            let halves: [__m128i; 2] = cast(q);
            let f = |h: __m128i| {
                _mm512_cvtepi32_ps(if signed {
                    _mm512_cvtepi8_epi32(h)
                } else {
                    _mm512_cvtepu8_epi32(h)
                })
            };
            let q = [f(halves[0]), f(halves[1])];
            core::array::from_fn(|i| match (ty, m) {
                (GgmlType::Q4_0, _) => {
                    _mm512_mul_ps(_mm512_sub_ps(q[i], _mm512_set1_ps(8.0)), d[i])
                }
                (GgmlType::Q4_1, Some(m)) => _mm512_fmadd_ps(q[i], d[i], m[i]),
                _ => _mm512_mul_ps(q[i], d[i]),
            })
        };
        if ty == GgmlType::Q8_0 {
            for p in 0..QK / 2 {
                split_store(weights(load(&qs[32 * p..]), true), p, out);
            }
        } else {
            let nibble = _mm256_set1_epi8(0x0f);
            for j in 0..QK / 4 {
                let raw = load(&qs[32 * j..]);
                let low = _mm256_and_si256(raw, nibble);
                let high = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), nibble);
                split_store(weights(low, false), 2 * j, out);
                split_store(weights(high, false), 2 * j + 1, out);
            }
        }
    }

    /// Token groups whose sums stay in tile registers at once: each weight block loaded
    /// serves all of them.
    const GROUPS: usize = 4;

    /// Loads one weight block into tmm6 (heads) and tmm7 (tails).
    #[inline]
    fn load_weights(w: &Weights) {
        let (hi, lo) = (w.as_ptr(), w[OPERAND_BYTES..].as_ptr());
        // SAFETY: tiles configured by `tiles` (16 rows of 64 bytes); each load reads 16 × 64
        // bytes inside `w`.
        unsafe {
            asm!(
                "tileloadd tmm6, [{hi} + {s}]",
                "tileloadd tmm7, [{lo} + {s}]",
                hi = in(reg) hi, lo = in(reg) lo, s = in(reg) 64usize,
                options(nostack, readonly),
            );
        }
    }

    /// `tmm{c} += a_hi·w_hi + a_hi·w_lo + a_lo·w_hi` for one group's block (`a` its heads
    /// then tails), the weights in tmm6/tmm7.
    macro_rules! accumulate {
        ($c:literal, $a:expr) => {{
            let a: &[u8] = $a;
            assert!(a.len() >= 2 * OPERAND_BYTES);
            let (hi, lo) = (a.as_ptr(), a[OPERAND_BYTES..].as_ptr());
            // SAFETY: tiles configured by `tiles` (16 rows of 64 bytes); each load reads
            // 16 × 64 bytes inside `a`.
            unsafe {
                asm!(
                    "tileloadd tmm4, [{hi} + {s}]",
                    "tileloadd tmm5, [{lo} + {s}]",
                    concat!("tdpbf16ps tmm", $c, ", tmm4, tmm6"),
                    concat!("tdpbf16ps tmm", $c, ", tmm4, tmm7"),
                    concat!("tdpbf16ps tmm", $c, ", tmm5, tmm6"),
                    hi = in(reg) hi, lo = in(reg) lo, s = in(reg) 64usize,
                    options(nostack, readonly),
                );
            }
        }};
    }

    /// Writes `tmm{c}` (16 tokens × 16 `f32`) to 16 rows `stride` bytes apart from `p`.
    macro_rules! store {
        ($c:literal, $p:expr, $stride:expr) => {{
            let (p, stride): (*mut f32, usize) = ($p, $stride);
            // SAFETY: the caller's: 16 rows of 64 bytes, `stride` apart from `p`, are ours.
            unsafe {
                asm!(
                    concat!("tilestored [{p} + {s}], tmm", $c),
                    p = in(reg) p, s = in(reg) stride,
                    options(nostack),
                )
            }
        }};
    }

    /// See [`super::Amx::matmul`]: the tiles `data` (from tile `first` on) of a matrix of
    /// `rows` rows, every token of `x`, into `y` (`x.tokens × rows` values).
    ///
    /// # Safety
    /// The CPU features and tile permission [`super::Amx::detect`] checks; `y` valid for
    /// writes of `x.tokens × rows` values, and no one else reading or writing this call's
    /// columns of it meanwhile.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn tiles(
        ty: GgmlType,
        data: &[u8],
        first: usize,
        rows: usize,
        x: &AmxRows,
        y: *mut f32,
    ) {
        let blocks = x.blocks;
        // One dequantised tile per pool thread, kept between products (zeroing a fresh one
        // per task cost as much as the AMX loads of a small product).
        thread_local! {
            static SCRATCH: core::cell::RefCell<Vec<Weights>> = const { core::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|weights| {
            if weights.len() < blocks {
                weights.resize(blocks, [0; 2 * OPERAND_BYTES]);
            }
            // SAFETY: the caller's contract, passed on.
            unsafe { tiles_with(ty, data, first, rows, x, y, &mut weights[..blocks]) }
        });
    }

    /// [`tiles`] with a scratch tile of `x.blocks` blocks.
    ///
    /// # Safety
    /// As [`tiles`].
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn tiles_with(
        ty: GgmlType,
        data: &[u8],
        first: usize,
        rows: usize,
        x: &AmxRows,
        y: *mut f32,
        weights: &mut [Weights],
    ) {
        let (rb, hdr, n) = (record_bytes(ty), header_bytes(ty), x.tokens);
        let blocks = weights.len();
        let mut sums = [0f32; GROUP * TILE];
        // SAFETY: `CONFIG` is a valid palette-1 configuration, 64-byte aligned.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        for (i, tile) in data.chunks_exact(blocks * rb).enumerate() {
            let r0 = (first + i) * TILE;
            let width = TILE.min(rows - r0);
            for (rec, w) in tile.chunks_exact(rb).zip(weights.iter_mut()) {
                dequantize(ty, rec, hdr, w);
            }
            let groups = n.div_ceil(GROUP);
            for chunk in (0..groups).step_by(GROUPS) {
                let here = (groups - chunk).min(GROUPS);
                // SAFETY: zeroes the sum tiles, configured above.
                unsafe {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    )
                };
                for (b, w) in weights.iter().enumerate() {
                    load_weights(w);
                    accumulate!("0", x.tiles(chunk, b));
                    if here > 1 {
                        accumulate!("1", x.tiles(chunk + 1, b));
                    }
                    if here > 2 {
                        accumulate!("2", x.tiles(chunk + 2, b));
                    }
                    if here > 3 {
                        accumulate!("3", x.tiles(chunk + 3, b));
                    }
                }
                for k in 0..here {
                    let g = chunk + k;
                    let tokens = (n - g * GROUP).min(GROUP);
                    // A whole 16 × 16 block goes straight to `y` (rows `4·rows` bytes
                    // apart); an edge one through `sums`.
                    let whole = tokens == GROUP && width == TILE;
                    let (p, stride) = if whole {
                        (y.wrapping_add(g * GROUP * rows + r0), 4 * rows)
                    } else {
                        (sums.as_mut_ptr(), 4 * TILE)
                    };
                    match k {
                        0 => store!("0", p, stride),
                        1 => store!("1", p, stride),
                        2 => store!("2", p, stride),
                        _ => store!("3", p, stride),
                    }
                    if !whole {
                        for t in 0..tokens {
                            let src = &sums[t * TILE..t * TILE + width];
                            // SAFETY: row `g·16 + t` < n of `y`, columns r0..r0 + width ≤ rows:
                            // inside `y` and this call's columns (the caller's contract).
                            unsafe {
                                core::ptr::copy_nonoverlapping(
                                    src.as_ptr(),
                                    y.add((g * GROUP + t) * rows + r0),
                                    width,
                                )
                            };
                        }
                    }
                }
            }
        }
        // SAFETY: releases the tiles configured above; nothing of ours uses them after this.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_keeps_sixteen_bits() {
        let Some(amx) = Amx::detect() else {
            // Then no product takes AMX (`qmatmul`'s tests check the choice).
            assert!(!cpu_has_amx_bf16() || !os::request_tiles());
            return;
        };
        let mut v = [0f32; QK];
        for (i, v) in v.iter_mut().enumerate() {
            *v = [1.0f32, -2.71e3, 1e-3, 65504.0, 0.1, -7.3e-5, 0.0, 1.0 / 3.0][i % 8]
                * (1.0 + i as f32 / 7.0);
        }
        let (mut head, mut tail) = ([0u8; 64], [0u8; 64]);
        amx.split(&v, &mut head, &mut tail);
        let bf = |b: &[u8], i: usize| {
            f32::from_bits(u32::from(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])) << 16)
        };
        for (i, &v) in v.iter().enumerate() {
            let (h, t) = (bf(&head, i), bf(&tail, i));
            assert!((h - v).abs() <= v.abs() * 2f32.powi(-8), "{v}: head {h}");
            assert!(
                (h + t - v).abs() <= v.abs() * 2f32.powi(-16),
                "{v}: {h} + {t}"
            );
        }
    }
}
