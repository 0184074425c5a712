//! Robust median/MAD: the point against the median of the last `window` values, in units of the
//! median absolute deviation.
//!
//! `z = 0.6745 · (x − median) / MAD` is the robust z-score of Iglewicz & Hoaglin; it equals the
//! ordinary z-score for Gaussian data but one outlier (or a few) cannot inflate the spread and hide
//! itself, unlike [`super::zscore`]. When more than half the window is one value (sparse counts:
//! mostly zeros), MAD is 0 and the mean absolute deviation around the median (× √(π/2)) is used
//! instead; a constant window scores 0 like every detector here.

use serde::{Deserialize, Serialize};

use super::series::{SeriesDetector, SeriesModel, SeriesUpdate, explain, num, spread_floor};
use super::tail::score_from_z;
use super::window::SortedWindow;
use crate::{Detector, DetectorKind, Verdict};

/// Consistency constant: `MAD / 0.6745` estimates a Gaussian standard deviation.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;
/// `sqrt(pi / 2)`: mean absolute deviation to a Gaussian standard deviation.
const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// Parameters of the median/MAD detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MadConfig {
    /// Number of past values the median and MAD are computed over.
    pub window: usize,
    /// Number of past values needed before a point is scored.
    pub warmup: usize,
    /// Robust `|z|` at or above which a point is anomalous.
    pub threshold: f64,
}

impl Default for MadConfig {
    fn default() -> Self {
        MadConfig {
            window: 256,
            warmup: 30,
            threshold: 5.0,
        }
    }
}

impl MadConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.window < 3 {
            errors.push(format!("window must be at least 3, got {}", self.window));
        }
        if self.warmup < 3 || self.warmup > self.window {
            errors.push(format!(
                "warmup must be in 3..=window ({}), got {}",
                self.window, self.warmup
            ));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            errors.push(format!(
                "threshold must be a positive robust z-score, got {}",
                self.threshold
            ));
        }
        errors
    }

    /// A fresh model.
    pub fn model(&self) -> Mad {
        Mad {
            config: self.clone(),
            window: SortedWindow::new(self.window),
        }
    }

    /// A fresh detector.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(SeriesDetector::new(self.model()))
    }
}

/// The median/MAD model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mad {
    config: MadConfig,
    window: SortedWindow,
}

/// Robust centre and sigma of a sorted window: median and MAD-derived spread with the mean
/// absolute deviation as fallback. `None` when empty.
pub(crate) fn robust_center_sigma(window: &SortedWindow) -> Option<(f64, f64)> {
    let median = window.median()?;
    let mad = window.mad(median)?;
    let sigma = if mad > 0.0 {
        mad * MAD_TO_SIGMA
    } else {
        let n = window.len() as f64;
        window
            .sorted()
            .iter()
            .map(|v| (v - median).abs())
            .sum::<f64>()
            / n
            * MEAN_AD_TO_SIGMA
    };
    Some((median, sigma.max(spread_floor(median))))
}

impl SeriesUpdate for Mad {
    fn update(&mut self, _ts_ms: i64, x: f64) -> Verdict {
        if !x.is_finite() {
            return Verdict::normal();
        }
        let verdict = match robust_center_sigma(&self.window) {
            Some((median, sigma)) if self.window.len() >= self.config.warmup => {
                let z = (x - median) / sigma;
                let score = score_from_z(z);
                if z.abs() >= self.config.threshold {
                    let band = self.config.threshold * sigma;
                    Verdict::anomaly(
                        score,
                        explain(
                            x,
                            median - band,
                            median + band,
                            "value",
                            [
                                ("robust_z", num(z)),
                                ("median", num(median)),
                                ("sigma", num(sigma)),
                            ],
                        ),
                    )
                } else {
                    Verdict::scored(score)
                }
            }
            _ => Verdict::normal(),
        };
        self.window.push(x);
        verdict
    }
}

impl SeriesModel for Mad {
    const KIND: DetectorKind = DetectorKind::Mad;
}
