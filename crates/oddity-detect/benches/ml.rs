//! Fit + score time of the batch outlier models on a fixed synthetic matrix.
//!
//! Input shape: 5,000 rows × 10 columns, generated once from `ChaCha8Rng` seeded with 42. Rows
//! come from three Gaussian-like clusters (each coordinate the mean of 4 uniforms around a
//! cluster centre, σ ≈ 0.29) with 2 % of rows drawn uniformly from a box four times wider
//! (the outliers). Each iteration runs the unsupervised protocol of the tabular evaluator:
//! fit with default parameters on all rows and score the same rows (`Estimator::fit_score`),
//! so the figure is comparable with scikit-learn's `fit` + `score_samples` /
//! `negative_outlier_factor_`. Multi-threaded models use every core, as in production.
//!
//! - `isolation_forest/fit_score`: 100 trees, ψ = 256, seed 42.
//! - `lof/fit_score`: k = 20, exact neighbours (brute force at this size, plus the KD-tree kept
//!   for scoring new rows).
//! - `zscore/fit_score`: per-column mean and standard deviation.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oddity_detect::ml::{Estimator, IsolationForest, LocalOutlierFactor, Matrix, ZScore};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROWS: usize = 5_000;
const COLS: usize = 10;

fn matrix() -> Matrix {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let centres: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..COLS).map(|_| rng.random::<f64>() * 10.0).collect())
        .collect();
    let mut data = Vec::with_capacity(ROWS * COLS);
    for _ in 0..ROWS {
        if rng.random_range(0..50u32) == 0 {
            data.extend((0..COLS).map(|_| rng.random::<f64>() * 40.0 - 10.0));
        } else {
            let c = &centres[rng.random_range(0..3usize)];
            data.extend(
                c.iter().map(|m| {
                    m + (0..4).map(|_| rng.random::<f64>()).sum::<f64>() / 4.0 * 2.0 - 1.0
                }),
            );
        }
    }
    Matrix::new(COLS, data).expect("the synthetic matrix should be well formed")
}

fn ml(c: &mut Criterion) {
    let data = matrix();
    let mut group = c.benchmark_group("ml_5000x10");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    group.bench_function("isolation_forest/fit_score", |b| {
        let est = IsolationForest::default();
        b.iter(|| black_box(est.fit_score(black_box(&data)).expect("fit should succeed")))
    });
    group.bench_function("lof/fit_score", |b| {
        let est = LocalOutlierFactor::default();
        b.iter(|| black_box(est.fit_score(black_box(&data)).expect("fit should succeed")))
    });
    group.bench_function("zscore/fit_score", |b| {
        let est = ZScore::default();
        b.iter(|| black_box(est.fit_score(black_box(&data)).expect("fit should succeed")))
    });
    group.finish();
}

criterion_group!(benches, ml);
criterion_main!(benches);
