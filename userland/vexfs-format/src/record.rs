// SPDX-License-Identifier: GPL-2.0

//! Records: the payload of every frame is a sequence of them.
//!
//! Each is a redo record of state, not of an operation: applying a
//! record sets what it names to what it holds, so replaying a log over the
//! checkpoint it follows rebuilds the state at its last commit. A record
//! is an 8-byte header (type `u16`, reserved `u16` = 0, body length `u32`)
//! followed by its body, with no padding.

use super::{FormatError, Le, LeMut, Result};

/// Bytes of a record header.
pub const RECORD_HEADER_SIZE: usize = 8;
/// The longest name of a directory entry.
pub const NAME_MAX: usize = 255;
/// The longest symlink target (`PATH_MAX` less the NUL).
pub const SYMLINK_MAX: usize = 4095;
/// The longest extended-attribute name and value (`XATTR_NAME_MAX`,
/// `XATTR_SIZE_MAX`).
pub const XATTR_NAME_MAX: usize = 255;
/// See [`XATTR_NAME_MAX`].
pub const XATTR_SIZE_MAX: usize = 65536;
/// The largest vector dimension a collection may have.
pub const DIM_MAX: u32 = 4096;

/// File-type bits of a mode (`S_IFMT`) and the types VexFS stores.
pub const S_IFMT: u32 = 0o170000;
/// See [`S_IFMT`].
pub const S_IFREG: u32 = 0o100000;
/// See [`S_IFMT`].
pub const S_IFDIR: u32 = 0o040000;
/// See [`S_IFMT`].
pub const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

/// A time stamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds, below 10^9.
    pub nsec: u32,
}

/// An inode's attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InodeAttrs {
    /// Inode number, above 0.
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard links.
    pub nlink: u32,
    /// Device number of a device node.
    pub rdev: u32,
    /// Size in bytes.
    pub size: u64,
    /// Access time.
    pub atime: Time,
    /// Modification time.
    pub mtime: Time,
    /// Change time.
    pub ctime: Time,
}

const INODE_BODY: usize = 76;

