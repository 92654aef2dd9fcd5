// SPDX-License-Identifier: GPL-2.0

//! Property tests of the distance kernels against an f64 reference, on every
//! path this CPU supports.
//!
//! # Error bounds
//!
//! With `u = 2^-24` (f32 unit roundoff) and `gamma(k) = k*u / (1 - k*u)`:
//!
//! - Dot: every product `a_i*b_i` goes through at most `n` roundings (its
//!   product, unless fused, and at most `n - 1` additions, whatever the
//!   summation tree: lanes, accumulators, horizontal sum, tail), so
//!   `|computed - exact| <= gamma(n) * sum|a_i*b_i|` (Higham, Accuracy and
//!   Stability of Numerical Algorithms, 3.1). Negation is exact.
//! - L2: the difference `a_i - b_i` is rounded once and appears squared, so
//!   each term carries at most `n + 2` rounding factors, all terms are
//!   non-negative: `|computed - exact| <= gamma(n + 2) * sum (a_i - b_i)^2`.
//! - Cosine: with `A = sum|a_i*b_i|`, `S = |a| |b|`, the dot has absolute
//!   error `<= gamma(n) * A` and each squared norm a relative error
//!   `theta <= gamma(n)`. The quotient `q = dot / (sqrt(na) * sqrt(nb))`
//!   carries the factor `F = (1+d4) / ((1+ta)^1/2 (1+tb)^1/2 (1+d1)(1+d2)(1+d3))`
//!   (two square roots, one product, one division), so with
//!   `g = (1+u) / ((1-gamma(n)) (1-u)^3) - 1 >= |F - 1|` and `|cos| <= 1`:
//!   `|q - cos| <= g + gamma(n) * (A/S) * (1 + g) =: E`. The final `1 - q`
//!   adds `u * |1 - q| <= u * (2 + E)`, and the clamp to `[0, 2]` only moves
//!   the result towards the exact value, which lies in `[0, 2]`. Bound:
//!   `E + u * (2 + E)`; as `A <= S` (Cauchy-Schwarz) it is about
//!   `2 * gamma(n) + 3u`.
//!
//! The reference itself is computed in f64: products of f32 are exact there
//! and sums carry a relative error below `gamma64(n + 4)`, which is added to
//! each bound (scaled by the same magnitude). The test data spans magnitudes
//! 2^-8..2^8, so no sum underflows or overflows.

use std::panic::{catch_unwind, AssertUnwindSafe};
use vexfs_simd::{
    all_finite, bits_of_order_key, block_distances, cosine_distances_with_norms, detect, distance,
    distances, norm_sq, order_key, order_key_bits, sq8_dot, sq8_encode, sq8_quantiles, sq8_query,
    sq8_scaled_keys, sq8_train, sq8_unit_scale, sq8_widen, supported, Metric, NormSq, Path,
    SQ8_BLOCK, SQ8_BOUNDS_EMPTY, SQ8_TAIL_PER_MILLE,
};

const MAX_LEN: usize = 1100;
const OFFSETS: usize = 16;
const METRICS: [Metric; 3] = [Metric::L2, Metric::Cosine, Metric::Dot];
const ALL_PATHS: [Path; 3] = [Path::Scalar, Path::Avx2, Path::Avx512];

/// f32 unit roundoff.
const U: f64 = 1.0 / (1u64 << 24) as f64;
/// f64 unit roundoff.
const U64: f64 = f64::EPSILON / 2.0;

fn gamma(k: usize) -> f64 {
    let ku = k as f64 * U;
    ku / (1.0 - ku)
}

fn gamma64(k: usize) -> f64 {
    let ku = k as f64 * U64;
    ku / (1.0 - ku)
}

/// The paths this CPU supports; prints the ones it skips.
fn paths() -> Vec<Path> {
    ALL_PATHS
        .into_iter()
        .filter(|&p| {
            let ok = supported(p);
            if !ok {
                println!("skipping path {}: not supported by this CPU", p.name());
            }
            ok
        })
        .collect()
}

/// splitmix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1) times 2^e, e uniform in -8..=8: mixed magnitudes.
    fn mixed(&mut self) -> f32 {
        let r = self.next();
        let unit = (r >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        let exp = (r & 0xff) as i32 % 17 - 8;
        unit * (exp as f32).exp2()
    }

    /// A small integer in -8..=8.
    fn small_int(&mut self) -> f32 {
        (self.next() % 17) as f32 - 8.0
    }
}

/// Exact value (in f64) of a metric and the error bound a kernel must meet.
struct Reference {
    value: f64,
    bound: f64,
}

