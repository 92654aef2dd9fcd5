// SPDX-License-Identifier: GPL-2.0

//! f32 distance kernels (squared L2, cosine distance, negated dot product)
//! written in inline assembly.
//!
//! This file is compiled twice: by the userland `vexfs-simd` crate and by the
//! kernel module (`#[path]`), so it uses `core` only. The kernel's Rust target
//! is soft-float: any f32 arithmetic or comparison in Rust becomes a call to a
//! panicking `__addsf3`-style stub, and `core::arch` intrinsics lower to libm
//! calls the kernel lacks. So every floating-point operation here (sums,
//! products, the cosine square root and division, negation, the final
//! horizontal sums) is inside an `asm!` block; Rust code only moves f32 values
//! or handles their bit patterns as integers.
//!
//! Three code paths, chosen by the caller with [`Path::best`] from the CPU's
//! features (the kernel from its cpufeatures, userland with
//! `is_x86_feature_detected!`): [`Path::Scalar`] (SSE, one lane at a time, any
//! x86-64), [`Path::Avx2`] (AVX2 + FMA, four ymm accumulators) and
//! [`Path::Avx512`] (AVX-512F, four zmm accumulators, mask registers for the
//! tail). Loads are unaligned, any length is accepted. The work per call is
//! bounded by the slices the caller passes; in the kernel the caller must hold
//! the FPU (`kernel_fpu_begin`) around every call.
//!
//! Results are exact functions of the inputs and the path (no dependence on
//! alignment or on MXCSR beyond the default round-to-nearest that
//! `kernel_fpu_begin` and userland both use).

/// Emits an `asm!` block that uses the vector/mask registers in the list.
///
/// In userland (`sse2` enabled) the compiler keeps its own values in xmm
/// registers, so the registers are declared clobbered. The kernel target is
/// soft-float with SSE disabled: the compiler never allocates those
/// registers, and it cannot even name them in operands, so the same template
/// is emitted without the declarations. The operands passed must end with a
/// comma. No `pure`/`readonly` option: the block must stay between the
/// caller's `kernel_fpu_begin` and `kernel_fpu_end`, so it is not to be moved
/// or merged across calls.
macro_rules! vector_asm {
    ([$($reg:tt),*] $($args:tt)*) => {{
        #[cfg(target_feature = "sse2")]
        core::arch::asm!($($args)* $(out($reg) _,)* options(nostack));
        #[cfg(not(target_feature = "sse2"))]
        core::arch::asm!($($args)* options(nostack));
    }};
}

/// `asm!` for the scalar path, which uses xmm0-xmm3.
macro_rules! sse_asm {
    ($($args:tt)*) => {
        vector_asm!(["xmm0", "xmm1", "xmm2", "xmm3"] $($args)*)
    };
}

/// `asm!` for the AVX2 path, which uses ymm0-ymm15.
macro_rules! avx2_asm {
    ($($args:tt)*) => {
        vector_asm!([
            "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7",
            "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15"
        ] $($args)*)
    };
}

/// `asm!` for the AVX-512 path, which uses zmm0-zmm15 and mask register k1.
macro_rules! avx512_asm {
    ($($args:tt)*) => {
        vector_asm!([
            "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7",
            "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15",
            "k1"
        ] $($args)*)
    };
}

/// Asm text: adds the 8 lanes of `ymm$a` into lane 0 of `xmm$a`, using
/// `xmm$t` as scratch.
#[rustfmt::skip]
macro_rules! hsum_ymm {
    ($a:literal, $t:literal) => {
        concat!(
            "vextractf128 xmm", $t, ", ymm", $a, ", 1\n",
            "vaddps xmm", $a, ", xmm", $a, ", xmm", $t, "\n",
            "vmovhlps xmm", $t, ", xmm", $a, ", xmm", $a, "\n",
            "vaddps xmm", $a, ", xmm", $a, ", xmm", $t, "\n",
            "vmovshdup xmm", $t, ", xmm", $a, "\n",
            "vaddss xmm", $a, ", xmm", $a, ", xmm", $t, "\n",
        )
    };
}

/// Asm text: adds the four ymm accumulators `$a`, `$b`, `$c`, `$d` into
/// lane 0 of `xmm$a` (the other three are clobbered).
#[rustfmt::skip]
macro_rules! hsum4_ymm {
    ($a:literal, $b:literal, $c:literal, $d:literal) => {
        concat!(
            "vaddps ymm", $a, ", ymm", $a, ", ymm", $b, "\n",
            "vaddps ymm", $c, ", ymm", $c, ", ymm", $d, "\n",
            "vaddps ymm", $a, ", ymm", $a, ", ymm", $c, "\n",
            hsum_ymm!($a, $b),
        )
    };
}

/// Asm text: adds the four zmm accumulators `$a`, `$b`, `$c`, `$d` into
/// lane 0 of `xmm$a` (the other three are clobbered).
#[rustfmt::skip]
macro_rules! hsum4_zmm {
    ($a:literal, $b:literal, $c:literal, $d:literal) => {
        concat!(
            "vaddps zmm", $a, ", zmm", $a, ", zmm", $b, "\n",
            "vaddps zmm", $c, ", zmm", $c, ", zmm", $d, "\n",
            "vaddps zmm", $a, ", zmm", $a, ", zmm", $c, "\n",
            "vextractf64x4 ymm", $b, ", zmm", $a, ", 1\n",
            "vaddps ymm", $a, ", ymm", $a, ", ymm", $b, "\n",
            hsum_ymm!($a, $b),
        )
    };
}

