// SPDX-License-Identifier: GPL-2.0

//! VexFS: an in-memory filesystem that keeps vectors beside files.
//!
//! This crate is the kernel module. The ioctl ABI is shared with userland
//! (`userland/vexfs-abi/src/abi.rs`). Every raw binding is wrapped once in
//! the VFS layer, `vfs/` (and, where Rust cannot reach, `vexfs_glue.c`);
//! the filesystem (`super_block`, `inode`, `file`, `xattr`, the ioctls and
//! the collections) is safe Rust on top of it. See
//! `Documentation/design.rst` for the layers.

// The VFS layer's operation traits use the C calling convention for the
// probe points (see `vfs/mod.rs`); their Rust types never reach C.
#![allow(improper_ctypes_definitions)]

use kernel::prelude::*;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../userland/vexfs-abi/src/abi.rs"]
mod abi;
mod collection;
mod disk;
// Shared with userland: parts only the tools use.
#[allow(dead_code, unreachable_pub, missing_docs)]
mod disk_format;
mod file;
mod file_vector;
// Shared with userland, which uses all of its API.
#[allow(dead_code, unreachable_pub, missing_docs)]
mod hnsw;
mod hnsw_glue;
mod inode;
mod ioctl;
mod mount_opts;
mod search_filter;
#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../userland/vexfs-simd/src/simd.rs"]
mod simd;
mod sq8;
mod super_block;
mod vector_ioctl;
mod vfs;
mod xattr;

use vfs::pool;

module! {
    type: Vexfs,
    name: "vexfs",
    authors: ["VexFS developers"],
    description: "VexFS: a filesystem that stores vectors and answers k-NN searches",
    license: "GPL",
    // Lets `mount -t vexfs` load the module through modprobe.
    alias: ["fs-vexfs"],
    params: {
        max_vector_mib: u64 {
            default: 1024,
            description: "Limit on vector storage of all VexFS mounts, in MiB (ENOSPC past it); calls in progress may hold as much again",
        },
        max_search_cpus: u32 {
            default: 4,
            description: "CPUs one exact search, or the linking of one HNSW insert, may use: its own and helpers (1 to 4; 1: no helpers)",
        },
    },
}

/// CPUs one exact search or one insert's linking may use
/// (`max_search_cpus`, clamped to 1..=4).
pub(crate) fn max_search_cpus() -> usize {
    (module_parameters::max_search_cpus.value() as usize).clamp(1, 1 + vfs::share::MAX_HELPERS)
}

/// The module-wide limit on vector storage in bytes.
pub(crate) fn vector_limit_bytes() -> u64 {
    module_parameters::max_vector_mib
        .value()
        .saturating_mul(1 << 20)
}

/// The loaded module. Fields drop in order: the filesystem type is
/// unregistered (no mount can remain), then queued maintenance runs out,
/// then the pools are destroyed.
struct Vexfs {
    _fs: vfs::FsRegistration,
    _queue: vfs::sync::ModuleQueue,
    _pools: pool::PoolsGuard,
}

impl kernel::Module for Vexfs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let pools = pool::init()?;
        let queue = vfs::sync::ModuleQueue::new(c"vexfs")?;
        let fs = vfs::FsRegistration::new(module)?;
        pr_info!("registered filesystem type vexfs {}\n", abi::VEXFS_RELEASE);
        Ok(Self {
            _fs: fs,
            _queue: queue,
            _pools: pools,
        })
    }
}
