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
use kernel::ffi::{c_char, c_int};

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;
use kernel::sync::LockClassKey;
use kernel::types::Opaque;

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
                // name and a leaked object is reported against it; accounted,
                // so each object is charged to the allocating task's memory
                // cgroup.
                (1 << bindings::_slab_flag_bits__SLAB_NO_MERGE)
                    | (1 << bindings::_slab_flag_bits__SLAB_ACCOUNT),
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
        let p = unsafe {
            bindings::kmem_cache_alloc_noprof(self.cache.as_ptr(), bindings::GFP_KERNEL_ACCOUNT)
        };
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

    /// The link count.
    pub(crate) fn nlink(self) -> u32 {
        // SAFETY: The inode is live; a plain read, as `inode->i_nlink` is
        // read everywhere.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.i_nlink }
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
    /// Allocates inode number `ino` on `sb`, owned by the caller's
    /// fsuid/fsgid (or the setgid directory's group), with all three
    /// timestamps set to now.
    pub(crate) fn new(
        sb: *mut bindings::super_block,
        ino: u64,
        dir: Option<Inode<'_>>,
        mode: u16,
    ) -> Result<Self> {
        // SAFETY: `sb` is a live superblock (we are in fill_super or in a
        // directory operation of a mounted filesystem).
        let inode = NonNull::new(unsafe { bindings::new_inode(sb) }).ok_or(ENOMEM)?;
        let raw = inode.as_ptr();
        let dir = dir.map_or(core::ptr::null(), |d| d.as_ptr().cast_const());
        // SAFETY: `raw` is a fresh inode we own; `dir` is null or a live
        // inode; `nop_mnt_idmap` is the kernel's identity mapping.
        unsafe {
            (*raw).i_ino = ino;
            bindings::inode_init_owner(&raw mut bindings::nop_mnt_idmap, raw, dir, mode);
            bindings::simple_inode_init_ts(raw);
        }
        Ok(Self(inode))
    }

    /// Puts the inode in the inode hash, so that it is found by number
    /// (`ilookup`: the permission checks of file vectors), once it is
    /// fully set up; eviction takes it out.
    pub(crate) fn hash(&self) {
        let raw = self.0.as_ptr();
        // SAFETY: A fresh inode we own, completely initialised.
        unsafe { bindings::__insert_inode_hash(raw, (*raw).i_ino) };
    }

    /// Borrows the inode.
    pub(crate) fn inode(&self) -> Inode<'_> {
        // SAFETY: We hold a reference, so the inode is live.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
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

    /// Makes the inode a symlink to the NUL-terminated `target` of `len`
    /// bytes, followed through `i_link` without a call.
    ///
    /// # Safety
    ///
    /// `target` must stay valid and unchanged until the inode is freed
    /// (after the RCU grace period that follows its eviction).
    pub(crate) unsafe fn set_link(
        &self,
        target: *const u8,
        len: usize,
        iops: &'static bindings::inode_operations,
    ) {
        let raw = self.0.as_ptr();
        // SAFETY: Fresh symlink inode we own; `target` as the caller says,
        // NUL-terminated after `len` bytes (at most PATH_MAX).
        unsafe {
            (*raw).i_op = iops;
            vexfs_set_cached_link(raw, target.cast_mut().cast(), len as c_int);
            (*raw).i_size = len as i64;
        }
    }

    /// Hands the inode to the `O_TMPFILE` open of `file` and finishes the
    /// open; returns its status.
    ///
    /// # Safety
    ///
    /// `file` is the file of a `tmpfile` inode operation in progress.
    pub(crate) unsafe fn instantiate_tmpfile(self, file: *mut bindings::file) -> c_int {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: Guaranteed by the caller; our reference moves to the
        // file's dentry. finish_open_simple() is finish_open() on the
        // file's own dentry.
        unsafe {
            bindings::d_tmpfile(file, raw);
            bindings::finish_open(file, (*file).__bindgen_anon_1.f_path.dentry, None)
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
        // Evicted inodes are freed by RCU callbacks that run our
        // `free_inode`: they must all have run before the module's code
        // goes (as ext4 and FUSE do at exit).
        // SAFETY: Process context (module exit), no lock held.
        unsafe { bindings::rcu_barrier() };
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

// `struct mem_cgroup` is opaque to bindgen; only pointers cross.
#[allow(improper_ctypes)]
unsafe extern "C" {
    /// In `vexfs_glue.c`: `cond_resched()` is a macro/inline.
    fn vexfs_cond_resched();
    /// In `vexfs_glue.c`: `fatal_signal_pending(current)` is an inline.
    fn vexfs_fatal_signal_pending() -> bool;
    /// In `vexfs_glue.c`: a macro without lockdep.
    fn vexfs_down_write_killable_nested(sem: *mut bindings::rw_semaphore, subclass: c_int)
        -> c_int;
    /// In `vexfs_glue.c`: an inline without memcg.
    fn vexfs_memcg_current() -> *mut bindings::mem_cgroup;
    /// In `vexfs_glue.c`: `mem_cgroup_put()` is an inline.
    fn vexfs_memcg_put(memcg: *mut bindings::mem_cgroup);
    /// In `vexfs_glue.c`: `set_active_memcg()` is an inline.
    fn vexfs_memcg_activate(memcg: *mut bindings::mem_cgroup) -> *mut bindings::mem_cgroup;
}

/// A reference to the memory cgroup of the task that made it, so that
/// work done later on its behalf (by a kernel worker) is charged to it.
/// A css reference: a removed cgroup stays (dying) until it is dropped.
/// (An `obj_cgroup` reference, which follows reparenting, has no exported
/// way to get it.)
pub(crate) struct MemcgRef(*mut bindings::mem_cgroup);

// SAFETY: A counted reference to a cgroup, usable from any task.
unsafe impl Send for MemcgRef {}
// SAFETY: As above; `activate` only reads the pointer.
unsafe impl Sync for MemcgRef {}

impl MemcgRef {
    /// The current task's memory cgroup (null if memcg is disabled).
    pub(crate) fn current() -> Self {
        // SAFETY: Process context; returns a counted reference to the
        // current task's (or its active remote) memcg, or null.
        Self(unsafe { vexfs_memcg_current() })
    }

    /// Charges `__GFP_ACCOUNT` allocations of the current task to this
    /// cgroup until the guard drops.
    pub(crate) fn activate(&self) -> ActiveMemcg<'_> {
        // SAFETY: We hold a reference for longer than the guard lives.
        let old = unsafe { vexfs_memcg_activate(self.0) };
        ActiveMemcg(old, core::marker::PhantomData)
    }
}

impl Drop for MemcgRef {
    fn drop(&mut self) {
        // SAFETY: Our reference, from `current` (null is allowed).
        unsafe { vexfs_memcg_put(self.0) };
    }
}

/// The charging scope of [`MemcgRef::activate`]; restores the previous
/// one on drop.
pub(crate) struct ActiveMemcg<'a>(*mut bindings::mem_cgroup, core::marker::PhantomData<&'a ()>);

impl Drop for ActiveMemcg<'_> {
    fn drop(&mut self) {
        // SAFETY: Restores what `activate` replaced, on the same task.
        unsafe { vexfs_memcg_activate(self.0) };
    }
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
    inode_permission(file_idmap(file), inode, mask)
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

    /// The inode's `i_private`, read atomically (it is set once).
    pub(crate) fn private(self) -> *mut core::ffi::c_void {
        // SAFETY: `i_private` is a properly aligned pointer field of a live
        // inode, only accessed atomically by VexFS.
        unsafe { core::sync::atomic::AtomicPtr::from_ptr(&raw mut (*self.as_ptr()).i_private) }
            .load(core::sync::atomic::Ordering::Acquire)
    }

    /// Holds the inode's `i_rwsem` for writing until the guard drops.
    pub(crate) fn lock(self) -> InodeLock<'a> {
        // SAFETY: The inode is live; `inode_lock()` is this call.
        unsafe { bindings::down_write(&raw mut (*self.as_ptr()).i_rwsem) };
        InodeLock(self)
    }

    /// [`Self::lock`], or `EINTR` if a fatal signal ends the wait
    /// (`inode_lock_killable()`).
    pub(crate) fn lock_killable(self) -> Result<InodeLock<'a>> {
        // SAFETY: The inode is live; `inode_lock_killable()` is this call.
        if unsafe { bindings::down_write_killable(&raw mut (*self.as_ptr()).i_rwsem) } != 0 {
            return Err(EINTR);
        }
        Ok(InodeLock(self))
    }

    /// Sets `i_private` (a new inode, before anyone else sees it).
    pub(crate) fn set_private(self, p: *mut core::ffi::c_void) {
        // SAFETY: As in `private`.
        unsafe { core::sync::atomic::AtomicPtr::from_ptr(&raw mut (*self.as_ptr()).i_private) }
            .store(p, core::sync::atomic::Ordering::Release);
    }

    /// Sets the owner and group given at mount time (root directory).
    pub(crate) fn set_owner(self, uid: Option<bindings::kuid_t>, gid: Option<bindings::kgid_t>) {
        // SAFETY: The inode is live and not yet visible (fill_super).
        unsafe {
            if let Some(uid) = uid {
                (*self.as_ptr()).i_uid = uid;
            }
            if let Some(gid) = gid {
                (*self.as_ptr()).i_gid = gid;
            }
        }
    }

    /// Sets the file size (`i_size_write()`, a plain store on 64-bit); the
    /// caller holds the inode lock.
    pub(crate) fn set_size(self, size: i64) {
        // SAFETY: The inode is live; writers of i_size hold its lock.
        unsafe { (*self.as_ptr()).i_size = size };
    }

    /// Sets ctime to now (an attribute changed).
    pub(crate) fn touch_ctime(self) {
        // SAFETY: The inode is live.
        unsafe { bindings::inode_set_ctime_current(self.as_ptr()) };
    }

    /// Drops the inode's page cache at eviction.
    pub(crate) fn truncate_pages_final(self) {
        // SAFETY: The inode is being evicted (evict_inode).
        unsafe { bindings::truncate_inode_pages_final(&raw mut (*self.as_ptr()).i_data) };
    }

    /// `clear_inode()` at the end of eviction.
    pub(crate) fn clear(self) {
        // SAFETY: The inode is being evicted and its pages are gone.
        unsafe { bindings::clear_inode(self.as_ptr()) };
    }

    /// `i_blocks`: 512-byte blocks in use.
    pub(crate) fn blocks(self) -> u64 {
        // SAFETY: The inode is live; a plain read, as stat() does.
        unsafe { (*self.as_ptr()).i_blocks }
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

    /// Shared access; waits while a writer holds it. A fatal signal ends
    /// the wait (`EINTR`).
    pub(crate) fn read_killable(&self) -> Result<ReadGuard<'_, T>> {
        // SAFETY: `sem` was initialised by `new`; released by the guard.
        if unsafe { bindings::down_read_killable(self.sem.get()) } != 0 {
            return Err(EINTR);
        }
        Ok(ReadGuard(self))
    }

    /// Exclusive access; waits for current readers and writers. A fatal
    /// signal ends the wait (`EINTR`).
    pub(crate) fn write_killable(&self) -> Result<WriteGuard<'_, T>> {
        // SAFETY: As above.
        if unsafe { bindings::down_write_killable(self.sem.get()) } != 0 {
            return Err(EINTR);
        }
        Ok(WriteGuard(self))
    }

    /// [`Self::write_killable`] for a second semaphore of the same lock
    /// class held at once (lockdep subclass 1); the caller orders the two.
    pub(crate) fn write_killable_nested(&self) -> Result<WriteGuard<'_, T>> {
        // SAFETY: As above.
        if unsafe { vexfs_down_write_killable_nested(self.sem.get(), 1) } != 0 {
            return Err(EINTR);
        }
        Ok(WriteGuard(self))
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