/// Distance function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Squared Euclidean distance, `sum((a_i - b_i)^2)`.
    L2,
    /// Cosine distance, `1 - a.b / (|a| |b|)`, clamped to `[0, 2]`; exactly
    /// 1.0 when either vector has zero norm.
    Cosine,
    /// Negated dot product, `-(a.b)` (smaller is closer).
    Dot,
}

/// Instruction-set path of the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// SSE scalar instructions, one lane at a time: any x86-64 CPU.
    Scalar,
    /// 256-bit AVX2 with FMA.
    Avx2,
    /// 512-bit AVX-512F.
    Avx512,
}

impl Path {
    /// Best path for these CPU features: [`Path::Avx512`] needs avx512f
    /// (and avx2 and fma), [`Path::Avx2`] needs avx2 and fma.
    pub fn best(avx2: bool, fma: bool, avx512f: bool) -> Path {
        if avx2 && fma && avx512f {
            Path::Avx512
        } else if avx2 && fma {
            Path::Avx2
        } else {
            Path::Scalar
        }
    }

    /// Short name: "scalar", "avx2" or "avx512".
    pub fn name(self) -> &'static str {
        match self {
            Path::Scalar => "scalar",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
        }
    }
}

/// Distances from `query` to each of the `out.len()` rows of `base`; row `i`
/// is `base[i * query.len()..(i + 1) * query.len()]`.
///
/// The contract is `base.len() >= out.len() * query.len()`
/// (`debug_assert!`ed). Without it nothing panics: the outputs whose row is
/// not wholly inside `base` are left untouched.
///
/// # Safety
///
/// The CPU must support `path` (see [`Path::best`]). In the kernel the
/// caller must own the FPU (`kernel_fpu_begin`) for the whole call.
pub unsafe fn distances(path: Path, metric: Metric, query: &[f32], base: &[f32], out: &mut [f32]) {
    let dim = query.len();
    debug_assert!(out
        .len()
        .checked_mul(dim)
        .is_some_and(|need| base.len() >= need));
    for (i, slot) in out.iter_mut().enumerate() {
        let Some(row) = row(base, i, dim) else {
            break;
        };
        // SAFETY: the CPU supports `path` and the FPU is ours, as the
        // caller guarantees.
        *slot = unsafe { distance(path, metric, query, row) };
    }
}

/// `|v|^2` from [`norm_sq`], kept as its bit pattern: in the soft-float
/// kernel, a value typed `f32` lets the compiler turn integer tests on its
/// bits into float comparisons, which are library calls there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct NormSq(u32);

impl NormSq {
    /// The value (userland).
    pub fn to_f32(self) -> f32 {
        f32::from_bits(self.0)
    }
}

/// `|v|^2`, for storing beside a row so that a cosine search needs one dot
/// product per row ([`cosine_distances_with_norms`]).
///
/// # Safety
///
/// As for [`distances`].
pub unsafe fn norm_sq(path: Path, v: &[f32]) -> NormSq {
    // SAFETY: as the caller guarantees.
    let neg = unsafe { neg_dot_bits(path, v, v) };
    // -(v.v) with its sign bit flipped back: an integer operation.
    NormSq(neg ^ SIGN_BIT)
}

/// Cosine distances from `query` to each of the `out.len()` rows of `base`,
/// given `|query|^2` and each row's `|row|^2` (from [`norm_sq`]): one dot
/// product per row instead of three sums. Agrees with
/// `distances(.., Metric::Cosine, ..)` within the same error bound.
///
/// The contract is `base.len() >= out.len() * query.len()` and
/// `norms_sq.len() >= out.len()` (`debug_assert!`ed); outputs without a
/// whole row or a norm are left untouched.
///
/// # Safety
///
/// As for [`distances`].
pub unsafe fn cosine_distances_with_norms(
    path: Path,
    query: &[f32],
    query_norm_sq: NormSq,
    base: &[f32],
    norms_sq: &[NormSq],
    out: &mut [f32],
) {
    let dim = query.len();
    debug_assert!(norms_sq.len() >= out.len());
    for (i, slot) in out.iter_mut().enumerate() {
        let (Some(row), Some(norm)) = (row(base, i, dim), norms_sq.get(i)) else {
            break;
        };
        // SAFETY: as the caller guarantees.
        let dot = unsafe { neg_dot_bits(path, query, row) } ^ SIGN_BIT;
        // SAFETY: SSE2 is on every x86-64 CPU; the FPU is the caller's.
        *slot = f32::from_bits(unsafe { cosine_finish((dot, query_norm_sq.0, norm.0)) });
    }
}

/// Sign bit of an f32.
const SIGN_BIT: u32 = 0x8000_0000;

