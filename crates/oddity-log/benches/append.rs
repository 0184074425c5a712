//! Throughput of the embedded log.
//!
//! Input shape: one partition; batches of 1,000 records of 200 bytes each (deterministic bytes
//! from a fixed-seed xorshift generator, so every run writes the same data); 64 MiB segments.
//! - `append/{always,interval_10ms}/{1,4}_appenders`: each appender task appends one batch per
//!   iteration (so 1,000 × appenders records per iteration) on a 2-worker multi-thread runtime,
//!   all on the same partition so that concurrent batches share a group commit. Each appender
//!   commits what it wrote so retention keeps the disk usage bounded.
//! - `read/sequential`: one reader reads 100,000 pre-written records from offset 0 in reads of up
//!   to 1,000 records.
//!
//! Throughput is reported in elements (records) per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oddity_log::Log;
use oddity_log::embedded::{EmbeddedLog, EmbeddedLogConfig, FsyncPolicy};

const BATCH: usize = 1_000;
const RECORD_BYTES: usize = 200;
const READ_RECORDS: usize = 100_000;

/// A batch of records with fixed-seed pseudo-random bytes.
fn batch(seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..BATCH)
        .map(|_| {
            (0..RECORD_BYTES)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime should build")
}

fn open(dir: &std::path::Path, fsync: FsyncPolicy) -> Arc<EmbeddedLog> {
    let mut config = EmbeddedLogConfig::new(dir, 1);
    config.fsync = fsync;
    Arc::new(EmbeddedLog::open(config).expect("log should open"))
}

fn bench_append(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("append");
    let policies = [
        ("always", FsyncPolicy::Always),
        (
            "interval_10ms",
            FsyncPolicy::Interval(Duration::from_millis(10)),
        ),
    ];
    for (name, fsync) in policies {
        for appenders in [1usize, 4] {
            let dir = tempfile::tempdir().expect("tempdir should be created");
            let log = open(dir.path(), fsync);
            let batches: Arc<Vec<Vec<Vec<u8>>>> =
                Arc::new((0..appenders as u64).map(batch).collect());
            group.throughput(Throughput::Elements((BATCH * appenders) as u64));
            group.bench_function(format!("{name}/{appenders}_appenders"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        let tasks: Vec<_> = (0..appenders)
                            .map(|i| {
                                let log = Arc::clone(&log);
                                let batches = Arc::clone(&batches);
                                tokio::spawn(async move {
                                    for _ in 0..iters {
                                        let first = log
                                            .append(0, batches[i].clone())
                                            .await
                                            .expect("append should succeed");
                                        log.commit(0, first).expect("commit should succeed");
                                    }
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("appender should not panic");
                        }
                        start.elapsed()
                    })
                })
            });
        }
    }
    group.finish();
}

fn bench_read(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir should be created");
    let log = open(dir.path(), FsyncPolicy::Never);
    rt.block_on(async {
        for i in 0..(READ_RECORDS / BATCH) as u64 {
            log.append(0, batch(i))
                .await
                .expect("append should succeed");
        }
    });
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(READ_RECORDS as u64));
    group.bench_function("sequential", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut reader = log.reader(0, 0).await.expect("reader should open");
                let mut out = Vec::with_capacity(BATCH);
                let mut total = 0;
                while total < READ_RECORDS {
                    total += reader
                        .read(&mut out, BATCH, Duration::ZERO)
                        .await
                        .expect("read should succeed");
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_append, bench_read);
criterion_main!(benches);
