// SPDX-License-Identifier: GPL-2.0

//! Durable VexFS: a mount on a block device keeps the in-memory filesystem
//! of the other mode and writes it back in the format of `disk_format.rs`
//! (`Documentation/disk-format.rst`, `Documentation/durability.rst`).
//!
//! - Mount reads the newer superblock slot, the checkpoint it names and
//!   the log commits after it, and rebuilds inodes, data and names.
//! - Every operation that changes something holds the commit lock shared
//!   (an [`Op`]) and, before it changes anything, reserves room for the
//!   records it will log; it logs namespace records, extended attributes,
//!   zeroed ranges and symlink targets as it goes, and marks the inodes
//!   (and data ranges) it changed dirty.
//! - A commit (fsync, syncfs, the `sync` option, every `commit=` seconds)
//!   takes the lock exclusively: one frame of the dirty inodes' records,
//!   the logged records and the dirty data, its payload written and
//!   flushed before its header block goes out with FUA.
//! - When a commit would not fit the log, and at unmount, a checkpoint of
//!   the whole tree is written copy-on-write into the other area, then the
//!   superblock slot that names it (with FUA); the log starts over.

use core::cmp::Ordering as CmpOrdering;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use kernel::alloc::flags::{GFP_KERNEL, GFP_KERNEL_ACCOUNT};
use kernel::alloc::{KVVec, KVec};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::sync::{Mutex, SetOnce};

use kernel::sync::Arc;
use kernel::transmute::AsBytes;

use crate::abi;
use crate::collection::{Collection, Piece};
use crate::disk_format as fmt;
use crate::inode;
use crate::mount_opts::MountOpts;
use crate::vfs::block::{BlockBuf, BlockDevice};
use crate::vfs::dentry::{LoadingDir, NAME_MAX};
use crate::vfs::inode::{mode, StoredAttrs, Timestamp};
use crate::vfs::mem::f32_bytes;
use crate::vfs::sync::{ReadGuard, RwSem, Ticker};
use crate::vfs::task::{self, random_u64};
use crate::vfs::trace::{self, ret_of, Timer};
use crate::vfs::{Dentry, Inode, InodeRef, NewInode, SuperBlock};

/// Bytes of one I/O of a stream (the largest [`BlockBuf`]).
const IO_BYTES: usize = BlockBuf::MAX_LEN;
/// File data goes into records of at most this many bytes.
const DATA_CHUNK: usize = 256 << 10;
/// Checkpoint frames are closed at about this size.
const CKPT_FRAME_TARGET: u64 = 4 << 20;
/// How a checkpoint area is shared: file data (the private tmpfs's size),
/// inodes with their names, attributes and symlink targets (the inode
/// space), collections (rows and graphs); the rest is frame overhead and
/// slack. So the largest checkpoint fits its area.
const DATA_PERCENT: u64 = 60;
const INODE_PERCENT: u64 = 15;
const VECTOR_PERCENT: u64 = 20;

/// Graph records of a checkpoint hold about this many bytes each.
const GRAPH_PIECE: usize = 1 << 20;
/// A transaction of this many bytes is committed when the operation that
/// made it so ends (vector batches go into it whole).
const TXN_COMMIT_BYTES: usize = 16 << 20;
/// Data ranges remembered per dirty inode; more are merged.
const RANGES: usize = 8;

/// The kernel log line and errno of an image that cannot be mounted.
fn refuse(what: &str, e: fmt::FormatError) -> Error {
    pr_err!("cannot mount: {}: {}\n", what, e.message());
    if e.is_foreign() {
        EINVAL
    } else {
        EUCLEAN
    }
}

/// Byte ranges of an inode's data written since the last commit.
type Ranges = [(u64, u64); RANGES];

/// What an inode changed since the last commit.
#[derive(Default)]
pub(crate) struct Dirty {
    /// Its number is in the running transaction's list.
    queued: bool,
    /// Byte ranges of data written (sorted, disjoint).
    ranges: Ranges,
    n: usize,
}

impl Dirty {
    fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut all: [(u64, u64); RANGES + 1] = [(0, 0); RANGES + 1];
        for (a, r) in all.iter_mut().zip(&self.ranges[..self.n]) {
            *a = *r;
        }
        all[self.n] = (start, end);
        let mut n = self.n + 1;
        all[..n].sort_unstable();
        // Merge overlapping or touching ranges.
        let mut w = 0;
        for i in 1..n {
            if all[i].0 <= all[w].1 {
                all[w].1 = all[w].1.max(all[i].1);
            } else {
                w += 1;
                all[w] = all[i];
            }
        }
        n = w + 1;
        if n > RANGES {
            // Merge the two ranges with the smallest gap.
            let i = (0..n - 1)
                .min_by_key(|&i| all[i + 1].0 - all[i].1)
                .unwrap_or(0);
            all[i].1 = all[i + 1].1;
            for j in i + 1..n - 1 {
                all[j] = all[j + 1];
            }
            n -= 1;
        }
        for (r, a) in self.ranges.iter_mut().zip(&all[..n]) {
            *r = *a;
        }
        self.n = n;
    }

    fn take(&mut self) -> (Ranges, usize) {
        let out = (self.ranges, self.n);
        self.n = 0;
        self.queued = false;
        out
    }
}

/// The log's position and the superblock as last written: changed only by
/// commits and checkpoints, which hold the commit lock exclusively.
struct Log {
    sb: fmt::SuperBlock,
    /// The next free block of the log.
    next: u64,
    /// The sequence number of the next commit.
    seq: u64,
    /// A write failed: nothing more is written (`EIO`).
    failed: bool,
}

/// The running transaction.
struct Txn {
    /// Records logged by operations, in order.
    records: KVVec<u8>,
    /// Bytes of `records`' capacity promised to operations in progress.
    reserved: usize,
    /// Inodes marked dirty.
    dirty: KVec<u64>,
    /// Entries of `dirty`'s capacity promised to operations in progress.
    dirty_reserved: usize,
    /// A record could not be kept (an eviction's, which cannot wait or
    /// fail): the next commit writes a checkpoint instead.
    lost: bool,
    /// Logging is on (not while loading, nor after unmount).
    open: bool,
}

/// The durable state of a mount on a block device.
#[pin_data]
pub(crate) struct Disk {
    /// The commit lock: operations share it, commits hold it alone.
    #[pin]
    log: RwSem<Log>,
    #[pin]
    txn: Mutex<Txn>,
    /// The periodic commit.
    ticker: SetOnce<Ticker>,
    commit_ms: u32,
    read_only: bool,
    /// The log had commits at mount: they go into a checkpoint first.
    recovered: AtomicBool,
    /// The mount completed: only then does unmount write a checkpoint (a
    /// failed mount's tree is partial).
    started: AtomicBool,
    /// Bytes a checkpoint may spend on collections (rows and graphs), and
    /// an upper bound of what it would spend now: exact after each
    /// checkpoint (and at mount), each insert adds its estimate, deletes
    /// take nothing off until the next checkpoint.
    vector_cap: u64,
    vector_used: AtomicU64,
}

/// Room an operation reserves in the running transaction.
#[derive(Clone, Copy)]
pub(crate) struct Reserve {
    bytes: usize,
    inodes: usize,
}

impl Reserve {
    /// A namespace operation: up to four names logged (a rename with a
    /// whiteout), a symlink target, five inodes.
    pub(crate) const NAMESPACE: Self = Self {
        bytes: 4 * (fmt::RECORD_HEADER_SIZE + 16 + NAME_MAX) + fmt::RECORD_HEADER_SIZE + 8 + 4096,
        inodes: 5,
    };
    /// An attribute or data change of one inode.
    pub(crate) const INODE: Self = Self {
        bytes: 2 * (fmt::RECORD_HEADER_SIZE + 24),
        inodes: 1,
    };

    /// A batch of `n` vectors of `dim` values, or `n` ids to delete.
    pub(crate) fn rows(n: usize, dim: usize) -> Self {
        Self {
            bytes: fmt::RECORD_HEADER_SIZE + 24 + n * 8 + n * dim * 4,
            inodes: 0,
        }
    }

    /// A new collection.
    pub(crate) const COLLECTION: Self = Self {
        bytes: fmt::RECORD_HEADER_SIZE + 32,
        inodes: 1,
    };

