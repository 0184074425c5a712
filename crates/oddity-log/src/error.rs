//! Log errors.

/// What can go wrong with a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O error on a log file; `path` names it.
    #[error("log i/o on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A partition index outside `0..partitions`.
    #[error("partition {partition} does not exist (the log has {partitions})")]
    NoSuchPartition { partition: u32, partitions: u32 },
    /// A read position outside the retained range.
    #[error(
        "offset {offset} of partition {partition} is outside the retained range {start}..={end}"
    )]
    OffsetOutOfRange {
        partition: u32,
        offset: u64,
        start: u64,
        end: u64,
    },
    /// A record larger than the configured maximum.
    #[error("record of {len} bytes exceeds the log's limit of {limit} bytes")]
    RecordTooLarge { len: usize, limit: usize },
    /// The log directory was created with another partition count.
    #[error(
        "log at {path} has {found} partitions but {configured} are configured; partitions cannot change on existing data"
    )]
    PartitionMismatch {
        path: std::path::PathBuf,
        found: u32,
        configured: u32,
    },
    /// Corrupt data that recovery could not repair (a torn tail is repaired, not reported).
    #[error("corrupt log segment {path} at byte {position}: {reason}")]
    Corrupt {
        path: std::path::PathBuf,
        position: u64,
        reason: String,
    },
    /// An empty record: the embedded log's framing reserves zero-length frames (a zero-filled
    /// tail must read as torn, not as records).
    #[error("record {index} of the batch is empty; records must have at least one byte")]
    EmptyRecord { index: usize },
    /// A configuration value out of range; `reason` lists every problem.
    #[error("invalid log configuration: {reason}")]
    InvalidConfig { reason: String },
    /// Another process (or another open log in this one) holds the directory.
    #[error(
        "log directory is in use by another process (lock {path} is held); stop it or use another data directory"
    )]
    Locked { path: std::path::PathBuf },
    /// The log is shutting down or its writer has stopped.
    #[error("log is closed")]
    Closed,
}
