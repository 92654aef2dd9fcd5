// SPDX-License-Identifier: GPL-2.0

//! Inodes and directory operations.
//!
//! Names live only in the dcache, as in ramfs and tmpfs: a created entry's
//! dentry is pinned (`d_make_persistent`) until unlinked, and the VFS
//! library's `simple_*` helpers do the dcache bookkeeping. Each operation is
//! a named, non-inlined `vexfs_*` entry point (a stable probe point, see
//! Documentation/) that counts itself and then does the work.
//!
//! Every inode carries an [`InodeInfo`] in `i_private`: its extended
//! attributes, a regular file's data file (a shmem file on the mount's
//! private tmpfs, see `file.rs`), a symlink's target, and a directory's
//! vector collection once it becomes one.

use core::ffi::CStr;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::alloc::flags::GFP_KERNEL_ACCOUNT;
use kernel::alloc::KVec;
use kernel::ffi::{c_char, c_int, c_uint};

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::abi::Op;
use crate::collection::Collection;
use crate::file;
use crate::file_vector;
use crate::mount_opts::BOGO_INODE_SIZE;
use crate::super_block::SbInfo;
use crate::sys::{self, DataFile, Inode, NewInode};
use crate::xattr::{self, XattrStore};

const S_IFMT: u16 = bindings::S_IFMT as u16;
const S_IFREG: u16 = bindings::S_IFREG as u16;
const S_IFDIR: u16 = bindings::S_IFDIR as u16;
const S_IFLNK: u16 = bindings::S_IFLNK as u16;
const S_IFCHR: u16 = bindings::S_IFCHR as u16;

/// VexFS's state of one inode, owned through `i_private`.
#[pin_data]
pub(crate) struct InodeInfo {
    /// Regular files: the shmem file holding the data.
    pub(crate) data: Option<DataFile>,
    /// Symlinks: the target with its NUL (`i_link` points into it).
    link: KVec<u8>,
    /// Directories: the collection, once `VEXFS_IOC_CREATE` made one.
    collection: AtomicPtr<Collection>,
    #[pin]
    pub(crate) xattrs: XattrStore,
}

/// The [`InodeInfo`] of a VexFS inode.
pub(crate) fn info<'a>(inode: Inode<'a>) -> &'a InodeInfo {
    // SAFETY: Every VexFS inode gets its `InodeInfo` in `new_inode`, before
    // any other code sees it, and keeps it until `free_info`; the inode is
    // live for `'a`.
    unsafe { &*inode.private().cast::<InodeInfo>() }
}

