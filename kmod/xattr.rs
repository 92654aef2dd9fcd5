// SPDX-License-Identifier: GPL-2.0

//! Extended attributes and POSIX ACLs, as tmpfs has them.
//!
//! `user.*`, `trusted.*` and `security.*` attributes are kept per inode in
//! memory. The VFS checks who may read and write them (`trusted.*` needs
//! `CAP_SYS_ADMIN`; `user.*` only exists on regular files and directories
//! and follows the file's permissions); their size is charged to the
//! mount's inode space exactly as tmpfs charges it, so `nr_inodes` bounds
//! attributes too. ACLs (`system.posix_acl_access` and `_default`) live in
//! the inode's ACL cache, as on tmpfs: the VFS enforces them in permission
//! checks, new entries inherit a directory's default ACL, and a chmod
//! updates the access ACL's mask.

use kernel::alloc::flags::GFP_KERNEL_ACCOUNT;
use kernel::alloc::{KVVec, KVec};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::disk::{self, OpExt};
use crate::disk_format as fmt;
use crate::inode;
use crate::super_block::SbInfo;
use crate::vfs::task::{self, Capability};
use crate::vfs::xattr::{flags, XattrHandler};
use crate::vfs::{Dentry, Inode};

/// Attributes walked between reschedule points: one inode may hold as
/// many as its mount's inode space allows.
const RESCHED_EVERY: usize = 1024;

/// One attribute: its full name (with the namespace prefix) and value.
struct Xattr {
    name: KVec<u8>,
    value: KVVec<u8>,
}

impl Xattr {
    /// Inode space it takes, by tmpfs' measure (`simple_xattr_space`).
    fn space(&self) -> u64 {
        space(&self.name, self.value.len())
    }
}

fn space(name: &[u8], size: usize) -> u64 {
    (40 + size + name.len()) as u64
}

/// The extended attributes of one inode.
#[pin_data]
pub(crate) struct XattrStore {
    #[pin]
    list: Mutex<KVVec<Xattr>>,
}

impl XattrStore {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            list <- new_mutex!(KVVec::new()),
        })
    }

    /// Copies the value of `name` into `buf` (or, with no buffer, returns
    /// its size): `ENODATA` if absent, `ERANGE` if `buf` is too small.
    fn get(&self, name: &[u8], buf: Option<&mut [u8]>) -> Result<usize> {
        let list = self.list.lock();
        let x = list.iter().find(|x| x.name == name).ok_or(ENODATA)?;
        match buf {
            None => Ok(x.value.len()),
            Some(buf) => {
                let dst = buf.get_mut(..x.value.len()).ok_or(ERANGE)?;
                dst.copy_from_slice(&x.value);
                Ok(x.value.len())
            }
        }
    }

    /// Whether the attribute `name` exists and holds exactly `value` (a
    /// search's filter; the caller checked that it may read it).
    pub(crate) fn value_is(&self, name: &[u8], value: &[u8]) -> bool {
        let list = self.list.lock();
        list.iter().any(|x| x.name == name && x.value[..] == *value)
    }

    /// Sets (`Some`) or removes (`None`) `name`, with the VFS's
    /// `XATTR_CREATE` and `XATTR_REPLACE` rules, charging the difference
    /// in inode space to `sbi`.
    fn set(&self, sbi: &SbInfo, name: &[u8], value: Option<&[u8]>, flags: u32) -> Result {
        // Allocate and charge the new attribute before looking.
        let new = match value {
            Some(v) => {
                let mut n = KVec::with_capacity(name.len(), GFP_KERNEL_ACCOUNT)?;
                n.extend_from_slice(name, GFP_KERNEL_ACCOUNT)?;
                let mut val = KVVec::with_capacity(v.len(), GFP_KERNEL_ACCOUNT)?;
                val.extend_from_slice(v, GFP_KERNEL_ACCOUNT)?;
                let x = Xattr {
                    name: n,
                    value: val,
                };
                sbi.reserve_ispace(x.space())?;
                Some(x)
            }
            None => None,
        };
        let mut list = self.list.lock();
        let at = list.iter().position(|x| x.name == name);
        let refused = match at {
            Some(_) if flags & flags::CREATE != 0 => Some(EEXIST),
            None if flags & flags::REPLACE != 0 || new.is_none() => Some(ENODATA),
            _ => None,
        };
        if let Some(e) = refused {
            if let Some(x) = new {
                sbi.release_ispace(x.space());
            }
            return Err(e);
        }
        match (at, new) {
            // Replaced in place: nothing to allocate, nothing lost.
            (Some(i), Some(x)) => {
                let old = core::mem::replace(&mut list[i], x);
                sbi.release_ispace(old.space());
            }
            (Some(i), None) => {
                let old = list.remove(i)?;
                sbi.release_ispace(old.space());
            }
            (None, Some(x)) => {
                let space = x.space();
                if let Err(e) = list.push(x, GFP_KERNEL_ACCOUNT) {
                    // Not stored: its charge goes back.
                    sbi.release_ispace(space);
                    return Err(e.into());
                }
            }
            // Refused above (ENODATA).
            (None, None) => {}
        }
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) `name` as read from disk at mount,
    /// charged as [`Self::set`] charges.
    pub(crate) fn load(&self, sbi: &SbInfo, name: &[u8], value: Option<&[u8]>) -> Result {
        self.set(sbi, name, value, 0)
    }

    /// Calls `f` with each attribute's full name and value.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        let list = self.list.lock();
        for x in list.iter() {
            f(&x.name, &x.value);
        }
    }

    /// Appends the names the caller may list (`trusted.*` only with
    /// `CAP_SYS_ADMIN`), NUL-terminated, to `out`.
    fn list_names(&self, out: &mut NameList<'_>) -> Result {
        let trusted = Capability::SYS_ADMIN.capable_noaudit();
        let list = self.list.lock();
        for (i, x) in list.iter().enumerate() {
            if i % RESCHED_EVERY == RESCHED_EVERY - 1 {
                task::cond_resched();
            }
            if !trusted && x.name.starts_with(b"trusted.") {
                continue;
            }
            out.push(&x.name)?;
        }
        Ok(())
    }

    /// Drops every attribute (the inode is evicted); returns the inode
    /// space they took.
    pub(crate) fn clear(&self) -> u64 {
        let mut list = self.list.lock();
        let mut space = 0;
        while let Some(x) = list.pop() {
            space += x.space();
            if list.len() % RESCHED_EVERY == 0 {
                task::cond_resched();
            }
        }
        space
    }
}

