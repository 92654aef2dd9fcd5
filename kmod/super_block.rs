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

use kernel::prelude::*;
use kernel::seq_file::{seq_print, SeqFile};
use kernel::sync::atomic::{Atomic, Relaxed};

use crate::abi;
use crate::disk::Disk;
use crate::inode::{self, InodeInfo};
use crate::mount_opts::{self, MountOpts, BOGO_INODE_SIZE};
use crate::pool::PoolBox;
use crate::vfs::backing::Kstatfs;
use crate::vfs::block::BlockDevice;
use crate::vfs::fs::{NewSuperBlock, Param, Rooted, SuperParams};
use crate::vfs::inode::mode;
use crate::vfs::mem::PAGE_SHIFT;
use crate::vfs::super_ops::{self, SuperOperations};
use crate::vfs::{self, DataMount, Dentry, FileSystem, Kgid, Kuid, SuperBlock};
use crate::xattr::Xattrs;

/// Per-mount state, owned by the superblock.
pub(crate) struct SbInfo {
    /// A mount on a block device: what makes it durable. First, so that
    /// it goes first (its periodic commit is cancelled before anything it
    /// reaches).
    pub(crate) disk: Option<Pin<KBox<Disk>>>,
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
    /// `commit=` of a disk mount, in seconds (for `/proc/mounts`).
    commit_secs: u32,
    /// Root directory mode, uid and gid given at mount (for `/proc/mounts`).
    root_mode: u16,
    root_uid: Option<Kuid>,
    root_gid: Option<Kgid>,
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

    /// Takes the inode space of inode `ino` read from disk, and keeps new
    /// numbers above it.
    pub(crate) fn inode_loaded(&self, ino: u64) -> Result {
        self.reserve_ispace(BOGO_INODE_SIZE)?;
        self.inodes.add(1, Relaxed);
        self.saw_ino(ino);
        Ok(())
    }

    /// Keeps new inode numbers above `ino` (one in use, or once used).
    pub(crate) fn saw_ino(&self, ino: u64) {
        let mut cur = self.next_ino.load(Relaxed);
        while cur <= ino {
            match self.next_ino.cmpxchg(cur, ino + 1, Relaxed) {
                Ok(_) => break,
                Err(seen) => cur = seen,
            }
        }
    }

