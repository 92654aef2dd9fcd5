// SPDX-License-Identifier: GPL-2.0

//! The probe points: VexFS's VFS and ioctl entry points and its FPU
//! sections, routed through one-line C functions (`kmod/vexfs_entry.c`).
//!
//! A C function of the module has an ftrace entry (`__fentry__`) and BTF, a
//! Rust one has neither, so only C functions can take BPF trampolines
//! (fentry, fexit, fsession), which cost a direct call when attached and a
//! NOP when not; a Rust function can only take a kprobe, a trap per call.
//! The profiler attaches to the C names (`vexfs_lookup`, ...); each calls
//! back the `*_rs` function of the same name here, which is the ordinary
//! adapter or handler.
//!
//! The file operations and SIMD batches also fire their `vexfs_*_done`
//! tracepoint (`trace.rs`) here as they return, for tools that would
//! rather run once per operation than at its entry and return (the vector
//! ioctls fire theirs where their request is read, `vector_ioctl.rs`).
//!
//! This is the one file of the VFS layer that names the filesystem's own
//! types: the probe points are VexFS's.

use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::ffi::{c_int, c_long, c_uint, c_ulong, c_void};

use super::cpu::Fpu;
use super::file::{File, Kiocb};
use super::file_ops::{self, FileEntries, IoctlReturn};
use super::inode::Inode;
use super::inode_ops::{self, InodeEntries};
use super::trace::{self, Timer};
use crate::file::RegularFile;
use crate::inode::DirInode;

// The entry points' prototypes use kernel structures that bindgen made
// opaque; only pointers to them cross, as in the kernel's own bindings.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn vexfs_lookup(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        flags: c_uint,
    ) -> *mut bindings::dentry;
    fn vexfs_create(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
    ) -> c_int;
    fn vexfs_unlink(dir: *mut bindings::inode, dentry: *mut bindings::dentry) -> c_int;
    fn vexfs_read_iter(iocb: *mut bindings::kiocb, to: *mut bindings::iov_iter) -> isize;
    fn vexfs_write_iter(iocb: *mut bindings::kiocb, from: *mut bindings::iov_iter) -> isize;
    fn vexfs_fsync(
        file: *mut bindings::file,
        start: bindings::loff_t,
        end: bindings::loff_t,
        datasync: c_int,
    ) -> c_int;
    fn vexfs_ioctl_insert(file: *mut bindings::file, arg: c_ulong) -> c_long;
    fn vexfs_ioctl_delete(file: *mut bindings::file, arg: c_ulong) -> c_long;
    fn vexfs_ioctl_search(file: *mut bindings::file, arg: c_ulong) -> c_long;
    fn vexfs_simd_batch(floats: usize, work: *mut c_void);
}

/// The entry points of open regular files.
pub(crate) const FILE_ENTRIES: FileEntries = FileEntries {
    read_iter: Some(vexfs_read_iter),
    write_iter: Some(vexfs_write_iter),
    fsync: Some(vexfs_fsync),
};

/// The entry points of open directories.
pub(crate) const DIR_FILE_ENTRIES: FileEntries = FileEntries {
    fsync: Some(vexfs_fsync),
    ..FileEntries::NONE
};

/// The entry points of directory inodes.
pub(crate) const DIR_ENTRIES: InodeEntries = InodeEntries {
    lookup: Some(vexfs_lookup),
    create: Some(vexfs_create),
    unlink: Some(vexfs_unlink),
};

/// The three vector ioctls, each through its probe point.
#[derive(Clone, Copy)]
pub(crate) enum VectorIoctl {
    Insert,
    Delete,
    Search,
}

/// Runs the vector ioctl `which` on `file` through its probe point.
#[inline]
pub(crate) fn vector_ioctl(which: VectorIoctl, file: &File, arg: usize) -> IoctlReturn {
    let entry = match which {
        VectorIoctl::Insert => vexfs_ioctl_insert,
        VectorIoctl::Delete => vexfs_ioctl_delete,
        VectorIoctl::Search => vexfs_ioctl_search,
    };
    // SAFETY: The entry point passes the open file and the argument back
    // unchanged to the handler below, within this call.
    IoctlReturn::from_c(unsafe { entry(file.as_raw(), arg as c_ulong) })
}

