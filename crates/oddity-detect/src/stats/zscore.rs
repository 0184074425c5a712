//! Rolling z-score: the point against the mean and standard deviation of the last `window`
//! values.
//!
//! The statistic is `z = (x - mean) / std` over the window *before* `x` is added (causal), and
//! the score is the two-sided Gaussian tail of `z` on the shared scale of [`super::tail`]. The
//! window keeps shifted running sums (O(1) per point, see [`super::window::RollingMoments`]), which
//! is what lets this detector run at tens of millions of points per second. A constant window has
//! std 0: the spread is floored at a relative 1e-9 so that a constant series scores 0 while a real
//! departure from it scores 1.

use serde::{Deserialize, Serialize};

use super::series::{SeriesDetector, SeriesModel, SeriesUpdate, z_verdict};
use super::window::RollingMoments;
use crate::{Detector, DetectorKind, Verdict};

/// Parameters of the rolling z-score detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZscoreConfig {
    /// Number of past values the mean and standard deviation are computed over.
    pub window: usize,
    /// Number of past values needed before a point is scored (points before score 0).
    pub warmup: usize,
    /// `|z|` at or above which a point is anomalous.
    pub threshold: f64,
}

impl Default for ZscoreConfig {
    fn default() -> Self {
        ZscoreConfig {
            window: 100,
            warmup: 30,
            threshold: 4.0,
        }
    }
}

impl ZscoreConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.window < 2 {
            errors.push(format!("window must be at least 2, got {}", self.window));
        }
        if self.warmup < 2 || self.warmup > self.window {
            errors.push(format!(
                "warmup must be in 2..=window ({}), got {}",
                self.window, self.warmup
            ));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            errors.push(format!(
                "threshold must be a positive number of standard deviations, got {}",
                self.threshold
            ));
        }
        errors
    }

    /// A fresh model.
    pub fn model(&self) -> Zscore {
        Zscore {
            config: self.clone(),
            window: RollingMoments::new(self.window),
        }
    }

    /// A fresh detector.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(SeriesDetector::new(self.model()))
    }
}

/// The rolling z-score model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Zscore {
    config: ZscoreConfig,
    window: RollingMoments,
}

impl SeriesUpdate for Zscore {
    #[inline]
    fn update(&mut self, _ts_ms: i64, x: f64) -> Verdict {
        if !x.is_finite() {
            return Verdict::normal();
        }
        let verdict = if self.window.len() >= self.config.warmup {
            z_verdict(
                x,
                self.window.mean(),
                self.window.std(),
                self.config.threshold,
                ["mean", "std"],
            )
        } else {
            Verdict::normal()
        };
        self.window.push(x);
        verdict
    }
}

impl SeriesModel for Zscore {
    const KIND: DetectorKind = DetectorKind::Zscore;
}
