//! Seed 002's REST API: signals, anomalies, per-user views, JSON metrics and health.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use oddity_model::time::{iso_naive, now_ms};
use oddity_model::{Event, Severity};
use oddity_store::{AnomalyQuery, EventQuery, StoredAnomaly};

use super::user_id_json;
use crate::AppState;
use crate::error::CompatError;
use crate::params::{self, Pagination, Params};

const SIGNAL_TYPES: [&str; 5] = ["login", "purchase", "click", "api_call", "file_access"];
const ANOMALY_TYPES: [&str; 7] = [
    "high_frequency_login",
    "repeated_login_failures",
    "unusual_location_login",
    "high_value_purchase",
    "rapid_successive_purchases",
    "high_api_failure_rate",
    "unusual_time_activity",
];
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

fn payload(event: &Event) -> Value {
    match event.attrs_value() {
        Value::Null => json!({}),
        v => v,
    }
}

/// A stored event as seed 002's `Signal`.
fn signal_json(event: &Event) -> Value {
    json!({
        "id": event.id.0,
        "user_id": user_id_json(&event.entity),
        "type": event.event_type,
        "timestamp": event.ts,
        "payload": payload(event),
        "processed_at": iso_naive(event.ingested_at),
        "created_at": iso_naive(event.ingested_at),
    })
}

/// A stored anomaly as seed 002's `Anomaly`.
fn anomaly_json(stored: &StoredAnomaly) -> Value {
    let a = &stored.anomaly;
    json!({
        "id": stored.id,
        "user_id": user_id_json(&a.entity),
        "anomaly_type": a.detector,
        "severity": a.severity,
        "description": a.description,
        "original_signal_data": {
            "user_id": user_id_json(&a.event.entity),
            "type": a.event.event_type,
            "timestamp": a.event.ts,
            "payload": payload(&a.event),
        },
        "detection_timestamp": a.ts,
        "created_at": iso_naive(a.detected_at),
    })
}

async fn signal_page(
    state: &AppState,
    q: &Params,
    user: Option<String>,
) -> Result<Json<Value>, CompatError> {
    let (page, size) = params::page(q)?;
    let query = EventQuery {
        entity: user.or_else(|| params::text(q, "user_id")),
        event_type: params::one_of(q, "signal_type", &SIGNAL_TYPES)?,
        from_ts: params::int(q, "start_timestamp", i64::MIN, i64::MAX)?,
        to_ts: params::int(q, "end_timestamp", i64::MIN, i64::MAX)?,
        page,
        size,
    };
    let result = state.store.events(&query).await?;
    let signals: Vec<Value> = result.items.iter().map(signal_json).collect();
    Ok(Json(
        json!({ "signals": signals, "pagination": Pagination::new(page, size, result.total) }),
    ))
}

async fn anomaly_page(
    state: &AppState,
    q: &Params,
    user: Option<String>,
) -> Result<Json<Value>, CompatError> {
    let (page, size) = params::page(q)?;
    let severity: Option<Severity> =
        params::one_of(q, "severity", &SEVERITIES)?.and_then(|s| s.parse().ok());
    let query = AnomalyQuery {
        entity: user.or_else(|| params::text(q, "user_id")),
        event_type: None,
        detector: params::one_of(q, "anomaly_type", &ANOMALY_TYPES)?,
        severity,
        from_ts: params::int(q, "start_timestamp", i64::MIN, i64::MAX)?,
        to_ts: params::int(q, "end_timestamp", i64::MIN, i64::MAX)?,
        page,
        size,
    };
    let result = state.store.anomalies(&query).await?;
    let anomalies: Vec<Value> = result.items.iter().map(anomaly_json).collect();
    Ok(Json(
        json!({ "anomalies": anomalies, "pagination": Pagination::new(page, size, result.total) }),
    ))
}

/// `GET /signals`.
pub async fn signals(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, CompatError> {
    signal_page(&state, &q, None).await
}

/// `GET /users/{user_id}/signals`.
pub async fn user_signals(
    State(state): State<AppState>,
    Path(user): Path<String>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, CompatError> {
    signal_page(&state, &q, Some(user)).await
}

/// `GET /anomalies`.
pub async fn anomalies(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, CompatError> {
    anomaly_page(&state, &q, None).await
}

/// `GET /users/{user_id}/anomalies`.
pub async fn user_anomalies(
    State(state): State<AppState>,
    Path(user): Path<String>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, CompatError> {
    anomaly_page(&state, &q, Some(user)).await
}

/// `GET /metrics?hours=` (1..=168, default 24): seed 002's JSON statistics (Prometheus text
/// lives on the admin listener, not here).
pub async fn metrics(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, CompatError> {
    let hours = params::int(&q, "hours", 1, 168)?.unwrap_or(24);
    let s = state.store.stats(now_ms() - hours * 3_600_000).await?;
    let top = |v: &[(String, u64)], key: &str| -> Vec<Value> {
        v.iter()
            .map(|(e, n)| json!({ "user_id": user_id_json(e), key: n }))
            .collect()
    };
    Ok(Json(json!({
        "total_signals": s.total_events,
        "total_anomalies": s.total_anomalies,
        "signals_by_type": s.events_by_type,
        "anomalies_by_type": s.anomalies_by_detector,
        "anomalies_by_severity": s.anomalies_by_severity,
        "top_users_by_signals": top(&s.top_entities_by_events, "signal_count"),
        "top_users_by_anomalies": top(&s.top_entities_by_anomalies, "anomaly_count"),
        "time_range": format!("last_{hours}_hours"),
    })))
}

/// `GET /health`: seed 002's API health.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ok = state.store.ping().await.is_ok();
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(json!({
            "status": if ok { "healthy" } else { "unhealthy" },
            "service": "event-pipeline-api",
            "database": if ok { "connected" } else { "disconnected" },
            "uptime_seconds": state.started.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
        })),
    )
}
