// SPDX-License-Identifier: GPL-2.0

//! Incremental insertion and the neighbour-selection heuristic.
//!
//! An insert reserves all the memory it may need first, then searches
//! (read-only), and only then links the node in, in steps that cannot fail:
//! an `Err` leaves the graph as it was.

use super::delete::RepairCursor;
use super::graph::{Graph, MAX_LEVEL, NONE};
use super::search::{greedy, run_batch, search_layer, Entry};
use super::vec::{Alloc, FVec};
use super::{Distances, Error, Hnsw, Target};

/// Buffers of the mutating operations (insert, repair), owned by the index.
pub(crate) struct Work<A: Alloc> {
    /// Neighbours chosen for the new node: per level, count + `M` ids.
    pub(crate) sel: FVec<u32, A>,
    /// Entry points for the next level down.
    pub(crate) eps: FVec<Entry, A>,
    /// Candidates `(key, node)` for a selection, sorted.
    pub(crate) cands: FVec<Entry, A>,
    /// Selection output.
    pub(crate) out: FVec<u32, A>,
    /// Fixed `2M + 1` buffers for one node's list: ids, slots, keys.
    pub(crate) pids: FVec<u32, A>,
    pub(crate) pslots: FVec<u32, A>,
    pub(crate) pkeys: FVec<u32, A>,
}

impl<A: Alloc> Work<A> {
    pub(crate) fn new(alloc: A) -> Self {
        Self {
            sel: FVec::new(alloc.clone()),
            eps: FVec::new(alloc.clone()),
            cands: FVec::new(alloc.clone()),
            out: FVec::new(alloc.clone()),
            pids: FVec::new(alloc.clone()),
            pslots: FVec::new(alloc.clone()),
            pkeys: FVec::new(alloc),
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.sel.bytes()
            + self.eps.bytes()
            + self.cands.bytes()
            + self.out.bytes()
            + self.pids.bytes()
            + self.pslots.bytes()
            + self.pkeys.bytes()
    }

    /// Room for `m0` neighbours per list, `cands` candidates and `sel`
    /// selection words.
    pub(crate) fn reserve(&mut self, m0: usize, cands: usize, sel: usize) -> Result<(), Error> {
        for b in [&mut self.pids, &mut self.pslots, &mut self.pkeys] {
            if b.len() < m0 + 1 {
                b.try_resize(m0 + 1, 0)?;
            }
        }
        self.out.clear();
        self.out.try_reserve(m0 + 1)?;
        self.cands.clear();
        self.cands.try_reserve(cands)?;
        self.eps.clear();
        self.eps.try_reserve(cands)?;
        self.sel.clear();
        self.sel.try_resize(sel, 0)
    }
}

/// The HNSW heuristic: walks `cands` (sorted by key to the base node) and
/// keeps a candidate only if it is nearer to the base than to every
/// neighbour kept so far, until `m` are kept. One distance batch per
/// candidate examined (from it to the kept ones). `out` must have room for
/// `m` ids and `pslots`/`pkeys` for `m - 1`; allocates nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn select<A: Alloc, D: Distances>(
    g: &Graph<A>,
    d: &mut D,
    batches: &mut u32,
    cands: &[Entry],
    m: usize,
    out: &mut FVec<u32, A>,
    pslots: &mut [u32],
    pkeys: &mut [u32],
) {
    out.clear();
    for &(key, c) in cands {
        if out.len() >= m {
            break;
        }
        let n = out.len();
        let (Some(slots), Some(keys)) = (pslots.get_mut(..n), pkeys.get_mut(..n)) else {
            break;
        };
        for (s, &o) in slots.iter_mut().zip(out.iter()) {
            *s = g.slot(o);
        }
        run_batch(d, batches, Target::Slot(g.slot(c)), slots, keys);
        if keys.iter().all(|&k| key < k) && out.push_within_capacity(c).is_err() {
            break;
        }
    }
}

/// Re-selects the list of `node` on `level` from its current neighbours
/// plus `extra` (when it overflowed). Allocates nothing after
/// `Work::reserve`.
pub(crate) fn prune<A: Alloc, D: Distances>(
    g: &mut Graph<A>,
    w: &mut Work<A>,
    d: &mut D,
    batches: &mut u32,
    node: u32,
    level: usize,
    extra: u32,
) {
    let cap = g.cap(level);
    let mut n = 0;
    for &x in g
        .neighbours(node, level)
        .iter()
        .chain(core::iter::once(&extra))
    {
        if let (Some(i), Some(s)) = (w.pids.get_mut(n), w.pslots.get_mut(n)) {
            *i = x;
            *s = g.slot(x);
            n += 1;
        }
    }
    let (Some(slots), Some(keys)) = (w.pslots.get(..n), w.pkeys.get_mut(..n)) else {
        return;
    };
    run_batch(d, batches, Target::Slot(g.slot(node)), slots, keys);
    w.cands.clear();
    for (&k, &i) in keys.iter().zip(w.pids.iter()) {
        if w.cands.push_within_capacity((k, i)).is_err() {
            break;
        }
    }
    w.cands.sort_unstable();
    select(
        g,
        d,
        batches,
        &w.cands,
        cap,
        &mut w.out,
        &mut w.pslots,
        &mut w.pkeys,
    );
    g.set_neighbours(node, level, &w.out);
}

