// SPDX-License-Identifier: GPL-2.0

//! Blocked kernels for exact search: distances from several queries to
//! several rows at once.
//!
//! A per-row kernel loads a query value and a row value for every
//! multiply-add and ends each distance with a horizontal sum. A tile of
//! [`TILE_QUERIES`] queries by [`TILE_ROWS`] rows keeps one accumulator per
//! pair in registers: each step loads four row vectors and two query
//! vectors for eight multiply-adds, and the eight sums are reduced together
//! with three `vhaddps` per query. The tail of a row (`dim % 8` values) is
//! read with a masked load, which touches no byte past the row.
//!
//! Each pair's sum is accumulated and reduced in an order that depends on
//! `dim` only, never on the pair's place in the tile or on the other pairs,
//! so a distance is the same bits whatever batch it was computed in. It
//! differs from the per-row kernels of the same path in the last bits (a
//! different summation order) and agrees with them within the same error
//! bound.
//!
//! [`Path::Scalar`] computes each pair with the scalar per-row kernel, so it
//! is bit-identical to it. [`Path::Avx512`] CPUs run the 256-bit tile (they
//! have AVX2 and FMA): a 512-bit tile would halve the steps but could not be
//! checked on the machines this is developed on (no AVX-512, and QEMU's TCG
//! does not emulate it).
//!
//! A packed, GEMM-style kernel (eight rows transposed into a `[dim][8]`
//! panel, each query value broadcast against it, tiles of up to 12
//! queries by 8 rows, no horizontal sums) was written and measured on
//! 2026-12-02 and not kept: natively it ran at 0.56-0.99x of this tile on
//! GloVe (D = 50) and a synthetic D = 768 set, because a call sees the rows
//! of one 16 KiB chunk (81 rows at D = 50, 5 at D = 768), too few to pay
//! for the packing; in the TCG guest at 0.17-0.31x, where each broadcast
//! and shuffle is an emulated instruction of its own. It would pay only
//! with rows stored already packed, over long runs.
//!
//! Like the rest of the module: no f32 arithmetic in Rust, everything in
//! `asm!`, the caller owns the FPU in the kernel.

use super::{cosine_finish, scalar, Metric, NormSq, Path, SIGN_BIT};

/// Queries per register tile.
pub const TILE_QUERIES: usize = 2;
/// Rows per register tile.
pub const TILE_ROWS: usize = 4;

/// What a tile accumulates per pair.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TileSum {
    /// `-(q.r)`: the dot metric, and cosine's numerator.
    NegDot,
    /// `sum((q_i - r_i)^2)`, without the `|q|^2 + |r|^2 - 2 q.r` shortcut,
    /// which cancels catastrophically between near vectors.
    L2,
}

