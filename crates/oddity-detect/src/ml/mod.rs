//! Models on feature vectors: Isolation Forest, Local Outlier Factor, One-Class SVM, z-score,
//! a streaming forest (half-space trees) and the ensemble that combines them.
//!
//! Batch models follow one shape: an *estimator* (the validated parameters, serde) is fitted on a
//! [`Matrix`] and gives a *model* (serde, so it can be stored with a version) that scores rows.
//! Everything is deterministic given the estimator's seed.

mod common;
pub mod ensemble;
pub mod half_space_trees;
pub mod isolation_forest;
pub mod kernel;
pub mod lof;
mod matrix;
pub mod model_detector;
mod neighbors;
pub mod one_class_svm;
pub mod zscore;

pub use common::Contamination;
pub use ensemble::{
    Ensemble, EnsembleConfig, EnsembleVerdict, MemberScore, Normalisation, ScoreCalibration,
};
pub use half_space_trees::{
    FeatureBounds, HalfSpaceTrees, HalfSpaceTreesConfig, HalfSpaceTreesDetector,
    HalfSpaceTreesModel,
};
pub use isolation_forest::{IsolationForest, IsolationForestModel, MaxSamples};
pub use lof::{LocalOutlierFactor, LofModel};
pub use matrix::Matrix;
pub use model_detector::{ModelDetector, ModelDetectorConfig, ModelKind};
pub use one_class_svm::{OneClassSvm, OneClassSvmConfig, OneClassSvmModel};
pub use zscore::{ZScore, ZScoreModel};

use crate::DetectError;

/// A fitted outlier model.
pub trait OutlierModel: std::fmt::Debug + Send + Sync {
    /// Outlier score of one row (same width as the training data): higher is more anomalous.
    /// Scores are in 0..1 wherever the model has a natural scale (documented per model).
    fn score(&self, row: &[f64]) -> f64;

    /// Scores every row of `data`.
    fn score_batch(&self, data: &Matrix) -> Vec<f64> {
        data.rows().map(|r| self.score(r)).collect()
    }
}

/// Parameters that fit a model on a batch of rows.
pub trait Estimator {
    /// The fitted model.
    type Model: OutlierModel + serde::Serialize + serde::de::DeserializeOwned;

    /// Fits a model on `data`.
    fn fit(&self, data: &Matrix) -> Result<Self::Model, DetectError>;

    /// Fits on `data` and scores the training rows themselves: the unsupervised protocol of the
    /// tabular benchmarks (for LOF this is scikit-learn's `negative_outlier_factor_` sign-flipped,
    /// where a training point is not its own neighbour). Defaults to `fit` then `score_batch`.
    fn fit_score(&self, data: &Matrix) -> Result<(Self::Model, Vec<f64>), DetectError> {
        let model = self.fit(data)?;
        let scores = model.score_batch(data);
        Ok((model, scores))
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;

    /// A model fitted on columns of values at ±f64::MAX (whose means, variances and kernel
    /// widths overflow) still loads back from its JSON, as a stored version must.
    #[test]
    fn models_of_extreme_data_round_trip() {
        fn round_trip<M>(name: &str, model: M)
        where
            M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + OutlierModel,
        {
            let json = serde_json::to_string(&model).unwrap();
            let back: M = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
            let row = [f64::MAX, 3.0, 1.5];
            let (a, b) = (model.score(&row), back.score(&row));
            assert!(a.to_bits() == b.to_bits(), "{name}: {a} vs {b}");
        }
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|i| {
                let x = if i % 2 == 0 { f64::MAX } else { -f64::MAX };
                vec![x, (i % 7) as f64, (i % 13) as f64 * 0.5]
            })
            .collect();
        let data = Matrix::from_rows(&rows).unwrap();
        round_trip("zscore", ZScore::default().fit(&data).unwrap());
        let svm = OneClassSvmConfig::default().build().unwrap();
        round_trip("one_class_svm", svm.fit(&data).unwrap());
        round_trip(
            "isolation_forest",
            IsolationForest::default().fit(&data).unwrap(),
        );
        round_trip("lof", LocalOutlierFactor::default().fit(&data).unwrap());
    }
}
