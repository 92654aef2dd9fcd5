//! A handle on a file or directory of a VexFS mount and the ioctls on it.
//!
//! Every ioctl goes through this module, which turns errnos into messages a
//! user can act on. Each wrapper builds its request structure itself from
//! borrowed Rust buffers, so the counts, dimensions and addresses the kernel
//! sees always describe buffers that are alive for the whole call.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
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
nix::ioctl_write_ptr!(
    ioc_create,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_CREATE,
    abi::CollectionParams
);
nix::ioctl_read!(
    ioc_info,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_INFO,
    abi::CollectionInfo
);
nix::ioctl_write_ptr!(
    ioc_insert,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_INSERT,
    abi::InsertRequest
);
nix::ioctl_write_ptr!(
    ioc_delete,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_DELETE,
    abi::DeleteRequest
);
nix::ioctl_readwrite!(
    ioc_get,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_GET,
    abi::GetRequest
);
nix::ioctl_write_ptr!(
    ioc_search,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_SEARCH,
    abi::SearchRequest
);
nix::ioctl_write_ptr!(
    ioc_attach,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_ATTACH,
    abi::AttachRequest
);

/// An ioctl and the parameters it was sent with, so that a failure can be
/// explained in terms of what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Version,
    Stats,
    Create {
        dim: u32,
        metric: u32,
        index: u32,
        m: u32,
        ef_construction: u32,
    },
    Info,
    Insert {
        count: u32,
        dim: u32,
    },
    Delete {
        count: u32,
    },
    Get {
        id: u64,
        dim: u32,
    },
    Search {
        nq: u32,
        k: u32,
        dim: u32,
        ef: u32,
        flags: u32,
    },
    Attach {
        dim: u32,
        ino: u64,
    },
}

impl Request {
    /// The ioctl's name without the `VEXFS_IOC_` prefix.
    fn name(&self) -> &'static str {
        match self {
            Request::Version => "VERSION",
            Request::Stats => "STATS",
            Request::Create { .. } => "CREATE",
            Request::Info => "INFO",
            Request::Insert { .. } => "INSERT",
            Request::Delete { .. } => "DELETE",
            Request::Get { .. } => "GET",
            Request::Search { .. } => "SEARCH",
            Request::Attach { .. } => "ATTACH",
        }
    }

    /// What the kernel may have found invalid (for `EINVAL`).
    fn context(&self) -> String {
        match *self {
            Request::Version | Request::Stats | Request::Info => {
                format!("{} was refused", self.name())
            }
            Request::Create {
                dim,
                metric,
                index,
                m,
                ef_construction,
            } => {
                let metric = metric_name(metric).unwrap_or("?");
                if index == abi::index::HNSW {
                    let (lo, hi) = abi::HNSW_M_RANGE;
                    format!(
                        "dim {dim}, metric {metric}, index hnsw, M {m}, ef_construction \
                         {ef_construction} (M is {lo} to {hi}, ef_construction 1 to {}; \
                         0 for the default)",
                        abi::HNSW_MAX_EF
                    )
                } else {
                    format!(
                        "dim {dim}, metric {metric}, index {}",
                        index_name(index).unwrap_or("?")
                    )
                }
            }
            Request::Insert { count, dim } => {
                format!("a batch of {count} vectors of dim {dim} (it must equal the collection's)")
            }
            Request::Delete { count } => format!("a batch of {count} ids"),
            Request::Get { id, dim } => {
                format!("id {id}, dim {dim} (it must equal the collection's)")
            }
            Request::Search {
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
                if flags != 0 {
                    text += &format!(", flags {flags:#x}");
                }
                text
            }
            Request::Attach { dim, .. } => {
                format!("a vector of dim {dim} (it must equal the collection's)")
            }
        }
    }

    /// Whether the request needs write permission on the collection.
    fn writes(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::Insert { .. }
                | Request::Delete { .. }
                | Request::Attach { .. }
        )
    }
}

/// Name of an [`abi::metric`] value.
pub fn metric_name(metric: u32) -> Option<&'static str> {
    abi::metric::NAMES.get(metric as usize).copied()
}

