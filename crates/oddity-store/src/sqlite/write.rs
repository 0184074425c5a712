//! The write side: batch commit (the product's hot path) and chunked retention.
//!
//! Both run on the single writer connection. `commit` is one `BEGIN IMMEDIATE` transaction that
//! first checks the partition's position (the fence), so a rejected batch writes nothing. Every
//! statement is a cached prepared statement with bound parameters; per-event work is one
//! `INSERT` (appended: `seq` is the table's rowid and grows) plus a few in-memory pushes; the
//! batch's postings and hourly aggregates are then written once per key of the batch.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use oddity_model::{Anomaly, Event};

use super::codec::{event_json, fields_column, to_sql_int, value_column};
use super::counts::{BatchCounts, PendingCounts};
use super::postings;
use crate::{CommitBatch, DetectorModel, MODEL_VERSIONS_KEPT, StateChange, StoreError};

/// One hour in milliseconds: the granularity of the arrival-count aggregates.
pub(super) const HOUR_MS: i64 = 3_600_000;

/// Start of the hour holding `ms`.
pub(super) fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Writes a [`CommitBatch`] in one transaction (see the module doc).
pub(super) fn commit(
    conn: &mut Connection,
    batch: &CommitBatch,
    pending: &mut PendingCounts,
) -> Result<(), StoreError> {
    if batch.to_offset < batch.from_offset {
        return Err(StoreError::InvalidBatch(format!(
            "to_offset {} is before from_offset {}",
            batch.to_offset, batch.from_offset
        )));
    }
    let to_offset = to_sql_int(batch.to_offset, "to_offset")?;
    if let Some(state_offset) = batch.state_offset
        && state_offset > batch.to_offset
    {
        return Err(StoreError::InvalidBatch(format!(
            "state_offset {state_offset} is after to_offset {}",
            batch.to_offset
        )));
    }
    let state_offset = batch
        .state_offset
        .map(|o| to_sql_int(o, "state_offset"))
        .transpose()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<i64> = tx
        .prepare_cached("SELECT next_offset FROM positions WHERE partition = ?1")?
        .query_row([batch.partition], |r| r.get(0))
        .optional()?;
    let stored = u64::try_from(stored.unwrap_or(0)).map_err(|_| {
        StoreError::Corrupt(format!(
            "negative position of partition {}",
            batch.partition
        ))
    })?;
    if stored != batch.from_offset {
        // Dropping `tx` rolls back: nothing was written.
        return Err(StoreError::PositionConflict {
            partition: batch.partition,
            stored,
            batch_from: batch.from_offset,
        });
    }
    let counts = insert_events(&tx, &batch.events)?;
    let flush = pending.due();
    if flush {
        pending.write(&tx, Some(&counts))?;
    }
    insert_anomalies(&tx, &batch.anomalies)?;
    apply_state(&tx, batch.partition, &batch.state)?;
    insert_models(&tx, &batch.models)?;
    tx.prepare_cached(
        "INSERT INTO positions (partition, next_offset, state_offset) VALUES (?1, ?2, coalesce(?3, 0))
         ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset,
             state_offset = coalesce(?3, positions.state_offset)",
    )?
    .execute(params![batch.partition, to_offset, state_offset])?;
    tx.commit()?;
    if flush {
        pending.flushed(Some(counts));
    } else {
        pending.add(counts);
    }
    Ok(())
}

