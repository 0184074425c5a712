//! The plumbing every statistical detector shares: the [`SeriesModel`] trait (the plain
//! `update(ts, value)` API, usable without events), the adapter that makes any model a
//! [`Detector`], and the explanation builder.
//!
//! A detector file implements only its algorithm as a `SeriesModel`; missing values, snapshots
//! and the event plumbing are written once here.

use std::fmt;

use oddity_model::{Expected, Explanation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{DetectError, Detector, DetectorKind, DetectorState, Input, Verdict};

/// A causal detector over one series of numbers.
///
/// `update` sees each observation once, in arrival order, and scores it against the past only.
/// A non-finite `value` (NaN, ±inf: a missing or unparsable measurement) is ignored: the verdict
/// is normal and the state does not change.
pub trait SeriesUpdate: fmt::Debug + Send {
    /// Scores one observation at `ts_ms` (epoch milliseconds), then learns from it.
    fn update(&mut self, ts_ms: i64, value: f64) -> Verdict;
}

/// A [`SeriesUpdate`] with a kind and a serialisable state, which makes it a [`Detector`]
/// through [`SeriesDetector`].
pub trait SeriesModel: SeriesUpdate + Serialize + DeserializeOwned + 'static {
    /// The detector kind reported to the pipeline.
    const KIND: DetectorKind;
}

/// Adapts a [`SeriesModel`] to the event-level [`Detector`] trait.
#[derive(Debug, Clone)]
pub struct SeriesDetector<M> {
    model: M,
}

impl<M: SeriesModel> SeriesDetector<M> {
    /// Wraps a model.
    pub fn new(model: M) -> Self {
        SeriesDetector { model }
    }

    /// The wrapped model.
    pub fn model(&self) -> &M {
        &self.model
    }
}

impl<M: SeriesModel> Detector for SeriesDetector<M> {
    fn kind(&self) -> DetectorKind {
        M::KIND
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        self.model
            .update(input.ts(), input.value.unwrap_or(f64::NAN))
    }

    fn snapshot(&self) -> Result<DetectorState, DetectError> {
        DetectorState::of(&self.model)
    }

    fn restore(&mut self, state: &DetectorState) -> Result<(), DetectError> {
        self.model = state.to()?;
        Ok(())
    }
}

/// A JSON number for `x` (null when not finite).
pub(crate) fn num(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// An explanation: `observed` against the band `[low, high]`, on `feature`, with details.
pub(crate) fn explain(
    observed: f64,
    low: f64,
    high: f64,
    feature: &str,
    details: impl IntoIterator<Item = (&'static str, serde_json::Value)>,
) -> Explanation {
    Explanation {
        observed: Some(num(observed)),
        expected: Some(Expected {
            low: low.is_finite().then_some(low),
            high: high.is_finite().then_some(high),
        }),
        window: None,
        feature: Some(feature.to_owned()),
        details: details
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

/// The smallest spread a detector divides by around `center`: a constant series has spread 0,
/// and dividing by it would turn rounding noise into infinite scores.
pub(crate) fn spread_floor(center: f64) -> f64 {
    (center.abs() * 1e-9).max(1e-12)
}

/// The verdict on `x` against `mean ± threshold·std` (the spread floored by [`spread_floor`]),
/// scored from its z-score: shared by the z-score and EWMA detectors, which differ only in how
/// they estimate `mean` and `std`. `labels` name the two in the explanation.
pub(crate) fn z_verdict(
    x: f64,
    mean: f64,
    std: f64,
    threshold: f64,
    labels: [&'static str; 2],
) -> Verdict {
    let std = std.max(spread_floor(mean));
    let z = (x - mean) / std;
    let score = super::tail::score_from_z(z);
    if z.abs() < threshold {
        return Verdict::scored(score);
    }
    let band = threshold * std;
    Verdict::anomaly(
        score,
        explain(
            x,
            mean - band,
            mean + band,
            "value",
            [("z", num(z)), (labels[0], num(mean)), (labels[1], num(std))],
        ),
    )
}
