//! A vector collection: a directory whose vectors the kernel stores,
//! indexes and searches.
//!
//! Every request is built here from borrowed Rust buffers, so the counts,
//! dimensions and addresses the kernel sees always describe buffers that
//! are alive for the whole call; nothing is copied on the way in.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use vexfs_abi as abi;

use crate::handle::{busy_retry, Handle};
use crate::{sys, CollectionParams, Operation, Result, SearchFilter, SearchMode};

/// An open collection directory on a VexFS mount.
///
/// Opening checks that the directory is on VexFS and that the module
/// speaks this crate's ABI (one `VERSION` ioctl); whether it is a
/// collection shows at the first vector call (`ENODATA`).
///
/// # Examples
///
/// ```no_run
/// use vexfs::{Collection, CollectionParams, Metric, SearchMode};
///
/// let coll = Collection::create("/mnt/vex/docs", &CollectionParams::new(3, Metric::L2))?;
/// // Two vectors, row-major: ids 1 and 2.
/// coll.insert(&[1, 2], &[0.0, 0.0, 1.0, 5.0, 5.0, 5.0])?;
/// for hit in coll.search_one(&[0.0, 0.0, 0.9], 1, SearchMode::Default)? {
///     println!("{} at {}", hit.id(), hit.distance());
/// }
/// assert_eq!(coll.info()?.count, 2);
/// # Ok::<(), vexfs::Error>(())
/// ```
#[derive(Debug)]
pub struct Collection {
    handle: Handle,
}