/// Bits of `-(a.b)` on `path`.
///
/// # Safety
///
/// As for [`distances`].
unsafe fn neg_dot_bits(path: Path, a: &[f32], b: &[f32]) -> u32 {
    // SAFETY: as the caller guarantees; each kernel reads within its slices.
    unsafe {
        match path {
            Path::Scalar => scalar::neg_dot(a, b),
            Path::Avx2 => avx2::neg_dot(a, b),
            Path::Avx512 => avx512::neg_dot(a, b),
        }
    }
}

/// Row `i` of `dim` values of `base`, if it is wholly inside it.
fn row(base: &[f32], i: usize, dim: usize) -> Option<&[f32]> {
    let start = i.checked_mul(dim)?;
    base.get(start..start.checked_add(dim)?)
}

/// Distance between `a` and `b`, which should have the same length (extra
/// values of the longer one are ignored; `debug_assert!`ed).
///
/// # Safety
///
/// The CPU must support `path` (see [`Path::best`]). In the kernel the
/// caller must own the FPU (`kernel_fpu_begin`) for the whole call.
pub unsafe fn distance(path: Path, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    // SAFETY: the CPU supports `path`, as the caller guarantees, and each
    // kernel below reads only within the slices it is given.
    let bits = unsafe {
        match (path, metric) {
            (Path::Scalar, Metric::L2) => scalar::l2(a, b),
            (Path::Scalar, Metric::Dot) => scalar::neg_dot(a, b),
            (Path::Scalar, Metric::Cosine) => cosine_finish(scalar::cosine_sums(a, b)),
            (Path::Avx2, Metric::L2) => avx2::l2(a, b),
            (Path::Avx2, Metric::Dot) => avx2::neg_dot(a, b),
            (Path::Avx2, Metric::Cosine) => cosine_finish(avx2::cosine_sums(a, b)),
            (Path::Avx512, Metric::L2) => avx512::l2(a, b),
            (Path::Avx512, Metric::Dot) => avx512::neg_dot(a, b),
            (Path::Avx512, Metric::Cosine) => cosine_finish(avx512::cosine_sums(a, b)),
        }
    };
    f32::from_bits(bits)
}

/// True if every value is finite (neither NaN nor infinite). Integer bit
/// tests only: a value is not finite iff its exponent bits are all ones.
pub fn all_finite(v: &[f32]) -> bool {
    const EXPONENT: u32 = 0x7f80_0000;
    v.iter().all(|x| x.to_bits() & EXPONENT != EXPONENT)
}

/// A key whose unsigned order is the numeric order of the f32 `d` (-0.0
/// sorts just below 0.0), for sorting distances with integer compares. NaN
/// (a sum that overflowed to inf - inf) gets the largest key: it ranks last.
pub fn order_key(d: f32) -> u32 {
    order_key_bits(d.to_bits())
}

/// [`order_key`] of an f32 given by its bits. The kernel passes distances
/// as bits: in its soft-float target, integer tests on a value typed `f32`
/// may be turned into float comparisons, which are library calls there.
///
/// Non-negative values get the sign bit set, so they sort above all negative
/// ones and keep their bit order; negative values have all bits inverted, so
/// a larger magnitude gives a smaller key.
pub fn order_key_bits(bits: u32) -> u32 {
    if bits & !SIGN_BIT > 0x7f80_0000 {
        return u32::MAX;
    }
    if bits & SIGN_BIT != 0 {
        !bits
    } else {
        bits | SIGN_BIT
    }
}

/// The f32 bits of the distance whose [`order_key_bits`] is `key`: its
/// inverse for every key of a non-NaN value (NaN comes back as the
/// canonical quiet NaN). For indexes that keep only keys.
pub fn bits_of_order_key(key: u32) -> u32 {
    if key == u32::MAX {
        0x7fc0_0000
    } else if key & SIGN_BIT != 0 {
        key & !SIGN_BIT
    } else {
        !key
    }
}

/// Bit pattern of 1.0f32 (the kernel passes floats as bits: a scale of
/// one for the SQ8 kernels, say).
pub const ONE_BITS: u32 = 0x3f80_0000;

/// Sums of one cosine pass, as f32 bit patterns: `(a.b, |a|^2, |b|^2)`.
type CosineSums = (u32, u32, u32);

/// Cosine distance from its sums: `1 - dot / (sqrt(|a|^2) * sqrt(|b|^2))`
/// clamped to `[0, 2]` (NaN stays NaN), or exactly 1.0 when a norm is zero.
///
/// # Safety
///
/// SSE2 (every x86-64 CPU); in the kernel the caller owns the FPU.
unsafe fn cosine_finish((dot, norm_a, norm_b): CosineSums) -> u32 {
    // A sum of squares is +0.0 or positive (or NaN): an integer test finds
    // zero (either sign, to be safe).
    let abs = 0x7fff_ffff;
    if norm_a & abs == 0 || norm_b & abs == 0 {
        return ONE_BITS;
    }
    let out: u32;
    // SAFETY: register-only SSE2 arithmetic; the caller owns the FPU.
    unsafe {
        // Computes 1 - dot / (sqrt(na) * sqrt(nb)), then clamps it to
        // [0, 2]: maxss/minss return their second operand when either is
        // NaN, so NaN passes through.
        sse_asm!(
            "movd xmm0, {dot:e}",
            "movd xmm1, {na:e}",
            "movd xmm2, {nb:e}",
            "sqrtss xmm1, xmm1",
            "sqrtss xmm2, xmm2",
            "mulss xmm1, xmm2",
            "divss xmm0, xmm1",
            "movd xmm1, {one:e}",
            "subss xmm1, xmm0",
            "xorps xmm2, xmm2",
            "maxss xmm2, xmm1",
            "movd xmm3, {two:e}",
            "minss xmm3, xmm2",
            "movd {out:e}, xmm3",
            dot = in(reg) dot,
            na = in(reg) norm_a,
            nb = in(reg) norm_b,
            one = in(reg) ONE_BITS,
            two = in(reg) 0x4000_0000u32,
            out = lateout(reg) out,
        );
    }
    out
}