/// `a.b` and `sum |a_i b_i|` in f64 (the dot product's error scale).
fn dot_and_abs(a: &[f32], b: &[f32]) -> (f64, f64) {
    a.iter().zip(b).fold((0.0, 0.0), |(d, abs), (&x, &y)| {
        let p = x as f64 * y as f64;
        (d + p, abs + p.abs())
    })
}

fn reference(metric: Metric, a: &[f32], b: &[f32]) -> Reference {
    let n = a.len();
    let slack = gamma64(n + 4);
    match metric {
        Metric::L2 => {
            let s: f64 = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                .sum();
            Reference {
                value: s,
                bound: (gamma(n + 2) + slack) * s * (1.0 + slack),
            }
        }
        Metric::Dot => {
            let (d, abs) = dot_and_abs(a, b);
            Reference {
                value: -d,
                bound: (gamma(n) + slack) * abs * (1.0 + slack),
            }
        }
        Metric::Cosine => {
            let (d, abs) = dot_and_abs(a, b);
            let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum();
            let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum();
            if na == 0.0 || nb == 0.0 {
                return Reference {
                    value: 1.0,
                    bound: 0.0,
                };
            }
            let s = na.sqrt() * nb.sqrt();
            let g = (1.0 + U) / ((1.0 - gamma(n)) * (1.0 - U).powi(3)) - 1.0;
            let e = g + gamma(n) * (abs / s) * (1.0 + g);
            let bound = e + U * (2.0 + e) + 4.0 * slack * (abs / s + 1.0);
            Reference {
                value: 1.0 - d / s,
                bound,
            }
        }
    }
}

/// Calls `f(len, off, a, b)` for every length 1..=MAX_LEN and start offset
/// 0..OFFSETS, with fresh mixed-magnitude data per length; b starts at a
/// different offset than a, so the two are misaligned differently.
fn each_case(seed: u64, mut f: impl FnMut(usize, usize, &[f32], &[f32])) {
    let mut rng = Rng(seed);
    let mut abuf = vec![0.0f32; MAX_LEN + OFFSETS];
    let mut bbuf = vec![0.0f32; MAX_LEN + OFFSETS];
    for len in 1..=MAX_LEN {
        fill(&mut abuf, &mut rng, Rng::mixed);
        fill(&mut bbuf, &mut rng, Rng::mixed);
        for off in 0..OFFSETS {
            f(
                len,
                off,
                &abuf[off..off + len],
                &bbuf[(off * 7 + 3) % OFFSETS..][..len],
            );
        }
    }
}

/// Fills `buf` with fresh values from `gen`.
fn fill(buf: &mut [f32], rng: &mut Rng, gen: fn(&mut Rng) -> f32) {
    buf.iter_mut().for_each(|x| *x = gen(rng));
}

fn run(path: Path, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    assert!(supported(path));
    // SAFETY: the CPU supports `path`; userland owns its FPU.
    unsafe { distance(path, metric, a, b) }
}

/// Every length 1..=1100, every start offset 0..=15 (a's offset; b's is a
/// different one, so the two are misaligned differently), every metric and
/// supported path: within the bound of the f64 reference; the SIMD paths
/// also agree with the scalar path within the sum of the two bounds.
#[test]
fn matches_reference_within_bound() {
    let paths = paths();
    let mut worst = [0.0f64; 3];
    each_case(0x5eed, |len, off, a, b| {
        for (m, metric) in METRICS.into_iter().enumerate() {
            let want = reference(metric, a, b);
            let scalar = run(Path::Scalar, metric, a, b) as f64;
            for &path in &paths {
                let got = run(path, metric, a, b) as f64;
                let err = (got - want.value).abs();
                assert!(
                    err <= want.bound,
                    "{metric:?} {} len {len} off {off}: got {got}, want {} +- {}",
                    path.name(),
                    want.value,
                    want.bound,
                );
                assert!(
                    (got - scalar).abs() <= 2.0 * want.bound,
                    "{metric:?} {} vs scalar, len {len} off {off}: {got} vs {scalar}",
                    path.name(),
                );
                if want.bound > 0.0 {
                    worst[m] = worst[m].max(err / want.bound);
                }
            }
        }
    });
    println!(
        "worst error / bound: l2 {:.3}, cosine {:.3}, dot {:.3}",
        worst[0], worst[1], worst[2]
    );
}

