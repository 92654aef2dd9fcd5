// SPDX-License-Identifier: GPL-2.0

//! Where regular files' data lives: a private tmpfs instance per mount
//! (`DataMount`), a shmem file per regular file (`DataFile`), and per open
//! of a VexFS file a *backing file* on it (`BackingFile`), through which
//! reads, writes, splices and mappings go with the kernel's backing-file
//! helpers (as overlayfs and FUSE passthrough do).

use core::ffi::CStr;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::{c_char, c_int};
use kernel::prelude::*;

use super::file::{count_result, falloc, offset_result, File, IovIter, Kiocb, Pipe, Vma};
use super::fs::SuperBlock;
use super::glue;

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
        let mnt = unsafe { glue::vexfs_data_mount(blocks) };
        NonNull::new(from_err_ptr(mnt)?).map(Self).ok_or(ENOMEM)
    }

    /// Changes the page limit (remount), or says why not.
    pub(crate) fn resize(&self, blocks: u64) -> core::result::Result<(), &'static CStr> {
        let mut why: *const c_char = core::ptr::null();
        // SAFETY: Our mount; `why` receives a static string on failure.
        let err = unsafe { glue::vexfs_data_mount_resize(self.0.as_ptr(), blocks, &mut why) };
        if err == 0 {
            return Ok(());
        }
        // SAFETY: On failure the glue points `why` at a static C string.
        Err(unsafe { CStr::from_char_ptr(why) })
    }

    /// Fills `buf` for `statfs` of the VexFS mount `sb`: the data's block
    /// limit and use from the private tmpfs, the magic, and the inode
    /// figures given here.
    pub(crate) fn statfs(
        &self,
        buf: &mut Kstatfs,
        sb: &SuperBlock,
        magic: u32,
        files: u64,
        ffree: u64,
    ) -> Result {
        // SAFETY: Our mount is live; `buf` is the buffer of a statfs.
        to_result(unsafe {
            glue::vexfs_statfs_fill(
                buf.0.get(),
                self.0.as_ptr(),
                u64::from(magic),
                sb.dev(),
                files,
                ffree,
            )
        })
    }

    /// A new, empty data file.
    pub(crate) fn new_file(&self) -> Result<DataFile> {
        // SAFETY: Our mount is live.
        let f = from_err_ptr(unsafe { glue::vexfs_data_file(self.0.as_ptr()) })?;
        Ok(DataFile(NonNull::new(f).ok_or(ENOMEM)?))
    }
}

impl Drop for DataMount {
    fn drop(&mut self) {
        // SAFETY: Mounted in `new`; never used again.
        unsafe { bindings::kern_unmount(self.0.as_ptr()) };
    }
}

/// The buffer of a `statfs` (`struct kstatfs`), borrowed.
#[repr(transparent)]
pub(crate) struct Kstatfs(kernel::types::Opaque<bindings::kstatfs>);

impl Kstatfs {
    /// # Safety
    ///
    /// `ptr` is the buffer of a statfs in progress, for `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::kstatfs) -> &'a mut Self {
        // SAFETY: A transparent wrapper; the buffer is ours for the call.
        unsafe { &mut *ptr.cast() }
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
    fn file(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }

    /// The shmem inode.
    fn inode(&self) -> *mut bindings::inode {
        // SAFETY: An open file pins its inode.
        unsafe { (*self.file()).f_inode }
    }

    /// 512-byte blocks in use (tmpfs counts pages).
    pub(crate) fn blocks(&self) -> u64 {
        // SAFETY: The inode is live; a plain read, as stat() does.
        unsafe { (*self.inode()).i_blocks }
    }