/// Distances from every query to every row: `out[i * stride + j]` is the
/// distance of `metric` between query `i` (`queries[i * dim..][..dim]`) and
/// row `j` of `base`, for `i < queries.len() / dim`, `j < rows`.
///
/// For [`Metric::Cosine`], `query_norms[i]` and `row_norms[j]` are the
/// vectors' [`norm_sq`](super::norm_sq) and the result equals
/// [`cosine_distances_with_norms`](super::cosine_distances_with_norms)
/// within the error bound; the other metrics ignore both slices.
///
/// The contract is `dim > 0`, `base.len() >= rows * dim`, `stride >= rows`,
/// `out.len() >= (nq - 1) * stride + rows` and, for cosine, norms for every
/// query and row (`debug_assert!`ed). Without it nothing is read or written
/// out of bounds: the call returns without writing.
///
/// # Safety
///
/// The CPU must support `path`; in the kernel the caller owns the FPU for
/// the whole call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn block_distances(
    path: Path,
    metric: Metric,
    dim: usize,
    queries: &[f32],
    query_norms: &[NormSq],
    base: &[f32],
    row_norms: &[NormSq],
    rows: usize,
    out: &mut [f32],
    stride: usize,
) {
    let nq = queries.len().checked_div(dim).unwrap_or(0);
    let fits = dim > 0
        && nq > 0
        && stride >= rows
        && rows.checked_mul(dim).is_some_and(|n| base.len() >= n)
        && (nq - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(rows))
            .is_some_and(|n| out.len() >= n)
        && (metric != Metric::Cosine || (query_norms.len() >= nq && row_norms.len() >= rows));
    debug_assert!(fits);
    if !fits || rows == 0 {
        return;
    }
    let sum = if metric == Metric::L2 {
        TileSum::L2
    } else {
        TileSum::NegDot
    };
    // SAFETY: the slices hold `nq` queries, `rows` rows and every output
    // (checked above); the CPU and the FPU are as the caller guarantees.
    unsafe {
        match path {
            Path::Scalar => scalar_pairs(sum, dim, queries, base, rows, out, stride),
            Path::Avx2 | Path::Avx512 => tiles(sum, dim, queries, base, rows, out, stride),
        }
    }
    if metric == Metric::Cosine {
        for (i, &qn) in query_norms[..nq].iter().enumerate() {
            let out = &mut out[i * stride..i * stride + rows];
            // SAFETY: as above.
            unsafe { cosine_from_neg_dots(path, qn, &row_norms[..rows], out) };
        }
    }
}

/// Scalar path: every pair through the scalar per-row kernel.
///
/// # Safety
///
/// As for [`block_distances`], whose checks the arguments passed.
unsafe fn scalar_pairs(
    sum: TileSum,
    dim: usize,
    queries: &[f32],
    base: &[f32],
    rows: usize,
    out: &mut [f32],
    stride: usize,
) {
    // Indexing, not `chunks_exact`: the kernel build must have no panic
    // path that objtool cannot follow.
    for i in 0..queries.len() / dim {
        let q = &queries[i * dim..(i + 1) * dim];
        for j in 0..rows {
            let r = &base[j * dim..(j + 1) * dim];
            // SAFETY: SSE2 on every x86-64; the FPU is the caller's.
            let bits = unsafe {
                match sum {
                    TileSum::NegDot => scalar::neg_dot(q, r),
                    TileSum::L2 => scalar::l2(q, r),
                }
            };
            out[i * stride + j] = f32::from_bits(bits);
        }
    }
}

/// 256-bit lanes of a mask for the last `dim % 8` values: the eight words
/// from index `8 - rem` are `rem` all-ones words, then zeros.
static TAIL_MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// AVX2 path: the queries in pairs, the rows in fours. A lone last query
/// runs a one-query tile; a short last four repeats its first row, and
/// only the real pairs are stored.
///
/// # Safety
///
/// AVX2 and FMA, and as for [`block_distances`], whose checks the arguments
/// passed.
unsafe fn tiles(
    sum: TileSum,
    dim: usize,
    queries: &[f32],
    base: &[f32],
    rows: usize,
    out: &mut [f32],
    stride: usize,
) {
    let nq = queries.len() / dim;
    let rem = dim % 8;
    let mask = if rem == 0 {
        core::ptr::null()
    } else {
        TAIL_MASKS[8 - rem..].as_ptr()
    };
    let full_bytes = (dim - rem) * 4;
    let row = |j: usize| base[j * dim..][..dim].as_ptr();
    let query = |i: usize| queries[i * dim..][..dim].as_ptr();
    let mut tile = [0f32; TILE_QUERIES * TILE_ROWS];
    for i in (0..nq).step_by(TILE_QUERIES) {
        let qs = [Some(query(i)), (i + 1 < nq).then(|| query(i + 1))];
        for j in (0..rows).step_by(TILE_ROWS) {
            let last = rows - 1;
            let rs = [
                row(j),
                row((j + 1).min(last)),
                row((j + 2).min(last)),
                row((j + 3).min(last)),
            ];
            // SAFETY: each pointer starts a whole query or row of `dim`
            // values; the tile reads `full_bytes` from each and the masked
            // tail reads only the `rem` values after them.
            unsafe { avx2::tile(sum, qs, rs, full_bytes, mask, &mut tile) };
            for (qi, at) in (i..nq.min(i + TILE_QUERIES)).enumerate() {
                let n = (rows - j).min(TILE_ROWS);
                // A zip, not `copy_from_slice`: no length-mismatch panic.
                let got = &tile[qi * TILE_ROWS..][..n];
                for (o, &t) in out[at * stride + j..][..n].iter_mut().zip(got) {
                    *o = t;
                }
            }
        }
    }
}