    /// An extended attribute of `value_len` bytes.
    pub(crate) fn xattr(value_len: usize) -> Self {
        Self {
            bytes: fmt::RECORD_HEADER_SIZE + 12 + 255 + value_len,
            inodes: 1,
        }
    }
}

/// One operation on a disk mount, between its start and its end: holds
/// the commit lock shared, and the room it reserved.
pub(crate) struct Op<'a> {
    disk: &'a Disk,
    sb: &'a SuperBlock,
    lock: Option<ReadGuard<'a, Log>>,
    left: Reserve,
}

impl Op<'_> {
    /// Logs `rec` in the reserved room.
    pub(crate) fn log(&mut self, rec: &fmt::Record<'_>) {
        let len = rec.encoded_len();
        let mut txn = self.disk.txn.lock();
        if !txn.open {
            return;
        }
        if len > self.left.bytes {
            // A caller reserved too little: fall back to a checkpoint.
            txn.lost = true;
            return;
        }
        let at = txn.records.len();
        // Within the capacity reserved in `Disk::begin`: cannot fail.
        if txn.records.resize(at + len, 0, GFP_KERNEL_ACCOUNT).is_err() {
            txn.lost = true;
            return;
        }
        rec.encode(&mut txn.records[at..]);
        txn.reserved -= len;
        self.left.bytes -= len;
    }

    /// Marks `inode`'s attributes for the next commit.
    pub(crate) fn dirty(&mut self, inode: &Inode) {
        let mut d = inode.data().dirty.lock();
        if d.queued {
            return;
        }
        let mut txn = self.disk.txn.lock();
        if !txn.open {
            return;
        }
        if self.left.inodes == 0 || txn.dirty.push(inode.ino(), GFP_KERNEL_ACCOUNT).is_err() {
            txn.lost = true;
            return;
        }
        txn.dirty_reserved -= 1;
        self.left.inodes -= 1;
        d.queued = true;
    }

    /// Marks `inode`'s data `pos..pos + len` (and attributes) for the next
    /// commit.
    pub(crate) fn dirty_data(&mut self, inode: &Inode, pos: u64, len: u64) {
        self.dirty(inode);
        inode.data().dirty.lock().add(pos, pos.saturating_add(len));
    }

    /// Logs that `start..` of a file's data now reads as zeros (a
    /// truncation or a punched hole).
    pub(crate) fn zeroed(&mut self, inode: &Inode, start: u64, end: u64) {
        if start < end && end <= i64::MAX as u64 {
            self.log(&fmt::Record::Zero {
                ino: inode.ino(),
                offset: start,
                len: end - start,
            });
        }
    }

    /// Logs that `start..end` of a file's data is allocated (`fallocate`),
    /// in or past its size.
    pub(crate) fn allocated(&mut self, inode: &Inode, start: u64, end: u64) {
        if start < end && end <= i64::MAX as u64 {
            self.log(&fmt::Record::Alloc {
                ino: inode.ino(),
                offset: start,
                len: end - start,
            });
        }
    }
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        {
            let mut txn = self.disk.txn.lock();
            txn.reserved -= self.left.bytes;
            txn.dirty_reserved -= self.left.inodes;
        }
        let large = self.disk.txn.lock().records.len() >= TXN_COMMIT_BYTES;
        drop(self.lock.take());
        // The `sync` mount option: every change is durable when its call
        // returns, as on ext4. A large transaction (vector batches) is
        // committed too, so that it stays bounded.
        if self.sb.synchronous() || large {
            if let Err(e) = self.disk.commit(self.sb) {
                pr_err!("commit of a synchronous mount failed: {:?}\n", e);
            }
        }
    }
}

/// The operation guard of `sb`: an [`Op`] on a disk mount, nothing on an
/// in-memory one.
pub(crate) fn begin(sb: &SuperBlock, room: Reserve) -> Result<Option<Op<'_>>> {
    match sb.data().disk.as_deref() {
        Some(disk) => disk.begin(sb, room).map(Some),
        None => Ok(None),
    }
}

/// Logs through an optional [`Op`] (in-memory mounts have none).
pub(crate) trait OpExt {
    fn log(&mut self, rec: &fmt::Record<'_>);
    fn dirty(&mut self, inode: &Inode);
    fn dirty_data(&mut self, inode: &Inode, pos: u64, len: u64);
    fn zeroed(&mut self, inode: &Inode, start: u64, end: u64);
    fn allocated(&mut self, inode: &Inode, start: u64, end: u64);
}

impl OpExt for Option<Op<'_>> {
    fn log(&mut self, rec: &fmt::Record<'_>) {
        if let Some(op) = self {
            op.log(rec);
        }
    }
    fn dirty(&mut self, inode: &Inode) {
        if let Some(op) = self {
            op.dirty(inode);
        }
    }
    fn dirty_data(&mut self, inode: &Inode, pos: u64, len: u64) {
        if let Some(op) = self {
            op.dirty_data(inode, pos, len);
        }
    }
    fn zeroed(&mut self, inode: &Inode, start: u64, end: u64) {
        if let Some(op) = self {
            op.zeroed(inode, start, end);
        }
    }
    fn allocated(&mut self, inode: &Inode, start: u64, end: u64) {
        if let Some(op) = self {
            op.allocated(inode, start, end);
        }
    }
}

/// The record of a collection with parameters `p` (defaults resolved, as
/// `Collection::params` gives them).
pub(crate) fn collection_record(ino: u64, p: &abi::CollectionParams) -> fmt::Record<'static> {
    fmt::Record::Collection {
        ino,
        dim: p.dim,
        metric: p.metric,
        index: p.index,
        m: p.m,
        ef_construction: p.ef_construction,
        quantize: p.quantize,
    }
}

/// The [`Record::Inode`](fmt::Record::Inode) of `inode`.
fn inode_record(inode: &Inode) -> fmt::InodeAttrs {
    let a = inode.stored_attrs();
    let t = |t: Timestamp| fmt::Time {
        sec: t.sec,
        nsec: t.nsec,
    };
    fmt::InodeAttrs {
        ino: inode.ino(),
        mode: u32::from(inode.mode()),
        uid: a.uid,
        gid: a.gid,
        nlink: a.nlink,
        rdev: a.rdev,
        size: a.size.max(0) as u64,
        atime: t(a.atime),
        mtime: t(a.mtime),
        ctime: t(a.ctime),
    }
}

/// Streams a frame's payload to consecutive blocks, checksumming it.
struct Stream<'a, 'd> {
    dev: &'a BlockDevice<'d>,
    layout: fmt::Layout,
    buf: BlockBuf,
    fill: usize,
    /// The block the buffer goes to.
    next: u64,
    /// The first block past the stream's room.
    end: u64,
    crc: u32,
    len: u64,
}

impl<'a, 'd> Stream<'a, 'd> {
    fn new(dev: &'a BlockDevice<'d>, layout: fmt::Layout, start: u64, end: u64) -> Result<Self> {
        Ok(Self {
            dev,
            layout,
            buf: BlockBuf::new(IO_BYTES)?,
            fill: 0,
            next: start,
            end,
            crc: !0,
            len: 0,
        })
    }