/// Runs `work` as one SIMD batch over `floats` values through the probe
/// point `vexfs_simd_batch`; the count is for probes (the batch's size).
pub(crate) fn simd_batch(floats: usize, work: &mut dyn FnMut(&Fpu)) {
    let mut work = work;
    let work: *mut &mut dyn FnMut(&Fpu) = &mut work;
    // SAFETY: `vexfs_simd_batch_rs` gets `work` back unchanged, while it
    // still points to the closure borrowed above.
    unsafe { vexfs_simd_batch(floats, work.cast()) }
}

/// What a file operation's event says: the mount's device, the inode and
/// what the operation returned.
fn event_of(inode: &Inode, ret: i64) -> (u32, u64, i64) {
    let (dev, ino) = trace::inode_id(inode);
    (dev, ino, ret)
}

/// Fires a file operation's event `fire` if `timer` was started, with what
/// `event` says (evaluated only then).
#[inline(always)]
fn op_done(
    timer: Timer,
    fire: fn(bindings::dev_t, u64, i64, u64),
    event: impl FnOnce() -> (u32, u64, i64),
) {
    if let Some(ns) = timer.elapsed_ns() {
        let (dev, ino, ret) = event();
        fire(dev, ino, ret, ns);
    }
}

/// # Safety
///
/// Only `vexfs_lookup` calls this, from the `lookup` slot of directory
/// tables, with the VFS's arguments.
#[no_mangle]
unsafe extern "C" fn vexfs_lookup_rs(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    flags: c_uint,
) -> *mut bindings::dentry {
    let timer = Timer::start(trace::vexfs_lookup_done::enabled());
    // SAFETY: As the caller guarantees.
    let found = unsafe { inode_ops::Adapter::<DirInode>::lookup(dir, dentry, flags) };
    op_done(timer, trace::vexfs_lookup_done::fire, || {
        // An error pointer's errno, else 0 (a dentry or NULL).
        let ret = trace::ret_of(&from_err_ptr(found));
        // SAFETY: The caller's directory, live for the call.
        event_of(unsafe { Inode::from_raw(dir) }, ret)
    });
    found
}

/// # Safety
///
/// Only `vexfs_create` calls this, from the `create` slot of directory
/// tables, with the VFS's arguments.
#[no_mangle]
unsafe extern "C" fn vexfs_create_rs(
    idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
) -> c_int {
    let timer = Timer::start(trace::vexfs_create_done::enabled());
    // SAFETY: As the caller guarantees.
    let ret = unsafe { inode_ops::Adapter::<DirInode>::create(idmap, dir, dentry, mode) };
    op_done(timer, trace::vexfs_create_done::fire, || {
        // SAFETY: The caller's directory, live for the call.
        event_of(unsafe { Inode::from_raw(dir) }, ret.into())
    });
    ret
}

/// # Safety
///
/// Only `vexfs_unlink` calls this, from the `unlink` slot of directory
/// tables, with the VFS's arguments.
#[no_mangle]
unsafe extern "C" fn vexfs_unlink_rs(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    let timer = Timer::start(trace::vexfs_unlink_done::enabled());
    // SAFETY: As the caller guarantees.
    let ret = unsafe { inode_ops::Adapter::<DirInode>::unlink(dir, dentry) };
    op_done(timer, trace::vexfs_unlink_done::fire, || {
        // SAFETY: The caller's directory, live for the call.
        event_of(unsafe { Inode::from_raw(dir) }, ret.into())
    });
    ret
}

/// # Safety
///
/// Only `vexfs_read_iter` calls this, from the `read_iter` slot of regular
/// file tables, with the VFS's arguments.
#[no_mangle]
unsafe extern "C" fn vexfs_read_iter_rs(
    iocb: *mut bindings::kiocb,
    to: *mut bindings::iov_iter,
) -> isize {
    let timer = Timer::start(trace::vexfs_read_done::enabled());
    // SAFETY: As the caller guarantees.
    let ret = unsafe { file_ops::Adapter::<RegularFile>::read_iter(iocb, to) };
    op_done(timer, trace::vexfs_read_done::fire, || {
        // SAFETY: The caller's request, live for the call.
        event_of(unsafe { Kiocb::from_raw(iocb) }.file().inode(), ret as i64)
    });
    ret
}

