// SPDX-License-Identifier: GPL-2.0

//! SQ8 codes of an HNSW collection created with `quantize = sq8`: one byte
//! per dimension for every linked row, which the graph walk of a search
//! reads instead of the float rows; the beam's candidates are then
//! re-ranked on the floats (in `collection.rs`), so results keep exact
//! distances.
//!
//! The quantizer (per dimension an offset and a step, `simd::sq8_train`)
//! is learned from the rows stored when the first row is linked: each
//! dimension's 0.5 % and 99.5 % quantiles over up to 1,024 of them
//! (`simd::sq8_quantiles`), widened by 1/8 of that range on each side. It stays valid as rows arrive: a row
//! with a value outside it gets clamped codes (still a usable, coarser
//! order; the re-rank keeps results exact) and is counted; once one coded
//! row in [`RETRAIN_EVERY`] is such a row, the quantizer is trained again
//! (if the bounds of the rows coded so far grew) and all codes
//! are rewritten. Each retraining costs one pass over the codes and needs
//! that many new clamped rows first, so the cost per linked row stays
//! bounded whatever the order of the inserts, even for rows no quantizer
//! covers (training clips the bounds to `+-2^60`).
//!
//! Quantiles keep a few vectors far from the others from widening the
//! range for every row (they get clamped codes); more of them than the
//! tails hold do, and the walk's order gets coarser for all. The results'
//! distances stay exact either way, and `--ef` or `--exact` recover the
//! recall (see `Documentation/hnsw.rst`).
//!
//! Codes exist for rows `0..linked` (the graph's rows) and move with them
//! when compaction moves rows; nothing of this is stored on disk: a mount
//! rebuilds it from the rows (one pass) when it loads the graph.
//!
//! Memory is charged like the graph's (vector limit and the caller's
//! memory cgroup); every float operation runs in FPU sections of bounded
//! length.

use crate::collection::{fpu_sections, simd_batch};
use crate::hnsw::{self, prefetch, Distances, FVec, Target};
use crate::hnsw_glue::{GraphAlloc, GraphDistances, Rows};
use crate::simd::{
    sq8_quantiles, Metric, Sq8Keys, Sq8Scale, ONE_BITS, SQ8_BLOCK, SQ8_BOUNDS_EMPTY,
    SQ8_SAMPLE_ROWS,
};
use crate::vfs::cpu::{Fpu, Simd};
use crate::vfs::task;

/// One coded row in this many with a clamped value calls for retraining.
const RETRAIN_EVERY: usize = 32;

/// Dimensions whose sampled values are sorted at a time when a quantizer
/// is trained (so the buffer is at most 256 KiB).
const QUANTILE_DIMS: usize = 64;

/// Bytes of codes per row: the dimension rounded up to the integer
/// kernel's block (the padding is zero and meets zero weights).
pub(crate) fn stride(dim: usize) -> usize {
    dim.div_ceil(SQ8_BLOCK) * SQ8_BLOCK
}

/// The codes and quantizer of one collection.
pub(crate) struct Sq8 {
    dim: usize,
    stride: usize,
    metric: Metric,
    /// `stride` bytes per coded row.
    codes: FVec<u8, GraphAlloc>,
    /// L2: each coded row's term `|step * c|^2` (see `simd::Sq8Keys`).
    terms: FVec<u32, GraphAlloc>,
    /// What the quantizer was trained on: the quantiles of a sample of
    /// the rows (`simd::sq8_quantiles`), `dim` lows then `dim` highs.
    bounds: FVec<f32, GraphAlloc>,
    /// Bounds of every row coded (unit rows for cosine): `dim` lows, then
    /// `dim` highs. Empty until the first training.
    seen: FVec<f32, GraphAlloc>,
    /// Offsets, steps and inverse steps, `dim` each. Empty until trained.
    quant: FVec<f32, GraphAlloc>,
    /// `seen` when the quantizer was trained: retraining on the same
    /// bounds would change nothing.
    fitted: FVec<f32, GraphAlloc>,
    scale: Sq8Scale,
    /// Rows coded with a clamped value since the last training (or the
    /// last time retraining was due).
    clamped: usize,
}

