//! Hourly event counts per entity, accumulated in memory and flushed every few seconds.
//!
//! `event_counts_by_entity` serves the "top entities" of the statistics. Upserting it inside
//! every commit costs one random B-tree write per distinct entity per batch, which with many
//! entities (100,000 users) is nearly one per event and cut commit throughput by a quarter
//! (measured with `benches/commit.rs`, `ODDITY_BENCH_ENTITIES=100000`: 94 k → 127 k events/s
//! without it). So a commit adds its batch's counts to [`PendingCounts`] and the table is
//! upserted at most every [`FLUSH_EVERY`] (within a commit's transaction), merging the same
//! entity's counts across batches.
//!
//! Exactness is kept: the flush records in `store_meta` the last event `seq` it includes; on open
//! the store recounts the events after it (a few seconds of traffic at most), and `stats` flushes
//! before reading.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, params};

use super::write::hour_of;
use crate::StoreError;

/// Longest time counts stay in memory while commits go on.
pub(super) const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Most distinct (hour, entity) pairs held before a flush regardless of time.
const MAX_PENDING: usize = 200_000;
const WATERMARK_KEY: &str = "entity_counts_through_seq";

/// Counts not yet in `event_counts_by_entity`.
#[derive(Debug)]
pub(super) struct PendingCounts {
    by_entity: HashMap<(i64, String), i64>,
    /// Last event seq included in `by_entity` (or already flushed).
    through_seq: i64,
    last_flush: Instant,
}

impl PendingCounts {
    /// Recounts the events after the flushed watermark (after a crash, what memory held).
    pub(super) fn recover(conn: &Connection) -> Result<Self, StoreError> {
        let watermark: i64 = conn
            .prepare_cached("SELECT value FROM store_meta WHERE key = ?1")?
            .query_row([WATERMARK_KEY], |r| r.get(0))?;
        let mut pending = PendingCounts {
            by_entity: HashMap::new(),
            through_seq: watermark,
            last_flush: Instant::now(),
        };
        let mut stmt =
            conn.prepare("SELECT seq, entity, ingested_at FROM events WHERE seq > ?1")?;
        let mut rows = stmt.query([watermark])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let entity: String = row.get(1)?;
            let ingested_at: i64 = row.get(2)?;
            *pending
                .by_entity
                .entry((hour_of(ingested_at), entity))
                .or_default() += 1;
            pending.through_seq = pending.through_seq.max(seq);
        }
        Ok(pending)
    }

    /// Whether the next commit should flush.
    pub(super) fn due(&self) -> bool {
        !self.by_entity.is_empty()
            && (self.last_flush.elapsed() >= FLUSH_EVERY || self.by_entity.len() >= MAX_PENDING)
    }

    /// Adds a committed batch's counts (call only once its transaction committed).
    pub(super) fn add(&mut self, batch: BatchCounts) {
        for (key, n) in batch.by_entity {
            *self.by_entity.entry(key).or_default() += n;
        }
        self.through_seq = self.through_seq.max(batch.last_seq);
    }

    /// Writes the pending counts and `extra` (a batch being committed in `tx`) and the watermark;
    /// call [`PendingCounts::flushed`] once `tx` committed.
    pub(super) fn write(
        &self,
        tx: &Transaction<'_>,
        extra: Option<&BatchCounts>,
    ) -> Result<(), StoreError> {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO event_counts_by_entity (hour, entity, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (hour, entity) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((hour, entity), n) in self
            .by_entity
            .iter()
            .chain(extra.iter().flat_map(|b| b.by_entity.iter()))
        {
            upsert.execute(params![hour, entity, n])?;
        }
        let through = self.through_seq.max(extra.map_or(i64::MIN, |b| b.last_seq));
        tx.prepare_cached("UPDATE store_meta SET value = ?2 WHERE key = ?1")?
            .execute(params![WATERMARK_KEY, through])?;
        Ok(())
    }

    /// Forgets what [`PendingCounts::write`] wrote, once its transaction committed.
    pub(super) fn flushed(&mut self, extra: Option<BatchCounts>) {
        self.by_entity.clear();
        if let Some(b) = extra {
            self.through_seq = self.through_seq.max(b.last_seq);
        }
        self.last_flush = Instant::now();
    }

    /// Flushes in a transaction of its own (before statistics are read).
    pub(super) fn flush(&mut self, conn: &mut Connection) -> Result<(), StoreError> {
        if self.by_entity.is_empty() {
            return Ok(());
        }
        let tx = conn.transaction()?;
        self.write(&tx, None)?;
        tx.commit()?;
        self.flushed(None);
        Ok(())
    }
}

/// One batch's counts per (hour, entity), and its last event seq.
#[derive(Debug, Default)]
pub(super) struct BatchCounts {
    pub(super) by_entity: HashMap<(i64, String), i64>,
    pub(super) last_seq: i64,
}
