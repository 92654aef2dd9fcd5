// SPDX-License-Identifier: GPL-2.0

//! The `vexfs` filesystem type: superblock setup and teardown, and the
//! per-mount state (operation counters) hung off `s_fs_info`.

use core::cell::UnsafeCell;
use kernel::ffi::c_int;

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};

use crate::abi;
use crate::inode;
use crate::pool::PoolBox;
use crate::sys::Inode;
use crate::vector_ioctl;

/// Per-mount state, owned by the superblock.
pub(crate) struct SbInfo {
    ops: [Atomic<u64>; abi::OP_SLOTS],
    inodes: Atomic<u64>,
}

impl SbInfo {
    fn new() -> Self {
        Self {
            ops: [const { Atomic::new(0) }; abi::OP_SLOTS],
            inodes: Atomic::new(0),
        }
    }

    /// Counts one operation of class `op`.
    pub(crate) fn count(&self, op: abi::Op) {
        self.ops[op as usize].add(1, Relaxed);
    }

    /// Records that an inode of this mount was created.
    pub(crate) fn inode_created(&self) {
        self.inodes.add(1, Relaxed);
    }

    /// Records that an inode of this mount was evicted.
    pub(crate) fn inode_evicted(&self) {
        self.inodes.fetch_sub(1, Relaxed);
    }

    /// Fills the per-mount part of a STATS reply.
    pub(crate) fn fill_stats(&self, out: &mut abi::Stats) {
        out.op_count = abi::OP_COUNT as u32;
        out.inodes = self.inodes.load(Relaxed);
        for (o, c) in out.ops.iter_mut().zip(&self.ops).take(abi::OP_COUNT) {
            *o = c.load(Relaxed);
        }
    }

    /// The state of the mount `sb`.
    ///
    /// # Safety
    ///
    /// `sb` must be a VexFS superblock between `vexfs_fill_super` and the end
    /// of `vexfs_kill_sb`, i.e. any live inode or open file of it.
    pub(crate) unsafe fn of<'a>(sb: *mut bindings::super_block) -> &'a SbInfo {
        // SAFETY: Guaranteed by the caller: `s_fs_info` was set from a
        // `PoolBox<SbInfo>` in fill_super and is freed only in kill_sb.
        unsafe { &*(*sb).s_fs_info.cast::<SbInfo>() }
    }
}

const SUPER_OPS: bindings::super_operations = bindings::super_operations {
    statfs: Some(bindings::simple_statfs),
    // In-memory: an inode whose last link and last user are gone is freed
    // at once (the dentries of live names keep the others).
    drop_inode: Some(bindings::inode_just_drop),
    evict_inode: Some(vexfs_evict_inode),
    ..pin_init::zeroed()
};

/// VFS entry point `vexfs_evict_inode`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
unsafe extern "C" fn vexfs_evict_inode(inode: *mut bindings::inode) {
    // SAFETY: The VFS passes a live inode of our superblock being evicted;
    // this is what the VFS does when `evict_inode` is not set, plus our
    // accounting.
    unsafe {
        bindings::truncate_inode_pages_final(&raw mut (*inode).i_data);
        bindings::clear_inode(inode);
        SbInfo::of((*inode).i_sb).inode_evicted();
        // A collection lives as long as its directory inode.
        vector_ioctl::free_collection(Inode::from_raw(inode));
    }
}

/// Fills a new superblock: called by `get_tree_nodev()` from the C glue.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_fill_super(
    sb: *mut bindings::super_block,
    _fc: *mut bindings::fs_context,
) -> c_int {
    // SAFETY: The VFS hands us a new, exclusively owned superblock.
    match unsafe { fill_super(sb) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `sb` must be a new superblock owned by the caller.
unsafe fn fill_super(sb: *mut bindings::super_block) -> Result {
    let info = PoolBox::new(SbInfo::new())?;
    // SAFETY: `sb` is ours to initialise (see above). On any error below the
    // VFS calls `vexfs_kill_sb`, which frees `s_fs_info`.
    unsafe {
        (*sb).s_fs_info = info.into_raw().cast();
        // MAX_LFS_FILESIZE on 64-bit.
        (*sb).s_maxbytes = i64::MAX;
        (*sb).s_blocksize = bindings::PAGE_SIZE;
        (*sb).s_blocksize_bits = bindings::PAGE_SHIFT as u8;
        (*sb).s_magic = abi::VEXFS_MAGIC as usize;
        (*sb).s_op = &SUPER_OPS;
        (*sb).s_time_gran = 1;
    }
    let root = inode::new_inode(sb, None, (bindings::S_IFDIR | 0o755) as u16, 0)?;
    // SAFETY: We are in fill_super for `sb`.
    unsafe { root.make_root(sb) }
}

/// VFS entry point `vexfs_kill_sb`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
unsafe extern "C" fn vexfs_kill_sb(sb: *mut bindings::super_block) {
    // SAFETY: The VFS calls kill_sb once, for a superblock of this type; after
    // `kill_anon_super` every inode is evicted, so nothing uses `s_fs_info`.
    unsafe {
        let info = (*sb).s_fs_info.cast::<SbInfo>();
        bindings::kill_anon_super(sb);
        if !info.is_null() {
            let info = PoolBox::from_raw(info);
            // Every inode was evicted by kill_anon_super; one left over would
            // be a leak of its pages too.
            let left = info.inodes.load(Relaxed);
            if left != 0 {
                pr_err!("leak: {} inodes still alive after umount\n", left);
            }
        }
    }
}

unsafe extern "C" {
    /// In `vexfs_glue.c`: installs the `fs_context` operations, which Rust
    /// bindings cannot reach (`struct fs_context` is opaque to them).
    fn vexfs_init_fs_context(fc: *mut bindings::fs_context) -> c_int;
}

/// The registered `file_system_type`; the VFS links it into its list.
pub(crate) struct FsType(UnsafeCell<bindings::file_system_type>);

// SAFETY: After registration only the VFS touches the structure, under its
// own locking; before, only module init does.
unsafe impl Sync for FsType {}

impl FsType {
    /// Raw pointer for (un)registration.
    pub(crate) fn as_ptr(&self) -> *mut bindings::file_system_type {
        self.0.get()
    }
}

pub(crate) static FS_TYPE: FsType = FsType(UnsafeCell::new(bindings::file_system_type {
    name: kernel::str::as_char_ptr_in_const_context(c"vexfs"),
    init_fs_context: Some(vexfs_init_fs_context),
    kill_sb: Some(vexfs_kill_sb),
    ..pin_init::zeroed()
}));
