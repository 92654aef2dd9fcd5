// SPDX-License-Identifier: GPL-2.0

//! VexFS ioctl numbers and `#[repr(C)]` structures.
//!
//! This file is compiled twice: by the kernel module (`kmod/vexfs_main.rs` includes
//! it with `#[path]`) and by the userland `vexfs-abi` crate. It must therefore
//! use `core` only. Every structure has explicit padding fields and a
//! compile-time size and offset check, so there is no implicit padding that
//! could carry kernel bytes to user space.

use core::mem::{offset_of, size_of};

/// `statfs(2)` `f_type` of a VexFS mount ("VEXF").
pub const VEXFS_MAGIC: u32 = 0x5645_5846;

/// Release of VexFS this file belongs to, reported by the module in
/// [`VersionInfo::module_version`] (a test keeps it equal to the crate's).
pub const VEXFS_RELEASE: &str = "0.1.0";

/// Version of this ABI. Bumped on any incompatible change.
pub const VEXFS_ABI_VERSION: u32 = 4;

/// ioctl "type" byte of every VexFS ioctl.
pub const VEXFS_IOC_MAGIC: u8 = b'V';

// Linux ioctl number encoding (include/uapi/asm-generic/ioctl.h, used by x86).
const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS));
    (dir << IOC_DIRSHIFT)
        | ((VEXFS_IOC_MAGIC as u32) << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IOR('V', nr, T)`: the kernel writes a `T` to user space.
const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, nr, size_of::<T>())
}

/// `_IOW('V', nr, T)`: the kernel reads a `T` from user space.
const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, nr, size_of::<T>())
}

/// `_IOWR('V', nr, T)`: the kernel reads and writes a `T`.
const fn iowr<T>(nr: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, nr, size_of::<T>())
}

/// ioctl sequence number of [`VEXFS_IOC_VERSION`].
pub const VEXFS_IOC_NR_VERSION: u32 = 0x01;
/// ioctl sequence number of [`VEXFS_IOC_STATS`].
pub const VEXFS_IOC_NR_STATS: u32 = 0x02;

/// Reads a [`VersionInfo`]. Valid on any file or directory of a VexFS mount.
pub const VEXFS_IOC_VERSION: u32 = ior::<VersionInfo>(VEXFS_IOC_NR_VERSION);
/// Reads a [`Stats`] for the mount the file descriptor belongs to.
pub const VEXFS_IOC_STATS: u32 = ior::<Stats>(VEXFS_IOC_NR_STATS);

/// CPU SIMD feature bits reported in [`VersionInfo::cpu_features`].
pub mod cpu {
    /// SSE2 (always present on x86-64).
    pub const SSE2: u32 = 1 << 0;
    /// AVX.
    pub const AVX: u32 = 1 << 1;
    /// AVX2.
    pub const AVX2: u32 = 1 << 2;
    /// Fused multiply-add (FMA3).
    pub const FMA: u32 = 1 << 3;
    /// AVX-512 Foundation.
    pub const AVX512F: u32 = 1 << 4;
    /// OS saves the extended (YMM/ZMM) register state (XSAVE enabled).
    pub const OSXSAVE: u32 = 1 << 5;

    /// Names of the bits above, in bit order, for display.
    pub const NAMES: [(u32, &str); 6] = [
        (SSE2, "sse2"),
        (AVX, "avx"),
        (AVX2, "avx2"),
        (FMA, "fma"),
        (AVX512F, "avx512f"),
        (OSXSAVE, "osxsave"),
    ];
}

/// Length of [`VersionInfo::module_version`].
pub const MODULE_VERSION_LEN: usize = 32;

/// Answer of [`VEXFS_IOC_VERSION`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// [`VEXFS_ABI_VERSION`] of the running module.
    pub abi_version: u32,
    /// [`cpu`] feature bits detected by the kernel at module load.
    pub cpu_features: u32,
    /// The distance kernel path the module uses, one of [`simd_path`].
    pub simd_path: u32,
    /// Always zero.
    pub reserved: u32,
    /// Module version, NUL-padded ASCII.
    pub module_version: [u8; MODULE_VERSION_LEN],
}

const _: () = assert!(size_of::<VersionInfo>() == 48);
const _: () = assert!(VEXFS_RELEASE.len() < MODULE_VERSION_LEN);
const _: () = assert!(offset_of!(VersionInfo, cpu_features) == 4);
const _: () = assert!(offset_of!(VersionInfo, simd_path) == 8);
const _: () = assert!(offset_of!(VersionInfo, module_version) == 16);

/// Distance kernel paths reported in [`VersionInfo::simd_path`].
pub mod simd_path {
    /// One lane at a time (SSE scalar instructions).
    pub const SCALAR: u32 = 0;
    /// AVX2 with FMA, 8 lanes.
    pub const AVX2: u32 = 1;
    /// AVX-512F, 16 lanes.
    pub const AVX512: u32 = 2;

    /// Names of the paths, by value.
    pub const NAMES: [&str; 3] = ["scalar", "avx2", "avx512"];
}

/// Counters of one memory pool tier.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolTierStats {
    /// Object size of the tier in bytes; 0 for the large fall-through tier.
    pub object_size: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Frees.
    pub frees: u64,
    /// Objects currently allocated (`allocs - frees`).
    pub in_use: u64,
    /// Highest `in_use` seen since the module was loaded.
    pub high_water: u64,
    /// Bytes currently allocated from this tier (requested sizes for the
    /// large tier, object sizes for slab tiers).
    pub bytes_in_use: u64,
    /// Allocation requests that failed (out of memory).
    pub failures: u64,
}

const _: () = assert!(size_of::<PoolTierStats>() == 56);

/// Number of pool tiers: 1 KiB, 4 KiB, 16 KiB slab caches, then the large
/// tier for requests over 16 KiB, which fall through to `kvmalloc`.
pub const POOL_TIERS: usize = 4;
/// Object sizes of the slab tiers, smallest first.
pub const POOL_TIER_SIZES: [usize; POOL_TIERS - 1] = [1024, 4096, 16384];
/// Alignment of every slab tier object.
pub const POOL_ALIGN: usize = 64;
/// Index of the fall-through tier in [`Stats::pools`].
pub const POOL_TIER_LARGE: usize = POOL_TIERS - 1;

/// Per-mount operation classes counted in [`Stats::ops`].
///
/// New classes are appended; [`Stats::op_count`] says how many the running
/// module fills in, so an older `vexctl` keeps working with a newer module.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Directory lookup.
    Lookup = 0,
    /// Regular file creation (`creat`, `open(O_CREAT)`, `mknod`).
    Create,
    /// Directory creation.
    Mkdir,
    /// Unlink of a name.
    Unlink,
    /// Directory removal.
    Rmdir,
    /// Rename.
    Rename,
    /// Hard link.
    Link,
    /// Symbolic link creation.
    Symlink,
    /// Attribute change (chmod, chown, truncate, utimes).
    Setattr,
    /// File open.
    Open,
    /// `read(2)` family on a regular file.
    Read,
    /// `write(2)` family on a regular file.
    Write,
    /// `mmap(2)` setup of a regular file.
    Mmap,
    /// `fsync(2)` / `fdatasync(2)`.
    Fsync,
    /// ioctl on any VexFS file or directory.
    Ioctl,
    /// Vector batch insert or upsert ([`VEXFS_IOC_INSERT`], [`VEXFS_IOC_ATTACH`]).
    VecInsert,
    /// Vector batch delete, including a file's vector on its last unlink.
    VecDelete,
    /// k-NN search ([`VEXFS_IOC_SEARCH`]), one per ioctl.
    VecSearch,
    /// Vector read by id ([`VEXFS_IOC_GET`]).
    VecGet,
}

/// Number of [`Op`] classes this ABI version defines.
pub const OP_COUNT: usize = 19;
/// Capacity of [`Stats::ops`]; room to add classes without an ABI change.
pub const OP_SLOTS: usize = 32;

/// Display names of the [`Op`] classes, by index.
pub const OP_NAMES: [&str; OP_COUNT] = [
    "lookup",
    "create",
    "mkdir",
    "unlink",
    "rmdir",
    "rename",
    "link",
    "symlink",
    "setattr",
    "open",
    "read",
    "write",
    "mmap",
    "fsync",
    "ioctl",
    "vec_insert",
    "vec_delete",
    "vec_search",
    "vec_get",
];

/// Answer of [`VEXFS_IOC_STATS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Module-wide memory pool counters, indexed by tier.
    pub pools: [PoolTierStats; POOL_TIERS],
    /// Number of valid entries in `ops`.
    pub op_count: u32,
    /// Always zero.
    pub reserved: u32,
    /// Inodes currently alive on this mount (including the root).
    pub inodes: u64,
    /// Per-mount operation counts, indexed by [`Op`].
    pub ops: [u64; OP_SLOTS],
    /// Bytes of vector storage in use, module-wide (vectors, id maps,
    /// graphs, and the capacity of per-row arrays).
    pub vector_bytes: u64,
    /// Limit on `vector_bytes` (module parameter `max_vector_mib`).
    pub vector_bytes_limit: u64,
    /// Bytes held by vector calls in progress, module-wide (staged
    /// batches, id arrays, search buffers); at most `vector_bytes_limit`.
    pub inflight_bytes: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            pools: [PoolTierStats::default(); POOL_TIERS],
            op_count: 0,
            reserved: 0,
            inodes: 0,
            ops: [0; OP_SLOTS],
            vector_bytes: 0,
            vector_bytes_limit: 0,
            inflight_bytes: 0,
        }
    }
}

