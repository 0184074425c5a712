//! Field paths and their lookup in an event.
//!
//! A path names what a rule looks at:
//! - `value`, `entity`, `type`, `ts`: the event's own fields;
//! - `fields.NAME`: one of the event's named numbers;
//! - anything else (`amount`, `geo.country`, or explicitly `attrs.amount`): a dotted path into the
//!   event's JSON `attrs` (seed 002's `payload`).
//!
//! Lookups into `attrs` scan the JSON text for the key and decode only the value found: no
//! `serde_json::Value` tree is built and nothing is allocated (but a string value containing
//! escapes). This is the detection hot path: every rule with a `where` condition or a field reads
//! attrs, once per event and rule.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use oddity_model::Event;

/// An event's `attrs` text, looked into without being parsed as a whole.
#[derive(Debug)]
pub struct Attrs<'a> {
    text: Option<&'a str>,
}

impl<'a> Attrs<'a> {
    /// Wraps the event's attrs text.
    pub fn new(event: &'a Event) -> Self {
        Attrs {
            text: event.attrs.as_deref(),
        }
    }

    /// False only when `key` certainly is not a key of the attrs: the name appears nowhere and no
    /// escape sequence could spell it. A substring test, cheaper than a scan.
    pub fn may_contain(&self, key: &str) -> bool {
        self.text
            .is_some_and(|t| t.contains(key) || t.contains('\\'))
    }

    /// The raw JSON of the value at `path` (object keys, or indexes into arrays).
    pub fn raw(&self, path: &[String]) -> Option<&'a RawValue> {
        let first = path.first()?;
        if !self.may_contain(first) {
            return None;
        }
        let mut json: &'a str = self.text?.trim_start();
        let mut found = None;
        for part in path {
            let raw = child(json, part)?;
            json = raw.get();
            found = Some(raw);
        }
        found
    }
}

/// The value of `key` in the JSON object `json` (or of index `key` in the JSON array `json`).
fn child<'a>(json: &'a str, key: &str) -> Option<&'a RawValue> {
    let mut de = serde_json::Deserializer::from_str(json);
    if json.starts_with('[') {
        let index: usize = key.parse().ok()?;
        return Nth(index).deserialize(&mut de).ok().flatten();
    }
    if !json.starts_with('{') {
        return None;
    }
    Find(key).deserialize(&mut de).ok().flatten()
}

/// Finds one key of an object, skipping every other value without decoding it.
struct Find<'k>(&'k str);

impl<'de, 'k> DeserializeSeed<'de> for Find<'k> {
    type Value = Option<&'de RawValue>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'k> Visitor<'de> for Find<'k> {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut found = None;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.0))? {
            if is_key && found.is_none() {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Compares a key with the one sought, without allocating for it.
struct KeyIs<'k>(&'k str);

impl<'de, 'k> DeserializeSeed<'de> for KeyIs<'k> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'k> Visitor<'de> for KeyIs<'k> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// Finds the nth element of an array.
struct Nth(usize);

impl<'de> DeserializeSeed<'de> for Nth {
    type Value = Option<&'de RawValue>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Nth {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut found = None;
        let mut i = 0;
        while found.is_none() {
            if i == self.0 {
                found = seq.next_element::<&'de RawValue>()?;
                if found.is_none() {
                    return Ok(None);
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(None);
            }
            i += 1;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(found)
    }
}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    Value,
    Entity,
    Type,
    Ts,
    /// `fields.NAME`.
    Field(String),
    /// A dotted path into `attrs`.
    Attr(Vec<String>),
}

/// A path that cannot name a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid field path `{0}`: use value, entity, type, ts, fields.NAME or a dotted attrs path like amount or geo.country"
)]
pub struct InvalidPath(pub String);

