// SPDX-License-Identifier: GPL-2.0

//! Deletion (tombstones), repair (reconnection and purge of tombstones)
//! and slot moves.
//!
//! `delete` only marks the node: searches still walk through it (so the
//! graph stays connected) but never return it. Its vector must stay
//! readable until `repair` purges it. `repair` rebuilds, on every level,
//! the list of each live node that points at a tombstone: the candidates
//! are its live neighbours plus the live neighbours of its deleted
//! neighbours, and the HNSW heuristic picks the new list. Then tombstones
//! are dropped, their node ids and slots freed, and the entry point moved
//! to a live node of the highest level if it was deleted.

use super::graph::{Graph, DELETED, FREE, LIVE, NONE};
use super::insert::{select, Work};
use super::search::{run_batch, SearchScratch};
use super::vec::{Alloc, FVec};
use super::{Distances, Error, Hnsw, Target};

impl<A: Alloc> Hnsw<A> {
    /// Marks `slot` deleted. It is no longer returned by searches; its
    /// vector must stay readable (and at the same slot, or moved with
    /// [`move_slot`](Self::move_slot)) until [`repair`](Self::repair) has
    /// run. Cannot fail except with [`Error::UnknownSlot`] (not in the
    /// index, or already deleted). Deleting the last live node purges
    /// everything at once.
    pub fn delete(&mut self, slot: u32) -> Result<(), Error> {
        let g = &mut self.g;
        let node = g.node_of(slot);
        match g.node_state.get_mut(node as usize) {
            Some(s) if *s == LIVE => *s = DELETED,
            _ => return Err(Error::UnknownSlot),
        }
        g.live -= 1;
        g.deleted += 1;
        // A repair in progress restarts: lists it already rebuilt may
        // point at this new tombstone.
        self.cursor = RepairCursor::START;
        if g.live == 0 {
            // Nothing to reconnect.
            purge(g);
        }
        Ok(())
    }

    /// True when tombstones reach `Params::repair_percent` of the nodes:
    /// time to call [`repair`](Self::repair).
    pub fn needs_repair(&self) -> bool {
        let g = &self.g;
        g.deleted > 0
            && g.deleted.saturating_mul(100)
                >= (g.live + g.deleted).saturating_mul(self.params.repair_percent as usize)
    }

    /// Reconnects the neighbours of deleted nodes and purges the
    /// tombstones; afterwards their slots are free (the caller may reuse
    /// or compact the rows). A loop over [`repair_step`](Self::repair_step)
    /// without a budget limit. On `Err(OutOfMemory)` the index is
    /// consistent (searches and every operation work; some lists may be
    /// rebuilt already) and a later call continues where this one stopped.
    pub fn repair<D: Distances>(&mut self, d: &mut D) -> Result<(), Error> {
        while !self.repair_step(d, usize::MAX)? {}
        Ok(())
    }

