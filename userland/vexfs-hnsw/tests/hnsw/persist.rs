// SPDX-License-Identifier: GPL-2.0
//! Persistence (`encode`/`decode`): round trips re-encode byte for byte,
//! answer every search identically and stay identical through later
//! inserts, deletes and repairs; untrusted bytes (truncated, corrupted,
//! random) never panic, and whatever decodes passes `check` and keeps
//! working.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::{long, FailAlloc, Gen, Rng, Store};
use proptest::prelude::*;
use vexfs_hnsw::{Alloc, Distances, Error, Hnsw, Neighbour, Params, StdAlloc, Target};

const K: usize = 10;
const HEADER: usize = 64;

/// The whole encoding, checking `encoded_len` and the piece sizes.
fn enc<A: Alloc>(idx: &Hnsw<A>) -> Vec<u8> {
    let mut out = Vec::new();
    idx.encode(&mut |piece: &[u8]| -> Result<(), Infallible> {
        assert!(!piece.is_empty() && piece.len() <= 1024, "{}", piece.len());
        out.extend_from_slice(piece);
        Ok(())
    })
    .unwrap();
    assert_eq!(out.len(), idx.encoded_len());
    out
}

/// Decodes the encoding of `idx`: re-encodes byte for byte, same counts.
fn round_trip<A: Alloc>(idx: &Hnsw<A>) -> Hnsw<StdAlloc> {
    let bytes = enc(idx);
    let back = Hnsw::decode(*idx.params(), &bytes, StdAlloc).unwrap();
    back.check().unwrap();
    assert!(enc(&back) == bytes, "the re-encoding differs");
    assert_eq!(
        (back.len(), back.deleted(), back.max_level()),
        (idx.len(), idx.deleted(), idx.max_level())
    );
    back
}

/// Both indexes give the same results (slots and keys) for every query.
fn same_searches<A: Alloc, B: Alloc>(
    a: &Hnsw<A>,
    sa: A,
    b: &Hnsw<B>,
    sb: B,
    store: &mut Store,
    queries: &[Vec<f32>],
    ef: usize,
) {
    let (mut sa, mut sb) = (a.new_scratch(sa), b.new_scratch(sb));
    let (mut oa, mut ob) = ([Neighbour::default(); K], [Neighbour::default(); K]);
    for q in queries {
        let na = a.search(&mut sa, store, q, K, ef, &mut oa).unwrap();
        let nb = b.search(&mut sb, store, q, K, ef, &mut ob).unwrap();
        assert_eq!(na, K.min(a.len()));
        assert_eq!(oa[..na], ob[..nb], "ef {ef}");
    }
}

/// `n` clustered points in dimension `dim`, inserted in slot order.
fn build(n: u32, m: usize, dim: usize, seed: u64) -> (Hnsw<StdAlloc>, Store, Gen) {
    let mut gen = Gen::new(dim, 40, seed);
    let mut store = Store::new(dim);
    let params = Params {
        m,
        ef_construction: 100,
        ..Params::default()
    };
    let mut idx = Hnsw::new(params, StdAlloc).unwrap();
    for s in 0..n {
        store.set(s, &gen.point());
        idx.insert(&mut store, s).unwrap();
    }
    (idx, store, gen)
}

/// Deletes 10% of the slots and repairs (free node ids, free slots);
/// with `moves`, moves rows from the top slots into 2% of the holes (no
/// more identity map); then deletes 5% more, left as tombstones.
fn churn(idx: &mut Hnsw<StdAlloc>, store: &mut Store, n: u32, seed: u64, moves: bool) {
    let mut rng = Rng(seed);
    let mut gone = Vec::new();
    while gone.len() < n as usize / 10 {
        let s = rng.below(n as usize) as u32;
        if idx.contains(s) {
            idx.delete(s).unwrap();
            gone.push(s);
        }
    }
    idx.repair(store).unwrap();
    if moves {
        gone.sort_unstable();
        let mut top = n - 1;
        for &hole in gone.iter().take(n as usize / 50) {
            while top > hole && !idx.contains(top) {
                top -= 1;
            }
            if top <= hole {
                break;
            }
            store.copy(top, hole);
            idx.move_slot(top, hole).unwrap();
            top -= 1;
        }
    }
    let mut dead = 0;
    while dead < n / 20 {
        let s = rng.below(n as usize) as u32;
        if idx.contains(s) {
            idx.delete(s).unwrap();
            dead += 1;
        }
    }
    assert!(idx.deleted() > 0);
    idx.check().unwrap();
}