/// Small integers make every partial sum an exact f32, in any order: L2 and
/// dot must then be exact on every path, which catches a dropped or repeated
/// value that a rounding bound could hide.
#[test]
fn exact_on_integers() {
    let paths = paths();
    let mut rng = Rng(0x1e7);
    let mut abuf = vec![0.0f32; MAX_LEN + OFFSETS];
    let mut bbuf = vec![0.0f32; MAX_LEN + OFFSETS];
    for len in 1..=MAX_LEN {
        fill(&mut abuf, &mut rng, Rng::small_int);
        fill(&mut bbuf, &mut rng, Rng::small_int);
        for off in 0..OFFSETS {
            let a = &abuf[off..off + len];
            let b = &bbuf[OFFSETS - 1 - off..][..len];
            for metric in [Metric::L2, Metric::Dot] {
                let want = reference(metric, a, b).value;
                for &path in &paths {
                    let got = run(path, metric, a, b);
                    assert_eq!(
                        got as f64,
                        want,
                        "{metric:?} {} len {len} off {off}",
                        path.name()
                    );
                }
            }
        }
    }
}

/// A zero vector has cosine distance exactly 1.0, on either side.
#[test]
fn zero_norm_cosine_is_one() {
    let mut rng = Rng(7);
    for path in paths() {
        for len in 1..=200 {
            let zero = vec![0.0f32; len];
            let neg_zero = vec![-0.0f32; len];
            let mut v = vec![0.0f32; len];
            fill(&mut v, &mut rng, Rng::mixed);
            for (a, b) in [
                (&zero, &v),
                (&v, &zero),
                (&zero, &zero),
                (&neg_zero, &v),
                (&v, &neg_zero),
            ] {
                let got = run(path, Metric::Cosine, a, b);
                assert_eq!(got.to_bits(), 1.0f32.to_bits(), "{} len {len}", path.name());
            }
        }
    }
}

/// Identical and opposite vectors: cosine distance within [0, 2] and at the
/// ends; L2 of a vector with itself is exactly 0.
#[test]
fn cosine_extremes_are_clamped() {
    let mut rng = Rng(11);
    for path in paths() {
        for len in [1, 7, 8, 9, 33, 100, 768, 1100] {
            let mut v = vec![0.0f32; len];
            fill(&mut v, &mut rng, Rng::mixed);
            let neg: Vec<f32> = v.iter().map(|x| -x).collect();
            let same = run(path, Metric::Cosine, &v, &v);
            let opposite = run(path, Metric::Cosine, &v, &neg);
            let bound = 2.0 * gamma(len) + 3.0 * U;
            assert!(
                (0.0..=bound as f32).contains(&same),
                "{} len {len}: {same}",
                path.name()
            );
            assert!(
                ((2.0 - bound) as f32..=2.0).contains(&opposite),
                "{} len {len}: {opposite}",
                path.name()
            );
            assert_eq!(run(path, Metric::L2, &v, &v), 0.0);
        }
    }
}

/// The batch call gives, row by row, the same bits as single calls.
#[test]
fn batch_matches_single() {
    let mut rng = Rng(3);
    for path in paths() {
        for dim in [1, 5, 16, 50, 128, 131] {
            let rows = 9;
            let mut query = vec![0.0f32; dim];
            let mut base = vec![0.0f32; dim * rows];
            fill(&mut query, &mut rng, Rng::mixed);
            fill(&mut base, &mut rng, Rng::mixed);
            for metric in METRICS {
                let mut out = vec![f32::NAN; rows];
                // SAFETY: the CPU supports `path`.
                unsafe { distances(path, metric, &query, &base, &mut out) };
                for (i, got) in out.iter().enumerate() {
                    let want = run(path, metric, &query, &base[i * dim..(i + 1) * dim]);
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{metric:?} {} dim {dim} row {i}",
                        path.name()
                    );
                }
            }
        }
    }
}

/// A base too short for `out`: a debug build trips the `debug_assert!`; a
/// release build fills the whole rows and leaves the others untouched.
#[test]
fn short_base_leaves_missing_rows() {
    let query = [1.0f32, 2.0];
    let base = [1.0f32, 2.0, 3.0, 4.0, 5.0];
    let mut out = [f32::NAN; 4];
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the scalar path runs on any x86-64 CPU.
        unsafe { distances(Path::Scalar, Metric::L2, &query, &base, &mut out) }
    }));
    if cfg!(debug_assertions) {
        assert!(result.is_err());
    } else {
        assert!(result.is_ok());
        assert_eq!(out[..2], [0.0, 8.0]);
        assert!(out[2].is_nan() && out[3].is_nan());
    }
}

#[test]
fn all_finite_uses_exponent_bits() {
    let finite = [
        0.0f32,
        -0.0,
        1.0,
        -1.5,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        f32::MIN_POSITIVE / 2.0,
    ];
    assert!(all_finite(&finite));
    assert!(all_finite(&[]));
    for bad in [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc0_0000),
        f32::INFINITY,
        f32::NEG_INFINITY,
    ] {
        for pos in 0..finite.len() {
            let mut v = finite.to_vec();
            v[pos] = bad;
            assert!(!all_finite(&v), "{bad} at {pos}");
        }
    }
}

