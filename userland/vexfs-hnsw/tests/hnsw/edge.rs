// SPDX-License-Identifier: GPL-2.0
//! Edge cases and allocation failures.

use crate::common::{brute, FailAlloc, Gen, Store};
use vexfs_hnsw::{Error, Hnsw, Neighbour, Params, StdAlloc};

fn small(n: u32, seed: u64) -> (Hnsw<StdAlloc>, Store) {
    let mut gen = Gen::new(8, 5, seed);
    let mut store = Store::new(8);
    let mut idx = Hnsw::new(
        Params {
            m: 4,
            ef_construction: 32,
            ..Params::default()
        },
        StdAlloc,
    )
    .unwrap();
    for s in 0..n {
        store.set(s, &gen.point());
        idx.insert(&mut store, s).unwrap();
    }
    idx.check().unwrap();
    (idx, store)
}

#[test]
fn empty_index() {
    let mut store = Store::new(4);
    let idx = Hnsw::new(Params::default(), StdAlloc).unwrap();
    let mut s = idx.new_scratch(StdAlloc);
    let mut out = [Neighbour::default(); 5];
    assert_eq!(
        idx.search(&mut s, &mut store, &[0.0; 4], 5, 10, &mut out),
        Ok(0)
    );
    assert!(idx.is_empty());
    idx.check().unwrap();
}

#[test]
fn bad_arguments() {
    assert!(matches!(
        Hnsw::new(
            Params {
                m: 1,
                ..Params::default()
            },
            StdAlloc
        ),
        Err(Error::InvalidParams)
    ));
    let (mut idx, mut store) = small(50, 1);
    assert_eq!(idx.delete(1000), Err(Error::UnknownSlot));
    assert_eq!(idx.delete(u32::MAX), Err(Error::UnknownSlot));
    assert_eq!(idx.insert(&mut store, 3), Err(Error::SlotInUse));
    assert_eq!(idx.insert(&mut store, u32::MAX), Err(Error::InvalidSlot));
    assert!(idx.holds(3) && idx.contains(3));
    assert!(!idx.holds(50) && !idx.contains(50));
    idx.delete(3).unwrap();
    assert!(
        idx.holds(3) && !idx.contains(3),
        "a tombstone holds its slot"
    );
    assert_eq!(idx.delete(3), Err(Error::UnknownSlot));
    assert_eq!(
        idx.insert(&mut store, 3),
        Err(Error::SlotInUse),
        "tombstone until repair"
    );
    assert_eq!(idx.move_slot(4, 5), Err(Error::SlotInUse));
    assert_eq!(idx.move_slot(77, 78), Err(Error::UnknownSlot));
    idx.repair(&mut store).unwrap();
    assert!(!idx.holds(3), "purged: the slot is free");
    idx.insert(&mut store, 3).unwrap();
    idx.check().unwrap();
}

#[test]
fn ef_below_k_and_k_above_live() {
    let (mut idx, mut store) = small(300, 2);
    let mut s = idx.new_scratch(StdAlloc);
    let q = store.row(17).to_vec();
    let mut out = [Neighbour::default(); 20];
    // ef < k: ef is raised to k.
    assert_eq!(idx.search(&mut s, &mut store, &q, 20, 1, &mut out), Ok(20));
    assert_eq!(out[0].slot, 17);
    let live: Vec<u32> = (0..300).collect();
    let truth = brute(&store, &live, &q, 20);
    let hits = out.iter().filter(|n| truth.contains(&n.slot)).count();
    assert!(hits >= 18, "{hits}");
    // k above the live count: every live slot, exactly ordered.
    for s in 10..290 {
        idx.delete(s).unwrap();
    }
    let mut out = [Neighbour::default(); 64];
    let n = idx.search(&mut s, &mut store, &q, 64, 8, &mut out).unwrap();
    assert_eq!(n, 20);
    let live: Vec<u32> = (0..10).chain(290..300).collect();
    let got: Vec<u32> = out[..n].iter().map(|x| x.slot).collect();
    assert_eq!(got, brute(&store, &live, &q, 64));
    // Delete everything, then the index works again from scratch.
    for &s in &live {
        idx.delete(s).unwrap();
    }
    assert!(idx.is_empty());
    assert_eq!(idx.deleted(), 0, "last delete purges");
    idx.check().unwrap();
    assert_eq!(idx.search(&mut s, &mut store, &q, 5, 8, &mut out), Ok(0));
    idx.insert(&mut store, 5).unwrap();
    idx.insert(&mut store, 6).unwrap();
    assert_eq!(idx.search(&mut s, &mut store, &q, 5, 8, &mut out), Ok(2));
    idx.check().unwrap();
}

