// SPDX-License-Identifier: GPL-2.0

//! Open files and their I/O requests: `&File`, `&Kiocb` with its
//! `IovIter`, the pipe of a splice and the mapping of an `mmap`, and write
//! access to a file's mount.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::types::Opaque;

use super::backing::{BackingFile, DataFile};
use super::dentry::Dentry;
use super::fs::SuperBlock;
use super::glue;
use super::inode::{Inode, MntIdmap, NewInode};

/// `lseek` whence values VexFS handles itself.
pub(crate) mod whence {
    pub(crate) const SEEK_DATA: i32 = kernel::bindings::SEEK_DATA as i32;
    pub(crate) const SEEK_HOLE: i32 = kernel::bindings::SEEK_HOLE as i32;
}

/// `fallocate(2)` modes (uapi `linux/falloc.h`, not in the bindings).
pub(crate) mod falloc {
    pub(crate) const KEEP_SIZE: u32 = 0x01;
    pub(crate) const PUNCH_HOLE: u32 = 0x02;
    pub(crate) const ZERO_RANGE: u32 = 0x10;
}

/// An open file of a VexFS mount, borrowed.
///
/// # Invariants
///
/// The file is open for the borrow; a regular file's `private_data` is its
/// [`BackingFile`] from `open` to `release` (set by [`File::set_backing`]).
#[repr(transparent)]
pub(crate) struct File(Opaque<bindings::file>);

impl File {
    /// # Safety
    ///
    /// `ptr` points to an open VexFS file for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::file) -> &'a Self {
        // SAFETY: A transparent wrapper; validity as guaranteed.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::file {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The file's inode.
    #[inline]
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: An open file pins its inode, a VexFS one.
        unsafe { Inode::from_raw((*self.as_raw()).f_inode) }
    }

    /// The dentry the file was opened through.
    #[inline]
    pub(crate) fn dentry(&self) -> &Dentry {
        // SAFETY: An open file pins its path.
        unsafe { Dentry::from_raw((*self.as_raw()).__bindgen_anon_1.f_path.dentry) }
    }

    /// The idmap of the mount the file was opened through.
    #[inline]
    pub(crate) fn idmap(&self) -> &MntIdmap {
        // SAFETY: An open file pins its mount.
        unsafe { MntIdmap::from_raw((*(*self.as_raw()).__bindgen_anon_1.f_path.mnt).mnt_idmap) }
    }

    /// Takes back the backing file (from `release`).
    ///
    /// # Safety
    ///
    /// No other operation on the file runs or follows.
    pub(super) unsafe fn take_backing(&self) -> Option<BackingFile> {
        // SAFETY: Guaranteed by the caller.
        let p = unsafe { core::mem::take(&mut (*self.as_raw()).private_data) };
        // SAFETY: Set from `BackingFile::into_raw` by `set_backing`.
        NonNull::new(p.cast()).map(|p| unsafe { BackingFile::from_raw(p) })
    }

    /// The backing file of an open regular file, if it has one.
    pub(crate) fn backing(&self) -> Option<&BackingFile> {
        // Only regular files have one: other files' `private_data` is not
        // ours (the dcache's cursor of a directory, a device driver's
        // state). `NewInode::new` gives regular files, and only them, a
        // table that attaches and closes backing files.
        if !self.inode().is_reg() {
            return None;
        }
        // SAFETY: A regular file's `private_data` is null or set by
        // `OpeningFile::attach_backing` (type invariant) and kept until
        // `release`; `BackingFile` is a transparent pointer, so the field
        // can be borrowed as one.
        unsafe {
            let field = &raw const (*self.as_raw()).private_data;
            (!(*field).is_null()).then(|| &*field.cast::<BackingFile>())
        }
    }

    /// Updates mtime and ctime for a write (`file_update_time()`).
    pub(crate) fn update_time(&self) -> Result {
        // SAFETY: An open file.
        to_result(unsafe { bindings::file_update_time(self.as_raw()) })
    }

    /// After a change of the file's data other than a write: drops setuid,
    /// setgid and file capabilities as a write would, and updates mtime and
    /// ctime (`file_modified()`). The caller holds the inode lock.
    pub(crate) fn modified(&self) -> Result {
        // SAFETY: An open file.
        to_result(unsafe { bindings::file_modified(self.as_raw()) })
    }

    /// Updates atime after a read, unless `O_NOATIME` (`file_accessed()`).
    pub(crate) fn accessed(&self) {
        // SAFETY: An open file; its path is pinned.
        unsafe {
            if (*self.as_raw()).f_flags & bindings::O_NOATIME == 0 {
                bindings::touch_atime(&raw const (*self.as_raw()).__bindgen_anon_1.f_path);
            }
        }
    }

    /// Sets the file position (`vfs_setpos()`), returning it.
    pub(crate) fn set_pos(&self, pos: i64) -> Result<i64> {
        // SAFETY: An open file; `i64::MAX` is MAX_LFS_FILESIZE on 64-bit.
        let r = unsafe { bindings::vfs_setpos(self.as_raw(), pos, i64::MAX) };
        offset_result(r)
    }

    /// `generic_file_llseek()`.
    pub(crate) fn generic_llseek(&self, offset: i64, whence: i32) -> Result<i64> {
        // SAFETY: An open file.
        offset_result(unsafe { bindings::generic_file_llseek(self.as_raw(), offset, whence) })
    }

    /// `generic_file_open()`: refuses `O_LARGEFILE`-less opens of big files.
    pub(crate) fn generic_open(&self) -> Result {
        // SAFETY: A file being opened, with its inode.
        to_result(unsafe { bindings::generic_file_open(self.inode().as_raw(), self.as_raw()) })
    }
}

