//! The writer thread of one partition: group commit, segment roll, retention.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, warn};

use super::config::FsyncPolicy;
use super::partition::{
    ActiveSegment, INDEX_INTERVAL_BYTES, IndexEntry, PartitionShared, SegmentInfo, io_error,
    sync_dir,
};
use super::segment;
use crate::LogError;

/// A write buffer that grew beyond this is given back after its batch.
const KEEP_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// The writer stops draining pending requests into a batch once they hold this many payload
/// bytes, which bounds the write buffer; the rest go in the next batch.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Where an append's result goes: its first offset once durable.
pub(crate) type Reply = oneshot::Sender<Result<u64, LogError>>;

/// A message to a partition's writer.
#[derive(Debug)]
pub(crate) enum Command {
    /// Append `records`; reply with the first offset once durable under the fsync policy.
    Append { records: Vec<Vec<u8>>, reply: Reply },
    /// Time has passed: sync if the interval policy asks for it.
    Tick,
    /// Apply retention now; reply with the first retained offset.
    Retain { done: oneshot::Sender<u64> },
    /// Flush, fsync and stop; reply when done.
    Shutdown { done: oneshot::Sender<()> },
}

impl Command {
    fn payload_bytes(&self) -> usize {
        match self {
            Command::Append { records, .. } => records.iter().map(Vec::len).sum(),
            _ => 0,
        }
    }
}

/// The first I/O failure that stopped the writer, kept to answer later appends.
#[derive(Debug, Clone)]
struct Failure {
    path: PathBuf,
    kind: io::ErrorKind,
    message: String,
}

impl Failure {
    fn from_error(err: &LogError) -> Self {
        match err {
            LogError::Io { path, source } => Self {
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
            },
            other => Self {
                path: PathBuf::new(),
                kind: io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }

    fn to_error(&self) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            source: io::Error::new(self.kind, self.message.clone()),
        }
    }
}

/// Owns the active segment file of one partition. Runs on its own OS thread.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<PartitionShared>,
    rx: mpsc::Receiver<Command>,
    fsync: FsyncPolicy,
    segment_bytes: u64,
    file: File,
    segment_base: u64,
    segment_path: PathBuf,
    segment_len: u64,
    next_offset: u64,
    last_index_position: u64,
    /// Bytes written since the last `fdatasync`.
    dirty: bool,
    last_sync: Instant,
    /// Set when an fsync (or the roll back of a failed batch) failed; see [`Writer::sync`].
    failed: Option<Failure>,
    /// Committed offset retention last ran for.
    retained_for: u64,
    buf: Vec<u8>,
    batch: Vec<Command>,
}

/// The writer's position before a batch, restored if the batch fails.
#[derive(Debug)]
struct Saved {
    segment_base: u64,
    segment_path: PathBuf,
    segment_len: u64,
    next_offset: u64,
    last_index_position: u64,
}

