// SPDX-License-Identifier: GPL-2.0

//! The one place where VexFS calls raw `kernel::bindings`.
//!
//! Mainline Rust has no filesystem, inode or `kmem_cache` abstractions, so
//! VexFS wraps the few C interfaces it needs here, each once, behind a small
//! safe API. The rest of the module uses these wrappers only.

use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::marker::PhantomPinned;
use core::ptr::NonNull;
use kernel::ffi::c_int;

use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::sync::LockClassKey;
use kernel::types::Opaque;

/// `ERR_PTR(err)`: encodes a negative errno in a pointer return value.
pub(crate) fn err_ptr<T>(err: Error) -> *mut T {
    // ERR_PTR() is a plain cast of the negative errno (include/linux/err.h).
    err.to_errno() as isize as *mut T
}

/// A `kmem_cache` of fixed-size objects.
pub(crate) struct KmemCache {
    cache: NonNull<bindings::kmem_cache>,
    object_size: usize,
}

// SAFETY: kmem_cache allocation and free are thread-safe in the kernel; the
// pointer is only destroyed in `drop`, which has exclusive access.
unsafe impl Send for KmemCache {}
// SAFETY: See `Send`; `alloc` and `free` may be called concurrently.
unsafe impl Sync for KmemCache {}

impl KmemCache {
    /// Creates a cache named `name` (shown in /proc/slabinfo) of objects of
    /// `object_size` bytes aligned to `align`.
    pub(crate) fn new(name: &'static CStr, object_size: usize, align: usize) -> Result<Self> {
        // SAFETY: `kmem_cache_args` is a plain C struct for which all-zero
        // means "no constructor, no usercopy region, default freelist".
        let mut args: bindings::kmem_cache_args = unsafe { core::mem::zeroed() };
        args.align = u32::try_from(align)?;
        // The whole object may be copied to and from user space (ioctl
        // staging): declare it, or hardened usercopy refuses the copy.
        args.useroffset = 0;
        args.usersize = u32::try_from(object_size)?;
        // SAFETY: `name` is a NUL-terminated string that lives for the whole
        // module lifetime, as the slab allocator keeps the pointer; `args`
        // is valid for the duration of the call.
        let cache = unsafe {
            bindings::__kmem_cache_create_args(
                name.as_char_ptr(),
                u32::try_from(object_size)?,
                &mut args,
                // Unmerged, so each tier shows in /proc/slabinfo under its own
                // name and a leaked object is reported against it.
                1 << bindings::_slab_flag_bits__SLAB_NO_MERGE,
            )
        };
        let cache = NonNull::new(cache).ok_or(ENOMEM)?;
        Ok(Self { cache, object_size })
    }

    /// Object size in bytes.
    pub(crate) fn object_size(&self) -> usize {
        self.object_size
    }

    /// Allocates one object, or `None` when memory is exhausted.
    pub(crate) fn alloc(&self) -> Option<NonNull<u8>> {
        // SAFETY: `self.cache` is a live cache until `drop`.
        let p =
            unsafe { bindings::kmem_cache_alloc_noprof(self.cache.as_ptr(), bindings::GFP_KERNEL) };
        NonNull::new(p.cast())
    }

    /// Returns an object to the cache.
    ///
    /// # Safety
    ///
    /// `obj` must come from [`Self::alloc`] of this cache and not be used
    /// after this call.
    pub(crate) unsafe fn free(&self, obj: NonNull<u8>) {
        // SAFETY: Guaranteed by the caller.
        unsafe { bindings::kmem_cache_free(self.cache.as_ptr(), obj.as_ptr().cast()) };
    }
}

impl Drop for KmemCache {
    fn drop(&mut self) {
        // SAFETY: The cache is live and, by the pool's accounting, empty; it
        // is never used again. A leak would be reported by the slab allocator.
        unsafe { bindings::kmem_cache_destroy(self.cache.as_ptr()) };
    }
}

