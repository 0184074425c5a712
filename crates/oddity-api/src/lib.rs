//! The HTTP API: ingest, queries, and the compatibility routes of the reference systems.
//!
//! Handlers translate between HTTP and the [`Log`] and [`Store`] traits; they hold no business
//! logic beyond validating and normalising input (the [`ingest`] adapters). Every resource owns
//! its router; [`app`] merges them, so the whole API is testable without a socket.
//!
//! # Layout
//! - [`ingest`]: parsing and normalising incoming events (native, seed 002 signals, seed 003
//!   records) into [`oddity_model::Event`]s, with per-line rejections.
//! - [`v1`]: the native API (`/v1/events`, `/v1/anomalies`, `/v1/entities/..`, `/v1/stats`).
//! - [`compat`]: seed 000's `POST /ingest`, seed 002's `/signals`, `/anomalies`, `/users/..`,
//!   `/metrics?hours=`, `/health`.
//! - per-series models: seed 001's `/fit`, `/predict`, `/plot`, `/healthcheck`
//!   ([`compat::seed001`]) and `/v1/series/{id}/..` ([`v1`]), sharing one implementation;
//!   [`series_metrics`], [`system_metrics`] and [`series_plot`] serve them.
//! - [`error`]: [`ApiError`] for `/v1` (`{"error": ..}`) and FastAPI-shaped errors for `compat`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;

use oddity_config::{DetectorSpec, IngestConfig};
use oddity_log::Log;
use oddity_pipeline::PipelineStatus;
use oddity_store::{ModelStore, Store};

pub mod compat;
pub mod error;
pub mod ingest;
mod params;
mod series;
pub mod series_metrics;
pub mod series_plot;
mod submit;
pub mod system_metrics;
pub mod v1;

pub use error::ApiError;

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub log: Arc<dyn Log>,
    pub store: Arc<dyn Store>,
    /// Ingest limits.
    pub limits: Arc<IngestConfig>,
    /// When the server started (for uptime).
    pub started: Instant,
    /// Workers' progress counters.
    pub status: Arc<PipelineStatus>,
    /// Versioned per-series models (`/fit`, `/predict`, `/v1/series`).
    pub models: Arc<dyn ModelStore>,
    /// Counters of the per-series API (seed 001's `/healthcheck`).
    pub series_metrics: Arc<series_metrics::SeriesMetrics>,
    /// The configured detectors (`/v1/detectors`).
    pub detectors: Arc<[DetectorSpec]>,
}

impl AppState {
    /// Events acknowledged but not yet committed by the workers, per partition.
    pub fn lag_by_partition(&self) -> Vec<PartitionLag> {
        (0..self.log.partitions())
            .map(|p| {
                let end = self.log.end_offset(p).unwrap_or(0);
                let committed = self
                    .status
                    .partition(p)
                    .map_or(0, |s| s.position.load(std::sync::atomic::Ordering::Relaxed));
                PartitionLag {
                    partition: p,
                    end_offset: end,
                    committed_offset: committed,
                    lag: end.saturating_sub(committed),
                }
            })
            .collect()
    }

    /// Total events acknowledged but not yet processed.
    pub fn lag(&self) -> u64 {
        self.lag_by_partition().iter().map(|p| p.lag).sum()
    }
}

/// Progress of one partition.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PartitionLag {
    pub partition: u32,
    pub end_offset: u64,
    pub committed_offset: u64,
    pub lag: u64,
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let body_limit = usize::try_from(state.limits.max_body_bytes.0).unwrap_or(usize::MAX);
    Router::new()
        .merge(v1::router())
        .merge(compat::router())
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
