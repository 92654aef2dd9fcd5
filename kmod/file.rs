// SPDX-License-Identifier: GPL-2.0

//! File operations of regular files and directories.
//!
//! Data lives in the page cache (ramfs' address space operations), so the
//! generic VFS read, write, mmap and seek paths do the work; VexFS adds its
//! ioctls and counts each operation in a named entry point that the eBPF
//! profiler can attach to.

use kernel::ffi::c_int;

use kernel::bindings;

use crate::abi::Op;
use crate::ioctl::vexfs_ioctl;
use crate::super_block::SbInfo;

/// The mount state of an open file.
///
/// # Safety
///
/// `file` must be an open file of a VexFS mount.
unsafe fn sb_info_of_file<'a>(file: *mut bindings::file) -> &'a SbInfo {
    // SAFETY: An open file pins its inode, which pins its superblock.
    unsafe { SbInfo::of((*(*file).f_inode).i_sb) }
}

/// The mount state of the file a kiocb operates on.
///
/// # Safety
///
/// `iocb` must be an I/O request on an open VexFS file.
unsafe fn sb_info_of_iocb<'a>(iocb: *mut bindings::kiocb) -> &'a SbInfo {
    // SAFETY: Guaranteed by the caller.
    unsafe { sb_info_of_file((*iocb).ki_filp) }
}

/// VFS entry point `vexfs_open`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: The VFS opens one of our files.
    unsafe { sb_info_of_file(file) }.count(Op::Open);
    // SAFETY: Arguments as received from the VFS.
    unsafe { bindings::generic_file_open(inode, file) }
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
    unsafe { sb_info_of_iocb(iocb) }.count(Op::Read);
    // SAFETY: Arguments as received from the VFS.
    unsafe { bindings::generic_file_read_iter(iocb, to) }
}

/// VFS entry point `vexfs_write_iter`.
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
    unsafe { sb_info_of_iocb(iocb) }.count(Op::Write);
    // SAFETY: Arguments as received from the VFS; the generic path takes
    // i_rwsem, updates mtime/ctime, i_size and strips setuid bits.
    unsafe { bindings::generic_file_write_iter(iocb, from) }
}

/// VFS entry point `vexfs_mmap_prepare`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_mmap_prepare(desc: *mut bindings::vm_area_desc) -> c_int {
    // SAFETY: The VFS maps one of our open files.
    unsafe { sb_info_of_file((*desc).file) }.count(Op::Mmap);
    // SAFETY: Arguments as received from the VFS; shared writable mappings
    // dirty page-cache pages, which ramfs' address space operations keep.
    unsafe { bindings::generic_file_mmap_prepare(desc) }
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
    unsafe { sb_info_of_file(file) }.count(Op::Fsync);
    // Memory is the only copy: there is nothing to write back.
    // SAFETY: Arguments as received from the VFS.
    unsafe { bindings::noop_fsync(file, start, end, datasync) }
}

/// Regular files.
pub(crate) const FILE_OPS: bindings::file_operations = bindings::file_operations {
    open: Some(vexfs_open),
    read_iter: Some(vexfs_read_iter),
    write_iter: Some(vexfs_write_iter),
    mmap_prepare: Some(vexfs_mmap_prepare),
    fsync: Some(vexfs_fsync),
    splice_read: Some(bindings::filemap_splice_read),
    splice_write: Some(bindings::iter_file_splice_write),
    // Also answers SEEK_DATA and SEEK_HOLE generically.
    llseek: Some(bindings::generic_file_llseek),
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
    unlocked_ioctl: Some(vexfs_ioctl),
    ..pin_init::zeroed()
};
