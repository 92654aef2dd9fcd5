// SPDX-License-Identifier: GPL-2.0
//! Experiment (issue 15, point 2), userland only: the same vexfs-hnsw
//! graph walked on 8-bit scalar-quantized codes (SQ8), then the beam's
//! `ef` candidates re-ranked in float32, to measure what quantization buys
//! before the kernel gets it.
//!
//! Codes: each dimension of the stored (unit, for cosine) rows is mapped
//! to 0..=255 by its minimum and step, learned from all rows. A row's
//! codes are padded with zeros to a multiple of 32 bytes (50-d: one
//! 64-byte cache line instead of 200 bytes of floats).
//!
//! Distance during the walk: for unit vectors `1 - q.x`, and with
//! `x_d ~ lo_d + step_d * c_d`, `q.x ~ sum(q_d lo_d) + sum(q_d step_d c_d)`.
//! The first sum is the same for every row, so rows are ordered by the
//! integer `sum(w_d c_d)` with `w_d = round(q_d step_d S)` as i16 (S as
//! large as the i32 sum allows): `vexfs_simd::sq8_dot` (AVX2 `vpmovzxbw` +
//! `vpmaddwd`), no float arithmetic per row. Inserts (`Target::Slot`) use
//! the float rows.

use vexfs_hnsw::{Distances, NativeQuery, NativeStore, Target};

/// Bytes of codes per row: the dimension rounded up to the kernel's block.
fn padded(dim: usize) -> usize {
    dim.div_ceil(vexfs_simd::SQ8_BLOCK) * vexfs_simd::SQ8_BLOCK
}

/// SQ8 codes beside a [`NativeStore`] (which keeps the float rows for
/// inserts and re-ranking).
pub struct Sq8Store<'a> {
    pub fp: &'a mut NativeStore,
    stride: usize,
    codes: Vec<u8>,
    lo: Vec<f32>,
    step: Vec<f32>,
}

/// A query as integer weights, one per code byte (zero past `dim`).
pub struct Sq8Query {
    pub w: Vec<i16>,
    pub fp: NativeQuery,
}

impl<'a> Sq8Store<'a> {
    /// Codes for the store's `rows` rows (as the store keeps them: unit
    /// rows for cosine).
    pub fn new(fp: &'a mut NativeStore, rows: usize) -> Self {
        let dim = fp.dim();
        let (mut lo, mut hi) = (vec![f32::MAX; dim], vec![f32::MIN; dim]);
        for s in 0..rows as u32 {
            for (d, &v) in fp.row(s).iter().enumerate() {
                lo[d] = lo[d].min(v);
                hi[d] = hi[d].max(v);
            }
        }
        let step: Vec<f32> = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| ((h - l) / 255.0).max(f32::MIN_POSITIVE))
            .collect();
        let stride = padded(dim);
        let mut codes = vec![0u8; rows * stride];
        for s in 0..rows {
            let row = fp.row(s as u32);
            for d in 0..dim {
                codes[s * stride + d] =
                    ((row[d] - lo[d]) / step[d]).round().clamp(0.0, 255.0) as u8;
            }
        }
        Self {
            fp,
            stride,
            codes,
            lo,
            step,
        }
    }

    /// Bytes of the codes and the quantizer.
    pub fn bytes(&self) -> usize {
        self.codes.len() + (self.lo.len() + self.step.len()) * 4
    }

    /// Sets `q` to the weights of `v`.
    pub fn query(&self, v: &[f32], q: &mut Sq8Query) {
        q.fp.set(&*self.fp, v);
        let unit = q.fp.vector();
        let w: Vec<f32> = unit.iter().zip(&self.step).map(|(a, s)| a * s).collect();
        let max = w
            .iter()
            .fold(0f32, |m, x| m.max(x.abs()))
            .max(f32::MIN_POSITIVE);
        // |sum| <= stride * 255 * scale * max: keep it inside i32.
        let limit = (i32::MAX as f64 / (255.0 * self.stride as f64)).min(32767.0) as f32;
        let scale = limit / max;
        q.w.clear();
        q.w.extend(w.iter().map(|x| (x * scale).round() as i16));
        q.w.resize(self.stride, 0);
    }

    fn keys(&self, w: &[i16], slots: &[u32], out: &mut [u32]) {
        for &s in slots {
            let p = self.codes.as_ptr().wrapping_add(s as usize * self.stride);
            let mut off = 0;
            while off < self.stride {
                // SAFETY: a prefetch never faults.
                unsafe {
                    core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                        p.wrapping_add(off).cast(),
                    )
                };
                off += 64;
            }
        }
        let path = self.fp.path();
        for (o, &s) in out.iter_mut().zip(slots) {
            let codes = &self.codes[s as usize * self.stride..][..self.stride];
            // SAFETY: the store's path is one this CPU supports; userland
            // owns the FPU.
            let dot = unsafe { vexfs_simd::sq8_dot(path, w, codes) };
            // Larger dot = nearer: smaller key.
            *o = (i64::from(i32::MAX) - i64::from(dot)) as u32;
        }
    }
}

impl Distances for Sq8Store<'_> {
    type Query = Sq8Query;

    fn batch(&mut self, from: Target<'_, Sq8Query>, slots: &[u32], out: &mut [u32]) {
        match from {
            Target::Query(q) => self.keys(&q.w, slots, out),
            Target::Slot(s) => self.fp.batch(Target::Slot(s), slots, out),
        }
    }
}
