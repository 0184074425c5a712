//! `GET /v1/detectors/{id}/models` and `GET /v1/detectors/{id}/models/{version}`: the model
//! versions fitted by batch-model detectors (Isolation Forest, LOF, One-Class SVM, ensemble).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use oddity_store::DetectorModelInfo;

use crate::params::{self, Params};
use crate::{ApiError, AppState};

async fn infos(state: &AppState, id: &str) -> Result<Vec<DetectorModelInfo>, ApiError> {
    let infos = state.store.detector_models(id).await?;
    if infos.is_empty() {
        return Err(ApiError::NotFound(format!(
            "detector `{id}` has no stored model: it is not configured, is not a model detector \
             (isolation_forest, lof, one_class_svm, ensemble), or has not finished its warm-up"
        )));
    }
    Ok(infos)
}

/// Every stored version of every key of the detector: key, version, created_at (wall clock),
/// trained_at (event time of the fit), rows.
pub(crate) async fn list_models(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let infos = infos(&state, &id).await?;
    let models: Vec<Value> = infos
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
    Ok(Json(json!({ "detector": id, "models": models })))
}

/// One version (`latest` or a number) of one key's model, with the model itself. `key` may be
/// left out when the detector has models for one key only.
pub(crate) async fn get_model(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
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
            let mut keys: Vec<String> = infos(&state, &id)
                .await?
                .into_iter()
                .map(|i| i.key)
                .collect();
            keys.dedup();
            if keys.len() != 1 {
                return Err(ApiError::BadRequest(format!(
                    "key is required: detector `{id}` has models for {} keys: {}",
                    keys.len(),
                    keys.join(", ")
                )));
            }
            keys.remove(0)
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
