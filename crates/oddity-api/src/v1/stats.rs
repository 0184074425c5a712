//! `GET /v1/stats`, `GET /v1/entities/{entity}/risk`, `GET /v1/health`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use oddity_model::time::now_ms;

use crate::params::{self, Params};
use crate::{ApiError, AppState};

/// Counts and rates over the last `hours` (1..=8760, default 24), plus the current lag.
pub(crate) async fn stats(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let hours = params::int(&q, "hours", 1, 8760)?.unwrap_or(24);
    let since = now_ms() - hours * 3_600_000;
    let s = state.store.stats(since).await?;
    let seconds = (hours * 3600) as f64;
    let partitions = state.lag_by_partition();
    let lag: u64 = partitions.iter().map(|p| p.lag).sum();
    let top = |v: &[(String, u64)], key: &str| -> Vec<Value> {
        v.iter()
            .map(|(e, n)| json!({ "entity": e, key: n }))
            .collect()
    };
    Ok(Json(json!({
        "hours": hours,
        "since_ms": s.since_ms,
        "total_events": s.total_events,
        "total_anomalies": s.total_anomalies,
        "events_per_second": s.total_events as f64 / seconds,
        "anomalies_per_hour": s.total_anomalies as f64 / hours as f64,
        "anomaly_rate": if s.total_events == 0 { 0.0 } else { s.total_anomalies as f64 / s.total_events as f64 },
        "events_by_type": s.events_by_type,
        "anomalies_by_detector": s.anomalies_by_detector,
        "anomalies_by_severity": s.anomalies_by_severity,
        "top_entities_by_events": top(&s.top_entities_by_events, "events"),
        "top_entities_by_anomalies": top(&s.top_entities_by_anomalies, "anomalies"),
        "lag": lag,
        "partitions": partitions,
        "pipeline": {
            "events_since_start": state.status.events(),
            "anomalies_since_start": state.status.anomalies(),
            "worker_restarts": state.status.restarts(),
            "ack_to_queryable_ms": {
                "count": state.status.ack_to_queryable.count(),
                "p50": state.status.ack_to_queryable.quantile(0.5),
                "p99": state.status.ack_to_queryable.quantile(0.99),
                "max": state.status.ack_to_queryable.quantile(1.0),
            },
        },
    })))
}

/// One entity's anomaly counts and risk score (seed 002's formula, "recent" = last 24 h).
pub(crate) async fn entity_risk(
    State(state): State<AppState>,
    Path(entity): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let risk = state
        .store
        .entity_risk(&entity, now_ms() - 86_400_000)
        .await?;
    let score = risk.risk_score();
    let mut v = serde_json::to_value(&risk)
        .map_err(|e| ApiError::internal("risk serialisation failed", e))?;
    if let Value::Object(map) = &mut v {
        map.insert("risk_score".into(), score.into());
    }
    Ok(Json(v))
}

/// Liveness and readiness: 200 when the store answers, 503 otherwise.
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = state.store.ping().await;
    let status = if store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if let Err(e) = &store {
        tracing::warn!(error = %e, "health check: store does not answer");
    }
    (
        status,
        Json(json!({
            "status": if store.is_ok() { "ok" } else { "unavailable" },
            "store": if store.is_ok() { "ok" } else { "unavailable" },
            "partitions": state.log.partitions(),
            "lag": state.lag(),
            "events_since_start": state.status.events(),
            "anomalies_since_start": state.status.anomalies(),
            "uptime_seconds": state.started.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
        })),
    )
}
