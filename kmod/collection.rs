// SPDX-License-Identifier: GPL-2.0

//! Vector collections: a directory's store of `(id, vector)` rows, exact
//! k-NN search over it and, for HNSW collections, the graph that answers
//! approximate searches (`hnsw_glue` connects the two).
//!
//! Rows live in 16 KiB pool objects ("chunks") holding `4096 / dim` rows each;
//! an rbtree maps ids to row slots. In a flat collection deletion moves the
//! last row into the hole, so rows stay dense. In an HNSW collection a
//! deleted row stays (dead) until the graph's repair has purged its node;
//! compaction then fills the holes. A batch insert first stages its rows
//! after the last row and reserves every allocation it needs, then commits
//! without any step that can fail: a failed batch leaves the store as it was.
//!
//! All float arithmetic happens in the SIMD kernels (`simd`), inside FPU
//! sections of bounded size; outside them distances are compared as integer
//! order keys, because the kernel's Rust target is soft-float.

use core::pin::Pin;

use kernel::alloc::{flags::GFP_KERNEL, KVVec};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::Mutex;

use crate::abi;
use crate::hnsw::{self, Hnsw};
use crate::hnsw_glue::{GraphAlloc, GraphDistances, Rows};
use crate::pool::PoolBuf;
use crate::simd;
use crate::sys::{self, RwSem};

/// f32 values in one chunk: one 16 KiB pool object.
pub(crate) const CHUNK_FLOATS: usize = 4096;
/// At most this many f32 values are processed per FPU section, so preemption
/// is held off for a few tens of microseconds at most.
const FPU_FLOAT_BUDGET: usize = 32768;
/// Accounted bytes per row besides its values: id, file flag, norm (cosine
/// collections), rbtree node.
const ROW_OVERHEAD: u64 = 8 + 1 + 4 + 64;

/// Probe point `vexfs_simd_batch`: one FPU section of SIMD work over
/// `floats` stored values (a block of distances for a search, of norms for
/// an insert). Unmangled and never inlined so that the profiler attaches to
/// it by name; a plain call when nothing is attached.
#[no_mangle]
#[inline(never)]
pub(crate) extern "Rust" fn vexfs_simd_batch(floats: usize, work: &mut dyn FnMut()) {
    let _ = floats;
    sys::with_fpu(work);
}

/// Vector bytes in use by every collection of every mount.
static VECTOR_BYTES: Atomic<u64> = Atomic::new(0);

/// Bytes of vector storage in use, module-wide.
pub(crate) fn vector_bytes() -> u64 {
    VECTOR_BYTES.load(Relaxed)
}

/// Charges `bytes` against the module-wide limit, or fails with ENOSPC.
pub(crate) fn charge(bytes: u64) -> Result {
    let limit = crate::vector_limit_bytes();
    let mut cur = VECTOR_BYTES.load(Relaxed);
    loop {
        let new = cur
            .checked_add(bytes)
            .filter(|&n| n <= limit)
            .ok_or(ENOSPC)?;
        match VECTOR_BYTES.cmpxchg(cur, new, Relaxed) {
            Ok(_) => return Ok(()),
            Err(seen) => cur = seen,
        }
    }
}

pub(crate) fn uncharge(bytes: u64) {
    VECTOR_BYTES.fetch_sub(bytes, Relaxed);
}

/// A search candidate; ordered by distance key, then id.
#[derive(Clone, Copy)]
pub(crate) struct Candidate {
    key: u32,
    bits: u32,
    id: u64,
    file: bool,
}

// SAFETY: All-zero is a valid `Candidate` (integers and `false`).
unsafe impl Zeroable for Candidate {}

impl Candidate {
    fn rank(&self) -> (u32, u64) {
        (self.key, self.id)
    }

    /// The search hit this candidate becomes.
    pub(crate) fn hit(&self) -> abi::SearchHit {
        abi::SearchHit {
            id: self.id,
            distance: f32::from_bits(self.bits),
            flags: if self.file { abi::HIT_FILE } else { 0 },
        }
    }
}

