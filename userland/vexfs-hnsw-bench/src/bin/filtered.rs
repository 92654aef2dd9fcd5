// SPDX-License-Identifier: GPL-2.0
//! Native benchmark of filtered HNSW searches (issue 14): what a filter
//! costs against an unfiltered search, at selectivities 1 %, 10 %, 50 %
//! (and 100 %, the unfiltered search), on GloVe 6B 50-d, cosine, M 16,
//! ef_construction 200, one thread.
//!
//! Each query follows the kernel's policy (kmod/collection.rs
//! `Collection::search`): the graph walk with the filter as
//! `Distances::accept` returns the `ef` best admitted nodes, of which the
//! best `k` are kept; if fewer than `k` came back, an exact scan of every
//! row (the filter applied on the way) answers instead. The exact rows of
//! the table are that scan alone (`SEARCH_EXACT`). Every configuration,
//! 100 % included, goes through the same `accept` hook, as in the kernel,
//! where it always runs (the caller must be able to read each file).
//!
//! Data: `--n` base rows (default 100,000) and `--queries` query rows
//! (default 1,000), disjoint, drawn from all 400,000 rows with a seeded
//! shuffle. A filter at p % admits a fixed pseudo-random subset of
//! exactly `n * p / 100` base rows (nested: the 1 % rows are among the
//! 10 %). Recall@10 is measured against a filtered exact top-10 in
//! float64. Rates are one query at a time, the best of `--repeats`
//! passes, taken in rounds over all configurations so that a busy moment
//! of the machine does not land on one of them only. They are timed by
//! the thread's CPU time (a shared machine's other work does not count)
//! and, in the JSON, by the wall clock too.
//!
//! usage: filtered [--data F] [--n N] [--queries Q] [--ef 64,128,256]
//!        [--percent 1,10,50,100] [--repeats R] [--json OUT]

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use vexfs_hnsw::{
    read_npy_f32, Distances, Hnsw, Metric, NativeQuery, NativeStore, Neighbour, Params, StdAlloc,
    Target,
};

const K: usize = 10;

#[path = "../common.rs"]
mod common;
use common::{cache_dir, thread_cpu_s};

struct Args {
    data: PathBuf,
    n: usize,
    queries: usize,
    efs: Vec<usize>,
    percents: Vec<usize>,
    repeats: usize,
    json: Option<PathBuf>,
}

fn args() -> Args {
    let cache = cache_dir();
    let mut a = Args {
        data: cache.join("data/glove_6B_50d.npy"),
        n: 100_000,
        queries: 1000,
        efs: vec![64, 128, 256],
        percents: vec![1, 10, 50, 100],
        repeats: 3,
        json: None,
    };
    let list = |v: &str| -> Vec<usize> { v.split(',').map(|x| x.parse().unwrap()).collect() };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--help" || k == "-h" {
            println!(
                "filtered [--data NPY] [--n N] [--queries Q] [--ef 64,128,256] \
                 [--percent 1,10,50,100] [--repeats R] [--json OUT]"
            );
            std::process::exit(0);
        }
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--data" => a.data = v.into(),
            "--n" => a.n = v.parse().unwrap(),
            "--queries" => a.queries = v.parse().unwrap(),
            "--ef" => a.efs = list(&v),
            "--percent" => a.percents = list(&v),
            "--repeats" => a.repeats = v.parse().unwrap(),
            "--json" => a.json = Some(v.into()),
            _ => panic!("unknown option {k}"),
        }
    }
    assert!(a.percents.iter().all(|&p| (1..=100).contains(&p)));
    a
}

/// splitmix64: the seeded shuffles.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random permutation of `0..n`.
    fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            p.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
        p
    }
}

/// The store with a filter: a slot is admitted when its rank (a fixed
/// random permutation of the slots) is below `below`. Counts distances.
struct Filtered<'a> {
    store: &'a mut NativeStore,
    rank: &'a [u32],
    below: u32,
    distances: u64,
}

impl Distances for Filtered<'_> {
    type Query = NativeQuery;

    fn batch(&mut self, from: Target<'_, NativeQuery>, slots: &[u32], out: &mut [u32]) {
        self.distances += slots.len() as u64;
        self.store.batch(from, slots, out)
    }

    fn accept(&mut self, slot: u32) -> bool {
        self.rank[slot as usize] < self.below
    }
}

