// SPDX-License-Identifier: GPL-2.0

//! Inodes: borrowed (`&Inode`), new (`NewInode`, until a dentry takes it)
//! and found by number (`InodeRef`), with the filesystem's per-inode data
//! in `i_private`; ids, idmaps, permission checks and ACLs.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::{NotThreadSafe, Opaque};

use kernel::alloc::flags::GFP_KERNEL_ACCOUNT;

use super::file_ops::FileOpsVTable;
use super::fs::{FileSystem, Fs, SuperBlock};
use super::glue;
use super::inode_ops::InodeOpsVTable;

/// The filesystem's per-inode data.
pub(crate) type InodeData = <Fs as FileSystem>::InodeData;

/// File type bits of `i_mode`.
pub(crate) mod mode {
    use kernel::bindings;

    pub(crate) const S_IFMT: u16 = bindings::S_IFMT as u16;
    pub(crate) const S_IFREG: u16 = bindings::S_IFREG as u16;
    pub(crate) const S_IFDIR: u16 = bindings::S_IFDIR as u16;
    pub(crate) const S_IFLNK: u16 = bindings::S_IFLNK as u16;
    pub(crate) const S_IFCHR: u16 = bindings::S_IFCHR as u16;
    /// The mode and device number of a whiteout (a 0/0 character device,
    /// as overlayfs expects).
    pub(crate) const WHITEOUT: u16 = S_IFCHR | bindings::WHITEOUT_MODE as u16;
    pub(crate) const WHITEOUT_DEV: u32 = bindings::WHITEOUT_DEV;
}

/// Access kinds of a permission check (`MAY_*`).
#[derive(Clone, Copy)]
pub(crate) struct Access(u32);

impl Access {
    pub(crate) const READ: Self = Self(bindings::MAY_READ);
    pub(crate) const WRITE: Self = Self(bindings::MAY_WRITE);
    pub(crate) const EXEC: Self = Self(bindings::MAY_EXEC);
}

/// A user id as the kernel keeps it (`kuid_t`).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Kuid(pub(super) bindings::kuid_t);

/// A group id as the kernel keeps it (`kgid_t`).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Kgid(pub(super) bindings::kgid_t);

impl Kuid {
    /// The number in the initial user namespace, where kernel ids are the
    /// numbers themselves (for `/proc/mounts`, as tmpfs shows them).
    pub(crate) fn in_init_ns(self) -> u32 {
        self.0.val
    }
}

impl Kgid {
    /// See [`Kuid::in_init_ns`].
    pub(crate) fn in_init_ns(self) -> u32 {
        self.0.val
    }
}

/// A time stamp of an inode: seconds and nanoseconds.
#[derive(Clone, Copy, Default)]
pub(crate) struct Timestamp {
    pub(crate) sec: i64,
    pub(crate) nsec: u32,
}

/// What a disk filesystem stores of an inode besides its type and data.
#[derive(Clone, Copy, Default)]
pub(crate) struct StoredAttrs {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) nlink: u32,
    pub(crate) rdev: u32,
    pub(crate) size: i64,
    pub(crate) atime: Timestamp,
    pub(crate) mtime: Timestamp,
    pub(crate) ctime: Timestamp,
}

/// The id mapping of a mount (`struct mnt_idmap`).
#[repr(transparent)]
pub(crate) struct MntIdmap(Opaque<bindings::mnt_idmap>);

impl MntIdmap {
    /// # Safety
    ///
    /// `ptr` points to an idmap that lives for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::mnt_idmap) -> &'a Self {
        // SAFETY: `MntIdmap` is a transparent wrapper; validity as
        // guaranteed by the caller.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::mnt_idmap {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }
}

/// A VFS inode of a VexFS mount, borrowed.
///
/// # Invariants
///
/// The inode is live for the borrow; it belongs to a VexFS superblock and
/// its `i_private` points to its [`InodeData`] (set by [`NewInode::new`]
/// before anyone else can see the inode, freed by `free_inode`).
#[repr(transparent)]
pub(crate) struct Inode(Opaque<bindings::inode>);