/// The `k` best candidates seen so far, as a max-heap on rank.
pub(crate) struct TopK {
    heap: PoolBuf<Candidate>,
    len: usize,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Result<Self> {
        Ok(Self {
            heap: PoolBuf::new_zeroed(k)?,
            len: 0,
        })
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    fn offer(&mut self, c: Candidate) {
        let h = &mut self.heap;
        if self.len < h.len() {
            let mut i = self.len;
            h[i] = c;
            self.len += 1;
            while i > 0 && h[(i - 1) / 2].rank() < h[i].rank() {
                h.swap(i, (i - 1) / 2);
                i = (i - 1) / 2;
            }
        } else if c.rank() < h[0].rank() {
            h[0] = c;
            let (mut i, n) = (0, self.len);
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut big = i;
                if l < n && h[l].rank() > h[big].rank() {
                    big = l;
                }
                if r < n && h[r].rank() > h[big].rank() {
                    big = r;
                }
                if big == i {
                    break;
                }
                h.swap(i, big);
                i = big;
            }
        }
    }

    /// The candidates, nearest first, ties by ascending id.
    pub(crate) fn sorted(&mut self) -> &[Candidate] {
        let s = &mut self.heap[..self.len];
        s.sort_unstable_by_key(|c| c.rank());
        s
    }
}

/// [`Store::flags`] bit: the row is a file's vector.
const ROW_FILE: u8 = 1;
/// [`Store::flags`] bit: the row was deleted or replaced in an HNSW
/// collection. It stays stored (the graph may still walk through its node)
/// until a repair purges the node and compaction reclaims the row.
const ROW_DEAD: u8 = 2;

/// Graph nodes linked per hold of the write lock: a search waits for at
/// most this many node insertions.
const LINK_PER_LOCK: usize = 4;
/// Repair work (in nodes) per hold of the write lock.
const REPAIR_PER_LOCK: usize = 64;
/// Rows examined by compaction per hold of the write lock.
const COMPACT_PER_LOCK: usize = 4096;

pub(crate) struct Store {
    chunks: KVVec<PoolBuf<f32>>,
    /// Row slot to id.
    ids: KVVec<u64>,
    /// Row slot to [`ROW_FILE`] | [`ROW_DEAD`].
    flags: KVVec<u8>,
    /// Row slot to `|row|^2`, in cosine collections only: a cosine search
    /// then needs one dot product per row.
    norms: KVVec<simd::NormSq>,
    /// Id to row slot (live rows only).
    map: RBTree<u64, u32>,
    file_rows: u64,
    /// Rows with [`ROW_DEAD`].
    dead: usize,
    /// HNSW collections: the graph over rows `0..linked` (dead ones are
    /// tombstones or already purged). Rows from `linked` on are not linked
    /// yet; searches scan them exactly.
    graph: Option<Hnsw<GraphAlloc>>,
    linked: usize,
    /// Bytes charged to the module-wide limit (the graph charges its own).
    charged: u64,
}

/// A collection: the state a directory gains from `VEXFS_IOC_CREATE`.
///
/// Locking: `store` is a reader-writer semaphore. Searches hold its read
/// side for one query at a time, so any number run at once. Mutations are
/// serialised by `writer` and take the write side only in short steps: a
/// batch is stored in one step, then linked into the graph a few nodes per
/// step, and repair and compaction are cut into steps too; between steps
/// the store is consistent and searches run.
#[pin_data]
pub(crate) struct Collection {
    dim: usize,
    rows_per_chunk: usize,
    metric: u32,
    kernel: simd::Metric,
    index: u32,
    #[pin]
    writer: Mutex<()>,
    #[pin]
    store: RwSem<Store>,
}

/// The request of one search, besides the query.
#[derive(Clone, Copy)]
pub(crate) struct SearchMode {
    /// Scan every row even if there is a graph.
    pub(crate) exact: bool,
    /// Beam width of a graph search.
    pub(crate) ef: usize,
}

/// Per-ioctl working memory of searches.
pub(crate) struct SearchScratch {
    pub(crate) top: TopK,
    /// Distances of one FPU section of an exact scan, as f32 bits.
    dist: PoolBuf<u32>,
    graph: hnsw::SearchScratch<GraphAlloc>,
    found: PoolBuf<hnsw::Neighbour>,
}

