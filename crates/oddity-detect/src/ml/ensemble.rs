//! The ensemble of seed 003: a weighted mean of member scores against a threshold, with every
//! member's own score reported (`detector_results`).
//!
//! # Why members are normalised first
//! Every [`OutlierModel`] scores in 0..1, but the scales do not agree: an Isolation Forest scores
//! ordinary rows around 0.4–0.5, a One-Class SVM's softsign puts them around 0.25, a z-score
//! model near 0. Averaging raw scores lets the model with the widest range decide alone (seed
//! 003's bug, where unnormalised IF scores in [1, 2] made the ensemble flag almost everything).
//! So each member gets a [`ScoreCalibration`] fitted on its scores of the training rows: the
//! empirical CDF of those scores, with mid-ranks for ties, linear between distinct values and
//! exponential tails outside the training range (strictly monotone, so a member's ranking is
//! kept and rows beyond everything seen still order). A normalised score is then "the fraction
//! of training rows this row is more anomalous than", the same unit for every member.
//!
//! # Why the threshold is 0.8 and not 0.5
//! After normalisation, 0.5 is the median training row: a 0.5 threshold would flag about half of
//! ordinary traffic. 0.8 is seed 003's top-level `anomaly_detection.threshold` (its
//! `ensemble.threshold` of 0.5 only made sense for the raw scores). The weighted mean exceeds 0.8
//! only when the members agree that a row sits in their upper tails: between the top 20 % of
//! training rows (members that agree perfectly) and a few percent (independent members, whose
//! mean concentrates around 0.5). Comparison is strict (`>`), as seed 003's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Matrix, OutlierModel};
use crate::DetectError;

/// Most knots a calibration keeps (quantiles of the training scores beyond that).
const MAX_KNOTS: usize = 1024;

/// Ensemble parameters (defaults: seed 003's weights and top-level threshold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnsembleConfig {
    /// Weight of each member by name (`isolation_forest`, `lof`, `zscore`, `one_class_svm`,
    /// `half_space_trees`, …); weights need not sum to 1 (the mean is divided by their sum).
    /// Seed 003 names the z-score member `statistical`; here it is `zscore`, its kind's name.
    pub weights: BTreeMap<String, f64>,
    /// A row is anomalous when the weighted mean of normalised scores is above this, in (0, 1].
    pub threshold: f64,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            weights: BTreeMap::from([
                ("isolation_forest".to_string(), 0.4),
                ("lof".to_string(), 0.3),
                ("zscore".to_string(), 0.3),
            ]),
            threshold: 0.8,
        }
    }
}

impl EnsembleConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.weights.is_empty() {
            errors.push("weights must name at least one member".to_string());
        }
        for (name, w) in &self.weights {
            if !(w.is_finite() && *w >= 0.0) {
                errors.push(format!("weights.{name} ({w}) must be a finite number >= 0"));
            }
        }
        if !self.weights.is_empty() && self.weights.values().all(|w| *w == 0.0) {
            errors.push("weights must not all be 0".to_string());
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            errors.push(format!("threshold ({}) must be in (0, 1]", self.threshold));
        }
        errors
    }

    /// An empty ensemble with this threshold; add members with [`Ensemble::push`], whose weights
    /// come from [`EnsembleConfig::weights`] by name ([`Ensemble::push_named`]).
    pub fn build(&self) -> Result<Ensemble, DetectError> {
        let errors = self.validate();
        if !errors.is_empty() {
            return Err(DetectError::Parameter {
                name: "ensemble",
                reason: errors.join("; "),
            });
        }
        Ok(Ensemble {
            weights: self.weights.clone(),
            threshold: self.threshold,
            normalisation: Normalisation::Cdf,
            members: vec![],
        })
    }
}

