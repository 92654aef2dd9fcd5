// SPDX-License-Identifier: GPL-2.0

//! Tiered memory pools: three `kmem_cache`s of 1, 4 and 16 KiB objects
//! (64-byte aligned) and a `kvmalloc` fall-through for anything larger.
//!
//! Every module buffer of variable size (ioctl requests and replies,
//! per-mount state) is allocated here, so `vexctl stats` shows where the
//! module's memory is. Objects are returned by RAII ([`PoolBox`]). Every
//! allocation is charged to the allocating task's memory cgroup (accounted
//! caches, `__GFP_ACCOUNT` for the large tier).

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::alloc::allocator::KVmalloc;
use kernel::alloc::{
    flags::{GFP_KERNEL, GFP_KERNEL_ACCOUNT},
    Allocator, KVVec, NumaNode,
};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};

use super::mem::KmemCache;
use crate::abi;

/// Counters of one tier, updated without locks.
struct TierCounters {
    allocs: Atomic<u64>,
    frees: Atomic<u64>,
    in_use: Atomic<u64>,
    high_water: Atomic<u64>,
    bytes_in_use: Atomic<u64>,
    failures: Atomic<u64>,
}

impl TierCounters {
    const fn new() -> Self {
        Self {
            allocs: Atomic::new(0),
            frees: Atomic::new(0),
            in_use: Atomic::new(0),
            high_water: Atomic::new(0),
            bytes_in_use: Atomic::new(0),
            failures: Atomic::new(0),
        }
    }

    fn on_alloc(&self, bytes: u64) {
        self.allocs.add(1, Relaxed);
        self.bytes_in_use.add(bytes, Relaxed);
        let now = self.in_use.fetch_add(1, Relaxed) + 1;
        // Raise the high-water mark; a lost race only delays it to the next
        // allocation, which is fine for a statistic.
        let mut seen = self.high_water.load(Relaxed);
        while now > seen {
            match self.high_water.cmpxchg(seen, now, Relaxed) {
                Ok(_) => break,
                Err(cur) => seen = cur,
            }
        }
    }

    fn on_free(&self, bytes: u64) {
        self.frees.add(1, Relaxed);
        self.in_use.fetch_sub(1, Relaxed);
        self.bytes_in_use.fetch_sub(bytes, Relaxed);
    }

    fn snapshot(&self, object_size: usize) -> abi::PoolTierStats {
        abi::PoolTierStats {
            object_size: object_size as u64,
            allocs: self.allocs.load(Relaxed),
            frees: self.frees.load(Relaxed),
            in_use: self.in_use.load(Relaxed),
            high_water: self.high_water.load(Relaxed),
            bytes_in_use: self.bytes_in_use.load(Relaxed),
            failures: self.failures.load(Relaxed),
        }
    }
}

/// Cache names as shown in /proc/slabinfo.
const CACHE_NAMES: [&CStr; abi::POOL_TIERS - 1] =
    [c"vexfs_pool_1k", c"vexfs_pool_4k", c"vexfs_pool_16k"];

/// The module-wide pools.
pub(crate) struct Pools {
    caches: KVVec<KmemCache>,
}

/// Counters live outside [`Pools`] so that they are readable (and zero)
/// even before the caches exist.
static COUNTERS: [TierCounters; abi::POOL_TIERS] = [
    TierCounters::new(),
    TierCounters::new(),
    TierCounters::new(),
    TierCounters::new(),
];

/// Holder of the pools between module init and exit.
struct PoolCell(UnsafeCell<Option<Pools>>);

// SAFETY: The cell is written only by `init` and `exit`, which run while no
// filesystem is registered and therefore no other code can read it.
unsafe impl Sync for PoolCell {}

static POOLS: PoolCell = PoolCell(UnsafeCell::new(None));

/// Proof that the pools exist; dropping it destroys them.
pub(crate) struct PoolsGuard(());

impl Drop for PoolsGuard {
    fn drop(&mut self) {
        exit();
    }
}

/// Whether a [`PoolsGuard`] exists: there is at most one.
static POOLS_OWNED: AtomicBool = AtomicBool::new(false);

