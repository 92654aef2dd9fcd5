// SPDX-License-Identifier: GPL-2.0

//! VexFS: an in-memory filesystem that keeps vectors beside files.
//!
//! This crate is the kernel module. The ioctl ABI is shared with userland
//! (`userland/vexfs-abi/src/abi.rs`); the glue to the VFS is in
//! `super_block`, `inode`, `file` and `xattr`; raw bindings are wrapped in
//! `sys` (and, where Rust cannot reach, `vexfs_glue.c`).

use core::cell::UnsafeCell;

use kernel::prelude::*;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../userland/vexfs-abi/src/abi.rs"]
mod abi;
mod collection;
mod file;
mod file_vector;
// Shared with userland, which uses all of its API.
#[allow(dead_code, unreachable_pub, missing_docs)]
mod hnsw;
mod hnsw_glue;
mod inode;
mod ioctl;
mod mount_opts;
mod pool;
#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../userland/vexfs-simd/src/simd.rs"]
mod simd;
mod super_block;
mod sys;
mod vector_ioctl;
mod xattr;

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
    },
}

/// The module-wide limit on vector storage in bytes.
pub(crate) fn vector_limit_bytes() -> u64 {
    module_parameters::max_vector_mib
        .value()
        .saturating_mul(1 << 20)
}

/// The distance kernels this CPU runs best, from the features the kernel
/// detected at boot.
pub(crate) fn simd_path() -> simd::Path {
    use kernel::bindings::{X86_FEATURE_AVX2, X86_FEATURE_AVX512F, X86_FEATURE_FMA};
    simd::Path::best(
        sys::cpu_has(X86_FEATURE_AVX2),
        sys::cpu_has(X86_FEATURE_FMA),
        sys::cpu_has(X86_FEATURE_AVX512F),
    )
}

/// Holder of the module's workqueue between init and exit.
struct QueueCell(UnsafeCell<Option<sys::OwnedQueue>>);

// SAFETY: Written only by module init (before the filesystem exists) and
// exit (after it is gone and the queue drained); read in between.
unsafe impl Sync for QueueCell {}

static QUEUE: QueueCell = QueueCell(UnsafeCell::new(None));

/// The workqueue for collection maintenance that namespace operations
/// defer (see `Collection::schedule_maintenance`).
pub(crate) fn workqueue() -> &'static kernel::workqueue::Queue {
    // SAFETY: Set in init before the filesystem is registered and cleared
    // in exit after it is unregistered: every caller runs in between.
    let q = unsafe { (*QUEUE.0.get()).as_ref() };
    match q {
        Some(q) => q.queue(),
        // Not reachable (see above); the system queue is a safe fallback.
        None => kernel::workqueue::system(),
    }
}

/// Proof that the workqueue exists; dropping it drains and destroys it.
struct QueueGuard(());

impl Drop for QueueGuard {
    fn drop(&mut self) {
        // SAFETY: Module exit, after the filesystem is unregistered: no new
        // work can be queued; dropping the queue runs what is left.
        unsafe { *QUEUE.0.get() = None };
    }
}

/// The loaded module. Fields drop in order: the filesystem type is
/// unregistered (no mount can remain), then queued maintenance runs out,
/// then the pools are destroyed.
struct Vexfs {
    _fs: sys::FsRegistration,
    _queue: QueueGuard,
    _pools: pool::PoolsGuard,
}

impl kernel::Module for Vexfs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let pools = pool::init()?;
        let queue = sys::OwnedQueue::new(c"vexfs")?;
        // SAFETY: Module init runs alone; nothing reads `QUEUE` yet.
        unsafe { *QUEUE.0.get() = Some(queue) };
        let queue = QueueGuard(());
        // SAFETY: `FS_TYPE` is a static that outlives the registration,
        // which is dropped in module exit.
        let fs = unsafe { sys::FsRegistration::register(super_block::FS_TYPE.as_ptr(), module) }?;
        pr_info!("registered filesystem type vexfs {}\n", abi::VEXFS_RELEASE);
        Ok(Self {
            _fs: fs,
            _queue: queue,
            _pools: pools,
        })
    }
}