/// A monotone map of one model's scores to 0..1, fitted on its training scores (see the module
/// docs): the empirical CDF with mid-ranks, linear between knots, exponential tails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreCalibration {
    /// (score, CDF) pairs, strictly increasing in both.
    knots: Vec<(f64, f64)>,
    /// Decay length of the tails, in score units.
    spread: f64,
}

impl ScoreCalibration {
    /// Fits on the training scores (non-empty, finite).
    pub fn fit(scores: &[f64]) -> Result<Self, DetectError> {
        if scores.is_empty() {
            return Err(DetectError::NotEnoughData(
                "no training scores to calibrate".to_string(),
            ));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(DetectError::Parameter {
                name: "scores",
                reason: format!(
                    "training score {i} is {} (scores must be finite)",
                    scores[i]
                ),
            });
        }
        let mut sorted = scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mut knots = Vec::new();
        let mut k = 0;
        while k < sorted.len() {
            let v = sorted[k];
            let end = k + sorted[k..].iter().take_while(|s| **s == v).count();
            knots.push((v, (k + end) as f64 / 2.0 / n));
            k = end;
        }
        if knots.len() > MAX_KNOTS {
            let last = knots.len() - 1;
            knots = (0..MAX_KNOTS)
                .map(|q| knots[q * last / (MAX_KNOTS - 1)])
                .collect();
        }
        let (lo, hi) = (knots[0].0, knots[knots.len() - 1].0);
        let spread = if hi > lo {
            hi - lo
        } else {
            1e-3 * lo.abs().max(1.0)
        };
        Ok(ScoreCalibration { knots, spread })
    }

    /// How rare a raw score is, on a log scale fixed by the training rows:
    /// `ln(1 / tail) / ln(2n)`, where `tail = 1 − CDF` and `n` the number of training scores
    /// (so `2n = 1 / tail` of the top training row). The median training row is about
    /// `0.69 / ln(2n)` (0.08 with 5,000 rows), the 99th percentile `ln(100) / ln(2n)` (0.5), the
    /// top training row 1, and rows beyond everything seen go above 1 (callers clamp). Unlike
    /// the CDF, a threshold near 1 on this scale means "rarer than nearly all training rows"
    /// whatever the number of rows. NaN stays NaN.
    pub fn rarity(&self, s: f64) -> f64 {
        let last = self.knots[self.knots.len() - 1];
        let top_tail = 1.0 - last.1;
        let tail = if s >= last.0 {
            // computed directly: 1 − normalise(s) would round to 0 far in the tail
            top_tail * (-(s - last.0) / self.spread).exp()
        } else {
            1.0 - self.normalise(s)
        };
        if s.is_nan() {
            return f64::NAN;
        }
        if tail <= 0.0 {
            return f64::INFINITY;
        }
        (1.0 / tail).ln() / (1.0 / top_tail).ln()
    }

    /// The normalised score of a raw score: in (0, 1), NaN stays NaN.
    pub fn normalise(&self, s: f64) -> f64 {
        let (first, last) = (self.knots[0], self.knots[self.knots.len() - 1]);
        if s.is_nan() {
            return f64::NAN;
        }
        if s <= first.0 {
            return first.1 * ((s - first.0) / self.spread).exp();
        }
        if s >= last.0 {
            return 1.0 - (1.0 - last.1) * (-(s - last.0) / self.spread).exp();
        }
        // first knot with a score above s; it exists and is not the first (s is inside)
        let hi = self.knots.partition_point(|k| k.0 <= s);
        let (a, b) = (self.knots[hi - 1], self.knots[hi]);
        a.1 + (b.1 - a.1) * (s - a.0) / (b.0 - a.0)
    }
}

/// One member: a fitted model, its weight and its calibration.
#[derive(Debug)]
struct Member {
    name: String,
    weight: f64,
    model: Box<dyn OutlierModel>,
    calibration: ScoreCalibration,
}

/// A member's part in one verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberScore {
    /// The model's own score.
    pub raw: f64,
    /// The calibrated score that enters the weighted mean.
    pub normalised: f64,
    /// The member's weight.
    pub weight: f64,
}

