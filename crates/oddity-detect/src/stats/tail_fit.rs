//! Empirical tail probabilities with a peaks-over-threshold extension beyond the observed range.
//!
//! Given the recent values of a feature (a [`SortedWindow`]), the probability of seeing a value at
//! least as extreme as `x` is estimated in two regimes (SPOT, Siffer et al., KDD 2017, with the
//! exponential member of the generalised Pareto family for robustness on short histories):
//! - inside the bulk, by rank: `P(X ≥ x) ≈ (#{v ≥ x} + 1) / (n + 1)`;
//! - beyond the tail threshold `u` (the value with `m = ⌈tail_fraction · n⌉` values above it), by
//!   an exponential tail fitted to those `m` excesses: `P(X ≥ x) ≈ m/(n+1) · exp(−(x − u)/β)` with
//!   `β` their mean excess (the maximum-likelihood scale).
//!
//! The rank regime cannot say anything rarer than `1/(n+1)`; the exponential tail is what lets a
//! new running extreme far past the old range score as the near-impossible event it is, while a
//! heavy-tailed series (large `β`) needs a proportionally larger excursion. `β` is floored at a
//! small fraction of the window's range, so a tail made of one repeated value does not make every
//! tiny excess infinitely surprising; a constant window still treats any departure as certain
//! news, which is right: that is a real change.

use super::series::spread_floor;
use super::window::SortedWindow;

/// Minimum number of tail points the exponential is fitted to.
const MIN_TAIL_POINTS: usize = 5;
/// Floor of the tail scale as a fraction of the window's range.
const MIN_SCALE_OF_RANGE: f64 = 0.01;

/// `ln` of the upper and lower tail probabilities of `x` against the values in `window`.
/// Both are 0 (probability 1) when the window holds fewer than `2 · MIN_TAIL_POINTS` values.
pub fn ln_tail_probabilities(window: &SortedWindow, x: f64, tail_fraction: f64) -> (f64, f64) {
    let v = window.sorted();
    let n = v.len();
    if n < 2 * MIN_TAIL_POINTS {
        return (0.0, 0.0);
    }
    let m = ((tail_fraction * n as f64).ceil() as usize).clamp(MIN_TAIL_POINTS, n - 1);
    let range = v[n - 1] - v[0];
    let denom = (n + 1) as f64;
    let ln_tail_mass = (m as f64 / denom).ln();

    // Upper tail.
    let u = v[n - 1 - m];
    let up = if x > u {
        let mean_excess = v[n - m..].iter().map(|t| t - u).sum::<f64>() / m as f64;
        let beta = mean_excess
            .max(MIN_SCALE_OF_RANGE * range)
            .max(spread_floor(u));
        ln_tail_mass - (x - u) / beta
    } else {
        let at_least = n - v.partition_point(|&t| t < x);
        ((at_least + 1) as f64 / denom).ln()
    };

    // Lower tail (mirror image).
    let l = v[m];
    let down = if x < l {
        let mean_excess = v[..m].iter().map(|t| l - t).sum::<f64>() / m as f64;
        let beta = mean_excess
            .max(MIN_SCALE_OF_RANGE * range)
            .max(spread_floor(l));
        ln_tail_mass - (l - x) / beta
    } else {
        let at_most = v.partition_point(|&t| t <= x);
        ((at_most + 1) as f64 / denom).ln()
    };
    (up.min(0.0), down.min(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(values: impl IntoIterator<Item = f64>) -> SortedWindow {
        let mut w = SortedWindow::new(10_000);
        for x in values {
            w.push(x);
        }
        w
    }

    #[test]
    fn bulk_uses_ranks() {
        let w = window((0..99).map(f64::from));
        let (up, down) = ln_tail_probabilities(&w, 49.0, 0.05);
        assert!((up.exp() - 51.0 / 100.0).abs() < 1e-12);
        assert!((down.exp() - 51.0 / 100.0).abs() < 1e-12);
    }

    #[test]
    fn beyond_the_range_decays_exponentially() {
        let w = window((0..1000).map(|i| f64::from(i % 100)));
        let (near, _) = ln_tail_probabilities(&w, 100.0, 0.05);
        let (far, _) = ln_tail_probabilities(&w, 200.0, 0.05);
        assert!(near > far + 10.0, "{near} {far}");
        assert!(far.is_finite());
    }

    #[test]
    fn constant_window_is_certain_about_itself() {
        let w = window(std::iter::repeat_n(3.0, 100));
        let (up, down) = ln_tail_probabilities(&w, 3.0, 0.05);
        assert!(up > -0.01 && down > -0.01);
        let (up, _) = ln_tail_probabilities(&w, 4.0, 0.05);
        assert!(up < -1e6);
    }
}