impl InodeAttrs {
    /// Whether the mode names a type VexFS stores.
    pub fn valid_mode(mode: u32) -> bool {
        mode & !(S_IFMT | 0o7777) == 0
            && matches!(
                mode & S_IFMT,
                S_IFREG | S_IFDIR | S_IFLNK | S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK
            )
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Whether this is a regular file.
    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// Kinds of row a collection holds: a file's vector (its id is the file's
/// inode number).
pub const ROWS_FILE: u8 = 1;
/// A deleted row kept in a checkpoint because the HNSW graph still routes
/// through it (its slot must not move); never in the log.
pub const ROWS_DEAD: u8 = 2;

/// One record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Record<'a> {
    /// An inode and its attributes (created or changed).
    Inode(InodeAttrs),
    /// A name `name` in directory `dir` for inode `ino`.
    Link {
        /// The directory.
        dir: u64,
        /// The inode named.
        ino: u64,
        /// The name.
        name: &'a [u8],
    },
    /// The name `name` in directory `dir` is gone.
    Unlink {
        /// The directory.
        dir: u64,
        /// The name.
        name: &'a [u8],
    },
    /// File bytes at `offset`.
    Data {
        /// The file.
        ino: u64,
        /// Byte offset.
        offset: u64,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// File bytes `offset..offset + len` are zero (a hole punched or
    /// zeroed range).
    Zero {
        /// The file.
        ino: u64,
        /// Byte offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// File space `offset..offset + len` is allocated (`fallocate`), in
    /// or past the size; what it holds comes from `Data` records.
    Alloc {
        /// The file.
        ino: u64,
        /// Byte offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// The target of symlink `ino`.
    Symlink {
        /// The symlink.
        ino: u64,
        /// Its target.
        target: &'a [u8],
    },
    /// Extended attribute `name` of `ino` is `value`.
    Xattr {
        /// The inode.
        ino: u64,
        /// The full name, prefix included (`user.x`).
        name: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Extended attribute `name` of `ino` is gone.
    XattrRemove {
        /// The inode.
        ino: u64,
        /// The full name.
        name: &'a [u8],
    },
    /// Inode `ino` is gone (its last name and its last open file).
    Free {
        /// The inode.
        ino: u64,
    },
    /// Directory `ino` is a collection of `dim`-dimensional vectors.
    Collection {
        /// The directory.
        ino: u64,
        /// Dimension.
        dim: u32,
        /// Metric, as in the ioctl ABI.
        metric: u32,
        /// Index kind, as in the ioctl ABI.
        index: u32,
        /// HNSW links per node.
        m: u32,
        /// HNSW beam width of inserts.
        ef_construction: u32,
        /// How the HNSW walk reads vectors, as in the ioctl ABI (0: floats;
        /// 1: SQ8 codes, which are not stored but rebuilt from the rows).
        quantize: u32,
    },
    /// Rows stored in collection `coll`, in this order: ids, then the
    /// vectors, `dim` little-endian `f32`s each.
    Rows {
        /// The collection.
        coll: u64,
        /// [`ROWS_FILE`] for file vectors (the id is the file's inode),
        /// with [`ROWS_DEAD`] for deleted rows a graph still holds.
        kind: u8,
        /// Dimension of each vector.
        dim: u32,
        /// `count` little-endian `u64` ids.
        ids: &'a [u8],
        /// `count * dim` little-endian `f32`s.
        vectors: &'a [u8],
    },
    /// Rows of collection `coll` deleted, by id.
    RowsDelete {
        /// The collection.
        coll: u64,
        /// Little-endian `u64` ids.
        ids: &'a [u8],
    },
    /// A piece of the HNSW graph of collection `coll`: the pieces of one
    /// checkpoint, in order, are the count of linked rows (8 bytes, rows
    /// from slot 0 on) and the index's encoding.
    Graph {
        /// The collection.
        coll: u64,
        /// The encoded graph.
        bytes: &'a [u8],
    },
    /// Filesystem-wide counters: the next inode number.
    NextIno(u64),
}

/// Record type numbers.
mod ty {
    pub(super) const INODE: u16 = 1;
    pub(super) const LINK: u16 = 2;
    pub(super) const UNLINK: u16 = 3;
    pub(super) const DATA: u16 = 4;
    pub(super) const ZERO: u16 = 5;
    pub(super) const SYMLINK: u16 = 6;
    pub(super) const XATTR: u16 = 7;
    pub(super) const XATTR_REMOVE: u16 = 8;
    pub(super) const FREE: u16 = 9;
    pub(super) const COLLECTION: u16 = 10;
    pub(super) const ROWS: u16 = 11;
    pub(super) const ROWS_DELETE: u16 = 12;
    pub(super) const GRAPH: u16 = 13;
    pub(super) const NEXT_INO: u16 = 14;
    pub(super) const ALLOC: u16 = 15;
}

/// Checks a directory-entry name.
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty()
        || name.len() > NAME_MAX
        || name == b"."
        || name == b".."
        || name.iter().any(|&b| b == b'/' || b == 0)
    {
        return Err(FormatError::BadName);
    }
    Ok(())
}

fn check_time(t: &Time) -> Result<()> {
    if t.nsec >= 1_000_000_000 {
        return Err(FormatError::BadValue("nanoseconds out of range"));
    }
    Ok(())
}

fn read_time(le: &Le<'_>, at: usize) -> Result<Time> {
    let t = Time {
        sec: le.i64(at)?,
        nsec: le.u32(at + 8)?,
    };
    check_time(&t)?;
    Ok(t)
}

fn nonzero_ino(ino: u64) -> Result<u64> {
    if ino == 0 {
        return Err(FormatError::BadValue("inode number 0"));
    }
    Ok(ino)
}

/// The inode, offset and length of a `Zero` or `Alloc` body: a range of
/// at least one byte that ends by `i64::MAX`.
fn file_range(le: &Le<'_>, what: &'static str) -> Result<(u64, u64, u64)> {
    let (offset, len) = (le.u64(8)?, le.u64(16)?);
    if len == 0 || offset.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
        return Err(FormatError::BadValue(what));
    }
    Ok((nonzero_ino(le.u64(0)?)?, offset, len))
}

impl<'a> Record<'a> {
    /// Decodes the record at the start of `buf`; returns it and the bytes
    /// it took.
    pub fn decode(buf: &'a [u8]) -> Result<(Self, usize)> {
        let head = Le(buf);
        let ty = head.u16(0)?;
        if head.u16(2)? != 0 {
            return Err(FormatError::NonZeroReserved);
        }
        let len = head.u32(4)? as usize;
        let body = buf
            .get(RECORD_HEADER_SIZE..)
            .and_then(|b| b.get(..len))
            .ok_or(FormatError::BadRecordLength)?;
        let le = Le(body);
        let exact = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(FormatError::BadRecordLength)
            }
        };
        let at_least = |n: usize| {
            if len >= n {
                Ok(())
            } else {
                Err(FormatError::BadRecordLength)
            }
        };
        let rec = match ty {
            ty::INODE => {
                exact(INODE_BODY)?;
                let a = InodeAttrs {
                    ino: nonzero_ino(le.u64(0)?)?,
                    mode: le.u32(8)?,
                    uid: le.u32(12)?,
                    gid: le.u32(16)?,
                    nlink: le.u32(20)?,
                    rdev: le.u32(24)?,
                    size: le.u64(28)?,
                    atime: read_time(&le, 36)?,
                    mtime: read_time(&le, 48)?,
                    ctime: read_time(&le, 60)?,
                };
                if le.u32(72)? != 0 {
                    return Err(FormatError::NonZeroReserved);
                }
                if !InodeAttrs::valid_mode(a.mode) {
                    return Err(FormatError::BadValue("invalid mode"));
                }
                if a.size > i64::MAX as u64 {
                    return Err(FormatError::BadValue("size out of range"));
                }
                Record::Inode(a)
            }
            ty::LINK => {
                at_least(17)?;
                let name = &body[16..];
                check_name(name)?;
                Record::Link {
                    dir: nonzero_ino(le.u64(0)?)?,
                    ino: nonzero_ino(le.u64(8)?)?,
                    name,
                }
            }
            ty::UNLINK => {
                at_least(9)?;
                let name = &body[8..];
                check_name(name)?;
                Record::Unlink {
                    dir: nonzero_ino(le.u64(0)?)?,
                    name,
                }
            }
            ty::DATA => {
                at_least(17)?;
                let offset = le.u64(8)?;
                let bytes = &body[16..];
                if offset
                    .checked_add(bytes.len() as u64)
                    .is_none_or(|e| e > i64::MAX as u64)
                {
                    return Err(FormatError::BadValue("data past the largest file"));
                }
                Record::Data {
                    ino: nonzero_ino(le.u64(0)?)?,
                    offset,
                    bytes,
                }
            }
            ty::ZERO => {
                exact(24)?;
                let (ino, offset, len) = file_range(&le, "zeroed range out of range")?;
                Record::Zero { ino, offset, len }
            }
            ty::ALLOC => {
                exact(24)?;
                let (ino, offset, len) = file_range(&le, "allocated range out of range")?;
                Record::Alloc { ino, offset, len }
            }
            ty::SYMLINK => {
                at_least(9)?;
                let target = &body[8..];
                if target.len() > SYMLINK_MAX || target.contains(&0) {
                    return Err(FormatError::BadValue("invalid symlink target"));
                }
                Record::Symlink {
                    ino: nonzero_ino(le.u64(0)?)?,
                    target,
                }
            }
            ty::XATTR => {
                at_least(12)?;
                let name_len = le.u16(8)? as usize;
                if le.u16(10)? != 0 {
                    return Err(FormatError::NonZeroReserved);
                }
                let name = body
                    .get(12..12 + name_len)
                    .ok_or(FormatError::BadRecordLength)?;
                let value = &body[12 + name_len..];
                check_xattr_name(name)?;
                if value.len() > XATTR_SIZE_MAX {
                    return Err(FormatError::BadValue("xattr value too long"));
                }
                Record::Xattr {
                    ino: nonzero_ino(le.u64(0)?)?,
                    name,
                    value,
                }
            }
            ty::XATTR_REMOVE => {
                at_least(9)?;
                let name = &body[8..];
                check_xattr_name(name)?;
                Record::XattrRemove {
                    ino: nonzero_ino(le.u64(0)?)?,
                    name,
                }
            }
            ty::FREE => {
                exact(8)?;
                Record::Free {
                    ino: nonzero_ino(le.u64(0)?)?,
                }
            }
            ty::COLLECTION => {
                exact(32)?;
                let dim = le.u32(8)?;
                if dim == 0 || dim > DIM_MAX {
                    return Err(FormatError::BadValue("dimension out of range"));
                }
                Record::Collection {
                    ino: nonzero_ino(le.u64(0)?)?,
                    dim,
                    metric: le.u32(12)?,
                    index: le.u32(16)?,
                    m: le.u32(20)?,
                    ef_construction: le.u32(24)?,
                    quantize: le.u32(28)?,
                }
            }
            ty::ROWS => {
                at_least(24)?;
                let kind = body[8];
                if kind & !(ROWS_FILE | ROWS_DEAD) != 0 || body[9..12].iter().any(|&b| b != 0) {
                    return Err(FormatError::BadValue("unknown row kind"));
                }
                let dim = le.u32(12)?;
                let count = le.u64(16)? as usize;
                if dim == 0 || dim > DIM_MAX {
                    return Err(FormatError::BadValue("dimension out of range"));
                }
                let ids_len = count.checked_mul(8).ok_or(FormatError::BadRecordLength)?;
                let vec_len = count
                    .checked_mul(dim as usize * 4)
                    .ok_or(FormatError::BadRecordLength)?;
                if ids_len.checked_add(vec_len).and_then(|n| n.checked_add(24)) != Some(len) {
                    return Err(FormatError::BadRecordLength);
                }
                Record::Rows {
                    coll: nonzero_ino(le.u64(0)?)?,
                    kind,
                    dim,
                    ids: &body[24..24 + ids_len],
                    vectors: &body[24 + ids_len..],
                }
            }
            ty::ROWS_DELETE => {
                at_least(8)?;
                if (len - 8) % 8 != 0 {
                    return Err(FormatError::BadRecordLength);
                }
                Record::RowsDelete {
                    coll: nonzero_ino(le.u64(0)?)?,
                    ids: &body[8..],
                }
            }
            ty::GRAPH => {
                at_least(8)?;
                Record::Graph {
                    coll: nonzero_ino(le.u64(0)?)?,
                    bytes: &body[8..],
                }
            }
            ty::NEXT_INO => {
                exact(8)?;
                Record::NextIno(nonzero_ino(le.u64(0)?)?)
            }
            other => return Err(FormatError::UnknownRecord(other)),
        };
        Ok((rec, RECORD_HEADER_SIZE + len))
    }

    /// The type number and body length of this record.
    fn head(&self) -> (u16, usize) {
        match self {
            Record::Inode(_) => (ty::INODE, INODE_BODY),
            Record::Link { name, .. } => (ty::LINK, 16 + name.len()),
            Record::Unlink { name, .. } => (ty::UNLINK, 8 + name.len()),
            Record::Data { bytes, .. } => (ty::DATA, 16 + bytes.len()),
            Record::Zero { .. } => (ty::ZERO, 24),
            Record::Alloc { .. } => (ty::ALLOC, 24),
            Record::Symlink { target, .. } => (ty::SYMLINK, 8 + target.len()),
            Record::Xattr { name, value, .. } => (ty::XATTR, 12 + name.len() + value.len()),
            Record::XattrRemove { name, .. } => (ty::XATTR_REMOVE, 8 + name.len()),
            Record::Free { .. } => (ty::FREE, 8),
            Record::Collection { .. } => (ty::COLLECTION, 32),
            Record::Rows { ids, vectors, .. } => (ty::ROWS, 24 + ids.len() + vectors.len()),
            Record::RowsDelete { ids, .. } => (ty::ROWS_DELETE, 8 + ids.len()),
            Record::Graph { bytes, .. } => (ty::GRAPH, 8 + bytes.len()),
            Record::NextIno(_) => (ty::NEXT_INO, 8),
        }
    }

    /// Bytes the encoded record takes.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_SIZE + self.head().1
    }