impl Sq8 {
    /// No codes yet; allocates nothing.
    pub(crate) fn new(dim: usize, metric: Metric) -> Self {
        Self {
            dim,
            stride: stride(dim),
            metric,
            codes: FVec::new(GraphAlloc::CHARGED),
            terms: FVec::new(GraphAlloc::CHARGED),
            bounds: FVec::new(GraphAlloc::CHARGED),
            seen: FVec::new(GraphAlloc::CHARGED),
            quant: FVec::new(GraphAlloc::CHARGED),
            fitted: FVec::new(GraphAlloc::CHARGED),
            scale: Sq8Scale::default(),
            clamped: 0,
        }
    }

    /// Rows coded: `0..rows()`.
    pub(crate) fn rows(&self) -> usize {
        // Checked: no panic path (`stride` is never 0).
        self.codes.len().checked_div(self.stride).unwrap_or(0)
    }

    /// Bytes allocated (and charged).
    pub(crate) fn bytes(&self) -> usize {
        self.codes.bytes()
            + self.terms.bytes()
            + self.seen.bytes()
            + self.quant.bytes()
            + self.fitted.bytes()
            + self.bounds.bytes()
    }

    /// Whether a quantizer exists (from the first linked row on).
    pub(crate) fn trained(&self) -> bool {
        !self.quant.is_empty()
    }

    /// Makes room for `rows` coded rows and the quantizer, so that the
    /// next [`Self::train`] and pushes up to `rows` cannot fail.
    pub(crate) fn reserve(&mut self, rows: usize) -> Result<(), hnsw::Error> {
        let more = |have: usize, want: usize| want.saturating_sub(have);
        let codes = rows
            .checked_mul(self.stride)
            .ok_or(hnsw::Error::OutOfMemory)?;
        let (seen, quant) = (self.dim.saturating_mul(2), self.dim.saturating_mul(3));
        self.codes.try_reserve(more(self.codes.len(), codes))?;
        if self.metric == Metric::L2 {
            self.terms.try_reserve(more(self.terms.len(), rows))?;
        }
        self.seen.try_reserve(more(self.seen.len(), seen))?;
        self.bounds.try_reserve(more(self.bounds.len(), seen))?;
        self.fitted.try_reserve(more(self.fitted.len(), seen))?;
        self.quant.try_reserve(more(self.quant.len(), quant))
    }

    /// Drops every code and the quantizer, freeing their memory (the
    /// collection was emptied).
    pub(crate) fn clear(&mut self) {
        *self = Self::new(self.dim, self.metric);
    }

    /// Keeps the codes of rows `0..rows` only.
    pub(crate) fn truncate(&mut self, rows: usize) {
        self.codes.truncate(rows.saturating_mul(self.stride));
        self.terms.truncate(rows);
    }

    /// Gives back most of the room of codes that fell below a quarter of
    /// it (after compaction), as the store does with its per-row arrays.
    pub(crate) fn trim(&mut self) {
        let (rows, room) = (self.rows(), self.codes.capacity() / self.stride.max(1));
        if room > 64 && rows < room / 4 {
            // A failed shrink keeps the room (and its charge).
            let _ = self
                .codes
                .try_shrink_to(rows.saturating_mul(2 * self.stride));
            let _ = self.terms.try_shrink_to(rows.saturating_mul(2));
        }
    }

    /// Copies the codes of coded row `from` over those of coded row `to`.
    pub(crate) fn copy(&mut self, from: usize, to: usize) {
        if from == to || from.max(to) >= self.rows() {
            return;
        }
        let n = self.stride;
        // Rows are disjoint: split between them (no panicking slice ops).
        let (low, high) = (from.min(to), from.max(to));
        let (a, b) = self.codes.split_at_mut(high * n);
        let (Some(lo), Some(hi)) = (a.get_mut(low * n..(low + 1) * n), b.get_mut(..n)) else {
            return;
        };
        let (src, dst) = if from < to { (lo, hi) } else { (hi, lo) };
        for (d, &s) in dst.iter_mut().zip(src.iter()) {
            *d = s;
        }
        if let Some(&t) = self.terms.get(from) {
            if let Some(d) = self.terms.get_mut(to) {
                *d = t;
            }
        }
    }

