//! `threshold`: a field compares with a value (`amount > 1000`).

use serde::{Deserialize, Serialize};

use oddity_model::{Expected, Explanation};

use crate::condition::Op;
use crate::field::FieldPath;
use crate::{Detector, DetectorKind, Input, Verdict};

/// Parameters of a threshold rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// The field compared (`amount`, `value`, `fields.cpu`). Events without it never fire.
    #[serde(default = "default_field")]
    pub field: FieldPath,
    /// The comparison: `>`, `>=`, `<`, `<=`, `==`, `!=`.
    pub op: Op,
    /// The value compared with.
    pub value: f64,
}

fn default_field() -> FieldPath {
    FieldPath::Value
}

impl ThresholdConfig {
    /// Every problem with these parameters.
    pub fn validate(&self) -> Vec<String> {
        if self.value.is_finite() {
            vec![]
        } else {
            vec![format!(
                "value must be a finite number (got {})",
                self.value
            )]
        }
    }

    /// A detector instance.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(Threshold {
            config: self.clone(),
        })
    }
}

/// A stateless threshold rule.
#[derive(Debug)]
pub struct Threshold {
    config: ThresholdConfig,
}

impl Detector for Threshold {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Threshold
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        let c = &self.config;
        let Some(x) = c.field.number(input.event, input.attrs) else {
            return Verdict::normal();
        };
        if !x.is_finite() || !c.op.test(x, c.value) {
            return Verdict::normal();
        }
        let scale = c.value.abs().max(1.0);
        let score = 0.5 + 0.5 * ((x - c.value).abs() / scale).tanh();
        let expected = match c.op {
            Op::Gt | Op::Ge => Some(Expected {
                low: None,
                high: Some(c.value),
            }),
            Op::Lt | Op::Le => Some(Expected {
                low: Some(c.value),
                high: None,
            }),
            Op::Eq | Op::Ne => None,
        };
        let mut details = serde_json::Map::new();
        details.insert("threshold".into(), c.value.into());
        details.insert(
            "condition".into(),
            format!("{} {} {}", c.field, c.op, c.value).into(),
        );
        Verdict::anomaly(
            score,
            Explanation {
                observed: Some(x.into()),
                expected,
                window: None,
                feature: Some(c.field.to_string()),
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
        struct Case {
            name: &'static str,
            op: Op,
            value: f64,
            attrs: &'static str,
            fires: bool,
        }
        let cases = [
            Case {
                name: "above fires",
                op: Op::Gt,
                value: 1000.0,
                attrs: r#"{"amount":1500}"#,
                fires: true,
            },
            Case {
                name: "equal does not fire on >",
                op: Op::Gt,
                value: 1000.0,
                attrs: r#"{"amount":1000}"#,
                fires: false,
            },
            Case {
                name: "equal fires on >=",
                op: Op::Ge,
                value: 1000.0,
                attrs: r#"{"amount":1000}"#,
                fires: true,
            },
            Case {
                name: "below",
                op: Op::Gt,
                value: 1000.0,
                attrs: r#"{"amount":99.5}"#,
                fires: false,
            },
            Case {
                name: "numeric string",
                op: Op::Gt,
                value: 1000.0,
                attrs: r#"{"amount":"2000.5"}"#,
                fires: true,
            },
            Case {
                name: "missing field",
                op: Op::Gt,
                value: 1000.0,
                attrs: r#"{"other":5000}"#,
                fires: false,
            },
            Case {
                name: "mistyped field",
                op: Op::Gt,
                value: 1000.0,
                attrs: r#"{"amount":[5000]}"#,
                fires: false,
            },
            Case {
                name: "no attrs",
                op: Op::Gt,
                value: 1000.0,
                attrs: "",
                fires: false,
            },
            Case {
                name: "huge value",
                op: Op::Gt,
                value: 1000.0,
                attrs: r#"{"amount":1e308}"#,
                fires: true,
            },
            Case {
                name: "below on <",
                op: Op::Lt,
                value: 0.0,
                attrs: r#"{"amount":-1}"#,
                fires: true,
            },
        ];
        for c in cases {
            let config = ThresholdConfig {
                field: "amount".parse().unwrap(),
                op: c.op,
                value: c.value,
            };
            let mut d = config.build();
            let v = run(d.as_mut(), &[event("purchase", 0, c.attrs)]);
            assert_eq!(fired(&v), vec![c.fires], "{}", c.name);
            if c.fires {
                assert!(
                    (0.5..=1.0).contains(&v[0].score),
                    "{}: {}",
                    c.name,
                    v[0].score
                );
                assert!(v[0].explanation.is_some());
            }
        }
    }

    #[test]
    fn nan_value_never_fires() {
        let config = ThresholdConfig {
            field: FieldPath::Value,
            op: Op::Ne,
            value: 1.0,
        };
        let mut e = event("m", 0, "");
        e.value = Some(f64::NAN);
        assert_eq!(fired(&run(config.build().as_mut(), &[e])), vec![false]);
        assert_eq!(
            ThresholdConfig {
                value: f64::NAN,
                ..config
            }
            .validate()
            .len(),
            1
        );
    }
}
