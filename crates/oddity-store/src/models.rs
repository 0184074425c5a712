//! Versioned per-series models (seed 001's `/fit`, `/predict`, `/plot`), behind a narrow trait
//! of their own.
//!
//! [`ModelStore`] is separate from [`crate::Store`]: the event pipeline never touches models and
//! the per-series API never touches events, so each side depends on the smallest surface and a
//! deployment could keep models elsewhere. One backend type may implement both (the SQLite store
//! does).
//!
//! # Versions
//! - Saving a model for a series creates version `N + 1`, `N` being the highest version of
//!   **exactly** that series id (seed 001 matched stored file names by prefix, so `sensor_1` saw
//!   `sensor_10_v3`, and ids containing `_v` broke its version parse; both bugs are not copied:
//!   the series id and the version are separate columns). Versions start at 1.
//! - The **active** version is the pinned one if the series has a pin, else the latest.
//! - [`ModelStore::rollback`] pins the version just below the active one, so successive
//!   rollbacks walk back through history; [`ModelStore::unpin`] returns to "latest wins".
//!   A newer fit does not move a pin: pinning exists to hold a known-good model.
//! - Models are stored as JSON (the store does not know model types) together with their
//!   training points, returned ordered by timestamp for plots.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// One training point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingPoint {
    /// Timestamp as the client sent it.
    pub timestamp: i64,
    /// Observed value (finite).
    pub value: f64,
}

/// A stored model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    /// The series id.
    pub series_id: String,
    /// Version number, from 1.
    pub version: u32,
    /// When it was saved (ms since the epoch).
    pub created_at: i64,
    /// Number of training points.
    pub points: u64,
    /// The model, as JSON.
    pub model: serde_json::Value,
}

/// One line of a series' version list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersionInfo {
    /// Version number, from 1.
    pub version: u32,
    /// When it was saved (ms since the epoch).
    pub created_at: i64,
    /// Number of training points.
    pub points: u64,
    /// Whether this version is pinned.
    pub pinned: bool,
    /// Whether this version is the active one (pinned, else latest).
    pub active: bool,
}

/// A backend for versioned per-series models. Every backend passes
/// [`crate::testsuite::models`] (`model_store_test_suite!`).
#[async_trait]
pub trait ModelStore: Send + Sync + fmt::Debug + 'static {
    /// Saves a new version of `series_id` with its model and training points; returns the new
    /// version number (highest existing version of exactly this id, plus one).
    async fn save_model(
        &self,
        series_id: &str,
        model: &serde_json::Value,
        points: &[TrainingPoint],
        created_at: i64,
    ) -> Result<u32, StoreError>;

    /// One version's model, `None` if the series or version does not exist.
    async fn model(&self, series_id: &str, version: u32)
    -> Result<Option<StoredModel>, StoreError>;

    /// The active version's model (pinned, else latest), `None` for an unknown series.
    async fn active_model(&self, series_id: &str) -> Result<Option<StoredModel>, StoreError>;

    /// Every version of `series_id`, oldest first (empty for an unknown series).
    async fn versions(&self, series_id: &str) -> Result<Vec<ModelVersionInfo>, StoreError>;

    /// Pins `version`; `false` (and nothing changes) if that version does not exist.
    async fn pin(&self, series_id: &str, version: u32) -> Result<bool, StoreError>;

    /// Removes the pin of `series_id` (the latest version becomes active again); `false` if
    /// there was none.
    async fn unpin(&self, series_id: &str) -> Result<bool, StoreError>;

    /// Pins the version just below the active one and returns it; `None` (and nothing
    /// changes) for an unknown series or when the active version is the first.
    async fn rollback(&self, series_id: &str) -> Result<Option<u32>, StoreError>;

    /// The training points of a version ordered by timestamp (then insertion order), `None` if
    /// the version does not exist.
    async fn training_points(
        &self,
        series_id: &str,
        version: u32,
    ) -> Result<Option<Vec<TrainingPoint>>, StoreError>;

    /// The number of distinct series ever fitted.
    async fn series_count(&self) -> Result<u64, StoreError>;
}
