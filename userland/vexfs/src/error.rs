//! Why a VexFS call failed, as a value a program can inspect and a line a
//! user can act on.
//!
//! The messages are `vexctl`'s (its in-VM tests compare them), so some of
//! them name `vexctl` commands.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use vexfs_abi as abi;

use crate::{IndexKind, Metric, Quantize};

/// Short for `Result<T, vexfs::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A VexFS ioctl and the parameters it was sent with, so that a failure
/// can be explained in terms of what was asked.
///
/// # Examples
///
/// ```
/// use vexfs::Operation;
///
/// let op = Operation::Delete { count: 3 };
/// assert_eq!(op.name(), "DELETE");
/// assert!(op.writes());
/// assert!(!Operation::Info.writes());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `VEXFS_IOC_VERSION`.
    Version,
    /// `VEXFS_IOC_STATS`.
    Stats,
    /// `VEXFS_IOC_CREATE`, with the raw values of its
    /// [`CollectionParams`](abi::CollectionParams).
    Create {
        /// Dimension asked for.
        dim: u32,
        /// One of [`abi::metric`].
        metric: u32,
        /// One of [`abi::index`].
        index: u32,
        /// HNSW `M` (0: the kernel's default).
        m: u32,
        /// HNSW `ef_construction` (0: the kernel's default).
        ef_construction: u32,
        /// One of [`abi::quantize`].
        quantize: u32,
    },
    /// `VEXFS_IOC_INFO`.
    Info,
    /// `VEXFS_IOC_INSERT` of `count` vectors of `dim` values.
    Insert {
        /// Vectors in the batch.
        count: u32,
        /// Values per vector.
        dim: u32,
    },
    /// `VEXFS_IOC_DELETE` of `count` ids.
    Delete {
        /// Ids in the batch.
        count: u32,
    },
    /// `VEXFS_IOC_GET` of vector `id` into room for `dim` values.
    Get {
        /// Id asked for.
        id: u64,
        /// Room given, in values.
        dim: u32,
    },
    /// `VEXFS_IOC_SEARCH`.
    Search {
        /// Queries in the call.
        nq: u32,
        /// Hits asked for per query.
        k: u32,
        /// Values per query.
        dim: u32,
        /// HNSW beam width (0: the kernel's default).
        ef: u32,
        /// [`abi::SEARCH_EXACT`], [`abi::SEARCH_UNDER`],
        /// [`abi::SEARCH_XATTR`], or 0.
        flags: u32,
    },
    /// `VEXFS_IOC_ATTACH` of a vector of `dim` values to the file with
    /// inode number `ino`.
    Attach {
        /// Values in each vector.
        dim: u32,
        /// Vectors (parts) sent.
        count: u32,
        /// The file's inode number (the first vector's id).
        ino: u64,
    },
}