/// A file being opened: the argument of `file_operations.open`, which may
/// set it up before anyone else uses it.
#[repr(transparent)]
pub(crate) struct OpeningFile<'a>(&'a File);

impl<'a> OpeningFile<'a> {
    /// # Safety
    ///
    /// `ptr` is the file of a VFS `open` in progress, for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw(ptr: *mut bindings::file) -> Self {
        // SAFETY: As guaranteed.
        Self(unsafe { File::from_raw(ptr) })
    }

    #[inline]
    pub(crate) fn file(&self) -> &'a File {
        self.0
    }

    /// Lets `open(O_DIRECT)` succeed (`FMODE_CAN_ODIRECT`).
    pub(crate) fn allow_direct_io(&self) {
        // SAFETY: The file is being opened: `f_mode` is the opener's to set
        // until the file is installed.
        unsafe { super::glue::vexfs_allow_direct_io(self.0.as_raw()) };
    }

    /// Opens a backing file on `data` with this file's flags and
    /// credentials, kept as this file's until `release` (which only a table
    /// with an `open` adapter has: see [`File::backing`]).
    pub(crate) fn attach_backing(self, data: &DataFile) -> Result {
        let b = BackingFile::open(self.0, data)?;
        // SAFETY: The file is being opened, by this call alone (`self` is
        // consumed): nothing else uses `private_data` yet.
        unsafe { (*self.0.as_raw()).private_data = b.into_raw().cast() };
        Ok(())
    }
}

/// An `loff_t` or a negative errno.
pub(super) fn offset_result(r: i64) -> Result<i64> {
    if r < 0 {
        Err(Error::from_errno(r as i32))
    } else {
        Ok(r)
    }
}

/// A byte count or a negative errno.
pub(super) fn count_result(r: isize) -> Result<usize> {
    if r < 0 {
        Err(Error::from_errno(r as i32))
    } else {
        Ok(r as usize)
    }
}

/// An I/O request on an open VexFS file (`struct kiocb`), borrowed.
#[repr(transparent)]
pub(crate) struct Kiocb(Opaque<bindings::kiocb>);

impl Kiocb {
    /// # Safety
    ///
    /// `ptr` is a request on an open VexFS file, live for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::kiocb) -> &'a Self {
        // SAFETY: A transparent wrapper; validity as guaranteed.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::kiocb {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The file of the request.
    #[inline]
    pub(crate) fn file(&self) -> &File {
        // SAFETY: A request's file is open while it runs.
        unsafe { File::from_raw((*self.as_raw()).ki_filp) }
    }

    /// The file position of the request (after [`Self::write_checks`], where
    /// a write starts).
    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: A live request; a plain read by its own task.
        unsafe { (*self.as_raw()).ki_pos }
    }

    /// Whether the write must be durable when it returns (`O_DSYNC`,
    /// `O_SYNC`, `RWF_DSYNC`, a `sync` mount).
    pub(crate) fn dsync(&self) -> bool {
        // SAFETY: A live request.
        unsafe { glue::vexfs_iocb_is_dsync(self.as_raw()) }
    }

    /// The checks of a generic write (`O_APPEND`, `RLIMIT_FSIZE`, the size
    /// limit), which may shorten `from`: the bytes left to write. The
    /// caller holds the inode lock.
    pub(crate) fn write_checks(&self, from: &mut IovIter) -> Result<usize> {
        // SAFETY: A write request in progress with its iterator.
        count_result(unsafe { bindings::generic_write_checks(self.as_raw(), from.as_raw()) })
    }
}

/// The user buffers of a read or write (`struct iov_iter`), borrowed.
#[repr(transparent)]
pub(crate) struct IovIter(Opaque<bindings::iov_iter>);