impl InodeInfo {
    /// The collection of a directory, if it is one.
    pub(crate) fn collection(&self) -> Option<&Collection> {
        let p = self.collection.load(Ordering::Acquire);
        // SAFETY: Only ever set (once) from `Arc::into_raw` by
        // `set_collection`; that reference is dropped in `release_evicted`,
        // when no borrow of the inode is left.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Makes the directory a collection; `EEXIST` if it already is one.
    pub(crate) fn set_collection(&self, coll: Arc<Collection>) -> Result {
        let raw = Arc::into_raw(coll).cast_mut();
        match self.collection.compare_exchange(
            core::ptr::null_mut(),
            raw,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(_) => {
                // SAFETY: Not published: the reference is still ours.
                drop(unsafe { Arc::from_raw(raw) });
                Err(EEXIST)
            }
        }
    }
}

/// Creates an inode of `mode` on `sb`, wired to VexFS's operations, with
/// the inode space it takes charged to the mount (`ENOSPC` at
/// `nr_inodes`) and, with a parent, the parent's default ACL applied.
pub(crate) fn new_inode(
    sb: *mut bindings::super_block,
    dir: Option<Inode<'_>>,
    mode: u16,
    dev: u32,
) -> Result<NewInode> {
    // SAFETY: `sb` is a VexFS superblock being filled or in use.
    let sbi = unsafe { SbInfo::of(sb) };
    let ino = sbi.inode_created()?;
    let inode = match NewInode::new(sb, ino, dir, mode) {
        Ok(i) => i,
        Err(e) => {
            sbi.inode_evicted(0);
            return Err(e);
        }
    };
    // From here on, dropping `inode` evicts it, which gives the space back.
    let data = match mode & S_IFMT {
        S_IFREG => Some(sbi.data.new_file()?),
        _ => None,
    };
    let info = KBox::pin_init(
        pin_init!(InodeInfo {
            data,
            link: KVec::new(),
            collection: AtomicPtr::new(core::ptr::null_mut()),
            xattrs <- XattrStore::new(),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    // SAFETY: Leaked into `i_private` and freed by `free_info`; never moved.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(info) });
    inode.inode().set_private(raw.cast());
    match mode & S_IFMT {
        S_IFREG => inode.set_ops(&NODE_INODE_OPS, Some(&file::FILE_OPS)),
        S_IFDIR => {
            inode.set_ops(&DIR_INODE_OPS, Some(&file::DIR_OPS));
            // A directory starts with two links: its name and its ".".
            inode.inode().inc_nlink();
        }
        // The symlink operations are set with its target.
        S_IFLNK => {}
        _ => {
            inode.set_ops(&NODE_INODE_OPS, None);
            inode.init_special(mode, dev);
        }
    }
    match dir {
        Some(dir) => xattr::acl_create(dir, inode.inode())?,
        None => xattr::acl_none(inode.inode()),
    }
    inode.hash();
    Ok(inode)
}

/// Releases what an evicted inode holds besides its memory: the data file
/// (its pages go back to the mount), the collection, the extended
/// attributes. Returns the inode space the attributes took.
///
/// # Safety
///
/// `inode` is being evicted: no other user of it is left.
pub(crate) unsafe fn release_evicted(inode: Inode<'_>) -> u64 {
    let p = inode.private().cast::<InodeInfo>();
    if p.is_null() {
        return 0;
    }
    // SAFETY: No other user is left (guaranteed by the caller); the
    // `InodeInfo` itself stays until `free_info`, for RCU path walks.
    let info = unsafe { &mut *p };
    drop(info.data.take());
    let coll = info
        .collection
        .swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !coll.is_null() {
        // SAFETY: Set by `set_collection` from `Arc::into_raw`; the
        // directory's reference ends here (queued maintenance may hold
        // another until it has run, and then does nothing).
        let coll = unsafe { Arc::from_raw(coll) };
        coll.set_dying();
        drop(coll);
    }
    info.xattrs.clear()
}

/// Frees the [`InodeInfo`] after the RCU grace period (`free_inode`).
///
/// # Safety
///
/// `inode` is dead: after `release_evicted`, past an RCU grace period.
pub(crate) unsafe fn free_info(inode: Inode<'_>) {
    let p = inode.private().cast::<InodeInfo>();
    if !p.is_null() {
        // SAFETY: Leaked in `new_inode` from a pinned box; its last use.
        drop(unsafe { Pin::new_unchecked(KBox::from_raw(p)) });
    }
}

/// The SbInfo of the mount a live VexFS inode belongs to.
pub(crate) fn sb_info<'a>(inode: Inode<'a>) -> &'a SbInfo {
    // SAFETY: A live VexFS inode pins its mounted superblock.
    unsafe { SbInfo::of(inode.super_block()) }
}

/// Creates a node of `mode` named by the negative `dentry` in `dir`.
///
/// # Safety
///
/// Called from a VFS directory operation: `dir` live and locked, `dentry`
/// negative and a child of `dir`.
unsafe fn make_node(dir: Inode<'_>, dentry: *mut bindings::dentry, mode: u16, dev: u32) -> Result {
    let inode = new_inode(dir.super_block(), Some(dir), mode, dev)?;
    // SAFETY: Guaranteed by the caller.
    unsafe { inode.instantiate(dentry) };
    dir.touch_dir();
    Ok(())
}

fn errno(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// VFS entry point `vexfs_lookup`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_lookup(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    flags: c_uint,
) -> *mut bindings::dentry {
    // SAFETY: The VFS passes a live directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Lookup);
    // SAFETY: Arguments as received from the VFS.
    unsafe { bindings::simple_lookup(dir, dentry, flags) }
}

/// VFS entry point `vexfs_create`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_create(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
) -> c_int {
    // SAFETY: The VFS passes a live, locked directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Create);
    // SAFETY: Called as a VFS create operation.
    errno(unsafe { make_node(d, dentry, mode | S_IFREG, 0) })
}

/// VFS entry point `vexfs_tmpfile`: an unnamed regular file (`O_TMPFILE`),
/// which `linkat` may give a name later.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_tmpfile(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    file: *mut bindings::file,
    mode: bindings::umode_t,
) -> c_int {
    // SAFETY: The VFS passes a live directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Create);
    let inode = match new_inode(d.super_block(), Some(d), mode | S_IFREG, 0) {
        Ok(i) => i,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: `file` is the file being opened by O_TMPFILE, its dentry
    // negative and unhashed; our reference moves to it.
    unsafe { inode.instantiate_tmpfile(file) }
}

/// VFS entry point `vexfs_mknod`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_mknod(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
    dev: bindings::dev_t,
) -> c_int {
    // SAFETY: The VFS passes a live, locked directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Create);
    // SAFETY: Called as a VFS mknod operation.
    errno(unsafe { make_node(d, dentry, mode, dev) })
}