/// Whether the boot CPU has feature `bit` (an `X86_FEATURE_*` number), as
/// the kernel left it after checking which register states XSAVE enables.
pub(crate) fn cpu_has(bit: u32) -> bool {
    let (word, bit) = ((bit / 32) as usize, bit % 32);
    // SAFETY: `boot_cpu_data` is initialised before any module loads and its
    // capability words are not changed afterwards; we read one `u32` by value
    // through a raw pointer, without forming a reference to the mutable static.
    let caps = unsafe { bindings::boot_cpu_data.__bindgen_anon_3.x86_capability };
    caps.get(word).is_some_and(|w| w & (1 << bit) != 0)
}

/// A borrowed VFS inode.
///
/// # Invariants
///
/// `ptr` points to a live `struct inode` for the lifetime `'a`.
#[derive(Clone, Copy)]
pub(crate) struct Inode<'a> {
    ptr: NonNull<bindings::inode>,
    _life: core::marker::PhantomData<&'a bindings::inode>,
}

impl<'a> Inode<'a> {
    /// Wraps a raw inode pointer handed to us by the VFS.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live inode for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::inode) -> Self {
        Self {
            // SAFETY: The caller guarantees a live, hence non-null, inode.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _life: core::marker::PhantomData,
        }
    }

    /// The raw pointer, for calls into VFS library functions.
    pub(crate) fn as_ptr(self) -> *mut bindings::inode {
        self.ptr.as_ptr()
    }

    /// The inode's superblock.
    pub(crate) fn super_block(self) -> *mut bindings::super_block {
        // SAFETY: By the type invariant the inode is live; `i_sb` is set at
        // allocation and never changes.
        unsafe { (*self.as_ptr()).i_sb }
    }

    /// The file size (`i_size`).
    pub(crate) fn size(self) -> i64 {
        // SAFETY: The inode is live; on 64-bit, i_size_read() is this plain
        // read.
        unsafe { (*self.as_ptr()).i_size }
    }

    /// Sets the directory's mtime and ctime to now (after a change to its
    /// entries, as POSIX requires).
    pub(crate) fn touch_dir(self) {
        // SAFETY: The inode is live; the caller holds the directory's i_rwsem
        // (we are inside a VFS directory operation).
        unsafe {
            let now = bindings::inode_set_ctime_current(self.as_ptr());
            (*self.as_ptr()).i_mtime_sec = now.tv_sec;
            (*self.as_ptr()).i_mtime_nsec = now.tv_nsec as u32;
        }
    }

    /// Increments the link count.
    pub(crate) fn inc_nlink(self) {
        // SAFETY: The inode is live.
        unsafe { bindings::inc_nlink(self.as_ptr()) };
    }
}

/// A new inode reference, dropped with `iput` unless handed to a dentry.
pub(crate) struct NewInode(NonNull<bindings::inode>);

impl NewInode {
    /// Allocates an inode on `sb`, owned by the caller's fsuid/fsgid (or the
    /// setgid directory's group), with all three timestamps set to now.
    pub(crate) fn new(
        sb: *mut bindings::super_block,
        dir: Option<Inode<'_>>,
        mode: u16,
    ) -> Result<Self> {
        // SAFETY: `sb` is a live superblock (we are in fill_super or in a
        // directory operation of a mounted filesystem).
        let inode = NonNull::new(unsafe { bindings::new_inode(sb) }).ok_or(ENOSPC)?;
        let raw = inode.as_ptr();
        let dir = dir.map_or(core::ptr::null(), |d| d.as_ptr().cast_const());
        // SAFETY: `raw` is a fresh inode we own; `dir` is null or a live
        // inode; `nop_mnt_idmap` is the kernel's identity mapping.
        unsafe {
            (*raw).i_ino = u64::from(bindings::get_next_ino());
            bindings::inode_init_owner(&raw mut bindings::nop_mnt_idmap, raw, dir, mode);
            bindings::simple_inode_init_ts(raw);
        }
        Ok(Self(inode))
    }