#[test]
fn order_key_inverts_to_the_distance_bits() {
    let mut rng = Rng(7);
    for _ in 0..100_000 {
        let bits = rng.next() as u32;
        let back = bits_of_order_key(order_key_bits(bits));
        if f32::from_bits(bits).is_nan() {
            assert!(f32::from_bits(back).is_nan());
        } else {
            assert_eq!(back, bits);
        }
    }
    for v in [
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        1.0,
    ] {
        assert_eq!(bits_of_order_key(order_key(v)), v.to_bits());
    }
}

#[test]
fn order_key_is_monotone() {
    let sorted = [
        f32::MIN,
        -1e30,
        -2.0,
        -1.0,
        -f32::MIN_POSITIVE,
        -f32::from_bits(1),
        -0.0,
        0.0,
        f32::from_bits(1),
        f32::MIN_POSITIVE,
        0.5,
        1.0,
        1.0000001,
        3e38,
        f32::MAX,
    ];
    for w in sorted.windows(2) {
        assert!(order_key(w[0]) < order_key(w[1]), "{} vs {}", w[0], w[1]);
    }
    assert_eq!(order_key(-0.0) + 1, order_key(0.0));

    let mut rng = Rng(99);
    let mut values: Vec<f32> = (0..10_000)
        .map(|_| f32::from_bits(rng.next() as u32))
        .filter(|x| x.is_finite())
        .collect();
    values.sort_by(|x, y| x.total_cmp(y));
    for w in values.windows(2) {
        assert!(order_key(w[0]) <= order_key(w[1]), "{} vs {}", w[0], w[1]);
        if w[0] < w[1] {
            assert!(order_key(w[0]) < order_key(w[1]));
        }
    }
}

#[test]
fn path_selection() {
    assert_eq!(Path::best(false, false, false), Path::Scalar);
    assert_eq!(Path::best(true, false, false), Path::Scalar);
    assert_eq!(Path::best(false, true, true), Path::Scalar);
    assert_eq!(Path::best(true, true, false), Path::Avx2);
    assert_eq!(Path::best(true, false, true), Path::Scalar);
    assert_eq!(Path::best(true, true, true), Path::Avx512);
    assert_eq!(ALL_PATHS.map(Path::name), ["scalar", "avx2", "avx512"],);
    assert!(supported(detect()));
    println!("detected path: {}", detect().name());
}

/// Cosine with stored norms (`norm_sq` + `cosine_distances_with_norms`, what
/// the kernel's cosine search uses) stays within the cosine bound: each norm
/// is still a sum of n squares with relative error at most gamma_n, which is
/// what the bound assumes, only computed in its own pass.
#[test]
fn cosine_with_stored_norms_within_bound() {
    each_case(0xc05, |len, off, a, b| {
        let want = reference(Metric::Cosine, a, b);
        for path in paths() {
            let mut out = [0.0f32];
            // SAFETY: the CPU supports `path`; userland owns its FPU.
            unsafe {
                let (na, nb) = (norm_sq(path, a), norm_sq(path, b));
                cosine_distances_with_norms(path, a, na, b, &[nb], &mut out);
            }
            let err = (out[0] as f64 - want.value).abs();
            assert!(
                err <= want.bound,
                "{} len {len} off {off}: got {}, want {} +- {}",
                path.name(),
                out[0],
                want.value,
                want.bound
            );
        }
    });
}

/// `norm_sq` of a zero vector is +0.0, and stored zero norms give cosine 1.
#[test]
fn stored_zero_norm_gives_one() {
    let z = [0.0f32; 9];
    let v = [1.0f32; 9];
    for path in paths() {
        let mut out = [0.0f32; 1];
        // SAFETY: the CPU supports `path`; userland owns its FPU.
        unsafe {
            assert_eq!(norm_sq(path, &z).to_f32().to_bits(), 0);
            let zero = norm_sq(path, &z);
            cosine_distances_with_norms(path, &v, norm_sq(path, &v), &z, &[zero], &mut out);
        }
        assert_eq!(out[0], 1.0, "{}", path.name());
    }
}

/// NaN distances (inf - inf in a sum) rank after everything, +inf included,
/// whatever their sign bit.
#[test]
fn nan_ranks_last() {
    for nan in [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0xffc0_0000),
        f32::from_bits(0x7f80_0001),
    ] {
        assert_eq!(order_key(nan), u32::MAX);
        assert!(order_key(nan) > order_key(f32::INFINITY));
    }
    assert!(order_key(f32::INFINITY) > order_key(f32::MAX));
    assert!(order_key(f32::NEG_INFINITY) < order_key(f32::MIN));
}

