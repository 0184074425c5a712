//! State of one partition shared by its writer, the log and its readers, and its recovery on
//! open.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tracing::warn;

use super::segment::{self, FrameCursor, Next};
use crate::LogError;

/// A sparse index entry is added when a record starts at least this many bytes after the previous
/// entry, so a reader seeks to any offset by scanning at most this much of one segment.
pub(crate) const INDEX_INTERVAL_BYTES: u64 = 64 * 1024;

/// Read buffer size of recovery scans.
const SCAN_CHUNK: usize = 1024 * 1024;

/// A record's offset and the byte position of its frame in its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) offset: u64,
    pub(crate) position: u64,
}

/// A segment file in the partition's index.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    /// Offset of the segment's first record.
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    /// Sparse index, ascending; `(base, 0)` is implicit.
    pub(crate) index: Vec<IndexEntry>,
}

impl SegmentInfo {
    pub(crate) fn new(base: u64, path: PathBuf) -> Self {
        Self {
            base,
            path,
            index: Vec::new(),
        }
    }

    /// The indexed position at or before `offset`, from which a scan reaches it.
    pub(crate) fn seek_entry(&self, offset: u64) -> IndexEntry {
        let after = self.index.partition_point(|entry| entry.offset <= offset);
        match after.checked_sub(1) {
            Some(i) => self.index[i],
            None => IndexEntry {
                offset: self.base,
                position: 0,
            },
        }
    }
}

/// What readers may see, published by the writer after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// Every offset below this is written (and fsynced under `FsyncPolicy::Always`).
    pub(crate) end: u64,
    /// Base offset of the segment being written.
    pub(crate) segment_base: u64,
    /// Bytes of that segment that hold published records.
    pub(crate) segment_len: u64,
    /// The writer has stopped.
    pub(crate) closed: bool,
}

/// One partition's state shared between its writer thread, the log and readers.
#[derive(Debug)]
pub(crate) struct PartitionShared {
    pub(crate) id: u32,
    pub(crate) dir: PathBuf,
    /// Segments in offset order; the last one is being written. The writer locks it once per
    /// batch that adds index entries or segments, readers when they open or change segments.
    segments: Mutex<VecDeque<SegmentInfo>>,
    /// The published end; readers wait on it.
    pub(crate) published: watch::Sender<Published>,
    /// Highest offset passed to `commit`; retention deletes segments wholly below it.
    pub(crate) committed: AtomicU64,
}

impl PartitionShared {
    pub(crate) fn segments(&self) -> MutexGuard<'_, VecDeque<SegmentInfo>> {
        // The index is only mutated by whole-value pushes, pops and extends, so a panic elsewhere
        // cannot leave it half-updated.
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn published(&self) -> Published {
        *self.published.borrow()
    }

    /// First retained offset.
    pub(crate) fn start_offset(&self) -> u64 {
        self.segments().front().map_or(0, |segment| segment.base)
    }
}

/// The active segment found by recovery, where the writer continues.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) next_offset: u64,
    /// Position of the last sparse index entry (0 if none).
    pub(crate) last_index_position: u64,
}