/// Name of an [`abi::index`] value.
pub fn index_name(index: u32) -> Option<&'static str> {
    abi::index::NAMES.get(index as usize).copied()
}

/// Why a VexFS request failed, phrased for the user.
#[derive(Debug)]
pub enum Error {
    /// The path could not be opened.
    Open(PathBuf, io::Error),
    /// The path exists but is not on a VexFS mount.
    NotVexfs(PathBuf),
    /// A file was expected and the path is something else.
    NotRegularFile(PathBuf),
    /// The module answered with an ABI this tool does not speak.
    AbiMismatch { kernel: u32, ours: u32 },
    /// An ioctl failed.
    Ioctl {
        path: PathBuf,
        request: Request,
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open(p, e) => write!(f, "{}: {}", p.display(), io_text(e)),
            Error::NotVexfs(p) => write!(f, "{}: not a VexFS filesystem", p.display()),
            Error::NotRegularFile(p) => write!(f, "{}: not a regular file", p.display()),
            Error::AbiMismatch { kernel, ours } => write!(
                f,
                "the vexfs module speaks ABI version {kernel}, this vexctl speaks {ours}: \
                 rebuild one to match the other"
            ),
            Error::Ioctl {
                path,
                request,
                errno,
            } => f.write_str(&ioctl_text(path, request, *errno)),
        }
    }
}

impl std::error::Error for Error {}