/// Creates the slab caches, from module init before the filesystem type is
/// registered; `EBUSY` if they exist already.
pub(crate) fn init() -> Result<PoolsGuard> {
    if POOLS_OWNED.swap(true, Ordering::AcqRel) {
        return Err(EBUSY);
    }
    let made = (|| -> Result<KVVec<KmemCache>> {
        let mut caches = KVVec::with_capacity(CACHE_NAMES.len(), GFP_KERNEL)?;
        for (name, size) in CACHE_NAMES.iter().zip(abi::POOL_TIER_SIZES) {
            caches.push(KmemCache::new(name, size, abi::POOL_ALIGN)?, GFP_KERNEL)?;
        }
        Ok(caches)
    })();
    let caches = match made {
        Ok(c) => c,
        Err(e) => {
            POOLS_OWNED.store(false, Ordering::Release);
            return Err(e);
        }
    };
    // SAFETY: We alone got past `POOLS_OWNED`, and no pools exist, so
    // nothing reads `POOLS` (only filesystem operations allocate, and the
    // filesystem is registered after this returns).
    unsafe { *POOLS.0.get() = Some(Pools { caches }) };
    Ok(PoolsGuard(()))
}

/// Destroys the slab caches, from module exit after the filesystem type is
/// unregistered (so every mount, hence every object, is gone).
fn exit() {
    // Every object must be back by now: report a leak by tier. (The slab
    // allocator then also complains when the cache is destroyed.)
    for (i, c) in COUNTERS.iter().enumerate() {
        let in_use = c.in_use.load(Relaxed);
        if in_use != 0 {
            let tier = abi::POOL_TIER_SIZES.get(i).copied().unwrap_or(0);
            pr_err!(
                "leak: {} objects of pool tier {} still allocated at unload\n",
                in_use,
                tier
            );
        }
    }
    // SAFETY: The guard's owner drops it at module exit, after the
    // filesystem is unregistered: the last user of the pools is gone.
    unsafe { *POOLS.0.get() = None };
    POOLS_OWNED.store(false, Ordering::Release);
}

/// The pools; `None` only outside the module's lifetime, which no
/// filesystem operation can observe.
fn pools() -> Option<&'static Pools> {
    // SAFETY: Between `init` and `exit` the cell is only read; every caller
    // runs inside a filesystem operation, which can only exist in between.
    unsafe { (*POOLS.0.get()).as_ref() }
}

/// A snapshot of every tier's counters.
pub(crate) fn stats() -> [abi::PoolTierStats; abi::POOL_TIERS] {
    let mut out = [abi::PoolTierStats::default(); abi::POOL_TIERS];
    for (i, o) in out.iter_mut().enumerate() {
        let size = abi::POOL_TIER_SIZES.get(i).copied().unwrap_or(0);
        *o = COUNTERS[i].snapshot(size);
    }
    out
}

/// Where a [`PoolBox`]'s memory came from.
enum Backing {
    Slab { tier: usize, obj: NonNull<u8> },
    Large(KVVec<u8>),
}

/// A `T` stored in the smallest pool tier that fits it, freed on drop.
pub(crate) struct PoolBox<T> {
    backing: Backing,
    ptr: NonNull<T>,
}

// SAFETY: `PoolBox<T>` owns its `T` like `KBox<T>` does.
unsafe impl<T: Send> Send for PoolBox<T> {}
// SAFETY: Shared access only hands out `&T`.
unsafe impl<T: Sync> Sync for PoolBox<T> {}

impl<T> PoolBox<T> {
    /// Moves `value` into pool memory.
    pub(crate) fn new(value: T) -> Result<Self> {
        Self::try_new_with(|| Ok(value))
    }

    /// The value `make` returns, in pool memory taken first: `make`'s
    /// result is written straight into it rather than passed by value (a
    /// copy less on the stack of a large `T`).
    pub(crate) fn try_new_with(make: impl FnOnce() -> Result<T>) -> Result<Self> {
        const { assert!(core::mem::align_of::<T>() <= abi::POOL_ALIGN) };
        let (backing, raw) =
            alloc_bytes(core::mem::size_of::<T>().max(1), core::mem::align_of::<T>())?;
        let ptr = raw.cast::<T>();
        let value = match make() {
            Ok(v) => v,
            Err(e) => {
                free_backing(&backing);
                return Err(e);
            }
        };
        // SAFETY: `ptr` is aligned for `T` and points to at least
        // `size_of::<T>()` writable bytes.
        unsafe { ptr.as_ptr().write(value) };
        Ok(Self { backing, ptr })
    }
}