    /// Borrows the inode.
    pub(crate) fn inode(&self) -> Inode<'_> {
        // SAFETY: We hold a reference, so the inode is live.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }

    /// Makes the inode a page-cache-backed in-memory file (ramfs' address
    /// space operations: pages are never written back nor evicted).
    pub(crate) fn use_ram_pages(&self) {
        let raw = self.0.as_ptr();
        // SAFETY: Fresh inode we own; `ram_aops` is a static of the kernel.
        // The GFP mask and unevictable flag mirror ramfs_get_inode().
        unsafe {
            let mapping = (*raw).i_mapping;
            (*mapping).a_ops = &raw const bindings::ram_aops;
            // Unevictable pages must not sit in movable zones.
            (*mapping).gfp_mask &= !(1 << bindings::___GFP_MOVABLE_BIT);
            // mapping_set_unevictable() is an inline; this is its body.
            bindings::set_bit(
                bindings::mapping_flags_AS_UNEVICTABLE as usize,
                &raw mut (*mapping).flags,
            );
        }
    }

    /// Sets the inode and file operation tables.
    pub(crate) fn set_ops(
        &self,
        iops: &'static bindings::inode_operations,
        fops: Option<&'static bindings::file_operations>,
    ) {
        let raw = self.0.as_ptr();
        // SAFETY: Fresh inode we own, not yet visible to anyone else.
        unsafe {
            (*raw).i_op = iops;
            if let Some(fops) = fops {
                (*raw).__bindgen_anon_3.i_fop = fops;
            }
        }
    }

    /// Initialises a device, FIFO or socket inode (`mknod`).
    pub(crate) fn init_special(&self, mode: u16, dev: u32) {
        // SAFETY: Fresh inode we own.
        unsafe { bindings::init_special_inode(self.0.as_ptr(), mode, dev) };
    }

    /// Stores `target` as the symlink body in the inode's page cache.
    pub(crate) fn set_symlink_target(&self, target: &CStr) -> Result {
        let raw = self.0.as_ptr();
        let len = c_int::try_from(target.to_bytes_with_nul().len())?;
        // SAFETY: Fresh symlink inode we own with ram address space
        // operations; `target` is NUL-terminated and `len` includes the NUL.
        unsafe {
            (*raw).i_op = &raw const bindings::page_symlink_inode_operations;
            bindings::inode_nohighmem(raw);
            to_result(bindings::page_symlink(raw, target.as_char_ptr(), len))
        }
    }

    /// Hands the inode to `dentry` and pins the dentry in the dcache for as
    /// long as the name exists (in-memory filesystems have no other copy).
    ///
    /// # Safety
    ///
    /// `dentry` must be the negative dentry of a directory operation in
    /// progress, with the parent's i_rwsem held.
    pub(crate) unsafe fn instantiate(self, dentry: *mut bindings::dentry) {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: Guaranteed by the caller; our inode reference moves to the
        // dentry.
        unsafe { bindings::d_make_persistent(dentry, raw) };
    }

