//! Sequential reader of one partition.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::partition::{PartitionShared, Published, io_error};
use super::segment::{FrameCursor, Next};
use crate::{LogError, LogReader, Record};

/// Bytes read from a segment file per `read(2)`.
const READ_CHUNK: usize = 256 * 1024;

/// Reads one partition of an [`EmbeddedLog`](super::EmbeddedLog) in order, straight from the
/// segment files through a buffer, and waits on the writer's published end offset when caught up.
#[derive(Debug)]
pub struct EmbeddedReader {
    shared: Arc<PartitionShared>,
    published: watch::Receiver<Published>,
    /// Base offset and path of the segment the cursor reads.
    segment_base: u64,
    segment_path: PathBuf,
    cursor: FrameCursor,
    /// Offset of the record at the cursor.
    next_offset: u64,
    /// Records below this (between the indexed position and the requested one) are skipped.
    from: u64,
}

impl EmbeddedReader {
    /// A reader of `shared` at `from`, which the caller checked is in the retained range.
    pub(crate) fn open(shared: Arc<PartitionShared>, from: u64) -> Result<Self, LogError> {
        let published = shared.published.subscribe();
        let (segment_base, entry, path) = {
            let segments = shared.segments();
            let start = segments.front().map_or(0, |segment| segment.base);
            let end = shared.published().end;
            let Some(segment) = segments.iter().rev().find(|segment| segment.base <= from) else {
                return Err(LogError::OffsetOutOfRange {
                    partition: shared.id,
                    offset: from,
                    start,
                    end,
                });
            };
            (segment.base, segment.seek_entry(from), segment.path.clone())
        };
        let cursor = open_cursor(&shared, &path, entry.position, from)?;
        Ok(Self {
            shared,
            published,
            segment_base,
            segment_path: path,
            cursor,
            next_offset: entry.offset,
            from,
        })
    }

    /// Moves the cursor to the segment that starts at `next_offset`.
    fn next_segment(&mut self) -> Result<(), LogError> {
        let path = {
            let segments = self.shared.segments();
            let index = segments.partition_point(|segment| segment.base < self.next_offset);
            match segments.get(index) {
                Some(segment) if segment.base == self.next_offset => segment.path.clone(),
                _ => return Err(self.missing_segment(segments.front().map(|segment| segment.base))),
            }
        };
        self.cursor = open_cursor(&self.shared, &path, 0, self.next_offset)?;
        self.segment_base = self.next_offset;
        self.segment_path = path;
        Ok(())
    }

    fn missing_segment(&self, start: Option<u64>) -> LogError {
        let start = start.unwrap_or(self.next_offset);
        if start > self.next_offset {
            LogError::OffsetOutOfRange {
                partition: self.shared.id,
                offset: self.next_offset,
                start,
                end: self.shared.published().end,
            }
        } else {
            LogError::Corrupt {
                path: self.shared.dir.clone(),
                position: 0,
                reason: format!(
                    "no segment starts at offset {} where the previous one ends",
                    self.next_offset
                ),
            }
        }
    }

    /// Reads published records into `out` until `max`; never past `published.end`.
    fn read_published(
        &mut self,
        out: &mut Vec<Record>,
        max: usize,
        published: &Published,
    ) -> Result<(), LogError> {
        while out.len() < max && self.next_offset < published.end {
            let sealed = self.segment_base < published.segment_base;
            let limit = if sealed {
                u64::MAX
            } else if self.segment_base == published.segment_base {
                published.segment_len
            } else {
                0
            };
            let offset = self.next_offset;
            match self
                .cursor
                .next(limit)
                .map_err(|source| io_error(&self.segment_path, source))?
            {
                Next::Record { payload, .. } => {
                    if offset >= self.from {
                        out.push(Record {
                            offset,
                            payload: payload.to_vec(),
                        });
                    }
                    self.next_offset += 1;
                }
                Next::End if sealed => self.next_segment()?,
                Next::End => {
                    return Err(LogError::Corrupt {
                        path: self.segment_path.clone(),
                        position: self.cursor.position(),
                        reason: format!(
                            "segment ends at offset {offset} before the published end {}",
                            published.end
                        ),
                    });
                }
                Next::Bad { position, reason } => {
                    return Err(LogError::Corrupt {
                        path: self.segment_path.clone(),
                        position,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

fn open_cursor(
    shared: &PartitionShared,
    path: &Path,
    position: u64,
    offset: u64,
) -> Result<FrameCursor, LogError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            // Retention deleted it between the index lookup and the open.
            let published = shared.published();
            return Err(LogError::OffsetOutOfRange {
                partition: shared.id,
                offset,
                start: shared.start_offset(),
                end: published.end,
            });
        }
        Err(source) => return Err(io_error(path, source)),
    };
    FrameCursor::new(file, position, READ_CHUNK).map_err(|source| io_error(path, source))
}

#[async_trait]
impl LogReader for EmbeddedReader {
    async fn read(
        &mut self,
        out: &mut Vec<Record>,
        max: usize,
        wait: Duration,
    ) -> Result<usize, LogError> {
        out.clear();
        // `None`: a wait too long to represent, i.e. until data arrives or the log closes.
        let deadline = tokio::time::Instant::now().checked_add(wait);
        loop {
            let published = *self.published.borrow_and_update();
            if published.closed {
                return Err(LogError::Closed);
            }
            if max == 0 {
                return Ok(0);
            }
            if self.next_offset < published.end {
                self.read_published(out, max, &published)?;
                if !out.is_empty() {
                    return Ok(out.len());
                }
                continue;
            }
            let changed = match deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, self.published.changed()).await {
                        Ok(changed) => changed,
                        Err(_elapsed) => return Ok(0),
                    }
                }
                None => self.published.changed().await,
            };
            if changed.is_err() {
                // The sender lives as long as the partition state this reader holds.
                return Err(LogError::Closed);
            }
        }
    }

    fn position(&self) -> u64 {
        self.next_offset.max(self.from)
    }
}
