//! The vector collection commands: check arguments, read input, call
//! VexFS through the `vexfs` crate, print. Everything a user can get wrong
//! is checked here before the first call that changes anything.

use std::collections::HashSet;
use std::fs::{self, DirBuilder};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{bail, Result};
use clap::ValueEnum;
use vexfs::{
    abi, Collection, CollectionFile, CollectionParams, Errno, HnswParams, Index, SearchFilter,
    SearchMode,
};

use crate::batch::{self, span, Batch};
use crate::embed;
use crate::input::{Rank, Source};
use crate::names;
use crate::progress::{Mode, Progress};
use crate::report;

/// Distance metric of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// 1 - cosine similarity.
    Cosine,
    /// Negated inner product.
    Dot,
}

impl Metric {
    fn lib(self) -> vexfs::Metric {
        match self {
            Metric::L2 => vexfs::Metric::L2,
            Metric::Cosine => vexfs::Metric::Cosine,
            Metric::Dot => vexfs::Metric::Dot,
        }
    }
}

/// Index of a collection, as `--index` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IndexKind {
    /// No index: every search scans all vectors (exact).
    Flat,
    /// HNSW graph: approximate search.
    Hnsw,
}

/// How an HNSW collection's graph walk reads the vectors, as `--quantize`
/// names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Quantize {
    /// float32 distances throughout.
    None,
    /// 8-bit scalar-quantized codes (one byte per dimension), candidates
    /// re-ranked in float32: results carry exact distances.
    Sq8,
}

impl Quantize {
    fn lib(self) -> vexfs::Quantize {
        match self {
            Quantize::None => vexfs::Quantize::None,
            Quantize::Sq8 => vexfs::Quantize::Sq8,
        }
    }
}

/// The index flags of `vexctl create`.
#[derive(Clone, Copy, Debug, Default)]
pub struct IndexArgs {
    /// `--index`; flat when absent.
    pub kind: Option<IndexKind>,
    /// `--m`.
    pub m: Option<u32>,
    /// `--ef-construction`.
    pub ef_construction: Option<u32>,
    /// `--quantize`; none when absent.
    pub quantize: Option<Quantize>,
}