    /// Makes the inode the root dentry of `sb`.
    ///
    /// # Safety
    ///
    /// Only from `fill_super`, where `sb` is being set up.
    pub(crate) unsafe fn make_root(self, sb: *mut bindings::super_block) -> Result {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: `d_make_root` consumes our reference (and drops it on
        // failure); `sb` is the superblock being filled.
        unsafe {
            let root = bindings::d_make_root(raw);
            if root.is_null() {
                return Err(ENOMEM);
            }
            (*sb).s_root = root;
        }
        Ok(())
    }
}

impl Drop for NewInode {
    fn drop(&mut self) {
        // SAFETY: We own one reference to the inode.
        unsafe { bindings::iput(self.0.as_ptr()) };
    }
}

/// A registered filesystem type, unregistered on drop.
pub(crate) struct FsRegistration(*mut bindings::file_system_type);

// SAFETY: The registration is only a handle; the VFS serialises
// (un)registration internally.
unsafe impl Send for FsRegistration {}
// SAFETY: No method takes `&self`.
unsafe impl Sync for FsRegistration {}

impl FsRegistration {
    /// Registers `fs` as owned by `module`, so a mounted filesystem pins the
    /// module (and `rmmod` waits for `umount`).
    ///
    /// # Safety
    ///
    /// `fs` must point to a `file_system_type` that outlives the returned
    /// registration and is not otherwise accessed while registered.
    pub(crate) unsafe fn register(
        fs: *mut bindings::file_system_type,
        module: &'static ThisModule,
    ) -> Result<Self> {
        // SAFETY: Guaranteed by the caller; `owner` is set before the VFS can
        // see the structure.
        unsafe {
            (*fs).owner = module.as_ptr();
            to_result(bindings::register_filesystem(fs))?;
        }
        Ok(Self(fs))
    }
}

impl Drop for FsRegistration {
    fn drop(&mut self) {
        // SAFETY: Registered in `register`; the module cannot be unloaded
        // while mounted, so no superblock of this type remains.
        unsafe { bindings::unregister_filesystem(self.0) };
    }
}

/// `KFPU_387 | KFPU_MXCSR` (arch/x86/include/asm/fpu/api.h): what
/// `kernel_fpu_begin()` asks for. The macros are not reachable by bindgen.
const KFPU_FULL: u32 = 1 | 2;

/// Runs `f` with the FPU/SIMD registers available to kernel code.
///
/// Preemption is disabled meanwhile, so `f` must not sleep and must be short
/// (the callers bound the work per section).
pub(crate) fn with_fpu<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: Not nested (callers never call `with_fpu` from `f`); process
    // context, as every VexFS operation is.
    unsafe { bindings::kernel_fpu_begin_mask(KFPU_FULL) };
    let r = f();
    // SAFETY: Pairs with the begin above.
    unsafe { bindings::kernel_fpu_end() };
    r
}

unsafe extern "C" {
    /// In `vexfs_glue.c`: `cond_resched()` is a macro/inline.
    fn vexfs_cond_resched();
    /// In `vexfs_glue.c`: `fatal_signal_pending(current)` is an inline.
    fn vexfs_fatal_signal_pending() -> bool;
}

/// Whether the current task has been killed (SIGKILL pending): long work
/// that cannot be cut short for ordinary signals stops for this one.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: Reads the current task's pending signals; process context.
    unsafe { vexfs_fatal_signal_pending() }
}

/// Gives the CPU away if something else should run (a no-op on fully
/// preemptible kernels, where preemption happens by itself).
pub(crate) fn cond_resched() {
    // SAFETY: Called from process context without spinlocks held.
    unsafe { vexfs_cond_resched() };
}

/// Access check of `mask` (`MAY_READ`, `MAY_WRITE`) on `inode` as seen
/// through the mount of `file`.
pub(crate) fn check_permission(file: *mut bindings::file, inode: Inode<'_>, mask: u32) -> Result {
    // SAFETY: `file` is an open file, whose path pins its mount; the mount's
    // idmap lives as long as the mount.
    let idmap = unsafe { (*(*file).__bindgen_anon_1.f_path.mnt).mnt_idmap };
    // SAFETY: `inode` is live.
    to_result(unsafe { bindings::inode_permission(idmap, inode.as_ptr(), mask as c_int) })
}

impl<'a> Inode<'a> {
    /// Whether this is a directory.
    pub(crate) fn is_dir(self) -> bool {
        // SAFETY: The inode is live; the file type bits never change.
        u32::from(unsafe { (*self.as_ptr()).i_mode }) & bindings::S_IFMT == bindings::S_IFDIR
    }

    /// Whether this is a regular file.
    pub(crate) fn is_reg(self) -> bool {
        // SAFETY: As above.
        u32::from(unsafe { (*self.as_ptr()).i_mode }) & bindings::S_IFMT == bindings::S_IFREG
    }

