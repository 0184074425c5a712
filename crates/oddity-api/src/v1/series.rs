//! `/v1/series/{id}/..`: the native per-series model API, the same operations as seed 001's
//! routes ([`crate::compat::seed001`]) with oddity's error bodies (`{"error": ..}`) and version
//! management on top.
//!
//! - `POST fit` — body `{"data":[{"timestamp","value"},..]}` (validated like `/fit`) → 201 with
//!   the new version and the fitted model.
//! - `POST predict` — body `{"timestamp"?, "value", "version"?}`: scores against the named
//!   version (`"v2"` or `2`), else the active one. `timestamp` defaults to now (epoch seconds);
//!   the model does not use it.
//! - `GET versions` — every version with its time, point count and pinned/active flags.
//! - `POST activate` `{"version":"v2"}` — pins a version: it stays active through newer fits.
//! - `POST rollback` — pins the version just below the active one (successive rollbacks walk
//!   back); 400 when the active version is the first.
//! - `POST unpin` — returns to "the latest version is active".
//! - `GET plot?version=` — PNG of a version (default: the active one).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use oddity_model::time::{now_ms, rfc3339};

use crate::compat::seed001::{Problem, json_body, parse_fit_body, png_response};
use crate::params::Params;
use crate::series::{self, SeriesError, parse_version, version_label};
use crate::{ApiError, AppState};

fn bad_input(problems: Vec<Problem>) -> ApiError {
    let mut sentences: Vec<String> = problems.iter().take(5).map(Problem::to_sentence).collect();
    if problems.len() > 5 {
        sentences.push(format!("and {} more", problems.len() - 5));
    }
    ApiError::BadRequest(sentences.join("; "))
}

fn api_error(e: SeriesError) -> ApiError {
    match e {
        SeriesError::UnknownSeries(_) | SeriesError::UnknownVersion { .. } => {
            ApiError::NotFound(e.to_string())
        }
        SeriesError::Fit(_) | SeriesError::Predict(_) | SeriesError::NothingToRollBack(_) => {
            ApiError::BadRequest(e.to_string())
        }
        SeriesError::Store(e) => ApiError::from(e),
        SeriesError::Internal(cause) => ApiError::internal("per-series request failed", cause),
    }
}

fn read_json(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = super::body_or_error(state, body)?;
    json_body(&bytes).map_err(bad_input)
}

fn check_id(state: &AppState, id: &str) -> Result<(), ApiError> {
    let limit = state.limits.max_entity_bytes;
    if id.is_empty() || id.len() > limit {
        return Err(ApiError::BadRequest(format!(
            "series id must be 1 to {limit} bytes, got {}",
            id.len()
        )));
    }
    Ok(())
}

/// A version given as `"v2"`, `"2"` or `2`.
fn version_arg(v: &Value) -> Result<u32, ApiError> {
    let parsed = match v {
        Value::String(s) => parse_version(s, true),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ApiError::BadRequest(format!("`version` must be a version like \"v2\" (got {v})"))
    })
}

/// `POST /v1/series/{id}/fit`.
pub(crate) async fn fit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_id(&state, &id)?;
    let body = read_json(&state, body)?;
    let points = parse_fit_body(&body).map_err(bad_input)?;
    let points_used = points.len();
    let fitted = series::fit(&state, &id, points).await.map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "series_id": id,
            "version": version_label(fitted.version),
            "points_used": points_used,
            "model": fitted.model,
        })),
    ))
}

/// `POST /v1/series/{id}/predict`.
pub(crate) async fn predict(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = read_json(&state, body)?;
    let Value::Object(map) = &body else {
        return Err(ApiError::BadRequest(
            "body must be a JSON object {\"value\": .., \"timestamp\"?: .., \"version\"?: ..}"
                .into(),
        ));
    };
    let version = map
        .get("version")
        .filter(|v| !v.is_null())
        .map(version_arg)
        .transpose()?;
    let mut point = map.clone();
    point
        .entry("timestamp")
        .or_insert_with(|| json!(now_ms().div_euclid(1000)));
    let p = crate::compat::seed001::parse_predict_body(&Value::Object(point)).map_err(bad_input)?;
    let done = series::predict(&state, &id, version, p.timestamp, p.value)
        .await
        .map_err(api_error)?;
    let r = done.prediction;
    Ok(Json(json!({
        "series_id": id,
        "model_version": version_label(done.version),
        "anomaly": r.anomaly,
        "score": r.score,
        "z": r.z,
        "expected_range": { "low": r.expected_low, "high": r.expected_high },
    })))
}

/// The version list of a series, 404 when it has none.
async fn version_list(state: &AppState, id: &str) -> Result<Json<Value>, ApiError> {
    let versions = state.models.versions(id).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("no model for series `{id}`")));
    }
    let label = |pred: fn(&oddity_store::ModelVersionInfo) -> bool| {
        versions
            .iter()
            .find(|v| pred(v))
            .map(|v| version_label(v.version))
    };
    let active = label(|v| v.active);
    let pinned = label(|v| v.pinned);
    let list: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": version_label(v.version),
                "created_at": rfc3339(v.created_at),
                "points": v.points,
                "pinned": v.pinned,
                "active": v.active,
            })
        })
        .collect();
    Ok(Json(
        json!({ "series_id": id, "active": active, "pinned": pinned, "versions": list }),
    ))
}

/// `GET /v1/series/{id}/versions`.
pub(crate) async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    version_list(&state, &id).await
}

/// `POST /v1/series/{id}/activate` `{"version":"v2"}`: pins a version.
pub(crate) async fn activate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = read_json(&state, body)?;
    let version = match body.get("version") {
        Some(v) => version_arg(v)?,
        None => {
            return Err(ApiError::BadRequest(
                "body must be {\"version\": \"vN\"}".into(),
            ));
        }
    };
    if !state.models.pin(&id, version).await? {
        let err = if state.models.versions(&id).await?.is_empty() {
            SeriesError::UnknownSeries(id)
        } else {
            SeriesError::UnknownVersion {
                series: id,
                version,
            }
        };
        return Err(api_error(err));
    }
    version_list(&state, &id).await
}

/// `POST /v1/series/{id}/rollback`: pins the version below the active one.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if state.models.rollback(&id).await?.is_none() {
        let err = if state.models.versions(&id).await?.is_empty() {
            SeriesError::UnknownSeries(id)
        } else {
            SeriesError::NothingToRollBack(id)
        };
        return Err(api_error(err));
    }
    version_list(&state, &id).await
}

/// `POST /v1/series/{id}/unpin`: the latest version becomes active again.
pub(crate) async fn unpin(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.models.unpin(&id).await?;
    version_list(&state, &id).await
}

/// `GET /v1/series/{id}/plot?version=`.
pub(crate) async fn plot(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response, ApiError> {
    let version = match q.get("version").filter(|v| !v.is_empty()) {
        Some(v) => Some(parse_version(v, true).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "query parameter `version`: expected a version like v2 (got `{v}`)"
            ))
        })?),
        None => None,
    };
    let (_, png) = series::plot(&state, &id, version)
        .await
        .map_err(api_error)?;
    Ok(png_response(png))
}