// The glue's prototypes use kernel structures that bindgen made opaque;
// only pointers to them cross, as in the kernel's own bindings.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn vexfs_statfs_fill(
        buf: *mut bindings::kstatfs,
        mnt: *mut bindings::vfsmount,
        magic: u64,
        dev: u32,
        files: u64,
        ffree: u64,
    ) -> c_int;
    fn vexfs_set_cached_link(inode: *mut bindings::inode, link: *mut c_char, len: c_int);
    fn vexfs_totalram_pages() -> u64;
    fn vexfs_invalfc(fc: *mut bindings::fs_context, msg: *const c_char) -> c_int;
    fn vexfs_data_mount(blocks: u64) -> *mut bindings::vfsmount;
    fn vexfs_data_mount_resize(
        mnt: *mut bindings::vfsmount,
        blocks: u64,
        why: *mut *const c_char,
    ) -> c_int;
    fn vexfs_data_file(mnt: *mut bindings::vfsmount) -> *mut bindings::file;
    fn vexfs_allow_direct_io(file: *mut bindings::file);
    fn vexfs_backing_open(
        user_file: *mut bindings::file,
        data: *mut bindings::file,
    ) -> *mut bindings::file;
    fn vexfs_backing_read_iter(
        backing: *mut bindings::file,
        iocb: *mut bindings::kiocb,
        to: *mut bindings::iov_iter,
    ) -> isize;
    fn vexfs_backing_write_iter(
        backing: *mut bindings::file,
        iocb: *mut bindings::kiocb,
        from: *mut bindings::iov_iter,
    ) -> isize;
    fn vexfs_backing_splice_read(
        backing: *mut bindings::file,
        file: *mut bindings::file,
        ppos: *mut bindings::loff_t,
        pipe: *mut bindings::pipe_inode_info,
        len: usize,
        flags: core::ffi::c_uint,
    ) -> isize;
    fn vexfs_backing_mmap(
        backing: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int;
    fn vexfs_acl_create(dir: *mut bindings::inode, inode: *mut bindings::inode) -> c_int;
    fn vexfs_acl_none(inode: *mut bindings::inode);
    fn vexfs_acl_chmod(idmap: *mut bindings::mnt_idmap, dentry: *mut bindings::dentry) -> c_int;
    fn vexfs_acl_names(inode: *mut bindings::inode) -> c_int;
    /// In `vexfs_glue.c`: `inode_operations.set_acl` (tmpfs' `simple_set_acl`,
    /// which is not exported).
    pub(crate) fn vexfs_set_acl(
        idmap: *mut bindings::mnt_idmap,
        dentry: *mut bindings::dentry,
        acl: *mut bindings::posix_acl,
        type_: c_int,
    ) -> c_int;
    /// `generic_setlease()` of `linux/filelock.h`, which is not among the
    /// Rust bindings' headers: file leases as on any local filesystem.
    pub(crate) fn generic_setlease(
        file: *mut bindings::file,
        arg: c_int,
        lease: *mut *mut bindings::file_lease,
        priv_: *mut *mut core::ffi::c_void,
    ) -> c_int;
}