/// Scalar path: legacy SSE scalar instructions, one value at a time, one
/// accumulator, in index order.
mod scalar {
    use super::CosineSums;

    /// Bits of `sum((a_i - b_i)^2)` over the common length.
    ///
    /// # Safety
    ///
    /// SSE2; in the kernel the caller owns the FPU.
    pub(super) unsafe fn l2(a: &[f32], b: &[f32]) -> u32 {
        let n = a.len().min(b.len());
        let out: u32;
        // SAFETY: reads n f32 from each of a and b, which hold at least n.
        unsafe {
            // xmm0 += (a[i] - b[i])^2 for i in 0..n.
            sse_asm!(
                "xorps xmm0, xmm0",
                "test {n}, {n}",
                "jz 3f",
                "2:",
                "movss xmm1, dword ptr [{a}]",
                "subss xmm1, dword ptr [{b}]",
                "mulss xmm1, xmm1",
                "addss xmm0, xmm1",
                "add {a}, 4",
                "add {b}, 4",
                "dec {n}",
                "jnz 2b",
                "3:",
                "movd {out:e}, xmm0",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                out = lateout(reg) out,
            );
        }
        out
    }

    /// Bits of `-(a.b)` over the common length.
    ///
    /// # Safety
    ///
    /// SSE2; in the kernel the caller owns the FPU.
    pub(super) unsafe fn neg_dot(a: &[f32], b: &[f32]) -> u32 {
        let n = a.len().min(b.len());
        let out: u32;
        // SAFETY: reads n f32 from each of a and b, which hold at least n.
        unsafe {
            // xmm0 += a[i] * b[i] for i in 0..n, then flip its sign bit.
            sse_asm!(
                "xorps xmm0, xmm0",
                "test {n}, {n}",
                "jz 3f",
                "2:",
                "movss xmm1, dword ptr [{a}]",
                "mulss xmm1, dword ptr [{b}]",
                "addss xmm0, xmm1",
                "add {a}, 4",
                "add {b}, 4",
                "dec {n}",
                "jnz 2b",
                "3:",
                "mov {t:e}, 0x80000000",
                "movd xmm1, {t:e}",
                "xorps xmm0, xmm1",
                "movd {out:e}, xmm0",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                t = out(reg) _,
                out = lateout(reg) out,
            );
        }
        out
    }

    /// Bits of `(a.b, |a|^2, |b|^2)` over the common length, in one pass.
    ///
    /// # Safety
    ///
    /// SSE2; in the kernel the caller owns the FPU.
    pub(super) unsafe fn cosine_sums(a: &[f32], b: &[f32]) -> CosineSums {
        let n = a.len().min(b.len());
        let (dot, na, nb): (u32, u32, u32);
        // SAFETY: reads n f32 from each of a and b, which hold at least n.
        unsafe {
            // xmm0 += a[i] * b[i], xmm1 += a[i]^2, xmm2 += b[i]^2.
            sse_asm!(
                "xorps xmm0, xmm0",
                "xorps xmm1, xmm1",
                "xorps xmm2, xmm2",
                "test {n}, {n}",
                "jz 3f",
                "2:",
                "movss xmm3, dword ptr [{a}]",
                "mulss xmm3, dword ptr [{b}]",
                "addss xmm0, xmm3",
                "movss xmm3, dword ptr [{a}]",
                "mulss xmm3, xmm3",
                "addss xmm1, xmm3",
                "movss xmm3, dword ptr [{b}]",
                "mulss xmm3, xmm3",
                "addss xmm2, xmm3",
                "add {a}, 4",
                "add {b}, 4",
                "dec {n}",
                "jnz 2b",
                "3:",
                "movd {dot:e}, xmm0",
                "movd {na:e}, xmm1",
                "movd {nb:e}, xmm2",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                dot = lateout(reg) dot,
                na = lateout(reg) na,
                nb = lateout(reg) nb,
            );
        }
        (dot, na, nb)
    }
}

/// AVX2 + FMA path: 32 values per iteration into four ymm accumulators
/// (independent FMA chains), then 8 per iteration into the first, a
/// horizontal sum, and the last `n % 8` values one at a time.
mod avx2 {
    use super::CosineSums;

