//! Appending normalised events to the log: the acknowledgement path shared by every ingest route.

use tokio::task::JoinSet;

use oddity_log::{LogError, partition_for};
use oddity_model::{Event, codec};

use crate::{ApiError, AppState};

/// Refuses new events while more than `ingest.max_lag_events` wait to be processed.
pub(crate) fn check_backpressure(state: &AppState) -> Result<(), ApiError> {
    let lag = state.lag();
    if lag > state.limits.max_lag_events {
        return Err(ApiError::Busy(format!(
            "{lag} events are waiting to be processed, above ingest.max_lag_events ({}); retry later",
            state.limits.max_lag_events
        )));
    }
    Ok(())
}

/// Appends `events` to their partitions and resolves once all are durable. Partitions are
/// appended concurrently, so one request waits for one group commit, not one per partition.
/// If one partition's append fails after another's succeeded, the request fails as a whole and a
/// client retry stores the succeeded part again: the API edge is at-least-once; from the log on,
/// processing is exactly-once.
pub(crate) async fn append(state: &AppState, events: &[Event]) -> Result<(), ApiError> {
    let partitions = state.log.partitions();
    let mut by_partition: Vec<Vec<Vec<u8>>> = vec![Vec::new(); partitions as usize];
    for event in events {
        by_partition[partition_for(&event.entity, partitions) as usize]
            .push(codec::encode_to_vec(event));
    }
    let mut appends = JoinSet::new();
    for (p, records) in by_partition.into_iter().enumerate() {
        if records.is_empty() {
            continue;
        }
        let log = state.log.clone();
        appends.spawn(async move { log.append(p as u32, records).await });
    }
    let mut failure = None;
    while let Some(joined) = appends.join_next().await {
        match joined {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => return Err(ApiError::internal("log append task failed", e)),
        }
    }
    match failure {
        None => Ok(()),
        Some(LogError::Closed) => Err(ApiError::Unavailable(
            "the server is shutting down; retry on another instance or later".into(),
        )),
        Some(LogError::RecordTooLarge { len, limit }) => Err(ApiError::TooLarge(format!(
            "an event encodes to {len} bytes, above the log's record limit of {limit}"
        ))),
        Some(e) => Err(ApiError::internal("log append failed", e)),
    }
}
