// SPDX-License-Identifier: GPL-2.0

//! Vector collections: a directory's store of `(id, vector)` rows, exact
//! k-NN search over it and, for HNSW collections, the graph that answers
//! approximate searches (`hnsw_glue` connects the two).
//!
//! Rows live in 16 KiB pool objects ("chunks") holding `4096 / dim` rows each;
//! an rbtree maps ids to row slots. In a flat collection deletion moves the
//! last row into the hole, so rows stay dense. In an HNSW collection a
//! deleted row stays (dead) until the graph's repair has purged its node;
//! compaction then fills the holes.
//!
//! A batch is staged outside every lock (the caller copies it from user
//! memory into a [`Batch`], whose memory counts against the in-flight
//! budget), then committed under the write lock in one step that copies
//! memory to memory: all or nothing, visible to searches at once. Linking
//! new rows into the graph, repair and compaction ("maintenance") run later
//! in short steps, by one task at a time: an inserting caller links its own
//! batch unless another task is at it; everything else (repair,
//! compaction, rows others left unlinked) goes to the module's workqueue,
//! charged to the memory cgroup of the collection's creator.
//!
//! All float arithmetic happens in the SIMD kernels (`simd`), inside FPU
//! sections of bounded size; outside them distances are compared as integer
//! order keys, because the kernel's Rust target is soft-float.

use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::Arc;
use kernel::workqueue::{Work, WorkItem};

use crate::abi;
use crate::hnsw::{self, Distances, Hnsw, IdMap, Plan};
use crate::hnsw_glue::{GraphAlloc, GraphDistances, Rows};
use crate::pool::{PoolBox, PoolBuf};
use crate::simd;
use crate::sq8::{self, Sq8, Sq8Walk};
use crate::vfs::cpu::{with_fpu, Simd};
use crate::vfs::mem::{copy_f32, u32_as_f32_mut};
use crate::vfs::share;
use crate::vfs::sync::{workqueue, RwSem, WriteGuard};
use crate::vfs::task::{self, MemcgRef};

/// f32 values in one chunk: one 16 KiB pool object.
pub(crate) const CHUNK_FLOATS: usize = 4096;
/// Bytes of one chunk.
const CHUNK_BYTES: u64 = (CHUNK_FLOATS * 4) as u64;
/// At most this many f32 values are processed per FPU section, so preemption
/// is held off for a few tens of microseconds at most.
pub(crate) const FPU_FLOAT_BUDGET: usize = 32768;
/// The FPU sections of `n` rows of `dim` values each: consecutive row
/// ranges of at most [`FPU_FLOAT_BUDGET`] values (but at least one row) and
/// at most `cap` rows, with a reschedule point between two sections. Every
/// SIMD path splits its work with this (or [`block_sections`]), so the
/// bound holds everywhere.
pub(crate) fn fpu_sections(n: usize, dim: usize, cap: usize) -> impl Iterator<Item = Range<usize>> {
    sections_within(n, dim, FPU_FLOAT_BUDGET, cap)
}

/// Multiply-adds of the blocked exact-search kernel per FPU section. It
/// does three to four times the multiply-adds per second of the per-row
/// kernels, whose [`FPU_FLOAT_BUDGET`] values per section this about
/// matches in time (`scripts/bench-exact` prints the measured sections).
pub(crate) const BLOCK_MAC_BUDGET: usize = 4 * FPU_FLOAT_BUDGET;

/// [`fpu_sections`] for the blocked kernel, where a row costs `macs`
/// multiply-adds (`dim` times the number of queries).
fn block_sections(n: usize, macs: usize, cap: usize) -> impl Iterator<Item = Range<usize>> {
    sections_within(n, macs, BLOCK_MAC_BUDGET, cap)
}

/// Consecutive ranges of `n` rows costing `per_row` each: at most `budget`
/// in all (but at least one row) and at most `cap` rows, with a reschedule
/// point between two.
fn sections_within(
    n: usize,
    per_row: usize,
    budget: usize,
    cap: usize,
) -> impl Iterator<Item = Range<usize>> {
    let per_section = (budget / per_row.max(1)).clamp(1, cap.max(1));
    (0..n).step_by(per_section).map(move |start| {
        if start > 0 {
            task::cond_resched();
        }
        start..(start + per_section).min(n)
    })
}

/// One FPU section of SIMD work over `floats` stored values (a block of
/// distances for a search, of norms for an insert), through the probe
/// point `vexfs_simd_batch` (`vfs/entry.rs`).
pub(crate) use crate::vfs::entry::simd_batch;

/// Vector bytes stored by every collection of every mount.
static VECTOR_BYTES: Atomic<u64> = Atomic::new(0);
/// Bytes of calls in progress: staged batches, id arrays, search buffers.
static INFLIGHT_BYTES: Atomic<u64> = Atomic::new(0);

/// Bytes of vector storage in use, module-wide.
pub(crate) fn vector_bytes() -> u64 {
    VECTOR_BYTES.load(Relaxed)
}

/// Bytes held by vector calls in progress, module-wide.
pub(crate) fn inflight_bytes() -> u64 {
    INFLIGHT_BYTES.load(Relaxed)
}

/// Adds `bytes` to `counter` unless that passes `limit`.
fn charge_within(counter: &Atomic<u64>, bytes: u64, limit: u64) -> bool {
    let mut cur = counter.load(Relaxed);
    loop {
        let Some(new) = cur.checked_add(bytes).filter(|&n| n <= limit) else {
            return false;
        };
        match counter.cmpxchg(cur, new, Relaxed) {
            Ok(_) => return true,
            Err(seen) => cur = seen,
        }
    }
}

/// Charges `bytes` against the module-wide limit, or fails with ENOSPC.
pub(crate) fn charge(bytes: u64) -> Result {
    if charge_within(&VECTOR_BYTES, bytes, crate::vector_limit_bytes()) {
        Ok(())
    } else {
        Err(ENOSPC)
    }
}

pub(crate) fn uncharge(bytes: u64) {
    VECTOR_BYTES.fetch_sub(bytes, Relaxed);
}

/// Memory of one call in progress, counted against the in-flight budget
/// (as large as `max_vector_mib`) until dropped. So the kernel memory that
/// callers cause at once, all users together, is at most the vector limit
/// stored plus the vector limit in flight.
pub(crate) struct Inflight(u64);

impl Inflight {
    /// Takes `bytes` of the budget: `E2BIG` if one call alone is larger
    /// than the whole budget, `EAGAIN` while other calls hold too much.
    pub(crate) fn take(bytes: u64) -> Result<Self> {
        if bytes > crate::vector_limit_bytes() {
            return Err(E2BIG);
        }
        if inflight_charge(bytes) {
            Ok(Self(bytes))
        } else {
            Err(EAGAIN)
        }
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        inflight_uncharge(self.0);
    }
}

/// Counts `bytes` in flight unless that passes the budget; for memory
/// that grows during a call (a search's visited set).
pub(crate) fn inflight_charge(bytes: u64) -> bool {
    charge_within(&INFLIGHT_BYTES, bytes, crate::vector_limit_bytes())
}

/// Gives back bytes counted by [`inflight_charge`].
pub(crate) fn inflight_uncharge(bytes: u64) {
    INFLIGHT_BYTES.fetch_sub(bytes, Relaxed);
}

/// A search candidate; ordered by distance key, then id.
#[derive(Clone, Copy, Zeroable)]
pub(crate) struct Candidate {
    key: u32,
    bits: u32,
    id: u64,
    file: bool,
}

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

    fn len(&self) -> usize {
        self.len
    }

    /// The largest distance key that may still enter: the worst kept one's
    /// when the heap is full (an equal key may win on its id), else any.
    #[inline]
    fn bar(&self) -> u32 {
        if self.len < self.heap.len() {
            u32::MAX
        } else {
            self.heap[0].key
        }
    }

    /// Whether a candidate of `rank` would enter: the heap is not full, or
    /// it beats the worst one kept. (Checked before the more costly tests,
    /// such as whether the caller may read a file.)
    fn would_take(&self, rank: (u32, u64)) -> bool {
        self.len < self.heap.len() || rank < self.heap[0].rank()
    }

    fn offer(&mut self, c: Candidate) {
        if c.file && self.offer_same_file(c) {
            return;
        }
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
            self.sift_down(0);
        }
    }

    /// A file is found once, by its nearest vector: if the heap holds
    /// another vector of `c`'s file, keeps the nearer of the two and
    /// returns true.
    fn offer_same_file(&mut self, c: Candidate) -> bool {
        let ino = abi::file_vector_part(c.id).0;
        let held = &self.heap[..self.len];
        let Some(i) = held
            .iter()
            .position(|h| h.file && abi::file_vector_part(h.id).0 == ino)
        else {
            return false;
        };
        if c.rank() < self.heap[i].rank() {
            self.heap[i] = c;
            self.sift_down(i);
        }
        true
    }

    /// Restores the heap below `i` after its rank went down.
    fn sift_down(&mut self, mut i: usize) {
        let (h, n) = (&mut self.heap, self.len);
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

    /// The candidates held, in heap order.
    fn held(&self) -> &[Candidate] {
        &self.heap[..self.len]
    }

    /// The candidates, nearest first, ties by ascending id (ranks are
    /// unique). A heapsort in place: the library's sorts keep up to 1 KiB of
    /// scratch on the stack, the deepest frame of a search. The heap order
    /// is gone afterwards, as with any sort.
    pub(crate) fn sorted(&mut self) -> &[Candidate] {
        let n = self.len;
        while self.len > 1 {
            self.len -= 1;
            self.heap.swap(0, self.len);
            self.sift_down(0);
        }
        self.len = n;
        &self.heap[..n]
    }
}

/// [`Store::flags`] bit: the row is a file's vector.
const ROW_FILE: u8 = 1;
/// [`Store::flags`] bit: the row was deleted or replaced in an HNSW
/// collection. It stays stored (the graph may still walk through its node)
/// until a repair purges the node and compaction reclaims the row.
const ROW_DEAD: u8 = 2;

