// SPDX-License-Identifier: GPL-2.0

//! SQ8 (8-bit scalar-quantized) search: the quantizer, the encoder, the
//! query's integer weights and the integer dot product of a row's `u8`
//! codes with them, and the order keys built from it.
//!
//! A quantized row stores, per dimension, `c = round((x - lo) / step)` in
//! `0..=255`. For a query `q`, `q.x ~ sum(q lo) + sum(q step c)`: the first
//! sum is the same for every row, so rows are ordered by `sum(w c)` with
//! `w = round(q step S)` for a scale `S` that keeps the sum inside `i32`
//! (`|w| <= i32::MAX / (255 * len)`). That orders rows with no float
//! arithmetic per row; exact distances come from re-ranking the best
//! candidates in float32. Measured with the HNSW benchmark's walk
//! (`userland/vexfs-hnsw-bench/src/sq8.rs`): 2.9x hnswlib's queries/s on
//! 384-d MiniLM vectors at the same recall.
//!
//! Both paths add in `i32` with wrap-around, so they agree bit for bit for
//! any input, even one whose sum overflows.

use super::{bits_of_order_key, order_key_bits, NormSq, Path, ONE_BITS};

/// Codes and weights are processed in blocks of this many values: rows of
/// codes are padded with zeros to a multiple of it.
pub const SQ8_BLOCK: usize = 32;

/// `sum(weights[i] * codes[i])` over `codes.len()` values, wrapping in
/// `i32`. The contract is `codes.len()` a multiple of [`SQ8_BLOCK`] and
/// `weights.len() >= codes.len()` (`debug_assert!`ed); without it the
/// result is 0 and nothing is read out of bounds.
///
/// # Safety
///
/// The CPU must support `path`; in the kernel the caller owns the FPU
/// (the AVX2 path uses vector registers).
pub unsafe fn sq8_dot(path: Path, weights: &[i16], codes: &[u8]) -> i32 {
    let fits = codes.len().is_multiple_of(SQ8_BLOCK) && weights.len() >= codes.len();
    debug_assert!(fits);
    if !fits || codes.is_empty() {
        return 0;
    }
    match path {
        Path::Scalar => scalar_dot(weights, codes),
        // SAFETY: the caller's CPU has AVX2 (its path); both slices hold
        // `codes.len()` values, a multiple of the block (checked above).
        Path::Avx2 | Path::Avx512 => unsafe { avx2_dot(weights, codes) },
    }
}

fn scalar_dot(weights: &[i16], codes: &[u8]) -> i32 {
    let mut sum = 0i32;
    for (&w, &c) in weights.iter().zip(codes) {
        sum = sum.wrapping_add(i32::from(w) * i32::from(c));
    }
    sum
}

/// # Safety
///
/// AVX2; `codes.len()` is a positive multiple of [`SQ8_BLOCK`] and
/// `weights.len() >= codes.len()`.
unsafe fn avx2_dot(weights: &[i16], codes: &[u8]) -> i32 {
    let blocks = codes.len() / SQ8_BLOCK;
    let sum: i32;
    // SAFETY: each block reads 32 code bytes and 32 weights (64 bytes)
    // inside the slices (`blocks * 32 <= codes.len() <= weights.len()`);
    // AVX2 as the caller guarantees; only the named registers change.
    unsafe {
        avx2_asm!(
            "vpxor ymm0, ymm0, ymm0",
            "vpxor ymm1, ymm1, ymm1",
            "2:",
            // 16 codes widened to i16, times 16 weights, summed in pairs
            // into 8 i32 lanes; twice per block.
            "vpmovzxbw ymm2, xmmword ptr [{c}]",
            "vpmovzxbw ymm3, xmmword ptr [{c} + 16]",
            "vpmaddwd ymm2, ymm2, ymmword ptr [{w}]",
            "vpmaddwd ymm3, ymm3, ymmword ptr [{w} + 32]",
            "vpaddd ymm0, ymm0, ymm2",
            "vpaddd ymm1, ymm1, ymm3",
            "add {c}, 32",
            "add {w}, 64",
            "dec {n}",
            "jnz 2b",
            "vpaddd ymm0, ymm0, ymm1",
            "vextracti128 xmm1, ymm0, 1",
            "vpaddd xmm0, xmm0, xmm1",
            "vpshufd xmm1, xmm0, 0x4e",
            "vpaddd xmm0, xmm0, xmm1",
            "vpshufd xmm1, xmm0, 0xb1",
            "vpaddd xmm0, xmm0, xmm1",
            "vmovd {sum:e}, xmm0",
            "vzeroupper",
            c = inout(reg) codes.as_ptr() => _,
            w = inout(reg) weights.as_ptr() => _,
            n = inout(reg) blocks => _,
            sum = out(reg) sum,
        );
    }
    sum
}

