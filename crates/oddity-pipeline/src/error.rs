//! Pipeline errors.

/// What stops or restarts a worker.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Log(#[from] oddity_log::LogError),
    #[error(transparent)]
    Store(#[from] oddity_store::StoreError),
    /// A record in the log is not a valid event.
    #[error("partition {partition} offset {offset}: {source}")]
    Decode {
        partition: u32,
        offset: u64,
        #[source]
        source: oddity_model::CodecError,
    },
    /// The store has results for records the log no longer (or never) had: the log directory
    /// was replaced or truncated behind the store's back.
    #[error(
        "partition {partition}: the store has results up to offset {stored} but the log ends at {log_end}"
    )]
    LogBehindStore {
        partition: u32,
        log_end: u64,
        stored: u64,
    },
    /// A stored detector state could not be restored.
    #[error("detector {detector} key {key}: {reason}")]
    State {
        detector: String,
        key: String,
        reason: String,
    },
}
