// SPDX-License-Identifier: GPL-2.0
//! Native HNSW benchmark on GloVe 6B 50-d (or another `--data` set),
//! cosine, single-threaded:
//! vexfs-hnsw next to usearch (crates.io) and hnswlib (PyPI, through
//! `hnswlib_bench.py`), M 16, ef_construction 200, all in one run.
//!
//! Split (`--split`): `random` (default) draws `--queries` rows (default
//! 1,000) with a seeded shuffle as the queries and keeps the other rows, in
//! file order, as the base; `last` takes the last rows as the queries and
//! the first rows as the base. `--n` caps the base (its first rows).
//! Ground truth: exact top-10 by cosine distance in float64.
//! For each library: build time, bytes per vector, and for each ef the
//! recall@10 and queries/s (queries one at a time on one thread, best of
//! `--repeats` passes).
//!
//! usage: vexfs-hnsw-bench [--data F] [--n N] [--queries Q] [--ef 16,32,..]
//!        [--repeats R] [--python P] [--json OUT] [--only vexfs,vexfs2,usearch,hnswlib]
//!        (vexfs2: the index linked on two CPUs, as the module links a large
//!        insert)
//!        [--split random|last]

mod common;
mod sq8;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use vexfs_hnsw::{
    read_npy_f32, Distances, Hnsw, Metric, NativeQuery, NativeStore, Neighbour, Params, Plan,
    SearchScratch, StdAlloc, Target,
};

const K: usize = 10;

struct Args {
    data: PathBuf,
    n: Option<usize>,
    queries: usize,
    efs: Vec<usize>,
    repeats: usize,
    python: PathBuf,
    json: Option<PathBuf>,
    only: Vec<String>,
    split: String,
}

fn args() -> Args {
    let cache = common::cache_dir();
    let mut a = Args {
        data: cache.join("data/glove_6B_50d.npy"),
        n: None,
        queries: 1000,
        efs: vec![16, 32, 64, 128, 256],
        repeats: 3,
        python: cache.join("venv/bin/python"),
        json: None,
        only: vec![
            "vexfs".into(),
            "vexfs2".into(),
            "usearch".into(),
            "hnswlib".into(),
        ],
        split: "random".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--help" || k == "-h" {
            println!(
                "vexfs-hnsw-bench [--data NPY] [--n N] [--queries Q] [--ef 16,32,...] \
                 [--repeats R] [--python PY] [--json OUT] [--only vexfs,usearch,hnswlib] \
                 [--split random|last]"
            );
            std::process::exit(0);
        }
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--data" => a.data = v.into(),
            "--n" => a.n = Some(v.parse().unwrap()),
            "--queries" => a.queries = v.parse().unwrap(),
            "--ef" => a.efs = v.split(',').map(|x| x.parse().unwrap()).collect(),
            "--repeats" => a.repeats = v.parse().unwrap(),
            "--python" => a.python = v.into(),
            "--json" => a.json = Some(v.into()),
            "--only" => a.only = v.split(',').map(String::from).collect(),
            "--split" => a.split = v,
            _ => panic!("unknown option {k}"),
        }
    }
    a
}

/// Reports every 50,000th insert of a build started at `t`.
fn progress(lib: &str, i: usize, t: Instant) {
    if i % 50_000 == 49_999 {
        eprintln!(
            "  {lib}: {} inserted, {:.0} s",
            i + 1,
            t.elapsed().as_secs_f64()
        );
    }
}

/// One library's results.
struct Lib {
    name: String,
    build_s: f64,
    bytes_per_vector: f64,
    bytes_note: String,
    /// (ef, recall@10, queries/s)
    points: Vec<(usize, f64, f64)>,
    extra: String,
}

fn recall(truth: &[Vec<u32>], got: &[Vec<u32>]) -> f64 {
    let mut hits = 0;
    for (t, g) in truth.iter().zip(got) {
        let t: HashSet<u32> = t.iter().copied().collect();
        hits += g.iter().filter(|x| t.contains(x)).count();
    }
    hits as f64 / (truth.len() * K) as f64
}

