//! Running moments: exponentially weighted mean and variance.
//!
//! [`Ewm`] uses the incremental form of West (1979) / Finch (2009), "Incremental calculation of
//! weighted mean and variance": one multiply-add per moment, no history, numerically stable
//! (the variance update never subtracts two large sums). While fewer than `1/alpha` values have
//! been seen it weights them equally (`alpha_n = max(alpha, 1/n)`), so the first estimates are
//! plain sample moments instead of being biased towards the first value.

use serde::{Deserialize, Serialize};

/// Exponentially weighted mean and variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ewm {
    /// Smoothing factor in (0, 1]: the weight of the newest value once warmed up.
    pub alpha: f64,
    /// Number of values seen (saturating).
    pub n: u64,
    /// Current mean.
    #[serde(with = "crate::compact::f64_exact")]
    pub mean: f64,
    /// Current (population) variance.
    #[serde(with = "crate::compact::f64_exact")]
    pub var: f64,
}

impl Ewm {
    /// An empty estimator.
    pub fn new(alpha: f64) -> Self {
        Ewm {
            alpha,
            n: 0,
            mean: 0.0,
            var: 0.0,
        }
    }

    /// Adds one finite value.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n = self.n.saturating_add(1);
        let a = self.alpha.max(1.0 / self.n as f64);
        let d = x - self.mean;
        let incr = a * d;
        self.mean += incr;
        self.var = (1.0 - a) * (self.var + d * incr);
    }

    /// Standard deviation.
    #[inline]
    pub fn std(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_while_warming_up() {
        let mut m = Ewm::new(0.01);
        for x in [1.0, 2.0, 3.0, 4.0] {
            m.push(x);
        }
        assert!((m.mean - 2.5).abs() < 1e-12);
        assert!((m.var - 1.25).abs() < 1e-12);
    }

    #[test]
    fn constant_input_has_zero_variance() {
        let mut m = Ewm::new(0.1);
        for _ in 0..1000 {
            m.push(1e12);
        }
        assert_eq!(m.mean, 1e12);
        assert_eq!(m.var, 0.0);
    }
}
