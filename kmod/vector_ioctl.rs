// SPDX-License-Identifier: GPL-2.0

//! The vector ioctls: argument checks, permission checks and user copies
//! around the collection store.
//!
//! Every count, dimension and `k` is checked before anything is allocated;
//! what a call stages (ids, vectors, search buffers) counts against the
//! in-flight budget and the caller's memory cgroup, and is copied from user
//! memory before any collection lock is taken, in pieces between which a
//! killed caller stops; NaN and infinities are refused with `EINVAL`.

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::transmute::{AsBytes, FromBytes};
use kernel::uaccess::{UserPtr, UserSlice, UserSliceReader};

use crate::abi;
use crate::abi::Op;
use crate::collection::{Change, Collection, Inflight, SearchMode, SearchScratch, SHARE_MACS};
use crate::disk::{self, OpExt, Reserve};
use crate::disk_format as fmt;
use crate::file_vector::{Caller, Owner};
use crate::pool::{PoolBox, PoolBuf};
use crate::search_filter::SearchFilter;
use crate::simd;
use crate::super_block::SbInfo;
use crate::vfs::cpu::Simd;
use crate::vfs::file_ops::IoctlReturn;
use crate::vfs::inode::Access;
use crate::vfs::mem::{f32_bytes, f32_bytes_mut};
use crate::vfs::share;
use crate::vfs::task;
use crate::vfs::trace::{self, ret_of, Timer};
use crate::vfs::{File, Inode, WriteAccess};

/// Bytes copied from user memory between two checks for a fatal signal.
const COPY_PIECE: usize = 64 << 10;

/// The collection a directory holds, if it is one.
pub(crate) fn collection_of(dir: &Inode) -> Option<&Arc<Collection>> {
    if !dir.is_dir() {
        return None;
    }
    dir.data().collection()
}

fn user(addr: u64, len: usize) -> UserSlice {
    UserSlice::new(UserPtr::from_addr(addr as usize), len)
}

/// Reads the fixed-size argument of an ioctl.
fn read_arg<T: FromBytes>(arg: usize) -> Result<T> {
    user(arg as u64, core::mem::size_of::<T>()).reader().read()
}