#[test]
fn round_trip_after_churn() {
    let (n, dim) = (3000u32, 32);
    let (mut idx, mut store, mut gen) = build(n, 16, dim, 5);
    let queries: Vec<Vec<f32>> = (0..300).map(|_| gen.point()).collect();

    // Fresh (identity map, no free ids, no tombstones).
    let t = Instant::now();
    let bytes = enc(&idx);
    let t_enc = t.elapsed();
    let t = Instant::now();
    let back = Hnsw::decode(*idx.params(), &bytes, StdAlloc).unwrap();
    let t_dec = t.elapsed();
    assert!(enc(&back) == bytes);
    println!(
        "fresh, {n} nodes, M 16: {} bytes encoded ({:.1}/node; {:.1}/node in memory), \
         encode {t_enc:?}, decode (with check) {t_dec:?}, max level {}",
        bytes.len(),
        bytes.len() as f64 / n as f64,
        idx.bytes() as f64 / n as f64,
        idx.max_level()
    );
    for ef in [10, 64] {
        same_searches(&idx, StdAlloc, &back, StdAlloc, &mut store, &queries, ef);
    }

    // Free ids, free slots, moved rows, tombstones.
    churn(&mut idx, &mut store, n, 6, true);
    let mut back = round_trip(&idx);
    let bytes = enc(&idx);
    println!(
        "churned: {} live, {} deleted: {} bytes ({:.1}/node in use)",
        idx.len(),
        idx.deleted(),
        bytes.len(),
        bytes.len() as f64 / (idx.len() + idx.deleted()) as f64
    );
    for ef in [1, 10, 64, 200, n as usize] {
        same_searches(&idx, StdAlloc, &back, StdAlloc, &mut store, &queries, ef);
    }

    // Later inserts (into freed slots, reusing freed node ids, and new
    // slots), deletes and a repair: still identical.
    let mut slots: Vec<u32> = (0..n).filter(|&s| !idx.holds(s)).collect();
    assert!(!slots.is_empty());
    slots.extend(n..n + 500);
    for &s in &slots {
        store.set(s, &gen.point());
        idx.insert(&mut store, s).unwrap();
        back.insert(&mut store, s).unwrap();
    }
    assert!(enc(&idx) == enc(&back), "inserts diverged");
    let mut rng = Rng(77);
    for _ in 0..400 {
        let s = rng.below((n + 500) as usize) as u32;
        if idx.contains(s) {
            idx.delete(s).unwrap();
            back.delete(s).unwrap();
        }
    }
    assert!(enc(&idx) == enc(&back), "deletes diverged");
    idx.repair(&mut store).unwrap();
    back.repair(&mut store).unwrap();
    back.check().unwrap();
    assert!(enc(&idx) == enc(&back), "repairs diverged");
    for ef in [10, 64] {
        same_searches(&idx, StdAlloc, &back, StdAlloc, &mut store, &queries, ef);
    }
    round_trip(&back);
}

#[test]
fn empty_round_trip() {
    let params = Params::default();
    let mut idx = Hnsw::new(params, StdAlloc).unwrap();
    assert_eq!(enc(&idx).len(), HEADER);
    let mut back = round_trip(&idx);
    assert!(back.is_empty() && back.deleted() == 0);
    let mut store = Store::new(4);
    let mut gen = Gen::new(4, 3, 1);
    for s in 0..50 {
        store.set(s, &gen.point());
        idx.insert(&mut store, s).unwrap();
        back.insert(&mut store, s).unwrap();
    }
    assert!(enc(&idx) == enc(&back));
    // Emptied again: no node ids at all, but the generator moved on.
    for s in 0..50 {
        idx.delete(s).unwrap();
        back.delete(s).unwrap();
    }
    assert_eq!(enc(&idx).len(), HEADER);
    round_trip(&idx);
    assert!(enc(&idx) == enc(&back));
    assert!(enc(&idx) != enc(&Hnsw::new(params, StdAlloc).unwrap()));
}

