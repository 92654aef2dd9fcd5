// SPDX-License-Identifier: GPL-2.0

//! Dentries: borrowed (`&Dentry`), referenced (`DentryRef`), and the two
//! roles a directory operation hands them out in: a negative name to fill
//! (`NewEntry`) and a name in a locked directory (`Child`). Names live in
//! the dcache only, as on ramfs and tmpfs: the VFS library's `simple_*`
//! helpers keep it.

use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::alloc::flags::GFP_KERNEL;
use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::c_uint;
use kernel::prelude::*;
use kernel::types::Opaque;

use super::fs::SuperBlock;
use super::glue;
use super::inode::{Inode, MntIdmap, NewInode};

/// A dentry of a VexFS mount, borrowed.
///
/// # Invariants
///
/// The dentry is live (held) for the borrow.
#[repr(transparent)]
pub(crate) struct Dentry(Opaque<bindings::dentry>);

impl Dentry {
    /// # Safety
    ///
    /// `ptr` points to a held dentry of a VexFS mount for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::dentry) -> &'a Self {
        // SAFETY: A transparent wrapper; validity as guaranteed.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::dentry {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The inode, for a positive dentry.
    #[inline]
    pub(crate) fn inode(&self) -> Option<&Inode> {
        // SAFETY: A held dentry; a positive one pins its inode, which is a
        // VexFS inode set up before it was instantiated.
        unsafe {
            let inode = (*self.as_raw()).d_inode;
            (!inode.is_null()).then(|| Inode::from_raw(inode))
        }
    }

    /// The superblock.
    #[inline]
    pub(crate) fn super_block(&self) -> &SuperBlock {
        // SAFETY: A held dentry pins its superblock, set up (its dentries
        // exist only after fill_super made the root).
        unsafe { SuperBlock::from_raw((*self.as_raw()).d_sb) }
    }

    /// Whether this directory has no entries (`simple_empty()`).
    pub(crate) fn is_empty_dir(&self) -> bool {
        // SAFETY: A held dentry.
        unsafe { bindings::simple_empty(self.as_raw()) != 0 }
    }

    /// A reference to the parent (`dget_parent()`): stable while held, even
    /// if this dentry is renamed meanwhile.
    pub(crate) fn parent(&self) -> DentryRef {
        // SAFETY: dget_parent() returns a referenced, non-null dentry (the
        // dentry itself at a root).
        DentryRef(unsafe { NonNull::new_unchecked(bindings::dget_parent(self.as_raw())) })
    }

    /// Whether this dentry's name lives in `dir`: not unlinked and not
    /// moved elsewhere. Stable while `dir` is locked by the caller.
    pub(crate) fn is_child_of(&self, dir: &Dentry) -> bool {
        // SAFETY: A held dentry; `d_parent` and `d_hash` are read as
        // d_unhashed() reads them.
        unsafe {
            let d = self.as_raw();
            (*d).d_parent == dir.as_raw() && !(*d).d_hash.pprev.is_null()
        }
    }

    /// Whether the directory `dir` is this directory or below it.
    pub(crate) fn has_dir_in_tree(&self, dir: &Dentry) -> bool {
        // SAFETY: Both dentries are held (`is_subdir()`'s requirement).
        unsafe { bindings::is_subdir(dir.as_raw(), self.as_raw()) }
    }

    /// Whether one of `inode`'s names (a non-directory's) lies in the tree
    /// of this directory (the directory itself or any below it).
    pub(crate) fn has_in_tree(&self, inode: &Inode) -> bool {
        // SAFETY: Both dentries are held (`is_subdir()`'s requirement).
        names_of(inode).is_ok_and(|names| {
            names
                .iter()
                .any(|n| unsafe { bindings::is_subdir(n.dentry().as_raw(), self.as_raw()) })
        })
    }
}

/// The longest name of a directory entry (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

