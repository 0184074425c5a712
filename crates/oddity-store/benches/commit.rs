//! Commit throughput and query latency of the SQLite store, on a realistically sized table.
//!
//! Shapes (seeded, deterministic):
//! - a database on the target dir's disk (not tmpfs: the fsync of each commit is part of the
//!   cost), preloaded with `ODDITY_BENCH_PRELOAD` events (default 1,000,000) in 50k batches;
//! - 4 partitions, events round-robin over them; each partition's ids are consecutive offsets;
//! - 1,000 entities (`user_0`..`user_999`, uniform), 5 types weighted like seed 002's generator
//!   (click .40, api_call .30, file_access .15, login .10, purchase .05);
//! - `ts` = arrival time minus up to 2 s of jitter, arrivals 10 µs apart (100 k events/s);
//! - `attrs` ≈ 200 bytes of JSON (session, ip, user agent, page, coordinates), no `value`/`fields`
//!   except purchases (`value` = amount);
//! - 0.5 % of events raise an anomaly with a full explanation and the event embedded.
//!
//! Groups:
//! - `commit/{10000,64000}`: one `Store::commit` per iteration (events/s = elements/s). The table
//!   keeps growing during the measurement, as it would in production.
//! - `query/*`: one API call per iteration against the same database (≥ 1 M events).
//!
//! Knobs (env), for comparing settings: `ODDITY_BENCH_PRELOAD`, `ODDITY_BENCH_PARTITIONS`, `ODDITY_BENCH_ENTITIES`,
//! `ODDITY_BENCH_PROBE_EVENTS`, `ODDITY_BENCH_CACHE_KIB` (writer page cache), `ODDITY_BENCH_MMAP`
//! (bytes), `ODDITY_BENCH_CHECKPOINT_PAGES` (WAL auto-checkpoint), `ODDITY_BENCH_PAGE_SIZE` (page
//! size the database file is created with).
//!
//! Before the criterion groups, a probe commits pre-generated batches and prints events/s by wall
//! clock and by process CPU time: on a shared machine the CPU figure is the stable one.
//! Run: `cargo bench -p oddity-store --bench commit -- --quick`.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use oddity_model::{Anomaly, Event, EventId, Explanation, Severity};
use oddity_store::sqlite::{SqliteOptions, SqliteStore};
use oddity_store::{AnomalyQuery, CommitBatch, EventQuery, Store};

/// Upper bound of `ODDITY_BENCH_PARTITIONS` (default 4).
const PARTITIONS: u32 = 16;
const ENTITIES: u64 = 1_000;
const TYPES: [(&str, u64); 5] = [
    ("click", 40),
    ("api_call", 70),
    ("file_access", 85),
    ("login", 95),
    ("purchase", 100),
];
/// 2025-06-15T16:00:00Z.
const START_MS: i64 = 1_750_003_200_000;

/// splitmix64: small, seeded, good enough for shapes.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Generates batches with consecutive offsets per partition.
#[derive(Debug)]
struct Generator {
    rng: Rng,
    next_offset: [u64; PARTITIONS as usize],
    next_partition: u32,
    partitions: u32,
    arrivals: u64,
    entities: u64,
}

impl Generator {
    fn new(seed: u64) -> Self {
        let partitions = env_or("ODDITY_BENCH_PARTITIONS", 4u32).clamp(1, PARTITIONS);
        Generator {
            rng: Rng(seed),
            next_offset: [0; PARTITIONS as usize],
            next_partition: 0,
            partitions,
            arrivals: 0,
            entities: env_or("ODDITY_BENCH_ENTITIES", ENTITIES),
        }
    }

    fn batch(&mut self, n: usize) -> CommitBatch {
        let partition = self.next_partition;
        self.next_partition = (self.next_partition + 1) % self.partitions;
        let from = self.next_offset[partition as usize];
        let mut events = Vec::with_capacity(n);
        let mut anomalies = Vec::new();
        for i in 0..n as u64 {
            let e = self.event(partition, from + i);
            if self.rng.below(1000) < 5 {
                anomalies.push(anomaly(&e));
            }
            events.push(e);
        }
        self.next_offset[partition as usize] = from + n as u64;
        CommitBatch {
            partition,
            from_offset: from,
            to_offset: from + n as u64,
            events,
            anomalies,
            state: Vec::new(),
            state_offset: None,
            models: Vec::new(),
        }
    }

    fn event(&mut self, partition: u32, offset: u64) -> Event {
        let arrival = START_MS + (self.arrivals / 100) as i64;
        self.arrivals += 1;
        let user = self.rng.below(self.entities);
        let roll = self.rng.below(100);
        let event_type = TYPES
            .iter()
            .find(|(_, upto)| roll < *upto)
            .map_or("click", |(t, _)| t);
        let mut e = Event::new(
            format!("user_{user}"),
            event_type,
            arrival - self.rng.below(2000) as i64,
        );
        e.id = EventId::new(partition, offset);
        e.ingested_at = arrival;
        if event_type == "purchase" {
            e.value = Some((self.rng.below(200_000) as f64) / 100.0);
        }
        e.attrs = Some(format!(
            r#"{{"session_id":"sess_{user}_{}","ip_address":"192.168.{}.{}","user_agent":"Mozilla/5.0 (compatible; EventPipeline/1.0)","page":"/products","element":"button","coordinates":{{"x":{},"y":{}}}}}"#,
            1000 + self.rng.below(9000),
            1 + self.rng.below(255),
            1 + self.rng.below(255),
            self.rng.below(1920),
            self.rng.below(1080),
        ));
        e
    }
}

