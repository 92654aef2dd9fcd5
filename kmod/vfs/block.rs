// SPDX-License-Identifier: GPL-2.0

//! Synchronous sector I/O on a block device, through bios.
//!
//! A [`BlockDevice`] is either opened exclusively (for a mount, or on its
//! own) or borrowed from a superblock that the VFS set up on a device. It is
//! read and written in whole logical blocks from [`BlockBuf`]s, the only
//! memory a bio here is built on. Every call sleeps until the device has
//! completed the I/O: process context only.
//!
//! C headers: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h),
//! [`include/linux/bio.h`](srctree/include/linux/bio.h).

use core::{
    marker::PhantomData,
    ops::{
        Deref,
        DerefMut, //
    },
    ptr::{
        self,
        NonNull, //
    },
    slice, //
};

use super::fs::{NewSuperBlock, SuperBlock};
use super::glue::{
    vexfs_bdev_fua, vexfs_bdev_logical_block_size, vexfs_bdev_nr_bytes, vexfs_bdev_read_only,
    vexfs_bdev_write_cache, vexfs_bio_alloc, vexfs_blk_open_mode, vexfs_block_buf_alloc,
    vexfs_write_opf,
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    page::PAGE_SIZE,
    prelude::*,
    sizes::SZ_64K, //
};

/// Which device to open.
pub(crate) enum Source<'a> {
    /// A device node, such as `c"/dev/vda"`, looked up in the caller's
    /// mount namespace.
    Path(&'a CStr),
    /// A device number (`dev_t`).
    Dev(u32),
}

/// How a [`BlockDevice`] lets go of the device.
enum Hold {
    /// Borrowed: the superblock keeps it open.
    Borrowed,
    /// Opened by `bdev_file_open_by_*()`: closed with `bdev_fput()`.
    File(NonNull<bindings::file>),
    /// Opened by `fs_bdev_file_open_by_*()` for a superblock: released
    /// with `fs_bdev_file_release()`.
    SuperFile(NonNull<bindings::file>, NonNull<bindings::super_block>),
}

/// A block device, for synchronous I/O in logical blocks.
///
/// # Invariants
///
/// `bdev` is a live `struct block_device` for `'a`: `hold` owns the open
/// file that keeps it, or it is `s_bdev` of a superblock that lives, with
/// that device, for `'a`.
pub(crate) struct BlockDevice<'a> {
    bdev: NonNull<bindings::block_device>,
    hold: Hold,
    writable: bool,
    _life: PhantomData<&'a bindings::block_device>,
}

// SAFETY: The block layer serialises what it must itself: a device may be
// used, and closed, from any task, and I/O on it submitted concurrently.
unsafe impl Send for BlockDevice<'_> {}
// SAFETY: See `Send`; `&self` methods only read queue limits and submit bios.
unsafe impl Sync for BlockDevice<'_> {}

impl BlockDevice<'static> {
    /// Opens a device exclusively as `holder`'s, for reading and, if `write`,
    /// writing: until it is dropped, no other holder can claim the device.
    ///
    /// `holder` is an identity token only (without holder operations the
    /// kernel compares it, and never reads through it): an object of the
    /// caller's that outlives the open, the same for every open that may
    /// share the device.
    pub(crate) fn open(src: Source<'_>, write: bool, holder: NonNull<c_void>) -> Result<Self> {
        // SAFETY: No preconditions.
        let mode = unsafe { vexfs_blk_open_mode(write) };
        let holder = holder.as_ptr();
        let file = match src {
            // SAFETY: `path` is NUL-terminated and lives across the call;
            // `holder` is non-null, and null holder operations are allowed.
            Source::Path(path) => unsafe {
                bindings::bdev_file_open_by_path(path.as_char_ptr(), mode, holder, ptr::null())
            },
            // SAFETY: As above.
            Source::Dev(dev) => unsafe {
                bindings::bdev_file_open_by_dev(dev, mode, holder, ptr::null())
            },
        };
        let file = NonNull::new(from_err_ptr(file)?).ok_or(ENXIO)?;
        // SAFETY: `file` is a block-device file that the new value owns.
        unsafe { Self::from_file(file, Hold::File(file), write) }
    }
}