impl Dentry {
    /// The name, copied into `buf` under the dentry's lock (a rename may
    /// change it at any time after).
    pub(crate) fn name<'b>(&self, buf: &'b mut [u8; NAME_MAX]) -> &'b [u8] {
        // SAFETY: The dentry is live (borrowed); `buf` holds `NAME_MAX`
        // bytes, the most the glue copies.
        let len = unsafe { glue::vexfs_dentry_name(self.as_raw(), buf.as_mut_ptr()) };
        &buf[..len as usize]
    }

    /// The positive children (names with an inode), each held.
    pub(crate) fn children(&self) -> Result<KVVec<DentryRef>> {
        // SAFETY: The dentry is live; the glue fills at most `max` pointers
        // at `out` with held dentries.
        held_dentries(|out, max| unsafe { glue::vexfs_dentry_children(self.as_raw(), out, max) })
    }

    /// Whether this is its tree's root (its own parent).
    pub(crate) fn is_root(&self) -> bool {
        // SAFETY: A held dentry; `d_parent` is always a valid pointer.
        unsafe { (*self.as_raw()).d_parent == self.as_raw() }
    }

    /// Whether `other` is this very dentry.
    pub(crate) fn is(&self, other: &Dentry) -> bool {
        core::ptr::eq(self, other)
    }

    /// Unhashes the name (`d_drop()`): lookups and alias walks stop
    /// finding it at once, rather than when the VFS deletes it after the
    /// operation (an unlink's `d_delete()` runs after the inode's lock is
    /// released).
    pub(crate) fn drop_hash(&self) {
        // SAFETY: A held dentry.
        unsafe { bindings::d_drop(self.as_raw()) }
    }
}

/// The names of `inode`, a non-directory: its hashed dcache aliases (on
/// VexFS every name is a pinned dentry), each held.
pub(crate) fn names_of(inode: &Inode) -> Result<KVVec<DentryRef>> {
    // SAFETY: The inode is live; the glue fills at most `max` pointers at
    // `out` with held dentries.
    held_dentries(|out, max| unsafe { glue::vexfs_inode_names(inode.as_raw(), out, max) })
}

/// Collects the held dentries a glue walk hands over: `fill(out, max)`
/// stores at most `max` held dentries at `out` and returns how many there
/// are; with too little room, it is called again with more.
fn held_dentries(
    mut fill: impl FnMut(*mut *mut bindings::dentry, c_uint) -> c_uint,
) -> Result<KVVec<DentryRef>> {
    let mut raw: KVVec<*mut bindings::dentry> = KVVec::new();
    let mut out: KVVec<DentryRef> = KVVec::new();
    loop {
        let room = raw.capacity();
        // Room for what the glue may hand over, before it takes references
        // (a failure after would leak them).
        out.reserve(room, GFP_KERNEL)?;
        let n = fill(raw.as_mut_ptr(), room as c_uint) as usize;
        let held = n.min(room);
        for i in 0..held {
            // SAFETY: The glue stored `held` non-null held dentries; each
            // reference moves into one `DentryRef`.
            let d = unsafe { NonNull::new_unchecked(*raw.as_ptr().add(i)) };
            // Cannot fail: the room is reserved (a failure would drop,
            // hence put, the reference).
            let _ = out.push_within_capacity(DentryRef(d));
        }
        if n <= room {
            return Ok(out);
        }
        // Grew since the count: let go and try again with room for more.
        out.clear();
        raw = KVVec::with_capacity(n + n / 4 + 8, GFP_KERNEL)?;
    }
}

/// A directory of a superblock being filled from disk, which nothing else
/// can reach yet: names are added to it without the directory lock.
pub(crate) struct LoadingDir<'a>(NonNull<bindings::dentry>, PhantomData<&'a Dentry>);