/// Pages of RAM (`totalram_pages()`).
pub(crate) fn totalram_pages() -> u64 {
    // SAFETY: Reads a counter; any context.
    unsafe { vexfs_totalram_pages() }
}

/// Logs `msg` to the mount's `fs_context` (shown by `mount`) and returns
/// `-EINVAL`.
///
/// # Safety
///
/// `fc` is the context of a mount or remount in progress.
pub(crate) unsafe fn invalfc(fc: *mut bindings::fs_context, msg: &'static CStr) -> c_int {
    // SAFETY: `fc` as guaranteed; `msg` is static.
    unsafe { vexfs_invalfc(fc, msg.as_char_ptr()) }
}

/// `uid` as a number in the initial user namespace, where kernel ids are
/// the numbers themselves (for `/proc/mounts`, as tmpfs shows them).
pub(crate) fn uid_in_init_ns(uid: bindings::kuid_t) -> u32 {
    uid.val
}

/// `gid` as a number in the initial user namespace.
pub(crate) fn gid_in_init_ns(gid: bindings::kgid_t) -> u32 {
    gid.val
}

/// `MS_POSIXACL`/`SB_POSIXACL` (uapi `linux/mount.h`; the kernel's `SB_*`
/// flags equal the `MS_*` ones, but its `BIT()` macro hides them from
/// bindgen): the filesystem enforces POSIX ACLs and applies the umask.
pub(crate) const SB_POSIXACL: usize = 1 << 16;

