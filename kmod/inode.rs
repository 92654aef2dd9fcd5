// SPDX-License-Identifier: GPL-2.0

//! Inodes and directory operations.
//!
//! Names live only in the dcache, as in ramfs and tmpfs: a created entry's
//! dentry is pinned until unlinked, and the VFS library's `simple_*`
//! helpers do the dcache bookkeeping. Each operation is a named,
//! non-inlined `vexfs_*` entry point (a stable probe point, see
//! Documentation/) that counts itself and then does the work.
//!
//! Every inode carries an [`InodeInfo`]: its extended attributes, a
//! regular file's data file (a shmem file on the mount's private tmpfs,
//! see `file.rs`), and a directory's vector collection once it becomes
//! one.

use core::ffi::CStr;

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::alloc::flags::GFP_KERNEL_ACCOUNT;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, SetOnce};

use crate::abi::Op;
use crate::collection::Collection;
use crate::disk::{self, Dirty, OpExt, Reserve};
use crate::disk_format as fmt;
use crate::file::{DirFile, RegularFile};
use crate::file_vector::{same_owner, Loss, Owner, VectorRemoval};
use crate::mount_opts::BOGO_INODE_SIZE;
use crate::super_block::SbInfo;
use crate::vfs::dentry::NewDentry;
use crate::vfs::dentry::{self, rename, Instantiated, Lookup, LookupName, Removed, NAME_MAX};
use crate::vfs::entry;
use crate::vfs::file::{Opened, TmpFile};
use crate::vfs::inode::{mode, Kind};
use crate::vfs::inode_ops::{self, Iattr, InodeEntries, InodeOperations, InodeOpsVTable, Kstat};
use crate::vfs::{
    file_ops, Child, DataFile, Dentry, Inode, MntIdmap, NewEntry, NewInode, SuperBlock,
};
use crate::xattr::XattrStore;

/// VexFS's state of one inode, owned by the inode.
#[pin_data]
pub(crate) struct InodeInfo {
    /// Regular files: the shmem file holding the data.
    pub(crate) data: Option<DataFile>,
    /// Directories: the collection, once `VEXFS_IOC_CREATE` made one.
    collection: SetOnce<Arc<Collection>>,
    #[pin]
    pub(crate) xattrs: XattrStore,
    /// Disk mounts: what changed since the last commit.
    #[pin]
    pub(crate) dirty: Mutex<Dirty>,
    /// A shared writable mapping was made: stores may have changed the
    /// data without a write call (an fsync writes all of it back).
    pub(crate) mapped: AtomicBool,
    /// Inode space taken besides the inode's own: a symlink's target (up
    /// to 4 KiB, stored whole by a disk mount's checkpoint).
    pub(crate) extra_space: AtomicU32,
}

impl InodeInfo {
    /// The collection of a directory, if it is one.
    pub(crate) fn collection(&self) -> Option<&Arc<Collection>> {
        self.collection.as_ref()
    }

    /// Makes the directory a collection; `EEXIST` if it already is one.
    pub(crate) fn set_collection(&self, coll: Arc<Collection>) -> Result {
        if self.collection.populate(coll) {
            Ok(())
        } else {
            Err(EEXIST)
        }
    }

    /// Releases what an evicted inode holds besides its memory: the data
    /// file (its pages go back to the mount), the collection, the extended
    /// attributes. Returns the inode space the attributes took.
    pub(crate) fn release_evicted(self: Pin<&mut Self>) -> u64 {
        let this = self.project();
        drop(this.data.take());
        let coll = core::mem::take(this.collection);
        if let Some(coll) = coll.as_ref() {
            // The directory's reference ends here (queued maintenance may
            // hold another until it has run, and then does nothing).
            coll.set_dying();
        }
        drop(coll);
        this.xattrs.clear() + u64::from(this.extra_space.load(Ordering::Relaxed))
    }

    /// Takes inode space for a symlink's target of `len` bytes (given back
    /// at eviction).
    pub(crate) fn charge_target(&self, sbi: &SbInfo, len: usize) -> Result {
        sbi.reserve_ispace(len as u64)?;
        self.extra_space.store(len as u32, Ordering::Relaxed);
        Ok(())
    }
}