/// The repair cursor is not stored: a decoded index restarts the repair
/// from the beginning and ends with the same graph.
#[test]
fn mid_repair_round_trip() {
    let (mut idx, mut store, _) = build(1500, 8, 16, 3);
    let mut rng = Rng(4);
    for _ in 0..400 {
        let s = rng.below(1500) as u32;
        if idx.contains(s) {
            idx.delete(s).unwrap();
        }
    }
    for _ in 0..3 {
        assert!(!idx.repair_step(&mut store, 20).unwrap());
    }
    let mut back = round_trip(&idx);
    while !idx.repair_step(&mut store, 20).unwrap() {}
    back.repair(&mut store).unwrap();
    assert_eq!(idx.deleted(), 0);
    assert!(enc(&idx) == enc(&back));
}

/// Random inserts, deletes, moves and repairs; a twin decoded from the
/// index follows the same operations and stays identical; every state
/// round-trips.
#[test]
fn random_operations_round_trip() {
    const SLOTS: usize = 300;
    let mut gen = Gen::new(8, 6, 21);
    let mut store = Store::new(8);
    for s in 0..SLOTS as u32 {
        store.set(s, &gen.point());
    }
    let params = Params {
        m: 4,
        ef_construction: 24,
        ..Params::default()
    };
    let mut idx = Hnsw::new(params, StdAlloc).unwrap();
    let mut twin = round_trip(&idx);
    let mut rng = Rng(22);
    let mut partial = 0;
    for op in 0..4000 {
        let s = rng.below(SLOTS) as u32;
        match rng.below(100) {
            0..=49 => {
                if !idx.holds(s) {
                    store.set(s, &gen.point());
                    idx.insert(&mut store, s).unwrap();
                    twin.insert(&mut store, s).unwrap();
                }
            }
            50..=79 => {
                if idx.contains(s) {
                    idx.delete(s).unwrap();
                    twin.delete(s).unwrap();
                }
            }
            80..=89 => {
                let to = rng.below(SLOTS) as u32;
                if idx.holds(s) && !idx.holds(to) {
                    store.copy(s, to);
                    idx.move_slot(s, to).unwrap();
                    twin.move_slot(s, to).unwrap();
                }
            }
            90..=94 => {
                idx.repair(&mut store).unwrap();
                twin.repair(&mut store).unwrap();
            }
            _ => {
                // A partial repair: the twin restarts from a decode.
                if !idx.repair_step(&mut store, 1 + rng.below(4)).unwrap() {
                    partial += 1;
                }
                twin = round_trip(&idx);
            }
        }
        assert!(enc(&idx) == enc(&twin), "op {op}");
        if op % 50 == 0 {
            twin = round_trip(&idx);
        }
    }
    assert!(partial > 10, "{partial}");
    idx.check().unwrap();
}

/// A failed insert may leave spare slots in the slot map: still decodes.
#[test]
fn round_trip_after_failed_inserts() {
    let a = FailAlloc::new(usize::MAX);
    let mut gen = Gen::new(8, 4, 5);
    let mut store = Store::new(8);
    let params = Params {
        m: 4,
        ef_construction: 16,
        ..Params::default()
    };
    let mut idx = Hnsw::new(params, a.clone()).unwrap();
    for s in 0..100 {
        store.set(s, &gen.point());
        idx.insert(&mut store, s).unwrap();
    }
    store.set(5000, &gen.point());
    let mut failures = 0;
    for budget in 0.. {
        a.set(budget);
        let r = idx.insert(&mut store, 5000);
        a.set(usize::MAX);
        let back = round_trip(&idx);
        match r {
            Ok(()) => {
                assert!(back.contains(5000));
                break;
            }
            Err(e) => {
                assert_eq!(e, Error::OutOfMemory);
                assert!(!back.holds(5000));
                failures += 1;
            }
        }
    }
    assert!(failures > 0);
}

