// SPDX-License-Identifier: GPL-2.0

//! HNSW (hierarchical navigable small world) approximate k-NN index for
//! VexFS, `no_std`, for the kernel module and userland alike.
//!
//! # Floating point
//!
//! The kernel's Rust target is soft-float, so the index does no float
//! arithmetic and no float comparison: distances come from the caller's
//! [`Distances`] as `u32` order keys (smaller is nearer), which it only
//! compares as integers. Levels are drawn with an integer PRNG
//! (splitmix64): the level grows while `rng % M == 0`, which gives the
//! paper's geometric distribution with normalisation `1 / ln M`, capped at
//! 16.
//!
//! # Memory
//!
//! Every allocation goes through the caller's [`Alloc`] into [`FVec`]s and
//! can fail: operations return [`Error::OutOfMemory`] and leave the index
//! as it was (insert and repair reserve everything before changing
//! anything). The only `unsafe` code is in `vec.rs` (and `StdAlloc`).
//!
//! # Slots and node ids
//!
//! The caller stores the vectors and names them by dense `u32` slots (in
//! the kernel: the row number in its 16 KiB chunks). The graph itself uses
//! internal node ids, with a slot <-> node map (8 bytes per node). So when
//! the caller compacts rows by moving the last row into a hole,
//! [`Hnsw::move_slot`] is O(1). Had lists held slots, each move would have
//! to find and rewrite every list that mentions the moved row: a scan of
//! the whole graph per move, or reverse edges that double the memory and
//! must be kept in sync by every insert and prune. The translation costs
//! nothing extra: ids are gathered into a batch buffer before each
//! distance call anyway, and they are translated there.
//!
//! # Delete and repair
//!
//! [`Hnsw::delete`] only marks a tombstone (it cannot fail): searches walk
//! through tombstones, so connectivity is kept, but never return them.
//! The deleted vector must stay readable at its slot (or be moved with
//! `move_slot`) until [`Hnsw::repair`], which the caller runs when
//! [`Hnsw::needs_repair`] says tombstones reached `repair_percent` of the
//! nodes: each live list that points at a tombstone is rebuilt with the
//! heuristic from its live neighbours and the live neighbours of its
//! deleted ones; then tombstones are dropped, their slots become free and
//! the entry point moves to a live node if needed. [`Hnsw::repair_step`]
//! does the same work in bounded steps (the index is consistent for
//! searches between them; no insert or delete between the steps of one
//! repair, or it restarts), so the kernel can drop its write lock between
//! steps; `repair` is a loop over it. The kernel's flow is: delete (row
//! kept), then after the repair compact the rows, calling
//! `move_slot(last, hole)` for each move.
//!
//! # Concurrency and preemption
//!
//! Mutations take `&mut self` (and use scratch inside the index); searches
//! take `&self` and a caller-owned [`SearchScratch`] (visited set as
//! generation stamps, never cleared; heaps; batch buffers), so several
//! searches can run at once. The caller's lock (mutex or rwlock; RCU would
//! need a copy-on-write graph) orders searches against mutations.
//! [`Distances::checkpoint`] is called every [`CHECKPOINT_BATCHES`]
//! distance batches for `cond_resched()`.
//!
//! # Ids
//!
//! The collection's id -> slot map, [`IdMap`], lives here too: a flat
//! open-addressing table on the same fallible [`Alloc`], hashed with a
//! per-map secret key because users choose the ids (see `id_map.rs`).
//!
//! # Persistence
//!
//! [`Hnsw::encode`] streams the graph (lists, slots, free ids, counts,
//! the level generator's state) as a versioned little-endian byte format,
//! and [`Hnsw::decode`] rebuilds an index from it that behaves exactly like
//! the original, validating everything (the bytes come from a disk):
//! anything inconsistent is [`Error::Corrupt`]. The layout is documented
//! in `persist.rs`.
//!
//! # Kernel build
//!
//! Modules refer to each other with `super::` only, and this file holds
//! only crate attributes, docs and module declarations, so the kernel can
//! build the same files as an inline module: `mod hnsw { #[path = ...] mod
//! index; pub use index::*; #[path = ...] mod vec; pub use vec::*; ... }`,
//! one `#[path]` per file below (without `StdAlloc` and `native.rs`, the
//! userland `NativeStore` on `vexfs-simd`, which are behind the `std`
//! feature; `native.rs` is the only other file with `unsafe`, for the
//! SIMD kernels).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod delete;
mod graph;
mod id_map;
mod index;
mod insert;
mod persist;
mod rng;
mod search;
mod vec;

#[cfg(feature = "std")]
mod native;
#[cfg(feature = "std")]
pub use native::{read_npy_f32, NativeQuery, NativeStore};
#[cfg(feature = "std")]
pub use vexfs_simd::Metric;

pub use id_map::IdMap;
pub use index::*;
pub use insert::Plan;
pub use search::{SearchScratch, CHECKPOINT_BATCHES};
pub use vec::*;

/// [`Alloc`] on the global allocator (userland, tests).
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default)]
pub struct StdAlloc;

#[cfg(feature = "std")]
impl Alloc for StdAlloc {
    fn alloc(&self, layout: core::alloc::Layout) -> Option<core::ptr::NonNull<u8>> {
        // SAFETY: `FVec` only asks for non-zero sizes.
        core::ptr::NonNull::new(unsafe { std::alloc::alloc(layout) })
    }

    unsafe fn free(&self, ptr: core::ptr::NonNull<u8>, layout: core::alloc::Layout) {
        // SAFETY: the caller guarantees `ptr` came from `alloc` with `layout`.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }
}
