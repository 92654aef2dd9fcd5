// SPDX-License-Identifier: GPL-2.0

//! [`NativeStore`]: a userland vector store implementing [`Distances`] with
//! the SIMD kernels of `vexfs-simd` (feature `std`). Not part of the kernel
//! build: the kernel stores its rows in its own chunks.
//!
//! Rows are float32, `dim` values each, by slot. For cosine the store keeps
//! each row (and each query) scaled to unit length, as hnswlib's cosine
//! space does, so a distance is `1 - a.b`: one dot product, without the
//! square roots and division of `cosine_distances_with_norms`, which the
//! kernel needs because it must return the user's vectors unchanged. The
//! distance itself is computed by the assembly kernels; this file scales
//! vectors once when they are set and turns results into order keys with
//! `vexfs_simd::order_key`.

extern crate alloc;

use alloc::vec::Vec;

use vexfs_simd::{Metric, NormSq, Path};

use super::{Distances, Target};

/// Vectors by slot and a distance (cosine, squared L2 or negated dot) on
/// the best SIMD path of this CPU.
pub struct NativeStore {
    dim: usize,
    metric: Metric,
    path: Path,
    rows: Vec<f32>,
    /// Slots that have storage.
    slots: usize,
}

/// A query for a [`NativeStore`] (for cosine, scaled to unit length).
/// Reuse one with [`NativeQuery::set`] to avoid an allocation per query.
#[derive(Clone, Debug, Default)]
pub struct NativeQuery {
    v: Vec<f32>,
}

impl NativeQuery {
    /// The vector as the store compares it.
    pub fn vector(&self) -> &[f32] {
        &self.v
    }

    /// Replaces the vector (its length must be the store's dimension).
    pub fn set(&mut self, store: &NativeStore, v: &[f32]) {
        self.v.clear();
        self.v.extend_from_slice(v);
        store.normalise(&mut self.v);
    }
}

impl NativeStore {
    /// An empty store for `dim`-dimensional vectors, on the best SIMD path
    /// of this CPU (`vexfs_simd::detect`).
    pub fn new(dim: usize, metric: Metric) -> Self {
        Self::with_path(dim, metric, vexfs_simd::detect())
    }

    /// An empty store on `path`, or on the best supported path if this
    /// CPU does not support `path`.
    pub fn with_path(dim: usize, metric: Metric, path: Path) -> Self {
        let path = if vexfs_simd::supported(path) {
            path
        } else {
            vexfs_simd::detect()
        };
        Self {
            dim: dim.max(1),
            metric,
            path,
            rows: Vec::new(),
            slots: 0,
        }
    }

