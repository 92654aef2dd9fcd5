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
    visited: FVec<u32, A>,
    stamp: u32,
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

/// Binary heap on a slice; `before(a, b)`: `a` belongs nearer the top.
fn sift_up(h: &mut [Entry], mut i: usize, before: fn(Entry, Entry) -> bool) {
    while i > 0 {
        let p = (i - 1) / 2;
        match (h.get(i), h.get(p)) {
            (Some(&c), Some(&pp)) if before(c, pp) => h.swap(i, p),
            _ => break,
        }
        i = p;
    }
}

fn sift_down(h: &mut [Entry], mut i: usize, before: fn(Entry, Entry) -> bool) {
    let n = h.len();
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut top = i;
        if l < n && before(h[l], h[top]) {
            top = l;
        }
        if r < n && before(h[r], h[top]) {
            top = r;
        }
        if top == i {
            return;
        }
        h.swap(i, top);
        i = top;
    }
}

fn min_first(a: Entry, b: Entry) -> bool {
    a < b
}

fn max_first(a: Entry, b: Entry) -> bool {
    a > b
}

pub(crate) fn heap_push<A: Alloc>(
    h: &mut FVec<Entry, A>,
    e: Entry,
    max: bool,
) -> Result<(), Error> {
    h.try_push(e)?;
    let i = h.len() - 1;
    sift_up(h, i, if max { max_first } else { min_first });
    Ok(())
}

pub(crate) fn heap_pop<A: Alloc>(h: &mut FVec<Entry, A>, max: bool) -> Option<Entry> {
    let last = h.pop()?;
    let Some(top) = h.first().copied() else {
        return Some(last);
    };
    h[0] = last;
    sift_down(h, 0, if max { max_first } else { min_first });
    Some(top)
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
/// Deleted nodes are expanded but never enter the results.
pub(crate) fn search_layer<A: Alloc, D: Distances>(
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
            heap_push(&mut s.cand, e, false)?;
            if g.is_live(e.1) {
                heap_push(&mut s.res, e, true)?;
                if s.res.len() > ef {
                    heap_pop(&mut s.res, true);
                }
            }
        }
    }
    while let Some(c) = heap_pop(&mut s.cand, false) {
        if s.res.len() >= ef && s.res.first().is_some_and(|&w| c > w) {
            break;
        }
        s.ids.clear();
        for &n in g.neighbours(c.1, level) {
            if s.visit(n) {
                let _ = s.ids.push_within_capacity(n);
            }
        }
        s.batch(g, d, q)?;
        for i in 0..s.ids.len() {
            let (Some(&n), Some(&k)) = (s.ids.get(i), s.keys.get(i)) else {
                break;
            };
            let e = (k, n);
            let full = s.res.len() >= ef;
            if full && s.res.first().is_some_and(|&w| e >= w) {
                continue;
            }
            heap_push(&mut s.cand, e, false)?;
            if g.is_live(n) {
                heap_push(&mut s.res, e, true)?;
                if s.res.len() > ef {
                    heap_pop(&mut s.res, true);
                }
            }
        }
    }
    Ok(())
}

/// Exact scan of every live node, for when `ef` covers them all: keeps the
/// best `k` in `s.res`.
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
        for (&n, &key) in s.ids.iter().zip(s.keys.iter()) {
            heap_push(&mut s.res, (key, n), true)?;
            if s.res.len() > k {
                heap_pop(&mut s.res, true);
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
        search_layer(g, s, d, q, &[ep], ef, 0)?;
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