fn check_align(addr: u64, align: u64) -> Result {
    if addr % align == 0 {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Copies `dst.len()` bytes in pieces; a killed caller stops between them.
fn read_pieces(reader: &mut UserSliceReader, dst: &mut [u8]) -> Result {
    for piece in dst.chunks_mut(COPY_PIECE) {
        if task::fatal_signal_pending() {
            return Err(EINTR);
        }
        reader.read_slice(piece)?;
    }
    Ok(())
}

/// Reads `dst.len()` f32 values and refuses NaN and infinities.
fn read_finite(reader: &mut UserSliceReader, dst: &mut [f32]) -> Result {
    read_pieces(reader, f32_bytes_mut(dst))?;
    if simd::all_finite(dst) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Reads `ids.len()` ids from the 8-byte aligned user address `addr`.
fn read_ids(addr: u64, ids: &mut [u64]) -> Result {
    check_align(addr, 8)?;
    read_pieces(
        &mut user(addr, ids.len() * 8).reader(),
        AsBytes::as_bytes_mut(ids),
    )
}

/// The collection of the directory `file` is open on.
fn dir_collection(file: &File) -> Result<(&Inode, &Arc<Collection>)> {
    let inode = file.inode();
    if !inode.is_dir() {
        return Err(ENOTDIR);
    }
    Ok((inode, collection_of(inode).ok_or(ENODATA)?))
}

fn sb_info(file: &File) -> &SbInfo {
    file.inode().super_block().data()
}

/// Access check of `access` on `inode` as seen through the mount of `file`.
fn check_permission(file: &File, inode: &Inode, access: Access) -> Result {
    inode.permission(file.idmap(), access)
}

#[inline(never)]
fn create(file: &File, arg: usize) -> Result {
    let dir = file.inode();
    if !dir.is_dir() {
        return Err(ENOTDIR);
    }
    check_permission(file, dir, Access::WRITE)?;
    let _write = WriteAccess::new(file)?;
    let p: abi::CollectionParams = read_arg(arg)?;
    if !(1..=abi::MAX_DIM).contains(&p.dim)
        || p.metric as usize >= abi::metric::NAMES.len()
        || !index_params_valid(&p)
        || p.reserved != [0; 2]
    {
        return Err(EINVAL);
    }
    if collection_of(dir).is_some() {
        return Err(EEXIST);
    }
    let coll = Collection::new(&p)?;
    // Entries cannot appear while we hold the directory's lock.
    let _lock = dir.lock_killable()?;
    let mut op = disk::begin(dir.super_block(), Reserve::COLLECTION)?;
    if !file.dentry().is_empty_dir() {
        return Err(ENOTEMPTY);
    }
    let params = coll.params()?;
    dir.data().set_collection(coll)?;
    op.log(&disk::collection_record(dir.ino(), &params));
    Ok(())
}

/// On a disk mount, takes room in the next checkpoint for `n` rows of
/// `coll`: the ids, vectors and record headers, and a graph node's lists
/// (`1 + 2M` links on level 0, a little more above) in an HNSW collection.
fn charge_rows(dir: &Inode, coll: &Collection, n: usize) -> Result {
    let Some(disk) = dir.super_block().data().disk.as_deref() else {
        return Ok(());
    };
    let abi::CollectionParams { dim, m, .. } = coll.params()?;
    let per_row = u64::from(dim) * 4 + 8 + 16 + (2 * u64::from(m) + 4) * 4;
    disk.charge_vectors(per_row.saturating_mul(n as u64))
}

/// The record of a stored batch, for a disk mount's log.
fn rows_record<'b>(
    dir: &Inode,
    file: bool,
    dim: usize,
    ids: &'b [u64],
    rows: &'b [f32],
) -> fmt::Record<'b> {
    fmt::Record::Rows {
        coll: dir.ino(),
        kind: if file { fmt::ROWS_FILE } else { 0 },
        dim: dim as u32,
        ids: AsBytes::as_bytes(ids),
        vectors: f32_bytes(rows),
    }
}

/// Whether the index kind and its parameters are valid (0 means the
/// default; a flat collection takes none and is not quantized).
pub(crate) fn index_params_valid(p: &abi::CollectionParams) -> bool {
    let (m_min, m_max) = abi::HNSW_M_RANGE;
    match p.index {
        abi::index::FLAT => p.m == 0 && p.ef_construction == 0 && p.quantize == abi::quantize::NONE,
        abi::index::HNSW => {
            (p.m == 0 || (m_min..=m_max).contains(&p.m))
                && p.ef_construction <= abi::HNSW_MAX_EF
                && (p.quantize as usize) < abi::quantize::NAMES.len()
        }
        _ => false,
    }
}

#[inline(never)]
fn info(file: &File, arg: usize) -> Result {
    let (_, coll) = dir_collection(file)?;
    let reply = PoolBox::new(coll.info()?)?;
    user(arg as u64, core::mem::size_of::<abi::CollectionInfo>())
        .writer()
        .write(&*reply)
}

/// `VEXFS_IOC_INSERT`: batch insert, behind the probe point
/// `vexfs_ioctl_insert` (`vfs/entry.rs`).
pub(crate) fn insert_ioctl(file: &File, arg: usize) -> IoctlReturn {
    sb_info(file).count(Op::VecInsert);
    let event = trace::vexfs_insert_done::enabled();
    batch_ioctl(file, arg, insert, event, trace::vexfs_insert_done::fire)
}

/// Runs the batch handler `run` and, if `event` (its event is enabled),
/// fires the event with `fire`, the batch's size and the time it took.
#[inline(always)]
fn batch_ioctl(
    file: &File,
    arg: usize,
    run: fn(&File, usize, &mut u32) -> Result,
    event: bool,
    fire: fn(u32, u64, u32, i64, u64),
) -> IoctlReturn {
    let timer = Timer::start(event);
    let mut count = 0;
    let r = run(file, arg, &mut count);
    if let Some(ns) = timer.elapsed_ns() {
        let (dev, ino) = trace::inode_id(file.inode());
        fire(dev, ino, count, ret_of(&r), ns);
    }
    r.map(|()| 0).into()
}

/// Inserts the batch the request at `arg` describes; `count` is set to its
/// size once the request is read (for the event).
fn insert(file: &File, arg: usize, count: &mut u32) -> Result {
    let (coll, change) = store_batch(file, arg, count)?;
    coll.follow_up(change);
    Ok(())
}

/// Stores the batch of [`insert`] (linking it into the graph is left to
/// the caller). Out of line: linking then runs below the caller's small
/// frame, not below this one, which holds the request and the staging.
#[inline(never)]
fn store_batch<'a>(
    file: &'a File,
    arg: usize,
    count: &mut u32,
) -> Result<(&'a Arc<Collection>, Change)> {
    let (dir, coll) = dir_collection(file)?;
    check_permission(file, dir, Access::WRITE)?;
    let write = WriteAccess::new(file)?;
    let req: abi::InsertRequest = read_arg(arg)?;
    *count = req.count;
    if !(1..=abi::MAX_BATCH).contains(&req.count) || req.dim as usize != coll.dim() {
        return Err(EINVAL);
    }
    check_align(req.vectors, 4)?;
    check_align(req.ids, 8)?;
    let (count, dim) = (req.count as usize, coll.dim());
    let mut batch = coll.stage(count, false)?;
    read_ids(req.ids, &mut batch.ids)?;
    read_finite(
        &mut user(req.vectors, count * dim * 4).reader(),
        &mut batch.rows,
    )?;
    charge_rows(dir, coll, count)?;
    let mut op = disk::begin(dir.super_block(), Reserve::rows(count, dim))?;
    let change = coll.commit(batch, |ids, rows| {
        op.log(&rows_record(dir, false, dim, ids, rows));
    })?;
    // Linking needs no write access to the mount (what is stored is), nor
    // the commit lock (the graph is rebuilt from the rows).
    drop(op);
    drop(write);
    Ok((coll, change))
}

