// SPDX-License-Identifier: GPL-2.0

//! The kernel side of the HNSW index (`hnsw`, shared with userland): where
//! its memory comes from and how it measures distances.
//!
//! The graph never touches a float. It asks for a batch of distances (all
//! neighbours of one node, at most `2M + 1`), which run here through the
//! same SIMD dispatch as exact search, in FPU sections of at most
//! [`FPU_FLOAT_BUDGET`] values (a batch of 255 rows of dimension 4096 takes
//! 32 sections), and gets them back as integer order keys. Every few dozen
//! batches it calls `checkpoint`, where long inserts and searches
//! reschedule.

use crate::collection::{
    charge, fpu_sections, inflight_charge, inflight_uncharge, simd_batch, uncharge,
};
use crate::hnsw::{Distances, Target};
use crate::pool::{Budget, Charged, PoolBuf};
use crate::simd;
use crate::vfs::cpu::Simd;
use crate::vfs::mem::u32_as_f32_mut;
use crate::vfs::task;

/// Memory of the graph (charged to the module-wide vector limit, so that
/// `max_vector_mib` bounds graphs too) or of per-search scratch (charged
/// to the in-flight budget while the search ioctl runs). Blocks come from
/// the pool tiers, so `vexctl stats` shows them, and are charged to the
/// caller's memory cgroup.
pub(crate) type GraphAlloc = Charged<GraphBudget>;

/// Which budget [`GraphAlloc`] charges.
#[derive(Clone, Copy)]
pub(crate) struct GraphBudget {
    scratch: bool,
}

impl GraphAlloc {
    /// For a collection's graph.
    pub(crate) const CHARGED: Self = Charged(GraphBudget { scratch: false });
    /// For search scratch.
    pub(crate) const SCRATCH: Self = Charged(GraphBudget { scratch: true });
}

impl Budget for GraphBudget {
    fn charge(&self, bytes: u64) -> bool {
        if self.scratch {
            inflight_charge(bytes)
        } else {
            charge(bytes).is_ok()
        }
    }

    fn uncharge(&self, bytes: u64) {
        if self.scratch {
            inflight_uncharge(bytes)
        } else {
            uncharge(bytes)
        }
    }
}

/// Read access to a collection's stored rows by slot.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub(crate) chunks: &'a [PoolBuf<f32>],
    /// `|row|^2` by slot, for cosine collections (empty otherwise).
    pub(crate) norms: &'a [simd::NormSq],
    /// Stored rows: slots `0..rows`.
    pub(crate) rows: usize,
    pub(crate) dim: usize,
    pub(crate) rows_per_chunk: usize,
    pub(crate) metric: simd::Metric,
}

impl Rows<'_> {
    /// The row at `slot`, if it is stored.
    pub(crate) fn row(&self, slot: u32) -> Option<&[f32]> {
        let slot = slot as usize;
        if slot >= self.rows {
            return None;
        }
        let chunk = self.chunks.get(slot / self.rows_per_chunk)?;
        let off = (slot % self.rows_per_chunk) * self.dim;
        chunk.get(off..off + self.dim)
    }

    pub(crate) fn norm(&self, slot: u32) -> simd::NormSq {
        self.norms.get(slot as usize).copied().unwrap_or_default()
    }
}

/// The graph's view of the rows: distances from a query or a stored row,
/// and, for a search, which rows the caller may get back.
pub(crate) struct GraphDistances<'a> {
    rows: Rows<'a>,
    simd: Simd,
    /// `|query|^2` of the current search (cosine).
    pub(crate) query_norm: simd::NormSq,
    /// A search's filter by slot (the caller may read the file); none
    /// admits every row.
    pub(crate) accept: Option<&'a mut dyn FnMut(u32) -> bool>,
}

impl<'a> GraphDistances<'a> {
    pub(crate) fn new(rows: Rows<'a>) -> Self {
        Self {
            rows,
            simd: Simd::detect(),
            query_norm: simd::NormSq::default(),
            accept: None,
        }
    }
}

impl Distances for GraphDistances<'_> {
    type Query = [f32];

    fn batch(&mut self, from: Target<'_, [f32]>, slots: &[u32], out: &mut [u32]) {
        let rows = &self.rows;
        let (from, from_norm) = match from {
            Target::Query(q) => (q, self.query_norm),
            Target::Slot(s) => match rows.row(s) {
                Some(r) => (r, rows.norm(s)),
                None => {
                    // Not reachable (the graph names stored rows only);
                    // rank everything last rather than read out of bounds.
                    out.fill(u32::MAX);
                    return;
                }
            },
        };
        let n = out.len().min(slots.len());
        let dist = u32_as_f32_mut(&mut out[..n]);
        let (simd, metric) = (self.simd, rows.metric);
        // FPU sections bounded by values, not by the neighbour count,
        // whatever `dim` and `M` are.
        for section in fpu_sections(n, rows.dim, usize::MAX) {
            let (dist, slots) = (&mut dist[section.clone()], &slots[section]);
            simd_batch(dist.len() * rows.dim, &mut |fpu| {
                for (d, &slot) in dist.iter_mut().zip(slots) {
                    let Some(row) = rows.row(slot) else {
                        *d = f32::from_bits(u32::MAX);
                        continue;
                    };
                    let one = core::slice::from_mut(d);
                    if metric == simd::Metric::Cosine {
                        let norm = [rows.norm(slot)];
                        simd.cosine_distances_with_norms(fpu, from, from_norm, row, &norm, one);
                    } else {
                        simd.distances(fpu, metric, from, row, one);
                    }
                }
            });
        }
        for key in out.iter_mut().take(n) {
            *key = simd::order_key_bits(*key);
        }
    }

    fn checkpoint(&mut self) {
        task::cond_resched();
    }

    fn accept(&mut self, slot: u32) -> bool {
        self.accept.as_mut().is_none_or(|f| f(slot))
    }
}