impl Collection {
    /// Opens the collection directory `path` (read-only: write permission
    /// is checked by the kernel per call).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let handle = Handle::open_dir(path.as_ref())?;
        handle.check_abi()?;
        Ok(Self { handle })
    }

    /// Makes the existing, empty directory `path` a collection as `params`
    /// describe it, and opens it.
    ///
    /// The kernel refuses a directory that already is a collection
    /// (`EEXIST`), one with entries (`ENOTEMPTY`) and parameters out of
    /// range (`EINVAL`).
    pub fn create(path: impl AsRef<Path>, params: &CollectionParams) -> Result<Self> {
        let coll = Self::open(path)?;
        let raw = params.to_abi();
        let operation = Operation::Create {
            dim: raw.dim,
            metric: raw.metric,
            index: raw.index,
            m: raw.m,
            ef_construction: raw.ef_construction,
            quantize: raw.quantize,
        };
        // SAFETY: the fd is open and `raw` is a readable CollectionParams,
        // the type the ioctl number encodes; it holds no pointers.
        unsafe { sys::create(coll.handle.raw_fd(), &raw) }
            .map_err(coll.handle.failed(operation))?;
        Ok(coll)
    }

    /// The path the collection was opened by.
    pub fn path(&self) -> &Path {
        self.handle.path()
    }

    /// Reads the collection's dimension, metric, index and counters.
    pub fn info(&self) -> Result<abi::CollectionInfo> {
        let mut info = abi::CollectionInfo::default();
        // SAFETY: the fd is open and `info` is a writable CollectionInfo,
        // the type the ioctl number encodes.
        unsafe { sys::info(self.handle.raw_fd(), &mut info) }
            .map_err(self.handle.failed(Operation::Info))?;
        Ok(info)
    }

    /// Inserts `ids.len()` vectors, or replaces those whose ids exist (an
    /// upsert), all or nothing. `vectors` holds them row-major: row `i`,
    /// the vector of `ids[i]`, is `vectors[i * dim..(i + 1) * dim]`, where
    /// the dimension is `vectors.len() / ids.len()` and must be the
    /// collection's.
    ///
    /// While other calls hold the kernel's in-flight memory budget
    /// (`EAGAIN`), it retries for a few seconds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument), before
    /// any ioctl, if `ids` is empty or longer than [`abi::MAX_BATCH`] or
    /// `vectors` is not `ids.len()` rows of at least one value; otherwise
    /// what the kernel answers.
    #[doc(alias = "upsert")]
    pub fn insert(&self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        let (req, operation) =
            insert_request(ids, vectors).map_err(|r| self.handle.invalid("INSERT", r))?;
        // SAFETY: the fd is open and `req` is a readable InsertRequest, the
        // type the ioctl number encodes. Its addresses point into `ids` and
        // `vectors`, which are borrowed for this whole call, hold `count`
        // ids and `count * dim` values (checked by `insert_request`), and
        // are aligned for u64 and f32; the kernel only reads them.
        busy_retry(|| unsafe { sys::insert(self.handle.raw_fd(), &req) })
            .map_err(self.handle.failed(operation))?;
        Ok(())
    }

    /// Deletes all of `ids`, or none if one is absent (`ENOENT`). A file's
    /// vector is deleted by its id, the file's inode number.
    ///
    /// While other calls hold the kernel's in-flight memory budget
    /// (`EAGAIN`), it retries for a few seconds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument), before
    /// any ioctl, if `ids` is empty or longer than [`abi::MAX_BATCH`];
    /// otherwise what the kernel answers.
    pub fn delete(&self, ids: &[u64]) -> Result<()> {
        let (req, operation) = delete_request(ids).map_err(|r| self.handle.invalid("DELETE", r))?;
        // SAFETY: the fd is open and `req` is a readable DeleteRequest, the
        // type the ioctl number encodes. `ids` is borrowed for this whole
        // call, holds `count` aligned u64s, and the kernel only reads it.
        busy_retry(|| unsafe { sys::delete(self.handle.raw_fd(), &req) })
            .map_err(self.handle.failed(operation))?;
        Ok(())
    }

    /// After a [`delete`](Self::delete) of `ids` answered `ENOENT`: a
    /// message naming the ids the collection does not hold, found by a GET
    /// on each. `None` for more than [`MISSING_PROBE_MAX`] ids (not worth
    /// that many calls), when none is missing any more, or when it cannot
    /// be told.
    pub fn explain_missing(&self, ids: &[u64]) -> Option<String> {
        if ids.len() > MISSING_PROBE_MAX {
            return None;
        }
        let dim = self.info().ok()?.dim as usize;
        let mut missing = Vec::new();
        for &id in ids {
            match self.get(id, dim) {
                Ok(_) => {}
                Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => missing.push(id),
                Err(_) => return None,
            }
        }
        (!missing.is_empty()).then(|| missing_text(self.path(), &missing))
    }

    /// Reads vector `id` of a collection of dimension `dim` (see
    /// [`info`](Self::info)).
    ///
    /// # Errors
    ///
    /// `ENOENT` if there is no such vector, `EINVAL` if `dim` is not the
    /// collection's.
    pub fn get(&self, id: u64, dim: usize) -> Result<StoredVector> {
        let mut values = vec![0f32; dim];
        let is_file = self.get_into(id, &mut values)?;
        Ok(StoredVector { values, is_file })
    }

    /// Reads vector `id` into `out`, whose length must be the collection's
    /// dimension; answers whether it is a file's vector. Reuses the
    /// caller's buffer, for reading many.
    ///
    /// While other calls hold the kernel's in-flight memory budget
    /// (`EAGAIN`), it retries for a few seconds.
    pub fn get_into(&self, id: u64, out: &mut [f32]) -> Result<bool> {
        let dim = u32::try_from(out.len()).map_err(|_| {
            self.handle
                .invalid("GET", format!("room for {} values", out.len()))
        })?;
        let mut req = abi::GetRequest {
            id,
            dim,
            flags: 0,
            vector: out.as_mut_ptr() as u64,
        };
        // SAFETY: the fd is open and `req` is a writable GetRequest, the type
        // the ioctl number encodes (the kernel writes `flags` back). `out` is
        // borrowed mutably for this whole call, so nothing else reads or
        // writes it meanwhile, and has room for the `dim` aligned f32 values
        // the kernel writes.
        busy_retry(|| unsafe { sys::get(self.handle.raw_fd(), &mut req) })
            .map_err(self.handle.failed(Operation::Get { id, dim }))?;
        Ok(req.flags & abi::HIT_FILE != 0)
    }

    /// Searches the `k` nearest vectors of each query, in one ioctl.
    /// `queries` holds the queries row-major, `dim` values each (the
    /// collection's dimension): query `i` is `queries[i * dim..(i + 1) *
    /// dim]`.
    ///
    /// While other calls hold the kernel's in-flight memory budget
    /// (`EAGAIN`), it retries for a few seconds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument), before
    /// any ioctl, if `dim` is 0, `queries` is not a whole number of rows,
    /// there are none or more than [`abi::MAX_QUERIES`], or `k` is not 1 to
    /// [`abi::MAX_K`]; otherwise what the kernel answers.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use vexfs::{Collection, SearchMode};
    ///
    /// let coll = Collection::open("/mnt/vex/glove")?;
    /// let dim = coll.info()?.dim as usize;
    /// let queries = vec![0.5f32; 2 * dim]; // two queries
    /// let results = coll.search(&queries, dim, 10, SearchMode::Ef(128))?;
    /// for (i, hits) in results.iter().enumerate() {
    ///     println!("query {i}: {} hits", hits.len());
    /// }
    /// # Ok::<(), vexfs::Error>(())
    /// ```
    pub fn search(
        &self,
        queries: &[f32],
        dim: usize,
        k: u32,
        mode: SearchMode,
    ) -> Result<SearchResults> {
        self.search_filtered(queries, dim, k, mode, &SearchFilter::new())
    }

    /// [`search`](Self::search), limited by `filter` to some of the
    /// collection's files: the kernel applies it during the search, so each
    /// query gets `k` hits whenever `k` matching files exist.
    ///
    /// # Errors
    ///
    /// As [`search`](Self::search); [`Error::Open`](crate::Error::Open) or
    /// [`Error::NotVexfs`](crate::Error::NotVexfs) for the filter's
    /// directory, [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// for an attribute outside the `user.` namespace; `EINVAL` from the
    /// kernel for a directory outside the collection's tree.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use vexfs::{Collection, SearchFilter, SearchMode};
    ///
    /// let coll = Collection::open("/mnt/vex/docs")?;
    /// let query = vec![0.1f32; 384];
    /// let only = SearchFilter::new().under("/mnt/vex/docs/guides").xattr("user.lang", "en");
    /// let results = coll.search_filtered(&query, 384, 5, SearchMode::Default, &only)?;
    /// for hit in results.get(0).unwrap() {
    ///     println!("file {:?}, part {}", hit.ino(), hit.part());
    /// }
    /// # Ok::<(), vexfs::Error>(())
    /// ```
    pub fn search_filtered(
        &self,
        queries: &[f32],
        dim: usize,
        k: u32,
        mode: SearchMode,
        filter: &SearchFilter,
    ) -> Result<SearchResults> {
        let (nq, dim) =
            search_shape(queries.len(), dim, k).map_err(|r| self.handle.invalid("SEARCH", r))?;
        let filter = filter.prepare(&self.handle)?;
        let k_len = k as usize;
        let mut hits = vec![Hit::default(); nq as usize * k_len];
        let mut counts = vec![0u32; nq as usize];
        let (ef, flags) = mode.ef_and_flags();
        let mut req = abi::SearchRequest {
            nq,
            k,
            dim,
            flags,
            ef,
            queries: queries.as_ptr() as u64,
            hits: hits.as_mut_ptr() as u64,
            counts: counts.as_mut_ptr() as u64,
            ..Default::default()
        };
        filter.apply(&mut req);
        let flags = req.flags;
        // SAFETY: the fd is open and `req` is a readable SearchRequest, the
        // type the ioctl number encodes. `queries` is borrowed for the whole
        // call and holds `nq * dim` aligned f32s (checked by
        // `search_shape`); the kernel only reads it. `hits` and `counts`
        // live until the end of this function, are not otherwise used during
        // the call, and have room for the `nq * k` SearchHits (`Hit` is a
        // `repr(transparent)` SearchHit, aligned as one) and `nq` u32s the
        // kernel writes. The filter's directory and attribute bytes live in
        // `filter` until the end of this function; the kernel only reads
        // them.
        busy_retry(|| unsafe { sys::search(self.handle.raw_fd(), &req) }).map_err(
            self.handle.failed(Operation::Search {
                nq,
                k,
                dim,
                ef,
                flags,
            }),
        )?;
        Ok(SearchResults {
            hits,
            counts,
            k: k_len,
        })
    }

    /// Searches the `k` nearest vectors of one query (of the collection's
    /// dimension); the hits are nearest first, ties by ascending id, and
    /// fewer than `k` when the collection holds fewer vectors.
    ///
    /// # Errors
    ///
    /// As [`search`](Self::search).
    pub fn search_one(&self, query: &[f32], k: u32, mode: SearchMode) -> Result<Vec<Hit>> {
        let SearchResults {
            mut hits, counts, ..
        } = self.search(query, query.len(), k, mode)?;
        hits.truncate(counts[0] as usize);
        Ok(hits)
    }
}