/// Runs `block_distances` on `nq` queries and `rows` rows of `dim` (stride
/// `rows + 3`, so the gaps must stay untouched) and returns the outputs.
fn block(path: Path, metric: Metric, dim: usize, q: &[f32], base: &[f32], rows: usize) -> Vec<f32> {
    let nq = q.len() / dim;
    let stride = rows + 3;
    let qn: Vec<NormSq> = q.chunks(dim).map(|v| unsafe { norm_sq(path, v) }).collect();
    let rn: Vec<NormSq> = base
        .chunks(dim)
        .take(rows)
        .map(|v| unsafe { norm_sq(path, v) })
        .collect();
    let mut out = vec![-7.0f32; nq * stride];
    // SAFETY: the CPU supports `path` (from `paths()`); userland owns its FPU.
    unsafe { block_distances(path, metric, dim, q, &qn, base, &rn, rows, &mut out, stride) };
    for i in 0..nq {
        assert!(
            out[i * stride + rows..(i + 1) * stride]
                .iter()
                .all(|&x| x == -7.0),
            "gap written"
        );
    }
    out
}

/// The blocked kernels, for every dimension 1..=70 and a few long ones,
/// query and row counts that leave short tiles, every metric and path:
/// within the f64 reference's bound; the scalar path bit-identical to the
/// per-row scalar kernels; each pair the same bits whatever its place in
/// the batch (the pair alone gives the same value).
#[test]
fn block_distances_match_reference() {
    let mut rng = Rng(0xb10c);
    let dims: Vec<usize> = (1..=70).chain([96, 128, 300, 384, 768, 1025]).collect();
    for dim in dims {
        let (nq, rows) = (1 + dim % 5, 1 + dim % 9);
        let mut q = vec![0.0f32; nq * dim];
        let mut base = vec![0.0f32; rows * dim];
        fill(&mut q, &mut rng, Rng::mixed);
        fill(&mut base, &mut rng, Rng::mixed);
        for path in paths() {
            for metric in METRICS {
                let out = block(path, metric, dim, &q, &base, rows);
                let stride = rows + 3;
                for (i, a) in q.chunks(dim).enumerate() {
                    for (j, b) in base.chunks(dim).enumerate() {
                        let got = out[i * stride + j];
                        let want = reference(metric, a, b);
                        let err = (got as f64 - want.value).abs();
                        assert!(
                            err <= want.bound,
                            "{} {metric:?} dim {dim} ({i}, {j}): got {got}, want {} +- {}",
                            path.name(),
                            want.value,
                            want.bound
                        );
                        let alone = block(path, metric, dim, a, b, 1)[0];
                        assert_eq!(
                            got.to_bits(),
                            alone.to_bits(),
                            "{} {metric:?} dim {dim}",
                            path.name()
                        );
                        if path == Path::Scalar {
                            let per_row = if metric == Metric::Cosine {
                                let mut o = [0.0f32];
                                // SAFETY: scalar path; userland owns its FPU.
                                unsafe {
                                    let (na, nb) = (norm_sq(path, a), norm_sq(path, b));
                                    cosine_distances_with_norms(path, a, na, b, &[nb], &mut o);
                                }
                                o[0]
                            } else {
                                run(path, metric, a, b)
                            };
                            assert_eq!(
                                got.to_bits(),
                                per_row.to_bits(),
                                "scalar {metric:?} dim {dim}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Blocked cosine with a zero query or zero rows gives exactly 1.0, and a
/// row equal to the query gives about 0, on every path.
#[test]
fn block_cosine_zero_norms_and_self() {
    let dim = 21;
    let v: Vec<f32> = (0..dim).map(|i| i as f32 - 7.5).collect();
    let z = vec![0.0f32; dim];
    let mut base = v.clone();
    base.extend_from_slice(&z);
    base.extend_from_slice(&v);
    for path in paths() {
        let out = block(path, Metric::Cosine, dim, &v, &base, 3);
        assert!(out[0].abs() < 1e-6, "{} self {}", path.name(), out[0]);
        assert_eq!(out[1], 1.0, "{} zero row", path.name());
        let zq = block(path, Metric::Cosine, dim, &z, &base, 3);
        assert!(
            zq[..3].iter().all(|&x| x == 1.0),
            "{} zero query",
            path.name()
        );
        let l2 = block(path, Metric::L2, dim, &v, &base, 3);
        assert_eq!(l2[0], 0.0, "{} L2 self", path.name());
    }
}

/// Arguments that break the contract write nothing (release builds; debug
/// builds assert).
#[test]
#[cfg(not(debug_assertions))]
fn block_contract_violations_write_nothing() {
    let q = [1.0f32; 8];
    let base = [1.0f32; 8];
    let mut out = [5.0f32; 4];
    // SAFETY: scalar path; userland owns its FPU.
    unsafe {
        block_distances(
            Path::Scalar,
            Metric::L2,
            4,
            &q,
            &[],
            &base,
            &[],
            3,
            &mut out,
            3,
        );
        block_distances(
            Path::Scalar,
            Metric::Cosine,
            4,
            &q,
            &[],
            &base,
            &[],
            2,
            &mut out,
            2,
        );
    }
    assert_eq!(out, [5.0; 4]);
}

/// The SQ8 integer dot product: every path equals the exact sum (i64)
/// when it fits, and all paths wrap alike when it does not.
#[test]
fn sq8_dot_matches_exact_sum_and_wraps_alike() {
    let mut rng = Rng(0x005e_ed58);
    for blocks in 1..=40 {
        let n = blocks * SQ8_BLOCK;
        for round in 0..4 {
            let codes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            // Round 3: extreme weights, whose sum overflows i32 past ~16 blocks.
            let weights: Vec<i16> = (0..n + round)
                .map(|_| {
                    if round == 3 {
                        i16::MIN + (rng.next() % 2) as i16
                    } else {
                        rng.next() as i16
                    }
                })
                .collect();
            let exact: i64 = codes
                .iter()
                .zip(&weights)
                .map(|(&c, &w)| i64::from(c) * i64::from(w))
                .sum();
            for path in paths() {
                // SAFETY: the path is supported; userland owns the FPU.
                let got = unsafe { sq8_dot(path, &weights, &codes) };
                assert_eq!(
                    got,
                    exact as i32,
                    "{} blocks, round {round}, path {}",
                    blocks,
                    path.name()
                );
                if round < 3 {
                    assert_eq!(i64::from(got), exact);
                }
            }
        }
    }
}

/// A length that is not a multiple of the block, or too few weights:
/// 0, and nothing read past the slices.
#[test]
fn sq8_dot_contract_violations_return_zero() {
    let codes = vec![7u8; 2 * SQ8_BLOCK];
    let weights = vec![3i16; 2 * SQ8_BLOCK];
    for path in paths() {
        let run = |w: &[i16], c: &[u8]| {
            catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: as above.
                unsafe { sq8_dot(path, w, c) }
            }))
        };
        // Debug builds assert the contract; release builds return 0.
        for (w, c) in [
            (&weights[..], &codes[..SQ8_BLOCK + 1]),
            (&weights[..SQ8_BLOCK], &codes[..]),
        ] {
            if let Ok(v) = run(w, c) {
                assert_eq!(v, 0);
            }
        }
        assert_eq!(run(&weights, &codes).ok(), Some(2 * SQ8_BLOCK as i32 * 21));
        assert_eq!(run(&[], &[]).ok(), Some(0));
    }
}

/// Bounds, training and encoding: codes decode to within half a step of
/// every value inside the bounds seen (and the 1/8 headroom around them),
/// values far outside are clamped and say so, and a cosine row is encoded
/// as its unit vector.
#[test]
fn sq8_codes_decode_within_half_a_step() {
    let mut rng = Rng(0x0005_08c0);
    for dim in [1, 2, 7, 50, 64, 300] {
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..dim).map(|_| rng.mixed()).collect())
            .collect();
        let mut lo = vec![f32::from_bits(SQ8_BOUNDS_EMPTY.0); dim];
        let mut hi = vec![f32::from_bits(SQ8_BOUNDS_EMPTY.1); dim];
        let mut quant = vec![0f32; 3 * dim];
        let mut codes = vec![0u8; dim];
        // SAFETY: userland owns the FPU; SSE2 is on every x86-64 CPU.
        unsafe {
            for r in &rows {
                sq8_widen(r, 1f32.to_bits(), &mut lo, &mut hi);
            }
            for d in 0..dim {
                let (l, h) = rows
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), r| (l.min(r[d]), h.max(r[d])));
                assert_eq!((lo[d], hi[d]), (l, h), "bounds, dim {dim}");
            }
            let scale = sq8_train(&lo, &hi, &mut quant).unwrap();
            let (off, rest) = quant.split_at(dim);
            let (step, inv) = rest.split_at(dim);
            let bound: f64 = step.iter().map(|&s| (255.0 * f64::from(s)).powi(2)).sum();
            assert!((f64::from(f32::from_bits(scale.term_bound)) - bound).abs() <= bound * 1e-5);
            assert!(bound * 2f64.powi(scale.term_exp) < 2f64.powi(31));
            assert!(bound * 2f64.powi(scale.term_exp + 1) >= 2f64.powi(30));
            for d in 0..dim {
                assert!((f64::from(step[d] * inv[d]) - 1.0).abs() < 1e-6);
            }
            for r in &rows {
                let got = sq8_encode(r, 1f32.to_bits(), &quant, scale, &mut codes).unwrap();
                assert!(!got.clamped);
                let mut term = 0f64;
                for d in 0..dim {
                    let back = f64::from(off[d]) + f64::from(step[d]) * f64::from(codes[d]);
                    assert!(
                        (back - f64::from(r[d])).abs() <= 0.5001 * f64::from(step[d]),
                        "dim {dim}: {} coded {} decodes to {back}",
                        r[d],
                        codes[d]
                    );
                    term += (f64::from(step[d]) * f64::from(codes[d])).powi(2);
                }
                let want = term * 2f64.powi(scale.term_exp);
                assert!((f64::from(got.term) - want).abs() <= want * 1e-5 + 1.0);
            }
            // Far outside: clamped to 0 / 255, and flagged.
            let mut far = rows[0].clone();
            far[dim - 1] = hi[dim - 1] + 4.0 * (hi[dim - 1] - lo[dim - 1]) + 1.0;
            let got = sq8_encode(&far, 1f32.to_bits(), &quant, scale, &mut codes).unwrap();
            assert!(got.clamped);
            assert_eq!(codes[dim - 1], 255);
            far[dim - 1] = lo[dim - 1] - 4.0 * (hi[dim - 1] - lo[dim - 1]) - 1.0;
            assert!(
                sq8_encode(&far, 1f32.to_bits(), &quant, scale, &mut codes)
                    .unwrap()
                    .clamped
            );
            assert_eq!(codes[dim - 1], 0);
            // Within the headroom: not clamped.
            let mut near = rows[0].clone();
            near[0] = hi[0] + 0.1 * (hi[0] - lo[0]);
            if hi[0] > lo[0] {
                assert!(
                    !sq8_encode(&near, 1f32.to_bits(), &quant, scale, &mut codes)
                        .unwrap()
                        .clamped
                );
            }
            // Slices that do not fit.
            assert!(sq8_encode(&rows[0], 1f32.to_bits(), &quant[1..], scale, &mut codes).is_none());
            assert!(sq8_train(&lo, &hi[1..], &mut quant).is_none());
        }
    }
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            f32::from_bits(sq8_unit_scale(norm_sq(Path::Scalar, &[3.0, 4.0]))),
            0.2
        );
        assert_eq!(sq8_unit_scale(norm_sq(Path::Scalar, &[0.0, 0.0])), 0);
    }
}