    fn put(&mut self, mut bytes: &[u8]) -> Result {
        self.crc = fmt::crc32c_update(self.crc, bytes);
        self.len += bytes.len() as u64;
        while !bytes.is_empty() {
            let n = (IO_BYTES - self.fill).min(bytes.len());
            self.buf[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            bytes = &bytes[n..];
            if self.fill == IO_BYTES {
                self.write_out()?;
            }
        }
        Ok(())
    }

    fn record(&mut self, rec: &fmt::Record<'_>, scratch: &mut KVVec<u8>) -> Result {
        scratch.clear();
        scratch.resize(rec.encoded_len(), 0, GFP_KERNEL)?;
        rec.encode(scratch);
        self.put(scratch)
    }

    /// Writes the buffered bytes, zero-padded to whole blocks.
    fn write_out(&mut self) -> Result {
        if self.fill == 0 {
            return Ok(());
        }
        let bs = self.layout.block_size as usize;
        let blocks =
            self.fill.checked_div(bs).ok_or(EINVAL)? + usize::from(self.fill % bs.max(1) != 0);
        let len = blocks * bs;
        self.buf[self.fill..len].fill(0);
        let blocks = blocks as u64;
        if self.next + blocks > self.end {
            return Err(ENOSPC);
        }
        self.buf.set_len(len)?;
        let r = self
            .dev
            .write_at(self.layout.offset(self.next), &self.buf, false);
        self.buf.set_len(IO_BYTES)?;
        r?;
        self.next += blocks;
        self.fill = 0;
        Ok(())
    }

    /// Ends the payload; returns its length and checksum.
    fn finish(mut self) -> Result<(u64, u32)> {
        self.write_out()?;
        Ok((self.len, !self.crc))
    }
}

/// Writes a frame header block at `block`.
fn write_header(
    dev: &BlockDevice<'_>,
    layout: &fmt::Layout,
    block: u64,
    h: &fmt::FrameHeader,
    fua: bool,
) -> Result {
    let mut buf = BlockBuf::new(layout.block_size as usize)?;
    h.encode(&mut buf);
    dev.write_at(layout.offset(block), &buf, fua)
}

fn header(
    kind: fmt::FrameKind,
    flags: u16,
    nonce: u64,
    seq: u64,
    len: u64,
    crc: u32,
    bs: u32,
) -> fmt::FrameHeader {
    fmt::FrameHeader {
        kind,
        flags,
        nonce,
        seq,
        blocks: fmt::frame_blocks(len, bs) as u32,
        payload_len: len,
        payload_crc: crc,
    }
}

/// A frame read back: its header and payload, or what is wrong with it.
enum Frame {
    Good(fmt::FrameHeader, KVVec<u8>),
    NoHeader(fmt::FormatError, bool),
    BadPayload(fmt::FrameHeader, fmt::FormatError),
}

/// Reads the frame at `block`, which must end before `end`; `nonce` is
/// the log's, to tell a damaged header of it from the log's end.
fn read_frame(
    dev: &BlockDevice<'_>,
    layout: &fmt::Layout,
    block: u64,
    end: u64,
    nonce: u64,
) -> Result<Frame> {
    let bs = layout.block_size as usize;
    let mut head = BlockBuf::new(bs)?;
    dev.read_at(layout.offset(block), &mut head)?;
    // A log commit's header block may be torn past its first sector (it is
    // written after the payload, with FUA, but a device writes sectors):
    // only the header itself counts there (`nonce` is the log's).
    let decoded = if nonce == 0 {
        fmt::decode_header_block(&head, layout.block_size)
    } else {
        fmt::FrameHeader::decode(&head, layout.block_size)
    };
    let h = match decoded {
        Ok(h) => h,
        Err(e) => return Ok(Frame::NoHeader(e, fmt::damaged_header(&head, nonce))),
    };
    if block + u64::from(h.blocks) > end {
        return Ok(Frame::BadPayload(
            h,
            fmt::FormatError::BadGeometry("frame runs past its region"),
        ));
    }
    let len = h.payload_len as usize;
    let mut payload = KVVec::with_capacity(len, GFP_KERNEL)?;
    let mut buf = BlockBuf::new(IO_BYTES)?;
    let mut at = block + 1;
    let mut left = (u64::from(h.blocks) - 1) as usize * bs;
    while left > 0 {
        let n = left.min(IO_BYTES);
        buf.set_len(n)?;
        dev.read_at(layout.offset(at), &mut buf)?;
        let take = n.min(len - payload.len());
        payload.extend_from_slice(&buf[..take], GFP_KERNEL)?;
        if let Err(e) = fmt::check_padding(&buf[take..n]) {
            return Ok(Frame::BadPayload(h, e));
        }
        at += n.checked_div(bs).ok_or(EINVAL)? as u64;
        left -= n;
        task::cond_resched();
    }
    if let Err(e) = h.check_payload(&payload) {
        return Ok(Frame::BadPayload(h, e));
    }
    Ok(Frame::Good(h, payload))
}

/// A name in a directory, while loading.
struct NameKey {
    dir: u64,
    name: KVec<u8>,
}

impl NameKey {
    fn new(dir: u64, name: &[u8]) -> Result<Self> {
        let mut n = KVec::with_capacity(name.len(), GFP_KERNEL)?;
        n.extend_from_slice(name, GFP_KERNEL)?;
        Ok(Self { dir, name: n })
    }
}

impl PartialEq for NameKey {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == CmpOrdering::Equal
    }
}
impl Eq for NameKey {}
impl PartialOrd for NameKey {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for NameKey {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (self.dir, &self.name[..]).cmp(&(o.dir, &o.name[..]))
    }
}

/// An inode read from disk: new until its first name hashes it.
enum Loaded {
    New(NewInode),
    Named(InodeRef),
    /// Transiently, while being named.
    Gone,
}

impl Loaded {
    fn inode(&self) -> Option<&Inode> {
        match self {
            Loaded::New(n) => Some(n.inode()),
            Loaded::Named(r) => Some(r.inode()),
            Loaded::Gone => None,
        }
    }
}

/// The filesystem being read at mount: inodes, data and names as the
/// checkpoint and then each log commit leave them.
pub(crate) struct Loader<'a> {
    sb: &'a SuperBlock,
    inodes: RBTree<u64, Loaded>,
    names: RBTree<NameKey, u64>,
    /// Replaying the log (rather than reading the checkpoint).
    in_log: bool,
    /// Graph pieces of the checkpoint, by collection directory.
    graphs: RBTree<u64, KVVec<u8>>,
    /// The collections read, for their maintenance once mounted.
    collections: KVec<Arc<Collection>>,
    /// Bytes of collection records read.
    vector_bytes: u64,
}

fn corrupt(msg: &str) -> Error {
    pr_err!("cannot mount: {}\n", msg);
    EUCLEAN
}

