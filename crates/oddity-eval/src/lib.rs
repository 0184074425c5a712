//! Evaluation of detectors on labelled data.
//!
//! - [`nab`]: the Numenta Anomaly Benchmark scorer and runner.
//! - [`tabular`]: ROC-AUC and average precision on labelled tabular outlier datasets.

mod error;
pub mod nab;
pub mod tabular;

pub use error::EvalError;