/// What a batch changed, applied to the shared index only once it is durable.
#[derive(Debug, Default)]
struct BatchIndex {
    /// New sparse entries of the segment that was active when the batch started.
    entries: Vec<IndexEntry>,
    /// Segments created by the batch (each with its entries).
    created: Vec<SegmentInfo>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<PartitionShared>,
        rx: mpsc::Receiver<Command>,
        active: ActiveSegment,
        fsync: FsyncPolicy,
        segment_bytes: u64,
    ) -> Result<Self, LogError> {
        let file = open_for_append(&active.path)?;
        Ok(Self {
            shared,
            rx,
            fsync,
            segment_bytes,
            file,
            segment_base: active.base,
            segment_path: active.path,
            segment_len: active.len,
            next_offset: active.next_offset,
            last_index_position: active.last_index_position,
            dirty: false,
            last_sync: Instant::now(),
            failed: None,
            retained_for: 0,
            buf: Vec::new(),
            batch: Vec::new(),
        })
    }

    /// The thread's main loop: take one command, drain every other pending one, write them as one
    /// batch, and repeat until the log closes.
    pub(crate) fn run(mut self) {
        let mut shutdown_waiters = Vec::new();
        while let Some(command) = self.rx.blocking_recv() {
            // `batch` keeps its capacity from one round to the next.
            let mut batch = std::mem::take(&mut self.batch);
            let mut batch_bytes = command.payload_bytes();
            batch.push(command);
            while batch_bytes < MAX_BATCH_BYTES {
                let Ok(command) = self.rx.try_recv() else {
                    break;
                };
                batch_bytes += command.payload_bytes();
                batch.push(command);
            }
            let mut retain_waiters = Vec::new();
            let stop = self.write_batch(&mut batch, &mut retain_waiters, &mut shutdown_waiters);
            self.batch = batch;
            self.sync_if_due();
            let start = self.apply_retention(!retain_waiters.is_empty());
            for done in retain_waiters {
                let _ = done.send(start);
            }
            if stop {
                break;
            }
        }
        self.stop(shutdown_waiters);
    }

    /// Empties `batch`, writing every append in it with one buffered write (plus one per segment roll), syncs
    /// once under `Always`, publishes, then answers. Returns whether a shutdown was asked for.
    fn write_batch(
        &mut self,
        batch: &mut Vec<Command>,
        retain_waiters: &mut Vec<oneshot::Sender<u64>>,
        shutdown_waiters: &mut Vec<oneshot::Sender<()>>,
    ) -> bool {
        let mut appends = Vec::with_capacity(batch.len());
        for command in batch.drain(..) {
            match command {
                Command::Append { records, reply } => appends.push((records, reply)),
                Command::Tick => {}
                Command::Retain { done } => retain_waiters.push(done),
                Command::Shutdown { done } => shutdown_waiters.push(done),
            }
        }
        if !appends.is_empty() {
            self.append_all(appends);
        }
        !shutdown_waiters.is_empty()
    }

    fn append_all(&mut self, appends: Vec<(Vec<Vec<u8>>, Reply)>) {
        if let Some(failure) = &self.failed {
            for (_, reply) in appends {
                let _ = reply.send(Err(failure.to_error()));
            }
            return;
        }
        let saved = self.saved();
        let mut firsts = Vec::with_capacity(appends.len());
        let mut index = BatchIndex::default();
        let mut result = Ok(());
        for (records, _) in &appends {
            firsts.push(self.next_offset);
            if let Err(err) = self.encode(records, &mut index) {
                result = Err(err);
                break;
            }
        }
        let result = result
            .and_then(|()| self.flush())
            .and_then(|()| self.sync_for_ack());
        match result {
            Ok(()) => {
                self.publish(index);
                for ((_, reply), first) in appends.into_iter().zip(firsts) {
                    let _ = reply.send(Ok(first));
                }
            }
            Err(err) => {
                error!(partition = self.shared.id, error = %err, "log append failed");
                let failure = Failure::from_error(&err);
                self.roll_back(saved, &index);
                for (_, reply) in appends {
                    let _ = reply.send(Err(failure.to_error()));
                }
            }
        }
        if self.buf.capacity() > KEEP_BUFFER_BYTES {
            self.buf = Vec::new();
        }
    }

    fn saved(&self) -> Saved {
        Saved {
            segment_base: self.segment_base,
            segment_path: self.segment_path.clone(),
            segment_len: self.segment_len,
            next_offset: self.next_offset,
            last_index_position: self.last_index_position,
        }
    }

    /// Frames `records` into the write buffer, rolling the segment when it would grow too big.
    fn encode(&mut self, records: &[Vec<u8>], index: &mut BatchIndex) -> Result<(), LogError> {
        for payload in records {
            let frame_len = segment::frame_len(payload.len());
            let position = self.segment_len + self.buf.len() as u64;
            if position > 0 && position + frame_len > self.segment_bytes {
                self.roll(index)?;
            }
            let position = self.segment_len + self.buf.len() as u64;
            if position - self.last_index_position >= INDEX_INTERVAL_BYTES {
                let entry = IndexEntry {
                    offset: self.next_offset,
                    position,
                };
                match index.created.last_mut() {
                    Some(created) => created.index.push(entry),
                    None => index.entries.push(entry),
                }
                self.last_index_position = position;
            }
            segment::encode_into(&mut self.buf, payload);
            self.next_offset += 1;
        }
        Ok(())
    }

    /// Writes the buffer, syncs the full segment (unless `Never`) and starts a new one.
    fn roll(&mut self, index: &mut BatchIndex) -> Result<(), LogError> {
        self.flush()?;
        if self.fsync != FsyncPolicy::Never && self.dirty {
            self.sync()?;
        }
        let path = self
            .shared
            .dir
            .join(segment::segment_file_name(self.next_offset));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|source| io_error(&path, source))?;
        index
            .created
            .push(SegmentInfo::new(self.next_offset, path.clone()));
        if self.fsync != FsyncPolicy::Never {
            sync_dir(&self.shared.dir)?;
        }
        debug!(partition = self.shared.id, path = %path.display(), "log segment rolled");
        self.file = file;
        self.segment_base = self.next_offset;
        self.segment_path = path;
        self.segment_len = 0;
        self.last_index_position = 0;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.dirty = true;
        self.file
            .write_all(&self.buf)
            .map_err(|source| io_error(&self.segment_path, source))?;
        self.segment_len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn sync_for_ack(&mut self) -> Result<(), LogError> {
        if self.fsync == FsyncPolicy::Always && self.dirty {
            self.sync()
        } else {
            Ok(())
        }
    }

    /// `fdatasync` of the active segment. A failure stops the partition: after a failed fsync the
    /// page cache can no longer be trusted to match the disk (acknowledged data may be lost), so
    /// appends fail until the log is reopened and recovery has validated what is on disk.
    fn sync(&mut self) -> Result<(), LogError> {
        if let Err(source) = self.file.sync_data() {
            let err = io_error(&self.segment_path, source);
            error!(partition = self.shared.id, error = %err, "log fsync failed; the partition stops accepting appends");
            self.failed.get_or_insert(Failure::from_error(&err));
            return Err(err);
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Under `Interval`, syncs when there is unsynced data and the interval has passed.
    fn sync_if_due(&mut self) {
        let FsyncPolicy::Interval(interval) = self.fsync else {
            return;
        };
        if !self.dirty || self.failed.is_some() || self.last_sync.elapsed() < interval {
            return;
        }
        // A failure is logged and stops the partition inside `sync`.
        let _ = self.sync();
    }

    /// Makes the batch visible: index first, then the end offset readers wait on.
    fn publish(&mut self, index: BatchIndex) {
        if !index.entries.is_empty() || !index.created.is_empty() {
            let mut segments = self.shared.segments();
            if let Some(active) = segments.back_mut() {
                active.index.extend(index.entries);
            }
            segments.extend(index.created);
        }
        let (end, segment_base, segment_len) =
            (self.next_offset, self.segment_base, self.segment_len);
        self.shared.published.send_modify(|published| {
            published.end = end;
            published.segment_base = segment_base;
            published.segment_len = segment_len;
        });
    }

    /// Undoes a failed batch: truncates the segment it started in and removes segments it created.
    fn roll_back(&mut self, saved: Saved, index: &BatchIndex) {
        let Saved {
            segment_base: base,
            segment_path: path,
            segment_len: len,
            next_offset,
            last_index_position,
        } = saved;
        self.buf.clear();
        let result = (|| -> Result<File, LogError> {
            for created in &index.created {
                match fs::remove_file(&created.path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(io_error(&created.path, source)),
                }
            }
            let file = open_for_append(&path)?;
            file.set_len(len)
                .map_err(|source| io_error(&path, source))?;
            Ok(file)
        })();
        match result {
            Ok(file) => {
                self.file = file;
                self.segment_base = base;
                self.segment_path = path;
                self.segment_len = len;
                self.next_offset = next_offset;
                self.last_index_position = last_index_position;
            }
            Err(err) => {
                error!(partition = self.shared.id, error = %err, "log roll back failed; the partition stops accepting appends");
                self.failed.get_or_insert(Failure::from_error(&err));
            }
        }
    }

    /// Deletes whole segments below the committed offset, never the active one. Returns the first
    /// retained offset.
    fn apply_retention(&mut self, force: bool) -> u64 {
        let committed = self.shared.committed.load(Ordering::Acquire);
        if committed == self.retained_for && !force {
            return 0;
        }
        self.retained_for = committed;
        let mut removed = Vec::new();
        let start = {
            let mut segments = self.shared.segments();
            while segments.len() > 1 && segments[1].base <= committed {
                if let Some(segment) = segments.pop_front() {
                    removed.push(segment.path);
                }
            }
            segments
                .front()
                .map_or(self.next_offset, |segment| segment.base)
        };
        for path in removed {
            match fs::remove_file(&path) {
                Ok(()) => {
                    debug!(partition = self.shared.id, path = %path.display(), "log segment deleted by retention")
                }
                Err(err) => {
                    warn!(partition = self.shared.id, path = %path.display(), error = %err, "log retention could not delete a segment")
                }
            }
        }
        start
    }

    /// Refuses what is still queued, syncs, and tells readers the log is closed.
    fn stop(mut self, mut shutdown_waiters: Vec<oneshot::Sender<()>>) {
        self.rx.close();
        while let Ok(command) = self.rx.try_recv() {
            match command {
                Command::Append { reply, .. } => {
                    let _ = reply.send(Err(LogError::Closed));
                }
                Command::Shutdown { done } => shutdown_waiters.push(done),
                Command::Tick | Command::Retain { .. } => {}
            }
        }
        if self.dirty
            && self.failed.is_none()
            && let Err(err) = self.sync()
        {
            error!(partition = self.shared.id, error = %err, "log fsync on shutdown failed");
        }
        self.shared
            .published
            .send_modify(|published| published.closed = true);
        debug!(
            partition = self.shared.id,
            end = self.next_offset,
            "log writer stopped"
        );
        for done in shutdown_waiters {
            let _ = done.send(());
        }
    }
}

fn open_for_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .append(true)
        .read(true)
        .open(path)
        .map_err(|source| io_error(path, source))
}

