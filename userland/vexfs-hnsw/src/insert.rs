// SPDX-License-Identifier: GPL-2.0

//! Incremental insertion and the neighbour-selection heuristic.
//!
//! An insert reserves all the memory it may need first, then searches
//! (read-only), and only then links the node in, in steps that cannot fail:
//! an `Err` leaves the graph as it was.

use super::delete::RepairCursor;
use super::graph::{Graph, MAX_LEVEL, NONE};
use super::search::{greedy, run_batch, search_layer, Entry, SearchScratch};
use super::vec::{Alloc, FVec};
use super::{Distances, Error, Hnsw, Target};

/// Buffers of the mutating operations (insert, repair), owned by the index.
pub(crate) struct Work<A: Alloc> {
    /// Neighbours chosen for the new node: per level, count + `M` ids.
    pub(crate) sel: FVec<u32, A>,
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
            cands: FVec::new(alloc.clone()),
            out: FVec::new(alloc.clone()),
            pids: FVec::new(alloc.clone()),
            pslots: FVec::new(alloc.clone()),
            pkeys: FVec::new(alloc),
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.sel.bytes()
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

/// The read-only half of an insert: the level of the new node and, for
/// each level of the graph at or below it, the candidates the beam search
/// found (sorted by key). Several plans can be made at once (each with its
/// own [`SearchScratch`]) against a graph that nothing changes meanwhile;
/// [`Hnsw::insert_planned`] then links the nodes in one at a time.
pub struct Plan<A: Alloc> {
    level: usize,
    /// Candidates, level by level; level `l`'s are `cands[at[l]..at[l] + len[l]]`.
    cands: FVec<Entry, A>,
    at: [u32; MAX_LEVEL + 1],
    len: [u32; MAX_LEVEL + 1],
    /// Entry points of the next level down.
    eps: FVec<Entry, A>,
}

impl<A: Alloc> Plan<A> {
    /// An empty plan; allocates nothing until used.
    pub fn new(alloc: A) -> Self {
        Self {
            level: 0,
            cands: FVec::new(alloc.clone()),
            at: [0; MAX_LEVEL + 1],
            len: [0; MAX_LEVEL + 1],
            eps: FVec::new(alloc),
        }
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.cands.bytes() + self.eps.bytes()
    }

    /// The level drawn for the node.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The candidates found on `level` (none above the graph's top).
    fn candidates(&self, level: usize) -> &[Entry] {
        let (Some(&at), Some(&len)) = (self.at.get(level), self.len.get(level)) else {
            return &[];
        };
        self.cands
            .get(at as usize..(at + len) as usize)
            .unwrap_or(&[])
    }

    /// Room to plan a node of `level` in `h` as it is now, so that
    /// [`Hnsw::plan`] allocates nothing in the plan.
    pub fn reserve(&mut self, h: &Hnsw<A>, level: usize) -> Result<(), Error> {
        let efc = h.params.ef_construction.max(1);
        let levels = level.min(h.g.max_level) + 1;
        let need = levels.saturating_mul(efc + 1);
        self.cands.clear();
        self.cands.try_reserve(need)?;
        self.eps.clear();
        self.eps.try_reserve(efc + 1)
    }
}

/// The search half of an insert of `slot` at `level` into `g`, into `plan`.
fn plan_into<A: Alloc, D: Distances>(
    g: &Graph<A>,
    efc: usize,
    s: &mut SearchScratch<A>,
    d: &mut D,
    slot: u32,
    level: usize,
    plan: &mut Plan<A>,
) -> Result<(), Error> {
    plan.level = level;
    plan.cands.clear();
    plan.eps.clear();
    plan.len = [0; MAX_LEVEL + 1];
    let entry = g.entry;
    if entry == NONE {
        return Ok(());
    }
    let top = level.min(g.max_level);
    s.prepare(g.nodes() + 1, g.m0, efc)?;
    plan.cands.try_reserve((top + 1) * (efc + 1))?;
    plan.eps.try_reserve(efc + 1)?;
    let q = Target::Slot(slot);
    s.ids.clear();
    let _ = s.ids.push_within_capacity(entry);
    s.batch(g, d, q)?;
    let key = s.keys.first().copied().unwrap_or(u32::MAX);
    let ep = greedy(g, s, d, q, (key, entry), g.max_level, level)?;
    let _ = plan.eps.push_within_capacity(ep);
    for lc in (0..=top).rev() {
        search_layer::<false, A, D>(g, s, d, q, &plan.eps, efc, lc)?;
        let at = plan.cands.len();
        for &e in s.res.iter() {
            let _ = plan.cands.push_within_capacity(e);
        }
        let found = plan.cands.get_mut(at..).unwrap_or(&mut []);
        found.sort_unstable();
        plan.at[lc] = at as u32;
        plan.len[lc] = found.len() as u32;
        if !found.is_empty() {
            plan.eps.clear();
            for &e in found.iter() {
                let _ = plan.eps.push_within_capacity(e);
            }
        }
    }
    Ok(())
}

impl<A: Alloc> Hnsw<A> {
    /// Adds `slot`, whose vector the caller has already stored (so that
    /// `d` can compute distances from and to it), to the index.
    ///
    /// Errors: [`Error::InvalidSlot`] for `u32::MAX`, [`Error::SlotInUse`]
    /// if the slot is live or a not yet repaired tombstone,
    /// [`Error::OutOfMemory`]. On error the index is unchanged.
    pub fn insert<D: Distances>(&mut self, d: &mut D, slot: u32) -> Result<(), Error> {
        self.check_new(slot)?;
        let level = self.rng.level(self.params.m, MAX_LEVEL);
        let efc = self.params.ef_construction.max(1);
        plan_into(
            &self.g,
            efc,
            &mut self.scratch,
            d,
            slot,
            level,
            &mut self.plan,
        )?;
        let Self {
            g,
            scratch,
            work,
            cursor,
            plan,
            ..
        } = self;
        link_in(g, scratch, work, cursor, d, slot, plan, &[])
    }