/// `fallocate(2)` modes (uapi `linux/falloc.h`, not in the bindings).
pub(crate) const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
/// See [`FALLOC_FL_KEEP_SIZE`].
pub(crate) const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
/// See [`FALLOC_FL_KEEP_SIZE`].
pub(crate) const FALLOC_FL_ZERO_RANGE: u32 = 0x10;

/// Whether the current task has capability `cap` in the initial user
/// namespace, without an audit record for a refusal (a probe, as tmpfs'
/// listing of `trusted.*` attributes is).
pub(crate) fn capable_noaudit(cap: u32) -> bool {
    // SAFETY: Checks the current task's credentials; `init_user_ns` is
    // static.
    unsafe { bindings::ns_capable_noaudit(&raw mut bindings::init_user_ns, cap as c_int) }
}

/// The private tmpfs instance that holds a mount's file data; unmounted on
/// drop (its files, still open, keep it until they are closed).
pub(crate) struct DataMount(NonNull<bindings::vfsmount>);

// SAFETY: A mount reference may be used and dropped from any task.
unsafe impl Send for DataMount {}
// SAFETY: Every method only reads the pointer; the VFS synchronises.
unsafe impl Sync for DataMount {}

impl DataMount {
    /// Mounts a private tmpfs limited to `blocks` pages (0: unlimited).
    pub(crate) fn new(blocks: u64) -> Result<Self> {
        // SAFETY: Plain call; returns a mount or an ERR_PTR.
        let mnt = unsafe { vexfs_data_mount(blocks) };
        NonNull::new(from_err_ptr(mnt)?).map(Self).ok_or(ENOMEM)
    }

