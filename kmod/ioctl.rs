// SPDX-License-Identifier: GPL-2.0

//! ioctl dispatch. Requests and replies are staged in pool memory and copied
//! with `UserSlice`, which faults cleanly (EFAULT) on a bad user pointer.

use kernel::prelude::*;
use kernel::transmute::AsBytes;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::abi;
use crate::collection;
use crate::pool::{self, PoolBox};
use crate::simd;
use crate::super_block::SbInfo;
use crate::vector_ioctl;
use crate::vfs::cpu::{Feature, Simd};
use crate::vfs::entry::{self, VectorIoctl};
use crate::vfs::file_ops::IoctlReturn;
use crate::vfs::File;

// The shared ABI file encodes ioctl numbers itself (it must build outside the
// kernel); check it against the kernel's own `_IOR`.
const _: () = assert!(
    abi::VEXFS_IOC_VERSION
        == kernel::ioctl::_IOR::<abi::VersionInfo>(
            abi::VEXFS_IOC_MAGIC as u32,
            abi::VEXFS_IOC_NR_VERSION
        )
);
const _: () = assert!(
    abi::VEXFS_IOC_STATS
        == kernel::ioctl::_IOR::<abi::Stats>(abi::VEXFS_IOC_MAGIC as u32, abi::VEXFS_IOC_NR_STATS)
);

/// Copies `value` to the user address `arg`.
fn put_user<T: AsBytes>(arg: usize, value: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
        .writer()
        .write(value)
}

fn cpu_features() -> u32 {
    const MAP: [(Feature, u32); 6] = [
        (Feature::SSE2, abi::cpu::SSE2),
        (Feature::AVX, abi::cpu::AVX),
        (Feature::AVX2, abi::cpu::AVX2),
        (Feature::FMA, abi::cpu::FMA),
        (Feature::AVX512F, abi::cpu::AVX512F),
        (Feature::OSXSAVE, abi::cpu::OSXSAVE),
    ];
    MAP.iter()
        .filter(|(feature, _)| feature.present())
        .fold(0, |acc, (_, bit)| acc | bit)
}

// Out of line, as every ioctl of the dispatcher: its frame stays small, so
// the vector calls it makes start with little of the stack used.
#[inline(never)]
fn version(arg: usize) -> Result {
    let mut info = PoolBox::new(abi::VersionInfo {
        abi_version: abi::VEXFS_ABI_VERSION,
        cpu_features: cpu_features(),
        simd_path: match Simd::detect().path() {
            simd::Path::Scalar => abi::simd_path::SCALAR,
            simd::Path::Avx2 => abi::simd_path::AVX2,
            simd::Path::Avx512 => abi::simd_path::AVX512,
        },
        reserved: 0,
        module_version: [0; abi::MODULE_VERSION_LEN],
    })?;
    let v = abi::VEXFS_RELEASE.as_bytes();
    info.module_version[..v.len()].copy_from_slice(v);
    put_user(arg, &*info)
}

#[inline(never)]
fn stats(sbi: &SbInfo, arg: usize) -> Result {
    let mut reply = PoolBox::new(abi::Stats::default())?;
    reply.pools = pool::stats();
    reply.vector_bytes = collection::vector_bytes();
    reply.vector_bytes_limit = crate::vector_limit_bytes();
    reply.inflight_bytes = collection::inflight_bytes();
    sbi.fill_stats(&mut reply);
    put_user(arg, &*reply)
}

/// ioctl entry point of every VexFS file and directory (a stable probe
/// point).
#[no_mangle]
#[inline(never)]
pub(crate) extern "C" fn vexfs_ioctl(file: &File, cmd: u32, arg: usize) -> IoctlReturn {
    let sbi = file.inode().super_block().data();
    sbi.count(abi::Op::Ioctl);
    // Tail calls: no frame of the dispatcher stays under the vector calls
    // (the kernel's debugging allocators walk every frame at each
    // allocation).
    match cmd {
        abi::VEXFS_IOC_INSERT => entry::vector_ioctl(VectorIoctl::Insert, file, arg),
        abi::VEXFS_IOC_DELETE => entry::vector_ioctl(VectorIoctl::Delete, file, arg),
        abi::VEXFS_IOC_SEARCH => entry::vector_ioctl(VectorIoctl::Search, file, arg),
        _ => other(sbi, file, cmd, arg).into(),
    }
}

/// The ioctls other than the three vector probe points.
#[inline(never)]
fn other(sbi: &SbInfo, file: &File, cmd: u32, arg: usize) -> Result<isize> {
    if let Some(ret) = vector_ioctl::dispatch(file, cmd, arg) {
        return ret;
    }
    match cmd {
        abi::VEXFS_IOC_VERSION => version(arg),
        abi::VEXFS_IOC_STATS => stats(sbi, arg),
        _ => Err(ENOTTY),
    }
    .map(|()| 0)
}
