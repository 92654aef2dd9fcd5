// SPDX-License-Identifier: GPL-2.0

//! The public types: [`Hnsw`], its parameters, errors, the distance trait.

use super::delete::RepairCursor;
use super::graph::{Graph, DELETED, FREE, LIVE, MAX_LEVEL, NONE};
use super::insert::{Plan, Work};
use super::rng::Rng;
use super::search::{self, SearchScratch};
use super::vec::Alloc;

/// Errors. Every failure is reported; nothing panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// An allocation failed. The index is as it was before the call.
    OutOfMemory,
    /// The slot is not in the index (or is already deleted).
    UnknownSlot,
    /// The slot already holds a node (live or not yet repaired).
    SlotInUse,
    /// `u32::MAX` is not a slot.
    InvalidSlot,
    /// `M` is below 2 or above 127 (or, for [`Hnsw::decode`], differs
    /// from the `M` of the encoding).
    InvalidParams,
    /// [`Hnsw::decode`]: the bytes are not a valid encoding of an index
    /// (bad magic or version, wrong length, or any inconsistency).
    Corrupt,
}

/// Which point distances are measured from in one batch.
pub enum Target<'a, Q: ?Sized> {
    /// A search query.
    Query(&'a Q),
    /// A stored vector, by slot (during insert and repair).
    Slot(u32),
}

impl<Q: ?Sized> Clone for Target<'_, Q> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Q: ?Sized> Copy for Target<'_, Q> {}

/// The caller's vectors and distance function. The index never touches a
/// float: it sees distances only as `u32` order keys (smaller is nearer,
/// NaN as `u32::MAX`, e.g. `vexfs_simd::order_key`).
pub trait Distances {
    /// The query type: `[f32]`, or a struct with a precomputed norm.
    type Query: ?Sized;

    /// Writes into `out[i]` the order key of the distance from `from` to
    /// the vector stored at `slots[i]` (`out.len() == slots.len()`, at
    /// most `2M + 1`, and up to `2M` per call during `repair`). All of
    /// one node's neighbours come in one call, so the kernel can compute
    /// them in one FPU section (splitting long batches as it likes).
    fn batch(&mut self, from: Target<'_, Self::Query>, slots: &[u32], out: &mut [u32]);

    /// Called every [`CHECKPOINT_BATCHES`](crate::CHECKPOINT_BATCHES)
    /// batches, outside any batch: the kernel reschedules here
    /// (`cond_resched`).
    fn checkpoint(&mut self) {}

    /// Whether a search may return the live vector at `slot` (a filter:
    /// the kernel admits only files the caller may read). A refused node
    /// is still walked through, so the graph stays connected for the
    /// search; it only never enters the results. Called outside any
    /// batch, at most once per node and search, and only for a node that
    /// would enter the results. Inserts and repairs never call it.
    fn accept(&mut self, _slot: u32) -> bool {
        true
    }
}

/// A search result: a slot and the order key of its distance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Neighbour {
    /// Order key of the distance (compared first).
    pub key: u32,
    /// The caller's slot.
    pub slot: u32,
}

/// Index parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Neighbours per node on levels above 0 (2M on level 0); 2 to 127.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Seed of the level generator.
    pub seed: u64,
    /// [`Hnsw::needs_repair`] when tombstones reach this percentage of
    /// the nodes.
    pub repair_percent: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            seed: 0x5eed_0f5e_ed00,
            repair_percent: 10,
        }
    }
}

/// Default beam width of a search (`ef`); any `ef` can be passed per search.
pub const DEFAULT_EF: usize = 64;

/// An HNSW graph over the caller's slots.
///
/// Mutations take `&mut self`; [`search`](Self::search) takes `&self` and
/// its own [`SearchScratch`], so searches may run concurrently with each
/// other (not with mutations: the caller's lock decides).
pub struct Hnsw<A: Alloc> {
    pub(crate) params: Params,
    pub(crate) g: Graph<A>,
    pub(crate) rng: Rng,
    /// Scratch of the mutating operations.
    pub(crate) scratch: SearchScratch<A>,
    pub(crate) work: Work<A>,
    /// The search half of [`Hnsw::insert`].
    pub(crate) plan: Plan<A>,
    /// Progress of an incremental repair ([`Hnsw::repair_step`]).
    pub(crate) cursor: RepairCursor,
}

