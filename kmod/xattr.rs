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

use core::ffi::{c_int, c_void, CStr};

use kernel::ffi::c_char;

use kernel::alloc::flags::GFP_KERNEL_ACCOUNT;
use kernel::alloc::{KVVec, KVec};
use kernel::bindings;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::inode;
use crate::super_block::SbInfo;
use crate::sys::{self, Inode};

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
            Some(_) if flags & bindings::XATTR_CREATE != 0 => Some(EEXIST),
            None if flags & bindings::XATTR_REPLACE != 0 || new.is_none() => Some(ENODATA),
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

    /// Appends the names the caller may list (`trusted.*` only with
    /// `CAP_SYS_ADMIN`), NUL-terminated, to `out`.
    fn list_names(&self, out: &mut NameList<'_>) -> Result {
        let trusted = sys::capable_noaudit(bindings::CAP_SYS_ADMIN);
        let list = self.list.lock();
        for (i, x) in list.iter().enumerate() {
            if i % RESCHED_EVERY == RESCHED_EVERY - 1 {
                sys::cond_resched();
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
                sys::cond_resched();
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

/// `xattr_handler.get` of the `user.`, `trusted.` and `security.` prefixes.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
unsafe extern "C" fn vexfs_xattr_get(
    handler: *const bindings::xattr_handler,
    _dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    name: *const c_char,
    buffer: *mut c_void,
    size: usize,
) -> c_int {
    // SAFETY: The VFS passes a live inode of ours, the name after the
    // handler's prefix (within the full name), and a buffer of `size`
    // bytes (or none when `size` is 0).
    let (inode, name, buf) = unsafe {
        (
            Inode::from_raw(inode),
            CStr::from_char_ptr(bindings::xattr_full_name(handler, name)),
            (size != 0).then(|| core::slice::from_raw_parts_mut(buffer.cast::<u8>(), size)),
        )
    };
    match inode::info(inode).xattrs.get(name.to_bytes(), buf) {
        Ok(n) => n as c_int,
        Err(e) => e.to_errno(),
    }
}

/// `xattr_handler.set` (and remove, with no value) of the three prefixes.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation (the
/// inode locked, permission already checked).
unsafe extern "C" fn vexfs_xattr_set(
    handler: *const bindings::xattr_handler,
    _idmap: *mut bindings::mnt_idmap,
    _dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    name: *const c_char,
    value: *const c_void,
    size: usize,
    flags: c_int,
) -> c_int {
    // SAFETY: As for `vexfs_xattr_get`; `value` is null for a removal, or
    // `size` bytes (at most XATTR_SIZE_MAX, checked by the VFS).
    let (inode, name, value) = unsafe {
        (
            Inode::from_raw(inode),
            CStr::from_char_ptr(bindings::xattr_full_name(handler, name)),
            (!value.is_null()).then(|| core::slice::from_raw_parts(value.cast::<u8>(), size)),
        )
    };
    let sbi = inode::sb_info(inode);
    match inode::info(inode)
        .xattrs
        .set(sbi, name.to_bytes(), value, flags as u32)
    {
        Ok(()) => {
            inode.touch_ctime();
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `inode_operations.listxattr`: the ACL names, then the attributes.
///
/// # Safety
///
/// Called only by the VFS, with the arguments of that operation.
pub(crate) unsafe extern "C" fn vexfs_listxattr(
    dentry: *mut bindings::dentry,
    buffer: *mut c_char,
    size: usize,
) -> isize {
    // SAFETY: The VFS passes a positive dentry of ours and a buffer of
    // `size` bytes (or none when `size` is 0).
    let (inode, buf) = unsafe {
        (
            Inode::from_raw((*dentry).d_inode),
            (size != 0).then(|| core::slice::from_raw_parts_mut(buffer.cast::<u8>(), size)),
        )
    };
    let mut out = NameList { buf, len: 0 };
    let acls = sys::acl_names(inode);
    let listed = (|| -> Result {
        if acls & sys::HAS_ACCESS_ACL != 0 {
            out.push(b"system.posix_acl_access")?;
        }
        if acls & sys::HAS_DEFAULT_ACL != 0 {
            out.push(b"system.posix_acl_default")?;
        }
        inode::info(inode).xattrs.list_names(&mut out)
    })();
    match listed {
        Ok(()) => out.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// An `xattr_handler` (it holds C string pointers, hence the wrapper).
#[repr(transparent)]
struct Handler(bindings::xattr_handler);

// SAFETY: Immutable after construction; the pointers are to static strings.
unsafe impl Sync for Handler {}

/// The handler of one prefix.
const fn handler(prefix: &'static [u8]) -> Handler {
    Handler(bindings::xattr_handler {
        name: core::ptr::null(),
        prefix: prefix.as_ptr().cast(),
        flags: 0,
        list: None,
        get: Some(vexfs_xattr_get),
        set: Some(vexfs_xattr_set),
    })
}

static SECURITY: Handler = handler(bindings::XATTR_SECURITY_PREFIX);
static TRUSTED: Handler = handler(bindings::XATTR_TRUSTED_PREFIX);
static USER: Handler = handler(bindings::XATTR_USER_PREFIX);

/// The NULL-terminated handler table for `sb->s_xattr`.
pub(crate) struct Handlers([*const bindings::xattr_handler; 4]);

// SAFETY: Pointers to immutable statics, only read.
unsafe impl Sync for Handlers {}

impl Handlers {
    pub(crate) fn as_ptr(&self) -> *const *const bindings::xattr_handler {
        self.0.as_ptr()
    }
}

pub(crate) static HANDLERS: Handlers =
    Handlers([&SECURITY.0, &TRUSTED.0, &USER.0, core::ptr::null()]);

/// ACLs: a new inode's from its parent's default ACL (`acl_create`), none
/// for the root (`acl_none`), and `inode_operations.set_acl`, in the C glue.
pub(crate) use sys::{acl_create, acl_none, vexfs_set_acl};
