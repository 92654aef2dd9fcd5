// SPDX-License-Identifier: GPL-2.0

//! Vector collections: a directory's flat store of `(id, vector)` rows and
//! exact k-NN search over it.
//!
//! Rows live in 16 KiB pool objects ("chunks") holding `4096 / dim` rows each;
//! an rbtree maps ids to row slots. Deletion moves the last row into the hole,
//! so rows stay dense. A batch insert first stages its rows after the last
//! row and reserves every allocation it needs, then commits without any step
//! that can fail: a failed batch leaves the store as it was.
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
use crate::pool::PoolBuf;
use crate::simd;
use crate::sys;

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
extern "Rust" fn vexfs_simd_batch(floats: usize, work: &mut dyn FnMut()) {
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
fn charge(bytes: u64) -> Result {
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

fn uncharge(bytes: u64) {
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

    fn clear(&mut self) {
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

struct Store {
    chunks: KVVec<PoolBuf<f32>>,
    /// Row slot to id.
    ids: KVVec<u64>,
    /// Row slot to "belongs to a file".
    file: KVVec<bool>,
    /// Row slot to `|row|^2`, in cosine collections only: a cosine search
    /// then needs one dot product per row.
    norms: KVVec<simd::NormSq>,
    /// Id to row slot.
    map: RBTree<u64, u32>,
    file_rows: u64,
    /// Bytes charged to the module-wide limit.
    charged: u64,
}

/// A collection: the state a directory gains from `VEXFS_IOC_CREATE`.
#[pin_data]
pub(crate) struct Collection {
    dim: usize,
    rows_per_chunk: usize,
    metric: u32,
    kernel: simd::Metric,
    #[pin]
    store: Mutex<Store>,
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
        KBox::pin_init(
            pin_init!(Self {
                dim,
                rows_per_chunk,
                metric: params.metric,
                kernel,
                store <- new_mutex!(Store {
                    chunks: KVVec::new(),
                    ids: KVVec::new(),
                    file: KVVec::new(),
                    norms: KVVec::new(),
                    map: RBTree::new(),
                    file_rows: 0,
                    charged: 0,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// The dimension.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn info(&self) -> abi::CollectionInfo {
        let s = self.store.lock();
        abi::CollectionInfo {
            dim: self.dim as u32,
            metric: self.metric,
            index: abi::index::FLAT,
            reserved: 0,
            count: s.ids.len() as u64,
            file_vectors: s.file_rows,
            memory_bytes: s.charged,
        }
    }

    fn row_ptr(&self, s: &Store, slot: usize) -> *mut f32 {
        let chunk = &s.chunks[slot / self.rows_per_chunk];
        let off = (slot % self.rows_per_chunk) * self.dim;
        // In bounds: `off + dim <= CHUNK_FLOATS` by the choice of
        // `rows_per_chunk`. The pointer keeps the chunk's write provenance.
        chunk.as_mut_ptr().wrapping_add(off)
    }

    /// Whether the file with inode number `ino` has a vector here.
    pub(crate) fn has_file_vector(&self, ino: u64) -> bool {
        let s = self.store.lock();
        s.map.get(&ino).is_some_and(|&slot| s.file[slot as usize])
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
    /// for example from user memory, and check them. All or nothing.
    pub(crate) fn upsert(
        &self,
        ids: &[u64],
        file: bool,
        mut fill: impl FnMut(&mut [f32], usize, usize) -> Result,
    ) -> Result {
        let n = ids.len();
        let mut guard = self.store.lock();
        let s = &mut *guard;
        let base = s.ids.len();
        // Ids of files are owned by their file; of plain vectors, by insert.
        for id in ids {
            if let Some(&slot) = s.map.get(id) {
                if s.file[slot as usize] != file {
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
            s.file.reserve(n, GFP_KERNEL)?;
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
                // (they lie past `ids.len()`), and we hold the store lock.
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
        let mut write = base;
        let mut added = 0u64;
        for (i, &id) in ids.iter().enumerate() {
            let staged = self.row_ptr(s, base + i);
            if let Some(&slot) = s.map.get(&id) {
                // SAFETY: Distinct rows of `dim` values in our chunks.
                unsafe {
                    core::ptr::copy_nonoverlapping(staged, self.row_ptr(s, slot as usize), self.dim)
                };
                if let (Some(norm), Some(&new)) =
                    (s.norms.get_mut(slot as usize), staged_norms.get(i))
                {
                    *norm = new;
                }
                continue;
            }
            if write != base + i {
                // SAFETY: `write < base + i`: distinct rows in our chunks.
                unsafe { core::ptr::copy_nonoverlapping(staged, self.row_ptr(s, write), self.dim) };
            }
            // Capacity was reserved above, so these cannot fail.
            let _ = s.ids.push_within_capacity(id);
            let _ = s.file.push_within_capacity(file);
            if let Some(&norm) = staged_norms.get(i) {
                let _ = s.norms.push_within_capacity(norm);
            }
            if let Some(r) = reservations.pop() {
                s.map.insert(r.into_node(id, write as u32));
            }
            write += 1;
            added += 1;
        }
        if file {
            s.file_rows += added;
        }
        // Replaced rows needed no new map node or id slot.
        uncharge((n as u64 - added) * ROW_OVERHEAD);
        s.charged += added * ROW_OVERHEAD;
        self.trim(s);
        Ok(())
    }

    /// Deletes `ids`; `ENOENT` (and nothing deleted) if one is absent.
    pub(crate) fn delete(&self, ids: &[u64]) -> Result {
        let mut guard = self.store.lock();
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
        Ok(())
    }

    /// Deletes the vector of the file with inode number `ino`, if it has one.
    pub(crate) fn delete_file_vector(&self, ino: u64) {
        let mut guard = self.store.lock();
        let s = &mut *guard;
        if let Some(&slot) = s.map.get(&ino) {
            if s.file[slot as usize] {
                s.map.remove(&ino);
                self.remove_slot(s, slot as usize);
                self.trim(s);
            }
        }
    }

    /// Moves the last row into `slot` (already removed from the map).
    fn remove_slot(&self, s: &mut Store, slot: usize) {
        let last = s.ids.len() - 1;
        if s.file[slot] {
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
            s.file[slot] = s.file[last];
            if let Some(&norm) = s.norms.get(last) {
                s.norms[slot] = norm;
            }
            if let Some(v) = s.map.get_mut(&moved) {
                *v = slot as u32;
            }
        }
        s.ids.pop();
        s.file.pop();
        s.norms.pop();
        s.charged -= ROW_OVERHEAD;
        uncharge(ROW_OVERHEAD);
    }

    /// Copies the vector of `id` into `out` (`dim` values); returns whether
    /// it belongs to a file.
    pub(crate) fn get(&self, id: u64, out: &mut [f32]) -> Result<bool> {
        let s = self.store.lock();
        let slot = *s.map.get(&id).ok_or(ENOENT)? as usize;
        if out.len() != self.dim {
            return Err(EINVAL);
        }
        // SAFETY: A live row of `dim` values (we hold the lock) and `out`,
        // exactly `dim` long and distinct from our chunks.
        unsafe {
            core::ptr::copy_nonoverlapping(self.row_ptr(&s, slot), out.as_mut_ptr(), self.dim)
        };
        Ok(s.file[slot])
    }

    /// Exact search: fills `top` with the nearest rows to `query` (`dim`
    /// finite values). `dist` is scratch space of at least one chunk's rows;
    /// it holds distances as f32 bits, read back as integers only.
    pub(crate) fn search(&self, path: simd::Path, query: &[f32], top: &mut TopK, dist: &mut [u32]) {
        top.clear();
        let cosine = self.kernel == simd::Metric::Cosine;
        let query_norm = if cosine {
            // SAFETY: `path` matches the CPU; the FPU is ours for the call.
            sys::with_fpu(|| unsafe { simd::norm_sq(path, query) })
        } else {
            simd::NormSq::default()
        };
        let s = self.store.lock();
        let rows = s.ids.len();
        // One FPU section covers up to the float budget, across chunks: fewer
        // sections (and probe hits) per search than one per 16 KiB chunk.
        let per_section = (FPU_FLOAT_BUDGET / self.dim).clamp(1, dist.len());
        let mut slot = 0;
        while slot < rows {
            let n = per_section.min(rows - slot);
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
                    // SAFETY: Rows `at..at + m` are live and contiguous in one
                    // chunk; we hold the lock.
                    let base =
                        unsafe { core::slice::from_raw_parts(self.row_ptr(&s, at), m * self.dim) };
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
                top.offer(Candidate {
                    key: simd::order_key_bits(bits),
                    bits,
                    id: s.ids[at],
                    file: s.file[at],
                });
            }
            slot += n;
            sys::cond_resched();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        uncharge(self.charged);
    }
}
