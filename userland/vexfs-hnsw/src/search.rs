// SPDX-License-Identifier: GPL-2.0

//! Search: the greedy descent on upper levels, the beam search of one
//! level (`search_layer`), and the public k-NN query.

use super::graph::{Graph, NONE};
use super::vec::{Alloc, FVec};
use super::{Distances, Error, Neighbour, Target};

/// Distance batches between two calls of [`Distances::checkpoint`].
pub const CHECKPOINT_BATCHES: u32 = 64;

/// `(key, node)`: ordered by distance key, then node id.
pub(crate) type Entry = (u32, u32);

/// Per-search working memory: the visited set (generation stamps, never
/// cleared between searches), the two heaps and the batch buffers.
/// Each concurrent search needs its own; it grows on demand through the
/// allocator and is reused from search to search.
pub struct SearchScratch<A: Alloc> {
    /// Generation stamps (u16: half the cache footprint of u32; cleared
    /// once every 65,535 searches).
    visited: FVec<u16, A>,
    stamp: u16,
    /// Min-heap of nodes to expand.
    pub(crate) cand: FVec<Entry, A>,
    /// Max-heap of the best `ef` live nodes found.
    pub(crate) res: FVec<Entry, A>,
    pub(crate) ids: FVec<u32, A>,
    pub(crate) slots: FVec<u32, A>,
    pub(crate) keys: FVec<u32, A>,
    pub(crate) batches: u32,
}

impl<A: Alloc> SearchScratch<A> {
    /// Empty scratch; allocates nothing until used.
    pub fn new(alloc: A) -> Self {
        Self {
            visited: FVec::new(alloc.clone()),
            stamp: 0,
            cand: FVec::new(alloc.clone()),
            res: FVec::new(alloc.clone()),
            ids: FVec::new(alloc.clone()),
            slots: FVec::new(alloc.clone()),
            keys: FVec::new(alloc),
            batches: 0,
        }
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.visited.bytes()
            + self.cand.bytes()
            + self.res.bytes()
            + self.ids.bytes()
            + self.slots.bytes()
            + self.keys.bytes()
    }

    /// Sizes the visited array for `nodes` ids and the batch buffers for
    /// `batch` ids, and the result heap for `ef + 1` entries.
    pub(crate) fn prepare(&mut self, nodes: usize, batch: usize, ef: usize) -> Result<(), Error> {
        if self.visited.len() < nodes {
            self.visited.try_resize(nodes, 0)?;
        }
        self.ids.try_reserve(batch)?;
        self.slots.try_reserve(batch)?;
        self.keys.try_reserve(batch)?;
        self.res.try_reserve(ef.saturating_add(1))?;
        self.cand.try_reserve(ef.saturating_add(1))?;
        Ok(())
    }

    /// Starts a new visited generation.
    pub(crate) fn new_generation(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.fill(0);
            self.stamp = 1;
        }
    }

    /// Hints the CPU to fetch the visited stamp of `node`.
    #[inline(always)]
    fn prefetch_visited(&self, node: u32) {
        super::vec::prefetch(self.visited.as_ptr().wrapping_add(node as usize));
    }

    /// Marks `node` visited; true if it was not yet.
    pub(crate) fn visit(&mut self, node: u32) -> bool {
        match self.visited.get_mut(node as usize) {
            Some(v) if *v != self.stamp => {
                *v = self.stamp;
                true
            }
            _ => false,
        }
    }

    /// Distance keys from `from` to the nodes in `self.ids`, into
    /// `self.keys` (same length). One call of `D::batch`, so one FPU
    /// section in the kernel.
    pub(crate) fn batch<D: Distances>(
        &mut self,
        g: &Graph<A>,
        d: &mut D,
        from: Target<'_, D::Query>,
    ) -> Result<(), Error> {
        let n = self.ids.len();
        self.slots.clear();
        self.slots.try_reserve(n)?;
        for &id in self.ids.iter() {
            let _ = self.slots.push_within_capacity(g.slot(id));
        }
        self.keys.try_resize(n, u32::MAX)?;
        run_batch(d, &mut self.batches, from, &self.slots, &mut self.keys);
        Ok(())
    }
}

/// One distance batch, with the periodic checkpoint.
pub(crate) fn run_batch<D: Distances>(
    d: &mut D,
    batches: &mut u32,
    from: Target<'_, D::Query>,
    slots: &[u32],
    out: &mut [u32],
) {
    if slots.is_empty() {
        return;
    }
    d.batch(from, slots, out);
    *batches += 1;
    if *batches >= CHECKPOINT_BATCHES {
        *batches = 0;
        d.checkpoint();
    }
}

/// `a` belongs nearer the top of a max-heap (`MAX`) or a min-heap.
#[inline(always)]
fn before<const MAX: bool>(a: Entry, b: Entry) -> bool {
    if MAX {
        a > b
    } else {
        a < b
    }
}

