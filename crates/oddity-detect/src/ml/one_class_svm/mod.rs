//! One-Class SVM (Schölkopf et al. 2001), solved as libsvm and scikit-learn solve it.
//!
//! # The problem
//! The ν-one-class SVM separates the training rows from the origin in the RBF feature space. Its
//! dual, over one multiplier per training row, is
//!
//! ```text
//! min ½ αᵀQα   subject to   0 ≤ αᵢ ≤ 1,   Σ αᵢ = ν·l,      Qᵢⱼ = K(xᵢ, xⱼ) = exp(−γ‖xᵢ − xⱼ‖²)
//! ```
//!
//! (libsvm's scaling, where the box is 1 and the sum is ν·l), and the decision function is
//! `f(x) = Σ αᵢ K(xᵢ, x) − ρ`: positive inside the learned support, negative outside. ν bounds
//! the fraction of training rows outside (`f < 0`) from above and of support vectors from below.
//!
//! # The solver
//! libsvm's `Solver`, transcribed for the one-class case (all labels +1, linear term 0):
//! - start from libsvm's `solve_one_class` point: the first `⌊ν·l⌋` alphas at 1, the next one at
//!   the remainder, the rest 0 (feasible, so every iterate is);
//! - pick the working pair with WSS3 (Fan, Chen & Lin 2005): `i` maximises `−∇ᵢ` over alphas that
//!   can grow, `j` minimises the second-order decrease `−(∇ⱼ − ∇ᵢ)²/(Qᵢᵢ + Qⱼⱼ − 2Qᵢⱼ)` over
//!   alphas that can shrink; stop when the maximal KKT violation `max(−∇ᵢ) + max(∇ⱼ)` is below
//!   `tol` (libsvm's `eps`, scikit-learn's `tol`, 1e-3);
//! - solve the two-variable subproblem analytically, clip to the box, update the gradient;
//! - optionally shrink (libsvm's heuristic: every `min(l, 1000)` iterations drop bounded alphas
//!   that cannot move; reconstruct the full gradient before the final optimality check);
//! - ρ from the KKT conditions: the mean gradient over free alphas, or the midpoint of the
//!   bounds given by alphas at 0 and at 1 when none is free.
//!
//! The solver is in `solver.rs`. Kernel rows come from a bounded LRU cache of single-precision
//! rows ([`super::kernel`]), as
//! libsvm's `Cache` of `Qfloat`s. The result matches scikit-learn's `OneClassSVM` to the solver's
//! tolerance; `bench/ocsvm_compare.py` compares ROC-AUC on the ODDS sets side by side.
//!
//! # The score
//! [`OutlierModel::score`] maps the decision value monotonically to 0..1 with a softsign,
//! `score = ½ − ½·z/(1 + |z|)` with `z = f(x)/s`, where `s` is the median of `|f|` over the
//! training rows. So 0.5 is exactly the SVM's own boundary (scikit-learn's `predict` says −1 iff
//! the score is above 0.5), a training row at the typical distance inside scores 0.25 and one at
//! the typical distance outside 0.75. A softsign rather than a logistic because it never
//! saturates in `f64`: distinct decision values keep distinct scores, so rankings (ROC-AUC) are
//! the decision function's own.

use serde::{Deserialize, Serialize};

use super::kernel::{Gamma, check_finite, rbf};
use super::{Estimator, Matrix, OutlierModel};
use crate::DetectError;

mod solver;

use solver::solve_dual;

/// The kernel of the One-Class SVM. Only RBF, the reference configuration's kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SvmKernel {
    /// `exp(−γ‖x − y‖²)`.
    #[default]
    Rbf,
}

/// Parameters of the One-Class SVM (defaults: seed 003's `nu 0.1, rbf, gamma scale` and
/// scikit-learn's defaults for the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OneClassSvmConfig {
    /// Upper bound on the fraction of training rows outside the boundary and lower bound on the
    /// fraction of support vectors; in (0, 1].
    pub nu: f64,
    /// The kernel (`rbf`).
    pub kernel: SvmKernel,
    /// RBF width: `"scale"` (1 / (n_features · variance of all values)), `"auto"`
    /// (1 / n_features) or a positive number.
    pub gamma: Gamma,
    /// Stopping tolerance on the maximal KKT violation (libsvm's `eps`).
    pub tol: f64,
    /// Whether to use libsvm's shrinking heuristic (same solution, usually faster).
    pub shrinking: bool,
    /// Memory budget of the kernel row cache, in MiB (scikit-learn's `cache_size`, 200).
    pub cache_mb: usize,
    /// Iteration limit; `None` runs until the tolerance is met (scikit-learn's `max_iter=-1`).
    pub max_iter: Option<u64>,
}