/// Appends the events (seqs after the current maximum), then writes the batch's ledger row, its
/// postings and its hourly counts by type; returns its hourly counts by entity, which are written
/// later (see `counts`).
fn insert_events(tx: &Transaction<'_>, events: &[Event]) -> Result<BatchCounts, StoreError> {
    if events.is_empty() {
        return Ok(BatchCounts::default());
    }
    let base_seq: i64 = tx
        .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM events")?
        .query_row([], |r| r.get(0))?;
    let mut by_type: HashMap<(i64, &str), i64> = HashMap::new();
    let mut by_entity: HashMap<(i64, &str), i64> = HashMap::new();
    let mut index = postings::Builder::with_capacity(events.len());
    let mut max_ingested = i64::MIN;
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (seq, id, entity, type, ts, value, ingested_at, fields, attrs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut seq = base_seq;
    for e in events {
        let id = to_sql_int(e.id.0, "event id")?;
        let fields = fields_column(&e.fields)?;
        insert.execute(params![
            seq,
            id,
            e.entity,
            e.event_type,
            e.ts,
            value_column(e.value),
            e.ingested_at,
            fields,
            e.attrs
        ])?;
        index.add(
            &e.entity,
            &e.event_type,
            postings::Entry { ts: e.ts, id, seq },
        );
        let hour = hour_of(e.ingested_at);
        *by_type.entry((hour, e.event_type.as_str())).or_default() += 1;
        *by_entity.entry((hour, e.entity.as_str())).or_default() += 1;
        max_ingested = max_ingested.max(e.ingested_at);
        seq += 1;
    }
    tx.prepare_cached(
        "INSERT INTO event_batches (first_seq, last_seq, max_ingested_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![base_seq, seq - 1, max_ingested])?;
    index.write(tx, tx.last_insert_rowid(), base_seq)?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO event_counts_by_type (hour, type, n) VALUES (?1, ?2, ?3)
         ON CONFLICT (hour, type) DO UPDATE SET n = n + excluded.n",
    )?;
    for ((hour, key), n) in by_type {
        upsert.execute(params![hour, key, n])?;
    }
    Ok(BatchCounts {
        by_entity: by_entity
            .into_iter()
            .map(|((hour, entity), n)| ((hour, entity.to_owned()), n))
            .collect(),
        last_seq: seq - 1,
    })
}

/// Inserts anomalies; an (event, detector) pair already stored is ignored, which makes a replay
/// idempotent.
fn insert_anomalies(tx: &Transaction<'_>, anomalies: &[Anomaly]) -> Result<(), StoreError> {
    if anomalies.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO anomalies (event_id, detector, kind, entity, type, ts, severity, score,
                                          description, explanation, event, detected_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for a in anomalies {
        let explanation = serde_json::to_string(&a.explanation).map_err(|e| {
            StoreError::Encode(format!(
                "explanation of anomaly {}/{}: {e}",
                a.event_id.0, a.detector
            ))
        })?;
        insert.execute(params![
            to_sql_int(a.event_id.0, "anomaly event id")?,
            a.detector,
            a.kind,
            a.entity,
            a.event_type,
            a.ts,
            a.severity.as_str(),
            (!a.score.is_nan()).then_some(a.score),
            a.description,
            explanation,
            event_json(&a.event)?,
            a.detected_at
        ])?;
    }
    Ok(())
}

/// Saves detector model versions (a version already stored is left as it is) and prunes the
/// versions [`MODEL_VERSIONS_KEPT`] or more below each new one.
fn insert_models(tx: &Transaction<'_>, models: &[DetectorModel]) -> Result<(), StoreError> {
    for DetectorModel { info: m, model } in models {
        let json = serde_json::to_string(model).map_err(|e| {
            StoreError::Encode(format!(
                "model {}/{} v{}: {e}",
                m.detector, m.key, m.version
            ))
        })?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO detector_models
                 (detector, key, version, created_at, trained_at, rows, model)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            m.detector,
            m.key,
            m.version,
            m.created_at,
            m.trained_at,
            to_sql_int(m.rows, "rows")?,
            json
        ])?;
        tx.prepare_cached(
            "DELETE FROM detector_models WHERE detector = ?1 AND key = ?2 AND version <= ?3",
        )?
        .execute(params![
            m.detector,
            m.key,
            i64::from(m.version) - i64::from(MODEL_VERSIONS_KEPT)
        ])?;
    }
    Ok(())
}

