//! The embedded log: segment files under the data directory, one writer thread per partition with
//! group commit.
//!
//! # Constraints
//! - An append resolves only once its records are durable under the [`FsyncPolicy`]; under
//!   [`FsyncPolicy::Always`] that means `fdatasync`ed, so an acknowledged event survives a crash
//!   of the process or of the machine.
//! - Readers never see a record beyond the published end offset (under `Always`, never one that
//!   is not fsynced).
//! - Offsets are dense per partition and start at 0; they are implicit (segment base + index in
//!   the segment), never stored in frames.
//! - The hot path does one buffered `write(2)` and (under `Always`) one `fdatasync` per *batch* of
//!   append requests, never per record, and takes no lock per record.
//! - Every queue is bounded: a full partition queue makes `append` wait (backpressure).
//! - One process owns a directory at a time (there is no lock file yet: do not open a directory
//!   twice).
//!
//! # On-disk format
//! ```text
//! dir/meta                         "oddity-log 1\npartitions N\n" (written once, atomically)
//! dir/p{N}/{base_offset:020}.seg   segment files; base_offset = offset of the first record
//! segment = frame*
//! frame   = u32 LE payload length | u32 LE crc32 (crc32fast) of the payload | payload
//! ```
//! A payload is never empty, so a zero-length frame (e.g. a zero-filled tail after a crash) is
//! invalid. A segment is sealed before a record would take it past `segment_bytes`; the next
//! segment's base is the offset that record gets. Each segment keeps an in-memory sparse index
//! (an `(offset, position)` entry every 64 KiB), so a reader seeks to any offset by scanning at
//! most 64 KiB of one segment.
//!
//! # Group commit
//! Each partition has a writer on a dedicated OS thread fed by a bounded tokio channel of append
//! requests, each with a oneshot reply. The writer blocks for the first request, drains every
//! other pending one (up to 8 MiB of payload), frames them all into one buffer and writes it with
//! one `write(2)` (plus one per segment roll), then under `Always` calls `fdatasync` once, publishes the new end offset
//! on a `watch` channel (which wakes waiting readers) and answers every waiter. Under
//! `Interval(d)` an append resolves after the write, and the writer syncs at most every `d` while
//! there is unsynced data (a ticker thread nudges idle writers); under `Never` it syncs only on
//! clean shutdown. A failed write is rolled back (truncated) and fails the batch; a failed fsync
//! stops the partition, because the page cache can no longer be trusted (reopen to recover).
//! Dropping an `append` future once its request is queued does not cancel the write.
//!
//! # Recovery
//! [`EmbeddedLog::open`] reads every segment and checks every frame's CRC, rebuilding the sparse
//! index. A bad frame in the last segment of a partition is a torn tail from a crash: the segment
//! is truncated there (logged with `warn!` and the number of bytes), not reported. A bad frame in
//! any other segment, or a gap between segments, is [`LogError::Corrupt`] (under
//! [`FsyncPolicy::Never`] a machine crash can leave a sealed segment torn, which then needs
//! manual repair). Opening costs one sequential read of the retained data.
//!
//! # Retention
//! [`Log::commit`] records the highest committed offset per partition (in memory: after a reopen
//! it is 0 until the worker commits again) and nudges the writer. Between batches, the writer
//! deletes whole segments whose records are all below it, never the active segment. Reading below
//! the first retained offset is [`LogError::OffsetOutOfRange`]; a reader already inside a deleted
//! segment finishes it through its open file descriptor.
//!
//! # Shutdown
//! [`EmbeddedLog::close`] asks every writer to write and fsync what it holds and stop, and waits
//! without blocking the runtime. Dropping the log does the same, blocking the dropping thread
//! until the writer threads have finished (an fsync each). Afterwards appends and reads fail with
//! [`LogError::Closed`].

mod config;
mod meta;
mod partition;
mod reader;
mod segment;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