impl Default for OneClassSvmConfig {
    fn default() -> Self {
        OneClassSvmConfig {
            nu: 0.1,
            kernel: SvmKernel::Rbf,
            gamma: Gamma::default(),
            tol: 1e-3,
            shrinking: true,
            cache_mb: 200,
            max_iter: None,
        }
    }
}

impl OneClassSvmConfig {
    /// Every problem with these parameters, each naming the offending value.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(self.nu > 0.0 && self.nu <= 1.0) {
            errors.push(format!("nu ({}) must be in (0, 1]", self.nu));
        }
        if let Gamma::Value(g) = self.gamma
            && !(g > 0.0 && g.is_finite())
        {
            errors.push(format!(
                "gamma ({g}) must be a positive number, \"scale\" or \"auto\""
            ));
        }
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            errors.push(format!("tol ({}) must be positive", self.tol));
        }
        if self.cache_mb == 0 {
            errors.push("cache_mb (0) must be at least 1".to_string());
        }
        if self.max_iter == Some(0) {
            errors.push("max_iter (0) must be at least 1 when set".to_string());
        }
        errors
    }

    /// The estimator, once the parameters are valid.
    pub fn build(&self) -> Result<OneClassSvm, DetectError> {
        let errors = self.validate();
        if errors.is_empty() {
            Ok(OneClassSvm {
                config: self.clone(),
            })
        } else {
            Err(DetectError::Parameter {
                name: "one_class_svm",
                reason: errors.join("; "),
            })
        }
    }
}

/// The One-Class SVM estimator (validated parameters).
#[derive(Debug, Clone)]
pub struct OneClassSvm {
    config: OneClassSvmConfig,
}

/// A fitted One-Class SVM: support vectors, their coefficients, ρ and the score scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneClassSvmModel {
    /// (Exact forms: values near ±f64::MAX overflow the variance behind `gamma`, and with it
    /// the rest, to ±inf or NaN.)
    #[serde(with = "crate::compact::f64_exact")]
    gamma: f64,
    support: Matrix,
    /// αᵢ of each support vector (scikit-learn's `dual_coef_`).
    #[serde(with = "crate::compact::f64_exact_vec")]
    coef: Vec<f64>,
    #[serde(with = "crate::compact::f64_exact")]
    rho: f64,
    /// Median |decision| over the training rows: the unit of the score's softsign.
    #[serde(with = "crate::compact::f64_exact")]
    scale: f64,
    iterations: u64,
}

impl OneClassSvmModel {
    /// `Σ αᵢ K(xᵢ, x) − ρ`: positive inside the support, negative outside (scikit-learn's
    /// `decision_function`).
    pub fn decision_function(&self, row: &[f64]) -> f64 {
        let s: f64 = self
            .support
            .rows()
            .zip(&self.coef)
            .map(|(sv, a)| a * rbf(self.gamma, sv, row))
            .sum();
        s - self.rho
    }

    /// The resolved RBF gamma.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// ρ, the offset of the decision function (scikit-learn's `offset_`).
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// The support vectors (rows with αᵢ > 0).
    pub fn support_vectors(&self) -> &Matrix {
        &self.support
    }

    /// αᵢ of each support vector.
    pub fn dual_coef(&self) -> &[f64] {
        &self.coef
    }

    /// SMO iterations the fit took.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// The 0..1 score of a decision value (see the module docs).
    pub fn score_of_decision(&self, decision: f64) -> f64 {
        let z = decision / self.scale;
        0.5 - 0.5 * z / (1.0 + z.abs())
    }
}