/// Cosine distances from `-(q.r)` in `out`, in place: `1 - q.r / (|q| |r|)`
/// clamped to `[0, 2]`, exactly 1.0 when a norm is zero; the same
/// operations in the same order as the per-row cosine.
///
/// # Safety
///
/// As for [`block_distances`]; `row_norms.len() >= out.len()`.
unsafe fn cosine_from_neg_dots(
    path: Path,
    query_norm: NormSq,
    row_norms: &[NormSq],
    out: &mut [f32],
) {
    let vector = matches!(path, Path::Avx2 | Path::Avx512) && query_norm.0 & !SIGN_BIT != 0;
    let mut done = 0;
    if vector {
        let n = out.len() / 8 * 8;
        // SAFETY: AVX2 (the caller's path); `n` values of `out` and of
        // `row_norms` (as long as `out`) are read and written.
        unsafe { avx2::cosine_finish_8s(query_norm.0, row_norms.as_ptr(), out.as_mut_ptr(), n) };
        done = n;
    }
    for (o, norm) in out[done..].iter_mut().zip(&row_norms[done..]) {
        let dot = o.to_bits() ^ SIGN_BIT;
        // SAFETY: SSE2; the FPU is the caller's.
        *o = f32::from_bits(unsafe { cosine_finish((dot, query_norm.0, norm.0)) });
    }
}

mod avx2 {
    use super::TileSum;

    /// Asm text: the four rows' next 8 values into ymm8-11.
    #[rustfmt::skip]
    macro_rules! load_rows {
        () => {
            concat!(
                "vmovups ymm8, ymmword ptr [{r0} + {off}]\n",
                "vmovups ymm9, ymmword ptr [{r1} + {off}]\n",
                "vmovups ymm10, ymmword ptr [{r2} + {off}]\n",
                "vmovups ymm11, ymmword ptr [{r3} + {off}]\n",
            )
        };
    }

    /// Asm text: the four rows' last values into ymm8-11, the lanes of the
    /// mask in ymm13 only (the others zero, not read).
    #[rustfmt::skip]
    macro_rules! load_rows_masked {
        () => {
            concat!(
                "vmaskmovps ymm8, ymm13, ymmword ptr [{r0} + {off}]\n",
                "vmaskmovps ymm9, ymm13, ymmword ptr [{r1} + {off}]\n",
                "vmaskmovps ymm10, ymm13, ymmword ptr [{r2} + {off}]\n",
                "vmaskmovps ymm11, ymm13, ymmword ptr [{r3} + {off}]\n",
            )
        };
    }

    /// Asm text: with a query's values in ymm12 and four rows' in ymm8-11,
    /// adds each product into the accumulators `$a`..`$d`.
    #[rustfmt::skip]
    macro_rules! dot_step {
        ($a:literal, $b:literal, $c:literal, $d:literal) => {
            concat!(
                "vfmadd231ps ymm", $a, ", ymm12, ymm8\n",
                "vfmadd231ps ymm", $b, ", ymm12, ymm9\n",
                "vfmadd231ps ymm", $c, ", ymm12, ymm10\n",
                "vfmadd231ps ymm", $d, ", ymm12, ymm11\n",
            )
        };
    }