/// Opens (creating if needed) partition `id` in `dir`: validates every segment, truncates a torn
/// tail of the last one, rebuilds the sparse index.
pub(crate) fn recover(id: u32, dir: PathBuf) -> Result<(PartitionShared, ActiveSegment), LogError> {
    fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
    let mut bases = list_segments(&dir)?;
    if bases.is_empty() {
        let path = dir.join(segment::segment_file_name(0));
        File::create(&path).map_err(|source| io_error(&path, source))?;
        sync_dir(&dir)?;
        bases.push(0);
    }
    let mut segments = VecDeque::with_capacity(bases.len());
    let mut active = None;
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment::segment_file_name(base));
        if let Some(previous) = &active {
            let ActiveSegment { next_offset, .. } = previous;
            if *next_offset != base {
                return Err(LogError::Corrupt {
                    path,
                    position: 0,
                    reason: format!(
                        "segment starts at offset {base} but the previous one ends at offset {next_offset}"
                    ),
                });
            }
        }
        let is_last = i + 1 == bases.len();
        let (info, scanned) = scan_segment(base, path, is_last)?;
        segments.push_back(info);
        active = Some(scanned);
    }
    let active = active.ok_or_else(|| LogError::Corrupt {
        path: dir.clone(),
        position: 0,
        reason: "partition has no segment".to_string(),
    })?;
    let published = Published {
        end: active.next_offset,
        segment_base: active.base,
        segment_len: active.len,
        closed: false,
    };
    let shared = PartitionShared {
        id,
        dir,
        segments: Mutex::new(segments),
        published: watch::Sender::new(published),
        committed: AtomicU64::new(0),
    };
    Ok((shared, active))
}

/// Base offsets of the segment files in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_segment_file_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Reads a whole segment, checking every frame. A bad frame truncates the last segment there and
/// is `Corrupt` in any other.
fn scan_segment(
    base: u64,
    path: PathBuf,
    is_last: bool,
) -> Result<(SegmentInfo, ActiveSegment), LogError> {
    let file = File::open(&path).map_err(|source| io_error(&path, source))?;
    let file_len = file
        .metadata()
        .map_err(|source| io_error(&path, source))?
        .len();
    let mut cursor =
        FrameCursor::new(file, 0, SCAN_CHUNK).map_err(|source| io_error(&path, source))?;
    let mut info = SegmentInfo::new(base, path);
    let mut next_offset = base;
    let mut last_index_position = 0;
    loop {
        match cursor
            .next(file_len)
            .map_err(|source| io_error(&info.path, source))?
        {
            Next::Record { position, .. } => {
                if position - last_index_position >= INDEX_INTERVAL_BYTES {
                    info.index.push(IndexEntry {
                        offset: next_offset,
                        position,
                    });
                    last_index_position = position;
                }
                next_offset += 1;
            }
            Next::End => break,
            Next::Bad { position, reason } => {
                if !is_last {
                    return Err(LogError::Corrupt {
                        path: info.path,
                        position,
                        reason,
                    });
                }
                truncate(&info.path, position)?;
                warn!(
                    path = %info.path.display(),
                    position,
                    truncated_bytes = file_len - position,
                    reason,
                    "truncated the torn tail of a log segment"
                );
                break;
            }
        }
    }
    let active = ActiveSegment {
        base,
        path: info.path.clone(),
        len: cursor.position(),
        next_offset,
        last_index_position,
    };
    Ok((info, active))
}

fn truncate(path: &Path, len: u64) -> Result<(), LogError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| io_error(path, source))?;
    file.set_len(len).map_err(|source| io_error(path, source))?;
    file.sync_all().map_err(|source| io_error(path, source))
}

/// Makes the creation or removal of files in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|dir_file| dir_file.sync_all())
        .map_err(|source| io_error(dir, source))
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> LogError {
    LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_entry_finds_the_closest_indexed_position() {
        let mut info = SegmentInfo::new(100, PathBuf::from("x"));
        assert_eq!(
            info.seek_entry(150),
            IndexEntry {
                offset: 100,
                position: 0
            }
        );
        info.index = vec![
            IndexEntry {
                offset: 120,
                position: 70_000,
            },
            IndexEntry {
                offset: 140,
                position: 140_000,
            },
        ];
        assert_eq!(
            info.seek_entry(119),
            IndexEntry {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            info.seek_entry(120),
            IndexEntry {
                offset: 120,
                position: 70_000
            }
        );
        assert_eq!(
            info.seek_entry(139),
            IndexEntry {
                offset: 120,
                position: 70_000
            }
        );
        assert_eq!(
            info.seek_entry(1000),
            IndexEntry {
                offset: 140,
                position: 140_000
            }
        );
    }
}
