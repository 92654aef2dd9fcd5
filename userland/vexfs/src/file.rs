//! A regular file in a collection, as the holder of a file vector.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use vexfs_abi as abi;

use crate::handle::{busy_retry, Handle};
use crate::{sys, Collection, Errno, Operation, Result};

/// An open regular file on a VexFS mount, for setting its vectors.
///
/// A file anywhere in a collection's tree can carry 1 to
/// [`abi::MAX_FILE_PARTS`] vectors; the first one's id is the file's inode
/// number ([`vector_id`](Self::vector_id)). Searches of the collection
/// return it once, by its nearest vector ([`Hit::ino`](crate::Hit::ino),
/// [`Hit::part`](crate::Hit::part)); the collection reads them back with
/// [`Collection::get`](crate::Collection::get) and removes them all with
/// [`Collection::delete`](crate::Collection::delete) of the inode number;
/// the kernel removes them when the file's last name in the tree goes.
///
/// # Examples
///
/// ```no_run
/// use vexfs::{Collection, CollectionFile};
///
/// let file = CollectionFile::open("/mnt/vex/docs/readme.txt")?;
/// let id = file.attach(&[0.1, 0.2, 0.3])?;
/// let coll = Collection::open("/mnt/vex/docs")?;
/// assert!(coll.get(id, 3)?.is_file);
/// coll.delete(&[id])?; // detach
/// # Ok::<(), vexfs::Error>(())
/// ```
#[derive(Debug)]
pub struct CollectionFile {
    handle: Handle,
}

impl CollectionFile {
    /// Opens the regular file `path` read-only (the kernel checks write
    /// permission when the vector changes) and checks that it is on VexFS
    /// and that the module speaks this crate's ABI.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let handle = Handle::open_file(path.as_ref())?;
        handle.check_abi()?;
        Ok(Self { handle })
    }

    /// The path the file was opened by.
    pub fn path(&self) -> &Path {
        self.handle.path()
    }

    /// The id of the file's vector: its inode number.
    pub fn vector_id(&self) -> Result<u64> {
        self.handle.ino()
    }

    /// The collection the file's vectors go to, as the kernel decides it:
    /// the nearest collection directory above the file (by its canonical
    /// path, on the same mount), with that directory's path. `None` if
    /// there is none, or a directory on the way cannot be opened (it might
    /// be the one).
    pub fn owner(&self) -> Option<(PathBuf, Collection)> {
        let file = fs::canonicalize(self.path()).ok()?;
        let dev = fs::metadata(&file).ok()?.dev();
        let mut dir = file.parent();
        while let Some(d) = dir {
            if fs::metadata(d).ok()?.dev() != dev {
                return None;
            }
            let coll = Collection::open(d).ok()?;
            match coll.info() {
                Ok(_) => return Some((d.to_path_buf(), coll)),
                // A directory, not a collection: look further up.
                Err(e) if e.errno() == Some(Errno::ENODATA) => dir = d.parent(),
                Err(_) => return None,
            }
        }
        None
    }

    /// Sets (or replaces) the file's vector, which must have the
    /// collection's dimension; answers its id, the inode number.
    ///
    /// While other calls hold the kernel's in-flight memory budget
    /// (`EAGAIN`), it retries for a few seconds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument), before
    /// any ioctl, for an empty vector; `ENODATA` if the file is not in a
    /// collection, `EEXIST` if its inode number is the id of a vector
    /// inserted by id, `EINVAL` for a wrong dimension.
    pub fn attach(&self, vector: &[f32]) -> Result<u64> {
        self.attach_parts(vector, vector.len())
    }

    /// Sets the file's vectors, one per part of it (chunks of a long text,
    /// say): `vectors` holds them row-major, `dim` values each (the
    /// collection's dimension), 1 to [`abi::MAX_FILE_PARTS`] of them. They
    /// replace all the file's vectors at once; part `p` gets the id
    /// [`abi::file_vector_id`]`(ino, p)`, and a search returns the file
    /// once, by its nearest part. Answers the inode number.
    ///
    /// # Errors
    ///
    /// As [`attach`](Self::attach);
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if
    /// `vectors` is not 1 to [`abi::MAX_FILE_PARTS`] whole rows.
    pub fn attach_parts(&self, vectors: &[f32], dim: usize) -> Result<u64> {
        let (count, dim) =
            attach_shape(vectors.len(), dim).map_err(|r| self.handle.invalid("ATTACH", r))?;
        let ino = self.vector_id()?;
        let req = abi::AttachRequest {
            dim,
            count,
            vector: vectors.as_ptr() as u64,
        };
        // SAFETY: the fd is open and `req` is a readable AttachRequest, the
        // type the ioctl number encodes. `vectors` is borrowed for the whole
        // call, holds `count * dim` aligned f32s, and the kernel only reads
        // it.
        busy_retry(|| unsafe { sys::attach(self.handle.raw_fd(), &req) })
            .map_err(self.handle.failed(Operation::Attach { dim, count, ino }))?;
        Ok(ino)
    }
}

impl AsFd for CollectionFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.handle.fd()
    }
}

/// The ATTACH dimension of `vector`, or why none can carry it.
/// `(count, dim)` of `len` values in rows of `dim`: 1 to
/// [`abi::MAX_FILE_PARTS`] non-empty rows.
fn attach_shape(len: usize, dim: usize) -> Result<(u32, u32), String> {
    if len == 0 || dim == 0 {
        return Err("an empty vector".into());
    }
    if len % dim != 0 {
        return Err(format!("{len} values are not rows of {dim}"));
    }
    let count = len / dim;
    if count > abi::MAX_FILE_PARTS as usize {
        return Err(format!(
            "{count} vectors (a file carries 1 to {})",
            abi::MAX_FILE_PARTS
        ));
    }
    let dim = u32::try_from(dim).map_err(|_| format!("a vector of {dim} values"))?;
    Ok((count as u32, dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_takes_whole_nonempty_rows() {
        assert_eq!(attach_shape(2, 2), Ok((1, 2)));
        assert_eq!(attach_shape(6, 2), Ok((3, 2)));
        assert_eq!(attach_shape(0, 2).unwrap_err(), "an empty vector");
        assert_eq!(
            attach_shape(5, 2).unwrap_err(),
            "5 values are not rows of 2"
        );
        let max = abi::MAX_FILE_PARTS as usize;
        assert_eq!(attach_shape(max * 3, 3), Ok((max as u32, 3)));
        assert_eq!(
            attach_shape((max + 1) * 3, 3).unwrap_err(),
            "1025 vectors (a file carries 1 to 1024)"
        );
    }

    #[test]
    fn directories_and_other_filesystems_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = CollectionFile::open(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a regular file", dir.path().display())
        );
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = CollectionFile::open(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a VexFS filesystem", file.display())
        );
    }
}
