// SPDX-License-Identifier: GPL-2.0

//! The HNSW index of `userland/vexfs-hnsw`, compiled from the same source
//! files as the userland crate (whose `lib.rs` only declares these modules
//! and adds the `std` allocator), so the graph the kernel builds is the one
//! the native tests and benchmarks measure.

#[path = "../userland/vexfs-hnsw/src/delete.rs"]
mod delete;
#[path = "../userland/vexfs-hnsw/src/graph.rs"]
mod graph;
#[path = "../userland/vexfs-hnsw/src/id_map.rs"]
mod id_map;
#[path = "../userland/vexfs-hnsw/src/index.rs"]
mod index;
#[path = "../userland/vexfs-hnsw/src/insert.rs"]
mod insert;
#[path = "../userland/vexfs-hnsw/src/persist.rs"]
mod persist;
#[path = "../userland/vexfs-hnsw/src/rng.rs"]
mod rng;
#[path = "../userland/vexfs-hnsw/src/search.rs"]
mod search;
#[path = "../userland/vexfs-hnsw/src/vec.rs"]
mod vec;

pub(crate) use id_map::IdMap;
pub(crate) use index::*;
pub(crate) use insert::Plan;
pub(crate) use search::SearchScratch;
pub(crate) use vec::{prefetch, Alloc, FVec};
