//! Seasonal baseline: level + per-phase offset (additive Holt-Winters without trend), with a
//! forecast band from the residual spread.
//!
//! - **Phase from timestamps.** A point's phase bin is `(ts mod period) · bins / period`, so
//!   irregular sampling and gaps are handled: a bin is "this time of day" (or of week), not "the
//!   n-th point".
//! - **Period detection.** With no configured `period` the model buffers the first points and
//!   measures how alike consecutive cycles are: the Pearson correlation of per-bin means between
//!   cycle c and c+1 (an autocorrelation at the seasonal lag that tolerates gaps and irregular
//!   sampling). Daily is tested once the data spans two days, weekly once it spans two weeks; a
//!   correlation of at least 0.5 adopts the period, and the buffer is replayed into the seasonal
//!   model (it is past data, so the detector stays causal). Until then, and when no period is
//!   found, the model is a plain EWMA level.
//! - **Forecast and score.** `forecast = level + season[bin]`; the residual `x − forecast` is
//!   divided by its exponentially weighted standard deviation and scored like every detector here.
//!   Level, offsets and residual spread all learn from every point after it is scored.
//!
//! Period detection and the model are written here instead of using augurs' MSTL: MSTL refits a
//! batch decomposition, which a per-point streaming detector would have to redo on every point,
//! and the crate costs minutes of build time on a two-core machine for what is ~150 lines here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::moments::Ewm;
use super::series::{SeriesDetector, SeriesModel, SeriesUpdate, explain, num, spread_floor};
use super::tail::score_from_z;
use crate::{Detector, DetectorKind, Verdict};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Points buffered while looking for a period before giving up.
const MAX_DETECTION_BUFFER: usize = 16_384;
/// Cycle-to-cycle correlation needed to adopt a period.
const MIN_SEASONAL_CORRELATION: f64 = 0.5;

/// Parameters of the seasonal-baseline detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeasonalConfig {
    /// The season length (`1day`, `7days`, `12h`); absent: detect daily or weekly from the data.
    #[serde(with = "humantime_serde")]
    pub period: Option<Duration>,
    /// Number of phase bins per period (48 = half-hour bins for a daily period).
    pub bins: usize,
    /// Weight of the newest value in the level and the residual spread, in (0, 1).
    pub alpha: f64,
    /// Weight of the newest value in its phase bin's offset, in (0, 1].
    pub gamma: f64,
    /// Number of points the model learns before scoring (after the period is known).
    pub warmup: usize,
    /// Residual `|z|` at or above which a point is anomalous.
    pub threshold: f64,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        SeasonalConfig {
            period: None,
            bins: 48,
            alpha: 0.02,
            gamma: 0.1,
            warmup: 30,
            threshold: 4.0,
        }
    }
}

impl SeasonalConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(p) = self.period
            && p.as_millis() < 2
        {
            errors.push(format!("period must be at least 2ms, got {p:?}"));
        }
        if self.bins < 2 || self.bins > 10_080 {
            errors.push(format!("bins must be in 2..=10080, got {}", self.bins));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            errors.push(format!("alpha must be in (0, 1), got {}", self.alpha));
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            errors.push(format!("gamma must be in (0, 1], got {}", self.gamma));
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
    pub fn model(&self) -> Seasonal {
        let period_ms = self
            .period
            .map(|p| i64::try_from(p.as_millis()).unwrap_or(i64::MAX));
        let mut model = Seasonal {
            config: self.clone(),
            period_ms,
            detecting: period_ms.is_none(),
            buffer: Vec::new(),
            level: Ewm::new(self.alpha),
            season: Vec::new(),
            resid: Ewm::new(self.alpha),
            learned: 0,
        };
        model.reset_fit();
        model
    }

    /// A fresh detector.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(SeriesDetector::new(self.model()))
    }
}

/// The seasonal-baseline model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seasonal {
    config: SeasonalConfig,
    /// The period in use (None: level only).
    period_ms: Option<i64>,
    /// Still looking for a period.
    detecting: bool,
    /// Points kept while detecting, replayed once a period is adopted.
    #[serde(with = "crate::compact::timed_f64s")]
    buffer: Vec<(i64, f64)>,
    level: Ewm,
    /// Offset per phase bin (None until the bin is first seen).
    #[serde(with = "crate::compact::opt_f64_exact_vec")]
    season: Vec<Option<f64>>,
    resid: Ewm,
    learned: u64,
}

impl Seasonal {
    /// The period the model uses, once known.
    pub fn period_ms(&self) -> Option<i64> {
        self.period_ms
    }

    fn reset_fit(&mut self) {
        self.level = Ewm::new(self.config.alpha);
        self.resid = Ewm::new(self.config.alpha);
        self.season = if self.period_ms.is_some() {
            vec![None; self.config.bins]
        } else {
            Vec::new()
        };
        self.learned = 0;
    }

    fn bin(&self, ts: i64) -> Option<usize> {
        let p = self.period_ms?;
        let phase = ts.rem_euclid(p) as i128;
        Some(((phase * self.config.bins as i128 / p as i128) as usize).min(self.config.bins - 1))
    }

    fn forecast(&self, ts: i64) -> f64 {
        let offset = self
            .bin(ts)
            .and_then(|b| self.season.get(b).copied().flatten())
            .unwrap_or(0.0);
        self.level.mean + offset
    }