    /// One step of an incremental [`repair`](Self::repair): rebuilds at
    /// most about `budget` lists (one unit each; scanning 64 nodes whose
    /// lists need nothing also counts one unit), then returns. Returns
    /// `Ok(true)` once the repair is complete: tombstones purged, their
    /// slots free, the entry point live (also at once when there is
    /// nothing to repair), `Ok(false)` if more steps are needed.
    ///
    /// Between two steps the index is consistent: searches (`&self`) may
    /// run, and see tombstones as before (walked through, never
    /// returned). The caller must not call [`insert`](Self::insert) or
    /// [`delete`](Self::delete) between the steps of one repair; if it
    /// does anyway, the next step restarts the repair from the beginning
    /// (lists already rebuilt are still valid, only the work is redone).
    /// [`move_slot`](Self::move_slot) does not change the graph and may be
    /// called between steps. The last step (scan done) purges the
    /// tombstones and compacts the upper-level lists: O(nodes), no
    /// distance.
    ///
    /// Each step reserves all it needs before changing anything; on
    /// `Err(OutOfMemory)` nothing was changed by this step and the index
    /// is consistent; calling again continues the same repair.
    pub fn repair_step<D: Distances>(&mut self, d: &mut D, budget: usize) -> Result<bool, Error> {
        let Self {
            g,
            scratch,
            work,
            cursor,
            ..
        } = self;
        if g.deleted == 0 {
            *cursor = RepairCursor::START;
            return Ok(true);
        }
        let m0 = g.m0;
        let maxc = m0 + m0 * m0;
        work.reserve(m0, maxc, 0)?;
        // (Emptied first: `prepare` reserves beyond the current length.)
        scratch.ids.clear();
        scratch.slots.clear();
        scratch.keys.clear();
        scratch.prepare(g.nodes(), maxc, 0)?;
        g.free_nodes.try_reserve(g.deleted)?;

        let budget = budget.max(1);
        let (mut units, mut scanned) = (0usize, 0usize);
        while cursor.level <= g.max_level {
            let lc = cursor.level;
            while (cursor.node as usize) < g.nodes() {
                if units >= budget {
                    return Ok(false);
                }
                let node = cursor.node;
                cursor.node += 1;
                scanned += 1;
                if scanned >= 64 {
                    scanned = 0;
                    units += 1;
                }
                if !g.is_live(node) || g.level(node) < lc {
                    continue;
                }
                if !g
                    .neighbours(node, lc)
                    .iter()
                    .any(|&x| g.state(x) == DELETED)
                {
                    continue;
                }
                rebuild(g, scratch, work, d, node, lc);
                units += 1;
            }
            cursor.level += 1;
            cursor.node = 0;
        }
        purge(g);
        compact_upper(g);
        *cursor = RepairCursor::START;
        Ok(true)
    }

    /// Tells the index that the vector of `from` (live or deleted) now
    /// lives at slot `to`, which must be free. O(1): the graph refers to
    /// internal node ids, not slots.
    pub fn move_slot(&mut self, from: u32, to: u32) -> Result<(), Error> {
        let g = &mut self.g;
        let node = g.node_of(from);
        if node == NONE {
            return Err(Error::UnknownSlot);
        }
        if to == NONE {
            return Err(Error::InvalidSlot);
        }
        if from == to {
            return Ok(());
        }
        if g.node_of(to) != NONE {
            return Err(Error::SlotInUse);
        }
        if g.slot_node.len() <= to as usize {
            g.slot_node.try_resize(to as usize + 1, NONE)?;
        }
        if let Some(x) = g.slot_node.get_mut(to as usize) {
            *x = node;
        }
        if let Some(x) = g.slot_node.get_mut(from as usize) {
            *x = NONE;
        }
        if let Some(x) = g.node_slot.get_mut(node as usize) {
            *x = to;
        }
        g.identity = false;
        trim_slots(g);
        Ok(())
    }
}

/// Where an incremental repair stands: the next list to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RepairCursor {
    pub(crate) level: usize,
    pub(crate) node: u32,
}

impl RepairCursor {
    /// The beginning (also: no repair in progress).
    pub(crate) const START: Self = Self { level: 0, node: 0 };
}

/// Rebuilds the list of the live `node` on `lc` from its live neighbours
/// and the live neighbours of its deleted ones, with the heuristic.
/// Allocates nothing after `work.reserve(m0, m0 + m0 * m0, _)` and
/// `scratch.prepare(nodes, m0 + m0 * m0, _)`.
fn rebuild<A: Alloc, D: Distances>(
    g: &mut Graph<A>,
    scratch: &mut SearchScratch<A>,
    work: &mut Work<A>,
    d: &mut D,
    node: u32,
    lc: usize,
) {
    let m0 = g.m0;
    scratch.new_generation();
    scratch.visit(node);
    scratch.ids.clear();
    for &x in g.neighbours(node, lc) {
        let state = g.state(x);
        if state == LIVE && scratch.visit(x) {
            let _ = scratch.ids.push_within_capacity(x);
        } else if state == DELETED {
            for &y in g.neighbours(x, lc) {
                if g.is_live(y) && scratch.visit(y) {
                    let _ = scratch.ids.push_within_capacity(y);
                }
            }
        }
    }
    let n = scratch.ids.len();
    scratch.slots.clear();
    for &id in scratch.ids.iter() {
        let _ = scratch.slots.push_within_capacity(g.slot(id));
    }
    scratch.keys.clear();
    for _ in 0..n {
        let _ = scratch.keys.push_within_capacity(u32::MAX);
    }
    let from = Target::Slot(g.slot(node));
    for (s, k) in scratch.slots.chunks(m0).zip(scratch.keys.chunks_mut(m0)) {
        run_batch(d, &mut scratch.batches, from, s, k);
    }
    work.cands.clear();
    for (&k, &id) in scratch.keys.iter().zip(scratch.ids.iter()) {
        let _ = work.cands.push_within_capacity((k, id));
    }
    work.cands.sort_unstable();
    select(
        g,
        d,
        &mut scratch.batches,
        &work.cands,
        g.cap(lc),
        &mut work.out,
        &mut work.pslots,
        &mut work.pkeys,
    );
    g.set_neighbours(node, lc, &work.out);
}

