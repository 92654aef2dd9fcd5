//! The typed parameters of the requests: what a collection is made with
//! and how a search searches. They turn into the ABI's numbers here, once.

use std::fmt;
use std::str::FromStr;

use vexfs_abi as abi;

/// Distance metric of a collection. Smaller is nearer for all of them.
///
/// # Examples
///
/// ```
/// use vexfs::Metric;
///
/// let metric: Metric = "cosine".parse()?;
/// assert_eq!(metric, Metric::Cosine);
/// assert_eq!(metric.to_string(), "cosine");
/// assert_eq!(Metric::from_abi(metric.to_abi()), Some(metric));
/// assert_eq!(
///     "hamming".parse::<Metric>().unwrap_err().to_string(),
///     "unknown metric \"hamming\" (known: l2, cosine, dot)"
/// );
/// # Ok::<(), vexfs::ParseNameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// `1 - cos(a, b)`; 1 when either vector is zero.
    Cosine,
    /// `-(a . b)`, the negated inner product.
    Dot,
}

impl Metric {
    /// Every metric, in ABI order.
    pub const ALL: [Metric; 3] = [Metric::L2, Metric::Cosine, Metric::Dot];

    /// The ABI's number for this metric (one of [`abi::metric`]).
    pub fn to_abi(self) -> u32 {
        match self {
            Metric::L2 => abi::metric::L2,
            Metric::Cosine => abi::metric::COSINE,
            Metric::Dot => abi::metric::DOT,
        }
    }

    /// The metric the ABI number `value` stands for, or `None` for a
    /// number this crate does not know (a newer module).
    pub fn from_abi(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.to_abi() == value)
    }

    /// Its name, as [`abi::metric::NAMES`] spells it: `l2`, `cosine`, `dot`.
    pub fn name(self) -> &'static str {
        abi::metric::NAMES[self.to_abi() as usize]
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ParseNameError::new("metric", s, &abi::metric::NAMES))
    }
}

/// Kind of index of a collection, without its parameters (see [`Index`]).
///
/// # Examples
///
/// ```
/// use vexfs::IndexKind;
///
/// assert_eq!("hnsw".parse::<IndexKind>()?, IndexKind::Hnsw);
/// assert_eq!(IndexKind::from_abi(0), Some(IndexKind::Flat));
/// assert_eq!(IndexKind::from_abi(7), None);
/// # Ok::<(), vexfs::ParseNameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// No index: every search scans all vectors (exact).
    Flat,
    /// HNSW graph: approximate search.
    Hnsw,
}

impl IndexKind {
    /// Every index kind, in ABI order.
    pub const ALL: [IndexKind; 2] = [IndexKind::Flat, IndexKind::Hnsw];

    /// The ABI's number for this kind (one of [`abi::index`]).
    pub fn to_abi(self) -> u32 {
        match self {
            IndexKind::Flat => abi::index::FLAT,
            IndexKind::Hnsw => abi::index::HNSW,
        }
    }

    /// The kind the ABI number `value` stands for, or `None` for a number
    /// this crate does not know (a newer module).
    pub fn from_abi(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.to_abi() == value)
    }

    /// Its name, as [`abi::index::NAMES`] spells it: `flat`, `hnsw`.
    pub fn name(self) -> &'static str {
        abi::index::NAMES[self.to_abi() as usize]
    }
}

impl fmt::Display for IndexKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IndexKind {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ParseNameError::new("index", s, &abi::index::NAMES))
    }
}

/// A name that is not one of the known metrics or index kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseNameError {
    what: &'static str,
    given: String,
    known: &'static [&'static str],
}

impl ParseNameError {
    fn new(what: &'static str, given: &str, known: &'static [&'static str]) -> Self {
        Self {
            what,
            given: given.to_owned(),
            known,
        }
    }
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (known: {})",
            self.what,
            self.given,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for ParseNameError {}

/// The tuning of an HNSW index. `None` leaves a value to the kernel's
/// default; the kernel checks the ranges ([`abi::HNSW_M_RANGE`], 1 to
/// [`abi::HNSW_MAX_EF`]).
///
/// # Examples
///
/// ```
/// use vexfs::HnswParams;
///
/// let tuned = HnswParams { m: Some(32), ..Default::default() };
/// assert_eq!(tuned.m_or_default(), 32);
/// assert_eq!(tuned.ef_construction_or_default(), 200);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HnswParams {
    /// Neighbours per node on the upper levels (twice as many on level 0);
    /// `None` for [`abi::HNSW_DEFAULT_M`].
    pub m: Option<u32>,
    /// Beam width while inserting; `None` for
    /// [`abi::HNSW_DEFAULT_EF_CONSTRUCTION`].
    pub ef_construction: Option<u32>,
}

impl HnswParams {
    /// `M` as the kernel will use it.
    pub fn m_or_default(&self) -> u32 {
        self.m.unwrap_or(abi::HNSW_DEFAULT_M)
    }

    /// `ef_construction` as the kernel will use it.
    pub fn ef_construction_or_default(&self) -> u32 {
        self.ef_construction
            .unwrap_or(abi::HNSW_DEFAULT_EF_CONSTRUCTION)
    }
}

/// The index of a collection and its parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Index {
    /// No index: every search is exact.
    #[default]
    Flat,
    /// An HNSW graph: approximate search (exact on request, see
    /// [`SearchMode::Exact`]).
    Hnsw(HnswParams),
}

impl Index {
    /// The kind, without parameters.
    pub fn kind(&self) -> IndexKind {
        match self {
            Index::Flat => IndexKind::Flat,
            Index::Hnsw(_) => IndexKind::Hnsw,
        }
    }
}