    /// Encodes into the start of `buf` (at least [`Self::encoded_len`]
    /// bytes); returns the bytes written. The caller built the record from
    /// valid state: the encoder does not check what the decoder does.
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        let (ty, len) = self.head();
        let total = RECORD_HEADER_SIZE + len;
        let buf = &mut buf[..total];
        let mut le = LeMut(buf);
        le.u16(0, ty);
        le.u16(2, 0);
        le.u32(4, len as u32);
        let b = RECORD_HEADER_SIZE;
        match *self {
            Record::Inode(a) => {
                le.u64(b, a.ino);
                le.u32(b + 8, a.mode);
                le.u32(b + 12, a.uid);
                le.u32(b + 16, a.gid);
                le.u32(b + 20, a.nlink);
                le.u32(b + 24, a.rdev);
                le.u64(b + 28, a.size);
                for (at, t) in [(36, a.atime), (48, a.mtime), (60, a.ctime)] {
                    le.i64(b + at, t.sec);
                    le.u32(b + at + 8, t.nsec);
                }
                le.u32(b + 72, 0);
            }
            Record::Link { dir, ino, name } => {
                le.u64(b, dir);
                le.u64(b + 8, ino);
                le.put(b + 16, name);
            }
            Record::Unlink { dir, name } => {
                le.u64(b, dir);
                le.put(b + 8, name);
            }
            Record::Data { ino, offset, bytes } => {
                le.u64(b, ino);
                le.u64(b + 8, offset);
                le.put(b + 16, bytes);
            }
            Record::Zero { ino, offset, len } | Record::Alloc { ino, offset, len } => {
                le.u64(b, ino);
                le.u64(b + 8, offset);
                le.u64(b + 16, len);
            }
            Record::Symlink { ino, target } => {
                le.u64(b, ino);
                le.put(b + 8, target);
            }
            Record::Xattr { ino, name, value } => {
                le.u64(b, ino);
                le.u16(b + 8, name.len() as u16);
                le.u16(b + 10, 0);
                le.put(b + 12, name);
                le.put(b + 12 + name.len(), value);
            }
            Record::XattrRemove { ino, name } => {
                le.u64(b, ino);
                le.put(b + 8, name);
            }
            Record::Free { ino } | Record::NextIno(ino) => le.u64(b, ino),
            Record::Collection {
                ino,
                dim,
                metric,
                index,
                m,
                ef_construction,
                quantize,
            } => {
                le.u64(b, ino);
                le.u32(b + 8, dim);
                le.u32(b + 12, metric);
                le.u32(b + 16, index);
                le.u32(b + 20, m);
                le.u32(b + 24, ef_construction);
                le.u32(b + 28, quantize);
            }
            Record::Rows {
                coll,
                kind,
                dim,
                ids,
                vectors,
            } => {
                le.u64(b, coll);
                le.put(b + 8, &[kind, 0, 0, 0]);
                le.u32(b + 12, dim);
                le.u64(b + 16, (ids.len() / 8) as u64);
                le.put(b + 24, ids);
                le.put(b + 24 + ids.len(), vectors);
            }
            Record::RowsDelete { coll, ids } => {
                le.u64(b, coll);
                le.put(b + 8, ids);
            }
            Record::Graph { coll, bytes } => {
                le.u64(b, coll);
                le.put(b + 8, bytes);
            }
        }
        total
    }
}