impl Inode {
    /// # Safety
    ///
    /// `ptr` points to a live VexFS inode, set up by [`NewInode::new`], for
    /// `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::inode) -> &'a Self {
        // SAFETY: A transparent wrapper; validity as guaranteed.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::inode {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The inode's superblock.
    #[inline]
    pub(crate) fn super_block(&self) -> &SuperBlock {
        // SAFETY: The inode is live; `i_sb` is set at allocation and never
        // changes; a live inode pins its (set up) superblock.
        unsafe { SuperBlock::from_raw((*self.as_raw()).i_sb) }
    }

    /// The filesystem's data of this inode.
    #[inline]
    pub(crate) fn data(&self) -> &InodeData {
        // SAFETY: By the type invariants `i_private` points to the inode's
        // data, which lives as long as the inode.
        unsafe { &*self.private().cast::<InodeData>() }
    }

    /// `i_private`, read atomically (it is set once, before the inode is
    /// visible).
    #[inline]
    pub(super) fn private(&self) -> *mut core::ffi::c_void {
        // SAFETY: `i_private` is a properly aligned pointer field of a live
        // inode, only accessed atomically by VexFS.
        unsafe { AtomicPtr::from_ptr(&raw mut (*self.as_raw()).i_private) }.load(Ordering::Acquire)
    }

    /// Inode number.
    pub(crate) fn ino(&self) -> u64 {
        // SAFETY: The inode is live; i_ino is set at creation.
        unsafe { (*self.as_raw()).i_ino }
    }

    /// `i_mode`: type and permission bits.
    pub(crate) fn mode(&self) -> u16 {
        // SAFETY: The inode is live; a plain read, as the VFS reads it.
        unsafe { (*self.as_raw()).i_mode }
    }

