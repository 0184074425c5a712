//! The native API under `/v1`.

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

mod anomalies;
mod detectors;
pub(crate) use events::body_or_error;
mod events;
mod series;
mod stats;

/// Routes of the native API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/events",
            post(events::post_events).get(events::list_events),
        )
        .route("/v1/anomalies", get(anomalies::list_anomalies))
        .route(
            "/v1/entities/{entity}/anomalies",
            get(anomalies::entity_anomalies),
        )
        .route("/v1/entities/{entity}/risk", get(stats::entity_risk))
        .route("/v1/stats", get(stats::stats))
        .route("/v1/health", get(stats::health))
        .route("/v1/series/{id}/fit", post(series::fit))
        .route("/v1/series/{id}/predict", post(series::predict))
        .route("/v1/series/{id}/versions", get(series::versions))
        .route("/v1/series/{id}/activate", post(series::activate))
        .route("/v1/series/{id}/unpin", post(series::unpin))
        .route("/v1/series/{id}/rollback", post(series::rollback))
        .route("/v1/series/{id}/plot", get(series::plot))
        .route("/v1/detectors", get(detectors::list_detectors))
        .route("/v1/detectors/{id}/models", get(detectors::list_models))
        .route(
            "/v1/detectors/{id}/models/{version}",
            get(detectors::get_model),
        )
}