impl<T> PoolBox<T> {
    /// Slab tier of `T`; `into_raw` is only for types that fit one.
    const SLAB_TIER: usize = {
        let size = core::mem::size_of::<T>();
        let mut tier = 0;
        while abi::POOL_TIER_SIZES[tier] < size {
            tier += 1;
        }
        tier
    };

    /// Gives up ownership, for storing in a C structure (`s_fs_info`).
    pub(crate) fn into_raw(self) -> *mut T {
        let tier = Self::SLAB_TIER;
        debug_assert!(matches!(self.backing, Backing::Slab { tier: t, .. } if t == tier));
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }

    /// Takes back ownership of a pointer from [`Self::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_raw` of the same `T` and not be used
    /// afterwards except through the returned box.
    pub(crate) unsafe fn from_raw(ptr: *mut T) -> Self {
        // SAFETY: `into_raw` returned a non-null pointer to the start of a
        // slab object of `SLAB_TIER` holding a `T`.
        let ptr = unsafe { NonNull::new_unchecked(ptr) };
        Self {
            backing: Backing::Slab {
                tier: Self::SLAB_TIER,
                obj: ptr.cast(),
            },
            ptr,
        }
    }
}

impl<T> Deref for PoolBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` holds an initialised `T` owned by `self`.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for PoolBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: `ptr` holds an initialised `T` owned exclusively by `self`.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for PoolBox<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` holds an initialised `T` that is never used again.
        unsafe { core::ptr::drop_in_place(self.ptr.as_ptr()) };
        free_backing(&self.backing);
    }
}

/// Allocates `bytes` bytes aligned to `align` (at most [`abi::POOL_ALIGN`])
/// from the smallest tier that fits, counting it.
fn alloc_bytes(bytes: usize, align: usize) -> Result<(Backing, NonNull<u8>)> {
    let pools = pools().ok_or(ENODEV)?;
    match tier_of(bytes) {
        Some(tier) => {
            let Some(obj) = pools.caches[tier].alloc() else {
                COUNTERS[tier].failures.add(1, Relaxed);
                return Err(ENOMEM);
            };
            COUNTERS[tier].on_alloc(pools.caches[tier].object_size() as u64);
            Ok((Backing::Slab { tier, obj }, obj))
        }
        None => {
            let large = &COUNTERS[abi::POOL_TIER_LARGE];
            let mut v = KVVec::<u8>::with_capacity(bytes + align, GFP_KERNEL_ACCOUNT)
                .inspect_err(|_| large.failures.add(1, Relaxed))?;
            large.on_alloc(v.capacity() as u64);
            let base = v.spare_capacity_mut().as_mut_ptr().cast::<u8>();
            let pad = base.align_offset(align);
            // SAFETY: `pad < align` and the capacity is `bytes + align`, so
            // the offset stays in bounds.
            let aligned = unsafe { base.add(pad) };
            // SAFETY: `aligned` is derived from a non-null allocation.
            Ok((Backing::Large(v), unsafe {
                NonNull::new_unchecked(aligned)
            }))
        }
    }
}

/// A budget that memory is charged to before it is allocated.
pub(crate) trait Budget: Copy {
    /// Takes `bytes` from the budget; false if it has too little left.
    fn charge(&self, bytes: u64) -> bool;
    /// Gives back what [`Self::charge`] took.
    fn uncharge(&self, bytes: u64);
}

/// The allocator of the HNSW index (`hnsw::Alloc`): pool blocks, charged
/// to the budget `B` while allocated.
#[derive(Clone, Copy)]
pub(crate) struct Charged<B>(pub(crate) B);

impl<B: Budget> crate::hnsw::Alloc for Charged<B> {
    fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        let bytes = layout.size() as u64;
        if !self.0.charge(bytes) {
            return None;
        }
        let block = alloc_raw(layout);
        if block.is_none() {
            self.0.uncharge(bytes);
        }
        block
    }

    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with `layout`, as the caller
        // guarantees.
        unsafe { free_raw(ptr, layout) };
        self.0.uncharge(layout.size() as u64);
    }
}

