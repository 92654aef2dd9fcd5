// SPDX-License-Identifier: GPL-2.0

//! The `vexfs` filesystem type: superblock setup and teardown, the mount's
//! limits (`size=`, `nr_inodes=`), `statfs`, `/proc/mounts` options and
//! remount, and the per-mount state hung off `s_fs_info`.
//!
//! File data lives in a private tmpfs instance mounted inside the kernel
//! for each VexFS mount (see `file.rs`): tmpfs enforces `size=` on every
//! path that allocates a page (write, fallocate, a fault of a shared
//! mapping), charges the pages to the writer's memory cgroup and can swap
//! them out. VexFS counts inodes itself, in tmpfs' "inode space" units, so
//! that extended attributes share the `nr_inodes` budget as on tmpfs.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use kernel::ffi::c_int;

use kernel::bindings;
use kernel::prelude::*;
use kernel::seq_file::{seq_print, SeqFile};
use kernel::sync::atomic::{Atomic, Relaxed};

use crate::abi;
use crate::inode;
use crate::mount_opts::{self, MountOpts, BOGO_INODE_SIZE};
use crate::pool::PoolBox;
use crate::sys::{self, DataMount, Inode};
use crate::xattr;

/// Per-mount state, owned by the superblock.
pub(crate) struct SbInfo {
    ops: [Atomic<u64>; abi::OP_SLOTS],
    /// Live inodes (the root included), for `vexctl stats`.
    inodes: Atomic<u64>,
    /// The next inode number: numbers are never reused within a mount (a
    /// file's vector is found by its number), unlike `get_next_ino()`'s,
    /// which are shared by the whole system and wrap at 2^32.
    next_ino: Atomic<u64>,
    /// `nr_inodes`; 0 means unlimited.
    max_inodes: Atomic<u64>,
    /// Inode space left, in bytes ([`BOGO_INODE_SIZE`] per inode plus the
    /// extended attributes); meaningful while `max_inodes` is not 0.
    free_ispace: Atomic<u64>,
    /// `size=` in pages; 0 means unlimited. The private tmpfs enforces it.
    max_blocks: Atomic<u64>,
    /// The private tmpfs holding regular files' data.
    pub(crate) data: DataMount,
    /// Root directory mode, uid and gid given at mount (for `/proc/mounts`).
    root_mode: u16,
    root_uid: Option<bindings::kuid_t>,
    root_gid: Option<bindings::kgid_t>,
}

impl SbInfo {
    /// Counts one operation of class `op`.
    pub(crate) fn count(&self, op: abi::Op) {
        self.ops[op as usize].add(1, Relaxed);
    }

    /// Takes the inode space of a new inode (`ENOSPC` at `nr_inodes`) and
    /// gives it its number.
    pub(crate) fn inode_created(&self) -> Result<u64> {
        self.reserve_ispace(BOGO_INODE_SIZE)?;
        self.inodes.add(1, Relaxed);
        Ok(self.next_ino.fetch_add(1, Relaxed))
    }

    /// Returns the inode space of an evicted inode and of the extended
    /// attributes it still had (`xattr_space` bytes).
    pub(crate) fn inode_evicted(&self, xattr_space: u64) {
        self.inodes.fetch_sub(1, Relaxed);
        self.release_ispace(BOGO_INODE_SIZE + xattr_space);
    }