/// Upserts or deletes detector state, in batch order (the last change to a key wins).
fn apply_state(
    tx: &Transaction<'_>,
    partition: u32,
    changes: &[StateChange],
) -> Result<(), StoreError> {
    for change in changes {
        match &change.state {
            Some(state) => {
                let json = serde_json::to_string(state).map_err(|e| {
                    StoreError::Encode(format!("state of {}/{}: {e}", change.detector, change.key))
                })?;
                tx.prepare_cached(
                    "INSERT INTO detector_state (detector, key, partition, state) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (detector, key) DO UPDATE SET partition = excluded.partition, state = excluded.state",
                )?
                .execute(params![change.detector, change.key, partition, json])?;
            }
            None => {
                tx.prepare_cached("DELETE FROM detector_state WHERE detector = ?1 AND key = ?2")?
                    .execute(params![change.detector, change.key])?;
            }
        }
    }
    Ok(())
}

/// What one retention transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PurgeStep {
    pub(super) events: u64,
    pub(super) anomalies: u64,
    /// Nothing older than the cutoff is left.
    pub(super) done: bool,
}

/// Deletes at most about `chunk` rows older than `before_ms`, in one short transaction.
///
/// Events go by whole batches: a batch is due once its newest event arrived before the cutoff
/// (so an event can outlive the cutoff by the span of its batch, a few seconds). The first chunk
/// of a batch deletes its postings, which hides the batch from queries at once; then its seq range
/// is deleted front to back, a rowid range that touches no secondary index.
pub(super) fn purge_chunk(
    conn: &mut Connection,
    before_ms: i64,
    chunk: usize,
) -> Result<PurgeStep, StoreError> {
    let chunk = i64::try_from(chunk.max(1)).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut budget = chunk;
    let mut step = PurgeStep::default();
    let mut events_done = false;
    while budget > 0 {
        let next: Option<(i64, i64, i64)> = tx
            .prepare_cached(
                "SELECT batch, first_seq, last_seq FROM event_batches
                 WHERE max_ingested_at < ?1 ORDER BY max_ingested_at LIMIT 1",
            )?
            .query_row([before_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((batch, first_seq, last_seq)) = next else {
            events_done = true;
            break;
        };
        tx.prepare_cached("DELETE FROM event_postings WHERE batch = ?1")?
            .execute([batch])?;
        let upper = last_seq.min(first_seq.saturating_add(budget - 1));
        let deleted = tx
            .prepare_cached("DELETE FROM events WHERE seq BETWEEN ?1 AND ?2")?
            .execute(params![first_seq, upper])?;
        step.events += deleted as u64;
        budget -= (upper - first_seq + 1).max(1);
        if upper < last_seq {
            tx.prepare_cached("UPDATE event_batches SET first_seq = ?2 WHERE batch = ?1")?
                .execute(params![batch, upper + 1])?;
        } else {
            tx.prepare_cached("DELETE FROM event_batches WHERE batch = ?1")?
                .execute([batch])?;
        }
    }
    let mut anomalies_done = false;
    if budget > 0 {
        let deleted = tx
            .prepare_cached(
                "DELETE FROM anomalies WHERE id IN
                 (SELECT id FROM anomalies WHERE detected_at < ?1 ORDER BY detected_at LIMIT ?2)",
            )?
            .execute(params![before_ms, budget])?;
        step.anomalies = deleted as u64;
        anomalies_done = (deleted as i64) < budget;
    }
    tx.commit()?;
    step.done = events_done && anomalies_done;
    Ok(step)
}

/// Deletes the hourly counts of hours that end at or before `before_ms` (a partially purged hour
/// keeps its row: stats round to whole hours anyway).
pub(super) fn purge_aggregates(conn: &mut Connection, before_ms: i64) -> Result<(), StoreError> {
    let last_hour = before_ms.saturating_sub(HOUR_MS);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM event_counts_by_type WHERE hour <= ?1",
        [last_hour],
    )?;
    tx.execute(
        "DELETE FROM event_counts_by_entity WHERE hour <= ?1",
        [last_hour],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_round_down_also_before_the_epoch() {
        assert_eq!(hour_of(0), 0);
        assert_eq!(hour_of(HOUR_MS - 1), 0);
        assert_eq!(hour_of(HOUR_MS), HOUR_MS);
        assert_eq!(hour_of(-1), -HOUR_MS);
    }
}
