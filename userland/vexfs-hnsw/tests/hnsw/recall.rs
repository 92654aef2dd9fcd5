// SPDX-License-Identifier: GPL-2.0
//! Recall@10 against float64 brute force, before and after churn.

use std::time::Instant;

use crate::common::{brute, Gen, Rng, Store};
use vexfs_hnsw::{Hnsw, Neighbour, Params, StdAlloc, DEFAULT_EF};

const K: usize = 10;

fn recall(idx: &Hnsw<StdAlloc>, store: &mut Store, live: &[u32], queries: &[Vec<f32>]) -> f64 {
    let mut scratch = idx.new_scratch(StdAlloc);
    let mut out = [Neighbour::default(); K];
    let mut hits = 0;
    let t = Instant::now();
    let mut results = Vec::new();
    for q in queries {
        let n = idx
            .search(&mut scratch, store, q, K, DEFAULT_EF, &mut out)
            .unwrap();
        assert_eq!(n, K);
        assert!(out.windows(2).all(|w| w[0] <= w[1]), "sorted by key, slot");
        results.push(out);
    }
    let per = t.elapsed() / queries.len() as u32;
    for (q, out) in queries.iter().zip(&results) {
        let truth = brute(store, live, q, K);
        hits += out.iter().filter(|n| truth.contains(&n.slot)).count();
    }
    let r = hits as f64 / (queries.len() * K) as f64;
    println!(
        "recall@{K} = {r:.4} over {} live, search {per:?}/query",
        live.len()
    );
    r
}

#[test]
fn recall_clustered_and_after_churn() {
    let (n, nq) = if cfg!(debug_assertions) {
        (3000, 100)
    } else {
        (20000, 200)
    };
    let dim = 50;
    let mut gen = Gen::new(dim, 100, 1);
    let mut store = Store::new(dim);
    let mut idx = Hnsw::new(Params::default(), StdAlloc).unwrap();
    for s in 0..n as u32 {
        let v = gen.point();
        store.set(s, &v);
    }
    let t = Instant::now();
    for s in 0..n as u32 {
        idx.insert(&mut store, s).unwrap();
    }
    println!(
        "build {n} x {dim}: {:?}, {} bytes, max level {}",
        t.elapsed(),
        idx.bytes(),
        idx.max_level()
    );
    idx.check().unwrap();
    assert!(store.checkpoints > 0);
    assert!(store.max_batch <= 33, "2M + 1");
    let queries: Vec<Vec<f32>> = (0..nq).map(|_| gen.point()).collect();
    let mut live: Vec<u32> = (0..n as u32).collect();
    assert!(recall(&idx, &mut store, &live, &queries) >= 0.95);

    // Delete a random 30%, repairing whenever asked.
    let mut rng = Rng(7);
    for i in (1..live.len()).rev() {
        live.swap(i, rng.below(i + 1));
    }
    let del = live.split_off(live.len() - n * 3 / 10);
    let t = Instant::now();
    let mut repairs = 0;
    for &s in &del {
        idx.delete(s).unwrap();
        if idx.needs_repair() {
            idx.repair(&mut store).unwrap();
            repairs += 1;
        }
    }
    idx.repair(&mut store).unwrap();
    println!(
        "delete {} with {repairs} repairs: {:?}",
        del.len(),
        t.elapsed()
    );
    idx.check().unwrap();
    assert_eq!(idx.len(), live.len());
    assert_eq!(idx.deleted(), 0);
    for &s in del.iter().take(100) {
        assert!(!idx.contains(s));
    }

    // Compact the rows as the kernel does: the last row moves into a hole.
    live.sort_unstable();
    let mut holes: Vec<u32> = del.clone();
    holes.sort_unstable_by(|a, b| b.cmp(a));
    let mut top = n as u32;
    while let Some(hole) = holes.pop() {
        while top > 0 && !idx.contains(top - 1) {
            top -= 1;
        }
        if top == 0 || hole >= top - 1 {
            break;
        }
        top -= 1;
        store.copy(top, hole);
        idx.move_slot(top, hole).unwrap();
    }
    let live: Vec<u32> = (0..live.len() as u32).collect();
    assert!(live.iter().all(|&s| idx.contains(s)));
    idx.check().unwrap();
    assert!(recall(&idx, &mut store, &live, &queries) >= 0.95);

    // Insert new vectors into the freed slots.
    let mut live = live;
    let t = Instant::now();
    for s in live.len() as u32..n as u32 {
        let v = gen.point();
        store.set(s, &v);
        idx.insert(&mut store, s).unwrap();
        live.push(s);
    }
    println!("reinsert {}: {:?}", n - live.len() + del.len(), t.elapsed());
    idx.check().unwrap();
    assert_eq!(idx.len(), n);
    assert!(recall(&idx, &mut store, &live, &queries) >= 0.95);
}