    /// Asm text: as [`dot_step`], the squared differences (in ymm14).
    #[rustfmt::skip]
    macro_rules! l2_step {
        ($a:literal, $b:literal, $c:literal, $d:literal) => {
            concat!(
                "vsubps ymm14, ymm8, ymm12\n",
                "vfmadd231ps ymm", $a, ", ymm14, ymm14\n",
                "vsubps ymm14, ymm9, ymm12\n",
                "vfmadd231ps ymm", $b, ", ymm14, ymm14\n",
                "vsubps ymm14, ymm10, ymm12\n",
                "vfmadd231ps ymm", $c, ", ymm14, ymm14\n",
                "vsubps ymm14, ymm11, ymm12\n",
                "vfmadd231ps ymm", $d, ", ymm14, ymm14\n",
            )
        };
    }

    /// Asm text: reduces accumulators `$a`..`$d` into the four lanes of
    /// `xmm$a` (row order), clobbering the other three. Each sum is
    /// `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))` over its lanes.
    #[rustfmt::skip]
    macro_rules! reduce4 {
        ($a:literal, $b:literal, $c:literal, $d:literal) => {
            concat!(
                "vhaddps ymm", $a, ", ymm", $a, ", ymm", $b, "\n",
                "vhaddps ymm", $c, ", ymm", $c, ", ymm", $d, "\n",
                "vhaddps ymm", $a, ", ymm", $a, ", ymm", $c, "\n",
                "vextractf128 xmm", $b, ", ymm", $a, ", 1\n",
                "vaddps xmm", $a, ", xmm", $a, ", xmm", $b, "\n",
            )
        };
    }

    /// Asm text: zeroes accumulators `$a`..`$d`.
    #[rustfmt::skip]
    macro_rules! zero4 {
        ($a:literal, $b:literal, $c:literal, $d:literal) => {
            concat!(
                "vxorps xmm", $a, ", xmm", $a, ", xmm", $a, "\n",
                "vxorps xmm", $b, ", xmm", $b, ", xmm", $b, "\n",
                "vxorps xmm", $c, ", xmm", $c, ", xmm", $c, "\n",
                "vxorps xmm", $d, ", xmm", $d, ", xmm", $d, "\n",
            )
        };
    }

    /// Asm text: the loop over whole 8-value blocks, `$body` per block at
    /// offset `{off}` up to `{end}`, then `$tail` once for the masked last
    /// values (mask in ymm13) if `{mask}` is not null.
    #[rustfmt::skip]
    macro_rules! blocks {
        ($body:expr, $tail:expr) => {
            concat!(
                "xor {off:e}, {off:e}\n",
                "test {end}, {end}\n",
                "jz 3f\n",
                "2:\n",
                load_rows!(),
                $body,
                "add {off}, 32\n",
                "cmp {off}, {end}\n",
                "jb 2b\n",
                "3:\n",
                "test {mask}, {mask}\n",
                "jz 4f\n",
                "vmovdqu ymm13, ymmword ptr [{mask}]\n",
                load_rows_masked!(),
                $tail,
                "4:\n",
            )
        };
    }

