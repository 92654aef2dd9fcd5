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
use super::insert::select;
use super::search::run_batch;
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
    /// or compact the rows). Costs one pass over all lists plus, per
    /// affected list, one distance batch per candidate chunk and one per
    /// heuristic step. On `Err(OutOfMemory)` (only possible before any
    /// change) the index is unchanged.
    pub fn repair<D: Distances>(&mut self, d: &mut D) -> Result<(), Error> {
        let Self {
            g, scratch, work, ..
        } = self;
        if g.deleted == 0 {
            return Ok(());
        }
        let m0 = g.m0;
        let maxc = m0 + m0 * m0;
        work.reserve(m0, maxc, 0)?;
        scratch.prepare(g.nodes(), maxc, 0)?;
        g.free_nodes.try_reserve(g.deleted)?;

        for lc in 0..=g.max_level {
            for node in 0..g.nodes() as u32 {
                if !g.is_live(node) || g.level(node) < lc {
                    continue;
                }
                let list = g.neighbours(node, lc);
                if !list.iter().any(|&x| g.state(x) == DELETED) {
                    continue;
                }
                scratch.new_generation();
                scratch.visit(node);
                scratch.ids.clear();
                for &x in list {
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
        }
        purge(g);
        compact_upper(g);
        Ok(())
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
        trim_slots(g);
        Ok(())
    }
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
