// SPDX-License-Identifier: GPL-2.0

//! Inodes and directory operations.
//!
//! Names live only in the dcache, as in ramfs: a created entry's dentry is
//! pinned (`d_make_persistent`) until unlinked, and the VFS library's
//! `simple_*` helpers do the dcache bookkeeping. Each operation is a named,
//! non-inlined `vexfs_*` entry point (a stable probe point, see
//! Documentation/) that counts itself and then does the work.

use core::ffi::CStr;

use kernel::ffi::{c_char, c_int, c_uint};

use kernel::bindings;
use kernel::prelude::*;

use crate::abi::Op;
use crate::file;
use crate::super_block::SbInfo;
use crate::sys::{err_ptr, Inode, NewInode, Parent};
use crate::vector_ioctl;

const S_IFMT: u16 = bindings::S_IFMT as u16;
const S_IFREG: u16 = bindings::S_IFREG as u16;
const S_IFDIR: u16 = bindings::S_IFDIR as u16;
const S_IFLNK: u16 = bindings::S_IFLNK as u16;

/// Creates an inode of `mode` on `sb`, wired to VexFS's operations.
pub(crate) fn new_inode(
    sb: *mut bindings::super_block,
    dir: Option<Inode<'_>>,
    mode: u16,
    dev: u32,
) -> Result<NewInode> {
    let inode = NewInode::new(sb, dir, mode)?;
    // SAFETY: `sb` is a VexFS superblock being filled or in use.
    unsafe { SbInfo::of(sb) }.inode_created();
    inode.use_ram_pages();
    match mode & S_IFMT {
        S_IFREG => inode.set_ops(&FILE_INODE_OPS, Some(&file::FILE_OPS)),
        S_IFDIR => {
            inode.set_ops(&DIR_INODE_OPS, Some(&file::DIR_OPS));
            // A directory starts with two links: its name and its ".".
            inode.inode().inc_nlink();
        }
        // The symlink operations are set with its target.
        S_IFLNK => {}
        _ => inode.init_special(mode, dev),
    }
    Ok(inode)
}

/// The SbInfo of the mount `dir` belongs to.
fn sb_info<'a>(dir: Inode<'a>) -> &'a SbInfo {
    // SAFETY: `dir` is a live inode of a mounted VexFS.
    unsafe { SbInfo::of(dir.super_block()) }
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
        Err(e) => err_ptr(e),
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
        inode.set_symlink_target(target)?;
        // SAFETY: Called as a VFS symlink operation.
        unsafe { inode.instantiate(dentry) };
        d.touch_dir();
        Ok(())
    })();
    errno(result)
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
    sb_info(d).count(Op::Link);
    // SAFETY: The VFS passes the positive source dentry and holds it.
    let (file, source_dir) = unsafe { (Inode::from_raw((*old).d_inode), Parent::of_dentry(old)) };
    // A file with a vector keeps exactly one name, in its collection (the
    // VFS holds the file's lock, as attach does, so this cannot race).
    if file.is_reg() {
        if let Some(coll) = vector_ioctl::collection_of(source_dir.inode()) {
            if coll.has_file_vector(file.ino()) {
                return EPERM.to_errno();
            }
        }
    }
    // SAFETY: Arguments as received from the VFS; simple_link updates
    // nlink and times and pins the new dentry.
    unsafe { bindings::simple_link(old, dir, dentry) }
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
    // SAFETY: The dentry is positive (the VFS checked it).
    let victim = unsafe { Inode::from_raw((*dentry).d_inode) };
    // SAFETY: Arguments as received from the VFS; simple_unlink drops the
    // link and unpins the dentry.
    let ret = unsafe { bindings::simple_unlink(dir, dentry) };
    if ret == 0 {
        forget_file_vector(d, victim);
    }
    ret
}

