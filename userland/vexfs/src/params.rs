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

/// How an HNSW collection's graph walk reads the vectors (one of
/// [`abi::quantize`]). Results carry exact float32 distances either way.
///
/// # Examples
///
/// ```
/// use vexfs::Quantize;
///
/// assert_eq!("sq8".parse::<Quantize>()?, Quantize::Sq8);
/// assert_eq!(Quantize::default().to_string(), "none");
/// assert_eq!(Quantize::from_abi(1), Some(Quantize::Sq8));
/// assert_eq!(Quantize::from_abi(2), None);
/// assert_eq!(
///     "pq".parse::<Quantize>().unwrap_err().to_string(),
///     "unknown quantize \"pq\" (known: none, sq8)"
/// );
/// # Ok::<(), vexfs::ParseNameError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Quantize {
    /// The walk computes float32 distances.
    #[default]
    None,
    /// The walk orders nodes by 8-bit scalar-quantized codes (one byte
    /// per dimension, a per-dimension offset and step the kernel learns
    /// from the vectors and widens as vectors arrive outside them); the
    /// candidates the beam kept are then re-ranked in float32, so the
    /// distances returned are exact.
    Sq8,
}

impl Quantize {
    /// Every option, in ABI order.
    pub const ALL: [Quantize; 2] = [Quantize::None, Quantize::Sq8];

    /// The ABI's number for this option (one of [`abi::quantize`]).
    pub fn to_abi(self) -> u32 {
        match self {
            Quantize::None => abi::quantize::NONE,
            Quantize::Sq8 => abi::quantize::SQ8,
        }
    }

    /// The option the ABI number `value` stands for, or `None` for a
    /// number this crate does not know (a newer module).
    pub fn from_abi(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.to_abi() == value)
    }

    /// Its name, as [`abi::quantize::NAMES`] spells it: `none`, `sq8`.
    pub fn name(self) -> &'static str {
        abi::quantize::NAMES[self.to_abi() as usize]
    }
}

impl fmt::Display for Quantize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quantize {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|q| q.name() == s)
            .ok_or_else(|| ParseNameError::new("quantize", s, &abi::quantize::NAMES))
    }
}

/// A name that is not one of the known metrics, index kinds or
/// quantizations.
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
/// use vexfs::{HnswParams, Quantize};
///
/// let tuned = HnswParams { m: Some(32), ..Default::default() };
/// assert_eq!(tuned.m_or_default(), 32);
/// assert_eq!(tuned.ef_construction_or_default(), 200);
/// assert_eq!(tuned.quantize, Quantize::None);
/// let sq8 = HnswParams::default().with_quantize(Quantize::Sq8);
/// assert_eq!(sq8.quantize, Quantize::Sq8);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HnswParams {
    /// Neighbours per node on the upper levels (twice as many on level 0);
    /// `None` for [`abi::HNSW_DEFAULT_M`].
    pub m: Option<u32>,
    /// Beam width while inserting; `None` for
    /// [`abi::HNSW_DEFAULT_EF_CONSTRUCTION`].
    pub ef_construction: Option<u32>,
    /// How the graph walk reads the vectors: float32, or 8-bit codes with
    /// a float32 re-rank. Only an HNSW collection has a walk to quantize,
    /// which is why the option lives here: a flat collection cannot be
    /// asked for one.
    pub quantize: Quantize,
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

    /// The same parameters with `quantize` instead.
    pub fn with_quantize(self, quantize: Quantize) -> Self {
        Self { quantize, ..self }
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
/// use vexfs::{abi, CollectionParams, HnswParams, Index, Metric, Quantize};
///
/// let params = CollectionParams::new(50, Metric::Cosine).with_index(Index::Hnsw(HnswParams {
///     m: Some(32),
///     ef_construction: None,
///     quantize: Quantize::Sq8,
/// }));
/// let raw = params.to_abi();
/// assert_eq!((raw.dim, raw.metric, raw.index), (50, abi::metric::COSINE, abi::index::HNSW));
/// assert_eq!((raw.m, raw.ef_construction), (32, 0)); // 0: the kernel's default
/// assert_eq!(raw.quantize, abi::quantize::SQ8);
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
        let (m, ef_construction, quantize) = match self.index {
            Index::Flat => (0, 0, abi::quantize::NONE),
            Index::Hnsw(h) => (
                h.m.unwrap_or(0),
                h.ef_construction.unwrap_or(0),
                h.quantize.to_abi(),
            ),
        };
        abi::CollectionParams {
            dim: self.dim,
            metric: self.metric.to_abi(),
            index: self.index.kind().to_abi(),
            m,
            ef_construction,
            quantize,
            reserved: [0; 2],
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
        for q in Quantize::ALL {
            assert_eq!(Quantize::from_abi(q.to_abi()), Some(q));
            assert_eq!(q.to_string().parse::<Quantize>(), Ok(q));
        }
        assert_eq!(Quantize::None.to_abi(), abi::quantize::NONE);
        assert_eq!(Quantize::Sq8.to_abi(), abi::quantize::SQ8);
        assert_eq!(Quantize::ALL.len(), abi::quantize::NAMES.len());
        assert_eq!(Quantize::from_abi(2), None);
        assert_eq!(
            "SQ8".parse::<Quantize>().unwrap_err().to_string(),
            "unknown quantize \"SQ8\" (known: none, sq8)"
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
                quantize: abi::quantize::NONE,
                reserved: [0; 2],
            }
        );
        let hnsw = CollectionParams::new(8, Metric::L2).with_index(Index::Hnsw(HnswParams {
            m: None,
            ef_construction: Some(400),
            ..Default::default()
        }));
        let raw = hnsw.to_abi();
        assert_eq!(
            (raw.index, raw.m, raw.ef_construction, raw.quantize),
            (abi::index::HNSW, 0, 400, abi::quantize::NONE)
        );
        let sq8 = CollectionParams::new(8, Metric::Dot).with_index(Index::Hnsw(
            HnswParams::default().with_quantize(Quantize::Sq8),
        ));
        assert_eq!(
            sq8.to_abi(),
            abi::CollectionParams {
                dim: 8,
                metric: abi::metric::DOT,
                index: abi::index::HNSW,
                m: 0,
                ef_construction: 0,
                quantize: abi::quantize::SQ8,
                reserved: [0; 2],
            }
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
