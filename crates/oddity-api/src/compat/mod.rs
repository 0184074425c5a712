//! Compatibility routes: the reference systems' endpoints with their exact payloads, so their
//! clients can point at oddity unchanged (contracts in `shared/COMPAT.md`). Errors follow
//! FastAPI's shapes (`{"detail": ..}`; 422 for validation).
//!
//! - [`seed000`]: `POST /ingest` (cloud-audit events).
//! - [`seed001`]: `POST /fit/{series_id}`, `POST /predict/{series_id}`, `GET /plot`,
//!   `GET /healthcheck` (per-series models).
//! - [`seed002`]: `/signals`, `/anomalies`, `/users/{id}/signals|anomalies`, `/metrics?hours=`,
//!   `/health`.

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub mod seed000;
pub mod seed001;
pub mod seed002;

/// Routes of the compatibility layer.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ingest", post(seed000::ingest))
        .route("/fit/{series_id}", post(seed001::fit))
        .route("/predict/{series_id}", post(seed001::predict))
        .route("/plot", get(seed001::plot))
        .route("/healthcheck", get(seed001::healthcheck))
        .route("/signals", get(seed002::signals))
        .route("/anomalies", get(seed002::anomalies))
        .route("/users/{user_id}/signals", get(seed002::user_signals))
        .route("/users/{user_id}/anomalies", get(seed002::user_anomalies))
        .route("/metrics", get(seed002::metrics))
        .route("/health", get(seed002::health))
}

/// Seed 002 shows `user_id` as an integer: an entity that is one is shown as a number.
pub(crate) fn user_id_json(entity: &str) -> serde_json::Value {
    match entity.parse::<i64>() {
        Ok(n) if n.to_string() == entity => n.into(),
        _ => entity.into(),
    }
}