/// `asm!` for the quantizer's scalar SSE code, which uses xmm0-xmm7.
macro_rules! sq8_asm {
    ($($args:tt)*) => {
        vector_asm!(["xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7"] $($args)*)
    };
}

/// Bits of `f32::MAX` and `f32::MIN`: the bounds before any row, for
/// [`sq8_widen`] (`lo` starts at the first, `hi` at the second).
pub const SQ8_BOUNDS_EMPTY: (u32, u32) = (0x7f7f_ffff, 0xff7f_ffff);

/// Part of the observed range added below and above it when a quantizer
/// is trained, as a shift (1/8 each side), so that vectors a little
/// outside the rows seen so far still get exact codes.
const SQ8_HEADROOM_SHIFT: u32 = 3;

/// Bits of `1 / sqrt(norm_sq)`, the factor that makes a row of that
/// squared norm a unit vector (cosine collections quantize unit rows);
/// bits of 0.0 for a zero row.
///
/// # Safety
///
/// In the kernel the caller owns the FPU (SSE registers).
pub unsafe fn sq8_unit_scale(norm_sq: NormSq) -> u32 {
    if norm_sq.0 & !SIGN_BIT == 0 {
        return 0;
    }
    let out: u32;
    // SAFETY: registers only.
    unsafe {
        sq8_asm!(
            "movd xmm0, {n:e}",
            "sqrtss xmm0, xmm0",
            "mov {t:e}, 0x3f800000",
            "movd xmm1, {t:e}",
            "divss xmm1, xmm0",
            "movd {out:e}, xmm1",
            n = in(reg) norm_sq.0,
            t = out(reg) _,
            out = lateout(reg) out,
        );
    }
    out
}

/// Sign bit of an f32.
const SIGN_BIT: u32 = 0x8000_0000;

/// Widens the per-dimension bounds `lo`/`hi` to hold `row` times the
/// factor whose bits are `scale` (1.0 = [`ONE_BITS`], or
/// [`sq8_unit_scale`]). Dimensions past the shortest slice are left.
///
/// # Safety
///
/// In the kernel the caller owns the FPU.
pub unsafe fn sq8_widen(row: &[f32], scale: u32, lo: &mut [f32], hi: &mut [f32]) {
    let n = row.len().min(lo.len()).min(hi.len());
    if n == 0 {
        return;
    }
    // SAFETY: reads `n` values of `row`, reads and writes `n` of `lo` and
    // `hi`, all within the slices.
    unsafe {
        sq8_asm!(
            "movd xmm7, {s:e}",
            "2:",
            "movss xmm0, dword ptr [{x}]",
            "mulss xmm0, xmm7",
            "movss xmm1, dword ptr [{lo}]",
            "minss xmm1, xmm0",
            "movss dword ptr [{lo}], xmm1",
            "movss xmm2, dword ptr [{hi}]",
            "maxss xmm2, xmm0",
            "movss dword ptr [{hi}], xmm2",
            "add {x}, 4",
            "add {lo}, 4",
            "add {hi}, 4",
            "dec {n}",
            "jnz 2b",
            s = in(reg) scale,
            x = inout(reg) row.as_ptr() => _,
            lo = inout(reg) lo.as_mut_ptr() => _,
            hi = inout(reg) hi.as_mut_ptr() => _,
            n = inout(reg) n => _,
        );
    }
}

/// Parts per thousand of the values left out below and above the bounds a
/// quantizer is trained on (Qdrant's `quantile` 0.99): a few vectors far
/// from the others then get clamped codes instead of stretching every
/// dimension's 256 codes over their range.
pub const SQ8_TAIL_PER_MILLE: usize = 5;

/// Rows a quantizer's bounds are taken from at most (evenly spaced).
pub const SQ8_SAMPLE_ROWS: usize = 1024;