impl<'a> LoadingDir<'a> {
    /// Adds the persistent name `name` for `inode` (a hashed inode of the
    /// same superblock, see [`NewInode::into_loaded`]); returns the new
    /// entry, for a directory to add names to.
    pub(crate) fn add(&self, name: &[u8], inode: &Inode) -> Result<LoadingDir<'a>> {
        if name.is_empty()
            || name.len() > NAME_MAX
            || name == b"."
            || name == b".."
            || name.iter().any(|&b| b == b'/' || b == 0)
        {
            return Err(EINVAL);
        }
        // SAFETY: The directory is a live dentry of a superblock being
        // filled, reachable by no one else (type invariant); `name` is
        // valid for `len` bytes; the inode is live and takes a reference
        // of its own.
        let d = unsafe {
            glue::vexfs_dentry_add_persistent(
                self.0.as_ptr(),
                name.as_ptr(),
                name.len() as c_uint,
                inode.as_raw(),
            )
        };
        let d = from_err_ptr(d)?;
        // SAFETY: Kept by its persistent reference until it is unlinked,
        // which cannot happen before the superblock is filled.
        Ok(LoadingDir(
            unsafe { NonNull::new_unchecked(d) },
            PhantomData,
        ))
    }

    /// # Safety
    ///
    /// `ptr` is the root dentry of a superblock being filled, for `'a`.
    pub(super) unsafe fn from_root(ptr: NonNull<bindings::dentry>) -> Self {
        Self(ptr, PhantomData)
    }
}

/// A counted reference to a dentry, `dput` on drop.
pub(crate) struct DentryRef(NonNull<bindings::dentry>);

impl DentryRef {
    #[inline]
    pub(crate) fn dentry(&self) -> &Dentry {
        // SAFETY: We hold a reference.
        unsafe { Dentry::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for DentryRef {
    fn drop(&mut self) {
        // SAFETY: Our reference.
        unsafe { bindings::dput(self.0.as_ptr()) };
    }
}

/// The negative dentry a directory operation fills (create, mknod, mkdir,
/// symlink, link), its parent directory locked for `'a`.
#[repr(transparent)]
pub(crate) struct NewEntry<'a>(NonNull<bindings::dentry>, PhantomData<&'a Dentry>);

impl<'a> NewEntry<'a> {
    /// # Safety
    ///
    /// `ptr` is the negative dentry of a directory operation in progress,
    /// held, with its parent's i_rwsem held, for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw(ptr: *mut bindings::dentry) -> Self {
        // SAFETY: Non-null, as guaranteed.
        Self(unsafe { NonNull::new_unchecked(ptr) }, PhantomData)
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::dentry {
        self.0.as_ptr()
    }

    /// The name being created (stable: the parent is locked).
    pub(crate) fn name<'b>(&self, buf: &'b mut [u8; NAME_MAX]) -> &'b [u8] {
        // SAFETY: A live dentry (type invariant).
        unsafe { Dentry::from_raw(self.as_raw()) }.name(buf)
    }

    /// Hands `inode` (now complete: it goes into the inode hash, where
    /// `InodeRef::lookup` finds it) to the name and pins the dentry in the
    /// dcache for as long as the name exists (in-memory filesystems have no
    /// other copy).
    pub(crate) fn instantiate(self, inode: NewInode) -> Instantiated {
        let inode = inode.into_hashed();
        // SAFETY: A negative dentry of a directory operation, its parent
        // locked (type invariant); our inode reference moves to the dentry.
        unsafe { bindings::d_make_persistent(self.as_raw(), inode) };
        Instantiated(())
    }
}

/// Proof that a directory operation filled its name: what `create`,
/// `mknod`, `mkdir`, `symlink` and `link` return.
pub(crate) struct Instantiated(());

/// Proof that an `unlink`, `rmdir` or `rename` changed the names.
pub(crate) struct Removed(());

/// A name in a directory that the current operation holds locked
/// (unlink, rmdir, rename), for `'a`; the library call that removes or
/// moves it consumes it.
#[repr(transparent)]
pub(crate) struct Child<'a>(&'a Dentry);