    /// Bits of `sum((a_i - b_i)^2)` over the common length.
    ///
    /// # Safety
    ///
    /// AVX2 and FMA; in the kernel the caller owns the FPU.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx2,fma"))]
    pub(super) unsafe fn l2(a: &[f32], b: &[f32]) -> u32 {
        let n = a.len().min(b.len());
        let out: u32;
        // SAFETY: reads n f32 from each of a and b (unaligned loads), which
        // hold at least n.
        unsafe {
            // ymm0-3 += (a - b)^2 over blocks of 32, ymm0 over blocks of 8,
            // horizontal sum into xmm0, then xmm0 += (a[i] - b[i])^2 for
            // the remaining values.
            avx2_asm!(
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "cmp {n}, 32",
                "jb 3f",
                "2:",
                "vmovups ymm4, ymmword ptr [{a}]",
                "vmovups ymm5, ymmword ptr [{a} + 32]",
                "vmovups ymm6, ymmword ptr [{a} + 64]",
                "vmovups ymm7, ymmword ptr [{a} + 96]",
                "vsubps ymm4, ymm4, ymmword ptr [{b}]",
                "vsubps ymm5, ymm5, ymmword ptr [{b} + 32]",
                "vsubps ymm6, ymm6, ymmword ptr [{b} + 64]",
                "vsubps ymm7, ymm7, ymmword ptr [{b} + 96]",
                "vfmadd231ps ymm0, ymm4, ymm4",
                "vfmadd231ps ymm1, ymm5, ymm5",
                "vfmadd231ps ymm2, ymm6, ymm6",
                "vfmadd231ps ymm3, ymm7, ymm7",
                "add {a}, 128",
                "add {b}, 128",
                "sub {n}, 32",
                "cmp {n}, 32",
                "jae 2b",
                "3:",
                "cmp {n}, 8",
                "jb 5f",
                "4:",
                "vmovups ymm4, ymmword ptr [{a}]",
                "vsubps ymm4, ymm4, ymmword ptr [{b}]",
                "vfmadd231ps ymm0, ymm4, ymm4",
                "add {a}, 32",
                "add {b}, 32",
                "sub {n}, 8",
                "cmp {n}, 8",
                "jae 4b",
                "5:",
                hsum4_ymm!("0", "1", "2", "3"),
                "test {n}, {n}",
                "jz 7f",
                "6:",
                "vmovss xmm1, dword ptr [{a}]",
                "vsubss xmm1, xmm1, dword ptr [{b}]",
                "vfmadd231ss xmm0, xmm1, xmm1",
                "add {a}, 4",
                "add {b}, 4",
                "dec {n}",
                "jnz 6b",
                "7:",
                "vmovd {out:e}, xmm0",
                "vzeroupper",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                out = lateout(reg) out,
            );
        }
        out
    }

    /// Bits of `-(a.b)` over the common length.
    ///
    /// # Safety
    ///
    /// AVX2 and FMA; in the kernel the caller owns the FPU.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx2,fma"))]
    pub(super) unsafe fn neg_dot(a: &[f32], b: &[f32]) -> u32 {
        let n = a.len().min(b.len());
        let out: u32;
        // SAFETY: reads n f32 from each of a and b (unaligned loads), which
        // hold at least n.
        unsafe {
            // ymm0-3 += a * b over blocks of 32, ymm0 over blocks of 8,
            // horizontal sum into xmm0, xmm0 += a[i] * b[i] for the
            // remaining values, then flip its sign bit.
            avx2_asm!(
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "cmp {n}, 32",
                "jb 3f",
                "2:",
                "vmovups ymm4, ymmword ptr [{a}]",
                "vmovups ymm5, ymmword ptr [{a} + 32]",
                "vmovups ymm6, ymmword ptr [{a} + 64]",
                "vmovups ymm7, ymmword ptr [{a} + 96]",
                "vfmadd231ps ymm0, ymm4, ymmword ptr [{b}]",
                "vfmadd231ps ymm1, ymm5, ymmword ptr [{b} + 32]",
                "vfmadd231ps ymm2, ymm6, ymmword ptr [{b} + 64]",
                "vfmadd231ps ymm3, ymm7, ymmword ptr [{b} + 96]",
                "add {a}, 128",
                "add {b}, 128",
                "sub {n}, 32",
                "cmp {n}, 32",
                "jae 2b",
                "3:",
                "cmp {n}, 8",
                "jb 5f",
                "4:",
                "vmovups ymm4, ymmword ptr [{a}]",
                "vfmadd231ps ymm0, ymm4, ymmword ptr [{b}]",
                "add {a}, 32",
                "add {b}, 32",
                "sub {n}, 8",
                "cmp {n}, 8",
                "jae 4b",
                "5:",
                hsum4_ymm!("0", "1", "2", "3"),
                "test {n}, {n}",
                "jz 7f",
                "6:",
                "vmovss xmm1, dword ptr [{a}]",
                "vfmadd231ss xmm0, xmm1, dword ptr [{b}]",
                "add {a}, 4",
                "add {b}, 4",
                "dec {n}",
                "jnz 6b",
                "7:",
                "mov {t:e}, 0x80000000",
                "vmovd xmm1, {t:e}",
                "vxorps xmm0, xmm0, xmm1",
                "vmovd {out:e}, xmm0",
                "vzeroupper",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                t = out(reg) _,
                out = lateout(reg) out,
            );
        }
        out
    }