/// For each ef of `--ef`: `set_ef(ef)` untimed, then the best of
/// `--repeats` timed passes of `pass(ef, answers)`, which answers every
/// query in order. Returns (ef, recall@10, queries/s) per ef.
fn sweep(
    a: &Args,
    truth: &[Vec<u32>],
    mut set_ef: impl FnMut(usize),
    mut pass: impl FnMut(usize, &mut Vec<Vec<u32>>),
) -> Vec<(usize, f64, f64)> {
    let mut got = Vec::with_capacity(truth.len());
    let mut points = Vec::new();
    for &ef in &a.efs {
        set_ef(ef);
        let mut best = f64::MAX;
        for _ in 0..a.repeats {
            got.clear();
            let t = Instant::now();
            pass(ef, &mut got);
            best = best.min(t.elapsed().as_secs_f64());
        }
        points.push((ef, recall(truth, &got), truth.len() as f64 / best));
    }
    points
}

/// Exact top-K by cosine distance in f64 (on 2 threads: not timed).
fn ground_truth(base: &[f32], queries: &[f32], dim: usize) -> Vec<Vec<u32>> {
    let unit = |r: &[f32]| -> Vec<f64> {
        let n = r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        r.iter()
            .map(|&x| if n > 0.0 { x as f64 / n } else { 0.0 })
            .collect()
    };
    let ub: Vec<f64> = base.chunks_exact(dim).flat_map(unit).collect();
    let qs: Vec<Vec<f64>> = queries.chunks_exact(dim).map(unit).collect();
    let one = |q: &Vec<f64>| -> Vec<u32> {
        let mut d: Vec<(f64, u32)> = ub
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| {
                (
                    1.0 - r.iter().zip(q).map(|(a, b)| a * b).sum::<f64>(),
                    i as u32,
                )
            })
            .collect();
        d.select_nth_unstable_by(K, |a, b| a.partial_cmp(b).unwrap());
        d.truncate(K);
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        d.into_iter().map(|x| x.1).collect()
    };
    let half = qs.len() / 2;
    std::thread::scope(|s| {
        let h = s.spawn(|| qs[..half].iter().map(one).collect::<Vec<_>>());
        let mut b: Vec<Vec<u32>> = qs[half..].iter().map(one).collect();
        let mut a = h.join().unwrap();
        a.append(&mut b);
        a
    })
}

/// The recall and queries/s of the float32 walk of `idx` at each ef.
fn sweep_float(
    a: &Args,
    truth: &[Vec<u32>],
    idx: &Hnsw<StdAlloc>,
    scratch: &mut SearchScratch<StdAlloc>,
    store: &mut NativeStore,
    queries: &[f32],
    dim: usize,
) -> Vec<(usize, f64, f64)> {
    let mut q = NativeQuery::default();
    let mut out = [Neighbour::default(); K];
    sweep(
        a,
        truth,
        |_| {},
        |ef, got| {
            for v in queries.chunks_exact(dim) {
                q.set(store, v);
                let k = idx.search(scratch, store, &q, K, ef, &mut out).unwrap();
                got.push(out[..k].iter().map(|x| x.slot).collect());
            }
        },
    )
}