impl<'a> Loader<'a> {
    fn apply(&mut self, rec: &fmt::Record<'_>) -> Result {
        // An inode made and freed between two commits was never written
        // back: the log still holds the records that named or changed it.
        // Records set state, so for an inode that is not there they set
        // nothing.
        if self.in_log {
            if let Some(ino) = subject(rec) {
                if self.inodes.get(&ino).is_none() {
                    return Ok(());
                }
            }
        }
        if matches!(
            rec,
            fmt::Record::Collection { .. } | fmt::Record::Rows { .. } | fmt::Record::Graph { .. }
        ) {
            self.vector_bytes = self.vector_bytes.saturating_add(rec.encoded_len() as u64);
        }
        match *rec {
            fmt::Record::Inode(a) => self.inode(&a),
            fmt::Record::Link { dir, ino, name } => {
                let key = NameKey::new(dir, name)?;
                self.names.try_create_and_insert(key, ino, GFP_KERNEL)?;
                Ok(())
            }
            fmt::Record::Unlink { dir, name } => {
                let key = NameKey::new(dir, name)?;
                if self.names.remove(&key).is_none() && !self.in_log {
                    return Err(corrupt("a checkpoint removes a name"));
                }
                Ok(())
            }
            fmt::Record::Data { ino, offset, bytes } => {
                let data = self.data_file(ino)?;
                data.write_at(offset, bytes)
            }
            // The decoder bounds both ranges by `i64::MAX`; space past the
            // size is freed or allocated too (`fallocate` may have put it
            // there).
            fmt::Record::Zero { ino, offset, len } => {
                self.data_file(ino)?.punch(offset as i64, len as i64)
            }
            fmt::Record::Alloc { ino, offset, len } => {
                self.data_file(ino)?.allocate(offset as i64, len as i64)
            }
            fmt::Record::Symlink { ino, target } => {
                let Some(Loaded::New(new)) = self.inodes.get(&ino) else {
                    return Err(corrupt("symlink target of an unknown inode"));
                };
                let mut t = KVec::with_capacity(target.len() + 1, GFP_KERNEL)?;
                t.extend_from_slice(target, GFP_KERNEL)?;
                t.push(0, GFP_KERNEL)?;
                let t = CStr::from_bytes_with_nul(&t).map_err(|_| corrupt("bad symlink target"))?;
                new.inode()
                    .data()
                    .charge_target(self.sb.data(), target.len())?;
                new.set_link(t, inode::SYMLINK_IOPS)
                    .map_err(|_| corrupt("symlink target of a non-symlink"))
            }
            fmt::Record::Xattr { ino, name, value } => {
                let inode = self.known(ino)?;
                inode
                    .data()
                    .xattrs
                    .load(inode::sb_info(inode), name, Some(value))
            }
            fmt::Record::XattrRemove { ino, name } => {
                let inode = self.known(ino)?;
                match inode.data().xattrs.load(inode::sb_info(inode), name, None) {
                    Err(e) if e == ENODATA && self.in_log => Ok(()),
                    r => r,
                }
            }
            fmt::Record::Free { ino } => {
                // Its inode (if it was ever written back) goes now.
                drop(self.inodes.remove(&ino));
                Ok(())
            }
            fmt::Record::NextIno(n) => {
                self.sb.data().saw_ino(n.saturating_sub(1));
                Ok(())
            }
            fmt::Record::Collection {
                ino,
                dim,
                metric,
                index,
                m,
                ef_construction,
                quantize,
            } => {
                let dir = self.known(ino)?;
                if !dir.is_dir() || dir.data().collection().is_some() {
                    return Err(corrupt("a collection on a non-directory or twice"));
                }
                let params = abi::CollectionParams {
                    dim,
                    metric,
                    index,
                    m,
                    ef_construction,
                    quantize,
                    reserved: [0; 2],
                };
                // As `VEXFS_IOC_CREATE` checks them (with the defaults
                // resolved, as a checkpoint stores them).
                if !crate::vector_ioctl::index_params_valid(&params)
                    || !(1..=abi::MAX_DIM).contains(&dim)
                    || metric as usize >= abi::metric::NAMES.len()
                    || (index == abi::index::HNSW && (m == 0 || ef_construction == 0))
                {
                    return Err(corrupt("bad collection parameters"));
                }
                let coll = Collection::new(&params).map_err(|e| match e {
                    EINVAL => corrupt("bad collection parameters"),
                    e => e,
                })?;
                dir.data().set_collection(coll.clone())?;
                self.collections.push(coll, GFP_KERNEL)?;
                Ok(())
            }
            fmt::Record::Rows {
                coll,
                kind,
                dim,
                ids,
                vectors,
            } => {
                let c = self.collection(coll)?;
                if dim as usize != c.dim() {
                    return Err(corrupt("rows of another dimension"));
                }
                let ids = le_u64s(ids)?;
                let rows = le_f32s(vectors)?;
                if !self.in_log {
                    return c.load_rows(kind, &ids, &rows);
                }
                if kind & fmt::ROWS_DEAD != 0 {
                    return Err(corrupt("deleted rows in the log"));
                }
                let mut b = c.stage(ids.len(), kind & fmt::ROWS_FILE != 0)?;
                for (d, s) in b.ids.iter_mut().zip(ids.iter()) {
                    *d = *s;
                }
                for (d, s) in b.rows.iter_mut().zip(rows.iter()) {
                    *d = *s;
                }
                let _ = c.commit(b, |_, _| {}).map_err(|e| {
                    if e == EEXIST {
                        corrupt("a file vector that is not")
                    } else if e == EINVAL {
                        corrupt("a file's vectors out of order")
                    } else {
                        e
                    }
                })?;
                Ok(())
            }
            fmt::Record::RowsDelete { coll, ids } => {
                let ids = le_u64s(ids)?;
                self.collection(coll)?.replay_delete(&ids)
            }
            fmt::Record::Graph { coll, bytes } => {
                if self.in_log {
                    return Err(corrupt("a graph in the log"));
                }
                self.collection(coll)?;
                if self.graphs.get(&coll).is_none() {
                    self.graphs
                        .try_create_and_insert(coll, KVVec::new(), GFP_KERNEL)?;
                }
                let buf = self.graphs.get_mut(&coll).ok_or(ENOMEM)?;
                buf.extend_from_slice(bytes, GFP_KERNEL)?;
                Ok(())
            }
        }
    }

    /// The collection of directory `ino`.
    fn collection(&self, ino: u64) -> Result<Arc<Collection>> {
        self.known(ino)?
            .data()
            .collection()
            .cloned()
            .ok_or_else(|| corrupt("rows of a directory that is no collection"))
    }

    /// After the checkpoint: installs the graphs it held (an HNSW
    /// collection without one links its rows again once mounted).
    fn end_checkpoint(&mut self) -> Result {
        self.in_log = true;
        let graphs = core::mem::take(&mut self.graphs);
        for (&ino, bytes) in graphs.iter() {
            self.collection(ino)?.load_graph(bytes)?;
        }
        Ok(())
    }

    fn known(&self, ino: u64) -> Result<&Inode> {
        self.inodes
            .get(&ino)
            .and_then(Loaded::inode)
            .ok_or_else(|| corrupt("record of an unknown inode"))
    }

    fn data_file(&self, ino: u64) -> Result<&crate::vfs::DataFile> {
        self.known(ino)?
            .data()
            .data
            .as_ref()
            .ok_or_else(|| corrupt("file data of a non-file"))
    }

    fn inode(&mut self, a: &fmt::InodeAttrs) -> Result {
        if a.ino >= u64::MAX / 2 {
            return Err(corrupt("an inode number out of range"));
        }
        let mode = (a.mode & 0o177777) as u16;
        let stored = StoredAttrs {
            uid: a.uid,
            gid: a.gid,
            nlink: a.nlink,
            rdev: a.rdev,
            size: a.size as i64,
            atime: Timestamp {
                sec: a.atime.sec,
                nsec: a.atime.nsec,
            },
            mtime: Timestamp {
                sec: a.mtime.sec,
                nsec: a.mtime.nsec,
            },
            ctime: Timestamp {
                sec: a.ctime.sec,
                nsec: a.ctime.nsec,
            },
        };
        if let Some(l) = self.inodes.get(&a.ino) {
            let Loaded::New(new) = l else {
                return Err(corrupt("inode changed after it was named"));
            };
            if new.inode().mode() & mode::S_IFMT != mode & mode::S_IFMT {
                return Err(corrupt("inode changes its type"));
            }
            let mut stored = stored;
            if let Some(target) = new.inode().symlink_target() {
                // A symlink's size is its target's length, whatever the
                // record says.
                stored.size = target.len() as i64;
            }
            new.set_stored_attrs(&stored);
            new.set_mode(mode);
            // Only a size change: setting the same size would free what
            // `fallocate` allocated past it (a truncation logs that as a
            // `Zero` record of its own).
            if let Some(data) = new.inode().data().data.as_ref() {
                if data.size() != stored.size {
                    data.set_size(stored.size)?;
                }
            }
            return Ok(());
        }
        let new = inode::load_inode(self.sb, a.ino, mode, a.rdev)?;
        let mut stored = stored;
        if mode & mode::S_IFMT == mode::S_IFLNK {
            // Set with its target (`set_link`).
            stored.size = 0;
        }
        new.set_stored_attrs(&stored);
        if let Some(data) = new.inode().data().data.as_ref() {
            data.set_size(stored.size)?;
        }
        self.inodes
            .try_create_and_insert(a.ino, Loaded::New(new), GFP_KERNEL)?;
        Ok(())
    }

    /// The root directory's inode, for the superblock.
    pub(crate) fn take_root(&mut self) -> Result<NewInode> {
        match self.inodes.remove(&fmt::ROOT_INO) {
            Some(Loaded::New(root)) if root.inode().is_dir() => Ok(root),
            _ => Err(corrupt("no root directory")),
        }
    }