impl IovIter {
    /// # Safety
    ///
    /// `ptr` is the iterator of a request in progress, for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::iov_iter) -> &'a mut Self {
        // SAFETY: A transparent wrapper; the request's iterator is ours for
        // the call.
        unsafe { &mut *ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&mut self) -> *mut bindings::iov_iter {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }
}

/// The pipe of a splice, borrowed.
#[repr(transparent)]
pub(crate) struct Pipe(Opaque<bindings::pipe_inode_info>);

impl Pipe {
    /// # Safety
    ///
    /// `ptr` is the pipe of a splice in progress, for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::pipe_inode_info) -> &'a Self {
        // SAFETY: A transparent wrapper.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::pipe_inode_info {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }
}

/// The mapping an `mmap` sets up, borrowed.
#[repr(transparent)]
pub(crate) struct Vma(Opaque<bindings::vm_area_struct>);

impl Vma {
    /// # Safety
    ///
    /// `ptr` is the mapping of an `mmap` in progress, for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::vm_area_struct) -> &'a Self {
        // SAFETY: A transparent wrapper.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(super) fn as_raw(&self) -> *mut bindings::vm_area_struct {
        // A transparent wrapper: its address is the C object\'s (no call
        // to `Opaque::get`, which the compiler may keep out of line).
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// Whether stores through the mapping reach the file (shared, may
    /// write).
    pub(crate) fn shared_writable(&self) -> bool {
        // SAFETY: The mapping of an mmap in progress, live.
        unsafe { glue::vexfs_vma_shared_writable(self.as_raw()) }
    }
}

/// The file an `O_TMPFILE` open is creating, for `'a`.
#[repr(transparent)]
pub(crate) struct TmpFile<'a>(&'a File);

impl<'a> TmpFile<'a> {
    /// # Safety
    ///
    /// `ptr` is the file of a `tmpfile` inode operation in progress.
    #[inline]
    pub(super) unsafe fn from_raw(ptr: *mut bindings::file) -> Self {
        // SAFETY: The file is being opened for `'a`; its path is set.
        Self(unsafe { File::from_raw(ptr) })
    }

    /// Hands `inode` to the file's (unnamed) dentry and finishes the open
    /// (`d_tmpfile()`, `finish_open_simple()`).
    pub(crate) fn finish(self, inode: NewInode) -> Result<Opened> {
        let file = self.0.as_raw();
        let inode = inode.into_hashed();
        // SAFETY: A tmpfile open in progress: its dentry is negative and
        // unhashed; our reference moves to it.
        unsafe {
            bindings::d_tmpfile(file, inode);
            to_result(bindings::finish_open(
                file,
                (*file).__bindgen_anon_1.f_path.dentry,
                None,
            ))?;
        }
        Ok(Opened(()))
    }
}

/// Proof that a `tmpfile` operation opened its file.
pub(crate) struct Opened(());

/// Write access to the mount of an open file (`mnt_want_write_file`), so
/// that changes are refused on read-only (including bind) mounts.
pub(crate) struct WriteAccess<'a>(&'a File);

impl<'a> WriteAccess<'a> {
    /// Takes write access, or fails with `EROFS`.
    pub(crate) fn new(file: &'a File) -> Result<Self> {
        // SAFETY: An open file.
        to_result(unsafe { bindings::mnt_want_write_file(file.as_raw()) })?;
        Ok(Self(file))
    }
}

impl Drop for WriteAccess<'_> {
    fn drop(&mut self) {
        // SAFETY: Pairs with the successful mnt_want_write_file in `new`.
        unsafe { bindings::mnt_drop_write_file(self.0.as_raw()) };
    }
}

/// An open file of this VexFS superblock found by a caller's descriptor
/// (`fget()`), held until dropped (`fput()`).
pub(crate) struct FileRef(NonNull<bindings::file>);

impl FileRef {
    /// The file open as `fd` in the calling task: `EBADF` if there is
    /// none, `EXDEV` if it is not a file of `sb` (another mount or
    /// filesystem).
    pub(crate) fn from_fd(fd: i32, sb: &SuperBlock) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: `fget()` checks the descriptor itself and returns a
        // referenced file or NULL.
        let file = NonNull::new(unsafe { bindings::fget(fd) }).ok_or(EBADF)?;
        let held = Self(file);
        // SAFETY: We hold a reference, so the file and its inode live.
        if unsafe { (*(*file.as_ptr()).f_inode).i_sb } != sb.as_raw() {
            return Err(EXDEV);
        }
        Ok(held)
    }

    /// The file.
    pub(crate) fn file(&self) -> &File {
        // SAFETY: A held file of a VexFS superblock (checked in
        // `from_fd`), open while we hold it.
        unsafe { File::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: The reference `fget()` took.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}