impl SearchScratch {
    pub(crate) fn new(k: usize) -> Result<Self> {
        Ok(Self {
            top: TopK::new(k)?,
            dist: PoolBuf::new_zeroed(CHUNK_FLOATS)?,
            graph: hnsw::SearchScratch::new(GraphAlloc::SCRATCH),
            found: PoolBuf::new_zeroed(k)?,
        })
    }
}

impl Collection {
    /// A new, empty collection; `params` must be validated.
    pub(crate) fn new(params: &abi::CollectionParams) -> Result<Pin<KBox<Self>>> {
        let dim = params.dim as usize;
        let kernel = match params.metric {
            abi::metric::L2 => simd::Metric::L2,
            abi::metric::COSINE => simd::Metric::Cosine,
            abi::metric::DOT => simd::Metric::Dot,
            _ => return Err(EINVAL),
        };
        // Also refuses dim 0 without a division that could panic.
        let rows_per_chunk = CHUNK_FLOATS
            .checked_div(dim)
            .filter(|&r| r > 0)
            .ok_or(EINVAL)?;
        let graph = match params.index {
            abi::index::FLAT => None,
            abi::index::HNSW => Some(new_graph(params.m, params.ef_construction)?),
            _ => return Err(EINVAL),
        };
        KBox::pin_init(
            pin_init!(Self {
                dim,
                rows_per_chunk,
                metric: params.metric,
                kernel,
                index: params.index,
                writer <- new_mutex!(()),
                store <- RwSem::new(
                    Store {
                        chunks: KVVec::new(),
                        ids: KVVec::new(),
                        flags: KVVec::new(),
                        norms: KVVec::new(),
                        map: RBTree::new(),
                        file_rows: 0,
                        dead: 0,
                        graph,
                        linked: 0,
                        charged: 0,
                    },
                    c"vexfs_collection",
                    kernel::static_lock_class!(),
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// The dimension.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn info(&self) -> abi::CollectionInfo {
        let s = self.store.read();
        let rows = s.ids.len();
        let (m, ef_construction, index_bytes) = s.graph.as_ref().map_or((0, 0, 0), |g| {
            let p = g.params();
            (p.m as u32, p.ef_construction as u32, g.bytes() as u64)
        });
        let unindexed = match s.graph {
            Some(_) => (s.linked..rows)
                .filter(|&r| s.flags[r] & ROW_DEAD == 0)
                .count(),
            None => 0,
        };
        abi::CollectionInfo {
            dim: self.dim as u32,
            metric: self.metric,
            index: self.index,
            m,
            ef_construction,
            reserved: 0,
            count: (rows - s.dead) as u64,
            file_vectors: s.file_rows,
            memory_bytes: s.charged + index_bytes,
            index_bytes,
            deleted_pending: s.dead as u64,
            unindexed: unindexed as u64,
        }
    }

    fn row_ptr(&self, s: &Store, slot: usize) -> *mut f32 {
        let chunk = &s.chunks[slot / self.rows_per_chunk];
        let off = (slot % self.rows_per_chunk) * self.dim;
        // In bounds: `off + dim <= CHUNK_FLOATS` by the choice of
        // `rows_per_chunk`. The pointer keeps the chunk's write provenance.
        chunk.as_mut_ptr().wrapping_add(off)
    }

    /// Read access to the rows of `s`, for distance computations.
    fn rows<'a>(&'a self, s: &'a Store) -> Rows<'a> {
        self.rows_of(&s.chunks, &s.norms, s.ids.len())
    }

    /// Whether the file with inode number `ino` has a vector here.
    pub(crate) fn has_file_vector(&self, ino: u64) -> bool {
        let s = self.store.read();
        s.map
            .get(&ino)
            .is_some_and(|&slot| s.flags[slot as usize] & ROW_FILE != 0)
    }

    /// Makes room for rows `0..rows`, charging new chunks to the limit.
    fn reserve_rows(&self, s: &mut Store, rows: usize) -> Result {
        let need = rows.div_ceil(self.rows_per_chunk);
        while s.chunks.len() < need {
            charge((CHUNK_FLOATS * 4) as u64)?;
            let chunk = match PoolBuf::new_zeroed(CHUNK_FLOATS) {
                Ok(c) => c,
                Err(e) => {
                    uncharge((CHUNK_FLOATS * 4) as u64);
                    return Err(e);
                }
            };
            if let Err(e) = s.chunks.push(chunk, GFP_KERNEL) {
                uncharge((CHUNK_FLOATS * 4) as u64);
                return Err(e.into());
            }
            s.charged += (CHUNK_FLOATS * 4) as u64;
        }
        Ok(())
    }

    /// Frees chunks no row uses any more.
    fn trim(&self, s: &mut Store) {
        let need = s.ids.len().div_ceil(self.rows_per_chunk);
        while s.chunks.len() > need {
            s.chunks.pop();
            s.charged -= (CHUNK_FLOATS * 4) as u64;
            uncharge((CHUNK_FLOATS * 4) as u64);
        }
    }

    /// Inserts or replaces `ids.len()` rows. `fill(dst, first, rows)` must
    /// write rows `first..first + rows` of the batch (contiguous in `dst`),
    /// for example from user memory, and check them. All or nothing: the
    /// rows are stored, and visible to searches, in one step; in an HNSW
    /// collection they are then linked into the graph in short steps.
    pub(crate) fn upsert(
        &self,
        ids: &[u64],
        file: bool,
        fill: impl FnMut(&mut [f32], usize, usize) -> Result,
    ) -> Result {
        let _writer = self.writer.lock();
        self.store_rows(ids, file, fill)?;
        self.link_pending();
        self.repair_if_needed();
        Ok(())
    }

    /// The storing step of [`Self::upsert`].
    fn store_rows(
        &self,
        ids: &[u64],
        file: bool,
        mut fill: impl FnMut(&mut [f32], usize, usize) -> Result,
    ) -> Result {
        let n = ids.len();
        let mut guard = self.store.write();
        let s = &mut *guard;
        let base = s.ids.len();
        let indexed = s.graph.is_some();
        // Ids of files are owned by their file; of plain vectors, by insert.
        for id in ids {
            if let Some(&slot) = s.map.get(id) {
                if (s.flags[slot as usize] & ROW_FILE != 0) != file {
                    return Err(EEXIST);
                }
            }
        }
        // Reserve everything first: staging rows and norms, id arrays, map
        // nodes.
        let cosine = self.kernel == simd::Metric::Cosine;
        let mut staged_norms = PoolBuf::<simd::NormSq>::new_zeroed(if cosine { n } else { 0 })?;
        let overhead = n as u64 * ROW_OVERHEAD;
        charge(overhead)?;
        let mut reservations = KVVec::<RBTreeNodeReservation<u64, u32>>::new();
        let reserved = (|| -> Result {
            self.reserve_rows(s, base + n)?;
            s.ids.reserve(n, GFP_KERNEL)?;
            s.flags.reserve(n, GFP_KERNEL)?;
            if cosine {
                s.norms.reserve(n, GFP_KERNEL)?;
            }
            reservations.reserve(n, GFP_KERNEL)?;
            for _ in 0..n {
                reservations.push(RBTreeNodeReservation::new(GFP_KERNEL)?, GFP_KERNEL)?;
            }
            // Stage the rows after the last one, one chunk's run at a time.
            let mut done = 0;
            while done < n {
                let slot = base + done;
                let room = self.rows_per_chunk - slot % self.rows_per_chunk;
                let rows = room.min(n - done);
                let dst = self.row_ptr(s, slot);
                // SAFETY: Rows `slot..slot + rows` are contiguous within one
                // chunk we own (reserved above) and not visible to searches
                // (they lie past `ids.len()`), and we hold the write lock.
                let dst = unsafe { core::slice::from_raw_parts_mut(dst, rows * self.dim) };
                fill(dst, done, rows)?;
                if cosine {
                    // At most one chunk (4096 values) per FPU section.
                    let path = crate::simd_path();
                    let norms = &mut staged_norms[done..done + rows];
                    let dim = self.dim;
                    vexfs_simd_batch(rows * dim, &mut || {
                        for (r, norm) in norms.iter_mut().enumerate() {
                            if let Some(row) = dst.get(r * dim..(r + 1) * dim) {
                                // SAFETY: `path` matches the CPU; the FPU is ours.
                                *norm = unsafe { simd::norm_sq(path, row) };
                            }
                        }
                    });
                }
                done += rows;
            }
            Ok(())
        })();
        if let Err(e) = reserved {
            uncharge(overhead);
            self.trim(s);
            return Err(e);
        }
        // Commit: nothing below can fail.
        let flag = if file { ROW_FILE } else { 0 };
        let mut write = base;
        let mut added = 0u64;
        for (i, &id) in ids.iter().enumerate() {
            let staged = self.row_ptr(s, base + i);
            if let Some(&slot) = s.map.get(&id) {
                let slot = slot as usize;
                if indexed {
                    // The graph node of the old vector becomes a tombstone;
                    // the new vector is a new row, linked like any other.
                    self.mark_dead(s, slot);
                } else {
                    // SAFETY: Distinct rows of `dim` values in our chunks.
                    unsafe {
                        core::ptr::copy_nonoverlapping(staged, self.row_ptr(s, slot), self.dim)
                    };
                    if let (Some(norm), Some(&new)) = (s.norms.get_mut(slot), staged_norms.get(i)) {
                        *norm = new;
                    }
                    continue;
                }
            }
            if write != base + i {
                // SAFETY: `write < base + i`: distinct rows in our chunks.
                unsafe { core::ptr::copy_nonoverlapping(staged, self.row_ptr(s, write), self.dim) };
            }
            // Capacity was reserved above, so these cannot fail.
            let _ = s.ids.push_within_capacity(id);
            let _ = s.flags.push_within_capacity(flag);
            if let Some(&norm) = staged_norms.get(i) {
                let _ = s.norms.push_within_capacity(norm);
            }
            match s.map.get_mut(&id) {
                // Replaced in an indexed collection: the id moves.
                Some(v) => *v = write as u32,
                None => {
                    if let Some(r) = reservations.pop() {
                        s.map.insert(r.into_node(id, write as u32));
                    }
                }
            }
            if file {
                s.file_rows += 1;
            }
            write += 1;
            added += 1;
        }
        // Replaced rows of flat collections needed no new row.
        uncharge((n as u64 - added) * ROW_OVERHEAD);
        s.charged += added * ROW_OVERHEAD;
        self.trim(s);
        Ok(())
    }

    /// Links rows not yet in the graph, a few per hold of the write lock.
    /// Stops early, leaving the rest for the next mutation (searches scan
    /// them meanwhile), when out of memory or when the task is killed.
    fn link_pending(&self) {
        loop {
            let mut guard = self.store.write();
            let s = &mut *guard;
            let rows = s.ids.len();
            let stop = (s.linked + LINK_PER_LOCK).min(rows);
            let Some(graph) = s.graph.as_mut() else {
                return;
            };
            if s.linked >= rows {
                return;
            }
            let mut d = GraphDistances::new(self.rows_of(&s.chunks, &s.norms, rows));
            while s.linked < stop {
                let slot = s.linked;
                if s.flags[slot] & ROW_DEAD == 0 && graph.insert(&mut d, slot as u32).is_err() {
                    // Out of memory (or over the vector limit).
                    return;
                }
                s.linked += 1;
            }
            drop(guard);
            if sys::fatal_signal_pending() {
                return;
            }
            sys::cond_resched();
        }
    }

    /// [`Self::rows`] from the fields, for when the graph is borrowed
    /// mutably at the same time.
    fn rows_of<'a>(
        &'a self,
        chunks: &'a [PoolBuf<f32>],
        norms: &'a [simd::NormSq],
        rows: usize,
    ) -> Rows<'a> {
        Rows {
            chunks,
            norms,
            rows,
            dim: self.dim,
            rows_per_chunk: self.rows_per_chunk,
            metric: self.kernel,
        }
    }

    /// Marks a live row dead: out of searches, its graph node a tombstone.
    /// The caller has removed (or moved) its id in the map.
    fn mark_dead(&self, s: &mut Store, slot: usize) {
        if s.flags[slot] & ROW_FILE != 0 {
            s.file_rows -= 1;
        }
        s.flags[slot] |= ROW_DEAD;
        s.dead += 1;
        if slot < s.linked {
            if let Some(g) = s.graph.as_mut() {
                // Cannot fail: the row is live and linked.
                let _ = g.delete(slot as u32);
            }
        }
    }

    /// After deletes in an HNSW collection: once tombstones reach the
    /// graph's repair threshold, reconnects their neighbours and purges
    /// them (in steps), then compacts the rows. Needs `writer` held.
    fn repair_if_needed(&self) {
        let needs_repair = {
            let s = self.store.read();
            let Some(g) = s.graph.as_ref() else {
                return;
            };
            // Compaction moves the last rows into holes: they must be linked.
            if s.linked < s.ids.len() {
                return;
            }
            if g.needs_repair() {
                true
            } else if s.dead > 0 && g.deleted() == 0 {
                // Every dead row is already out of the graph (its last live
                // node was deleted, or it was never linked): compact only.
                false
            } else {
                return;
            }
        };
        // Holes may only be filled once their nodes are purged.
        if !needs_repair || self.repair() {
            self.compact();
        }
    }

    /// Runs the graph's repair to the end, a step per hold of the write
    /// lock; false if it ran out of memory. Needs `writer` held.
    fn repair(&self) -> bool {
        loop {
            let mut guard = self.store.write();
            let s = &mut *guard;
            let rows = s.ids.len();
            let Some(graph) = s.graph.as_mut() else {
                return false;
            };
            let mut d = GraphDistances::new(self.rows_of(&s.chunks, &s.norms, rows));
            match graph.repair_step(&mut d, REPAIR_PER_LOCK) {
                Ok(true) => return true,
                Ok(false) => {}
                // Out of memory: the graph is consistent; tombstones stay
                // until a later delete retries.
                Err(_) => return false,
            }
            drop(guard);
            sys::cond_resched();
        }
    }

    /// Moves live rows from the end into the holes of dead rows (whose
    /// graph nodes repair has purged), then frees unused chunks.
    fn compact(&self) {
        let mut slot = 0;
        loop {
            let mut guard = self.store.write();
            let s = &mut *guard;
            let stop = slot + COMPACT_PER_LOCK;
            while slot < stop && slot < s.ids.len() {
                if s.flags[slot] & ROW_DEAD == 0 {
                    slot += 1;
                    continue;
                }
                let last = s.ids.len() - 1;
                if last != slot && s.flags[last] & ROW_DEAD == 0 {
                    if !self.move_row(s, last, slot) {
                        // Not reachable (after a repair every hole is free
                        // in the graph); keep the hole rather than break
                        // the slot map.
                        slot += 1;
                        continue;
                    }
                    slot += 1;
                }
                // Otherwise the hole is the last row, or the last row is
                // dead too (then `slot` is looked at again).
                // The last row is now dead (moved or a hole itself): drop it.
                s.ids.pop();
                s.flags.pop();
                s.norms.pop();
                s.dead -= 1;
                s.charged -= ROW_OVERHEAD;
                uncharge(ROW_OVERHEAD);
            }
            s.linked = s.linked.min(s.ids.len());
            self.trim(s);
            if slot >= s.ids.len() {
                return;
            }
            drop(guard);
            sys::cond_resched();
        }
    }

    /// Copies live row `from` over dead row `to` (both stored), with its id,
    /// flags, norm, map entry and graph node; `from` becomes dead. False
    /// (and nothing changed) if the graph refuses the move.
    fn move_row(&self, s: &mut Store, from: usize, to: usize) -> bool {
        if let Some(g) = s.graph.as_mut() {
            if g.move_slot(from as u32, to as u32).is_err() {
                return false;
            }
        }
        // SAFETY: Distinct rows of `dim` values in our chunks; the caller
        // holds the write lock.
        unsafe {
            core::ptr::copy_nonoverlapping(self.row_ptr(s, from), self.row_ptr(s, to), self.dim)
        };
        let id = s.ids[from];
        s.ids[to] = id;
        s.flags[to] = s.flags[from];
        s.flags[from] = ROW_DEAD;
        if let Some(&norm) = s.norms.get(from) {
            s.norms[to] = norm;
        }
        if let Some(v) = s.map.get_mut(&id) {
            *v = to as u32;
        }
        true
    }

    /// Deletes `ids`; `ENOENT` (and nothing deleted) if one is absent.
    pub(crate) fn delete(&self, ids: &[u64]) -> Result {
        let _writer = self.writer.lock();
        {
            let mut guard = self.store.write();
            let s = &mut *guard;
            if ids.iter().any(|id| s.map.get(id).is_none()) {
                return Err(ENOENT);
            }
            for id in ids {
                // A repeated id was removed by its first occurrence.
                if let Some(slot) = s.map.remove(id) {
                    self.remove_slot(s, slot as usize);
                }
            }
            self.trim(s);
        }
        self.link_pending();
        self.repair_if_needed();
        Ok(())
    }

    /// Deletes the vector of the file with inode number `ino`, if it has one.
    pub(crate) fn delete_file_vector(&self, ino: u64) {
        let _writer = self.writer.lock();
        {
            let mut guard = self.store.write();
            let s = &mut *guard;
            let Some(&slot) = s.map.get(&ino) else {
                return;
            };
            if s.flags[slot as usize] & ROW_FILE == 0 {
                return;
            }
            s.map.remove(&ino);
            self.remove_slot(s, slot as usize);
            self.trim(s);
        }
        self.repair_if_needed();
    }

    /// Removes a row whose id is already out of the map: in an HNSW
    /// collection it becomes dead (see [`ROW_DEAD`]); in a flat one the
    /// last row moves into its place.
    fn remove_slot(&self, s: &mut Store, slot: usize) {
        if s.graph.is_some() {
            self.mark_dead(s, slot);
            return;
        }
        let last = s.ids.len() - 1;
        if s.flags[slot] & ROW_FILE != 0 {
            s.file_rows -= 1;
        }
        if slot != last {
            // SAFETY: Distinct rows of `dim` values in our chunks.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.row_ptr(s, last),
                    self.row_ptr(s, slot),
                    self.dim,
                )
            };
            let moved = s.ids[last];
            s.ids[slot] = moved;
            s.flags[slot] = s.flags[last];
            if let Some(&norm) = s.norms.get(last) {
                s.norms[slot] = norm;
            }
            if let Some(v) = s.map.get_mut(&moved) {
                *v = slot as u32;
            }
        }
        s.ids.pop();
        s.flags.pop();
        s.norms.pop();
        s.charged -= ROW_OVERHEAD;
        uncharge(ROW_OVERHEAD);
    }