/// `VEXFS_IOC_DELETE`: batch delete, behind the probe point
/// `vexfs_ioctl_delete` (`vfs/entry.rs`).
pub(crate) fn delete_ioctl(file: &File, arg: usize) -> IoctlReturn {
    sb_info(file).count(Op::VecDelete);
    let event = trace::vexfs_delete_done::enabled();
    batch_ioctl(file, arg, delete, event, trace::vexfs_delete_done::fire)
}

/// Deletes the ids the request at `arg` lists; `count` is set to their
/// number once the request is read (for the event).
fn delete(file: &File, arg: usize, count: &mut u32) -> Result {
    let (dir, coll) = dir_collection(file)?;
    check_permission(file, dir, Access::WRITE)?;
    let write = WriteAccess::new(file)?;
    let req: abi::DeleteRequest = read_arg(arg)?;
    *count = req.count;
    if !(1..=abi::MAX_BATCH).contains(&req.count) || req.reserved != 0 {
        return Err(EINVAL);
    }
    let count = req.count as usize;
    let _inflight = Inflight::take(count as u64 * 8)?;
    let mut ids = PoolBuf::<u64>::new_zeroed(count)?;
    read_ids(req.ids, &mut ids)?;
    let caller = Caller::of_collection(file);
    let mut op = disk::begin(dir.super_block(), Reserve::rows(count, 0))?;
    let change = coll.delete(
        &ids,
        |ino| caller.check_change_ino(dir, ino),
        || {
            op.log(&fmt::Record::RowsDelete {
                coll: dir.ino(),
                ids: AsBytes::as_bytes(&ids[..]),
            })
        },
    )?;
    drop(op);
    drop(write);
    coll.follow_up(change);
    Ok(())
}

#[inline(never)]
fn get(file: &File, arg: usize) -> Result {
    let (dir, coll) = dir_collection(file)?;
    check_permission(file, dir, Access::READ)?;
    let mut req: abi::GetRequest = read_arg(arg)?;
    if req.dim as usize != coll.dim() {
        return Err(EINVAL);
    }
    check_align(req.vector, 4)?;
    let _inflight = Inflight::take(coll.dim() as u64 * 4)?;
    let mut out = PoolBuf::<f32>::new_zeroed(coll.dim())?;
    let caller = Caller::of_collection(file);
    let is_file = coll.get(req.id, &mut out, |ino| caller.check_read(ino))?;
    let bytes = f32_bytes(&out);
    user(req.vector, bytes.len()).writer().write_slice(bytes)?;
    req.flags = if is_file { abi::HIT_FILE } else { 0 };
    user(arg as u64, core::mem::size_of::<abi::GetRequest>())
        .writer()
        .write(&req)
}