/// Bits of the values at the lower and upper [`SQ8_TAIL_PER_MILLE`]
/// quantiles of the f32 values given by their [`order_key_bits`] (which
/// it reorders): integer work only. `None` for no values.
pub fn sq8_quantiles(keys: &mut [u32]) -> Option<(u32, u32)> {
    let last = keys.len().checked_sub(1)?;
    let lo = last * SQ8_TAIL_PER_MILLE / 1000;
    let hi = last - lo;
    let (_, &mut low, _) = keys.select_nth_unstable(lo);
    let (_, &mut high, _) = keys.select_nth_unstable(hi);
    Some((bits_of_order_key(low), bits_of_order_key(high)))
}

/// `out[i] = row[i] * scale` (the factor's bits, as for [`sq8_widen`]),
/// then each as its [`order_key_bits`], for [`sq8_quantiles`]. Values past
/// the shorter slice are left.
///
/// # Safety
///
/// In the kernel the caller owns the FPU.
pub unsafe fn sq8_scaled_keys(row: &[f32], scale: u32, out: &mut [u32]) {
    let n = row.len().min(out.len());
    if n == 0 {
        return;
    }
    // SAFETY: reads `n` values of `row`, writes `n` of `out`.
    unsafe {
        sq8_asm!(
            "movd xmm7, {s:e}",
            "2:",
            "movss xmm0, dword ptr [{x}]",
            "mulss xmm0, xmm7",
            "movss dword ptr [{o}], xmm0",
            "add {x}, 4",
            "add {o}, 4",
            "dec {n}",
            "jnz 2b",
            s = in(reg) scale,
            x = inout(reg) row.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) n => _,
        );
    }
    for k in out.iter_mut().take(n) {
        *k = order_key_bits(*k);
    }
}

/// A trained quantizer's summary: what encoding and queries need besides
/// its per-dimension arrays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sq8Scale {
    /// Rows' L2 terms `|step * c|^2` are stored times `2^term_exp`, which
    /// keeps the largest possible one below `2^31`.
    pub term_exp: i32,
    /// Bits of that largest possible term, `sum((255 * step)^2)`.
    pub term_bound: u32,
}

/// Trains a quantizer on the observed bounds `lo`/`hi` (each `dim` long,
/// `lo <= hi`): writes `quant` (`3 * dim` values: offsets, steps, inverse
/// steps) so that codes 0..=255 span the bounds widened by 1/8 of their
/// range on each side. A dimension with no range gets a tiny step (its
/// value codes 0). Bounds are first clipped to `+-2^60`, so that no step,
/// offset or code computation overflows whatever the (finite) rows:
/// values beyond get clamped codes. `None` if the slices do not fit.
///
/// # Safety
///
/// In the kernel the caller owns the FPU.
pub unsafe fn sq8_train(lo: &[f32], hi: &[f32], quant: &mut [f32]) -> Option<Sq8Scale> {
    let dim = lo.len();
    if dim == 0 || hi.len() != dim || dim.checked_mul(3) != Some(quant.len()) {
        return None;
    }
    // 1 + 2 / 8 of the range, over 255 steps; the margin is 1/8.
    let margin_bits: u32 = (127 - SQ8_HEADROOM_SHIFT) << 23;
    let bound: u32;
    // SAFETY: reads `dim` values of `lo` and `hi`, writes `3 * dim` of
    // `quant` (checked above).
    unsafe {
        sq8_asm!(
            "movd xmm6, {m:e}",
            // 255.0, 1.25, 1e-30 (smallest step), 1.0
            "mov {t:e}, 0x437f0000",
            "movd xmm5, {t:e}",
            "mov {t:e}, 0x3fa00000",
            "movd xmm4, {t:e}",
            "mov {t:e}, 0x0da24260",
            "movd xmm3, {t:e}",
            "xorps xmm7, xmm7",
            "2:",
            // Clip both bounds to [-2^60, 2^60].
            "mov {t:e}, 0x5d800000",
            "movd xmm2, {t:e}",
            "mov {t:e}, 0xdd800000",
            "movd xmm1, {t:e}",
            "movss xmm0, dword ptr [{hi}]",
            "minss xmm0, xmm2",
            "maxss xmm0, xmm1",
            "movss xmm2, dword ptr [{lo}]",
            "maxss xmm2, xmm1",
            "mov {t:e}, 0x5d800000",
            "movd xmm1, {t:e}",
            "minss xmm2, xmm1",
            "movaps xmm1, xmm2",
            "subss xmm0, xmm1",
            // offset = lo - range / 8
            "movaps xmm2, xmm0",
            "mulss xmm2, xmm6",
            "subss xmm1, xmm2",
            "movss dword ptr [{q}], xmm1",
            // step = max(range * 1.25 / 255, 1e-30)
            "mulss xmm0, xmm4",
            "divss xmm0, xmm5",
            "maxss xmm0, xmm3",
            "movss dword ptr [{q} + {d}], xmm0",
            // inverse step
            "mov {t:e}, 0x3f800000",
            "movd xmm1, {t:e}",
            "divss xmm1, xmm0",
            "movss dword ptr [{q} + {d2}], xmm1",
            // bound += (255 * step)^2
            "mulss xmm0, xmm5",
            "mulss xmm0, xmm0",
            "addss xmm7, xmm0",
            "add {lo}, 4",
            "add {hi}, 4",
            "add {q}, 4",
            "dec {n}",
            "jnz 2b",
            "movd {b:e}, xmm7",
            m = in(reg) margin_bits,
            t = out(reg) _,
            lo = inout(reg) lo.as_ptr() => _,
            hi = inout(reg) hi.as_ptr() => _,
            q = inout(reg) quant.as_mut_ptr() => _,
            d = in(reg) dim.wrapping_mul(4),
            d2 = in(reg) dim.wrapping_mul(8),
            n = inout(reg) dim => _,
            b = lateout(reg) bound,
        );
    }
    Some(Sq8Scale {
        term_exp: exp_below(bound, 31),
        term_bound: bound,
    })
}

