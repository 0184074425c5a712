//! `rate`: N matching events within a sliding window of event time.
//!
//! Seed 002's semantics: at each event, count the entity's matching events whose timestamp lies
//! in `[ts − window, ts]` (the event itself included) and fire when the count passes the limit,
//! on every event past it. Events may arrive out of order by up to the pipeline's lateness: they
//! are inserted in timestamp order and counted against their own time. An event later than that
//! is ignored by the rule (it is still stored). The window keeps at most [`MAX_ENTRIES`] events;
//! beyond that the oldest are dropped (a count that high has long fired).

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use oddity_model::{Expected, Explanation};

use crate::field::FieldPath;
use crate::rules::{Limit, RuleContext};
use crate::{DetectError, Detector, DetectorKind, DetectorState, Input, Verdict};

/// Most events a window holds per entity.
pub const MAX_ENTRIES: usize = 100_000;

/// Parameters of a rate rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Length of the sliding window (`60s`, `1h`).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Fire when the count is strictly greater than this (set this or `at_least`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_than: Option<u64>,
    /// Fire when the count is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
    /// Optional field summed over the window, reported as `{sum}` (seed 002's purchase total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<FieldPath>,
}

impl RateConfig {
    /// The count limit.
    pub fn limit(&self) -> Limit {
        Limit {
            more_than: self.more_than,
            at_least: self.at_least,
        }
    }