#[test]
fn identical_vectors() {
    let mut store = Store::new(3);
    let mut idx = Hnsw::new(
        Params {
            m: 4,
            ..Params::default()
        },
        StdAlloc,
    )
    .unwrap();
    for s in 0..200 {
        store.set(s, &[1.0, 2.0, 3.0]);
        idx.insert(&mut store, s).unwrap();
    }
    idx.check().unwrap();
    let mut sc = idx.new_scratch(StdAlloc);
    let mut out = [Neighbour::default(); 5];
    assert_eq!(
        idx.search(&mut sc, &mut store, &[1.0, 2.0, 3.0], 5, 16, &mut out),
        Ok(5)
    );
    assert!(out.windows(2).all(|w| w[0] < w[1]));
}

/// Runs inserts, deletes, repairs and searches with the allocator failing
/// after `budget` allocations; every failure must leave a consistent index.
#[test]
fn allocation_failures() {
    let mut gen = Gen::new(8, 4, 3);
    let mut store = Store::new(8);
    for s in 0..400 {
        store.set(s, &gen.point());
    }
    let mut failures = 0;
    for budget in (0..120).step_by(3) {
        let a = FailAlloc::new(usize::MAX);
        let mut idx = Hnsw::new(
            Params {
                m: 4,
                ef_construction: 16,
                ..Params::default()
            },
            a.clone(),
        )
        .unwrap();
        let search_alloc = FailAlloc::new(usize::MAX);
        let mut sc = idx.new_scratch(search_alloc.clone());
        a.set(budget);
        let mut live = Vec::new();
        for s in 0..400u32 {
            match idx.insert(&mut store, s) {
                Ok(()) => live.push(s),
                Err(e) => {
                    assert_eq!(e, Error::OutOfMemory);
                    failures += 1;
                    assert!(!idx.contains(s));
                    idx.check().unwrap();
                    // Search still works and finds the nearest live slot.
                    let mut out = [Neighbour::default(); 3];
                    if let Some(&l) = live.last() {
                        let q = store.row(l).to_vec();
                        let n = idx
                            .search(&mut sc, &mut store, &q, 3, 400, &mut out)
                            .unwrap();
                        assert_eq!(n, live.len().min(3));
                        assert_eq!(out[0].slot, l);
                    }
                    // Deleting needs no memory; repair may fail cleanly.
                    if let Some(&l) = live.first() {
                        idx.delete(l).unwrap();
                        live.remove(0);
                        match idx.repair(&mut store) {
                            Ok(()) | Err(Error::OutOfMemory) => {}
                            Err(e) => panic!("{e:?}"),
                        }
                        idx.check().unwrap();
                    }
                    a.set(a.0.get() + 2);
                }
            }
        }
        // A search whose scratch cannot grow fails cleanly too.
        let mut out = [Neighbour::default(); 3];
        let mut sc2 = idx.new_scratch(FailAlloc::new(0));
        let q = store.row(0).to_vec();
        if !idx.is_empty() {
            assert_eq!(
                idx.search(&mut sc2, &mut store, &q, 3, 8, &mut out),
                Err(Error::OutOfMemory)
            );
        }
        a.set(usize::MAX);
        idx.repair(&mut store).unwrap();
        idx.check().unwrap();
        assert_eq!(idx.len(), live.len());
        let n = idx
            .search(&mut sc, &mut store, &q, 3, 400, &mut out)
            .unwrap();
        assert_eq!(n, live.len().min(3));
    }
    assert!(failures > 50, "{failures}");
}