    /// Changes the page limit (remount), or says why not.
    pub(crate) fn resize(&self, blocks: u64) -> core::result::Result<(), &'static CStr> {
        let mut why: *const c_char = core::ptr::null();
        // SAFETY: Our mount; `why` receives a static string on failure.
        let err = unsafe { vexfs_data_mount_resize(self.0.as_ptr(), blocks, &mut why) };
        if err == 0 {
            return Ok(());
        }
        // SAFETY: On failure the glue points `why` at a static C string.
        Err(unsafe { CStr::from_char_ptr(why) })
    }

    /// Fills `buf` for `statfs` of a VexFS mount: the data's block limit
    /// and use from the private tmpfs, the inode figures given here.
    ///
    /// # Safety
    ///
    /// `buf` is the `kstatfs` of a `statfs` in progress.
    pub(crate) unsafe fn statfs(
        &self,
        buf: *mut bindings::kstatfs,
        dev: u32,
        files: u64,
        ffree: u64,
    ) -> Result {
        // SAFETY: Our mount is live; `buf` as guaranteed.
        to_result(unsafe {
            vexfs_statfs_fill(
                buf,
                self.0.as_ptr(),
                u64::from(crate::abi::VEXFS_MAGIC),
                dev,
                files,
                ffree,
            )
        })
    }

    /// A new, empty data file.
    pub(crate) fn new_file(&self) -> Result<DataFile> {
        // SAFETY: Our mount is live.
        let f = from_err_ptr(unsafe { vexfs_data_file(self.0.as_ptr()) })?;
        Ok(DataFile(NonNull::new(f).ok_or(ENOMEM)?))
    }
}

impl Drop for DataMount {
    fn drop(&mut self) {
        // SAFETY: Mounted in `new`; never used again.
        unsafe { bindings::kern_unmount(self.0.as_ptr()) };
    }
}

/// A regular file's data: an open shmem file on the private tmpfs, closed
/// on drop (which frees its pages).
pub(crate) struct DataFile(NonNull<bindings::file>);

// SAFETY: A file reference may be used and dropped from any task.
unsafe impl Send for DataFile {}
// SAFETY: Its methods take the VFS's own locks.
unsafe impl Sync for DataFile {}

impl DataFile {
    fn inode(&self) -> Inode<'_> {
        // SAFETY: An open file pins its inode.
        unsafe { file_inode(self.0.as_ptr()) }
    }

    /// 512-byte blocks in use (tmpfs counts pages).
    pub(crate) fn blocks(&self) -> u64 {
        self.inode().blocks()
    }

    /// Truncates or extends the data to `size` bytes (`notify_change` on
    /// the tmpfs inode, which frees the pages past it).
    pub(crate) fn set_size(&self, size: i64) -> Result {
        // SAFETY: The file's dentry and inode are live while it is open.
        let dentry = unsafe { (*self.0.as_ptr()).__bindgen_anon_1.f_path.dentry };
        // SAFETY: All-zero is a valid `iattr` (no attribute set).
        let mut attr: bindings::iattr = unsafe { core::mem::zeroed() };
        attr.ia_valid = bindings::ATTR_SIZE | bindings::ATTR_FORCE;
        attr.ia_size = size;
        let _lock = self.inode().lock();
        // SAFETY: notify_change() with the inode locked, as it requires; the
        // tmpfs inode is private to us, so no delegation can be pending.
        to_result(unsafe {
            bindings::notify_change(
                &raw mut bindings::nop_mnt_idmap,
                dentry,
                &mut attr,
                core::ptr::null_mut(),
            )
        })
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        // SAFETY: We hold the reference from `new_file`.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}

/// An open VexFS file (borrowed from the VFS for one operation).
#[derive(Clone, Copy)]
pub(crate) struct File<'a> {
    ptr: NonNull<bindings::file>,
    _life: core::marker::PhantomData<&'a bindings::file>,
}

impl<'a> File<'a> {
    /// # Safety
    ///
    /// `file` is an open VexFS file for `'a`.
    pub(crate) unsafe fn from_raw(file: *mut bindings::file) -> Self {
        Self {
            // SAFETY: Guaranteed by the caller: non-null.
            ptr: unsafe { NonNull::new_unchecked(file) },
            _life: core::marker::PhantomData,
        }
    }

    /// The file of an I/O request.
    ///
    /// # Safety
    ///
    /// `iocb` is an I/O request on an open VexFS file, for `'a`.
    pub(crate) unsafe fn of_iocb(iocb: *mut bindings::kiocb) -> Self {
        // SAFETY: Guaranteed by the caller.
        unsafe { Self::from_raw((*iocb).ki_filp) }
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::file {
        self.ptr.as_ptr()
    }

    pub(crate) fn inode(self) -> Inode<'a> {
        // SAFETY: An open file pins its inode.
        unsafe { file_inode(self.as_ptr()) }
    }

    /// Lets `open(O_DIRECT)` succeed (`FMODE_CAN_ODIRECT`), from `open`.
    pub(crate) fn allow_direct_io(self) {
        // SAFETY: The file is being opened by us (f_mode is ours to set).
        unsafe { vexfs_allow_direct_io(self.as_ptr()) };
    }

    /// Keeps `b` as this open file's backing file (`private_data`).
    pub(crate) fn set_backing(self, b: BackingFile) {
        // SAFETY: From `open`, before anyone else uses the file.
        unsafe { (*self.as_ptr()).private_data = b.0.as_ptr().cast() };
        core::mem::forget(b);
    }