/// The order keys of every metric sort rows as the f64 distance from the
/// query to the rows' decoded codes does, up to the weights' rounding;
/// weights stay within their bounds.
#[test]
fn sq8_keys_order_rows_as_their_decoded_distances() {
    let mut rng = Rng(0x0005_08c1);
    for metric in METRICS {
        for dim in [3usize, 50, 384] {
            let stride = dim.div_ceil(SQ8_BLOCK) * SQ8_BLOCK;
            let rows: Vec<Vec<f32>> = (0..200)
                .map(|_| (0..dim).map(|_| rng.mixed()).collect())
                .collect();
            let mut lo = vec![f32::from_bits(SQ8_BOUNDS_EMPTY.0); dim];
            let mut hi = vec![f32::from_bits(SQ8_BOUNDS_EMPTY.1); dim];
            let mut quant = vec![0f32; 3 * dim];
            let l2 = metric == Metric::L2;
            // SAFETY: userland owns the FPU; the paths are supported.
            unsafe {
                for r in &rows {
                    sq8_widen(r, 1f32.to_bits(), &mut lo, &mut hi);
                }
                let scale = sq8_train(&lo, &hi, &mut quant).unwrap();
                let coded: Vec<(Vec<u8>, u32)> = rows
                    .iter()
                    .map(|r| {
                        let mut c = vec![0u8; stride];
                        let t = sq8_encode(r, 1f32.to_bits(), &quant, scale, &mut c).unwrap();
                        (c, t.term)
                    })
                    .collect();
                for _ in 0..5 {
                    let q: Vec<f32> = (0..dim).map(|_| rng.mixed()).collect();
                    let mut w = vec![7i16; stride];
                    let keys = sq8_query(&q, &quant, scale, l2, &mut w).unwrap();
                    assert!(w[dim..].iter().all(|&x| x == 0));
                    let largest = w.iter().map(|x| i64::from(x.unsigned_abs())).max().unwrap();
                    assert!(largest * 255 * stride as i64 <= i64::from(i32::MAX));
                    // Reference: distance to the decoded row, in f64.
                    let approx: Vec<f64> = coded
                        .iter()
                        .map(|(c, _)| {
                            let mut s = 0f64;
                            for d in 0..dim {
                                let x = f64::from(quant[d])
                                    + f64::from(quant[dim + d]) * f64::from(c[d]);
                                s += if l2 {
                                    (f64::from(q[d]) - x).powi(2)
                                } else {
                                    -f64::from(q[d]) * x
                                };
                            }
                            s
                        })
                        .collect();
                    let spread = approx.iter().cloned().fold(f64::MIN, f64::max)
                        - approx.iter().cloned().fold(f64::MAX, f64::min);
                    for path in paths() {
                        let got: Vec<u32> = coded
                            .iter()
                            .map(|(c, t)| keys.key(sq8_dot(path, &w, c), *t))
                            .collect();
                        let mut misordered = 0;
                        for i in 0..rows.len() {
                            for j in 0..rows.len() {
                                // Pairs apart by more than the rounding
                                // of the weights must keep their order.
                                if approx[i] + 0.02 * spread < approx[j] && got[i] >= got[j] {
                                    misordered += 1;
                                }
                            }
                        }
                        assert_eq!(misordered, 0, "{metric:?} dim {dim} path {}", path.name());
                    }
                }
            }
        }
    }
}

