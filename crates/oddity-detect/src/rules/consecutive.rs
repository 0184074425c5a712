//! `consecutive`: N events in a row satisfy a condition (`success == false`).
//!
//! The rule sees the events its filter selects (e.g. type `login`); among them, an event that
//! satisfies `matching` extends the streak and any other event breaks it. It fires on every event
//! once the streak reaches the limit. "In a row" is arrival order within the entity's partition.

use serde::{Deserialize, Serialize};

use oddity_model::{Expected, Explanation};

use crate::condition::{Condition, all_match};
use crate::rules::Limit;
use crate::{DetectError, Detector, DetectorKind, DetectorState, Input, Verdict};

/// Parameters of a consecutive rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsecutiveConfig {
    /// Conditions an event must satisfy to extend the streak (all of them).
    pub matching: Vec<Condition>,
    /// Fire when the streak is strictly longer than this (set this or `at_least`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_than: Option<u64>,
    /// Fire when the streak is at least this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
}

impl ConsecutiveConfig {
    /// The count limit.
    pub fn limit(&self) -> Limit {
        Limit {
            more_than: self.more_than,
            at_least: self.at_least,
        }
    }

    /// Every problem with these parameters.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = self.limit().validate("consecutive");
        if self.matching.is_empty() {
            errors.push(
                "matching must list at least one condition (e.g. \"success == false\")".into(),
            );
        }
        errors
    }

    /// A detector instance.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(Consecutive {
            config: self.clone(),
            streak: 0,
        })
    }
}

/// A streak counter for one entity.
#[derive(Debug)]
pub struct Consecutive {
    config: ConsecutiveConfig,
    streak: u64,
}

impl Detector for Consecutive {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Consecutive
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        if !all_match(&self.config.matching, input.event, input.attrs) {
            self.streak = 0;
            return Verdict::normal();
        }
        self.streak += 1;
        if self.streak < self.config.limit().min_firing() {
            return Verdict::normal();
        }
        let mut details = serde_json::Map::new();
        details.insert("count".into(), self.streak.into());
        let conditions: Vec<String> = self
            .config
            .matching
            .iter()
            .map(ToString::to_string)
            .collect();
        details.insert("matching".into(), conditions.join(" and ").into());
        Verdict::anomaly(
            self.config.limit().score(self.streak),
            Explanation {
                observed: Some(self.streak.into()),
                expected: Some(Expected {
                    low: None,
                    high: Some(self.config.limit().min_firing().saturating_sub(1) as f64),
                }),
                window: None,
                feature: None,
                details,
            },
        )
    }

    fn snapshot(&self) -> Result<DetectorState, DetectError> {
        DetectorState::of(&self.streak)
    }

    fn restore(&mut self, state: &DetectorState) -> Result<(), DetectError> {
        self.streak = state.to()?;
        Ok(())
    }

    fn is_idle(&self, _now_ts: i64) -> bool {
        self.streak == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{event, fired, run};

    #[test]
    fn table() {
        let cfg = ConsecutiveConfig {
            matching: vec!["success == false".parse().unwrap()],
            more_than: None,
            at_least: Some(3),
        };
        let f = r#"{"success":false}"#;
        let ok = r#"{"success":true}"#;
        let cases: &[(&str, Vec<&str>, Vec<bool>)] = &[
            (
                "three failures fire on the third",
                vec![f, f, f, f],
                vec![false, false, true, true],
            ),
            (
                "a success breaks the streak",
                vec![f, f, ok, f, f],
                vec![false; 5],
            ),
            (
                "missing field breaks the streak",
                vec![f, f, "{}", f],
                vec![false; 4],
            ),
            ("no attrs at all", vec!["", "", ""], vec![false; 3]),
            (
                "string booleans count",
                vec![r#"{"success":"false"}"#; 3],
                vec![false, false, true],
            ),
        ];
        for (name, attrs, want) in cases {
            let mut d = cfg.build();
            let events: Vec<_> = attrs
                .iter()
                .enumerate()
                .map(|(i, a)| event("login", i as i64, a))
                .collect();
            assert_eq!(&fired(&run(d.as_mut(), &events)), want, "{name}");
        }
    }

    #[test]
    fn snapshot_keeps_streak() {
        let cfg = ConsecutiveConfig {
            matching: vec!["success == false".parse().unwrap()],
            more_than: Some(1),
            at_least: None,
        };
        let mut a = cfg.build();
        run(a.as_mut(), &[event("login", 0, r#"{"success":false}"#)]);
        let mut b = cfg.build();
        b.restore(&a.snapshot().unwrap()).unwrap();
        let v = run(b.as_mut(), &[event("login", 1, r#"{"success":false}"#)]);
        assert!(v[0].anomalous);
        assert_eq!(v[0].explanation.as_ref().unwrap().details["count"], 2);
        assert!(cfg.validate().is_empty());
        assert_eq!(
            ConsecutiveConfig {
                matching: vec![],
                ..cfg
            }
            .validate()
            .len(),
            1
        );
    }
}
