// SPDX-License-Identifier: GPL-2.0

//! Extended attribute handlers (`struct xattr_handler`) from the
//! [`XattrHandler`] trait: one handler per namespace prefix, all adapted
//! once here; the table `sb->s_xattr` points to.

use core::ffi::{c_void, CStr};
use core::marker::PhantomData;

use kernel::bindings;
use kernel::ffi::{c_char, c_int};
use kernel::prelude::*;

use super::errno;
use super::inode::Inode;
use kernel::error::from_result;

/// `setxattr(2)` flags.
pub(crate) mod flags {
    /// Fail if the attribute exists.
    pub(crate) const CREATE: u32 = kernel::bindings::XATTR_CREATE;
    /// Fail unless the attribute exists.
    pub(crate) const REPLACE: u32 = kernel::bindings::XATTR_REPLACE;
}

/// The attributes of the `security.`, `trusted.` and `user.` namespaces.
/// The VFS checks who may read and write them before calling.
pub(crate) trait XattrHandler: Sized + 'static {
    /// Copies the value of `name` (the full name, with its prefix) into
    /// `buf` (or, with none, returns its size).
    extern "C" fn get(inode: &Inode, name: &CStr, buf: Option<&mut [u8]>) -> Result<usize>;
    /// Sets (`Some`) or removes (`None`) `name`, with [`flags`]; the inode
    /// is locked.
    extern "C" fn set(inode: &Inode, name: &CStr, value: Option<&[u8]>, flags: u32) -> Result;
}

/// A built handler table.
#[derive(Clone, Copy)]
pub(crate) struct XattrVTable(pub(super) *const *const bindings::xattr_handler);

/// The table of `T`.
pub(crate) const fn vtable<T: XattrHandler>() -> XattrVTable {
    XattrVTable(Adapter::<T>::TABLE.as_ptr())
}

/// The C callbacks of `T`, installed in VexFS superblocks only: the VFS
/// calls them with a live inode of ours, the name after the handler's
/// prefix (within the full name), and buffers valid for the call.
struct Adapter<T>(PhantomData<T>);

impl<T: XattrHandler> Adapter<T> {
    const fn handler(prefix: &'static [u8]) -> bindings::xattr_handler {
        bindings::xattr_handler {
            name: core::ptr::null(),
            prefix: prefix.as_ptr().cast(),
            flags: 0,
            list: None,
            get: Some(Self::get),
            set: Some(Self::set),
        }
    }

    const SECURITY: bindings::xattr_handler = Self::handler(bindings::XATTR_SECURITY_PREFIX);
    const TRUSTED: bindings::xattr_handler = Self::handler(bindings::XATTR_TRUSTED_PREFIX);
    const USER: bindings::xattr_handler = Self::handler(bindings::XATTR_USER_PREFIX);
    /// NULL-terminated, as `s_xattr` is.
    const TABLE: &'static [*const bindings::xattr_handler; 4] = &[
        &Self::SECURITY,
        &Self::TRUSTED,
        &Self::USER,
        core::ptr::null(),
    ];

    /// # Safety
    ///
    /// An `xattr_handler.get` (see [`Adapter`]).
    unsafe extern "C" fn get(
        handler: *const bindings::xattr_handler,
        _dentry: *mut bindings::dentry,
        inode: *mut bindings::inode,
        name: *const c_char,
        buffer: *mut c_void,
        size: usize,
    ) -> c_int {
        // SAFETY: See `Adapter`; a buffer of `size` bytes, or none when
        // `size` is 0.
        let r = unsafe {
            T::get(
                Inode::from_raw(inode),
                CStr::from_char_ptr(bindings::xattr_full_name(handler, name)),
                (size != 0).then(|| core::slice::from_raw_parts_mut(buffer.cast::<u8>(), size)),
            )
        };
        from_result(|| r.map(|n| n as c_int))
    }

    /// # Safety
    ///
    /// An `xattr_handler.set` (see [`Adapter`]), the inode locked and
    /// permission checked.
    #[allow(clippy::too_many_arguments)]
    unsafe extern "C" fn set(
        handler: *const bindings::xattr_handler,
        _idmap: *mut bindings::mnt_idmap,
        _dentry: *mut bindings::dentry,
        inode: *mut bindings::inode,
        name: *const c_char,
        value: *const c_void,
        size: usize,
        flags: c_int,
    ) -> c_int {
        // SAFETY: See `Adapter`; `value` is null for a removal, or `size`
        // bytes (at most XATTR_SIZE_MAX, checked by the VFS).
        let r = unsafe {
            T::set(
                Inode::from_raw(inode),
                CStr::from_char_ptr(bindings::xattr_full_name(handler, name)),
                (!value.is_null()).then(|| core::slice::from_raw_parts(value.cast::<u8>(), size)),
                flags as u32,
            )
        };
        errno(r)
    }
}