    /// Takes `bytes` of inode space (for an inode or an extended
    /// attribute), or fails with `ENOSPC`. Free when unlimited.
    pub(crate) fn reserve_ispace(&self, bytes: u64) -> Result {
        if self.max_inodes.load(Relaxed) == 0 {
            return Ok(());
        }
        let mut cur = self.free_ispace.load(Relaxed);
        loop {
            let left = cur.checked_sub(bytes).ok_or(ENOSPC)?;
            match self.free_ispace.cmpxchg(cur, left, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Gives back inode space taken by [`Self::reserve_ispace`].
    pub(crate) fn release_ispace(&self, bytes: u64) {
        if self.max_inodes.load(Relaxed) != 0 {
            self.free_ispace.add(bytes, Relaxed);
        }
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

    /// Applies the `size=` and `nr_inodes=` of a remount, or leaves both as
    /// they were and says why not.
    fn reconfigure(&self, opts: &MountOpts) -> core::result::Result<(), &'static CStr> {
        // Refuse what can be told in advance before changing anything.
        if let Some(n) = opts.inodes {
            self.inodes_fit(n)?;
        }
        // Lifting the size limit cannot fail (and could not be undone): it
        // goes last. Otherwise the size goes first and is put back if the
        // inode limit fails after all (inodes made since the check).
        if opts.blocks == Some(0) {
            if let Some(n) = opts.inodes {
                self.set_max_inodes(n)?;
            }
            self.data.resize(0)?;
            self.max_blocks.store(0, Relaxed);
            return Ok(());
        }
        let old_blocks = self.max_blocks.load(Relaxed);
        if let Some(blocks) = opts.blocks {
            self.data.resize(blocks)?;
            self.max_blocks.store(blocks, Relaxed);
        }
        if let Some(n) = opts.inodes {
            if let Err(why) = self.set_max_inodes(n) {
                // Growing back cannot fail, nor can lifting the limit
                // again; shrinking back fails only if data was written
                // meanwhile, which leaves the larger size.
                if opts.blocks.is_some() && self.data.resize(old_blocks).is_ok() {
                    self.max_blocks.store(old_blocks, Relaxed);
                }
                return Err(why);
            }
        }
        Ok(())
    }

    /// Whether `nr_inodes=n` fits the inodes in use now.
    fn inodes_fit(&self, n: u64) -> core::result::Result<(), &'static CStr> {
        let old = self.max_inodes.load(Relaxed);
        if n == old || n == 0 {
            Ok(())
        } else if old == 0 {
            Err(c"Cannot retroactively limit inodes")
        } else if n < old && self.free_ispace.load(Relaxed) < (old - n) * BOGO_INODE_SIZE {
            Err(c"Too few inodes for current use")
        } else {
            Ok(())
        }
    }

    /// Changes `nr_inodes`, never below the inodes in use, as tmpfs does.
    fn set_max_inodes(&self, n: u64) -> core::result::Result<(), &'static CStr> {
        self.inodes_fit(n)?;
        let old = self.max_inodes.load(Relaxed);
        if n == old || n == 0 {
            // Unchanged, or unlimited (free inode space is not counted).
        } else if n > old {
            self.free_ispace.add((n - old) * BOGO_INODE_SIZE, Relaxed);
        } else {
            let less = (old - n) * BOGO_INODE_SIZE;
            let mut cur = self.free_ispace.load(Relaxed);
            loop {
                // Checked by `inodes_fit`, unless inodes were made since.
                let Some(left) = cur.checked_sub(less) else {
                    return Err(c"Too few inodes for current use");
                };
                match self.free_ispace.cmpxchg(cur, left, Relaxed) {
                    Ok(_) => break,
                    Err(seen) => cur = seen,
                }
            }
        }
        self.max_inodes.store(n, Relaxed);
        Ok(())
    }
}

/// `super_operations.statfs`: the data limit and use from the private
/// tmpfs, the inode limit and use from VexFS's own count.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_statfs(
    dentry: *mut bindings::dentry,
    buf: *mut bindings::kstatfs,
) -> c_int {
    // SAFETY: The VFS passes a dentry of a mounted VexFS.
    let sb = unsafe { (*dentry).d_sb };
    // SAFETY: A mounted VexFS superblock.
    let info = unsafe { SbInfo::of(sb) };
    let (files, ffree) = match info.max_inodes.load(Relaxed) {
        // Unlimited: no figures, as tmpfs.
        0 => (0, 0),
        max => (max, info.free_ispace.load(Relaxed) / BOGO_INODE_SIZE),
    };
    // SAFETY: `s_dev` is set at mount and never changes; `buf` is the
    // buffer of this statfs.
    match unsafe { info.data.statfs(buf, (*sb).s_dev, files, ffree) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `super_operations.show_options`: the options as `/proc/mounts` shows
/// them, in tmpfs' format.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_show_options(
    m: *mut bindings::seq_file,
    root: *mut bindings::dentry,
) -> c_int {
    // SAFETY: The VFS passes the seq_file it is filling, used by us alone
    // for this call, and the root of a mounted VexFS.
    let (m, info) = unsafe { (SeqFile::from_raw(m), SbInfo::of((*root).d_sb)) };
    let kib = info.max_blocks.load(Relaxed) << (bindings::PAGE_SHIFT - 10);
    seq_print!(m, ",size={}k", kib);
    seq_print!(m, ",nr_inodes={}", info.max_inodes.load(Relaxed));
    seq_print!(m, ",mode={:o}", info.root_mode);
    if let Some(uid) = info.root_uid {
        seq_print!(m, ",uid={}", sys::uid_in_init_ns(uid));
    }
    if let Some(gid) = info.root_gid {
        seq_print!(m, ",gid={}", sys::gid_in_init_ns(gid));
    }
    0
}

/// `super_operations.evict_inode`.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_evict_inode(inode: *mut bindings::inode) {
    // SAFETY: The VFS passes a live inode of our superblock being evicted.
    let i = unsafe { Inode::from_raw(inode) };
    i.truncate_pages_final();
    i.clear();
    // SAFETY: No other user of the inode is left.
    let xattr_space = unsafe { inode::release_evicted(i) };
    // SAFETY: A VexFS inode.
    unsafe { SbInfo::of(i.super_block()) }.inode_evicted(xattr_space);
}

