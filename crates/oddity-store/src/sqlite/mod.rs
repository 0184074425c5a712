//! The embedded SQLite store: one database file under the data directory, in WAL mode.
//!
//! # Connections
//! SQLite is synchronous, so every call runs on tokio's blocking pool (`spawn_blocking`). One
//! writer connection sits behind a `std::sync::Mutex` (SQLite allows one writer at a time
//! anyway); queries use a small pool of read-only connections, which WAL lets run while the
//! writer commits. Settings: `journal_mode=WAL`; `synchronous=FULL`, because the log deletes
//! records once their batch is committed, so a commit must survive power loss, and commits are
//! batched so the fsync per commit is cheap; `foreign_keys=ON` (no foreign key is declared:
//! events and anomalies are purged on different clocks); a 64 MiB writer cache; 16 KiB pages;
//! `wal_autocheckpoint` of 4,096 pages (64 MiB). Migrations are embedded `.sql` files
//! (`migrations/sqlite/`), applied in order and tracked by `PRAGMA user_version`.
//!
//! # Schema, and why it has no per-event index
//! The commit is the product's hot path (target ≥ 250 k events/s with 10k–64k-event batches on
//! a 2-core machine). Measured with `benches/commit.rs` (1 M events already stored, 1,000
//! entities, 5 types, ~200-byte attrs, 0.5 % anomalies, 4 partitions), in events per CPU-second
//! of the committing process for 10k / 64k batches (wall-clock figures on this shared, busy
//! machine were 1.5–2.5× lower and noisy):
//!
//! | layout | 10k | 64k |
//! |---|---|---|
//! | `id` as rowid + indexes `(ts)`, `(entity, ts)`, `(type, ts)` | 68 k | 82 k |
//! | same, batch inserted sorted by entity | 90 k | 95 k |
//! | same, 1 partition (ids appended, no interleaving) | 76 k | 79 k |
//! | `id` as rowid + `(entity, ts)` only | 125 k | 146 k |
//! | `id` as rowid, no secondary index | 299 k | 312 k |
//! | same, 1 partition | 430 k | 529 k |
//! | **`seq` rowid, no secondary index, postings (chosen)**, 4 KiB pages | 376 k | 416 k |
//! | same, 16 KiB pages (the default; range over the final runs, 1–7 M rows) | 310–470 k | 435–610 k |
//!
//! Every random-position index entry costs SQLite 2–4 µs; even `(ts)` is random within the
//! window of timestamp jitter. Three of them per event cap the commit near 80 k events/s, so:
//! - `events` has **no secondary index**. Its rowid is a store-assigned `seq` (max + 1), so rows
//!   are only ever appended. Using the `EventId` as rowid cost ~40 %: batches of different
//!   partitions interleave in id space (`offset << 10 | partition`) and split each other's pages.
//!   `id` is a plain column.
//! - Event queries go through **postings** (module `postings`): per batch and per key (all,
//!   entity, type) one row with the `(ts, id, seq)` of its events packed in a blob, under a
//!   covering index on `(kind, key, max_ts, min_ts, n)`. A 64k batch writes ~1,006 rows instead
//!   of 192,000 index entries. Totals add `n` without reading blobs; pages merge postings newest
//!   first and stop early. Trade-offs: a query filtering on entity *and* type checks the type of
//!   each of the entity's rows in the range; deep pages decode more; many tiny batches (idle
//!   periods) mean many small postings, which only matters when the load is low anyway.
//! - `event_batches` (one row per batch: seq range, newest arrival) drives retention.
//! - `event_counts_by_type` / `event_counts_by_entity` `(hour, key, n)`, `WITHOUT ROWID`, keyed by
//!   the **arrival** hour, make [`Store::stats`] independent of the number of events. By type they
//!   are upserted once per (hour, type) of a batch; by entity they are accumulated in memory and
//!   flushed every two seconds (and before `stats` reads), with a recount after a crash
//!   (`counts.rs`: per-batch upserts cost a random write per distinct entity per batch). `stats(since)` counts the whole hour holding `since`
//!   for events (up to one hour more than asked); anomalies are counted exactly.
//! - `anomalies` (well under 1 % of events) keeps ordinary indexes: one per filter, each ending
//!   in `ts`, plus `(detected_at, detector, severity, entity)`, covering for the statistics and
//!   used by retention, and `UNIQUE (event_id, detector)` so a replayed batch's
//!   `INSERT OR IGNORE` never duplicates. Anomaly statistics count rows of that index directly,
//!   which stays cheap while anomalies are rare (an hourly aggregate like the events' one is the
//!   next step if a deployment raises millions a day).
//! - `positions (partition, next_offset)`; `detector_state` keyed by `(detector, key)` with an
//!   index on `partition`.
//!
//! Other settings, measured the same way: a `wal_autocheckpoint` of 1,000 4-KiB pages (the
//! default, 4 MiB) halved wall-clock throughput at 10k batches against 64 MiB (more checkpoints,
//! each with an fsync); 64 MiB and 256 MiB were indistinguishable, so the smaller WAL wins;
//! checkpointing from a background thread (`wal_checkpoint(PASSIVE)` after commits, at most
//! every 100 ms or 1 s) instead of inside the commit that crosses the threshold was slower or no
//! better on two busy cores (10k batches: 137–244 k events/s wall against 229–263 k), so SQLite's
//! auto-checkpoint stays;
//! mmap on or off and an 8 MiB or 256 MiB writer cache made no measurable difference once no
//! index receives random inserts; 16 KiB pages cut the CPU per event at 64k batches (fewer WAL
//! frames and checksums); the filtered event and anomaly pages measured in the bench stay well
//! under a millisecond with them.
//!
//! # Retention
//! [`Store::purge`] runs in chunks of `purge_chunk_rows` rows, one short transaction each, with
//! the writer lock released in between so worker commits interleave. Events go by whole batches
//! (a batch is due when its newest event arrived before the cutoff) and by seq range, which
//! touches no secondary index; anomalies by `detected_at`; hourly counts of hours that ended
//! before the cutoff.
//!
//! # Non-finite numbers
//! NaN and ±infinity in `value` are stored as NULL (read back as `None`), non-finite `fields`
//! entries are dropped: JSON cannot carry them. `attrs` is stored and returned byte for byte.

