// SPDX-License-Identifier: GPL-2.0
//! Recall@10 on real data: a 5,000-vector subset of GloVe 6B 50-d (20,000
//! under `make test-long`),
//! cosine, default parameters, against a float64 exact ground truth; then
//! again after deleting 30%, inserting other GloVe rows and repairing.
//!
//! Needs `$VEXFS_CACHE/data/glove_6B_50d.npy` (default VEXFS_CACHE:
//! ~/.cache/vexfs), which `make setup` downloads: without it the test fails.

use std::path::PathBuf;
use std::time::Instant;

use crate::common::{long, Rng};
use vexfs_hnsw::{
    read_npy_f32, Hnsw, Metric, NativeQuery, NativeStore, Neighbour, Params, StdAlloc, DEFAULT_EF,
};

const K: usize = 10;
const QUERIES: usize = 200;
const DELETE_PERCENT: usize = 30;

fn glove() -> (usize, usize, Vec<f32>) {
    let cache = std::env::var_os("VEXFS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vexfs")))
        .expect("neither VEXFS_CACHE nor HOME is set");
    let path = cache.join("data/glove_6B_50d.npy");
    if !path.exists() {
        panic!(
            "{} is missing: run `make setup` (it downloads the GloVe vectors into $VEXFS_CACHE/data)",
            path.display()
        );
    }
    read_npy_f32(&path).unwrap_or_else(|e| panic!("{e}: run `make setup` again"))
}

/// Row `i` normalised, in f64.
fn unit(data: &[f32], dim: usize, i: usize) -> Vec<f64> {
    let r = &data[i * dim..(i + 1) * dim];
    let n = r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    r.iter()
        .map(|&x| if n > 0.0 { x as f64 / n } else { 0.0 })
        .collect()
}

/// Exact top-K slots by cosine distance (f64), over `live` slots whose
/// GloVe row is `row_of[slot]`.
fn truth(units: &[Vec<f64>], live: &[u32], q: &[f64]) -> Vec<u32> {
    let mut d: Vec<(f64, u32)> = live
        .iter()
        .map(|&s| {
            let dot: f64 = units[s as usize].iter().zip(q).map(|(a, b)| a * b).sum();
            (1.0 - dot, s)
        })
        .collect();
    d.select_nth_unstable_by(K, |a, b| a.partial_cmp(b).unwrap());
    d.truncate(K);
    d.into_iter().map(|x| x.1).collect()
}

fn recall(
    idx: &Hnsw<StdAlloc>,
    store: &mut NativeStore,
    units: &[Vec<f64>],
    live: &[u32],
    queries: &[(Vec<f32>, Vec<f64>)],
) -> f64 {
    let mut scratch = idx.new_scratch(StdAlloc);
    let mut out = [Neighbour::default(); K];
    let mut q = NativeQuery::default();
    let mut hits = 0;
    let t = Instant::now();
    let mut results = Vec::new();
    for (v, _) in queries {
        q.set(store, v);
        let n = idx
            .search(&mut scratch, store, &q, K, DEFAULT_EF, &mut out)
            .unwrap();
        assert_eq!(n, K);
        results.push(out);
    }
    let per = t.elapsed() / queries.len() as u32;
    for ((_, qu), out) in queries.iter().zip(&results) {
        let t = truth(units, live, qu);
        hits += out.iter().filter(|n| t.contains(&n.slot)).count();
    }
    let r = hits as f64 / (queries.len() * K) as f64;
    println!(
        "recall@{K} at ef {DEFAULT_EF} = {r:.4} over {} live, {per:?}/query",
        live.len()
    );
    r
}

#[test]
fn glove_recall_before_and_after_churn() {
    let t0 = Instant::now();
    let base = if long() { 20_000 } else { 5_000 };
    let (rows, dim, data) = glove();
    assert!(
        rows >= 2 * base && dim == 50,
        "unexpected shape {rows} x {dim}"
    );
    // A seeded sample of distinct rows: the base, the held-out queries,
    // then the rows inserted after the deletions.
    let added = base * DELETE_PERCENT / 100;
    let mut rng = Rng(20_000);
    let mut pick: Vec<usize> = (0..rows).collect();
    for i in 0..base + QUERIES + added {
        let j = i + rng.below(rows - i);
        pick.swap(i, j);
    }
    let (base_rows, rest) = pick.split_at(base);
    let (query_rows, rest) = rest.split_at(QUERIES);
    let new_rows = &rest[..added];
    let queries: Vec<(Vec<f32>, Vec<f64>)> = query_rows
        .iter()
        .map(|&r| (data[r * dim..(r + 1) * dim].to_vec(), unit(&data, dim, r)))
        .collect();

    let mut store = NativeStore::new(dim, Metric::Cosine);
    let mut units = Vec::new();
    for &r in base_rows {
        store.push(&data[r * dim..(r + 1) * dim]);
        units.push(unit(&data, dim, r));
    }
    let params = Params::default();
    assert_eq!((params.m, params.ef_construction), (16, 200));
    let mut idx = Hnsw::new(params, StdAlloc).unwrap();
    let t = Instant::now();
    for s in 0..base as u32 {
        idx.insert(&mut store, s).unwrap();
    }
    println!(
        "glove: build {base} x {dim} ({}): {:?}",
        store.path().name(),
        t.elapsed()
    );
    idx.check().unwrap();
    let mut live: Vec<u32> = (0..base as u32).collect();
    let r = recall(&idx, &mut store, &units, &live, &queries);
    assert!(r >= 0.95, "recall@{K} {r} < 0.95 on the GloVe subset");

    // Delete a random 30% (repairing whenever the index asks, as the
    // kernel does), insert other GloVe rows into new slots, repair.
    for i in (1..live.len()).rev() {
        live.swap(i, rng.below(i + 1));
    }
    let del = live.split_off(live.len() - base * DELETE_PERCENT / 100);
    let t = Instant::now();
    let mut repairs = 0;
    for &s in &del {
        idx.delete(s).unwrap();
        if idx.needs_repair() {
            while !idx.repair_step(&mut store, 256).unwrap() {}
            repairs += 1;
        }
    }
    for &r in new_rows {
        let s = store.push(&data[r * dim..(r + 1) * dim]);
        units.push(unit(&data, dim, r));
        idx.insert(&mut store, s).unwrap();
        live.push(s);
        if idx.needs_repair() {
            idx.repair(&mut store).unwrap();
            repairs += 1;
        }
    }
    if idx.needs_repair() {
        idx.repair(&mut store).unwrap();
        repairs += 1;
    }
    println!(
        "glove: delete {}, insert {added}, {repairs} repairs: {:?}",
        del.len(),
        t.elapsed()
    );
    idx.check().unwrap();
    assert_eq!(idx.len(), live.len());
    for &s in &del {
        assert!(!idx.contains(s));
    }
    live.sort_unstable();
    let r = recall(&idx, &mut store, &units, &live, &queries);
    assert!(r >= 0.95, "recall@{K} {r} < 0.95 after churn");
    println!("glove: total {:?}", t0.elapsed());
}
