// SPDX-License-Identifier: GPL-2.0
//! The kernel's SQ8 walk (`kmod/sq8.rs`, `quantize = sq8`) in userland, on
//! the same `vexfs-simd` kernels: the vexfs-hnsw graph walked on 8-bit
//! codes, then the beam's `ef` candidates re-ranked in float32.
//!
//! As in the module: the quantizer is trained (`sq8_train`, 1/8 headroom)
//! on each dimension's quantiles (`sq8_quantiles`) over a sample of the
//! stored rows (unit rows for cosine; `NativeStore` stores them unit
//! already), rows are coded with `sq8_encode` into
//! `stride` bytes (the dimension rounded up to 32: one 64-byte line for
//! 50-d instead of 200 bytes of floats), the query becomes `i16` weights
//! (`sq8_query`) and each row's key is `Sq8Keys::key` of the AVX2 integer
//! dot product (`sq8_dot`): no float arithmetic per row. Inserts
//! (`Target::Slot`) use the float rows.

use vexfs_hnsw::{Distances, NativeQuery, NativeStore, Target};
use vexfs_simd::{
    sq8_dot, sq8_encode, sq8_quantiles, sq8_query, sq8_scaled_keys, sq8_train, Sq8Keys, Sq8Scale,
    ONE_BITS, SQ8_SAMPLE_ROWS,
};

/// Bytes of codes per row: the dimension rounded up to the kernel's block.
fn padded(dim: usize) -> usize {
    dim.div_ceil(vexfs_simd::SQ8_BLOCK) * vexfs_simd::SQ8_BLOCK
}

/// SQ8 codes beside a [`NativeStore`] (which keeps the float rows for
/// inserts and re-ranking).
pub struct Sq8Store<'a> {
    pub fp: &'a mut NativeStore,
    stride: usize,
    /// The codes, 64-byte aligned as the module's are (a 64-byte row then
    /// spans one cache line, not two).
    lines: Vec<Line>,
    terms: Vec<u32>,
    quant: Vec<f32>,
    scale: Sq8Scale,
    l2: bool,
}

/// One cache line of codes.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A query as integer weights, one per code byte (zero past `dim`).
pub struct Sq8Query {
    pub w: Vec<i16>,
    pub keys: Sq8Keys,
    pub fp: NativeQuery,
}

impl<'a> Sq8Store<'a> {
    /// Codes for the store's `rows` rows (as the store keeps them: unit
    /// rows for cosine).
    pub fn new(fp: &'a mut NativeStore, rows: usize) -> Self {
        let dim = fp.dim();
        // As the module trains (`kmod/sq8.rs`): each dimension's quantiles
        // over up to SQ8_SAMPLE_ROWS rows, evenly spaced.
        let samples = rows.min(SQ8_SAMPLE_ROWS);
        let (mut lo, mut hi) = (vec![0f32; dim], vec![0f32; dim]);
        let one = ONE_BITS;
        let mut quant = vec![0f32; 3 * dim];
        let stride = padded(dim);
        let mut lines = vec![Line([0; 64]); (rows * stride).div_ceil(64)];
        // SAFETY: `Line` is 64 plain bytes: the lines are `len * 64`
        // initialised bytes.
        let codes = unsafe {
            core::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<u8>(), lines.len() * 64)
        };
        let mut terms = vec![0u32; rows];
        let mut keys = vec![0u32; samples * dim];
        let mut row_keys = vec![0u32; dim];
        // SAFETY: scalar SSE, on every x86-64 CPU; userland owns the FPU.
        let scale = unsafe {
            for i in 0..samples {
                sq8_scaled_keys(fp.row((i * rows / samples) as u32), one, &mut row_keys);
                for (d, &k) in row_keys.iter().enumerate() {
                    keys[d * samples + i] = k;
                }
            }
            for d in 0..dim {
                let (l, h) =
                    sq8_quantiles(&mut keys[d * samples..(d + 1) * samples]).expect("rows");
                lo[d] = f32::from_bits(l);
                hi[d] = f32::from_bits(h);
            }
            let scale = sq8_train(&lo, &hi, &mut quant).expect("quantizer");
            for s in 0..rows {
                let c = &mut codes[s * stride..][..stride];
                terms[s] = sq8_encode(fp.row(s as u32), one, &quant, scale, c)
                    .expect("codes")
                    .term;
            }
            scale
        };
        let l2 = fp.metric() == vexfs_simd::Metric::L2;
        Self {
            fp,
            stride,
            lines,
            terms,
            quant,
            scale,
            l2,
        }
    }

    /// Bytes of the codes, the L2 terms and the quantizer.
    pub fn bytes(&self) -> usize {
        self.codes().len() + (if self.l2 { self.terms.len() * 4 } else { 0 }) + self.quant.len() * 4
    }

    /// Sets `q` to the weights of `v`.
    pub fn query(&self, v: &[f32], q: &mut Sq8Query) {
        q.fp.set(&*self.fp, v);
        q.w.resize(self.stride, 0);
        // SAFETY: as in `new`.
        q.keys = unsafe { sq8_query(q.fp.vector(), &self.quant, self.scale, self.l2, &mut q.w) }
            .expect("weights");
    }

    fn codes(&self) -> &[u8] {
        // SAFETY: as in `new`.
        unsafe {
            core::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.lines.len() * 64)
        }
    }

    fn prefetch_codes(&self, slot: u32) {
        let p = self
            .codes()
            .as_ptr()
            .wrapping_add(slot as usize * self.stride);
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

    fn keys(&self, q: &Sq8Query, slots: &[u32], out: &mut [u32]) {
        // All the batch's lines first, so their loads overlap. (Issuing
        // them earlier, as the walk reads a node's list, measured the
        // same: 6,380 against 6,491 q/s on GloVe 399,000 at ef 128.)
        for &s in slots {
            self.prefetch_codes(s);
        }
        let path = self.fp.path();
        let all = self.codes();
        for (o, &s) in out.iter_mut().zip(slots) {
            let codes = &all[s as usize * self.stride..][..self.stride];
            // SAFETY: the store's path is one this CPU supports; userland
            // owns the FPU.
            let dot = unsafe { sq8_dot(path, &q.w, codes) };
            // Cosine and dot keys ignore the term: no load for it.
            let term = if self.l2 { self.terms[s as usize] } else { 0 };
            *o = q.keys.key(dot, term);
        }
    }
}

impl Distances for Sq8Store<'_> {
    type Query = Sq8Query;

    fn batch(&mut self, from: Target<'_, Sq8Query>, slots: &[u32], out: &mut [u32]) {
        match from {
            Target::Query(q) => self.keys(q, slots, out),
            Target::Slot(s) => self.fp.batch(Target::Slot(s), slots, out),
        }
    }
}