    /// Copies the vector of `id` into `out` (`dim` values); returns whether
    /// it belongs to a file.
    pub(crate) fn get(&self, id: u64, out: &mut [f32]) -> Result<bool> {
        let s = self.store.read();
        let slot = *s.map.get(&id).ok_or(ENOENT)? as usize;
        if out.len() != self.dim {
            return Err(EINVAL);
        }
        // SAFETY: A live row of `dim` values (we hold the lock) and `out`,
        // exactly `dim` long and distinct from our chunks.
        unsafe {
            core::ptr::copy_nonoverlapping(self.row_ptr(&s, slot), out.as_mut_ptr(), self.dim)
        };
        Ok(s.flags[slot] & ROW_FILE != 0)
    }

    /// k-NN search: fills `scratch.top` with the nearest live rows to
    /// `query` (`dim` finite values). Through the graph if there is one and
    /// `mode` is not exact (plus an exact scan of rows not linked yet),
    /// otherwise by scanning every row.
    pub(crate) fn search(
        &self,
        path: simd::Path,
        query: &[f32],
        mode: SearchMode,
        scratch: &mut SearchScratch,
    ) -> Result {
        scratch.top.clear();
        let query_norm = if self.kernel == simd::Metric::Cosine {
            // SAFETY: `path` matches the CPU; the FPU is ours for the call.
            sys::with_fpu(|| unsafe { simd::norm_sq(path, query) })
        } else {
            simd::NormSq::default()
        };
        let s = self.store.read();
        let rows = s.ids.len();
        let from = match s.graph.as_ref() {
            Some(g) if !mode.exact => {
                let mut d = GraphDistances::new(self.rows(&s));
                d.query_norm = query_norm;
                let k = scratch.found.len();
                let n = g
                    .search(
                        &mut scratch.graph,
                        &mut d,
                        query,
                        k,
                        mode.ef,
                        &mut scratch.found,
                    )
                    .map_err(|_| ENOMEM)?;
                for nb in scratch.found.iter().take(n) {
                    let at = nb.slot as usize;
                    scratch.top.offer(Candidate {
                        key: nb.key,
                        bits: simd::bits_of_order_key(nb.key),
                        id: s.ids[at],
                        file: s.flags[at] & ROW_FILE != 0,
                    });
                }
                s.linked
            }
            _ => 0,
        };
        self.scan(&s, path, query, query_norm, from..rows, scratch);
        Ok(())
    }