/// The ids of a [`Record::Rows`] or [`Record::RowsDelete`] (whose length
/// the decoder checked is a multiple of 8).
pub fn row_ids(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(8).map(|c| {
        let mut a = [0u8; 8];
        for (d, s) in a.iter_mut().zip(c) {
            *d = *s;
        }
        u64::from_le_bytes(a)
    })
}

/// The vector values of a [`Record::Rows`], row after row.
pub fn row_values(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes.chunks_exact(4).map(|c| {
        let mut a = [0u8; 4];
        for (d, s) in a.iter_mut().zip(c) {
            *d = *s;
        }
        f32::from_le_bytes(a)
    })
}

/// Bytes of a [`Record::Data`] before its data.
pub const DATA_HEADER_SIZE: usize = RECORD_HEADER_SIZE + 16;

/// The first [`DATA_HEADER_SIZE`] bytes of a [`Record::Data`] of `len`
/// bytes at `offset` of `ino`: for a writer that streams the data after
/// them instead of holding the whole record.
pub fn data_record_header(ino: u64, offset: u64, len: usize) -> [u8; DATA_HEADER_SIZE] {
    let mut out = [0u8; DATA_HEADER_SIZE];
    let mut le = LeMut(&mut out);
    le.u16(0, ty::DATA);
    le.u32(4, (16 + len) as u32);
    le.u64(RECORD_HEADER_SIZE, ino);
    le.u64(RECORD_HEADER_SIZE + 8, offset);
    out
}

fn check_xattr_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX || name.contains(&0) {
        return Err(FormatError::BadValue("invalid xattr name"));
    }
    Ok(())
}

/// The records of a frame's payload, in order; stops at the first that
/// does not decode (and yields its error).
pub struct Records<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Records<'a> {
    /// The records of `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            rest: payload,
            failed: false,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match Record::decode(self.rest) {
            Ok((rec, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok(rec))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
