//! Windows over the last N values: running sums and an order-statistics window.
//!
//! - [`RollingMoments`] keeps the sum and sum of squares of the last `capacity` values, *shifted*
//!   by a reference value so that series far from zero (1e9 ± 1) do not lose their variance to
//!   cancellation, and recomputes both sums exactly every `capacity` pushes so that rounding
//!   drift never accumulates. Push is O(1).
//! - [`SortedWindow`] keeps the same values in arrival order and in sorted order, so medians,
//!   quantiles and ranks are O(1)/O(log n) reads; push is O(capacity) memmove, which is cheap for
//!   the few hundred to few thousand values the detectors keep.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Mean and variance of the last `capacity` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingMoments {
    capacity: usize,
    #[serde(with = "crate::compact::f64_deque")]
    values: VecDeque<f64>,
    #[serde(with = "crate::compact::f64_exact")]
    shift: f64,
    #[serde(with = "crate::compact::f64_exact")]
    sum: f64,
    #[serde(with = "crate::compact::f64_exact")]
    sum_sq: f64,
    since_exact: usize,
}

impl RollingMoments {
    /// An empty window of `capacity` values (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RollingMoments {
            capacity,
            values: VecDeque::with_capacity(capacity),
            shift: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            since_exact: 0,
        }
    }

    /// Number of values held.
    #[inline]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no value is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds a finite value, evicting the oldest when full.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if self.values.is_empty() {
            self.shift = x;
        }
        if self.values.len() == self.capacity
            && let Some(old) = self.values.pop_front()
        {
            let d = old - self.shift;
            self.sum -= d;
            self.sum_sq -= d * d;
        }
        let d = x - self.shift;
        self.sum += d;
        self.sum_sq += d * d;
        self.values.push_back(x);
        self.since_exact += 1;
        if self.since_exact >= self.capacity {
            self.recompute();
        }
    }

    /// Recomputes the sums exactly, re-centred on the current mean.
    fn recompute(&mut self) {
        self.since_exact = 0;
        let n = self.values.len().max(1) as f64;
        self.shift += self.sum / n;
        let (mut s, mut s2) = (0.0, 0.0);
        for &v in &self.values {
            let d = v - self.shift;
            s += d;
            s2 += d * d;
        }
        self.sum = s;
        self.sum_sq = s2;
    }

    /// Mean of the window (0 when empty).
    #[inline]
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            0.0
        } else {
            self.shift + self.sum / self.values.len() as f64
        }
    }

    /// Population standard deviation of the window (0 when fewer than two values).
    #[inline]
    pub fn std(&self) -> f64 {
        let n = self.values.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let m = self.sum / n;
        (self.sum_sq / n - m * m).max(0.0).sqrt()
    }
}

/// The last `capacity` values, in arrival order and sorted.
///
/// Serialised as the values in arrival order only; the sorted copy is rebuilt on load, which
/// halves the size of a saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "SortedWindowState", from = "SortedWindowState")]
pub struct SortedWindow {
    capacity: usize,
    order: VecDeque<f64>,
    sorted: Vec<f64>,
}

/// The saved form of a [`SortedWindow`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SortedWindowState {
    capacity: usize,
    #[serde(with = "crate::compact::f64_deque")]
    values: VecDeque<f64>,
}

impl From<SortedWindow> for SortedWindowState {
    fn from(w: SortedWindow) -> Self {
        SortedWindowState {
            capacity: w.capacity,
            values: w.order,
        }
    }
}

impl From<SortedWindowState> for SortedWindow {
    fn from(s: SortedWindowState) -> Self {
        let mut w = SortedWindow::new(s.capacity);
        for x in s.values {
            w.push(x);
        }
        w
    }
}

