//! EWMA control limits: the point against an exponentially weighted mean ± `threshold`
//! exponentially weighted standard deviations.
//!
//! Mean and variance follow [`super::moments::Ewm`] (one multiply-add each, no history), so the
//! band adapts to slow drift with a memory of about `1/alpha` points while a sudden jump stands
//! out. The point is scored before it updates the moments (causal). Constant series: see
//! [`super::zscore`].

use serde::{Deserialize, Serialize};

use super::moments::Ewm;
use super::series::{SeriesDetector, SeriesModel, SeriesUpdate, z_verdict};
use crate::{Detector, DetectorKind, Verdict};

/// Parameters of the EWMA control-limit detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwmaConfig {
    /// Weight of the newest value in the mean and variance, in (0, 1): memory ≈ `1/alpha` points.
    pub alpha: f64,
    /// Number of values needed before a point is scored.
    pub warmup: usize,
    /// Width of the control limits in standard deviations.
    pub threshold: f64,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        EwmaConfig {
            alpha: 0.05,
            warmup: 30,
            threshold: 4.0,
        }
    }
}

impl EwmaConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            errors.push(format!("alpha must be in (0, 1), got {}", self.alpha));
        }
        if self.warmup < 2 {
            errors.push(format!("warmup must be at least 2, got {}", self.warmup));
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
    pub fn model(&self) -> Ewma {
        Ewma {
            config: self.clone(),
            moments: Ewm::new(self.alpha),
        }
    }

    /// A fresh detector.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(SeriesDetector::new(self.model()))
    }
}

/// The EWMA control-limit model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    config: EwmaConfig,
    moments: Ewm,
}

impl SeriesUpdate for Ewma {
    #[inline]
    fn update(&mut self, _ts_ms: i64, x: f64) -> Verdict {
        if !x.is_finite() {
            return Verdict::normal();
        }
        let verdict = if self.moments.n >= self.config.warmup as u64 {
            z_verdict(
                x,
                self.moments.mean,
                self.moments.std(),
                self.config.threshold,
                ["ewma", "ewm_std"],
            )
        } else {
            Verdict::normal()
        };
        self.moments.push(x);
        verdict
    }
}

impl SeriesModel for Ewma {
    const KIND: DetectorKind = DetectorKind::Ewma;
}