    /// Reads up to `buf.len()` bytes at `pos`; returns how many (fewer at
    /// the end of the data).
    pub(crate) fn read_at(&self, pos: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let mut at = (pos + done as u64) as bindings::loff_t;
            let rest = &mut buf[done..];
            // SAFETY: An open file; `rest` is valid for writes of its
            // length for the call.
            let n = unsafe {
                bindings::kernel_read(self.file(), rest.as_mut_ptr().cast(), rest.len(), &mut at)
            };
            let n = count_result(n)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Writes all of `buf` at `pos` (extending the data if needed).
    pub(crate) fn write_at(&self, pos: u64, buf: &[u8]) -> Result {
        let mut done = 0;
        while done < buf.len() {
            let mut at = (pos + done as u64) as bindings::loff_t;
            let rest = &buf[done..];
            // SAFETY: An open, writable file (`new_file`); `rest` is valid
            // for reads of its length for the call.
            let n = unsafe {
                bindings::kernel_write(self.file(), rest.as_ptr().cast(), rest.len(), &mut at)
            };
            match count_result(n)? {
                0 => return Err(EIO),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Frees the pages of `offset..offset + len` (they read as zeros), the
    /// size unchanged.
    pub(crate) fn punch(&self, offset: i64, len: i64) -> Result {
        // SAFETY: An open, writable file; fallocate with these flags
        // frees pages and changes nothing else.
        to_result(unsafe {
            bindings::vfs_fallocate(
                self.file(),
                (falloc::PUNCH_HOLE | falloc::KEEP_SIZE) as i32,
                offset,
                len,
            )
        })
    }

    /// The next run of data that starts before `end`, from `pos` on: the
    /// run from `SEEK_DATA` to `SEEK_HOLE`, cut at `end`; [`None`] if only
    /// holes follow. What is outside the runs reads as zeros and takes no
    /// space, so only the runs are stored.
    pub(crate) fn next_data(&self, pos: u64, end: u64) -> Result<Option<(u64, u64)>> {
        let Some(start) = self.seek(pos, super::file::whence::SEEK_DATA)? else {
            return Ok(None);
        };
        if start >= end {
            return Ok(None);
        }
        // A hole always follows data: the size ends the last run.
        let stop = self
            .seek(start, super::file::whence::SEEK_HOLE)?
            .unwrap_or(end);
        Ok(Some((start, stop.min(end))))
    }

    /// The next run of allocated space at or after byte `pos`, in bytes
    /// (whole pages): written pages and those `fallocate` reserved, in or
    /// past the size; [`None`] if no page follows. Swapped-out pages are
    /// not in it (they are data, which `next_data` finds).
    pub(crate) fn next_allocated(&self, pos: u64) -> Option<(u64, u64)> {
        let shift = super::mem::PAGE_SHIFT;
        let mut index = pos >> shift;
        // SAFETY: An open file; the glue only reads its page cache.
        let pages = unsafe { glue::vexfs_data_next_present(self.file(), &mut index) };
        (pages != 0).then(|| (index << shift, (index + pages) << shift))
    }

    /// Allocates `offset..offset + len` (`fallocate` with
    /// `FALLOC_FL_KEEP_SIZE`): reads as before, takes space.
    pub(crate) fn allocate(&self, offset: i64, len: i64) -> Result {
        // SAFETY: An open, writable file; allocation changes no byte.
        to_result(unsafe {
            bindings::vfs_fallocate(self.file(), falloc::KEEP_SIZE as i32, offset, len)
        })
    }

    /// `SEEK_DATA` or `SEEK_HOLE` from `pos`; [`None`] past the data.
    fn seek(&self, pos: u64, whence: i32) -> Result<Option<u64>> {
        // SAFETY: An open file; llseek on a file private to us changes a
        // position no one else uses.
        let r = unsafe { bindings::vfs_llseek(self.file(), pos as bindings::loff_t, whence) };
        match offset_result(r) {
            Ok(p) => Ok(Some(p as u64)),
            Err(e) if e == ENXIO => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The data's size.
    pub(crate) fn size(&self) -> i64 {
        // SAFETY: The inode is live; a plain read, as `i_size_read()` on
        // 64-bit.
        unsafe { (*self.inode()).i_size }
    }

    /// Truncates or extends the data to `size` bytes (`notify_change` on
    /// the tmpfs inode, which frees the pages past it).
    pub(crate) fn set_size(&self, size: i64) -> Result {
        // SAFETY: The file's dentry and inode are live while it is open.
        let (dentry, inode) =
            unsafe { ((*self.file()).__bindgen_anon_1.f_path.dentry, self.inode()) };
        // SAFETY: All-zero is a valid `iattr` (no attribute set).
        let mut attr: bindings::iattr = unsafe { core::mem::zeroed() };
        attr.ia_valid = bindings::ATTR_SIZE | bindings::ATTR_FORCE;
        attr.ia_size = size;
        // SAFETY: notify_change() with the inode locked (`inode_lock()` is
        // this down_write), as it requires; the tmpfs inode is private to
        // us, so no delegation can be pending.
        unsafe {
            bindings::down_write(&raw mut (*inode).i_rwsem);
            let r = bindings::notify_change(
                &raw mut bindings::nop_mnt_idmap,
                dentry,
                &mut attr,
                core::ptr::null_mut(),
            );
            bindings::up_write(&raw mut (*inode).i_rwsem);
            to_result(r)
        }
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        // SAFETY: We hold the reference from `new_file`.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}

/// An open file on a regular file's data (`backing_file_open()`): the I/O
/// of one open VexFS file, under the opener's credentials.
#[repr(transparent)]
pub(crate) struct BackingFile(NonNull<bindings::file>);

impl BackingFile {
    /// Opens `data` with `user`'s flags and credentials.
    pub(super) fn open(user: &File, data: &DataFile) -> Result<Self> {
        // SAFETY: `user` is open or being opened; `data` is open.
        let f = from_err_ptr(unsafe { glue::vexfs_backing_open(user.as_raw(), data.file()) })?;
        Ok(Self(NonNull::new(f).ok_or(ENOMEM)?))
    }

    /// Closes `user`'s backing file (from `release`).
    ///
    /// # Safety
    ///
    /// No other operation on `user` runs or follows.
    pub(super) unsafe fn close(user: &File) {
        // SAFETY: Guaranteed by the caller.
        drop(unsafe { user.take_backing() });
    }

    pub(super) fn into_raw(self) -> *mut bindings::file {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        raw
    }

    /// # Safety
    ///
    /// `ptr` came from [`Self::into_raw`].
    pub(super) unsafe fn from_raw(ptr: NonNull<bindings::file>) -> Self {
        Self(ptr)
    }

    /// Size of the data (`i_size`).
    pub(crate) fn size(&self) -> i64 {
        // SAFETY: An open file pins its inode; on 64-bit, i_size_read() is
        // this plain read.
        unsafe { (*(*self.0.as_ptr()).f_inode).i_size }
    }

    /// Reads for `iocb`, a read of the VexFS file this backs.
    pub(crate) fn read_iter(&self, iocb: &Kiocb, to: &mut IovIter) -> Result<usize> {
        // SAFETY: A read in progress on the file this backs.
        count_result(unsafe {
            glue::vexfs_backing_read_iter(self.0.as_ptr(), iocb.as_raw(), to.as_raw())
        })
    }

    /// Writes for `iocb`, a write of the VexFS file this backs, whose inode
    /// the caller holds locked; the new size comes back to it.
    pub(crate) fn write_iter(&self, iocb: &Kiocb, from: &mut IovIter) -> Result<usize> {
        // SAFETY: A write in progress on the file this backs; the glue's
        // `end_write` callback copies the size back (see below).
        count_result(unsafe {
            glue::vexfs_backing_write_iter(self.0.as_ptr(), iocb.as_raw(), from.as_raw())
        })
    }

    /// Splices from the data into `pipe` for `user`, the file this backs.
    pub(crate) fn splice_read(
        &self,
        user: &File,
        pos: &mut i64,
        pipe: &Pipe,
        len: usize,
        flags: u32,
    ) -> Result<usize> {
        // SAFETY: A splice in progress on the file this backs.
        count_result(unsafe {
            glue::vexfs_backing_splice_read(
                self.0.as_ptr(),
                user.as_raw(),
                pos,
                pipe.as_raw(),
                len,
                flags,
            )
        })
    }

    /// Maps the data's pages into `vma`, which keeps the VexFS path.
    pub(crate) fn mmap(&self, vma: &Vma) -> Result {
        // SAFETY: An mmap in progress of the file this backs.
        to_result(unsafe { glue::vexfs_backing_mmap(self.0.as_ptr(), vma.as_raw()) })
    }

    /// `SEEK_DATA` or `SEEK_HOLE` from `offset` in the data.
    pub(crate) fn seek_data_hole(&self, offset: i64, whence: i32) -> Result<i64> {
        // SAFETY: An open file; tmpfs answers from its page cache.
        offset_result(unsafe { bindings::vfs_llseek(self.0.as_ptr(), offset, whence) })
    }

    /// `fallocate(mode, offset, len)` on the data.
    pub(crate) fn fallocate(&self, mode: u32, offset: i64, len: i64) -> Result {
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

/// Backing-file callback (from the C glue): the VexFS file was read or
/// mapped; update its access time as `file_accessed()` does.
///
/// # Safety
///
/// Called by the backing-file helpers with the VexFS file of the request.
#[no_mangle]
unsafe extern "C" fn vexfs_file_accessed(file: *mut bindings::file) {
    // SAFETY: An open VexFS file, per the caller.
    unsafe { File::from_raw(file) }.accessed();
}

/// Backing-file callback (from the C glue): a write or splice to the data
/// ended; the data's size becomes the VexFS file's (under its inode lock,
/// which the writer holds).
///
/// # Safety
///
/// Called by the backing-file helpers with the request on the VexFS file.
#[no_mangle]
unsafe extern "C" fn vexfs_end_write(iocb: *mut bindings::kiocb, _ret: isize) {
    // SAFETY: The request's file is an open VexFS regular file.
    let f = unsafe { Kiocb::from_raw(iocb) }.file();
    if let Some(b) = f.backing() {
        f.inode().set_size(b.size());
    }
}