    /// Inode number.
    pub(crate) fn ino(self) -> u64 {
        // SAFETY: The inode is live; i_ino is set at creation.
        unsafe { (*self.as_ptr()).i_ino }
    }

    /// Link count.
    pub(crate) fn nlink(self) -> u32 {
        // SAFETY: The inode is live; a plain read, as the VFS' own readers do.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.i_nlink }
    }

    /// The inode's `i_private`, read atomically (it is set once).
    pub(crate) fn private(self) -> *mut core::ffi::c_void {
        // SAFETY: `i_private` is a properly aligned pointer field of a live
        // inode, only accessed atomically by VexFS.
        unsafe { core::sync::atomic::AtomicPtr::from_ptr(&raw mut (*self.as_ptr()).i_private) }
            .load(core::sync::atomic::Ordering::Acquire)
    }

    /// Sets `i_private` to `p` if it is null; returns whether it did.
    pub(crate) fn set_private_once(self, p: *mut core::ffi::c_void) -> bool {
        use core::sync::atomic::{AtomicPtr, Ordering};
        // SAFETY: As in `private`.
        unsafe { AtomicPtr::from_ptr(&raw mut (*self.as_ptr()).i_private) }
            .compare_exchange(
                core::ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Holds the inode's `i_rwsem` for writing until the guard drops.
    pub(crate) fn lock(self) -> InodeLock<'a> {
        // SAFETY: The inode is live; `inode_lock()` is this call.
        unsafe { bindings::down_write(&raw mut (*self.as_ptr()).i_rwsem) };
        InodeLock(self)
    }
}

/// A held `inode_lock()`.
pub(crate) struct InodeLock<'a>(Inode<'a>);

impl Drop for InodeLock<'_> {
    fn drop(&mut self) {
        // SAFETY: We took the lock in `Inode::lock`.
        unsafe { bindings::up_write(&raw mut (*self.0.as_ptr()).i_rwsem) };
    }
}

/// A reference on the parent dentry of an open file (`dget_parent`).
pub(crate) struct Parent(NonNull<bindings::dentry>);

impl Parent {
    /// The parent directory of `file`'s dentry, stable while held even if
    /// the file is renamed meanwhile.
    pub(crate) fn of_file(file: *mut bindings::file) -> Self {
        // SAFETY: An open file pins its dentry.
        unsafe { Self::of_dentry((*file).__bindgen_anon_1.f_path.dentry) }
    }

    /// The parent directory of `dentry`.
    ///
    /// # Safety
    ///
    /// `dentry` must be a live dentry the caller holds.
    pub(crate) unsafe fn of_dentry(dentry: *mut bindings::dentry) -> Self {
        // SAFETY: dget_parent() returns a referenced, non-null dentry (the
        // dentry itself at a root).
        let p = unsafe { bindings::dget_parent(dentry) };
        // SAFETY: See above: never null.
        Self(unsafe { NonNull::new_unchecked(p) })
    }

    /// Whether `file`'s name still lives in this directory: not unlinked
    /// and not moved elsewhere. Stable while the directory is locked.
    pub(crate) fn still_holds(&self, file: *mut bindings::file) -> bool {
        // SAFETY: An open file pins its dentry; `d_parent` and `d_hash` are
        // only changed with the parent directory locked, which the caller
        // holds. d_unhashed() is `d_hash.pprev == NULL`.
        unsafe {
            let d = (*file).__bindgen_anon_1.f_path.dentry;
            (*d).d_parent == self.0.as_ptr() && !(*d).d_hash.pprev.is_null()
        }
    }

    /// The parent's inode (positive: a directory with a child).
    pub(crate) fn inode(&self) -> Inode<'_> {
        // SAFETY: A referenced positive dentry pins its inode.
        unsafe { Inode::from_raw((*self.0.as_ptr()).d_inode) }
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        // SAFETY: We hold the reference taken by dget_parent.
        unsafe { bindings::dput(self.0.as_ptr()) };
    }
}

