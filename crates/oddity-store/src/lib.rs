//! The store: events, anomalies, detector state and log positions, behind one narrow trait.
//!
//! Workers call [`Store::commit`] once per batch: the batch's events, the anomalies they raised,
//! the detector state they changed and the partition's new log position are written in **one
//! transaction**. The commit is fenced on the position the worker started from, so a crash
//! replays a batch rather than losing or duplicating it, and two workers can never both commit
//! the same partition's range.
//!
//! The query side serves the API: paginated events and anomalies with filters, statistics over
//! the last hours, and a risk score per entity.
//!
//! # Backends
//! - [`sqlite`]: the embedded default (one file under the data directory, WAL).
//! - PostgreSQL comes later, and must pass the same [`testsuite`]: one line,
//!   `oddity_store::store_test_suite!(factory)`, with the `testsuite` feature.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use oddity_model::{Anomaly, Event, Severity};

mod error;
pub mod models;
pub mod sqlite;
#[cfg(any(test, doc, feature = "testsuite"))]
pub mod testsuite;

pub use error::StoreError;
pub use models::{ModelStore, ModelVersionInfo, StoredModel, TrainingPoint};

/// Everything one worker batch produced, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct CommitBatch {
    pub partition: u32,
    /// Offset of the first record of the batch. It must equal the partition's stored position,
    /// otherwise the commit fails with [`StoreError::PositionConflict`] and changes nothing.
    pub from_offset: u64,
    /// The partition's position after the batch (next offset to process), `>= from_offset`.
    pub to_offset: u64,
    /// Events to store, each with its log id.
    pub events: Vec<Event>,
    /// Anomalies raised by those events. At most one per (event, detector) is ever stored.
    pub anomalies: Vec<Anomaly>,
    /// Detector state changed by the batch.
    pub state: Vec<StateChange>,
    /// When set, `state` completes a checkpoint: the partition's saved state now reflects every
    /// record below this offset (at most `to_offset`). [`Store::load_state`] returns it, and a
    /// restarting worker replays the log from there.
    pub state_offset: Option<u64>,
    /// Models fitted by detectors during the batch, one version each. Saving a version that is
    /// already stored (a replay after a crash fits it again) changes nothing.
    pub models: Vec<DetectorModel>,
}

/// How many versions of a detector instance's model a store keeps: saving a newer one deletes
/// those [`MODEL_VERSIONS_KEPT`] or more versions older than it.
pub const MODEL_VERSIONS_KEPT: u32 = 10;

/// A stored detector model version without the model itself (for listings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorModelInfo {
    /// Detector id from the configuration.
    pub detector: String,
    /// The instance's key (a type, a series, an entity: see the detector's `key`).
    pub key: String,
    /// Version, from 1, increasing per (detector, key).
    pub version: u32,
    /// When it was fitted (wall clock, ms).
    pub created_at: i64,
    /// Event time of the observation that triggered the fit (ms).
    pub trained_at: i64,
    /// Rows it was fitted on.
    pub rows: u64,
}

/// One version of a model fitted by a pipeline detector (Isolation Forest, LOF, …) for one key:
/// its listing line and the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorModel {
    #[serde(flatten)]
    pub info: DetectorModelInfo,
    /// The model, as JSON.
    pub model: serde_json::Value,
}

/// A partition's saved detector state and the log offset it reflects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedState {
    /// Every record below this offset is reflected in `entries` (0 when never checkpointed).
    pub offset: u64,
    pub entries: Vec<StateEntry>,
}

/// A change to the saved state of one detector instance.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// Detector id from the configuration.
    pub detector: String,
    /// The instance's key (an entity, or a series key).
    pub key: String,
    /// The new state, or `None` to delete it.
    pub state: Option<serde_json::Value>,
}

/// A saved detector state, as loaded when a worker starts.
#[derive(Debug, Clone, PartialEq)]
pub struct StateEntry {
    pub detector: String,
    pub key: String,
    pub state: serde_json::Value,
}

/// Filters and page of an event query. Results are ordered by `ts` descending, then id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    pub entity: Option<String>,
    pub event_type: Option<String>,
    /// Inclusive lower bound on the event timestamp (ms).
    pub from_ts: Option<i64>,
    /// Inclusive upper bound on the event timestamp (ms).
    pub to_ts: Option<i64>,
    /// 1-based page number.
    pub page: u32,
    /// Page size, at least 1.
    pub size: u32,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            entity: None,
            event_type: None,
            from_ts: None,
            to_ts: None,
            page: 1,
            size: 50,
        }
    }
}

