// SPDX-License-Identifier: GPL-2.0

//! The VFS layer: the one place where VexFS touches raw `kernel::bindings`.
//!
//! Mainline Rust has no filesystem abstractions, so VexFS keeps its own
//! here, in the style of `rust/kernel` (`block::mq`, `miscdevice`,
//! `fs::file`): VFS objects are `#[repr(transparent)]` wrappers of the C
//! structures, borrowed for the lifetime the VFS guarantees (`&Inode`,
//! `&Dentry`, `&File`, `&SuperBlock`) or owned as counted references
//! (`InodeRef`, `DentryRef`, `NewInode`). Operation tables are built from
//! `#[vtable]` traits, one per C table as in C (`InodeOperations`,
//! `FileOperations`, `SuperOperations`, `XattrHandler`); each C callback
//! is adapted once, in the `*_ops.rs` file of its table, which states why
//! its raw arguments may be borrowed as they are.
//!
//! The trait methods are `extern "C"`: the filesystem gives the ones tools
//! attach to a stable name (`#[export_name = "vexfs_..."]`; the ones the
//! profiler measures go through C entry points instead, see `entry.rs`),
//! and the C
//! calling convention puts their arguments (`&Inode`, `&File`, `&Kiocb`:
//! the C pointers, as the wrappers are transparent) where a kprobe reads
//! them, whatever their return type. Their Rust types (`Result`, slices)
//! only ever cross between Rust functions, hence the crate's
//! `allow(improper_ctypes_definitions)`.
//!
//! The filesystem itself (`inode.rs`, `file.rs`, `super_block.rs`,
//! `xattr.rs`, the ioctl and collection code) uses this layer only; see
//! `Documentation/design.rst` for the layers and where a new operation
//! goes. Besides the VFS, the layer wraps the few other kernel services the
//! module uses: slab caches, the FPU, memory cgroups, a workqueue, CPU
//! features, signals, and block I/O for the on-disk work.

pub(crate) mod backing;
// Block I/O: opening a further device (an external log, say) and the
// device's cache queries have no caller yet.
#[allow(dead_code)]
pub(crate) mod block;
pub(crate) mod cpu;
pub(crate) mod dentry;
pub(crate) mod entry;
pub(crate) mod file;
pub(crate) mod file_ops;
pub(crate) mod fs;
mod glue;
pub(crate) mod inode;
pub(crate) mod inode_ops;
pub(crate) mod mem;
mod pod;
pub(crate) mod pool;
pub(crate) mod share;
pub(crate) mod super_ops;
pub(crate) mod sync;
pub(crate) mod task;
pub(crate) mod trace;
pub(crate) mod xattr;

pub(crate) use backing::{BackingFile, DataFile, DataMount};

use kernel::error::{from_result, Result};
use kernel::ffi::c_int;

/// An adapter's C status: 0, or the negative errno. The `Ok` value of an
/// operation is a proof for the layer, not a value for the VFS.
fn errno<T>(r: Result<T>) -> c_int {
    from_result(|| r.map(|_| 0))
}

/// An adapter's C byte count, or the negative errno.
fn count(r: Result<usize>) -> isize {
    from_result(|| r.map(|n| n as isize))
}
pub(crate) use dentry::{Child, Dentry, NewEntry};
pub(crate) use file::{File, Kiocb, WriteAccess};
pub(crate) use fs::{FileSystem, FsRegistration, SuperBlock};
pub(crate) use inode::{Inode, InodeRef, Kgid, Kuid, MntIdmap, NewInode};