impl FromStr for FieldPath {
    type Err = InvalidPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPath(s.to_owned());
        let parts: Vec<&str> = s.split('.').collect();
        if s.is_empty()
            || parts
                .iter()
                .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        {
            return Err(bad());
        }
        Ok(match parts.as_slice() {
            ["value"] => FieldPath::Value,
            ["entity"] => FieldPath::Entity,
            ["type"] => FieldPath::Type,
            ["ts"] => FieldPath::Ts,
            ["fields", name] => FieldPath::Field((*name).to_owned()),
            ["fields", _, _, ..] => return Err(bad()),
            ["attrs"] | ["payload"] => return Err(bad()),
            ["attrs" | "payload", rest @ ..] => {
                FieldPath::Attr(rest.iter().map(|p| (*p).to_owned()).collect())
            }
            all => FieldPath::Attr(all.iter().map(|p| (*p).to_owned()).collect()),
        })
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Value => f.write_str("value"),
            FieldPath::Entity => f.write_str("entity"),
            FieldPath::Type => f.write_str("type"),
            FieldPath::Ts => f.write_str("ts"),
            FieldPath::Field(n) => write!(f, "fields.{n}"),
            FieldPath::Attr(p) => f.write_str(&p.join(".")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for FieldPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The value found at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Num(f64),
    Bool(bool),
    /// A string (borrowed from the event unless it had escapes).
    Str(Cow<'a, str>),
    /// A JSON array and its number of elements, for `count` rules.
    Array(usize),
    /// A JSON object (only equality with nothing matches it).
    Object,
}

impl<'a> Scalar<'a> {
    /// The value as a number: numbers as they are, numeric strings parsed, booleans as 0/1.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Num(n) => Some(*n),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Scalar::Array(_) | Scalar::Object => None,
        }
    }

    /// The value as a string key (for novelty): strings as they are, others in JSON form.
    pub fn to_key(&self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s.clone().into_owned()),
            Scalar::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some((*n as i64).to_string()),
            Scalar::Num(n) => Some(n.to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Array(_) | Scalar::Object => None,
        }
    }

    /// Decodes a raw JSON value (null is absent).
    fn from_raw(raw: &'a RawValue) -> Option<Self> {
        let text = raw.get();
        match text.as_bytes().first()? {
            b'n' => None,
            b't' => Some(Scalar::Bool(true)),
            b'f' => Some(Scalar::Bool(false)),
            b'"' if !text.contains('\\') => {
                Some(Scalar::Str(Cow::Borrowed(&text[1..text.len() - 1])))
            }
            b'"' => serde_json::from_str::<String>(text)
                .ok()
                .map(|s| Scalar::Str(Cow::Owned(s))),
            b'[' => serde_json::from_str::<Vec<IgnoredAny>>(text)
                .ok()
                .map(|v| Scalar::Array(v.len())),
            b'{' => Some(Scalar::Object),
            _ => text.parse::<f64>().ok().map(Scalar::Num),
        }
    }
}