impl<A: Alloc> Hnsw<A> {
    /// An empty index; allocates nothing until the first insert.
    pub fn new(params: Params, alloc: A) -> Result<Self, Error> {
        if params.m < 2 || params.m > 127 {
            return Err(Error::InvalidParams);
        }
        Ok(Self {
            params,
            g: Graph::new(params.m, alloc.clone()),
            rng: Rng::new(params.seed),
            scratch: SearchScratch::new(alloc.clone()),
            work: Work::new(alloc.clone()),
            plan: Plan::new(alloc),
            cursor: RepairCursor::START,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Live (searchable) nodes.
    pub fn len(&self) -> usize {
        self.g.live
    }

    /// True if no node is live.
    pub fn is_empty(&self) -> bool {
        self.g.live == 0
    }

    /// Deleted nodes not yet purged by [`repair`](Self::repair).
    pub fn deleted(&self) -> usize {
        self.g.deleted
    }

    /// True if `slot` is live.
    pub fn contains(&self, slot: u32) -> bool {
        self.g.is_live(self.g.node_of(slot))
    }

    /// True if `slot` has a node, live or deleted but not yet purged: its
    /// vector must stay where it is (or move with
    /// [`move_slot`](Self::move_slot)), and the slot cannot be reused.
    pub fn holds(&self, slot: u32) -> bool {
        self.g.node_of(slot) != NONE
    }

    /// Highest level in use.
    pub fn max_level(&self) -> usize {
        self.g.max_level
    }

    /// Bytes allocated by the index (not counting [`SearchScratch`]es the
    /// caller made).
    pub fn bytes(&self) -> usize {
        self.g.bytes() + self.scratch.bytes() + self.work.bytes() + self.plan.bytes()
    }

    /// A scratch for [`search`](Self::search), on `alloc`.
    pub fn new_scratch(&self, alloc: A) -> SearchScratch<A> {
        SearchScratch::new(alloc)
    }

    /// The `k` nearest live slots to `query`, written to `out` sorted by
    /// key then slot; returns how many were written: `min(k, out.len(),
    /// live)`, or fewer if the graph search finds fewer. `ef` (the beam
    /// width, [`DEFAULT_EF`]) is raised to `k`; when it covers every live
    /// node the search is exact (a scan).
    pub fn search<D: Distances>(
        &self,
        scratch: &mut SearchScratch<A>,
        d: &mut D,
        query: &D::Query,
        k: usize,
        ef: usize,
        out: &mut [Neighbour],
    ) -> Result<usize, Error> {
        search::search(&self.g, scratch, d, query, k, ef, out)
    }

    /// Checks the graph's invariants (for tests): every list entry is a
    /// node with that level, lists are within capacity and have no self
    /// or duplicate entries, slots and nodes map both ways, the counts and
    /// entry point are right.
    pub fn check(&self) -> Result<(), &'static str> {
        let g = &self.g;
        let (mut live, mut deleted) = (0, 0);
        for node in 0..g.nodes() as u32 {
            match g.state(node) {
                FREE => continue,
                LIVE => live += 1,
                DELETED => deleted += 1,
                _ => return Err("bad state"),
            }
            if g.node_of(g.slot(node)) != node {
                return Err("slot map");
            }
            if g.identity && g.slot(node) != node {
                return Err("identity");
            }
            if g.level(node) > MAX_LEVEL || g.level(node) > g.max_level {
                return Err("level");
            }
            for lc in 0..=g.level(node) {
                let list = g.neighbours(node, lc);
                if list.len() > g.cap(lc) {
                    return Err("overfull");
                }
                for (i, &x) in list.iter().enumerate() {
                    if x == node || list[..i].contains(&x) {
                        return Err("self or duplicate edge");
                    }
                    if g.state(x) == FREE || g.level(x) < lc {
                        return Err("edge to free node or missing level");
                    }
                }
            }
        }
        for (slot, &node) in g.slot_node.iter().enumerate() {
            if node != NONE && g.slot(node) as usize != slot {
                return Err("node map");
            }
        }
        if live != g.live || deleted != g.deleted {
            return Err("counts");
        }
        if live + deleted > 0 && (g.entry == NONE || g.level(g.entry) != g.max_level) {
            return Err("entry");
        }
        Ok(())
    }
}
