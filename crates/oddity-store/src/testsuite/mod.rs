//! Conformance suite: the behaviour every [`Store`] backend must have.
//!
//! Each case is a generic `async fn case<S: Store>(store: &S)` that panics on a violation, and
//! [`store_test_suite!`](crate::store_test_suite) expands to one `#[tokio::test]` per case, so a
//! backend runs the whole suite with one line (quickwit's `metastore_test_suite!` pattern):
//!
//! ```ignore
//! oddity_store::store_test_suite!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default()).unwrap();
//!     (dir, store) // (guard kept alive for the test, store)
//! });
//! ```
//!
//! Every case gets a fresh, empty store. Times are fixed (never the wall clock), hour-aligned
//! where a backend may round (event statistics are allowed to count the whole hour holding
//! `since`), so the cases are deterministic.
//!
//! Contract points a backend must honour, beyond the trait docs:
//! - `attrs` is stored as raw JSON text and reads back byte for byte;
//! - a non-finite `value` (NaN, ±infinity) reads back as `None`, non-finite `fields` entries are
//!   dropped (JSON has no such numbers); huge finite values round-trip exactly;
//! - a rejected commit (position conflict, invalid batch) writes nothing at all.

// Test code compiled for other crates' tests (feature `testsuite`): a failed expectation panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod models;
mod query;
mod write;

use std::collections::BTreeMap;

use oddity_model::{Anomaly, Event, EventId, Expected, Explanation, Severity};

use crate::{CommitBatch, Store};

pub use query::*;
pub use write::*;

/// A fixed, hour-aligned base time (2025-06-15T16:00:00Z) for every case.
pub const T0: i64 = 486_112 * 3_600_000;

/// One minute in milliseconds.
pub const MINUTE: i64 = 60_000;

/// One hour in milliseconds.
pub const HOUR: i64 = 3_600_000;

/// An event of `partition` at `offset`, ingested at `T0 + offset` ms, with a small attrs object.
pub fn event(partition: u32, offset: u64, entity: &str, event_type: &str, ts: i64) -> Event {
    let mut e = Event::new(entity, event_type, ts);
    e.id = EventId::new(partition, offset);
    e.ingested_at = T0 + offset as i64;
    e.attrs = Some(format!(r#"{{"offset":{offset},"entity":"{entity}"}}"#));
    e
}

/// An anomaly raised by `event`, with every field set.
pub fn anomaly(event: &Event, detector: &str, severity: Severity, detected_at: i64) -> Anomaly {
    let mut details = serde_json::Map::new();
    details.insert("known".into(), serde_json::json!(["EU", "US"]));
    Anomaly {
        event_id: event.id,
        entity: event.entity.clone(),
        event_type: event.event_type.clone(),
        ts: event.ts,
        detector: detector.to_owned(),
        kind: "threshold".to_owned(),
        severity,
        score: 0.75,
        description: format!("{} tripped {detector}", event.entity),
        explanation: Explanation {
            observed: Some(serde_json::json!(1500.5)),
            expected: Some(Expected {
                low: None,
                high: Some(1000.0),
            }),
            window: Some("60s".into()),
            feature: Some("amount".into()),
            details,
        },
        event: event.clone(),
        detected_at,
    }
}

/// A batch of `partition` starting at `from`, ending after its events (or at `from` if none).
pub fn batch(
    partition: u32,
    from: u64,
    events: Vec<Event>,
    anomalies: Vec<Anomaly>,
) -> CommitBatch {
    let to = from + events.len() as u64;
    CommitBatch {
        partition,
        from_offset: from,
        to_offset: to,
        events,
        anomalies,
        state: Vec::new(),
        state_offset: None,
        models: Vec::new(),
    }
}

/// Events of `partition` at consecutive offsets from `from`, one per `(entity, type, ts)`.
pub fn events_at(partition: u32, from: u64, rows: &[(&str, &str, i64)]) -> Vec<Event> {
    rows.iter()
        .enumerate()
        .map(|(i, (entity, event_type, ts))| {
            event(partition, from + i as u64, entity, event_type, *ts)
        })
        .collect()
}

/// Commits, panicking with the error on failure.
pub async fn must_commit<S: Store>(store: &S, batch: CommitBatch) {
    let (p, from) = (batch.partition, batch.from_offset);
    if let Err(e) = store.commit(batch).await {
        panic!("commit of partition {p} from {from} failed: {e}");
    }
}

/// Sorts like the store must: `ts` descending, then id descending.
pub fn newest_first(events: &mut [Event]) {
    events.sort_by(|a, b| b.ts.cmp(&a.ts).then(b.id.cmp(&a.id)));
}

/// Counts per key, for expected statistics.
pub fn tally<'a>(keys: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for k in keys {
        *out.entry(k.to_owned()).or_insert(0) += 1;
    }
    out
}

/// Expands to one `#[tokio::test]` per conformance case, inside a `store_conformance` module.
///
/// The argument is an expression evaluating to a future of `(guard, store)`: `guard` is kept
/// alive until the case ends (a temp dir, a container handle, or `()`), `store` implements
/// [`Store`](crate::Store) and must be empty. The caller needs `tokio` (with `macros` and `rt`).
#[macro_export]
macro_rules! store_test_suite {
    ($factory:expr) => {
        $crate::store_test_suite!(@cases $factory;
            commit_then_query_round_trips,
            position_fencing_writes_nothing_on_conflict,
            replay_is_rejected_and_anomalies_never_duplicate,
            invalid_batch_writes_nothing,
            empty_batch_only_advances_position,
            positions_of_every_partition,
            state_upsert_delete_and_load_per_partition,
            checkpoint_offset_is_kept_until_the_next_checkpoint,
            unicode_and_long_strings_round_trip,
            non_finite_and_huge_values,
            event_filters_and_combinations,
            anomaly_filters_and_combinations,
            pagination_pages_and_totals,
            ordering_breaks_ts_ties_by_id,
            ordering_across_batches_and_late_arrivals,
            stats_counts_and_top_ten,
            entity_risk_and_score,
            purge_deletes_by_arrival_time,
            ping_answers,
            detector_models_versions_replay_and_pruning,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        mod store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let (_guard, store) = $factory.await;
                    $crate::testsuite::$case(&store).await;
                }
            )+
        }
    };
}