impl IndexArgs {
    /// The checked index part of a CREATE (`None`: the kernel's default).
    fn params(&self) -> Result<Index> {
        let kind = self.kind.unwrap_or(IndexKind::Flat);
        let quantize = self.quantize.map_or(vexfs::Quantize::None, Quantize::lib);
        if kind != IndexKind::Hnsw {
            // `--quantize none` is what a flat collection is: no refusal.
            let given: Vec<&str> = [
                self.m.map(|_| "--m"),
                self.ef_construction.map(|_| "--ef-construction"),
                (quantize == vexfs::Quantize::Sq8).then_some("--quantize sq8"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !given.is_empty() {
                bail!(
                    "{} {} to HNSW collections only: add --index hnsw \
                     (a flat collection has no index to tune)",
                    given.join(" and "),
                    if given.len() == 1 { "applies" } else { "apply" }
                );
            }
            return Ok(Index::Flat);
        }
        let (m_min, m_max) = abi::HNSW_M_RANGE;
        if let Some(m) = self.m {
            check_between("--m", m.into(), m_min, m_max, "HNSW M")?;
        }
        if let Some(ef) = self.ef_construction {
            check_range(
                "--ef-construction",
                ef.into(),
                abi::HNSW_MAX_EF,
                "ef_construction",
            )?;
        }
        Ok(Index::Hnsw(HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            quantize,
        }))
    }
}

/// How `vexctl search` searches, from `--ef` and `--exact` (which clap
/// keeps apart).
pub fn search_mode(ef: Option<u32>, exact: bool) -> SearchMode {
    match (ef, exact) {
        (_, true) => SearchMode::Exact,
        (Some(ef), false) => SearchMode::Ef(ef),
        (None, false) => SearchMode::Default,
    }
}

/// Refuses a search's `-k` or `--ef` out of range.
fn check_k_and_ef(k: u32, mode: SearchMode) -> Result<()> {
    check_range("-k", k.into(), abi::MAX_K, "k")?;
    if let SearchMode::Ef(ef) = mode {
        check_range("--ef", ef.into(), abi::HNSW_MAX_EF, "ef")?;
    }
    Ok(())
}

/// Refuses `value` outside 1..=max with a message naming the flag.
fn check_range(flag: &str, value: u64, max: u32, what: &str) -> Result<()> {
    check_between(flag, value, 1, max, what)
}

/// Refuses `value` outside min..=max with a message naming the flag.
fn check_between(flag: &str, value: u64, min: u32, max: u32, what: &str) -> Result<()> {
    if value < u64::from(min) || value > u64::from(max) {
        bail!("{flag} {value} is out of range: {what} is {min} to {max}");
    }
    Ok(())
}

/// Refuses input whose dimension is not the collection's.
fn check_dim(dir: &Path, info: &abi::CollectionInfo, source: &Source, dim: usize) -> Result<()> {
    if dim != info.dim as usize {
        bail!(
            "dimension mismatch: {} has dim {}, {} has {dim}",
            dir.display(),
            info.dim,
            source.name()
        );
    }
    Ok(())
}

/// "1 vector", "2 vectors".
fn vectors(n: usize) -> String {
    format!("{n} vector{}", if n == 1 { "" } else { "s" })
}

/// What `create` says it made: "index flat" or "index hnsw, M 16,
/// ef_construction 200" (the kernel's defaults where none was given),
/// with ", quantize sq8" for a quantized walk.
fn index_text(index: &Index) -> String {
    match index {
        Index::Hnsw(h) => format!(
            "index hnsw, M {}, ef_construction {}{}",
            h.m_or_default(),
            h.ef_construction_or_default(),
            match h.quantize {
                vexfs::Quantize::None => String::new(),
                q => format!(", quantize {q}"),
            }
        ),
        Index::Flat => format!("index {}", index.kind()),
    }
}

/// `vexctl create`: mkdir (if needed), then make it a collection. A
/// directory made here is removed again if that fails, so a failed create
/// leaves nothing behind.
pub fn create(dir: &Path, dim: u32, metric: Metric, index: &IndexArgs) -> Result<()> {
    check_range(
        "--dim",
        dim.into(),
        abi::MAX_DIM,
        "a collection's dimension",
    )?;
    let index = index.params()?;
    let made = match DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => bail!(
            "{}: cannot create directory: {}",
            dir.display(),
            vexfs::io_error_message(&e)
        ),
    };
    let params = CollectionParams::new(dim, metric.lib()).with_index(index);
    if let Err(e) = Collection::create(dir, &params) {
        if made {
            let _ = fs::remove_dir(dir);
        }
        return Err(e.into());
    }
    println!(
        "created collection {} (dim {dim}, metric {}, {})",
        dir.display(),
        metric.lib(),
        index_text(&index)
    );
    Ok(())
}

/// `vexctl info`.
pub fn info(dir: &Path, json: bool) -> Result<()> {
    let info = Collection::open(dir)?.info()?;
    crate::print(json, &report::Info::new(dir, &info), report::Info::table)
}

/// What a failed batch leaves behind, for the error line.
fn batch_failure(err: &vexfs::Error, failed: &Batch, total: usize, start_id: u64) -> String {
    let which = format!(
        "batch {} of {total} (rows {}, ids {})",
        failed.index + 1,
        span(failed.rows.start as u64, failed.rows.end as u64 - 1),
        span(failed.first_id, failed.last_id())
    );
    if failed.rows.start == 0 {
        format!("{err}; {which} failed, nothing was inserted")
    } else {
        let done = failed.rows.start as u64;
        format!(
            "{err}; {which} failed; rows {} (ids {}) were inserted before it",
            span(0, done - 1),
            span(start_id, start_id + done - 1)
        )
    }
}

