//! Segment files: naming, record framing, and a buffered cursor over frames.
//!
//! A frame is `u32 LE payload length | u32 LE crc32 of the payload | payload`. A zero length is
//! never written (empty records are refused), so a zero-filled tail reads as invalid, not as
//! records.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes of a frame header: length and CRC.
pub(crate) const HEADER_LEN: usize = 8;

/// Name of the segment file whose first record has offset `base`.
pub(crate) fn segment_file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// Base offset of a segment file name, or `None` if the name is not one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Size of the frame of a payload of `payload_len` bytes.
pub(crate) fn frame_len(payload_len: usize) -> u64 {
    (HEADER_LEN + payload_len) as u64
}

/// Appends the frame of `payload` to `buf`. The caller has checked `0 < len <= u32::MAX`.
pub(crate) fn encode_into(buf: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A complete, valid frame of `frame_len` bytes.
    Frame { frame_len: usize },
    /// Not enough bytes: a frame needs `needed` bytes in total.
    Incomplete { needed: usize },
    /// The bytes cannot start a valid frame.
    Invalid(String),
}

/// Decodes the frame at the start of `bytes` (no borrow is kept, so callers can refill).
pub(crate) fn decode(bytes: &[u8]) -> Decoded {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Decoded::Incomplete { needed: HEADER_LEN };
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let stored_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 {
        return Decoded::Invalid("zero-length frame".to_string());
    }
    let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + len) else {
        return Decoded::Incomplete {
            needed: HEADER_LEN + len,
        };
    };
    let crc = crc32fast::hash(payload);
    if crc != stored_crc {
        return Decoded::Invalid(format!(
            "crc mismatch: stored {stored_crc:08x}, computed {crc:08x}"
        ));
    }
    Decoded::Frame {
        frame_len: HEADER_LEN + len,
    }
}

/// The next item of a [`FrameCursor`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// A valid record's payload, which started at byte `position`.
    Record { position: u64, payload: &'a [u8] },
    /// Every byte up to the limit (or the end of the file) has been consumed.
    End,
    /// The bytes at `position` are not a complete valid frame.
    Bad { position: u64, reason: String },
}

/// The frame at `position` needs `needed` bytes but only `present` exist: `End` if none do.
fn cut(position: u64, present: u64, needed: usize) -> Next<'static> {
    if present == 0 {
        return Next::End;
    }
    let reason = if present < HEADER_LEN as u64 {
        format!("frame header cut after {present} bytes")
    } else {
        format!("frame of {needed} bytes cut after {present} bytes")
    };
    Next::Bad { position, reason }
}

/// Reads frames sequentially from a segment file through a reusable buffer: one `read(2)` per
/// `chunk` bytes, not per record.
#[derive(Debug)]
pub(crate) struct FrameCursor {
    file: File,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    head: usize,
    /// File position of `buf[head]`, i.e. of the next frame.
    position: u64,
    chunk: usize,
}

impl FrameCursor {
    /// A cursor reading `file` from byte `position`.
    pub(crate) fn new(mut file: File, position: u64, chunk: usize) -> io::Result<Self> {
        file.seek(SeekFrom::Start(position))?;
        Ok(Self {
            file,
            buf: Vec::new(),
            head: 0,
            position,
            chunk: chunk.max(HEADER_LEN),
        })
    }