fn anomaly(e: &Event) -> Anomaly {
    let mut details = serde_json::Map::new();
    details.insert("threshold".into(), serde_json::json!(1000));
    Anomaly {
        event_id: e.id,
        entity: e.entity.clone(),
        event_type: e.event_type.clone(),
        ts: e.ts,
        detector: "high_value_purchase".into(),
        kind: "threshold".into(),
        severity: Severity::High,
        score: 0.8,
        description: format!("User {} made a high-value purchase", e.entity),
        explanation: Explanation {
            observed: Some(serde_json::json!(1500.0)),
            window: Some("60s".into()),
            feature: Some("amount".into()),
            details,
            ..Explanation::default()
        },
        event: e.clone(),
        detected_at: e.ingested_at + 5,
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open_store(dir: &std::path::Path) -> SqliteStore {
    let path = dir.join("bench.db");
    let mut options = SqliteOptions::default();
    options.writer_cache_kib = env_or("ODDITY_BENCH_CACHE_KIB", options.writer_cache_kib);
    options.page_size = env_or("ODDITY_BENCH_PAGE_SIZE", options.page_size);
    options.mmap_size_bytes = env_or("ODDITY_BENCH_MMAP", options.mmap_size_bytes);
    options.wal_autocheckpoint_pages = env_or(
        "ODDITY_BENCH_CHECKPOINT_PAGES",
        options.wal_autocheckpoint_pages,
    );
    SqliteStore::open(&path, options).expect("bench store should open")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let store = open_store(dir.path());
    let mut generator = Generator::new(42);

    let preload: usize = env_or("ODDITY_BENCH_PRELOAD", 1_000_000);
    let started = std::time::Instant::now();
    let mut loaded = 0;
    while loaded < preload {
        let n = 50_000.min(preload - loaded);
        rt.block_on(store.commit(generator.batch(n)))
            .expect("preload commit");
        loaded += n;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "preloaded {loaded} events in {secs:.1} s ({:.0} events/s)",
        loaded as f64 / secs
    );

    for size in [10_000usize, 64_000] {
        cpu_probe(
            &rt,
            &store,
            &mut generator,
            size,
            env_or("ODDITY_BENCH_PROBE_EVENTS", 640_000) / size,
        );
    }

    let mut group = c.benchmark_group("commit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for size in [10_000usize, 64_000] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(size.to_string(), |b| {
            b.iter_batched(
                || generator.batch(size),
                |batch| rt.block_on(store.commit(batch)).expect("commit"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    let total = rt
        .block_on(store.events(&EventQuery::default()))
        .expect("count")
        .total;
    eprintln!("table holds {total} events");
    let mut group = c.benchmark_group("query");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let now = START_MS + (generator.arrivals / 100) as i64;
    let entity = Some("user_42".to_owned());
    let queries = [
        ("events/unfiltered", EventQuery::default()),
        (
            "events/entity",
            EventQuery {
                entity: entity.clone(),
                ..EventQuery::default()
            },
        ),
        (
            "events/entity_page_5",
            EventQuery {
                entity: entity.clone(),
                page: 5,
                ..EventQuery::default()
            },
        ),
        (
            "events/type",
            EventQuery {
                event_type: Some("login".into()),
                ..EventQuery::default()
            },
        ),
        (
            "events/entity_type_range",
            EventQuery {
                entity: entity.clone(),
                event_type: Some("click".into()),
                from_ts: Some(now - 5_000),
                to_ts: Some(now),
                ..EventQuery::default()
            },
        ),
        (
            "events/last_minute",
            EventQuery {
                from_ts: Some(now - 60_000),
                ..EventQuery::default()
            },
        ),
    ];
    for (name, q) in queries {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(store.events(&q)).expect("query"))
        });
    }
    let aq = AnomalyQuery {
        entity: entity.clone(),
        ..AnomalyQuery::default()
    };
    group.bench_function("anomalies/entity", |b| {
        b.iter(|| rt.block_on(store.anomalies(&aq)).expect("query"))
    });
    let aq = AnomalyQuery::default();
    group.bench_function("anomalies/unfiltered", |b| {
        b.iter(|| rt.block_on(store.anomalies(&aq)).expect("query"))
    });
    group.bench_function("stats/24h", |b| {
        b.iter(|| {
            rt.block_on(store.stats(now - 24 * 3_600_000))
                .expect("stats")
        })
    });
    group.bench_function("entity_risk", |b| {
        b.iter(|| {
            rt.block_on(store.entity_risk("user_42", now))
                .expect("risk")
        })
    });
    group.finish();
}

/// CPU time (user + system) of the whole process, in seconds, from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    if f.len() < 13 {
        0.0
    } else {
        (f[11] + f[12]) / 100.0
    }
}

/// Commits `n` pre-generated batches and prints wall-clock and CPU-time throughput: on a shared
/// machine (other builds, steal time) the CPU figure is the stable one.
fn cpu_probe(
    rt: &tokio::runtime::Runtime,
    store: &SqliteStore,
    generator: &mut Generator,
    size: usize,
    n: usize,
) {
    let batches: Vec<CommitBatch> = (0..n.max(1)).map(|_| generator.batch(size)).collect();
    let events = (size * batches.len()) as f64;
    let (cpu0, wall0) = (process_cpu_seconds(), std::time::Instant::now());
    for b in batches {
        rt.block_on(store.commit(b)).expect("probe commit");
    }
    let (cpu, wall) = (process_cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    eprintln!(
        "probe commit/{size}: {events} events, wall {wall:.2} s = {:.0} events/s, cpu {cpu:.2} s = {:.0} events/cpu-s",
        events / wall,
        events / cpu.max(0.01)
    );
}

criterion_group!(commit, benches);
criterion_main!(commit);
