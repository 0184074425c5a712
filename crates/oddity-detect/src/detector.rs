//! The [`Detector`] trait and the types it shares with every implementation.

use std::fmt;

use oddity_model::{Event, Explanation};

use crate::field::Attrs;

/// The closed set of detector kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    // Rules (per entity).
    Threshold,
    Rate,
    Consecutive,
    Novelty,
    TimeOfDay,
    Count,
    // Streaming statistics (per series).
    Zscore,
    Ewma,
    Mad,
    Seasonal,
    ChangePoint,
    /// The default streaming detector: a combination tuned to work across very different series.
    Streaming,
    // Models on feature vectors.
    IsolationForest,
    Lof,
    OneClassSvm,
    HalfSpaceTrees,
    Ensemble,
    // Content scanning.
    Pii,
}

impl DetectorKind {
    /// The snake_case name used in configuration files, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::Threshold => "threshold",
            DetectorKind::Rate => "rate",
            DetectorKind::Consecutive => "consecutive",
            DetectorKind::Novelty => "novelty",
            DetectorKind::TimeOfDay => "time_of_day",
            DetectorKind::Count => "count",
            DetectorKind::Zscore => "zscore",
            DetectorKind::Ewma => "ewma",
            DetectorKind::Mad => "mad",
            DetectorKind::Seasonal => "seasonal",
            DetectorKind::ChangePoint => "change_point",
            DetectorKind::Streaming => "streaming",
            DetectorKind::IsolationForest => "isolation_forest",
            DetectorKind::Lof => "lof",
            DetectorKind::OneClassSvm => "one_class_svm",
            DetectorKind::HalfSpaceTrees => "half_space_trees",
            DetectorKind::Ensemble => "ensemble",
            DetectorKind::Pii => "pii",
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observation, as a detector sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The event being observed.
    pub event: &'a Event,
    /// The event's `attrs`, parsed at most once per event and shared by every detector.
    pub attrs: &'a Attrs<'a>,
    /// The number this detector watches, already resolved from its `value` setting (the event's
    /// `value` by default). `None` when the event does not carry it.
    pub value: Option<f64>,
}

impl<'a> Input<'a> {
    /// An input whose value is the event's own `value`.
    pub fn new(event: &'a Event, attrs: &'a Attrs<'a>) -> Self {
        Input {
            event,
            attrs,
            value: event.value,
        }
    }

    /// The event timestamp in milliseconds.
    pub fn ts(&self) -> i64 {
        self.event.ts
    }
}

/// What a detector says about one observation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// Anomaly score in 0..1, comparable across detectors (0 = ordinary).
    pub score: f64,
    /// Whether the observation is an anomaly by this detector's own threshold.
    pub anomalous: bool,
    /// Why, when `anomalous` (None otherwise: a normal verdict allocates nothing).
    pub explanation: Option<Explanation>,
}

impl Verdict {
    /// Nothing to report.
    pub const fn normal() -> Self {
        Verdict {
            score: 0.0,
            anomalous: false,
            explanation: None,
        }
    }

    /// A scored but unremarkable observation.
    pub const fn scored(score: f64) -> Self {
        Verdict {
            score,
            anomalous: false,
            explanation: None,
        }
    }

    /// An anomaly with its explanation. The score is clamped into 0..1 (NaN becomes 1).
    pub fn anomaly(score: f64, explanation: Explanation) -> Self {
        let score = if score.is_nan() {
            1.0
        } else {
            score.clamp(0.0, 1.0)
        };
        Verdict {
            score,
            anomalous: true,
            explanation: Some(explanation),
        }
    }
}

/// A detector's saved state: JSON, so that it survives added fields and can be inspected.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DetectorState(pub serde_json::Value);

impl DetectorState {
    /// Serialises any serde state.
    pub fn of<T: serde::Serialize>(state: &T) -> Result<Self, DetectError> {
        serde_json::to_value(state)
            .map(DetectorState)
            .map_err(|e| DetectError::State(e.to_string()))
    }

    /// Deserialises into the detector's state type.
    pub fn to<T: serde::de::DeserializeOwned>(&self) -> Result<T, DetectError> {
        serde_json::from_value(self.0.clone()).map_err(|e| DetectError::State(e.to_string()))
    }
}

/// A model a detector fitted, handed to the pipeline to be stored as a version
/// ([`Detector::take_fitted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FittedModel {
    /// Version number, from 1, increasing per detector instance.
    pub version: u32,
    /// Rows it was fitted on.
    pub rows: u64,
    /// Event time of the observation that triggered the fit (ms).
    pub trained_at: i64,
    /// The model, as JSON; [`Detector::restore_model`] takes it back.
    pub model: serde_json::Value,
}

/// Errors a detector can report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    /// A saved state could not be written or read back.
    #[error("detector state: {0}")]
    State(String),
    /// Invalid parameters (caught by configuration validation; repeated here for direct users).
    #[error("invalid parameter {name}: {reason}")]
    Parameter { name: &'static str, reason: String },
    /// Not enough data to fit or score (for models fitted on a batch).
    #[error("not enough data: {0}")]
    NotEnoughData(String),
}

/// A detector instance for one key (an entity for rules, a series for statistics).
///
/// The pipeline keeps one instance per key and per configured detector; it handles filtering,
/// cooldowns, severity and the final [`oddity_model::Anomaly`], so an implementation holds only
/// its algorithm.
pub trait Detector: Send + fmt::Debug {
    /// Which kind of detector this is.
    fn kind(&self) -> DetectorKind;

    /// Observes one input, in arrival order, and says whether it is anomalous.
    fn observe(&mut self, input: &Input<'_>) -> Verdict;

    /// Saves the state that must survive a restart.
    fn snapshot(&self) -> Result<DetectorState, DetectError>;

    /// Restores a state saved by [`Detector::snapshot`] of the same kind and parameters.
    fn restore(&mut self, state: &DetectorState) -> Result<(), DetectError>;

    /// True when the state holds nothing that influences future verdicts as of event time
    /// `now_ts` (an emptied window), so the caller may drop the instance. Defaults to false.
    fn is_idle(&self, now_ts: i64) -> bool {
        let _ = now_ts;
        false
    }

    /// For detectors that fit models: the model fitted by the last [`Detector::observe`], once.
    /// The pipeline stores it as a version with the batch that caused it. Defaults to `None`.
    fn take_fitted(&mut self) -> Option<FittedModel> {
        None
    }

    /// The stored model version this state depends on: the snapshot does not contain it, and
    /// after [`Detector::restore`] the caller gives it back with [`Detector::restore_model`].
    /// Defaults to `None` (the snapshot is self-contained).
    fn model_version(&self) -> Option<u32> {
        None
    }

    /// Installs a model stored from [`Detector::take_fitted`] (the version
    /// [`Detector::model_version`] names). Detectors without models refuse.
    fn restore_model(&mut self, model: &serde_json::Value) -> Result<(), DetectError> {
        let _ = model;
        Err(DetectError::State(format!(
            "{} detectors have no stored models",
            self.kind()
        )))
    }
}
