//! Configuration of the embedded log.

use std::path::PathBuf;
use std::time::Duration;

use crate::LogError;

/// Default size at which a segment is sealed and a new one started: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default largest accepted record payload: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Default number of append requests that may wait for each partition's writer.
pub const DEFAULT_QUEUE_DEPTH: usize = 512;

/// When the writer makes appended data durable with `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` before an append resolves. One sync covers every request the writer drained
    /// into the same batch (group commit), so its cost is shared by concurrent appenders.
    Always,
    /// An append resolves after `write(2)` (the data survives a crash of the process but not of
    /// the machine); the writer calls `fdatasync` at most this often while there is unsynced data.
    /// Must be greater than zero.
    Interval(Duration),
    /// Never `fdatasync` while running (the kernel writes back when it likes); the writer still
    /// syncs once on clean shutdown.
    Never,
}

/// Configuration of an [`EmbeddedLog`](super::EmbeddedLog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedLogConfig {
    /// Directory holding the log: `meta` plus one `p{N}` directory of segment files per partition.
    /// Created if missing.
    pub dir: PathBuf,
    /// Number of partitions. Fixed once the directory holds data: reopening with another count
    /// fails with [`LogError::PartitionMismatch`].
    pub partitions: u32,
    /// A segment is sealed and a new one started before a record would take it past this size
    /// (a single record larger than this gets a segment of its own). Retention deletes whole
    /// segments, so this is also the granularity at which disk space is given back.
    pub segment_bytes: u64,
    /// Durability of an acknowledged append; see [`FsyncPolicy`].
    pub fsync: FsyncPolicy,
    /// Largest accepted record payload in bytes; larger records fail with
    /// [`LogError::RecordTooLarge`]. At most `u32::MAX`.
    pub max_record_bytes: usize,
    /// Capacity of each partition's bounded queue of append requests. When it is full, `append`
    /// waits (backpressure) instead of buffering without limit. At least 1.
    pub queue_depth: usize,
}

impl EmbeddedLogConfig {
    /// A configuration with the defaults: 64 MiB segments, [`FsyncPolicy::Always`], 1 MiB
    /// records, a queue of 512 requests per partition.
    pub fn new(dir: impl Into<PathBuf>, partitions: u32) -> Self {
        Self {
            dir: dir.into(),
            partitions,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            fsync: FsyncPolicy::Always,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            queue_depth: DEFAULT_QUEUE_DEPTH,
        }
    }

    /// Checks the values, reporting every problem at once.
    pub fn validate(&self) -> Result<(), LogError> {
        let mut problems = Vec::new();
        if self.partitions == 0 {
            problems.push("partitions must be at least 1".to_string());
        }
        if self.segment_bytes == 0 {
            problems.push("segment_bytes must be greater than 0".to_string());
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > u32::MAX as usize {
            problems.push(format!(
                "max_record_bytes ({}) must be between 1 and {}",
                self.max_record_bytes,
                u32::MAX
            ));
        }
        if self.queue_depth == 0 {
            problems.push("queue_depth must be at least 1".to_string());
        }
        if self.fsync == FsyncPolicy::Interval(Duration::ZERO) {
            problems.push("the fsync interval must be greater than 0".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LogError::InvalidConfig {
                reason: problems.join("; "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = EmbeddedLogConfig::new("/tmp/x", 4);
        assert_eq!(config.segment_bytes, 64 * 1024 * 1024);
        assert_eq!(config.fsync, FsyncPolicy::Always);
        config.validate().unwrap();
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut config = EmbeddedLogConfig::new("/tmp/x", 0);
        config.queue_depth = 0;
        config.fsync = FsyncPolicy::Interval(Duration::ZERO);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("partitions must be at least 1"), "{err}");
        assert!(err.contains("queue_depth"), "{err}");
        assert!(err.contains("interval"), "{err}");
    }
}