/// VFS entry point `vexfs_mkdir`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_mkdir(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
) -> *mut bindings::dentry {
    // SAFETY: The VFS passes a live, locked directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Mkdir);
    // SAFETY: Called as a VFS mkdir operation.
    match unsafe { make_node(d, dentry, mode | S_IFDIR, 0) } {
        Ok(()) => {
            // The new directory's ".." links to `dir`.
            d.inc_nlink();
            // NULL: the dentry passed in is the one now in use.
            core::ptr::null_mut()
        }
        Err(e) => e.to_ptr(),
    }
}

/// VFS entry point `vexfs_symlink`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_symlink(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    target: *const c_char,
) -> c_int {
    // SAFETY: The VFS passes a live, locked directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Symlink);
    // SAFETY: The VFS passes the target as a NUL-terminated kernel string
    // (copied from user space and bounded by PATH_MAX).
    let target = unsafe { CStr::from_char_ptr(target) };
    let result = (|| {
        let inode = new_inode(d.super_block(), Some(d), S_IFLNK | 0o777, 0)?;
        set_symlink_target(&inode, target)?;
        // SAFETY: Called as a VFS symlink operation.
        unsafe { inode.instantiate(dentry) };
        d.touch_dir();
        Ok(())
    })();
    errno(result)
}

/// Stores `target` in the new symlink's [`InodeInfo`] and points `i_link`
/// at it, so that path walks follow it without a call (`simple_get_link`).
fn set_symlink_target(inode: &NewInode, target: &CStr) -> Result {
    let bytes = target.to_bytes_with_nul();
    let i = inode.inode();
    // SAFETY: A fresh inode only we can see: nothing else uses its
    // `InodeInfo` yet.
    let info = unsafe { &mut *i.private().cast::<InodeInfo>() };
    info.link.extend_from_slice(bytes, GFP_KERNEL_ACCOUNT)?;
    // SAFETY: `link` lives, unchanged, until `free_info`, after the RCU
    // grace period that ends every path walk that could read `i_link`.
    unsafe { inode.set_link(info.link.as_ptr(), bytes.len() - 1, &SYMLINK_INODE_OPS) };
    Ok(())
}

/// VFS entry point `vexfs_link`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_link(
    old: *mut bindings::dentry,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    // SAFETY: The VFS passes a live, locked directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    let sbi = sb_info(d);
    sbi.count(Op::Link);
    // SAFETY: `old` is a positive dentry of ours, held by the VFS.
    let file = unsafe { Inode::from_raw((*old).d_inode) };
    // Each further name takes inode space, as on tmpfs, so that
    // `nr_inodes` also bounds names (an O_TMPFILE file's first name does
    // not: its inode has its space already).
    let extra_name = file.nlink() > 0;
    if extra_name {
        if let Err(e) = sbi.reserve_ispace(BOGO_INODE_SIZE) {
            return e.to_errno();
        }
    }
    // SAFETY: Arguments as received from the VFS; simple_link updates
    // nlink and times and pins the new dentry. A file's vector belongs to
    // the file, not to a name: a second name changes nothing about it.
    let ret = unsafe { bindings::simple_link(old, dir, dentry) };
    if ret != 0 && extra_name {
        sbi.release_ispace(BOGO_INODE_SIZE);
    }
    ret
}

/// Whether `dentry` is a name whose file keeps another: its inode space
/// (see `vexfs_link`) goes back when it goes; the last name's goes with
/// the inode.
///
/// # Safety
///
/// `dentry` is positive and held.
unsafe fn is_extra_name(dentry: *mut bindings::dentry) -> bool {
    // SAFETY: Guaranteed by the caller.
    let file = unsafe { Inode::from_raw((*dentry).d_inode) };
    file.nlink() > 1 && !file.is_dir()
}

