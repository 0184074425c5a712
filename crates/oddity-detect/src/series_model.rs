//! Per-series models: the model behind seed 001's `POST /fit/{series_id}` and
//! `POST /predict/{series_id}` (and oddity's `/v1/series/{id}/..`).
//!
//! A model is fitted once on a batch of `(timestamp, value)` points and then scores single points
//! against it. It is deliberately simple and fully explainable: the summary statistics of the
//! training values (n, mean, population standard deviation with ddof 0, median, MAD, min, max,
//! first and last timestamp) and an **expected band** `[mean − 3σ, mean + 3σ]`.
//!
//! # Verdict: two-sided (a deliberate deviation from seed 001)
//! Seed 001 flags `value > mean + 3·std` (strict, one-sided): a value far *below* the training
//! data is never anomalous there. oddity flags a value **outside** the band on either side,
//! strictly (a value exactly on a bound is normal). Every high-side answer of the seed is
//! unchanged (demo: fitted on 10.0, 10.5, 11.0, 10.5 is normal and 22.5 anomalous), and low
//! outliers (a sensor reading 0) are caught too.
//!
//! # Score
//! `score` uses the scale shared by every statistical detector ([`crate::stats::tail`]): the
//! two-sided Gaussian tail probability of the z-score, as `1 − 2^(log10(p) / 5)`. A point on a
//! band edge (|z| = 3, p ≈ 0.0027) scores ≈ 0.30, a 5σ point ≈ 0.53, so scores from this model
//! rank together with the streaming detectors' scores; the boolean verdict is the band test.
//!
//! # Numerics
//! Mean and variance are computed in two passes (sum / n like the reference's numpy). When the
//! values are so large that the sums overflow (or so small that squares underflow), the
//! statistics are recomputed on values scaled by the largest magnitude, so inputs near `1e300`
//! still fit; a band that itself overflows `f64` is refused ([`FitError::Overflow`]) rather than
//! stored as infinity (JSON cannot carry it).
//! MAD is the raw median of absolute deviations from the median (not scaled to σ).

use serde::{Deserialize, Serialize};

use crate::stats::tail::score_from_z;

/// Width of the expected band, in standard deviations on each side of the mean.
pub const BAND_SIGMAS: f64 = 3.0;

/// The minimum number of points a model is fitted on (seed 001's rule).
pub const MIN_POINTS: usize = 3;

/// One training point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The point's timestamp, as the client sent it (seed 001 uses epoch seconds).
    pub timestamp: i64,
    /// The observed value.
    pub value: f64,
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Fewer than [`MIN_POINTS`] points.
    #[error("at least {min} points are needed, got {got}")]
    TooFewPoints {
        /// Points given.
        got: usize,
        /// Points needed.
        min: usize,
    },
    /// Every value is equal (or the spread is zero): no band can be drawn.
    #[error("all {n} values are equal to {value}")]
    Constant {
        /// Points given.
        n: usize,
        /// The common value.
        value: f64,
    },
    /// A value is NaN or infinite.
    #[error("value at index {index} is not finite ({value})")]
    NonFinite {
        /// Position of the first offending point.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The values are so large that the band does not fit in an `f64`.
    #[error("values are too large: the expected band overflows")]
    Overflow,
}

/// Why a point could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    /// The value is NaN or infinite.
    #[error("value is not finite ({0})")]
    NonFinite(f64),
}

/// A fitted per-series model: the training summary and the expected band. Serialises to JSON
/// (the store keeps it as such).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedSeriesModel {
    /// Number of training points.
    pub n: usize,
    /// Mean of the training values.
    pub mean: f64,
    /// Population standard deviation (ddof 0) of the training values.
    pub std: f64,
    /// Median of the training values.
    pub median: f64,
    /// Median absolute deviation from the median (raw, not scaled to σ).
    pub mad: f64,
    /// Smallest training value.
    pub min: f64,
    /// Largest training value.
    pub max: f64,
    /// Earliest training timestamp.
    pub first_timestamp: i64,
    /// Latest training timestamp.
    pub last_timestamp: i64,
    /// Band width in standard deviations ([`BAND_SIGMAS`] when fitted by this version).
    pub sigmas: f64,
    /// Lower bound of the expected band (`mean − sigmas·std`).
    pub expected_low: f64,
    /// Upper bound of the expected band (`mean + sigmas·std`).
    pub expected_high: f64,
}

/// The verdict on one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPrediction {
    /// Whether the value is outside the expected band (strictly).
    pub anomaly: bool,
    /// Score in 0..1 on oddity's shared scale (see the module doc).
    pub score: f64,
    /// Lower bound of the expected band.
    pub expected_low: f64,
    /// Upper bound of the expected band.
    pub expected_high: f64,
    /// `(value − mean) / std`.
    pub z: f64,
}

