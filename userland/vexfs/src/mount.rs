//! Any file or directory of a VexFS mount, for what concerns the module
//! and the mount as a whole.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use vexfs_abi as abi;

use crate::handle::Handle;
use crate::{sys, Operation, Result};

/// An open file or directory on a VexFS mount: the module's version and
/// the mount's counters.
///
/// # Examples
///
/// ```no_run
/// let mount = vexfs::Mount::open("/mnt/vex")?;
/// let version = mount.check_abi()?;
/// println!("ABI {}, SIMD path {}", version.abi_version, version.simd_path);
/// let stats = mount.stats()?;
/// println!("{} inodes, {} bytes of vectors", stats.inodes, stats.vector_bytes);
/// # Ok::<(), vexfs::Error>(())
/// ```
#[derive(Debug)]
pub struct Mount {
    handle: Handle,
}

impl Mount {
    /// Opens `path` read-only, whatever it is, and checks that it is on
    /// VexFS. Does not check the ABI version, so that
    /// [`version`](Self::version) can report a mismatch.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            handle: Handle::open(path.as_ref())?,
        })
    }

    /// The path the mount was opened by.
    pub fn path(&self) -> &Path {
        self.handle.path()
    }

    /// Asks the module for its release, ABI version, the CPU features it
    /// detected and the distance kernels it uses. Works whatever the ABI
    /// version (the structure never changes).
    pub fn version(&self) -> Result<abi::VersionInfo> {
        self.handle.version()
    }

    /// Like [`version`](Self::version), and fails with
    /// [`Error::AbiMismatch`](crate::Error::AbiMismatch) unless the module
    /// speaks this crate's ABI version.
    pub fn check_abi(&self) -> Result<abi::VersionInfo> {
        self.handle.check_abi()
    }

    /// Reads the module's memory pool and vector memory counters and this
    /// mount's operation counters (after checking the ABI version: the
    /// structure is the ABI's).
    pub fn stats(&self) -> Result<abi::Stats> {
        self.handle.check_abi()?;
        let mut stats = abi::Stats::default();
        // SAFETY: the fd is open and `stats` is a writable Stats, the type
        // the ioctl number encodes.
        unsafe { sys::stats(self.handle.raw_fd(), &mut stats) }
            .map_err(self.handle.failed(Operation::Stats))?;
        Ok(stats)
    }
}

impl AsFd for Mount {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.handle.fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_filesystems_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = Mount::open(dir.path()).unwrap_err();
        assert!(matches!(err, crate::Error::NotVexfs { .. }), "{err}");
        assert_eq!(err.path(), Some(dir.path()));
    }
}
