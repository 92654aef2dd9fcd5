// SPDX-License-Identifier: GPL-2.0

//! The integer kernel of SQ8 (8-bit scalar-quantized) search: the dot
//! product of a row's `u8` codes with a query's `i16` weights.
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

use super::Path;

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
        core::arch::asm!(
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
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
            options(nostack, readonly),
        );
    }
    sum
}
