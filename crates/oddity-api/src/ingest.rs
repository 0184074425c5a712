//! Normalising incoming events: the adapters from every accepted shape to [`Event`].
//!
//! One record is a JSON object. Its fields are mapped so that the payloads of the reference
//! systems are accepted as they are:
//!
//! | event field | taken from, first present wins |
//! |---|---|
//! | `entity` | `entity`, `user_id` (seed 002; an integer becomes its decimal string), `role_id` (seed 000), `source` (seed 003), `series_id` |
//! | `type` | `type`, `event_type` (seed 000), `metric` (seed 003) |
//! | `ts` | `ts`, `timestamp`, `event_timestamp`: epoch milliseconds, epoch seconds (any number below 10¹¹, i.e. before 1973 in ms), either as a numeric string, or ISO-8601; absent = arrival time |
//! | `value` | `value` (a number or null) |
//! | `fields` | `fields` (an object of numbers) |
//! | `attrs` | `attrs` or `payload` (an object); absent, and the record has other keys: the whole record (seed 000's audit body) |
//!
//! A record that cannot be mapped is rejected with the reason; the others of its batch go on.
//! The parser borrows from the request body and never builds a `serde_json::Value`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

use oddity_config::IngestConfig;
use oddity_model::Event;
use oddity_model::time::parse_iso8601;

/// Largest timestamp accepted (9999-12-31T23:59:59.999Z).
const MAX_TS_MS: i64 = 253_402_300_799_999;

/// A record that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// 1-based line (NDJSON) or item (JSON array) number.
    pub line: usize,
    pub reason: String,
}

/// The outcome of parsing a batch.
#[derive(Debug, Default)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub rejected: Vec<Rejection>,
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON object or a JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// A problem with the batch as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// More records than `ingest.max_batch_events`.
    TooMany { count: usize, limit: usize },
    /// The body is not JSON at all.
    Malformed(String),
}

/// Parses a request body into events, stamping them with `now_ms` as arrival time.
pub fn parse_batch(
    body: &[u8],
    framing: Framing,
    limits: &IngestConfig,
    now_ms: i64,
) -> Result<Parsed, BatchError> {
    let mut parsed = Parsed::default();
    match framing {
        Framing::Ndjson => {
            let lines = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .count();
            if lines > limits.max_batch_events {
                return Err(BatchError::TooMany {
                    count: lines,
                    limit: limits.max_batch_events,
                });
            }
            parsed.events.reserve(lines);
            for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                match std::str::from_utf8(line)
                    .map_err(|_| "line is not valid UTF-8".to_owned())
                    .and_then(|text| {
                        serde_json::from_str::<Incoming<'_>>(text)
                            .map_err(|e| format!("invalid JSON: {e}"))
                            .and_then(|inc| inc.into_event(text, limits, now_ms))
                    }) {
                    Ok(event) => parsed.events.push(event),
                    Err(reason) => parsed.rejected.push(Rejection {
                        line: i + 1,
                        reason,
                    }),
                }
            }
        }
        Framing::Json => {
            let text = std::str::from_utf8(body)
                .map_err(|_| BatchError::Malformed("body is not valid UTF-8".into()))?;
            let trimmed = text.trim_start();
            let items: Vec<&RawValue> = if trimmed.starts_with('[') {
                serde_json::from_str(text)
                    .map_err(|e| BatchError::Malformed(format!("invalid JSON array: {e}")))?
            } else if trimmed.is_empty() {
                return Err(BatchError::Malformed(
                    "empty body: send a JSON object, a JSON array or NDJSON".into(),
                ));
            } else {
                vec![serde_json::from_str(text).map_err(|e| {
                    BatchError::Malformed(format!(
                        "invalid JSON: {e} (for one event per line, send Content-Type: application/x-ndjson)"
                    ))
                })?]
            };
            if items.len() > limits.max_batch_events {
                return Err(BatchError::TooMany {
                    count: items.len(),
                    limit: limits.max_batch_events,
                });
            }
            parsed.events.reserve(items.len());
            for (i, raw) in items.into_iter().enumerate() {
                let text = raw.get();
                match serde_json::from_str::<Incoming<'_>>(text)
                    .map_err(|e| format!("invalid event: {e}"))
                    .and_then(|inc| inc.into_event(text, limits, now_ms))
                {
                    Ok(event) => parsed.events.push(event),
                    Err(reason) => parsed.rejected.push(Rejection {
                        line: i + 1,
                        reason,
                    }),
                }
            }
        }
    }
    Ok(parsed)
}

