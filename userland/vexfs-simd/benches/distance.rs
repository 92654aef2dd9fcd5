// SPDX-License-Identifier: GPL-2.0

//! One distance call per iteration, for each dimension, metric and path this
//! CPU supports, with the `simsimd` crate on the same vectors as the peer.
//! Throughput counts the bytes read: two vectors of `D` f32.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use simsimd::SpatialSimilarity;
use std::hint::black_box;
use std::time::Duration;
use vexfs_simd::{distance, supported, Metric, Path};

const DIMS: [usize; 5] = [50, 128, 384, 768, 1536];
const METRICS: [(Metric, &str); 3] = [
    (Metric::L2, "l2"),
    (Metric::Cosine, "cosine"),
    (Metric::Dot, "dot"),
];
const PATHS: [Path; 3] = [Path::Scalar, Path::Avx2, Path::Avx512];

/// `n` values in [-1, 1) from a xorshift generator.
fn vector(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn simsimd_distance(metric: Metric, a: &[f32], b: &[f32]) -> Option<f64> {
    match metric {
        Metric::L2 => <f32 as SpatialSimilarity>::l2sq(a, b),
        Metric::Cosine => <f32 as SpatialSimilarity>::cos(a, b),
        Metric::Dot => <f32 as SpatialSimilarity>::dot(a, b),
    }
}

fn bench(c: &mut Criterion) {
    for path in PATHS {
        if !supported(path) {
            eprintln!("skipping vexfs-{}: not supported by this CPU", path.name());
        }
    }
    for dim in DIMS {
        let a = vector(dim, 0x9e37_79b9_7f4a_7c15);
        let b = vector(dim, 0xd1b5_4a32_d192_ed03);
        for (metric, metric_name) in METRICS {
            let mut group = c.benchmark_group(format!("{metric_name}/{dim}"));
            group
                .throughput(Throughput::Bytes((2 * dim * size_of::<f32>()) as u64))
                .sample_size(20)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_millis(1500));
            for path in PATHS.into_iter().filter(|&p| supported(p)) {
                group.bench_function(
                    BenchmarkId::from_parameter(format!("vexfs-{}", path.name())),
                    |bench| {
                        // SAFETY: `supported` checked the CPU; userland owns its FPU.
                        bench.iter(|| unsafe {
                            distance(path, metric, black_box(&a), black_box(&b))
                        })
                    },
                );
            }
            group.bench_function(BenchmarkId::from_parameter("simsimd"), |bench| {
                bench.iter(|| simsimd_distance(metric, black_box(&a), black_box(&b)))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