/// Rows near the ends of f32: training clips the bounds, so steps, offsets
/// and terms stay finite, codes of in-range values decode within half a
/// step, and only the values beyond the clip are clamped.
#[test]
fn sq8_extreme_rows_keep_the_quantizer_finite() {
    let dim = 4;
    let rows = [
        [-1.6e38f32, 0.0, 1.0, -1.0],
        [1.6e38, 0.5, -1.0, 1.0],
        [0.0, 1e18, 0.25, 0.0],
    ];
    let mut lo = vec![f32::from_bits(SQ8_BOUNDS_EMPTY.0); dim];
    let mut hi = vec![f32::from_bits(SQ8_BOUNDS_EMPTY.1); dim];
    let mut quant = vec![0f32; 3 * dim];
    let mut codes = vec![0u8; 32];
    // SAFETY: userland owns the FPU; SSE2 is on every x86-64 CPU.
    unsafe {
        for r in &rows {
            sq8_widen(r, 1f32.to_bits(), &mut lo, &mut hi);
        }
        let scale = sq8_train(&lo, &hi, &mut quant).unwrap();
        assert!(quant.iter().all(|v| v.is_finite()), "{quant:?}");
        assert!(f32::from_bits(scale.term_bound).is_finite());
        let clamped: Vec<bool> = rows
            .iter()
            .map(|r| {
                sq8_encode(r, 1f32.to_bits(), &quant, scale, &mut codes)
                    .unwrap()
                    .clamped
            })
            .collect();
        assert_eq!(clamped, [true, true, false]);
        let mut w = vec![0i16; 32];
        for l2 in [false, true] {
            let keys = sq8_query(&rows[2], &quant, scale, l2, &mut w).unwrap();
            let _ = keys.key(sq8_dot(Path::Scalar, &w, &codes), 0);
        }
    }
}