impl<'a> BlockDevice<'a> {
    /// Opens a further device of the mount of `sb` (an external log, say)
    /// exclusively as `sb`'s, as the VFS opens `s_bdev`: removal, sync,
    /// freeze and thaw of the device reach `sb`.
    ///
    pub(crate) fn open_for_super(src: Source<'_>, write: bool, sb: &'a SuperBlock) -> Result<Self> {
        let sb = NonNull::new(sb.as_raw()).ok_or(EINVAL)?;
        // SAFETY: No preconditions.
        let mode = unsafe { vexfs_blk_open_mode(write) };
        let (holder, sbp) = (sb.as_ptr().cast(), sb.as_ptr());
        let file = match src {
            // SAFETY: `path` is NUL-terminated and lives across the call;
            // `sb` is live for `'a` and the holder.
            Source::Path(path) => unsafe {
                bindings::fs_bdev_file_open_by_path(path.as_char_ptr(), mode, holder, sbp)
            },
            // SAFETY: As above.
            Source::Dev(dev) => unsafe {
                bindings::fs_bdev_file_open_by_dev(dev, mode, holder, sbp)
            },
        };
        let file = NonNull::new(from_err_ptr(file)?).ok_or(ENXIO)?;
        // SAFETY: `file` is a block-device file opened for `sb`, which lives
        // for `'a`; the new value owns it.
        unsafe { Self::from_file(file, Hold::SuperFile(file, sb), write) }
    }

    /// The device `get_tree_bdev()` opened for a superblock being filled
    /// (`s_bdev`), or [`None`] for one without a device.
    pub(crate) fn from_new_super(sb: &'a NewSuperBlock<'_>) -> Option<Self> {
        // SAFETY: `get_tree_bdev()` sets `s_bdev` before it calls
        // `fill_super`, and keeps the device open until the superblock is
        // killed, after `sb` (borrowed from `fill_super`) is gone.
        unsafe { Self::borrowed((*sb.as_raw()).s_bdev) }
    }

    /// The device the VFS opened for `sb` (`s_bdev`, set up by
    /// `get_tree_bdev()`), or [`None`] for a superblock without one.
    ///
    /// Writes are allowed: whether to make them is the filesystem's choice
    /// (a read-only mount can be remounted read-write).
    ///
    /// `sb` is borrowed from a live object of the mount, so `'a` ends
    /// before the superblock lets go of its device (`kill_block_super()`).
    pub(crate) fn from_super(sb: &'a SuperBlock) -> Option<Self> {
        // SAFETY: `sb` is live; `s_bdev` is set before the filesystem sees
        // the superblock and kept until it is killed.
        unsafe { Self::borrowed((*sb.as_raw()).s_bdev) }
    }

    /// A superblock's device, borrowed.
    ///
    /// # Safety
    ///
    /// `bdev` is null or a device that stays open for `'a`.
    unsafe fn borrowed(bdev: *mut bindings::block_device) -> Option<Self> {
        // INVARIANT: As guaranteed.
        NonNull::new(bdev).map(|bdev| Self {
            bdev,
            hold: Hold::Borrowed,
            writable: true,
            _life: PhantomData,
        })
    }

    /// Wraps a freshly opened block-device file; closes it on failure.
    ///
    /// # Safety
    ///
    /// `file` is an open block-device file, kept open for `'a` by `hold`,
    /// which owns it.
    unsafe fn from_file(file: NonNull<bindings::file>, hold: Hold, write: bool) -> Result<Self> {
        // SAFETY: `file` is an open block-device file; its device, the one
        // of its inode, is never null.
        let bdev = unsafe { NonNull::new_unchecked(bindings::file_bdev(file.as_ptr())) };
        // INVARIANT: `hold` keeps `bdev` open for `'a`.
        let dev = Self {
            bdev,
            hold,
            writable: write,
            _life: PhantomData,
        };
        // `bdev_file_open_by_dev()` leaves this check to its callers.
        if write && dev.read_only() {
            return Err(EACCES);
        }
        Ok(dev)
    }

