//! The open file every public handle wraps: where it is, that it is on
//! VexFS, and the ioctls every kind of handle may issue.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::statfs::fstatfs;
use vexfs_abi as abi;

use crate::{sys, Error, Operation, Result};

/// An open file or directory known to be on a VexFS mount, and the path it
/// was opened by (for messages).
#[derive(Debug)]
pub(crate) struct Handle {
    file: File,
    path: PathBuf,
}

impl Handle {
    /// Opens `path` read-only, whatever it is.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| Error::Open {
            path: path.to_owned(),
            error,
        })?;
        Self::on_vexfs(file, path)
    }

    /// Opens a directory read-only with `O_DIRECTORY`, so that a file is
    /// refused by `open(2)` itself, before any ioctl.
    pub(crate) fn open_dir(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_DIRECTORY.bits())
            .open(path)
            .map_err(|error| Error::Open {
                path: path.to_owned(),
                error,
            })?;
        Self::on_vexfs(file, path)
    }

    /// Opens a regular file read-only (ATTACH needs no write mode: the
    /// kernel checks write permission itself).
    pub(crate) fn open_file(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| Error::Open {
            path: path.to_owned(),
            error,
        })?;
        let meta = file.metadata().map_err(|error| Error::Open {
            path: path.to_owned(),
            error,
        })?;
        if !meta.is_file() {
            return Err(Error::NotRegularFile {
                path: path.to_owned(),
            });
        }
        Self::on_vexfs(file, path)
    }

    /// Keeps `file` if its filesystem is VexFS: another filesystem could
    /// give the same ioctl numbers another meaning.
    fn on_vexfs(file: File, path: &Path) -> Result<Self> {
        let fs = fstatfs(&file).map_err(|errno| Error::Open {
            path: path.to_owned(),
            error: errno.into(),
        })?;
        // `f_type` is a signed or unsigned word depending on the libc.
        #[allow(clippy::unnecessary_cast)]
        if fs.filesystem_type().0 as u64 != u64::from(abi::VEXFS_MAGIC) {
            return Err(Error::NotVexfs {
                path: path.to_owned(),
            });
        }
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }

    /// Inode number of the open file: the id of a file's vector.
    pub(crate) fn ino(&self) -> Result<u64> {
        let meta = self.file.metadata().map_err(|error| Error::Open {
            path: self.path.clone(),
            error,
        })?;
        Ok(meta.ino())
    }

    /// Turns the errno of `operation` into this handle's error.
    pub(crate) fn failed(&self, operation: Operation) -> impl FnOnce(Errno) -> Error + '_ {
        move |errno| Error::Ioctl {
            path: self.path.clone(),
            operation,
            errno,
        }
    }

    /// An error for buffers no request can carry.
    pub(crate) fn invalid(&self, operation: &'static str, reason: String) -> Error {
        Error::InvalidArgument {
            path: self.path.clone(),
            operation,
            reason,
        }
    }

    /// Asks the module for its version and CPU features.
    pub(crate) fn version(&self) -> Result<abi::VersionInfo> {
        let mut info = abi::VersionInfo::default();
        // SAFETY: the fd is open and `info` is a writable VersionInfo, the
        // type the ioctl number encodes.
        unsafe { sys::version(self.raw_fd(), &mut info) }
            .map_err(self.failed(Operation::Version))?;
        Ok(info)
    }

    /// Checks that the module speaks this crate's ABI version: the request
    /// structures of another version would be misread.
    pub(crate) fn check_abi(&self) -> Result<abi::VersionInfo> {
        let info = self.version()?;
        if info.abi_version != abi::VEXFS_ABI_VERSION {
            return Err(Error::AbiMismatch {
                kernel: info.abi_version,
                ours: abi::VEXFS_ABI_VERSION,
            });
        }
        Ok(info)
    }
}

/// Runs `ioctl`, retrying for a few seconds while the kernel answers
/// `EAGAIN`: its in-flight memory budget is held by other calls, which end.
pub(crate) fn busy_retry<T>(mut ioctl: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    let mut wait = Duration::from_millis(2);
    for _ in 0..30 {
        match ioctl() {
            Err(Errno::EAGAIN) => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
    ioctl()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_path_is_reported_plainly() {
        let err = Handle::open(Path::new("/nonexistent/vexfs/path")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/vexfs/path: no such file or directory"
        );
    }

    #[test]
    fn other_filesystems_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Handle::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NotVexfs { .. }), "{err}");
        assert!(err.to_string().ends_with("not a VexFS filesystem"));
        assert!(matches!(
            Handle::open_dir(dir.path()).unwrap_err(),
            Error::NotVexfs { .. }
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            Handle::open_file(&file).unwrap_err(),
            Error::NotVexfs { .. }
        ));
    }

    #[test]
    fn open_dir_refuses_files_and_open_file_refuses_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = Handle::open_dir(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a directory", file.display())
        );
        let err = Handle::open_file(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a regular file", dir.path().display())
        );
    }

    #[test]
    fn busy_retry_retries_eagain_only() {
        let mut calls = 0;
        let r = busy_retry(|| {
            calls += 1;
            if calls < 3 {
                Err(Errno::EAGAIN)
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r, Ok(3));
        let mut calls = 0;
        let r: nix::Result<()> = busy_retry(|| {
            calls += 1;
            Err(Errno::EINVAL)
        });
        assert_eq!((r, calls), (Err(Errno::EINVAL), 1));
    }
}
