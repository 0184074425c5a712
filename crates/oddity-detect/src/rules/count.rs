//! `count`: the number of items of a field passes a limit (seed 000's affected assets).
//!
//! The count of an array is its length; a number is taken as a count itself; a string counts as
//! one item. Absent or null fields count nothing and never fire.

use serde::{Deserialize, Serialize};

use oddity_model::{Expected, Explanation};

use crate::field::{FieldPath, Scalar};
use crate::rules::Limit;
use crate::{Detector, DetectorKind, Input, Verdict};

/// Parameters of a count rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountConfig {
    /// The field counted (`affected_assets`).
    pub field: FieldPath,
    /// Fire when the count is strictly greater than this (set this or `at_least`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_than: Option<u64>,
    /// Fire when the count is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
}

impl CountConfig {
    /// The count limit.
    pub fn limit(&self) -> Limit {
        Limit {
            more_than: self.more_than,
            at_least: self.at_least,
        }
    }

    /// Every problem with these parameters.
    pub fn validate(&self) -> Vec<String> {
        self.limit().validate("count")
    }

    /// A detector instance.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(Count {
            config: self.clone(),
        })
    }
}

/// A stateless count rule.
#[derive(Debug)]
pub struct Count {
    config: CountConfig,
}

impl Detector for Count {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Count
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        let n = match self.config.field.lookup(input.event, input.attrs) {
            Some(Scalar::Array(items)) => items as u64,
            Some(Scalar::Num(x)) if x.is_finite() && x >= 0.0 => x as u64,
            Some(Scalar::Str(_)) => 1,
            _ => return Verdict::normal(),
        };
        if n < self.config.limit().min_firing() {
            return Verdict::normal();
        }
        let mut details = serde_json::Map::new();
        details.insert("count".into(), n.into());
        Verdict::anomaly(
            self.config.limit().score(n),
            Explanation {
                observed: Some(n.into()),
                expected: Some(Expected {
                    low: None,
                    high: Some(self.config.limit().min_firing().saturating_sub(1) as f64),
                }),
                window: None,
                feature: Some(self.config.field.to_string()),
                details,
            },
        )
    }

    stateless_rule!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{event, fired, run};

    #[test]
    fn table() {
        let cfg = CountConfig {
            field: "affected_assets".parse().unwrap(),
            more_than: Some(2),
            at_least: None,
        };
        let cases = [
            (
                "three assets fire",
                r#"{"affected_assets":["a","b","c"]}"#,
                true,
            ),
            ("two do not", r#"{"affected_assets":["a","b"]}"#, false),
            ("null", r#"{"affected_assets":null}"#, false),
            ("missing", r#"{}"#, false),
            ("a number is a count", r#"{"affected_assets":7}"#, true),
            ("negative number", r#"{"affected_assets":-7}"#, false),
            ("a string is one", r#"{"affected_assets":"a"}"#, false),
            (
                "an object is nothing",
                r#"{"affected_assets":{"a":1}}"#,
                false,
            ),
        ];
        for (name, attrs, want) in cases {
            let mut d = cfg.build();
            assert_eq!(
                fired(&run(d.as_mut(), &[event("CreateInstance", 0, attrs)])),
                vec![want],
                "{name}"
            );
        }
        assert!(cfg.validate().is_empty());
    }
}