/// `vexctl insert`: row `r` becomes id `start_id + r`, sent in batches of
/// `batch` rows, each all or nothing. On a terminal, a bar on standard
/// error follows the batches; `progress` reports each batch there in a
/// line when there is no bar.
pub fn insert(
    dir: &Path,
    source: &Source,
    start_id: u64,
    batch_rows: u32,
    progress: bool,
) -> Result<()> {
    check_range(
        "--batch",
        batch_rows.into(),
        abi::MAX_BATCH,
        "the batch size",
    )?;
    let coll = Collection::open(dir)?;
    let info = coll.info()?;
    let input = source.load(Rank::Matrix)?;
    check_dim(dir, &info, source, input.dim)?;
    let batches =
        batch::plan(input.rows, batch_rows as usize, start_id).map_err(anyhow::Error::msg)?;

    let dim = input.dim;
    let shown = Progress::new(
        "inserted",
        "vectors",
        input.rows as u64,
        batches.len(),
        false,
        progress,
    );
    for b in &batches {
        let values = &input.data[b.rows.start * dim..b.rows.end * dim];
        if let Err(e) = coll.insert(&b.ids(), values) {
            shown.abandon();
            bail!(batch_failure(&e, b, batches.len(), start_id));
        }
        shown.advance(b.rows.len() as u64);
    }
    shown.finish();
    println!(
        "inserted {} into {} (ids {})",
        vectors(input.rows),
        dir.display(),
        span(start_id, start_id + (input.rows as u64 - 1))
    );
    Ok(())
}

/// Refuses `--ef` on a collection without an index.
fn check_mode(dir: &Path, info: &abi::CollectionInfo, mode: SearchMode) -> Result<()> {
    if matches!(mode, SearchMode::Ef(_)) && info.index == abi::index::FLAT {
        bail!(
            "{}: --ef applies to HNSW collections only; this collection has no index \
             (index flat: every search is exact)",
            dir.display()
        );
    }
    Ok(())
}

/// Queries per SEARCH while a progress bar is drawn, so that it moves.
const QUERIES_PER_STEP: usize = 1024;

/// Queries per SEARCH: all of them (up to [`abi::MAX_QUERIES`]), or
/// [`QUERIES_PER_STEP`] while a progress bar follows them.
fn queries_per_call(mode: Mode) -> usize {
    if mode == Mode::Bar {
        QUERIES_PER_STEP
    } else {
        abi::MAX_QUERIES as usize
    }
}

/// `vexctl search`: all queries of the input in one SEARCH (one per
/// [`abi::MAX_QUERIES`] queries), file hits named by one walk of the
/// collection. On a terminal and without `json`, more than
/// [`QUERIES_PER_STEP`] queries are sent that many at a time, with a
/// progress bar on standard error.
pub fn search(
    dir: &Path,
    source: &Source,
    k: u32,
    mode: SearchMode,
    filter: &SearchFilter,
    json: bool,
) -> Result<()> {
    check_k_and_ef(k, mode)?;
    let coll = Collection::open(dir)?;
    let info = coll.info()?;
    check_mode(dir, &info, mode)?;
    let queries = source.load(Rank::MatrixOrRow)?;
    check_dim(dir, &info, source, queries.dim)?;

    let shown = Progress::new(
        "searched",
        "queries",
        queries.rows as u64,
        queries.rows.div_ceil(QUERIES_PER_STEP),
        json,
        false,
    );
    let per_call_rows = queries_per_call(shown.mode());
    let mut per_call = Vec::new();
    for chunk in queries.data.chunks(per_call_rows * queries.dim) {
        match coll.search_filtered(chunk, queries.dim, k, mode, filter) {
            Ok(results) => per_call.push(results),
            Err(e) => {
                shown.abandon();
                return Err(e.into());
            }
        }
        shown.advance((chunk.len() / queries.dim) as u64);
    }
    shown.finish();
    let per_query = || per_call.iter().flat_map(|results| results.iter());
    let wanted: HashSet<u64> = per_query().flatten().filter_map(|h| h.ino()).collect();
    let names = names::resolve(dir, &wanted);

    print_results(
        json,
        per_query()
            .enumerate()
            .map(|(i, hits)| report::QueryResult::new(i, hits, &names)),
    )
}

