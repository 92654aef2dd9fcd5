// SPDX-License-Identifier: GPL-2.0
//! Native benchmark of exact k-NN search (issue 15): the kernel's blocked
//! scan next to its former per-row scan, faiss `IndexFlat` and a numpy
//! brute force, one thread, k = 10, at nq = 1, 10, 100, 1000 queries per
//! call, on GloVe 6B 50-d (400,000 rows; cosine and L2), on a synthetic
//! 768-d set (seeded Gaussian; dot and L2) and, with `--sets ...,minilm-384`,
//! on 40,000 MiniLM sentence embeddings (`scripts/make-minilm-set`; cosine
//! and L2).
//!
//! The VexFS side runs the kernel's algorithm (kmod/collection.rs
//! `Collection::scan`) on the same `vexfs-simd` kernels the module
//! compiles: rows in 16 KiB chunks, queries in groups of at most 32 (4,096
//! result slots, 16,384 query values, 2^27 multiply-adds of scan unless
//! that leaves fewer than 8 queries), FPU sections of at most
//! `BLOCK_MAC_BUDGET` multiply-adds and 4,096 distances, and per query a
//! threshold test on the integer distance key before the heap. The
//! per-row rows are the scan before this change: one query at a time,
//! sections of 32,768 values, one distance call per chunk run.
//!
//! The "2 CPUs" column is the wall-clock speed-up of the blocked search
//! when two threads share each group's scan as the kernel shares it with a
//! helper CPU (`kmod/vfs/share.rs`: the rows in pieces taken in turn, each
//! thread into its own heaps, merged at the end); its answers must equal
//! one thread's.
//!
//! faiss and numpy run in the venv's Python (`exact_peers.py`), on the
//! same rows and queries, with one OpenMP/BLAS thread: cosine is
//! `IndexFlatIP` on unit-normalised copies (the usual way to do cosine in
//! faiss), dot `IndexFlatIP`, L2 `IndexFlatL2`. Every figure is queries/s
//! from the CPU time of the searching thread (process CPU time for the
//! Python peers, which run one thread), best of `--repeats` calls; each
//! peer's top-10 is compared with VexFS's (recall@10 of VexFS against the
//! peer, which differs only on ties and last-bit rounding).
//!
//! usage: exact [--data GLOVE.npy] [--python PY] [--repeats R] [--nq 1,10,100,1000]
//!        [--synthetic-rows N] [--sets glove-50,synthetic-768,minilm-384]
//!        [--minilm MINILM.npy] [--json OUT]

use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use vexfs_hnsw::read_npy_f32;
use vexfs_simd::{self as simd, Metric, NormSq, Path};

const K: usize = 10;
/// The kernel's constants (kmod/collection.rs).
const CHUNK_FLOATS: usize = 4096;
const FPU_FLOAT_BUDGET: usize = 32768;
const BLOCK_MAC_BUDGET: usize = 4 * FPU_FLOAT_BUDGET;
const MAX_GROUP: usize = 32;
const GROUP_CANDIDATES: usize = 4096;
const GROUP_FLOATS: usize = 16384;
const GROUP_SCAN_MACS: usize = 1 << 27;
const MIN_SCAN_GROUP: usize = 8;

#[path = "../common.rs"]
mod common;
use common::{cache_dir, thread_cpu_s};

/// Rows as the kernel keeps them: chunks of `CHUNK_FLOATS` values holding
/// `rows_per_chunk` whole rows, and `|row|^2` beside them for cosine.
struct Store {
    dim: usize,
    rows: usize,
    rows_per_chunk: usize,
    chunks: Vec<Vec<f32>>,
    norms: Vec<NormSq>,
}

impl Store {
    fn new(path: Path, dim: usize, data: &[f32]) -> Self {
        let rows = data.len() / dim;
        let rows_per_chunk = CHUNK_FLOATS / dim;
        assert!(rows_per_chunk > 0, "dim {dim} over a chunk");
        let chunks = data
            .chunks(rows_per_chunk * dim)
            .map(|c| {
                let mut v = vec![0.0; CHUNK_FLOATS];
                v[..c.len()].copy_from_slice(c);
                v
            })
            .collect();
        // SAFETY: `path` is supported (`detect()`); userland owns its FPU.
        let norms = data
            .chunks(dim)
            .map(|r| unsafe { simd::norm_sq(path, r) })
            .collect();
        Self {
            dim,
            rows,
            rows_per_chunk,
            chunks,
            norms,
        }
    }