    /// The logical block size in bytes: the unit of every I/O.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: `self.bdev` is live (type invariant).
        unsafe { vexfs_bdev_logical_block_size(self.bdev.as_ptr()) }
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: `self.bdev` is live (type invariant).
        let bytes = unsafe { vexfs_bdev_nr_bytes(self.bdev.as_ptr()) };
        u64::try_from(bytes).unwrap_or(0)
    }

    /// Whether the device (or its disk) is read-only.
    pub(crate) fn read_only(&self) -> bool {
        // SAFETY: `self.bdev` is live (type invariant).
        unsafe { vexfs_bdev_read_only(self.bdev.as_ptr()) }
    }

    /// Whether the device has a volatile write cache, which [`Self::flush`]
    /// writes back.
    pub(crate) fn write_cache(&self) -> bool {
        // SAFETY: `self.bdev` is live (type invariant).
        unsafe { vexfs_bdev_write_cache(self.bdev.as_ptr()) }
    }

    /// Whether the device implements FUA writes itself (without it, the
    /// block layer emulates one with a flush after the write).
    pub(crate) fn fua(&self) -> bool {
        // SAFETY: `self.bdev` is live (type invariant).
        unsafe { vexfs_bdev_fua(self.bdev.as_ptr()) }
    }

    /// Reads `buf.len()` bytes at byte `offset` into `buf`.
    ///
    /// `offset` and the length are multiples of the logical block size, and
    /// the range lies within the device ([`EINVAL`] otherwise).
    pub(crate) fn read_at(&self, offset: u64, buf: &mut BlockBuf) -> Result {
        // SAFETY: `buf` is borrowed exclusively.
        unsafe { self.submit(bindings::req_op_REQ_OP_READ, offset, buf) }
    }

    /// Writes `buf` at byte `offset`, as [`Self::read_at`] reads; with
    /// `fua`, the data is on stable storage when this returns.
    ///
    /// [`EBADF`] if the device was opened read-only, [`EROFS`] if it is.
    pub(crate) fn write_at(&self, offset: u64, buf: &BlockBuf, fua: bool) -> Result {
        if !self.writable {
            return Err(EBADF);
        }
        if self.read_only() {
            return Err(EROFS);
        }
        // SAFETY: No preconditions.
        let opf = unsafe { vexfs_write_opf(fua) };
        // SAFETY: A write only reads `buf`.
        unsafe { self.submit(opf, offset, buf) }
    }

    /// Writes the device's volatile cache back to stable storage (at once
    /// successful without one).
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: `self.bdev` is live (type invariant).
        to_result(unsafe { bindings::blkdev_issue_flush(self.bdev.as_ptr()) })
    }

    /// Submits one bio of operation `opf` over all of `buf` and waits for it.
    ///
    /// # Safety
    ///
    /// If `opf` reads, nothing else accesses `buf` during the call.
    unsafe fn submit(&self, opf: bindings::blk_opf_t, offset: u64, buf: &BlockBuf) -> Result {
        let lbs = u64::from(self.logical_block_size());
        let len = u64::try_from(buf.len)?;
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if lbs == 0 || offset % lbs != 0 || len % lbs != 0 || end > self.size() {
            return Err(EINVAL);
        }
        let len = u32::try_from(buf.len)?;
        // SAFETY: `self.bdev` is live (type invariant).
        let bio = unsafe { vexfs_bio_alloc(self.bdev.as_ptr(), opf) };
        let bio = NonNull::new(bio).ok_or(ENOMEM)?.as_ptr();
        // SAFETY: `bio` is ours, with room for one vector. `buf.ptr` is
        // directly mapped memory of at least `len` bytes (`BlockBuf`
        // invariant), and stays valid, and for a read unshared (the caller
        // guarantees it), until `submit_bio_wait()` returns, which it does
        // only when the device is done with the memory; the bio is put once.
        let ret = unsafe {
            (*bio).bi_iter.bi_sector = offset >> bindings::SECTOR_SHIFT;
            bindings::bio_add_virt_nofail(bio, buf.ptr.as_ptr().cast(), len);
            let ret = bindings::submit_bio_wait(bio);
            bindings::bio_put(bio);
            ret
        };
        to_result(ret)
    }
}