mod codec;
mod counts;
mod models;
mod postings;
mod query;
mod schema;
mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use oddity_model::Event;

use crate::{
    AnomalyQuery, CommitBatch, DetectorModel, DetectorModelInfo, EntityRisk, EventQuery, Page,
    PurgeReport, SavedState, Stats, Store, StoreError, StoredAnomaly,
};

/// Tuning of a [`SqliteStore`]. The defaults suit one machine running the whole pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Maximum number of read connections (queries run concurrently on them while the writer
    /// commits, thanks to WAL). Opened lazily. At least 1.
    pub reader_pool_size: usize,
    /// How long a connection waits for a lock held by another connection or process before
    /// failing with "database is locked".
    pub busy_timeout: Duration,
    /// Page size of a new database file, in bytes (a power of two from 512 to 65536). Ignored for
    /// an existing file, which keeps the size it was created with.
    pub page_size: u32,
    /// Page cache of the writer connection, in KiB.
    pub writer_cache_kib: u32,
    /// Page cache of each read connection, in KiB (readers also share the OS cache via mmap).
    pub reader_cache_kib: u32,
    /// Bytes of the database file memory-mapped per connection (0 disables mmap).
    pub mmap_size_bytes: u64,
    /// WAL size, in pages, that triggers an automatic checkpoint after a commit (the default is
    /// 64 MiB at the default page size; SQLite's own 1,000 pages halves commit throughput).
    pub wal_autocheckpoint_pages: u32,
    /// Rows deleted per retention transaction: the writer lock is released between chunks so
    /// that worker commits interleave with a long purge.
    pub purge_chunk_rows: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            reader_pool_size: 4,
            busy_timeout: Duration::from_secs(5),
            page_size: 16_384,
            writer_cache_kib: 64 * 1024,
            reader_cache_kib: 16 * 1024,
            mmap_size_bytes: 1 << 30,
            wal_autocheckpoint_pages: 4_096,
            purge_chunk_rows: 10_000,
        }
    }
}