/// The largest `e` (within +-100) such that `x * 2^e < 2^limit_log2` for
/// the non-negative f32 whose bits are `bits` (integer work on the
/// exponent: `x < 2^(E + 1)`).
fn exp_below(bits: u32, limit_log2: i32) -> i32 {
    let biased = ((bits >> 23) & 0xff) as i32;
    if biased == 0 {
        // Zero or subnormal: any scale fits.
        return 100;
    }
    // Wrapping: the operands are small, and the kernel build has no panic
    // paths here.
    limit_log2
        .wrapping_sub(biased.wrapping_sub(127))
        .wrapping_sub(1)
        .clamp(-100, 100)
}

/// What [`sq8_encode`] tells about a row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sq8Coded {
    /// `|step * c|^2 * 2^term_exp`, rounded: the row's L2 term.
    pub term: u32,
    /// A value lay outside the quantizer's range by more than half a
    /// step, so its code was clamped to 0 or 255.
    pub clamped: bool,
}

/// Encodes `row` times the factor whose bits are `scale` with the
/// quantizer `quant` (from [`sq8_train`], `3 * row.len()` values) into
/// `codes[..row.len()]`: `c = round((x - offset) / step)` clamped to
/// 0..=255. Codes past the row are left as they are. `None` if the
/// slices do not fit.
///
/// # Safety
///
/// In the kernel the caller owns the FPU.
pub unsafe fn sq8_encode(
    row: &[f32],
    scale: u32,
    quant: &[f32],
    q: Sq8Scale,
    codes: &mut [u8],
) -> Option<Sq8Coded> {
    let dim = row.len();
    if dim == 0 || dim.checked_mul(3) != Some(quant.len()) || codes.len() < dim {
        return None;
    }
    let (term, excess): (u64, u32);
    // SAFETY: reads `dim` values of `row`, `3 * dim` of `quant`, writes
    // `dim` bytes of `codes` (checked above).
    unsafe {
        sq8_asm!(
            "movd xmm7, {s:e}",
            "mov {t:e}, 0x437f0000",
            "movd xmm6, {t:e}",
            "xorps xmm5, xmm5",
            "xorps xmm4, xmm4",
            "xorps xmm3, xmm3",
            "2:",
            "movss xmm0, dword ptr [{x}]",
            "mulss xmm0, xmm7",
            "subss xmm0, dword ptr [{q}]",
            "mulss xmm0, dword ptr [{q} + {d2}]",
            "movaps xmm1, xmm0",
            "maxss xmm0, xmm5",
            "minss xmm0, xmm6",
            "cvtss2si {t:e}, xmm0",
            "mov byte ptr [{c}], {t:l}",
            // How far outside the range: |u - clamp(u)|.
            "subss xmm1, xmm0",
            "mulss xmm1, xmm1",
            "maxss xmm4, xmm1",
            // term += (c * step)^2
            "cvtsi2ss xmm2, {t:e}",
            "mulss xmm2, dword ptr [{q} + {d}]",
            "mulss xmm2, xmm2",
            "addss xmm3, xmm2",
            "add {x}, 4",
            "add {q}, 4",
            "add {c}, 1",
            "dec {n}",
            "jnz 2b",
            // term * 2^term_exp, rounded, as a 64-bit integer.
            "movd xmm2, {e:e}",
            "mulss xmm3, xmm2",
            "cvtss2si {term}, xmm3",
            "movd {ex:e}, xmm4",
            s = in(reg) scale,
            t = out(reg) _,
            x = inout(reg) row.as_ptr() => _,
            q = inout(reg) quant.as_ptr() => _,
            c = inout(reg) codes.as_mut_ptr() => _,
            d = in(reg) dim.wrapping_mul(4),
            d2 = in(reg) dim.wrapping_mul(8),
            n = inout(reg) dim => _,
            e = in(reg) pow2_bits(q.term_exp),
            term = lateout(reg) term,
            ex = lateout(reg) excess,
        );
    }
    Some(Sq8Coded {
        // The bound keeps it below 2^31; a NaN or overflow (huge rows)
        // converts to i64::MIN, kept as 0.
        term: u32::try_from(term).unwrap_or(0),
        // (excess)^2 > 0.25: non-negative f32s order as their bits.
        clamped: excess > 0x3e80_0000,
    })
}

