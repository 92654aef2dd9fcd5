//! Which files a search may return, beyond what the caller may read.

use std::path::{Path, PathBuf};

use vexfs_abi as abi;

use crate::error::Result;
use crate::handle::Handle;

/// Limits a search to some of the collection's files: those with a name
/// under a directory of the collection ([`under`](Self::under)), those
/// whose `user.*` extended attribute holds a value
/// ([`xattr`](Self::xattr)), or both. The kernel applies the filter while
/// it scans or walks the graph, so a search still returns `k` hits
/// whenever `k` matching files exist. A filtered search returns files
/// only (plain vectors have no name and no attributes); every search
/// returns only files the caller may read.
///
/// # Examples
///
/// ```
/// use vexfs::SearchFilter;
///
/// let filter = SearchFilter::new().under("/mnt/vex/docs/2024").xattr("user.lang", "en");
/// assert!(!filter.is_empty());
/// assert!(SearchFilter::new().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchFilter {
    under: Option<PathBuf>,
    xattr: Option<(Vec<u8>, Vec<u8>)>,
}

impl SearchFilter {
    /// No filter: every vector the caller may see.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only files with a name in the tree of the directory `dir` (the
    /// collection itself or a directory below it).
    pub fn under(mut self, dir: impl Into<PathBuf>) -> Self {
        self.under = Some(dir.into());
        self
    }

    /// Only files whose extended attribute `name` (in the `user.`
    /// namespace) holds exactly `value`.
    pub fn xattr(mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.xattr = Some((name.into(), value.into()));
        self
    }

    /// Whether it filters nothing.
    pub fn is_empty(&self) -> bool {
        self.under.is_none() && self.xattr.is_none()
    }

    /// The directory of [`under`](Self::under), if set.
    pub fn under_dir(&self) -> Option<&Path> {
        self.under.as_deref()
    }

    /// The attribute name and value of [`xattr`](Self::xattr), if set.
    pub fn xattr_match(&self) -> Option<(&[u8], &[u8])> {
        self.xattr.as_ref().map(|(n, v)| (&n[..], &v[..]))
    }

    /// Checks the filter and opens its directory: what a search request
    /// carries, valid while the returned value lives.
    pub(crate) fn prepare(&self, handle: &Handle) -> Result<PreparedFilter<'_>> {
        let dir = match &self.under {
            Some(path) => Some(Handle::open_dir(path)?),
            None => None,
        };
        if let Some((name, value)) = &self.xattr {
            if let Some(reason) = xattr_problem(name, value) {
                return Err(handle.invalid("SEARCH", reason));
            }
        }
        Ok(PreparedFilter {
            dir,
            xattr: self.xattr.as_ref(),
        })
    }
}

/// Why an xattr filter cannot be sent, if it cannot.
fn xattr_problem(name: &[u8], value: &[u8]) -> Option<String> {
    let shown = String::from_utf8_lossy(name);
    let prefix = abi::XATTR_FILTER_PREFIX;
    if !name.starts_with(prefix) || name.len() == prefix.len() {
        return Some(format!(
            "the attribute {shown:?} is not in the user. namespace (a search filters on \
             user.* attributes only)"
        ));
    }
    if name.len() > abi::MAX_XATTR_NAME as usize || name.contains(&0) {
        return Some(format!(
            "the attribute name {shown:?} is longer than {} bytes or holds a NUL",
            abi::MAX_XATTR_NAME
        ));
    }
    if value.len() > abi::MAX_XATTR_FILTER_VALUE as usize {
        return Some(format!(
            "a value of {} bytes (a search compares at most {})",
            value.len(),
            abi::MAX_XATTR_FILTER_VALUE
        ));
    }
    None
}

/// A filter ready to go into a [`abi::SearchRequest`].
pub(crate) struct PreparedFilter<'a> {
    dir: Option<Handle>,
    xattr: Option<&'a (Vec<u8>, Vec<u8>)>,
}

impl PreparedFilter<'_> {
    /// Sets the request's filter fields and flags. The request points into
    /// `self`, which must outlive the ioctl.
    pub(crate) fn apply(&self, req: &mut abi::SearchRequest) {
        if let Some(dir) = &self.dir {
            req.flags |= abi::SEARCH_UNDER;
            req.under_fd = dir.raw_fd();
        }
        if let Some((name, value)) = self.xattr {
            req.flags |= abi::SEARCH_XATTR;
            req.xattr_name = name.as_ptr() as u64;
            req.xattr_name_len = name.len() as u32;
            req.xattr_value = value.as_ptr() as u64;
            req.xattr_value_len = value.len() as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_filters_are_checked_before_the_ioctl() {
        assert_eq!(xattr_problem(b"user.lang", b"en"), None);
        assert!(xattr_problem(b"trusted.x", b"")
            .unwrap()
            .contains("not in the user. namespace"));
        assert!(xattr_problem(b"user.", b"").is_some());
        assert!(xattr_problem(b"user.a\0b", b"").unwrap().contains("NUL"));
        let long = vec![b'x'; 1025];
        assert!(xattr_problem(b"user.a", &long)
            .unwrap()
            .contains("a value of 1025 bytes"));
    }

    #[test]
    fn an_empty_filter_filters_nothing() {
        assert!(SearchFilter::new().is_empty());
        let f = SearchFilter::new().xattr("user.lang", "en");
        assert_eq!(f.xattr_match(), Some((&b"user.lang"[..], &b"en"[..])));
        assert_eq!(f.under_dir(), None);
    }
}
