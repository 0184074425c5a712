//! The `where` conditions of rules: `status_code >= 400`, `success == false`, `location != "US"`.
//!
//! A condition is `FIELD OP LITERAL` (or `FIELD exists`), parsed once when the configuration is
//! validated. `OP` is one of `==`, `!=`, `>`, `>=`, `<`, `<=`; `LITERAL` is a number, `true`,
//! `false`, or a string (quoted with `"` or `'`, or a bare word). A list of conditions means all
//! of them. A missing field satisfies nothing but `!=`.

use std::fmt;
use std::str::FromStr;

use oddity_model::Event;

use crate::field::{Attrs, FieldPath, Scalar};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Applies the operator to two numbers.
    pub fn test(self, left: f64, right: f64) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "==" | "=" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            other => {
                return Err(format!(
                    "unknown operator `{other}`: use ==, !=, >, >=, < or <="
                ));
            }
        })
    }
}

impl<'de> serde::Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The right-hand side of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Num(f64),
    Bool(bool),
    Str(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Num(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `FIELD OP LITERAL`.
    Compare {
        field: FieldPath,
        op: Op,
        literal: Literal,
    },
    /// `FIELD exists`: present and not null.
    Exists(FieldPath),
}

/// A condition that does not parse; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid condition `{input}`: {reason}")]
pub struct InvalidCondition {
    pub input: String,
    pub reason: String,
}

impl FromStr for Condition {
    type Err = InvalidCondition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| InvalidCondition {
            input: s.to_owned(),
            reason,
        };
        let trimmed = s.trim();
        let field_end = trimmed
            .find(|c: char| c.is_whitespace() || "=!<>".contains(c))
            .unwrap_or(trimmed.len());
        let (field, rest) = trimmed.split_at(field_end);
        let field: FieldPath = field
            .parse()
            .map_err(|e: crate::field::InvalidPath| err(e.to_string()))?;
        let rest = rest.trim_start();
        if rest == "exists" {
            return Ok(Condition::Exists(field));
        }
        let op_end = rest
            .find(|c: char| !"=!<>".contains(c))
            .unwrap_or(rest.len());
        if op_end == 0 {
            return Err(err(
                "expected an operator (==, !=, >, >=, <, <=) or `exists` after the field".into(),
            ));
        }
        let op: Op = rest[..op_end].parse().map_err(err)?;
        let lit = rest[op_end..].trim();
        if lit.is_empty() {
            return Err(err(format!("expected a value after `{op}`")));
        }
        let literal = parse_literal(lit).map_err(err)?;
        if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && !matches!(literal, Literal::Num(_)) {
            return Err(err(format!(
                "`{op}` compares numbers, but {literal} is not a number"
            )));
        }
        Ok(Condition::Compare { field, op, literal })
    }
}

fn parse_literal(s: &str) -> Result<Literal, String> {
    if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
        return match s[1..].strip_suffix(q) {
            Some(inner) if !inner.contains(q) => Ok(Literal::Str(inner.to_owned())),
            _ => Err(format!("unterminated string {s}")),
        };
    }
    match s {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        _ => {}
    }
    if let Ok(n) = s.parse::<f64>() {
        if n.is_finite() {
            return Ok(Literal::Num(n));
        }
        return Err(format!("{s} is not a finite number"));
    }
    if s.contains(char::is_whitespace) {
        return Err(format!("quote string values that contain spaces: \"{s}\""));
    }
    Ok(Literal::Str(s.to_owned()))
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Compare { field, op, literal } => write!(f, "{field} {op} {literal}"),
            Condition::Exists(field) => write!(f, "{field} exists"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Condition {
    /// Whether the event satisfies the condition.
    pub fn matches(&self, event: &Event, attrs: &Attrs<'_>) -> bool {
        match self {
            Condition::Exists(field) => field.lookup(event, attrs).is_some(),
            Condition::Compare { field, op, literal } => {
                let found = field.lookup(event, attrs);
                let Some(found) = found else {
                    return *op == Op::Ne;
                };
                match literal {
                    Literal::Num(n) => found.as_f64().is_some_and(|v| op.test(v, *n)),
                    Literal::Bool(b) => {
                        let eq = matches!(found, Scalar::Bool(v) if v == *b)
                            || matches!(&found, Scalar::Str(s) if s.eq_ignore_ascii_case(if *b { "true" } else { "false" }));
                        if *op == Op::Eq { eq } else { !eq }
                    }
                    Literal::Str(s) => {
                        let eq = found.to_key().is_some_and(|k| k == *s);
                        if *op == Op::Eq { eq } else { !eq }
                    }
                }
            }
        }
    }
}

/// Whether the event satisfies every condition (true for an empty list).
pub fn all_match(conditions: &[Condition], event: &Event, attrs: &Attrs<'_>) -> bool {
    conditions.iter().all(|c| c.matches(event, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let ok = [
            ("status_code >= 400", "status_code >= 400"),
            ("success==false", "success == false"),
            ("location != 'US'", "location != \"US\""),
            ("location == EU", "location == \"EU\""),
            ("geo.city == \"New York\"", "geo.city == \"New York\""),
            ("fields.cpu < -0.5", "fields.cpu < -0.5"),
            ("amount exists", "amount exists"),
        ];
        for (input, shown) in ok {
            let c: Condition = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(c.to_string(), shown);
        }
        let bad = [
            ("", "invalid field path"),
            ("status_code", "expected an operator"),
            ("status_code >=", "expected a value"),
            ("status_code => 4", "unknown operator"),
            ("location > EU", "compares numbers"),
            ("x == \"open", "unterminated"),
            ("x == New York", "quote string"),
            ("x == inf", "finite"),
        ];
        for (input, reason) in bad {
            let e = input.parse::<Condition>().unwrap_err();
            assert!(e.to_string().contains(reason), "{input}: {e}");
        }
    }

    #[test]
    fn matches_events() {
        let mut e = Event::new("1", "api_call", 0);
        e.attrs = Some(
            r#"{"status_code":500,"success":false,"location":"EU","code":"404","flag":"true"}"#
                .into(),
        );
        let attrs = Attrs::new(&e);
        let cases = [
            ("status_code >= 400", true),
            ("status_code < 400", false),
            ("success == false", true),
            ("success != false", false),
            ("location == EU", true),
            ("location != EU", false),
            ("code >= 400", true),
            ("flag == true", true),
            ("missing == 1", false),
            ("missing != 1", true),
            ("missing exists", false),
            ("location exists", true),
            ("location > 3", false),
            ("type == api_call", true),
        ];
        for (input, want) in cases {
            let c: Condition = input.parse().unwrap();
            assert_eq!(c.matches(&e, &attrs), want, "{input}");
        }
        assert!(all_match(&[], &e, &attrs));
    }
}