/// Binary heap on a slice (generic, so the comparison is inlined).
#[inline]
fn sift_up<const MAX: bool>(h: &mut [Entry], mut i: usize) {
    let Some(&e) = h.get(i) else { return };
    while i > 0 {
        let p = (i - 1) / 2;
        match h.get(p) {
            Some(&pp) if before::<MAX>(e, pp) => h[i] = pp,
            _ => break,
        }
        i = p;
    }
    h[i] = e;
}

#[inline]
fn sift_down<const MAX: bool>(h: &mut [Entry], mut i: usize) {
    let n = h.len();
    let Some(&e) = h.get(i) else { return };
    loop {
        let l = 2 * i + 1;
        if l >= n {
            break;
        }
        let r = l + 1;
        let c = if r < n && before::<MAX>(h[r], h[l]) {
            r
        } else {
            l
        };
        if !before::<MAX>(h[c], e) {
            break;
        }
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

#[inline]
pub(crate) fn heap_push<const MAX: bool, A: Alloc>(
    h: &mut FVec<Entry, A>,
    e: Entry,
) -> Result<(), Error> {
    if h.push_within_capacity(e).is_err() {
        h.try_push(e)?;
    }
    let i = h.len() - 1;
    sift_up::<MAX>(h, i);
    Ok(())
}

#[inline]
pub(crate) fn heap_pop<const MAX: bool, A: Alloc>(h: &mut FVec<Entry, A>) -> Option<Entry> {
    let last = h.pop()?;
    let Some(top) = h.first().copied() else {
        return Some(last);
    };
    h[0] = last;
    sift_down::<MAX>(h, 0);
    Some(top)
}

/// Replaces the top of a non-empty heap with `e` (one sift instead of a
/// pop and a push).
#[inline]
fn heap_replace_top<const MAX: bool, A: Alloc>(h: &mut FVec<Entry, A>, e: Entry) {
    if let Some(t) = h.first_mut() {
        *t = e;
        sift_down::<MAX>(h, 0);
    }
}

/// Greedy walk on levels `from_level` down to `to_level + 1`, starting at
/// `entry` (distance key `key`): at each level move to the nearest
/// neighbour while it is nearer. Walks through deleted nodes too.
#[allow(clippy::too_many_arguments)]
pub(crate) fn greedy<A: Alloc, D: Distances>(
    g: &Graph<A>,
    s: &mut SearchScratch<A>,
    d: &mut D,
    q: Target<'_, D::Query>,
    mut cur: Entry,
    from_level: usize,
    to_level: usize,
) -> Result<Entry, Error> {
    let mut level = from_level;
    while level > to_level {
        loop {
            s.ids.clear();
            s.ids.try_reserve(g.m0)?;
            for &n in g.neighbours(cur.1, level) {
                let _ = s.ids.push_within_capacity(n);
            }
            s.batch(g, d, q)?;
            let mut best = cur;
            for (&n, &k) in s.ids.iter().zip(s.keys.iter()) {
                if (k, n) < best {
                    best = (k, n);
                }
            }
            if best == cur {
                break;
            }
            cur = best;
        }
        level -= 1;
    }
    Ok(cur)
}

/// Beam search of one level from `entries` (which must hold distance
/// keys): leaves in `s.res` (a max-heap) the best `ef` live nodes found.
/// Deleted nodes are expanded but never enter the results; with `FILTER`
/// (queries, not construction) neither do nodes [`Distances::accept`]
/// refuses.
pub(crate) fn search_layer<const FILTER: bool, A: Alloc, D: Distances>(
    g: &Graph<A>,
    s: &mut SearchScratch<A>,
    d: &mut D,
    q: Target<'_, D::Query>,
    entries: &[Entry],
    ef: usize,
    level: usize,
) -> Result<(), Error> {
    let ef = ef.max(1);
    s.prepare(g.nodes(), g.m0, ef)?;
    s.new_generation();
    s.cand.clear();
    s.res.clear();
    for &e in entries {
        if s.visit(e.1) {
            heap_push::<false, A>(&mut s.cand, e)?;
            if g.is_live(e.1) && (!FILTER || d.accept(g.slot(e.1))) {
                heap_push::<true, A>(&mut s.res, e)?;
                if s.res.len() > ef {
                    heap_pop::<true, A>(&mut s.res);
                }
            }
        }
    }
    // Room for one list in the batch buffers (`prepare` reserved it).
    let cap = g.cap(level);
    s.slots.clear();
    s.ids.clear();
    s.keys.try_resize(cap, u32::MAX)?;
    // Without tombstones every node reached is live: no state lookups.
    let (identity, tombstones) = (g.identity, g.deleted > 0);
    while let Some(c) = heap_pop::<false, A>(&mut s.cand) {
        if s.res.len() >= ef && s.res.first().is_some_and(|&w| c > w) {
            break;
        }
        // The next candidate's list, while this one is computed.
        if let Some(&(_, next)) = s.cand.first() {
            g.prefetch_list(next, level);
        }
        let list = g.neighbours(c.1, level);
        for &n in list {
            s.prefetch_visited(n);
            if !identity {
                g.prefetch_slot(n);
            }
        }
        s.ids.clear();
        s.slots.clear();
        for &n in list {
            if s.visit(n) {
                let _ = s.ids.push_within_capacity(n);
                let slot = if identity { n } else { g.slot(n) };
                let _ = s.slots.push_within_capacity(slot);
            }
        }
        let n = s.ids.len();
        let (Some(keys), Some(slots)) = (s.keys.get_mut(..n), s.slots.get(..n)) else {
            break;
        };
        run_batch(d, &mut s.batches, q, slots, keys);
        for (&n, &k) in s.ids.iter().zip(s.keys.iter()) {
            let e = (k, n);
            if s.res.len() >= ef {
                if s.res.first().is_some_and(|&w| e >= w) {
                    continue;
                }
                heap_push::<false, A>(&mut s.cand, e)?;
                if (!tombstones || g.is_live(n)) && admit::<FILTER, A, D>(g, d, n) {
                    heap_replace_top::<true, A>(&mut s.res, e);
                }
            } else {
                heap_push::<false, A>(&mut s.cand, e)?;
                if (!tombstones || g.is_live(n)) && admit::<FILTER, A, D>(g, d, n) {
                    heap_push::<true, A>(&mut s.res, e)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether a live node may enter the results (see [`Distances::accept`]).
#[inline(always)]
fn admit<const FILTER: bool, A: Alloc, D: Distances>(g: &Graph<A>, d: &mut D, node: u32) -> bool {
    !FILTER || d.accept(g.slot(node))
}

/// Exact scan of every live node, for when `ef` covers them all: keeps the
/// best `k` accepted ones in `s.res`.
fn scan_all<A: Alloc, D: Distances>(
    g: &Graph<A>,
    s: &mut SearchScratch<A>,
    d: &mut D,
    q: Target<'_, D::Query>,
    k: usize,
) -> Result<(), Error> {
    s.prepare(0, g.m0, k)?;
    s.res.clear();
    let mut node = 0u32;
    while (node as usize) < g.nodes() {
        s.ids.clear();
        while (node as usize) < g.nodes() && s.ids.len() < g.m0 {
            if g.is_live(node) {
                let _ = s.ids.push_within_capacity(node);
            }
            node += 1;
        }
        s.batch(g, d, q)?;
        for i in 0..s.ids.len() {
            let e = (s.keys[i], s.ids[i]);
            if s.res.len() >= k && s.res.first().is_some_and(|&w| e >= w) {
                continue;
            }
            if !d.accept(g.slot(e.1)) {
                continue;
            }
            heap_push::<true, A>(&mut s.res, e)?;
            if s.res.len() > k {
                heap_pop::<true, A>(&mut s.res);
            }
        }
    }
    Ok(())
}

/// The k-NN query (see [`Hnsw::search`](crate::Hnsw::search)).
pub(crate) fn search<A: Alloc, D: Distances>(
    g: &Graph<A>,
    s: &mut SearchScratch<A>,
    d: &mut D,
    query: &D::Query,
    k: usize,
    ef: usize,
    out: &mut [Neighbour],
) -> Result<usize, Error> {
    let k = k.min(out.len());
    if k == 0 || g.live == 0 || g.entry == NONE {
        return Ok(0);
    }
    let q = Target::Query(query);
    let ef = ef.max(k);
    if ef >= g.live {
        scan_all(g, s, d, q, k)?;
    } else {
        s.prepare(g.nodes(), g.m0, ef)?;
        s.ids.clear();
        let _ = s.ids.push_within_capacity(g.entry);
        s.batch(g, d, q)?;
        let key = s.keys.first().copied().unwrap_or(u32::MAX);
        let ep = greedy(g, s, d, q, (key, g.entry), g.max_level, 0)?;
        search_layer::<true, A, D>(g, s, d, q, &[ep], ef, 0)?;
    }
    // Results as (key, slot), sorted; `cand` is free now.
    s.cand.clear();
    s.cand.try_reserve(s.res.len())?;
    for &(key, node) in s.res.iter() {
        let _ = s.cand.push_within_capacity((key, g.slot(node)));
    }
    s.cand.sort_unstable();
    let n = s.cand.len().min(k);
    for (o, &(key, slot)) in out.iter_mut().zip(s.cand.iter().take(n)) {
        *o = Neighbour { slot, key };
    }
    Ok(n)
}
