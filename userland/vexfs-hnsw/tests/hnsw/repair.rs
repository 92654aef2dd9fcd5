// SPDX-License-Identifier: GPL-2.0
//! Incremental repair (`repair_step`): searches between steps, the final
//! state, mutations between steps, allocation failures in the middle.

use crate::common::{brute, FailAlloc, Gen, Rng, Store};
use vexfs_hnsw::{Alloc, Error, Hnsw, Neighbour, Params, StdAlloc};

const K: usize = 10;

fn params() -> Params {
    Params {
        m: 8,
        ef_construction: 64,
        ..Params::default()
    }
}

/// `n` points in dimension 16, all inserted.
fn build<A: Alloc>(n: u32, alloc: A) -> (Hnsw<A>, Store, Gen) {
    let mut gen = Gen::new(16, 20, 11);
    let mut store = Store::new(16);
    let mut idx = Hnsw::new(params(), alloc).unwrap();
    for s in 0..n {
        store.set(s, &gen.point());
        idx.insert(&mut store, s).unwrap();
    }
    (idx, store, gen)
}

/// Deletes a random `percent` of `live` (removed from it), without repair.
fn delete_some<A: Alloc>(idx: &mut Hnsw<A>, live: &mut Vec<u32>, percent: usize, seed: u64) {
    let mut rng = Rng(seed);
    for i in (1..live.len()).rev() {
        live.swap(i, rng.below(i + 1));
    }
    let del = live.split_off(live.len() - live.len() * percent / 100);
    for &s in &del {
        idx.delete(s).unwrap();
    }
    live.sort_unstable();
}