/// Prints each query's results: a JSON line each, or tables a blank line
/// apart.
fn print_results<R: report::Printed>(json: bool, results: impl Iterator<Item = R>) -> Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    for (i, result) in results.enumerate() {
        if json {
            writeln!(out, "{}", result.json_line())?;
        } else {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(out, "{}", result.table())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `vexctl search --text`: the question embedded with `vexctl embed`'s
/// model, one search, and per file found its path, distance and the first
/// line of its nearest chunk.
pub fn search_text(
    dir: &Path,
    questions: &[String],
    k: u32,
    mode: SearchMode,
    filter: &SearchFilter,
    json: bool,
) -> Result<()> {
    check_k_and_ef(k, mode)?;
    if questions.iter().any(|q| q.trim().is_empty()) {
        bail!("--text: an empty question");
    }
    let coll = Collection::open(dir)?;
    let info = coll.info()?;
    check_mode(dir, &info, mode)?;
    if info.dim as usize != vexfs_embed::DIM {
        bail!(
            "{}: has dimension {}; --text searches collections of the model's {}-d vectors \
             (made by `vexctl embed`)",
            dir.display(),
            info.dim,
            vexfs_embed::DIM
        );
    }
    let model = embed::load_model(embed::ModelName::Minilm, None)?;
    let texts: Vec<&str> = questions.iter().map(String::as_str).collect();
    let queries: Vec<f32> = embed::query_vectors(&model, &texts)?;
    let results = coll.search_filtered(&queries, vexfs_embed::DIM, k, mode, filter)?;
    let wanted: HashSet<u64> = results.iter().flatten().filter_map(|h| h.ino()).collect();
    let names = names::resolve(dir, &wanted);
    let mut lines = embed::ChunkLines::new(&model);
    let mut first_line = |ino, part| lines.first_line(&dir.join(names.get(&ino)?), part);
    print_results(
        json,
        questions
            .iter()
            .zip(results.iter())
            .map(|(question, hits)| {
                report::TextResult::new(question, hits, &names, &mut first_line)
            }),
    )
}

/// `vexctl get`.
pub fn get(dir: &Path, id: u64, json: bool) -> Result<()> {
    let coll = Collection::open(dir)?;
    let info = coll.info()?;
    let stored = coll.get(id, info.dim as usize)?;
    let name = if stored.is_file {
        names::resolve(dir, &HashSet::from([id]))
            .remove(&id)
            .map(|p| p.to_string_lossy().into_owned())
    } else {
        None
    };
    let v = report::Vector {
        id,
        file: stored.is_file,
        vector: stored.values,
        name,
    };
    crate::print(json, &v, report::Vector::text)
}

/// Ids without repeats, first occurrence kept.
fn unique(ids: &[u64]) -> Vec<u64> {
    let mut seen = HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// `vexctl delete`: one DELETE with all ids, all or nothing.
pub fn delete(dir: &Path, ids: &[u64]) -> Result<()> {
    let ids = unique(ids);
    if ids.len() > abi::MAX_BATCH as usize {
        bail!(
            "{} ids: at most {} can be deleted at once",
            ids.len(),
            abi::MAX_BATCH
        );
    }
    let coll = Collection::open(dir)?;
    match coll.delete(&ids) {
        Ok(()) => {
            println!("deleted {}", vectors(ids.len()));
            Ok(())
        }
        Err(e) if e.errno() == Some(Errno::ENOENT) => match coll.explain_missing(&ids) {
            Some(why) => bail!(why),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// `vexctl attach`: one vector for one regular file.
pub fn attach(file: &Path, source: &Source) -> Result<()> {
    let handle = CollectionFile::open(file)?;
    let v = source.load(Rank::MatrixOrRow)?;
    if v.rows > abi::MAX_FILE_PARTS as usize {
        bail!(
            "{}: holds {} rows, a file carries 1 to {} vectors",
            source.name(),
            v.rows,
            abi::MAX_FILE_PARTS
        );
    }
    // The kernel answers a wrong dimension with a bare EINVAL: name both
    // sides when the owning collection's INFO can be read. If it cannot,
    // ATTACH itself says why.
    if let Some((dir, coll)) = handle.owner() {
        if let Ok(info) = coll.info() {
            check_dim(&dir, &info, source, v.dim)?;
        }
    }
    let ino = handle.attach_parts(&v.data, v.dim)?;
    if v.rows == 1 {
        println!(
            "attached a {}-dimensional vector to {} (id = inode {ino})",
            v.dim,
            file.display()
        );
    } else {
        println!(
            "attached {} {}-dimensional vectors to {} (ids: inode {ino} + part << {})",
            v.rows,
            v.dim,
            file.display(),
            abi::FILE_PART_SHIFT
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn metrics_map_to_the_library() {
        assert_eq!(Metric::L2.lib(), vexfs::Metric::L2);
        assert_eq!(Metric::Cosine.lib(), vexfs::Metric::Cosine);
        assert_eq!(Metric::Dot.lib(), vexfs::Metric::Dot);
        for m in Metric::value_variants() {
            let name = m.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(m.lib().name(), name);
        }
    }

    #[test]
    fn index_kinds_are_named_as_the_library_names_them() {
        let ours = IndexKind::value_variants();
        assert_eq!(ours.len(), vexfs::IndexKind::ALL.len());
        for (kind, lib) in ours.iter().zip(vexfs::IndexKind::ALL) {
            let name = kind.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(lib.name(), name);
        }
        assert_eq!(
            IndexArgs::default().params().unwrap().kind(),
            vexfs::IndexKind::Flat
        );
    }

    #[test]
    fn quantize_options_are_named_as_the_library_names_them() {
        let ours = Quantize::value_variants();
        assert_eq!(ours.len(), vexfs::Quantize::ALL.len());
        for (q, lib) in ours.iter().zip(vexfs::Quantize::ALL) {
            let name = q.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(lib.name(), name);
            assert_eq!(q.lib(), lib);
        }
    }

    fn hnsw(m: Option<u32>, ef_construction: Option<u32>) -> IndexArgs {
        IndexArgs {
            kind: Some(IndexKind::Hnsw),
            m,
            ef_construction,
            quantize: None,
        }
    }

    #[test]
    fn index_flags_are_checked() {
        let err = |a: IndexArgs| a.params().unwrap_err().to_string();
        let tuned = |m, ef_construction| {
            Index::Hnsw(HnswParams {
                m,
                ef_construction,
                ..Default::default()
            })
        };
        assert_eq!(IndexArgs::default().params().unwrap(), Index::Flat);
        assert_eq!(hnsw(None, None).params().unwrap(), tuned(None, None));
        assert_eq!(
            hnsw(Some(2), Some(4096)).params().unwrap(),
            tuned(Some(2), Some(4096))
        );
        assert_eq!(
            hnsw(Some(127), Some(1)).params().unwrap(),
            tuned(Some(127), Some(1))
        );
        assert_eq!(
            err(hnsw(Some(1), None)),
            "--m 1 is out of range: HNSW M is 2 to 127"
        );
        assert_eq!(
            err(hnsw(Some(128), None)),
            "--m 128 is out of range: HNSW M is 2 to 127"
        );
        assert_eq!(
            err(hnsw(None, Some(0))),
            "--ef-construction 0 is out of range: ef_construction is 1 to 4096"
        );
        assert_eq!(
            err(hnsw(None, Some(4097))),
            "--ef-construction 4097 is out of range: ef_construction is 1 to 4096"
        );
        let flat_m = IndexArgs {
            m: Some(16),
            ..Default::default()
        };
        assert_eq!(
            err(flat_m),
            "--m applies to HNSW collections only: add --index hnsw \
             (a flat collection has no index to tune)"
        );
        let flat_both = IndexArgs {
            kind: Some(IndexKind::Flat),
            m: Some(16),
            ef_construction: Some(100),
            quantize: None,
        };
        assert!(err(flat_both).starts_with("--m and --ef-construction apply to HNSW"));

        let sq8 = IndexArgs {
            quantize: Some(Quantize::Sq8),
            ..hnsw(None, None)
        };
        assert_eq!(
            sq8.params().unwrap(),
            Index::Hnsw(HnswParams::default().with_quantize(vexfs::Quantize::Sq8))
        );
        let none = IndexArgs {
            quantize: Some(Quantize::None),
            ..hnsw(Some(8), None)
        };
        assert_eq!(none.params().unwrap(), tuned(Some(8), None));
        for kind in [None, Some(IndexKind::Flat)] {
            let flat_sq8 = IndexArgs {
                kind,
                quantize: Some(Quantize::Sq8),
                ..Default::default()
            };
            assert_eq!(
                err(flat_sq8),
                "--quantize sq8 applies to HNSW collections only: add --index hnsw \
                 (a flat collection has no index to tune)"
            );
            let flat_none = IndexArgs {
                kind,
                quantize: Some(Quantize::None),
                ..Default::default()
            };
            assert_eq!(flat_none.params().unwrap(), Index::Flat);
        }
        let flat_m_sq8 = IndexArgs {
            m: Some(16),
            quantize: Some(Quantize::Sq8),
            ..Default::default()
        };
        assert!(err(flat_m_sq8).starts_with("--m and --quantize sq8 apply to HNSW"));
    }

    #[test]
    fn create_names_the_index_it_made() {
        assert_eq!(index_text(&Index::Flat), "index flat");
        assert_eq!(
            index_text(&Index::Hnsw(HnswParams::default())),
            "index hnsw, M 16, ef_construction 200"
        );
        assert_eq!(
            index_text(&Index::Hnsw(HnswParams {
                m: Some(8),
                ef_construction: Some(50),
                quantize: vexfs::Quantize::None,
            })),
            "index hnsw, M 8, ef_construction 50"
        );
        assert_eq!(
            index_text(&Index::Hnsw(
                HnswParams::default().with_quantize(vexfs::Quantize::Sq8)
            )),
            "index hnsw, M 16, ef_construction 200, quantize sq8"
        );
    }

    #[test]
    fn search_modes() {
        assert_eq!(search_mode(None, false), SearchMode::Default);
        assert_eq!(search_mode(Some(32), false), SearchMode::Ef(32));
        assert_eq!(search_mode(None, true), SearchMode::Exact);
        assert_eq!(search_mode(Some(32), true), SearchMode::Exact);
        let flat = abi::CollectionInfo::default();
        let hnsw = abi::CollectionInfo {
            index: abi::index::HNSW,
            ..Default::default()
        };
        let dir = Path::new("DIR");
        assert!(check_mode(dir, &hnsw, SearchMode::Ef(10)).is_ok());
        assert!(check_mode(dir, &flat, SearchMode::Exact).is_ok());
        assert!(check_mode(dir, &flat, SearchMode::Default).is_ok());
        assert_eq!(
            check_mode(dir, &flat, SearchMode::Ef(10))
                .unwrap_err()
                .to_string(),
            "DIR: --ef applies to HNSW collections only; this collection has no index \
             (index flat: every search is exact)"
        );
    }

    #[test]
    fn ranges_are_checked_with_the_flag_named() {
        assert!(check_range("--dim", 1, abi::MAX_DIM, "x").is_ok());
        assert!(check_range("--dim", 4096, abi::MAX_DIM, "x").is_ok());
        assert_eq!(
            check_range("--dim", 0, abi::MAX_DIM, "a collection's dimension")
                .unwrap_err()
                .to_string(),
            "--dim 0 is out of range: a collection's dimension is 1 to 4096"
        );
        assert_eq!(
            check_range("-k", 1025, abi::MAX_K, "k")
                .unwrap_err()
                .to_string(),
            "-k 1025 is out of range: k is 1 to 1024"
        );
    }

    #[test]
    fn bad_arguments_fail_before_any_device_access() {
        let dir = Path::new("/nonexistent/c");
        let src = Source::Literal("1".into());
        let err = |r: Result<()>| r.unwrap_err().to_string();
        let flat = IndexArgs::default();
        assert!(err(create(dir, 0, Metric::L2, &flat)).starts_with("--dim 0 is out of range"));
        assert!(err(create(dir, 4097, Metric::L2, &flat)).starts_with("--dim 4097 is out of range"));
        assert!(err(create(dir, 8, Metric::L2, &hnsw(Some(1), None))).starts_with("--m 1"));
        let flat_ef = IndexArgs {
            ef_construction: Some(10),
            ..Default::default()
        };
        assert!(err(create(dir, 8, Metric::L2, &flat_ef)).starts_with("--ef-construction applies"));
        let flat_sq8 = IndexArgs {
            quantize: Some(Quantize::Sq8),
            ..Default::default()
        };
        assert!(err(create(dir, 8, Metric::L2, &flat_sq8)).starts_with("--quantize sq8 applies"));
        assert!(err(insert(dir, &src, 0, 0, false)).starts_with("--batch 0 is out of range"));
        assert!(err(insert(dir, &src, 0, abi::MAX_BATCH + 1, false)).starts_with("--batch 1048577"));
        let plain = SearchMode::Default;
        let none = SearchFilter::new();
        assert!(err(search(dir, &src, 0, plain, &none, false)).starts_with("-k 0 is out of range"));
        assert!(
            err(search(dir, &src, 1025, plain, &none, true)).starts_with("-k 1025 is out of range")
        );
        assert_eq!(
            err(search(dir, &src, 10, SearchMode::Ef(4097), &none, false)),
            "--ef 4097 is out of range: ef is 1 to 4096"
        );
        assert!(err(search(dir, &src, 10, SearchMode::Ef(0), &none, false))
            .starts_with("--ef 0 is out"));
    }

    #[test]
    fn a_failed_create_removes_the_directory_it_made() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("coll");
        let flat = IndexArgs::default();
        let msg = create(&dir, 8, Metric::Cosine, &flat)
            .unwrap_err()
            .to_string();
        assert_eq!(msg, format!("{}: not a VexFS filesystem", dir.display()));
        assert!(!dir.exists());
        // An existing directory is left alone.
        fs::create_dir(&dir).unwrap();
        assert!(create(&dir, 8, Metric::Cosine, &flat).is_err());
        assert!(dir.is_dir());
        // A missing parent is reported, not created.
        let deep = tmp.path().join("a/b");
        assert_eq!(
            create(&deep, 8, Metric::L2, &flat).unwrap_err().to_string(),
            format!(
                "{}: cannot create directory: no such file or directory",
                deep.display()
            )
        );
    }

    #[test]
    fn dimension_mismatch_names_both_sides() {
        let info = abi::CollectionInfo {
            dim: 50,
            ..Default::default()
        };
        let src = Source::Npy(PathBuf::from("F.npy"));
        assert!(check_dim(Path::new("DIR"), &info, &src, 50).is_ok());
        assert_eq!(
            check_dim(Path::new("DIR"), &info, &src, 49)
                .unwrap_err()
                .to_string(),
            "dimension mismatch: DIR has dim 50, F.npy has 49"
        );
    }

    #[test]
    fn searches_are_cut_small_only_under_a_bar() {
        assert_eq!(queries_per_call(Mode::Bar), 1024);
        assert_eq!(queries_per_call(Mode::Quiet), 65536);
        assert_eq!(queries_per_call(Mode::Lines), 65536);
    }

    fn enospc() -> vexfs::Error {
        vexfs::Error::Ioctl {
            path: PathBuf::from("DIR"),
            operation: vexfs::Operation::Insert { count: 10, dim: 4 },
            errno: Errno::ENOSPC,
        }
    }

    #[test]
    fn batch_failures_say_what_was_inserted() {
        let batches = batch::plan(25, 10, 100).unwrap();
        assert_eq!(
            batch_failure(&enospc(), &batches[0], 3, 100),
            "DIR: vector memory limit reached (module parameter max_vector_mib); \
             batch 1 of 3 (rows 0..9, ids 100..109) failed, nothing was inserted"
        );
        assert_eq!(
            batch_failure(&enospc(), &batches[2], 3, 100),
            "DIR: vector memory limit reached (module parameter max_vector_mib); \
             batch 3 of 3 (rows 20..24, ids 120..124) failed; \
             rows 0..19 (ids 100..119) were inserted before it"
        );
    }

    #[test]
    fn delete_dedups_ids() {
        assert_eq!(unique(&[3, 1, 3, 2, 1]), [3, 1, 2]);
        assert_eq!(vectors(1), "1 vector");
        assert_eq!(vectors(400_000), "400000 vectors");
    }
}