pub use config::{
    DEFAULT_MAX_RECORD_BYTES, DEFAULT_QUEUE_DEPTH, DEFAULT_SEGMENT_BYTES, EmbeddedLogConfig,
    FsyncPolicy,
};
pub use reader::EmbeddedReader;

use crate::{Log, LogError, LogReader};
use partition::{PartitionShared, io_error};
use writer::{Command, Writer};

/// The embedded durable partitioned log. See the [module documentation](self).
#[derive(Debug)]
pub struct EmbeddedLog {
    /// The directory lock, held while the log is open.
    _lock: std::fs::File,
    config: EmbeddedLogConfig,
    partitions: Vec<Partition>,
    ticker: Option<Ticker>,
    closed: AtomicBool,
}

/// One partition: its shared state, the writer's queue and thread.
#[derive(Debug)]
struct Partition {
    shared: Arc<PartitionShared>,
    /// `None` once the log is dropped.
    tx: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

/// The thread that nudges writers under [`FsyncPolicy::Interval`].
#[derive(Debug)]
struct Ticker {
    stop: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl EmbeddedLog {
    /// Opens the log in `config.dir`, creating it if needed, and recovers every partition (see
    /// the module documentation). Blocking: it reads all retained data, so call it from
    /// `spawn_blocking` or before the runtime is busy.
    pub fn open(config: EmbeddedLogConfig) -> Result<Self, LogError> {
        config.validate()?;
        std::fs::create_dir_all(&config.dir).map_err(|source| io_error(&config.dir, source))?;
        let lock = meta::lock(&config.dir)?;
        meta::check_or_create(&config.dir, config.partitions)?;
        let mut log = Self {
            _lock: lock,
            config,
            partitions: Vec::new(),
            ticker: None,
            closed: AtomicBool::new(false),
        };
        for id in 0..log.config.partitions {
            let dir = log.config.dir.join(format!("p{id}"));
            let (shared, active) = partition::recover(id, dir)?;
            let shared = Arc::new(shared);
            let (tx, rx) = mpsc::channel(log.config.queue_depth);
            let writer = Writer::new(
                Arc::clone(&shared),
                rx,
                active,
                log.config.fsync,
                log.config.segment_bytes,
            )?;
            let thread = std::thread::Builder::new()
                .name(format!("oddity-log-p{id}"))
                .spawn(move || writer.run())
                .map_err(|source| io_error(&shared.dir, source))?;
            log.partitions.push(Partition {
                shared,
                tx: Some(tx),
                thread: Some(thread),
            });
        }
        if let FsyncPolicy::Interval(interval) = log.config.fsync {
            let senders = log
                .partitions
                .iter()
                .filter_map(|p| p.tx.as_ref().map(mpsc::Sender::downgrade))
                .collect();
            let (stop, stop_rx) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("oddity-log-fsync".to_string())
                .spawn(move || writer::run_ticker(interval, senders, stop_rx))
                .map_err(|source| io_error(&log.config.dir, source))?;
            log.ticker = Some(Ticker { stop, thread });
        }
        let ends: Vec<u64> = log
            .partitions
            .iter()
            .map(|p| p.shared.published().end)
            .collect();
        info!(dir = %log.config.dir.display(), partitions = log.config.partitions, ?ends, "embedded log opened");
        Ok(log)
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &EmbeddedLogConfig {
        &self.config
    }

    /// First retained offset of `partition` (offsets below it were deleted by retention).
    pub fn start_offset(&self, partition: u32) -> Result<u64, LogError> {
        Ok(self.partition(partition)?.shared.start_offset())
    }

    /// Applies retention to `partition` now (it otherwise runs between batches after a commit)
    /// and returns the first retained offset.
    pub async fn apply_retention(&self, partition: u32) -> Result<u64, LogError> {
        let (done, wait) = oneshot::channel();
        self.sender(partition)?
            .send(Command::Retain { done })
            .await
            .map_err(|_| LogError::Closed)?;
        wait.await.map_err(|_| LogError::Closed)
    }

    /// Stops every writer after it has written and fsynced what it holds; waits without blocking
    /// the runtime. Afterwards appends, and reads past what was read, fail with
    /// [`LogError::Closed`]. Idempotent.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for partition in &self.partitions {
            let Some(tx) = &partition.tx else { continue };
            let (done, wait) = oneshot::channel();
            if tx.send(Command::Shutdown { done }).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    fn partition(&self, partition: u32) -> Result<&Partition, LogError> {
        self.partitions
            .get(partition as usize)
            .ok_or(LogError::NoSuchPartition {
                partition,
                partitions: self.config.partitions,
            })
    }

    fn sender(&self, partition: u32) -> Result<&mpsc::Sender<Command>, LogError> {
        let partition = self.partition(partition)?;
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        partition.tx.as_ref().ok_or(LogError::Closed)
    }

    fn check_records(&self, records: &[Vec<u8>]) -> Result<(), LogError> {
        let limit = self.config.max_record_bytes;
        for (index, record) in records.iter().enumerate() {
            if record.is_empty() {
                return Err(LogError::EmptyRecord { index });
            }
            if record.len() > limit {
                return Err(LogError::RecordTooLarge {
                    len: record.len(),
                    limit,
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Log for EmbeddedLog {
    fn partitions(&self) -> u32 {
        self.config.partitions
    }

    async fn append(&self, partition: u32, records: Vec<Vec<u8>>) -> Result<u64, LogError> {
        let tx = self.sender(partition)?;
        if records.is_empty() {
            return self.end_offset(partition);
        }
        self.check_records(&records)?;
        let (reply, wait) = oneshot::channel();
        tx.send(Command::Append { records, reply })
            .await
            .map_err(|_| LogError::Closed)?;
        wait.await.map_err(|_| LogError::Closed)?
    }

    async fn reader(&self, partition: u32, from: u64) -> Result<Box<dyn LogReader>, LogError> {
        let shared = &self.partition(partition)?.shared;
        let published = shared.published();
        if published.closed || self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let start = shared.start_offset();
        if from < start || from > published.end {
            return Err(LogError::OffsetOutOfRange {
                partition,
                offset: from,
                start,
                end: published.end,
            });
        }
        Ok(Box::new(EmbeddedReader::open(Arc::clone(shared), from)?))
    }

    fn end_offset(&self, partition: u32) -> Result<u64, LogError> {
        Ok(self.partition(partition)?.shared.published().end)
    }

    /// Offsets above the end offset are refused; a commit below the current one is ignored
    /// (retention may already have used the higher one).
    fn commit(&self, partition: u32, offset: u64) -> Result<(), LogError> {
        let p = self.partition(partition)?;
        let end = p.shared.published().end;
        if offset > end {
            let start = p.shared.start_offset();
            return Err(LogError::OffsetOutOfRange {
                partition,
                offset,
                start,
                end,
            });
        }
        let previous = p.shared.committed.fetch_max(offset, Ordering::AcqRel);
        if offset > previous
            && let Some(tx) = &p.tx
        {
            // Nudge the writer; if its queue is full it runs retention after the batch anyway.
            let (done, _) = oneshot::channel();
            let _ = tx.try_send(Command::Retain { done });
        }
        Ok(())
    }

    fn committed_offset(&self, partition: u32) -> Result<u64, LogError> {
        Ok(self
            .partition(partition)?
            .shared
            .committed
            .load(Ordering::Acquire))
    }
}

impl Drop for EmbeddedLog {
    /// Closes the queues and joins the writer threads, which write and fsync what they hold.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if let Some(ticker) = self.ticker.take() {
            drop(ticker.stop);
            if ticker.thread.join().is_err() {
                error!("log fsync ticker thread panicked");
            }
        }
        for partition in &mut self.partitions {
            partition.tx = None;
        }
        for partition in &mut self.partitions {
            if let Some(thread) = partition.thread.take()
                && thread.join().is_err()
            {
                error!(
                    partition = partition.shared.id,
                    "log writer thread panicked"
                );
            }
        }
    }
}
