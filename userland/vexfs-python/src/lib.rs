//! The `vexfs` Python package: the `vexfs` client crate (userland's one
//! door to VexFS's ioctls) under PyO3, with numpy arrays in and out.
//!
//! The Python module's docstring is the doc comment of [`vexfs_module`];
//! each method's is in `collection.rs`. `vexfs.pyi` beside `Cargo.toml`
//! gives the types.

mod collection;
mod convert;
mod error;

use pyo3::prelude::*;
use vexfs::abi;

/// The id that fills the rest of a search row when fewer than k vectors
/// were found: 2**64-1.
pub(crate) const MISSING_ID: u64 = u64::MAX;

/// The distance that fills the rest of a search row: +inf.
pub(crate) const MISSING_DISTANCE: f32 = f32::INFINITY;

/// VexFS vector collections from Python.
///
/// A directory on a VexFS mount can be a vector collection: the kernel
/// module stores float32 vectors with uint64 ids (or one per file) and
/// answers exact or HNSW k-nearest-neighbour searches through ioctls. This
/// package makes those calls through the ``vexfs`` Rust crate, the library
/// ``vexctl`` is built on, with numpy arrays in and out::
///
///     import numpy as np, vexfs
///     c = vexfs.Collection.create("/mnt/vex/docs", dim=50, metric="cosine")
///     c.insert(np.arange(1000, dtype=np.uint64), vectors)  # (1000, 50) float32
///     ids, distances = c.search(queries, 10)               # (nq, 10) each
///
/// ``Collection(path)`` opens an existing collection. Rows of ``search``
/// with fewer than k hits are filled with ``MISSING_ID`` and
/// ``MISSING_DISTANCE``. Failures raise ``OSError`` subclasses by errno
/// (``PermissionError``, ``FileNotFoundError``, ``FileExistsError``, ...)
/// or ``ValueError``, with ``vexctl``'s messages. Calls release the GIL
/// while the kernel works.
///
/// Constants: ``MISSING_ID`` (2**64-1) and ``MISSING_DISTANCE`` (+inf),
/// the fill of short search rows; the ABI's limits ``MAX_DIM`` (4096),
/// ``MAX_K`` (1024), ``MAX_BATCH`` (vectors per insert or ids per delete,
/// 1,048,576), ``MAX_QUERIES`` (per search ioctl, 65,536; ``search`` splits
/// larger inputs), ``MAX_EF`` (4096); ``ABI_VERSION``, the ioctl ABI this
/// package speaks.
#[pymodule(name = "vexfs")]
fn vexfs_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<collection::Collection>()?;
    m.add("MISSING_ID", MISSING_ID)?;
    m.add("MISSING_DISTANCE", MISSING_DISTANCE)?;
    m.add("MAX_DIM", abi::MAX_DIM)?;
    m.add("MAX_K", abi::MAX_K)?;
    m.add("MAX_BATCH", abi::MAX_BATCH)?;
    m.add("MAX_QUERIES", abi::MAX_QUERIES)?;
    m.add("MAX_EF", abi::HNSW_MAX_EF)?;
    m.add("ABI_VERSION", abi::VEXFS_ABI_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "__all__",
        [
            "Collection",
            "MISSING_ID",
            "MISSING_DISTANCE",
            "MAX_DIM",
            "MAX_K",
            "MAX_BATCH",
            "MAX_QUERIES",
            "MAX_EF",
            "ABI_VERSION",
            // Listed so that the package's `from .vexfs import *` (the
            // __init__.py maturin writes) brings it along.
            "__version__",
        ],
    )?;
    Ok(())
}
