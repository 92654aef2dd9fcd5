//! `vexfs.Collection`: a collection directory, its vectors and searches.
//!
//! Every call converts its arguments under the interpreter, then detaches
//! from it (releases the GIL) for the library calls, which are ioctls:
//! other Python threads run meanwhile, and searches of one collection from
//! several threads run in parallel in the kernel.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use vexfs::{
    abi, CollectionFile, CollectionParams, Errno, HnswParams, Index, IndexKind, Metric, Quantize,
    SearchFilter, SearchMode,
};

use crate::convert::{self, Bytes, Ctx};
use crate::error::Failure;
use crate::{MISSING_DISTANCE, MISSING_ID};

/// A vector collection: a directory on a VexFS mount whose vectors the
/// kernel stores, indexes and searches.
///
/// ``Collection(path)`` opens an existing collection directory (read-only:
/// the kernel checks write permission on each call that changes
/// something); ``Collection.create(path, dim, metric)`` makes one.
///
/// Vectors are float32 rows with uint64 ids. Arguments are numpy arrays or
/// anything numpy turns into one; a C-contiguous array of the right dtype
/// is handed to the kernel as it is (no copy), anything else is converted
/// once. Each method is one or a few ioctls, run with the GIL released.
///
/// Errors are ``OSError`` subclasses chosen by errno (``PermissionError``,
/// ``FileNotFoundError``, ``FileExistsError``, ``NotADirectoryError``,
/// ...) or ``ValueError`` (a request the kernel or this module refused as
/// invalid: a wrong dimension, k out of range, ...), with the same
/// message as ``vexctl`` prints, and ``.errno`` set (None where no errno
/// is involved).
///
/// A collection holds an open file descriptor on the directory until
/// ``close()``, the end of a ``with`` block, or garbage collection.
#[pyclass(module = "vexfs", frozen)]
pub struct Collection {
    /// The path as given, for messages.
    path: PathBuf,
    /// `None` once closed. Calls hold the read side, so they run in
    /// parallel; `close` takes the write side. Both only while detached
    /// from the interpreter (see `call`).
    inner: RwLock<Option<vexfs::Collection>>,
}

impl Collection {
    fn opened(path: PathBuf, coll: vexfs::Collection) -> Self {
        Self {
            path,
            inner: RwLock::new(Some(coll)),
        }
    }

    fn ctx(&self, op: &'static str) -> Ctx<'_> {
        Ctx {
            path: &self.path,
            op,
        }
    }

    /// Runs `f` on the open collection with the interpreter released.
    ///
    /// The lock is taken and released while detached: a thread that waited
    /// for it holding the GIL could stall a `close` (waiting for a call to
    /// end) and the call (waiting for the GIL) for good.
    fn call<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: Send + FnOnce(&vexfs::Collection) -> Result<T, Failure>,
    {
        py.detach(|| {
            let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            match guard.as_ref() {
                Some(coll) => f(coll),
                None => Err(Failure::Value(format!(
                    "{}: the collection is closed",
                    self.path.display()
                ))),
            }
        })
        .map_err(|e| e.into_py(py))
    }

    /// Whether `close` was called (the lock taken while detached, as in
    /// `call`).
    fn is_closed(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            self.inner
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none()
        })
    }
}

/// `value` if it is in `lo..=hi`, else why not, in the library's words.
fn in_range(
    ctx: &Ctx<'_>,
    name: &str,
    value: i64,
    lo: u32,
    hi: u32,
    what: &str,
) -> Result<u32, Failure> {
    if value < i64::from(lo) || value > i64::from(hi) {
        return Err(ctx.value(format!("{name} = {value} ({what} is {lo} to {hi})")));
    }
    Ok(value as u32)
}

/// The name of an enumerated ABI value, or `unknown (N)` for one this
/// module does not know (a newer kernel module), as `vexctl info` says.
fn known_or_number(name: Option<&'static str>, value: u32) -> String {
    name.map_or_else(|| format!("unknown ({value})"), str::to_string)
}