/// `super_operations.free_inode`: after an RCU grace period, so that a
/// lockless path walk may still read a symlink's target until then.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_free_inode(inode: *mut bindings::inode) {
    // SAFETY: The inode is dead; nothing reads its VexFS state any more.
    unsafe { inode::free_info(Inode::from_raw(inode)) };
    // SAFETY: The inode came from new_inode() on our superblock, which has
    // no alloc_inode: it is freed the way the VFS frees it by default.
    unsafe { bindings::free_inode_nonrcu(inode) };
}

const SUPER_OPS: bindings::super_operations = bindings::super_operations {
    statfs: Some(vexfs_statfs),
    show_options: Some(vexfs_show_options),
    // In-memory: an inode whose last link and last user are gone is freed
    // at once (the dentries of live names keep the others).
    drop_inode: Some(bindings::inode_just_drop),
    evict_inode: Some(vexfs_evict_inode),
    free_inode: Some(vexfs_free_inode),
    ..pin_init::zeroed()
};

/// Fills a new superblock: called by `get_tree_nodev()` from the C glue
/// with the parsed options.
///
/// # Safety
///
/// Called only by the VFS (through the glue), with a new superblock and the
/// options of its mount context.
#[no_mangle]
unsafe extern "C" fn vexfs_fill_super(sb: *mut bindings::super_block, opts: *mut c_void) -> c_int {
    // SAFETY: The glue passes the context's options, alive for the call.
    let opts = unsafe { &*opts.cast::<MountOpts>() };
    // SAFETY: The VFS hands us a new, exclusively owned superblock.
    match unsafe { fill_super(sb, opts) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `sb` must be a new superblock owned by the caller.
unsafe fn fill_super(sb: *mut bindings::super_block, opts: &MountOpts) -> Result {
    let blocks = opts.blocks.unwrap_or_else(mount_opts::default_blocks);
    let inodes = opts.inodes.unwrap_or_else(mount_opts::default_inodes);
    let mode = opts.mode.unwrap_or(0o755);
    let info = PoolBox::new(SbInfo {
        ops: [const { Atomic::new(0) }; abi::OP_SLOTS],
        inodes: Atomic::new(0),
        next_ino: Atomic::new(1),
        max_inodes: Atomic::new(inodes),
        free_ispace: Atomic::new(inodes.saturating_mul(BOGO_INODE_SIZE)),
        max_blocks: Atomic::new(blocks),
        data: DataMount::new(blocks)?,
        root_mode: mode,
        root_uid: opts.uid,
        root_gid: opts.gid,
    })?;
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
        (*sb).s_xattr = xattr::HANDLERS.as_ptr();
        (*sb).s_flags |= sys::SB_POSIXACL;
        (*sb).s_time_gran = 1;
    }
    let root = inode::new_inode(sb, None, bindings::S_IFDIR as u16 | mode, 0)?;
    root.inode().set_owner(opts.uid, opts.gid);
    // SAFETY: We are in fill_super for `sb`.
    unsafe { root.make_root(sb) }
}

/// `fs_context_operations.reconfigure` (remount), through the glue.
///
/// # Safety
///
/// Called only by the VFS (through the glue) for a mounted VexFS `sb`.
#[no_mangle]
unsafe extern "C" fn vexfs_reconfigure(
    fc: *mut bindings::fs_context,
    sb: *mut bindings::super_block,
    opts: *mut c_void,
) -> c_int {
    // SAFETY: The glue passes the context's options and the mounted
    // superblock being reconfigured (the VFS holds `s_umount`).
    let (opts, info) = unsafe { (&*opts.cast::<MountOpts>(), SbInfo::of(sb)) };
    match info.reconfigure(opts) {
        Ok(()) => 0,
        // SAFETY: `fc` is the context being applied.
        Err(why) => unsafe { sys::invalfc(fc, why) },
    }
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
            // Dropping it unmounts the private tmpfs (its files, released by
            // the evicted inodes, keep it until they are closed).
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