const _: () = assert!(OP_COUNT <= OP_SLOTS);
const _: () = assert!(Op::VecGet as usize == OP_COUNT - 1);
const _: () = assert!(size_of::<Stats>() == 56 * POOL_TIERS + 8 + 8 + 8 * OP_SLOTS + 24);
const _: () = assert!(offset_of!(Stats, op_count) == 56 * POOL_TIERS);
const _: () = assert!(offset_of!(Stats, inodes) == 56 * POOL_TIERS + 8);
const _: () = assert!(offset_of!(Stats, ops) == 56 * POOL_TIERS + 16);

// ---------------------------------------------------------------------------
// Vector collections.
//
// A collection is a directory with a fixed dimension and metric. Vectors are
// `dim` little-endian f32 values with a u64 id. Ids are one namespace per
// collection; a regular file inside a collection can carry one vector, whose
// id is the file's inode number (see [`VEXFS_IOC_ATTACH`]).
// ---------------------------------------------------------------------------

/// Largest vector dimension.
pub const MAX_DIM: u32 = 4096;
/// Largest `k` of a search.
pub const MAX_K: u32 = 1024;
/// Largest number of vectors in one insert, delete or attach batch.
pub const MAX_BATCH: u32 = 1 << 20;
/// Largest number of queries in one search.
pub const MAX_QUERIES: u32 = 65536;

