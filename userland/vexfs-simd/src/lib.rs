// SPDX-License-Identifier: GPL-2.0

//! f32 distance kernels for VexFS k-NN search: squared L2, cosine distance
//! and negated dot product, each on a scalar SSE, an AVX2 + FMA and an
//! AVX-512F path.
//!
//! The kernels live in `simd.rs`, which the kernel module compiles too
//! (`#[path]`), so it is `core`-only and does all floating-point work in
//! inline assembly: the kernel's Rust target is soft-float, where f32
//! arithmetic in Rust calls panicking stubs. See that module's docs.
//!
//! Pick a path with [`Path::best`] from the CPU's features (in userland,
//! `detect()`, with the `std` feature), then call [`distance`] or
//! [`distances`].
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(target_arch = "x86_64"))]
compile_error!("vexfs-simd is x86-64 assembly");

mod simd;
pub use simd::*;

/// Whether this CPU (and OS) supports `path`.
#[cfg(feature = "std")]
pub fn supported(path: Path) -> bool {
    let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    match path {
        Path::Scalar => true,
        Path::Avx2 => avx2,
        Path::Avx512 => avx2 && std::is_x86_feature_detected!("avx512f"),
    }
}

/// The best path this CPU (and OS) supports.
#[cfg(feature = "std")]
pub fn detect() -> Path {
    Path::best(
        std::is_x86_feature_detected!("avx2"),
        std::is_x86_feature_detected!("fma"),
        std::is_x86_feature_detected!("avx512f"),
    )
}