/// Whether the directory of the open `file` has no entries.
pub(crate) fn dir_is_empty(file: *mut bindings::file) -> bool {
    // SAFETY: An open file pins its dentry.
    unsafe { bindings::simple_empty((*file).__bindgen_anon_1.f_path.dentry) != 0 }
}

/// The inode of an open file.
///
/// # Safety
///
/// `file` must be an open file; the inode lives as long as it stays open.
pub(crate) unsafe fn file_inode<'a>(file: *mut bindings::file) -> Inode<'a> {
    // SAFETY: An open file pins its inode.
    unsafe { Inode::from_raw((*file).f_inode) }
}

/// Write access to the mount of an open file (`mnt_want_write_file`), so
/// that changes are refused on read-only (including bind) mounts.
pub(crate) struct WriteAccess(*mut bindings::file);

impl WriteAccess {
    /// Takes write access, or fails with `EROFS`.
    pub(crate) fn new(file: *mut bindings::file) -> Result<Self> {
        // SAFETY: `file` is an open file for the duration of the ioctl.
        to_result(unsafe { bindings::mnt_want_write_file(file) })?;
        Ok(Self(file))
    }
}

impl Drop for WriteAccess {
    fn drop(&mut self) {
        // SAFETY: Pairs with the successful mnt_want_write_file in `new`.
        unsafe { bindings::mnt_drop_write_file(self.0) };
    }
}

/// A reader-writer semaphore (`struct rw_semaphore`) guarding a `T`: any
/// number of readers, or one writer. Both sides may sleep while holding it
/// (allocate, fault in user memory, `cond_resched`).
#[pin_data]
pub(crate) struct RwSem<T> {
    #[pin]
    sem: Opaque<bindings::rw_semaphore>,
    data: UnsafeCell<T>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The semaphore hands out `&T` to several tasks only on the read
// side and `&mut T` to one task at a time; `T: Send + Sync` covers both.
unsafe impl<T: Send> Send for RwSem<T> {}
// SAFETY: As above.
unsafe impl<T: Send + Sync> Sync for RwSem<T> {}

impl<T> RwSem<T> {
    /// An initialiser of a semaphore holding `data`; `name` and `key` are
    /// its lockdep class.
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            data: UnsafeCell::new(data),
            // SAFETY: `slot` is valid for the call; `name` and `key` are
            // static, as lockdep needs.
            sem <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_rwsem(slot, name.as_char_ptr(), key.as_ptr())
            }),
            _pin: PhantomPinned,
        })
    }

    /// Shared access; waits while a writer holds it.
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        // SAFETY: `sem` was initialised by `new`; released by the guard.
        unsafe { bindings::down_read(self.sem.get()) };
        ReadGuard(self)
    }

    /// Exclusive access; waits for current readers and writers.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        // SAFETY: As above.
        unsafe { bindings::down_write(self.sem.get()) };
        WriteGuard(self)
    }
}

/// The read side of an [`RwSem`], held until dropped.
pub(crate) struct ReadGuard<'a, T>(&'a RwSem<T>);

impl<T> core::ops::Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: Readers hold the semaphore: no writer has `&mut T`.
        unsafe { &*self.0.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken for reading by `read`.
        unsafe { bindings::up_read(self.0.sem.get()) };
    }
}

/// The write side of an [`RwSem`], held until dropped.
pub(crate) struct WriteGuard<'a, T>(&'a RwSem<T>);

impl<T> core::ops::Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The writer holds the semaphore exclusively.
        unsafe { &*self.0.data.get() }
    }
}

impl<T> core::ops::DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: As above, and the guard is borrowed exclusively.
        unsafe { &mut *self.0.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken for writing by `write`.
        unsafe { bindings::up_write(self.0.sem.get()) };
    }
}