    /// Bits of `(a.b, |a|^2, |b|^2)` over the common length, in one pass.
    ///
    /// # Safety
    ///
    /// AVX2 and FMA; in the kernel the caller owns the FPU.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx2,fma"))]
    pub(super) unsafe fn cosine_sums(a: &[f32], b: &[f32]) -> CosineSums {
        let n = a.len().min(b.len());
        let (dot, na, nb): (u32, u32, u32);
        // SAFETY: reads n f32 from each of a and b (unaligned loads), which
        // hold at least n.
        unsafe {
            // Accumulators: a.b in ymm0-3, |a|^2 in ymm4-7, |b|^2 in
            // ymm8-11 over blocks of 32 (ymm0/4/8 over blocks of 8), loads
            // in ymm12-15; horizontal sums into xmm0, xmm4, xmm8, which then
            // take the remaining values one at a time.
            avx2_asm!(
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "vxorps xmm4, xmm4, xmm4",
                "vxorps xmm5, xmm5, xmm5",
                "vxorps xmm6, xmm6, xmm6",
                "vxorps xmm7, xmm7, xmm7",
                "vxorps xmm8, xmm8, xmm8",
                "vxorps xmm9, xmm9, xmm9",
                "vxorps xmm10, xmm10, xmm10",
                "vxorps xmm11, xmm11, xmm11",
                "cmp {n}, 32",
                "jb 3f",
                "2:",
                "vmovups ymm12, ymmword ptr [{a}]",
                "vmovups ymm13, ymmword ptr [{b}]",
                "vfmadd231ps ymm0, ymm12, ymm13",
                "vfmadd231ps ymm4, ymm12, ymm12",
                "vfmadd231ps ymm8, ymm13, ymm13",
                "vmovups ymm14, ymmword ptr [{a} + 32]",
                "vmovups ymm15, ymmword ptr [{b} + 32]",
                "vfmadd231ps ymm1, ymm14, ymm15",
                "vfmadd231ps ymm5, ymm14, ymm14",
                "vfmadd231ps ymm9, ymm15, ymm15",
                "vmovups ymm12, ymmword ptr [{a} + 64]",
                "vmovups ymm13, ymmword ptr [{b} + 64]",
                "vfmadd231ps ymm2, ymm12, ymm13",
                "vfmadd231ps ymm6, ymm12, ymm12",
                "vfmadd231ps ymm10, ymm13, ymm13",
                "vmovups ymm14, ymmword ptr [{a} + 96]",
                "vmovups ymm15, ymmword ptr [{b} + 96]",
                "vfmadd231ps ymm3, ymm14, ymm15",
                "vfmadd231ps ymm7, ymm14, ymm14",
                "vfmadd231ps ymm11, ymm15, ymm15",
                "add {a}, 128",
                "add {b}, 128",
                "sub {n}, 32",
                "cmp {n}, 32",
                "jae 2b",
                "3:",
                "cmp {n}, 8",
                "jb 5f",
                "4:",
                "vmovups ymm12, ymmword ptr [{a}]",
                "vmovups ymm13, ymmword ptr [{b}]",
                "vfmadd231ps ymm0, ymm12, ymm13",
                "vfmadd231ps ymm4, ymm12, ymm12",
                "vfmadd231ps ymm8, ymm13, ymm13",
                "add {a}, 32",
                "add {b}, 32",
                "sub {n}, 8",
                "cmp {n}, 8",
                "jae 4b",
                "5:",
                hsum4_ymm!("0", "1", "2", "3"),
                hsum4_ymm!("4", "5", "6", "7"),
                hsum4_ymm!("8", "9", "10", "11"),
                "test {n}, {n}",
                "jz 7f",
                "6:",
                "vmovss xmm12, dword ptr [{a}]",
                "vmovss xmm13, dword ptr [{b}]",
                "vfmadd231ss xmm0, xmm12, xmm13",
                "vfmadd231ss xmm4, xmm12, xmm12",
                "vfmadd231ss xmm8, xmm13, xmm13",
                "add {a}, 4",
                "add {b}, 4",
                "dec {n}",
                "jnz 6b",
                "7:",
                "vmovd {dot:e}, xmm0",
                "vmovd {na:e}, xmm4",
                "vmovd {nb:e}, xmm8",
                "vzeroupper",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                dot = lateout(reg) dot,
                na = lateout(reg) na,
                nb = lateout(reg) nb,
            );
        }
        (dot, na, nb)
    }
}

/// AVX-512F path: 64 values per iteration into four zmm accumulators, then
/// 16 per iteration into the first, then the last `n % 16` values with a
/// zero-masking load (`k1` = low `n % 16` lanes; masked-off lanes are not
/// read, so nothing past the slices is touched), then a horizontal sum.
mod avx512 {
    use super::CosineSums;