impl FieldPath {
    /// Looks the path up in an event. `None` when absent or null.
    pub fn lookup<'a>(&self, event: &'a Event, attrs: &'a Attrs<'a>) -> Option<Scalar<'a>> {
        match self {
            FieldPath::Value => event.value.map(Scalar::Num),
            FieldPath::Entity => Some(Scalar::Str(Cow::Borrowed(&event.entity))),
            FieldPath::Type => Some(Scalar::Str(Cow::Borrowed(&event.event_type))),
            FieldPath::Ts => Some(Scalar::Num(event.ts as f64)),
            FieldPath::Field(name) => event.fields.get(name).copied().map(Scalar::Num),
            FieldPath::Attr(path) => attrs.raw(path).and_then(Scalar::from_raw),
        }
    }

    /// Looks the path up as JSON (for rendering descriptions: arrays and objects included).
    pub fn json(&self, event: &Event, attrs: &Attrs<'_>) -> Option<Value> {
        match self {
            FieldPath::Attr(path) => attrs
                .raw(path)
                .and_then(|raw| serde_json::from_str(raw.get()).ok()),
            other => match other.lookup(event, attrs)? {
                Scalar::Num(n) => Some(Value::from(n)),
                Scalar::Bool(b) => Some(Value::from(b)),
                Scalar::Str(s) => Some(Value::from(s.into_owned())),
                Scalar::Array(_) | Scalar::Object => None,
            },
        }
    }

    /// Looks the path up as a number.
    pub fn number(&self, event: &Event, attrs: &Attrs<'_>) -> Option<f64> {
        self.lookup(event, attrs).and_then(|s| s.as_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        let mut e = Event::new("42", "purchase", 1000);
        e.value = Some(3.0);
        e.fields.insert("cpu".into(), 0.5);
        e.attrs = Some(
            r#"{"amount":"1500.5","geo":{"country":"FR"},"ok":true,"assets":["a","b"],"n":null}"#
                .into(),
        );
        e
    }

    #[test]
    fn parses_paths() {
        let cases: &[(&str, Result<FieldPath, ()>)] = &[
            ("value", Ok(FieldPath::Value)),
            ("fields.cpu", Ok(FieldPath::Field("cpu".into()))),
            ("amount", Ok(FieldPath::Attr(vec!["amount".into()]))),
            ("attrs.value", Ok(FieldPath::Attr(vec!["value".into()]))),
            (
                "payload.geo.country",
                Ok(FieldPath::Attr(vec!["geo".into(), "country".into()])),
            ),
            ("", Err(())),
            ("a..b", Err(())),
            ("fields", Ok(FieldPath::Attr(vec!["fields".into()]))),
            ("fields.a.b", Err(())),
            ("attrs", Err(())),
            ("has space", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<FieldPath>().map_err(|_| ()), *want, "{input}");
        }
    }

    #[test]
    fn looks_up_values() {
        let e = event();
        let attrs = Attrs::new(&e);
        let get = |p: &str| p.parse::<FieldPath>().unwrap().lookup(&e, &attrs);
        assert_eq!(get("value"), Some(Scalar::Num(3.0)));
        assert_eq!(get("fields.cpu"), Some(Scalar::Num(0.5)));
        assert_eq!(get("fields.mem"), None);
        assert_eq!(get("amount").and_then(|s| s.as_f64()), Some(1500.5));
        assert_eq!(get("geo.country"), Some(Scalar::Str("FR".into())));
        assert_eq!(get("ok"), Some(Scalar::Bool(true)));
        assert_eq!(get("assets.1"), Some(Scalar::Str("b".into())));
        assert_eq!(get("assets.2"), None);
        assert_eq!(get("assets"), Some(Scalar::Array(2)));
        assert_eq!(get("geo"), Some(Scalar::Object));
        assert_eq!(get("n"), None);
        assert_eq!(get("missing.deep"), None);
        assert_eq!(get("type"), Some(Scalar::Str("purchase".into())));
        assert_eq!(
            "assets".parse::<FieldPath>().unwrap().json(&e, &attrs),
            Some(serde_json::json!(["a", "b"]))
        );
    }

    #[test]
    fn skips_the_parse_when_a_key_cannot_be_present() {
        let mut e = Event::new("1", "t", 0);
        e.attrs = Some(r#"{"a":1}"#.into());
        let attrs = Attrs::new(&e);
        assert!(!attrs.may_contain("role_id"));
        assert_eq!(
            "role_id".parse::<FieldPath>().unwrap().lookup(&e, &attrs),
            None
        );
        // An escaped key could spell anything: parse then.
        e.attrs = Some(r#"{"\u0072ole_id":"r"}"#.into());
        let attrs = Attrs::new(&e);
        assert_eq!(
            "role_id".parse::<FieldPath>().unwrap().lookup(&e, &attrs),
            Some(Scalar::Str("r".into()))
        );
        // Escaped string values are decoded.
        e.attrs = Some(r#"{"q":"say \"hi\"","n":-1.5e2}"#.into());
        let attrs = Attrs::new(&e);
        assert_eq!(
            "q".parse::<FieldPath>().unwrap().lookup(&e, &attrs),
            Some(Scalar::Str("say \"hi\"".into()))
        );
        assert_eq!(
            "n".parse::<FieldPath>().unwrap().number(&e, &attrs),
            Some(-150.0)
        );
    }

    #[test]
    fn tolerates_missing_or_broken_attrs() {
        let mut e = Event::new("1", "t", 0);
        e.attrs = Some("not json".into());
        let attrs = Attrs::new(&e);
        assert_eq!(
            "amount".parse::<FieldPath>().unwrap().lookup(&e, &attrs),
            None
        );
    }
}