/// One line for an I/O error, without Rust's "(os error N)" suffix.
pub fn io_text(e: &io::Error) -> String {
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

fn errno_text(e: Errno) -> String {
    match e {
        Errno::ENOTTY => "the kernel module does not know this request (ENOTTY)".into(),
        Errno::EACCES | Errno::EPERM => "permission denied".into(),
        other => format!("{} ({other:?})", other.desc().to_lowercase()),
    }
}

/// The message for `request` on `path` failing with `errno`.
///
/// The errnos are the vector ioctls' contract with the kernel module:
/// `ENODATA` is the answer on a directory that is not a collection (or, for
/// ATTACH, a file that is not in one).
fn ioctl_text(path: &Path, request: &Request, errno: Errno) -> String {
    let p = path.display();
    let generic = || format!("{p}: {} failed: {}", request.name(), errno_text(errno));
    match (request, errno) {
        // The first two commands keep their original messages.
        (Request::Version | Request::Stats, _) => generic(),
        (Request::Attach { .. }, Errno::ENODATA) => {
            format!("{p}: not in a vector collection (create one with `vexctl create`)")
        }
        (_, Errno::ENODATA) => {
            format!("{p}: not a vector collection (create one with `vexctl create`)")
        }
        (Request::Attach { .. }, Errno::EACCES | Errno::EPERM) => format!(
            "{p}: permission denied (changing a file's vector needs write permission on the \
             file, and in a sticky collection owning the file or the collection)"
        ),
        (Request::Delete { .. }, Errno::EACCES | Errno::EPERM) => format!(
            "{p}: permission denied (needs write permission on the collection directory, and \
             for a file's vector what changing the file needs); nothing deleted"
        ),
        (Request::Get { .. }, Errno::EACCES) => format!(
            "{p}: permission denied (reading a file's vector needs read permission on the file)"
        ),
        (r, Errno::EACCES | Errno::EPERM) if r.writes() => {
            format!("{p}: permission denied (needs write permission on the collection directory)")
        }
        (_, Errno::EACCES | Errno::EPERM) => format!("{p}: permission denied"),
        (_, Errno::ENOSPC) => {
            format!("{p}: vector memory limit reached (module parameter max_vector_mib)")
        }
        (_, Errno::E2BIG) => format!(
            "{p}: {} is larger than the kernel lets one call hold (module parameter \
             max_vector_mib); send smaller batches",
            request.context()
        ),
        (_, Errno::EAGAIN) => format!(
            "{p}: {} failed: other vector calls in progress hold the kernel's in-flight memory \
             budget; try again",
            request.name()
        ),
        (_, Errno::EINTR) => format!("{p}: {} interrupted", request.name()),
        (r, Errno::EINVAL) => format!("{p}: invalid request: {}", r.context()),
        (Request::Create { .. }, Errno::EEXIST) => format!("{p} is already a collection"),
        (Request::Create { .. }, Errno::ENOTEMPTY) => {
            format!("{p} is not empty: only an empty directory can become a collection")
        }
        (Request::Insert { .. }, Errno::EEXIST) => {
            format!("{p}: an id in the batch belongs to a file's vector")
        }
        (Request::Attach { ino, .. }, Errno::EEXIST) => format!(
            "{p}: its inode number {ino} is the id of a vector inserted with `vexctl insert` \
             (delete that one first)"
        ),
        (Request::Delete { .. }, Errno::ENOENT) => {
            format!("{p}: no vector with one of the given ids; nothing deleted")
        }
        (Request::Get { id, .. }, Errno::ENOENT) => format!("{p}: no vector with id {id}"),
        (_, Errno::EROFS) => format!("{p}: read-only filesystem"),
        _ => generic(),
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
        Self::on_vexfs(file, path)
    }

    /// Opens a directory for the collection ioctls: read-only, `O_DIRECTORY`
    /// (so a file is refused before any ioctl), on VexFS, same ABI.
    pub fn open_dir(path: &Path) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_DIRECTORY.bits())
            .open(path)
            .map_err(|e| Error::Open(path.to_owned(), e))?;
        let handle = Self::on_vexfs(file, path)?;
        handle.check_abi()?;
        Ok(handle)
    }

    /// Opens a regular file read-only for ATTACH: on VexFS, same ABI.
    pub fn open_file(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::Open(path.to_owned(), e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::Open(path.to_owned(), e))?;
        if !meta.is_file() {
            return Err(Error::NotRegularFile(path.to_owned()));
        }
        let handle = Self::on_vexfs(file, path)?;
        handle.check_abi()?;
        Ok(handle)
    }

    fn on_vexfs(file: File, path: &Path) -> Result<Self, Error> {
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

    /// Inode number of the open file: the id of a file's vector.
    pub fn ino(&self) -> Result<u64, Error> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::Open(self.path.clone(), e))?;
        Ok(meta.ino())
    }

    /// Runs `ioctl`, retrying for a few seconds while the kernel answers
    /// `EAGAIN`: its in-flight budget is held by other calls, which end.
    fn busy_retry<T>(mut ioctl: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
        let mut wait = std::time::Duration::from_millis(2);
        for _ in 0..30 {
            match ioctl() {
                Err(Errno::EAGAIN) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_millis(250));
                }
                other => return other,
            }
        }
        ioctl()
    }

    fn failed(&self, request: Request) -> impl FnOnce(Errno) -> Error + '_ {
        move |errno| Error::Ioctl {
            path: self.path.clone(),
            request,
            errno,
        }
    }

    /// Asks the module for its version and CPU features.
    pub fn version(&self) -> Result<abi::VersionInfo, Error> {
        let mut info = abi::VersionInfo::default();
        // SAFETY: the fd is open and `info` is a writable VersionInfo, the
        // type the ioctl number encodes.
        unsafe { ioc_version(self.file.as_raw_fd(), &mut info) }
            .map_err(self.failed(Request::Version))?;
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
            .map_err(self.failed(Request::Stats))?;
        Ok(stats)
    }

    /// Makes this (empty) directory a collection as `params` describe it.
    pub fn create(&self, params: &abi::CollectionParams) -> Result<(), Error> {
        let request = Request::Create {
            dim: params.dim,
            metric: params.metric,
            index: params.index,
            m: params.m,
            ef_construction: params.ef_construction,
        };
        // SAFETY: the fd is open and `params` is a readable CollectionParams,
        // the type the ioctl number encodes; it holds no pointers.
        unsafe { ioc_create(self.file.as_raw_fd(), params) }.map_err(self.failed(request))?;
        Ok(())
    }

    /// Reads the collection's dimension, metric and counters.
    pub fn info(&self) -> Result<abi::CollectionInfo, Error> {
        let mut info = abi::CollectionInfo::default();
        // SAFETY: the fd is open and `info` is a writable CollectionInfo, the
        // type the ioctl number encodes.
        unsafe { ioc_info(self.file.as_raw_fd(), &mut info) }
            .map_err(self.failed(Request::Info))?;
        Ok(info)
    }

    /// Inserts or replaces `ids.len()` vectors of `dim` values each, all or
    /// nothing.
    ///
    /// # Panics
    /// If `vectors` does not hold exactly `ids.len() * dim` values or the
    /// batch is empty or over [`abi::MAX_BATCH`]: callers split and check.
    pub fn insert(&self, ids: &[u64], vectors: &[f32], dim: usize) -> Result<(), Error> {
        let count = batch_len(ids.len());
        assert_eq!(vectors.len(), ids.len() * dim, "vectors do not match ids");
        let dim = u32::try_from(dim).expect("dimension fits u32");
        let req = abi::InsertRequest {
            count,
            dim,
            ids: ids.as_ptr() as u64,
            vectors: vectors.as_ptr() as u64,
        };
        // SAFETY: the fd is open and `req` is a readable InsertRequest, the
        // type the ioctl number encodes. Its addresses point into `ids` and
        // `vectors`, which are borrowed for this whole call, hold `count` ids
        // and `count * dim` values as checked above, and are aligned for u64
        // and f32; the kernel only reads them.
        Self::busy_retry(|| unsafe { ioc_insert(self.file.as_raw_fd(), &req) })
            .map_err(self.failed(Request::Insert { count, dim }))?;
        Ok(())
    }

    /// Deletes all of `ids`, or none if one is absent (`ENOENT`).
    ///
    /// # Panics
    /// If `ids` is empty or longer than [`abi::MAX_BATCH`].
    pub fn delete(&self, ids: &[u64]) -> Result<(), Error> {
        let count = batch_len(ids.len());
        let req = abi::DeleteRequest {
            count,
            reserved: 0,
            ids: ids.as_ptr() as u64,
        };
        // SAFETY: the fd is open and `req` is a readable DeleteRequest, the
        // type the ioctl number encodes. `ids` is borrowed for this whole
        // call, holds `count` aligned u64s, and the kernel only reads it.
        Self::busy_retry(|| unsafe { ioc_delete(self.file.as_raw_fd(), &req) })
            .map_err(self.failed(Request::Delete { count }))?;
        Ok(())
    }

    /// Reads vector `id` of a collection of dimension `dim`; the flag says
    /// whether it belongs to a file.
    pub fn get(&self, id: u64, dim: u32) -> Result<(Vec<f32>, bool), Error> {
        let mut vector = vec![0f32; dim as usize];
        let mut req = abi::GetRequest {
            id,
            dim,
            flags: 0,
            vector: vector.as_mut_ptr() as u64,
        };
        // SAFETY: the fd is open and `req` is a writable GetRequest, the type
        // the ioctl number encodes (the kernel writes `flags` back). `vector`
        // lives until the end of this function, is not otherwise used during
        // the call, and has room for the `dim` aligned f32 values the kernel
        // writes.
        Self::busy_retry(|| unsafe { ioc_get(self.file.as_raw_fd(), &mut req) })
            .map_err(self.failed(Request::Get { id, dim }))?;
        Ok((vector, req.flags & abi::HIT_FILE != 0))
    }

    /// Searches the `k` nearest vectors of each of the rows of `queries`
    /// (`dim` values each), in one ioctl; answers one list of hits per
    /// query, nearest first, as long as the kernel's count for it. `ef` is
    /// the HNSW beam width (0: the default), `flags` 0 or
    /// [`abi::SEARCH_EXACT`].
    ///
    /// # Panics
    /// If `queries` is empty, not a whole number of rows, or more than
    /// [`abi::MAX_QUERIES`] rows: callers split and check.
    pub fn search(
        &self,
        queries: &[f32],
        dim: usize,
        k: u32,
        ef: u32,
        flags: u32,
    ) -> Result<Vec<Vec<abi::SearchHit>>, Error> {
        assert!(dim > 0 && queries.len() % dim == 0, "queries are not rows");
        let nq = queries.len() / dim;
        assert!(nq > 0 && nq <= abi::MAX_QUERIES as usize, "{nq} queries");
        let ku = k as usize;
        let mut hits = vec![abi::SearchHit::default(); nq * ku];
        let mut counts = vec![0u32; nq];
        let (nq, dim) = (nq as u32, u32::try_from(dim).expect("dimension fits u32"));
        let req = abi::SearchRequest {
            nq,
            k,
            dim,
            flags,
            ef,
            reserved: 0,
            queries: queries.as_ptr() as u64,
            hits: hits.as_mut_ptr() as u64,
            counts: counts.as_mut_ptr() as u64,
        };
        // SAFETY: the fd is open and `req` is a readable SearchRequest, the
        // type the ioctl number encodes. `queries` is borrowed for the whole
        // call and holds `nq * dim` aligned f32s (checked above); `hits` and
        // `counts` live until the end of this function, are not otherwise
        // used during the call, and have room for the `nq * k` aligned
        // SearchHits and `nq` u32s the kernel writes.
        Self::busy_retry(|| unsafe { ioc_search(self.file.as_raw_fd(), &req) }).map_err(
            self.failed(Request::Search {
                nq,
                k,
                dim,
                ef,
                flags,
            }),
        )?;
        Ok(hits
            .chunks(ku)
            .zip(&counts)
            // A count above k would be a kernel bug; never read past the row.
            .map(|(row, &n)| row[..(n as usize).min(ku)].to_vec())
            .collect())
    }

    /// Sets the vector of this regular file (its id is the inode number,
    /// which this answers).
    ///
    /// # Panics
    /// If `vector` is empty.
    pub fn attach(&self, vector: &[f32]) -> Result<u64, Error> {
        assert!(!vector.is_empty(), "empty vector");
        let dim = u32::try_from(vector.len()).expect("dimension fits u32");
        let ino = self.ino()?;
        let req = abi::AttachRequest {
            dim,
            reserved: 0,
            vector: vector.as_ptr() as u64,
        };
        // SAFETY: the fd is open and `req` is a readable AttachRequest, the
        // type the ioctl number encodes. `vector` is borrowed for the whole
        // call, holds `dim` aligned f32s, and the kernel only reads it.
        Self::busy_retry(|| unsafe { ioc_attach(self.file.as_raw_fd(), &req) })
            .map_err(self.failed(Request::Attach { dim, ino }))?;
        Ok(ino)
    }
}