/// The recognised keys of a record, borrowed from the body.
#[derive(Debug, Default)]
struct Incoming<'a> {
    entity: Option<(&'static str, &'a RawValue)>,
    event_type: Option<(&'static str, &'a RawValue)>,
    ts: Option<(&'static str, &'a RawValue)>,
    value: Option<&'a RawValue>,
    fields: Option<&'a RawValue>,
    attrs: Option<(&'static str, &'a RawValue)>,
    /// The record has keys beyond the recognised ones.
    has_other: bool,
}

/// Keys in order of precedence within each group (lower rank wins).
#[derive(Debug, Clone, Copy)]
enum Key {
    Entity(&'static str, u8),
    Type(&'static str, u8),
    Ts(&'static str, u8),
    Value,
    Fields,
    Attrs(&'static str, u8),
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "entity" => Key::Entity("entity", 0),
                    "user_id" => Key::Entity("user_id", 1),
                    "role_id" => Key::Entity("role_id", 2),
                    "source" => Key::Entity("source", 3),
                    "series_id" => Key::Entity("series_id", 4),
                    "type" => Key::Type("type", 0),
                    "event_type" => Key::Type("event_type", 1),
                    "metric" => Key::Type("metric", 2),
                    "ts" => Key::Ts("ts", 0),
                    "timestamp" => Key::Ts("timestamp", 1),
                    "event_timestamp" => Key::Ts("event_timestamp", 2),
                    "value" => Key::Value,
                    "fields" => Key::Fields,
                    "attrs" => Key::Attrs("attrs", 0),
                    "payload" => Key::Attrs("payload", 1),
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Incoming<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IncomingVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for IncomingVisitor<'a> {
            type Value = Incoming<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Incoming<'a>, M::Error> {
                let mut inc = Incoming::default();
                // Rank of the key currently held in each group.
                let mut ranks = [u8::MAX; 4];
                fn keep<'a>(
                    slot: &mut Option<(&'static str, &'a RawValue)>,
                    rank: &mut u8,
                    name: &'static str,
                    r: u8,
                    v: &'a RawValue,
                ) {
                    if r <= *rank {
                        *slot = Some((name, v));
                        *rank = r;
                    }
                }
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                            inc.has_other = true;
                        }
                        Key::Value => inc.value = Some(map.next_value()?),
                        Key::Fields => inc.fields = Some(map.next_value()?),
                        Key::Entity(n, r) => {
                            keep(&mut inc.entity, &mut ranks[0], n, r, map.next_value()?)
                        }
                        Key::Type(n, r) => {
                            keep(&mut inc.event_type, &mut ranks[1], n, r, map.next_value()?)
                        }
                        Key::Ts(n, r) => keep(&mut inc.ts, &mut ranks[2], n, r, map.next_value()?),
                        Key::Attrs(n, r) => {
                            keep(&mut inc.attrs, &mut ranks[3], n, r, map.next_value()?)
                        }
                    }
                }
                Ok(inc)
            }
        }
        d.deserialize_map(IncomingVisitor(std::marker::PhantomData))
    }
}

impl Incoming<'_> {
    /// Maps the record (whose full text is `record`) onto an event, or says why not.
    fn into_event(self, record: &str, limits: &IngestConfig, now_ms: i64) -> Result<Event, String> {
        let (name, raw) = self
            .entity
            .ok_or("missing entity: set `entity` (or `user_id`, `role_id`, `source`)")?;
        let entity = identifier(raw).map_err(|e| format!("{name}: {e}"))?;
        if entity.len() > limits.max_entity_bytes {
            return Err(format!(
                "{name}: {} bytes exceeds ingest.max_entity_bytes ({})",
                entity.len(),
                limits.max_entity_bytes
            ));
        }
        let (name, raw) = self
            .event_type
            .ok_or("missing type: set `type` (or `event_type`, `metric`)")?;
        let event_type = identifier(raw).map_err(|e| format!("{name}: {e}"))?;
        if event_type.len() > limits.max_type_bytes {
            return Err(format!(
                "{name}: {} bytes exceeds ingest.max_type_bytes ({})",
                event_type.len(),
                limits.max_type_bytes
            ));
        }
        let ts = match self.ts {
            None => now_ms,
            Some((name, raw)) => timestamp(raw).map_err(|e| format!("{name}: {e}"))?,
        };
        let mut event = Event::new(entity, event_type, ts);
        event.ingested_at = now_ms;
        if let Some(raw) = self.value {
            event.value = serde_json::from_str::<Option<f64>>(raw.get()).map_err(|_| {
                format!(
                    "value: expected a number or null, got {}",
                    shorten(raw.get())
                )
            })?;
        }
        if let Some(raw) = self.fields {
            let fields: std::collections::BTreeMap<String, f64> = serde_json::from_str(raw.get())
                .map_err(|_| {
                format!(
                    "fields: expected an object of numbers, got {}",
                    shorten(raw.get())
                )
            })?;
            if fields.len() > limits.max_fields {
                return Err(format!(
                    "fields: {} entries exceeds ingest.max_fields ({})",
                    fields.len(),
                    limits.max_fields
                ));
            }
            event.fields = fields;
        }
        let attrs = match self.attrs {
            Some((name, raw)) => {
                let text = raw.get();
                if text == "null" {
                    None
                } else if text.starts_with('{') {
                    Some((name, text))
                } else {
                    return Err(format!("{name}: expected an object, got {}", shorten(text)));
                }
            }
            None if self.has_other => Some(("record", record)),
            None => None,
        };
        if let Some((name, text)) = attrs {
            if text.len() as u64 > limits.max_attrs_bytes.0 {
                return Err(format!(
                    "{name}: {} bytes exceeds ingest.max_attrs_bytes ({})",
                    text.len(),
                    limits.max_attrs_bytes
                ));
            }
            event.attrs = Some(text.to_owned());
        }
        Ok(event)
    }
}

