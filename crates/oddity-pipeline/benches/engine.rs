//! The worker's CPU path per batch: decode log records and run the default detectors
//! (the seven seed-002 rules, the three audit rules, the streaming detector on values).
//!
//! Input: consecutive batches of 20,000 seed-002 signals (a worker batch under moderate load) from 100,000
//! users at 1,000 signals per second of event time — the `oddity bench` default, where per-user
//! rates stay realistic and ~2.5 % of signals raise an anomaly (mostly seed 002's high-value
//! purchases) — encoded as the log stores them; fixed seed. Each iteration gets the next batch of
//! the stream (generated outside the timing), so windows evolve as in production instead of
//! seeing the same events again.

use std::sync::Arc;

/// The allocator of the `oddity` binary, so that the numbers are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use oddity_config::Config;
use oddity_detect::rules::RuleContext;
use oddity_model::{Event, EventId, codec};
use oddity_pipeline::Engine;
use oddity_testing::Emitter;

const BATCH: usize = 20_000;

fn next_batch(emitter: &mut Emitter, offset: &mut u64) -> Vec<(u64, Vec<u8>)> {
    let mut text = String::new();
    emitter.fill(&mut text, BATCH);
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("emitter writes JSON");
            let mut e = Event::new(
                v["user_id"].to_string(),
                v["type"].as_str().unwrap_or(""),
                v["timestamp"].as_i64().unwrap_or(0),
            );
            e.attrs = Some(v["payload"].to_string());
            *offset += 1;
            (*offset, codec::encode_to_vec(&e))
        })
        .collect()
}

fn engine(c: &mut Criterion) {
    let specs: Arc<[_]> = Config::default_config()
        .expect("defaults should load")
        .detectors
        .into();
    let mut engine = Engine::new(specs, RuleContext::default(), 0);
    let mut emitter = Emitter::new(7, 1_754_654_400_000, 1_000, 0.01).with_users(100_000);
    let mut offset = 0;
    let decode = |recs: &[(u64, Vec<u8>)]| -> Vec<Event> {
        recs.iter()
            .map(|(o, r)| codec::decode(r, EventId::new(0, *o)).expect("valid record"))
            .collect()
    };
    // Warm up: ten batches, so windows and learned values are populated.
    for _ in 0..10 {
        engine.process(&decode(&next_batch(&mut emitter, &mut offset)), 0);
    }
    let mut group = c.benchmark_group("worker");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("decode_and_detect_20000_signals", |b| {
        b.iter_batched(
            || next_batch(&mut emitter, &mut offset),
            |batch| engine.process(&decode(&batch), 0),
            BatchSize::LargeInput,
        )
    });
    // A checkpoint after each batch (the worst case: one per 20,000 events; production takes
    // one per `pipeline.checkpoint_interval`).
    group.bench_function("checkpoint_after_a_batch", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                engine.process(&decode(&next_batch(&mut emitter, &mut offset)), 0);
                let started = std::time::Instant::now();
                std::hint::black_box(engine.checkpoint());
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

/// Batch-model detectors scoring rows once fitted: an Isolation Forest, a LOF and seed 003's
/// ensemble, each keyed by type (one model per partition), on host metrics with three `fields`
/// (5,000-row window, no refit during the measurement).
fn models(c: &mut Criterion) {
    const ROWS: usize = 10_000;
    let mut group = c.benchmark_group("batch_models");
    group.throughput(Throughput::Elements(ROWS as u64));
    let row = |i: usize| {
        let x = i as f64;
        let mut e = Event::new(format!("host-{}", i % 500), "host_metrics", i as i64 * 100);
        e.id = EventId::new(0, i as u64);
        let noise = ((i * 7919) % 101) as f64 / 101.0;
        e.fields
            .insert("cpu".into(), 40.0 + 10.0 * (x * 0.01).sin() + 3.0 * noise);
        e.fields
            .insert("mem".into(), 60.0 + 5.0 * (x * 0.003).cos() + noise);
        e.fields
            .insert("latency_ms".into(), 20.0 + 8.0 * noise * noise);
        e
    };
    for kind in ["isolation_forest", "lof", "ensemble"] {
        let toml = format!(
            r#"
[[detectors]]
id = "m"
kind = "{kind}"
features = ["fields.cpu", "fields.mem", "fields.latency_ms"]
warm_up = 5000
window = 5000
refit_every = "0s"
severity = "low"
description = "x"
"#
        );
        let specs: Arc<[_]> = Config::load(Some(&toml))
            .expect("the bench configuration is valid")
            .detectors
            .into();
        let mut engine = Engine::new(specs, RuleContext::default(), 0);
        let warm: Vec<Event> = (0..5_000).map(row).collect();
        engine.process(&warm, 0);
        assert_eq!(engine.take_models().len(), 1, "fitted after warm-up");
        let mut next = 5_000;
        group.bench_function(format!("{kind}_score_10000_rows"), |b| {
            b.iter_batched(
                || {
                    let batch: Vec<Event> = (next..next + ROWS).map(row).collect();
                    next += ROWS;
                    batch
                },
                |batch| engine.process(&batch, 0),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, engine, models);
criterion_main!(benches);