    /// Asm text of a tile of one or two queries (`{q0}`, `{q1}`) by four
    /// rows (`{r0}`..`{r3}`): `$step` over the `{end}` bytes of whole
    /// 8-value blocks (offset `{off}`), then over the masked tail if
    /// `{mask}` is not null. Accumulators: query 0 in ymm0-3, query 1 in
    /// ymm4-7, one per row; results in xmm0 (and xmm4), one lane per row.
    /// Both queries' sums of a row see the same operations in the same
    /// order, so one query alone gives the bits it gives in a pair.
    #[rustfmt::skip]
    macro_rules! tile_text {
        (one, $step:ident) => {
            concat!(
                zero4!("0", "1", "2", "3"),
                blocks!(
                    concat!(
                        "vmovups ymm12, ymmword ptr [{q0} + {off}]\n",
                        $step!("0", "1", "2", "3"),
                    ),
                    concat!(
                        "vmaskmovps ymm12, ymm13, ymmword ptr [{q0} + {off}]\n",
                        $step!("0", "1", "2", "3"),
                    )
                ),
                reduce4!("0", "1", "2", "3"),
            )
        };
        (two, $step:ident) => {
            concat!(
                zero4!("0", "1", "2", "3"),
                zero4!("4", "5", "6", "7"),
                blocks!(
                    concat!(
                        "vmovups ymm12, ymmword ptr [{q0} + {off}]\n",
                        $step!("0", "1", "2", "3"),
                        "vmovups ymm12, ymmword ptr [{q1} + {off}]\n",
                        $step!("4", "5", "6", "7"),
                    ),
                    concat!(
                        "vmaskmovps ymm12, ymm13, ymmword ptr [{q0} + {off}]\n",
                        $step!("0", "1", "2", "3"),
                        "vmaskmovps ymm12, ymm13, ymmword ptr [{q1} + {off}]\n",
                        $step!("4", "5", "6", "7"),
                    )
                ),
                reduce4!("0", "1", "2", "3"),
                reduce4!("4", "5", "6", "7"),
            )
        };
    }

    /// Asm text: stores the results of one query (xmm0) or two (xmm0,
    /// xmm4) at `{out}`, and leaves the upper register state clean.
    #[rustfmt::skip]
    macro_rules! store {
        (one) => {
            concat!(
                "vmovups xmmword ptr [{out}], xmm0\n",
                "vzeroupper\n",
            )
        };
        (two) => {
            concat!(
                "vmovups xmmword ptr [{out}], xmm0\n",
                "vmovups xmmword ptr [{out} + 16], xmm4\n",
                "vzeroupper\n",
            )
        };
    }

    /// Asm text: flips the sign bit of every lane of xmm0 and xmm4 (ymm8
    /// and `{off}` are free by then).
    #[rustfmt::skip]
    macro_rules! negate_results {
        () => {
            concat!(
                "mov {off:e}, 0x80000000\n",
                "vmovd xmm8, {off:e}\n",
                "vbroadcastss xmm8, xmm8\n",
                "vxorps xmm0, xmm0, xmm8\n",
                "vxorps xmm4, xmm4, xmm8\n",
            )
        };
    }

    /// One tile: `out[q * 4 + r]` = the pair sum of query `qs[q]` and row
    /// `rs[r]` over `full_bytes / 4` values plus, if `mask` is not null,
    /// the values its set lanes select after them (see `TAIL_MASKS`).
    /// With `qs[1]` `None`, one query: `out[4..]` is left as it was.
    ///
    /// # Safety
    ///
    /// AVX2 and FMA; each pointer is valid for `full_bytes` plus the masked
    /// lanes' reads; `full_bytes` is a multiple of 32; the FPU is the
    /// caller's.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx2,fma"))]
    pub(super) unsafe fn tile(
        sum: TileSum,
        qs: [Option<*const f32>; 2],
        rs: [*const f32; 4],
        full_bytes: usize,
        mask: *const i32,
        out: &mut [f32; 8],
    ) {
        let (r0, r1, r2, r3) = (rs[0], rs[1], rs[2], rs[3]);
        let out = out.as_mut_ptr();
        let (Some(q0), q1) = (qs[0], qs[1]) else {
            return;
        };
        // The operands of every tile, written once; `$q1` is the second
        // query's operand or nothing.
        macro_rules! tile_asm {
            ($text:expr, $($q1:tt)*) => {
                avx2_asm!(
                    $text,
                    q0 = in(reg) q0, $($q1)*
                    r0 = in(reg) r0, r1 = in(reg) r1, r2 = in(reg) r2, r3 = in(reg) r3,
                    end = in(reg) full_bytes, mask = in(reg) mask, out = in(reg) out,
                    off = out(reg) _,
                )
            };
        }
        // SAFETY: reads within the rows and queries as the caller
        // guarantees; writes 4 or 8 floats of `out`.
        unsafe {
            match (sum, q1) {
                (TileSum::NegDot, Some(q1)) => tile_asm!(
                    concat!(tile_text!(two, dot_step), negate_results!(), store!(two)),
                    q1 = in(reg) q1,
                ),
                (TileSum::NegDot, None) => {
                    tile_asm!(concat!(
                        tile_text!(one, dot_step),
                        negate_results!(),
                        store!(one)
                    ),)
                }
                (TileSum::L2, Some(q1)) => tile_asm!(
                    concat!(tile_text!(two, l2_step), store!(two)),
                    q1 = in(reg) q1,
                ),
                (TileSum::L2, None) => tile_asm!(concat!(tile_text!(one, l2_step), store!(one)),),
            }
        }
    }