    fn learn(&mut self, ts: i64, x: f64) {
        let r = x - self.forecast(ts);
        if self.learned > 0 {
            self.resid.push(r);
        }
        let level = if self.learned == 0 {
            x
        } else {
            self.level.mean
        };
        let gamma = self.config.gamma;
        let offset = match self.bin(ts).and_then(|b| self.season.get_mut(b)) {
            Some(slot) => {
                let target = x - level;
                let s = slot.map_or(target, |s| s + gamma * (target - s));
                *slot = Some(s);
                s
            }
            None => 0.0,
        };
        self.level.push(x - offset);
        self.learned += 1;
    }

    /// Looks for a daily or weekly period in the buffer; adopts it (or gives up) when decided.
    fn try_detect(&mut self) {
        let (Some(first), Some(last)) = (self.buffer.first(), self.buffer.last()) else {
            return;
        };
        let span = last.0.saturating_sub(first.0);
        let bins = self.config.bins;
        let mut chosen = None;
        if span >= 2 * DAY_MS && self.buffer.len() >= 2 * bins.min(48) {
            if self.period_ms.is_none()
                && cycle_correlation(&self.buffer, DAY_MS, bins) >= MIN_SEASONAL_CORRELATION
            {
                chosen = Some(DAY_MS);
            } else if span >= 2 * WEEK_MS {
                if cycle_correlation(&self.buffer, WEEK_MS, bins) >= MIN_SEASONAL_CORRELATION {
                    chosen = Some(WEEK_MS);
                }
                self.detecting = false;
            }
        }
        if self.buffer.len() >= MAX_DETECTION_BUFFER {
            self.detecting = false;
        }
        if let Some(p) = chosen {
            self.detecting = false;
            self.period_ms = Some(p);
            self.reset_fit();
            let buffer = std::mem::take(&mut self.buffer);
            for &(ts, x) in &buffer {
                self.learn(ts, x);
            }
        }
        if !self.detecting {
            self.buffer = Vec::new();
        }
    }
}

/// Mean correlation between the per-bin means of consecutive cycles of length `period`.
fn cycle_correlation(points: &[(i64, f64)], period: i64, bins: usize) -> f64 {
    let Some(&(t0, _)) = points.first() else {
        return 0.0;
    };
    // Out-of-order or wild timestamps could name absurd cycle numbers: only cycles a sane
    // series can fill (at most one per point) are kept.
    let max_cycles = points.len();
    let mut cycles: Vec<Vec<(f64, u32)>> = Vec::new();
    for &(ts, x) in points {
        let Ok(c) = usize::try_from(ts.saturating_sub(t0).div_euclid(period)) else {
            continue;
        };
        if c >= max_cycles {
            continue;
        }
        let b = ((ts.rem_euclid(period) as i128 * bins as i128 / period as i128) as usize)
            .min(bins - 1);
        if cycles.len() <= c {
            cycles.resize(c + 1, vec![(0.0, 0); bins]);
        }
        let slot = &mut cycles[c][b];
        slot.0 += x;
        slot.1 += 1;
    }
    let mut total = 0.0;
    let mut pairs = 0;
    for w in cycles.windows(2) {
        let (a, b): (Vec<f64>, Vec<f64>) = w[0]
            .iter()
            .zip(&w[1])
            .filter(|(p, q)| p.1 > 0 && q.1 > 0)
            .map(|(p, q)| (p.0 / f64::from(p.1), q.0 / f64::from(q.1)))
            .unzip();
        if a.len() >= 4 {
            total += pearson(&a, &b);
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        total / f64::from(pairs)
    }
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

impl Seasonal {
    /// Scores nothing: returns the forecast for `(ts, x)` (None while warming up), then learns
    /// from the point. [`SeriesUpdate::update`] and the default streaming detector build on it.
    pub fn forecast_then_learn(&mut self, ts: i64, x: f64) -> Option<f64> {
        let forecast = (self.learned >= self.config.warmup as u64).then(|| self.forecast(ts));
        self.learn(ts, x);
        if self.detecting {
            self.buffer.push((ts, x));
            // Re-test every 64 points: the test is O(buffer), so testing every point would be
            // quadratic over the (up to two-week) detection buffer.
            if self.buffer.len().is_multiple_of(64) {
                self.try_detect();
            }
        }
        forecast
    }

    /// The residual spread the band is built from.
    pub fn residual_std(&self) -> f64 {
        self.resid.std()
    }
}

impl SeriesUpdate for Seasonal {
    fn update(&mut self, ts: i64, x: f64) -> Verdict {
        if !x.is_finite() {
            return Verdict::normal();
        }
        let std = self.resid.std();
        let Some(forecast) = self.forecast_then_learn(ts, x) else {
            return Verdict::normal();
        };
        let std = std.max(spread_floor(forecast));
        let z = (x - forecast) / std;
        let score = score_from_z(z);
        if z.abs() >= self.config.threshold {
            let band = self.config.threshold * std;
            let period = self.period_ms.map_or(serde_json::Value::Null, |p| {
                serde_json::Value::from(p / 1000)
            });
            Verdict::anomaly(
                score,
                explain(
                    x,
                    forecast - band,
                    forecast + band,
                    "value",
                    [
                        ("z", num(z)),
                        ("forecast", num(forecast)),
                        ("period_s", period),
                    ],
                ),
            )
        } else {
            Verdict::scored(score)
        }
    }
}

impl SeriesModel for Seasonal {
    const KIND: DetectorKind = DetectorKind::Seasonal;
}