    /// The next inode number to hand out.
    pub(crate) fn next_ino(&self) -> u64 {
        self.next_ino.load(Relaxed)
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

/// The `vexfs` filesystem type.
pub(crate) struct VexFs;

impl FileSystem for VexFs {
    const NAME: &'static CStr = c"vexfs";
    type SbData = SbInfo;
    type InodeData = InodeInfo;
    type Options = MountOpts;

    fn parse_param(opts: &mut MountOpts, param: Param<'_>) -> Result {
        opts.set(param)
    }

    fn fill_super(sb: NewSuperBlock<'_>, opts: &MountOpts) -> Result<Rooted> {
        let disk = match BlockDevice::from_new_super(&sb) {
            Some(dev) => Some(Disk::open(&dev, sb.read_only(), opts)?),
            None => {
                if opts.commit.is_some() {
                    pr_err!("commit= is an option of mounts on a block device\n");
                    return Err(EINVAL);
                }
                None
            }
        };
        let (blocks, inodes) = match &disk {
            Some(d) => d.limits()?,
            None => (
                opts.blocks.unwrap_or_else(mount_opts::default_blocks),
                opts.inodes.unwrap_or_else(mount_opts::default_inodes),
            ),
        };
        let mode = opts.mode.unwrap_or(0o755);
        let info = PoolBox::new(SbInfo {
            disk,
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
            commit_secs: opts.commit_ms() / 1000,
        })?;
        // On any error below the VFS calls `kill_sb`, which frees `info`.
        let sb = sb.init(
            info,
            SuperParams {
                magic: abi::VEXFS_MAGIC,
                blocksize_bits: PAGE_SHIFT as u8,
                posix_acl: true,
                ops: super_ops::vtable::<VexFs>(),
                xattr: vfs::xattr::vtable::<Xattrs>(),
            },
        );
        let super_block = sb.super_block();
        if let Some(disk) = super_block.data().disk.as_deref() {
            let mut loader = disk.load(super_block)?;
            let root = loader.take_root()?;
            let rooted = sb.set_root_loading(root, |dir| loader.materialize(dir))?;
            disk.start(super_block)?;
            return Ok(rooted);
        }
        let root = inode::new_inode(super_block, None, mode::S_IFDIR | mode, 0)?;
        root.set_owner(opts.uid, opts.gid);
        sb.set_root(root)
    }

    fn shutdown(sb: &SuperBlock) {
        if let Some(disk) = sb.data().disk.as_deref() {
            disk.shutdown(sb);
        }
    }

    fn tick(sb: &SuperBlock) {
        if let Some(disk) = sb.data().disk.as_deref() {
            disk.tick(sb);
        }
    }

    fn reconfigure(
        sb: &SuperBlock,
        opts: &MountOpts,
        read_only: Option<bool>,
    ) -> core::result::Result<(), &'static CStr> {
        if sb.data().disk.is_some() {
            if read_only.is_some_and(|ro| ro != sb.read_only()) {
                return Err(c"a disk mount cannot change between read-only and read-write");
            }
            if opts.has_memory_options() {
                return Err(
                    c"size=, nr_inodes=, mode=, uid= and gid= are options of in-memory mounts",
                );
            }
            if opts.commit.is_some_and(|s| s != sb.data().commit_secs) {
                return Err(c"commit= cannot change on remount");
            }
            return Ok(());
        }
        sb.data().reconfigure(opts)
    }

    fn kill_sb(info: PoolBox<SbInfo>) {
        // Every inode was evicted by now; one left over would be a leak of
        // its pages too. Dropping `info` unmounts the private tmpfs (its
        // files, released by the evicted inodes, keep it until they are
        // closed).
        let left = info.inodes.load(Relaxed);
        if left != 0 {
            pr_err!("leak: {} inodes still alive after umount\n", left);
        }
    }
}

#[vtable]
impl SuperOperations for VexFs {
    // In-memory: an inode whose last link and last user are gone is freed
    // at once (the dentries of live names keep the others).
    const DROP_AT_ONCE: bool = true;

    /// The data limit and use from the private tmpfs, the inode limit and
    /// use from VexFS's own count.
    extern "C" fn statfs(dentry: &Dentry, buf: &mut Kstatfs) -> Result {
        let sb = dentry.super_block();
        let info = sb.data();
        let (files, ffree) = match info.max_inodes.load(Relaxed) {
            // Unlimited: no figures, as tmpfs.
            0 => (0, 0),
            max => (max, info.free_ispace.load(Relaxed) / BOGO_INODE_SIZE),
        };
        info.data.statfs(buf, sb, abi::VEXFS_MAGIC, files, ffree)
    }

    /// The options as `/proc/mounts` shows them, in tmpfs' format.
    extern "C" fn show_options(m: &SeqFile, root: &Dentry) -> Result {
        let info = root.super_block().data();
        if info.disk.is_some() {
            seq_print!(m, ",commit={}", info.commit_secs);
            return Ok(());
        }
        let kib = info.max_blocks.load(Relaxed) << (PAGE_SHIFT - 10);
        seq_print!(m, ",size={}k", kib);
        seq_print!(m, ",nr_inodes={}", info.max_inodes.load(Relaxed));
        seq_print!(m, ",mode={:o}", info.root_mode);
        if let Some(uid) = info.root_uid {
            seq_print!(m, ",uid={}", uid.in_init_ns());
        }
        if let Some(gid) = info.root_gid {
            seq_print!(m, ",gid={}", gid.in_init_ns());
        }
        Ok(())
    }

    extern "C" fn evict_inode(sb: &SuperBlock, ino: u64, deleted: bool, data: Pin<&mut InodeInfo>) {
        let xattr_space = data.release_evicted();
        sb.data().inode_evicted(xattr_space);
        if let Some(disk) = sb.data().disk.as_deref() {
            disk.evicted(ino, deleted);
        }
    }

    /// syncfs, sync and unmount: a commit on a disk mount.
    extern "C" fn sync_fs(sb: &SuperBlock, wait: bool) -> Result {
        match sb.data().disk.as_deref() {
            Some(disk) if wait => disk.commit(sb),
            _ => Ok(()),
        }
    }
}