/// The ensemble's verdict on one row (seed 003's `{is_anomaly, score, detector_results}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleVerdict {
    /// Weighted mean of the normalised member scores, in 0..1.
    pub score: f64,
    /// `score > threshold`.
    pub is_anomaly: bool,
    /// Every member's scores, by name.
    pub detector_results: BTreeMap<String, MemberScore>,
}

/// How member scores are put on one scale before they are averaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Normalisation {
    /// The calibrated CDF ([`ScoreCalibration::normalise`]): the share of training rows a row
    /// is more anomalous than (seed 003's ensemble, the tabular evaluation).
    #[default]
    Cdf,
    /// The rarity on a log scale, capped at 1 ([`ScoreCalibration::rarity`]): what alerting
    /// thresholds need (the pipeline's batch-model detectors).
    Rarity,
}

/// Fitted models combined by weighted mean of calibrated scores (see the module docs).
///
/// Members are trait objects, so the ensemble itself is not serde: store each member model
/// (they are) and its [`ScoreCalibration`], and rebuild with [`Ensemble::push_calibrated`].
#[derive(Debug)]
pub struct Ensemble {
    weights: BTreeMap<String, f64>,
    threshold: f64,
    normalisation: Normalisation,
    members: Vec<Member>,
}

impl Ensemble {
    /// The same ensemble, normalising member scores with `normalisation`.
    pub fn with_normalisation(mut self, normalisation: Normalisation) -> Self {
        self.normalisation = normalisation;
        self
    }

    /// Adds a member with an explicit weight, calibrated on `training_scores`: its scores of the
    /// training rows (from `Estimator::fit_score`, or `score_batch` of the training matrix).
    pub fn push(
        &mut self,
        name: impl Into<String>,
        weight: f64,
        model: Box<dyn OutlierModel>,
        training_scores: &[f64],
    ) -> Result<(), DetectError> {
        let calibration = ScoreCalibration::fit(training_scores)?;
        self.push_calibrated(name, weight, model, calibration)
    }

