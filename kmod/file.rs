// SPDX-License-Identifier: GPL-2.0

//! File operations of regular files and directories.
//!
//! A regular file's data lives in a shmem file on the mount's private
//! tmpfs (`InodeInfo::data`). Each open of a VexFS file opens a *backing
//! file* on it, as overlayfs and FUSE passthrough do: reads, writes,
//! splices and mappings go there through the kernel's backing-file
//! helpers, so the pages are tmpfs pages (limited by `size=`, charged to
//! the writer's memory cgroup, swappable), while the mapping still shows
//! the VexFS path. VexFS keeps its own inode's size, times and locking;
//! each operation is a named entry point that counts itself and that the
//! eBPF profiler can attach to.

use kernel::prelude::*;

use core::sync::atomic::Ordering::Relaxed;

use crate::abi::Op;
use crate::disk::{self, OpExt, Reserve};
use crate::inode;
use crate::ioctl;
use crate::vfs::entry;
use crate::vfs::file::{falloc, whence, IovIter, OpeningFile, Pipe, Vma};
use crate::vfs::file_ops::{FileEntries, FileOperations, IoctlReturn};
use crate::vfs::{BackingFile, File, Inode, Kiocb};

/// Regular files.
pub(crate) struct RegularFile;
/// Directories: the dcache is the directory, so `dcache_readdir` lists it
/// (with "." and ".."); collections are directories, hence the ioctl.
pub(crate) struct DirFile;

/// The backing file of an open regular file (opened in `open`).
fn backing(file: &File) -> Result<&BackingFile> {
    file.backing().ok_or(EBADF)
}

#[vtable]
impl FileOperations for RegularFile {
    // Each piece through `vexfs_write_iter`, as on tmpfs.
    const SPLICE_WRITE_ITER: bool = true;
    // read_iter, write_iter and fsync through their probe points.
    const ENTRIES: FileEntries = entry::FILE_ENTRIES;

    #[export_name = "vexfs_open"]
    #[inline(never)]
    extern "C" fn open(inode: &Inode, file: OpeningFile<'_>) -> Result {
        inode::sb_info(inode).count(Op::Open);
        file.file().generic_open()?;
        let Some(data) = inode.data().data.as_ref() else {
            return Ok(());
        };
        // Data in memory: O_DIRECT works as on tmpfs (the page cache is the
        // medium).
        file.allow_direct_io();
        file.attach_backing(data)
    }

    extern "C" fn read_iter(iocb: &Kiocb, to: &mut IovIter) -> Result<usize> {
        let f = iocb.file();
        inode::sb_info(f.inode()).count(Op::Read);
        backing(f)?.read_iter(iocb, to)
    }

    /// Under the inode lock, the checks of a generic write against VexFS's
    /// inode (`O_APPEND`, `RLIMIT_FSIZE`, the size limit), then the write
    /// to the data, then the size back.
    extern "C" fn write_iter(iocb: &Kiocb, from: &mut IovIter) -> Result<usize> {
        let f = iocb.file();
        let inode = f.inode();
        inode::sb_info(inode).count(Op::Write);
        let written = {
            let lock = inode.lock();
            let mut op = disk::begin(inode.super_block(), Reserve::INODE)?;
            if iocb.write_checks(from)? == 0 {
                return Ok(0);
            }
            let pos = iocb.pos().max(0) as u64;
            f.update_time()?;
            let n = backing(f)?.write_iter(iocb, from)?;
            op.dirty_data(inode, pos, n as u64);
            drop(op);
            drop(lock);
            n
        };
        // O_SYNC, O_DSYNC, RWF_DSYNC: durable before the call returns (a
        // `sync` mount commits as the operation ends).
        if written > 0 && iocb.dsync() && !inode.super_block().synchronous() {
            if let Some(d) = inode.super_block().data().disk.as_deref() {
                d.commit(inode.super_block())?;
            }
        }
        Ok(written)
    }

    extern "C" fn splice_read(
        file: &File,
        pos: &mut i64,
        pipe: &Pipe,
        len: usize,
        flags: u32,
    ) -> Result<usize> {
        inode::sb_info(file.inode()).count(Op::Read);
        backing(file)?.splice_read(file, pos, pipe, len, flags)
    }