/// Distance metrics. Smaller is nearer for all three.
pub mod metric {
    /// Squared Euclidean distance.
    pub const L2: u32 = 0;
    /// `1 - cos(a, b)`; 1 when either vector is zero.
    pub const COSINE: u32 = 1;
    /// `-(a . b)`, the negated inner product.
    pub const DOT: u32 = 2;

    /// Names of the metrics, by value.
    pub const NAMES: [&str; 3] = ["l2", "cosine", "dot"];
}

/// Index kinds of a collection.
pub mod index {
    /// No index: exact (brute-force) search.
    pub const FLAT: u32 = 0;
    /// HNSW graph: approximate search; exact search stays available with
    /// [`SEARCH_EXACT`](super::SEARCH_EXACT).
    pub const HNSW: u32 = 1;

    /// Names of the index kinds, by value.
    pub const NAMES: [&str; 2] = ["flat", "hnsw"];
}

/// How an HNSW collection's graph walk reads the vectors.
pub mod quantize {
    /// The walk computes float32 distances.
    pub const NONE: u32 = 0;
    /// The walk orders nodes by 8-bit scalar-quantized codes (one byte per
    /// dimension, per-dimension offset and step learned from the vectors
    /// and widened as vectors arrive outside them), then the candidates the
    /// beam kept are re-ranked in float32: results carry exact distances.
    pub const SQ8: u32 = 1;

    /// Names of the options, by value.
    pub const NAMES: [&str; 2] = ["none", "sq8"];
}

/// HNSW `M` when [`CollectionParams::m`] is 0: neighbours per node on the
/// upper levels (twice as many on level 0).
pub const HNSW_DEFAULT_M: u32 = 16;
/// Smallest and largest HNSW `M`.
pub const HNSW_M_RANGE: (u32, u32) = (2, 127);
/// HNSW beam width while inserting when
/// [`CollectionParams::ef_construction`] is 0.
pub const HNSW_DEFAULT_EF_CONSTRUCTION: u32 = 200;
/// HNSW beam width of a search when [`SearchRequest::ef`] is 0.
pub const HNSW_DEFAULT_EF: u32 = 64;
/// Largest `ef_construction` and `ef`.
pub const HNSW_MAX_EF: u32 = 4096;