impl OutlierModel for OneClassSvmModel {
    /// In 0..1, 0.5 on the boundary (see the module docs); NaN for a row of the wrong width or
    /// with a non-finite value.
    fn score(&self, row: &[f64]) -> f64 {
        if row.len() != self.support.n_cols() {
            return f64::NAN;
        }
        self.score_of_decision(self.decision_function(row))
    }
}

impl Estimator for OneClassSvm {
    type Model = OneClassSvmModel;

    fn fit(&self, data: &Matrix) -> Result<OneClassSvmModel, DetectError> {
        self.fit_score(data).map(|(m, _)| m)
    }

    /// Fits and scores the training rows from the solver's final gradient (`f(xᵢ) = ∇ᵢ − ρ`,
    /// with single-precision cached kernel values), which saves a second pass over the support.
    fn fit_score(&self, data: &Matrix) -> Result<(OneClassSvmModel, Vec<f64>), DetectError> {
        check_finite(data)?;
        let gamma = self.config.gamma.resolve(data);
        let sol = solve_dual(data, gamma, &self.config);
        let decisions: Vec<f64> = sol.gradient.iter().map(|g| g - sol.rho).collect();
        let mut abs: Vec<f64> = decisions.iter().map(|d| d.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let median = abs[abs.len() / 2];
        let scale = if median > 0.0 {
            median
        } else {
            // all decisions at the boundary (constant data): any unit keeps the 0.5 there
            abs.iter().copied().find(|a| *a > 0.0).unwrap_or(1.0)
        };
        let mut sv = Vec::new();
        let mut coef = Vec::new();
        for (i, a) in sol.alpha.iter().enumerate() {
            if *a > 0.0 {
                sv.extend_from_slice(data.row(i));
                coef.push(*a);
            }
        }
        let support = Matrix::new(data.n_cols(), sv)?;
        let model = OneClassSvmModel {
            gamma,
            support,
            coef,
            rho: sol.rho,
            scale,
            iterations: sol.iterations,
        };
        let scores = decisions
            .iter()
            .map(|d| model.score_of_decision(*d))
            .collect();
        Ok((model, scores))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn m(rows: &[Vec<f64>]) -> Matrix {
        Matrix::from_rows(rows).unwrap()
    }

    /// A deterministic cloud: a ring-ish blob around (0, 0) plus a few far points.
    pub(crate) fn cloud(n: usize) -> Matrix {
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let t = i as f64 * 0.7;
                let r = 1.0 + 0.3 * ((i * 7919) % 13) as f64 / 13.0;
                vec![r * t.cos(), r * t.sin(), ((i * 31) % 17) as f64 / 17.0]
            })
            .collect();
        m(&rows)
    }

    enum Expect {
        Fit,
        Error(&'static str),
    }

    struct Case {
        name: &'static str,
        rows: Vec<Vec<f64>>,
        nu: f64,
        expect: Expect,
    }