    /// Whether this is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        self.mode() & mode::S_IFMT == mode::S_IFDIR
    }

    /// Whether this is a regular file.
    pub(crate) fn is_reg(&self) -> bool {
        self.mode() & mode::S_IFMT == mode::S_IFREG
    }

    /// The link count.
    pub(crate) fn nlink(&self) -> u32 {
        // SAFETY: The inode is live; a plain read, as `inode->i_nlink` is
        // read everywhere.
        unsafe { (*self.as_raw()).__bindgen_anon_1.i_nlink }
    }

    /// Owner, group, links, device, size and times, as a disk filesystem
    /// writes them back. The caller excludes concurrent changes where it
    /// needs them consistent (VexFS's commit lock).
    pub(crate) fn stored_attrs(&self) -> StoredAttrs {
        let raw = self.as_raw();
        // SAFETY: The inode is live; plain reads of its fields, as the VFS
        // and disk filesystems' `write_inode` read them.
        unsafe {
            StoredAttrs {
                uid: (*raw).i_uid.val,
                gid: (*raw).i_gid.val,
                nlink: (*raw).__bindgen_anon_1.i_nlink,
                rdev: (*raw).i_rdev,
                size: (*raw).i_size,
                atime: Timestamp {
                    sec: (*raw).i_atime_sec,
                    nsec: (*raw).i_atime_nsec,
                },
                mtime: Timestamp {
                    sec: (*raw).i_mtime_sec,
                    nsec: (*raw).i_mtime_nsec,
                },
                ctime: Timestamp {
                    sec: (*raw).i_ctime_sec,
                    nsec: (*raw).i_ctime_nsec,
                },
            }
        }
    }

    /// A symlink's target (without its NUL), [`None`] for other inodes.
    pub(crate) fn symlink_target(&self) -> Option<&[u8]> {
        if self.mode() & mode::S_IFMT != mode::S_IFLNK {
            return None;
        }
        let raw = self.as_raw();
        // SAFETY: A live symlink: `i_link` is the layer's copy of its
        // target (`NewInode::set_link`), `i_size` bytes and a NUL, freed
        // only with the inode.
        unsafe {
            let link = (*raw).__bindgen_anon_5.i_link;
            if link.is_null() {
                return None;
            }
            Some(core::slice::from_raw_parts(
                link.cast::<u8>(),
                (*raw).i_size as usize,
            ))
        }
    }

    /// Increments the link count.
    pub(crate) fn inc_nlink(&self) {
        // SAFETY: The inode is live.
        unsafe { bindings::inc_nlink(self.as_raw()) };
    }

    /// The file size (`i_size`).
    pub(crate) fn size(&self) -> i64 {
        // SAFETY: The inode is live; on 64-bit, i_size_read() is this plain
        // read.
        unsafe { (*self.as_raw()).i_size }
    }

    /// Sets the file size (`i_size_write()`, a plain store on 64-bit); the
    /// caller holds the inode lock.
    pub(crate) fn set_size(&self, size: i64) {
        // SAFETY: The inode is live; writers of i_size hold its lock.
        unsafe { (*self.as_raw()).i_size = size };
    }

    /// Sets the directory's mtime and ctime to now (after a change to its
    /// entries, as POSIX requires).
    pub(crate) fn touch_dir(&self) {
        // SAFETY: The inode is live; callers hold the directory's i_rwsem
        // (directory operations) or own a new inode.
        unsafe {
            let now = bindings::inode_set_ctime_current(self.as_raw());
            (*self.as_raw()).i_mtime_sec = now.tv_sec;
            (*self.as_raw()).i_mtime_nsec = now.tv_nsec as u32;
        }
    }

    /// Sets ctime to now (an attribute changed).
    pub(crate) fn touch_ctime(&self) {
        // SAFETY: The inode is live.
        unsafe { bindings::inode_set_ctime_current(self.as_raw()) };
    }

    /// Holds the inode's `i_rwsem` for writing until the guard drops.
    pub(crate) fn lock(&self) -> InodeLock<'_> {
        // SAFETY: The inode is live; `inode_lock()` is this call.
        unsafe { bindings::down_write(&raw mut (*self.as_raw()).i_rwsem) };
        InodeLock(self, NotThreadSafe)
    }

    /// [`Self::lock`], or `EINTR` if a fatal signal ends the wait
    /// (`inode_lock_killable()`).
    pub(crate) fn lock_killable(&self) -> Result<InodeLock<'_>> {
        // SAFETY: The inode is live; `inode_lock_killable()` is this call.
        if unsafe { bindings::down_write_killable(&raw mut (*self.as_raw()).i_rwsem) } != 0 {
            return Err(EINTR);
        }
        Ok(InodeLock(self, NotThreadSafe))
    }

    /// `inode_permission()`: may the current task access this inode for
    /// `access` through a mount with `idmap`.
    pub(crate) fn permission(&self, idmap: &MntIdmap, access: Access) -> Result {
        // SAFETY: `idmap` of a live mount; the inode is live.
        to_result(unsafe {
            bindings::inode_permission(idmap.as_raw(), self.as_raw(), access.0 as c_int)
        })
    }

    /// Whether this directory's sticky bit forbids the current task to
    /// remove (or, for VexFS, change the vector of) `child`
    /// (`check_sticky()`).
    pub(crate) fn sticky_forbids(&self, idmap: &MntIdmap, child: &Inode) -> bool {
        let sticky = u32::from(self.mode()) & bindings::S_ISVTX != 0;
        // SAFETY: Both inodes are live; `idmap` of a live mount.
        sticky
            && unsafe { bindings::__check_sticky(idmap.as_raw(), self.as_raw(), child.as_raw()) }
                != 0
    }

    /// Which ACLs the inode has: (access, default).
    pub(crate) fn acl_names(&self) -> (bool, bool) {
        // SAFETY: The inode is live.
        let names = unsafe { glue::vexfs_acl_names(self.as_raw()) };
        (names & 1 != 0, names & 2 != 0)
    }

    /// Drops the inode's page cache at eviction.
    pub(super) fn truncate_pages_final(&self) {
        // SAFETY: The inode is being evicted (evict_inode).
        unsafe { bindings::truncate_inode_pages_final(&raw mut (*self.as_raw()).i_data) };
    }

    /// Frees what the layer keeps for the inode: its data and a symlink's
    /// target.
    ///
    /// # Safety
    ///
    /// The inode is dead: evicted, past an RCU grace period.
    pub(super) unsafe fn free_private(&self) {
        let raw = self.as_raw();
        let data = self.private().cast::<InodeData>();
        if !data.is_null() {
            // SAFETY: Leaked in `NewInode::new` from a pinned box; its last
            // use (guaranteed by the caller).
            drop(unsafe { Pin::new_unchecked(KBox::from_raw(data)) });
        }
        // SAFETY: As above; a symlink's `i_link` is only ever set by
        // `set_link`, to a vector of exactly `i_linklen + 1` bytes.
        unsafe {
            let link = (*raw).__bindgen_anon_5.i_link;
            if self.mode() & mode::S_IFMT == mode::S_IFLNK && !link.is_null() {
                let n = (*raw).__bindgen_anon_4.i_linklen as usize + 1;
                drop(KVec::from_raw_parts(link.cast::<u8>(), n, n));
            }
        }
    }

    /// `clear_inode()` at the end of eviction.
    pub(super) fn clear(&self) {
        // SAFETY: The inode is being evicted and its pages are gone.
        unsafe { bindings::clear_inode(self.as_raw()) };
    }
}