    /// Bits of `sum((a_i - b_i)^2)` over the common length.
    ///
    /// # Safety
    ///
    /// AVX-512F (with AVX2 and FMA); in the kernel the caller owns the FPU.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx512f,avx2,fma"))]
    pub(super) unsafe fn l2(a: &[f32], b: &[f32]) -> u32 {
        let n = a.len().min(b.len());
        let out: u32;
        // SAFETY: reads n f32 from each of a and b (unaligned loads; the
        // tail's masked-off lanes are not accessed), which hold at least n.
        unsafe {
            // zmm0-3 += (a - b)^2 over blocks of 64, zmm0 over blocks of 16
            // and the masked tail, then a horizontal sum into xmm0.
            avx512_asm!(
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "cmp {n}, 64",
                "jb 3f",
                "2:",
                "vmovups zmm4, zmmword ptr [{a}]",
                "vmovups zmm5, zmmword ptr [{a} + 64]",
                "vmovups zmm6, zmmword ptr [{a} + 128]",
                "vmovups zmm7, zmmword ptr [{a} + 192]",
                "vsubps zmm4, zmm4, zmmword ptr [{b}]",
                "vsubps zmm5, zmm5, zmmword ptr [{b} + 64]",
                "vsubps zmm6, zmm6, zmmword ptr [{b} + 128]",
                "vsubps zmm7, zmm7, zmmword ptr [{b} + 192]",
                "vfmadd231ps zmm0, zmm4, zmm4",
                "vfmadd231ps zmm1, zmm5, zmm5",
                "vfmadd231ps zmm2, zmm6, zmm6",
                "vfmadd231ps zmm3, zmm7, zmm7",
                "add {a}, 256",
                "add {b}, 256",
                "sub {n}, 64",
                "cmp {n}, 64",
                "jae 2b",
                "3:",
                "cmp {n}, 16",
                "jb 5f",
                "4:",
                "vmovups zmm4, zmmword ptr [{a}]",
                "vsubps zmm4, zmm4, zmmword ptr [{b}]",
                "vfmadd231ps zmm0, zmm4, zmm4",
                "add {a}, 64",
                "add {b}, 64",
                "sub {n}, 16",
                "cmp {n}, 16",
                "jae 4b",
                "5:",
                "test {n}, {n}",
                "jz 6f",
                "xor {t:e}, {t:e}",
                "bts {t}, {n}",
                "dec {t}",
                "kmovw k1, {t:e}",
                "vmovups zmm4 {{k1}} {{z}}, zmmword ptr [{a}]",
                "vmovups zmm5 {{k1}} {{z}}, zmmword ptr [{b}]",
                "vsubps zmm4, zmm4, zmm5",
                "vfmadd231ps zmm0, zmm4, zmm4",
                "6:",
                hsum4_zmm!("0", "1", "2", "3"),
                "vmovd {out:e}, xmm0",
                "vzeroupper",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                t = out(reg) _,
                out = lateout(reg) out,
            );
        }
        out
    }

    /// Bits of `-(a.b)` over the common length.
    ///
    /// # Safety
    ///
    /// AVX-512F (with AVX2 and FMA); in the kernel the caller owns the FPU.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx512f,avx2,fma"))]
    pub(super) unsafe fn neg_dot(a: &[f32], b: &[f32]) -> u32 {
        let n = a.len().min(b.len());
        let out: u32;
        // SAFETY: reads n f32 from each of a and b (unaligned loads; the
        // tail's masked-off lanes are not accessed), which hold at least n.
        unsafe {
            // zmm0-3 += a * b over blocks of 64, zmm0 over blocks of 16 and
            // the masked tail, a horizontal sum into xmm0, then flip its
            // sign bit.
            avx512_asm!(
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "cmp {n}, 64",
                "jb 3f",
                "2:",
                "vmovups zmm4, zmmword ptr [{a}]",
                "vmovups zmm5, zmmword ptr [{a} + 64]",
                "vmovups zmm6, zmmword ptr [{a} + 128]",
                "vmovups zmm7, zmmword ptr [{a} + 192]",
                "vfmadd231ps zmm0, zmm4, zmmword ptr [{b}]",
                "vfmadd231ps zmm1, zmm5, zmmword ptr [{b} + 64]",
                "vfmadd231ps zmm2, zmm6, zmmword ptr [{b} + 128]",
                "vfmadd231ps zmm3, zmm7, zmmword ptr [{b} + 192]",
                "add {a}, 256",
                "add {b}, 256",
                "sub {n}, 64",
                "cmp {n}, 64",
                "jae 2b",
                "3:",
                "cmp {n}, 16",
                "jb 5f",
                "4:",
                "vmovups zmm4, zmmword ptr [{a}]",
                "vfmadd231ps zmm0, zmm4, zmmword ptr [{b}]",
                "add {a}, 64",
                "add {b}, 64",
                "sub {n}, 16",
                "cmp {n}, 16",
                "jae 4b",
                "5:",
                "test {n}, {n}",
                "jz 6f",
                "xor {t:e}, {t:e}",
                "bts {t}, {n}",
                "dec {t}",
                "kmovw k1, {t:e}",
                "vmovups zmm4 {{k1}} {{z}}, zmmword ptr [{a}]",
                "vmovups zmm5 {{k1}} {{z}}, zmmword ptr [{b}]",
                "vfmadd231ps zmm0, zmm4, zmm5",
                "6:",
                hsum4_zmm!("0", "1", "2", "3"),
                "mov {t:e}, 0x80000000",
                "vmovd xmm1, {t:e}",
                "vxorps xmm0, xmm0, xmm1",
                "vmovd {out:e}, xmm0",
                "vzeroupper",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                t = out(reg) _,
                out = lateout(reg) out,
            );
        }
        out
    }