    /// `n` (a multiple of 8) cosine distances in place from `-(q.r)` bits
    /// at `out`, with `|q|^2` (not zero) and the rows' `|r|^2` at `norms`:
    /// `1 - dot / (sqrt(|q|^2) * sqrt(|r|^2))`, clamped with `max(0, x)`
    /// then `min(2, x)` (NaN passes, as in the scalar `cosine_finish`), and
    /// 1.0 where `|r|^2` is zero.
    ///
    /// # Safety
    ///
    /// AVX2; `out` and `norms` valid for `n` values; the FPU is the
    /// caller's.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx2,fma"))]
    pub(super) unsafe fn cosine_finish_8s(
        query_norm: u32,
        norms: *const super::NormSq,
        out: *mut f32,
        n: usize,
    ) {
        // SAFETY: reads `n` norms and reads and writes `n` values of `out`,
        // as the caller guarantees.
        unsafe {
            // ymm8 = sqrt(|q|^2), ymm9 = sign bits, ymm10 = 1.0, ymm11 =
            // 2.0, ymm12 = 0.0, per lane.
            avx2_asm!(
                "vmovd xmm8, {qn:e}",
                "vsqrtss xmm8, xmm8, xmm8",
                "vbroadcastss ymm8, xmm8",
                "mov {t:e}, 0x80000000",
                "vmovd xmm9, {t:e}",
                "vbroadcastss ymm9, xmm9",
                "mov {t:e}, 0x3f800000",
                "vmovd xmm10, {t:e}",
                "vbroadcastss ymm10, xmm10",
                "mov {t:e}, 0x40000000",
                "vmovd xmm11, {t:e}",
                "vbroadcastss ymm11, xmm11",
                "vxorps xmm12, xmm12, xmm12",
                "test {n}, {n}",
                "jz 3f",
                "2:",
                // ymm0 = dot, ymm1 = |r|^2, ymm2 = sqrt(|q|^2) * sqrt(|r|^2).
                "vxorps ymm0, ymm9, ymmword ptr [{out}]",
                "vmovups ymm1, ymmword ptr [{norms}]",
                "vsqrtps ymm2, ymm1",
                "vmulps ymm2, ymm8, ymm2",
                "vdivps ymm0, ymm0, ymm2",
                "vsubps ymm0, ymm10, ymm0",
                "vmaxps ymm0, ymm12, ymm0",
                "vminps ymm0, ymm11, ymm0",
                // 1.0 where |r|^2 is +0 or -0 (an equal compare with 0).
                "vcmpeqps ymm3, ymm1, ymm12",
                "vblendvps ymm0, ymm0, ymm10, ymm3",
                "vmovups ymmword ptr [{out}], ymm0",
                "add {out}, 32",
                "add {norms}, 32",
                "sub {n}, 8",
                "jnz 2b",
                "3:",
                "vzeroupper",
                qn = in(reg) query_norm,
                norms = inout(reg) norms => _,
                out = inout(reg) out => _,
                n = inout(reg) n => _,
                t = out(reg) _,
            );
        }
    }
}