/// A held `inode_lock()`.
pub(crate) struct InodeLock<'a>(&'a Inode, NotThreadSafe);

impl Drop for InodeLock<'_> {
    fn drop(&mut self) {
        // SAFETY: We took the lock in `Inode::lock`.
        unsafe { bindings::up_write(&raw mut (*self.0.as_raw()).i_rwsem) };
    }
}

/// Operation tables of a new inode, by kind.
pub(crate) enum Kind {
    /// A regular file or a directory: its inode and file operations (with
    /// backing files for a regular file, without for a directory).
    Node(InodeOpsVTable, FileOpsVTable),
    /// A device, FIFO, socket or whiteout: its inode operations and the
    /// device number (`init_special_inode`).
    Special(InodeOpsVTable, u32),
    /// A symlink whose target is set later ([`NewInode::set_link`]).
    Symlink,
}

/// A new inode reference, dropped with `iput` unless handed to a dentry.
///
/// # Invariants
///
/// We own one reference to a new inode that [`Inode`]'s invariants hold
/// for; nothing else can see it until it is instantiated or hashed.
pub(crate) struct NewInode(NonNull<bindings::inode>);

impl NewInode {
    /// Allocates inode number `ino` on `sb` with its `data`, owned by the
    /// caller's fsuid/fsgid (or the setgid directory's group), with all
    /// three timestamps set to now and `kind`'s operations.
    pub(crate) fn new(
        sb: &SuperBlock,
        ino: u64,
        dir: Option<&Inode>,
        mode: u16,
        kind: Kind,
        data: Pin<KBox<InodeData>>,
    ) -> Result<Self> {
        let ty = mode & mode::S_IFMT;
        let fits = match &kind {
            // `File::backing` trusts this pairing.
            Kind::Node(_, fops) => {
                (ty == mode::S_IFREG) == fops.1 && matches!(ty, mode::S_IFREG | mode::S_IFDIR)
            }
            Kind::Special(..) => !matches!(ty, mode::S_IFREG | mode::S_IFDIR | mode::S_IFLNK),
            Kind::Symlink => ty == mode::S_IFLNK,
        };
        if !fits {
            return Err(EINVAL);
        }
        // SAFETY: `sb` is a live superblock (fill_super, or a directory
        // operation of a mounted filesystem).
        let inode = NonNull::new(unsafe { bindings::new_inode(sb.as_raw()) }).ok_or(ENOMEM)?;
        let raw = inode.as_ptr();
        let dir = dir.map_or(core::ptr::null(), |d| d.as_raw().cast_const());
        // SAFETY: Leaked into `i_private` and freed (pinned, never moved) by
        // `free_inode`, or by eviction below if the inode dies unfinished.
        let data = KBox::into_raw(unsafe { Pin::into_inner_unchecked(data) });
        // SAFETY: `raw` is a fresh inode we own; `dir` is null or a live
        // inode; `nop_mnt_idmap` is the kernel's identity mapping.
        unsafe {
            (*raw).i_ino = ino;
            (*raw).i_private = data.cast();
            bindings::inode_init_owner(&raw mut bindings::nop_mnt_idmap, raw, dir, mode);
            bindings::simple_inode_init_ts(raw);
            match kind {
                Kind::Node(iops, fops) => {
                    (*raw).i_op = iops.0;
                    (*raw).__bindgen_anon_3.i_fop = fops.0;
                }
                Kind::Special(iops, dev) => {
                    (*raw).i_op = iops.0;
                    bindings::init_special_inode(raw, mode, dev);
                }
                Kind::Symlink => {}
            }
        }
        Ok(Self(inode))
    }

