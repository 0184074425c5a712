//! Throughput of the streaming statistical detectors, in points per second on one core.
//!
//! Input shape: one series of `N` points, one per minute (`ts` in epoch ms), value
//! `100 + 10·(sum of 4 uniforms − 2)` (roughly Gaussian, σ ≈ 5.8) plus a daily sine of amplitude
//! 20, with a spike of +200 on one point in 1,000. Generated once from `ChaCha8Rng` seeded with
//! 42, so every run measures the same data. Each iteration feeds the whole series to a fresh
//! model through the plain `update(ts, value)` API (no event plumbing), so the figure is the
//! detector's own cost. `Throughput::Elements` makes criterion report points/s.
//!
//! `N` is 1,000,000 for the O(1) detectors (z-score, EWMA, change point, seasonal) and 100,000
//! for the order-statistics ones (MAD, the default streaming detector).
//!
//! `streaming_state` measures a checkpoint of the default streaming detector after 5,000 points
//! of the same series (full windows, period detected): `snapshot` is the state as the store
//! writes it (`DetectorState::of` + `serde_json::to_string`, compact `f64` sequences, see
//! `oddity_detect::compact`), `restore` the way back (`from_str` + `DetectorState::to`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oddity_detect::DetectorState;
use oddity_detect::stats::{
    ChangePointConfig, EwmaConfig, MadConfig, SeasonalConfig, SeriesUpdate, Streaming,
    StreamingConfig, ZscoreConfig,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MINUTE: i64 = 60_000;

fn series(n: usize) -> Vec<(i64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    (0..n)
        .map(|i| {
            let ts = 1_700_000_000_000 + i as i64 * MINUTE;
            let noise: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
            let phase = (ts % 86_400_000) as f64 / 86_400_000.0 * std::f64::consts::TAU;
            let spike = if rng.random_range(0..1000u32) == 0 {
                200.0
            } else {
                0.0
            };
            (ts, 100.0 + 10.0 * noise + 20.0 * phase.sin() + spike)
        })
        .collect()
}

fn run<M: SeriesUpdate>(mut model: M, data: &[(i64, f64)]) -> f64 {
    let mut total = 0.0;
    for &(ts, x) in data {
        total += model.update(ts, x).score;
    }
    total
}

fn bench(c: &mut Criterion) {
    let large = series(1_000_000);
    let small = &large[..100_000];
    let mut group = c.benchmark_group("stats_update");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4));

    group.throughput(Throughput::Elements(large.len() as u64));
    let zscore = ZscoreConfig::default();
    group.bench_function("zscore", |b| {
        b.iter(|| run(zscore.model(), black_box(&large)))
    });
    let ewma = EwmaConfig::default();
    group.bench_function("ewma", |b| b.iter(|| run(ewma.model(), black_box(&large))));
    let change_point = ChangePointConfig::default();
    group.bench_function("change_point", |b| {
        b.iter(|| run(change_point.model(), black_box(&large)))
    });
    let seasonal = SeasonalConfig::default();
    group.bench_function("seasonal", |b| {
        b.iter(|| run(seasonal.model(), black_box(&large)))
    });

    group.throughput(Throughput::Elements(small.len() as u64));
    let mad = MadConfig::default();
    group.bench_function("mad", |b| b.iter(|| run(mad.model(), black_box(small))));
    let streaming = StreamingConfig::default();
    group.bench_function("streaming_default", |b| {
        b.iter(|| run(streaming.model(), black_box(small)))
    });
    group.finish();

    let mut model = streaming.model();
    for &(ts, x) in &large[..5_000] {
        model.update(ts, x);
    }
    let snapshot = || {
        serde_json::to_string(&DetectorState::of(&model).expect("serialisable state"))
            .expect("JSON text")
    };
    let text = snapshot();
    let mut group = c.benchmark_group("streaming_state");
    group
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    group.bench_function("snapshot", |b| b.iter(|| black_box(snapshot()).len()));
    group.bench_function("restore", |b| {
        b.iter(|| {
            let state: DetectorState =
                serde_json::from_str(black_box(&text)).expect("valid JSON state");
            state.to::<Streaming>().expect("valid streaming state")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
