//! Per-interval aggregation in front of a statistical detector: counts (or sums, means, maxima)
//! of a series per bucket of event time, **with the empty buckets in between**.
//!
//! A statistical detector on raw events sees only what happens. "This user logs in 3 times a
//! minute and now 300", or "this sensor reports every second and went silent for ten minutes",
//! are statements about *rates*, and a silence is a run of buckets with zero events, which no
//! event ever reports. [`Aggregated`] keeps the open bucket (`every` of event time, aligned to
//! the epoch), and when an event arrives in a later bucket it closes the open one, feeds its
//! aggregate to the inner detector, then feeds every empty bucket in the gap (a count or sum of
//! 0; nothing for a mean or maximum, which an empty bucket does not have), at most `max_gap` of
//! them, and opens the event's bucket. The event gets the most anomalous verdict among the
//! buckets it closed, so a burst or a silence is reported on the first event after it (there are
//! no timers: a series that stops for good is never closed).
//!
//! Events older than the open bucket (late by more than the bucket) are not counted: their
//! bucket was already judged. The verdict's explanation is the inner detector's, with
//! `bucket_start` (ms), `every` and `of` added to its details and the window set to `every`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use oddity_model::Event;

use crate::field::Attrs;
use crate::{DetectError, Detector, DetectorKind, DetectorState, Input, Verdict};

/// What a bucket is summarised by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Number of events (the value is not needed); an empty bucket counts 0.
    #[default]
    Count,
    /// Sum of the values; an empty bucket sums to 0.
    Sum,
    /// Mean of the values; an empty bucket has none and is skipped.
    Mean,
    /// Largest value; an empty bucket has none and is skipped.
    Max,
}

impl Aggregation {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Count => "count",
            Aggregation::Sum => "sum",
            Aggregation::Mean => "mean",
            Aggregation::Max => "max",
        }
    }
}

/// `aggregate = { every = "1m", of = "count" }` on a per-series detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Bucket length in event time.
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    /// What a bucket is summarised by.
    #[serde(default)]
    pub of: Aggregation,
    /// Most empty buckets fed after a silence (a longer silence feeds this many).
    #[serde(default = "default_max_gap")]
    pub max_gap: u32,
}

const fn default_max_gap() -> u32 {
    1_000
}

impl AggregateConfig {
    /// Every problem with the parameters.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.every.as_millis() == 0 {
            problems.push("aggregate.every must be at least 1ms".to_owned());
        }
        if self.max_gap == 0 {
            problems.push("aggregate.max_gap must be at least 1".to_owned());
        }
        problems
    }

    /// Whether every event counts, with or without a value.
    pub fn counts_events(&self) -> bool {
        self.of == Aggregation::Count
    }

    /// Wraps `inner`, a per-series detector.
    pub fn wrap(&self, inner: Box<dyn Detector>) -> Box<dyn Detector> {
        Box::new(Aggregated {
            config: *self,
            inner,
            bucket: Bucket::default(),
        })
    }
}

/// The open bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Bucket {
    /// Start (ms, a multiple of `every`), `None` before the first event.
    start: Option<i64>,
    count: u64,
    #[serde(with = "crate::compact::f64_exact")]
    sum: f64,
    #[serde(with = "crate::compact::f64_exact")]
    max: f64,
}

impl Bucket {
    fn add(&mut self, value: Option<f64>) {
        self.count += 1;
        if let Some(v) = value {
            self.sum += v;
            self.max = if self.count == 1 { v } else { self.max.max(v) };
        }
    }

    /// The bucket's aggregate; `None` for a mean or maximum of nothing.
    fn value(&self, of: Aggregation) -> Option<f64> {
        match of {
            Aggregation::Count => Some(self.count as f64),
            Aggregation::Sum => Some(self.sum),
            Aggregation::Mean => (self.count > 0).then(|| self.sum / self.count as f64),
            Aggregation::Max => (self.count > 0).then_some(self.max),
        }
    }
}

/// What an [`Aggregated`] detector saves.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    bucket: Bucket,
    inner: DetectorState,
}

/// A per-series detector fed per-bucket aggregates (see the module docs).
#[derive(Debug)]
pub struct Aggregated {
    config: AggregateConfig,
    inner: Box<dyn Detector>,
    bucket: Bucket,
}

impl Aggregated {
    /// Feeds one closed bucket's aggregate to the inner detector.
    fn feed(&mut self, start: i64, value: f64) -> Verdict {
        let every = self.config.every.as_millis() as i64;
        let event = Event::new("", "", start + every - 1);
        let attrs = Attrs::new(&event);
        let mut verdict = self.inner.observe(&Input {
            event: &event,
            attrs: &attrs,
            value: Some(value),
        });
        if let Some(e) = verdict.explanation.as_mut() {
            e.window = Some(humantime::format_duration(self.config.every).to_string());
            e.details.insert("bucket_start".into(), start.into());
            e.details.insert(
                "every".into(),
                humantime::format_duration(self.config.every)
                    .to_string()
                    .into(),
            );
            e.details
                .insert("of".into(), self.config.of.as_str().into());
        }
        verdict
    }
}