/// The SQLite [`Store`]: one writer connection behind a mutex, a small pool of read connections.
///
/// Cheap to clone (shared state). Every call runs on tokio's blocking pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Connection>,
    /// Per-entity counts not yet flushed (see `counts`). Locked only while `writer` is held.
    pending: Mutex<counts::PendingCounts>,
    /// Idle read connections; at most `reader_pool_size` exist, bounded by `reader_permits`.
    readers: Mutex<Vec<Connection>>,
    reader_permits: Arc<Semaphore>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directory if needed) the database at `path`, applies
    /// pending migrations and prepares the writer connection.
    ///
    /// Blocking: call it at startup, or from `spawn_blocking`.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        if options.reader_pool_size == 0 {
            return Err(StoreError::Backend(
                "sqlite reader_pool_size must be at least 1".into(),
            ));
        }
        if !(512..=65_536).contains(&options.page_size) || !options.page_size.is_power_of_two() {
            let size = options.page_size;
            return Err(StoreError::Backend(format!(
                "sqlite page_size {size} is not a power of two in 512..=65536"
            )));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let mut writer = Connection::open(path)?;
        schema::configure_writer(&writer, &options)?;
        schema::migrate(&mut writer)?;
        let permits = options.reader_pool_size;
        let pending = counts::PendingCounts::recover(&writer)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                options,
                pending: Mutex::new(pending),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                reader_permits: Arc::new(Semaphore::new(permits)),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection, on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SqliteOptions) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            // A panic while the lock was held left no open transaction behind (rusqlite rolls
            // back on drop), so the connection is still sound: recover it from the poison.
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn, &inner.options)
        })
        .await
    }

    /// Runs `f` on a read connection from the pool, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.reader_permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("sqlite reader pool closed".into()))?;
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let _permit = permit;
            let idle = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => open_reader(&inner.path, &inner.options)?,
            };
            let result = f(&mut conn);
            // A reader left inside a transaction would pin an old snapshot: drop it instead.
            if conn.is_autocommit() {
                inner
                    .readers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
            }
            result
        })
        .await
    }
}

fn open_reader(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    schema::configure_reader(&conn, options)?;
    Ok(conn)
}

async fn run_blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task failed: {e}")))?
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, batch: CommitBatch) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let mut pending = inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            write::commit(&mut conn, &batch, &mut pending)
        })
        .await
    }

    async fn positions(&self) -> Result<BTreeMap<u32, u64>, StoreError> {
        self.read(query::positions).await
    }

    async fn load_state(&self, partition: u32) -> Result<SavedState, StoreError> {
        self.read(move |conn| query::load_state(conn, partition))
            .await
    }

    async fn events(&self, q: &EventQuery) -> Result<Page<Event>, StoreError> {
        let q = q.clone();
        self.read(move |conn| query::events(conn, &q)).await
    }

    async fn anomalies(&self, q: &AnomalyQuery) -> Result<Page<StoredAnomaly>, StoreError> {
        let q = q.clone();
        self.read(move |conn| query::anomalies(conn, &q)).await
    }

    async fn stats(&self, since_ms: i64) -> Result<Stats, StoreError> {
        // Per-entity counts wait in memory for a few seconds: flush them so that the statistics
        // include everything committed.
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let mut pending = inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.flush(&mut conn)
        })
        .await?;
        self.read(move |conn| query::stats(conn, since_ms)).await
    }

    async fn entity_risk(
        &self,
        entity: &str,
        recent_since_ms: i64,
    ) -> Result<EntityRisk, StoreError> {
        let entity = entity.to_owned();
        self.read(move |conn| query::entity_risk(conn, &entity, recent_since_ms))
            .await
    }

    async fn purge(&self, before_ms: i64) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport::default();
        // One short transaction per chunk, each on its own blocking task: the writer lock is
        // released (and worker commits get their turn) between chunks.
        loop {
            let step = self
                .write(move |conn, opts| write::purge_chunk(conn, before_ms, opts.purge_chunk_rows))
                .await?;
            report.events += step.events;
            report.anomalies += step.anomalies;
            if step.done {
                break;
            }
        }
        self.write(move |conn, _| write::purge_aggregates(conn, before_ms))
            .await?;
        Ok(report)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }

    async fn detector_models(&self, detector: &str) -> Result<Vec<DetectorModelInfo>, StoreError> {
        let detector = detector.to_owned();
        self.read(move |conn| query::detector_models(conn, &detector))
            .await
    }

    async fn detector_model(
        &self,
        detector: &str,
        key: &str,
        version: Option<u32>,
    ) -> Result<Option<DetectorModel>, StoreError> {
        let (detector, key) = (detector.to_owned(), key.to_owned());
        self.read(move |conn| query::detector_model(conn, &detector, &key, version))
            .await
    }
}

#[cfg(test)]
mod tests;