/// Searches every query, `abi::MAX_QUERIES` per ioctl; each row of `k`
/// hits is filled to `k` with (`MISSING_ID`, `MISSING_DISTANCE`).
fn search_rows(
    coll: &vexfs::Collection,
    queries: &[f32],
    dim: usize,
    k: u32,
    mode: SearchMode,
    filter: &SearchFilter,
) -> Result<(Vec<u64>, Vec<f32>), Failure> {
    if queries.is_empty() || dim == 0 {
        // No rows: the library says what is wrong with that.
        coll.search_filtered(queries, dim, k, mode, filter)?;
        return Ok((Vec::new(), Vec::new()));
    }
    let k = k as usize;
    let nq = queries.len() / dim;
    let mut ids = Vec::with_capacity(nq * k);
    let mut distances = Vec::with_capacity(nq * k);
    for chunk in queries.chunks(abi::MAX_QUERIES as usize * dim) {
        let results = coll.search_filtered(chunk, dim, k as u32, mode, filter)?;
        for hits in &results {
            ids.extend(hits.iter().map(vexfs::Hit::id));
            distances.extend(hits.iter().map(vexfs::Hit::distance));
            ids.resize(ids.len() + (k - hits.len()), MISSING_ID);
            distances.resize(distances.len() + (k - hits.len()), MISSING_DISTANCE);
        }
    }
    Ok((ids, distances))
}

/// Ids without repeats, first occurrence kept (one DELETE names each once).
fn unique(ids: &[u64]) -> Vec<u64> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// `(st_dev, st_ino)` of what `fd` is open on.
fn identity(fd: impl AsFd) -> io::Result<(u64, u64)> {
    let meta = File::from(fd.as_fd().try_clone_to_owned()?).metadata()?;
    Ok((meta.dev(), meta.ino()))
}