/// An entity or type: a non-empty string, or an integer (seed 002's `user_id`).
fn identifier(raw: &RawValue) -> Result<String, String> {
    let text = raw.get();
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        return Ok(s);
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n.to_string());
    }
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n.to_string());
    }
    Err(format!(
        "expected a string or an integer, got {}",
        shorten(text)
    ))
}

/// A timestamp: epoch ms or seconds (number or numeric string) or ISO-8601.
pub fn timestamp(raw: &RawValue) -> Result<i64, String> {
    let text = raw.get();
    let bad = || {
        format!(
            "expected epoch milliseconds, epoch seconds or an ISO-8601 datetime, got {}",
            shorten(text)
        )
    };
    let ms = if let Some(inner) = text.strip_prefix('"') {
        let s: String = serde_json::from_str(text).map_err(|_| bad())?;
        let _ = inner;
        parse_time_text(&s).ok_or_else(bad)?
    } else {
        let n: f64 = text.parse().map_err(|_| bad())?;
        epoch_number(n).ok_or_else(bad)?
    };
    if ms.abs() > MAX_TS_MS {
        return Err(format!(
            "{} is out of range (years 0 to 9999)",
            shorten(text)
        ));
    }
    Ok(ms)
}

/// Parses a timestamp written as text: a number (epoch seconds or ms) or ISO-8601.
pub fn parse_time_text(s: &str) -> Option<i64> {
    let t = s.trim();
    if !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return t.parse::<f64>().ok().and_then(epoch_number);
    }
    parse_iso8601(t)
}

/// Epoch seconds below 10¹¹ (before 1973 in ms, year 5138 in s), milliseconds above.
fn epoch_number(n: f64) -> Option<i64> {
    if !n.is_finite() {
        return None;
    }
    let ms = if n.abs() < 1e11 { n * 1000.0 } else { n };
    if ms.abs() > MAX_TS_MS as f64 {
        return None;
    }
    Some(ms.round() as i64)
}

