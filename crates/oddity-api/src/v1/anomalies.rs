//! `GET /v1/anomalies` and `GET /v1/entities/{entity}/anomalies`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use oddity_store::{AnomalyQuery, StoredAnomaly};

use crate::params::{self, Pagination, Params};
use crate::{ApiError, AppState};

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// An anomaly as the native API shows it: the anomaly with its store id.
pub(crate) fn anomaly_json(stored: &StoredAnomaly) -> Value {
    let mut v = serde_json::to_value(&stored.anomaly).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("id".into(), stored.id.into());
    }
    v
}

async fn query(
    state: &AppState,
    q: &Params,
    entity: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = params::page(q)?;
    let severity = params::one_of(q, "severity", &SEVERITIES)?.and_then(|s| s.parse().ok());
    let query = AnomalyQuery {
        entity: entity.or_else(|| params::text(q, "entity")),
        event_type: params::text(q, "type"),
        detector: params::text(q, "detector"),
        severity,
        from_ts: params::time(q, "from")?,
        to_ts: params::time(q, "to")?,
        page,
        size,
    };
    let result = state.store.anomalies(&query).await?;
    let items: Vec<Value> = result.items.iter().map(anomaly_json).collect();
    Ok(Json(
        json!({ "anomalies": items, "pagination": Pagination::new(page, size, result.total) }),
    ))
}

/// Lists anomalies, newest event first: `entity`, `type`, `detector`, `severity`, `from`, `to`,
/// `page`, `size`.
pub(crate) async fn list_anomalies(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    query(&state, &q, None).await
}

/// One entity's anomalies.
pub(crate) async fn entity_anomalies(
    State(state): State<AppState>,
    Path(entity): Path<String>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    query(&state, &q, Some(entity)).await
}