/// The SbInfo of the mount a live VexFS inode belongs to.
pub(crate) fn sb_info(inode: &Inode) -> &SbInfo {
    inode.super_block().data()
}

/// Regular files and special files (devices, FIFOs, sockets, whiteouts):
/// attributes, extended attributes and ACLs; data goes through the file
/// operations.
pub(crate) struct NodeInode;
/// Directories: the node operations and the namespace.
pub(crate) struct DirInode;
/// Symlinks: the node operations without ACLs (as on tmpfs), and the
/// target in the inode.
pub(crate) struct SymlinkInode;

const NODE_IOPS: InodeOpsVTable = inode_ops::vtable::<NodeInode>();
const DIR_IOPS: InodeOpsVTable = inode_ops::vtable::<DirInode>();
pub(crate) const SYMLINK_IOPS: InodeOpsVTable = inode_ops::vtable::<SymlinkInode>();

/// Creates an inode of `mode` on `sb`, wired to VexFS's operations, with
/// the inode space it takes charged to the mount (`ENOSPC` at
/// `nr_inodes`) and, with a parent, the parent's default ACL applied.
pub(crate) fn new_inode(
    sb: &SuperBlock,
    dir: Option<&Inode>,
    mode: u16,
    dev: u32,
) -> Result<NewInode> {
    let sbi = sb.data();
    let ino = sbi.inode_created()?;
    let inode = build_inode(sb, ino, dir, mode, dev).inspect_err(|_| sbi.inode_evicted(0))?;
    // From here on, dropping `inode` evicts it, which gives the space back.
    if mode & mode::S_IFMT == mode::S_IFDIR {
        // A directory starts with two links: its name and its ".".
        inode.inode().inc_nlink();
    }
    match dir {
        Some(dir) => inode.acl_create(dir)?,
        None => inode.acl_none(),
    }
    Ok(inode)
}

/// The inode `ino` of a disk mount as its checkpoint or log has it (the
/// caller sets the stored attributes), charged to the mount as a new one.
pub(crate) fn load_inode(sb: &SuperBlock, ino: u64, mode: u16, dev: u32) -> Result<NewInode> {
    let sbi = sb.data();
    sbi.inode_loaded(ino)?;
    let inode = build_inode(sb, ino, None, mode, dev).inspect_err(|_| sbi.inode_evicted(0))?;
    inode.acl_none();
    Ok(inode)
}