/// vexfs-hnsw, and the same graph walked on SQ8 codes with a float32
/// re-rank of the beam (`sq8.rs`, as the module's `quantize = sq8`).
fn bench_vexfs(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    a: &Args,
    truth: &[Vec<u32>],
) -> Vec<Lib> {
    let n = base.len() / dim;
    let mut store = NativeStore::new(dim, Metric::Cosine);
    store.reserve(n);
    for r in base.chunks_exact(dim) {
        store.push(r);
    }
    let params = Params::default();
    let mut idx = Hnsw::new(params, StdAlloc).unwrap();
    let t = Instant::now();
    for s in 0..n as u32 {
        idx.insert(&mut store, s).unwrap();
        progress("vexfs-hnsw", s as usize, t);
    }
    let build_s = t.elapsed().as_secs_f64();
    let bytes = idx.bytes() + store.bytes();
    let mut scratch = idx.new_scratch(StdAlloc);
    let points = sweep_float(a, truth, &idx, &mut scratch, &mut store, queries, dim);
    let fp32 = Lib {
        name: "vexfs-hnsw".into(),
        build_s,
        bytes_per_vector: bytes as f64 / n as f64,
        bytes_note: format!(
            "Hnsw::bytes() {} + stored vectors {}",
            idx.bytes(),
            store.bytes()
        ),
        points,
        extra: format!(
            "simd path {}, max level {}",
            store.path().name(),
            idx.max_level()
        ),
    };
    let graph_bytes = idx.bytes();
    let float_bytes = store.bytes();
    let t = Instant::now();
    let mut sq = sq8::Sq8Store::new(&mut store, n);
    let quantize_s = t.elapsed().as_secs_f64();
    let code_bytes = sq.bytes();
    let mut q8 = sq8::Sq8Query {
        w: Vec::new(),
        keys: Default::default(),
        fp: NativeQuery::default(),
    };
    let mut beam = vec![Neighbour::default(); a.efs.iter().copied().max().unwrap_or(K)];
    let (mut slots, mut keys, mut ranked) = (Vec::new(), Vec::new(), Vec::new());
    let points = sweep(
        a,
        truth,
        |_| {},
        |ef, got| {
            for v in queries.chunks_exact(dim) {
                sq.query(v, &mut q8);
                let found = idx
                    .search(&mut scratch, &mut sq, &q8, ef, ef, &mut beam)
                    .unwrap();
                // Re-rank the beam by float32 distance.
                slots.clear();
                slots.extend(beam[..found].iter().map(|x| x.slot));
                keys.resize(found, 0);
                sq.fp.batch(Target::Query(&q8.fp), &slots, &mut keys);
                ranked.clear();
                ranked.extend(keys.iter().copied().zip(slots.iter().copied()));
                ranked.sort_unstable();
                got.push(ranked.iter().take(K).map(|&(_, s)| s).collect());
            }
        },
    );
    let sq8 = Lib {
        name: "vexfs-hnsw sq8".into(),
        build_s: build_s + quantize_s,
        bytes_per_vector: (graph_bytes + float_bytes + code_bytes) as f64 / n as f64,
        bytes_note: format!(
            "graph {graph_bytes} + float rows {float_bytes} (re-rank) + codes {code_bytes}; \
             walked with SQ8 codes, the beam of ef re-ranked in float32"
        ),
        points,
        extra: format!("quantizing took {quantize_s:.2} s (in the build time)"),
    };
    vec![fp32, sq8]
}

