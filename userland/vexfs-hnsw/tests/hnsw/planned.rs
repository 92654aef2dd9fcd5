// SPDX-License-Identifier: GPL-2.0
//! Inserts planned together (`Hnsw::plan` against the graph as it was,
//! then `Hnsw::insert_planned` in order, each with the ones before it as
//! mates), as the kernel links a batch on several CPUs: the graph stays
//! valid and as good as one built an insert at a time.

use crate::common::{brute, Gen, Store};
use vexfs_hnsw::{Hnsw, Neighbour, Params, Plan, StdAlloc, DEFAULT_EF};

const K: usize = 10;

fn recall(idx: &Hnsw<StdAlloc>, store: &mut Store, n: u32, queries: &[Vec<f32>]) -> f64 {
    let live: Vec<u32> = (0..n).collect();
    let mut scratch = idx.new_scratch(StdAlloc);
    let mut out = [Neighbour::default(); K];
    let mut hits = 0;
    for q in queries {
        let got = idx
            .search(&mut scratch, store, q, K, DEFAULT_EF, &mut out)
            .unwrap();
        let truth = brute(store, &live, q, K);
        hits += out[..got]
            .iter()
            .filter(|x| truth.contains(&x.slot))
            .count();
    }
    hits as f64 / (queries.len() * K) as f64
}

/// Inserts slots `from..to` planned together, `chunk` at a time; every
/// `wrong`-th plan gets a level other than the one the insert draws.
fn build_planned(
    idx: &mut Hnsw<StdAlloc>,
    store: &mut Store,
    from: u32,
    to: u32,
    chunk: usize,
    wrong: usize,
) {
    let mut scratch = idx.new_scratch(StdAlloc);
    let mut plans: Vec<Plan<StdAlloc>> = (0..chunk).map(|_| Plan::new(StdAlloc)).collect();
    let mut levels = vec![0; chunk];
    let mut start = from;
    while start < to {
        let n = (to - start).min(chunk as u32) as usize;
        idx.next_levels(&mut levels[..n]);
        for i in 0..n {
            let level = if wrong > 0 && (start as usize + i) % wrong == 0 {
                levels[i] + 1
            } else {
                levels[i]
            };
            plans[i].reserve(idx, level).unwrap();
            idx.reserve_plan_scratch(&mut scratch).unwrap();
            idx.plan(&mut scratch, store, start + i as u32, level, &mut plans[i])
                .unwrap();
        }
        let slots: Vec<u32> = (start..start + n as u32).collect();
        for i in 0..n {
            idx.insert_planned(store, slots[i], &plans[i], &slots[..i])
                .unwrap();
        }
        start += n as u32;
    }
}

#[test]
fn planned_inserts_build_a_graph_as_good() {
    let (n, nq) = if cfg!(debug_assertions) {
        (3000u32, 100)
    } else {
        (20000, 200)
    };
    let dim = 50;
    let mut gen = Gen::new(dim, 100, 5);
    let mut store = Store::new(dim);
    for s in 0..n {
        store.set(s, &gen.point());
    }
    let queries: Vec<Vec<f32>> = (0..nq).map(|_| gen.point()).collect();

    let mut serial = Hnsw::new(Params::default(), StdAlloc).unwrap();
    for s in 0..n {
        serial.insert(&mut store, s).unwrap();
    }
    let want = recall(&serial, &mut store, n, &queries);

    for (chunk, wrong) in [(32, 0), (8, 7)] {
        let mut idx = Hnsw::new(Params::default(), StdAlloc).unwrap();
        build_planned(&mut idx, &mut store, 0, n, chunk, wrong);
        idx.check().unwrap();
        assert_eq!(idx.len(), n as usize);
        let got = recall(&idx, &mut store, n, &queries);
        println!("recall@{K}: serial {want:.4}, planned {chunk} at a time {got:.4}");
        assert!(got >= 0.95, "{got}");
        assert!(got >= want - 0.02, "planned {got} against serial {want}");
    }
}

/// `insert` is a plan and its linking: the same graph as before the split
/// (every search answers alike after inserts planned one at a time).
#[test]
fn one_at_a_time_plans_equal_insert() {
    let dim = 16;
    let mut gen = Gen::new(dim, 10, 9);
    let mut store = Store::new(dim);
    let n = 800u32;
    for s in 0..n {
        store.set(s, &gen.point());
    }
    let mut a = Hnsw::new(Params::default(), StdAlloc).unwrap();
    let mut b = Hnsw::new(Params::default(), StdAlloc).unwrap();
    for s in 0..n {
        a.insert(&mut store, s).unwrap();
    }
    build_planned(&mut b, &mut store, 0, n, 1, 0);
    let (mut sa, mut sb) = (a.new_scratch(StdAlloc), b.new_scratch(StdAlloc));
    let (mut oa, mut ob) = ([Neighbour::default(); K], [Neighbour::default(); K]);
    for _ in 0..50 {
        let q = gen.point();
        let na = a.search(&mut sa, &mut store, &q, K, 32, &mut oa).unwrap();
        let nb = b.search(&mut sb, &mut store, &q, K, 32, &mut ob).unwrap();
        assert_eq!(oa[..na], ob[..nb]);
    }
}