impl Drop for BlockDevice<'_> {
    fn drop(&mut self) {
        match self.hold {
            Hold::Borrowed => {}
            // SAFETY: `file` was opened by `bdev_file_open_by_*()` and is
            // owned by `self` (type invariant); it is not used again.
            Hold::File(file) => unsafe { bindings::bdev_fput(file.as_ptr()) },
            // SAFETY: `file` was opened by `fs_bdev_file_open_by_*()` for
            // `sb`, which is still live (type invariant), and is owned by
            // `self`; it is not used again.
            Hold::SuperFile(file, sb) => unsafe {
                bindings::fs_bdev_file_release(file.as_ptr(), sb.as_ptr())
            },
        }
    }
}

/// A zero-filled buffer for block I/O: directly mapped pages, so a bio can
/// be built on it.
///
/// # Invariants
///
/// `ptr` is the start of `1 << order` directly mapped, initialised pages
/// from the page allocator that the buffer owns, and `len` is at most their
/// size.
pub(crate) struct BlockBuf {
    ptr: NonNull<u8>,
    len: usize,
    order: u32,
}

// SAFETY: Plain memory, owned by the buffer; no task affinity.
unsafe impl Send for BlockBuf {}
// SAFETY: `&BlockBuf` only reads the memory.
unsafe impl Sync for BlockBuf {}

impl BlockBuf {
    /// The largest buffer: the largest logical block size of the block
    /// layer.
    pub(crate) const MAX_LEN: usize = SZ_64K;

    /// Allocates a zero-filled buffer of `len` bytes, a multiple of 512 up
    /// to [`Self::MAX_LEN`] ([`EINVAL`] otherwise).
    ///
    /// Page-aligned, hence aligned for any logical block size. May sleep;
    /// does not recurse into filesystems to reclaim memory.
    pub(crate) fn new(len: usize) -> Result<Self> {
        if len == 0 || len % bindings::SECTOR_SIZE as usize != 0 || len > Self::MAX_LEN {
            return Err(EINVAL);
        }
        let order = len.div_ceil(PAGE_SIZE).next_power_of_two().trailing_zeros();
        // SAFETY: No preconditions.
        let ptr = NonNull::new(unsafe { vexfs_block_buf_alloc(order) }).ok_or(ENOMEM)?;
        // INVARIANT: `1 << order` zeroed lowmem pages, of at least `len`
        // bytes, now ours.
        Ok(Self {
            ptr: ptr.cast(),
            len,
            order,
        })
    }
}

impl BlockBuf {
    /// Makes the buffer `len` bytes long: a multiple of 512 within what
    /// was allocated ([`EINVAL`] otherwise). Bytes that come back into view
    /// keep what they held.
    pub(crate) fn set_len(&mut self, len: usize) -> Result {
        if len == 0 || len % bindings::SECTOR_SIZE as usize != 0 || len > PAGE_SIZE << self.order {
            return Err(EINVAL);
        }
        // INVARIANT: At most the size of the pages.
        self.len = len;
        Ok(())
    }
}

impl Deref for BlockBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes at `ptr`, owned by `self` (type
        // invariant), borrowed with it.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for BlockBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: As in `deref`, borrowed exclusively with `self`.
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for BlockBuf {
    fn drop(&mut self) {
        // SAFETY: The pages came from `vexfs_block_buf_alloc(self.order)`
        // and are ours (type invariant); no bio uses them once the call that
        // built it has returned.
        unsafe { bindings::free_pages(self.ptr.as_ptr().addr(), self.order) };
    }
}
