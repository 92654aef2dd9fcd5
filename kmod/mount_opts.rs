// SPDX-License-Identifier: GPL-2.0

//! Mount options, as tmpfs has them: `size=`, `nr_inodes=`, `mode=`, `uid=`
//! and `gid=`.
//!
//! The C glue identifies each option with `fs_parse()` (the parameter table
//! needs the kernel's C macros) and hands its value to the setters here,
//! which check it and store it in the mount context (`fc->fs_private`).

use core::ffi::{c_int, c_uint, c_void, CStr};

use kernel::ffi::c_char;

use kernel::alloc::flags::GFP_KERNEL;
use kernel::bindings;
use kernel::prelude::*;

use crate::sys;

/// Bytes of "inode space" one inode takes, as tmpfs counts them: the
/// `nr_inodes` limit is kept as this many bytes per inode, and extended
/// attributes are charged against the same space.
pub(crate) const BOGO_INODE_SIZE: u64 = 1024;

/// The options given to one mount or remount; `None` where not given.
#[derive(Default)]
pub(crate) struct MountOpts {
    /// Page limit of file data; `Some(0)` means unlimited.
    pub(crate) blocks: Option<u64>,
    /// Inode limit; `Some(0)` means unlimited.
    pub(crate) inodes: Option<u64>,
    /// Permission bits (and sticky/setgid/setuid) of the root directory.
    pub(crate) mode: Option<u16>,
    pub(crate) uid: Option<bindings::kuid_t>,
    pub(crate) gid: Option<bindings::kgid_t>,
}

/// The defaults of tmpfs: half of RAM for data, and as many inodes as half
/// of RAM has pages.
pub(crate) fn default_blocks() -> u64 {
    sys::totalram_pages() / 2
}

/// See [`default_blocks`].
pub(crate) fn default_inodes() -> u64 {
    sys::totalram_pages() / 2
}

/// `memparse()`: a decimal (or `0x` hexadecimal) number with an optional
/// binary suffix `k`, `m`, `g`, `t`, `p` or `e`; returns the value and the
/// unparsed rest.
fn memparse(s: &[u8]) -> Option<(u64, &[u8])> {
    let (radix, digits) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest),
        _ => (10, s),
    };
    let end = digits
        .iter()
        .position(|c| !(*c as char).is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for c in &digits[..end] {
        let d = (*c as char).to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(d))?;
    }
    let rest = &digits[end..];
    let shift = match rest.first().map(u8::to_ascii_lowercase) {
        Some(b'k') => 10,
        Some(b'm') => 20,
        Some(b'g') => 30,
        Some(b't') => 40,
        Some(b'p') => 50,
        Some(b'e') => 60,
        _ => return Some((value, rest)),
    };
    let scaled = value.checked_mul(1u64 << shift)?;
    Some((scaled, &rest[1..]))
}

/// `size=`: bytes with a suffix, or a percentage of RAM; in pages, rounded
/// up.
fn parse_size(s: &[u8]) -> Option<u64> {
    let page = bindings::PAGE_SIZE as u64;
    let bytes = match memparse(s)? {
        (n, []) => n,
        (pct, [b'%']) => {
            let ram = sys::totalram_pages().checked_mul(page)?;
            // At most 100 % of RAM times a few: tmpfs allows more than 100.
            ram.checked_mul(pct)? / 100
        }
        _ => return None,
    };
    Some(bytes.div_ceil(page))
}

/// `nr_inodes=`: a count with an optional suffix.
fn parse_inodes(s: &[u8]) -> Option<u64> {
    match memparse(s)? {
        (n, []) if n <= u64::MAX / BOGO_INODE_SIZE => Some(n),
        _ => None,
    }
}

/// Allocates the options of a new mount context.
#[no_mangle]
extern "C" fn vexfs_opts_new() -> *mut c_void {
    match KBox::new(MountOpts::default(), GFP_KERNEL) {
        Ok(b) => KBox::into_raw(b).cast(),
        Err(_) => core::ptr::null_mut(),
    }
}

/// Frees the options of a mount context (`fs_context_operations.free`).
///
/// # Safety
///
/// `opts` is null or came from [`vexfs_opts_new`] and is not used again.
#[no_mangle]
unsafe extern "C" fn vexfs_opts_free(opts: *mut c_void) {
    if !opts.is_null() {
        // SAFETY: Guaranteed by the caller.
        drop(unsafe { KBox::from_raw(opts.cast::<MountOpts>()) });
    }
}

/// # Safety
///
/// `opts` came from [`vexfs_opts_new`] and is only used by this call.
unsafe fn opts_mut<'a>(opts: *mut c_void) -> &'a mut MountOpts {
    // SAFETY: Guaranteed by the caller: the VFS parses one option at a time
    // of a context it owns.
    unsafe { &mut *opts.cast::<MountOpts>() }
}

/// Stores `parse(value)` with `store`, or refuses the value (`EINVAL`).
///
/// # Safety
///
/// `opts` as for [`opts_mut`]; `value` a NUL-terminated string.
unsafe fn set_parsed(
    opts: *mut c_void,
    value: *const c_char,
    parse: fn(&[u8]) -> Option<u64>,
    store: fn(&mut MountOpts, u64),
) -> c_int {
    // SAFETY: The VFS passes the option's string value.
    let s = unsafe { CStr::from_char_ptr(value) }.to_bytes();
    match parse(s) {
        Some(n) => {
            // SAFETY: Guaranteed by the caller.
            store(unsafe { opts_mut(opts) }, n);
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// `size=VALUE`.
///
/// # Safety
///
/// As for [`set_parsed`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_size(opts: *mut c_void, value: *const c_char) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { set_parsed(opts, value, parse_size, |o, n| o.blocks = Some(n)) }
}

/// `nr_inodes=VALUE`.
///
/// # Safety
///
/// As for [`set_parsed`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_nr_inodes(opts: *mut c_void, value: *const c_char) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { set_parsed(opts, value, parse_inodes, |o, n| o.inodes = Some(n)) }
}

/// `mode=OCTAL`.
///
/// # Safety
///
/// `opts` as for [`opts_mut`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_mode(opts: *mut c_void, mode: c_uint) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { opts_mut(opts) }.mode = Some((mode & 0o7777) as u16);
    0
}

/// `uid=N`, already mapped and checked by the glue.
///
/// # Safety
///
/// `opts` as for [`opts_mut`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_uid(opts: *mut c_void, uid: bindings::kuid_t) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { opts_mut(opts) }.uid = Some(uid);
    0
}

/// `gid=N`, already mapped and checked by the glue.
///
/// # Safety
///
/// `opts` as for [`opts_mut`].
#[no_mangle]
unsafe extern "C" fn vexfs_opt_gid(opts: *mut c_void, gid: bindings::kgid_t) -> c_int {
    // SAFETY: Guaranteed by the caller.
    unsafe { opts_mut(opts) }.gid = Some(gid);
    0
}