    /// Takes back the backing file (from `release`).
    ///
    /// # Safety
    ///
    /// No other operation on the file runs or follows.
    pub(crate) unsafe fn take_backing(self) -> Option<BackingFile> {
        // SAFETY: Guaranteed by the caller.
        let p = unsafe { core::mem::take(&mut (*self.as_ptr()).private_data) };
        NonNull::new(p.cast()).map(BackingFile)
    }

    /// The backing file of an open regular file.
    pub(crate) fn backing(self) -> &'a BackingFile {
        // SAFETY: Set in `open` for every regular file (whose operations
        // are the only callers) and kept until `release`; `BackingFile` is
        // a transparent pointer, so the field can be borrowed as one.
        unsafe { &*(&raw const (*self.as_ptr()).private_data).cast::<BackingFile>() }
    }

    /// Updates mtime and ctime for a write (`file_update_time()`).
    pub(crate) fn update_time(self) -> Result {
        // SAFETY: An open file being written.
        to_result(unsafe { bindings::file_update_time(self.as_ptr()) })
    }

    /// After a change of the file's data other than a write (which the
    /// backing file's write path handles): drops setuid, setgid and file
    /// capabilities as a write would, and updates mtime and ctime
    /// (`file_modified()`). Under the inode lock.
    pub(crate) fn modified(self) -> Result {
        // SAFETY: An open file being changed, its inode locked by the caller.
        to_result(unsafe { bindings::file_modified(self.as_ptr()) })
    }

    /// Updates atime after a read, unless `O_NOATIME` (`file_accessed()`).
    pub(crate) fn accessed(self) {
        // SAFETY: An open file; its path is pinned.
        unsafe {
            if (*self.as_ptr()).f_flags & bindings::O_NOATIME == 0 {
                bindings::touch_atime(&raw const (*self.as_ptr()).__bindgen_anon_1.f_path);
            }
        }
    }

    /// Sets the file position (`vfs_setpos()`), returning it or an errno.
    pub(crate) fn set_pos(self, pos: bindings::loff_t) -> bindings::loff_t {
        // SAFETY: An open file; `i64::MAX` is MAX_LFS_FILESIZE on 64-bit.
        unsafe { bindings::vfs_setpos(self.as_ptr(), pos, i64::MAX) }
    }
}

/// An open file on a regular file's data (`backing_file_open()`): the I/O
/// of one open VexFS file, under the opener's credentials.
#[repr(transparent)]
pub(crate) struct BackingFile(NonNull<bindings::file>);

impl BackingFile {
    /// Opens the data of `user`'s inode with `user`'s flags and
    /// credentials.
    pub(crate) fn open(user: File<'_>, data: &DataFile) -> Result<Self> {
        // SAFETY: `user` is being opened; `data` is open.
        let f = from_err_ptr(unsafe { vexfs_backing_open(user.as_ptr(), data.0.as_ptr()) })?;
        Ok(Self(NonNull::new(f).ok_or(ENOMEM)?))
    }

    /// Size of the data (`i_size`).
    pub(crate) fn size(&self) -> i64 {
        // SAFETY: An open file pins its inode.
        unsafe { file_inode(self.0.as_ptr()) }.size()
    }

    /// # Safety
    ///
    /// Arguments of a VFS `read_iter` on the VexFS file this backs.
    pub(crate) unsafe fn read_iter(
        &self,
        iocb: *mut bindings::kiocb,
        to: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: Guaranteed by the caller.
        unsafe { vexfs_backing_read_iter(self.0.as_ptr(), iocb, to) }
    }

    /// # Safety
    ///
    /// Arguments of a VFS `write_iter` on the VexFS file this backs, with
    /// its inode locked.
    pub(crate) unsafe fn write_iter(
        &self,
        iocb: *mut bindings::kiocb,
        from: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: Guaranteed by the caller.
        unsafe { vexfs_backing_write_iter(self.0.as_ptr(), iocb, from) }
    }

    /// # Safety
    ///
    /// Arguments of a VFS `splice_read` on `user`, the file this backs.
    pub(crate) unsafe fn splice_read(
        &self,
        user: File<'_>,
        ppos: *mut bindings::loff_t,
        pipe: *mut bindings::pipe_inode_info,
        len: usize,
        flags: core::ffi::c_uint,
    ) -> isize {
        // SAFETY: Guaranteed by the caller.
        unsafe { vexfs_backing_splice_read(self.0.as_ptr(), user.as_ptr(), ppos, pipe, len, flags) }
    }

