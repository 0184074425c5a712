//! Per-entity rules: the closed set of DESIGN §3.
//!
//! | kind | fires when |
//! |---|---|
//! | [`threshold`] | a field compares with a value (`amount > 1000`) |
//! | [`rate`] | N matching events fall within a sliding window of event time |
//! | [`consecutive`] | N events in a row satisfy a condition (a non-matching one breaks the streak) |
//! | [`novelty`] | a field takes a value never seen for this entity, after a learning period |
//! | [`time_of_day`] | an event falls in configured hours |
//! | [`count`] | the number of items of a field (affected assets) passes a limit |
//!
//! Filtering by type and `where` conditions, cooldowns, severities and descriptions are the
//! pipeline's job, common to all detectors; a rule holds only its own parameters and state.
//! Each rule's config has `validate()` (every problem, with the offending values) and `build()`.

/// The state methods of a rule that keeps nothing between events (threshold, time_of_day,
/// count): the snapshot is `null`, restoring is a no-op, and an instance is always idle (the
/// engine shares one instance between all entities and keeps only their cooldowns).
macro_rules! stateless_rule {
    () => {
        fn snapshot(&self) -> Result<$crate::DetectorState, $crate::DetectError> {
            Ok($crate::DetectorState(serde_json::Value::Null))
        }

        fn restore(&mut self, _state: &$crate::DetectorState) -> Result<(), $crate::DetectError> {
            Ok(())
        }

        fn is_idle(&self, _now_ts: i64) -> bool {
            true
        }
    };
}

pub mod consecutive;
pub mod count;
pub mod novelty;
pub mod rate;
pub mod threshold;
pub mod time_of_day;

use serde::{Deserialize, Serialize};

pub use consecutive::ConsecutiveConfig;
pub use count::CountConfig;
pub use novelty::NoveltyConfig;
pub use rate::RateConfig;
pub use threshold::ThresholdConfig;
pub use time_of_day::TimeOfDayConfig;

/// Settings shared by every rule instance, from the pipeline configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleContext {
    /// How far behind the newest event time an event may arrive and still count (ms).
    pub lateness_ms: i64,
}

impl Default for RuleContext {
    fn default() -> Self {
        RuleContext {
            lateness_ms: 60_000,
        }
    }
}

/// A count limit: `more_than = 10` (fires at 11) or `at_least = 5` (fires at 5). Exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limit {
    /// Fire when the count is strictly greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_than: Option<u64>,
    /// Fire when the count is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
}

impl Limit {
    /// The smallest count that fires.
    pub fn min_firing(&self) -> u64 {
        match (self.more_than, self.at_least) {
            (Some(m), _) => m.saturating_add(1),
            (None, Some(a)) => a,
            (None, None) => u64::MAX,
        }
    }

    /// Problems with this limit, named after `what`.
    pub fn validate(&self, what: &str) -> Vec<String> {
        match (self.more_than, self.at_least) {
            (Some(_), Some(_)) => vec![format!(
                "{what}: set either more_than or at_least, not both"
            )],
            (None, None) => vec![format!("{what}: set more_than or at_least")],
            (None, Some(0)) => vec![format!("{what}: at_least must be at least 1 (got 0)")],
            _ => vec![],
        }
    }

    /// Score of a count that fires: 0.5 at the limit, rising towards 1 at twice the limit.
    pub fn score(&self, count: u64) -> f64 {
        let limit = self.min_firing().max(1) as f64;
        0.5 + 0.5 * ((count as f64 - limit + 1.0) / limit).tanh()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for rule tests.
    use oddity_model::Event;

    use crate::field::Attrs;
    use crate::{Detector, Input, Verdict};

    /// An event of `type` at `ts` with JSON `attrs`.
    pub(crate) fn event(event_type: &str, ts: i64, attrs: &str) -> Event {
        let mut e = Event::new("u1", event_type, ts);
        if !attrs.is_empty() {
            e.attrs = Some(attrs.to_owned());
        }
        e
    }

    /// Feeds `events` and returns which fired.
    pub(crate) fn run(d: &mut dyn Detector, events: &[Event]) -> Vec<Verdict> {
        events
            .iter()
            .map(|e| {
                let attrs = Attrs::new(e);
                d.observe(&Input::new(e, &attrs))
            })
            .collect()
    }

    /// Which inputs fired, as booleans.
    pub(crate) fn fired(verdicts: &[Verdict]) -> Vec<bool> {
        verdicts.iter().map(|v| v.anomalous).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let more = Limit {
            more_than: Some(10),
            at_least: None,
        };
        assert_eq!(more.min_firing(), 11);
        assert!(more.validate("x").is_empty());
        let least = Limit {
            more_than: None,
            at_least: Some(5),
        };
        assert_eq!(least.min_firing(), 5);
        assert!((least.score(5) - 0.5).abs() < 0.15);
        assert!(least.score(10) > least.score(6));
        assert!(least.score(1000) <= 1.0);
        assert_eq!(Limit::default().validate("x").len(), 1);
        assert_eq!(
            Limit {
                more_than: Some(1),
                at_least: Some(1)
            }
            .validate("x")
            .len(),
            1
        );
        assert_eq!(
            Limit {
                more_than: None,
                at_least: Some(0)
            }
            .validate("x")
            .len(),
            1
        );
    }
}