/// VFS entry point `vexfs_unlink`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_unlink(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    // SAFETY: The VFS passes a live, locked directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Unlink);
    // SAFETY: The dentry is positive (the VFS checked it) and held.
    let leaving = unsafe { file_vector::FileLeaving::new(d, dentry) };
    let held = match file_vector::VectorRemoval::prepare([&leaving]) {
        Ok(h) => h,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: The dentry is positive and held.
    if unsafe { is_extra_name(dentry) } {
        sb_info(d).release_ispace(BOGO_INODE_SIZE);
    }
    // SAFETY: Arguments as received from the VFS; simple_unlink drops the
    // link and unpins the dentry.
    unsafe { bindings::simple_unlink(dir, dentry) };
    held.finish(sb_info(d));
    0
}

/// VFS entry point `vexfs_rmdir`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_rmdir(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    // SAFETY: The VFS passes a live, locked directory inode of ours.
    let d = unsafe { Inode::from_raw(dir) };
    sb_info(d).count(Op::Rmdir);
    // SAFETY: Arguments as received from the VFS; ENOTEMPTY is checked.
    unsafe { bindings::simple_rmdir(dir, dentry) }
}

/// Leaves a whiteout (a 0/0 character device, as overlayfs expects) at the
/// name `old` is moving away from.
///
/// # Safety
///
/// Inside a VFS rename: `dir` locked, `old` a positive child of it.
unsafe fn whiteout(dir: Inode<'_>, old: *mut bindings::dentry) -> Result {
    // SAFETY: Guaranteed by the caller.
    let white = unsafe { sys::NewDentry::sibling(old) }?;
    // SAFETY: A new negative dentry under the locked `dir`.
    unsafe {
        make_node(
            dir,
            white.as_ptr(),
            S_IFCHR | bindings::WHITEOUT_MODE as u16,
            bindings::WHITEOUT_DEV,
        )
    }
}

/// VFS entry point `vexfs_rename`.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_rename(
    idmap: *mut bindings::mnt_idmap,
    old_dir: *mut bindings::inode,
    old: *mut bindings::dentry,
    new_dir: *mut bindings::inode,
    new: *mut bindings::dentry,
    flags: c_uint,
) -> c_int {
    // SAFETY: The VFS passes live, locked directory inodes of ours.
    let (d, nd) = unsafe { (Inode::from_raw(old_dir), Inode::from_raw(new_dir)) };
    sb_info(d).count(Op::Rename);
    let known = bindings::RENAME_NOREPLACE | bindings::RENAME_EXCHANGE | bindings::RENAME_WHITEOUT;
    if flags & !known != 0 {
        return EINVAL.to_errno();
    }
    let exchange = flags & bindings::RENAME_EXCHANGE != 0;
    // SAFETY: The VFS passes the target dentry, held, positive when the
    // rename replaces or exchanges a name.
    let target_positive = unsafe { !(*new).d_inode.is_null() };
    // SAFETY: As above; `new` is a child of the locked `new_dir`.
    if !exchange && target_positive && unsafe { bindings::simple_empty(new) } == 0 {
        return ENOTEMPTY.to_errno();
    }
    // Which files lose their last name in a collection, and with it their
    // vector: the moved file leaves `old_dir`; a replaced file leaves
    // `new_dir`; in an exchange, each file leaves its directory.
    // SAFETY: Both dentries are held; `old` is positive, `new` is when
    // `target_positive`.
    let leaving = unsafe {
        [
            (old_dir != new_dir).then(|| file_vector::FileLeaving::new(d, old)),
            (target_positive && (!exchange || old_dir != new_dir))
                .then(|| file_vector::FileLeaving::new(nd, new)),
        ]
    };
    let held = match file_vector::VectorRemoval::prepare(leaving.iter().flatten()) {
        Ok(h) => h,
        Err(e) => return e.to_errno(),
    };
    if flags & bindings::RENAME_WHITEOUT != 0 {
        // SAFETY: Inside this rename: `old_dir` locked, `old` its child.
        if let Err(e) = unsafe { whiteout(d, old) } {
            return e.to_errno();
        }
    }
    // SAFETY: `new` is positive and held when `target_positive`.
    let replaced_extra_name = !exchange && target_positive && unsafe { is_extra_name(new) };
    // SAFETY: Arguments as received from the VFS; with ENOTEMPTY checked
    // above, simple_rename cannot fail: it handles RENAME_NOREPLACE (the
    // VFS already refused an existing target), RENAME_EXCHANGE, overwrite
    // and directory nlinks.
    let ret = unsafe {
        bindings::simple_rename(
            idmap,
            old_dir,
            old,
            new_dir,
            new,
            flags & !bindings::RENAME_WHITEOUT,
        )
    };
    if ret == 0 {
        if replaced_extra_name {
            sb_info(d).release_ispace(BOGO_INODE_SIZE);
        }
        held.finish(sb_info(d));
    }
    ret
}

