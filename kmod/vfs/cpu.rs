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
}