/// A new inode `ino` of `mode` with VexFS's operations and data.
fn build_inode(
    sb: &SuperBlock,
    ino: u64,
    dir: Option<&Inode>,
    mode: u16,
    dev: u32,
) -> Result<NewInode> {
    let sbi = sb.data();
    let data = match mode & mode::S_IFMT {
        mode::S_IFREG => Some(sbi.data.new_file()?),
        _ => None,
    };
    let info = KBox::pin_init(
        pin_init!(InodeInfo {
            data,
            collection: SetOnce::new(),
            xattrs <- XattrStore::new(),
            dirty <- new_mutex!(Dirty::default()),
            mapped: AtomicBool::new(false),
            extra_space: AtomicU32::new(0),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    let kind = match mode & mode::S_IFMT {
        mode::S_IFREG => Kind::Node(NODE_IOPS, file_ops::vtable::<RegularFile>()),
        mode::S_IFDIR => Kind::Node(DIR_IOPS, file_ops::vtable::<DirFile>()),
        // The symlink operations are set with its target.
        mode::S_IFLNK => Kind::Symlink,
        _ => Kind::Special(NODE_IOPS, dev),
    };
    NewInode::new(sb, ino, dir, mode, kind, info)
}

/// Creates a node of `mode` named by the negative `entry` in `dir`, and
/// on a disk mount logs it (with a symlink's `target`).
fn make_node(
    dir: &Inode,
    entry: NewEntry<'_>,
    mode: u16,
    dev: u32,
    target: Option<&CStr>,
) -> Result<Instantiated> {
    let mut op = disk::begin(dir.super_block(), Reserve::NAMESPACE)?;
    let inode = new_inode(dir.super_block(), Some(dir), mode, dev)?;
    if let Some(target) = target {
        inode
            .inode()
            .data()
            .charge_target(dir.super_block().data(), target.to_bytes().len())?;
        inode.set_link(target, SYMLINK_IOPS)?;
    }
    let mut name = [0u8; NAME_MAX];
    let name = entry.name(&mut name);
    let ino = inode.inode().ino();
    // Logged before the inode is handed over (the records say what the
    // operation will have done; it cannot fail from here).
    if let Some(target) = target {
        op.log(&fmt::Record::Symlink {
            ino,
            target: target.to_bytes(),
        });
    }
    op.log(&fmt::Record::Link {
        dir: dir.ino(),
        ino,
        name,
    });
    op.dirty(inode.inode());
    let done = entry.instantiate(inode);
    dir.touch_dir();
    if mode & mode::S_IFMT == mode::S_IFDIR {
        // The new directory's ".." links to `dir` (in the same commit).
        dir.inc_nlink();
    }
    op.dirty(dir);
    Ok(done)
}

/// Logs that the name `child` in `dir` went, with the inodes it changed.
fn log_unlink(op: &mut Option<disk::Op<'_>>, dir: &Inode, child: &Child<'_>) {
    let mut name = [0u8; NAME_MAX];
    op.log(&fmt::Record::Unlink {
        dir: dir.ino(),
        name: child.dentry().name(&mut name),
    });
    op.dirty(dir);
    if let Some(inode) = child.inode() {
        op.dirty(inode);
    }
}

/// `EXDEV` if `moving` is a directory, other than a collection, that a
/// rename would take from one collection's tree to another tree (`mv`
/// then copies it): the names below it would change collections, and the
/// vectors of their files with them. (A collection directory takes its
/// tree with it; one from outside any tree brings no vectors.)
fn refuse_tree_change(moving: Option<&Inode>, from: &Dentry, to: &Dentry) -> Result {
    let Some(dir) = moving.filter(|i| i.is_dir()) else {
        return Ok(());
    };
    if dir.data().collection().is_some() {
        return Ok(());
    }
    let from = Owner::of(from);
    if from.is_some() && !same_owner(&from, &Owner::of(to)) {
        return Err(EXDEV);
    }
    Ok(())
}

/// Whether `child` is a name whose file keeps another: its inode space
/// (see `vexfs_link`) goes back when it goes; the last name's goes with
/// the inode.
fn is_extra_name(child: &Child<'_>) -> bool {
    child
        .inode()
        .is_some_and(|file| file.nlink() > 1 && !file.is_dir())
}

/// Leaves a whiteout (a 0/0 character device, as overlayfs expects) at the
/// name `old` is moving away from.
fn whiteout<'a>(dir: &Inode, old: &Child<'a>) -> Result<(NewDentry<'a>, NewInode)> {
    let white = old.new_sibling()?;
    let inode = new_inode(
        dir.super_block(),
        Some(dir),
        mode::WHITEOUT,
        mode::WHITEOUT_DEV,
    )?;
    Ok((white, inode))
}

#[vtable]
impl InodeOperations for NodeInode {
    const CACHED_ACL: bool = true;

    /// Attribute changes, a size change of a regular file's data, and the
    /// ACL's mode bits after a chmod.
    #[export_name = "vexfs_setattr"]
    #[inline(never)]
    extern "C" fn setattr(idmap: &MntIdmap, dentry: &Dentry, attr: &mut Iattr) -> Result {
        let inode = dentry.inode().ok_or(ENOENT)?;
        sb_info(inode).count(Op::Setattr);
        inode_ops::setattr_prepare(idmap, dentry, attr)?;
        let mut op = disk::begin(inode.super_block(), Reserve::INODE)?;
        op.dirty(inode);
        if let Some(size) = attr.size().filter(|&size| size != inode.size()) {
            let old = inode.size();
            // POSIX: a size change marks mtime and ctime for update, but
            // only ftruncate(2) and O_TRUNC ask for it; truncate(2) leaves
            // it to the filesystem (as tmpfs and ext4 do). notify_change()
            // has already set `ia_mtime` and `ia_ctime` to the current time.
            attr.mark_times();
            if let Some(data) = inode.data().data.as_ref() {
                data.set_size(size)?;
            }
            inode.set_size(size);
            // What a shrink cut off reads as zeros if the file grows again,
            // and tmpfs frees everything past the size, space `fallocate`
            // reserved there included, unless the file grows.
            if size <= old {
                op.zeroed(inode, size as u64, i64::MAX as u64);
            }
        }
        inode_ops::setattr_copy(idmap, inode, attr);
        if attr.valid() & inode_ops::attr::MODE != 0 {
            inode_ops::posix_acl_chmod(idmap, dentry)?;
        }
        Ok(())
    }

    /// The VFS's attributes, with a regular file's blocks counted from its
    /// data (tmpfs pages).
    extern "C" fn getattr(
        idmap: &MntIdmap,
        dentry: &Dentry,
        stat: &mut Kstat,
        mask: u32,
        _flags: u32,
    ) -> Result {
        let inode = dentry.inode().ok_or(ENOENT)?;
        stat.fill(idmap, mask, inode);
        if let Some(data) = inode.data().data.as_ref() {
            stat.set_blocks(data.blocks());
        }
        Ok(())
    }

    extern "C" fn listxattr(dentry: &Dentry, buf: Option<&mut [u8]>) -> Result<usize> {
        crate::xattr::list(dentry, buf)
    }
}

#[vtable]
impl InodeOperations for SymlinkInode {
    const LINK_IN_INODE: bool = true;

    // The attribute operations are those of `NodeInode` (the `#[vtable]`
    // macro must see each method, so they are written out).
    extern "C" fn setattr(idmap: &MntIdmap, dentry: &Dentry, attr: &mut Iattr) -> Result {
        NodeInode::setattr(idmap, dentry, attr)
    }

    extern "C" fn getattr(
        idmap: &MntIdmap,
        dentry: &Dentry,
        stat: &mut Kstat,
        mask: u32,
        flags: u32,
    ) -> Result {
        NodeInode::getattr(idmap, dentry, stat, mask, flags)
    }

    extern "C" fn listxattr(dentry: &Dentry, buf: Option<&mut [u8]>) -> Result<usize> {
        NodeInode::listxattr(dentry, buf)
    }
}

#[vtable]
impl InodeOperations for DirInode {
    const CACHED_ACL: bool = true;
    // lookup, create and unlink through their probe points.
    const ENTRIES: InodeEntries = entry::DIR_ENTRIES;

    extern "C" fn lookup(dir: &Inode, name: LookupName<'_>, flags: u32) -> Result<Lookup> {
        sb_info(dir).count(Op::Lookup);
        dentry::simple_lookup(dir, name, flags)
    }

    extern "C" fn create(
        _idmap: &MntIdmap,
        dir: &Inode,
        entry: NewEntry<'_>,
        mode: u16,
    ) -> Result<Instantiated> {
        sb_info(dir).count(Op::Create);
        make_node(dir, entry, mode | mode::S_IFREG, 0, None)
    }

    /// An unnamed regular file (`O_TMPFILE`), which `linkat` may give a
    /// name later.
    #[export_name = "vexfs_tmpfile"]
    #[inline(never)]
    extern "C" fn tmpfile(
        _idmap: &MntIdmap,
        dir: &Inode,
        file: TmpFile<'_>,
        mode: u16,
    ) -> Result<Opened> {
        sb_info(dir).count(Op::Create);
        let mut op = disk::begin(dir.super_block(), Reserve::INODE)?;
        let inode = new_inode(dir.super_block(), Some(dir), mode | mode::S_IFREG, 0)?;
        let done = file.finish(inode)?;
        op.dirty(dir);
        Ok(done)
    }

    #[export_name = "vexfs_mknod"]
    #[inline(never)]
    extern "C" fn mknod(
        _idmap: &MntIdmap,
        dir: &Inode,
        entry: NewEntry<'_>,
        mode: u16,
        dev: u32,
    ) -> Result<Instantiated> {
        sb_info(dir).count(Op::Create);
        make_node(dir, entry, mode, dev, None)
    }

    #[export_name = "vexfs_mkdir"]
    #[inline(never)]
    extern "C" fn mkdir(
        _idmap: &MntIdmap,
        dir: &Inode,
        entry: NewEntry<'_>,
        mode: u16,
    ) -> Result<Instantiated> {
        sb_info(dir).count(Op::Mkdir);
        make_node(dir, entry, mode | mode::S_IFDIR, 0, None)
    }

    #[export_name = "vexfs_symlink"]
    #[inline(never)]
    extern "C" fn symlink(
        _idmap: &MntIdmap,
        dir: &Inode,
        entry: NewEntry<'_>,
        target: &CStr,
    ) -> Result<Instantiated> {
        sb_info(dir).count(Op::Symlink);
        make_node(dir, entry, mode::S_IFLNK | 0o777, 0, Some(target))
    }

    #[export_name = "vexfs_link"]
    #[inline(never)]
    extern "C" fn link(old: &Dentry, dir: &Inode, entry: NewEntry<'_>) -> Result<Instantiated> {
        let sbi = sb_info(dir);
        sbi.count(Op::Link);
        let file = old.inode().ok_or(ENOENT)?;
        // Each further name takes inode space, as on tmpfs, so that
        // `nr_inodes` also bounds names (an O_TMPFILE file's first name does
        // not: its inode has its space already).
        let extra_name = file.nlink() > 0;
        let mut op = disk::begin(dir.super_block(), Reserve::NAMESPACE)?;
        if extra_name {
            sbi.reserve_ispace(BOGO_INODE_SIZE)?;
        }
        let mut name = [0u8; NAME_MAX];
        let name = entry.name(&mut name);
        // simple_link updates nlink and times and pins the new dentry. A
        // file's vector belongs to the file, not to a name: a second name
        // changes nothing about it.
        let done = dentry::simple_link(old, dir, entry).inspect_err(|_| {
            if extra_name {
                sbi.release_ispace(BOGO_INODE_SIZE);
            }
        })?;
        op.log(&fmt::Record::Link {
            dir: dir.ino(),
            ino: file.ino(),
            name,
        });
        if extra_name {
            op.dirty(file);
        } else {
            // An O_TMPFILE file's first name: no checkpoint holds its data
            // (it was in no tree), so the commit writes all of it.
            op.dirty_data(file, 0, file.size().max(0) as u64);
        }
        op.dirty(dir);
        Ok(done)
    }

    extern "C" fn unlink(dir: &Inode, child: Child<'_>) -> Result<Removed> {
        let sbi = sb_info(dir);
        sbi.count(Op::Unlink);
        let mut op = disk::begin(dir.super_block(), Reserve::NAMESPACE)?;
        let losses = [Loss::of(&child, None)?];
        let held = VectorRemoval::prepare(&losses)?;
        let extra = is_extra_name(&child);
        log_unlink(&mut op, dir, &child);
        let name = child.dentry();
        // Drops the link and unpins the dentry.
        let done = dentry::simple_unlink(child)?;
        // Unhashed now rather than when the VFS deletes it, after the
        // file's lock is released: the next change of the file's names
        // must not count this one among its names (file_vector.rs).
        name.drop_hash();
        if extra {
            sbi.release_ispace(BOGO_INODE_SIZE);
        }
        held.finish(sbi, &mut op);
        Ok(done)
    }

    #[export_name = "vexfs_rmdir"]
    #[inline(never)]
    extern "C" fn rmdir(dir: &Inode, child: Child<'_>) -> Result<Removed> {
        sb_info(dir).count(Op::Rmdir);
        if !child.dentry().is_empty_dir() {
            return Err(ENOTEMPTY);
        }
        let mut op = disk::begin(dir.super_block(), Reserve::NAMESPACE)?;
        log_unlink(&mut op, dir, &child);
        // ENOTEMPTY is checked.
        dentry::simple_rmdir(child)
    }

    #[export_name = "vexfs_rename"]
    #[inline(never)]
    extern "C" fn rename(
        idmap: &MntIdmap,
        old_dir: &Inode,
        old: Child<'_>,
        new_dir: &Inode,
        new: Child<'_>,
        flags: u32,
    ) -> Result<Removed> {
        let sbi = sb_info(old_dir);
        sbi.count(Op::Rename);
        if flags & !(rename::NOREPLACE | rename::EXCHANGE | rename::WHITEOUT) != 0 {
            return Err(EINVAL);
        }
        let exchange = flags & rename::EXCHANGE != 0;
        let target_positive = new.inode().is_some();
        if !exchange && target_positive && !new.dentry().is_empty_dir() {
            return Err(ENOTEMPTY);
        }
        let same_dir = core::ptr::eq(old_dir, new_dir);
        let (old_parent, new_parent) = (old.parent(), new.parent());
        if !same_dir {
            refuse_tree_change(old.inode(), old_parent, new_parent)?;
            if exchange {
                refuse_tree_change(new.inode(), new_parent, old_parent)?;
            }
        }
        let mut op = disk::begin(old_dir.super_block(), Reserve::NAMESPACE)?;
        // Which files lose their last name in a collection's tree, and with
        // it their vectors: the moved file leaves `old_dir` for `new_dir`;
        // a replaced file leaves `new_dir`; in an exchange, each file
        // leaves its directory for the other.
        let losses = [
            if same_dir {
                None
            } else {
                Loss::of(&old, Some(new_parent))?
            },
            if target_positive && (!exchange || !same_dir) {
                Loss::of(&new, exchange.then_some(old_parent))?
            } else {
                None
            },
        ];
        let held = VectorRemoval::prepare(&losses)?;
        // Everything that can fail before anything is logged.
        let white = if flags & rename::WHITEOUT != 0 {
            Some(whiteout(old_dir, &old)?)
        } else {
            None
        };
        // The names as they were, for the log: first what goes, then what
        // comes (a whiteout takes the old name).
        let (mut old_name, mut new_name) = ([0u8; NAME_MAX], [0u8; NAME_MAX]);
        let old_name = old.dentry().name(&mut old_name);
        let new_name = new.dentry().name(&mut new_name);
        let moved = old.inode().ok_or(ENOENT)?;
        if target_positive {
            op.log(&fmt::Record::Unlink {
                dir: new_dir.ino(),
                name: new_name,
            });
        }
        op.log(&fmt::Record::Unlink {
            dir: old_dir.ino(),
            name: old_name,
        });
        op.log(&fmt::Record::Link {
            dir: new_dir.ino(),
            ino: moved.ino(),
            name: new_name,
        });
        if let Some(target) = new.inode().filter(|_| exchange) {
            op.log(&fmt::Record::Link {
                dir: old_dir.ino(),
                ino: target.ino(),
                name: old_name,
            });
        }
        op.dirty(old_dir);
        op.dirty(new_dir);
        op.dirty(moved);
        if let Some(target) = new.inode() {
            op.dirty(target);
        }
        if let Some((white, inode)) = white {
            op.log(&fmt::Record::Link {
                dir: old_dir.ino(),
                ino: inode.inode().ino(),
                name: old_name,
            });
            op.dirty(inode.inode());
            white.instantiate(inode);
            old_dir.touch_dir();
        }
        let replaced_extra_name = !exchange && target_positive && is_extra_name(&new);
        // With ENOTEMPTY checked above, simple_rename cannot fail.
        let done = dentry::simple_rename(idmap, old, new, flags & !rename::WHITEOUT)?;
        if replaced_extra_name {
            sbi.release_ispace(BOGO_INODE_SIZE);
        }
        held.finish(sbi, &mut op);
        Ok(done)
    }

    // The attribute operations are those of `NodeInode` (the `#[vtable]`
    // macro must see each method, so they are written out).
    extern "C" fn setattr(idmap: &MntIdmap, dentry: &Dentry, attr: &mut Iattr) -> Result {
        NodeInode::setattr(idmap, dentry, attr)
    }

    extern "C" fn getattr(
        idmap: &MntIdmap,
        dentry: &Dentry,
        stat: &mut Kstat,
        mask: u32,
        flags: u32,
    ) -> Result {
        NodeInode::getattr(idmap, dentry, stat, mask, flags)
    }

    extern "C" fn listxattr(dentry: &Dentry, buf: Option<&mut [u8]>) -> Result<usize> {
        NodeInode::listxattr(dentry, buf)
    }
}