/// ioctl sequence numbers of the vector ioctls.
pub const VEXFS_IOC_NR_CREATE: u32 = 0x10;
/// See [`VEXFS_IOC_INFO`].
pub const VEXFS_IOC_NR_INFO: u32 = 0x11;
/// See [`VEXFS_IOC_INSERT`].
pub const VEXFS_IOC_NR_INSERT: u32 = 0x12;
/// See [`VEXFS_IOC_DELETE`].
pub const VEXFS_IOC_NR_DELETE: u32 = 0x13;
/// See [`VEXFS_IOC_GET`].
pub const VEXFS_IOC_NR_GET: u32 = 0x14;
/// See [`VEXFS_IOC_SEARCH`].
pub const VEXFS_IOC_NR_SEARCH: u32 = 0x15;
/// See [`VEXFS_IOC_ATTACH`].
pub const VEXFS_IOC_NR_ATTACH: u32 = 0x16;

/// Makes an empty directory a collection. On a directory fd; needs write
/// permission. `EEXIST` if it already is one, `ENOTEMPTY` if it has entries,
/// `EINVAL` for a bad dimension, metric or index.
pub const VEXFS_IOC_CREATE: u32 = iow::<CollectionParams>(VEXFS_IOC_NR_CREATE);
/// Reads a collection's [`CollectionInfo`]. On a collection directory fd.
pub const VEXFS_IOC_INFO: u32 = ior::<CollectionInfo>(VEXFS_IOC_NR_INFO);
/// Inserts or replaces a batch of vectors ([`InsertRequest`]). All or
/// nothing. Needs write permission on the collection.
pub const VEXFS_IOC_INSERT: u32 = iow::<InsertRequest>(VEXFS_IOC_NR_INSERT);
/// Deletes a batch of ids ([`DeleteRequest`]). All or nothing: `ENOENT` if any
/// id is absent. Needs write permission.
pub const VEXFS_IOC_DELETE: u32 = iow::<DeleteRequest>(VEXFS_IOC_NR_DELETE);
/// Copies one vector out ([`GetRequest`]); `ENOENT` if absent. Needs read
/// permission.
pub const VEXFS_IOC_GET: u32 = iowr::<GetRequest>(VEXFS_IOC_NR_GET);
/// k-nearest-neighbour search ([`SearchRequest`]). Needs read permission.
pub const VEXFS_IOC_SEARCH: u32 = iow::<SearchRequest>(VEXFS_IOC_NR_SEARCH);
/// Sets the vector of a regular file in a collection ([`AttachRequest`]); its
/// id is the file's inode number. On the file's fd; needs write permission
/// on the collection directory.
pub const VEXFS_IOC_ATTACH: u32 = iow::<AttachRequest>(VEXFS_IOC_NR_ATTACH);

/// Argument of [`VEXFS_IOC_CREATE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectionParams {
    /// Dimension, 1 to [`MAX_DIM`].
    pub dim: u32,
    /// One of [`metric`].
    pub metric: u32,
    /// One of [`index`].
    pub index: u32,
    /// HNSW: `M`, in [`HNSW_M_RANGE`]; 0 for [`HNSW_DEFAULT_M`]. Must be 0
    /// for a flat collection.
    pub m: u32,
    /// HNSW: beam width while inserting, 1 to [`HNSW_MAX_EF`]; 0 for
    /// [`HNSW_DEFAULT_EF_CONSTRUCTION`]. Must be 0 for a flat collection.
    pub ef_construction: u32,
    /// One of [`quantize`]; must be [`quantize::NONE`] for a flat
    /// collection (its search is exact).
    pub quantize: u32,
    /// Must be zero.
    pub reserved: [u32; 2],
}

const _: () = assert!(size_of::<CollectionParams>() == 32);
const _: () = assert!(offset_of!(CollectionParams, m) == 12);
const _: () = assert!(offset_of!(CollectionParams, quantize) == 20);