    /// # Safety
    ///
    /// `vma` is the mapping a VFS `mmap` of the file this backs sets up.
    pub(crate) unsafe fn mmap(&self, vma: *mut bindings::vm_area_struct) -> c_int {
        // SAFETY: Guaranteed by the caller.
        unsafe { vexfs_backing_mmap(self.0.as_ptr(), vma) }
    }

    /// `SEEK_DATA` or `SEEK_HOLE` from `offset` in the data.
    pub(crate) fn seek_data_hole(
        &self,
        offset: bindings::loff_t,
        whence: c_int,
    ) -> Result<bindings::loff_t> {
        // SAFETY: An open file; tmpfs answers from its page cache.
        let pos = unsafe { bindings::vfs_llseek(self.0.as_ptr(), offset, whence) };
        if pos < 0 {
            Err(Error::from_errno(pos as c_int))
        } else {
            Ok(pos)
        }
    }

    /// `fallocate(mode, offset, len)` on the data.
    pub(crate) fn fallocate(
        &self,
        mode: u32,
        offset: bindings::loff_t,
        len: bindings::loff_t,
    ) -> Result {
        // SAFETY: An open file (for writing: the VFS checked the VexFS one,
        // and the backing file has its flags).
        to_result(
            unsafe { bindings::vfs_fallocate(self.0.as_ptr(), mode as c_int, offset, len) }
                as c_int,
        )
    }
}