    /// Adds a member whose weight is the configured weight of `name`.
    pub fn push_named(
        &mut self,
        name: &str,
        model: Box<dyn OutlierModel>,
        training_scores: &[f64],
    ) -> Result<(), DetectError> {
        let weight = *self
            .weights
            .get(name)
            .ok_or_else(|| DetectError::Parameter {
                name: "weights",
                reason: format!(
                    "no weight for member {name} (configured: {})",
                    self.weights.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?;
        self.push(name, weight, model, training_scores)
    }

    /// Adds a member scored on the `training` rows with the model itself.
    pub fn push_fitted(
        &mut self,
        name: &str,
        model: Box<dyn OutlierModel>,
        training: &Matrix,
    ) -> Result<(), DetectError> {
        let scores = model.score_batch(training);
        self.push_named(name, model, &scores)
    }

    /// Adds a member with a calibration already fitted (e.g. restored from the store).
    pub fn push_calibrated(
        &mut self,
        name: impl Into<String>,
        weight: f64,
        model: Box<dyn OutlierModel>,
        calibration: ScoreCalibration,
    ) -> Result<(), DetectError> {
        let name = name.into();
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(DetectError::Parameter {
                name: "weight",
                reason: format!("weight of {name} ({weight}) must be a finite number >= 0"),
            });
        }
        if self.members.iter().any(|m| m.name == name) {
            return Err(DetectError::Parameter {
                name: "members",
                reason: format!("member {name} is already in the ensemble"),
            });
        }
        self.members.push(Member {
            name,
            weight,
            model,
            calibration,
        });
        Ok(())
    }

    /// The members' names, weights and calibrations, in insertion order.
    pub fn members(&self) -> impl Iterator<Item = (&str, f64, &ScoreCalibration)> + '_ {
        self.members
            .iter()
            .map(|m| (m.name.as_str(), m.weight, &m.calibration))
    }

    /// The threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Scores one row with every member and combines them. With no members (or all weights 0)
    /// the score is 0 and nothing is anomalous.
    pub fn evaluate(&self, row: &[f64]) -> EnsembleVerdict {
        let raw: Vec<f64> = self.members.iter().map(|m| m.model.score(row)).collect();
        self.combine(&raw)
    }

    /// Combines member scores already computed, one per member in insertion order (e.g. the
    /// members' training scores, when the training rows themselves are being scored). A NaN
    /// raw score (a member that cannot score the row) counts as maximally suspicious; missing
    /// trailing scores count as NaN too.
    pub fn combine(&self, raw: &[f64]) -> EnsembleVerdict {
        let mut detector_results = BTreeMap::new();
        let (mut sum, mut total) = (0.0, 0.0);
        for (i, m) in self.members.iter().enumerate() {
            let raw = raw.get(i).copied().unwrap_or(f64::NAN);
            let normalised = match self.normalisation {
                Normalisation::Cdf => m.calibration.normalise(raw),
                Normalisation::Rarity => m.calibration.rarity(raw).min(1.0),
            };
            let normalised = if normalised.is_nan() { 1.0 } else { normalised };
            sum += m.weight * normalised;
            total += m.weight;
            detector_results.insert(
                m.name.clone(),
                MemberScore {
                    raw,
                    normalised,
                    weight: m.weight,
                },
            );
        }
        let score = if total > 0.0 {
            (sum / total).clamp(0.0, 1.0)
        } else {
            0.0
        };
        EnsembleVerdict {
            score,
            is_anomaly: score > self.threshold,
            detector_results,
        }
    }
}

impl OutlierModel for Ensemble {
    fn score(&self, row: &[f64]) -> f64 {
        self.evaluate(row).score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::{Estimator, OneClassSvmConfig};

    /// Test double: the first column, scaled (models whose 0..1 ranges differ).
    #[derive(Debug)]
    struct Column {
        index: usize,
        scale: f64,
    }

    impl OutlierModel for Column {
        fn score(&self, row: &[f64]) -> f64 {
            row[self.index] * self.scale
        }
    }

    /// Test double: the same score for everything.
    #[derive(Debug)]
    struct Constant(f64);

    impl OutlierModel for Constant {
        fn score(&self, _row: &[f64]) -> f64 {
            self.0
        }
    }

    fn grid(n: usize) -> Matrix {
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| vec![i as f64 / n as f64, ((i * 37) % n) as f64 / n as f64])
            .collect();
        Matrix::from_rows(&rows).unwrap()
    }

    #[test]
    fn rarity_is_one_at_the_top_training_row_and_keeps_order_beyond() {
        let scores: Vec<f64> = (0..5_000).map(f64::from).collect();
        let c = ScoreCalibration::fit(&scores).unwrap();
        let ln_2n = (10_000f64).ln();
        assert!((c.rarity(4_999.0) - 1.0).abs() < 1e-12);
        // the 99th percentile: tail 1 %
        assert!((c.rarity(4_950.0) - (100f64).ln() / ln_2n).abs() < 5e-3);
        assert!(c.rarity(2_500.0) < 0.1);
        let far = [5_000.0, 6_000.0, 1e6, 1e300];
        for w in far.windows(2) {
            assert!(c.rarity(w[0]) <= c.rarity(w[1]), "{w:?}");
        }
        assert!(c.rarity(6_000.0) > 1.0 && c.rarity(6_000.0).is_finite());
        assert!(c.rarity(f64::NAN).is_nan());
        assert!(c.rarity(-1e9) >= 0.0);
    }