/// Answer of [`VEXFS_IOC_INFO`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectionInfo {
    /// Dimension.
    pub dim: u32,
    /// One of [`metric`].
    pub metric: u32,
    /// One of [`index`].
    pub index: u32,
    /// HNSW `M` (0 for a flat collection).
    pub m: u32,
    /// HNSW `ef_construction` (0 for a flat collection).
    pub ef_construction: u32,
    /// One of [`quantize`].
    pub quantize: u32,
    /// Number of vectors.
    pub count: u64,
    /// How many of them belong to files.
    pub file_vectors: u64,
    /// Bytes of memory the collection holds: vector arena, id map and, for
    /// HNSW, the graph (and the SQ8 codes).
    pub memory_bytes: u64,
    /// HNSW: bytes of `memory_bytes` that are the graph and, with
    /// [`quantize::SQ8`], its codes and quantizer.
    pub index_bytes: u64,
    /// HNSW: deleted or replaced vectors whose graph nodes await repair
    /// (their memory is still held).
    pub deleted_pending: u64,
    /// HNSW: vectors stored but not yet linked into the graph (an insert in
    /// progress, or one that ran out of memory while linking). Searches find
    /// them by an exact scan.
    pub unindexed: u64,
}

const _: () = assert!(size_of::<CollectionInfo>() == 72);
const _: () = assert!(offset_of!(CollectionInfo, count) == 24);

/// Argument of [`VEXFS_IOC_INSERT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertRequest {
    /// Number of vectors, 1 to [`MAX_BATCH`].
    pub count: u32,
    /// Dimension of each vector; must equal the collection's.
    pub dim: u32,
    /// User address of `count` u64 ids (8-byte aligned).
    pub ids: u64,
    /// User address of `count * dim` f32 values, row-major (4-byte aligned).
    pub vectors: u64,
}

const _: () = assert!(size_of::<InsertRequest>() == 24);

/// Argument of [`VEXFS_IOC_DELETE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    /// Number of ids, 1 to [`MAX_BATCH`].
    pub count: u32,
    /// Always zero.
    pub reserved: u32,
    /// User address of `count` u64 ids (8-byte aligned).
    pub ids: u64,
}

const _: () = assert!(size_of::<DeleteRequest>() == 16);

/// Argument of [`VEXFS_IOC_GET`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetRequest {
    /// Id to read.
    pub id: u64,
    /// Capacity of `vector` in f32 values; must equal the dimension.
    pub dim: u32,
    /// Set by the kernel: [`HIT_FILE`] if the vector belongs to a file.
    pub flags: u32,
    /// User address receiving `dim` f32 values (4-byte aligned).
    pub vector: u64,
}

const _: () = assert!(size_of::<GetRequest>() == 24);

/// Argument of [`VEXFS_IOC_SEARCH`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchRequest {
    /// Number of queries, 1 to [`MAX_QUERIES`].
    pub nq: u32,
    /// Results per query, 1 to [`MAX_K`].
    pub k: u32,
    /// Dimension of each query; must equal the collection's.
    pub dim: u32,
    /// [`SEARCH_EXACT`], [`SEARCH_UNDER`], [`SEARCH_XATTR`], or 0.
    pub flags: u32,
    /// HNSW beam width, 0 for [`HNSW_DEFAULT_EF`], at most
    /// [`HNSW_MAX_EF`]; raised to `k` when smaller. Ignored by exact
    /// searches.
    pub ef: u32,
    /// With [`SEARCH_UNDER`]: a file descriptor open on a directory of the
    /// collection's tree (the collection itself or below it); only files
    /// with a name in that directory's tree are found. Otherwise zero.
    pub under_fd: i32,
    /// User address of `nq * dim` f32 values, row-major (4-byte aligned).
    pub queries: u64,
    /// User address of `nq * k` [`SearchHit`]s (8-byte aligned). Query `i`'s
    /// hits are at `i * k`, nearest first, ties by ascending id.
    pub hits: u64,
    /// User address of `nq` u32 counts of valid hits per query (`min(k,
    /// count)`) (4-byte aligned).
    pub counts: u64,
    /// With [`SEARCH_XATTR`]: user address of an extended attribute's name,
    /// `xattr_name_len` bytes (no NUL), in the `user.` namespace; only files
    /// whose attribute of that name holds exactly the value below are found.
    /// Otherwise zero.
    pub xattr_name: u64,
    /// With [`SEARCH_XATTR`]: user address of the value, `xattr_value_len`
    /// bytes. Otherwise zero.
    pub xattr_value: u64,
    /// Length of the name, 6 (`user.` and one byte) to
    /// [`MAX_XATTR_NAME`].
    pub xattr_name_len: u32,
    /// Length of the value, 0 to [`MAX_XATTR_FILTER_VALUE`].
    pub xattr_value_len: u32,
}