    /// Exact search over the rows in `range`, skipping dead ones, into
    /// `scratch.top`.
    fn scan(
        &self,
        s: &Store,
        path: simd::Path,
        query: &[f32],
        query_norm: simd::NormSq,
        range: core::ops::Range<usize>,
        scratch: &mut SearchScratch,
    ) {
        let cosine = self.kernel == simd::Metric::Cosine;
        let dist = &mut scratch.dist;
        // One FPU section covers up to the float budget, across chunks: fewer
        // sections (and probe hits) per search than one per 16 KiB chunk.
        let per_section = (FPU_FLOAT_BUDGET / self.dim).clamp(1, dist.len());
        let mut slot = range.start;
        while slot < range.end {
            let n = per_section.min(range.end - slot);
            let bits = &mut dist[..n];
            // SAFETY: f32 and u32 have the same size and alignment and every
            // bit pattern is valid for both; `bits` is borrowed exclusively.
            let out =
                unsafe { core::slice::from_raw_parts_mut(bits.as_mut_ptr().cast::<f32>(), n) };
            vexfs_simd_batch(n * self.dim, &mut || {
                let mut done = 0;
                while done < n {
                    let at = slot + done;
                    let m = (self.rows_per_chunk - at % self.rows_per_chunk).min(n - done);
                    // SAFETY: Rows `at..at + m` are stored and contiguous in
                    // one chunk; we hold the lock.
                    let base =
                        unsafe { core::slice::from_raw_parts(self.row_ptr(s, at), m * self.dim) };
                    let out = &mut out[done..done + m];
                    // SAFETY: `path` was chosen from the CPU's features and the
                    // FPU is ours for this section.
                    unsafe {
                        if cosine {
                            let norms = &s.norms[at..at + m];
                            simd::cosine_distances_with_norms(
                                path, query, query_norm, base, norms, out,
                            )
                        } else {
                            simd::distances(path, self.kernel, query, base, out)
                        }
                    }
                    done += m;
                }
            });
            for (i, &bits) in dist[..n].iter().enumerate() {
                let at = slot + i;
                let flags = s.flags[at];
                if flags & ROW_DEAD != 0 {
                    continue;
                }
                scratch.top.offer(Candidate {
                    key: simd::order_key_bits(bits),
                    bits,
                    id: s.ids[at],
                    file: flags & ROW_FILE != 0,
                });
            }
            slot += n;
            sys::cond_resched();
        }
    }
}

/// A new HNSW graph with `M` and `ef_construction` from the create request
/// (0 for the defaults, already range-checked).
fn new_graph(m: u32, ef_construction: u32) -> Result<Hnsw<GraphAlloc>> {
    let defaults = hnsw::Params::default();
    let params = hnsw::Params {
        m: if m == 0 { abi::HNSW_DEFAULT_M } else { m } as usize,
        ef_construction: if ef_construction == 0 {
            abi::HNSW_DEFAULT_EF_CONSTRUCTION
        } else {
            ef_construction
        } as usize,
        ..defaults
    };
    Hnsw::new(params, GraphAlloc::CHARGED).map_err(|_| EINVAL)
}

impl Drop for Store {
    fn drop(&mut self) {
        uncharge(self.charged);
    }
}