impl Detector for Aggregated {
    fn kind(&self) -> DetectorKind {
        self.inner.kind()
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        let every = self.config.every.as_millis() as i64;
        let start = input.ts().div_euclid(every) * every;
        let value = input.value.filter(|v| v.is_finite());
        if value.is_none() && !self.config.counts_events() {
            return Verdict::normal();
        }
        let Some(open) = self.bucket.start else {
            self.bucket = Bucket {
                start: Some(start),
                ..Bucket::default()
            };
            self.bucket.add(value);
            return Verdict::normal();
        };
        if start <= open {
            // The open bucket, or a late event whose bucket was already judged (not counted).
            if start == open {
                self.bucket.add(value);
            }
            return Verdict::normal();
        }
        let mut best = Verdict::normal();
        let mut keep = |v: Verdict| {
            if (v.anomalous, v.score) > (best.anomalous, best.score) {
                best = v;
            }
        };
        if let Some(v) = self.bucket.value(self.config.of) {
            keep(self.feed(open, v));
        }
        if let Some(zero) = Bucket::default().value(self.config.of) {
            let empty = ((start - open) / every - 1).min(i64::from(self.config.max_gap));
            let first = start - empty * every;
            for i in 0..empty {
                keep(self.feed(first + i * every, zero));
            }
        }
        self.bucket = Bucket {
            start: Some(start),
            ..Bucket::default()
        };
        self.bucket.add(value);
        best
    }

    fn snapshot(&self) -> Result<DetectorState, DetectError> {
        DetectorState::of(&Saved {
            bucket: self.bucket,
            inner: self.inner.snapshot()?,
        })
    }

    fn restore(&mut self, state: &DetectorState) -> Result<(), DetectError> {
        let saved: Saved = state.to()?;
        self.inner.restore(&saved.inner)?;
        self.bucket = saved.bucket;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{MadConfig, StatsConfig};

    fn counter(every_s: u64) -> Box<dyn Detector> {
        let config = AggregateConfig {
            every: Duration::from_secs(every_s),
            of: Aggregation::Count,
            max_gap: 1_000,
        };
        config.wrap(StatsConfig::Mad(MadConfig::default()).build())
    }

    fn observe(d: &mut dyn Detector, ts: i64, value: Option<f64>) -> Verdict {
        let mut e = Event::new("u", "login", ts);
        e.value = value;
        let attrs = Attrs::new(&e);
        let mut input = Input::new(&e, &attrs);
        input.value = value;
        d.observe(&input)
    }

    /// About 20 events a minute, from minute 0 to minute `minutes`.
    fn steady(d: &mut dyn Detector, minutes: i64) -> usize {
        let mut flagged = 0;
        for m in 0..minutes {
            for k in 0..(19 + m % 3) {
                flagged += usize::from(observe(d, m * 60_000 + k * 2_500, None).anomalous);
            }
        }
        flagged
    }

    #[test]
    fn a_burst_is_reported_on_the_first_event_after_its_bucket() {
        let mut d = counter(60);
        assert_eq!(steady(d.as_mut(), 120), 0);
        for k in 0..300 {
            let v = observe(d.as_mut(), 120 * 60_000 + k * 100, None);
            assert!(!v.anomalous, "the burst's own bucket is still open");
        }
        let v = observe(d.as_mut(), 121 * 60_000, None);
        assert!(v.anomalous, "{v:?}");
        let e = v.explanation.unwrap();
        assert_eq!(e.observed, Some(serde_json::json!(300.0)));
        assert_eq!(e.details["bucket_start"], 120 * 60_000);
        assert_eq!(e.details["of"], "count");
        assert_eq!(e.window.as_deref(), Some("1m"));
    }

    #[test]
    fn a_silence_is_a_run_of_zero_counts() {
        let mut d = counter(60);
        steady(d.as_mut(), 120);
        // Nothing from minute 120 to 149; the next event closes 30 empty buckets.
        let v = observe(d.as_mut(), 150 * 60_000, None);
        assert!(v.anomalous, "{v:?}");
        assert_eq!(
            v.explanation.unwrap().observed,
            Some(serde_json::json!(0.0))
        );
    }

    #[test]
    fn late_events_and_missing_values() {
        let config = AggregateConfig {
            every: Duration::from_secs(60),
            of: Aggregation::Mean,
            max_gap: 1_000,
        };
        let mut d = config.wrap(StatsConfig::Mad(MadConfig::default()).build());
        assert_eq!(observe(d.as_mut(), 0, None), Verdict::normal());
        observe(d.as_mut(), 10, Some(4.0));
        observe(d.as_mut(), 20, Some(6.0));
        observe(d.as_mut(), 60_000, Some(1.0));
        observe(d.as_mut(), 5, Some(1e9)); // late: its bucket was judged already
        let saved: Saved = d.snapshot().unwrap().to().unwrap();
        assert_eq!(saved.bucket.start, Some(60_000));
        assert_eq!(saved.bucket.count, 1);
    }

    #[test]
    fn gaps_are_capped_and_snapshots_continue_identically() {
        let config = AggregateConfig {
            every: Duration::from_secs(1),
            of: Aggregation::Sum,
            max_gap: 10,
        };
        let mut a = config.wrap(StatsConfig::Mad(MadConfig::default()).build());
        for i in 0..500 {
            observe(a.as_mut(), i * 1_000, Some(10.0 + (i % 3) as f64));
        }
        let mut b = config.wrap(StatsConfig::Mad(MadConfig::default()).build());
        b.restore(&a.snapshot().unwrap()).unwrap();
        // a silence of a day: only 10 empty buckets are fed
        let va = observe(a.as_mut(), 86_400_000, Some(11.0));
        let vb = observe(b.as_mut(), 86_400_000, Some(11.0));
        assert_eq!(va, vb);
        assert!(va.anomalous);
        for i in 1..50 {
            let ts = 86_400_000 + i * 1_000;
            assert_eq!(
                observe(a.as_mut(), ts, Some(11.0)),
                observe(b.as_mut(), ts, Some(11.0))
            );
        }
    }
}