/// Filters and page of an anomaly query. Results are ordered by the triggering event's `ts`
/// descending, then id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyQuery {
    pub entity: Option<String>,
    pub event_type: Option<String>,
    /// Detector id (`high_value_purchase`).
    pub detector: Option<String>,
    /// Exact severity.
    pub severity: Option<Severity>,
    /// Inclusive lower bound on the triggering event's timestamp (ms).
    pub from_ts: Option<i64>,
    /// Inclusive upper bound on the triggering event's timestamp (ms).
    pub to_ts: Option<i64>,
    pub page: u32,
    pub size: u32,
}

impl Default for AnomalyQuery {
    fn default() -> Self {
        AnomalyQuery {
            entity: None,
            event_type: None,
            detector: None,
            severity: None,
            from_ts: None,
            to_ts: None,
            page: 1,
            size: 50,
        }
    }
}

/// One page of results and the total number of matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// An anomaly as stored, with the store's id for it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnomaly {
    pub id: i64,
    pub anomaly: Anomaly,
}

/// Counts over everything stored since a point in time (by arrival: `ingested_at` for events,
/// `detected_at` for anomalies).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub since_ms: i64,
    pub total_events: u64,
    pub total_anomalies: u64,
    pub events_by_type: BTreeMap<String, u64>,
    pub anomalies_by_detector: BTreeMap<String, u64>,
    pub anomalies_by_severity: BTreeMap<String, u64>,
    /// At most 10, most first (ties by entity ascending).
    pub top_entities_by_events: Vec<(String, u64)>,
    /// At most 10, most first (ties by entity ascending).
    pub top_entities_by_anomalies: Vec<(String, u64)>,
}

/// Anomaly counts and risk score of one entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityRisk {
    pub entity: String,
    pub total_anomalies: u64,
    pub low: u64,
    pub medium: u64,
    pub high: u64,
    pub critical: u64,
    /// Anomalies detected since the `recent_since_ms` given to [`Store::entity_risk`].
    pub recent_anomalies: u64,
}

impl EntityRisk {
    /// Seed 002's `get_user_risk_score`, extended to critical (weight 4):
    /// `(4·critical + 3·high + 2·medium + low + 2·recent) / max(total, 1)`, 0 with no anomalies.
    pub fn risk_score(&self) -> f64 {
        if self.total_anomalies == 0 {
            return 0.0;
        }
        let weighted = 4 * self.critical
            + 3 * self.high
            + 2 * self.medium
            + self.low
            + 2 * self.recent_anomalies;
        weighted as f64 / self.total_anomalies as f64
    }
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    pub events: u64,
    pub anomalies: u64,
}

/// A store backend. Every backend passes [`testsuite`].
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Writes a worker batch atomically and advances the partition's position (see
    /// [`CommitBatch`]).
    async fn commit(&self, batch: CommitBatch) -> Result<(), StoreError>;

    /// The stored position of every partition that has committed at least once.
    async fn positions(&self) -> Result<BTreeMap<u32, u64>, StoreError>;

    /// All detector state saved by `partition`, with the offset of its last checkpoint.
    async fn load_state(&self, partition: u32) -> Result<SavedState, StoreError>;

    /// A page of events.
    async fn events(&self, query: &EventQuery) -> Result<Page<Event>, StoreError>;

    /// A page of anomalies.
    async fn anomalies(&self, query: &AnomalyQuery) -> Result<Page<StoredAnomaly>, StoreError>;

    /// Counts over events and anomalies that arrived at or after `since_ms`.
    async fn stats(&self, since_ms: i64) -> Result<Stats, StoreError>;

    /// Anomaly counts of one entity; `recent_since_ms` bounds "recent".
    async fn entity_risk(
        &self,
        entity: &str,
        recent_since_ms: i64,
    ) -> Result<EntityRisk, StoreError>;

    /// Deletes events that arrived before `before_ms` and anomalies detected before it.
    async fn purge(&self, before_ms: i64) -> Result<PurgeReport, StoreError>;

    /// Checks that the store answers (for health endpoints).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The stored model versions of `detector`, by key then version (empty for a detector
    /// that never fitted one).
    async fn detector_models(&self, detector: &str) -> Result<Vec<DetectorModelInfo>, StoreError>;

    /// One stored model version of (`detector`, `key`); the newest when `version` is `None`.
    async fn detector_model(
        &self,
        detector: &str,
        key: &str,
        version: Option<u32>,
    ) -> Result<Option<DetectorModel>, StoreError>;
}