    /// Every problem with these parameters.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = self.limit().validate("rate");
        if self.window.is_zero() {
            errors.push("window must be longer than 0s".into());
        }
        errors
    }

    /// A detector instance.
    pub fn build(&self, ctx: RuleContext) -> Box<dyn Detector> {
        Box::new(Rate {
            config: self.clone(),
            ctx,
            state: RateState::default(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RateState {
    /// (ts, summed value) in timestamp order.
    entries: VecDeque<(i64, f64)>,
    /// Newest event time seen.
    max_ts: i64,
}

/// A sliding-window counter for one entity.
#[derive(Debug)]
pub struct Rate {
    config: RateConfig,
    ctx: RuleContext,
    state: RateState,
}

impl Rate {
    fn window_ms(&self) -> i64 {
        i64::try_from(self.config.window.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Detector for Rate {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Rate
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        let ts = input.ts();
        let window = self.window_ms();
        let s = &mut self.state;
        if !s.entries.is_empty() && ts < s.max_ts.saturating_sub(self.ctx.lateness_ms) {
            return Verdict::normal();
        }
        let x = match &self.config.sum {
            Some(f) => f
                .number(input.event, input.attrs)
                .filter(|v| v.is_finite())
                .unwrap_or(0.0),
            None => 0.0,
        };
        // Insert in timestamp order (almost always at the back).
        let pos = s.entries.partition_point(|(t, _)| *t <= ts);
        s.entries.insert(pos, (ts, x));
        s.max_ts = s.max_ts.max(ts);
        let horizon = s
            .max_ts
            .saturating_sub(window)
            .saturating_sub(self.ctx.lateness_ms);
        while s.entries.front().is_some_and(|(t, _)| *t < horizon) || s.entries.len() > MAX_ENTRIES
        {
            s.entries.pop_front();
        }
        // Entries are sorted: the window [ts - window, ts] is a contiguous range.
        let from = ts.saturating_sub(window);
        let lo = s.entries.partition_point(|(t, _)| *t < from);
        let hi = s.entries.partition_point(|(t, _)| *t <= ts);
        let count = hi.saturating_sub(lo) as u64;
        if count < self.config.limit().min_firing() {
            return Verdict::normal();
        }
        let sum: f64 = s.entries.range(lo..hi).map(|(_, v)| v).sum();
        let mut details = serde_json::Map::new();
        details.insert("count".into(), count.into());
        if self.config.sum.is_some() {
            details.insert("sum".into(), sum.into());
        }
        Verdict::anomaly(
            self.config.limit().score(count),
            Explanation {
                observed: Some(count.into()),
                expected: Some(Expected {
                    low: None,
                    high: Some(self.config.limit().min_firing().saturating_sub(1) as f64),
                }),
                window: Some(humantime::format_duration(self.config.window).to_string()),
                feature: None,
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

    fn is_idle(&self, now_ts: i64) -> bool {
        let horizon = now_ts
            .saturating_sub(self.window_ms())
            .saturating_sub(self.ctx.lateness_ms);
        self.state.entries.back().is_none_or(|(t, _)| *t < horizon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{event, fired, run};

    fn config(window_s: u64, more_than: Option<u64>, at_least: Option<u64>) -> RateConfig {
        RateConfig {
            window: Duration::from_secs(window_s),
            more_than,
            at_least,
            sum: None,
        }
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            config: RateConfig,
            ts: Vec<i64>,
            fired: Vec<bool>,
        }
        let s = 1000;
        let cases = [
            Case {
                name: "more than 10 in a minute fires from the 11th",
                config: config(60, Some(10), None),
                ts: (0..12).map(|i| i * s).collect(),
                fired: [vec![false; 10], vec![true; 2]].concat(),
            },
            Case {
                name: "spread beyond the window stays quiet",
                config: config(60, Some(10), None),
                ts: (0..20).map(|i| i * 10 * s).collect(),
                fired: vec![false; 20],
            },
            Case {
                name: "at least 5 fires on the 5th",
                config: config(3600, None, Some(5)),
                ts: (0..6).map(|i| i * 60 * s).collect(),
                fired: vec![false, false, false, false, true, true],
            },
            Case {
                name: "window edge is inclusive",
                config: config(60, None, Some(2)),
                ts: vec![0, 60 * s, 121 * s],
                fired: vec![false, true, false],
            },
            Case {
                name: "duplicate timestamps all count",
                config: config(60, None, Some(3)),
                ts: vec![5, 5, 5],
                fired: vec![false, false, true],
            },
            Case {
                name: "late event within lateness counts against its own time",
                config: config(10, None, Some(3)),
                ts: vec![0, 30 * s, 2 * s, 4 * s],
                fired: vec![false, false, false, true],
            },
            Case {
                name: "event later than lateness is ignored",
                config: config(10, None, Some(2)),
                ts: vec![1000 * s, 0, 1],
                fired: vec![false, false, false],
            },
        ];
        for c in cases {
            let ctx = RuleContext {
                lateness_ms: 60_000,
            };
            let mut d = c.config.build(ctx);
            let events: Vec<_> = c.ts.iter().map(|&t| event("login", t, "")).collect();
            assert_eq!(fired(&run(d.as_mut(), &events)), c.fired, "{}", c.name);
        }
    }

    #[test]
    fn sums_and_explains() {
        let cfg = RateConfig {
            sum: Some("amount".parse().unwrap()),
            ..config(3600, None, Some(2))
        };
        let mut d = cfg.build(RuleContext::default());
        let v = run(
            d.as_mut(),
            &[
                event("purchase", 0, r#"{"amount":10.5}"#),
                event("purchase", 1, r#"{"amount":"x"}"#),
                event("purchase", 2, r#"{"amount":1}"#),
            ],
        );
        let e = v[2].explanation.as_ref().unwrap();
        assert_eq!(e.details["count"], 3);
        assert_eq!(e.details["sum"], 11.5);
        assert_eq!(e.window.as_deref(), Some("1h"));
    }

    #[test]
    fn snapshot_restores_window_and_idles() {
        let cfg = config(60, None, Some(3));
        let mut a = cfg.build(RuleContext::default());
        run(
            a.as_mut(),
            &[event("login", 0, ""), event("login", 1000, "")],
        );
        let mut b = cfg.build(RuleContext::default());
        b.restore(&a.snapshot().unwrap()).unwrap();
        assert_eq!(
            fired(&run(b.as_mut(), &[event("login", 2000, "")])),
            vec![true]
        );
        assert!(!b.is_idle(2000));
        assert!(b.is_idle(10_000_000));
        assert!(
            b.restore(&DetectorState(serde_json::json!({"bad": 1})))
                .is_err()
        );
    }

    #[test]
    fn validates() {
        assert!(config(60, Some(10), None).validate().is_empty());
        assert_eq!(config(0, None, None).validate().len(), 2);
    }
}