#[pymethods]
impl Collection {
    /// Opens the collection directory ``path`` (str or path-like).
    ///
    /// Raises ``FileNotFoundError``, ``PermissionError`` or
    /// ``NotADirectoryError`` if it cannot be opened, and ``OSError`` if
    /// it is not on a VexFS mount ("not a VexFS filesystem") or the
    /// module speaks another ABI version. Whether the directory is a
    /// collection shows at the first call (``OSError`` with errno
    /// ``ENODATA``: "not a vector collection").
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let coll = py
            .detach(|| vexfs::Collection::open(&path))
            .map_err(|e| Failure::Lib(e).into_py(py))?;
        Ok(Self::opened(path, coll))
    }

    /// Makes ``path`` a collection of ``dim``-dimensional vectors and
    /// opens it, as ``vexctl create`` does: the directory is made (mode
    /// 0755 less the umask) if it does not exist, and removed again if
    /// the collection cannot be made; an existing directory must be
    /// empty.
    ///
    /// ``metric``: ``"l2"`` (squared Euclidean), ``"cosine"`` (1 - cosine
    /// similarity) or ``"dot"`` (negated inner product); smaller is nearer
    /// for all three. ``index``: ``"hnsw"`` (approximate search through a
    /// graph; ``m`` 2 to 127 neighbours per node, ``ef_construction`` 1 to
    /// 4096, the beam width while inserting) or ``"flat"`` (every search
    /// scans every vector: exact; ``m``, ``ef_construction`` and
    /// ``quantize`` must be left at their defaults). ``quantize``, HNSW
    /// only: ``"none"`` (the graph walk computes float32 distances) or
    /// ``"sq8"`` (it walks on 8-bit codes of the vectors, one byte per
    /// dimension more, then re-ranks what it found in float32: the
    /// distances returned are exact). ``dim`` is 1 to 4096.
    ///
    /// Raises ``ValueError`` for an unknown metric, index or quantize or a
    /// value out of range, ``FileExistsError`` if ``path`` already is a
    /// collection, ``OSError`` (``ENOTEMPTY``) if it is a directory with
    /// entries, ``PermissionError`` without write permission on it.
    #[staticmethod]
    #[pyo3(signature = (path, dim, metric, index = "hnsw", m = 16, ef_construction = 200, quantize = "none"))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments
    fn create(
        py: Python<'_>,
        path: PathBuf,
        dim: i64,
        metric: &str,
        index: &str,
        m: i64,
        ef_construction: i64,
        quantize: &str,
    ) -> PyResult<Self> {
        let ctx = Ctx {
            path: &path,
            op: "CREATE",
        };
        let params = (|| -> Result<CollectionParams, Failure> {
            let metric: Metric = metric.parse().map_err(|e| ctx.value(e))?;
            let kind: IndexKind = index.parse().map_err(|e| ctx.value(e))?;
            let quantize: Quantize = quantize.parse().map_err(|e| ctx.value(e))?;
            let dim = in_range(
                &ctx,
                "dim",
                dim,
                1,
                abi::MAX_DIM,
                "a collection's dimension",
            )?;
            let index = match kind {
                IndexKind::Flat => {
                    if m != i64::from(abi::HNSW_DEFAULT_M)
                        || ef_construction != i64::from(abi::HNSW_DEFAULT_EF_CONSTRUCTION)
                    {
                        return Err(ctx.value(
                            "m and ef_construction apply to HNSW collections only: pass \
                             index=\"hnsw\" (a flat collection has no index to tune)",
                        ));
                    }
                    if quantize != Quantize::None {
                        return Err(ctx.value(format!(
                            "quantize=\"{quantize}\" applies to HNSW collections only: pass \
                             index=\"hnsw\" (a flat collection has no index to tune)"
                        )));
                    }
                    Index::Flat
                }
                IndexKind::Hnsw => {
                    let (lo, hi) = abi::HNSW_M_RANGE;
                    Index::Hnsw(HnswParams {
                        m: Some(in_range(&ctx, "m", m, lo, hi, "HNSW M")?),
                        ef_construction: Some(in_range(
                            &ctx,
                            "ef_construction",
                            ef_construction,
                            1,
                            abi::HNSW_MAX_EF,
                            "ef_construction",
                        )?),
                        quantize,
                    })
                }
            };
            Ok(CollectionParams::new(dim, metric).with_index(index))
        })()
        .map_err(|e| e.into_py(py))?;
        let coll = py
            .detach(|| -> Result<vexfs::Collection, Failure> {
                let made = match DirBuilder::new().mode(0o755).create(&path) {
                    Ok(()) => true,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(Failure::io(&path, "cannot create directory", &e)),
                };
                vexfs::Collection::create(&path, &params).map_err(|e| {
                    if made {
                        let _ = fs::remove_dir(&path);
                    }
                    Failure::Lib(e)
                })
            })
            .map_err(|e| e.into_py(py))?;
        Ok(Self::opened(path, coll))
    }

    /// The path the collection was opened by, as given (a str).
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.path.as_os_str().into_pyobject(py)?.into_any())
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        self.is_closed(py)
    }

    /// Closes the directory's file descriptor (so that the filesystem can
    /// be unmounted, say). Calls on a closed collection raise
    /// ``ValueError``; closing twice is harmless. Waits for calls in other
    /// threads to finish.
    fn close(&self, py: Python<'_>) {
        let coll = py.detach(|| {
            self.inner
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        });
        drop(coll);
    }

    /// ``with Collection(path) as c:`` closes ``c`` at the end of the block.
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the collection; exceptions propagate.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let path = self.path.as_os_str().into_pyobject(py)?;
        let closed = if self.is_closed(py) { " (closed)" } else { "" };
        Ok(format!("vexfs.Collection({}){closed}", path.repr()?))
    }

    /// The collection's parameters and counters, as a dict with the keys
    /// and values ``vexctl info --json`` prints: ``path`` (as given),
    /// ``dim``, ``metric`` and ``index`` (names), ``m`` and
    /// ``ef_construction`` (0 for a flat collection), ``quantize``
    /// (``"none"`` or ``"sq8"``; ``"none"`` for flat), ``count`` (vectors),
    /// ``file_vectors`` (how many of them are files' vectors),
    /// ``memory_bytes`` (held by the collection), and for HNSW
    /// ``index_bytes`` (the graph's share of it, with sq8 also its codes
    /// and quantizer), ``deleted_pending``
    /// (deleted or replaced vectors whose graph nodes await repair) and
    /// ``unindexed`` (stored, not yet linked into the graph; 0 for flat).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = self.call(py, |c| Ok(c.info()?))?;
        let d = PyDict::new(py);
        d.set_item("path", self.path.display().to_string())?;
        d.set_item("dim", info.dim)?;
        d.set_item(
            "metric",
            known_or_number(Metric::from_abi(info.metric).map(Metric::name), info.metric),
        )?;
        d.set_item(
            "index",
            known_or_number(
                IndexKind::from_abi(info.index).map(IndexKind::name),
                info.index,
            ),
        )?;
        d.set_item("m", info.m)?;
        d.set_item("ef_construction", info.ef_construction)?;
        d.set_item(
            "quantize",
            known_or_number(
                Quantize::from_abi(info.quantize).map(Quantize::name),
                info.quantize,
            ),
        )?;
        d.set_item("count", info.count)?;
        d.set_item("file_vectors", info.file_vectors)?;
        d.set_item("memory_bytes", info.memory_bytes)?;
        d.set_item("index_bytes", info.index_bytes)?;
        d.set_item("deleted_pending", info.deleted_pending)?;
        d.set_item("unindexed", info.unindexed)?;
        Ok(d)
    }

    /// Inserts ``vectors`` under ``ids``, or replaces those whose ids exist
    /// (an upsert), in one ioctl: all or nothing.
    ///
    /// ``ids``: a 1-D array (or sequence) of n integers, 0 to 2**64-1, or
    /// one int; uint64 C-contiguous arrays are used as they are.
    /// ``vectors``: an (n, dim) array of float32 (other dtypes, such as
    /// float64, and non-contiguous arrays are converted once), or one
    /// vector (1-D) for one id. An id repeated in one call keeps its last
    /// row. At most 1,048,576 rows per call.
    ///
    /// Raises ``ValueError`` if the rows do not match the ids or the
    /// collection's dimension, or hold NaN or infinity;
    /// ``FileExistsError`` if an id is that of a file's vector;
    /// ``PermissionError`` without write permission on the directory;
    /// ``OSError`` (``ENOSPC``) at the module's vector memory limit.
    fn insert(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let ctx = self.ctx("INSERT");
        let ids = convert::ids(ids, &ctx)?;
        let rows = convert::rows_f32(vectors, "vectors", &ctx)?;
        let n = rows.shape()[0];
        if n != ids.len() {
            return Err(ctx
                .value(format!(
                    "{} ids and {n} rows of vectors (one row per id)",
                    ids.len()
                ))
                .into_py(py));
        }
        let ids = ids.try_readonly()?;
        let rows = rows.try_readonly()?;
        let (ids, values) = (ids.as_slice()?, rows.as_slice()?);
        self.call(py, |c| Ok(c.insert(ids, values)?))
    }

    /// The ``k`` nearest vectors of each query, all queries in one ioctl
    /// (one per 65,536 queries).
    ///
    /// ``queries``: an (nq, dim) array of float32 (converted once if it is
    /// not), or one query (1-D, nq = 1). ``k``: 1 to 1024.
    ///
    /// Mode: by default the collection's own way (exact on a flat
    /// collection, HNSW with ef 64 on an HNSW one); ``ef`` (1 to 4096,
    /// raised to k when smaller) sets the HNSW beam width (``ValueError``
    /// on a flat collection, which has no index); ``exact=True`` scans
    /// every vector even on an HNSW collection. ``ef`` and ``exact`` are
    /// exclusive. The same as ``vexctl search`` with no flag, ``--ef`` or
    /// ``--exact``: same ids, same order.
    ///
    /// Returns ``(ids, distances)``: numpy arrays of shape (nq, k), uint64
    /// and float32, each row nearest first (ties by ascending id). A row
    /// has fewer than k hits when the collection holds fewer vectors (or
    /// fewer the caller may read); the rest of the row is filled with
    /// ``MISSING_ID`` (2**64-1) and ``MISSING_DISTANCE`` (+inf), so
    /// ``ids != vexfs.MISSING_ID`` masks the hits.
    ///
    /// Filters, applied by the kernel during the search (so a row is full
    /// whenever k matching files exist), as ``vexctl search --under`` and
    /// ``--xattr``: ``under`` (a path) keeps the files with a name in that
    /// directory's tree, which must be the collection or a directory below
    /// it; ``xattr=(name, value)`` keeps the files whose extended attribute
    /// ``name`` (``user.`` namespace; str or bytes) holds exactly ``value``
    /// (str, encoded as UTF-8, or bytes). Either filter leaves out the
    /// vectors that are not files'.
    #[pyo3(signature = (queries, k, ef = None, exact = false, under = None, xattr = None))]
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: i64,
        ef: Option<i64>,
        exact: bool,
        under: Option<PathBuf>,
        xattr: Option<(Bytes, Bytes)>,
    ) -> PyResult<(Bound<'py, PyArray2<u64>>, Bound<'py, PyArray2<f32>>)> {
        let ctx = self.ctx("SEARCH");
        let mut filter = SearchFilter::new();
        if let Some(dir) = under {
            filter = filter.under(dir);
        }
        if let Some((name, value)) = xattr {
            filter = filter.xattr(name.into_vec(), value.into_vec());
        }
        let k = in_range(&ctx, "k", k, 1, abi::MAX_K, "k").map_err(|e| e.into_py(py))?;
        let mode = match (ef, exact) {
            (Some(_), true) => {
                return Err(ctx
                    .value("ef and exact=True exclude each other (ef tunes the HNSW walk, exact scans every vector)")
                    .into_py(py))
            }
            (None, true) => SearchMode::Exact,
            (Some(ef), false) => SearchMode::Ef(
                in_range(&ctx, "ef", ef, 1, abi::HNSW_MAX_EF, "ef").map_err(|e| e.into_py(py))?,
            ),
            (None, false) => SearchMode::Default,
        };
        let rows = convert::rows_f32(queries, "queries", &ctx)?;
        let (nq, dim) = (rows.shape()[0], rows.shape()[1]);
        let rows = rows.try_readonly()?;
        let values = rows.as_slice()?;
        let path = &self.path;
        let (ids, distances) = self.call(py, |c| {
            if matches!(mode, SearchMode::Ef(_)) && c.info()?.index == abi::index::FLAT {
                return Err(Failure::Value(format!(
                    "{}: ef applies to HNSW collections only; this collection has no index \
                     (index flat: every search is exact)",
                    path.display()
                )));
            }
            search_rows(c, values, dim, k, mode, &filter)
        })?;
        let k = k as usize;
        let ids = PyArray1::from_vec(py, ids).reshape([nq, k])?;
        let distances = PyArray1::from_vec(py, distances).reshape([nq, k])?;
        Ok((ids, distances))
    }

    /// The vector with id ``id``, as a float32 numpy array of shape (dim,).
    /// With ``return_is_file=True``, a tuple ``(vector, is_file)``, where
    /// ``is_file`` says whether it is a file's vector (its id is then the
    /// file's inode number).
    ///
    /// Raises ``FileNotFoundError`` if there is no vector with that id,
    /// ``PermissionError`` if it is the vector of a file the caller may not
    /// read.
    #[pyo3(signature = (id, return_is_file = false))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        return_is_file: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = convert::one_id(id, &self.ctx("GET"))?;
        let stored = self.call(py, |c| {
            let dim = c.info()?.dim as usize;
            Ok(c.get(id, dim)?)
        })?;
        let vector = PyArray1::from_vec(py, stored.values).into_any();
        if return_is_file {
            Ok((vector, stored.is_file).into_pyobject(py)?.into_any())
        } else {
            Ok(vector)
        }
    }

    /// Deletes the vectors with ``ids`` (one int or a 1-D sequence of
    /// them; repeats count once), all or none, in one ioctl. A file's
    /// vector is deleted by its id (the file stays).
    ///
    /// Raises ``FileNotFoundError`` if one of them is not there (nothing is
    /// deleted; for up to 100 ids the message names the missing ones, as
    /// ``vexctl delete`` does), ``PermissionError`` without write
    /// permission on the directory (or, for a file's vector, on the file).
    fn delete(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<()> {
        let ids = convert::ids(ids, &self.ctx("DELETE"))?;
        let ids = unique(ids.try_readonly()?.as_slice()?);
        self.call(py, |c| match c.delete(&ids) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(Errno::ENOENT) => match c.explain_missing(&ids) {
                Some(message) => Err(Failure::Os {
                    errno: Some(Errno::ENOENT as i32),
                    message,
                }),
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        })
    }

    /// Sets (or replaces) the vectors of ``file``, a regular file in this
    /// collection's tree (the collection is the nearest one above the
    /// file); returns its id, the file's inode number. A relative ``file``
    /// is taken relative to the collection's directory. ``vector``: dim
    /// float32 values (1-D, or one row), or up to 1024 rows for a file
    /// with several parts (one per chunk of a text, say), converted once
    /// if need be. The rows replace all the file's vectors at once; part
    /// ``p`` has the id ``ino + (p << 48)``, and a search returns the file
    /// once, by its nearest part.
    ///
    /// Searches name the file's vector by that id; ``get`` reads it and
    /// ``delete`` removes it; the kernel removes it with the file's last
    /// link.
    ///
    /// Raises ``ValueError`` if ``file`` is not in this collection or the
    /// vector is not of the collection's dimension, ``PermissionError``
    /// without write permission on the file, ``FileExistsError`` if the
    /// inode number is the id of a vector inserted by id,
    /// ``FileNotFoundError`` if there is no such file.
    fn attach(&self, py: Python<'_>, file: PathBuf, vector: &Bound<'_, PyAny>) -> PyResult<u64> {
        let file = if file.is_relative() {
            self.path.join(file)
        } else {
            file
        };
        let ctx = Ctx {
            path: &file,
            op: "ATTACH",
        };
        let rows = convert::rows_f32(vector, "vector", &ctx)?;
        let dim = rows.shape()[1];
        let rows = rows.try_readonly()?;
        let values = rows.as_slice()?;
        let path = &self.path;
        self.call(py, |c| {
            let handle = CollectionFile::open(&file)?;
            // The kernel attaches the vectors to the nearest collection
            // above the file; refuse a file of another one rather than fill
            // that.
            let ours = identity(c).map_err(|e| Failure::io(path, "", &e))?;
            let owner = handle.owner().and_then(|(_, o)| identity(&o).ok());
            if owner != Some(ours) {
                return Err(Failure::Value(format!(
                    "{}: not in the collection {} (a file's vector belongs to the \
                     nearest collection directory above the file)",
                    file.display(),
                    path.display()
                )));
            }
            Ok(handle.attach_parts(values, dim)?)
        })
    }
}
