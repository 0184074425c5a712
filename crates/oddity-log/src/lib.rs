//! The log: a durable, partitioned, append-only sequence of records between ingest and workers.
//!
//! Ingest appends each event to the partition chosen by a hash of its entity and acknowledges the
//! client only once [`Log::append`] has resolved (the record is durable under the configured
//! fsync policy). One worker per partition reads it with a [`LogReader`] from the position the
//! store recorded, and tells the log with [`Log::commit`] how far results are durable, which lets
//! retention drop what is no longer needed.
//!
//! Records are opaque bytes (`oddity_model::codec` encodes events); offsets are dense per
//! partition, starting at 0.
//!
//! # Backends
//! - [`embedded`]: segment files under the data directory with group commit (the default).
//! - Kafka and RabbitMQ come later behind the same trait.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub mod embedded;
mod error;

pub use error::LogError;

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset in its partition.
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// A durable partitioned log.
#[async_trait]
pub trait Log: Send + Sync + fmt::Debug + 'static {
    /// Number of partitions, fixed for the life of the log.
    fn partitions(&self) -> u32;

    /// Appends `records`, in order, to `partition`. Resolves once they are durable under the fsync
    /// policy, with the offset given to the first record. An empty batch resolves at once with
    /// the current end offset.
    async fn append(&self, partition: u32, records: Vec<Vec<u8>>) -> Result<u64, LogError>;

    /// Opens a reader of `partition` positioned at `from` (which may equal the end offset; an
    /// offset below the retained start or above the end is an error).
    async fn reader(&self, partition: u32, from: u64) -> Result<Box<dyn LogReader>, LogError>;

    /// The next offset to be written to `partition`: every offset below it is readable.
    fn end_offset(&self, partition: u32) -> Result<u64, LogError>;

    /// Records that every offset below `offset` in `partition` has been processed and its results
    /// are durable downstream, so retention may drop it.
    fn commit(&self, partition: u32, offset: u64) -> Result<(), LogError>;

    /// The offset last passed to [`Log::commit`] for `partition` (0 if none since open).
    fn committed_offset(&self, partition: u32) -> Result<u64, LogError>;
}

/// Reads one partition in order.
#[async_trait]
pub trait LogReader: Send + fmt::Debug {
    /// Clears `out` and reads up to `max` records into it, waiting up to `wait` for the first one
    /// when none is available. Returns how many were read (0 when `wait` passed with nothing new).
    async fn read(
        &mut self,
        out: &mut Vec<Record>,
        max: usize,
        wait: Duration,
    ) -> Result<usize, LogError>;

    /// Offset of the next record this reader will return.
    fn position(&self) -> u64;
}

/// Partition of an entity: FNV-1a of its bytes, modulo the partition count. Stable across
/// versions and platforms, because per-entity detector state lives in exactly one partition.
pub fn partition_for(entity: &str, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in entity.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_is_stable_and_spreads() {
        assert_eq!(partition_for("user-1", 1), 0);
        assert_eq!(partition_for("user-1", 8), partition_for("user-1", 8));
        let mut seen = [0u32; 4];
        for i in 0..4000 {
            seen[partition_for(&i.to_string(), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}