/// What one pass over the queries did.
#[derive(Default)]
struct Pass {
    got: Vec<Vec<u32>>,
    fallbacks: usize,
    distances: u64,
}

/// One configuration: a filter and a search (`ef` 0: exact).
struct Point {
    percent: usize,
    admitted: usize,
    ef: usize,
    recall: f64,
    /// By the thread's CPU time, and by the wall clock.
    qps: f64,
    qps_wall: f64,
    fallbacks: usize,
    distances_per_query: f64,
    short: usize,
}

/// Recall@K; a filter admitting fewer than K rows is scored on those.
fn recall(truth: &[Vec<u32>], got: &[Vec<u32>]) -> f64 {
    let (mut hits, mut want) = (0, 0);
    for (t, g) in truth.iter().zip(got) {
        let t: HashSet<u32> = t.iter().copied().collect();
        hits += g.iter().filter(|x| t.contains(x)).count();
        want += t.len();
    }
    hits as f64 / want.max(1) as f64
}

/// Exact filtered top-K by cosine distance in f64, for each threshold of
/// `belows` (on 2 threads: not timed).
fn ground_truth(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    rank: &[u32],
    belows: &[u32],
) -> Vec<Vec<Vec<u32>>> {
    let unit = |r: &[f32]| -> Vec<f64> {
        let n = r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        r.iter()
            .map(|&x| if n > 0.0 { x as f64 / n } else { 0.0 })
            .collect()
    };
    let ub: Vec<f64> = base.chunks_exact(dim).flat_map(unit).collect();
    let qs: Vec<Vec<f64>> = queries.chunks_exact(dim).map(unit).collect();
    // Per query, per threshold.
    let one = |q: &Vec<f64>| -> Vec<Vec<u32>> {
        let all: Vec<(f64, u32)> = ub
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| {
                (
                    1.0 - r.iter().zip(q).map(|(a, b)| a * b).sum::<f64>(),
                    i as u32,
                )
            })
            .collect();
        belows
            .iter()
            .map(|&below| {
                let mut d: Vec<(f64, u32)> = all
                    .iter()
                    .copied()
                    .filter(|&(_, s)| rank[s as usize] < below)
                    .collect();
                if d.len() > K {
                    d.select_nth_unstable_by(K, |a, b| a.partial_cmp(b).unwrap());
                    d.truncate(K);
                }
                d.into_iter().map(|x| x.1).collect()
            })
            .collect()
    };
    let half = qs.len() / 2;
    let per_query = std::thread::scope(|s| {
        let h = s.spawn(|| qs[..half].iter().map(one).collect::<Vec<_>>());
        let mut b: Vec<Vec<Vec<u32>>> = qs[half..].iter().map(one).collect();
        let mut a = h.join().unwrap();
        a.append(&mut b);
        a
    });
    // Per threshold, per query.
    (0..belows.len())
        .map(|t| per_query.iter().map(|q| q[t].clone()).collect())
        .collect()
}

/// Answers every query with filter `below` as the kernel does: the graph
/// walk at `ef` (all `ef` admitted nodes asked for, the best `k` kept),
/// and the exact scan if fewer than `k` came back; `ef` 0 is the exact
/// scan alone. `Hnsw::search` scans every live node when `ef` covers
/// them all, with `accept` on the way, as the kernel's scan does.
#[allow(clippy::too_many_arguments)]
fn pass(
    idx: &Hnsw<StdAlloc>,
    scratch: &mut vexfs_hnsw::SearchScratch<StdAlloc>,
    d: &mut Filtered<'_>,
    queries: &[f32],
    dim: usize,
    ef: usize,
    found: &mut [Neighbour],
    out: &mut Pass,
) {
    let n = idx.len();
    let mut q = NativeQuery::default();
    d.distances = 0;
    for v in queries.chunks_exact(dim) {
        q.set(d.store, v);
        let mut got = if ef == 0 {
            0
        } else {
            let ef = ef.max(K);
            let m = idx.search(scratch, d, &q, ef, ef, found).unwrap();
            m.min(K)
        };
        if got < K.min(n) {
            if ef != 0 {
                out.fallbacks += 1;
            }
            got = idx.search(scratch, d, &q, K, n, found).unwrap();
        }
        out.got.push(found[..got].iter().map(|x| x.slot).collect());
    }
    out.distances = d.distances;
}