impl AsFd for Collection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.handle.fd()
    }
}

/// A vector read back by [`Collection::get`].
#[derive(Clone, Debug, PartialEq)]
pub struct StoredVector {
    /// Its values, as many as the collection's dimension.
    pub values: Vec<f32>,
    /// Whether it is a file's vector (its id is the file's inode number).
    pub is_file: bool,
}

/// One search result: an id and its distance to the query.
///
/// The kernel writes these directly (the type is the ABI's
/// [`SearchHit`](abi::SearchHit), `repr(transparent)`), so results are not
/// copied after the call.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Hit(abi::SearchHit);

impl Hit {
    /// The vector's id: for a file's vector, the file's inode number plus
    /// its part shifted by [`abi::FILE_PART_SHIFT`] (see
    /// [`ino`](Self::ino) and [`part`](Self::part)).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// For a file's vector, the file's inode number.
    pub fn ino(&self) -> Option<u64> {
        self.is_file().then(|| abi::file_vector_part(self.0.id).0)
    }

    /// For a file's vector, which of the file's vectors (0 for the first,
    /// or only, one) was its nearest: a search returns each file once. 0
    /// for a plain vector.
    pub fn part(&self) -> u32 {
        if self.is_file() {
            abi::file_vector_part(self.0.id).1
        } else {
            0
        }
    }