/// What a collection is made with: [`Collection::create`](crate::Collection::create)'s
/// argument, the typed form of [`abi::CollectionParams`].
///
/// # Examples
///
/// ```
/// use vexfs::{abi, CollectionParams, HnswParams, Index, Metric};
///
/// let params = CollectionParams::new(50, Metric::Cosine)
///     .with_index(Index::Hnsw(HnswParams { m: Some(32), ef_construction: None }));
/// let raw = params.to_abi();
/// assert_eq!((raw.dim, raw.metric, raw.index), (50, abi::metric::COSINE, abi::index::HNSW));
/// assert_eq!((raw.m, raw.ef_construction), (32, 0)); // 0: the kernel's default
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CollectionParams {
    /// Dimension of every vector, 1 to [`abi::MAX_DIM`].
    pub dim: u32,
    /// How distances are measured.
    pub metric: Metric,
    /// The index and its tuning.
    pub index: Index,
}

impl CollectionParams {
    /// A flat collection of `dim`-dimensional vectors compared by `metric`.
    pub fn new(dim: u32, metric: Metric) -> Self {
        Self {
            dim,
            metric,
            index: Index::Flat,
        }
    }

    /// The same parameters with `index` instead.
    pub fn with_index(self, index: Index) -> Self {
        Self { index, ..self }
    }

    /// The request structure of `VEXFS_IOC_CREATE`; 0 stands for the
    /// kernel's default of an HNSW value left `None`.
    pub fn to_abi(&self) -> abi::CollectionParams {
        let (m, ef_construction) = match self.index {
            Index::Flat => (0, 0),
            Index::Hnsw(h) => (h.m.unwrap_or(0), h.ef_construction.unwrap_or(0)),
        };
        abi::CollectionParams {
            dim: self.dim,
            metric: self.metric.to_abi(),
            index: self.index.kind().to_abi(),
            m,
            ef_construction,
            reserved: [0; 3],
        }
    }
}

/// How a search searches.
///
/// # Examples
///
/// ```
/// use vexfs::SearchMode;
///
/// assert_eq!(SearchMode::default(), SearchMode::Default);
/// let wide = SearchMode::Ef(256); // HNSW: slower, nearer to exact
/// # let _ = wide;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SearchMode {
    /// The collection's own way: exact on a flat collection, HNSW with
    /// [`abi::HNSW_DEFAULT_EF`] on an HNSW one.
    #[default]
    Default,
    /// HNSW with this beam width, at most [`abi::HNSW_MAX_EF`] (raised to
    /// `k` when smaller; 0 is the default). A flat collection ignores it.
    Ef(u32),
    /// Scan every vector (exact k-NN), even on an HNSW collection.
    Exact,
}

impl SearchMode {
    /// The request's `(ef, flags)`.
    pub(crate) fn ef_and_flags(self) -> (u32, u32) {
        match self {
            SearchMode::Default => (0, 0),
            SearchMode::Ef(ef) => (ef, 0),
            SearchMode::Exact => (0, abi::SEARCH_EXACT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_abi() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_abi(m.to_abi()), Some(m));
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
        }
        assert_eq!(Metric::L2.to_abi(), abi::metric::L2);
        assert_eq!(Metric::Cosine.to_abi(), abi::metric::COSINE);
        assert_eq!(Metric::Dot.to_abi(), abi::metric::DOT);
        assert_eq!(Metric::from_abi(3), None);
        for k in IndexKind::ALL {
            assert_eq!(IndexKind::from_abi(k.to_abi()), Some(k));
            assert_eq!(k.to_string().parse::<IndexKind>(), Ok(k));
        }
        assert_eq!(IndexKind::Flat.to_abi(), abi::index::FLAT);
        assert_eq!(IndexKind::Hnsw.to_abi(), abi::index::HNSW);
        assert_eq!(
            "ivf".parse::<IndexKind>().unwrap_err().to_string(),
            "unknown index \"ivf\" (known: flat, hnsw)"
        );
    }

    #[test]
    fn create_requests_carry_zero_for_defaults() {
        let flat = CollectionParams::new(8, Metric::Dot).to_abi();
        assert_eq!(
            flat,
            abi::CollectionParams {
                dim: 8,
                metric: abi::metric::DOT,
                index: abi::index::FLAT,
                m: 0,
                ef_construction: 0,
                reserved: [0; 3],
            }
        );
        let hnsw = CollectionParams::new(8, Metric::L2).with_index(Index::Hnsw(HnswParams {
            m: None,
            ef_construction: Some(400),
        }));
        let raw = hnsw.to_abi();
        assert_eq!(
            (raw.index, raw.m, raw.ef_construction),
            (abi::index::HNSW, 0, 400)
        );
        assert_eq!(hnsw.index.kind(), IndexKind::Hnsw);
        let defaults = HnswParams::default();
        assert_eq!(
            (
                defaults.m_or_default(),
                defaults.ef_construction_or_default()
            ),
            (abi::HNSW_DEFAULT_M, abi::HNSW_DEFAULT_EF_CONSTRUCTION)
        );
    }

    #[test]
    fn search_modes_set_ef_and_flags() {
        assert_eq!(SearchMode::Default.ef_and_flags(), (0, 0));
        assert_eq!(SearchMode::Ef(32).ef_and_flags(), (32, 0));
        assert_eq!(SearchMode::Exact.ef_and_flags(), (0, abi::SEARCH_EXACT));
    }
}