impl FittedSeriesModel {
    /// Fits a model on `points` (any order).
    pub fn fit(points: &[SeriesPoint]) -> Result<FittedSeriesModel, FitError> {
        if let Some((index, p)) = points
            .iter()
            .enumerate()
            .find(|(_, p)| !p.value.is_finite())
        {
            return Err(FitError::NonFinite {
                index,
                value: p.value,
            });
        }
        let n = points.len();
        if n < MIN_POINTS {
            return Err(FitError::TooFewPoints {
                got: n,
                min: MIN_POINTS,
            });
        }
        let first = points[0].value;
        if points.iter().all(|p| p.value == first) {
            return Err(FitError::Constant { n, value: first });
        }
        let mut values: Vec<f64> = points.iter().map(|p| p.value).collect();
        let (mean, std) = mean_std(&values);
        if !(mean.is_finite() && std.is_finite()) {
            return Err(FitError::Overflow);
        }
        if std <= 0.0 {
            return Err(FitError::Constant { n, value: first });
        }
        let expected_low = mean - BAND_SIGMAS * std;
        let expected_high = mean + BAND_SIGMAS * std;
        if !(expected_low.is_finite() && expected_high.is_finite()) {
            return Err(FitError::Overflow);
        }
        values.sort_by(f64::total_cmp);
        let median = median_of_sorted(&values);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let mad = median_of_sorted(&deviations);
        let (first_timestamp, last_timestamp) =
            points.iter().fold((i64::MAX, i64::MIN), |(lo, hi), p| {
                (lo.min(p.timestamp), hi.max(p.timestamp))
            });
        Ok(FittedSeriesModel {
            n,
            mean,
            std,
            median,
            mad,
            min: values[0],
            max: values[n - 1],
            first_timestamp,
            last_timestamp,
            sigmas: BAND_SIGMAS,
            expected_low,
            expected_high,
        })
    }

    /// Scores `value` observed at `timestamp` (the timestamp is not used by this model; it is
    /// part of the signature so time-aware models can replace it without changing callers).
    pub fn predict(&self, _timestamp: i64, value: f64) -> Result<SeriesPrediction, PredictError> {
        if !value.is_finite() {
            return Err(PredictError::NonFinite(value));
        }
        let z = (value - self.mean) / self.std;
        // `(value − mean)` can overflow for values near f64::MAX: the sign is all that matters.
        let z = if z.is_nan() { 0.0 } else { z };
        Ok(SeriesPrediction {
            anomaly: value < self.expected_low || value > self.expected_high,
            score: score_from_z(z),
            expected_low: self.expected_low,
            expected_high: self.expected_high,
            z,
        })
    }

    /// Whether a training value lies outside the band (for highlighting it in plots).
    pub fn is_outside(&self, value: f64) -> bool {
        value < self.expected_low || value > self.expected_high
    }
}

/// Population mean and standard deviation (ddof 0), rescaled when the plain sums overflow.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let plain = plain_mean_std(values);
    // Rescale when the sums overflow, or when squared deviations of tiny (subnormal) values
    // underflow to a zero spread.
    if plain.0.is_finite() && plain.1.is_finite() && plain.1 > 0.0 {
        return plain;
    }
    let scale = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return plain;
    }
    let scaled: Vec<f64> = values.iter().map(|v| v / scale).collect();
    let (mean, std) = plain_mean_std(&scaled);
    (mean * scale, std * scale)
}