    #[test]
    fn calibration_cases() {
        struct Case {
            name: &'static str,
            training: Vec<f64>,
            probes: Vec<(f64, f64)>,
        }
        let cases = vec![
            Case {
                name: "mid-ranks of distinct values",
                training: vec![1.0, 2.0, 3.0, 4.0],
                probes: vec![(1.0, 0.125), (2.0, 0.375), (2.5, 0.5), (4.0, 0.875)],
            },
            Case {
                name: "ties share their mid-rank",
                training: vec![0.0, 0.0, 0.0, 1.0],
                probes: vec![(0.0, 0.375), (1.0, 0.875)],
            },
            Case {
                name: "constant training scores sit at one half",
                training: vec![0.3; 10],
                probes: vec![(0.3, 0.5)],
            },
            Case {
                name: "a single score",
                training: vec![7.0],
                probes: vec![(7.0, 0.5)],
            },
        ];
        for case in cases {
            let c = ScoreCalibration::fit(&case.training).unwrap();
            for (s, want) in case.probes {
                assert!((c.normalise(s) - want).abs() < 1e-12, "{}: {s}", case.name);
            }
            // tails: strictly monotone and inside (0, 1)
            let lo = case.training.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = case
                .training
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            let w = c.spread;
            let (a, b, c2, d) = (
                c.normalise(lo - 5.0 * w),
                c.normalise(lo - w),
                c.normalise(hi + w),
                c.normalise(hi + 5.0 * w),
            );
            assert!(0.0 < a && a < b && c2 < d && d < 1.0, "{}", case.name);
        }
        assert!(ScoreCalibration::fit(&[]).is_err());
        let err = ScoreCalibration::fit(&[0.1, f64::NAN])
            .unwrap_err()
            .to_string();
        assert!(err.contains("training score 1 is NaN"), "{err}");
    }

    #[test]
    fn calibration_is_bounded_and_monotone_on_many_scores() {
        let scores: Vec<f64> = (0..10_000).map(|i| ((i * 7919) % 10_007) as f64).collect();
        let c = ScoreCalibration::fit(&scores).unwrap();
        assert!(c.knots.len() <= MAX_KNOTS);
        let probes: Vec<f64> = (0..2000).map(|i| c.normalise(i as f64 * 5.3)).collect();
        assert!(probes.windows(2).all(|w| w[0] <= w[1]));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ScoreCalibration>(&json).unwrap(), c);
    }

    #[test]
    fn members_on_different_scales_weigh_as_configured() {
        let x = grid(100);
        let config = EnsembleConfig {
            weights: BTreeMap::from([("small".to_string(), 1.0), ("large".to_string(), 1.0)]),
            threshold: 0.8,
        };
        let mut e = config.build().unwrap();
        // "small" scores in 0..0.01, "large" in 0..1: raw averaging would let "large" decide
        e.push_fitted(
            "small",
            Box::new(Column {
                index: 0,
                scale: 0.01,
            }),
            &x,
        )
        .unwrap();
        e.push_fitted(
            "large",
            Box::new(Column {
                index: 1,
                scale: 1.0,
            }),
            &x,
        )
        .unwrap();
        let v = e.evaluate(&[0.995, 0.0]);
        let small = &v.detector_results["small"];
        let large = &v.detector_results["large"];
        assert!(small.normalised > 0.99 && large.normalised < 0.01, "{v:?}");
        assert!(
            (v.score - 0.5).abs() < 0.01,
            "equal weights, opposite ends: {}",
            v.score
        );
        assert!(!v.is_anomaly);
        let both = e.evaluate(&[0.995, 0.995]);
        assert!(both.is_anomaly && both.score > 0.99);
        assert_eq!(e.score(&[0.995, 0.995]), both.score);
        let json = serde_json::to_value(&both).unwrap();
        assert!(json["detector_results"]["large"]["normalised"].is_number());
    }

