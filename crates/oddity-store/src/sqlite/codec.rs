//! Rows to model types and back.
//!
//! Non-finite numbers: SQLite turns a bound NaN into NULL and JSON has no NaN or infinity at all,
//! so the store normalises them on the way in, identically for every column:
//! - `Event::value`: NaN and ±infinity are stored as NULL and read back as `None` (a REAL could
//!   hold infinity, but the anomaly's event JSON could not, and one rule for both is simpler).
//! - `Event::fields`: non-finite entries are dropped (a JSON `null` would not read back as f64).
//! - `Anomaly::score`: NaN is stored as NULL and reads back as NaN.
//!
//! `attrs` is raw JSON text: it is stored as is and read back byte for byte.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rusqlite::Row;

use oddity_model::{Anomaly, Event, EventId, Severity};

use crate::{StoreError, StoredAnomaly};

/// `value` as stored: a non-finite number becomes NULL.
pub(super) fn value_column(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// `fields` as stored: NULL when empty, else a JSON object of the finite entries.
pub(super) fn fields_column(fields: &BTreeMap<String, f64>) -> Result<Option<String>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let text = if fields.values().all(|v| v.is_finite()) {
        serde_json::to_string(fields)
    } else {
        let finite: BTreeMap<&String, &f64> =
            fields.iter().filter(|(_, v)| v.is_finite()).collect();
        if finite.is_empty() {
            return Ok(None);
        }
        serde_json::to_string(&finite)
    };
    text.map(Some)
        .map_err(|e| StoreError::Encode(format!("event fields: {e}")))
}

/// The triggering event as stored inside an anomaly, with the same normalisation as the
/// `events` table.
pub(super) fn event_json(event: &Event) -> Result<String, StoreError> {
    let needs_fix = event.value.is_some_and(|v| !v.is_finite())
        || event.fields.values().any(|v| !v.is_finite());
    let event: Cow<'_, Event> = if needs_fix {
        let mut e = event.clone();
        e.value = e.value.filter(|v| v.is_finite());
        e.fields.retain(|_, v| v.is_finite());
        Cow::Owned(e)
    } else {
        Cow::Borrowed(event)
    };
    serde_json::to_string(&*event)
        .map_err(|e| StoreError::Encode(format!("event {}: {e}", event.id.0)))
}

/// Checked conversion of an unsigned id or offset to SQLite's INTEGER.
pub(super) fn to_sql_int(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        StoreError::InvalidBatch(format!(
            "{what} {v} does not fit in a signed 64-bit integer"
        ))
    })
}

fn from_sql_int(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what} {v}")))
}

/// Column list matching [`event_from_row`].
pub(super) const EVENT_COLUMNS: &str = "id, entity, type, ts, value, fields, attrs, ingested_at";

/// Decodes a row selected with [`EVENT_COLUMNS`].
pub(super) fn event_from_row(row: &Row<'_>) -> Result<Event, StoreError> {
    let id: i64 = row.get(0)?;
    let fields = match row.get_ref(5)?.as_str_or_null()? {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("fields of event {id}: {e}")))?,
    };
    Ok(Event {
        id: EventId(from_sql_int(id, "event id")?),
        entity: row.get(1)?,
        event_type: row.get(2)?,
        ts: row.get(3)?,
        value: row.get(4)?,
        fields,
        attrs: row.get(6)?,
        ingested_at: row.get(7)?,
    })
}

/// Column list matching [`anomaly_from_row`].
pub(super) const ANOMALY_COLUMNS: &str = "id, event_id, detector, kind, entity, type, ts, severity, score, description, explanation, event, detected_at";

/// Decodes a row selected with [`ANOMALY_COLUMNS`].
pub(super) fn anomaly_from_row(row: &Row<'_>) -> Result<StoredAnomaly, StoreError> {
    let id: i64 = row.get(0)?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("{what} of anomaly {id}: {e}"))
    };
    let severity: String = row.get(7)?;
    let severity: Severity = severity.parse().map_err(|e| corrupt("severity", &e))?;
    let explanation =
        serde_json::from_str(row.get_ref(10)?.as_str()?).map_err(|e| corrupt("explanation", &e))?;
    let event =
        serde_json::from_str(row.get_ref(11)?.as_str()?).map_err(|e| corrupt("event", &e))?;
    let score: Option<f64> = row.get(8)?;
    Ok(StoredAnomaly {
        id,
        anomaly: Anomaly {
            event_id: EventId(from_sql_int(row.get(1)?, "event id")?),
            detector: row.get(2)?,
            kind: row.get(3)?,
            entity: row.get(4)?,
            event_type: row.get(5)?,
            ts: row.get(6)?,
            severity,
            score: score.unwrap_or(f64::NAN),
            description: row.get(9)?,
            explanation,
            event,
            detected_at: row.get(12)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_are_normalised() {
        assert_eq!(value_column(Some(f64::NAN)), None);
        assert_eq!(value_column(Some(f64::INFINITY)), None);
        assert_eq!(value_column(Some(f64::MAX)), Some(f64::MAX));
        let mut fields = BTreeMap::new();
        fields.insert("a".to_owned(), 1.5);
        fields.insert("b".to_owned(), f64::NAN);
        assert_eq!(
            fields_column(&fields).unwrap().as_deref(),
            Some(r#"{"a":1.5}"#)
        );
        fields.remove("a");
        assert_eq!(fields_column(&fields).unwrap(), None);
        let mut e = Event::new("u", "t", 1);
        e.value = Some(f64::NEG_INFINITY);
        e.fields.insert("x".into(), f64::INFINITY);
        let back: Event = serde_json::from_str(&event_json(&e).unwrap()).unwrap();
        assert_eq!(back.value, None);
        assert!(back.fields.is_empty());
    }

    #[test]
    fn ids_beyond_i64_are_rejected() {
        assert!(matches!(
            to_sql_int(u64::MAX, "id"),
            Err(StoreError::InvalidBatch(_))
        ));
        assert_eq!(to_sql_int(7, "id").unwrap(), 7);
    }
}
