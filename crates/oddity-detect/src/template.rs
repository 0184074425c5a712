//! Description templates: `User {entity} made a high-value purchase of ${observed:.2}`.
//!
//! A placeholder is `{name}` or `{name:.N}` (N decimals for numbers). `{{` and `}}` are literal
//! braces. Templates are parsed when the configuration is validated; the caller supplies the
//! values when rendering (see the pipeline for the names it provides). A placeholder with no
//! value renders as itself, so a typo shows in the output instead of vanishing.

use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var {
        name: String,
        decimals: Option<usize>,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid template `{input}`: {reason}")]
pub struct InvalidTemplate {
    pub input: String,
    pub reason: String,
}

impl FromStr for Template {
    type Err = InvalidTemplate;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| InvalidTemplate {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(err("unmatched `}` (write `}}` for a literal brace)")),
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => inner.push(c),
                            None => return Err(err("unclosed `{`")),
                        }
                    }
                    let (name, spec) = match inner.split_once(':') {
                        Some((n, spec)) => (n.trim(), Some(spec.trim())),
                        None => (inner.trim(), None),
                    };
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    {
                        return Err(err("a placeholder is {name} or {name:.N}"));
                    }
                    let decimals = match spec {
                        None => None,
                        Some(spec) => Some(
                            spec.strip_prefix('.')
                                .and_then(|d| d.parse::<usize>().ok())
                                .filter(|d| *d <= 12)
                                .ok_or_else(|| {
                                    err("a format is .N with N decimals from 0 to 12")
                                })?,
                        ),
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var {
                        name: name.to_owned(),
                        decimals,
                    });
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            parts,
            source: s.to_owned(),
        })
    }
}

impl Template {
    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template, asking `lookup` for each placeholder's value.
    pub fn render(&self, mut lookup: impl FnMut(&str) -> Option<Value>) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var { name, decimals } => match lookup(name) {
                    None | Some(Value::Null) => {
                        let _ = write!(out, "{{{name}}}");
                    }
                    Some(Value::String(s)) => out.push_str(&s),
                    Some(Value::Number(n)) => match (decimals, n.as_f64()) {
                        (Some(d), Some(f)) => {
                            let _ = write!(out, "{f:.d$}", d = *d);
                        }
                        _ => {
                            let _ = write!(out, "{n}");
                        }
                    },
                    Some(Value::Array(items)) => {
                        let shown: Vec<String> = items
                            .iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            .collect();
                        out.push_str(&shown.join(", "));
                    }
                    Some(other) => {
                        let _ = write!(out, "{other}");
                    }
                },
            }
        }
        out
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders() {
        let t: Template = "User {entity} made a purchase of ${amount:.2} {{x}} {missing} [{known}]"
            .parse()
            .unwrap();
        let out = t.render(|name| match name {
            "entity" => Some(json!("42")),
            "amount" => Some(json!(1500.456)),
            "known" => Some(json!(["US", "EU"])),
            _ => None,
        });
        assert_eq!(
            out,
            "User 42 made a purchase of $1500.46 {x} {missing} [US, EU]"
        );
        let int: Template = "{n} and {n:.1}".parse().unwrap();
        assert_eq!(int.render(|_| Some(json!(11))), "11 and 11.0");
    }

    #[test]
    fn rejects_bad_templates() {
        for (input, reason) in [
            ("open {brace", "unclosed"),
            ("close } brace", "unmatched"),
            ("{}", "placeholder"),
            ("{a b}", "placeholder"),
            ("{x:2}", "format"),
            ("{x:.99}", "format"),
        ] {
            let e = input.parse::<Template>().unwrap_err();
            assert!(e.reason.contains(reason), "{input}: {e}");
        }
    }
}
