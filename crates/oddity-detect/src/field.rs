//! Field paths and their lookup in an event.
//!
//! A path names what a rule looks at:
//! - `value`, `entity`, `type`, `ts`: the event's own fields;
//! - `fields.NAME`: one of the event's named numbers;
//! - anything else (`amount`, `geo.country`, or explicitly `attrs.amount`): a dotted path into the
//!   event's JSON `attrs` (seed 002's `payload`).

use std::cell::OnceCell;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use oddity_model::Event;

/// An event's `attrs`, parsed on first use and at most once, whichever detector asks first.
#[derive(Debug)]
pub struct Attrs<'a> {
    text: Option<&'a str>,
    parsed: OnceCell<Value>,
}

impl<'a> Attrs<'a> {
    /// Wraps the event's attrs text without parsing it.
    pub fn new(event: &'a Event) -> Self {
        Attrs { text: event.attrs.as_deref(), parsed: OnceCell::new() }
    }

    /// The parsed attrs (`Null` when there are none or they are not JSON).
    pub fn value(&self) -> &Value {
        self.parsed.get_or_init(|| self.text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null))
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
#[error("invalid field path `{0}`: use value, entity, type, ts, fields.NAME or a dotted attrs path like amount or geo.country")]
pub struct InvalidPath(pub String);

impl FromStr for FieldPath {
    type Err = InvalidPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPath(s.to_owned());
        let parts: Vec<&str> = s.split('.').collect();
        if s.is_empty() || parts.iter().any(|p| p.is_empty() || p.contains(char::is_whitespace)) {
            return Err(bad());
        }
        Ok(match parts.as_slice() {
            ["value"] => FieldPath::Value,
            ["entity"] => FieldPath::Entity,
            ["type"] => FieldPath::Type,
            ["ts"] => FieldPath::Ts,
            ["fields", name] => FieldPath::Field((*name).to_owned()),
            ["fields", ..] => return Err(bad()),
            ["attrs"] | ["payload"] => return Err(bad()),
            ["attrs" | "payload", rest @ ..] => FieldPath::Attr(rest.iter().map(|p| (*p).to_owned()).collect()),
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Num(f64),
    Bool(bool),
    Str(&'a str),
    /// A JSON array, for `count` rules.
    Array(&'a [Value]),
    /// A JSON object (only equality with nothing matches it).
    Object,
}

impl<'a> Scalar<'a> {
    /// The value as a number: numbers as they are, numeric strings parsed, booleans as 0/1.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Num(n) => Some(n),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            Scalar::Array(_) | Scalar::Object => None,
        }
    }

    /// The value as a string key (for novelty): strings as they are, others in JSON form.
    pub fn to_key(&self) -> Option<String> {
        match *self {
            Scalar::Str(s) => Some(s.to_owned()),
            Scalar::Num(n) => Some(Value::from(n).to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Array(_) | Scalar::Object => None,
        }
    }

    fn from_json(v: &'a Value) -> Option<Self> {
        match v {
            Value::Null => None,
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            Value::Number(n) => n.as_f64().map(Scalar::Num),
            Value::String(s) => Some(Scalar::Str(s)),
            Value::Array(a) => Some(Scalar::Array(a)),
            Value::Object(_) => Some(Scalar::Object),
        }
    }
}

impl FieldPath {
    /// Looks the path up in an event. `None` when absent or null.
    pub fn lookup<'a>(&self, event: &'a Event, attrs: &'a Attrs<'a>) -> Option<Scalar<'a>> {
        match self {
            FieldPath::Value => event.value.map(Scalar::Num),
            FieldPath::Entity => Some(Scalar::Str(&event.entity)),
            FieldPath::Type => Some(Scalar::Str(&event.event_type)),
            FieldPath::Ts => Some(Scalar::Num(event.ts as f64)),
            FieldPath::Field(name) => event.fields.get(name).copied().map(Scalar::Num),
            FieldPath::Attr(path) => {
                let mut v = attrs.value();
                for part in path {
                    v = match v {
                        Value::Object(map) => map.get(part)?,
                        Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                Scalar::from_json(v)
            }
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
        e.attrs = Some(r#"{"amount":"1500.5","geo":{"country":"FR"},"ok":true,"assets":["a","b"],"n":null}"#.into());
        e
    }

    #[test]
    fn parses_paths() {
        let cases: &[(&str, Result<FieldPath, ()>)] = &[
            ("value", Ok(FieldPath::Value)),
            ("fields.cpu", Ok(FieldPath::Field("cpu".into()))),
            ("amount", Ok(FieldPath::Attr(vec!["amount".into()]))),
            ("attrs.value", Ok(FieldPath::Attr(vec!["value".into()]))),
            ("payload.geo.country", Ok(FieldPath::Attr(vec!["geo".into(), "country".into()]))),
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
        assert_eq!(get("geo.country"), Some(Scalar::Str("FR")));
        assert_eq!(get("ok"), Some(Scalar::Bool(true)));
        assert_eq!(get("assets.1"), Some(Scalar::Str("b")));
        assert!(matches!(get("assets"), Some(Scalar::Array(a)) if a.len() == 2));
        assert_eq!(get("n"), None);
        assert_eq!(get("missing.deep"), None);
        assert_eq!(get("type"), Some(Scalar::Str("purchase")));
    }

    #[test]
    fn tolerates_missing_or_broken_attrs() {
        let mut e = Event::new("1", "t", 0);
        e.attrs = Some("not json".into());
        let attrs = Attrs::new(&e);
        assert_eq!("amount".parse::<FieldPath>().unwrap().lookup(&e, &attrs), None);
    }
}
