// SPDX-License-Identifier: GPL-2.0

//! CPU features and the FPU: what the SIMD distance kernels need. The
//! kernels (`simd`, shared with userland) are `unsafe` to call because they
//! need a CPU with their path's features and, in the kernel, the FPU: the
//! [`Simd`] path is only made from the boot CPU's features and its calls
//! take an [`Fpu`], which only [`with_fpu`] hands out.

use kernel::bindings;
use kernel::types::NotThreadSafe;

use crate::simd::{self, Metric, NormSq, Path};

/// An x86 CPU feature the module asks about (`X86_FEATURE_*`).
#[derive(Clone, Copy)]
pub(crate) struct Feature(u32);

impl Feature {
    pub(crate) const SSE2: Self = Self(bindings::X86_FEATURE_XMM2);
    pub(crate) const AVX: Self = Self(bindings::X86_FEATURE_AVX);
    pub(crate) const AVX2: Self = Self(bindings::X86_FEATURE_AVX2);
    pub(crate) const FMA: Self = Self(bindings::X86_FEATURE_FMA);
    pub(crate) const AVX512F: Self = Self(bindings::X86_FEATURE_AVX512F);
    pub(crate) const OSXSAVE: Self = Self(bindings::X86_FEATURE_OSXSAVE);

    /// Whether the boot CPU has this feature, as the kernel left it after
    /// checking which register states XSAVE enables.
    #[inline]
    pub(crate) fn present(self) -> bool {
        let (word, bit) = ((self.0 / 32) as usize, self.0 % 32);
        // SAFETY: `boot_cpu_data` is initialised before any module loads and
        // its capability words are not changed afterwards; we read one `u32`
        // by value through a raw pointer, without forming a reference to the
        // mutable static.
        let caps = unsafe { bindings::boot_cpu_data.__bindgen_anon_3.x86_capability };
        caps.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }
}

/// `KFPU_387 | KFPU_MXCSR` (arch/x86/include/asm/fpu/api.h): what
/// `kernel_fpu_begin()` asks for. The macros are not reachable by bindgen.
const KFPU_FULL: u32 = 1 | 2;

/// Proof that the current task holds the FPU (inside [`with_fpu`]); not
/// `Send`, so it cannot leave the section's task.
pub(crate) struct Fpu(NotThreadSafe);

/// Runs `f` with the FPU/SIMD registers available to kernel code.
///
/// Preemption is disabled meanwhile, so `f` must not sleep and must be short
/// (the callers bound the work per section). A call inside another's `f`
/// runs in the outer section (the FPU is this task's until it ends).
/// Process context only, as every VexFS operation and worker is.
#[inline]
pub(crate) fn with_fpu<R>(f: impl FnOnce(&Fpu) -> R) -> R {
    // SAFETY: Reads this CPU's state; false inside a section, where this
    // task holds the FPU with preemption disabled.
    if !unsafe { bindings::irq_fpu_usable() } {
        return f(&Fpu(NotThreadSafe));
    }
    // SAFETY: Not inside a section (checked above); process context.
    unsafe { bindings::kernel_fpu_begin_mask(KFPU_FULL) };
    let r = f(&Fpu(NotThreadSafe));
    // SAFETY: Pairs with the begin above.
    unsafe { bindings::kernel_fpu_end() };
    r
}

/// The SIMD path of the boot CPU: the distance kernels it runs best.
#[derive(Clone, Copy)]
pub(crate) struct Simd(Path);

impl Simd {
    /// The best path for the features the kernel detected at boot.
    #[inline]
    pub(crate) fn detect() -> Self {
        Self(Path::best(
            Feature::AVX2.present(),
            Feature::FMA.present(),
            Feature::AVX512F.present(),
        ))
    }

    #[inline]
    pub(crate) fn path(self) -> Path {
        self.0
    }

    /// `|v|^2` (see `simd::norm_sq`).
    // Inlined: one call per distance of an HNSW batch otherwise.
    #[inline(always)]
    pub(crate) fn norm_sq(self, _fpu: &Fpu, v: &[f32]) -> NormSq {
        // SAFETY: The path was chosen from this CPU's features; the FPU is
        // ours (`Fpu`).
        unsafe { simd::norm_sq(self.0, v) }
    }