impl Operation {
    /// The ioctl's name without the `VEXFS_IOC_` prefix.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Version => "VERSION",
            Operation::Stats => "STATS",
            Operation::Create { .. } => "CREATE",
            Operation::Info => "INFO",
            Operation::Insert { .. } => "INSERT",
            Operation::Delete { .. } => "DELETE",
            Operation::Get { .. } => "GET",
            Operation::Search { .. } => "SEARCH",
            Operation::Attach { .. } => "ATTACH",
        }
    }

    /// Whether the operation needs write permission on the collection
    /// (or, for ATTACH, the file).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Operation::Create { .. }
                | Operation::Insert { .. }
                | Operation::Delete { .. }
                | Operation::Attach { .. }
        )
    }

    /// What the kernel may have found invalid (for `EINVAL`, `E2BIG`).
    fn context(&self) -> String {
        match *self {
            Operation::Version | Operation::Stats | Operation::Info => {
                format!("{} was refused", self.name())
            }
            Operation::Create {
                dim,
                metric,
                index,
                m,
                ef_construction,
                quantize,
            } => {
                let metric = Metric::from_abi(metric).map_or("?", Metric::name);
                let known = Quantize::from_abi(quantize);
                // Said only when asked for: the default is no news.
                let quantized = match known {
                    Some(Quantize::None) => String::new(),
                    q => format!(", quantize {}", q.map_or("?", Quantize::name)),
                };
                if index == abi::index::HNSW {
                    let (lo, hi) = abi::HNSW_M_RANGE;
                    let quantize_range = match known {
                        Some(_) => String::new(),
                        None => format!("; quantize is {}", abi::quantize::NAMES.join(" or ")),
                    };
                    format!(
                        "dim {dim}, metric {metric}, index hnsw, M {m}, ef_construction \
                         {ef_construction}{quantized} (M is {lo} to {hi}, ef_construction 1 to \
                         {}; 0 for the default{quantize_range})",
                        abi::HNSW_MAX_EF
                    )
                } else if quantize != abi::quantize::NONE {
                    format!(
                        "dim {dim}, metric {metric}, index {}{quantized} (quantize applies to \
                         HNSW collections only: a flat collection's search is exact)",
                        IndexKind::from_abi(index).map_or("?", IndexKind::name)
                    )
                } else {
                    format!(
                        "dim {dim}, metric {metric}, index {}",
                        IndexKind::from_abi(index).map_or("?", IndexKind::name)
                    )
                }
            }
            Operation::Insert { count, dim } => {
                format!("a batch of {count} vectors of dim {dim} (it must equal the collection's)")
            }
            Operation::Delete { count } => format!("a batch of {count} ids"),
            Operation::Get { id, dim } => {
                format!("id {id}, dim {dim} (it must equal the collection's)")
            }
            Operation::Search {
                nq,
                k,
                dim,
                ef,
                flags,
            } => {
                let mut text =
                    format!("{nq} queries of dim {dim} (it must equal the collection's), k = {k}");
                if ef != 0 {
                    text += &format!(", ef = {ef} (at most {})", abi::HNSW_MAX_EF);
                }
                if flags & !(abi::SEARCH_UNDER | abi::SEARCH_XATTR) != 0 {
                    text += &format!(", flags {flags:#x}");
                }
                if flags & abi::SEARCH_UNDER != 0 {
                    text += ", a directory filter (it must be in the collection's tree)";
                }
                if flags & abi::SEARCH_XATTR != 0 {
                    text += ", an attribute filter (user.* only)";
                }
                text
            }
            Operation::Attach { dim, count: 1, .. } => {
                format!("a vector of dim {dim} (it must equal the collection's)")
            }
            Operation::Attach { dim, count, .. } => format!(
                "{count} vectors of dim {dim} (it must equal the collection's; a file carries \
                 1 to {})",
                abi::MAX_FILE_PARTS
            ),
        }
    }
}

/// Why a VexFS call failed. Its [`Display`](fmt::Display) is one line,
/// phrased for the user, starting with the path.
///
/// The I/O error of [`Error::Open`] is part of the message, so
/// [`source`](std::error::Error::source) does not repeat it (error
/// reporters that print the chain would print it twice).
///
/// # Examples
///
/// ```
/// use std::path::PathBuf;
/// use vexfs::{Errno, Error, Operation};
///
/// let err = Error::Ioctl {
///     path: PathBuf::from("/mnt/vex/c"),
///     operation: Operation::Get { id: 42, dim: 3 },
///     errno: Errno::ENOENT,
/// };
/// assert_eq!(err.to_string(), "/mnt/vex/c: no vector with id 42");
/// assert_eq!(err.errno(), Some(Errno::ENOENT));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The path could not be opened (or its metadata read).
    Open {
        /// The path as given.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The path exists but is not on a VexFS mount.
    NotVexfs {
        /// The path as given.
        path: PathBuf,
    },
    /// A regular file was expected and the path is something else.
    NotRegularFile {
        /// The path as given.
        path: PathBuf,
    },
    /// The module answered with an ABI version this crate does not speak.
    AbiMismatch {
        /// The module's [`abi::VEXFS_ABI_VERSION`].
        kernel: u32,
        /// This crate's [`abi::VEXFS_ABI_VERSION`].
        ours: u32,
    },
    /// Buffers whose shape no request can carry (an empty batch, rows that
    /// do not divide, a count over the ABI's limit); refused before any
    /// ioctl.
    InvalidArgument {
        /// The handle's path.
        path: PathBuf,
        /// The operation that was not sent.
        operation: &'static str,
        /// What is wrong with the buffers.
        reason: String,
    },
    /// An ioctl failed.
    Ioctl {
        /// The handle's path.
        path: PathBuf,
        /// The ioctl and what it was sent with.
        operation: Operation,
        /// The kernel's answer.
        errno: Errno,
    },
}