/// Searches every query: only live slots, `K` of them, sorted; returns the
/// recall@K against brute force over `live`.
fn check_search<A: Alloc>(
    idx: &Hnsw<A>,
    scratch_alloc: A,
    store: &mut Store,
    live: &[u32],
    queries: &[Vec<f32>],
) -> f64 {
    let mut sc = idx.new_scratch(scratch_alloc);
    let mut out = [Neighbour::default(); K];
    let mut hits = 0;
    for q in queries {
        let n = idx.search(&mut sc, store, q, K, 32, &mut out).unwrap();
        assert_eq!(n, K.min(live.len()));
        assert!(out[..n].windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        for r in &out[..n] {
            assert!(idx.contains(r.slot), "deleted or unknown slot returned");
            assert!(live.binary_search(&r.slot).is_ok());
        }
        let truth = brute(store, live, q, K);
        hits += out[..n].iter().filter(|r| truth.contains(&r.slot)).count();
    }
    hits as f64 / (queries.len() * K) as f64
}

#[test]
fn search_between_steps() {
    let n = 3000;
    let (mut idx, mut store, mut gen) = build(n, StdAlloc);
    let queries: Vec<Vec<f32>> = (0..30).map(|_| gen.point()).collect();
    let mut live: Vec<u32> = (0..n).collect();
    delete_some(&mut idx, &mut live, 30, 5);
    assert!(idx.needs_repair());
    let deleted = idx.deleted();
    let mut steps = 0;
    loop {
        let done = idx.repair_step(&mut store, 50).unwrap();
        steps += 1;
        idx.check().unwrap();
        assert_eq!(idx.len(), live.len());
        if done {
            break;
        }
        // Still repairing: tombstones are kept until the last step.
        assert_eq!(idx.deleted(), deleted);
        if steps % 5 == 1 {
            let r = check_search(&idx, StdAlloc, &mut store, &live, &queries);
            assert!(r >= 0.8, "recall {r} between steps");
        }
        assert!(steps < 10_000);
    }
    assert!(steps > 10, "budget respected: {steps} steps");
    assert_eq!(idx.deleted(), 0);
    assert!(!idx.needs_repair());
    assert_eq!(idx.repair_step(&mut store, 1), Ok(true), "nothing left");
    let r = check_search(&idx, StdAlloc, &mut store, &live, &queries);
    assert!(r >= 0.9, "recall {r} after repair");
    // Freed slots are reusable.
    let free = (0..n).find(|s| live.binary_search(s).is_err()).unwrap();
    store.set(free, &gen.point());
    idx.insert(&mut store, free).unwrap();
    idx.check().unwrap();
}

#[test]
fn steps_match_full_repair() {
    let n = 1500;
    let (mut a, mut store, _) = build(n, StdAlloc);
    let (mut b, _, _) = build(n, StdAlloc);
    let mut live_a: Vec<u32> = (0..n).collect();
    let mut live_b = live_a.clone();
    delete_some(&mut a, &mut live_a, 25, 9);
    delete_some(&mut b, &mut live_b, 25, 9);
    a.repair(&mut store).unwrap();
    while !b.repair_step(&mut store, 1).unwrap() {}
    a.check().unwrap();
    b.check().unwrap();
    assert_eq!(a.bytes(), b.bytes());
    let mut sa = a.new_scratch(StdAlloc);
    let mut sb = b.new_scratch(StdAlloc);
    let (mut oa, mut ob) = ([Neighbour::default(); K], [Neighbour::default(); K]);
    for s in (0..n).step_by(37) {
        let q = store.row(s).to_vec();
        a.search(&mut sa, &mut store, &q, K, 16, &mut oa).unwrap();
        b.search(&mut sb, &mut store, &q, K, 16, &mut ob).unwrap();
        assert_eq!(oa, ob, "same graph either way");
    }
}

#[test]
fn mutations_between_steps_restart() {
    let n = 2000;
    let (mut idx, mut store, mut gen) = build(n, StdAlloc);
    let mut live: Vec<u32> = (0..n).collect();
    delete_some(&mut idx, &mut live, 20, 3);
    for _ in 0..5 {
        assert!(!idx.repair_step(&mut store, 20).unwrap());
    }
    // Against the contract: a delete and an insert in the middle.
    let victim = live.remove(live.len() / 2);
    idx.delete(victim).unwrap();
    for _ in 0..3 {
        assert!(!idx.repair_step(&mut store, 20).unwrap());
    }
    store.set(n, &gen.point());
    idx.insert(&mut store, n).unwrap();
    live.push(n);
    while !idx.repair_step(&mut store, 20).unwrap() {}
    idx.check().unwrap();
    assert_eq!(idx.deleted(), 0);
    assert_eq!(idx.len(), live.len());
    assert!(!idx.contains(victim));
    let queries: Vec<Vec<f32>> = (0..20).map(|_| gen.point()).collect();
    let r = check_search(&idx, StdAlloc, &mut store, &live, &queries);
    assert!(r >= 0.9, "recall {r}");
    // Deleting everything in the middle of a repair purges it all.
    delete_some(&mut idx, &mut live, 10, 4);
    assert!(!idx.repair_step(&mut store, 5).unwrap());
    for &s in &live {
        idx.delete(s).unwrap();
    }
    assert!(idx.is_empty());
    assert_eq!(idx.repair_step(&mut store, 5), Ok(true));
    idx.check().unwrap();
}

#[test]
fn out_of_memory_in_the_middle() {
    let n = 2000;
    let a = FailAlloc::new(usize::MAX);
    let (mut idx, mut store, mut gen) = build(n, a.clone());
    let queries: Vec<Vec<f32>> = (0..20).map(|_| gen.point()).collect();
    let mut live: Vec<u32> = (0..n).collect();
    delete_some(&mut idx, &mut live, 20, 8);

    // The first step reserves; later steps allocate nothing (except the
    // optional compaction of the last one).
    assert!(!idx.repair_step(&mut store, 30).unwrap());
    a.set(0);
    for _ in 0..10 {
        assert!(!idx.repair_step(&mut store, 30).unwrap());
    }
    idx.check().unwrap();

    // More tombstones than the free list has room for: the next step needs
    // memory and fails, in the middle of the repair, changing nothing.
    delete_some(&mut idx, &mut live, 40, 9);
    let before = idx.bytes();
    for _ in 0..3 {
        assert_eq!(idx.repair_step(&mut store, 30), Err(Error::OutOfMemory));
        assert_eq!(idx.bytes(), before);
        idx.check().unwrap();
    }
    let scratch = FailAlloc::new(usize::MAX);
    let r = check_search(&idx, scratch.clone(), &mut store, &live, &queries);
    assert!(r >= 0.8, "recall {r} after a failed step");
    assert_eq!(idx.repair(&mut store), Err(Error::OutOfMemory));
    idx.check().unwrap();

    // With memory again, the same repair completes.
    let mut budget = 0;
    loop {
        a.set(budget);
        match idx.repair_step(&mut store, 30) {
            Ok(true) => break,
            Ok(false) => {}
            Err(Error::OutOfMemory) => budget += 1,
            Err(e) => panic!("{e:?}"),
        }
        idx.check().unwrap();
    }
    a.set(usize::MAX);
    idx.check().unwrap();
    assert_eq!(idx.deleted(), 0);
    assert_eq!(idx.len(), live.len());
    let r = check_search(&idx, scratch, &mut store, &live, &queries);
    assert!(r >= 0.9, "recall {r}");
}