impl<'a> Child<'a> {
    /// # Safety
    ///
    /// `ptr` is a held dentry whose parent directory the caller holds
    /// locked for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw(ptr: *mut bindings::dentry) -> Self {
        // SAFETY: As guaranteed.
        Self(unsafe { Dentry::from_raw(ptr) })
    }

    #[inline]
    pub(crate) fn dentry(&self) -> &'a Dentry {
        self.0
    }

    /// The inode, for a positive name.
    #[inline]
    pub(crate) fn inode(&self) -> Option<&'a Inode> {
        self.0.inode()
    }

    /// The directory the name is in (locked by the caller).
    pub(crate) fn parent(&self) -> &'a Dentry {
        // SAFETY: A held dentry whose parent is locked for 'a (type
        // invariant), so it stays its parent and is pinned by it.
        unsafe { Dentry::from_raw((*self.0.as_raw()).d_parent) }
    }

    /// The inode of the directory the name is in.
    fn dir(&self) -> Result<&'a Inode> {
        // SAFETY: A held dentry; its parent is pinned by it, and positive.
        unsafe { Dentry::from_raw((*self.0.as_raw()).d_parent) }
            .inode()
            .ok_or(ENOENT)
    }

    /// A new negative dentry with this name, in the same (locked)
    /// directory: a rename's whiteout.
    pub(crate) fn new_sibling(&self) -> Result<NewDentry<'a>> {
        let old = self.0.as_raw();
        // SAFETY: A held dentry with its directory locked; d_alloc copies
        // the name.
        let d = unsafe {
            bindings::d_alloc((*old).d_parent, &raw const (*old).__bindgen_anon_1.d_name)
        };
        NonNull::new(d)
            .map(|d| NewDentry(d, PhantomData))
            .ok_or(ENOMEM)
    }
}

/// A new negative dentry in a locked directory (see
/// [`Child::new_sibling`]); `dput` on drop (an instantiated, persistent
/// dentry keeps its own reference).
pub(crate) struct NewDentry<'a>(NonNull<bindings::dentry>, PhantomData<&'a Dentry>);

impl NewDentry<'_> {
    /// Hands `inode` to the name and pins the dentry, as
    /// [`NewEntry::instantiate`]; our own reference is dropped after.
    pub(crate) fn instantiate(self, inode: NewInode) -> Instantiated {
        // SAFETY: Negative (only this call fills it, consuming `self`), held
        // by us, its directory locked for `'a`.
        unsafe { NewEntry::from_raw(self.0.as_ptr()) }.instantiate(inode)
    }
}

impl Drop for NewDentry<'_> {
    fn drop(&mut self) {
        // SAFETY: Our reference from `d_alloc`.
        unsafe { bindings::dput(self.0.as_ptr()) };
    }
}

/// The name a lookup asks about: a new, unhashed dentry in a directory
/// the VFS holds locked (shared), for `'a`.
#[repr(transparent)]
pub(crate) struct LookupName<'a>(NonNull<bindings::dentry>, PhantomData<&'a Dentry>);

impl LookupName<'_> {
    /// # Safety
    ///
    /// `ptr` is the dentry of a `lookup` in progress.
    #[inline]
    pub(super) unsafe fn from_raw(ptr: *mut bindings::dentry) -> Self {
        // SAFETY: Non-null, as guaranteed.
        Self(unsafe { NonNull::new_unchecked(ptr) }, PhantomData)
    }
}

/// What a lookup found: a dentry to use instead of the one asked about,
/// or none (the dentry passed in is used).
pub(crate) struct Lookup(*mut bindings::dentry);

impl Lookup {
    pub(super) fn into_raw(self) -> *mut bindings::dentry {
        self.0
    }
}