/// Drops trailing free slots.
fn trim_slots<A: Alloc>(g: &mut Graph<A>) {
    while g.slot_node.last() == Some(&NONE) {
        g.slot_node.pop();
    }
}

/// Frees every deleted node (lists of live nodes must no longer point at
/// them, unless no live node is left) and fixes the entry point. The free
/// list must have room for them, or the ids are leaked (still correct).
fn purge<A: Alloc>(g: &mut Graph<A>) {
    let stride = 1 + g.m0;
    for node in 0..g.nodes() {
        if g.node_state.get(node) != Some(&DELETED) {
            continue;
        }
        let slot = g.node_slot.get(node).copied().unwrap_or(NONE);
        if let Some(x) = g.slot_node.get_mut(slot as usize) {
            *x = NONE;
        }
        if let Some(x) = g.node_slot.get_mut(node) {
            *x = NONE;
        }
        if let Some(x) = g.node_state.get_mut(node) {
            *x = FREE;
        }
        if let Some(x) = g.node_level.get_mut(node) {
            *x = 0;
        }
        if let Some(x) = g.node_upper.get_mut(node) {
            *x = NONE;
        }
        if let Some(x) = g.level0.get_mut(node * stride) {
            *x = 0;
        }
        if g.free_nodes.try_push(node as u32).is_err() {
            // Leaked id (still FREE, never reused): harmless.
        }
    }
    g.deleted = 0;
    trim_slots(g);
    if !g.is_live(g.entry) {
        g.entry = NONE;
        g.max_level = 0;
        for node in 0..g.nodes() as u32 {
            if g.is_live(node) && (g.entry == NONE || g.level(node) > g.max_level) {
                g.entry = node;
                g.max_level = g.level(node);
            }
        }
    }
    if g.live == 0 {
        // Nothing left: drop all node ids and storage.
        g.level0.clear();
        g.upper.clear();
        g.node_upper.clear();
        g.node_level.clear();
        g.node_state.clear();
        g.node_slot.clear();
        g.identity = true;
        g.free_nodes.clear();
    }
}

/// Rewrites `upper` with only the blocks of live nodes, when more than half
/// of it is dead. Skipped if the new array cannot be allocated.
fn compact_upper<A: Alloc>(g: &mut Graph<A>) {
    let words = 1 + g.m;
    let used: usize = (0..g.nodes() as u32)
        .filter(|&n| g.is_live(n))
        .map(|n| g.level(n) * words)
        .sum();
    if used * 2 >= g.upper.len() {
        return;
    }
    let mut new = FVec::new(g.upper.allocator().clone());
    if new.try_reserve(used).is_err() {
        return;
    }
    for node in 0..g.nodes() {
        let Some(&base) = g.node_upper.get(node) else {
            break;
        };
        if base == NONE {
            continue;
        }
        let len = g.level(node as u32) * words;
        let start = new.len() as u32;
        if let Some(block) = g.upper.get(base as usize..base as usize + len) {
            for &w in block {
                let _ = new.push_within_capacity(w);
            }
        }
        if let Some(x) = g.node_upper.get_mut(node) {
            *x = start;
        }
    }
    g.upper.swap_with(&mut new);
}