/// `VEXFS_IOC_SEARCH`: k-NN search (all queries of one ioctl), behind the
/// probe point `vexfs_ioctl_search` (`vfs/entry.rs`).
pub(crate) fn search_ioctl(file: &File, arg: usize) -> IoctlReturn {
    sb_info(file).count(Op::VecSearch);
    let timer = Timer::start(trace::vexfs_search_done::enabled());
    let mut shape = SearchShape::default();
    let r = search(file, arg, &mut shape);
    if let Some(ns) = timer.elapsed_ns() {
        let (dev, ino) = trace::inode_id(file.inode());
        let SearchShape { nq, k, ef, flags } = shape;
        trace::vexfs_search_done::fire(dev, ino, nq, k, ef, flags, ret_of(&r), ns);
    }
    r.map(|()| 0).into()
}

/// A search request's shape, for its event.
#[derive(Default)]
struct SearchShape {
    nq: u32,
    k: u32,
    ef: u32,
    flags: u32,
}

/// Runs the search the request at `arg` describes; `shape` is set once the
/// request is read (for the event).
fn search(file: &File, arg: usize, shape: &mut SearchShape) -> Result {
    let (dir, coll) = dir_collection(file)?;
    check_permission(file, dir, Access::READ)?;
    let req: abi::SearchRequest = read_arg(arg)?;
    *shape = SearchShape {
        nq: req.nq,
        k: req.k,
        ef: req.ef,
        flags: req.flags,
    };
    if !(1..=abi::MAX_QUERIES).contains(&req.nq)
        || !(1..=abi::MAX_K).contains(&req.k)
        || req.dim as usize != coll.dim()
        || req.flags & !abi::SEARCH_FLAGS != 0
        || req.ef > abi::HNSW_MAX_EF
    {
        return Err(EINVAL);
    }
    check_align(req.queries, 4)?;
    check_align(req.hits, 8)?;
    check_align(req.counts, 4)?;
    let (nq, k, dim) = (req.nq as usize, req.k as usize, coll.dim());
    let mut mode = SearchMode {
        exact: req.flags & abi::SEARCH_EXACT != 0,
        // The graph raises a beam narrower than `k` to `k`.
        ef: if req.ef == 0 {
            abi::HNSW_DEFAULT_EF
        } else {
            req.ef
        } as usize,
        plain_rows_admitted: false,
    };
    let beam = mode.ef.max(k);
    let rows = coll.rows_hint()?;
    let group = SearchScratch::group(k, dim, rows);
    // Helper CPUs for exact scans of a group (see `Collection::search`).
    let helpers = share::helpers_for(
        rows * dim * group.min(nq),
        SHARE_MACS,
        crate::max_search_cpus(),
    );
    let hit_bytes = core::mem::size_of::<abi::SearchHit>();
    let _inflight = Inflight::take(
        (k * hit_bytes) as u64
            + SearchScratch::bytes(k, beam, group, dim, helpers, coll.quantized())
            + SearchFilter::bytes(&req),
    )?;
    let filter = SearchFilter::new(file, &req)?;
    mode.plain_rows_admitted = filter.admits_plain_rows();
    let mut hits = PoolBuf::<abi::SearchHit>::new_zeroed(k)?;
    let mut scratch = SearchScratch::new(k, beam, group, dim, helpers, coll.quantized())?;
    let mut queries = user(req.queries, nq * dim * 4).reader();
    let mut admit = |id: u64, is_file: bool| filter.admits(id, is_file);
    let mut first = 0;
    while first < nq {
        // A large search can take long: let a signal end it, and others
        // run between groups (the scan also checks between sections).
        if task::signal_pending() {
            return Err(EINTR);
        }
        task::cond_resched();
        let n = group.min(nq - first);
        read_finite(&mut queries, &mut scratch.queries[..n * dim])?;
        coll.search(Simd::detect(), n, mode, &mut *scratch, &mut admit)?;
        for (i, top) in scratch.tops()[..n].iter_mut().enumerate() {
            let q = first + i;
            let found = top.sorted();
            for (h, c) in hits.iter_mut().zip(found) {
                *h = c.hit();
            }
            let n = found.len();
            // User addresses may be anything: an address past the end of
            // the address space is a bad pointer, not an arithmetic
            // overflow.
            let hits_at = req
                .hits
                .checked_add((q * k * hit_bytes) as u64)
                .ok_or(EFAULT)?;
            let count_at = req.counts.checked_add((q * 4) as u64).ok_or(EFAULT)?;
            user(hits_at, n * hit_bytes)
                .writer()
                .write_slice(AsBytes::as_bytes(&hits[..n]))?;
            user(count_at, 4).writer().write(&(n as u32))?;
        }
        first += n;
    }
    Ok(())
}