    /// Learns the quantizer from rows `0..n` of `rows` (which must all be
    /// stored), before the first row is coded. Room must be reserved.
    pub(crate) fn train(&mut self, rows: &Rows<'_>, n: usize) -> Result<(), hnsw::Error> {
        let dim = self.dim;
        self.seen.clear();
        self.seen
            .try_resize(dim, f32::from_bits(SQ8_BOUNDS_EMPTY.0))?;
        self.seen
            .try_resize(dim.saturating_mul(2), f32::from_bits(SQ8_BOUNDS_EMPTY.1))?;
        let (simd, metric) = (Simd::detect(), self.metric);
        for section in fpu_sections(n, dim, usize::MAX) {
            simd_batch(section.len() * dim, &mut |fpu| {
                for slot in section.clone() {
                    let Some(row) = rows.row(slot as u32) else {
                        continue;
                    };
                    let scale = row_scale(metric, simd, fpu, rows, slot as u32);
                    let (lo, hi) = self.seen.split_at_mut(dim);
                    simd.sq8_widen(fpu, row, scale, lo, hi);
                }
            });
            task::cond_resched();
        }
        self.sample_bounds(rows, n)?;
        self.fit()
    }

    /// Sets `bounds` to the quantiles of each dimension over up to
    /// [`SQ8_SAMPLE_ROWS`] of rows `0..n`, evenly spaced (unit rows for
    /// cosine), [`QUANTILE_DIMS`] dimensions at a time.
    fn sample_bounds(&mut self, rows: &Rows<'_>, n: usize) -> Result<(), hnsw::Error> {
        let dim = self.dim;
        let samples = n.min(SQ8_SAMPLE_ROWS);
        if samples == 0 {
            return Err(hnsw::Error::OutOfMemory);
        }
        let block = QUANTILE_DIMS.min(dim);
        // Per-search-like scratch: charged to the in-flight budget.
        let mut keys: FVec<u32, GraphAlloc> = FVec::new(GraphAlloc::SCRATCH);
        keys.try_resize(samples.saturating_mul(block), 0)?;
        self.bounds.clear();
        self.bounds.try_resize(dim.saturating_mul(2), 0.0)?;
        let (simd, metric) = (Simd::detect(), self.metric);
        let mut row_keys = [0u32; QUANTILE_DIMS];
        let mut d0 = 0;
        while d0 < dim {
            let d1 = (d0 + block).min(dim);
            let width = d1 - d0;
            for section in fpu_sections(samples, width, usize::MAX) {
                simd_batch(section.len() * width, &mut |fpu| {
                    for i in section.clone() {
                        // `i * n / samples < n`: stored rows.
                        let slot = (i.saturating_mul(n).checked_div(samples).unwrap_or(0)) as u32;
                        let Some(seg) = rows.row(slot).and_then(|r| r.get(d0..d1)) else {
                            continue;
                        };
                        let scale = row_scale(metric, simd, fpu, rows, slot);
                        let out = &mut row_keys[..width];
                        simd.sq8_scaled_keys(fpu, seg, scale, out);
                        for (j, &k) in out.iter().enumerate() {
                            if let Some(at) = keys.get_mut(j * samples + i) {
                                *at = k;
                            }
                        }
                    }
                });
            }
            for j in 0..width {
                let run = keys
                    .get_mut(j * samples..(j + 1) * samples)
                    .ok_or(hnsw::Error::OutOfMemory)?;
                let (lo, hi) = sq8_quantiles(run).ok_or(hnsw::Error::OutOfMemory)?;
                if let Some(b) = self.bounds.get_mut(d0 + j) {
                    *b = f32::from_bits(lo);
                }
                if let Some(b) = self.bounds.get_mut(dim + d0 + j) {
                    *b = f32::from_bits(hi);
                }
            }
            task::cond_resched();
            d0 = d1;
        }
        Ok(())
    }

    /// Trains the quantizer on the bounds seen.
    /// Trains the quantizer on the bounds seen. On an error there is no
    /// quantizer (the next link trains again).
    fn fit(&mut self) -> Result<(), hnsw::Error> {
        let fitted = self.fit_quantizer();
        if fitted.is_err() {
            self.quant.clear();
        }
        self.clamped = 0;
        fitted
    }

