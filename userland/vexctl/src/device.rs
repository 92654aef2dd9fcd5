//! A handle on a file or directory of a VexFS mount and the ioctls on it.
//!
//! Every ioctl goes through this module, which turns errnos into messages a
//! user can act on.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::statfs::fstatfs;
use vexfs_abi as abi;

nix::ioctl_read!(
    ioc_version,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_VERSION,
    abi::VersionInfo
);
nix::ioctl_read!(
    ioc_stats,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_STATS,
    abi::Stats
);

/// Why a VexFS request failed, phrased for the user.
#[derive(Debug)]
pub enum Error {
    /// The path could not be opened.
    Open(PathBuf, io::Error),
    /// The path exists but is not on a VexFS mount.
    NotVexfs(PathBuf),
    /// The module answered with an ABI this tool does not speak.
    AbiMismatch { kernel: u32, ours: u32 },
    /// An ioctl failed.
    Ioctl(PathBuf, &'static str, Errno),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open(p, e) => match e.kind() {
                io::ErrorKind::NotFound => write!(f, "{}: no such file or directory", p.display()),
                io::ErrorKind::PermissionDenied => write!(f, "{}: permission denied", p.display()),
                _ => write!(f, "{}: {}", p.display(), e),
            },
            Error::NotVexfs(p) => write!(f, "{}: not a VexFS filesystem", p.display()),
            Error::AbiMismatch { kernel, ours } => write!(
                f,
                "the vexfs module speaks ABI version {kernel}, this vexctl speaks {ours}: \
                 rebuild one to match the other"
            ),
            Error::Ioctl(p, what, errno) => {
                write!(f, "{}: {what} failed: {}", p.display(), errno_text(*errno))
            }
        }
    }
}

impl std::error::Error for Error {}

fn errno_text(e: Errno) -> String {
    match e {
        Errno::ENOTTY => "the kernel module does not know this request (ENOTTY)".into(),
        Errno::EACCES | Errno::EPERM => "permission denied".into(),
        other => format!("{} ({other:?})", other.desc().to_lowercase()),
    }
}

/// An open file or directory known to be on a VexFS mount.
#[derive(Debug)]
pub struct Vexfs {
    file: File,
    path: PathBuf,
}

impl Vexfs {
    /// Opens `path` read-only and checks that it lives on VexFS.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::Open(path.to_owned(), e))?;
        let fs = fstatfs(&file).map_err(|e| Error::Open(path.to_owned(), e.into()))?;
        // `f_type` is a signed or unsigned word depending on the libc.
        #[allow(clippy::unnecessary_cast)]
        if fs.filesystem_type().0 as u64 != u64::from(abi::VEXFS_MAGIC) {
            return Err(Error::NotVexfs(path.to_owned()));
        }
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Asks the module for its version and CPU features.
    pub fn version(&self) -> Result<abi::VersionInfo, Error> {
        let mut info = abi::VersionInfo::default();
        // SAFETY: the fd is open and `info` is a writable VersionInfo, the
        // type the ioctl number encodes.
        unsafe { ioc_version(self.file.as_raw_fd(), &mut info) }
            .map_err(|e| Error::Ioctl(self.path.clone(), "VERSION", e))?;
        Ok(info)
    }

    /// Checks that the module speaks this tool's ABI version.
    pub fn check_abi(&self) -> Result<abi::VersionInfo, Error> {
        let info = self.version()?;
        if info.abi_version != abi::VEXFS_ABI_VERSION {
            return Err(Error::AbiMismatch {
                kernel: info.abi_version,
                ours: abi::VEXFS_ABI_VERSION,
            });
        }
        Ok(info)
    }

    /// Reads the pool and per-mount operation counters.
    pub fn stats(&self) -> Result<abi::Stats, Error> {
        self.check_abi()?;
        let mut stats = abi::Stats::default();
        // SAFETY: the fd is open and `stats` is a writable Stats, the type
        // the ioctl number encodes.
        unsafe { ioc_stats(self.file.as_raw_fd(), &mut stats) }
            .map_err(|e| Error::Ioctl(self.path.clone(), "STATS", e))?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_and_abi_agree_on_ioctl_numbers() {
        let version = nix::request_code_read!(
            abi::VEXFS_IOC_MAGIC,
            abi::VEXFS_IOC_NR_VERSION,
            std::mem::size_of::<abi::VersionInfo>()
        );
        let stats = nix::request_code_read!(
            abi::VEXFS_IOC_MAGIC,
            abi::VEXFS_IOC_NR_STATS,
            std::mem::size_of::<abi::Stats>()
        );
        assert_eq!(version as u32, abi::VEXFS_IOC_VERSION);
        assert_eq!(stats as u32, abi::VEXFS_IOC_STATS);
    }

    #[test]
    fn missing_path_is_reported_plainly() {
        let err = Vexfs::open(Path::new("/nonexistent/vexfs/path")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/vexfs/path: no such file or directory"
        );
    }

    #[test]
    fn other_filesystems_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Vexfs::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NotVexfs(_)), "{err}");
        assert!(err.to_string().ends_with("not a VexFS filesystem"));
    }
}
