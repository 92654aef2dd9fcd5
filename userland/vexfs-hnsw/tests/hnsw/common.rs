// SPDX-License-Identifier: GPL-2.0

use std::cell::Cell;
use std::rc::Rc;

use vexfs_hnsw::{Alloc, Distances, StdAlloc, Target};

/// `make test-long` (VEXFS_TEST_LONG=1): full-size data sets and sweeps.
pub fn long() -> bool {
    std::env::var_os("VEXFS_TEST_LONG").is_some_and(|v| v == "1")
}

pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn gauss(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Clustered data: `clusters` centres in [-1, 1]^dim, points = centre +
/// N(0, sigma^2) noise.
pub struct Gen {
    pub dim: usize,
    centres: Vec<f32>,
    rng: Rng,
}

impl Gen {
    pub fn new(dim: usize, clusters: usize, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let centres = (0..dim * clusters)
            .map(|_| (rng.unit() * 2.0 - 1.0) as f32)
            .collect();
        Self { dim, centres, rng }
    }
    pub fn point(&mut self) -> Vec<f32> {
        let c = self.rng.below(self.centres.len() / self.dim);
        (0..self.dim)
            .map(|i| self.centres[c * self.dim + i] + (0.5 * self.rng.gauss()) as f32)
            .collect()
    }
}

/// Vectors by slot, squared L2 in f32, keys by `vexfs_simd::order_key`.
pub struct Store {
    pub dim: usize,
    pub rows: Vec<f32>,
    pub batches: usize,
    pub checkpoints: usize,
    pub max_batch: usize,
    /// Slots searches may return (`None`: all); counts the calls.
    pub accept: Option<fn(u32) -> bool>,
    pub accept_calls: usize,
}

impl Store {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            rows: Vec::new(),
            batches: 0,
            checkpoints: 0,
            max_batch: 0,
            accept: None,
            accept_calls: 0,
        }
    }
    pub fn row(&self, slot: u32) -> &[f32] {
        &self.rows[slot as usize * self.dim..(slot as usize + 1) * self.dim]
    }
    pub fn set(&mut self, slot: u32, v: &[f32]) {
        let end = (slot as usize + 1) * self.dim;
        if self.rows.len() < end {
            self.rows.resize(end, 0.0);
        }
        self.rows[slot as usize * self.dim..end].copy_from_slice(v);
    }
    pub fn copy(&mut self, from: u32, to: u32) {
        let v = self.row(from).to_vec();
        self.set(to, &v);
    }
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

impl Distances for Store {
    type Query = [f32];
    fn batch(&mut self, from: Target<'_, [f32]>, slots: &[u32], out: &mut [u32]) {
        assert_eq!(slots.len(), out.len());
        self.batches += 1;
        self.max_batch = self.max_batch.max(slots.len());
        let q: Vec<f32> = match from {
            Target::Query(q) => q.to_vec(),
            Target::Slot(s) => self.row(s).to_vec(),
        };
        for (o, &s) in out.iter_mut().zip(slots) {
            *o = vexfs_simd::order_key(l2(&q, self.row(s)));
        }
    }
    fn checkpoint(&mut self) {
        self.checkpoints += 1;
    }
    fn accept(&mut self, slot: u32) -> bool {
        self.accept_calls += 1;
        self.accept.is_none_or(|f| f(slot))
    }
}

/// Exact k-NN in f64 over `live` slots: slots sorted by distance, then slot.
pub fn brute(store: &Store, live: &[u32], q: &[f32], k: usize) -> Vec<u32> {
    let mut d: Vec<(f64, u32)> = live
        .iter()
        .map(|&s| {
            let r = store.row(s);
            (
                r.iter()
                    .zip(q)
                    .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                    .sum(),
                s,
            )
        })
        .collect();
    d.sort_by(|a, b| a.partial_cmp(b).unwrap());
    d.into_iter().take(k).map(|x| x.1).collect()
}

/// Allocator that fails once its budget of allocations is spent.
#[derive(Clone)]
pub struct FailAlloc(pub Rc<Cell<usize>>);

impl FailAlloc {
    pub fn new(budget: usize) -> Self {
        Self(Rc::new(Cell::new(budget)))
    }
    pub fn set(&self, budget: usize) {
        self.0.set(budget);
    }
}

impl Alloc for FailAlloc {
    fn alloc(&self, layout: std::alloc::Layout) -> Option<std::ptr::NonNull<u8>> {
        let left = self.0.get();
        if left == 0 {
            return None;
        }
        self.0.set(left - 1);
        StdAlloc.alloc(layout)
    }
    unsafe fn free(&self, ptr: std::ptr::NonNull<u8>, layout: std::alloc::Layout) {
        // SAFETY: forwarded from the caller's guarantee.
        unsafe { StdAlloc.free(ptr, layout) }
    }
}