/// A search filter (the kernel's "files the caller may read"): refused
/// slots never come back, the graph is still walked through them, and
/// inserts never ask.
#[test]
fn filtered_search() {
    let (h, mut st) = small(400, 7);
    assert_eq!(st.accept_calls, 0, "inserts do not filter");
    let q = st.row(3).to_vec();
    let live: Vec<u32> = (0..400).collect();
    let odd: Vec<u32> = live.iter().copied().filter(|s| s % 2 == 1).collect();
    st.accept = Some(|s| s % 2 == 1);
    let mut scratch = h.new_scratch(StdAlloc);
    let mut out = vec![Neighbour::default(); 10];
    for ef in [10, 64, 400] {
        let n = h
            .search(&mut scratch, &mut st, &q, 10, ef, &mut out)
            .unwrap();
        assert!(
            out[..n].iter().all(|nb| nb.slot % 2 == 1),
            "ef {ef}: a refused slot came back"
        );
        assert!(n >= 9, "ef {ef}: only {n} hits");
        let want = brute(&st, &odd, &q, 10);
        let hit = out[..n].iter().filter(|nb| want.contains(&nb.slot)).count();
        assert!(hit >= 8, "ef {ef}: filtered recall {hit}/10");
    }
    assert!(st.accept_calls > 0);
    // A filter that refuses everything: no result, no panic.
    st.accept = Some(|_| false);
    assert_eq!(
        h.search(&mut scratch, &mut st, &q, 10, 64, &mut out)
            .unwrap(),
        0
    );
    assert_eq!(
        h.search(&mut scratch, &mut st, &q, 10, 400, &mut out)
            .unwrap(),
        0
    );
}

/// `FVec::try_shrink_to`: keeps the elements, never below the length, frees
/// an empty vector's block, ignores a larger capacity.
#[test]
fn fvec_shrinks_to_fit() {
    let mut v = vexfs_hnsw::FVec::new(StdAlloc);
    for i in 0..100u32 {
        v.try_push(i).unwrap();
    }
    let before = v.capacity();
    v.truncate(10);
    v.try_shrink_to(20).unwrap();
    assert_eq!(v.capacity(), 20);
    assert_eq!(&v[..], &(0..10).collect::<Vec<u32>>()[..]);
    v.try_shrink_to(before).unwrap();
    assert_eq!(v.capacity(), 20);
    v.try_shrink_to(0).unwrap();
    assert_eq!(v.capacity(), 10);
    v.clear();
    v.try_shrink_to(0).unwrap();
    assert_eq!((v.capacity(), v.bytes()), (0, 0));
}

/// Near a limit, a growth that does not fit doubled takes the exact size.
#[test]
fn fvec_growth_falls_back_to_the_exact_size() {
    #[derive(Clone)]
    struct Capped(usize);
    impl vexfs_hnsw::Alloc for Capped {
        fn alloc(&self, layout: std::alloc::Layout) -> Option<std::ptr::NonNull<u8>> {
            if layout.size() > self.0 {
                return None;
            }
            StdAlloc.alloc(layout)
        }
        unsafe fn free(&self, ptr: std::ptr::NonNull<u8>, layout: std::alloc::Layout) {
            // SAFETY: forwarded from the caller's guarantee.
            unsafe { StdAlloc.free(ptr, layout) }
        }
    }
    let mut v = vexfs_hnsw::FVec::new(Capped(100 * 4));
    v.try_reserve(64).unwrap();
    for i in 0..64u32 {
        v.push_within_capacity(i).unwrap();
    }
    // Doubling would ask for 128 elements (512 bytes): over the cap.
    v.try_reserve(36).unwrap();
    assert_eq!(v.capacity(), 100);
    assert_eq!(&v[..], &(0..64).collect::<Vec<u32>>()[..]);
    assert!(v.try_reserve(37).is_err());
    assert_eq!(v.capacity(), 100);
}