/// Graph nodes linked per hold of the write lock: a search or a removal
/// waits for at most this many node insertions.
const LINK_PER_LOCK: usize = 4;
/// Rows each CPU plans in one round of linking on several CPUs: a round
/// holds the read lock about as long as two steps of linking on one CPU
/// hold the write lock. (In the TCG guest, 5,000 GloVe rows linked 1.23x
/// faster on 2 CPUs with 8, 1.14x with 16; a helper's start is slow
/// there.)
const PLAN_PER_CPU: usize = 8;
/// Nodes a graph has before rows are planned on several CPUs: below it an
/// insert's search takes microseconds, less than starting a helper.
const PLAN_MIN_NODES: usize = 1024;
/// Multiply-adds of the searches one CPU plans in a round, about
/// (`ef_construction x 2M x dim` per plan): [`PLAN_PER_CPU`] plans of
/// 384-d vectors at the default M and ef_construction; one plan when an
/// insert's search costs more.
const PLAN_ROUND_MACS: usize = PLAN_PER_CPU * 200 * 32 * 384;
/// The level of a row that is not planned (dead when the round began).
const NO_PLAN: usize = usize::MAX;

/// Plans of the next rows to link, made on several CPUs (see
/// [`Collection::link`]), and their working memory, kept from round to
/// round of one call.
struct Planned {
    /// Row `start + i` has plan `plans[i]`, for `i < count`.
    start: usize,
    count: usize,
    plans: KVec<Plan<GraphAlloc>>,
    levels: KVec<usize>,
    /// The round's rows as slots: a row's mates are the ones before it.
    slots: KVec<u32>,
    /// One search scratch per CPU.
    scratch: KVec<hnsw::SearchScratch<GraphAlloc>>,
}

impl Planned {
    fn new() -> Self {
        Self {
            start: 0,
            count: 0,
            plans: KVec::new(),
            levels: KVec::new(),
            slots: KVec::new(),
            scratch: KVec::new(),
        }
    }

    /// The end of the planned rows, if there are plans.
    fn end(&self) -> Option<usize> {
        (self.count > 0).then_some(self.start + self.count)
    }

    /// Row `slot`'s plan and the rows planned with it before it.
    fn plan(&self, slot: usize) -> Option<(&Plan<GraphAlloc>, &[u32])> {
        let i = slot.checked_sub(self.start).filter(|&i| i < self.count)?;
        if self.levels.get(i) == Some(&NO_PLAN) {
            return None;
        }
        Some((self.plans.get(i)?, self.slots.get(..i)?))
    }