    /// Rows `at..at + n`, in one chunk.
    fn rows(&self, at: usize, n: usize) -> &[f32] {
        let off = (at % self.rows_per_chunk) * self.dim;
        &self.chunks[at / self.rows_per_chunk][off..off + n * self.dim]
    }

    /// How many rows from `at` are in `at`'s chunk, at most `n`.
    fn run(&self, at: usize, n: usize) -> usize {
        (self.rows_per_chunk - at % self.rows_per_chunk).min(n)
    }
}

/// The `k` best (distance key, row) pairs, as the kernel's `TopK`.
struct Top {
    heap: BinaryHeap<(u32, u32)>,
    k: usize,
}

impl Top {
    fn new(k: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(k + 1),
            k,
        }
    }

    /// The largest key that may still enter.
    #[inline]
    fn bar(&self) -> u32 {
        if self.heap.len() < self.k {
            u32::MAX
        } else {
            self.heap.peek().map_or(u32::MAX, |t| t.0)
        }
    }

    #[inline]
    fn offer(&mut self, key: u32, row: u32) {
        if self.heap.len() < self.k {
            self.heap.push((key, row));
        } else if (key, row) < *self.heap.peek().unwrap() {
            self.heap.pop();
            self.heap.push((key, row));
        }
    }

    fn rows(self) -> Vec<u32> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|t| t.1)
            .collect()
    }
}

/// Timing of the sections of a blocked scan.
#[derive(Default)]
struct Sections {
    count: u64,
    total_s: f64,
    longest_s: f64,
}

/// Queries per group, as the kernel picks them.
fn group_size(s: &Store, k: usize) -> usize {
    let dim = s.dim;
    let scan = (GROUP_SCAN_MACS / (s.rows * dim).max(1)).max(MIN_SCAN_GROUP);
    (GROUP_CANDIDATES / k)
        .min(GROUP_FLOATS / dim)
        .min(scan)
        .clamp(1, MAX_GROUP)
}

/// The kernel's `Collection::scan`: rows `range` for the group `qs` (with
/// norms `qn`) into `tops`, section by section.
#[allow(clippy::too_many_arguments)]
fn scan(
    s: &Store,
    path: Path,
    metric: Metric,
    qs: &[f32],
    qn: &[NormSq],
    range: std::ops::Range<usize>,
    tops: &mut [Top],
    dist: &mut [f32],
    sections: &mut Sections,
) {
    let dim = s.dim;
    let nq = tops.len();
    let per_section = (BLOCK_MAC_BUDGET / (dim * nq)).clamp(1, CHUNK_FLOATS / nq);
    for slot in range.clone().step_by(per_section) {
        let m = per_section.min(range.end - slot);
        let t0 = Instant::now();
        let mut done = 0;
        while done < m {
            let at = slot + done;
            let run = s.run(at, m - done);
            let norms: &[NormSq] = if metric == Metric::Cosine {
                &s.norms[at..at + run]
            } else {
                &[]
            };
            // SAFETY: as in `Store::new`.
            unsafe {
                simd::block_distances(
                    path,
                    metric,
                    dim,
                    qs,
                    qn,
                    s.rows(at, run),
                    norms,
                    run,
                    &mut dist[done..],
                    m,
                )
            };
            done += run;
        }
        let took = t0.elapsed().as_secs_f64();
        sections.count += 1;
        sections.total_s += took;
        sections.longest_s = sections.longest_s.max(took);
        for (i, top) in tops.iter_mut().enumerate() {
            for (j, d) in dist[i * m..(i + 1) * m].iter().enumerate() {
                let key = simd::order_key(*d);
                if key <= top.bar() {
                    top.offer(key, (slot + j) as u32);
                }
            }
        }
    }
}

