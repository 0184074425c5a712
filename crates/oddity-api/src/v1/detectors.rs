//! `GET /v1/detectors` (the configured detectors) and the model versions fitted by batch-model
//! detectors: `GET /v1/detectors/{id}/models`, `GET /v1/detectors/{id}/models/{version}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use oddity_config::DetectorSpec;

use crate::params::{self, Params};
use crate::{ApiError, AppState};

/// Every configured detector: id, kind, key, event types (null: all) and, for batch models, the
/// features a row is made of.
pub(crate) async fn list_detectors(State(state): State<AppState>) -> Json<Value> {
    let detectors: Vec<Value> = state
        .detectors
        .iter()
        .map(|d| {
            let mut v = json!({
                "id": d.id,
                "kind": d.params.kind().as_str(),
                "key": d.key.as_str(),
                "types": (!d.types.is_empty()).then(|| d.types.iter().collect::<Vec<_>>()),
            });
            if let Some((_, c)) = d.params.model() {
                let features: Vec<String> = c.features.iter().map(|f| f.to_string()).collect();
                v["features"] = features.into();
            }
            v
        })
        .collect();
    Json(json!({ "detectors": detectors }))
}

/// The configured batch-model detector `id`, or a 404 saying why there is none.
fn model_detector<'a>(state: &'a AppState, id: &str) -> Result<&'a DetectorSpec, ApiError> {
    let spec = state.detectors.iter().find(|d| d.id == id).ok_or_else(|| {
        let ids: Vec<&str> = state.detectors.iter().map(|d| d.id.as_str()).collect();
        ApiError::NotFound(format!(
            "unknown detector `{id}` (configured: {})",
            ids.join(", ")
        ))
    })?;
    if spec.params.model().is_none() {
        return Err(ApiError::NotFound(format!(
            "detector `{id}` is a {} detector: it fits no models (isolation_forest, lof, \
             one_class_svm and ensemble do)",
            spec.params.kind()
        )));
    }
    Ok(spec)
}

/// Every stored version of every key of the detector: key, version, created_at (wall clock),
/// trained_at (event time of the fit), rows. Empty while the detector warms up.
pub(crate) async fn list_models(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let spec = model_detector(&state, &id)?;
    let models: Vec<Value> = state
        .store
        .detector_models(&id)
        .await?
        .iter()
        .map(|i| {
            json!({
                "key": i.key,
                "version": i.version,
                "created_at": i.created_at,
                "trained_at": i.trained_at,
                "rows": i.rows,
            })
        })
        .collect();
    Ok(Json(json!({
        "detector": id,
        "kind": spec.params.kind().as_str(),
        "models": models,
    })))
}

/// One version (`latest` or a number) of one key's model, with the model itself. `key` may be
/// left out when the detector has models for one key only.
pub(crate) async fn get_model(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    model_detector(&state, &id)?;
    let version = match version.as_str() {
        "latest" => None,
        v => Some(v.parse::<u32>().map_err(|_| {
            ApiError::BadRequest(format!(
                "version must be `latest` or a positive integer, got `{v}`"
            ))
        })?),
    };
    let key = match params::text(&q, "key") {
        Some(key) => key,
        None => {
            let mut keys: Vec<String> = state
                .store
                .detector_models(&id)
                .await?
                .into_iter()
                .map(|i| i.key)
                .collect();
            keys.dedup();
            match keys.len() {
                0 => {
                    return Err(ApiError::NotFound(format!(
                        "detector `{id}` has not fitted a model yet (still in its warm-up)"
                    )));
                }
                1 => keys.remove(0),
                n => {
                    return Err(ApiError::BadRequest(format!(
                        "key is required: detector `{id}` has models for {n} keys: {}",
                        keys.join(", ")
                    )));
                }
            }
        }
    };
    let model = state
        .store
        .detector_model(&id, &key, version)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(match version {
                Some(v) => format!("detector `{id}` has no model version {v} for key {key}"),
                None => format!("detector `{id}` has no model for key {key}"),
            })
        })?;
    Ok(Json(serde_json::to_value(model).unwrap_or(Value::Null)))
}
