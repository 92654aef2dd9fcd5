// SPDX-License-Identifier: GPL-2.0

//! What a search may return.
//!
//! Always: plain vectors, and the vectors of files the caller may read (see
//! `file_vector.rs`). A request may narrow that to files with a name in a
//! directory's tree ([`abi::SEARCH_UNDER`]) or whose `user.*` extended
//! attribute holds a value ([`abi::SEARCH_XATTR`]); plain vectors, which
//! have neither, are then left out. The collection applies the filter
//! while it scans or walks the graph, so a search still returns `k` hits
//! whenever `k` admitted items exist.

use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::abi;
use crate::file_vector::Caller;
use crate::pool::PoolBuf;
use crate::vfs::file::FileRef;
use crate::vfs::File;

/// Copies `dst.len()` bytes from the user address `addr`.
fn read_user_bytes(addr: u64, dst: &mut [u8]) -> Result {
    UserSlice::new(UserPtr::from_addr(addr as usize), dst.len())
        .reader()
        .read_slice(dst)
}

/// The xattr a file must hold: full name and value, copied in.
struct XattrMatch {
    name: PoolBuf<u8>,
    value: PoolBuf<u8>,
}

/// A search's filter, from its request.
pub(crate) struct SearchFilter<'a> {
    caller: Caller<'a>,
    /// The directory whose tree a file must have a name in.
    under: Option<FileRef>,
    xattr: Option<XattrMatch>,
}

impl<'a> SearchFilter<'a> {
    /// Bytes a filter of `req` stages (its xattr name and value), for the
    /// in-flight budget; `req` is checked by [`Self::new`].
    pub(crate) fn bytes(req: &abi::SearchRequest) -> u64 {
        if req.flags & abi::SEARCH_XATTR == 0 {
            return 0;
        }
        u64::from(req.xattr_name_len) + u64::from(req.xattr_value_len)
    }

    /// The filter of `req`, a search on the collection directory open as
    /// `dir`. `EINVAL` for a malformed filter, or an `under_fd` directory
    /// outside the collection's tree; `EBADF`, `EXDEV` (another mount) or
    /// `ENOTDIR` for a bad `under_fd`.
    pub(crate) fn new(dir: &'a File, req: &abi::SearchRequest) -> Result<Self> {
        let under = if req.flags & abi::SEARCH_UNDER != 0 {
            let held = FileRef::from_fd(req.under_fd, dir.inode().super_block())?;
            let d = held.file();
            if !d.inode().is_dir() {
                return Err(ENOTDIR);
            }
            if !dir.dentry().has_dir_in_tree(d.dentry()) {
                return Err(EINVAL);
            }
            Some(held)
        } else if req.under_fd != 0 {
            return Err(EINVAL);
        } else {
            None
        };
        let xattr = if req.flags & abi::SEARCH_XATTR != 0 {
            let prefix = abi::XATTR_FILTER_PREFIX.len() as u32;
            if !(prefix + 1..=abi::MAX_XATTR_NAME).contains(&req.xattr_name_len)
                || req.xattr_value_len > abi::MAX_XATTR_FILTER_VALUE
            {
                return Err(EINVAL);
            }
            let mut name = PoolBuf::<u8>::new_zeroed(req.xattr_name_len as usize)?;
            read_user_bytes(req.xattr_name, &mut name)?;
            if !name.starts_with(abi::XATTR_FILTER_PREFIX) || name.contains(&0) {
                return Err(EINVAL);
            }
            let mut value = PoolBuf::<u8>::new_zeroed(req.xattr_value_len as usize)?;
            read_user_bytes(req.xattr_value, &mut value)?;
            Some(XattrMatch { name, value })
        } else if req.xattr_name != 0
            || req.xattr_value != 0
            || req.xattr_name_len != 0
            || req.xattr_value_len != 0
        {
            return Err(EINVAL);
        } else {
            None
        };
        Ok(Self {
            caller: Caller::of_collection(dir),
            under,
            xattr,
        })
    }

    /// Whether it admits every plain vector (no `--under` or `--xattr`
    /// filter, which refuse them all): then only files' rows need
    /// [`Self::admits`].
    pub(crate) fn admits_plain_rows(&self) -> bool {
        self.under.is_none() && self.xattr.is_none()
    }

    /// Whether the search may return the row `id` (`file`: a file's vector).
    pub(crate) fn admits(&self, id: u64, file: bool) -> bool {
        if !file {
            return self.admits_plain_rows();
        }
        let Some(f) = self.caller.readable(abi::file_vector_part(id).0) else {
            return false;
        };
        let inode = f.inode();
        if let Some(under) = &self.under {
            if !under.file().dentry().has_in_tree(inode) {
                return false;
            }
        }
        if let Some(x) = &self.xattr {
            if !inode.data().xattrs.value_is(&x.name, &x.value) {
                return false;
            }
        }
        true
    }
}
