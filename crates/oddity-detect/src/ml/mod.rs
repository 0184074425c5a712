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