    /// Maps the data's pages (the mapping keeps the VexFS path for
    /// `/proc/PID/maps`).
    #[export_name = "vexfs_mmap"]
    #[inline(never)]
    extern "C" fn mmap(file: &File, vma: &Vma) -> Result {
        inode::sb_info(file.inode()).count(Op::Mmap);
        backing(file)?.mmap(vma)?;
        if vma.shared_writable() {
            file.inode().data().mapped.store(true, Relaxed);
        }
        Ok(())
    }

    /// `SEEK_DATA` and `SEEK_HOLE` ask the data (tmpfs knows its holes);
    /// the rest is generic.
    extern "C" fn llseek(file: &File, offset: i64, whence: i32) -> Result<i64> {
        match whence {
            whence::SEEK_DATA | whence::SEEK_HOLE => {
                let pos = backing(file)?.seek_data_hole(offset, whence)?;
                file.set_pos(pos)
            }
            _ => file.generic_llseek(offset, whence),
        }
    }

    /// Allocation (with or without `FALLOC_FL_KEEP_SIZE`),
    /// `FALLOC_FL_PUNCH_HOLE` and `FALLOC_FL_ZERO_RANGE`, on the data; the
    /// size comes back after.
    #[export_name = "vexfs_fallocate"]
    #[inline(never)]
    extern "C" fn fallocate(file: &File, mode: u32, offset: i64, len: i64) -> Result {
        inode::sb_info(file.inode()).count(Op::Write);
        let keep = mode & falloc::KEEP_SIZE;
        if mode & !(falloc::KEEP_SIZE | falloc::PUNCH_HOLE | falloc::ZERO_RANGE) != 0 {
            return Err(EOPNOTSUPP);
        }
        let inode = file.inode();
        let _lock = inode.lock();
        let mut op = disk::begin(inode.super_block(), Reserve::INODE)?;
        let backing = backing(file)?;
        let zeroes = mode & (falloc::PUNCH_HOLE | falloc::ZERO_RANGE) != 0;
        // Whether the range reads as zeros now (then it is logged so, even
        // if allocating it again fails).
        let mut zeroed = false;
        let result = if mode & falloc::ZERO_RANGE != 0 {
            // tmpfs has no ZERO_RANGE: free the range's pages (holes read as
            // zeros), then allocate it again.
            backing
                .fallocate(falloc::PUNCH_HOLE | falloc::KEEP_SIZE, offset, len)
                .inspect(|()| zeroed = true)
                .and_then(|()| backing.fallocate(keep, offset, len))
        } else {
            backing
                .fallocate(mode, offset, len)
                .inspect(|()| zeroed = zeroes)
        };
        inode.set_size(backing.size());
        let (start, end) = (
            offset.max(0) as u64,
            offset.saturating_add(len).max(0) as u64,
        );
        if zeroed {
            op.zeroed(inode, start, end);
        }
        // Allocation and ZERO_RANGE leave the range allocated: logged, so
        // that a mount reserves it again.
        if result.is_ok() && mode & falloc::PUNCH_HOLE == 0 {
            op.allocated(inode, start, end);
        }
        op.dirty(inode);
        // Before the privileges go: that is a setattr, another operation.
        drop(op);
        // As tmpfs: setuid, setgid and capabilities go, as on a write.
        result.and_then(|()| file.modified())
    }

    /// In memory there is nothing to write back; on a disk, a commit of
    /// everything so far (with all of a file's data if a shared mapping may
    /// have changed it).
    extern "C" fn fsync(file: &File, _start: i64, _end: i64, _datasync: bool) -> Result {
        let inode = file.inode();
        inode::sb_info(inode).count(Op::Fsync);
        let sb = inode.super_block();
        let Some(d) = sb.data().disk.as_deref() else {
            return Ok(());
        };
        if inode.data().mapped.load(Relaxed) {
            let mut op = disk::begin(sb, Reserve::INODE)?;
            op.dirty_data(inode, 0, inode.size().max(0) as u64);
        }
        d.commit(sb)
    }

    extern "C" fn ioctl(file: &File, cmd: u32, arg: usize) -> IoctlReturn {
        ioctl::vexfs_ioctl(file, cmd, arg)
    }
}

#[vtable]
impl FileOperations for DirFile {
    const DCACHE_DIR: bool = true;
    // A regular file's fsync (a commit of the mount), through its probe
    // point.
    const ENTRIES: FileEntries = entry::DIR_FILE_ENTRIES;

    extern "C" fn ioctl(file: &File, cmd: u32, arg: usize) -> IoctlReturn {
        ioctl::vexfs_ioctl(file, cmd, arg)
    }
}
