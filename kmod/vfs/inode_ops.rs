// SPDX-License-Identifier: GPL-2.0

//! `struct inode_operations` from the [`InodeOperations`] trait, each C
//! callback adapted once; and the attributes they work with (`Iattr`,
//! `Kstat`) with the VFS library calls for them.

use core::ffi::CStr;
use core::marker::PhantomData;

use kernel::bindings;
use kernel::error::{to_result, VTABLE_DEFAULT_ERROR};
use kernel::ffi::{c_char, c_int, c_uint};
use kernel::prelude::*;
use kernel::types::Opaque;

use super::dentry::{Child, Dentry, Instantiated, Lookup, LookupName, NewEntry, Removed};
use super::file::{Opened, TmpFile};
use super::glue;
use super::inode::{Inode, MntIdmap};
use super::{count, errno};

/// The operations of one kind of inode (regular files and special files,
/// directories, symlinks): one C table each. Methods not implemented are
/// left out of the table, so the VFS does what it does without them.
#[vtable]
pub(crate) trait InodeOperations: Sized + 'static {
    /// Symlinks: the target is followed through `i_link`, set by
    /// `NewInode::set_link` (`simple_get_link`).
    const LINK_IN_INODE: bool = false;
    /// POSIX ACLs kept in the inode's ACL cache, as tmpfs keeps them.
    const CACHED_ACL: bool = false;
    /// C entry points installed in place of the adapters (see
    /// [`InodeEntries`]).
    const ENTRIES: InodeEntries = InodeEntries::NONE;

    extern "C" fn lookup(_dir: &Inode, _name: LookupName<'_>, _flags: u32) -> Result<Lookup> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn create(
        _idmap: &MntIdmap,
        _dir: &Inode,
        _entry: NewEntry<'_>,
        _mode: u16,
    ) -> Result<Instantiated> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn tmpfile(
        _idmap: &MntIdmap,
        _dir: &Inode,
        _file: TmpFile<'_>,
        _mode: u16,
    ) -> Result<Opened> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn mknod(
        _idmap: &MntIdmap,
        _dir: &Inode,
        _entry: NewEntry<'_>,
        _mode: u16,
        _dev: u32,
    ) -> Result<Instantiated> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// Makes a directory at `entry` (the VFS then uses `entry` itself).
    extern "C" fn mkdir(
        _idmap: &MntIdmap,
        _dir: &Inode,
        _entry: NewEntry<'_>,
        _mode: u16,
    ) -> Result<Instantiated> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn symlink(
        _idmap: &MntIdmap,
        _dir: &Inode,
        _entry: NewEntry<'_>,
        _target: &CStr,
    ) -> Result<Instantiated> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn link(_old: &Dentry, _dir: &Inode, _entry: NewEntry<'_>) -> Result<Instantiated> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn unlink(_dir: &Inode, _child: Child<'_>) -> Result<Removed> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn rmdir(_dir: &Inode, _child: Child<'_>) -> Result<Removed> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn rename(
        _idmap: &MntIdmap,
        _old_dir: &Inode,
        _old: Child<'_>,
        _new_dir: &Inode,
        _new: Child<'_>,
        _flags: u32,
    ) -> Result<Removed> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn setattr(_idmap: &MntIdmap, _dentry: &Dentry, _attr: &mut Iattr) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn getattr(
        _idmap: &MntIdmap,
        _dentry: &Dentry,
        _stat: &mut Kstat,
        _mask: u32,
        _flags: u32,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// Lists extended attribute names, NUL-terminated, into `buf` (or, with
    /// none, counts their bytes).
    extern "C" fn listxattr(_dentry: &Dentry, _buf: Option<&mut [u8]>) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// C functions to install in a table in place of the adapters: the probe
/// points of `entry.rs`, which call back the adapter of the same method.
/// An entry point fills its slot whether or not the type implements the
/// method.
#[derive(Clone, Copy)]
pub(crate) struct InodeEntries {
    pub(crate) lookup: Option<LookupFn>,
    pub(crate) create: Option<CreateFn>,
    pub(crate) unlink: Option<UnlinkFn>,
}

/// `lookup` as C has it.
pub(crate) type LookupFn = unsafe extern "C" fn(
    *mut bindings::inode,
    *mut bindings::dentry,
    c_uint,
) -> *mut bindings::dentry;
/// `create` as C has it.
pub(crate) type CreateFn = unsafe extern "C" fn(
    *mut bindings::mnt_idmap,
    *mut bindings::inode,
    *mut bindings::dentry,
    bindings::umode_t,
) -> c_int;
/// `unlink` as C has it.
pub(crate) type UnlinkFn =
    unsafe extern "C" fn(*mut bindings::inode, *mut bindings::dentry) -> c_int;

impl InodeEntries {
    /// Every slot from the adapters.
    pub(crate) const NONE: Self = Self {
        lookup: None,
        create: None,
        unlink: None,
    };
}

/// A built `inode_operations` table.
#[derive(Clone, Copy)]
pub(crate) struct InodeOpsVTable(pub(super) &'static bindings::inode_operations);

/// The table of `T`.
pub(crate) const fn vtable<T: InodeOperations>() -> InodeOpsVTable {
    InodeOpsVTable(&Adapter::<T>::TABLE)
}

/// The C callbacks of `T`. Each is installed only in the table of an inode
/// of `T`'s kind, so the VFS calls it with the arguments of that operation
/// on VexFS objects: the inodes and dentries are live and held, the parent
/// directory is locked in directory operations (`i_rwsem`, both parents in
/// a rename), and the pointers are valid for the call.
pub(super) struct Adapter<T>(PhantomData<T>);

impl<T: InodeOperations> Adapter<T> {
    const TABLE: bindings::inode_operations = bindings::inode_operations {
        lookup: match T::ENTRIES.lookup {
            Some(entry) => Some(entry),
            None if T::HAS_LOOKUP => Some(Self::lookup),
            None => None,
        },
        create: match T::ENTRIES.create {
            Some(entry) => Some(entry),
            None if T::HAS_CREATE => Some(Self::create),
            None => None,
        },
        tmpfile: if T::HAS_TMPFILE {
            Some(Self::tmpfile)
        } else {
            None
        },
        link: if T::HAS_LINK { Some(Self::link) } else { None },
        unlink: match T::ENTRIES.unlink {
            Some(entry) => Some(entry),
            None if T::HAS_UNLINK => Some(Self::unlink),
            None => None,
        },
        symlink: if T::HAS_SYMLINK {
            Some(Self::symlink)
        } else {
            None
        },
        mkdir: if T::HAS_MKDIR {
            Some(Self::mkdir)
        } else {
            None
        },
        rmdir: if T::HAS_RMDIR {
            Some(Self::rmdir)
        } else {
            None
        },
        mknod: if T::HAS_MKNOD {
            Some(Self::mknod)
        } else {
            None
        },
        rename: if T::HAS_RENAME {
            Some(Self::rename)
        } else {
            None
        },
        setattr: if T::HAS_SETATTR {
            Some(Self::setattr)
        } else {
            None
        },
        getattr: if T::HAS_GETATTR {
            Some(Self::getattr)
        } else {
            None
        },
        listxattr: if T::HAS_LISTXATTR {
            Some(Self::listxattr)
        } else {
            None
        },
        get_link: if T::LINK_IN_INODE {
            Some(bindings::simple_get_link)
        } else {
            None
        },
        set_acl: if T::CACHED_ACL {
            Some(glue::vexfs_set_acl)
        } else {
            None
        },
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// A VFS `lookup` (see [`Adapter`]).
    pub(super) unsafe extern "C" fn lookup(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        flags: c_uint,
    ) -> *mut bindings::dentry {
        // SAFETY: See `Adapter`; `dentry` is the name looked up.
        let r = unsafe { T::lookup(Inode::from_raw(dir), LookupName::from_raw(dentry), flags) };
        match r {
            Ok(found) => found.into_raw(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// A VFS `create` (see [`Adapter`]).
    pub(super) unsafe extern "C" fn create(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
    ) -> c_int {
        // SAFETY: See `Adapter`; `dentry` is negative.
        errno(unsafe {
            T::create(
                MntIdmap::from_raw(idmap),
                Inode::from_raw(dir),
                NewEntry::from_raw(dentry),
                mode,
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `tmpfile` (see [`Adapter`]).
    unsafe extern "C" fn tmpfile(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        file: *mut bindings::file,
        mode: bindings::umode_t,
    ) -> c_int {
        // SAFETY: See `Adapter`; `file` is being opened by O_TMPFILE.
        errno(unsafe {
            T::tmpfile(
                MntIdmap::from_raw(idmap),
                Inode::from_raw(dir),
                TmpFile::from_raw(file),
                mode,
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `mknod` (see [`Adapter`]).
    unsafe extern "C" fn mknod(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
        dev: bindings::dev_t,
    ) -> c_int {
        // SAFETY: See `Adapter`; `dentry` is negative.
        errno(unsafe {
            T::mknod(
                MntIdmap::from_raw(idmap),
                Inode::from_raw(dir),
                NewEntry::from_raw(dentry),
                mode,
                dev,
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `mkdir` (see [`Adapter`]).
    unsafe extern "C" fn mkdir(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
    ) -> *mut bindings::dentry {
        // SAFETY: See `Adapter`; `dentry` is negative.
        let r = unsafe {
            T::mkdir(
                MntIdmap::from_raw(idmap),
                Inode::from_raw(dir),
                NewEntry::from_raw(dentry),
                mode,
            )
        };
        match r {
            // NULL: the dentry passed in is the one now in use.
            Ok(_) => core::ptr::null_mut(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// A VFS `symlink` (see [`Adapter`]).
    unsafe extern "C" fn symlink(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        target: *const c_char,
    ) -> c_int {
        // SAFETY: See `Adapter`; `dentry` is negative; the VFS passes the
        // target as a NUL-terminated kernel string (copied from user space
        // and bounded by PATH_MAX).
        errno(unsafe {
            T::symlink(
                MntIdmap::from_raw(idmap),
                Inode::from_raw(dir),
                NewEntry::from_raw(dentry),
                CStr::from_char_ptr(target),
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `link` (see [`Adapter`]).
    unsafe extern "C" fn link(
        old: *mut bindings::dentry,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
    ) -> c_int {
        // SAFETY: See `Adapter`; `old` is held, `dentry` negative.
        errno(unsafe {
            T::link(
                Dentry::from_raw(old),
                Inode::from_raw(dir),
                NewEntry::from_raw(dentry),
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `unlink` (see [`Adapter`]).
    pub(super) unsafe extern "C" fn unlink(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
    ) -> c_int {
        // SAFETY: See `Adapter`.
        errno(unsafe { T::unlink(Inode::from_raw(dir), Child::from_raw(dentry)) })
    }

    /// # Safety
    ///
    /// A VFS `rmdir` (see [`Adapter`]).
    unsafe extern "C" fn rmdir(dir: *mut bindings::inode, dentry: *mut bindings::dentry) -> c_int {
        // SAFETY: See `Adapter`.
        errno(unsafe { T::rmdir(Inode::from_raw(dir), Child::from_raw(dentry)) })
    }

    /// # Safety
    ///
    /// A VFS `rename` (see [`Adapter`]).
    unsafe extern "C" fn rename(
        idmap: *mut bindings::mnt_idmap,
        old_dir: *mut bindings::inode,
        old: *mut bindings::dentry,
        new_dir: *mut bindings::inode,
        new: *mut bindings::dentry,
        flags: c_uint,
    ) -> c_int {
        // SAFETY: See `Adapter`: the VFS holds both directories locked.
        errno(unsafe {
            T::rename(
                MntIdmap::from_raw(idmap),
                Inode::from_raw(old_dir),
                Child::from_raw(old),
                Inode::from_raw(new_dir),
                Child::from_raw(new),
                flags,
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `setattr` (see [`Adapter`]); the inode is locked.
    unsafe extern "C" fn setattr(
        idmap: *mut bindings::mnt_idmap,
        dentry: *mut bindings::dentry,
        attr: *mut bindings::iattr,
    ) -> c_int {
        // SAFETY: See `Adapter`; the VFS hands us its `iattr` for this call
        // to read and adjust.
        errno(unsafe {
            T::setattr(
                MntIdmap::from_raw(idmap),
                Dentry::from_raw(dentry),
                &mut *attr.cast(),
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `getattr` (see [`Adapter`]).
    unsafe extern "C" fn getattr(
        idmap: *mut bindings::mnt_idmap,
        path: *const bindings::path,
        stat: *mut bindings::kstat,
        mask: u32,
        flags: c_uint,
    ) -> c_int {
        // SAFETY: See `Adapter`; `path` is of our mount and pinned, `stat`
        // ours to fill for the call.
        errno(unsafe {
            T::getattr(
                MntIdmap::from_raw(idmap),
                Dentry::from_raw((*path).dentry),
                &mut *stat.cast(),
                mask,
                flags,
            )
        })
    }

    /// # Safety
    ///
    /// A VFS `listxattr` (see [`Adapter`]).
    unsafe extern "C" fn listxattr(
        dentry: *mut bindings::dentry,
        buffer: *mut c_char,
        size: usize,
    ) -> isize {
        // SAFETY: See `Adapter`; a buffer of `size` bytes, or none when
        // `size` is 0.
        let r = unsafe {
            let buf =
                (size != 0).then(|| core::slice::from_raw_parts_mut(buffer.cast::<u8>(), size));
            T::listxattr(Dentry::from_raw(dentry), buf)
        };
        count(r)
    }
}

/// Attribute changes of a `setattr` (`struct iattr`).
#[repr(transparent)]
pub(crate) struct Iattr(Opaque<bindings::iattr>);

/// `ATTR_*` bits of [`Iattr::valid`].
pub(crate) mod attr {
    pub(crate) const MODE: u32 = kernel::bindings::ATTR_MODE;
    pub(crate) const SIZE: u32 = kernel::bindings::ATTR_SIZE;
    pub(super) const MTIME: u32 = kernel::bindings::ATTR_MTIME;
    pub(super) const CTIME: u32 = kernel::bindings::ATTR_CTIME;
}

impl Iattr {
    fn as_raw(&self) -> *mut bindings::iattr {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// Which attributes change (`ATTR_*`).
    pub(crate) fn valid(&self) -> u32 {
        // SAFETY: Ours for the call.
        unsafe { (*self.as_raw()).ia_valid }
    }

    /// Marks mtime and ctime for update: `notify_change()` sets both
    /// values to the current time for every change.
    pub(crate) fn mark_times(&mut self) {
        // SAFETY: Ours for the call.
        unsafe { (*self.as_raw()).ia_valid |= attr::MTIME | attr::CTIME };
    }

    /// The new size, if the size changes.
    pub(crate) fn size(&self) -> Option<i64> {
        // SAFETY: Ours for the call; `ia_size` is set when `ATTR_SIZE` is.
        (self.valid() & attr::SIZE != 0).then(|| unsafe { (*self.as_raw()).ia_size })
    }
}

/// `setattr_prepare()`: may the change be made.
pub(crate) fn setattr_prepare(idmap: &MntIdmap, dentry: &Dentry, attr: &mut Iattr) -> Result {
    // SAFETY: Live objects; the checks only read the inode.
    to_result(unsafe { bindings::setattr_prepare(idmap.as_raw(), dentry.as_raw(), attr.as_raw()) })
}

/// `setattr_copy()`: copies the changes into the inode, whose lock the
/// caller holds (a `setattr`).
pub(crate) fn setattr_copy(idmap: &MntIdmap, inode: &Inode, attr: &Iattr) {
    // SAFETY: Live objects.
    unsafe { bindings::setattr_copy(idmap.as_raw(), inode.as_raw(), attr.as_raw()) };
}

/// The access ACL follows a chmod (`posix_acl_chmod()`).
pub(crate) fn posix_acl_chmod(idmap: &MntIdmap, dentry: &Dentry) -> Result {
    if dentry.inode().is_none() {
        return Err(ENOENT);
    }
    // SAFETY: A positive, held dentry.
    to_result(unsafe { glue::vexfs_acl_chmod(idmap.as_raw(), dentry.as_raw()) })
}

/// The attributes a `getattr` fills (`struct kstat`).
#[repr(transparent)]
pub(crate) struct Kstat(Opaque<bindings::kstat>);

impl Kstat {
    fn as_raw(&mut self) -> *mut bindings::kstat {
        core::ptr::from_mut(self).cast()
    }

    /// The VFS's attributes of `inode` (`generic_fillattr()`).
    pub(crate) fn fill(&mut self, idmap: &MntIdmap, mask: u32, inode: &Inode) {
        // SAFETY: Live objects; `self` ours for the call.
        unsafe { bindings::generic_fillattr(idmap.as_raw(), mask, inode.as_raw(), self.as_raw()) };
    }

    /// Sets the 512-byte blocks in use.
    pub(crate) fn set_blocks(&mut self, blocks: u64) {
        // SAFETY: Ours for the call.
        unsafe { (*self.as_raw()).blocks = blocks };
    }
}
