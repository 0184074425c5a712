//! NAB's windowed Gaussian reference detector
//! (`nab/detectors/gaussian/windowedGaussian_detector.py`).
//!
//! Mean and standard deviation of the last ≤ 6,400 values; while the window fills they are
//! recomputed after every value, then once every 100 values (the window slides by a block of
//! 100). Score = 1 − two-sided Gaussian tail probability of the value, i.e. `erf(|z|/√2)`, which
//! saturates at 1.0 in float64 beyond |z| ≈ 8.3. A zero standard deviation becomes 1e-6. No
//! suppression, no global information. It is here as the baseline every real detector must beat.

use std::collections::VecDeque;

use oddity_detect::Verdict;
use oddity_detect::stats::SeriesUpdate;
use oddity_detect::stats::tail::erfc;

/// Values in the window.
const WINDOW: usize = 6400;
/// The window slides by this many values at a time once full.
const STEP: usize = 100;

/// The windowed Gaussian detector.
#[derive(Debug, Clone, Default)]
pub struct WindowedGaussian {
    window: VecDeque<f64>,
    step: Vec<f64>,
    mean: f64,
    std: f64,
}

impl WindowedGaussian {
    /// A fresh detector.
    pub fn new() -> Self {
        WindowedGaussian {
            window: VecDeque::new(),
            step: Vec::new(),
            mean: 0.0,
            std: 1.0,
        }
    }

    fn refit(&mut self) {
        let n = self.window.len() as f64;
        self.mean = self.window.iter().sum::<f64>() / n;
        let var = self
            .window
            .iter()
            .map(|v| (v - self.mean).powi(2))
            .sum::<f64>()
            / n;
        self.std = var.sqrt();
        if self.std == 0.0 {
            self.std = 1e-6;
        }
    }
}

impl SeriesUpdate for WindowedGaussian {
    fn update(&mut self, _ts_ms: i64, x: f64) -> Verdict {
        if !x.is_finite() {
            return Verdict::normal();
        }
        let score = if self.window.is_empty() {
            0.0
        } else {
            let z = (x - self.mean).abs() / self.std;
            1.0 - erfc(z / std::f64::consts::SQRT_2)
        };
        if self.window.len() < WINDOW {
            self.window.push_back(x);
            self.refit();
        } else {
            self.step.push(x);
            if self.step.len() == STEP {
                self.window.drain(..STEP);
                self.window.extend(self.step.drain(..));
                self.refit();
            }
        }
        Verdict::scored(score.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_one_minus_two_sided_tail() {
        let mut d = WindowedGaussian::new();
        assert_eq!(d.update(0, 1.0).score, 0.0);
        d.update(0, 3.0); // mean 2, std 1
        let s = d.update(0, 4.0).score; // z = 2 (vs mean 2, std 1): erf(2/√2) = 0.9545
        assert!((s - 0.954_499_7).abs() < 1e-6, "{s}");
        assert_eq!(d.update(0, 1e9).score, 1.0);
        assert_eq!(d.update(0, f64::NAN).score, 0.0);
    }
}