/// The module's linking on two CPUs: after the first 1,024 nodes, rounds
/// of 16 rows (8 per CPU) planned at once (`Hnsw::plan`, one row set on a
/// second thread) against the graph as it is, then linked in order with
/// `Hnsw::insert_planned`, each with the round's earlier rows as further
/// candidates (`kmod/collection.rs`, `Collection::link`).
fn bench_vexfs_two_cpus(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    a: &Args,
    truth: &[Vec<u32>],
) -> Lib {
    const PER_CPU: usize = 8;
    const MIN_NODES: usize = 1024;
    let n = base.len() / dim;
    let mut store = NativeStore::new(dim, Metric::Cosine);
    store.reserve(n);
    for r in base.chunks_exact(dim) {
        store.push(r);
    }
    let mut idx = Hnsw::new(Params::default(), StdAlloc).unwrap();
    let mut plans: Vec<Plan<StdAlloc>> = (0..2 * PER_CPU).map(|_| Plan::new(StdAlloc)).collect();
    let mut scratch: Vec<SearchScratch<StdAlloc>> =
        (0..2).map(|_| SearchScratch::new(StdAlloc)).collect();
    let mut levels = vec![0; 2 * PER_CPU];
    let t = Instant::now();
    let mut s = 0;
    while s < n {
        if idx.len() < MIN_NODES {
            idx.insert(&mut store, s as u32).unwrap();
            s += 1;
            continue;
        }
        let m = (n - s).min(2 * PER_CPU);
        idx.next_levels(&mut levels[..m]);
        for (p, &l) in plans.iter_mut().zip(&levels[..m]) {
            p.reserve(&idx, l).unwrap();
        }
        for sc in scratch.iter_mut() {
            idx.reserve_plan_scratch(sc).unwrap();
        }
        let (idx_ref, store_ref, levels) = (&idx, &store, &levels);
        let (mine, theirs) = plans[..m].split_at_mut(m.min(PER_CPU));
        let (sc0, sc1) = scratch.split_at_mut(1);
        let plan_rows =
            |plans: &mut [Plan<StdAlloc>], sc: &mut SearchScratch<StdAlloc>, first: usize| {
                for (i, p) in plans.iter_mut().enumerate() {
                    let row = first + i;
                    idx_ref
                        .plan(sc, &mut { store_ref }, (s + row) as u32, levels[row], p)
                        .unwrap();
                }
            };
        std::thread::scope(|scope| {
            if !theirs.is_empty() {
                scope.spawn(|| plan_rows(theirs, &mut sc1[0], PER_CPU));
            }
            plan_rows(mine, &mut sc0[0], 0);
        });
        let slots: Vec<u32> = (s as u32..(s + m) as u32).collect();
        for i in 0..m {
            idx.insert_planned(&mut store, slots[i], &plans[i], &slots[..i])
                .unwrap();
        }
        s += m;
        progress("vexfs-hnsw on 2 CPUs", s, t);
    }
    let build_s = t.elapsed().as_secs_f64();
    idx.check().unwrap();
    let mut sc = idx.new_scratch(StdAlloc);
    let points = sweep_float(a, truth, &idx, &mut sc, &mut store, queries, dim);
    Lib {
        name: "vexfs-hnsw, linked on 2 CPUs".into(),
        build_s,
        bytes_per_vector: (idx.bytes() + store.bytes()) as f64 / n as f64,
        bytes_note: "as vexfs-hnsw".into(),
        points,
        extra: format!(
            "rounds of {} rows planned on 2 threads (wall-clock build time), after the first {MIN_NODES} nodes",
            2 * PER_CPU
        ),
    }
}

fn bench_usearch(base: &[f32], queries: &[f32], dim: usize, a: &Args, truth: &[Vec<u32>]) -> Lib {
    use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
    let n = base.len() / dim;
    let opts = IndexOptions {
        dimensions: dim,
        metric: MetricKind::Cos,
        quantization: ScalarKind::F32,
        connectivity: 16,
        expansion_add: 200,
        expansion_search: 64,
        multi: false,
    };
    let index = Index::new(&opts).unwrap();
    index.reserve_capacity_and_threads(n, 1).unwrap();
    let t = Instant::now();
    for (i, r) in base.chunks_exact(dim).enumerate() {
        index.add(i as u64, r).unwrap();
        progress("usearch", i, t);
    }
    let build_s = t.elapsed().as_secs_f64();
    let mem = index.memory_usage();
    let ser = index.serialized_length();
    let points = sweep(
        a,
        truth,
        |ef| index.change_expansion_search(ef),
        |_, got| {
            for v in queries.chunks_exact(dim) {
                let m = index.search(v, K).unwrap();
                got.push(m.keys.iter().map(|&k| k as u32).collect());
            }
        },
    );
    Lib {
        name: "usearch".into(),
        build_s,
        bytes_per_vector: mem as f64 / n as f64,
        bytes_note: format!(
            "memory_usage() {mem} (serialized_length() {ser} = {:.1} B/vector)",
            ser as f64 / n as f64
        ),
        points,
        extra: format!(
            "usearch {}, simd {}",
            usearch::version(),
            usearch::hardware_acceleration_available()
        ),
    }
}

