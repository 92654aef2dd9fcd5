// SPDX-License-Identifier: GPL-2.0

//! ioctl dispatch. Requests and replies are staged in pool memory and copied
//! with `UserSlice`, which faults cleanly (EFAULT) on a bad user pointer.

use kernel::ffi::{c_long, c_uint, c_ulong};

use kernel::bindings;
use kernel::prelude::*;
use kernel::transmute::AsBytes;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::abi;
use crate::collection;
use crate::pool::{self, PoolBox};
use crate::simd;
use crate::super_block::SbInfo;
use crate::sys;
use crate::vector_ioctl;

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

// SAFETY: `repr(C)` structs of integers with explicit padding fields (the
// ABI file asserts their sizes), so every byte is initialised.
unsafe impl AsBytes for abi::VersionInfo {}
// SAFETY: As above.
unsafe impl AsBytes for abi::Stats {}

/// Copies `value` to the user address `arg`.
fn put_user<T: AsBytes>(arg: c_ulong, value: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
        .writer()
        .write(value)
}

fn cpu_features() -> u32 {
    const MAP: [(u32, u32); 6] = [
        (bindings::X86_FEATURE_XMM2, abi::cpu::SSE2),
        (bindings::X86_FEATURE_AVX, abi::cpu::AVX),
        (bindings::X86_FEATURE_AVX2, abi::cpu::AVX2),
        (bindings::X86_FEATURE_FMA, abi::cpu::FMA),
        (bindings::X86_FEATURE_AVX512F, abi::cpu::AVX512F),
        (bindings::X86_FEATURE_OSXSAVE, abi::cpu::OSXSAVE),
    ];
    MAP.iter()
        .filter(|(feature, _)| sys::cpu_has(*feature))
        .fold(0, |acc, (_, bit)| acc | bit)
}

fn version(arg: c_ulong) -> Result {
    let mut info = PoolBox::new(abi::VersionInfo {
        abi_version: abi::VEXFS_ABI_VERSION,
        cpu_features: cpu_features(),
        simd_path: match crate::simd_path() {
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

fn stats(sbi: &SbInfo, arg: c_ulong) -> Result {
    let mut reply = PoolBox::new(abi::Stats::default())?;
    reply.pools = pool::stats();
    reply.vector_bytes = collection::vector_bytes();
    reply.vector_bytes_limit = crate::vector_limit_bytes();
    reply.inflight_bytes = collection::inflight_bytes();
    sbi.fill_stats(&mut reply);
    put_user(arg, &*reply)
}

/// ioctl entry point of every VexFS file and directory.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
pub(crate) unsafe extern "C" fn vexfs_ioctl(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: The VFS passes an open file of ours; it pins its superblock.
    let sbi = unsafe { SbInfo::of((*(*file).f_inode).i_sb) };
    sbi.count(abi::Op::Ioctl);
    if let Some(ret) = vector_ioctl::dispatch(file, cmd, arg) {
        return ret;
    }
    let result = match cmd {
        abi::VEXFS_IOC_VERSION => version(arg),
        abi::VEXFS_IOC_STATS => stats(sbi, arg),
        _ => Err(ENOTTY),
    };
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}