impl Error {
    /// The errno of a failed ioctl, for callers that recover from some.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Ioctl { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The ioctl that failed, if one did.
    pub fn operation(&self) -> Option<&Operation> {
        match self {
            Error::Ioctl { operation, .. } => Some(operation),
            _ => None,
        }
    }

    /// The path the failure is about, where there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Open { path, .. }
            | Error::NotVexfs { path }
            | Error::NotRegularFile { path }
            | Error::InvalidArgument { path, .. }
            | Error::Ioctl { path, .. } => Some(path),
            Error::AbiMismatch { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { path, error } => {
                write!(f, "{}: {}", path.display(), io_error_message(error))
            }
            Error::NotVexfs { path } => write!(f, "{}: not a VexFS filesystem", path.display()),
            Error::NotRegularFile { path } => {
                write!(f, "{}: not a regular file", path.display())
            }
            Error::AbiMismatch { kernel, ours } => write!(
                f,
                "the vexfs module speaks ABI version {kernel}, this vexctl speaks {ours}: \
                 rebuild one to match the other"
            ),
            Error::InvalidArgument {
                path,
                operation,
                reason,
            } => write!(f, "{}: {operation} not sent: {reason}", path.display()),
            Error::Ioctl {
                path,
                operation,
                errno,
            } => f.write_str(&ioctl_message(path, operation, *errno)),
        }
    }
}

impl std::error::Error for Error {}

/// One line for an I/O error, without Rust's "(os error N)" suffix: the
/// wording this crate's errors use, for tools that report their own I/O
/// errors alongside them.
///
/// # Examples
///
/// ```
/// use std::io;
///
/// let e = io::Error::from(io::ErrorKind::NotFound);
/// assert_eq!(vexfs::io_error_message(&e), "no such file or directory");
/// let e = io::Error::from_raw_os_error(vexfs::Errno::EISDIR as i32);
/// assert_eq!(vexfs::io_error_message(&e), "is a directory");
/// ```
pub fn io_error_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotADirectory => "not a directory".into(),
        io::ErrorKind::AlreadyExists => "already exists".into(),
        _ => match e.raw_os_error() {
            Some(code) => Errno::from_raw(code).desc().to_lowercase(),
            None => e.to_string(),
        },
    }
}

fn errno_message(e: Errno) -> String {
    match e {
        Errno::ENOTTY => "the kernel module does not know this request (ENOTTY)".into(),
        Errno::EACCES | Errno::EPERM => "permission denied".into(),
        other => format!("{} ({other:?})", other.desc().to_lowercase()),
    }
}

