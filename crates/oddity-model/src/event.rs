//! The internal event record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Number of partitions an [`EventId`] can address.
pub const MAX_PARTITIONS: u32 = 1 << EventId::PARTITION_BITS;

/// Position of an event in the log, packed as `offset << 10 | partition`.
///
/// Packing keeps ids unique across partitions, roughly increasing in arrival order (so a store's
/// primary-key index is appended to, not written at random) and small enough for JSON numbers
/// (2^53 / 1024 offsets per partition is ~285 years at 1 M events/s).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EventId(pub u64);

impl EventId {
    const PARTITION_BITS: u32 = 10;

    /// Builds the id of the record at `offset` in `partition`.
    pub fn new(partition: u32, offset: u64) -> Self {
        debug_assert!(partition < MAX_PARTITIONS);
        EventId((offset << Self::PARTITION_BITS) | u64::from(partition))
    }

    /// The partition the event was written to.
    pub fn partition(self) -> u32 {
        (self.0 & (u64::from(MAX_PARTITIONS) - 1)) as u32
    }

    /// The event's offset inside its partition.
    pub fn offset(self) -> u64 {
        self.0 >> Self::PARTITION_BITS
    }
}

/// One event, after ingest normalised it.
///
/// Every reference payload maps onto this shape by a documented adapter (see `oddity-api`'s
/// `ingest` module): seed 002's signals put `user_id` in `entity` and `payload` in `attrs`, seed
/// 000's audit events put `role_id` in `entity` and the whole body in `attrs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log; `EventId(0)` until the event has been read back from it.
    #[serde(default)]
    pub id: EventId,
    /// Who or what the event is about: a user, a role, a sensor, a series id.
    pub entity: String,
    /// What happened: `login`, `purchase`, `CreateInstance`, a metric name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub ts: i64,
    /// The measurement, for time-series detectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Named numbers, for multivariate models.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, f64>,
    /// Free JSON payload, kept as text. Invariant: a JSON object, validated at ingest.
    #[serde(default, with = "raw_json", skip_serializing_if = "Option::is_none")]
    pub attrs: Option<String>,
    /// When the log accepted the event, milliseconds since the Unix epoch.
    #[serde(default)]
    pub ingested_at: i64,
}

impl Event {
    /// A new event with no value, fields or attributes.
    pub fn new(entity: impl Into<String>, event_type: impl Into<String>, ts: i64) -> Self {
        Event {
            id: EventId::default(),
            entity: entity.into(),
            event_type: event_type.into(),
            ts,
            value: None,
            fields: BTreeMap::new(),
            attrs: None,
            ingested_at: 0,
        }
    }

    /// Parses `attrs` into a JSON value (`Null` when absent or, which ingest prevents, invalid).
    pub fn attrs_value(&self) -> serde_json::Value {
        self.attrs
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Serialises an `Option<String>` that holds JSON text as raw JSON rather than as a string.
mod raw_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub(crate) fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(text) => {
                let raw = RawValue::from_string(text.clone()).map_err(serde::ser::Error::custom)?;
                raw.serialize(s)
            }
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let raw: Option<Box<RawValue>> = Option::deserialize(d)?;
        Ok(raw.map(|r| r.get().to_owned()).filter(|t| t != "null"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_packs_partition_and_offset() {
        for (p, o) in [(0, 0), (1, 0), (1023, 5), (7, 1 << 40)] {
            let id = EventId::new(p, o);
            assert_eq!(id.partition(), p);
            assert_eq!(id.offset(), o);
        }
        assert!(EventId::new(0, 2) > EventId::new(1023, 1));
    }

    #[test]
    fn attrs_round_trip_as_raw_json() {
        let mut e = Event::new("u1", "login", 5);
        e.attrs = Some(r#"{"location":"EU","n":[1,2]}"#.into());
        let text = serde_json::to_string(&e).unwrap();
        assert!(
            text.contains(r#""attrs":{"location":"EU","n":[1,2]}"#),
            "{text}"
        );
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.attrs_value()["location"], "EU");
    }
}