/// Quantile bounds: the values at the lower and upper tails of a sample,
/// by integer order keys, so a few far values are left out; scaled keys
/// order as the scaled values.
#[test]
fn sq8_quantiles_leave_out_the_tails() {
    let n = 1001;
    let mut vals: Vec<f32> = (0..n).map(|i| i as f32 - 500.0).collect();
    // Two values far out on each side, fewer than the tails.
    vals[3] = -1.6e38;
    vals[7] = -3e30;
    vals[11] = 2e30;
    vals[13] = 1.6e38;
    let mut keys = vec![0u32; n];
    // SAFETY: userland owns the FPU; SSE2 is on every x86-64 CPU.
    unsafe { sq8_scaled_keys(&vals, 2f32.to_bits(), &mut keys) };
    let mut sorted: Vec<f32> = vals.iter().map(|v| v * 2.0).collect();
    sorted.sort_by(f32::total_cmp);
    let (lo, hi) = sq8_quantiles(&mut keys).unwrap();
    let cut = (n - 1) * SQ8_TAIL_PER_MILLE / 1000;
    assert_eq!(f32::from_bits(lo), sorted[cut]);
    assert_eq!(f32::from_bits(hi), sorted[n - 1 - cut]);
    assert!(f32::from_bits(lo).abs() < 1e4 && f32::from_bits(hi).abs() < 1e4);
    assert_eq!(sq8_quantiles(&mut []), None);
    let mut one = [order_key_bits(5f32.to_bits())];
    assert_eq!(
        sq8_quantiles(&mut one),
        Some((5f32.to_bits(), 5f32.to_bits()))
    );
}
