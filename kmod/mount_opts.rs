// SPDX-License-Identifier: GPL-2.0

//! Mount options, as tmpfs has them: `size=`, `nr_inodes=`, `mode=`, `uid=`
//! and `gid=`.
//!
//! The C glue identifies each option with `fs_parse()` (the parameter table
//! needs the kernel's C macros) and the VFS layer hands it to
//! [`MountOpts::set`], which checks it and stores it in the mount context.

use kernel::prelude::*;

use crate::vfs::fs::Param;
use crate::vfs::mem::{totalram_pages, PAGE_SIZE};
use crate::vfs::{Kgid, Kuid};

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
    pub(crate) uid: Option<Kuid>,
    pub(crate) gid: Option<Kgid>,
    /// Disk mounts: seconds between commits of what was not synced (as
    /// ext4's `commit=`; 0 means the default).
    pub(crate) commit: Option<u32>,
}

/// The default of `commit=`, as ext4's.
pub(crate) const DEFAULT_COMMIT_SECS: u32 = 5;
/// The longest `commit=` interval (ext4 allows any; a day bounds the
/// arithmetic).
pub(crate) const MAX_COMMIT_SECS: u32 = 86400;

impl MountOpts {
    /// Whether any option of the in-memory mode was given (they have no
    /// meaning on a disk, where the device sets the limits and the root's
    /// owner and mode are stored).
    pub(crate) fn has_memory_options(&self) -> bool {
        self.blocks.is_some()
            || self.inodes.is_some()
            || self.mode.is_some()
            || self.uid.is_some()
            || self.gid.is_some()
    }

    /// The commit interval in milliseconds.
    pub(crate) fn commit_ms(&self) -> u32 {
        match self.commit {
            None | Some(0) => DEFAULT_COMMIT_SECS * 1000,
            Some(s) => s * 1000,
        }
    }
}

impl MountOpts {
    /// Checks and stores one option (`EINVAL` for a bad value).
    pub(crate) fn set(&mut self, param: Param<'_>) -> Result {
        match param {
            Param::Size(s) => self.blocks = Some(parse_size(s).ok_or(EINVAL)?),
            Param::NrInodes(s) => self.inodes = Some(parse_inodes(s).ok_or(EINVAL)?),
            Param::Mode(mode) => self.mode = Some((mode & 0o7777) as u16),
            Param::Uid(uid) => self.uid = Some(uid),
            Param::Gid(gid) => self.gid = Some(gid),
            Param::Commit(secs) if secs <= MAX_COMMIT_SECS => self.commit = Some(secs),
            Param::Commit(_) => return Err(EINVAL),
        }
        Ok(())
    }
}

/// The defaults of tmpfs: half of RAM for data, and as many inodes as half
/// of RAM has pages.
pub(crate) fn default_blocks() -> u64 {
    totalram_pages() / 2
}

/// See [`default_blocks`].
pub(crate) fn default_inodes() -> u64 {
    totalram_pages() / 2
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
    let page = PAGE_SIZE as u64;
    let bytes = match memparse(s)? {
        (n, []) => n,
        (pct, [b'%']) => {
            let ram = totalram_pages().checked_mul(page)?;
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