    /// Distance to the query under the collection's metric; smaller is
    /// nearer.
    pub fn distance(&self) -> f32 {
        self.0.distance
    }

    /// Whether the vector belongs to a regular file of the collection.
    pub fn is_file(&self) -> bool {
        self.0.flags & abi::HIT_FILE != 0
    }

    /// The hit as the kernel wrote it.
    pub fn as_abi(&self) -> &abi::SearchHit {
        &self.0
    }
}

impl From<abi::SearchHit> for Hit {
    fn from(hit: abi::SearchHit) -> Self {
        Self(hit)
    }
}

/// The answer of [`Collection::search`]: each query's hits, nearest first
/// (ties by ascending id), in the buffer the kernel filled.
#[derive(Clone, Debug)]
pub struct SearchResults {
    /// `k` slots per query; the first `counts[i]` of query `i` are valid.
    hits: Vec<Hit>,
    counts: Vec<u32>,
    k: usize,
}

impl SearchResults {
    /// Number of queries.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether there are no queries (never, for a result of
    /// [`Collection::search`]).
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The hits of query `query`, or `None` past the last query. Fewer
    /// than `k` when the collection holds fewer vectors.
    pub fn get(&self, query: usize) -> Option<&[Hit]> {
        let count = *self.counts.get(query)? as usize;
        let row = &self.hits[query * self.k..(query + 1) * self.k];
        // A count above k would be a kernel bug; never read past the row.
        Some(&row[..count.min(self.k)])
    }

    /// Each query's hits, in query order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            results: self,
            next: 0,
        }
    }
}

impl<'a> IntoIterator for &'a SearchResults {
    type Item = &'a [Hit];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the queries of [`SearchResults`], yielding each one's
/// hits.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    results: &'a SearchResults,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [Hit];