/// Bits of `2^e` for `e` in -126..=127 (clamped).
fn pow2_bits(e: i32) -> u32 {
    ((e.clamp(-126, 127) + 127) as u32) << 23
}

/// How a query's integer dot product with a row's codes becomes the row's
/// order key (smaller is nearer), for [`sq8_query`]'s weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sq8Keys {
    /// L2: the key also counts the row's term.
    l2: bool,
    /// L2: the rows' terms are scaled by `2^term_shift` to the weights'
    /// scale (a right shift when negative).
    term_shift: i32,
}

impl Sq8Keys {
    /// The order key of a row whose codes give `dot` with the weights and
    /// whose L2 term is `term`.
    ///
    /// Cosine and dot: `x ~ offset + step * c`, so `q.x` is a constant plus
    /// `dot / 2^k`: a larger dot is nearer. L2: with `q' = q - offset`,
    /// `|q - x|^2 ~ |q'|^2 - 2 q'.(step * c) + |step * c|^2`, and the first
    /// is the same for every row; the weights' exponent keeps the rest
    /// within `+-2^31`.
    #[inline(always)]
    pub fn key(self, dot: i32, term: u32) -> u32 {
        if !self.l2 {
            return (i64::from(i32::MAX) - i64::from(dot)) as u32;
        }
        let term = i64::from(term);
        let shift = self.term_shift.unsigned_abs().min(31);
        let t = if self.term_shift >= 0 {
            term << shift
        } else {
            term >> shift
        };
        // |t| < 2^62 and |dot| < 2^31: no overflow.
        t.wrapping_sub(2 * i64::from(dot))
            .wrapping_add(1 << 31)
            .clamp(0, i64::from(u32::MAX)) as u32
    }
}

