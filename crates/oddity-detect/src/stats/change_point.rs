//! Change-point detection with a two-sided CUSUM on standardised values.
//!
//! Values are standardised against a slow baseline ([`super::moments::Ewm`], memory `1/alpha`):
//! `z = (x − μ) / σ`. Two cumulative sums collect evidence of a shift up and down,
//! `S⁺ ← max(0, S⁺ + z − k)` and `S⁻ ← max(0, S⁻ − z − k)`; a shift of `2k` sigmas is the one the
//! chart is tuned for (Page 1954). When either sum reaches `threshold` the point is a change
//! point: the sums reset and the baseline is re-learnt from the new regime (a fresh warm-up), so
//! one shift fires once rather than for every following point.
//!
//! Score: the in-control average run length of a CUSUM with decision interval `h` is, by
//! Siegmund's approximation, `ARL₀(h) = (e^{2kb} − 2kb − 1) / 2k²` with `b = h + 1.166`. A sum of
//! `S` is therefore about as surprising as a tail probability of `1/ARL₀(S)`, which puts the
//! CUSUM on the same score scale as the point detectors ([`super::tail`]).

use serde::{Deserialize, Serialize};

use super::moments::Ewm;
use super::series::{SeriesDetector, SeriesModel, SeriesUpdate, explain, num, spread_floor};
use super::tail::score_from_ln_p;
use crate::{Detector, DetectorKind, Verdict};

/// Parameters of the CUSUM change-point detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangePointConfig {
    /// Weight of the newest value in the baseline mean and variance, in (0, 1).
    pub alpha: f64,
    /// Allowance `k` in baseline standard deviations: shifts smaller than `k` are not accumulated.
    pub drift: f64,
    /// Decision interval `h`: a cumulative sum at or above it is a change point. The baseline stops
    /// learning while the sum is above `h/2`.
    pub threshold: f64,
    /// Number of values the baseline learns (after the start and after every change point)
    /// before sums accumulate.
    pub warmup: usize,
}

impl Default for ChangePointConfig {
    fn default() -> Self {
        ChangePointConfig {
            alpha: 0.05,
            drift: 0.5,
            threshold: 8.0,
            warmup: 30,
        }
    }
}

impl ChangePointConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            errors.push(format!("alpha must be in (0, 1), got {}", self.alpha));
        }
        if !(self.drift.is_finite() && self.drift > 0.0) {
            errors.push(format!(
                "drift must be a positive number of standard deviations, got {}",
                self.drift
            ));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            errors.push(format!(
                "threshold must be a positive cumulative sum, got {}",
                self.threshold
            ));
        }
        if self.warmup < 2 {
            errors.push(format!("warmup must be at least 2, got {}", self.warmup));
        }
        errors
    }

    /// A fresh model.
    pub fn model(&self) -> ChangePoint {
        ChangePoint {
            config: self.clone(),
            baseline: Ewm::new(self.alpha),
            up: 0.0,
            down: 0.0,
        }
    }

    /// A fresh detector.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(SeriesDetector::new(self.model()))
    }
}

/// The CUSUM model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePoint {
    config: ChangePointConfig,
    baseline: Ewm,
    #[serde(with = "crate::compact::f64_exact")]
    up: f64,
    #[serde(with = "crate::compact::f64_exact")]
    down: f64,
}

/// `ln(1 / ARL₀(s))` for a CUSUM with allowance `k` (Siegmund's approximation).
fn ln_p_of_sum(s: f64, k: f64) -> f64 {
    let x = 2.0 * k * (s + 1.166);
    // ln(e^x − x − 1) without overflow for large x.
    let ln_num = if x > 30.0 {
        x + (-(x + 1.0) * (-x).exp()).ln_1p()
    } else {
        (x.exp() - x - 1.0).max(1e-300).ln()
    };
    let ln_arl = ln_num - (2.0 * k * k).ln();
    (-ln_arl).min(0.0)
}

impl SeriesUpdate for ChangePoint {
    fn update(&mut self, _ts_ms: i64, x: f64) -> Verdict {
        if !x.is_finite() {
            return Verdict::normal();
        }
        if self.baseline.n < self.config.warmup as u64 {
            self.baseline.push(x);
            return Verdict::normal();
        }
        let mean = self.baseline.mean;
        let std = self.baseline.std().max(spread_floor(mean));
        let z = ((x - mean) / std).clamp(-1e6, 1e6);
        let k = self.config.drift;
        self.up = (self.up + z - k).max(0.0);
        self.down = (self.down - z - k).max(0.0);
        let sum = self.up.max(self.down);
        // Conditional on the chart being at rest (S = 0), so that an idle chart scores 0.
        let score = score_from_ln_p((ln_p_of_sum(sum, k) - ln_p_of_sum(0.0, k)).min(0.0));
        if sum >= self.config.threshold {
            let direction = if self.up >= self.down { "up" } else { "down" };
            let band = 3.0 * std;
            let explanation = explain(
                x,
                mean - band,
                mean + band,
                "value",
                [
                    ("cusum", num(sum)),
                    ("direction", direction.into()),
                    ("baseline_mean", num(mean)),
                ],
            );
            self.up = 0.0;
            self.down = 0.0;
            self.baseline = Ewm::new(self.config.alpha);
            self.baseline.push(x);
            return Verdict::anomaly(score, explanation);
        }
        // Learn the baseline only while the evidence of a change is weak (below half the decision
        // interval): slow drift is absorbed, but a shift cannot drag the baseline along and
        // hide itself.
        if sum < 0.5 * self.config.threshold {
            self.baseline.push(x);
        }
        Verdict::scored(score)
    }
}

impl SeriesModel for ChangePoint {
    const KIND: DetectorKind = DetectorKind::ChangePoint;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arl_score_grows_with_the_sum() {
        let k = 0.5;
        assert!(ln_p_of_sum(0.0, k) > ln_p_of_sum(4.0, k));
        assert!(ln_p_of_sum(8.0, k) > ln_p_of_sum(50.0, k));
        // h = 8, k = 0.5: ARL0 ≈ 1.9e4.
        let arl = (-ln_p_of_sum(8.0, k)).exp();
        assert!((1.5e4..2.5e4).contains(&arl), "{arl}");
        assert!(ln_p_of_sum(1e6, k).is_finite());
    }
}