    #[test]
    fn default_config_is_seed_003() {
        let c = EnsembleConfig::default();
        assert_eq!(c.threshold, 0.8);
        assert_eq!(c.weights["isolation_forest"], 0.4);
        assert_eq!(c.weights["lof"], 0.3);
        assert_eq!(c.weights["zscore"], 0.3);
        assert!(c.validate().is_empty());
        let parsed: EnsembleConfig =
            serde_json::from_str(r#"{"weights":{"isolation_forest":0.4,"lof":0.3,"zscore":0.3}}"#)
                .unwrap();
        assert_eq!(parsed, c);
        assert!(serde_json::from_str::<EnsembleConfig>(r#"{"treshold":0.5}"#).is_err());
    }

    #[test]
    fn validation_lists_every_problem() {
        let bad = EnsembleConfig {
            weights: BTreeMap::from([("a".to_string(), -1.0), ("b".to_string(), f64::NAN)]),
            threshold: 1.5,
        };
        let errors = bad.validate();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("weights.a (-1)"));
        assert!(errors[2].contains("threshold (1.5)"));
        let zero = EnsembleConfig {
            weights: BTreeMap::from([("a".to_string(), 0.0)]),
            ..Default::default()
        };
        assert_eq!(
            zero.validate(),
            vec!["weights must not all be 0".to_string()]
        );
        assert!(
            EnsembleConfig {
                weights: BTreeMap::new(),
                ..Default::default()
            }
            .build()
            .is_err()
        );
    }

    #[test]
    fn membership_errors() {
        let x = grid(10);
        let mut e = EnsembleConfig::default().build().unwrap();
        let err = e
            .push_fitted("nope", Box::new(Constant(0.1)), &x)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no weight for member nope"), "{err}");
        e.push_fitted("lof", Box::new(Constant(0.1)), &x).unwrap();
        assert!(e.push_fitted("lof", Box::new(Constant(0.1)), &x).is_err());
        assert!(
            e.push("x", f64::NAN, Box::new(Constant(0.1)), &[0.1])
                .is_err()
        );
        // a constant member contributes one half everywhere
        let v = e.evaluate(&[0.0, 0.0]);
        assert_eq!(v.score, 0.5);
        let empty = EnsembleConfig::default().build().unwrap();
        assert_eq!(empty.evaluate(&[1.0]).score, 0.0);
        // combine: precomputed raw scores; NaN or missing counts as maximally suspicious
        assert_eq!(e.combine(&[0.1]), v);
        assert_eq!(
            e.combine(&[f64::NAN]).detector_results["lof"].normalised,
            1.0
        );
        assert_eq!(e.combine(&[]).score, 1.0);
    }

    #[test]
    fn obvious_outlier_is_flagged_by_a_real_model_and_a_double() {
        let mut rows: Vec<Vec<f64>> = grid(200).rows().map(<[f64]>::to_vec).collect();
        rows.push(vec![5.0, 5.0]);
        let x = Matrix::from_rows(&rows).unwrap();
        let (svm, svm_scores) = OneClassSvmConfig::default()
            .build()
            .unwrap()
            .fit_score(&x)
            .unwrap();
        let mut e = EnsembleConfig {
            weights: BTreeMap::from([
                ("one_class_svm".to_string(), 0.6),
                ("column".to_string(), 0.4),
            ]),
            threshold: 0.8,
        }
        .build()
        .unwrap();
        e.push_named("one_class_svm", Box::new(svm), &svm_scores)
            .unwrap();
        e.push_fitted(
            "column",
            Box::new(Column {
                index: 0,
                scale: 0.1,
            }),
            &x,
        )
        .unwrap();
        let scores = e.score_batch(&x);
        let top = (0..scores.len())
            .max_by(|a, b| scores[*a].total_cmp(&scores[*b]))
            .unwrap();
        assert_eq!(top, 200);
        assert!(e.evaluate(&rows[200]).is_anomaly);
        let flagged = scores.iter().filter(|s| **s > 0.8).count();
        assert!(flagged < 40, "{flagged} of 201 flagged");
    }
}