impl SortedWindow {
    /// An empty window of `capacity` values (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        SortedWindow {
            capacity,
            order: VecDeque::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
        }
    }

    /// Number of values held.
    #[inline]
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when no value is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The capacity given at construction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a finite value, evicting the oldest when full.
    pub fn push(&mut self, x: f64) {
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            let i = self.sorted.partition_point(|&v| v < old);
            if i < self.sorted.len() {
                self.sorted.remove(i);
            }
        }
        let i = self.sorted.partition_point(|&v| v < x);
        self.sorted.insert(i, x);
        self.order.push_back(x);
    }

    /// The values in ascending order.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// The values in arrival order, oldest first.
    pub fn in_order(&self) -> impl Iterator<Item = f64> + '_ {
        self.order.iter().copied()
    }

    /// The most recent value.
    pub fn last(&self) -> Option<f64> {
        self.order.back().copied()
    }

    /// The `q` quantile (0..=1), linearly interpolated; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile_sorted(&self.sorted, q)
    }

    /// The median; `None` when empty.
    pub fn median(&self) -> Option<f64> {
        self.quantile(0.5)
    }

    /// The median absolute deviation from `center`; `None` when empty.
    ///
    /// O(n) and allocation-free: the deviations left of `center` and right of it are two sorted
    /// runs (walking outwards from `center`), merged until the middle is reached.
    pub fn mad(&self, center: f64) -> Option<f64> {
        let v = &self.sorted;
        let n = v.len();
        if n == 0 {
            return None;
        }
        let (lo_rank, hi_rank) = ((n - 1) / 2, n / 2);
        let mut left = v.partition_point(|&t| t < center); // next left index is left - 1
        let mut right = left;
        let (mut lo, mut hi) = (0.0, 0.0);
        for rank in 0..=hi_rank {
            let from_left = (left > 0).then(|| center - v[left - 1]);
            let from_right = (right < n).then(|| v[right] - center);
            let dev = match (from_left, from_right) {
                (Some(a), Some(b)) if a <= b => {
                    left -= 1;
                    a
                }
                (_, Some(b)) => {
                    right += 1;
                    b
                }
                (Some(a), None) => {
                    left -= 1;
                    a
                }
                (None, None) => break,
            };
            if rank == lo_rank {
                lo = dev;
            }
            if rank == hi_rank {
                hi = dev;
            }
        }
        Some(0.5 * (lo + hi))
    }
}

/// The `q` quantile of ascending `sorted`, linearly interpolated.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil().min((n - 1) as f64) as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mad_matches_sorting_the_deviations() {
        let mut w = SortedWindow::new(50);
        let mut seed = 17_u64;
        for len in 1..120 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            w.push(((seed >> 40) % 13) as f64);
            for center in [-1.0, 0.0, 3.5, 6.0, 20.0, w.median().unwrap()] {
                let mut dev: Vec<f64> = w.sorted().iter().map(|v| (v - center).abs()).collect();
                dev.sort_unstable_by(f64::total_cmp);
                assert_eq!(
                    w.mad(center),
                    quantile_sorted(&dev, 0.5),
                    "len {len} center {center}"
                );
            }
        }
    }

    #[test]
    fn rolling_moments_follow_the_window() {
        let mut w = RollingMoments::new(3);
        for x in [1.0, 2.0, 3.0, 4.0] {
            w.push(x);
        }
        assert_eq!(w.len(), 3);
        assert!((w.mean() - 3.0).abs() < 1e-12);
        assert!((w.std() - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn rolling_moments_keep_precision_far_from_zero() {
        let mut w = RollingMoments::new(100);
        for i in 0..10_000 {
            w.push(1e9 + (i % 2) as f64);
        }
        assert!((w.std() - 0.5).abs() < 1e-9, "{}", w.std());
    }

    #[test]
    fn sorted_window_quantiles() {
        let mut w = SortedWindow::new(4);
        for x in [5.0, 1.0, 3.0, 2.0, 4.0] {
            w.push(x);
        }
        assert_eq!(w.sorted(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(w.median(), Some(2.5));
        assert_eq!(w.mad(2.5), Some(1.0));
        assert_eq!(w.mad(0.0), Some(2.5));
        assert_eq!(w.mad(10.0), Some(7.5));
        assert_eq!(w.last(), Some(4.0));
        assert_eq!(SortedWindow::new(3).median(), None);
    }
}