/// A batch length as the ABI's u32 count, within 1..=MAX_BATCH.
fn batch_len(len: usize) -> u32 {
    assert!(
        len > 0 && len <= abi::MAX_BATCH as usize,
        "batch of {len} is outside 1..={}",
        abi::MAX_BATCH
    );
    len as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

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
    fn nix_and_abi_agree_on_vector_ioctl_numbers() {
        use nix::{request_code_read as r, request_code_write as w};
        let m = abi::VEXFS_IOC_MAGIC;
        let cases = [
            (
                w!(
                    m,
                    abi::VEXFS_IOC_NR_CREATE,
                    size_of::<abi::CollectionParams>()
                ),
                abi::VEXFS_IOC_CREATE,
            ),
            (
                r!(m, abi::VEXFS_IOC_NR_INFO, size_of::<abi::CollectionInfo>()),
                abi::VEXFS_IOC_INFO,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_INSERT, size_of::<abi::InsertRequest>()),
                abi::VEXFS_IOC_INSERT,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_DELETE, size_of::<abi::DeleteRequest>()),
                abi::VEXFS_IOC_DELETE,
            ),
            (
                nix::request_code_readwrite!(
                    m,
                    abi::VEXFS_IOC_NR_GET,
                    size_of::<abi::GetRequest>()
                ),
                abi::VEXFS_IOC_GET,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_SEARCH, size_of::<abi::SearchRequest>()),
                abi::VEXFS_IOC_SEARCH,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_ATTACH, size_of::<abi::AttachRequest>()),
                abi::VEXFS_IOC_ATTACH,
            ),
        ];
        for (i, (nix_code, abi_code)) in cases.into_iter().enumerate() {
            assert_eq!(nix_code as u32, abi_code, "case {i}");
        }
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
        assert!(matches!(
            Vexfs::open_dir(dir.path()).unwrap_err(),
            Error::NotVexfs(_)
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            Vexfs::open_file(&file).unwrap_err(),
            Error::NotVexfs(_)
        ));
    }

    #[test]
    fn open_dir_refuses_files_and_open_file_refuses_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = Vexfs::open_dir(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a directory", file.display())
        );
        let err = Vexfs::open_file(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a regular file", dir.path().display())
        );
    }

    fn text(request: Request, errno: Errno) -> String {
        Error::Ioctl {
            path: PathBuf::from("/mnt/c"),
            request,
            errno,
        }
        .to_string()
    }

    #[test]
    fn errnos_become_one_line_messages() {
        let insert = Request::Insert { count: 3, dim: 50 };
        let create = Request::Create {
            dim: 8,
            metric: 1,
            index: abi::index::FLAT,
            m: 0,
            ef_construction: 0,
        };
        let create_hnsw = Request::Create {
            dim: 8,
            metric: 0,
            index: abi::index::HNSW,
            m: 200,
            ef_construction: 0,
        };
        let cases = [
            (
                Request::Info,
                Errno::ENODATA,
                "/mnt/c: not a vector collection (create one with `vexctl create`)",
            ),
            (
                Request::Attach { dim: 4, ino: 12 },
                Errno::ENODATA,
                "/mnt/c: not in a vector collection (create one with `vexctl create`)",
            ),
            (
                Request::Search {
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
                Request::Search {
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
                Request::Search {
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
            (create, Errno::EEXIST, "/mnt/c is already a collection"),
            (
                create,
                Errno::ENOTEMPTY,
                "/mnt/c is not empty: only an empty directory can become a collection",
            ),
            (
                insert,
                Errno::EEXIST,
                "/mnt/c: an id in the batch belongs to a file's vector",
            ),
            (
                Request::Delete { count: 2 },
                Errno::ENOENT,
                "/mnt/c: no vector with one of the given ids; nothing deleted",
            ),
            (
                Request::Get { id: 42, dim: 3 },
                Errno::ENOENT,
                "/mnt/c: no vector with id 42",
            ),
            (
                Request::Info,
                Errno::ENOTTY,
                "/mnt/c: INFO failed: the kernel module does not know this request (ENOTTY)",
            ),
            (
                Request::Version,
                Errno::EACCES,
                "/mnt/c: VERSION failed: permission denied",
            ),
            (
                Request::Get { id: 1, dim: 3 },
                Errno::ENOMEM,
                "/mnt/c: GET failed: out of memory (ENOMEM)",
            ),
            (
                Request::Attach { dim: 4, ino: 12 },
                Errno::EEXIST,
                "/mnt/c: its inode number 12 is the id of a vector inserted with \
                 `vexctl insert` (delete that one first)",
            ),
            (
                Request::Attach { dim: 4, ino: 12 },
                Errno::EINVAL,
                "/mnt/c: invalid request: a vector of dim 4 (it must equal the collection's)",
            ),
            (
                Request::Attach { dim: 4, ino: 12 },
                Errno::EACCES,
                "/mnt/c: permission denied (changing a file's vector needs write permission on the \
                 file, and in a sticky collection owning the file or the collection)",
            ),
            (
                Request::Delete { count: 2 },
                Errno::EPERM,
                "/mnt/c: permission denied (needs write permission on the collection directory, and \
                 for a file's vector what changing the file needs); nothing deleted",
            ),
            (
                Request::Get { id: 7, dim: 3 },
                Errno::EACCES,
                "/mnt/c: permission denied (reading a file's vector needs read permission on the file)",
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
                Request::Delete { count: 2 },
                Errno::EINTR,
                "/mnt/c: DELETE interrupted",
            ),
        ];
        for (request, errno, want) in cases {
            assert_eq!(text(request, errno), want, "{request:?} {errno:?}");
        }
    }
}