/// The message for `operation` on `path` failing with `errno`.
///
/// The errnos are the vector ioctls' contract with the kernel module
/// (Documentation/ioctl-abi.rst): `ENODATA` is the answer on a directory
/// that is not a collection (or, for ATTACH, a file that is not in one).
fn ioctl_message(path: &Path, operation: &Operation, errno: Errno) -> String {
    let p = path.display();
    let generic = || format!("{p}: {} failed: {}", operation.name(), errno_message(errno));
    match (operation, errno) {
        // The first two commands keep their original messages.
        (Operation::Version | Operation::Stats, _) => generic(),
        (Operation::Attach { .. }, Errno::ENODATA) => {
            format!("{p}: not in a vector collection (create one with `vexctl create`)")
        }
        (_, Errno::ENODATA) => {
            format!("{p}: not a vector collection (create one with `vexctl create`)")
        }
        (Operation::Attach { .. }, Errno::EACCES | Errno::EPERM) => format!(
            "{p}: permission denied (changing a file's vector needs write permission on the \
             file, and in a sticky collection owning the file or the collection)"
        ),
        (Operation::Delete { .. }, Errno::EACCES | Errno::EPERM) => format!(
            "{p}: permission denied (needs write permission on the collection directory, and \
             for a file's vector what changing the file needs); nothing deleted"
        ),
        (Operation::Get { .. }, Errno::EACCES) => format!(
            "{p}: permission denied (reading a file's vector needs read permission on the file)"
        ),
        (op, Errno::EACCES | Errno::EPERM) if op.writes() => {
            format!("{p}: permission denied (needs write permission on the collection directory)")
        }
        (_, Errno::EACCES | Errno::EPERM) => format!("{p}: permission denied"),
        (_, Errno::ENOSPC) => {
            format!("{p}: vector memory limit reached (module parameter max_vector_mib)")
        }
        (_, Errno::E2BIG) => format!(
            "{p}: {} is larger than the kernel lets one call hold (module parameter \
             max_vector_mib); send smaller batches",
            operation.context()
        ),
        (_, Errno::EAGAIN) => format!(
            "{p}: {} failed: other vector calls in progress hold the kernel's in-flight memory \
             budget; try again",
            operation.name()
        ),
        (_, Errno::EINTR) => format!("{p}: {} interrupted", operation.name()),
        (op, Errno::EINVAL) => format!("{p}: invalid request: {}", op.context()),
        (Operation::Create { .. }, Errno::EEXIST) => format!("{p} is already a collection"),
        (Operation::Create { .. }, Errno::ENOTEMPTY) => {
            format!("{p} is not empty: only an empty directory can become a collection")
        }
        (Operation::Insert { .. }, Errno::EEXIST) => {
            format!("{p}: an id in the batch belongs to a file's vector")
        }
        (Operation::Attach { ino, .. }, Errno::EEXIST) => format!(
            "{p}: its inode number {ino} is the id of a vector inserted with `vexctl insert` \
             (delete that one first)"
        ),
        (Operation::Delete { .. }, Errno::ENOENT) => {
            format!("{p}: no vector with one of the given ids; nothing deleted")
        }
        (Operation::Get { id, .. }, Errno::ENOENT) => format!("{p}: no vector with id {id}"),
        (Operation::Search { .. }, Errno::EXDEV | Errno::EBADF) => {
            format!("{p}: the directory to search under is not on this VexFS mount")
        }
        (Operation::Attach { .. }, Errno::EOVERFLOW) => format!(
            "{p}: its inode number is too large to carry vectors (at most 2^{})",
            abi::FILE_PART_SHIFT
        ),
        (_, Errno::EROFS) => format!("{p}: read-only filesystem"),
        _ => generic(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(operation: Operation, errno: Errno) -> String {
        Error::Ioctl {
            path: PathBuf::from("/mnt/c"),
            operation,
            errno,
        }
        .to_string()
    }

    #[test]
    fn errnos_become_one_line_messages() {
        let insert = Operation::Insert { count: 3, dim: 50 };
        let create = Operation::Create {
            dim: 8,
            metric: 1,
            index: abi::index::FLAT,
            m: 0,
            ef_construction: 0,
            quantize: 0,
        };
        let create_hnsw = Operation::Create {
            dim: 8,
            metric: 0,
            index: abi::index::HNSW,
            m: 200,
            ef_construction: 0,
            quantize: 0,
        };
        let create_sq8 = |index, quantize| Operation::Create {
            dim: 8,
            metric: 2,
            index,
            m: 0,
            ef_construction: 0,
            quantize,
        };
        let cases = [
            (
                Operation::Info,
                Errno::ENODATA,
                "/mnt/c: not a vector collection (create one with `vexctl create`)",
            ),
            (
                Operation::Attach { dim: 4, count: 1, ino: 12 },
                Errno::ENODATA,
                "/mnt/c: not in a vector collection (create one with `vexctl create`)",
            ),
            (
                Operation::Search {
                    nq: 1,
                    k: 5,
                    dim: 4,
                    ef: 0,
                    flags: 0,
                },
                Errno::EACCES,
                "/mnt/c: permission denied",
            ),
            (
                insert,
                Errno::EPERM,
                "/mnt/c: permission denied (needs write permission on the collection directory)",
            ),
            (
                insert,
                Errno::ENOSPC,
                "/mnt/c: vector memory limit reached (module parameter max_vector_mib)",
            ),
            (
                insert,
                Errno::EINVAL,
                "/mnt/c: invalid request: a batch of 3 vectors of dim 50 \
                 (it must equal the collection's)",
            ),
            (
                Operation::Search {
                    nq: 2,
                    k: 7,
                    dim: 4,
                    ef: 0,
                    flags: 0,
                },
                Errno::EINVAL,
                "/mnt/c: invalid request: 2 queries of dim 4 (it must equal the collection's), \
                 k = 7",
            ),
            (
                Operation::Search {
                    nq: 2,
                    k: 7,
                    dim: 4,
                    ef: 5000,
                    flags: 0,
                },
                Errno::EINVAL,
                "/mnt/c: invalid request: 2 queries of dim 4 (it must equal the collection's), \
                 k = 7, ef = 5000 (at most 4096)",
            ),
            (
                Operation::Search {
                    nq: 1,
                    k: 7,
                    dim: 4,
                    ef: 0,
                    flags: abi::SEARCH_EXACT,
                },
                Errno::EINVAL,
                "/mnt/c: invalid request: 1 queries of dim 4 (it must equal the collection's), \
                 k = 7, flags 0x1",
            ),
            (
                create_hnsw,
                Errno::EINVAL,
                "/mnt/c: invalid request: dim 8, metric l2, index hnsw, M 200, \
                 ef_construction 0 (M is 2 to 127, ef_construction 1 to 4096; 0 for the default)",
            ),
            (
                create,
                Errno::EINVAL,
                "/mnt/c: invalid request: dim 8, metric cosine, index flat",
            ),
            (
                create_sq8(abi::index::FLAT, abi::quantize::SQ8),
                Errno::EINVAL,
                "/mnt/c: invalid request: dim 8, metric dot, index flat, quantize sq8 \
                 (quantize applies to HNSW collections only: a flat collection's search is exact)",
            ),
            (
                create_sq8(abi::index::HNSW, abi::quantize::SQ8),
                Errno::EINVAL,
                "/mnt/c: invalid request: dim 8, metric dot, index hnsw, M 0, ef_construction 0, \
                 quantize sq8 (M is 2 to 127, ef_construction 1 to 4096; 0 for the default)",
            ),
            (
                create_sq8(abi::index::HNSW, 2),
                Errno::EINVAL,
                "/mnt/c: invalid request: dim 8, metric dot, index hnsw, M 0, ef_construction 0, \
                 quantize ? (M is 2 to 127, ef_construction 1 to 4096; 0 for the default; \
                 quantize is none or sq8)",
            ),
            (
                Operation::Create {
                    dim: 8,
                    metric: 9,
                    index: 7,
                    m: 0,
                    ef_construction: 0,
                    quantize: 0,
                },
                Errno::EINVAL,
                "/mnt/c: invalid request: dim 8, metric ?, index ?",
            ),
            (create, Errno::EEXIST, "/mnt/c is already a collection"),
            (
                create,
                Errno::ENOTEMPTY,
                "/mnt/c is not empty: only an empty directory can become a collection",
            ),
            (
                create,
                Errno::EROFS,
                "/mnt/c: read-only filesystem",
            ),
            (
                insert,
                Errno::EEXIST,
                "/mnt/c: an id in the batch belongs to a file's vector",
            ),
            (
                Operation::Delete { count: 2 },
                Errno::ENOENT,
                "/mnt/c: no vector with one of the given ids; nothing deleted",
            ),
            (
                Operation::Get { id: 42, dim: 3 },
                Errno::ENOENT,
                "/mnt/c: no vector with id 42",
            ),
            (
                Operation::Info,
                Errno::ENOTTY,
                "/mnt/c: INFO failed: the kernel module does not know this request (ENOTTY)",
            ),
            (
                Operation::Info,
                Errno::EINVAL,
                "/mnt/c: invalid request: INFO was refused",
            ),
            (
                Operation::Version,
                Errno::EACCES,
                "/mnt/c: VERSION failed: permission denied",
            ),
            (
                Operation::Stats,
                Errno::ENODATA,
                "/mnt/c: STATS failed: no data available (ENODATA)",
            ),
            (
                Operation::Get { id: 1, dim: 3 },
                Errno::ENOMEM,
                "/mnt/c: GET failed: out of memory (ENOMEM)",
            ),
            (
                Operation::Attach { dim: 4, count: 1, ino: 12 },
                Errno::EEXIST,
                "/mnt/c: its inode number 12 is the id of a vector inserted with \
                 `vexctl insert` (delete that one first)",
            ),
            (
                Operation::Attach { dim: 4, count: 1, ino: 12 },
                Errno::EINVAL,
                "/mnt/c: invalid request: a vector of dim 4 (it must equal the collection's)",
            ),
            (
                Operation::Attach { dim: 4, count: 1, ino: 12 },
                Errno::EACCES,
                "/mnt/c: permission denied (changing a file's vector needs write permission on the \
                 file, and in a sticky collection owning the file or the collection)",
            ),
            (
                Operation::Delete { count: 2 },
                Errno::EPERM,
                "/mnt/c: permission denied (needs write permission on the collection directory, and \
                 for a file's vector what changing the file needs); nothing deleted",
            ),
            (
                Operation::Get { id: 7, dim: 3 },
                Errno::EACCES,
                "/mnt/c: permission denied (reading a file's vector needs read permission on the file)",
            ),
            (
                Operation::Get { id: 7, dim: 3 },
                Errno::EPERM,
                "/mnt/c: permission denied",
            ),
            (
                insert,
                Errno::E2BIG,
                "/mnt/c: a batch of 3 vectors of dim 50 (it must equal the collection's) is larger \
                 than the kernel lets one call hold (module parameter max_vector_mib); send smaller \
                 batches",
            ),
            (
                insert,
                Errno::EAGAIN,
                "/mnt/c: INSERT failed: other vector calls in progress hold the kernel's in-flight \
                 memory budget; try again",
            ),
            (
                Operation::Delete { count: 2 },
                Errno::EINTR,
                "/mnt/c: DELETE interrupted",
            ),
        ];
        for (operation, errno, want) in cases {
            assert_eq!(text(operation, errno), want, "{operation:?} {errno:?}");
        }
    }

    #[test]
    fn other_errors_name_the_path() {
        let open = Error::Open {
            path: PathBuf::from("/mnt/vex/private"),
            error: io::Error::from_raw_os_error(Errno::EACCES as i32),
        };
        assert_eq!(open.to_string(), "/mnt/vex/private: permission denied");
        assert_eq!(open.path(), Some(Path::new("/mnt/vex/private")));
        assert_eq!(open.errno(), None);
        assert!(std::error::Error::source(&open).is_none());
        let abi = Error::AbiMismatch { kernel: 2, ours: 3 };
        assert_eq!(
            abi.to_string(),
            "the vexfs module speaks ABI version 2, this vexctl speaks 3: \
             rebuild one to match the other"
        );
        assert_eq!(abi.path(), None);
        assert_eq!(
            Error::NotVexfs {
                path: PathBuf::from("/tmp")
            }
            .to_string(),
            "/tmp: not a VexFS filesystem"
        );
        assert_eq!(
            Error::NotRegularFile {
                path: PathBuf::from("/mnt/c")
            }
            .to_string(),
            "/mnt/c: not a regular file"
        );
        let ioctl = Error::Ioctl {
            path: PathBuf::from("/mnt/c"),
            operation: Operation::Delete { count: 1 },
            errno: Errno::ENOENT,
        };
        assert_eq!(ioctl.operation(), Some(&Operation::Delete { count: 1 }));
    }

    #[test]
    fn io_errors_lose_the_os_error_suffix() {
        let text = |code: Errno| io_error_message(&io::Error::from_raw_os_error(code as i32));
        assert_eq!(text(Errno::ENOENT), "no such file or directory");
        assert_eq!(text(Errno::EACCES), "permission denied");
        assert_eq!(text(Errno::ENOTDIR), "not a directory");
        assert_eq!(text(Errno::EEXIST), "already exists");
        assert_eq!(text(Errno::ELOOP), "too many symbolic links encountered");
        let custom = io::Error::other("short read");
        assert_eq!(io_error_message(&custom), "short read");
    }
}