    /// File position of the next frame.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Returns the next frame, reading no byte at or beyond `limit` (`u64::MAX`: the end of the
    /// file).
    pub(crate) fn next(&mut self, limit: u64) -> io::Result<Next<'_>> {
        loop {
            let available = &self.buf[self.head..];
            match decode(available) {
                Decoded::Frame { frame_len } => {
                    let start = self.head;
                    self.head += frame_len;
                    let position = self.position;
                    self.position += frame_len as u64;
                    return Ok(Next::Record {
                        position,
                        payload: &self.buf[start + HEADER_LEN..start + frame_len],
                    });
                }
                Decoded::Invalid(reason) => {
                    return Ok(Next::Bad {
                        position: self.position,
                        reason,
                    });
                }
                Decoded::Incomplete { needed } => {
                    let buffered = available.len() as u64;
                    if self.position.saturating_add(needed as u64) > limit {
                        // The frame would cross the limit: only the bytes up to it exist.
                        return Ok(cut(
                            self.position,
                            limit.saturating_sub(self.position),
                            needed,
                        ));
                    }
                    if self.fill(limit, needed)? == 0 {
                        if buffered == 0 && limit != u64::MAX {
                            return Ok(Next::Bad {
                                position: self.position,
                                reason: format!("file ends before the expected length {limit}"),
                            });
                        }
                        return Ok(cut(self.position, buffered, needed));
                    }
                }
            }
        }
    }

    /// Reads more bytes so that `needed` bytes may be available, never past `limit`. Returns how
    /// many bytes were read (0 at the end of the file or the limit).
    fn fill(&mut self, limit: u64, needed: usize) -> io::Result<usize> {
        if self.head > 0
            && (self.head >= self.buf.len() / 2
                || self.buf.len() + self.chunk > self.buf.capacity())
        {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        let buffered = self.buf.len() - self.head;
        let read_position = self.position + buffered as u64;
        let wanted = needed.max(self.chunk).saturating_sub(buffered);
        let room = usize::try_from(limit.saturating_sub(read_position)).unwrap_or(usize::MAX);
        let to_read = wanted.min(room);
        if to_read == 0 {
            return Ok(0);
        }
        let old_len = self.buf.len();
        self.buf.resize(old_len + to_read, 0);
        let result = loop {
            match self.file.read(&mut self.buf[old_len..]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let read = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old_len + read);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_into(&mut buf, payload);
        buf
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("42.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.seg"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg.tmp"),
            None
        );
    }

    struct DecodeCase {
        name: &'static str,
        bytes: Vec<u8>,
        expected: Decoded,
    }

    #[test]
    fn decode_cases() {
        let good = frame(b"hello");
        let mut bad_crc = good.clone();
        bad_crc[HEADER_LEN] ^= 0xff;
        let cases = [
            DecodeCase {
                name: "complete frame",
                bytes: good.clone(),
                expected: Decoded::Frame { frame_len: 13 },
            },
            DecodeCase {
                name: "frame followed by more bytes",
                bytes: [good.clone(), vec![1, 2, 3]].concat(),
                expected: Decoded::Frame { frame_len: 13 },
            },
            DecodeCase {
                name: "empty",
                bytes: vec![],
                expected: Decoded::Incomplete { needed: 8 },
            },
            DecodeCase {
                name: "torn length",
                bytes: good[..3].to_vec(),
                expected: Decoded::Incomplete { needed: 8 },
            },
            DecodeCase {
                name: "torn payload",
                bytes: good[..10].to_vec(),
                expected: Decoded::Incomplete { needed: 13 },
            },
            DecodeCase {
                name: "zero-filled",
                bytes: vec![0; 32],
                expected: Decoded::Invalid("zero-length frame".to_string()),
            },
        ];
        for case in cases {
            assert_eq!(decode(&case.bytes), case.expected, "{}", case.name);
        }
        assert!(
            matches!(decode(&bad_crc), Decoded::Invalid(reason) if reason.starts_with("crc mismatch"))
        );
    }

    fn cursor_over(bytes: &[u8], chunk: usize) -> (tempfile::TempDir, FrameCursor) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        File::create(&path).unwrap().write_all(bytes).unwrap();
        let cursor = FrameCursor::new(File::open(&path).unwrap(), 0, chunk).unwrap();
        (dir, cursor)
    }

    #[test]
    fn cursor_reads_frames_across_chunk_boundaries() {
        let payloads: Vec<Vec<u8>> = (1..50u8).map(|n| vec![n; n as usize * 3]).collect();
        let bytes: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        for chunk in [8, 13, 64, 1 << 20] {
            let (_dir, mut cursor) = cursor_over(&bytes, chunk);
            for expected in &payloads {
                match cursor.next(u64::MAX).unwrap() {
                    Next::Record { payload, .. } => {
                        assert_eq!(payload, &expected[..], "chunk {chunk}")
                    }
                    other => panic!("chunk {chunk}: {other:?}"),
                }
            }
            assert_eq!(cursor.next(u64::MAX).unwrap(), Next::End);
            assert_eq!(cursor.position(), bytes.len() as u64);
        }
    }

    #[test]
    fn cursor_respects_the_limit() {
        let bytes = [frame(b"one"), frame(b"two")].concat();
        let (_dir, mut cursor) = cursor_over(&bytes, 4096);
        assert!(matches!(
            cursor.next(11).unwrap(),
            Next::Record {
                payload: b"one",
                ..
            }
        ));
        assert_eq!(cursor.next(11).unwrap(), Next::End);
        // The limit moves forward when more data is published.
        assert!(matches!(
            cursor.next(22).unwrap(),
            Next::Record {
                payload: b"two",
                position: 11
            }
        ));
    }

    #[test]
    fn cursor_reports_a_torn_tail() {
        let bytes = [frame(b"one"), frame(b"two")[..6].to_vec()].concat();
        let (_dir, mut cursor) = cursor_over(&bytes, 4096);
        assert!(matches!(
            cursor.next(u64::MAX).unwrap(),
            Next::Record { .. }
        ));
        match cursor.next(u64::MAX).unwrap() {
            Next::Bad { position, reason } => {
                assert_eq!(position, 11);
                assert!(reason.contains("header cut"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
