//! The error type shared by the evaluators.

use std::path::{Path, PathBuf};

use oddity_detect::DetectError;

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file is malformed (`line` is 1-based; 0 when it is not known).
    #[error("{}:{line}: {reason}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line number, 0 when unknown.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A detector name is not in the registry.
    #[error("unknown detector {name:?} (known: {known})")]
    UnknownDetector {
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// A detector failed to fit or score a dataset.
    #[error("{detector} on {}: {source}", file.display())]
    Detect {
        /// The detector's name.
        detector: String,
        /// The dataset.
        file: PathBuf,
        /// The detector's error.
        #[source]
        source: DetectError,
    },
    /// A metric is undefined for these labels (e.g. ROC-AUC with a single class).
    #[error("{0}")]
    Metric(String),
    /// The options are unusable (e.g. no data files).
    #[error("invalid options: {0}")]
    Options(String),
}

impl EvalError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