fn bench_hnswlib(rows: &[u32], nq: usize, a: &Args, truth: &[Vec<u32>]) -> Lib {
    let n = rows.len() - nq;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hnswlib_bench.py");
    let tmp = std::env::temp_dir();
    let labels = tmp.join(format!("hnswlib-labels-{}.bin", std::process::id()));
    let rows_file = tmp.join(format!("hnswlib-rows-{}.bin", std::process::id()));
    let bytes: Vec<u8> = rows.iter().flat_map(|r| r.to_le_bytes()).collect();
    std::fs::write(&rows_file, bytes).unwrap();
    let efs: Vec<String> = a.efs.iter().map(|e| e.to_string()).collect();
    let out = Command::new(&a.python)
        .arg(&script)
        .arg(&a.data)
        .arg(&rows_file)
        .arg(nq.to_string())
        .arg(efs.join(","))
        .arg(&labels)
        .arg(a.repeats.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", a.python.display()));
    assert!(out.status.success(), "hnswlib_bench.py failed");
    let json = String::from_utf8(out.stdout).unwrap();
    let raw = std::fs::read(&labels).unwrap();
    let _ = std::fs::remove_file(&labels);
    let _ = std::fs::remove_file(&rows_file);
    let ids: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let num = |key: &str, from: &str| -> f64 {
        let i = from.find(&format!("\"{key}\": ")).unwrap() + key.len() + 4;
        let rest = &from[i..];
        let end = rest.find([',', '}']).unwrap();
        rest[..end].trim().parse().unwrap()
    };
    let mut points = Vec::new();
    let mut per_call = Vec::new();
    for (i, &ef) in a.efs.iter().enumerate() {
        let got: Vec<Vec<u32>> = ids[i * nq * K..(i + 1) * nq * K]
            .chunks_exact(K)
            .map(|c| c.to_vec())
            .collect();
        let at = json.find(&format!("{{\"ef\": {ef},")).unwrap();
        let part = &json[at..];
        points.push((ef, recall(truth, &got), num("qps", part)));
        per_call.push(format!(
            "ef {ef}: {:.0} / {:.0}",
            num("qps_matrix_call", part),
            num("qps_per_call", part)
        ));
    }
    let file = num("file_bytes", &json);
    let rss = num("rss_delta_bytes", &json);
    let version = json
        .split("\"version\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("?");
    Lib {
        name: "hnswlib".into(),
        build_s: num("build_s", &json),
        bytes_per_vector: file / n as f64,
        bytes_note: format!(
            "save_index() file {file} (RSS growth while building {rss} = {:.1} B/vector)",
            rss / n as f64
        ),
        points,
        extra: format!(
            "hnswlib {version}; queries/s is the better of one knn_query call on the query \
             matrix (num_threads 1) and one call per query: {}",
            per_call.join(", ")
        ),
    }
}

fn main() {
    let a = args();
    let t = Instant::now();
    let (rows, dim, data) = read_npy_f32(&a.data)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", a.data.display()));
    assert!(a.queries < rows);
    // Row numbers: the base rows, then the query rows.
    let mut order: Vec<u32> = (0..rows as u32).collect();
    let split = match a.split.as_str() {
        "last" => format!("base: the first rows; queries: the last {} rows", a.queries),
        "random" => {
            // Seeded partial Fisher-Yates from the end: the last `queries`
            // positions get a random sample; the base keeps file order.
            let mut x = 0x5eed_u64;
            for i in (rows - a.queries..rows).rev() {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                order.swap(i, (z % (i as u64 + 1)) as usize);
            }
            order[..rows - a.queries].sort_unstable();
            format!(
                "queries: {} rows drawn with a seeded shuffle (splitmix64, seed 0x5eed); \
                 base: the other rows in file order",
                a.queries
            )
        }
        s => panic!("unknown split {s}"),
    };
    let n = a.n.unwrap_or(rows - a.queries).min(rows - a.queries);
    let qrows = order[rows - a.queries..].to_vec();
    order.truncate(n);
    order.extend_from_slice(&qrows);
    let gather = |rs: &[u32]| -> Vec<f32> {
        rs.iter()
            .flat_map(|&r| {
                data[r as usize * dim..(r as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect()
    };
    // The data set's name: its file's stem (glove_6B_50d, minilm_...).
    let set = a
        .data
        .file_stem()
        .map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
    let base = &gather(&order[..n])[..];
    let queries = &gather(&qrows)[..];
    eprintln!(
        "{set} {rows} x {dim}, {n} base, {} queries ({split}); loaded in {:.1} s",
        a.queries,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let truth = ground_truth(base, queries, dim);
    eprintln!(
        "ground truth (f64, exact): {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut libs = Vec::new();
    for name in &a.only {
        eprintln!("{name}: building {n} vectors (M 16, ef_construction 200, 1 thread)");
        libs.extend(match name.as_str() {
            "vexfs" => bench_vexfs(base, queries, dim, &a, &truth),
            "vexfs2" => vec![bench_vexfs_two_cpus(base, queries, dim, &a, &truth)],
            "usearch" => vec![bench_usearch(base, queries, dim, &a, &truth)],
            "hnswlib" => vec![bench_hnswlib(&order, a.queries, &a, &truth)],
            _ => panic!("unknown library {name}"),
        });
    }

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "HNSW on {set} ({dim}-d), cosine: {n} base vectors, {} queries ({split}), \
         M 16, ef_construction 200, k 10, one thread, best of {} passes; CPU: {cpu}",
        a.queries, a.repeats
    );
    println!();
    print!("| library | build s | bytes/vector |");
    for &ef in &a.efs {
        print!(" ef {ef} recall | ef {ef} q/s |");
    }
    println!();
    print!("|---|---:|---:|");
    for _ in &a.efs {
        print!("---:|---:|");
    }
    println!();
    for l in &libs {
        print!(
            "| {} | {:.1} | {:.0} |",
            l.name, l.build_s, l.bytes_per_vector
        );
        for &(_, r, qps) in &l.points {
            print!(" {r:.4} | {qps:.0} |");
        }
        println!();
    }
    println!();
    for l in &libs {
        println!("{}: bytes: {}; {}", l.name, l.bytes_note, l.extra);
    }
    // Best queries/s at recall@10 >= 0.95 (over the measured ef values).
    println!();
    for l in &libs {
        let best = l
            .points
            .iter()
            .filter(|p| p.1 >= 0.95)
            .map(|p| (p.2, p.0))
            .fold(None, |b: Option<(f64, usize)>, p| match b {
                Some(b) if b.0 >= p.0 => Some(b),
                _ => Some(p),
            });
        match best {
            Some((qps, ef)) => println!(
                "{}: best at recall@10 >= 0.95: {qps:.0} q/s (ef {ef})",
                l.name
            ),
            None => println!("{}: recall@10 < 0.95 at every ef", l.name),
        }
    }

    if let Some(path) = &a.json {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut j = format!(
            "{{\n  \"dataset\": \"{}\", \"dim\": {dim}, \"metric\": \"cosine\", \"base\": {n}, \
             \"queries\": {}, \"split\": \"{}\", \
             \"k\": {K}, \"m\": 16, \"ef_construction\": 200, \"threads\": 1, \"repeats\": {}, \
             \"cpu\": \"{}\",\n  \"libraries\": [\n",
            esc(&set),
            a.queries,
            esc(&split),
            a.repeats,
            esc(&cpu)
        );
        for (i, l) in libs.iter().enumerate() {
            let pts: Vec<String> = l
                .points
                .iter()
                .map(|(ef, r, q)| format!("{{\"ef\": {ef}, \"recall\": {r:.4}, \"qps\": {q:.1}}}"))
                .collect();
            j += &format!(
                "    {{\"name\": \"{}\", \"build_s\": {:.2}, \"bytes_per_vector\": {:.1}, \
                 \"bytes_note\": \"{}\", \"note\": \"{}\", \"points\": [{}]}}{}\n",
                l.name,
                l.build_s,
                l.bytes_per_vector,
                esc(&l.bytes_note),
                esc(&l.extra),
                pts.join(", "),
                if i + 1 < libs.len() { "," } else { "" }
            );
        }
        j += "  ]\n}\n";
        std::fs::write(path, j).unwrap();
        eprintln!("wrote {}", path.display());
    }
}