    /// Memory to plan rows `start..start + n` of `g` on `cpus` CPUs, and
    /// their levels: the next levels the graph draws, in order, for the
    /// rows that are not `dead` (a dead row is not linked, and draws
    /// none).
    fn reserve(
        &mut self,
        g: &Hnsw<GraphAlloc>,
        start: usize,
        n: usize,
        cpus: usize,
        dead: impl Fn(usize) -> bool,
    ) -> Result {
        while self.scratch.len() < cpus {
            self.scratch.push(
                hnsw::SearchScratch::new(GraphAlloc::SCRATCH),
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        for scratch in self.scratch.iter_mut().take(cpus) {
            g.reserve_plan_scratch(scratch).map_err(|_| ENOMEM)?;
        }
        while self.plans.len() < n {
            self.plans
                .push(Plan::new(GraphAlloc::SCRATCH), GFP_KERNEL_ACCOUNT)?;
        }
        // The next levels drawn, then spread over the live rows in order.
        let live = (start..start + n).filter(|&slot| !dead(slot)).count();
        self.levels.clear();
        self.levels.resize(n, NO_PLAN, GFP_KERNEL_ACCOUNT)?;
        g.next_levels(&mut self.levels[..live]);
        // Back to front, row `i` takes the level of its rank among the live
        // rows, at most `i`: a place not yet overwritten.
        let mut rank = live;
        for i in (0..n).rev() {
            let level = if dead(start + i) {
                NO_PLAN
            } else {
                rank -= 1;
                self.levels[rank]
            };
            self.levels[i] = level;
        }
        for (plan, &level) in self.plans.iter_mut().zip(self.levels.iter()) {
            if level != NO_PLAN {
                plan.reserve(g, level).map_err(|_| ENOMEM)?;
            }
        }
        self.slots.clear();
        for slot in start..start + n {
            self.slots.push(slot as u32, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(())
    }
}
/// Repair work (in nodes) per hold of the write lock.
const REPAIR_PER_LOCK: usize = 64;
/// Rows examined by compaction per hold of the write lock.
const COMPACT_PER_LOCK: usize = 4096;
/// Ids a DELETE checks between looks for a fatal signal (a file row's check
/// is an inode lookup and a permission check, under the write side).
const DELETE_CHECKS_PER_YIELD: usize = 4096;
/// Dead rows (deleted or replaced, awaiting repair and compaction) of an
/// HNSW collection are kept below this percentage of its stored rows.
pub(crate) const DEAD_PERCENT: usize = 10;

pub(crate) struct Store {
    chunks: KVVec<PoolBuf<f32>>,
    /// Row slot to id.
    ids: KVVec<u64>,
    /// Row slot to [`ROW_FILE`] | [`ROW_DEAD`].
    flags: KVVec<u8>,
    /// Row slot to `|row|^2`, in cosine collections only: a cosine search
    /// then needs one dot product per row.
    norms: KVVec<simd::NormSq>,
    /// Id to row slot (live rows only). Its table is charged to the limit
    /// by its allocator, like the graph.
    map: IdMap<GraphAlloc>,
    /// Live rows that are files' vectors.
    file_rows: u64,
    /// Live file rows past a file's first part: a search finds a file
    /// once, so a collection holds `map_len() - extra_parts` findable
    /// items.
    extra_parts: u64,
    /// Rows with [`ROW_DEAD`].
    dead: usize,
    /// HNSW collections: the graph over rows `0..linked` (dead ones are
    /// tombstones or already purged). Rows from `linked` on are not linked
    /// yet; searches scan them exactly.
    graph: Option<KBox<Hnsw<GraphAlloc>>>,
    linked: usize,
    /// HNSW collections with `quantize = sq8`: the codes of rows
    /// `0..linked`, which a search's graph walk reads.
    sq8: Option<KBox<Sq8>>,
    /// Bytes of `ids`, `flags` and `norms` capacity charged to the limit
    /// (chunks are charged by count; the map and the graph charge their
    /// own).
    meta_charged: u64,
}

/// What maintenance an HNSW collection has pending; the one rule that
/// both runs it and decides whether any is left (so that the worker never
/// loops on work it would not do).
struct Pending {
    /// Rows not linked into the graph yet.
    link: bool,
    /// Tombstones to purge: they reached the graph's threshold,
    /// [`DEAD_PERCENT`] of its nodes (at most the stored rows, so also of
    /// those). Tombstones only: purged rows awaiting compaction must not
    /// call for another full repair.
    repair: bool,
    /// Holes to fill (dead rows that are not tombstones), after a repair
    /// or left by one; compaction always ends with none. Only once every
    /// row is linked (compaction moves the last rows).
    compact: bool,
}

impl Pending {
    fn any(&self) -> bool {
        self.link || self.repair || self.compact
    }
}

impl Store {
    /// Bytes this store charged to the vector limit itself (not the map
    /// and the graph, whose allocator does).
    fn charged(&self) -> u64 {
        self.chunks.len() as u64 * CHUNK_BYTES + self.meta_charged
    }

    /// Live rows (each has one map entry).
    fn map_len(&self) -> u64 {
        (self.ids.len() - self.dead) as u64
    }

    /// Live rows a search can return as distinct hits (a file once).
    fn findable(&self) -> usize {
        (self.map_len() - self.extra_parts) as usize
    }

    /// Counts a file row with id `id` in (`live`) or out.
    fn count_file_row(&mut self, id: u64, live: bool) {
        let extra = u64::from(abi::file_vector_part(id).1 != 0);
        if live {
            self.file_rows += 1;
            self.extra_parts += extra;
        } else {
            self.file_rows -= 1;
            self.extra_parts -= extra;
        }
    }

    /// Bytes of the three per-row arrays' current capacity.
    fn meta_bytes(&self) -> u64 {
        (self.ids.capacity() * 8 + self.flags.capacity() + self.norms.capacity() * 4) as u64
    }

    /// Whether `slot` is dead and out of the graph (a tombstone is dead but
    /// still a node).
    fn is_hole(&self, slot: usize) -> bool {
        self.flags[slot] & ROW_DEAD != 0
            && !self.graph.as_ref().is_some_and(|g| g.holds(slot as u32))
    }

    fn pending(&self) -> Pending {
        let Some(g) = self.graph.as_ref() else {
            return Pending {
                link: false,
                repair: false,
                compact: false,
            };
        };
        let link = self.linked < self.ids.len();
        // Every tombstone is a dead row; the other dead rows are holes.
        let tombstones = g.deleted();
        let repair = g.needs_repair();
        Pending {
            link,
            repair,
            compact: !link && (repair || self.dead > tombstones),
        }
    }
}

/// What a change (insert, delete, attach) left to maintain: see
/// [`Collection::follow_up`].
#[must_use]
pub(crate) struct Change {
    /// The row slots it stored.
    rows: Range<usize>,
}

/// Why maintenance stopped before the end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The task was killed (the work is left to the worker).
    Killed,
    /// Out of memory or over the vector limit: the work stays pending
    /// (searches still find every row); a caller leaves it to the worker,
    /// the worker to the next change.
    NoMemory,
}

/// A piece of a collection as a checkpoint stores it (see
/// [`Collection::write_back`]).
pub(crate) enum Piece<'a> {
    /// Rows of one kind ([`ROW_FILE`] | [`ROW_DEAD`]): ids and vectors.
    Rows(u8, &'a [u64], &'a [f32]),
    /// Bytes of the graph's encoding.
    Graph(&'a [u8]),
}

/// A collection: the state a directory gains from `VEXFS_IOC_CREATE`.
///
/// Locking: `store` is a reader-writer semaphore whose waits are killable.
/// Searches hold its read side for one query at a time, so any number run
/// at once. Every hold of the write side is one bounded step: committing a
/// staged batch, removing ids, linking a few nodes, one repair or
/// compaction step. `maintaining` lets one task at a time run the
/// multi-step work; a task that finds it taken queues the worker, and the
/// task that lets it go queues the worker if work is left.
#[pin_data]
pub(crate) struct Collection {
    dim: usize,
    rows_per_chunk: usize,
    metric: u32,
    kernel: simd::Metric,
    index: u32,
    /// One of `abi::quantize`, fixed at creation.
    quantize: u32,
    maintaining: AtomicBool,
    /// Set when the directory is evicted: queued maintenance is moot.
    dying: AtomicBool,
    /// The creator's memory cgroup, charged for the worker's allocations.
    owner: MemcgRef,
    #[pin]
    store: RwSem<Store>,
    /// Maintenance left to the module's workqueue: by namespace
    /// operations (unlink, rename, which must not run it while the VFS
    /// holds directory locks), and whatever no caller does itself.
    #[pin]
    work: Work<Collection>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for Collection { self.work }
}

impl WorkItem for Collection {
    type Pointer = Arc<Collection>;

    fn run(this: Arc<Collection>) {
        Self::run_queued(&this);
    }
}

/// The request of one search, besides the query.
#[derive(Clone, Copy)]
pub(crate) struct SearchMode {
    /// Scan every row even if there is a graph.
    pub(crate) exact: bool,
    /// Beam width of a graph search.
    pub(crate) ef: usize,
    /// The caller's filter admits every plain vector (so a scan of a
    /// collection without files' vectors needs no permission check, and
    /// helper CPUs may do it).
    pub(crate) plain_rows_admitted: bool,
}

/// Multiply-adds of exact scan that make one helper CPU worth starting
/// (about a millisecond natively; a helper's start costs a few
/// microseconds).
pub(crate) const SHARE_MACS: usize = 1 << 22;

/// Pieces each CPU of a shared scan takes on average: helpers that start
/// late take fewer.
const PIECES_PER_CPU: usize = 4;

/// Multiply-adds of one piece of a shared scan at most (about 3 ms
/// natively): the requester, done with its own pieces, waits for a running
/// helper's piece uninterruptibly, so a piece stays short whatever the
/// collection's size.
const PIECE_MACS: usize = 1 << 24;

/// One CPU's heaps (one per query of the group) and distance buffer for
/// exact scans: the requester's, and each helper's in a shared scan.
pub(crate) struct ScanSlot {
    pub(crate) tops: KVec<TopK>,
    dist: PoolBuf<u32>,
}

impl ScanSlot {
    fn new(k: usize, group: usize) -> Result<Self> {
        let mut tops = KVec::with_capacity(group, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..group {
            tops.push(TopK::new(k)?, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self {
            tops,
            dist: PoolBuf::new_zeroed(CHUNK_FLOATS)?,
        })
    }

    fn bytes(k: usize, group: usize) -> usize {
        group * (k * core::mem::size_of::<Candidate>() + core::mem::size_of::<TopK>())
            + CHUNK_FLOATS * 4
    }
}

/// Most queries searched together (see [`SearchScratch::group`]).
const MAX_GROUP: usize = 32;
/// Result slots (`k` per query) of one group at most: 96 KiB of heaps.
const GROUP_CANDIDATES: usize = 4096;
/// Query values of one group at most: 64 KiB.
const GROUP_FLOATS: usize = 16384;
/// Multiply-adds of one group's exact scan (rows x dim x queries) past
/// which a group of a big collection stops growing beyond
/// [`MIN_SCAN_GROUP`] queries, so that a writer waits for one group's scan
/// (under 40 ms for 8 queries on GloVe 400,000 x 50 natively,
/// `scripts/bench-exact`) rather than for 32.
const GROUP_SCAN_MACS: usize = 1 << 27;
/// Queries a group keeps whatever the collection's size: blocking gives
/// most of its gain by then (each row loaded once serves 8 queries).
const MIN_SCAN_GROUP: usize = 8;

/// Per-ioctl working memory of searches: a group of queries and their
/// result heaps. An exact search scans the rows once per group, so every
/// row read from memory serves all the group's queries.
pub(crate) struct SearchScratch {
    /// The requester's heaps and distance buffer first, then one slot per
    /// helper CPU of a shared exact scan. Never empty.
    slots: KVec<ScanSlot>,
    /// The group's queries, `dim` values each.
    pub(crate) queries: PoolBuf<f32>,
    /// `|query|^2` of each, for cosine.
    query_norms: PoolBuf<simd::NormSq>,
    walk: WalkScratch,
}

/// Working memory of one query's graph search.
struct WalkScratch {
    graph: hnsw::SearchScratch<GraphAlloc>,
    /// The nodes the beam kept.
    found: PoolBuf<hnsw::Neighbour>,
    /// SQ8: the query's integer weights.
    weights: PoolBuf<i16>,
    /// SQ8: the slots the walk found, then their float keys (`ef` each).
    rerank: PoolBuf<u32>,
}

impl SearchScratch {
    /// Queries per group for `k` results of `dim` values in a collection
    /// of about `rows` rows: as many as [`MAX_GROUP`] while their heaps
    /// and values stay within [`GROUP_CANDIDATES`] and [`GROUP_FLOATS`] and
    /// their scan within [`GROUP_SCAN_MACS`] (or [`MIN_SCAN_GROUP`]
    /// queries), at least one.
    pub(crate) fn group(k: usize, dim: usize, rows: usize) -> usize {
        let scan = (GROUP_SCAN_MACS / rows.saturating_mul(dim).max(1)).max(MIN_SCAN_GROUP);
        (GROUP_CANDIDATES / k.max(1))
            .min(GROUP_FLOATS / dim.max(1))
            .min(scan)
            .clamp(1, MAX_GROUP)
    }

    /// Bytes of the fixed buffers for groups of `group` queries of `dim`
    /// values, `k` results, beam width `ef`, `helpers` helper CPUs and,
    /// for a `quantized` collection, the SQ8 walk's weights and re-rank
    /// (the graph's visited set grows on demand and counts itself).
    pub(crate) fn bytes(
        k: usize,
        ef: usize,
        group: usize,
        dim: usize,
        helpers: usize,
        quantized: bool,
    ) -> u64 {
        let (weights, rerank) = Self::sq8_lens(ef, dim, quantized);
        ((1 + helpers) * ScanSlot::bytes(k, group)
            + helpers * share::HELPER_BYTES
            + group * (dim * 4 + 4)
            + ef * core::mem::size_of::<hnsw::Neighbour>()
            + weights * 2
            + rerank * 4) as u64
    }

    /// Lengths of the SQ8 walk's buffers: query weights and re-rank slots
    /// and keys (none for a collection that is not quantized).
    fn sq8_lens(ef: usize, dim: usize, quantized: bool) -> (usize, usize) {
        if quantized {
            (sq8::stride(dim), 2 * ef)
        } else {
            (0, 0)
        }
    }

    /// The scratch for a search, written straight into a pool block and
    /// built out of line: a scratch by value, and the copies of it, sat in
    /// the search ioctl's frame, which lies under every distance computed
    /// (the stack test build measures it).
    #[inline(never)]
    pub(crate) fn new(
        k: usize,
        ef: usize,
        group: usize,
        dim: usize,
        helpers: usize,
        quantized: bool,
    ) -> Result<PoolBox<Self>> {
        PoolBox::try_new_with(|| {
            let (weights, rerank) = Self::sq8_lens(ef, dim, quantized);
            let mut slots = KVec::with_capacity(1 + helpers, GFP_KERNEL_ACCOUNT)?;
            for _ in 0..1 + helpers {
                slots.push(ScanSlot::new(k, group)?, GFP_KERNEL_ACCOUNT)?;
            }
            Ok(Self {
                slots,
                queries: PoolBuf::new_zeroed(group * dim)?,
                query_norms: PoolBuf::new_zeroed(group)?,
                walk: WalkScratch {
                    graph: hnsw::SearchScratch::new(GraphAlloc::SCRATCH),
                    found: PoolBuf::new_zeroed(ef)?,
                    weights: PoolBuf::new_zeroed(weights)?,
                    rerank: PoolBuf::new_zeroed(rerank)?,
                },
            })
        })
    }

    /// The result heaps of the group's queries (after [`Collection::search`]).
    pub(crate) fn tops(&mut self) -> &mut [TopK] {
        &mut self.slots[0].tops
    }
}

/// A batch of rows staged for [`Collection::commit`], outside every lock.
pub(crate) struct Batch {
    /// The ids, filled by the caller.
    pub(crate) ids: PoolBuf<u64>,
    /// `ids.len() * dim` values, row by row, filled (and checked finite) by
    /// the caller.
    pub(crate) rows: PoolBuf<f32>,
    norms: PoolBuf<simd::NormSq>,
    file: bool,
    _inflight: Inflight,
}

impl Batch {
    /// In-flight bytes of a batch of `n` rows of `dim` values.
    fn bytes(n: usize, dim: usize) -> u64 {
        n as u64 * (8 + dim as u64 * 4 + 4)
    }
}

impl Collection {
    /// A new, empty collection; `params` must be validated.
    pub(crate) fn new(params: &abi::CollectionParams) -> Result<Arc<Self>> {
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
        // Only a graph walk is quantized; an exact search stays exact.
        let sq8 = match (params.quantize, &graph) {
            (abi::quantize::NONE, _) => None,
            (abi::quantize::SQ8, Some(_)) => Some(new_sq8(dim, kernel)?),
            _ => return Err(EINVAL),
        };
        Arc::pin_init(
            pin_init!(Self {
                dim,
                rows_per_chunk,
                metric: params.metric,
                kernel,
                index: params.index,
                quantize: params.quantize,
                maintaining: AtomicBool::new(false),
                dying: AtomicBool::new(false),
                owner: MemcgRef::current(),
                store <- RwSem::new(
                    Store {
                        chunks: KVVec::new(),
                        ids: KVVec::new(),
                        flags: KVVec::new(),
                        norms: KVVec::new(),
                        // A secret key: users choose the ids.
                        map: IdMap::new(
                            GraphAlloc::CHARGED,
                            (task::random_u64(), task::random_u64()),
                        ),
                        file_rows: 0,
                        extra_parts: 0,
                        dead: 0,
                        graph,
                        linked: 0,
                        sq8,
                        meta_charged: 0,
                    },
                    c"vexfs_collection",
                    kernel::static_lock_class!(),
                ),
                work <- kernel::new_work!("vexfs_collection::work"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The dimension.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Rows stored now (live, dead and not yet linked): a size hint, which
    /// may change as soon as it is read.
    pub(crate) fn rows_hint(&self) -> Result<usize> {
        Ok(self.store.read_killable()?.ids.len())
    }

    pub(crate) fn info(&self) -> Result<abi::CollectionInfo> {
        let s = self.store.read_killable()?;
        let rows = s.ids.len();
        let (m, ef_construction, index_bytes) = s.graph.as_ref().map_or((0, 0, 0), |g| {
            let p = g.params();
            (p.m as u32, p.ef_construction as u32, g.bytes() as u64)
        });
        let index_bytes = index_bytes + s.sq8.as_ref().map_or(0, |q| q.bytes() as u64);
        let unindexed = match s.graph {
            Some(_) => (s.linked..rows)
                .filter(|&r| s.flags[r] & ROW_DEAD == 0)
                .count(),
            None => 0,
        };
        Ok(abi::CollectionInfo {
            dim: self.dim as u32,
            metric: self.metric,
            index: self.index,
            m,
            ef_construction,
            quantize: self.quantize,
            count: (rows - s.dead) as u64,
            file_vectors: s.file_rows,
            memory_bytes: s.charged() + s.map.bytes() as u64 + index_bytes,
            index_bytes,
            deleted_pending: s.dead as u64,
            unindexed: unindexed as u64,
        })
    }

    /// Where rows `slot..slot + n` are: their chunk and the offset of the
    /// first value in it. In bounds when the rows are in one chunk, which
    /// holds `rows_per_chunk` rows (`rows_per_chunk * dim <= CHUNK_FLOATS`).
    #[inline]
    fn locate(&self, slot: usize) -> (usize, usize) {
        (
            slot / self.rows_per_chunk,
            (slot % self.rows_per_chunk) * self.dim,
        )
    }

    /// Rows `slot..slot + n`, stored contiguously in one chunk.
    #[inline]
    fn rows<'s>(&self, s: &'s Store, slot: usize, n: usize) -> &'s [f32] {
        let (chunk, off) = self.locate(slot);
        &s.chunks[chunk][off..off + n * self.dim]
    }

    /// Row `slot`, to overwrite.
    #[inline]
    fn row_mut<'s>(&self, s: &'s mut Store, slot: usize) -> &'s mut [f32] {
        let (chunk, off) = self.locate(slot);
        &mut s.chunks[chunk][off..off + self.dim]
    }

    /// Copies row `from` over row `to`.
    fn copy_row(&self, s: &mut Store, from: usize, to: usize) {
        let ((cf, of), (ct, ot)) = (self.locate(from), self.locate(to));
        let dim = self.dim;
        if cf == ct {
            s.chunks[cf].copy_within(of..of + dim, ot);
        } else {
            let (src, dst) = if cf < ct {
                let (low, high) = s.chunks.split_at_mut(ct);
                (&low[cf], &mut high[0])
            } else {
                let (low, high) = s.chunks.split_at_mut(cf);
                (&high[0], &mut low[ct])
            };
            copy_f32(&mut dst[ot..ot + dim], &src[of..of + dim]);
        }
    }

    /// Whether the file with inode number `ino` has a vector here.
    pub(crate) fn has_file_vector(&self, ino: u64) -> Result<bool> {
        let s = self.store.read_killable()?;
        Ok(s.map
            .get(ino)
            .is_some_and(|slot| s.flags[slot as usize] & ROW_FILE != 0))
    }

    /// Makes room for rows `0..rows`, charging new chunks to the limit.
    fn reserve_rows(&self, s: &mut Store, rows: usize) -> Result {
        let need = rows.div_ceil(self.rows_per_chunk);
        while s.chunks.len() < need {
            charge(CHUNK_BYTES)?;
            let pushed = PoolBuf::new_zeroed(CHUNK_FLOATS)
                .and_then(|c| s.chunks.push(c, GFP_KERNEL_ACCOUNT).map_err(Into::into));
            if let Err(e) = pushed {
                uncharge(CHUNK_BYTES);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Makes room for `n` more entries in the per-row arrays, charging the
    /// growth to the limit first (`KVVec::reserve` at least doubles).
    fn reserve_meta(&self, s: &mut Store, n: usize) -> Result {
        let len = s.ids.len();
        let need = len.checked_add(n).ok_or(ENOMEM)?;
        if s.ids.capacity() >= need && s.flags.capacity() >= need {
            if self.kernel != simd::Metric::Cosine || s.norms.capacity() >= need {
                return Ok(());
            }
        }
        let new_cap = need.max(2 * s.ids.capacity());
        let per_row: u64 = if self.kernel == simd::Metric::Cosine {
            13
        } else {
            9
        };
        let predicted = (new_cap as u64 * per_row).saturating_sub(s.meta_bytes());
        charge(predicted)?;
        let grown = (|| -> Result {
            s.ids.reserve(new_cap - len, GFP_KERNEL_ACCOUNT)?;
            s.flags.reserve(new_cap - len, GFP_KERNEL_ACCOUNT)?;
            if self.kernel == simd::Metric::Cosine {
                s.norms.reserve(new_cap - len, GFP_KERNEL_ACCOUNT)?;
            }
            Ok(())
        })();
        // Settle the prediction against what the arrays now hold.
        uncharge(predicted);
        self.settle_meta(s);
        grown
    }

    /// Charges or uncharges the difference between the per-row arrays'
    /// capacity and what was charged for them (after they grew or shrank).
    fn settle_meta(&self, s: &mut Store) {
        let now = s.meta_bytes();
        if now > s.meta_charged {
            VECTOR_BYTES.add(now - s.meta_charged, Relaxed);
        } else {
            uncharge(s.meta_charged - now);
        }
        s.meta_charged = now;
    }

    /// Frees chunks no row uses any more, capacity of the per-row arrays
    /// that fell below a quarter in use, most of an id map at most an
    /// eighth full, and an emptied graph's arrays.
    fn trim(&self, s: &mut Store) {
        if s.ids.is_empty() {
            if let Some(q) = s.sq8.as_mut() {
                q.clear();
            }
            if let Some(g) = s.graph.as_mut() {
                if g.is_empty() && g.bytes() > 0 {
                    renew_graph(g);
                }
            }
        }
        let need = s.ids.len().div_ceil(self.rows_per_chunk);
        while s.chunks.len() > need {
            s.chunks.pop();
            uncharge(CHUNK_BYTES);
        }
        let (len, cap) = (s.ids.len(), s.ids.capacity());
        if (len == 0 && cap > 0) || (cap > 64 && len < cap / 4) {
            let target = len * 2;
            // A failed shrink keeps the capacity (and its charge).
            let _ = s.ids.shrink_to(target, GFP_KERNEL_ACCOUNT);
            let _ = s.flags.shrink_to(target, GFP_KERNEL_ACCOUNT);
            let _ = s.norms.shrink_to(target, GFP_KERNEL_ACCOUNT);
            self.settle_meta(s);
        }
        s.map.trim();
    }

    /// Stages an empty batch of `n` rows (`ids` and `rows` to be filled by
    /// the caller, outside every lock); its memory counts in flight.
    pub(crate) fn stage(&self, n: usize, file: bool) -> Result<Batch> {
        let inflight = Inflight::take(Batch::bytes(n, self.dim))?;
        let cosine = self.kernel == simd::Metric::Cosine;
        Ok(Batch {
            ids: PoolBuf::new_zeroed(n)?,
            rows: PoolBuf::new_zeroed(n.checked_mul(self.dim).ok_or(EINVAL)?)?,
            norms: PoolBuf::new_zeroed(if cosine { n } else { 0 })?,
            file,
            _inflight: inflight,
        })
    }

    /// Computes the batch's norms (cosine collections), still outside the
    /// lock, in FPU sections of at most [`FPU_FLOAT_BUDGET`] values.
    fn prepare_norms(&self, b: &mut Batch) {
        if self.kernel != simd::Metric::Cosine {
            return;
        }
        let simd = Simd::detect();
        let dim = self.dim;
        for section in fpu_sections(b.norms.len(), dim, usize::MAX) {
            let rows = &b.rows[section.start * dim..section.end * dim];
            let norms = &mut b.norms[section.clone()];
            simd_batch(section.len() * dim, &mut |fpu| {
                for (r, norm) in norms.iter_mut().enumerate() {
                    if let Some(row) = rows.get(r * dim..(r + 1) * dim) {
                        *norm = simd.norm_sq(fpu, row);
                    }
                }
            });
        }
    }

    /// Inserts or replaces the rows of `b`: all or nothing, visible to
    /// searches at once. An id repeated in the batch keeps its last row.
    /// `EEXIST` if an id belongs to a file and the batch to plain vectors,
    /// or the other way round. The caller then passes the [`Change`] to
    /// [`Self::follow_up`] (an HNSW collection links the new rows into its
    /// graph there), once it holds no VFS lock.
    ///
    /// `stored(ids, rows)` sees the batch once it is stored (a disk mount
    /// logs it there).
    pub(crate) fn commit(
        &self,
        mut b: Batch,
        stored: impl FnOnce(&[u64], &[f32]),
    ) -> Result<Change> {
        self.prepare_norms(&mut b);
        self.commit_locked(&mut b, stored)
    }

    /// What the collection was made with, defaults resolved (`reserved`
    /// zero).
    pub(crate) fn params(&self) -> Result<abi::CollectionParams> {
        let s = self.store.read();
        let (m, ef_construction) = s.graph.as_ref().map_or((0, 0), |g| {
            let p = g.params();
            (p.m as u32, p.ef_construction as u32)
        });
        Ok(abi::CollectionParams {
            dim: self.dim as u32,
            metric: self.metric,
            index: self.index,
            m,
            ef_construction,
            quantize: self.quantize,
            reserved: [0; 2],
        })
    }

    /// Whether searches walk SQ8 codes (`quantize = sq8`).
    pub(crate) fn quantized(&self) -> bool {
        self.quantize == abi::quantize::SQ8
    }

    /// The collection as a checkpoint stores it: `rows(kind, ids, rows)`
    /// for each run of rows of one kind ([`ROW_FILE`] | [`ROW_DEAD`]) in
    /// slot order, dead rows included (the graph's slots are row slots);
    /// then, for an HNSW collection, `graph(bytes)` with the count of
    /// linked rows (8 bytes) followed by the graph's encoding, in pieces.
    /// Waits for the store whatever signals come (an unmount's checkpoint
    /// must be written).
    pub(crate) fn write_back(&self, mut out: impl FnMut(Piece<'_>) -> Result) -> Result {
        let s = self.store.read();
        let len = s.ids.len();
        let mut at = 0;
        while at < len {
            // A run: one kind, within one chunk, at most 1024 rows.
            let kind = s.flags[at];
            let chunk_end = (at / self.rows_per_chunk + 1) * self.rows_per_chunk;
            let mut end = at + 1;
            while end < len.min(chunk_end).min(at + 1024) && s.flags[end] == kind {
                end += 1;
            }
            out(Piece::Rows(
                kind,
                &s.ids[at..end],
                self.rows(&s, at, end - at),
            ))?;
            at = end;
            task::cond_resched();
        }
        if let Some(g) = s.graph.as_ref() {
            out(Piece::Graph(&(s.linked as u64).to_le_bytes()))?;
            g.encode(&mut |bytes: &[u8]| out(Piece::Graph(bytes)))?;
        }
        Ok(())
    }

    /// Appends rows as a checkpoint stored them ([`Self::write_back`]), in
    /// slot order, without linking them: `EUCLEAN` if a live id repeats.
    pub(crate) fn load_rows(&self, kind: u8, ids: &[u64], rows: &[f32]) -> Result {
        if kind & !(ROW_FILE | ROW_DEAD) != 0 || rows.len() != ids.len() * self.dim {
            return Err(EUCLEAN);
        }
        let mut b = self.stage(ids.len(), kind & ROW_FILE != 0)?;
        for (dst, id) in b.ids.iter_mut().zip(ids) {
            *dst = *id;
        }
        copy_f32(&mut b.rows, rows);
        self.prepare_norms(&mut b);
        let n = ids.len();
        let mut guard = self.store.write_killable()?;
        let s = &mut *guard;
        let dead = kind & ROW_DEAD != 0;
        if !dead && ids.iter().any(|&id| s.map.contains(id)) {
            return Err(EUCLEAN);
        }
        let base = s.ids.len();
        let reserved = (|| -> Result {
            self.reserve_rows(s, base + n)?;
            self.reserve_meta(s, n)?;
            s.map.reserve(if dead { 0 } else { n }).map_err(|_| ENOMEM)
        })();
        if let Err(e) = reserved {
            self.trim(s);
            return Err(e);
        }
        let mut repeated = false;
        for i in 0..n {
            let at = s.ids.len();
            copy_f32(
                self.row_mut(s, at),
                &b.rows[i * self.dim..(i + 1) * self.dim],
            );
            let _ = s.ids.push_within_capacity(b.ids[i]);
            let _ = s.flags.push_within_capacity(kind);
            if let Some(&norm) = b.norms.get(i) {
                let _ = s.norms.push_within_capacity(norm);
            }
            if !dead {
                // A live id twice in one run is corrupt: the first keeps
                // the id, the second is stored dead.
                if s.map.contains(b.ids[i]) {
                    s.flags[at] = ROW_DEAD;
                    repeated = true;
                } else {
                    // Reserved above.
                    let _ = s.map.insert_reserved(b.ids[i], at as u32);
                }
            }
            if s.flags[at] & ROW_DEAD != 0 {
                s.dead += 1;
            } else if kind & ROW_FILE != 0 {
                s.count_file_row(b.ids[i], true);
            }
        }
        if repeated {
            return Err(EUCLEAN);
        }
        Ok(())
    }

    /// Installs the graph a checkpoint stored (see [`Self::write_back`])
    /// over the rows loaded before: `EUCLEAN` if it does not decode or
    /// does not fit them.
    pub(crate) fn load_graph(&self, bytes: &[u8]) -> Result {
        let mut guard = self.store.write_killable()?;
        let s = &mut *guard;
        let Some(g) = s.graph.as_mut() else {
            return Err(EUCLEAN);
        };
        let (linked, encoded) = bytes.split_at_checked(8).ok_or(EUCLEAN)?;
        let linked = u64::from_le_bytes(linked.try_into().map_err(|_| EUCLEAN)?) as usize;
        let loaded =
            Hnsw::decode(*g.params(), encoded, GraphAlloc::CHARGED).map_err(|e| match e {
                hnsw::Error::OutOfMemory => ENOMEM,
                _ => EUCLEAN,
            })?;
        // Rows below `linked` are nodes, or dead and purged; none after is;
        // no node has a slot past the rows.
        let len = s.ids.len();
        let mut held = 0;
        for slot in 0..len {
            let node = loaded.holds(slot as u32);
            held += usize::from(node);
            let dead = s.flags[slot] & ROW_DEAD != 0;
            if (slot >= linked && node) || (slot < linked && !dead && !node) {
                return Err(EUCLEAN);
            }
        }
        if linked > len || held != loaded.len() + loaded.deleted() {
            return Err(EUCLEAN);
        }
        if let Some(q) = s.sq8.as_mut() {
            // Codes are not stored: one pass over the rows makes them.
            let rows = rows_of(self, &s.chunks, &s.norms, len);
            q.rebuild(&rows, linked).map_err(|_| ENOMEM)?;
        }
        **g = loaded;
        s.linked = linked;
        Ok(())
    }

    /// Deletes `ids` as a log replays it: the present ones, no questions.
    pub(crate) fn replay_delete(&self, ids: &[u64]) -> Result {
        let mut guard = self.store.write_killable()?;
        self.remove_ids(&mut guard, ids);
        Ok(())
    }

    /// `stored` runs under the lock, so what it logs is in the order the
    /// store changed.
    fn commit_locked(&self, b: &mut Batch, stored: impl FnOnce(&[u64], &[f32])) -> Result<Change> {
        let n = b.ids.len();
        // A file's batch is all its vectors, parts `0..n` in order.
        let file_ino = abi::file_vector_part(b.ids.first().copied().unwrap_or(0)).0;
        if b.file
            && (n == 0
                || n > abi::MAX_FILE_PARTS as usize
                || (0..n).any(|p| b.ids[p] != abi::file_vector_id(file_ino, p as u32)))
        {
            return Err(EINVAL);
        }
        let mut guard = self.store.write_killable()?;
        let s = &mut *guard;
        // Plain rows into a collection without file rows cannot meet one:
        // no pass over the map (a random access per id) for them.
        if b.file || s.file_rows > 0 {
            for &id in b.ids.iter() {
                if let Some(slot) = s.map.get(id) {
                    if (s.flags[slot as usize] & ROW_FILE != 0) != b.file {
                        return Err(EEXIST);
                    }
                }
            }
        }
        let base = s.ids.len();
        let reserved = (|| -> Result {
            self.reserve_rows(s, base + n)?;
            self.reserve_meta(s, n)?;
            s.map.reserve(n).map_err(|_| ENOMEM)
        })();
        if let Err(e) = reserved {
            self.trim(s);
            return Err(e);
        }
        // Commit: nothing below can fail.
        let indexed = s.graph.is_some();
        let flag = if b.file { ROW_FILE } else { 0 };
        for i in 0..n {
            let id = b.ids[i];
            let src = &b.rows[i * self.dim..(i + 1) * self.dim];
            let norm = b.norms.get(i).copied();
            let slot = match s.map.get(id) {
                // Stored by this batch, or in place in a flat collection:
                // the new vector overwrites the row.
                Some(slot) if slot as usize >= base || !indexed => Some(slot as usize),
                Some(old) => {
                    // The old row's graph node becomes a tombstone; the new
                    // vector is a new row, linked like any other.
                    self.mark_dead(s, old as usize);
                    None
                }
                None => None,
            };
            if let Some(slot) = slot {
                copy_f32(self.row_mut(s, slot), src);
                if let (Some(dst), Some(norm)) = (s.norms.get_mut(slot), norm) {
                    *dst = norm;
                }
                continue;
            }
            let at = s.ids.len();
            // Row `at` is reserved above (rows `base..base + n`).
            copy_f32(self.row_mut(s, at), src);
            // Capacity was reserved above, so these cannot fail.
            let _ = s.ids.push_within_capacity(id);
            let _ = s.flags.push_within_capacity(flag);
            if let Some(norm) = norm {
                let _ = s.norms.push_within_capacity(norm);
            }
            // A new id (room reserved above), or one replaced in an
            // indexed collection: the id moves to the new row.
            let _ = s.map.insert_reserved(id, at as u32);
            if b.file {
                s.count_file_row(id, true);
            }
        }
        if b.file {
            // They replace all the file's vectors: drop the parts past them.
            self.remove_parts_from(s, file_ino, n as u32);
        }
        self.trim(s);
        stored(&b.ids, &b.rows);
        Ok(Change {
            rows: base..s.ids.len(),
        })
    }

    /// Maintenance after `change`, by the caller that made it (holding no
    /// VFS lock): it links the rows it stored if every row before them is
    /// linked. Anything else (earlier rows still unlinked, another task
    /// maintaining, repair and compaction, the rest of a killed caller's
    /// linking) is left to the worker, so that a caller's wait is bounded
    /// by its own change. Searches find every stored row meanwhile
    /// (unlinked rows are scanned exactly).
    pub(crate) fn follow_up(self: &Arc<Self>, change: Change) {
        if self.index != abi::index::HNSW {
            return;
        }
        if change.rows.is_empty() {
            if self.has_work() {
                self.schedule_maintenance();
            }
            return;
        }
        if !self.take_turn() {
            // The holder queues the worker when it lets go.
            return;
        }
        let done = self.link(change.rows);
        self.end_turn(done, false);
    }

    /// Queues the worker (a no-op if queued already), for callers that
    /// hold VFS locks and for work no caller does.
    pub(crate) fn schedule_maintenance(self: &Arc<Self>) {
        if self.index != abi::index::HNSW {
            return;
        }
        let _ = workqueue().enqueue(self.clone());
    }

    /// Marks the collection's directory as gone: queued maintenance then
    /// does nothing.
    pub(crate) fn set_dying(&self) {
        self.dying.store(true, Ordering::Release);
    }

    /// The worker: all pending maintenance, charged to the owner's memory
    /// cgroup.
    fn run_queued(self: &Arc<Self>) {
        if self.dying.load(Ordering::Acquire) || !self.take_turn() {
            return;
        }
        self.owner.charge_within(|| {
            let mut done = Ok(());
            while done.is_ok() && !self.dying.load(Ordering::Acquire) && self.has_work() {
                done = self
                    .link(0..usize::MAX)
                    .and_then(|()| self.repair_and_compact());
            }
            self.end_turn(done, true);
        });
    }

    /// Takes the right to maintain; false if another task holds it (the
    /// worker then simply returns: it must not requeue itself while the
    /// holder runs).
    fn take_turn(&self) -> bool {
        self.maintaining
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Lets go of the right to maintain and queues the worker if work is
    /// left: work of changes made while the right was held (their makers
    /// found it taken), or the rest of a caller's. Only the worker's own
    /// lack of memory queues nothing (the next change retries), so that
    /// it cannot loop.
    fn end_turn(self: &Arc<Self>, done: core::result::Result<(), Stop>, worker: bool) {
        self.maintaining.store(false, Ordering::Release);
        // A change whose `take_turn` failed committed under the write lock
        // before that; `has_work` takes the lock after the store above, so
        // it sees that change.
        if !(worker && done == Err(Stop::NoMemory)) && self.has_work() {
            self.schedule_maintenance();
        }
    }

    /// Whether maintenance is pending (also when that cannot be told: a
    /// killed caller leaves the question to the worker).
    fn has_work(&self) -> bool {
        self.store
            .read_killable()
            .map_or(true, |s| s.pending().any())
    }

    /// Links the rows of `rows` not yet in the graph, a few per hold of
    /// the write lock, provided the rows before them are linked (rows are
    /// linked in order). `Ok` also when there was nothing to do here.
    ///
    /// Where it pays, rows are linked in rounds: the next few rows per CPU
    /// are planned together on several CPUs under the read lock (each
    /// plan is the search half of an insert, against the graph as it is),
    /// then linked in order under the write lock, each with the rows of
    /// its round before it as further candidates (`Hnsw::insert_planned`).
    /// Plans depend only on the graph and the rows, so the graph is the
    /// same whichever CPU made them.
    fn link(&self, rows: Range<usize>) -> core::result::Result<(), Stop> {
        let mut planned = Planned::new();
        loop {
            self.plan_round(&rows, &mut planned)?;
            let round_end = planned.end();
            loop {
                let mut guard = self.store.write_killable().map_err(|_| Stop::Killed)?;
                let s = &mut *guard;
                let stored = s.ids.len();
                let stop = (s.linked + LINK_PER_LOCK)
                    .min(rows.end)
                    .min(stored)
                    .min(round_end.unwrap_or(usize::MAX));
                if s.linked < rows.start || s.linked >= stop {
                    if round_end == Some(s.linked) {
                        // The round is linked: plan the next.
                        break;
                    }
                    return Ok(());
                }
                let Some(graph) = s.graph.as_mut() else {
                    return Ok(());
                };
                let rows = rows_of(self, &s.chunks, &s.norms, stored);
                if let Some(q) = s.sq8.as_mut() {
                    // Room for the codes first; the first rows train the
                    // quantizer on every row stored by then.
                    q.reserve(stop).map_err(|_| Stop::NoMemory)?;
                    if !q.trained() {
                        q.train(&rows, stored).map_err(|_| Stop::NoMemory)?;
                    }
                }
                let mut d = GraphDistances::new(rows);
                while s.linked < stop {
                    let slot = s.linked;
                    if let Some(q) = s.sq8.as_mut() {
                        // Room reserved above: this only codes the row (and may
                        // retrain), before the graph can lead a search to it.
                        q.push(&rows, slot).map_err(|_| Stop::NoMemory)?;
                    }
                    let linked = s.flags[slot] & ROW_DEAD != 0
                        || match planned.plan(slot) {
                            Some((plan, mates)) => graph
                                .insert_planned(&mut d, slot as u32, plan, mates)
                                .is_ok(),
                            None => graph.insert(&mut d, slot as u32).is_ok(),
                        };
                    if !linked {
                        // Out of memory (or over the vector limit): the row
                        // stays unlinked, and uncoded.
                        if let Some(q) = s.sq8.as_mut() {
                            q.truncate(slot);
                        }
                        return Err(Stop::NoMemory);
                    }
                    s.linked += 1;
                }
                drop(guard);
                if task::fatal_signal_pending() {
                    return Err(Stop::Killed);
                }
                task::cond_resched();
                if round_end.is_none() {
                    // Unplanned: see whether planning pays now.
                    break;
                }
            }
        }
    }

    /// Plans the next rows of `rows` to link on several CPUs into
    /// `planned`, if the graph is large enough and helpers are available;
    /// otherwise (or if a plan fails) leaves no plans, and the rows are
    /// linked one insert at a time. The memory is allocated here, charged
    /// to this task's memory cgroup and to the in-flight budget; the
    /// helpers only fill it.
    fn plan_round(
        &self,
        rows: &Range<usize>,
        planned: &mut Planned,
    ) -> core::result::Result<(), Stop> {
        planned.count = 0;
        let s = self.store.read_killable().map_err(|_| Stop::Killed)?;
        let Some(g) = s.graph.as_ref() else {
            return Ok(());
        };
        let (stored, start) = (s.ids.len(), s.linked);
        let left = rows.end.min(stored).saturating_sub(start);
        if start < rows.start || g.len() < PLAN_MIN_NODES {
            return Ok(());
        }
        // Rows per CPU: fewer when an insert's search costs more than at
        // the defaults, so that a round's read hold stays about as long.
        let p = g.params();
        let cost = p
            .ef_construction
            .saturating_mul(2 * p.m)
            .saturating_mul(self.dim);
        let per_cpu = (PLAN_ROUND_MACS / cost.max(1)).clamp(1, PLAN_PER_CPU);
        let helpers = share::helpers_for(left, 2 * per_cpu, crate::max_search_cpus());
        if helpers == 0 {
            return Ok(());
        }
        let n = left.min((1 + helpers) * per_cpu);
        let dead = |slot: usize| s.flags[slot] & ROW_DEAD != 0;
        if planned.reserve(g, start, n, 1 + helpers, dead).is_err() {
            return Ok(());
        }
        let levels = &planned.levels[..n];
        let store: &Store = &s;
        let work = |i: usize,
                    scratch: &mut hnsw::SearchScratch<GraphAlloc>,
                    plan: &mut Plan<GraphAlloc>,
                    stop: &AtomicBool|
         -> Result {
            // A kill of the caller (helpers have none) or another CPU's
            // error ends the round after the plans under way.
            if stop.load(Ordering::Relaxed) || task::fatal_signal_pending() {
                return Err(EINTR);
            }
            let level = levels.get(i).copied().ok_or(EINVAL)?;
            if level == NO_PLAN {
                return Ok(());
            }
            let mut d = GraphDistances::new(rows_of(self, &store.chunks, &store.norms, stored));
            g.plan(scratch, &mut d, (start + i) as u32, level, plan)
                .map_err(|_| ENOMEM)
        };
        let done = share::run_each(
            &mut planned.scratch[..1 + helpers],
            &mut planned.plans[..n],
            &work,
        );
        if done.is_ok() {
            planned.start = start;
            planned.count = n;
        }
        Ok(())
    }

    /// Repairs and compacts if [`Store::pending`] says so.
    fn repair_and_compact(&self) -> core::result::Result<(), Stop> {
        let pending = self
            .store
            .read_killable()
            .map_err(|_| Stop::Killed)?
            .pending();
        // Holes may only be filled once their nodes are purged.
        if pending.repair {
            self.repair()?;
        }
        if pending.repair || pending.compact {
            self.compact()?;
        }
        Ok(())
    }

    /// Runs the graph's repair to the end, a step per hold of the write
    /// lock.
    fn repair(&self) -> core::result::Result<(), Stop> {
        loop {
            let mut guard = self.store.write_killable().map_err(|_| Stop::Killed)?;
            let s = &mut *guard;
            let rows = s.ids.len();
            let Some(graph) = s.graph.as_mut() else {
                return Ok(());
            };
            let mut d = GraphDistances::new(rows_of(self, &s.chunks, &s.norms, rows));
            match graph.repair_step(&mut d, REPAIR_PER_LOCK) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // Out of memory: the graph is consistent; tombstones stay
                // until a later change retries.
                Err(_) => return Err(Stop::NoMemory),
            }
            drop(guard);
            if task::fatal_signal_pending() {
                return Err(Stop::Killed);
            }
            task::cond_resched();
        }
    }

    /// Marks a live row dead: out of searches, its graph node a tombstone.
    /// The caller has removed (or moved) its id in the map.
    fn mark_dead(&self, s: &mut Store, slot: usize) {
        if s.flags[slot] & ROW_FILE != 0 {
            s.count_file_row(s.ids[slot], false);
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

    /// Fills the holes (dead rows out of the graph: purged, or never
    /// linked) with the last rows and drops dead rows from the end, then
    /// frees unused chunks. A last row that is a tombstone moves with its
    /// node (the graph reads its vector until a repair purges it); a dead
    /// row that is still a tombstone is no hole and is passed over. So
    /// every step moves or drops a row, and afterwards every dead row is
    /// a tombstone. Stops when rows are stored meanwhile: rows below
    /// `linked` must be in the graph, so those are linked first.
    fn compact(&self) -> core::result::Result<(), Stop> {
        let mut slot = 0;
        loop {
            let mut guard = self.store.write_killable().map_err(|_| Stop::Killed)?;
            let s = &mut *guard;
            if s.linked < s.ids.len() {
                return Ok(());
            }
            // Each pass looks at, moves or drops one row.
            for _ in 0..COMPACT_PER_LOCK {
                if slot >= s.ids.len() {
                    break;
                }
                if !s.is_hole(slot) {
                    slot += 1;
                    continue;
                }
                let last = s.ids.len() - 1;
                if last != slot && !s.is_hole(last) {
                    // Live, or a tombstone: it takes the hole (which has no
                    // node, so the graph accepts the move).
                    if !self.move_row(s, last, slot) {
                        slot += 1;
                        continue;
                    }
                    slot += 1;
                }
                // The last row is a hole now (moved away, or one already):
                // drop it. If it was not `slot`, `slot` is looked at again.
                s.ids.pop();
                s.flags.pop();
                s.norms.pop();
                s.dead -= 1;
            }
            s.linked = s.linked.min(s.ids.len());
            if let Some(q) = s.sq8.as_mut() {
                q.truncate(s.linked);
                q.trim();
            }
            self.trim(s);
            if slot >= s.ids.len() {
                return Ok(());
            }
            drop(guard);
            if task::fatal_signal_pending() {
                return Err(Stop::Killed);
            }
            task::cond_resched();
        }
    }

    /// Copies row `from` (live, or a tombstone) over the hole `to` (both
    /// stored), with its id, flags, norm, graph node and, if live, map
    /// entry; `from` becomes a hole. False (and nothing changed) if the
    /// graph refuses the move.
    fn move_row(&self, s: &mut Store, from: usize, to: usize) -> bool {
        if let Some(g) = s.graph.as_mut() {
            if g.move_slot(from as u32, to as u32).is_err() {
                return false;
            }
        }
        self.copy_row(s, from, to);
        if let Some(q) = s.sq8.as_mut() {
            q.copy(from, to);
        }
        let id = s.ids[from];
        s.ids[to] = id;
        s.flags[to] = s.flags[from];
        s.flags[from] = ROW_DEAD;
        if let Some(&norm) = s.norms.get(from) {
            s.norms[to] = norm;
        }
        // A tombstone's id may name a newer row by now.
        if s.flags[to] & ROW_DEAD == 0 {
            s.map.update(id, to as u32);
        }
        true
    }

    /// Deletes `ids`: all or nothing. `ENOENT` if one is absent; for an id
    /// that is a file's vector, `may_change(ino)` decides (an error, such as
    /// `EACCES`, refuses the whole batch). A file's id (its first part)
    /// deletes all its vectors; the id of a later part is refused
    /// (`EINVAL`).
    /// The caller then passes the [`Change`] to [`Self::follow_up`].
    /// `removed` runs under the lock once they are gone (a disk mount logs
    /// the delete there, in the order the store changed).
    pub(crate) fn delete(
        &self,
        ids: &[u64],
        mut may_change: impl FnMut(u64) -> Result,
        removed: impl FnOnce(),
    ) -> Result<Change> {
        let mut guard = self.store.write_killable()?;
        let s = &mut *guard;
        for (i, id) in ids.iter().enumerate() {
            let slot = s.map.get(*id).ok_or(ENOENT)?;
            if s.flags[slot as usize] & ROW_FILE != 0 {
                // A file's vectors go together, by its first part's id.
                let (ino, part) = abi::file_vector_part(*id);
                if part != 0 {
                    return Err(EINVAL);
                }
                may_change(ino)?;
            }
            // Nothing is changed yet: a kill may end the checks here.
            if i % DELETE_CHECKS_PER_YIELD == DELETE_CHECKS_PER_YIELD - 1 {
                if task::fatal_signal_pending() {
                    return Err(EINTR);
                }
                task::cond_resched();
            }
        }
        self.remove_ids(s, ids);
        removed();
        Ok(Change { rows: 0..0 })
    }

    /// Removes the rows of `ids` that are present (a repeated id was
    /// removed by its first occurrence).
    /// A file's first part (its inode number) stands for all its vectors.
    fn remove_ids(&self, s: &mut Store, ids: &[u64]) {
        for &id in ids {
            let Some(slot) = s.map.remove(id) else {
                continue;
            };
            let file = s.flags[slot as usize] & ROW_FILE != 0;
            self.remove_slot(s, slot as usize);
            let (ino, part) = abi::file_vector_part(id);
            if file && part == 0 {
                self.remove_parts_from(s, ino, 1);
            }
        }
        self.trim(s);
    }

    /// Removes the vectors of the file `ino` from part `from` on (a file's
    /// parts are contiguous from 0). The caller trims.
    fn remove_parts_from(&self, s: &mut Store, ino: u64, from: u32) {
        for part in from..abi::MAX_FILE_PARTS {
            let id = abi::file_vector_id(ino, part);
            match s.map.get(id) {
                Some(slot) if s.flags[slot as usize] & ROW_FILE != 0 => {
                    s.map.remove(id);
                    self.remove_slot(s, slot as usize);
                }
                _ => break,
            }
        }
    }

    /// The write side, for removing file vectors while the VFS changes
    /// names ([`Self::remove_file_vector`]); killable. `second`: another
    /// collection's is held already (a rename between two collections;
    /// the caller orders the two).
    pub(crate) fn lock_for_removal(&self, second: bool) -> Result<WriteGuard<'_, Store>> {
        if second {
            self.store.write_killable_nested()
        } else {
            self.store.write_killable()
        }
    }

    /// Deletes the vectors of the file with inode number `ino`, if it has
    /// any, under a guard from [`Self::lock_for_removal`]. The caller then
    /// schedules maintenance.
    pub(crate) fn remove_file_vector(&self, s: &mut Store, ino: u64) -> bool {
        match s.map.get(ino) {
            Some(slot) if s.flags[slot as usize] & ROW_FILE != 0 => {
                self.remove_ids(s, &[ino]);
                true
            }
            _ => false,
        }
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
            s.count_file_row(s.ids[slot], false);
        }
        if slot != last {
            self.copy_row(s, last, slot);
            let moved = s.ids[last];
            s.ids[slot] = moved;
            s.flags[slot] = s.flags[last];
            if let Some(&norm) = s.norms.get(last) {
                s.norms[slot] = norm;
            }
            s.map.update(moved, slot as u32);
        }
        s.ids.pop();
        s.flags.pop();
        s.norms.pop();
    }

    /// Copies the vector of `id` into `out` (`dim` values); returns whether
    /// it belongs to a file. For a file's vector, `may_read(ino)` decides
    /// first.
    pub(crate) fn get(
        &self,
        id: u64,
        out: &mut [f32],
        may_read: impl FnOnce(u64) -> Result,
    ) -> Result<bool> {
        let s = self.store.read_killable()?;
        let slot = s.map.get(id).ok_or(ENOENT)? as usize;
        if out.len() != self.dim {
            return Err(EINVAL);
        }
        let file = s.flags[slot] & ROW_FILE != 0;
        if file {
            may_read(abi::file_vector_part(id).0)?;
        }
        copy_f32(out, self.rows(&s, slot, 1));
        Ok(file)
    }

    /// k-NN search for the first `n` queries of `scratch.queries` (`dim`
    /// finite values each): fills `scratch.tops()[i]` with the nearest live
    /// rows to query `i` that `admit(id, is_file)` lets the caller see (the
    /// files it may read, the filters of the request), a file once, by its
    /// nearest vector. Through the graph if there is one and `mode` is not
    /// exact (plus an exact scan of rows not linked yet), otherwise by one
    /// scan of every row for all `n` queries. The filter applies during the
    /// walk and the scan. If the graph finds fewer than `k` admitted items
    /// while more may exist (a filter that refuses much of the
    /// neighbourhood, or files whose parts crowd the beam), an exact scan
    /// answers instead, so `k` results come back whenever `k` admitted
    /// items exist. Ties: ascending id. A signal ends a long scan (`EINTR`).
    pub(crate) fn search(
        &self,
        simd: Simd,
        n: usize,
        mode: SearchMode,
        scratch: &mut SearchScratch,
        admit: &mut dyn FnMut(u64, bool) -> bool,
    ) -> Result {
        let dim = self.dim;
        if n == 0 || n > scratch.tops().len() || n * dim > scratch.queries.len() {
            return Err(EINVAL);
        }
        let queries = &scratch.queries[..n * dim];
        let norms = &mut scratch.query_norms[..n];
        let slots = &mut scratch.slots;
        if self.kernel == simd::Metric::Cosine {
            with_fpu(|fpu| {
                // Indexing, not `chunks_exact`: no panic path for a zero size.
                for (i, norm) in norms.iter_mut().enumerate() {
                    *norm = simd.norm_sq(fpu, &queries[i * dim..(i + 1) * dim]);
                }
            });
        }
        let norms = &*norms;
        let s = self.store.read_killable()?;
        let rows = s.ids.len();
        let no_stop = AtomicBool::new(false);
        let Some(g) = s.graph.as_ref().filter(|_| !mode.exact) else {
            let batch = Scan { queries, norms };
            // Helper CPUs run with kernel credentials: they may scan only
            // rows that need no permission check (no file's vector) for a
            // caller whose filter admits them all.
            let helpers = if mode.plain_rows_admitted && s.file_rows == 0 {
                share::helpers_for(rows * dim * n, SHARE_MACS, slots.len())
            } else {
                0
            };
            if helpers == 0 {
                let ScanSlot { tops, dist } = &mut slots[0];
                let tops = &mut tops[..n];
                tops.iter_mut().for_each(TopK::clear);
                return self.scan(&s, simd, batch, 0..rows, tops, dist, admit, &no_stop);
            }
            return self.shared_scan(&s, simd, batch, rows, n, &mut slots[..=helpers]);
        };
        let ScanSlot { tops, dist } = &mut slots[0];
        let tops = &mut tops[..n];
        tops.iter_mut().for_each(TopK::clear);
        let k = tops[0].heap.len();
        for (i, top) in tops.iter_mut().enumerate() {
            let query = &queries[i * dim..(i + 1) * dim];
            {
                let mut accept = |slot: u32| {
                    let slot = slot as usize;
                    admit(s.ids[slot], s.flags[slot] & ROW_FILE != 0)
                };
                let mut d = GraphDistances::new(rows_of(self, &s.chunks, &s.norms, rows));
                d.query_norm = norms.get(i).copied().unwrap_or_default();
                d.accept = Some(&mut accept);
                // All `ef` nodes the beam keeps: the top `k` of them by
                // (distance, id) is chosen below, so ties break by id on
                // this path too.
                let ef = mode.ef.max(k).min(scratch.walk.found.len());
                let found = self.walk(&s, g, &mut scratch.walk, d, query, ef)?;
                for nb in scratch.walk.found.iter().take(found) {
                    let at = nb.slot as usize;
                    top.offer(Candidate {
                        key: nb.key,
                        bits: simd::bits_of_order_key(nb.key),
                        id: s.ids[at],
                        file: s.flags[at] & ROW_FILE != 0,
                    });
                }
            }
            let one = Scan {
                queries: query,
                norms: norms.get(i..i + 1).unwrap_or(&[]),
            };
            let top = core::slice::from_mut(top);
            self.scan(&s, simd, one, s.linked..rows, top, dist, admit, &no_stop)?;
            if top[0].len() < k.min(s.findable()) {
                top[0].clear();
                self.scan(&s, simd, one, 0..rows, top, dist, admit, &no_stop)?;
            }
        }
        Ok(())
    }

    /// The graph search of one query into `scratch.found`, with float
    /// distances (`d`); returns how many it found. With SQ8 codes the walk
    /// orders nodes by the codes and the nodes it kept are then re-ranked
    /// by `d`, so the keys found are float distances either way.
    fn walk(
        &self,
        s: &Store,
        g: &Hnsw<GraphAlloc>,
        scratch: &mut WalkScratch,
        mut d: GraphDistances<'_>,
        query: &[f32],
        ef: usize,
    ) -> Result<usize> {
        let WalkScratch {
            graph,
            found,
            weights,
            rerank,
        } = scratch;
        let coded = s.sq8.as_ref().filter(|q| q.rows() == s.linked);
        let Some((q, keys)) = coded.and_then(|q| Some((q, q.query(query, weights)?))) else {
            return g
                .search(graph, &mut d, query, ef, ef, found)
                .map_err(|_| ENOMEM);
        };
        let mut walk = Sq8Walk::new(q, weights, keys, d);
        let n = g
            .search(graph, &mut walk, query, ef, ef, found)
            .map_err(|_| ENOMEM)?
            .min(found.len());
        let (slots, dist) = rerank.split_at_mut(found.len());
        for (slot, nb) in slots.iter_mut().zip(found.iter()).take(n) {
            *slot = nb.slot;
        }
        walk.fp
            .batch(hnsw::Target::Query(query), &slots[..n], &mut dist[..n]);
        for (nb, &key) in found.iter_mut().zip(dist.iter()).take(n) {
            nb.key = key;
        }
        Ok(n)
    }

    /// [`Self::scan`] of all `rows` rows (none a file's, all admitted) for
    /// the `n` queries of `batch` on this CPU (`slots[0]`) and one helper
    /// per other slot, each into its own heaps; then the helpers'
    /// candidates join the requester's. The same hits as one CPU's scan:
    /// the order of (distance, id) is total.
    fn shared_scan(
        &self,
        s: &Store,
        simd: Simd,
        batch: Scan<'_>,
        rows: usize,
        n: usize,
        slots: &mut [ScanSlot],
    ) -> Result {
        for slot in slots.iter_mut() {
            slot.tops[..n].iter_mut().for_each(TopK::clear);
        }
        let work_macs = rows.saturating_mul(self.dim).saturating_mul(n);
        let pieces = (slots.len() * PIECES_PER_CPU)
            .max(work_macs / PIECE_MACS)
            .min(rows.max(1));
        let per_piece = rows.div_ceil(pieces).max(1);
        let work = |piece: usize, slot: &mut ScanSlot, stop: &AtomicBool| -> Result {
            let start = (piece * per_piece).min(rows);
            let end = (start + per_piece).min(rows);
            let tops = &mut slot.tops[..n];
            self.scan(
                s,
                simd,
                batch,
                start..end,
                tops,
                &mut slot.dist,
                &mut |_, _| true,
                stop,
            )
        };
        share::run(slots, pieces, &work)?;
        let (mine, others) = slots.split_first_mut().ok_or(EINVAL)?;
        for other in others.iter() {
            for (top, theirs) in mine.tops[..n].iter_mut().zip(other.tops.iter()) {
                for &c in theirs.held() {
                    if top.would_take(c.rank()) {
                        top.offer(c);
                    }
                }
            }
        }
        Ok(())
    }

    /// Exact search over the rows in `range` for the queries of `batch`,
    /// one heap each in `tops`, skipping dead rows and those `admit(id,
    /// is_file)` refuses. The rows are read once for all the queries: each
    /// FPU section computes a block of queries x rows distances with the
    /// blocked kernels, then every query's heap takes the ones that beat
    /// its worst (an integer test first, the heap and `admit` only then).
    /// Ends with `EINTR` between sections if a signal is pending or `stop`
    /// is raised.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        s: &Store,
        simd: Simd,
        batch: Scan<'_>,
        range: core::ops::Range<usize>,
        tops: &mut [TopK],
        dist: &mut [u32],
        admit: &mut dyn FnMut(u64, bool) -> bool,
        stop: &AtomicBool,
    ) -> Result {
        let (dim, nq) = (self.dim, tops.len());
        let cosine = self.kernel == simd::Metric::Cosine;
        // One section holds a block of `nq` x `m` distances in `dist`, and
        // the blocked kernel's work stays within its budget.
        let cap = dist.len() / nq.max(1);
        for (n, section) in block_sections(range.len(), dim * nq, cap).enumerate() {
            if n > 0 && (stop.load(Ordering::Relaxed) || task::signal_pending()) {
                return Err(EINTR);
            }
            let (slot, m) = (range.start + section.start, section.len());
            let out = u32_as_f32_mut(&mut dist[..nq * m]);
            simd_batch(m * dim * nq, &mut |fpu| {
                let mut done = 0;
                while done < m {
                    let at = slot + done;
                    let run = (self.rows_per_chunk - at % self.rows_per_chunk).min(m - done);
                    // Rows `at..at + run` are stored and contiguous in one
                    // chunk; we hold the lock.
                    let base = self.rows(s, at, run);
                    let norms: &[simd::NormSq] = if cosine { &s.norms[at..at + run] } else { &[] };
                    // Query `i`'s distance to row `done + j` lands at
                    // `out[i * m + done + j]`.
                    simd.block_distances(
                        fpu,
                        self.kernel,
                        dim,
                        batch.queries,
                        batch.norms,
                        base,
                        norms,
                        run,
                        &mut out[done..],
                        m,
                    );
                    done += run;
                }
            });
            for (i, top) in tops.iter_mut().enumerate() {
                for (j, &bits) in dist[i * m..(i + 1) * m].iter().enumerate() {
                    let at = slot + j;
                    let key = simd::order_key_bits(bits);
                    if key > top.bar() {
                        continue;
                    }
                    let flags = s.flags[at];
                    if flags & ROW_DEAD != 0 {
                        continue;
                    }
                    let c = Candidate {
                        key,
                        bits,
                        id: s.ids[at],
                        file: flags & ROW_FILE != 0,
                    };
                    if !top.would_take(c.rank()) || !admit(c.id, c.file) {
                        continue;
                    }
                    top.offer(c);
                }
            }
        }
        Ok(())
    }
}

/// The queries of one exact scan: `dim` values each, and for cosine their
/// `|q|^2` (empty for the other metrics).
#[derive(Clone, Copy)]
struct Scan<'a> {
    queries: &'a [f32],
    norms: &'a [simd::NormSq],
}

/// Read access to the rows, for distance computations (borrowing only the
/// fields it needs, so the graph may be borrowed mutably at the same time).
fn rows_of<'a>(
    c: &'a Collection,
    chunks: &'a [PoolBuf<f32>],
    norms: &'a [simd::NormSq],
    rows: usize,
) -> Rows<'a> {
    Rows {
        chunks,
        norms,
        rows,
        dim: c.dim,
        rows_per_chunk: c.rows_per_chunk,
        metric: c.kernel,
    }
}

/// A new HNSW graph with `M` and `ef_construction` from the create request
/// (0 for the defaults, already range-checked), boxed. The graph and the
/// quantizer are boxed, and built out of line, so that creating a collection
/// keeps them off its stack (they made a 3.8 KiB frame).
#[inline(never)]
fn new_graph(m: u32, ef_construction: u32) -> Result<KBox<Hnsw<GraphAlloc>>> {
    let defaults = hnsw::Params::default();
    let params = hnsw::Params {
        m: if m == 0 { abi::HNSW_DEFAULT_M } else { m } as usize,
        ef_construction: if ef_construction == 0 {
            abi::HNSW_DEFAULT_EF_CONSTRUCTION
        } else {
            ef_construction
        } as usize,
        repair_percent: DEAD_PERCENT as u32,
        ..defaults
    };
    let graph = Hnsw::new(params, GraphAlloc::CHARGED).map_err(|_| EINVAL)?;
    Ok(KBox::new(graph, GFP_KERNEL_ACCOUNT)?)
}

/// Replaces an empty graph `g` by a new one with the same parameters, which
/// allocates nothing until its first insert; dropping the old one frees
/// (and uncharges) its arrays. Out of line: the new graph is built on the
/// stack, and every trim would otherwise carry its 1 KiB frame.
#[inline(never)]
fn renew_graph(g: &mut Hnsw<GraphAlloc>) {
    if let Ok(fresh) = Hnsw::new(*g.params(), GraphAlloc::CHARGED) {
        *g = fresh;
    }
}

/// A new SQ8 quantizer, boxed (see [`new_graph`]).
#[inline(never)]
fn new_sq8(dim: usize, metric: simd::Metric) -> Result<KBox<Sq8>> {
    Ok(KBox::new(Sq8::new(dim, metric), GFP_KERNEL_ACCOUNT)?)
}

impl Drop for Store {
    fn drop(&mut self) {
        uncharge(self.charged());
    }
}
