//! Multivariate z-score: how many standard deviations a row is from the training mean, feature by
//! feature, combined into one number.
//!
//! **Fit.** Per feature, the mean and the *population* standard deviation (ddof 0) of the
//! training rows. A feature with zero deviation gets scale 1, as scikit-learn's
//! `StandardScaler` does, so a constant column adds nothing for training-like values and still
//! counts a departure from its constant.
//!
//! **Score.** With `z_j = (x_j − mean_j) / std_j`, the statistic is the root mean square
//! `r = sqrt(mean_j z_j²)`: a diagonal Mahalanobis distance scaled by `1/sqrt(d)`, so that for a
//! single feature it is the familiar `|z|`, and every feature counts (unlike `max |z|`, which
//! ignores all but one). The score maps `r` to 0..1 with `r / (r + threshold)`: strictly
//! increasing, so it ranks rows exactly as `mean z²` does (the reference computed with numpy in
//! `bench/sklearn_compare.py`), never saturates (extreme rows keep their order), and is 0.5
//! exactly at `r = threshold` (3 by default, seed 003's z-score threshold), where rows start to
//! be flagged.

use serde::{Deserialize, Serialize};

use super::common::{check_data, column_means};
use super::{Estimator, Matrix, OutlierModel};
use crate::DetectError;

/// Z-score parameters (the estimator); [`Estimator::fit`] gives a [`ZScoreModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZScore {
    /// The RMS z at which a row is flagged and scores 0.5.
    pub threshold: f64,
}

impl Default for ZScore {
    fn default() -> Self {
        ZScore { threshold: 3.0 }
    }
}

/// Fitted per-feature means and scales.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZScoreModel {
    /// (Exact forms: columns of values near ±f64::MAX overflow to ±inf or NaN.)
    #[serde(with = "crate::compact::f64_exact_vec")]
    mean: Vec<f64>,
    /// Population standard deviation, or 1 for a constant feature.
    #[serde(with = "crate::compact::f64_exact_vec")]
    scale: Vec<f64>,
    threshold: f64,
}

impl ZScoreModel {
    /// Root mean square z of `row`, the statistic behind [`OutlierModel::score`].
    pub fn rms_z(&self, row: &[f64]) -> f64 {
        debug_assert_eq!(
            row.len(),
            self.mean.len(),
            "row width should match the model"
        );
        let sum: f64 = row
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((x, m), s)| {
                let z = (x - m) / s;
                z * z
            })
            .sum();
        (sum / self.mean.len() as f64).sqrt()
    }

    /// Per-feature training means.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Per-feature scales (population std, 1 where it is 0).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// True when `score` is above 0.5, i.e. the RMS z is above the threshold.
    pub fn is_outlier(&self, score: f64) -> bool {
        score > 0.5
    }
}

impl OutlierModel for ZScoreModel {
    /// `r / (r + threshold)` with `r` the RMS z: in 0..1, 0.5 at the threshold.
    fn score(&self, row: &[f64]) -> f64 {
        let r = self.rms_z(row);
        r / (r + self.threshold)
    }
}

impl Estimator for ZScore {
    type Model = ZScoreModel;

    fn fit(&self, data: &Matrix) -> Result<ZScoreModel, DetectError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(DetectError::Parameter {
                name: "threshold",
                reason: format!("must be a positive number, got {}", self.threshold),
            });
        }
        check_data(data)?;
        let n = data.n_rows() as f64;
        let cols = data.n_cols();
        let mean = column_means(data);
        // Two-pass variance: exact enough for large offsets, unlike E[x²] − E[x]².
        let mut var = vec![0.0; cols];
        for row in data.rows() {
            for ((v, x), m) in var.iter_mut().zip(row).zip(&mean) {
                *v += (x - m) * (x - m);
            }
        }
        let scale = var
            .iter()
            .map(|v| {
                let s = (v / n).sqrt();
                if s > 0.0 { s } else { 1.0 }
            })
            .collect();
        Ok(ZScoreModel {
            mean,
            scale,
            threshold: self.threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        train: Vec<Vec<f64>>,
        row: Vec<f64>,
        expected: Result<f64, &'static str>,
    }

    #[test]
    fn score_cases() {
        let cases = [
            Case {
                name: "one feature, three sigma scores one half",
                // mean 0, population std 1
                train: vec![vec![-1.0], vec![1.0]],
                row: vec![3.0],
                expected: Ok(0.5),
            },
            Case {
                name: "two features average their squared z",
                // means (0, 10), stds (1, 2); z = (3, 3): r = 3
                train: vec![vec![-1.0, 8.0], vec![1.0, 12.0]],
                row: vec![3.0, 16.0],
                expected: Ok(0.5),
            },
            Case {
                name: "the mean scores zero",
                train: vec![vec![-1.0, 8.0], vec![1.0, 12.0]],
                row: vec![0.0, 10.0],
                expected: Ok(0.0),
            },
            Case {
                name: "constant column uses scale one",
                // feature 0 is constant 5 (scale 1): z = (6 − 5)/1 = 1, feature 1 z = 0;
                // r = sqrt(1/2)
                train: vec![vec![5.0, -1.0], vec![5.0, 1.0]],
                row: vec![6.0, 0.0],
                expected: Ok(0.5f64.sqrt() / (0.5f64.sqrt() + 3.0)),
            },
            Case {
                name: "single row fits",
                train: vec![vec![1.0, 2.0]],
                row: vec![1.0, 2.0],
                expected: Ok(0.0),
            },
            Case {
                name: "nan is rejected",
                train: vec![vec![1.0], vec![f64::NAN]],
                row: vec![0.0],
                expected: Err(
                    "invalid parameter data: row 1, column 0 is NaN (only finite values are accepted)",
                ),
            },
        ];
        for case in cases {
            let data = Matrix::from_rows(&case.train).unwrap();
            match (ZScore::default().fit(&data), case.expected) {
                (Ok(model), Ok(want)) => {
                    let got = model.score(&case.row);
                    assert!((got - want).abs() < 1e-12, "{}: {got} vs {want}", case.name);
                }
                (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "{}", case.name),
                (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
            }
        }
    }

    #[test]
    fn obvious_outlier_scores_highest_and_round_trips() {
        let mut rows: Vec<Vec<f64>> = (0..100).map(|i| vec![f64::from(i % 10), 1.0]).collect();
        rows.push(vec![50.0, 1.0]);
        let data = Matrix::from_rows(&rows).unwrap();
        let (model, scores) = ZScore::default().fit_score(&data).unwrap();
        let argmax = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(argmax, 100);
        assert!(model.is_outlier(scores[100]));
        let back: ZScoreModel =
            serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
        assert_eq!(back.score_batch(&data), scores);
    }

    #[test]
    fn bad_threshold_is_rejected() {
        let data = Matrix::from_rows(&[vec![1.0]]).unwrap();
        let err = ZScore { threshold: 0.0 }.fit(&data).unwrap_err();
        assert!(
            matches!(
                err,
                DetectError::Parameter {
                    name: "threshold",
                    ..
                }
            ),
            "{err}"
        );
    }
}