    /// Distances from `query` to the rows of `base` (see
    /// `simd::distances`).
    // Inlined: one call per distance of an HNSW batch otherwise.
    #[inline(always)]
    pub(crate) fn distances(
        self,
        _fpu: &Fpu,
        metric: Metric,
        query: &[f32],
        base: &[f32],
        out: &mut [f32],
    ) {
        // SAFETY: As in `norm_sq`.
        unsafe { simd::distances(self.0, metric, query, base, out) }
    }

    /// Distances from several queries to several rows (see
    /// `simd::block_distances`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn block_distances(
        self,
        _fpu: &Fpu,
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
        // SAFETY: As in `norm_sq`.
        unsafe {
            simd::block_distances(
                self.0,
                metric,
                dim,
                queries,
                query_norms,
                base,
                row_norms,
                rows,
                out,
                stride,
            )
        }
    }

    /// Cosine distances with stored norms (see
    /// `simd::cosine_distances_with_norms`).
    // Inlined: one call per distance of an HNSW batch otherwise.
    #[inline(always)]
    pub(crate) fn cosine_distances_with_norms(
        self,
        _fpu: &Fpu,
        query: &[f32],
        query_norm_sq: NormSq,
        base: &[f32],
        norms_sq: &[NormSq],
        out: &mut [f32],
    ) {
        // SAFETY: As in `norm_sq`.
        unsafe {
            simd::cosine_distances_with_norms(self.0, query, query_norm_sq, base, norms_sq, out)
        }
    }

    /// The SQ8 dot product of codes with a query's weights (see
    /// `simd::sq8_dot`).
    // Inlined: one call per row of an HNSW batch otherwise.
    #[inline(always)]
    pub(crate) fn sq8_dot(self, _fpu: &Fpu, weights: &[i16], codes: &[u8]) -> i32 {
        // SAFETY: As in `norm_sq`.
        unsafe { simd::sq8_dot(self.0, weights, codes) }
    }

    /// Widens SQ8 bounds to hold a row (see `simd::sq8_widen`; scalar SSE
    /// on every path).
    pub(crate) fn sq8_widen(
        self,
        _fpu: &Fpu,
        row: &[f32],
        scale: u32,
        lo: &mut [f32],
        hi: &mut [f32],
    ) {
        // SAFETY: SSE2 is on every x86-64 CPU; the FPU is ours (`Fpu`).
        unsafe { simd::sq8_widen(row, scale, lo, hi) }
    }

    /// A row times a factor, as order keys (see `simd::sq8_scaled_keys`).
    pub(crate) fn sq8_scaled_keys(self, _fpu: &Fpu, row: &[f32], scale: u32, out: &mut [u32]) {
        // SAFETY: As in `sq8_widen`.
        unsafe { simd::sq8_scaled_keys(row, scale, out) }
    }

    /// The factor that makes a row of squared norm `norm_sq` a unit
    /// vector (see `simd::sq8_unit_scale`).
    pub(crate) fn sq8_unit_scale(self, _fpu: &Fpu, norm_sq: NormSq) -> u32 {
        // SAFETY: As in `sq8_widen`.
        unsafe { simd::sq8_unit_scale(norm_sq) }
    }

    /// Trains an SQ8 quantizer (see `simd::sq8_train`).
    pub(crate) fn sq8_train(
        self,
        _fpu: &Fpu,
        lo: &[f32],
        hi: &[f32],
        quant: &mut [f32],
    ) -> Option<simd::Sq8Scale> {
        // SAFETY: As in `sq8_widen`.
        unsafe { simd::sq8_train(lo, hi, quant) }
    }

    /// Encodes a row into SQ8 codes (see `simd::sq8_encode`).
    pub(crate) fn sq8_encode(
        self,
        _fpu: &Fpu,
        row: &[f32],
        scale: u32,
        quant: &[f32],
        q: simd::Sq8Scale,
        codes: &mut [u8],
    ) -> Option<simd::Sq8Coded> {
        // SAFETY: As in `sq8_widen`.
        unsafe { simd::sq8_encode(row, scale, quant, q, codes) }
    }

    /// A query's SQ8 weights (see `simd::sq8_query`).
    pub(crate) fn sq8_query(
        self,
        _fpu: &Fpu,
        query: &[f32],
        quant: &[f32],
        scale: simd::Sq8Scale,
        l2: bool,
        weights: &mut [i16],
    ) -> Option<simd::Sq8Keys> {
        // SAFETY: As in `sq8_widen`.
        unsafe { simd::sq8_query(query, quant, scale, l2, weights) }
    }
}