    /// Bits of `(a.b, |a|^2, |b|^2)` over the common length, in one pass.
    ///
    /// # Safety
    ///
    /// AVX-512F (with AVX2 and FMA); in the kernel the caller owns the FPU.
    #[cfg_attr(target_feature = "sse2", target_feature(enable = "avx512f,avx2,fma"))]
    pub(super) unsafe fn cosine_sums(a: &[f32], b: &[f32]) -> CosineSums {
        let n = a.len().min(b.len());
        let (dot, na, nb): (u32, u32, u32);
        // SAFETY: reads n f32 from each of a and b (unaligned loads; the
        // tail's masked-off lanes are not accessed), which hold at least n.
        unsafe {
            // Accumulators: a.b in zmm0-3, |a|^2 in zmm4-7, |b|^2 in
            // zmm8-11 over blocks of 64 (zmm0/4/8 over blocks of 16 and the
            // masked tail), loads in zmm12-15; horizontal sums into xmm0,
            // xmm4, xmm8.
            avx512_asm!(
                "vxorps xmm0, xmm0, xmm0",
                "vxorps xmm1, xmm1, xmm1",
                "vxorps xmm2, xmm2, xmm2",
                "vxorps xmm3, xmm3, xmm3",
                "vxorps xmm4, xmm4, xmm4",
                "vxorps xmm5, xmm5, xmm5",
                "vxorps xmm6, xmm6, xmm6",
                "vxorps xmm7, xmm7, xmm7",
                "vxorps xmm8, xmm8, xmm8",
                "vxorps xmm9, xmm9, xmm9",
                "vxorps xmm10, xmm10, xmm10",
                "vxorps xmm11, xmm11, xmm11",
                "cmp {n}, 64",
                "jb 3f",
                "2:",
                "vmovups zmm12, zmmword ptr [{a}]",
                "vmovups zmm13, zmmword ptr [{b}]",
                "vfmadd231ps zmm0, zmm12, zmm13",
                "vfmadd231ps zmm4, zmm12, zmm12",
                "vfmadd231ps zmm8, zmm13, zmm13",
                "vmovups zmm14, zmmword ptr [{a} + 64]",
                "vmovups zmm15, zmmword ptr [{b} + 64]",
                "vfmadd231ps zmm1, zmm14, zmm15",
                "vfmadd231ps zmm5, zmm14, zmm14",
                "vfmadd231ps zmm9, zmm15, zmm15",
                "vmovups zmm12, zmmword ptr [{a} + 128]",
                "vmovups zmm13, zmmword ptr [{b} + 128]",
                "vfmadd231ps zmm2, zmm12, zmm13",
                "vfmadd231ps zmm6, zmm12, zmm12",
                "vfmadd231ps zmm10, zmm13, zmm13",
                "vmovups zmm14, zmmword ptr [{a} + 192]",
                "vmovups zmm15, zmmword ptr [{b} + 192]",
                "vfmadd231ps zmm3, zmm14, zmm15",
                "vfmadd231ps zmm7, zmm14, zmm14",
                "vfmadd231ps zmm11, zmm15, zmm15",
                "add {a}, 256",
                "add {b}, 256",
                "sub {n}, 64",
                "cmp {n}, 64",
                "jae 2b",
                "3:",
                "cmp {n}, 16",
                "jb 5f",
                "4:",
                "vmovups zmm12, zmmword ptr [{a}]",
                "vmovups zmm13, zmmword ptr [{b}]",
                "vfmadd231ps zmm0, zmm12, zmm13",
                "vfmadd231ps zmm4, zmm12, zmm12",
                "vfmadd231ps zmm8, zmm13, zmm13",
                "add {a}, 64",
                "add {b}, 64",
                "sub {n}, 16",
                "cmp {n}, 16",
                "jae 4b",
                "5:",
                "test {n}, {n}",
                "jz 6f",
                "xor {t:e}, {t:e}",
                "bts {t}, {n}",
                "dec {t}",
                "kmovw k1, {t:e}",
                "vmovups zmm12 {{k1}} {{z}}, zmmword ptr [{a}]",
                "vmovups zmm13 {{k1}} {{z}}, zmmword ptr [{b}]",
                "vfmadd231ps zmm0, zmm12, zmm13",
                "vfmadd231ps zmm4, zmm12, zmm12",
                "vfmadd231ps zmm8, zmm13, zmm13",
                "6:",
                hsum4_zmm!("0", "1", "2", "3"),
                hsum4_zmm!("4", "5", "6", "7"),
                hsum4_zmm!("8", "9", "10", "11"),
                "vmovd {dot:e}, xmm0",
                "vmovd {na:e}, xmm4",
                "vmovd {nb:e}, xmm8",
                "vzeroupper",
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                n = inout(reg) n => _,
                t = out(reg) _,
                dot = lateout(reg) dot,
                na = lateout(reg) na,
                nb = lateout(reg) nb,
            );
        }
        (dot, na, nb)
    }
}

#[path = "block.rs"]
mod block;
pub use block::*;

#[path = "sq8.rs"]
mod sq8;
// Used by userland (the HNSW benchmark's SQ8 walk) before the module.
#[allow(unused_imports)]
pub use sq8::*;