#[test]
fn params_on_decode() {
    let (idx, _, _) = build(200, 6, 8, 8);
    let bytes = enc(&idx);
    let p = *idx.params();
    for m in [1, 5, 7, 128] {
        assert_eq!(
            Hnsw::decode(Params { m, ..p }, &bytes, StdAlloc).err(),
            Some(Error::InvalidParams)
        );
    }
    // Only M is stored: the rest is the caller's, and the seed is unused.
    let q = Params {
        ef_construction: 7,
        repair_percent: 50,
        seed: 1,
        ..p
    };
    let back = Hnsw::decode(q, &bytes, StdAlloc).unwrap();
    assert_eq!(*back.params(), q);
    assert!(enc(&back) == bytes);
}

// ---- Untrusted input -------------------------------------------------

/// Distances over a copy of the rows that tolerates any slot (a corrupt
/// but consistent encoding may map nodes to other slots).
#[derive(Clone)]
struct Rows {
    dim: usize,
    rows: Vec<f32>,
}

impl Rows {
    fn row(&self, s: u32) -> Option<&[f32]> {
        let s = s as usize;
        self.rows.get(s * self.dim..(s + 1) * self.dim)
    }
}

impl Distances for Rows {
    type Query = [f32];
    fn batch(&mut self, from: Target<'_, [f32]>, slots: &[u32], out: &mut [u32]) {
        let q = match from {
            Target::Query(q) => Some(q),
            Target::Slot(s) => self.row(s),
        };
        for (o, &s) in out.iter_mut().zip(slots) {
            *o = match (q, self.row(s)) {
                (Some(q), Some(r)) => {
                    vexfs_simd::order_key(q.iter().zip(r).map(|(a, b)| (a - b) * (a - b)).sum())
                }
                _ => u32::MAX,
            };
        }
    }
}

/// A valid encoding and what decoding it needs.
struct Fixture {
    params: Params,
    bytes: Vec<u8>,
    rows: Rows,
}

fn fixture(n: u32, m: usize, dim: usize, seed: u64, moves: bool) -> Fixture {
    let (mut idx, mut store, _) = build(n, m, dim, seed);
    churn(&mut idx, &mut store, n, seed + 1, moves);
    Fixture {
        params: *idx.params(),
        bytes: enc(&idx),
        rows: Rows {
            dim,
            rows: store.rows.clone(),
        },
    }
}

/// M 4, 300 nodes, free ids and tombstones; with and without the
/// identity map.
fn small() -> &'static [Fixture; 2] {
    static F: OnceLock<[Fixture; 2]> = OnceLock::new();
    F.get_or_init(|| [fixture(300, 4, 8, 30, false), fixture(300, 4, 8, 31, true)])
}

/// M 16, 1500 nodes, free ids, tombstones, moved rows.
fn medium() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| fixture(1500, 16, 16, 40, true))
}

/// Decodes untrusted bytes: an error of the expected kinds, or an index
/// that passes `check` and survives searches, an insert, deletes, a
/// repair and another round trip. True if it decoded.
fn try_decode(f: &Fixture, bytes: &[u8]) -> bool {
    let mut idx = match Hnsw::decode(f.params, bytes, StdAlloc) {
        Err(Error::Corrupt | Error::InvalidParams) => return false,
        Err(e) => panic!("unexpected {e:?}"),
        Ok(idx) => idx,
    };
    idx.check().unwrap();
    let mut rows = f.rows.clone();
    let mut sc = idx.new_scratch(StdAlloc);
    let mut out = [Neighbour::default(); 5];
    for s in [0u32, 7, 123] {
        let q = rows.row(s).unwrap().to_vec();
        for ef in [5, 64, 1 << 20] {
            let n = idx.search(&mut sc, &mut rows, &q, 5, ef, &mut out).unwrap();
            assert!(n <= idx.len());
        }
    }
    let new = (rows.rows.len() / rows.dim) as u32;
    if !idx.holds(new) {
        let v = rows.row(1).unwrap().to_vec();
        rows.rows.extend(v);
        idx.insert(&mut rows, new).unwrap();
    }
    for s in 0..20 {
        if idx.contains(s) {
            idx.delete(s).unwrap();
        }
    }
    idx.repair(&mut rows).unwrap();
    idx.check().unwrap();
    round_trip(&idx);
    true
}

