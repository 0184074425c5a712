//! Binary encoding of an [`Event`] inside the log.
//!
//! The log stores opaque byte records; this is the format of an event record. It is compact and
//! cheap to decode (no JSON parse on the worker's hot path: `attrs` stays JSON text, parsed only
//! when a detector asks for a field of it).
//!
//! ```text
//! u8      format version (1)
//! i64 LE  ts (ms)
//! i64 LE  ingested_at (ms)
//! str     entity            str = varint length + UTF-8 bytes
//! str     type
//! u8      flags             bit 0: value present, bit 1: attrs present
//! [f64 LE value]
//! varint  number of fields, then per field: str name, f64 LE
//! [str    attrs JSON text]
//! ```

use crate::event::{Event, EventId};

const VERSION: u8 = 1;
const HAS_VALUE: u8 = 1;
const HAS_ATTRS: u8 = 2;

/// A record that is not a valid encoded event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The record ended before the field being read.
    #[error("event record truncated while reading {0}")]
    Truncated(&'static str),
    /// The record starts with a format version this build does not know.
    #[error("unknown event record version {0}")]
    UnknownVersion(u8),
    /// A string field is not UTF-8.
    #[error("event record field {0} is not valid UTF-8")]
    Utf8(&'static str),
}

/// Appends the encoding of `event` (its `id` is not encoded: the log assigns it) to `out`.
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&event.ts.to_le_bytes());
    out.extend_from_slice(&event.ingested_at.to_le_bytes());
    put_str(out, &event.entity);
    put_str(out, &event.event_type);
    let mut flags = 0;
    if event.value.is_some() {
        flags |= HAS_VALUE;
    }
    if event.attrs.is_some() {
        flags |= HAS_ATTRS;
    }
    out.push(flags);
    if let Some(v) = event.value {
        out.extend_from_slice(&v.to_le_bytes());
    }
    put_varint(out, event.fields.len() as u64);
    for (name, v) in &event.fields {
        put_str(out, name);
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(attrs) = &event.attrs {
        put_str(out, attrs);
    }
}

/// Encodes `event` into a new buffer.
pub fn encode_to_vec(event: &Event) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(48 + event.entity.len() + event.attrs.as_ref().map_or(0, String::len));
    encode(event, &mut out);
    out
}

/// Decodes a record written by [`encode`], giving it `id`.
pub fn decode(bytes: &[u8], id: EventId) -> Result<Event, CodecError> {
    let mut r = Reader { buf: bytes };
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let ts = r.i64("ts")?;
    let ingested_at = r.i64("ingested_at")?;
    let entity = r.string("entity")?;
    let event_type = r.string("type")?;
    let flags = r.u8("flags")?;
    let value = if flags & HAS_VALUE != 0 {
        Some(r.f64("value")?)
    } else {
        None
    };
    let n = r.varint("fields")?;
    let mut fields = std::collections::BTreeMap::new();
    for _ in 0..n {
        let name = r.string("field name")?;
        let v = r.f64("field value")?;
        fields.insert(name, v);
    }
    let attrs = if flags & HAS_ATTRS != 0 {
        Some(r.string("attrs")?)
    } else {
        None
    };
    Ok(Event {
        id,
        entity,
        event_type,
        ts,
        value,
        fields,
        attrs,
        ingested_at,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        let b = self.take(8, what)?;
        Ok(i64::from_le_bytes(
            b.try_into().map_err(|_| CodecError::Truncated(what))?,
        ))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, CodecError> {
        let b = self.take(8, what)?;
        Ok(f64::from_le_bytes(
            b.try_into().map_err(|_| CodecError::Truncated(what))?,
        ))
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Truncated(what))
    }

    fn string(&mut self, what: &'static str) -> Result<String, CodecError> {
        let n = self.varint(what)?;
        let n = usize::try_from(n).map_err(|_| CodecError::Truncated(what))?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| CodecError::Utf8(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut e = Event::new("user-42", "purchase", 1_700_000_000_123);
        e.ingested_at = 1_700_000_001_000;
        e.value = Some(12.5);
        e.fields.insert("cpu".into(), 0.25);
        e.fields.insert("mem".into(), f64::MAX);
        e.attrs = Some(r#"{"amount":1500.5,"city":"Zürich"}"#.into());
        e
    }

    #[test]
    fn round_trips() {
        let e = sample();
        let bytes = encode_to_vec(&e);
        let id = EventId::new(3, 99);
        let back = decode(&bytes, id).unwrap();
        assert_eq!(back, Event { id, ..e });

        let bare = Event::new("", "", -5);
        assert_eq!(
            decode(&encode_to_vec(&bare), EventId::default()).unwrap(),
            bare
        );
    }

    #[test]
    fn rejects_truncated_and_unknown_records() {
        let bytes = encode_to_vec(&sample());
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut], EventId::default()).is_err(),
                "cut at {cut}"
            );
        }
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert_eq!(
            decode(&wrong, EventId::default()),
            Err(CodecError::UnknownVersion(9))
        );
    }
}