/// `listxattr` output: names with their NUL, or only their total size.
struct NameList<'a> {
    buf: Option<&'a mut [u8]>,
    len: usize,
}

impl NameList<'_> {
    fn push(&mut self, name: &[u8]) -> Result {
        let end = self.len + name.len() + 1;
        if let Some(buf) = self.buf.as_deref_mut() {
            let dst = buf.get_mut(self.len..end).ok_or(ERANGE)?;
            dst[..name.len()].copy_from_slice(name);
            dst[name.len()] = 0;
        }
        self.len = end;
        Ok(())
    }
}

/// The `user.`, `trusted.` and `security.` attributes of VexFS inodes.
pub(crate) struct Xattrs;

impl XattrHandler for Xattrs {
    extern "C" fn get(inode: &Inode, name: &CStr, buf: Option<&mut [u8]>) -> Result<usize> {
        inode.data().xattrs.get(name.to_bytes(), buf)
    }

    extern "C" fn set(inode: &Inode, name: &CStr, value: Option<&[u8]>, flags: u32) -> Result {
        let sbi = inode::sb_info(inode);
        let room = disk::Reserve::xattr(value.map_or(0, <[u8]>::len));
        let mut op = disk::begin(inode.super_block(), room)?;
        let name = name.to_bytes();
        inode.data().xattrs.set(sbi, name, value, flags)?;
        inode.touch_ctime();
        let ino = inode.ino();
        op.log(&match value {
            Some(value) => fmt::Record::Xattr { ino, name, value },
            None => fmt::Record::XattrRemove { ino, name },
        });
        op.dirty(inode);
        Ok(())
    }
}

/// `inode_operations.listxattr`: the ACL names, then the attributes.
pub(crate) fn list(dentry: &Dentry, buf: Option<&mut [u8]>) -> Result<usize> {
    let inode = dentry.inode().ok_or(ENOENT)?;
    let mut out = NameList { buf, len: 0 };
    let (access, default) = inode.acl_names();
    if access {
        out.push(b"system.posix_acl_access")?;
    }
    if default {
        out.push(b"system.posix_acl_default")?;
    }
    inode.data().xattrs.list_names(&mut out)?;
    Ok(out.len)
}