/// A file's vector goes with its last name in the collection.
fn forget_file_vector(dir: Inode<'_>, file: Inode<'_>) {
    if file.is_reg() && file.nlink() == 0 {
        if let Some(coll) = vector_ioctl::collection_of(dir) {
            sb_info(dir).count(Op::VecDelete);
            coll.delete_file_vector(file.ino());
        }
    }
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
    let d = unsafe { Inode::from_raw(old_dir) };
    sb_info(d).count(Op::Rename);
    // SAFETY: The VFS passes the target directory, live and locked, and the
    // target dentry, which is positive when the rename replaces a name.
    let (nd, moved, replaced) = unsafe {
        let target = (*new).d_inode;
        (
            Inode::from_raw(new_dir),
            Inode::from_raw((*old).d_inode),
            (!target.is_null()).then(|| Inode::from_raw(target)),
        )
    };
    // SAFETY: Arguments as received from the VFS; simple_rename handles
    // RENAME_NOREPLACE, RENAME_EXCHANGE, overwrite and directory nlinks.
    let ret = unsafe { bindings::simple_rename(idmap, old_dir, old, new_dir, new, flags) };
    if ret != 0 {
        return ret;
    }
    let exchange = flags & bindings::RENAME_EXCHANGE != 0;
    if !exchange {
        if let Some(victim) = replaced {
            forget_file_vector(nd, victim);
        }
    }
    // A file that leaves its collection leaves its vector behind: deleted.
    if old_dir != new_dir {
        detach_file_vector(d, moved);
        if let (true, Some(other)) = (exchange, replaced) {
            detach_file_vector(nd, other);
        }
    }
    ret
}

/// Deletes the vector `file` has in `dir`'s collection, if any.
fn detach_file_vector(dir: Inode<'_>, file: Inode<'_>) {
    if file.is_reg() {
        if let Some(coll) = vector_ioctl::collection_of(dir) {
            coll.delete_file_vector(file.ino());
        }
    }
}

/// VFS entry point `vexfs_setattr`.
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
    // SAFETY: The VFS passes a positive dentry of ours.
    let inode = unsafe { Inode::from_raw((*dentry).d_inode) };
    sb_info(inode).count(Op::Setattr);
    // SAFETY: The VFS hands us its `iattr` for this call to read and adjust.
    let iattr = unsafe { &mut *attr };
    // POSIX: a size change marks mtime and ctime for update, but only
    // ftruncate(2) and O_TRUNC ask for it; truncate(2) leaves it to the
    // filesystem (as tmpfs and ext4 do). notify_change() has already set
    // `ia_mtime` and `ia_ctime` to the current time.
    if iattr.ia_valid & bindings::ATTR_SIZE != 0 && iattr.ia_size != inode.size() {
        iattr.ia_valid |= bindings::ATTR_MTIME | bindings::ATTR_CTIME;
    }
    // SAFETY: Arguments as received from the VFS; simple_setattr checks
    // permissions and truncates the page cache on a size change.
    unsafe { bindings::simple_setattr(idmap, dentry, attr) }
}

const DIR_INODE_OPS: bindings::inode_operations = bindings::inode_operations {
    lookup: Some(vexfs_lookup),
    create: Some(vexfs_create),
    link: Some(vexfs_link),
    unlink: Some(vexfs_unlink),
    symlink: Some(vexfs_symlink),
    mkdir: Some(vexfs_mkdir),
    rmdir: Some(vexfs_rmdir),
    mknod: Some(vexfs_mknod),
    rename: Some(vexfs_rename),
    setattr: Some(vexfs_setattr),
    getattr: Some(bindings::simple_getattr),
    ..pin_init::zeroed()
};

const FILE_INODE_OPS: bindings::inode_operations = bindings::inode_operations {
    setattr: Some(vexfs_setattr),
    // simple_getattr reports st_blocks from the page cache size.
    getattr: Some(bindings::simple_getattr),
    ..pin_init::zeroed()
};