#[inline(never)]
fn attach(file: &File, arg: usize) -> Result {
    let inode = file.inode();
    if !inode.is_reg() {
        return Err(EINVAL);
    }
    let parent = file.dentry().parent();
    let dir = parent.dentry().inode().ok_or(ENOENT)?;
    // The collection whose tree the name is in.
    let owner = Owner::of(parent.dentry()).ok_or(ENODATA)?;
    let (coll_dir, coll) = (owner.dir(), owner.collection());
    // Changing a file's vectors needs what writing the file needs (and,
    // in a sticky directory, what removing its name there needs).
    Caller::of_file(file).check_change(dir, inode)?;
    let write = WriteAccess::new(file)?;
    let req: abi::AttachRequest = read_arg(arg)?;
    let count = req.count.max(1);
    if req.dim as usize != coll.dim() || count > abi::MAX_FILE_PARTS {
        return Err(EINVAL);
    }
    // Part ids keep the inode number in their low bits.
    if inode.ino() > abi::FILE_INO_MASK {
        return Err(EOVERFLOW);
    }
    check_align(req.vector, 4)?;
    let (count, dim) = (count as usize, coll.dim());
    // Copy before taking locks: a user fault must not stall the directory.
    let mut batch = coll.stage(count, true)?;
    for (part, id) in batch.ids.iter_mut().enumerate() {
        *id = abi::file_vector_id(inode.ino(), part as u32);
    }
    read_finite(
        &mut user(req.vector, count * dim * 4).reader(),
        &mut batch.rows,
    )?;
    let change = {
        // The directory's lock keeps the name where it is: unlinking or
        // moving the file's last name in the collection is what deletes
        // the vectors, so it must not happen in between.
        let _dir_lock = dir.lock_killable()?;
        charge_rows(coll_dir, coll, count)?;
        let mut op = disk::begin(dir.super_block(), Reserve::rows(count, dim))?;
        if !file.dentry().is_child_of(parent.dentry()) {
            return Err(ENOENT);
        }
        coll.commit(batch, |ids, rows| {
            op.log(&rows_record(coll_dir, true, coll.dim(), ids, rows));
        })?
    };
    // Linking, after the directory's lock and write access are released.
    drop(write);
    coll.follow_up(change);
    Ok(())
}

/// Handles the vector ioctl `cmd` other than the three probe points (which
/// `ioctl.rs` tail-calls), or returns `None` if it is not one. Each call is
/// out of line, so that the dispatcher's frame stays small.
pub(crate) fn dispatch(file: &File, cmd: u32, arg: usize) -> Option<Result<isize>> {
    Some(match cmd {
        abi::VEXFS_IOC_CREATE => create(file, arg).map(|()| 0),
        abi::VEXFS_IOC_INFO => info(file, arg).map(|()| 0),
        abi::VEXFS_IOC_GET => {
            sb_info(file).count(Op::VecGet);
            get(file, arg).map(|()| 0)
        }
        abi::VEXFS_IOC_ATTACH => {
            sb_info(file).count(Op::VecInsert);
            attach(file, arg).map(|()| 0)
        }
        _ => return None,
    })
}