/// `simple_lookup()`: names live in the dcache only, so a name not there
/// does not exist (a negative dentry).
pub(crate) fn simple_lookup(dir: &Inode, name: LookupName<'_>, flags: u32) -> Result<Lookup> {
    // SAFETY: The arguments of a lookup in progress (`LookupName`).
    let d = unsafe { bindings::simple_lookup(dir.as_raw(), name.0.as_ptr(), flags) };
    kernel::error::from_err_ptr(d).map(Lookup)
}

/// `ENOENT` for a negative name (the VFS passes positive ones; the
/// library helpers below dereference the inode).
fn positive(d: &Dentry) -> Result {
    d.inode().map(|_| ()).ok_or(ENOENT)
}

/// `simple_link()`: a new name for `old`'s inode (not a directory's:
/// `EPERM`); updates nlink and times and pins the new dentry.
pub(crate) fn simple_link(old: &Dentry, dir: &Inode, entry: NewEntry<'_>) -> Result<Instantiated> {
    if old.inode().ok_or(ENOENT)?.is_dir() {
        return Err(EPERM);
    }
    // SAFETY: A link in progress: `old` positive and held, `entry` a
    // negative child of the locked `dir`.
    to_result(unsafe { bindings::simple_link(old.as_raw(), dir.as_raw(), entry.as_raw()) })?;
    Ok(Instantiated(()))
}

/// `simple_unlink()`: drops the link and unpins the dentry.
pub(crate) fn simple_unlink(child: Child<'_>) -> Result<Removed> {
    positive(child.0)?;
    let dir = child.dir()?;
    // SAFETY: `child` is a positive name in its locked directory, unlinked
    // once (consumed).
    to_result(unsafe { bindings::simple_unlink(dir.as_raw(), child.0.as_raw()) })?;
    Ok(Removed(()))
}

/// `simple_rmdir()`: `ENOTEMPTY` unless empty.
pub(crate) fn simple_rmdir(child: Child<'_>) -> Result<Removed> {
    positive(child.0)?;
    let dir = child.dir()?;
    // SAFETY: `child` is a positive name in its locked directory, removed
    // once (consumed).
    to_result(unsafe { bindings::simple_rmdir(dir.as_raw(), child.0.as_raw()) })?;
    Ok(Removed(()))
}

/// `RENAME_*` flags.
pub(crate) mod rename {
    pub(crate) const NOREPLACE: u32 = kernel::bindings::RENAME_NOREPLACE;
    pub(crate) const EXCHANGE: u32 = kernel::bindings::RENAME_EXCHANGE;
    pub(crate) const WHITEOUT: u32 = kernel::bindings::RENAME_WHITEOUT;
}

/// `simple_rename()`: handles `RENAME_NOREPLACE` (the VFS already refused
/// an existing target), `RENAME_EXCHANGE`, overwrite and directory nlinks.
pub(crate) fn simple_rename(
    idmap: &MntIdmap,
    old: Child<'_>,
    new: Child<'_>,
    flags: u32,
) -> Result<Removed> {
    positive(old.0)?;
    let (old_dir, new_dir) = (old.dir()?, new.dir()?);
    // SAFETY: A rename in progress: both directories locked by the VFS,
    // `old` positive, `new` the target name; both consumed.
    to_result(unsafe {
        bindings::simple_rename(
            idmap.as_raw(),
            old_dir.as_raw(),
            old.0.as_raw(),
            new_dir.as_raw(),
            new.0.as_raw(),
            flags,
        )
    })?;
    // The filesystem moves the names itself (`FS_RENAME_DOES_D_MOVE`), so
    // that the rename is whole before the operation ends: a disk mount's
    // checkpoint walks the dcache.
    // SAFETY: Both dentries are held by the rename in progress, their
    // directories locked by the VFS, as `d_move()` and `d_exchange()` need.
    unsafe {
        if flags & rename::EXCHANGE != 0 {
            bindings::d_exchange(old.0.as_raw(), new.0.as_raw());
        } else {
            bindings::d_move(old.0.as_raw(), new.0.as_raw());
        }
    }
    Ok(Removed(()))
}