    /// The levels the next `out.len()` inserts will draw, in order
    /// (without drawing them): for planning several inserts at once.
    pub fn next_levels(&self, out: &mut [usize]) {
        let mut rng = self.rng.clone();
        for l in out.iter_mut() {
            *l = rng.level(self.params.m, MAX_LEVEL);
        }
    }

    /// Plans the insert of `slot` at `level` (from [`Self::next_levels`])
    /// against the graph as it is: read-only, with the caller's `scratch`,
    /// so several plans can be made at once. Allocates only what
    /// [`Plan::reserve`] and [`SearchScratch::reserve`] did not.
    pub fn plan<D: Distances>(
        &self,
        scratch: &mut SearchScratch<A>,
        d: &mut D,
        slot: u32,
        level: usize,
        plan: &mut Plan<A>,
    ) -> Result<(), Error> {
        let efc = self.params.ef_construction.max(1);
        plan_into(&self.g, efc, scratch, d, slot, level, plan)
    }

    /// Room in `scratch` for planning an insert into this graph (see
    /// [`Self::plan`]), so that planning allocates nothing in it.
    pub fn reserve_plan_scratch(&self, scratch: &mut SearchScratch<A>) -> Result<(), Error> {
        scratch.prepare(
            self.g.nodes() + 1,
            self.g.m0,
            self.params.ef_construction.max(1),
        )
    }

    /// Inserts `slot` as [`Self::insert`] does, with the candidates of
    /// `plan` (made by [`Self::plan`] for this slot, the graph changed
    /// since only by the inserts of the slots in `mates`, in this order,
    /// and by deletes: no repair step or `move_slot` in between, which
    /// could free or reuse the node ids the plan names) and the mates
    /// themselves as further candidates: so inserts planned together
    /// still link to each other. Candidates that are no longer live are
    /// skipped. The node's
    /// level is drawn as `insert` draws it; if it is not the plan's, the
    /// insert searches again itself. Errors and their guarantee as for
    /// `insert`.
    pub fn insert_planned<D: Distances>(
        &mut self,
        d: &mut D,
        slot: u32,
        plan: &Plan<A>,
        mates: &[u32],
    ) -> Result<(), Error> {
        self.check_new(slot)?;
        let level = self.rng.level(self.params.m, MAX_LEVEL);
        let Self {
            params,
            g,
            scratch,
            work,
            cursor,
            plan: own,
            ..
        } = self;
        if level != plan.level {
            let efc = params.ef_construction.max(1);
            plan_into(g, efc, scratch, d, slot, level, own)?;
            return link_in(g, scratch, work, cursor, d, slot, own, &[]);
        }
        link_in(g, scratch, work, cursor, d, slot, plan, mates)
    }

    fn check_new(&self, slot: u32) -> Result<(), Error> {
        if slot == NONE {
            return Err(Error::InvalidSlot);
        }
        if self.g.node_of(slot) != NONE {
            return Err(Error::SlotInUse);
        }
        Ok(())
    }
}

/// The linking half of an insert: chooses the neighbours on each level
/// from the plan's candidates that are still live and the `mates` (nodes
/// inserted since the plan, by slot) on that level, then adds the node and
/// its links. Reserves everything before changing anything.
#[allow(clippy::too_many_arguments)]
fn link_in<A: Alloc, D: Distances>(
    g: &mut Graph<A>,
    scratch: &mut SearchScratch<A>,
    work: &mut Work<A>,
    cursor: &mut RepairCursor,
    d: &mut D,
    slot: u32,
    plan: &Plan<A>,
    mates: &[u32],
) -> Result<(), Error> {
    let level = plan.level;
    let (m, m0) = (g.m, g.m0);
    if g.slot_node.len() <= slot as usize {
        g.slot_node.try_resize(slot as usize + 1, NONE)?;
    }
    g.reserve_node(level)?;
    let top = level.min(g.max_level);
    let most = (0..=top)
        .map(|l| plan.candidates(l).len())
        .max()
        .unwrap_or(0);
    work.reserve(m0, most.max(m0) + mates.len() + 1, (top + 1) * (1 + m))?;
    // The mates' keys, in one batch (`keys[i]` is mate `i`'s).
    scratch.slots.clear();
    scratch.slots.try_reserve(mates.len())?;
    scratch.keys.try_resize(mates.len(), u32::MAX)?;
    for &mate in mates {
        let _ = scratch.slots.push_within_capacity(mate);
    }
    let entry = g.entry;
    if entry != NONE {
        run_batch(
            d,
            &mut scratch.batches,
            Target::Slot(slot),
            &scratch.slots,
            &mut scratch.keys,
        );
        for lc in (0..=top).rev() {
            work.cands.clear();
            for &e in plan.candidates(lc) {
                if g.is_live(e.1) && g.level(e.1) >= lc {
                    let _ = work.cands.push_within_capacity(e);
                }
            }
            for (&mate, &key) in scratch.slots.iter().zip(scratch.keys.iter()) {
                let node = g.node_of(mate);
                if node != NONE && g.is_live(node) && g.level(node) >= lc {
                    let _ = work.cands.push_within_capacity((key, node));
                }
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