/// Allocates a block for `layout` from the smallest tier that fits, or
/// `kvmalloc`, counting it; for owners that remember the layout (the HNSW
/// graph's arrays, see [`Charged`]). Free with [`free_raw`].
fn alloc_raw(layout: Layout) -> Option<NonNull<u8>> {
    if layout.align() > abi::POOL_ALIGN {
        return None;
    }
    let large = &COUNTERS[abi::POOL_TIER_LARGE];
    match tier_of(layout.size()) {
        Some(_) => alloc_bytes(layout.size(), layout.align())
            .ok()
            .map(|(_, ptr)| ptr),
        None => match KVmalloc::alloc(layout, GFP_KERNEL_ACCOUNT, NumaNode::NO_NODE) {
            Ok(block) => {
                large.on_alloc(layout.size() as u64);
                Some(block.cast())
            }
            Err(_) => {
                large.failures.add(1, Relaxed);
                None
            }
        },
    }
}

/// Frees a block from [`alloc_raw`].
///
/// # Safety
///
/// `ptr` came from `alloc_raw(layout)` and is not used again.
unsafe fn free_raw(ptr: NonNull<u8>, layout: Layout) {
    match tier_of(layout.size()) {
        Some(tier) => free_backing(&Backing::Slab { tier, obj: ptr }),
        None => {
            // SAFETY: A `kvmalloc` block of `layout`, as the caller
            // guarantees.
            unsafe { KVmalloc::free(ptr, layout) };
            COUNTERS[abi::POOL_TIER_LARGE].on_free(layout.size() as u64);
        }
    }
}

/// The slab tier of a `bytes`-byte object, or `None` for the large tier.
fn tier_of(bytes: usize) -> Option<usize> {
    abi::POOL_TIER_SIZES.iter().position(|&s| bytes <= s)
}

/// Returns memory from [`alloc_bytes`] and counts it.
fn free_backing(backing: &Backing) {
    match backing {
        Backing::Slab { tier, obj } => {
            // A slab object exists only while the pools do.
            if let Some(pools) = pools() {
                let cache = &pools.caches[*tier];
                // SAFETY: `obj` came from this cache's `alloc` and is dead.
                unsafe { cache.free(*obj) };
                COUNTERS[*tier].on_free(cache.object_size() as u64);
            }
        }
        // The KVVec frees itself when the backing is dropped.
        Backing::Large(v) => COUNTERS[abi::POOL_TIER_LARGE].on_free(v.capacity() as u64),
    }
}

/// A zeroed array of `len` `T`s in the smallest tier that fits it (or
/// `kvmalloc` past 16 KiB), freed on drop. For request staging buffers whose
/// size comes from user space (already bounds-checked by the caller).
pub(crate) struct PoolBuf<T: Zeroable + Copy> {
    backing: Backing,
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: `PoolBuf<T>` owns its elements like `KVVec<T>` does.
unsafe impl<T: Zeroable + Copy + Send> Send for PoolBuf<T> {}
// SAFETY: Shared access only hands out `&[T]`.
unsafe impl<T: Zeroable + Copy + Sync> Sync for PoolBuf<T> {}

impl<T: Zeroable + Copy> PoolBuf<T> {
    /// Allocates `len` zeroed elements.
    pub(crate) fn new_zeroed(len: usize) -> Result<Self> {
        const { assert!(core::mem::align_of::<T>() <= abi::POOL_ALIGN) };
        let bytes = len
            .checked_mul(core::mem::size_of::<T>())
            .ok_or(EINVAL)?
            .max(1);
        let (backing, raw) = alloc_bytes(bytes, core::mem::align_of::<T>())?;
        // SAFETY: `raw` points to at least `bytes` writable bytes; all-zero is
        // a valid `T` (`Zeroable`).
        unsafe { raw.as_ptr().write_bytes(0, bytes) };
        Ok(Self {
            backing,
            ptr: raw.cast(),
            len,
        })
    }
}

impl<T: Zeroable + Copy> Deref for PoolBuf<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised `T`s owned by `self`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable + Copy> DerefMut for PoolBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: As above, and `self` is borrowed exclusively.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable + Copy> Drop for PoolBuf<T> {
    fn drop(&mut self) {
        free_backing(&self.backing);
    }
}
