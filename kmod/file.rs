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

use kernel::ffi::{c_int, c_long, c_uint};
use kernel::prelude::*;

use kernel::bindings;

use crate::abi::Op;
use crate::inode;
use crate::ioctl::vexfs_ioctl;
use crate::sys::{self, File};

/// VFS entry point `vexfs_open`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: The VFS opens one of our files.
    let f = unsafe { File::from_raw(file) };
    inode::sb_info(f.inode()).count(Op::Open);
    // SAFETY: Arguments as received from the VFS.
    let ret = unsafe { bindings::generic_file_open(inode, file) };
    if ret != 0 {
        return ret;
    }
    let Some(data) = inode::info(f.inode()).data.as_ref() else {
        return 0;
    };
    // Data in memory: O_DIRECT works as on tmpfs (the page cache is the
    // medium).
    f.allow_direct_io();
    match sys::BackingFile::open(f, data) {
        Ok(b) => {
            f.set_backing(b);
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `file_operations.release`: closes the backing file.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: The VFS releases one of our regular files; nothing uses its
    // backing file after this.
    drop(unsafe { File::from_raw(file).take_backing() });
    0
}

/// VFS entry point `vexfs_read_iter`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_read_iter(
    iocb: *mut bindings::kiocb,
    to: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: The VFS reads one of our open files.
    let f = unsafe { File::of_iocb(iocb) };
    inode::sb_info(f.inode()).count(Op::Read);
    // SAFETY: Arguments as received from the VFS; the backing file lives
    // while `f` is open.
    unsafe { f.backing().read_iter(iocb, to) }
}

/// VFS entry point `vexfs_write_iter`: under the inode lock, the checks of
/// a generic write against VexFS's inode (`O_APPEND`, `RLIMIT_FSIZE`, the
/// size limit), then the write to the data, then the size back.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_write_iter(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: The VFS writes one of our open files.
    let f = unsafe { File::of_iocb(iocb) };
    inode::sb_info(f.inode()).count(Op::Write);
    let _lock = f.inode().lock();
    // SAFETY: Arguments as received from the VFS.
    let n = unsafe { bindings::generic_write_checks(iocb, from) };
    if n <= 0 {
        return n;
    }
    if let Err(e) = f.update_time() {
        return e.to_errno() as isize;
    }
    // SAFETY: As above; `vexfs_end_write` copies the new size back.
    unsafe { f.backing().write_iter(iocb, from) }
}

/// `file_operations.splice_read`.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_splice_read(
    file: *mut bindings::file,
    ppos: *mut bindings::loff_t,
    pipe: *mut bindings::pipe_inode_info,
    len: usize,
    flags: c_uint,
) -> isize {
    // SAFETY: The VFS splices from one of our open files.
    let f = unsafe { File::from_raw(file) };
    inode::sb_info(f.inode()).count(Op::Read);
    // SAFETY: Arguments as received from the VFS.
    unsafe { f.backing().splice_read(f, ppos, pipe, len, flags) }
}

/// VFS entry point `vexfs_mmap`: maps the data's pages (the mapping keeps
/// the VexFS path for `/proc/PID/maps`).
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: The VFS maps one of our open files.
    let f = unsafe { File::from_raw(file) };
    inode::sb_info(f.inode()).count(Op::Mmap);
    // SAFETY: Arguments as received from the VFS.
    unsafe { f.backing().mmap(vma) }
}

/// `file_operations.llseek`: `SEEK_DATA` and `SEEK_HOLE` ask the data
/// (tmpfs knows its holes); the rest is generic.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_llseek(
    file: *mut bindings::file,
    offset: bindings::loff_t,
    whence: c_int,
) -> bindings::loff_t {
    // SAFETY: The VFS seeks one of our open files.
    let f = unsafe { File::from_raw(file) };
    match whence as u32 {
        bindings::SEEK_DATA | bindings::SEEK_HOLE => {
            match f.backing().seek_data_hole(offset, whence) {
                Ok(pos) => f.set_pos(pos),
                Err(e) => e.to_errno().into(),
            }
        }
        // SAFETY: Arguments as received from the VFS.
        _ => unsafe { bindings::generic_file_llseek(file, offset, whence) },
    }
}