#[test]
fn valid_fixtures_decode() {
    for f in small().iter().chain([medium()]) {
        assert!(try_decode(f, &f.bytes));
    }
}

/// Every truncation of the small encodings, the first 4 KiB and 500
/// random ones of the medium, and a byte too many, are rejected.
#[test]
fn truncations_and_extensions() {
    let mut rejected = 0;
    for f in small() {
        for len in 0..f.bytes.len() {
            assert!(!try_decode(f, &f.bytes[..len]), "len {len}");
            rejected += 1;
        }
    }
    let f = medium();
    let mut rng = Rng(5);
    let lens = (0..4096).chain((0..500).map(|_| rng.below(f.bytes.len())));
    for len in lens {
        assert!(!try_decode(f, &f.bytes[..len]), "len {len}");
        rejected += 1;
    }
    for f in small().iter().chain([medium()]) {
        for extra in [0u8, 1, 0xff] {
            let mut b = f.bytes.clone();
            b.push(extra);
            assert!(!try_decode(f, &b));
            rejected += 1;
        }
    }
    println!("{rejected} truncations and extensions rejected");
}

/// Every single-bit flip, and every byte set to 0x00, 0xff, +1 and -1, of
/// the small encodings: rejected or consistent. `make test` tries every
/// byte with a third of these values, in turn (all of them under
/// `make test-long`).
#[test]
fn every_single_bit_and_byte_corruption() {
    let stride = if long() { 1 } else { 3 };
    let (mut tried, mut accepted) = (0, 0);
    for f in small() {
        let mut b = f.bytes.clone();
        for i in 0..b.len() {
            let orig = b[i];
            let bits = (0..8).map(|k| orig ^ (1 << k));
            let bytes = [0, 0xff, orig.wrapping_add(1), orig.wrapping_sub(1)];
            for (j, v) in bits.chain(bytes).enumerate() {
                if v == orig || (i + j) % stride != 0 {
                    continue;
                }
                b[i] = v;
                tried += 1;
                if try_decode(f, &b) {
                    accepted += 1;
                }
            }
            b[i] = orig;
        }
    }
    println!("{tried} single-byte corruptions: {accepted} decoded consistently, the rest rejected");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(!try_decode(&small()[0], &bytes));
        prop_assert!(!try_decode(medium(), &bytes));
    }

    /// A valid header (so the length matches) over random sections.
    #[test]
    fn valid_header_random_body(seed in any::<u64>()) {
        let f = &small()[1];
        let mut b = f.bytes.clone();
        let mut rng = Rng(seed);
        for x in &mut b[HEADER..] {
            *x = rng.next_u64() as u8;
        }
        prop_assert!(!try_decode(f, &b));
    }

    /// One to eight random bytes of the medium encoding overwritten.
    #[test]
    fn random_corruptions(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let f = medium();
        let mut b = f.bytes.clone();
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        try_decode(f, &b);
    }

    /// A random bit flipped anywhere in the medium encoding.
    #[test]
    fn random_bit_flip(i in any::<prop::sample::Index>(), bit in 0..8u8) {
        let f = medium();
        let mut b = f.bytes.clone();
        let i = i.index(b.len());
        b[i] ^= 1 << bit;
        try_decode(f, &b);
    }

    /// Random truncation of the medium encoding.
    #[test]
    fn random_truncation(i in any::<prop::sample::Index>()) {
        let f = medium();
        let len = i.index(f.bytes.len());
        prop_assert!(!try_decode(f, &f.bytes[..len]));
    }
}
