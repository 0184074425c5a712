//! Streaming statistics per series: rolling z-score, EWMA control limits, robust median/MAD,
//! seasonal baseline, CUSUM change-point, and the default [`StreamingConfig`] detector.
//!
//! # Shape
//! Every detector is a config struct (serde, validated, with defaults) that builds a model. A
//! model implements [`SeriesUpdate`] — `update(ts_ms, value) -> Verdict`, the plain API used by
//! the evaluator and usable without events — and [`SeriesModel`], which [`SeriesDetector`] turns
//! into a pipeline [`Detector`] with snapshot/restore through serde. [`StatsConfig`] is the closed
//! set of these configs, tagged by `kind`, for configuration files.
//!
//! # Shared conventions
//! - **Causal**: a point is scored against the past only, then learnt.
//! - **Missing values**: a non-finite value (NaN, ±inf, or an event without the value) gives a
//!   normal verdict and leaves the state untouched.
//! - **Warm-up**: points before a detector's `warmup` count score 0.
//! - **Constant series never alarm**: spreads are floored relative to the level
//!   ([`series`]), so equal values score 0; a departure from a perfectly constant series is news
//!   and scores high.
//! - **One score scale**: `score = 1 − 2^(log10(p) / 5)`, p the detector's tail probability
//!   ([`tail`]), so 0.5 means "one in 100,000" and 0.75 "one in 10^10" for every detector; the
//!   scale never saturates, so rankings survive in the far tail.
//! - **Explanations** carry the expected band the point fell outside, the observed value and the
//!   statistic.
//!
//! # Files
//! Algorithms: [`zscore`], [`ewma`], [`mad`], [`seasonal`], [`change_point`], [`streaming`];
//! [`aggregate`] feeds any of them per-interval counts, sums, means or maxima (zero counts
//! included).
//! Shared pieces: [`window`] (rolling sums, order statistics), [`moments`] (exponentially
//! weighted moments), [`tail`] (tail probabilities and the score scale), [`tail_fit`]
//! (peaks-over-threshold tails), [`series`] (the traits and the `Detector` adapter).

pub mod aggregate;
pub mod change_point;
pub mod ewma;
pub mod mad;
pub mod moments;
pub mod seasonal;
pub mod series;
pub mod streaming;
pub mod tail;
pub mod tail_fit;
pub mod window;
pub mod zscore;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use aggregate::{AggregateConfig, Aggregated, Aggregation};
pub use change_point::{ChangePoint, ChangePointConfig};
pub use ewma::{Ewma, EwmaConfig};
pub use mad::{Mad, MadConfig};
pub use seasonal::{Seasonal, SeasonalConfig};
pub use series::{SeriesDetector, SeriesModel, SeriesUpdate};
pub use streaming::{Streaming, StreamingConfig};
pub use zscore::{Zscore, ZscoreConfig};

use crate::{Detector, DetectorKind};

/// The configuration of one statistical detector, tagged by `kind`:
///
/// ```toml
/// kind = "zscore"
/// window = 100
/// threshold = 4.0
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatsConfig {
    /// Rolling z-score.
    Zscore(ZscoreConfig),
    /// EWMA control limits.
    Ewma(EwmaConfig),
    /// Robust median/MAD.
    Mad(MadConfig),
    /// Seasonal baseline with a forecast band.
    Seasonal(SeasonalConfig),
    /// CUSUM change points.
    ChangePoint(ChangePointConfig),
    /// The default streaming detector.
    Streaming(StreamingConfig),
}

impl Default for StatsConfig {
    /// The default streaming detector with its default parameters.
    fn default() -> Self {
        StatsConfig::Streaming(StreamingConfig::default())
    }
}

impl StatsConfig {
    /// Every statistical detector with its default parameters, the default detector first.
    pub fn all_defaults() -> Vec<StatsConfig> {
        vec![
            StatsConfig::Streaming(StreamingConfig::default()),
            StatsConfig::Zscore(ZscoreConfig::default()),
            StatsConfig::Ewma(EwmaConfig::default()),
            StatsConfig::Mad(MadConfig::default()),
            StatsConfig::Seasonal(SeasonalConfig::default()),
            StatsConfig::ChangePoint(ChangePointConfig::default()),
        ]
    }

    /// The default configuration of `kind`, if it is a statistical kind.
    pub fn default_for(kind: DetectorKind) -> Option<StatsConfig> {
        Self::all_defaults().into_iter().find(|c| c.kind() == kind)
    }

    /// The detector kind this configuration builds.
    pub fn kind(&self) -> DetectorKind {
        match self {
            StatsConfig::Zscore(_) => DetectorKind::Zscore,
            StatsConfig::Ewma(_) => DetectorKind::Ewma,
            StatsConfig::Mad(_) => DetectorKind::Mad,
            StatsConfig::Seasonal(_) => DetectorKind::Seasonal,
            StatsConfig::ChangePoint(_) => DetectorKind::ChangePoint,
            StatsConfig::Streaming(_) => DetectorKind::Streaming,
        }
    }

    /// Every problem with the parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        match self {
            StatsConfig::Zscore(c) => c.validate(),
            StatsConfig::Ewma(c) => c.validate(),
            StatsConfig::Mad(c) => c.validate(),
            StatsConfig::Seasonal(c) => c.validate(),
            StatsConfig::ChangePoint(c) => c.validate(),
            StatsConfig::Streaming(c) => c.validate(),
        }
    }

    /// A fresh pipeline detector (call [`StatsConfig::validate`] first).
    pub fn build(&self) -> Box<dyn Detector> {
        match self {
            StatsConfig::Zscore(c) => c.build(),
            StatsConfig::Ewma(c) => c.build(),
            StatsConfig::Mad(c) => c.build(),
            StatsConfig::Seasonal(c) => c.build(),
            StatsConfig::ChangePoint(c) => c.build(),
            StatsConfig::Streaming(c) => c.build(),
        }
    }

    /// A fresh model behind the plain `update(ts_ms, value)` API (call
    /// [`StatsConfig::validate`] first).
    pub fn build_series(&self) -> Box<dyn SeriesUpdate> {
        match self {
            StatsConfig::Zscore(c) => Box::new(c.model()),
            StatsConfig::Ewma(c) => Box::new(c.model()),
            StatsConfig::Mad(c) => Box::new(c.model()),
            StatsConfig::Seasonal(c) => Box::new(c.model()),
            StatsConfig::ChangePoint(c) => Box::new(c.model()),
            StatsConfig::Streaming(c) => Box::new(c.model()),
        }
    }
}
