//! Per-series models: the operations behind seed 001's `/fit`, `/predict`, `/plot` and the
//! native `/v1/series/{id}/..` routes, shared so both surfaces behave the same and differ only
//! in their wire shapes and error bodies.
//!
//! - The model is [`oddity_detect::series_model::FittedSeriesModel`] (two-sided 3σ band; see its
//!   module doc for the deviation from seed 001's one-sided rule).
//! - Versions, pins and training points live behind [`oddity_store::ModelStore`].
//! - Every successful fit and predict is timed from the start of the operation (model work and
//!   store round trips included) and counted in [`crate::series_metrics::SeriesMetrics`], which
//!   feeds `GET /healthcheck`.
//! - Fitting and plotting are CPU work proportional to the input: above a small size they run on
//!   the blocking pool so an async thread never stalls on a large body.

use std::time::Instant;

use oddity_detect::series_model::{
    FitError, FittedSeriesModel, PredictError, SeriesPoint, SeriesPrediction,
};
use oddity_model::time::now_ms;
use oddity_store::{StoreError, TrainingPoint};

use crate::AppState;
use crate::series_plot;

/// Fits of more points than this run on the blocking pool.
const INLINE_FIT_POINTS: usize = 2_000;

/// Why a per-series operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SeriesError {
    /// The series has no model at all.
    #[error("no model for series `{0}`")]
    UnknownSeries(String),
    /// The series exists but not this version.
    #[error("series `{series}` has no version v{version}")]
    UnknownVersion { series: String, version: u32 },
    /// The points cannot be fitted (too few, constant, non-finite, overflow).
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The value cannot be scored.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// No earlier version to roll back to.
    #[error("series `{0}` has no version before the active one")]
    NothingToRollBack(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored model could not be decoded, or a background task failed.
    #[error("{0}")]
    Internal(String),
}

/// Version numbers are shown as `v1`, `v2`, … on both APIs.
pub(crate) fn version_label(version: u32) -> String {
    format!("v{version}")
}

/// Parses `v3` (or `V3`); with `bare_number`, also `3`. Versions start at 1.
pub(crate) fn parse_version(text: &str, bare_number: bool) -> Option<u32> {
    let text = text.trim();
    let digits = match text.strip_prefix(['v', 'V']) {
        Some(rest) => rest,
        None if bare_number => text,
        None => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|v| *v >= 1)
}

/// A successful fit.
#[derive(Debug)]
pub(crate) struct Fitted {
    pub version: u32,
    pub model: FittedSeriesModel,
}

/// A successful prediction.
#[derive(Debug)]
pub(crate) struct Predicted {
    pub version: u32,
    pub prediction: SeriesPrediction,
}

fn decode(
    series_id: &str,
    version: u32,
    model: serde_json::Value,
) -> Result<FittedSeriesModel, SeriesError> {
    serde_json::from_value(model).map_err(|e| {
        SeriesError::Internal(format!(
            "stored model {series_id} v{version} cannot be decoded: {e}"
        ))
    })
}

/// Fits `points` and stores them as the next version of `series_id`.
pub(crate) async fn fit(
    state: &AppState,
    series_id: &str,
    points: Vec<SeriesPoint>,
) -> Result<Fitted, SeriesError> {
    let started = Instant::now();
    let (model, points) = if points.len() > INLINE_FIT_POINTS {
        tokio::task::spawn_blocking(move || FittedSeriesModel::fit(&points).map(|m| (m, points)))
            .await
            .map_err(|e| SeriesError::Internal(format!("fit task failed: {e}")))??
    } else {
        (FittedSeriesModel::fit(&points)?, points)
    };
    let json = serde_json::to_value(&model)
        .map_err(|e| SeriesError::Internal(format!("model encoding failed: {e}")))?;
    let training: Vec<TrainingPoint> = points
        .iter()
        .map(|p| TrainingPoint {
            timestamp: p.timestamp,
            value: p.value,
        })
        .collect();
    let version = state
        .models
        .save_model(series_id, &json, &training, now_ms())
        .await?;
    state.series_metrics.record_fit(started.elapsed(), now_ms());
    Ok(Fitted { version, model })
}

/// Scores `value` against the active version of `series_id`, or against `version`.
pub(crate) async fn predict(
    state: &AppState,
    series_id: &str,
    version: Option<u32>,
    timestamp: i64,
    value: f64,
) -> Result<Predicted, SeriesError> {
    let started = Instant::now();
    let stored = match version {
        None => state.models.active_model(series_id).await?,
        Some(v) => state.models.model(series_id, v).await?,
    };
    let Some(stored) = stored else {
        return Err(missing(state, series_id, version).await);
    };
    let model = decode(series_id, stored.version, stored.model)?;
    let prediction = model.predict(timestamp, value)?;
    state
        .series_metrics
        .record_predict(series_id, started.elapsed(), now_ms());
    Ok(Predicted {
        version: stored.version,
        prediction,
    })
}

/// The error for a model that was not found: the whole series, or only that version.
async fn missing(state: &AppState, series_id: &str, version: Option<u32>) -> SeriesError {
    match version {
        Some(version)
            if state
                .models
                .active_model(series_id)
                .await
                .ok()
                .flatten()
                .is_some() =>
        {
            SeriesError::UnknownVersion {
                series: series_id.to_owned(),
                version,
            }
        }
        _ => SeriesError::UnknownSeries(series_id.to_owned()),
    }
}

/// The PNG plot of a version (the active one when `version` is `None`): its training data,
/// expected band and the training points outside the band.
pub(crate) async fn plot(
    state: &AppState,
    series_id: &str,
    version: Option<u32>,
) -> Result<(u32, Vec<u8>), SeriesError> {
    let version = match version {
        Some(v) => v,
        None => match state.models.active_model(series_id).await? {
            Some(m) => m.version,
            None => return Err(SeriesError::UnknownSeries(series_id.to_owned())),
        },
    };
    let Some(stored) = state.models.model(series_id, version).await? else {
        return Err(missing(state, series_id, Some(version)).await);
    };
    let model = decode(series_id, version, stored.model)?;
    let points = state
        .models
        .training_points(series_id, version)
        .await?
        .unwrap_or_default();
    if points.is_empty() {
        return Err(SeriesError::UnknownVersion {
            series: series_id.to_owned(),
            version,
        });
    }
    let title = format!("Training Data - {series_id} ({})", version_label(version));
    let png = tokio::task::spawn_blocking(move || series_plot::render(&title, &points, &model))
        .await
        .map_err(|e| SeriesError::Internal(format!("plot task failed: {e}")))?
        .map_err(|e| SeriesError::Internal(format!("plot failed: {e}")))?;
    Ok((version, png))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_print() {
        assert_eq!(version_label(3), "v3");
        for (text, bare, want) in [
            ("v1", false, Some(1)),
            ("V12", false, Some(12)),
            (" v2 ", false, Some(2)),
            ("3", false, None),
            ("3", true, Some(3)),
            ("v0", false, None),
            ("v", false, None),
            ("v-1", false, None),
            ("v1.5", false, None),
            ("v99999999999", false, None),
            ("latest", true, None),
        ] {
            assert_eq!(parse_version(text, bare), want, "{text:?}");
        }
    }
}