/// Sets `weights` (padded with zeros to its length, at least the row's)
/// to the integer weights of `query` for rows coded with `quant` and
/// `scale` (from [`sq8_train`]), `l2` for a squared-L2 collection, and
/// returns how dot products become keys. The weights are
/// `round(q' * step * 2^k)` with `q' = q` (cosine, dot: the order does not
/// depend on the query's norm) or `q - offset` (L2), for the largest `k`
/// that keeps every weight within `i16` and a sum over `weights.len()`
/// codes within `i32` (and, for L2, the keys within `+-2^31`). `None` if
/// the slices do not fit.
///
/// # Safety
///
/// In the kernel the caller owns the FPU.
pub unsafe fn sq8_query(
    query: &[f32],
    quant: &[f32],
    scale: Sq8Scale,
    l2: bool,
    weights: &mut [i16],
) -> Option<Sq8Keys> {
    let dim = query.len();
    let len = weights.len();
    if dim == 0
        || dim.checked_mul(3) != Some(quant.len())
        || len < dim
        || !len.is_multiple_of(SQ8_BLOCK)
    {
        return None;
    }
    let offset_mul: u32 = if l2 { ONE_BITS } else { 0 };
    let (largest, norm): (u32, u32);
    // SAFETY: reads `dim` values of `query` and `3 * dim` of `quant`
    // (checked above); registers otherwise.
    unsafe {
        sq8_asm!(
            "movd xmm7, {om:e}",
            "xorps xmm6, xmm6",
            "xorps xmm5, xmm5",
            "mov {t:e}, 0x7fffffff",
            "movd xmm4, {t:e}",
            "2:",
            // q' = q - offset * (1 or 0); |q'|^2; max |q' * step|
            "movss xmm1, dword ptr [{q}]",
            "mulss xmm1, xmm7",
            "movss xmm0, dword ptr [{x}]",
            "subss xmm0, xmm1",
            "movaps xmm2, xmm0",
            "mulss xmm2, xmm2",
            "addss xmm5, xmm2",
            "mulss xmm0, dword ptr [{q} + {d}]",
            "andps xmm0, xmm4",
            "maxss xmm6, xmm0",
            "add {x}, 4",
            "add {q}, 4",
            "dec {n}",
            "jnz 2b",
            "movd {a:e}, xmm6",
            "movd {v:e}, xmm5",
            om = in(reg) offset_mul,
            t = out(reg) _,
            x = inout(reg) query.as_ptr() => _,
            q = inout(reg) quant.as_ptr() => _,
            d = in(reg) dim.wrapping_mul(4),
            n = inout(reg) dim => _,
            a = lateout(reg) largest,
            v = lateout(reg) norm,
        );
    }
    // |w| <= limit keeps each weight an i16 and the sum of `len` products
    // with codes up to 255 an i32.
    // (No panic paths in the kernel: a checked division.)
    let limit = (i32::MAX as usize)
        .checked_div(len.saturating_mul(255))
        .unwrap_or(0)
        .min(i16::MAX as usize) as u32;
    let mut k = exp_below(largest, limit.max(1).ilog2() as i32);
    if l2 {
        // 2^k (|q'|^2 + bound) < 2^30, with the sum's exponent bounded by
        // the larger of the two (each below 2^(E + 1), so the sum below
        // 2^(E + 2)).
        let e = exp_below(norm.max(scale.term_bound), 30).wrapping_sub(1);
        k = k.min(e);
    }
    let mul = pow2_bits(k);
    // SAFETY: as above, and writes `dim` values of `weights`.
    unsafe {
        sq8_asm!(
            "movd xmm7, {om:e}",
            "movd xmm6, {m:e}",
            "2:",
            "movss xmm1, dword ptr [{q}]",
            "mulss xmm1, xmm7",
            "movss xmm0, dword ptr [{x}]",
            "subss xmm0, xmm1",
            "mulss xmm0, dword ptr [{q} + {d}]",
            "mulss xmm0, xmm6",
            "cvtss2si {t:e}, xmm0",
            // Within i16 by the choice of k; clamp for NaN or overflow
            // (0x80000000), which only a huge query could cause.
            "mov {u:e}, -32767",
            "cmp {t:e}, {u:e}",
            "cmovl {t:e}, {u:e}",
            "mov {u:e}, 32767",
            "cmp {t:e}, {u:e}",
            "cmovg {t:e}, {u:e}",
            "mov word ptr [{w}], {t:x}",
            "add {x}, 4",
            "add {q}, 4",
            "add {w}, 2",
            "dec {n}",
            "jnz 2b",
            om = in(reg) offset_mul,
            m = in(reg) mul,
            t = out(reg) _,
            u = out(reg) _,
            x = inout(reg) query.as_ptr() => _,
            q = inout(reg) quant.as_ptr() => _,
            w = inout(reg) weights.as_mut_ptr() => _,
            d = in(reg) dim.wrapping_mul(4),
            n = inout(reg) dim => _,
        );
    }
    if let Some(pad) = weights.get_mut(dim..) {
        pad.fill(0);
    }
    Some(Sq8Keys {
        l2,
        term_shift: k.wrapping_sub(scale.term_exp),
    })
}