impl<A: Alloc> Hnsw<A> {
    /// Adds `slot`, whose vector the caller has already stored (so that
    /// `d` can compute distances from and to it), to the index.
    ///
    /// Errors: [`Error::InvalidSlot`] for `u32::MAX`, [`Error::SlotInUse`]
    /// if the slot is live or a not yet repaired tombstone,
    /// [`Error::OutOfMemory`]. On error the index is unchanged.
    pub fn insert<D: Distances>(&mut self, d: &mut D, slot: u32) -> Result<(), Error> {
        if slot == NONE {
            return Err(Error::InvalidSlot);
        }
        if self.g.node_of(slot) != NONE {
            return Err(Error::SlotInUse);
        }
        let Self {
            params,
            g,
            rng,
            scratch,
            work,
            cursor,
        } = self;
        let level = rng.level(params.m, MAX_LEVEL);
        let (m, m0, efc) = (g.m, g.m0, params.ef_construction.max(1));

        // Reserve: nothing below can fail once this is done, except the
        // read-only search.
        if g.slot_node.len() <= slot as usize {
            g.slot_node.try_resize(slot as usize + 1, NONE)?;
        }
        g.reserve_node(level)?;
        let top = level.min(g.max_level);
        work.reserve(m0, efc.max(m0) + 1, (top + 1) * (1 + m))?;
        scratch.prepare(g.nodes() + 1, m0, efc)?;

        // Search, level by level, choosing the neighbours.
        let q = Target::Slot(slot);
        let entry = g.entry;
        if entry != NONE {
            scratch.ids.clear();
            let _ = scratch.ids.push_within_capacity(entry);
            scratch.batch(g, d, q)?;
            let key = scratch.keys.first().copied().unwrap_or(u32::MAX);
            let ep = greedy(g, scratch, d, q, (key, entry), g.max_level, level)?;
            let _ = work.eps.push_within_capacity(ep);
            for lc in (0..=top).rev() {
                search_layer::<false, A, D>(g, scratch, d, q, &work.eps, efc, lc)?;
                work.cands.clear();
                for &e in scratch.res.iter() {
                    let _ = work.cands.push_within_capacity(e);
                }
                work.cands.sort_unstable();
                select(
                    g,
                    d,
                    &mut scratch.batches,
                    &work.cands,
                    m,
                    &mut work.out,
                    &mut work.pslots,
                    &mut work.pkeys,
                );
                if let Some(block) = work.sel.get_mut(lc * (1 + m)..(lc + 1) * (1 + m)) {
                    block[0] = work.out.len() as u32;
                    // A zip, not `copy_from_slice` (see `Graph::set_neighbours`).
                    for (d, &s) in block[1..].iter_mut().zip(work.out.iter()) {
                        *d = s;
                    }
                }
                if !work.cands.is_empty() {
                    work.eps.clear();
                    for &e in work.cands.iter() {
                        let _ = work.eps.push_within_capacity(e);
                    }
                }
            }
        }

        // Commit.
        let node = g.add_node(slot, level);
        if node == NONE {
            return Err(Error::OutOfMemory);
        }
        // A repair in progress restarts: pruning below may keep edges to
        // tombstones in lists it already rebuilt.
        *cursor = RepairCursor::START;
        if entry != NONE {
            for lc in 0..=top {
                let base = lc * (1 + m);
                let Some(block) = work.sel.get(base..base + 1 + m) else {
                    continue;
                };
                let n = (block[0] as usize).min(m);
                g.set_neighbours(node, lc, &block[1..1 + n]);
                for i in base + 1..base + 1 + n {
                    let Some(&nb) = work.sel.get(i) else { break };
                    if !g.push_neighbour(nb, lc, node) {
                        prune(g, work, d, &mut scratch.batches, nb, lc, node);
                    }
                }
            }
        }
        if entry == NONE || level > g.max_level {
            g.entry = node;
            g.max_level = level;
        }
        Ok(())
    }
}