    #[test]
    fn edge_cases() {
        let cases = vec![
            Case {
                name: "constant data",
                rows: vec![vec![2.0, 2.0]; 20],
                nu: 0.1,
                expect: Expect::Fit,
            },
            Case {
                name: "duplicate rows",
                rows: [vec![vec![0.0, 1.0]; 10], vec![vec![1.0, 0.0]; 10]].concat(),
                nu: 0.1,
                expect: Expect::Fit,
            },
            Case {
                name: "a single row",
                rows: vec![vec![1.0, 2.0]],
                nu: 0.1,
                expect: Expect::Fit,
            },
            Case {
                name: "two rows",
                rows: vec![vec![0.0], vec![1.0]],
                nu: 0.1,
                expect: Expect::Fit,
            },
            Case {
                name: "nu 1 puts every alpha at 1",
                rows: cloud(20).rows().map(<[f64]>::to_vec).collect(),
                nu: 1.0,
                expect: Expect::Fit,
            },
            Case {
                name: "nan is rejected",
                rows: vec![vec![0.0], vec![f64::NAN], vec![1.0]],
                nu: 0.1,
                expect: Expect::Error("invalid parameter data: row 1 column 0 is NaN"),
            },
            Case {
                name: "infinity is rejected",
                rows: vec![vec![0.0, f64::INFINITY]],
                nu: 0.1,
                expect: Expect::Error("row 0 column 1 is inf"),
            },
        ];
        for case in cases {
            let x = m(&case.rows);
            let est = OneClassSvmConfig {
                nu: case.nu,
                ..Default::default()
            }
            .build()
            .unwrap();
            match (est.fit_score(&x), case.expect) {
                (Ok((model, scores)), Expect::Fit) => {
                    assert!(
                        scores.iter().all(|s| (0.0..=1.0).contains(s)),
                        "{}: {scores:?}",
                        case.name
                    );
                    assert!(model.rho().is_finite(), "{}", case.name);
                    let sum: f64 = model.dual_coef().iter().sum();
                    assert!(
                        (sum - case.nu * x.n_rows() as f64).abs() < 1e-9,
                        "{}",
                        case.name
                    );
                    for (row, s) in x.rows().zip(&scores) {
                        assert!((model.score(row) - s).abs() < 1e-5, "{}", case.name);
                    }
                }
                (Err(e), Expect::Error(msg)) => {
                    assert!(e.to_string().contains(msg), "{}: {e}", case.name)
                }
                (Ok(_), Expect::Error(msg)) => panic!("{}: fitted, expected {msg}", case.name),
                (Err(e), Expect::Fit) => panic!("{}: {e}", case.name),
            }
        }
        let constant = OneClassSvmConfig::default().build().unwrap();
        let (_, scores) = constant.fit_score(&m(&vec![vec![2.0, 2.0]; 20])).unwrap();
        assert!(
            scores.iter().all(|s| *s == 0.5),
            "constant data sits on the boundary"
        );
        let empty = Matrix::new(2, vec![]).unwrap();
        assert!(matches!(
            constant.fit(&empty),
            Err(DetectError::NotEnoughData(_))
        ));
    }

    #[test]
    fn obvious_outlier_scores_highest_and_is_deterministic() {
        let mut rows: Vec<Vec<f64>> = cloud(200).rows().map(<[f64]>::to_vec).collect();
        rows.push(vec![8.0, -8.0, 5.0]);
        let x = m(&rows);
        let est = OneClassSvmConfig::default().build().unwrap();
        let (model, scores) = est.fit_score(&x).unwrap();
        let top = (0..scores.len())
            .max_by(|a, b| scores[*a].total_cmp(&scores[*b]))
            .unwrap();
        assert_eq!(top, 200);
        assert!(scores[200] > 0.5 && model.decision_function(&rows[200]) < 0.0);
        let (again, scores2) = est.fit_score(&x).unwrap();
        assert_eq!(model, again);
        assert_eq!(scores, scores2);
        // about nu of the training rows lie outside (score > 0.5)
        let outside = scores.iter().filter(|s| **s > 0.5).count();
        assert!((10..=30).contains(&outside), "{outside}");
    }

    #[test]
    fn serde_round_trip_gives_identical_scores() {
        let x = cloud(100);
        let model = OneClassSvmConfig::default()
            .build()
            .unwrap()
            .fit(&x)
            .unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: OneClassSvmModel = serde_json::from_str(&json).unwrap();
        assert_eq!(model.score_batch(&x), back.score_batch(&x));
        assert!(model.score(&[1.0]).is_nan(), "wrong width");
        assert!(model.score(&[1.0, f64::NAN, 0.0]).is_nan());
    }

    #[test]
    fn config_validation_lists_every_problem() {
        let bad = OneClassSvmConfig {
            nu: 0.0,
            gamma: Gamma::Value(-1.0),
            tol: 0.0,
            cache_mb: 0,
            max_iter: Some(0),
            ..Default::default()
        };
        let errors = bad.validate();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("nu (0)"));
        assert!(errors[1].contains("gamma (-1)"));
        assert!(bad.build().is_err());
        assert!(OneClassSvmConfig::default().validate().is_empty());
        let cfg: OneClassSvmConfig =
            serde_json::from_str(r#"{"nu":0.1,"kernel":"rbf","gamma":"scale"}"#).unwrap();
        assert_eq!(cfg, OneClassSvmConfig::default());
        assert!(serde_json::from_str::<OneClassSvmConfig>(r#"{"nuu":0.1}"#).is_err());
    }
}