/// The kernel's blocked exact search of `queries` (rows of `dim`), on
/// `cpus` threads as the kernel shares a group's scan with helper CPUs
/// (`kmod/vfs/share.rs`): the rows in `4 * cpus` pieces taken in turn,
/// each thread into its own heaps, merged at the end.
fn search_blocked(
    s: &Store,
    path: Path,
    metric: Metric,
    queries: &[f32],
    k: usize,
    cpus: usize,
    sections: &mut Sections,
) -> Vec<Vec<u32>> {
    let dim = s.dim;
    let group = group_size(s, k);
    let mut dists: Vec<Vec<f32>> = (0..cpus).map(|_| vec![0.0f32; CHUNK_FLOATS]).collect();
    let mut out = Vec::new();
    for qs in queries.chunks(group * dim) {
        let nq = qs.len() / dim;
        // SAFETY: as in `Store::new`.
        let qn: Vec<NormSq> = qs
            .chunks(dim)
            .map(|q| unsafe { simd::norm_sq(path, q) })
            .collect();
        let mut tops: Vec<Top> = (0..nq).map(|_| Top::new(k)).collect();
        if cpus <= 1 {
            scan(
                s,
                path,
                metric,
                qs,
                &qn,
                0..s.rows,
                &mut tops,
                &mut dists[0],
                sections,
            );
        } else {
            let pieces = 4 * cpus;
            let per_piece = s.rows.div_ceil(pieces);
            let next = AtomicUsize::new(0);
            let parts: Vec<(Vec<Top>, Sections)> = std::thread::scope(|scope| {
                let handles: Vec<_> = dists
                    .iter_mut()
                    .map(|dist| {
                        let (next, qn) = (&next, &qn);
                        scope.spawn(move || {
                            let mut mine: Vec<Top> = (0..nq).map(|_| Top::new(k)).collect();
                            let mut sec = Sections::default();
                            loop {
                                let p = next.fetch_add(1, Ordering::Relaxed);
                                if p >= pieces {
                                    break;
                                }
                                let start = (p * per_piece).min(s.rows);
                                let end = (start + per_piece).min(s.rows);
                                scan(
                                    s,
                                    path,
                                    metric,
                                    qs,
                                    qn,
                                    start..end,
                                    &mut mine,
                                    dist,
                                    &mut sec,
                                );
                            }
                            (mine, sec)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (mine, sec) in parts {
                for (top, theirs) in tops.iter_mut().zip(mine) {
                    for (key, row) in theirs.heap {
                        top.offer(key, row);
                    }
                }
                sections.count += sec.count;
                sections.total_s += sec.total_s;
                sections.longest_s = sections.longest_s.max(sec.longest_s);
            }
        }
        out.extend(tops.into_iter().map(Top::rows));
    }
    out
}

/// The kernel's exact search before this change: one query at a time.
fn search_per_row(
    s: &Store,
    path: Path,
    metric: Metric,
    queries: &[f32],
    k: usize,
) -> Vec<Vec<u32>> {
    let dim = s.dim;
    let per_section = (FPU_FLOAT_BUDGET / dim).clamp(1, CHUNK_FLOATS);
    let mut dist = vec![0.0f32; CHUNK_FLOATS];
    queries
        .chunks(dim)
        .map(|q| {
            // SAFETY: as in `Store::new`.
            let qn = unsafe { simd::norm_sq(path, q) };
            let mut top = Top::new(k);
            for slot in (0..s.rows).step_by(per_section) {
                let m = per_section.min(s.rows - slot);
                let mut done = 0;
                while done < m {
                    let at = slot + done;
                    let run = s.run(at, m - done);
                    let out = &mut dist[done..done + run];
                    // SAFETY: as in `Store::new`.
                    unsafe {
                        if metric == Metric::Cosine {
                            let norms = &s.norms[at..at + run];
                            simd::cosine_distances_with_norms(
                                path,
                                q,
                                qn,
                                s.rows(at, run),
                                norms,
                                out,
                            );
                        } else {
                            simd::distances(path, metric, q, s.rows(at, run), out);
                        }
                    }
                    done += run;
                }
                for (j, d) in dist[..m].iter().enumerate() {
                    let key = simd::order_key(*d);
                    if key <= top.bar() {
                        top.offer(key, (slot + j) as u32);
                    }
                }
            }
            top.rows()
        })
        .collect()
}

struct Args {
    data: PathBuf,
    python: PathBuf,
    repeats: usize,
    nqs: Vec<usize>,
    synthetic_rows: usize,
    sets: Vec<String>,
    minilm: PathBuf,
    json: Option<PathBuf>,
}

fn args() -> Args {
    let cache = cache_dir();
    let mut a = Args {
        data: cache.join("data/glove_6B_50d.npy"),
        python: cache.join("venv/bin/python"),
        repeats: 3,
        nqs: vec![1, 10, 100, 1000],
        synthetic_rows: 100_000,
        sets: vec!["glove-50".into(), "synthetic-768".into()],
        minilm: cache.join("data/minilm_kernel_docs_384d.npy"),
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => a.data = v.into(),
            "--python" => a.python = v.into(),
            "--repeats" => a.repeats = v.parse().expect("--repeats"),
            "--nq" => a.nqs = v.split(',').map(|x| x.parse().expect("--nq")).collect(),
            "--synthetic-rows" => a.synthetic_rows = v.parse().expect("--synthetic-rows"),
            "--sets" => a.sets = v.split(',').map(String::from).collect(),
            "--minilm" => a.minilm = v.into(),
            "--json" => a.json = Some(v.into()),
            _ => panic!(
                "usage: exact [--data GLOVE.npy] [--python PY] [--repeats R] [--nq 1,10,..] \
                 [--synthetic-rows N] [--sets glove-50,synthetic-768,minilm-384] \
                 [--minilm MINILM.npy] [--json OUT]"
            ),
        }
    }
    a
}

/// Best queries/s of `repeats` calls of `f` on `nq` queries, by `clock`
/// (seconds), and the last call's answer.
fn best_rate_by<T>(
    clock: fn() -> f64,
    repeats: usize,
    nq: usize,
    mut f: impl FnMut() -> T,
) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeats {
        let t0 = clock();
        let r = f();
        best = best.min(clock() - t0);
        last = Some(r);
    }
    (nq as f64 / best.max(1e-9), last.unwrap())
}

/// [`best_rate_by`] the thread's CPU time.
fn best_rate<T>(repeats: usize, nq: usize, f: impl FnMut() -> T) -> (f64, T) {
    best_rate_by(thread_cpu_s, repeats, nq, f)
}

/// Seconds of the wall clock since the first call.
fn wall_s() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// A seeded standard-normal matrix (splitmix64 and Box-Muller).
fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (next().max(1e-300), next());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

/// Writes a float32 C-order .npy of `rows` x `dim`.
fn write_npy(path: &std::path::Path, rows: usize, dim: usize, v: &[f32]) {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).expect("write .npy");
}

/// One data set: base rows, then queries drawn from the same source.
struct DataSet {
    name: &'static str,
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
}

fn main() {
    let a = args();
    let path = simd::detect();
    let max_nq = *a.nqs.iter().max().unwrap();
    let (n, dim, glove) =
        read_npy_f32(&a.data).unwrap_or_else(|e| panic!("{}: {e}", a.data.display()));
    // Queries: every 397th row (a fixed spread over the vocabulary); the
    // base is all 400,000 rows, as in the guest benchmark.
    let queries: Vec<f32> = (0..max_nq)
        .flat_map(|i| glove[(i * 397 % n) * dim..][..dim].to_vec())
        .collect();
    let synthetic_dim = 768;
    let mut sets = vec![
        DataSet {
            name: "glove-50",
            dim,
            base: glove,
            queries,
        },
        DataSet {
            name: "synthetic-768",
            dim: synthetic_dim,
            base: gaussian(a.synthetic_rows * synthetic_dim, 1),
            queries: gaussian(max_nq * synthetic_dim, 2),
        },
    ];
    if a.sets.iter().any(|s| s == "minilm-384") {
        let (n, dim, base) =
            read_npy_f32(&a.minilm).unwrap_or_else(|e| panic!("{}: {e}", a.minilm.display()));
        // Queries: every 37th sentence, spread over the corpus's files.
        let queries = (0..max_nq)
            .flat_map(|i| base[(i * 37 % n) * dim..][..dim].to_vec())
            .collect();
        sets.push(DataSet {
            name: "minilm-384",
            dim,
            base,
            queries,
        });
    }
    let tmp = std::env::temp_dir().join(format!("vexfs-exact-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let peers_script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("exact_peers.py");
    println!(
        "exact k-NN, k = {K}, one thread, path {}; queries/s by CPU time, best of {}; \
         2 CPUs: wall-clock speed-up of the blocked scan shared by two threads",
        path.name(),
        a.repeats
    );
    println!(
        "{:<14} {:<7} {:>5} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>7}",
        "set",
        "metric",
        "nq",
        "blocked",
        "per-row",
        "faiss",
        "numpy",
        "x faiss",
        "x numpy",
        "recall",
        "2 CPUs"
    );
    let mut json = Vec::new();
    for set in sets.iter().filter(|s| a.sets.iter().any(|n| n == s.name)) {
        let rows = set.base.len() / set.dim;
        let store = Store::new(path, set.dim, &set.base);
        let base_npy = tmp.join(format!("{}-base.npy", set.name));
        let query_npy = tmp.join(format!("{}-queries.npy", set.name));
        write_npy(&base_npy, rows, set.dim, &set.base);
        write_npy(&query_npy, max_nq, set.dim, &set.queries);
        let metrics: &[Metric] = if set.name != "synthetic-768" {
            &[Metric::Cosine, Metric::L2]
        } else {
            &[Metric::Dot, Metric::L2]
        };
        for &metric in metrics {
            let mname = match metric {
                Metric::Cosine => "cosine",
                Metric::Dot => "dot",
                Metric::L2 => "l2",
            };
            let labels = tmp.join(format!("{}-{mname}.labels", set.name));
            let nq_list: Vec<String> = a.nqs.iter().map(|x| x.to_string()).collect();
            let out = Command::new(&a.python)
                .arg(&peers_script)
                .args([&base_npy, &query_npy])
                .arg(mname)
                .arg(nq_list.join(","))
                .arg(a.repeats.to_string())
                .arg(&labels)
                .env("OMP_NUM_THREADS", "1")
                .env("OPENBLAS_NUM_THREADS", "1")
                .env("MKL_NUM_THREADS", "1")
                .output()
                .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", a.python.display()));
            assert!(
                out.status.success(),
                "exact_peers.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let peers: Vec<Vec<f64>> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
                .collect();
            // faiss's labels for every nq, in order: int64, nq x K each.
            let label_bytes = std::fs::read(&labels).unwrap();
            let mut label_at = 0;
            for (i, &nq) in a.nqs.iter().enumerate() {
                let q = &set.queries[..nq * set.dim];
                let mut sections = Sections::default();
                let (blocked, found) = best_rate(a.repeats, nq, || {
                    search_blocked(&store, path, metric, q, K, 1, &mut sections)
                });
                // Two CPUs against one, by the wall clock (CPU time would
                // add both threads').
                let on = |cpus| {
                    best_rate_by(wall_s, a.repeats, nq, || {
                        search_blocked(&store, path, metric, q, K, cpus, &mut Sections::default())
                    })
                };
                let ((two, shared), (one, _)) = (on(2), on(1));
                let two_cpus = two / one;
                assert_eq!(
                    found, shared,
                    "{} {mname} nq {nq}: 2 CPUs and 1 disagree",
                    set.name
                );
                let per_row_repeats = if nq >= 1000 { 1 } else { a.repeats };
                let (per_row, old) = best_rate(per_row_repeats, nq, || {
                    search_per_row(&store, path, metric, q, K)
                });
                assert_eq!(
                    found, old,
                    "{} {mname} nq {nq}: blocked and per-row disagree",
                    set.name
                );
                let (faiss, numpy) = (peers[i][0], peers[i][1]);
                let mut hit = 0usize;
                for row in &found {
                    let want: Vec<i64> = (0..K)
                        .map(|j| {
                            let b = &label_bytes[(label_at + j) * 8..][..8];
                            i64::from_le_bytes(b.try_into().unwrap())
                        })
                        .collect();
                    hit += row.iter().filter(|&&r| want.contains(&(r as i64))).count();
                    label_at += K;
                }
                let recall = hit as f64 / (nq * K) as f64;
                println!(
                    "{:<14} {:<7} {:>5} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>7.2}x {:>7.2}x {:>8.3} {:>6.2}x",
                    set.name,
                    mname,
                    nq,
                    blocked,
                    per_row,
                    faiss,
                    numpy,
                    blocked / faiss,
                    blocked / numpy,
                    recall,
                    two_cpus
                );
                json.push(format!(
                    "{{\"set\": \"{}\", \"metric\": \"{mname}\", \"nq\": {nq}, \"rows\": {rows}, \"dim\": {}, \
                     \"blocked_qps\": {blocked:.2}, \"two_cpu_speedup\": {two_cpus:.3}, \"per_row_qps\": {per_row:.2}, \"faiss_qps\": {faiss:.2}, \
                     \"numpy_qps\": {numpy:.2}, \"recall_vs_faiss\": {recall:.4}, \"sections\": {}, \
                     \"mean_section_us\": {:.1}, \"longest_section_us\": {:.1}}}",
                    set.name,
                    set.dim,
                    sections.count,
                    sections.total_s / sections.count.max(1) as f64 * 1e6,
                    sections.longest_s * 1e6
                ));
                if nq == *a.nqs.last().unwrap() {
                    println!(
                        "{:<14} {:<7} FPU sections of the blocked scan: mean {:.1} us, longest {:.1} us ({} sections)",
                        "",
                        "",
                        sections.total_s / sections.count.max(1) as f64 * 1e6,
                        sections.longest_s * 1e6,
                        sections.count
                    );
                }
            }
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
    if let Some(p) = a.json {
        std::fs::write(
            &p,
            format!(
                "{{\"path\": \"{}\", \"k\": {K}, \"results\": [\n{}\n]}}\n",
                path.name(),
                json.join(",\n")
            ),
        )
        .unwrap();
    }
}