    /// Borrows the inode.
    #[inline]
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: We hold a reference; the invariants of `Inode` hold.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }

    /// Sets the owner and group given at mount time (root directory).
    pub(crate) fn set_owner(&self, uid: Option<Kuid>, gid: Option<Kgid>) {
        let raw = self.0.as_ptr();
        // SAFETY: A new inode only we can see.
        unsafe {
            if let Some(uid) = uid {
                (*raw).i_uid = uid.0;
            }
            if let Some(gid) = gid {
                (*raw).i_gid = gid.0;
            }
        }
    }

    /// Sets what a disk filesystem stored of the inode (read at mount),
    /// the device number excepted (given to [`NewInode::new`]).
    pub(crate) fn set_stored_attrs(&self, a: &StoredAttrs) {
        let raw = self.0.as_ptr();
        // SAFETY: A new inode only we can see; `set_nlink` keeps the
        // superblock's count of unlinked inodes right.
        unsafe {
            (*raw).i_uid.val = a.uid;
            (*raw).i_gid.val = a.gid;
            bindings::set_nlink(raw, a.nlink);
            (*raw).i_size = a.size;
            (*raw).i_atime_sec = a.atime.sec;
            (*raw).i_atime_nsec = a.atime.nsec;
            (*raw).i_mtime_sec = a.mtime.sec;
            (*raw).i_mtime_nsec = a.mtime.nsec;
            (*raw).i_ctime_sec = a.ctime.sec;
            (*raw).i_ctime_nsec = a.ctime.nsec;
        }
    }

    /// Sets the permission bits (and set-id and sticky bits) read from
    /// disk; the type stays.
    pub(crate) fn set_mode(&self, mode: u16) {
        let raw = self.0.as_ptr();
        // SAFETY: A new inode only we can see.
        unsafe { (*raw).i_mode = ((*raw).i_mode & mode::S_IFMT) | (mode & !mode::S_IFMT) };
    }

    /// Hashes the complete inode (as [`NewInode::into_hashed`]) and keeps
    /// a counted reference: an inode read from disk, named by
    /// [`LoadingDir::add`](super::dentry::LoadingDir::add) later.
    pub(crate) fn into_loaded(self) -> InodeRef {
        // SAFETY: `into_hashed` hands over our reference, which the new
        // value owns.
        InodeRef(unsafe { NonNull::new_unchecked(self.into_hashed()) })
    }

    /// ACLs of the new inode from its directory's default ACL (and the
    /// umask).
    pub(crate) fn acl_create(&self, dir: &Inode) -> Result {
        // SAFETY: Both live; the inode is new, not yet visible.
        to_result(unsafe { glue::vexfs_acl_create(dir.as_raw(), self.0.as_ptr()) })
    }

    /// The new inode has no ACLs.
    pub(crate) fn acl_none(&self) {
        // SAFETY: A live, new inode.
        unsafe { glue::vexfs_acl_none(self.0.as_ptr()) };
    }

    /// Makes the inode a symlink to `target`, with `iops`: the layer keeps
    /// a copy of the target (freed with the inode, after the RCU grace
    /// period that ends every path walk that could read it), which path
    /// walks follow through `i_link` without a call.
    pub(crate) fn set_link(&self, target: &CStr, iops: InodeOpsVTable) -> Result {
        let raw = self.0.as_ptr();
        // Only once, and only on a symlink: `i_link` shares a union with a
        // device's and a pipe's state.
        // SAFETY: A new inode only we can see.
        let unset = unsafe { (*raw).__bindgen_anon_5.i_link.is_null() };
        if self.inode().mode() & mode::S_IFMT != mode::S_IFLNK || !unset {
            return Err(EINVAL);
        }
        let bytes = target.to_bytes_with_nul();
        let mut copy = KVec::with_capacity(bytes.len(), GFP_KERNEL_ACCOUNT)?;
        copy.extend_from_slice(bytes, GFP_KERNEL_ACCOUNT)?;
        // Exactly `bytes.len()` long and allocated: `free_private` rebuilds
        // it.
        let (ptr, _, _) = copy.into_raw_parts();
        // SAFETY: A new symlink inode we own; the copy is NUL-terminated
        // after `len` bytes (at most PATH_MAX) and lives as long as the
        // inode (see `free_private`).
        unsafe {
            (*raw).i_op = iops.0;
            glue::vexfs_set_cached_link(raw, ptr.cast(), (bytes.len() - 1) as c_int);
            (*raw).i_size = (bytes.len() - 1) as i64;
        }
        Ok(())
    }

    /// Puts the now complete inode in the inode hash, so that it is found
    /// by number ([`InodeRef::lookup`]), and gives up our reference to
    /// whoever takes it over (a dentry); eviction takes it out of the hash.
    pub(super) fn into_hashed(self) -> *mut bindings::inode {
        let raw = self.into_raw();
        // SAFETY: A fresh inode, completely set up, hashed once (`self` is
        // consumed).
        unsafe { bindings::__insert_inode_hash(raw, (*raw).i_ino) };
        raw
    }

    /// Gives up our reference to whoever takes it over.
    fn into_raw(self) -> *mut bindings::inode {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        raw
    }
}

impl Drop for NewInode {
    fn drop(&mut self) {
        // SAFETY: We own one reference to the inode.
        unsafe { bindings::iput(self.0.as_ptr()) };
    }
}

/// A reference to an inode found by number (`ilookup()`), `iput` on drop.
pub(crate) struct InodeRef(NonNull<bindings::inode>);

impl InodeRef {
    /// The cached inode `ino` of `sb`, if it is in memory (on VexFS, every
    /// inode with a name or an opener is).
    pub(crate) fn lookup(sb: &SuperBlock, ino: u64) -> Option<Self> {
        // SAFETY: `sb` is a mounted superblock (borrowed from a live object
        // of it). Only finished (hashed) inodes are found.
        NonNull::new(unsafe { bindings::ilookup(sb.as_raw(), ino) }).map(Self)
    }

    #[inline]
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: We hold a reference to a hashed, hence finished, inode.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for InodeRef {
    fn drop(&mut self) {
        // SAFETY: The reference from `ilookup`.
        unsafe { bindings::iput(self.0.as_ptr()) };
    }
}