fn main() {
    let a = args();
    let t = Instant::now();
    let (rows, dim, data) = read_npy_f32(&a.data)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", a.data.display()));
    assert!(
        a.n + a.queries <= rows,
        "--n plus --queries exceeds {rows} rows"
    );
    // Base and queries: disjoint random samples of all rows (the base in
    // file order), so that both come from the same distribution.
    let perm = Mix(0x5eed).permutation(rows);
    let mut base_rows = perm[..a.n].to_vec();
    base_rows.sort_unstable();
    let query_rows = &perm[a.n..a.n + a.queries];
    let gather = |rs: &[u32]| -> Vec<f32> {
        rs.iter()
            .flat_map(|&r| {
                data[r as usize * dim..(r as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect()
    };
    let base = gather(&base_rows);
    let queries = gather(query_rows);
    let n = a.n;
    // rank[slot] < n * p / 100: the slot passes the p % filter.
    let rank = {
        let order = Mix(0xf11e_7e55).permutation(n);
        let mut rank = vec![0u32; n];
        for (i, &s) in order.iter().enumerate() {
            rank[s as usize] = i as u32;
        }
        rank
    };
    let belows: Vec<u32> = a.percents.iter().map(|&p| (n * p / 100) as u32).collect();
    eprintln!(
        "GloVe {rows} x {dim}: {n} base rows, {} queries (seeded shuffle); loaded in {:.1} s",
        a.queries,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let truth = ground_truth(&base, &queries, dim, &rank, &belows);
    eprintln!(
        "filtered ground truth (f64, exact): {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut store = NativeStore::new(dim, Metric::Cosine);
    store.reserve(n);
    for r in base.chunks_exact(dim) {
        store.push(r);
    }
    let mut idx = Hnsw::new(Params::default(), StdAlloc).unwrap();
    eprintln!("building {n} vectors (M 16, ef_construction 200, 1 thread)");
    let t = Instant::now();
    for s in 0..n as u32 {
        idx.insert(&mut store, s).unwrap();
    }
    let build_s = t.elapsed().as_secs_f64();
    eprintln!("built in {build_s:.1} s");

    // (percent index, ef), ef 0 = exact; best time and the last pass.
    let mut configs: Vec<(usize, usize)> = Vec::new();
    for pi in 0..a.percents.len() {
        for &ef in a.efs.iter().chain(&[0]) {
            configs.push((pi, ef));
        }
    }
    // Best (CPU, wall) seconds.
    let mut best = vec![(f64::MAX, f64::MAX); configs.len()];
    let mut last: Vec<Pass> = configs.iter().map(|_| Pass::default()).collect();
    let mut scratch = idx.new_scratch(StdAlloc);
    let max_ef = a.efs.iter().copied().max().unwrap_or(K).max(K);
    let mut found = vec![Neighbour::default(); max_ef];
    for round in 0..a.repeats {
        let t = Instant::now();
        for (c, &(pi, ef)) in configs.iter().enumerate() {
            let mut d = Filtered {
                store: &mut store,
                rank: &rank,
                below: belows[pi],
                distances: 0,
            };
            let mut p = Pass::default();
            p.got.reserve(a.queries);
            let (t, cpu) = (Instant::now(), thread_cpu_s());
            pass(
                &idx,
                &mut scratch,
                &mut d,
                &queries,
                dim,
                ef,
                &mut found,
                &mut p,
            );
            let cpu = thread_cpu_s() - cpu;
            best[c] = (best[c].0.min(cpu), best[c].1.min(t.elapsed().as_secs_f64()));
            last[c] = p;
        }
        eprintln!(
            "round {}/{}: {:.1} s",
            round + 1,
            a.repeats,
            t.elapsed().as_secs_f64()
        );
    }
    let points: Vec<Point> = configs
        .iter()
        .zip(&best)
        .zip(&last)
        .map(|((&(pi, ef), &secs), p)| Point {
            percent: a.percents[pi],
            admitted: belows[pi] as usize,
            ef,
            recall: recall(&truth[pi], &p.got),
            qps: a.queries as f64 / secs.0,
            qps_wall: a.queries as f64 / secs.1,
            fallbacks: p.fallbacks,
            distances_per_query: p.distances as f64 / a.queries as f64,
            short: p.got.iter().filter(|g| g.len() < K).count(),
        })
        .collect();

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let path = store.path().name();
    println!(
        "Filtered HNSW search (vexfs-hnsw, the kernel's policy) on GloVe 6B 50-d, cosine: \
         {n} base rows, {} queries, M 16, ef_construction 200 (build {build_s:.1} s), k {K}, \
         one thread, best of {} passes timed by the thread's CPU time; SIMD {path}; CPU: {cpu}",
        a.queries, a.repeats
    );
    println!(
        "x same: q/s over the 100 % filter's q/s with the same search (same ef, or exact); \
         x ef 64: over the 100 % filter's at ef 64 (the kernel's default); fallback: queries \
         the exact scan answered after the walk found < {K}"
    );
    println!();
    println!(
        "| filter | admitted | search | recall@10 | q/s | x same | x ef 64 | fallback | distances/query |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    let reference = |ef: usize| {
        points
            .iter()
            .find(|p| p.percent == 100 && p.ef == ef)
            .map(|p| p.qps)
    };
    for p in &points {
        let ratio = reference(p.ef).map_or("-".into(), |r| format!("{:.3}", p.qps / r));
        let ratio64 = reference(64).map_or("-".into(), |r| format!("{:.3}", p.qps / r));
        let search = if p.ef == 0 {
            "exact".to_string()
        } else {
            format!("ef {}", p.ef)
        };
        let fallback = if p.ef == 0 {
            "-".to_string()
        } else {
            format!("{:.1} %", 100.0 * p.fallbacks as f64 / a.queries as f64)
        };
        println!(
            "| {} % | {} | {search} | {:.4} | {:.0} | {ratio} | {ratio64} | {fallback} | {:.0} |",
            p.percent, p.admitted, p.recall, p.qps, p.distances_per_query
        );
    }
    let short: usize = points.iter().map(|p| p.short).sum();
    if short > 0 {
        println!("\nnote: {short} answers had fewer than {K} hits");
    }

    if let Some(out) = &a.json {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let pts: Vec<String> = points
            .iter()
            .map(|p| {
                format!(
                    "    {{\"percent\": {}, \"admitted\": {}, \"search\": \"{}\", \"ef\": {}, \
                     \"recall\": {:.4}, \"qps\": {:.1}, \"qps_wall\": {:.1}, \
                     \"qps_over_unfiltered\": {}, \"qps_over_unfiltered_ef64\": {}, \
                     \"fallbacks\": {}, \"distances_per_query\": {:.1}, \"short_answers\": {}}}",
                    p.percent,
                    p.admitted,
                    if p.ef == 0 { "exact" } else { "hnsw" },
                    p.ef,
                    p.recall,
                    p.qps,
                    p.qps_wall,
                    reference(p.ef).map_or("null".into(), |r| format!("{:.4}", p.qps / r)),
                    reference(64).map_or("null".into(), |r| format!("{:.4}", p.qps / r)),
                    p.fallbacks,
                    p.distances_per_query,
                    p.short
                )
            })
            .collect();
        let j = format!(
            "{{\n  \"dataset\": \"glove-6B-50d\", \"metric\": \"cosine\", \"base\": {n}, \
             \"queries\": {}, \"k\": {K}, \"m\": 16, \"ef_construction\": 200, \
             \"build_s\": {build_s:.2}, \"threads\": 1, \"repeats\": {}, \"simd\": \"{path}\", \
             \"timing\": \"qps: best pass by the thread's CPU time; qps_wall: by the wall clock\", \
             \"cpu\": \"{}\",\n  \"policy\": \"graph walk with the filter as accept (ef best \
             admitted nodes, best k kept); exact scan of every row if fewer than k; ef 0 / \
             exact: the scan alone\",\n  \"points\": [\n{}\n  ]\n}}\n",
            a.queries,
            a.repeats,
            esc(&cpu),
            pts.join(",\n")
        );
        std::fs::write(out, j).unwrap();
        eprintln!("wrote {}", out.display());
    }
}