    /// Adds every name, from the root down; inodes left without one (open
    /// but unlinked when the system went down) are dropped.
    pub(crate) fn materialize(mut self, root: LoadingDir<'_>) -> Result {
        // Link counts must be what the names make them: the VFS warns on
        // any other when a name goes. Inodes without a name (open but
        // unlinked when the system went down) are dropped instead.
        let mut names: RBTree<u64, u32> = RBTree::new();
        let mut subdirs: RBTree<u64, u32> = RBTree::new();
        let mut cursor = self.names.cursor_front_mut();
        while let Some(c) = cursor {
            let (k, &ino) = c.current();
            let is_dir = self
                .inodes
                .get(&ino)
                .and_then(Loaded::inode)
                .is_some_and(|i| i.is_dir());
            count(&mut names, ino)?;
            if is_dir {
                count(&mut subdirs, k.dir)?;
            }
            cursor = c.move_next();
        }
        for (&ino, l) in self.inodes.iter() {
            let Some(inode) = l.inode() else { continue };
            let Some(&named) = names.get(&ino) else {
                continue;
            };
            let want = if inode.is_dir() {
                2u32.saturating_add(subdirs.get(&ino).copied().unwrap_or(0))
            } else {
                named
            };
            if want != inode.nlink() {
                return Err(corrupt("a link count that the names do not make"));
            }
        }
        let mut queue: KVVec<(u64, LoadingDir<'_>)> = KVVec::new();
        queue.push((fmt::ROOT_INO, root), GFP_KERNEL)?;
        let mut named_dirs = 0usize;
        while let Some((dir, loading)) = queue.pop() {
            let start = NameKey::new(dir, b"")?;
            let mut entries: KVVec<(KVec<u8>, u64)> = KVVec::new();
            let mut cursor = self.names.cursor_lower_bound_mut(&start);
            while let Some(c) = cursor {
                let (k, &ino) = c.current();
                if k.dir != dir {
                    break;
                }
                let mut name = KVec::with_capacity(k.name.len(), GFP_KERNEL)?;
                name.extend_from_slice(&k.name, GFP_KERNEL)?;
                entries.push((name, ino), GFP_KERNEL)?;
                cursor = c.move_next();
            }
            for (name, ino) in entries {
                if ino == fmt::ROOT_INO {
                    return Err(corrupt("a name for the root directory"));
                }
                let slot = self
                    .inodes
                    .get_mut(&ino)
                    .ok_or_else(|| corrupt("a name for an unknown inode"))?;
                if let Loaded::New(_) = slot {
                    let Loaded::New(new) = core::mem::replace(slot, Loaded::Gone) else {
                        unreachable!()
                    };
                    *slot = Loaded::Named(new.into_loaded());
                } else if slot.inode().is_some_and(|i| i.is_dir()) {
                    return Err(corrupt("a directory with two names"));
                }
                let inode = slot.inode().ok_or(EINVAL)?;
                let child = loading.add(&name, inode)?;
                if inode.is_dir() {
                    named_dirs += 1;
                    queue.push((ino, child), GFP_KERNEL)?;
                }
                task::cond_resched();
            }
        }
        let _ = named_dirs;
        // Rows not linked into their graph yet (a log replayed, a graph
        // not stored) are linked by the module's worker.
        for coll in self.collections.iter() {
            coll.schedule_maintenance();
        }
        Ok(())
    }
}

impl Disk {
    /// Reads the superblock of the device of a mount and checks it; the
    /// options of a disk mount are checked here too.
    pub(crate) fn open(
        dev: &BlockDevice<'_>,
        read_only: bool,
        opts: &MountOpts,
    ) -> Result<Pin<KBox<Self>>> {
        if opts.has_memory_options() {
            pr_err!("size=, nr_inodes=, mode=, uid= and gid= are options of in-memory mounts\n");
            return Err(EINVAL);
        }
        let mut slots = BlockBuf::new(fmt::SUPER_AREA_BYTES as usize)?;
        if dev.size() < fmt::SUPER_AREA_BYTES {
            pr_err!("cannot mount: the device is smaller than a superblock\n");
            return Err(EINVAL);
        }
        dev.read_at(0, &mut slots)?;
        let a = fmt::decode_slot(&slots[..fmt::SUPER_SLOT_BYTES]);
        let b = fmt::decode_slot(&slots[fmt::SUPER_SLOT_BYTES..]);
        if let Err(e) = &a {
            if e.is_foreign() {
                return Err(refuse("superblock slot 0", *e));
            }
        }
        let (a, b) = (
            a.map_err(|e| refuse("superblock slot 0", e))?,
            b.map_err(|e| refuse("superblock slot 1", e))?,
        );
        if a.uuid != b.uuid || a.layout != b.layout {
            return Err(corrupt(
                "the superblock slots belong to different filesystems",
            ));
        }
        let sb = if b.generation > a.generation { b } else { a };
        sb.check_device(dev.size())
            .map_err(|e| refuse("superblock", e))?;
        if sb.ro_compat & !fmt::RO_COMPAT_SUPPORTED != 0 && !read_only {
            pr_err!("cannot mount read-write: unknown read-only-compatible features\n");
            return Err(EROFS);
        }
        if u64::from(sb.layout.block_size) % u64::from(dev.logical_block_size()) != 0 {
            pr_err!("cannot mount: block size below the device's logical block size\n");
            return Err(EINVAL);
        }
        let sb_area = sb.layout.area_bytes();
        let log = Log {
            next: sb.layout.log_start,
            seq: 0,
            failed: false,
            sb,
        };
        KBox::pin_init(
            pin_init!(Self {
                log <- RwSem::new(log, c"vexfs_disk", kernel::static_lock_class!()),
                txn <- new_mutex!(Txn {
                    records: KVVec::new(),
                    reserved: 0,
                    dirty: KVec::new(),
                    dirty_reserved: 0,
                    lost: false,
                    open: false,
                }),
                ticker: SetOnce::new(),
                commit_ms: opts.commit_ms(),
                read_only,
                recovered: AtomicBool::new(false),
                started: AtomicBool::new(false),
                vector_cap: sb_area / 100 * VECTOR_PERCENT,
                vector_used: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Limits of the in-memory filesystem that a checkpoint can hold: data
    /// pages and inodes (with their names and attributes, 1 KiB each, see
    /// `BOGO_INODE_SIZE`).
    pub(crate) fn limits(&self) -> Result<(u64, u64)> {
        // No one else holds the lock while mounting.
        let log = self.log.try_read().ok_or(EBUSY)?;
        let area = log.sb.layout.area_bytes();
        let pages = area / 100 * DATA_PERCENT / crate::vfs::mem::PAGE_SIZE as u64;
        let inodes = (area / 100 * INODE_PERCENT / crate::mount_opts::BOGO_INODE_SIZE).max(16);
        Ok((pages, inodes))
    }

    /// Takes room for `bytes` of collection rows and graph in the next
    /// checkpoint: `ENOSPC` past its share of an area.
    pub(crate) fn charge_vectors(&self, bytes: u64) -> Result {
        let mut cur = self.vector_used.load(Relaxed);
        loop {
            let next = cur
                .checked_add(bytes)
                .filter(|&n| n <= self.vector_cap)
                .ok_or(ENOSPC)?;
            match self
                .vector_used
                .compare_exchange(cur, next, Relaxed, Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Reads the checkpoint and the log into `sb`'s in-memory filesystem.
    pub(crate) fn load<'a>(&self, sb: &'a SuperBlock) -> Result<Loader<'a>> {
        let dev = BlockDevice::from_super(sb).ok_or(EINVAL)?;
        let mut loader = Loader {
            sb,
            inodes: RBTree::new(),
            names: RBTree::new(),
            in_log: false,
            graphs: RBTree::new(),
            collections: KVec::new(),
            vector_bytes: 0,
        };
        let log = self.log.try_read().ok_or(EBUSY)?;
        let fs = log.sb.clone();
        let layout = fs.layout;
        drop(log);
        // The checkpoint.
        let start = fs.ckpt_start();
        let end = start + fs.ckpt_blocks;
        let mut block = start;
        let mut seq = 0;
        loop {
            let (h, payload) = match read_frame(&dev, &layout, block, end, 0)? {
                Frame::Good(h, p) => (h, p),
                Frame::NoHeader(e, _) | Frame::BadPayload(_, e) => {
                    return Err(refuse("checkpoint", e))
                }
            };
            h.expect(fmt::FrameKind::Checkpoint, fs.ckpt_nonce, seq)
                .map_err(|e| refuse("checkpoint", e))?;
            apply_payload(&mut loader, &payload)?;
            block += u64::from(h.blocks);
            seq += 1;
            if h.flags & fmt::FRAME_LAST != 0 {
                if block != end {
                    return Err(corrupt("checkpoint shorter than the superblock says"));
                }
                break;
            }
        }
        loader.end_checkpoint()?;
        // The log.
        let log_end = layout.log_start + layout.log_blocks;
        let mut block = layout.log_start;
        let mut seq = 0u64;
        while block < log_end {
            match read_frame(&dev, &layout, block, log_end, fs.log_nonce)? {
                Frame::Good(h, payload)
                    if h.kind == fmt::FrameKind::Commit && h.nonce == fs.log_nonce =>
                {
                    if h.seq != seq {
                        return Err(refuse("log", fmt::FormatError::FrameMismatch));
                    }
                    apply_payload(&mut loader, &payload)?;
                    block += u64::from(h.blocks);
                    seq += 1;
                }
                Frame::BadPayload(h, e) if h.nonce == fs.log_nonce => {
                    return Err(refuse("log commit", e))
                }
                Frame::NoHeader(e, true) => return Err(refuse("log commit header", e)),
                _ => break,
            }
        }
        self.vector_used.store(loader.vector_bytes, Relaxed);
        let mut log = self.log.try_write().ok_or(EBUSY)?;
        log.next = block;
        log.seq = seq;
        self.recovered.store(seq > 0, Relaxed);
        Ok(loader)
    }

    /// Starts logging after a mount has loaded the filesystem: a log left
    /// by a crash is folded into a new checkpoint first, and the superblock
    /// says the filesystem is mounted.
    pub(crate) fn start(&self, sb: &SuperBlock) -> Result {
        self.txn.lock().open = !self.read_only;
        if self.read_only {
            return Ok(());
        }
        let mut log = self.log.write();
        if self.recovered.load(Relaxed) {
            self.checkpoint_locked(sb, &mut log, fmt::FsState::Mounted, KVec::new())?;
        } else {
            let mut next = log.sb.clone();
            next.state = fmt::FsState::Mounted;
            self.write_super(sb, &mut log, next)?;
        }
        drop(log);
        let ticker = Ticker::new(sb)?;
        let _ = self.ticker.populate(ticker);
        self.started.store(true, Relaxed);
        Ok(())
    }

    /// Starts an operation: takes the commit lock shared (killable) and
    /// reserves `room` in the running transaction.
    fn begin<'a>(&'a self, sb: &'a SuperBlock, room: Reserve) -> Result<Op<'a>> {
        if self.read_only {
            return Err(EROFS);
        }
        let lock = self.log.read_killable()?;
        if lock.failed {
            return Err(EIO);
        }
        {
            let mut txn = self.txn.lock();
            let want = txn.reserved + room.bytes;
            let have = txn.records.capacity() - txn.records.len();
            if want > have {
                txn.records.reserve(want, GFP_KERNEL_ACCOUNT)?;
            }
            let want = txn.dirty_reserved + room.inodes;
            let have = txn.dirty.capacity() - txn.dirty.len();
            if want > have {
                txn.dirty.reserve(want, GFP_KERNEL_ACCOUNT)?;
            }
            txn.reserved += room.bytes;
            txn.dirty_reserved += room.inodes;
        }
        if let Some(t) = self.ticker.as_ref() {
            t.arm(self.commit_ms);
        }
        Ok(Op {
            disk: self,
            sb,
            lock: Some(lock),
            left: room,
        })
    }

    /// Makes everything done so far durable (fsync, syncfs); a fatal signal
    /// ends the wait for the commit lock.
    pub(crate) fn commit(&self, sb: &SuperBlock) -> Result {
        if self.read_only {
            return Ok(());
        }
        let mut log = self.log.write_killable()?;
        self.commit_locked(sb, &mut log)
    }

    /// The periodic commit.
    pub(crate) fn tick(&self, sb: &SuperBlock) {
        // Nothing after unmount began (the superblock is going).
        if !self.txn.lock().open {
            return;
        }
        let mut log = self.log.write();
        if let Err(e) = self.commit_locked(sb, &mut log) {
            pr_err!("periodic commit failed: {:?}\n", e);
        }
    }

    /// At unmount: a last checkpoint, and the superblock says clean.
    pub(crate) fn shutdown(&self, sb: &SuperBlock) {
        if self.read_only || !self.started.load(Relaxed) {
            return;
        }
        let mut log = self.log.write();
        let dirty = {
            let mut txn = self.txn.lock();
            txn.open = false;
            core::mem::take(&mut txn.dirty)
        };
        if !log.failed {
            if let Err(e) = self.checkpoint_locked(sb, &mut log, fmt::FsState::Clean, dirty) {
                pr_err!(
                    "checkpoint at unmount failed: {:?}; the log keeps what was committed\n",
                    e
                );
            }
        }
    }

    /// An inode was evicted: if it was deleted, its number goes.
    pub(crate) fn evicted(&self, ino: u64, deleted: bool) {
        if !deleted {
            return;
        }
        let rec = fmt::Record::Free { ino };
        let mut txn = self.txn.lock();
        if !txn.open {
            return;
        }
        let at = txn.records.len();
        if txn
            .records
            .resize(at + rec.encoded_len(), 0, GFP_KERNEL_ACCOUNT)
            .is_err()
        {
            txn.lost = true;
            return;
        }
        rec.encode(&mut txn.records[at..]);
    }

    fn commit_locked(&self, sb: &SuperBlock, log: &mut Log) -> Result {
        if log.failed {
            return Err(EIO);
        }
        let (records, dirty, lost) = {
            let mut txn = self.txn.lock();
            if txn.records.is_empty() && txn.dirty.is_empty() && !txn.lost {
                return Ok(());
            }
            let lost = core::mem::replace(&mut txn.lost, false);
            (
                core::mem::take(&mut txn.records),
                core::mem::take(&mut txn.dirty),
                lost,
            )
        };
        let timer = Timer::start(trace::vexfs_commit_done::enabled());
        let inodes = dirty.len() as u32;
        let mut diverted = false;
        let r = self.write_commit(sb, log, &records, dirty, lost, &mut diverted);
        // A checkpoint written instead reports itself.
        if let (Some(ns), false) = (timer.elapsed_ns(), diverted) {
            let bytes = records.len() as u64;
            trace::vexfs_commit_done::fire(sb.dev(), bytes, inodes, ret_of(&r), ns);
        }
        match r {
            Err(e) if e == EIO => {
                log.failed = true;
                pr_err!("write to the device failed: the filesystem stops writing (EIO)\n");
            }
            // What was taken out of the transaction is still in memory:
            // the next commit writes a checkpoint of it all.
            Err(_) => self.txn.lock().lost = true,
            Ok(()) => {}
        }
        r
    }

    /// Appends a commit frame of `records` and the `dirty` inodes to the
    /// log, or writes a checkpoint instead (and sets `diverted`) when they
    /// do not fit or `lost` says the transaction lost something.
    fn write_commit(
        &self,
        sb: &SuperBlock,
        log: &mut Log,
        records: &[u8],
        dirty: KVec<u64>,
        lost: bool,
        diverted: &mut bool,
    ) -> Result {
        // The dirty inodes still alive, with their data ranges.
        let mut inodes: KVVec<(InodeRef, Ranges, usize)> = KVVec::new();
        let mut bytes = records.len() as u64;
        for &ino in dirty.iter() {
            let Some(r) = InodeRef::lookup(sb, ino) else {
                continue;
            };
            let (mut ranges, n) = r.inode().data().dirty.lock().take();
            let size = r.inode().size().max(0) as u64;
            bytes = bytes.saturating_add((fmt::RECORD_HEADER_SIZE + 76) as u64);
            for rg in ranges[..n].iter_mut() {
                rg.1 = rg.1.min(size);
                if rg.0 < rg.1 {
                    let len = rg.1 - rg.0;
                    // A record per chunk of a data run; a run per page at
                    // most (holes are whole pages).
                    let records =
                        len / DATA_CHUNK as u64 + len / crate::vfs::mem::PAGE_SIZE as u64 + 2;
                    let headers = records * fmt::DATA_HEADER_SIZE as u64;
                    bytes = bytes.saturating_add(len).saturating_add(headers);
                }
            }
            inodes.push((r, ranges, n), GFP_KERNEL)?;
        }
        let layout = log.sb.layout;
        let log_end = layout.log_start + layout.log_blocks;
        let blocks = fmt::frame_blocks(bytes, layout.block_size);
        if lost || bytes > fmt::MAX_FRAME_PAYLOAD || log.next + blocks > log_end {
            drop(inodes);
            *diverted = true;
            return self.checkpoint_locked(sb, log, fmt::FsState::Mounted, dirty);
        }
        let dev = BlockDevice::from_super(sb).ok_or(EIO)?;
        let mut s = Stream::new(&dev, layout, log.next + 1, log_end)?;
        let mut scratch = KVVec::new();
        for (r, _, _) in inodes.iter() {
            s.record(&fmt::Record::Inode(inode_record(r.inode())), &mut scratch)?;
        }
        s.put(records)?;
        let mut chunk = KVVec::new();
        for (r, ranges, n) in inodes.iter() {
            let Some(data) = r.inode().data().data.as_ref() else {
                continue;
            };
            for &(start, end) in &ranges[..*n] {
                let mut pos = start;
                let mut run_end = start;
                while pos < end {
                    // Holes are not logged: a range of a sparse file is
                    // mostly one (and stays one after a replay).
                    if pos >= run_end {
                        match data.next_data(pos, end)? {
                            Some((p, e)) => (pos, run_end) = (p, e),
                            None => break,
                        }
                    }
                    let want = ((run_end - pos) as usize).min(DATA_CHUNK);
                    chunk.resize(want, 0, GFP_KERNEL)?;
                    let got = data.read_at(pos, &mut chunk)?;
                    // The data may have shrunk since the size was read: the
                    // inode record says the size, and a short read ends it.
                    if got == 0 {
                        break;
                    }
                    s.put(&fmt::data_record_header(r.inode().ino(), pos, got))?;
                    s.put(&chunk[..got])?;
                    pos += got as u64;
                }
                task::cond_resched();
            }
        }
        let (len, crc) = s.finish()?;
        let h = header(
            fmt::FrameKind::Commit,
            0,
            log.sb.log_nonce,
            log.seq,
            len,
            crc,
            layout.block_size,
        );
        // The payload is durable before the header that makes it count.
        dev.flush()?;
        write_header(&dev, &layout, log.next, &h, true)?;
        log.next += u64::from(h.blocks);
        log.seq += 1;
        Ok(())
    }

    /// Writes the whole filesystem as a new checkpoint in the other area,
    /// then the superblock that names it, with `state`. `dirty` are inodes
    /// taken from the transaction: the checkpoint covers them.
    fn checkpoint_locked(
        &self,
        sb: &SuperBlock,
        log: &mut Log,
        state: fmt::FsState,
        dirty: KVec<u64>,
    ) -> Result {
        let timer = Timer::start(trace::vexfs_checkpoint_done::enabled());
        let r = self.write_checkpoint(sb, log, state, dirty);
        if let Some(ns) = timer.elapsed_ns() {
            // The superblock names the checkpoint once it is written.
            let (seq, inodes) = match r {
                Ok(()) => (log.sb.ckpt_seq, log.sb.inodes),
                Err(_) => (0, 0),
            };
            trace::vexfs_checkpoint_done::fire(sb.dev(), seq, inodes, ret_of(&r), ns);
        }
        r
    }

    /// [`Self::checkpoint_locked`], untimed.
    fn write_checkpoint(
        &self,
        sb: &SuperBlock,
        log: &mut Log,
        state: fmt::FsState,
        dirty: KVec<u64>,
    ) -> Result {
        // Everything logged so far is in the tree the checkpoint walks.
        let more = {
            let mut txn = self.txn.lock();
            txn.records.clear();
            txn.lost = false;
            core::mem::take(&mut txn.dirty)
        };
        for list in [&more, &dirty] {
            for &ino in list.iter() {
                if let Some(r) = InodeRef::lookup(sb, ino) {
                    r.inode().data().dirty.lock().take();
                }
            }
        }
        let dev = BlockDevice::from_super(sb).ok_or(EIO)?;
        let old = &log.sb;
        let layout = old.layout;
        let area = 1 - old.ckpt_area;
        let start = layout.area_start[area as usize];
        let nonce = random_u64();
        let mut w = CkptWriter {
            dev: &dev,
            layout,
            nonce,
            start,
            end: start + layout.area_blocks,
            frame_start: start,
            seq: 0,
            stream: Some(Stream::new(
                &dev,
                layout,
                start + 1,
                start + layout.area_blocks,
            )?),
            scratch: KVVec::new(),
            chunk: KVVec::new(),
            inodes: 0,
            data_bytes: 0,
            vector_bytes: 0,
            closed_bytes: 0,
        };
        let r = w.tree(sb).and_then(|()| w.finish());
        let blocks = match r {
            Ok(b) => b,
            Err(e) => {
                log.failed = true;
                pr_err!(
                    "checkpoint failed ({:?}): the filesystem stops writing (EIO)\n",
                    e
                );
                return Err(EIO);
            }
        };
        let mut log_nonce = random_u64();
        while log_nonce == nonce {
            log_nonce = random_u64();
        }
        let next = fmt::SuperBlock {
            state,
            ckpt_area: area,
            ckpt_blocks: blocks,
            ckpt_nonce: nonce,
            ckpt_seq: old.ckpt_seq + 1,
            log_nonce,
            next_ino: sb.data().next_ino(),
            inodes: w.inodes,
            data_bytes: w.data_bytes,
            ..old.clone()
        };
        dev.flush()?;
        self.write_super(sb, log, next)?;
        log.next = layout.log_start;
        log.seq = 0;
        // Exact again (inserts since are charged on top).
        self.vector_used.store(w.vector_bytes, Relaxed);
        Ok(())
    }

    /// Writes `next` (with the next generation) to the slot after the
    /// current one, with FUA.
    fn write_super(&self, sb: &SuperBlock, log: &mut Log, mut next: fmt::SuperBlock) -> Result {
        let dev = BlockDevice::from_super(sb).ok_or(EIO)?;
        next.generation = log.sb.generation + 1;
        next.write_time = task::real_seconds();
        let mut buf = BlockBuf::new(fmt::SUPER_SLOT_BYTES)?;
        next.encode(&mut buf);
        let slot = log.sb.next_slot();
        let r = dev.write_at(fmt::SUPER_SLOT_OFFSETS[slot], &buf, true);
        if r.is_err() {
            log.failed = true;
        }
        r?;
        log.sb = next;
        Ok(())
    }
}

/// Writes a checkpoint: frames of records from the root down.
struct CkptWriter<'a, 'd> {
    dev: &'a BlockDevice<'d>,
    layout: fmt::Layout,
    nonce: u64,
    start: u64,
    end: u64,
    /// The header block of the frame being written.
    frame_start: u64,
    seq: u64,
    stream: Option<Stream<'a, 'd>>,
    scratch: KVVec<u8>,
    chunk: KVVec<u8>,
    inodes: u64,
    data_bytes: u64,
    /// Bytes of collection records written.
    vector_bytes: u64,
    /// Payload bytes of the frames closed so far.
    closed_bytes: u64,
}

impl<'a, 'd> CkptWriter<'a, 'd> {
    fn stream(&mut self) -> &mut Stream<'a, 'd> {
        self.stream.as_mut().expect("a frame is open")
    }

    /// Closes the frame if `len` more bytes would pass its target size.
    fn room(&mut self, len: usize) -> Result {
        let s = self.stream();
        if s.len == 0 || s.len + len as u64 <= CKPT_FRAME_TARGET {
            return Ok(());
        }
        self.close_frame(0)?;
        let next = self.frame_start;
        self.stream = Some(Stream::new(self.dev, self.layout, next + 1, self.end)?);
        Ok(())
    }

    fn close_frame(&mut self, flags: u16) -> Result {
        let s = self.stream.take().expect("a frame is open");
        let (len, crc) = s.finish()?;
        self.closed_bytes += len;
        let h = header(
            fmt::FrameKind::Checkpoint,
            flags,
            self.nonce,
            self.seq,
            len,
            crc,
            self.layout.block_size,
        );
        write_header(self.dev, &self.layout, self.frame_start, &h, false)?;
        self.frame_start += u64::from(h.blocks);
        self.seq += 1;
        Ok(())
    }

    fn record(&mut self, rec: &fmt::Record<'_>) -> Result {
        self.room(rec.encoded_len())?;
        let mut scratch = core::mem::take(&mut self.scratch);
        let r = self.stream().record(rec, &mut scratch);
        self.scratch = scratch;
        r
    }

    /// Everything of one inode but its names.
    fn inode(&mut self, inode: &Inode) -> Result {
        let a = inode_record(inode);
        self.record(&fmt::Record::Inode(a))?;
        self.inodes += 1;
        if let Some(target) = inode.symlink_target() {
            self.record(&fmt::Record::Symlink { ino: a.ino, target })?;
        }
        let mut xattrs = Ok(());
        inode.data().xattrs.for_each(|name, value| {
            if xattrs.is_ok() {
                xattrs = self.record(&fmt::Record::Xattr {
                    ino: a.ino,
                    name,
                    value,
                });
            }
        });
        xattrs?;
        let Some(data) = inode.data().data.as_ref() else {
            return Ok(());
        };
        // The space allocated (written or only reserved by `fallocate`,
        // in or past the size) first, then the data runs into it.
        let mut pos = 0u64;
        while let Some((start, end)) = data.next_allocated(pos) {
            self.record(&fmt::Record::Alloc {
                ino: a.ino,
                offset: start,
                len: end - start,
            })?;
            pos = end;
            task::cond_resched();
        }
        let mut pos = 0u64;
        let mut last_end = 0u64;
        let mut chunk = core::mem::take(&mut self.chunk);
        let r = (|| -> Result {
            let mut run_end = 0u64;
            while pos < a.size {
                // Holes are not stored: the size says how long the file is,
                // and a hole stays a hole after a mount (taking no space),
                // while the data runs, zeros written included, stay data.
                if pos >= run_end {
                    match data.next_data(pos, a.size)? {
                        Some((p, e)) => (pos, run_end) = (p, e),
                        None => break,
                    }
                }
                let want = ((run_end - pos) as usize).min(DATA_CHUNK);
                chunk.resize(want, 0, GFP_KERNEL)?;
                let got = data.read_at(pos, &mut chunk)?;
                if got == 0 {
                    break;
                }
                self.room(fmt::DATA_HEADER_SIZE + got)?;
                let s = self.stream();
                s.put(&fmt::data_record_header(a.ino, pos, got))?;
                s.put(&chunk[..got])?;
                last_end = pos + got as u64;
                pos += got as u64;
                task::cond_resched();
            }
            Ok(())
        })();
        self.chunk = chunk;
        self.data_bytes = self.data_bytes.saturating_add(last_end);
        r
    }

    /// The whole tree, from the root.
    fn tree(&mut self, sb: &SuperBlock) -> Result {
        self.record(&fmt::Record::NextIno(sb.data().next_ino()))?;
        let root = sb.root();
        let root_inode = root.inode().ok_or(EIO)?;
        self.inode(root_inode)?;
        let mut seen: RBTree<u64, ()> = RBTree::new();
        let mut queue: KVVec<crate::vfs::dentry::DentryRef> = KVVec::new();
        self.dir(root, &mut seen, &mut queue)?;
        while let Some(d) = queue.pop() {
            self.dir(d.dentry(), &mut seen, &mut queue)?;
        }
        Ok(())
    }

    fn dir(
        &mut self,
        dir: &Dentry,
        seen: &mut RBTree<u64, ()>,
        queue: &mut KVVec<crate::vfs::dentry::DentryRef>,
    ) -> Result {
        let dir_ino = dir.inode().ok_or(EIO)?.ino();
        let mut name = [0u8; NAME_MAX];
        for child in dir.children()? {
            let d = child.dentry();
            let Some(inode) = d.inode() else { continue };
            let ino = inode.ino();
            let write = if inode.is_dir() || inode.nlink() <= 1 {
                true
            } else {
                seen.try_create_and_insert(ino, (), GFP_KERNEL)?.is_none()
            };
            if write {
                self.inode(inode)?;
            }
            let n = d.name(&mut name);
            self.record(&fmt::Record::Link {
                dir: dir_ino,
                ino,
                name: n,
            })?;
            if inode.is_dir() {
                queue.push(child, GFP_KERNEL)?;
            }
        }
        if let Some(coll) = dir.inode().ok_or(EIO)?.data().collection() {
            self.collection(dir_ino, coll)?;
        }
        Ok(())
    }

    /// A collection, after its directory's names: its parameters, its rows
    /// in slot order, its graph.
    fn collection(&mut self, ino: u64, coll: &Collection) -> Result {
        let before = self.stream.as_ref().map_or(0, |s| s.len) + self.written_frames();
        let r = self.collection_records(ino, coll);
        let after = self.stream.as_ref().map_or(0, |s| s.len) + self.written_frames();
        self.vector_bytes = self
            .vector_bytes
            .saturating_add(after.saturating_sub(before));
        r
    }

    /// Payload bytes of the frames already closed.
    fn written_frames(&self) -> u64 {
        self.closed_bytes
    }

    fn collection_records(&mut self, ino: u64, coll: &Collection) -> Result {
        let params = coll.params()?;
        let dim = params.dim;
        self.record(&collection_record(ino, &params))?;
        let mut graph = KVVec::new();
        coll.write_back(|piece| match piece {
            Piece::Rows(kind, ids, rows) => self.record(&fmt::Record::Rows {
                coll: ino,
                kind,
                dim,
                ids: AsBytes::as_bytes(ids),
                vectors: f32_bytes(rows),
            }),
            Piece::Graph(bytes) => {
                graph.extend_from_slice(bytes, GFP_KERNEL)?;
                if graph.len() >= GRAPH_PIECE {
                    self.record(&fmt::Record::Graph {
                        coll: ino,
                        bytes: &graph,
                    })?;
                    graph.clear();
                }
                Ok(())
            }
        })?;
        if !graph.is_empty() {
            self.record(&fmt::Record::Graph {
                coll: ino,
                bytes: &graph,
            })?;
        }
        Ok(())
    }

    /// Closes the last frame; returns the blocks of the checkpoint.
    fn finish(&mut self) -> Result<u64> {
        self.close_frame(fmt::FRAME_LAST)?;
        Ok(self.frame_start - self.start)
    }
}

/// Counts one more for `key`.
fn count(map: &mut RBTree<u64, u32>, key: u64) -> Result {
    match map.get_mut(&key) {
        Some(n) => *n = n.saturating_add(1),
        None => {
            map.try_create_and_insert(key, 1, GFP_KERNEL)?;
        }
    }
    Ok(())
}

/// The inode a record changes (not its names), if it has one.
fn subject(rec: &fmt::Record<'_>) -> Option<u64> {
    match *rec {
        fmt::Record::Data { ino, .. }
        | fmt::Record::Zero { ino, .. }
        | fmt::Record::Alloc { ino, .. }
        | fmt::Record::Symlink { ino, .. }
        | fmt::Record::Xattr { ino, .. }
        | fmt::Record::XattrRemove { ino, .. }
        | fmt::Record::Collection { ino, .. } => Some(ino),
        fmt::Record::Rows { coll, .. } | fmt::Record::RowsDelete { coll, .. } => Some(coll),
        _ => None,
    }
}

/// Little-endian `u64`s of a record (which need not be aligned).
fn le_u64s(bytes: &[u8]) -> Result<KVVec<u64>> {
    let mut out = KVVec::with_capacity(bytes.len() / 8, GFP_KERNEL)?;
    for id in fmt::row_ids(bytes) {
        out.push(id, GFP_KERNEL)?;
    }
    Ok(out)
}

/// Little-endian `f32`s of a record; `EUCLEAN` for NaN or infinities,
/// which no collection stores.
fn le_f32s(bytes: &[u8]) -> Result<KVVec<f32>> {
    let mut out = KVVec::with_capacity(bytes.len() / 4, GFP_KERNEL)?;
    for v in fmt::row_values(bytes) {
        out.push(v, GFP_KERNEL)?;
    }
    if !crate::simd::all_finite(&out) {
        return Err(corrupt("a vector that is not finite"));
    }
    Ok(out)
}

fn apply_payload(loader: &mut Loader<'_>, payload: &[u8]) -> Result {
    for rec in fmt::Records::new(payload) {
        let rec = rec.map_err(|e| refuse("record", e))?;
        loader.apply(&rec)?;
    }
    task::cond_resched();
    Ok(())
}
