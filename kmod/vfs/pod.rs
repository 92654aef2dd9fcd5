// SPDX-License-Identifier: GPL-2.0

//! Plain data declarations for types the module shares with userland (the
//! ioctl ABI, the HNSW index, the SIMD kernels): the kernel's byte traits
//! (`FromBytes`, `AsBytes`, `Zeroable`) cannot be derived in those crates,
//! which build outside the kernel, so they are declared here, each with
//! why every bit pattern (or all zeroes) is valid.

use kernel::prelude::*;
use kernel::transmute::{AsBytes, FromBytes};

use crate::abi;

// SAFETY: `repr(C)` structs of integers with explicit padding fields (the
// ABI file asserts their sizes): every byte is initialised and any bit
// pattern is valid.
unsafe impl AsBytes for abi::VersionInfo {}
// SAFETY: As above.
unsafe impl AsBytes for abi::Stats {}
// SAFETY: As above.
unsafe impl FromBytes for abi::CollectionParams {}
// SAFETY: As above.
unsafe impl FromBytes for abi::InsertRequest {}
// SAFETY: As above.
unsafe impl FromBytes for abi::DeleteRequest {}
// SAFETY: As above.
unsafe impl FromBytes for abi::GetRequest {}
// SAFETY: As above.
unsafe impl AsBytes for abi::GetRequest {}
// SAFETY: As above.
unsafe impl FromBytes for abi::SearchRequest {}
// SAFETY: As above.
unsafe impl FromBytes for abi::AttachRequest {}
// SAFETY: As above.
unsafe impl AsBytes for abi::CollectionInfo {}
// SAFETY: u64, f32, u32: no padding, every field initialised by the kernel.
unsafe impl AsBytes for abi::SearchHit {}
// SAFETY: All-zero is a valid `SearchHit`.
unsafe impl Zeroable for abi::SearchHit {}
// SAFETY: A `u32` newtype: all-zero is valid (+0.0).
unsafe impl Zeroable for crate::simd::NormSq {}
// SAFETY: Two integers: all-zero is a valid `Neighbour`.
unsafe impl Zeroable for crate::hnsw::Neighbour {}
