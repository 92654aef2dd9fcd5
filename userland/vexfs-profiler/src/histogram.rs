//! The log-linear latency histogram of `ebpf/vexfs_profile.h`, and the
//! figures derived from it.
//!
//! Values below 16 ns have a bucket each; every power of two above is split
//! into 16 sub-buckets, so a bucket's width is at most 1/16 of its lower
//! bound and a percentile read from it is off by at most 6.25 %.

/// Sub-bucket bits per power of two (`VEXFS_SUB_BITS`).
pub const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Largest log2 with buckets of its own (`VEXFS_MAX_LOG2`).
pub const MAX_LOG2: u32 = 47;
/// Buckets per histogram (`VEXFS_NR_BUCKETS`).
pub const NR_BUCKETS: usize = ((MAX_LOG2 - SUB_BITS + 2) as usize) << SUB_BITS;

/// Bucket of a latency of `ns` nanoseconds (as the BPF side computes it).
pub fn bucket_of(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros();
    if e > MAX_LOG2 {
        return NR_BUCKETS - 1;
    }
    let b = ((e - SUB_BITS + 1) as usize) * SUB as usize
        + ((ns >> (e - SUB_BITS)) & (SUB - 1)) as usize;
    b.min(NR_BUCKETS - 1)
}

/// Values `[lo, hi)` that fall into bucket `b`.
pub fn bucket_bounds(b: usize) -> (u64, u64) {
    let sub = SUB as usize;
    if b < sub {
        return (b as u64, b as u64 + 1);
    }
    let e = (b / sub) as u32 + SUB_BITS - 1;
    let width = 1u64 << (e - SUB_BITS);
    let lo = (SUB + (b % sub) as u64) << (e - SUB_BITS);
    (lo, lo + width)
}

/// Latencies of one operation class over some time: a histogram plus the
/// exact extremes, which the BPF side tracks beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latencies {
    pub count: u64,
    pub sum_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub buckets: Vec<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            count: 0,
            sum_ns: 0,
            min_ns: 0,
            max_ns: 0,
            buckets: vec![0; NR_BUCKETS],
        }
    }
}

impl Latencies {
    /// Adds one value (for tests and for userland peers).
    pub fn record(&mut self, ns: u64) {
        self.count += 1;
        self.sum_ns += ns;
        self.min_ns = if self.count == 1 {
            ns
        } else {
            self.min_ns.min(ns)
        };
        self.max_ns = self.max_ns.max(ns);
        self.buckets[bucket_of(ns)] += 1;
    }

    /// Adds everything of `other` into `self`.
    pub fn merge(&mut self, other: &Latencies) {
        if other.count == 0 {
            return;
        }
        self.min_ns = if self.count == 0 {
            other.min_ns
        } else {
            self.min_ns.min(other.min_ns)
        };
        self.max_ns = self.max_ns.max(other.max_ns);
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }

    /// Mean latency, if there is any value.
    pub fn mean_ns(&self) -> Option<u64> {
        (self.count > 0).then(|| self.sum_ns / self.count)
    }

    /// The `q`-quantile (0 < q ≤ 1): the middle of the bucket holding the
    /// value of rank ⌈q·count⌉, narrowed to the exact [min, max], which the
    /// true value also lies in.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (lo, hi) = bucket_bounds(b);
                let lo = lo.max(self.min_ns);
                let hi = hi.saturating_sub(1).min(self.max_ns);
                return Some(if lo >= hi {
                    lo.min(self.max_ns)
                } else {
                    lo + (hi - lo) / 2
                });
            }
        }
        // The buckets were read a moment apart from `count`.
        Some(self.max_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_and_stay_narrow() {
        assert_eq!(NR_BUCKETS, 720);
        let mut next = 0;
        for b in 0..NR_BUCKETS {
            let (lo, hi) = bucket_bounds(b);
            assert_eq!(
                lo,
                next,
                "bucket {b} starts where {} ended",
                b.wrapping_sub(1)
            );
            assert!(hi > lo);
            assert_eq!(bucket_of(lo), b);
            assert_eq!(bucket_of(hi - 1), b);
            if lo >= SUB {
                assert!(
                    (hi - lo) * 16 <= lo,
                    "bucket {b} [{lo}, {hi}) wider than 1/16"
                );
            }
            next = hi;
        }
        assert_eq!(bucket_of(u64::MAX), NR_BUCKETS - 1);
        assert_eq!(bucket_of(1 << 48), NR_BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_ordered_within_extremes_and_within_6_percent() {
        let mut h = Latencies::default();
        // 1..=100_000 ns: the exact q-quantile is q * 100_000.
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let mut last = 0;
        for q in [0.5, 0.95, 0.99, 0.999] {
            let got = h.quantile_ns(q).unwrap();
            let want = (q * 100_000.0) as u64;
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err <= 0.0625, "q={q}: {got} vs {want}");
            assert!(got >= last && got >= h.min_ns && got <= h.max_ns);
            last = got;
        }
        assert_eq!(h.mean_ns(), Some(50_000));
    }

    #[test]
    fn two_modes_are_told_apart() {
        let mut h = Latencies::default();
        for i in 0..1000 {
            h.record(if i % 10 == 0 { 30_000_000 } else { 50_000 });
        }
        assert!(h.quantile_ns(0.5).unwrap() < 60_000);
        assert!(h.quantile_ns(0.99).unwrap() > 25_000_000);
    }

    #[test]
    fn a_single_value_is_exact_and_empty_has_none() {
        let mut h = Latencies::default();
        assert_eq!(h.quantile_ns(0.5), None);
        h.record(1234);
        for q in [0.5, 0.999] {
            assert_eq!(h.quantile_ns(q), Some(1234));
        }
        let mut total = Latencies::default();
        total.merge(&h);
        total.merge(&h);
        assert_eq!((total.count, total.min_ns, total.max_ns), (2, 1234, 1234));
    }
}