    fn next(&mut self) -> Option<&'a [Hit]> {
        let hits = self.results.get(self.next)?;
        self.next += 1;
        Some(hits)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.results.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// A batch length as the ABI's u32 count, within 1..=MAX_BATCH.
fn batch_count(len: usize, what: &str) -> Result<u32, String> {
    if len == 0 || len > abi::MAX_BATCH as usize {
        return Err(format!(
            "a batch of {len} {what} (a batch holds 1 to {})",
            abi::MAX_BATCH
        ));
    }
    Ok(len as u32)
}

/// The INSERT of `vectors` (row-major) under `ids`, or why none can carry
/// them. The request borrows the addresses of both slices.
fn insert_request(ids: &[u64], vectors: &[f32]) -> Result<(abi::InsertRequest, Operation), String> {
    let count = batch_count(ids.len(), "ids")?;
    if vectors.is_empty() || vectors.len() % ids.len() != 0 {
        return Err(format!(
            "{} values are not {} rows of equal length",
            vectors.len(),
            ids.len()
        ));
    }
    let dim = vectors.len() / ids.len();
    let dim = u32::try_from(dim).map_err(|_| format!("rows of {dim} values"))?;
    let req = abi::InsertRequest {
        count,
        dim,
        ids: ids.as_ptr() as u64,
        vectors: vectors.as_ptr() as u64,
    };
    Ok((req, Operation::Insert { count, dim }))
}

/// The DELETE of `ids`, or why none can carry them. The request borrows
/// the slice's address.
fn delete_request(ids: &[u64]) -> Result<(abi::DeleteRequest, Operation), String> {
    let count = batch_count(ids.len(), "ids")?;
    let req = abi::DeleteRequest {
        count,
        reserved: 0,
        ids: ids.as_ptr() as u64,
    };
    Ok((req, Operation::Delete { count }))
}

/// `(nq, dim)` of a SEARCH of `len` values in rows of `dim`, checked
/// against the ABI's limits, so that the hit buffer (`nq * k`) stays
/// bounded.
fn search_shape(len: usize, dim: usize, k: u32) -> Result<(u32, u32), String> {
    if dim == 0 || len % dim != 0 {
        return Err(format!("{len} values are not rows of {dim}"));
    }
    let nq = len / dim;
    if nq == 0 || nq > abi::MAX_QUERIES as usize {
        return Err(format!(
            "{nq} queries (a search takes 1 to {})",
            abi::MAX_QUERIES
        ));
    }
    if k == 0 || k > abi::MAX_K {
        return Err(format!("k = {k} (1 to {})", abi::MAX_K));
    }
    let dim = u32::try_from(dim).map_err(|_| format!("rows of {dim} values"))?;
    Ok((nq as u32, dim))
}

/// Up to this many ids, [`Collection::explain_missing`] asks GET about each.
pub const MISSING_PROBE_MAX: usize = 100;

/// The message of a delete refused because the ids `missing` are absent.
fn missing_text(dir: &Path, missing: &[u64]) -> String {
    let list: Vec<String> = missing.iter().map(u64::to_string).collect();
    let what = if missing.len() == 1 {
        "vector with id"
    } else {
        "vectors with ids"
    };
    format!(
        "{}: no {what} {}; nothing deleted",
        dir.display(),
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn missing_ids_are_named() {
        assert_eq!(
            missing_text(Path::new("DIR"), &[7]),
            "DIR: no vector with id 7; nothing deleted"
        );
        assert_eq!(
            missing_text(Path::new("DIR"), &[7, 9]),
            "DIR: no vectors with ids 7, 9; nothing deleted"
        );
    }

    use super::*;
    use std::path::PathBuf;

    #[test]
    fn insert_requests_point_at_the_callers_buffers() {
        let ids = [7u64, 8, 9];
        let vectors = [0f32; 12];
        let (req, op) = insert_request(&ids, &vectors).unwrap();
        assert_eq!((req.count, req.dim), (3, 4));
        assert_eq!(req.ids, ids.as_ptr() as u64);
        assert_eq!(req.vectors, vectors.as_ptr() as u64);
        assert_eq!(op, Operation::Insert { count: 3, dim: 4 });
        assert_eq!(
            insert_request(&ids, &vectors[..11]).unwrap_err(),
            "11 values are not 3 rows of equal length"
        );
        assert_eq!(
            insert_request(&ids, &[]).unwrap_err(),
            "0 values are not 3 rows of equal length"
        );
        assert_eq!(
            insert_request(&[], &vectors).unwrap_err(),
            "a batch of 0 ids (a batch holds 1 to 1048576)"
        );
    }

    #[test]
    fn delete_requests_are_bounded_batches() {
        let ids = vec![1u64; abi::MAX_BATCH as usize + 1];
        let (req, op) = delete_request(&ids[..2]).unwrap();
        assert_eq!(
            (req.count, req.reserved, req.ids),
            (2, 0, ids.as_ptr() as u64)
        );
        assert_eq!(op, Operation::Delete { count: 2 });
        assert!(delete_request(&ids[..abi::MAX_BATCH as usize]).is_ok());
        assert_eq!(
            delete_request(&ids).unwrap_err(),
            "a batch of 1048577 ids (a batch holds 1 to 1048576)"
        );
    }

    #[test]
    fn search_shapes_are_whole_rows_within_limits() {
        assert_eq!(search_shape(12, 4, 10), Ok((3, 4)));
        assert_eq!(search_shape(4, 4, abi::MAX_K), Ok((1, 4)));
        assert_eq!(
            search_shape(13, 4, 10).unwrap_err(),
            "13 values are not rows of 4"
        );
        assert_eq!(
            search_shape(4, 0, 10).unwrap_err(),
            "4 values are not rows of 0"
        );
        assert_eq!(
            search_shape(0, 4, 10).unwrap_err(),
            "0 queries (a search takes 1 to 65536)"
        );
        assert_eq!(
            search_shape((abi::MAX_QUERIES as usize + 1) * 2, 2, 1).unwrap_err(),
            "65537 queries (a search takes 1 to 65536)"
        );
        assert_eq!(search_shape(4, 4, 0).unwrap_err(), "k = 0 (1 to 1024)");
        assert_eq!(
            search_shape(4, 4, 1025).unwrap_err(),
            "k = 1025 (1 to 1024)"
        );
    }

    fn hit(id: u64, flags: u32) -> Hit {
        Hit(abi::SearchHit {
            id,
            distance: id as f32 / 10.0,
            flags,
        })
    }

    #[test]
    fn results_are_rows_of_k_cut_to_the_kernels_counts() {
        let results = SearchResults {
            hits: vec![
                hit(1, 0),
                hit(2, abi::HIT_FILE),
                hit(3, 0),
                hit(0, 0),
                hit(0, 0),
                hit(0, 0),
                hit(7, 0),
                hit(8, 0),
                hit(9, 0),
            ],
            // The last count is a kernel bug: it must not read past the row.
            counts: vec![2, 0, 9],
            k: 3,
        };
        assert_eq!(results.len(), 3);
        assert!(!results.is_empty());
        let rows: Vec<Vec<u64>> = results
            .iter()
            .map(|row| row.iter().map(Hit::id).collect())
            .collect();
        assert_eq!(rows, [vec![1, 2], vec![], vec![7, 8, 9]]);
        assert_eq!(results.iter().len(), 3);
        assert!(results.get(3).is_none());
        let first = results.get(0).unwrap();
        assert!(!first[0].is_file() && first[1].is_file());
        assert_eq!(first[1].distance(), 0.2);
        assert_eq!(first[1].as_abi().flags, abi::HIT_FILE);
        assert_eq!((&results).into_iter().count(), 3);
    }

    #[test]
    fn hits_have_the_abi_layout() {
        assert_eq!(
            std::mem::size_of::<Hit>(),
            std::mem::size_of::<abi::SearchHit>()
        );
        assert_eq!(
            std::mem::align_of::<Hit>(),
            std::mem::align_of::<abi::SearchHit>()
        );
    }

    #[test]
    fn opening_elsewhere_fails_before_any_ioctl() {
        let dir = tempfile::tempdir().unwrap();
        let err = Collection::open(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a VexFS filesystem", dir.path().display())
        );
        let missing = PathBuf::from("/nonexistent/c");
        let err =
            Collection::create(&missing, &CollectionParams::new(3, crate::Metric::L2)).unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/c: no such file or directory");
    }
}