impl Drop for BackingFile {
    fn drop(&mut self) {
        // SAFETY: We hold the reference from `open`.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}

/// A reference to an inode found by number (`ilookup()`), `iput` on drop.
pub(crate) struct InodeRef(NonNull<bindings::inode>);

impl InodeRef {
    pub(crate) fn inode(&self) -> Inode<'_> {
        // SAFETY: We hold a reference.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for InodeRef {
    fn drop(&mut self) {
        // SAFETY: The reference from `ilookup`.
        unsafe { bindings::iput(self.0.as_ptr()) };
    }
}

/// The cached inode `ino` of `sb`, if it is in memory (on VexFS, every
/// inode with a name or an opener is).
pub(crate) fn ilookup(sb: *mut bindings::super_block, ino: u64) -> Option<InodeRef> {
    // SAFETY: `sb` is a mounted superblock (the caller holds a file of it).
    NonNull::new(unsafe { bindings::ilookup(sb, ino) }).map(InodeRef)
}

/// `inode_permission()`: may the current task access `inode` for `mask`
/// through a mount with `idmap`.
pub(crate) fn inode_permission(
    idmap: *mut bindings::mnt_idmap,
    inode: Inode<'_>,
    mask: u32,
) -> Result {
    // SAFETY: `idmap` of a live mount; `inode` live.
    to_result(unsafe { bindings::inode_permission(idmap, inode.as_ptr(), mask as c_int) })
}

/// `check_sticky()`: true if the sticky bit of `dir` forbids the current
/// task to remove (or, for VexFS, change the vector of) `inode`.
pub(crate) fn check_sticky(
    idmap: *mut bindings::mnt_idmap,
    dir: Inode<'_>,
    inode: Inode<'_>,
) -> bool {
    // SAFETY: The inode is live; the mode is read as the VFS reads it.
    let sticky = u32::from(unsafe { (*dir.as_ptr()).i_mode }) & bindings::S_ISVTX != 0;
    // SAFETY: Both inodes are live.
    sticky && unsafe { bindings::__check_sticky(idmap, dir.as_ptr(), inode.as_ptr()) } != 0
}

/// The idmap of the mount an open file was opened through.
pub(crate) fn file_idmap(file: *mut bindings::file) -> *mut bindings::mnt_idmap {
    // SAFETY: An open file pins its mount.
    unsafe { (*(*file).__bindgen_anon_1.f_path.mnt).mnt_idmap }
}

/// Whether `inode` has a name in `dentry`'s directory besides `dentry`
/// (its dcache aliases are its names on VexFS, where every name is a
/// pinned dentry).
///
/// # Safety
///
/// `dentry` is a positive dentry of `inode`, held, with its parent
/// directory locked (so names there do not change).
pub(crate) unsafe fn has_other_name_in_parent(
    inode: Inode<'_>,
    dentry: *mut bindings::dentry,
) -> bool {
    // One link, one name: the common case needs no walk.
    if inode.nlink() <= 1 {
        return false;
    }
    let raw = inode.as_ptr();
    // SAFETY: As guaranteed; the alias list is walked under `i_lock`, as
    // the dcache does, and only pointers are compared.
    unsafe {
        let parent = (*dentry).d_parent;
        bindings::spin_lock(&raw mut (*raw).i_lock);
        let mut found = false;
        let mut node = (*raw).__bindgen_anon_2.i_dentry.first;
        while !node.is_null() {
            let alias: *mut bindings::dentry =
                kernel::container_of!(node, bindings::dentry, __bindgen_anon_2.d_alias);
            if alias != dentry && (*alias).d_parent == parent && !(*alias).d_hash.pprev.is_null() {
                found = true;
                break;
            }
            node = (*node).next;
        }
        bindings::spin_unlock(&raw mut (*raw).i_lock);
        found
    }
}

/// A new negative dentry with the name of another one, in its directory
/// (a rename's whiteout); `dput` on drop.
pub(crate) struct NewDentry(NonNull<bindings::dentry>);

impl NewDentry {
    /// # Safety
    ///
    /// `old` is a held dentry whose directory the caller has locked.
    pub(crate) unsafe fn sibling(old: *mut bindings::dentry) -> Result<Self> {
        // SAFETY: As guaranteed; d_alloc copies the name.
        let d = unsafe {
            bindings::d_alloc((*old).d_parent, &raw const (*old).__bindgen_anon_1.d_name)
        };
        NonNull::new(d).map(Self).ok_or(ENOMEM)
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::dentry {
        self.0.as_ptr()
    }
}

impl Drop for NewDentry {
    fn drop(&mut self) {
        // SAFETY: Our reference from `d_alloc` (an instantiated, persistent
        // dentry keeps its own).
        unsafe { bindings::dput(self.0.as_ptr()) };
    }
}

/// `setattr_prepare()`.
///
/// # Safety
///
/// Arguments of a VFS `setattr` in progress.
pub(crate) unsafe fn setattr_prepare(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    attr: *mut bindings::iattr,
) -> Result {
    // SAFETY: Guaranteed by the caller.
    to_result(unsafe { bindings::setattr_prepare(idmap, dentry, attr) })
}

/// `setattr_copy()`.
///
/// # Safety
///
/// Arguments of a VFS `setattr` in progress, after `setattr_prepare`.
pub(crate) unsafe fn setattr_copy(
    idmap: *mut bindings::mnt_idmap,
    inode: Inode<'_>,
    attr: *mut bindings::iattr,
) {
    // SAFETY: Guaranteed by the caller.
    unsafe { bindings::setattr_copy(idmap, inode.as_ptr(), attr) };
}

/// The access ACL follows a chmod (`posix_acl_chmod()`).
///
/// # Safety
///
/// Arguments of a VFS `setattr` in progress, after the mode changed.
pub(crate) unsafe fn posix_acl_chmod(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    _inode: Inode<'_>,
) -> Result {
    // SAFETY: Guaranteed by the caller.
    to_result(unsafe { vexfs_acl_chmod(idmap, dentry) })
}

/// `generic_fillattr()`.
///
/// # Safety
///
/// Arguments of a VFS `getattr` in progress.
pub(crate) unsafe fn generic_fillattr(
    idmap: *mut bindings::mnt_idmap,
    mask: u32,
    inode: Inode<'_>,
    stat: *mut bindings::kstat,
) {
    // SAFETY: Guaranteed by the caller.
    unsafe { bindings::generic_fillattr(idmap, mask, inode.as_ptr(), stat) };
}

/// [`acl_names`] bit: the inode has an access ACL.
pub(crate) const HAS_ACCESS_ACL: c_int = 1;
/// [`acl_names`] bit: the inode has a default ACL.
pub(crate) const HAS_DEFAULT_ACL: c_int = 2;

/// Which ACLs `inode` has ([`HAS_ACCESS_ACL`], [`HAS_DEFAULT_ACL`]).
pub(crate) fn acl_names(inode: Inode<'_>) -> c_int {
    // SAFETY: The inode is live.
    unsafe { vexfs_acl_names(inode.as_ptr()) }
}

/// ACLs of a new inode from its directory's default ACL (and the umask).
pub(crate) fn acl_create(dir: Inode<'_>, inode: Inode<'_>) -> Result {
    // SAFETY: Both live; `inode` new, not yet visible.
    to_result(unsafe { vexfs_acl_create(dir.as_ptr(), inode.as_ptr()) })
}

/// A new inode without ACLs.
pub(crate) fn acl_none(inode: Inode<'_>) {
    // SAFETY: A live, new inode.
    unsafe { vexfs_acl_none(inode.as_ptr()) };
}

/// A workqueue owned by the module, destroyed (after running what is
/// queued) on drop.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: Workqueues are used from any task.
unsafe impl Send for OwnedQueue {}
// SAFETY: As above.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a static format string without conversions.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(name.as_char_ptr(), bindings::wq_flags_WQ_UNBOUND, 0)
        };
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }

    pub(crate) fn queue(&self) -> &kernel::workqueue::Queue {
        // SAFETY: Valid until drop, which needs `&mut self`.
        unsafe { kernel::workqueue::Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: Ours; destroy_workqueue() runs what is queued first.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}