/// Sends [`Command::Tick`] to every writer each `interval` (the `Interval` fsync policy) until
/// told to stop. Holds weak senders so it never keeps a closed log's channels open.
pub(crate) fn run_ticker(
    interval: Duration,
    senders: Vec<mpsc::WeakSender<Command>>,
    stop: std::sync::mpsc::Receiver<()>,
) {
    loop {
        match stop.recv_timeout(interval) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        for sender in &senders {
            if let Some(sender) = sender.upgrade() {
                // A full queue means the writer is busy and checks the interval after its batch.
                let _ = sender.try_send(Command::Tick);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::partition;

    fn records(prefix: &str, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{prefix}-{i:04}").into_bytes())
            .collect()
    }

    fn append(writer: &mut Writer, records: Vec<Vec<u8>>) -> Result<u64, LogError> {
        let (reply, mut wait) = oneshot::channel();
        writer.append_all(vec![(records, reply)]);
        wait.try_recv().expect("the writer should have answered")
    }

    fn seg_files(dir: &std::path::Path) -> Vec<(String, u64)> {
        let mut files: Vec<(String, u64)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn a_failed_batch_is_rolled_back_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let part_dir = dir.path().join("p0");
        let (shared, active) = partition::recover(0, part_dir.clone()).unwrap();
        let shared = Arc::new(shared);
        let (_tx, rx) = mpsc::channel(4);
        // Frames of 14 bytes: 4 per 64-byte segment.
        let mut writer =
            Writer::new(Arc::clone(&shared), rx, active, FsyncPolicy::Always, 64).unwrap();
        assert_eq!(append(&mut writer, records("a", 5)).unwrap(), 0);
        let before = seg_files(&part_dir);
        assert_eq!(before.len(), 2);

        // A batch that rolls twice, is written, then fails (as a failed fsync would).
        let saved = writer.saved();
        let mut index = BatchIndex::default();
        writer.encode(&records("b", 10), &mut index).unwrap();
        writer.flush().unwrap();
        assert_eq!(index.created.len(), 2);
        writer.roll_back(saved, &index);
        assert!(writer.failed.is_none());
        assert_eq!(
            seg_files(&part_dir),
            before,
            "created segments removed, the active one truncated"
        );
        assert_eq!(
            shared.published().end,
            5,
            "nothing of the failed batch was published"
        );

        assert_eq!(append(&mut writer, records("c", 3)).unwrap(), 5);
        assert_eq!(shared.published().end, 8);
        drop(writer);
        let (_, active) = partition::recover(0, part_dir).unwrap();
        assert_eq!(active.next_offset, 8);
    }

    #[test]
    fn a_poisoned_writer_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, active) = partition::recover(0, dir.path().join("p0")).unwrap();
        let (_tx, rx) = mpsc::channel(4);
        let mut writer =
            Writer::new(Arc::new(shared), rx, active, FsyncPolicy::Always, 1 << 20).unwrap();
        writer.failed = Some(Failure::from_error(&io_error(
            Path::new("x.seg"),
            io::Error::other("fsync failed"),
        )));
        let err = append(&mut writer, records("a", 1)).unwrap_err();
        assert!(err.to_string().contains("fsync failed"), "{err}");
        assert!(err.to_string().contains("x.seg"), "{err}");
    }
}
