// SPDX-License-Identifier: GPL-2.0

//! Nodes and their per-level adjacency lists.
//!
//! Nodes have dense internal ids (`u32`), distinct from the caller's slots;
//! `node_slot`/`slot_node` map between them, so moving a row is O(1).
//! Level 0 lists live in one array with a fixed stride of `1 + 2M` words
//! (count, then ids). A node with level `L > 0` also owns `L` consecutive
//! blocks of `1 + M` words in the `upper` array, starting at
//! `node_upper[node]`.

use super::vec::{Alloc, FVec};
use super::Error;

/// "No node" / "no slot".
pub(crate) const NONE: u32 = u32::MAX;
/// Levels above 0 are capped at this.
pub(crate) const MAX_LEVEL: usize = 16;

/// Node states.
pub(crate) const FREE: u8 = 0;
pub(crate) const LIVE: u8 = 1;
pub(crate) const DELETED: u8 = 2;

pub(crate) struct Graph<A: Alloc> {
    /// Capacity of lists on levels > 0.
    pub(crate) m: usize,
    /// Capacity of level-0 lists (2M).
    pub(crate) m0: usize,
    pub(crate) level0: FVec<u32, A>,
    pub(crate) upper: FVec<u32, A>,
    pub(crate) node_upper: FVec<u32, A>,
    pub(crate) node_level: FVec<u8, A>,
    pub(crate) node_state: FVec<u8, A>,
    pub(crate) node_slot: FVec<u32, A>,
    pub(crate) slot_node: FVec<u32, A>,
    pub(crate) free_nodes: FVec<u32, A>,
    /// Entry point (a live or deleted node), or `NONE` when there are no
    /// nodes.
    pub(crate) entry: u32,
    pub(crate) max_level: usize,
    pub(crate) live: usize,
    pub(crate) deleted: usize,
    /// True while every node in use has its own id as slot (nodes were
    /// added in slot order and never moved): searches then skip the
    /// node -> slot lookup, one random memory access per distance.
    pub(crate) identity: bool,
}

impl<A: Alloc> Graph<A> {
    pub(crate) fn new(m: usize, alloc: A) -> Self {
        Self {
            m,
            m0: 2 * m,
            level0: FVec::new(alloc.clone()),
            upper: FVec::new(alloc.clone()),
            node_upper: FVec::new(alloc.clone()),
            node_level: FVec::new(alloc.clone()),
            node_state: FVec::new(alloc.clone()),
            node_slot: FVec::new(alloc.clone()),
            slot_node: FVec::new(alloc.clone()),
            free_nodes: FVec::new(alloc),
            entry: NONE,
            max_level: 0,
            live: 0,
            deleted: 0,
            identity: true,
        }
    }

    /// Node ids in use or free (the length of the per-node arrays).
    pub(crate) fn nodes(&self) -> usize {
        self.node_state.len()
    }

    pub(crate) fn state(&self, node: u32) -> u8 {
        self.node_state.get(node as usize).copied().unwrap_or(FREE)
    }

    pub(crate) fn is_live(&self, node: u32) -> bool {
        self.state(node) == LIVE
    }

    pub(crate) fn level(&self, node: u32) -> usize {
        self.node_level.get(node as usize).copied().unwrap_or(0) as usize
    }

    pub(crate) fn slot(&self, node: u32) -> u32 {
        self.node_slot.get(node as usize).copied().unwrap_or(NONE)
    }

    pub(crate) fn node_of(&self, slot: u32) -> u32 {
        self.slot_node.get(slot as usize).copied().unwrap_or(NONE)
    }

    /// Capacity of a list on `level`.
    pub(crate) fn cap(&self, level: usize) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// Where the block (count + ids) of `node` on `level` starts, and in
    /// which array (`true`: level 0).
    fn block(&self, node: u32, level: usize) -> Option<(bool, usize)> {
        if self.state(node) == FREE || level > self.level(node) {
            return None;
        }
        if level == 0 {
            Some((true, node as usize * (1 + self.m0)))
        } else {
            let base = *self.node_upper.get(node as usize)?;
            if base == NONE {
                return None;
            }
            Some((false, base as usize + (level - 1) * (1 + self.m)))
        }
    }

    /// The neighbours of `node` on `level` (empty if it has no such level).
    pub(crate) fn neighbours(&self, node: u32, level: usize) -> &[u32] {
        let cap = self.cap(level);
        let Some((zero, start)) = self.block(node, level) else {
            return &[];
        };
        let arr = if zero { &self.level0 } else { &self.upper };
        let n = arr.get(start).map_or(0, |&c| (c as usize).min(cap));
        arr.get(start + 1..start + 1 + n).unwrap_or(&[])
    }

    /// Hints the CPU to fetch the list of `node` on `level` (the lines of
    /// its first 48 words: a whole level-0 list for M up to 23).
    #[inline(always)]
    pub(crate) fn prefetch_list(&self, node: u32, level: usize) {
        if level == 0 {
            let p = self
                .level0
                .as_ptr()
                .wrapping_add(node as usize * (1 + self.m0));
            super::vec::prefetch(p);
            super::vec::prefetch(p.wrapping_add(16));
            super::vec::prefetch(p.wrapping_add(32));
        } else if let Some(&base) = self.node_upper.get(node as usize) {
            let p = self
                .upper
                .as_ptr()
                .wrapping_add(base as usize + (level - 1) * (1 + self.m));
            super::vec::prefetch(p);
        }
    }