    /// The SIMD path in use.
    pub fn path(&self) -> Path {
        self.path
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Slots that have storage (`0..slots()`).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Bytes of the stored rows (capacity).
    pub fn bytes(&self) -> usize {
        self.rows.capacity() * core::mem::size_of::<f32>()
    }

    /// Reserves room for `slots` slots in total.
    pub fn reserve(&mut self, slots: usize) {
        let rows = slots.saturating_mul(self.dim);
        self.rows.reserve(rows.saturating_sub(self.rows.len()));
    }

    /// For cosine, scales `v` to unit length (a zero vector stays zero:
    /// its distance to anything is then 1, as the metric defines).
    fn normalise(&self, v: &mut [f32]) {
        if self.metric != Metric::Cosine {
            return;
        }
        // SAFETY: the path is supported by this CPU (checked in
        // `with_path`); userland owns the FPU.
        let norm_sq: NormSq = unsafe { vexfs_simd::norm_sq(self.path, v) };
        let norm = f64::from(norm_sq.to_f32()).sqrt();
        if norm > 0.0 {
            for x in v.iter_mut() {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
    }

    /// Stores `v` at `slot` (growing the store with zero rows if needed).
    /// `v` is truncated or zero-padded to the dimension; for cosine it is
    /// stored scaled to unit length.
    pub fn set(&mut self, slot: u32, v: &[f32]) {
        let (dim, i) = (self.dim, slot as usize);
        if self.slots <= i {
            self.rows.resize((i + 1) * dim, 0.0);
            self.slots = i + 1;
        }
        let mut row = core::mem::take(&mut self.rows);
        let r = &mut row[i * dim..(i + 1) * dim];
        let n = v.len().min(dim);
        r[..n].copy_from_slice(&v[..n]);
        r[n..].fill(0.0);
        self.normalise(r);
        self.rows = row;
    }

    /// Appends `v` at the next slot and returns that slot.
    pub fn push(&mut self, v: &[f32]) -> u32 {
        let slot = self.slots() as u32;
        self.set(slot, v);
        slot
    }

    /// The row at `slot` as stored (for cosine, at unit length; empty if
    /// it has none).
    pub fn row(&self, slot: u32) -> &[f32] {
        let i = slot as usize;
        self.rows
            .get(i * self.dim..(i + 1) * self.dim)
            .unwrap_or(&[])
    }

    /// Copies the row at `from` to `to` (compaction).
    pub fn copy(&mut self, from: u32, to: u32) {
        let v = self.row(from).to_vec();
        self.set(to, &v);
    }

    /// A query for `v`.
    pub fn query(&self, v: &[f32]) -> NativeQuery {
        let mut q = NativeQuery::default();
        q.set(self, v);
        q
    }

    /// Order keys from `q` (as stored) to the rows at `slots`.
    #[inline(always)]
    fn keys(&self, q: &[f32], slots: &[u32], out: &mut [u32]) {
        let dim = self.dim;
        prefetch_rows(&self.rows, dim, slots);
        for (o, &s) in out.iter_mut().zip(slots) {
            let i = s as usize;
            let Some(row) = self.rows.get(i * dim..(i + 1) * dim) else {
                *o = u32::MAX;
                continue;
            };
            // SAFETY: the path is supported by this CPU (checked in
            // `with_path`); userland owns the FPU.
            let d = unsafe {
                match self.metric {
                    // Unit vectors: 1 - cos = 1 + (-(a.b)).
                    Metric::Cosine => 1.0 + vexfs_simd::distance(self.path, Metric::Dot, q, row),
                    m => vexfs_simd::distance(self.path, m, q, row),
                }
            };
            *o = vexfs_simd::order_key(d);
        }
    }
}

/// Prefetches the rows of a batch (every cache line of each) before the
/// distances read them: the rows are scattered, and at 400,000 x 50 they
/// are far beyond the caches.
#[inline(always)]
fn prefetch_rows(rows: &[f32], dim: usize, slots: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    for &s in slots {
        let row = rows.as_ptr().wrapping_add(s as usize * dim).cast::<i8>();
        let bytes = dim * core::mem::size_of::<f32>();
        let mut off = 0;
        while off < bytes {
            prefetch(row.wrapping_add(off));
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, dim, slots);
}

/// A prefetch hint for the cache line of `p`.
#[inline(always)]
#[cfg(target_arch = "x86_64")]
fn prefetch(p: *const i8) {
    // SAFETY: a prefetch only hints the cache: it never faults and reads
    // nothing architecturally, whatever the address.
    unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p) }
}

impl Distances for NativeStore {
    type Query = NativeQuery;

    fn batch(&mut self, from: Target<'_, NativeQuery>, slots: &[u32], out: &mut [u32]) {
        (&*self).batch(from, slots, out)
    }
}

/// A shared view for threads that compute distances at once (planning
/// inserts on several CPUs): the same distances as the store's own.
impl Distances for &NativeStore {
    type Query = NativeQuery;

    fn batch(&mut self, from: Target<'_, NativeQuery>, slots: &[u32], out: &mut [u32]) {
        match from {
            Target::Query(q) => self.keys(&q.v, slots, out),
            Target::Slot(s) => {
                let i = s as usize;
                let Some(q) = self.rows.get(i * self.dim..(i + 1) * self.dim) else {
                    out.fill(u32::MAX);
                    return;
                };
                self.keys(q, slots, out)
            }
        }
    }
}

/// Reads a little-endian float32 2-D `.npy` file (format 1.x to 3.x, C
/// or Fortran order): `(rows, cols, values)`, values row-major.
pub fn read_npy_f32(path: &std::path::Path) -> std::io::Result<(usize, usize, Vec<f32>)> {
    use std::io::{Error, ErrorKind};
    let bad = |what: &str| {
        Error::new(
            ErrorKind::InvalidData,
            alloc::format!("{}: {what}", path.display()),
        )
    };
    let bytes = std::fs::read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file"));
    }
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        let b = bytes.get(8..12).ok_or_else(|| bad("short header"))?;
        (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| core::str::from_utf8(h).ok())
        .ok_or_else(|| bad("bad header"))?;
    let compact: alloc::string::String = header.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("'descr':'<f4'") {
        return Err(bad("not little-endian float32"));
    }
    let fortran = compact.contains("'fortran_order':True");
    let shape = compact
        .split("'shape':(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("not 2-D"));
    };
    let data = &bytes[start + hlen..];
    if data.len() != rows * cols * 4 {
        return Err(bad("size does not match the shape"));
    }
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if !fortran {
        return Ok((rows, cols, values));
    }
    // Column-major on disk: transpose.
    let mut t = alloc::vec![0.0f32; values.len()];
    for (c, col) in values.chunks_exact(rows.max(1)).enumerate() {
        for (r, &v) in col.iter().enumerate() {
            t[r * cols + c] = v;
        }
    }
    Ok((rows, cols, t))
}