/// VFS entry point `vexfs_setattr`: attribute changes, a size change of a
/// regular file's data, and the ACL's mode bits after a chmod.
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
#[no_mangle]
unsafe extern "C" fn vexfs_setattr(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    attr: *mut bindings::iattr,
) -> c_int {
    // SAFETY: The VFS passes a positive dentry of ours, with the inode
    // locked.
    let inode = unsafe { Inode::from_raw((*dentry).d_inode) };
    sb_info(inode).count(Op::Setattr);
    // SAFETY: The VFS hands us its `iattr` for this call to read and adjust.
    let iattr = unsafe { &mut *attr };
    // SAFETY: Arguments as received from the VFS.
    if let Err(e) = unsafe { sys::setattr_prepare(idmap, dentry, attr) } {
        return e.to_errno();
    }
    if iattr.ia_valid & bindings::ATTR_SIZE != 0 && iattr.ia_size != inode.size() {
        // POSIX: a size change marks mtime and ctime for update, but only
        // ftruncate(2) and O_TRUNC ask for it; truncate(2) leaves it to the
        // filesystem (as tmpfs and ext4 do). notify_change() has already
        // set `ia_mtime` and `ia_ctime` to the current time.
        iattr.ia_valid |= bindings::ATTR_MTIME | bindings::ATTR_CTIME;
        if let Some(data) = info(inode).data.as_ref() {
            if let Err(e) = data.set_size(iattr.ia_size) {
                return e.to_errno();
            }
        }
        inode.set_size(iattr.ia_size);
    }
    // SAFETY: As above; the checks passed.
    unsafe { sys::setattr_copy(idmap, inode, attr) };
    if iattr.ia_valid & bindings::ATTR_MODE != 0 {
        // SAFETY: As above.
        if let Err(e) = unsafe { sys::posix_acl_chmod(idmap, dentry, inode) } {
            return e.to_errno();
        }
    }
    0
}

/// VFS entry point `vexfs_getattr`: the VFS's attributes, with a regular
/// file's blocks counted from its data (tmpfs pages).
///
/// # Safety
///
/// Called only by the VFS (or VexFS itself), with the arguments of
/// that operation.
unsafe extern "C" fn vexfs_getattr(
    idmap: *mut bindings::mnt_idmap,
    path: *const bindings::path,
    stat: *mut bindings::kstat,
    request_mask: u32,
    _flags: c_uint,
) -> c_int {
    // SAFETY: The VFS passes a path of ours and a `kstat` to fill.
    let inode = unsafe { Inode::from_raw((*(*path).dentry).d_inode) };
    // SAFETY: As above.
    unsafe { sys::generic_fillattr(idmap, request_mask, inode, stat) };
    if let Some(data) = info(inode).data.as_ref() {
        // SAFETY: As above.
        unsafe { (*stat).blocks = data.blocks() };
    }
    0
}

/// Regular files and special files (devices, FIFOs, sockets, whiteouts):
/// attributes, extended attributes and ACLs; data goes through the file
/// operations. Every other table starts from this one.
const NODE_INODE_OPS: bindings::inode_operations = bindings::inode_operations {
    setattr: Some(vexfs_setattr),
    getattr: Some(vexfs_getattr),
    listxattr: Some(xattr::vexfs_listxattr),
    set_acl: Some(xattr::vexfs_set_acl),
    ..pin_init::zeroed()
};

const DIR_INODE_OPS: bindings::inode_operations = bindings::inode_operations {
    lookup: Some(vexfs_lookup),
    create: Some(vexfs_create),
    tmpfile: Some(vexfs_tmpfile),
    link: Some(vexfs_link),
    unlink: Some(vexfs_unlink),
    symlink: Some(vexfs_symlink),
    mkdir: Some(vexfs_mkdir),
    rmdir: Some(vexfs_rmdir),
    mknod: Some(vexfs_mknod),
    rename: Some(vexfs_rename),
    ..NODE_INODE_OPS
};

/// Symlinks have no ACLs (as on tmpfs).
const SYMLINK_INODE_OPS: bindings::inode_operations = bindings::inode_operations {
    get_link: Some(bindings::simple_get_link),
    set_acl: None,
    ..NODE_INODE_OPS
};