fn shorten(text: &str) -> String {
    if text.len() <= 60 {
        return text.to_owned();
    }
    let mut end = 57;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use oddity_config::Config;

    use super::*;

    fn limits() -> IngestConfig {
        Config::default_config().unwrap().ingest
    }

    fn one(text: &str) -> Result<Event, String> {
        let p = parse_batch(text.as_bytes(), Framing::Json, &limits(), 42)
            .map_err(|e| format!("{e:?}"))?;
        match (p.events.into_iter().next(), p.rejected.into_iter().next()) {
            (Some(e), None) => Ok(e),
            (None, Some(r)) => Err(r.reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_every_reference_shape() {
        let s = one(r#"{"user_id":123,"type":"login","timestamp":1640995200000,"payload":{"success":true}}"#).unwrap();
        assert_eq!(
            (s.entity.as_str(), s.event_type.as_str(), s.ts),
            ("123", "login", 1_640_995_200_000)
        );
        assert_eq!(s.attrs.as_deref(), Some(r#"{"success":true}"#));
        assert_eq!(s.ingested_at, 42);

        let audit = r#"{"id":"123452","event_id":"52572","role_id":"role123","event_type":"CreateInstance","event_timestamp":"1717970237","affected_assets":["a"]}"#;
        let a = one(audit).unwrap();
        assert_eq!(
            (a.entity.as_str(), a.event_type.as_str(), a.ts),
            ("role123", "CreateInstance", 1_717_970_237_000)
        );
        assert_eq!(a.attrs.as_deref(), Some(audit));

        let iso =
            one(r#"{"role_id":"r","event_type":"X","event_timestamp":"2023-06-07T12:34:56Z"}"#)
                .unwrap();
        assert_eq!(iso.ts, 1_686_141_296_000);

        let m = one(r#"{"source":"sensor_01","value":48.2,"metric":"cpu_usage","timestamp":"2024-01-01T12:00:00","is_anomaly":false}"#).unwrap();
        assert_eq!(
            (m.entity.as_str(), m.event_type.as_str(), m.value),
            ("sensor_01", "cpu_usage", Some(48.2))
        );

        let native =
            one(r#"{"entity":"e","type":"t","ts":5,"value":null,"fields":{"cpu":0.5}}"#).unwrap();
        assert_eq!(
            (native.ts, native.value, native.fields["cpu"], native.attrs),
            (5000, None, 0.5, None)
        );
        assert_eq!(
            one(r#"{"entity":"e","type":"t"}"#).unwrap().ts,
            42,
            "absent ts is arrival time"
        );
    }

    #[test]
    fn rejects_with_reasons() {
        let cases = [
            (r#"{"type":"t"}"#, "missing entity"),
            (r#"{"entity":"e"}"#, "missing type"),
            (r#"{"entity":"","type":"t"}"#, "entity: must not be empty"),
            (
                r#"{"entity":1.5,"type":"t"}"#,
                "entity: expected a string or an integer",
            ),
            (r#"{"entity":"e","type":["t"]}"#, "type: expected"),
            (
                r#"{"entity":"e","type":"t","ts":"yesterday"}"#,
                "ts: expected epoch",
            ),
            (
                r#"{"entity":"e","type":"t","ts":1e30}"#,
                "ts: expected epoch",
            ),
            (
                r#"{"entity":"e","type":"t","value":"high"}"#,
                "value: expected a number",
            ),
            (
                r#"{"entity":"e","type":"t","fields":{"a":"b"}}"#,
                "fields: expected an object of numbers",
            ),
            (
                r#"{"entity":"e","type":"t","attrs":[1]}"#,
                "attrs: expected an object",
            ),
            (r#"["not an object"]"#, "invalid event"),
        ];
        for (input, want) in cases {
            let got = one(input).unwrap_err();
            assert!(got.contains(want), "{input}: {got}");
        }
        let long = format!(r#"{{"entity":"{}","type":"t"}}"#, "x".repeat(300));
        assert!(
            one(&long)
                .unwrap_err()
                .contains("ingest.max_entity_bytes (256)")
        );
    }

    #[test]
    fn ndjson_keeps_good_lines_and_numbers_bad_ones() {
        let body = "{\"entity\":\"a\",\"type\":\"t\"}\n\nnot json\n{\"entity\":\"b\",\"type\":\"t\"}\n{\"entity\":\"c\"}\n";
        let p = parse_batch(body.as_bytes(), Framing::Ndjson, &limits(), 0).unwrap();
        assert_eq!(
            p.events
                .iter()
                .map(|e| e.entity.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            p.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
            [3, 5]
        );
        assert!(p.rejected[0].reason.starts_with("invalid JSON"));
        let empty = parse_batch(b"", Framing::Ndjson, &limits(), 0).unwrap();
        assert!(empty.events.is_empty() && empty.rejected.is_empty());
    }

    #[test]
    fn batch_limits_and_malformed_bodies() {
        let mut l = limits();
        l.max_batch_events = 2;
        let body = "{}\n{}\n{}\n";
        assert_eq!(
            parse_batch(body.as_bytes(), Framing::Ndjson, &l, 0).unwrap_err(),
            BatchError::TooMany { count: 3, limit: 2 }
        );
        assert!(matches!(
            parse_batch(b"[{},{},{}]", Framing::Json, &l, 0),
            Err(BatchError::TooMany { .. })
        ));
        assert!(matches!(
            parse_batch(b"{oops", Framing::Json, &l, 0),
            Err(BatchError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(b"", Framing::Json, &l, 0),
            Err(BatchError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(&[0xff, 0xfe], Framing::Json, &l, 0),
            Err(BatchError::Malformed(_))
        ));
    }
}
