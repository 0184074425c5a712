//! Ingest parsing: NDJSON body → validated `Event`s, the per-request CPU cost of `POST /v1/events`.
//!
//! Input: 1,000 seed-002 signals (≈250 bytes each, the reference emitter's mix of types and
//! payloads), generated with a fixed seed.

/// The allocator of the `oddity` binary, so that the numbers are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use oddity_api::ingest::{Framing, parse_batch};
use oddity_config::Config;
use oddity_testing::Emitter;

fn ingest(c: &mut Criterion) {
    let limits = Config::default_config()
        .expect("defaults should load")
        .ingest;
    let mut body = String::new();
    Emitter::new(1, 1_754_654_400_000, 10_000, 0.01).fill(&mut body, 1000);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("parse_ndjson_1000_signals", |b| {
        b.iter(|| {
            parse_batch(body.as_bytes(), Framing::Ndjson, &limits, 0).expect("batch should parse")
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