    fn fit_quantizer(&mut self) -> Result<(), hnsw::Error> {
        let dim = self.dim;
        self.quant.try_resize(dim.saturating_mul(3), 0.0)?;
        let (bounds, quant) = (&self.bounds, &mut self.quant);
        let (lo, hi) = bounds.split_at(dim);
        let scale = fpu_call(dim, |fpu| Simd::detect().sq8_train(fpu, lo, hi, quant));
        self.scale = scale.ok_or(hnsw::Error::OutOfMemory)?;
        self.fitted.clear();
        self.fitted.try_reserve(self.seen.len())?;
        for &v in self.seen.iter() {
            let _ = self.fitted.push_within_capacity(v);
        }
        Ok(())
    }

    /// Whether rows coded since the training widened the bounds (compared
    /// as bits: no float comparison in the kernel).
    fn grown(&self) -> bool {
        self.seen.len() != self.fitted.len()
            || self
                .seen
                .iter()
                .zip(self.fitted.iter())
                .any(|(a, b)| a.to_bits() != b.to_bits())
    }

    /// Codes row `slot` of `rows` as the next coded row, which must be
    /// `slot` itself; room must be reserved and the quantizer trained.
    /// Retrains and rewrites every code once clamped rows call for it and
    /// the bounds grew. All or nothing: on an error, rows `0..slot` stay
    /// coded as they were.
    pub(crate) fn push(&mut self, rows: &Rows<'_>, slot: usize) -> Result<(), hnsw::Error> {
        if slot != self.rows() || !self.trained() {
            return Err(hnsw::Error::OutOfMemory);
        }
        let pushed = self.push_row(rows, slot);
        if pushed.is_err() {
            self.truncate(slot);
        }
        pushed
    }

    fn push_row(&mut self, rows: &Rows<'_>, slot: usize) -> Result<(), hnsw::Error> {
        let start = self.codes.len();
        self.codes
            .try_resize(start.saturating_add(self.stride), 0)?;
        if self.metric == Metric::L2 {
            self.terms.try_resize(slot.saturating_add(1), 0)?;
        }
        let (dim, metric, scale_q) = (self.dim, self.metric, self.scale);
        let (seen, quant, terms) = (&mut self.seen, &self.quant, &mut self.terms);
        let codes = self.codes.get_mut(start..).unwrap_or(&mut []);
        let clamped = fpu_call(dim, |fpu| {
            let simd = Simd::detect();
            let row = rows.row(slot as u32)?;
            let scale = row_scale(metric, simd, fpu, rows, slot as u32);
            let (lo, hi) = seen.split_at_mut(dim);
            simd.sq8_widen(fpu, row, scale, lo, hi);
            let coded = simd.sq8_encode(fpu, row, scale, quant, scale_q, codes)?;
            if let Some(t) = terms.get_mut(slot) {
                *t = coded.term;
            }
            Some(coded.clamped)
        });
        if clamped == Some(true) {
            self.clamped += 1;
            if self.clamped * RETRAIN_EVERY >= self.rows() {
                // Rows beyond what a quantizer covers (past the clip of
                // `simd::sq8_train`) stay clamped: retraining then would
                // change nothing, and the count starts again either way,
                // so each pass over the codes needs as many new clamped
                // rows again.
                if self.grown() {
                    self.sample_bounds(rows, self.rows())?;
                    self.fit()?;
                    self.recode(rows);
                }
                self.clamped = 0;
            }
        }
        Ok(())
    }

    /// Rewrites the codes of every coded row with the current quantizer.
    fn recode(&mut self, rows: &Rows<'_>) {
        let (dim, stride, metric, scale_q) = (self.dim, self.stride, self.metric, self.scale);
        let simd = Simd::detect();
        for section in fpu_sections(self.rows(), dim, usize::MAX) {
            simd_batch(section.len() * dim, &mut |fpu| {
                for slot in section.clone() {
                    let Some(row) = rows.row(slot as u32) else {
                        continue;
                    };
                    let scale = row_scale(metric, simd, fpu, rows, slot as u32);
                    let Some(codes) = self.codes.get_mut(slot * stride..(slot + 1) * stride) else {
                        continue;
                    };
                    let Some(coded) = simd.sq8_encode(fpu, row, scale, &self.quant, scale_q, codes)
                    else {
                        continue;
                    };
                    if let Some(t) = self.terms.get_mut(slot) {
                        *t = coded.term;
                    }
                }
            });
            task::cond_resched();
        }
    }