fn plain_mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        // Halve before adding so two huge values cannot overflow.
        sorted[n / 2 - 1] / 2.0 + sorted[n / 2] / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(values: &[f64]) -> Vec<SeriesPoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| SeriesPoint {
                timestamp: 1_693_459_200 + i as i64 * 60,
                value,
            })
            .collect()
    }

    struct FitCase {
        name: &'static str,
        values: Vec<f64>,
        expected: Result<(), FitError>,
    }

    #[test]
    fn fit_cases() {
        let cases = vec![
            FitCase {
                name: "seed demo fits",
                values: vec![10.0, 10.5, 11.0],
                expected: Ok(()),
            },
            FitCase {
                name: "empty is too few",
                values: vec![],
                expected: Err(FitError::TooFewPoints { got: 0, min: 3 }),
            },
            FitCase {
                name: "two points are too few",
                values: vec![1.0, 2.0],
                expected: Err(FitError::TooFewPoints { got: 2, min: 3 }),
            },
            FitCase {
                name: "constant values",
                values: vec![5.0; 10],
                expected: Err(FitError::Constant { n: 10, value: 5.0 }),
            },
            FitCase {
                name: "nan is refused with its index",
                values: vec![1.0, f64::NAN, 3.0],
                expected: Err(FitError::NonFinite {
                    index: 1,
                    value: f64::NAN,
                }),
            },
            FitCase {
                name: "infinity is refused",
                values: vec![1.0, 2.0, f64::INFINITY],
                expected: Err(FitError::NonFinite {
                    index: 2,
                    value: f64::INFINITY,
                }),
            },
            FitCase {
                name: "huge values fit by rescaling",
                values: vec![1e300, 2e300, 3e300],
                expected: Ok(()),
            },
            FitCase {
                name: "band beyond f64 overflows",
                values: vec![-1.7e308, 1.7e308, 0.0],
                expected: Err(FitError::Overflow),
            },
            FitCase {
                name: "tiny subnormal spread fits",
                values: vec![0.0, 1e-310, 2e-310],
                expected: Ok(()),
            },
        ];
        for case in cases {
            let got = FittedSeriesModel::fit(&pts(&case.values)).map(|_| ());
            // NaN != NaN: compare the NonFinite payload by its formatting.
            assert_eq!(
                format!("{got:?}"),
                format!("{:?}", case.expected),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn seed_demo_summary_and_verdicts() {
        let model = FittedSeriesModel::fit(&pts(&[10.0, 10.5, 11.0])).unwrap();
        assert_eq!(model.n, 3);
        assert!((model.mean - 10.5).abs() < 1e-12);
        // Population std (ddof 0): sqrt(1/6).
        assert!((model.std - (1.0_f64 / 6.0).sqrt()).abs() < 1e-12);
        assert_eq!(
            (model.median, model.mad, model.min, model.max),
            (10.5, 0.5, 10.0, 11.0)
        );
        assert_eq!(
            (model.first_timestamp, model.last_timestamp),
            (1_693_459_200, 1_693_459_320)
        );
        // Seed 001's threshold: about 11.72.
        assert!((model.expected_high - 11.724_744_871_391_59).abs() < 1e-9);

        struct PredictCase {
            name: &'static str,
            value: f64,
            anomaly: bool,
        }
        let cases = [
            PredictCase {
                name: "seed demo: 10.5 is normal",
                value: 10.5,
                anomaly: false,
            },
            PredictCase {
                name: "seed demo: 22.5 is anomalous",
                value: 22.5,
                anomaly: true,
            },
            PredictCase {
                name: "just inside the high bound",
                value: 11.7,
                anomaly: false,
            },
            PredictCase {
                name: "on the high bound is normal (strict)",
                value: model.expected_high,
                anomaly: false,
            },
            PredictCase {
                name: "low outlier is anomalous (two-sided)",
                value: 0.0,
                anomaly: true,
            },
            PredictCase {
                name: "just inside the low bound",
                value: 9.3,
                anomaly: false,
            },
        ];
        for case in cases {
            let p = model.predict(0, case.value).unwrap();
            assert_eq!(p.anomaly, case.anomaly, "{}", case.name);
            assert_eq!(
                (p.expected_low, p.expected_high),
                (model.expected_low, model.expected_high)
            );
            assert!(
                (0.0..=1.0).contains(&p.score),
                "{}: score {}",
                case.name,
                p.score
            );
        }
        let normal = model.predict(0, 10.5).unwrap();
        assert_eq!((normal.z, normal.score), (0.0, 0.0));
        let high = model.predict(0, 22.5).unwrap();
        let low = model.predict(0, -1.5).unwrap();
        assert!(high.z > 29.0 && low.z < -29.0);
        assert!(
            high.score > 0.9 && (high.score - low.score).abs() < 1e-12,
            "symmetric score"
        );
        assert!(
            matches!(model.predict(0, f64::NAN), Err(PredictError::NonFinite(v)) if v.is_nan())
        );
        assert!(model.predict(0, f64::INFINITY).is_err());
    }

    #[test]
    fn huge_values_keep_their_statistics() {
        let model = FittedSeriesModel::fit(&pts(&[1e300, 2e300, 3e300])).unwrap();
        assert!((model.mean / 2e300 - 1.0).abs() < 1e-12);
        assert!((model.std / ((2.0_f64 / 3.0).sqrt() * 1e300) - 1.0).abs() < 1e-12);
        assert!(model.predict(0, 2e300).unwrap().score < 1e-9);
        assert!(model.predict(0, 1e308).unwrap().anomaly);
        assert!(model.predict(0, -1e308).unwrap().anomaly);
    }

    #[test]
    fn unordered_points_and_json_round_trip() {
        let mut points = pts(&[4.0, 1.0, 3.0, 2.0]);
        points.reverse();
        let model = FittedSeriesModel::fit(&points).unwrap();
        assert_eq!((model.median, model.mad), (2.5, 1.0));
        assert_eq!(
            (model.first_timestamp, model.last_timestamp),
            (1_693_459_200, 1_693_459_380)
        );
        let json = serde_json::to_string(&model).unwrap();
        let back: FittedSeriesModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        assert!(model.is_outside(100.0) && !model.is_outside(2.5));
    }
}
