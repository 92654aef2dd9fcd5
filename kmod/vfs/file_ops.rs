// SPDX-License-Identifier: GPL-2.0

//! `struct file_operations` from the [`FileOperations`] trait, each C
//! callback adapted once.

use core::marker::PhantomData;

use kernel::bindings;
use kernel::error::{from_result, VTABLE_DEFAULT_ERROR};
use kernel::ffi::{c_int, c_long, c_uint, c_ulong};
use kernel::prelude::*;

use super::backing::BackingFile;
use super::file::{File, IovIter, Kiocb, OpeningFile, Pipe, Vma};
use super::glue;
use super::inode::Inode;
use super::{count, errno};

/// The operations of one kind of open file (regular files, directories).
/// Methods not implemented are left out of the table.
#[vtable]
pub(crate) trait FileOperations: Sized + 'static {
    /// Directories whose entries are their dcache children: open, read,
    /// seek and close them with the VFS library (`dcache_readdir`).
    const DCACHE_DIR: bool = false;
    /// Splice into the file piece by piece through `write_iter`
    /// (`iter_file_splice_write`): the inode lock is held per piece, never
    /// while the splice waits for the pipe.
    const SPLICE_WRITE_ITER: bool = false;
    /// C entry points installed in place of the adapters (see
    /// [`FileEntries`]).
    const ENTRIES: FileEntries = FileEntries::NONE;

    /// Opens a file; one that attaches a backing file
    /// ([`OpeningFile::attach_backing`]) has it closed at `release`.
    extern "C" fn open(_inode: &Inode, _file: OpeningFile<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn read_iter(_iocb: &Kiocb, _to: &mut IovIter) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn write_iter(_iocb: &Kiocb, _from: &mut IovIter) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn splice_read(
        _file: &File,
        _pos: &mut i64,
        _pipe: &Pipe,
        _len: usize,
        _flags: u32,
    ) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn mmap(_file: &File, _vma: &Vma) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn llseek(_file: &File, _offset: i64, _whence: i32) -> Result<i64> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn fallocate(_file: &File, _mode: u32, _offset: i64, _len: i64) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn fsync(_file: &File, _start: i64, _end: i64, _datasync: bool) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    extern "C" fn ioctl(_file: &File, _cmd: u32, _arg: usize) -> IoctlReturn {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// What an ioctl gives back to the VFS: a value or a negative errno, as C
/// has it, so that the adapter passes it on as a tail call (no frame of its
/// own under the ioctl: debugging allocators walk every frame at each
/// allocation).
#[repr(transparent)]
pub(crate) struct IoctlReturn(c_long);

impl IoctlReturn {
    /// The value as C has it (a C entry point's result or argument).
    pub(super) fn from_c(v: c_long) -> Self {
        Self(v)
    }

    /// The value as C has it.
    pub(super) fn into_c(self) -> c_long {
        self.0
    }
}

impl From<Result<isize>> for IoctlReturn {
    #[inline]
    fn from(r: Result<isize>) -> Self {
        Self(from_result(|| r.map(|n| n as c_long)))
    }
}

/// C functions to install in a table in place of the adapters: the probe
/// points of `entry.rs`, which call back the adapter of the same method.
/// An entry point fills its slot whether or not the type implements the
/// method.
#[derive(Clone, Copy)]
pub(crate) struct FileEntries {
    pub(crate) read_iter: Option<IterFn>,
    pub(crate) write_iter: Option<IterFn>,
    pub(crate) fsync: Option<FsyncFn>,
}

/// `read_iter` and `write_iter` as C has them.
pub(crate) type IterFn =
    unsafe extern "C" fn(*mut bindings::kiocb, *mut bindings::iov_iter) -> isize;
/// `fsync` as C has it.
pub(crate) type FsyncFn =
    unsafe extern "C" fn(*mut bindings::file, bindings::loff_t, bindings::loff_t, c_int) -> c_int;

impl FileEntries {
    /// Every slot from the adapters.
    pub(crate) const NONE: Self = Self {
        read_iter: None,
        write_iter: None,
        fsync: None,
    };
}

/// A built `file_operations` table, and whether its files attach backing
/// files (an `open` and the `release` that closes them).
#[derive(Clone, Copy)]
pub(crate) struct FileOpsVTable(
    pub(super) &'static bindings::file_operations,
    pub(super) bool,
);

/// The table of `T`.
pub(crate) const fn vtable<T: FileOperations>() -> FileOpsVTable {
    FileOpsVTable(&Adapter::<T>::TABLE, T::HAS_OPEN && !T::DCACHE_DIR)
}

/// The C callbacks of `T`. Each is installed only in the table of a file
/// of `T`'s kind, so the VFS calls it with an open VexFS file (or a request
/// on one) and the other arguments of that operation, valid for the call.
pub(super) struct Adapter<T>(PhantomData<T>);

impl<T: FileOperations> Adapter<T> {
    const TABLE: bindings::file_operations = bindings::file_operations {
        open: if T::DCACHE_DIR {
            Some(bindings::dcache_dir_open)
        } else if T::HAS_OPEN {
            Some(Self::open)
        } else {
            None
        },
        release: if T::DCACHE_DIR {
            Some(bindings::dcache_dir_close)
        } else if T::HAS_OPEN {
            Some(release_backing)
        } else {
            None
        },
        llseek: if T::DCACHE_DIR {
            Some(bindings::dcache_dir_lseek)
        } else if T::HAS_LLSEEK {
            Some(Self::llseek)
        } else {
            None
        },
        read: if T::DCACHE_DIR {
            Some(bindings::generic_read_dir)
        } else {
            None
        },
        iterate_shared: if T::DCACHE_DIR {
            Some(bindings::dcache_readdir)
        } else {
            None
        },
        read_iter: match T::ENTRIES.read_iter {
            Some(entry) => Some(entry),
            None if T::HAS_READ_ITER => Some(Self::read_iter),
            None => None,
        },
        write_iter: match T::ENTRIES.write_iter {
            Some(entry) => Some(entry),
            None if T::HAS_WRITE_ITER => Some(Self::write_iter),
            None => None,
        },
        splice_read: if T::HAS_SPLICE_READ {
            Some(Self::splice_read)
        } else {
            None
        },
        splice_write: if T::SPLICE_WRITE_ITER {
            Some(bindings::iter_file_splice_write)
        } else {
            None
        },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        fallocate: if T::HAS_FALLOCATE {
            Some(Self::fallocate)
        } else {
            None
        },
        fsync: match T::ENTRIES.fsync {
            Some(entry) => Some(entry),
            None if T::HAS_FSYNC => Some(Self::fsync),
            None => None,
        },
        unlocked_ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl)
        } else {
            None
        },
        // File leases as on any local filesystem.
        setlease: Some(glue::generic_setlease),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// A VFS `open` (see [`Adapter`]).
    unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: See `Adapter`: the file is being opened on `inode`, by
        // this call alone.
        errno(unsafe { T::open(Inode::from_raw(inode), OpeningFile::from_raw(file)) })
    }

    /// # Safety
    ///
    /// A VFS `read_iter` (see [`Adapter`]).
    pub(super) unsafe extern "C" fn read_iter(
        iocb: *mut bindings::kiocb,
        to: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: See `Adapter`.
        let r = unsafe { T::read_iter(Kiocb::from_raw(iocb), IovIter::from_raw(to)) };
        count(r)
    }

    /// # Safety
    ///
    /// A VFS `write_iter` (see [`Adapter`]).
    pub(super) unsafe extern "C" fn write_iter(
        iocb: *mut bindings::kiocb,
        from: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: See `Adapter`.
        let r = unsafe { T::write_iter(Kiocb::from_raw(iocb), IovIter::from_raw(from)) };
        count(r)
    }

    /// # Safety
    ///
    /// A VFS `splice_read` (see [`Adapter`]).
    unsafe extern "C" fn splice_read(
        file: *mut bindings::file,
        ppos: *mut bindings::loff_t,
        pipe: *mut bindings::pipe_inode_info,
        len: usize,
        flags: c_uint,
    ) -> isize {
        // SAFETY: See `Adapter`; `ppos` is the position to advance.
        let r = unsafe {
            T::splice_read(
                File::from_raw(file),
                &mut *ppos,
                Pipe::from_raw(pipe),
                len,
                flags,
            )
        };
        count(r)
    }

    /// # Safety
    ///
    /// A VFS `mmap` (see [`Adapter`]).
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: See `Adapter`.
        errno(unsafe { T::mmap(File::from_raw(file), Vma::from_raw(vma)) })
    }

    /// # Safety
    ///
    /// A VFS `llseek` (see [`Adapter`]).
    unsafe extern "C" fn llseek(
        file: *mut bindings::file,
        offset: bindings::loff_t,
        whence: c_int,
    ) -> bindings::loff_t {
        // SAFETY: See `Adapter`.
        from_result(|| unsafe { T::llseek(File::from_raw(file), offset, whence) })
    }

    /// # Safety
    ///
    /// A VFS `fallocate` (see [`Adapter`]).
    unsafe extern "C" fn fallocate(
        file: *mut bindings::file,
        mode: c_int,
        offset: bindings::loff_t,
        len: bindings::loff_t,
    ) -> c_long {
        // SAFETY: See `Adapter`.
        errno(unsafe { T::fallocate(File::from_raw(file), mode as u32, offset, len) }) as c_long
    }

    /// # Safety
    ///
    /// A VFS `fsync` (see [`Adapter`]).
    pub(super) unsafe extern "C" fn fsync(
        file: *mut bindings::file,
        start: bindings::loff_t,
        end: bindings::loff_t,
        datasync: c_int,
    ) -> c_int {
        // SAFETY: See `Adapter`.
        errno(unsafe { T::fsync(File::from_raw(file), start, end, datasync != 0) })
    }

    /// # Safety
    ///
    /// A VFS `unlocked_ioctl` (see [`Adapter`]).
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: See `Adapter`.
        unsafe { T::ioctl(File::from_raw(file), cmd, arg) }.0
    }
}

/// `file_operations.release` of the tables with an `open`: closes the
/// backing file `open` may have attached. Files whose table has it are the
/// only ones whose `private_data` is a backing file ([`File::backing`]).
///
/// # Safety
///
/// A VFS `release`: the last use of the file.
pub(super) unsafe extern "C" fn release_backing(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: An open VexFS file whose table has this `release`; nothing
    // uses its backing file after this.
    unsafe { BackingFile::close(File::from_raw(file)) };
    0
}