    /// Rebuilds the codes of rows `0..n` from scratch (a mount loading a
    /// graph over stored rows). All or nothing.
    pub(crate) fn rebuild(&mut self, rows: &Rows<'_>, n: usize) -> Result<(), hnsw::Error> {
        self.clear();
        if n == 0 {
            return Ok(());
        }
        let built = (|| {
            self.reserve(n)?;
            self.train(rows, n)?;
            for slot in 0..n {
                self.push(rows, slot)?;
            }
            Ok(())
        })();
        if built.is_err() {
            self.clear();
        }
        built
    }

    /// Sets `weights` (at least [`stride`] long) for `query`; how dot
    /// products become keys, or `None` if there is no quantizer.
    pub(crate) fn query(&self, query: &[f32], weights: &mut [i16]) -> Option<Sq8Keys> {
        if !self.trained() {
            return None;
        }
        let weights = weights.get_mut(..self.stride)?;
        let l2 = self.metric == Metric::L2;
        fpu_call(self.dim, |fpu| {
            Simd::detect().sq8_query(fpu, query, &self.quant, self.scale, l2, weights)
        })
    }

    /// The codes of coded row `slot`.
    #[inline(always)]
    fn code(&self, slot: u32) -> Option<&[u8]> {
        let start = (slot as usize).checked_mul(self.stride)?;
        self.codes.get(start..start + self.stride)
    }
}

/// [`simd_batch`] for work that returns a value (`None` if it
/// fails).
fn fpu_call<R>(floats: usize, work: impl FnOnce(&Fpu) -> Option<R>) -> Option<R> {
    let mut work = Some(work);
    let mut out = None;
    simd_batch(floats, &mut |fpu| {
        if let Some(w) = work.take() {
            out = w(fpu);
        }
    });
    out
}

/// The factor row `slot` is quantized with: cosine quantizes unit rows.
fn row_scale(metric: Metric, simd: Simd, fpu: &Fpu, rows: &Rows<'_>, slot: u32) -> u32 {
    if metric == Metric::Cosine {
        simd.sq8_unit_scale(fpu, rows.norm(slot))
    } else {
        ONE_BITS
    }
}

/// The graph walk of a search on SQ8 codes: distances from the query are
/// integer keys from the codes; from a stored row (inserts) they are the
/// float distances of [`GraphDistances`], which also filters.
pub(crate) struct Sq8Walk<'a, 'd> {
    sq8: &'a Sq8,
    weights: &'a [i16],
    keys: Sq8Keys,
    simd: Simd,
    pub(crate) fp: GraphDistances<'d>,
}

impl<'a, 'd> Sq8Walk<'a, 'd> {
    pub(crate) fn new(
        sq8: &'a Sq8,
        weights: &'a [i16],
        keys: Sq8Keys,
        fp: GraphDistances<'d>,
    ) -> Self {
        Self {
            sq8,
            weights,
            keys,
            simd: Simd::detect(),
            fp,
        }
    }
}

impl Distances for Sq8Walk<'_, '_> {
    type Query = [f32];

    fn batch(&mut self, from: Target<'_, [f32]>, slots: &[u32], out: &mut [u32]) {
        if let Target::Slot(_) = from {
            return self.fp.batch(from, slots, out);
        }
        let (sq8, weights, keys, simd) = (self.sq8, self.weights, self.keys, self.simd);
        for &slot in slots {
            if let Some(c) = sq8.code(slot) {
                let mut at = 0;
                while at < c.len() {
                    prefetch(c[at..].as_ptr());
                    at += 64;
                }
            }
        }
        let n = out.len().min(slots.len());
        for section in fpu_sections(n, sq8.dim, usize::MAX) {
            let (out, slots) = (&mut out[section.clone()], &slots[section]);
            simd_batch(out.len() * sq8.dim, &mut |fpu| {
                for (o, &slot) in out.iter_mut().zip(slots) {
                    *o = match sq8.code(slot) {
                        Some(c) => {
                            let term = sq8.terms.get(slot as usize).copied().unwrap_or(0);
                            keys.key(simd.sq8_dot(fpu, weights, c), term)
                        }
                        // Not reachable (codes cover the graph's rows):
                        // rank it last.
                        None => u32::MAX,
                    };
                }
            });
        }
    }

    fn checkpoint(&mut self) {
        self.fp.checkpoint();
    }

    fn accept(&mut self, slot: u32) -> bool {
        self.fp.accept(slot)
    }
}