const _: () = assert!(size_of::<SearchRequest>() == 72);
const _: () = assert!(offset_of!(SearchRequest, queries) == 24);
const _: () = assert!(offset_of!(SearchRequest, xattr_name) == 48);

/// [`SearchRequest::flags`]: scan every vector (exact k-NN) even when the
/// collection has an index.
pub const SEARCH_EXACT: u32 = 1;
/// [`SearchRequest::flags`]: find only files with a name under the
/// directory [`SearchRequest::under_fd`].
pub const SEARCH_UNDER: u32 = 2;
/// [`SearchRequest::flags`]: find only files whose extended attribute
/// [`SearchRequest::xattr_name`] equals [`SearchRequest::xattr_value`].
pub const SEARCH_XATTR: u32 = 4;
/// Every [`SearchRequest::flags`] bit.
pub const SEARCH_FLAGS: u32 = SEARCH_EXACT | SEARCH_UNDER | SEARCH_XATTR;
/// Longest extended attribute name (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: u32 = 255;
/// Longest value a search's xattr filter compares.
pub const MAX_XATTR_FILTER_VALUE: u32 = 1024;
/// The namespace a search's xattr filter may name: its values are as
/// private as the file's content (reading them needs read permission on
/// the file, which a search checks for every file it returns).
pub const XATTR_FILTER_PREFIX: &[u8] = b"user.";

/// A file's vectors: a regular file carries 1 to [`MAX_FILE_PARTS`]
/// vectors (one per chunk of its content, say), with ids
/// `ino + (part << FILE_PART_SHIFT)`: part 0's id is the inode number.
pub const FILE_PART_SHIFT: u32 = 48;
/// Inode numbers that can carry vectors are below `1 << FILE_PART_SHIFT`.
pub const FILE_INO_MASK: u64 = (1 << FILE_PART_SHIFT) - 1;
/// Most vectors one file carries.
pub const MAX_FILE_PARTS: u32 = 1024;

/// The id of part `part` of the vectors of the file with inode number
/// `ino`.
pub const fn file_vector_id(ino: u64, part: u32) -> u64 {
    ino | ((part as u64) << FILE_PART_SHIFT)
}

/// The inode number and the part of a file vector's id.
pub const fn file_vector_part(id: u64) -> (u64, u32) {
    (id & FILE_INO_MASK, (id >> FILE_PART_SHIFT) as u32)
}

/// One search result. (No `PartialEq`: the kernel must not compare floats.)
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SearchHit {
    /// Vector id (a file's inode number and part if `flags` has
    /// [`HIT_FILE`], see [`file_vector_part`]).
    pub id: u64,
    /// Distance under the collection's metric.
    pub distance: f32,
    /// [`HIT_FILE`] or 0.
    pub flags: u32,
}

const _: () = assert!(size_of::<SearchHit>() == 16);

/// The vector belongs to a regular file of the collection; the id is
/// [`file_vector_id`]`(ino, part)` (see [`file_vector_part`]). A search
/// returns each file once, by its nearest vector.
pub const HIT_FILE: u32 = 1;

/// Argument of [`VEXFS_IOC_ATTACH`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttachRequest {
    /// Dimension of the vectors; must equal the collection's.
    pub dim: u32,
    /// Number of vectors, 1 to [`MAX_FILE_PARTS`] (0 means 1). They
    /// replace all the file's vectors; vector `p` gets the id
    /// [`file_vector_id`]`(ino, p)`.
    pub count: u32,
    /// User address of `count * dim` f32 values, row-major (4-byte
    /// aligned).
    pub vector: u64,
}

const _: () = assert!(size_of::<AttachRequest>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux_encoding() {
        // _IOR('V', 1, 48 bytes) as computed by the C macros.
        assert_eq!(VEXFS_IOC_VERSION, 0x8030_5601);
        assert_eq!(
            VEXFS_IOC_STATS,
            0x8000_0000 | ((size_of::<Stats>() as u32) << 16) | 0x5602
        );
    }

    #[test]
    fn release_matches_crate_version() {
        assert_eq!(VEXFS_RELEASE, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn op_names_cover_every_op() {
        assert_eq!(OP_NAMES[Op::Lookup as usize], "lookup");
        assert_eq!(OP_NAMES[Op::Ioctl as usize], "ioctl");
    }
}