/// VFS entry point `vexfs_fallocate`: allocation (with or without
/// `FALLOC_FL_KEEP_SIZE`), `FALLOC_FL_PUNCH_HOLE` and
/// `FALLOC_FL_ZERO_RANGE`, on the data; the size comes back after.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_fallocate(
    file: *mut bindings::file,
    mode: c_int,
    offset: bindings::loff_t,
    len: bindings::loff_t,
) -> c_long {
    // SAFETY: The VFS changes one of our open files (opened for writing).
    let f = unsafe { File::from_raw(file) };
    inode::sb_info(f.inode()).count(Op::Write);
    let mode = mode as u32;
    let keep = mode & sys::FALLOC_FL_KEEP_SIZE;
    if mode & !(sys::FALLOC_FL_KEEP_SIZE | sys::FALLOC_FL_PUNCH_HOLE | sys::FALLOC_FL_ZERO_RANGE)
        != 0
    {
        return EOPNOTSUPP.to_errno() as c_long;
    }
    let inode = f.inode();
    let _lock = inode.lock();
    let backing = f.backing();
    let result = if mode & sys::FALLOC_FL_ZERO_RANGE != 0 {
        // tmpfs has no ZERO_RANGE: free the range's pages (holes read as
        // zeros), then allocate it again.
        backing
            .fallocate(
                sys::FALLOC_FL_PUNCH_HOLE | sys::FALLOC_FL_KEEP_SIZE,
                offset,
                len,
            )
            .and_then(|()| backing.fallocate(keep, offset, len))
    } else {
        backing.fallocate(mode, offset, len)
    };
    inode.set_size(backing.size());
    // As tmpfs: setuid, setgid and capabilities go, as on a write.
    let result = result.and_then(|()| f.modified());
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}

/// VFS entry point `vexfs_fsync`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_fsync(
    file: *mut bindings::file,
    start: bindings::loff_t,
    end: bindings::loff_t,
    datasync: c_int,
) -> c_int {
    // SAFETY: The VFS syncs one of our open files.
    inode::sb_info(unsafe { File::from_raw(file) }.inode()).count(Op::Fsync);
    // Memory is the only copy: there is nothing to write back.
    // SAFETY: Arguments as received from the VFS.
    unsafe { bindings::noop_fsync(file, start, end, datasync) }
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
/// ended; the data's size becomes the VexFS file's (under its inode lock).
///
/// # Safety
///
/// Called by the backing-file helpers with the request on the VexFS file.
#[no_mangle]
unsafe extern "C" fn vexfs_end_write(iocb: *mut bindings::kiocb, _ret: isize) {
    // SAFETY: The request's file is an open VexFS regular file.
    let f = unsafe { File::of_iocb(iocb) };
    f.inode().set_size(f.backing().size());
}

/// Regular files.
pub(crate) const FILE_OPS: bindings::file_operations = bindings::file_operations {
    open: Some(vexfs_open),
    release: Some(vexfs_release),
    read_iter: Some(vexfs_read_iter),
    write_iter: Some(vexfs_write_iter),
    splice_read: Some(vexfs_splice_read),
    // Each piece through `vexfs_write_iter`, as on tmpfs: the inode lock
    // is held per piece, never while the splice waits for the pipe.
    splice_write: Some(bindings::iter_file_splice_write),
    mmap: Some(vexfs_mmap),
    llseek: Some(vexfs_llseek),
    fallocate: Some(vexfs_fallocate),
    fsync: Some(vexfs_fsync),
    setlease: Some(sys::generic_setlease),
    unlocked_ioctl: Some(vexfs_ioctl),
    ..pin_init::zeroed()
};

/// Directories: the dcache is the directory, so `dcache_readdir` lists it
/// (with "." and ".."); collections are directories, hence the ioctl.
pub(crate) const DIR_OPS: bindings::file_operations = bindings::file_operations {
    open: Some(bindings::dcache_dir_open),
    release: Some(bindings::dcache_dir_close),
    llseek: Some(bindings::dcache_dir_lseek),
    read: Some(bindings::generic_read_dir),
    iterate_shared: Some(bindings::dcache_readdir),
    fsync: Some(vexfs_fsync),
    setlease: Some(sys::generic_setlease),
    unlocked_ioctl: Some(vexfs_ioctl),
    ..pin_init::zeroed()
};
