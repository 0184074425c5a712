//! `novelty`: a field takes a value never seen for this entity (a new location, a new API).
//!
//! The first `warmup` observations only teach the baseline, so an entity's first values are not
//! anomalies; after that every unseen value fires once and joins the baseline. The baseline keeps
//! at most `max_values` values (the oldest learned are forgotten first).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use oddity_model::Explanation;

use crate::field::FieldPath;
use crate::{DetectError, Detector, DetectorKind, DetectorState, Input, Verdict};

/// Parameters of a novelty rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoveltyConfig {
    /// The field whose values are learned (`location`).
    pub field: FieldPath,
    /// Observations learned silently before the rule may fire.
    #[serde(default = "default_warmup")]
    pub warmup: u64,
    /// Most distinct values remembered per entity.
    #[serde(default = "default_max_values")]
    pub max_values: usize,
}

const fn default_warmup() -> u64 {
    5
}

const fn default_max_values() -> usize {
    1000
}

impl NoveltyConfig {
    /// Every problem with these parameters.
    pub fn validate(&self) -> Vec<String> {
        if self.max_values == 0 {
            vec!["max_values must be at least 1 (got 0)".into()]
        } else {
            vec![]
        }
    }

    /// A detector instance.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(Novelty {
            config: self.clone(),
            state: NoveltyState::default(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct NoveltyState {
    /// Values seen, oldest learned first.
    seen: VecDeque<String>,
    /// Observations so far.
    observations: u64,
}

/// The learned values of one entity.
#[derive(Debug)]
pub struct Novelty {
    config: NoveltyConfig,
    state: NoveltyState,
}

impl Detector for Novelty {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Novelty
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        let Some(key) = self
            .config
            .field
            .lookup(input.event, input.attrs)
            .and_then(|s| s.to_key())
        else {
            return Verdict::normal();
        };
        let s = &mut self.state;
        s.observations += 1;
        if s.seen.iter().any(|v| *v == key) {
            return Verdict::normal();
        }
        let learning = s.observations <= self.config.warmup;
        let known: Vec<serde_json::Value> = s.seen.iter().map(|v| v.clone().into()).collect();
        s.seen.push_back(key.clone());
        if s.seen.len() > self.config.max_values {
            s.seen.pop_front();
        }
        if learning {
            return Verdict::normal();
        }
        // More history makes a new value more surprising: 0.5 right after warm-up, towards 1.
        let history = (s.observations - self.config.warmup) as f64;
        let score = 1.0 - 0.5 / (1.0 + history / (self.config.warmup.max(1) as f64 * 4.0));
        let mut details = serde_json::Map::new();
        details.insert("known".into(), known.into());
        details.insert("observations".into(), s.observations.into());
        Verdict::anomaly(
            score,
            Explanation {
                observed: Some(key.into()),
                expected: None,
                window: None,
                feature: Some(self.config.field.to_string()),
                details,
            },
        )
    }

    fn snapshot(&self) -> Result<DetectorState, DetectError> {
        DetectorState::of(&self.state)
    }

    fn restore(&mut self, state: &DetectorState) -> Result<(), DetectError> {
        self.state = state.to()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{event, fired, run};

    fn loc(l: &str) -> String {
        format!(r#"{{"location":"{l}"}}"#)
    }

    #[test]
    fn table() {
        let cases: &[(&str, u64, Vec<&str>, Vec<bool>)] = &[
            (
                "learns during warm-up",
                3,
                vec!["US", "EU", "ASIA"],
                vec![false; 3],
            ),
            (
                "new value after warm-up fires once",
                2,
                vec!["US", "US", "EU", "EU", "US"],
                vec![false, false, true, false, false],
            ),
            ("same value never fires", 1, vec!["US"; 5], vec![false; 5]),
            (
                "warm-up 0 fires from the first value",
                0,
                vec!["US", "EU"],
                vec![true, true],
            ),
        ];
        for (name, warmup, locs, want) in cases {
            let cfg = NoveltyConfig {
                field: "location".parse().unwrap(),
                warmup: *warmup,
                max_values: 10,
            };
            let mut d = cfg.build();
            let events: Vec<_> = locs
                .iter()
                .enumerate()
                .map(|(i, l)| event("login", i as i64, &loc(l)))
                .collect();
            assert_eq!(&fired(&run(d.as_mut(), &events)), want, "{name}");
        }
    }

    #[test]
    fn missing_field_is_ignored_and_numbers_are_keys() {
        let cfg = NoveltyConfig {
            field: "port".parse().unwrap(),
            warmup: 1,
            max_values: 2,
        };
        let mut d = cfg.build();
        let v = run(
            d.as_mut(),
            &[
                event("c", 0, r#"{"port":22}"#),
                event("c", 1, "{}"),
                event("c", 2, r#"{"port":22}"#),
                event("c", 3, r#"{"port":443}"#),
            ],
        );
        assert_eq!(fired(&v), vec![false, false, false, true]);
        let e = v[3].explanation.as_ref().unwrap();
        assert_eq!(e.observed, Some("443".into()));
        assert_eq!(e.details["known"], serde_json::json!(["22"]));
    }

    #[test]
    fn bounded_and_restorable() {
        let cfg = NoveltyConfig {
            field: "location".parse().unwrap(),
            warmup: 0,
            max_values: 2,
        };
        let mut a = cfg.build();
        run(
            a.as_mut(),
            &[
                event("l", 0, &loc("A")),
                event("l", 1, &loc("B")),
                event("l", 2, &loc("C")),
            ],
        );
        let mut b = cfg.build();
        b.restore(&a.snapshot().unwrap()).unwrap();
        // A was forgotten (bound 2), B is still known.
        assert_eq!(
            fired(&run(
                b.as_mut(),
                &[event("l", 3, &loc("A")), event("l", 4, &loc("C"))]
            )),
            vec![true, false]
        );
        assert_eq!(
            NoveltyConfig {
                max_values: 0,
                ..cfg
            }
            .validate()
            .len(),
            1
        );
    }
}