    /// Hints the CPU to fetch the slot of `node`.
    #[inline(always)]
    pub(crate) fn prefetch_slot(&self, node: u32) {
        super::vec::prefetch(self.node_slot.as_ptr().wrapping_add(node as usize));
    }

    /// Replaces the list of `node` on `level` with (at most `cap` of) `ids`.
    pub(crate) fn set_neighbours(&mut self, node: u32, level: usize, ids: &[u32]) {
        let cap = self.cap(level);
        let Some((zero, start)) = self.block(node, level) else {
            return;
        };
        let arr = if zero {
            &mut self.level0
        } else {
            &mut self.upper
        };
        let n = ids.len().min(cap);
        if let Some(block) = arr.get_mut(start..start + 1 + cap) {
            block[0] = n as u32;
            // A zip, not `copy_from_slice`: no length-mismatch panic path
            // (which objtool flags in the kernel build).
            for (d, &s) in block[1..].iter_mut().zip(ids) {
                *d = s;
            }
        }
    }

    /// Appends `id` to the list of `node` on `level`; false if it is full.
    pub(crate) fn push_neighbour(&mut self, node: u32, level: usize, id: u32) -> bool {
        let cap = self.cap(level);
        let Some((zero, start)) = self.block(node, level) else {
            return true;
        };
        let arr = if zero {
            &mut self.level0
        } else {
            &mut self.upper
        };
        let Some(block) = arr.get_mut(start..start + 1 + cap) else {
            return true;
        };
        let n = block[0] as usize;
        if n >= cap {
            return false;
        }
        block[1 + n] = id;
        block[0] += 1;
        true
    }

    /// Reserves everything `add_node` needs for a node of `level`.
    pub(crate) fn reserve_node(&mut self, level: usize) -> Result<(), Error> {
        if self.free_nodes.is_empty() {
            if self.nodes() >= NONE as usize - 1 {
                return Err(Error::OutOfMemory);
            }
            self.level0.try_reserve(1 + self.m0)?;
            self.node_upper.try_reserve(1)?;
            self.node_level.try_reserve(1)?;
            self.node_state.try_reserve(1)?;
            self.node_slot.try_reserve(1)?;
        }
        let words = level * (1 + self.m);
        if self.upper.len() + words >= NONE as usize {
            return Err(Error::OutOfMemory);
        }
        self.upper.try_reserve(words)
    }

    /// Adds a live node with empty lists for `slot` (whose `slot_node`
    /// entry exists). Cannot fail after `reserve_node(level)`; returns
    /// `NONE` if it was not called.
    pub(crate) fn add_node(&mut self, slot: u32, level: usize) -> u32 {
        let upper = if level == 0 {
            NONE
        } else {
            let base = self.upper.len() as u32;
            for _ in 0..level * (1 + self.m) {
                if self.upper.push_within_capacity(0).is_err() {
                    self.upper.truncate(base as usize);
                    return NONE;
                }
            }
            base
        };
        let node = if let Some(node) = self.free_nodes.pop() {
            let i = node as usize;
            if let Some(c) = self.level0.get_mut(i * (1 + self.m0)) {
                *c = 0;
            }
            for (arr, v) in [(&mut self.node_upper, upper), (&mut self.node_slot, slot)] {
                if let Some(x) = arr.get_mut(i) {
                    *x = v;
                }
            }
            if let Some(x) = self.node_level.get_mut(i) {
                *x = level as u8;
            }
            if let Some(x) = self.node_state.get_mut(i) {
                *x = LIVE;
            }
            node
        } else {
            let node = self.nodes() as u32;
            let ok = (0..1 + self.m0).all(|_| self.level0.push_within_capacity(0).is_ok())
                && self.node_upper.push_within_capacity(upper).is_ok()
                && self.node_level.push_within_capacity(level as u8).is_ok()
                && self.node_slot.push_within_capacity(slot).is_ok()
                && self.node_state.push_within_capacity(LIVE).is_ok();
            if !ok {
                // Not reserved: undo (never happens after `reserve_node`).
                let n = node as usize;
                self.level0.truncate(n * (1 + self.m0));
                self.node_upper.truncate(n);
                self.node_level.truncate(n);
                self.node_slot.truncate(n);
                return NONE;
            }
            node
        };
        if let Some(x) = self.slot_node.get_mut(slot as usize) {
            *x = node;
        }
        if node != slot {
            self.identity = false;
        }
        self.live += 1;
        node
    }

    /// Bytes allocated by the graph.
    pub(crate) fn bytes(&self) -> usize {
        self.level0.bytes()
            + self.upper.bytes()
            + self.node_upper.bytes()
            + self.node_level.bytes()
            + self.node_state.bytes()
            + self.node_slot.bytes()
            + self.slot_node.bytes()
            + self.free_nodes.bytes()
    }
}