/// # Safety
///
/// Only `vexfs_write_iter` calls this, from the `write_iter` slot of
/// regular file tables, with the VFS's arguments.
#[no_mangle]
unsafe extern "C" fn vexfs_write_iter_rs(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    let timer = Timer::start(trace::vexfs_write_done::enabled());
    // SAFETY: As the caller guarantees.
    let ret = unsafe { file_ops::Adapter::<RegularFile>::write_iter(iocb, from) };
    op_done(timer, trace::vexfs_write_done::fire, || {
        // SAFETY: The caller's request, live for the call.
        event_of(unsafe { Kiocb::from_raw(iocb) }.file().inode(), ret as i64)
    });
    ret
}

/// # Safety
///
/// Only `vexfs_fsync` calls this, from the `fsync` slot of file and
/// directory tables, with the VFS's arguments.
#[no_mangle]
unsafe extern "C" fn vexfs_fsync_rs(
    file: *mut bindings::file,
    start: bindings::loff_t,
    end: bindings::loff_t,
    datasync: c_int,
) -> c_int {
    let timer = Timer::start(trace::vexfs_fsync_done::enabled());
    // SAFETY: As the caller guarantees; a directory's fsync is a regular
    // file's, which only uses the file's inode and mount.
    let ret = unsafe { file_ops::Adapter::<RegularFile>::fsync(file, start, end, datasync) };
    op_done(timer, trace::vexfs_fsync_done::fire, || {
        // SAFETY: The caller's open file, live for the call.
        event_of(unsafe { File::from_raw(file) }.inode(), ret.into())
    });
    ret
}

/// # Safety
///
/// Only `vexfs_ioctl_insert` calls this, with what [`vector_ioctl`] passed.
#[no_mangle]
unsafe extern "C" fn vexfs_ioctl_insert_rs(file: *mut bindings::file, arg: c_ulong) -> c_long {
    // SAFETY: `file` is the open file `vector_ioctl` passed, valid for the
    // call.
    crate::vector_ioctl::insert_ioctl(unsafe { File::from_raw(file) }, arg as usize).into_c()
}

/// # Safety
///
/// Only `vexfs_ioctl_delete` calls this, with what [`vector_ioctl`] passed.
#[no_mangle]
unsafe extern "C" fn vexfs_ioctl_delete_rs(file: *mut bindings::file, arg: c_ulong) -> c_long {
    // SAFETY: `file` is the open file `vector_ioctl` passed, valid for the
    // call.
    crate::vector_ioctl::delete_ioctl(unsafe { File::from_raw(file) }, arg as usize).into_c()
}

/// # Safety
///
/// Only `vexfs_ioctl_search` calls this, with what [`vector_ioctl`] passed.
#[no_mangle]
unsafe extern "C" fn vexfs_ioctl_search_rs(file: *mut bindings::file, arg: c_ulong) -> c_long {
    // SAFETY: `file` is the open file `vector_ioctl` passed, valid for the
    // call.
    crate::vector_ioctl::search_ioctl(unsafe { File::from_raw(file) }, arg as usize).into_c()
}

/// # Safety
///
/// Only `vexfs_simd_batch` calls this, with what [`simd_batch`] passed.
#[no_mangle]
unsafe extern "C" fn vexfs_simd_batch_rs(floats: usize, work: *mut c_void) {
    // SAFETY: `work` points to the closure reference `simd_batch` holds
    // for the duration of the call.
    let work = unsafe { &mut *work.cast::<&mut dyn FnMut(&Fpu)>() };
    let timer = Timer::start(trace::vexfs_simd_batch_done::enabled());
    super::cpu::with_fpu(|fpu| work(fpu));
    if let Some(ns) = timer.elapsed_ns() {
        trace::vexfs_simd_batch_done::fire(floats as u64, ns);
    }
}
