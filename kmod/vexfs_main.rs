// SPDX-License-Identifier: GPL-2.0

//! VexFS: an in-memory filesystem that keeps vectors beside files.
//!
//! This crate is the kernel module. The ioctl ABI is shared with userland
//! (`userland/vexfs-abi/src/abi.rs`); the glue to the VFS is in
//! `super_block`, `inode` and `file`; raw bindings are wrapped in `sys`.

use kernel::prelude::*;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../userland/vexfs-abi/src/abi.rs"]
mod abi;
mod collection;
mod file;
// Shared with userland, which uses all of its API.
#[allow(dead_code, unreachable_pub, missing_docs)]
mod hnsw;
mod hnsw_glue;
mod inode;
mod ioctl;
mod pool;
#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../userland/vexfs-simd/src/simd.rs"]
mod simd;
mod super_block;
mod sys;
mod vector_ioctl;

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
            description: "Limit on vector storage of all VexFS mounts, in MiB (ENOSPC past it)",
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

/// The loaded module. Fields drop in order: the filesystem type is
/// unregistered (no mount can remain) before the pools are destroyed.
struct Vexfs {
    _fs: sys::FsRegistration,
    _pools: pool::PoolsGuard,
}

impl kernel::Module for Vexfs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let pools = pool::init()?;
        // SAFETY: `FS_TYPE` is a static that outlives the registration,
        // which is dropped in module exit.
        let fs = unsafe { sys::FsRegistration::register(super_block::FS_TYPE.as_ptr(), module) }?;
        pr_info!("registered filesystem type vexfs {}\n", abi::VEXFS_RELEASE);
        Ok(Self {
            _fs: fs,
            _pools: pools,
        })
    }
}
