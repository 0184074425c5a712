//! Seed 001's per-series model API: `POST /fit/{series_id}`, `POST /predict/{series_id}`,
//! `GET /plot?series_id=&version=`, `GET /healthcheck`, with the exact shapes of
//! `shared/COMPAT.md` (seed 001) plus additive fields.
//!
//! # Validation as pydantic v2 (lax mode) does it
//! Bodies are parsed as JSON whatever the `Content-Type`. `timestamp` accepts integers, floats
//! with no fractional part, booleans and integer strings (`"1693459200"`); `"now"` and `1.5`
//! are 422. `value` accepts numbers, numeric strings and booleans. Every problem of the body is
//! reported at once as `{"detail":[{"type","loc","msg","input"}]}`, `loc` like
//! `["body","data",1,"timestamp"]`. One deliberate difference: a non-finite `value` (`"nan"`,
//! `"inf"`, which pydantic accepts) is a 422 `finite_number`, since no model can use it.
//! `/fit` also accepts the later Go gateway's `{"timestamps":[..],"values":[..]}` as an alias.
//!
//! # Responses
//! - `/fit`: `{"series_id","version":"vN","points_used"}` + `summary` (the fitted model: mean,
//!   std, median, MAD, min, max, timestamps, expected band); 400 `Insufficient or constant
//!   data` for fewer than 3 points or constant values.
//! - `/predict`: `{"series_id","version","is_anomaly"}` + `anomaly`, `score`, `z`,
//!   `expected_range {low, high}`, `model_version` (the later gateway's names). The verdict is
//!   two-sided (see [`oddity_detect::series_model`]); seed 001's high-side answers are unchanged.
//!   It uses the active version (pinned via `/v1/series/{id}/activate`, else the latest).
//! - `/plot`: PNG ([`crate::series_plot`]).
//! - `/healthcheck`: the original's keys in its order, from [`crate::series_metrics`] and
//!   [`crate::system_metrics`]; 503 `Service unavailable: ..` if the store does not answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use oddity_detect::series_model::{FitError, SeriesPoint};
use oddity_model::time::now_ms;

use crate::AppState;
use crate::error::CompatError;
use crate::params::Params;
use crate::series::{self, SeriesError, version_label};
use crate::system_metrics;

const INSUFFICIENT: &str = "Insufficient or constant data";
const MODEL_NOT_FOUND: &str = "Model not found";
const NO_TRAINING_DATA: &str = "No training data found for given series_id and version.";

/// One segment of a pydantic `loc`.
#[derive(Debug, Clone)]
pub(crate) enum Loc {
    Key(&'static str),
    Index(usize),
}

/// One validation problem of a body: pydantic's `type`, `loc`, `msg` and `input`.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub kind: &'static str,
    pub loc: Vec<Loc>,
    pub msg: &'static str,
    pub input: Value,
}

impl Problem {
    fn new(kind: &'static str, loc: Vec<Loc>, msg: &'static str, input: Value) -> Self {
        Problem {
            kind,
            loc,
            msg,
            input,
        }
    }

    /// pydantic's JSON item, keys in its order.
    pub(crate) fn to_json(&self) -> Value {
        let loc: Vec<Value> = self
            .loc
            .iter()
            .map(|l| match l {
                Loc::Key(k) => Value::from(*k),
                Loc::Index(i) => Value::from(*i),
            })
            .collect();
        json!({ "type": self.kind, "loc": loc, "msg": self.msg, "input": self.input })
    }

    /// `body.data[1].timestamp: Input should be a valid integer (got "now")`, for the native API.
    pub(crate) fn to_sentence(&self) -> String {
        let mut path = String::new();
        for l in &self.loc {
            match l {
                Loc::Key(k) if path.is_empty() => path.push_str(k),
                Loc::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Loc::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        let mut input = self.input.to_string();
        if input.len() > 80 {
            input = format!("{}…", input.chars().take(80).collect::<String>());
        }
        format!("{path}: {} (got {input})", self.msg.to_lowercase())
    }
}

fn loc(prefix: &[Loc], last: Loc) -> Vec<Loc> {
    let mut v = prefix.to_vec();
    v.push(last);
    v
}

/// pydantic's lax `int`.
fn lax_int(v: &Value) -> Result<i64, (&'static str, &'static str)> {
    const INT_TYPE: (&str, &str) = ("int_type", "Input should be a valid integer");
    const FRACTION: (&str, &str) = (
        "int_from_float",
        "Input should be a valid integer, got a number with a fractional part",
    );
    const PARSING: (&str, &str) = (
        "int_parsing",
        "Input should be a valid integer, unable to parse string as an integer",
    );
    const SIZE: (&str, &str) = (
        "int_parsing_size",
        "Unable to parse input string as an integer, exceeded maximum size",
    );
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.is_finite() && f.fract() != 0.0 {
                Err(FRACTION)
            } else if f.is_finite() && f >= -(2.0_f64.powi(63)) && f < 2.0_f64.powi(63) {
                Ok(f as i64)
            } else {
                Err(SIZE)
            }
        }
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                return Err(PARSING);
            }
            t.replace('_', "").parse::<i64>().map_err(|_| SIZE)
        }
        Value::Bool(b) => Ok(i64::from(*b)),
        _ => Err(INT_TYPE),
    }
}

/// pydantic's lax `float`, then finite.
fn lax_float(v: &Value) -> Result<f64, (&'static str, &'static str)> {
    let f = match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or(("float_type", "Input should be a valid number"))?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| {
            (
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            )
        })?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => return Err(("float_type", "Input should be a valid number")),
    };
    if f.is_finite() {
        Ok(f)
    } else {
        Err(("finite_number", "Input should be a finite number"))
    }
}

fn missing(at: Vec<Loc>, input: &Value) -> Problem {
    Problem::new("missing", at, "Field required", input.clone())
}

fn dict_expected(at: Vec<Loc>, input: &Value) -> Problem {
    Problem::new(
        "model_attributes_type",
        at,
        "Input should be a valid dictionary or object to extract fields from",
        input.clone(),
    )
}

/// Reads `{"timestamp", "value"}` at `at` (a point of `/fit` or the body of `/predict`).
fn point(v: &Value, at: &[Loc], problems: &mut Vec<Problem>) -> Option<SeriesPoint> {
    let Value::Object(map) = v else {
        problems.push(dict_expected(at.to_vec(), v));
        return None;
    };
    let timestamp = match map.get("timestamp") {
        None => {
            problems.push(missing(loc(at, Loc::Key("timestamp")), v));
            None
        }
        Some(t) => lax_int(t)
            .map_err(|(kind, msg)| {
                problems.push(Problem::new(
                    kind,
                    loc(at, Loc::Key("timestamp")),
                    msg,
                    t.clone(),
                ))
            })
            .ok(),
    };
    let value = match map.get("value") {
        None => {
            problems.push(missing(loc(at, Loc::Key("value")), v));
            None
        }
        Some(x) => lax_float(x)
            .map_err(|(kind, msg)| {
                problems.push(Problem::new(
                    kind,
                    loc(at, Loc::Key("value")),
                    msg,
                    x.clone(),
                ))
            })
            .ok(),
    };
    Some(SeriesPoint {
        timestamp: timestamp?,
        value: value?,
    })
}

/// Parses a JSON body, as FastAPI does before validation.
pub(crate) fn json_body(body: &[u8]) -> Result<Value, Vec<Problem>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![Problem::new(
            "missing",
            vec![Loc::Key("body")],
            "Field required",
            Value::Null,
        )]);
    }
    serde_json::from_slice(body).map_err(|e| {
        vec![Problem::new(
            "json_invalid",
            vec![Loc::Key("body"), Loc::Index(e.column())],
            "JSON decode error",
            json!({}),
        )]
    })
}

/// Validates a `/fit` body: `{"data":[{"timestamp","value"},..]}` (or the later
/// `{"timestamps":[..],"values":[..]}`).
pub(crate) fn parse_fit_body(body: &Value) -> Result<Vec<SeriesPoint>, Vec<Problem>> {
    let root = [Loc::Key("body")];
    let Value::Object(map) = body else {
        return Err(vec![dict_expected(root.to_vec(), body)]);
    };
    if !map.contains_key("data") && map.contains_key("timestamps") && map.contains_key("values") {
        return parse_columns(map);
    }
    let Some(data) = map.get("data") else {
        return Err(vec![missing(loc(&root, Loc::Key("data")), body)]);
    };
    let Value::Array(items) = data else {
        return Err(vec![Problem::new(
            "list_type",
            loc(&root, Loc::Key("data")),
            "Input should be a valid list",
            data.clone(),
        )]);
    };
    let mut problems = Vec::new();
    let mut points = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = [Loc::Key("body"), Loc::Key("data"), Loc::Index(i)];
        if let Some(p) = point(item, &at, &mut problems) {
            points.push(p);
        }
    }
    if problems.is_empty() {
        Ok(points)
    } else {
        Err(problems)
    }
}

/// The later gateway's columnar body: equal-length `timestamps` and `values`.
fn parse_columns(map: &Map<String, Value>) -> Result<Vec<SeriesPoint>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut column = |name: &'static str| -> Option<&Vec<Value>> {
        match &map[name] {
            Value::Array(v) => Some(v),
            other => {
                problems.push(Problem::new(
                    "list_type",
                    vec![Loc::Key("body"), Loc::Key(name)],
                    "Input should be a valid list",
                    other.clone(),
                ));
                None
            }
        }
    };
    let (Some(ts), Some(vs)) = (column("timestamps"), column("values")) else {
        return Err(problems);
    };
    if ts.len() != vs.len() {
        return Err(vec![Problem::new(
            "value_error",
            vec![Loc::Key("body")],
            "Value error, timestamps and values must have the same length",
            json!({ "timestamps": ts.len(), "values": vs.len() }),
        )]);
    }
    let mut points = Vec::with_capacity(ts.len());
    for (i, (t, v)) in ts.iter().zip(vs).enumerate() {
        let timestamp = lax_int(t).map_err(|(kind, msg)| {
            problems.push(Problem::new(
                kind,
                vec![Loc::Key("body"), Loc::Key("timestamps"), Loc::Index(i)],
                msg,
                t.clone(),
            ))
        });
        let value = lax_float(v).map_err(|(kind, msg)| {
            problems.push(Problem::new(
                kind,
                vec![Loc::Key("body"), Loc::Key("values"), Loc::Index(i)],
                msg,
                v.clone(),
            ))
        });
        if let (Ok(timestamp), Ok(value)) = (timestamp, value) {
            points.push(SeriesPoint { timestamp, value });
        }
    }
    if problems.is_empty() {
        Ok(points)
    } else {
        Err(problems)
    }
}

/// Validates a `/predict` body: `{"timestamp","value"}`.
pub(crate) fn parse_predict_body(body: &Value) -> Result<SeriesPoint, Vec<Problem>> {
    let mut problems = Vec::new();
    match point(body, &[Loc::Key("body")], &mut problems) {
        Some(p) if problems.is_empty() => Ok(p),
        _ => Err(problems),
    }
}

fn validation(problems: Vec<Problem>) -> CompatError {
    CompatError::validations(problems.iter().map(Problem::to_json).collect())
}

fn read_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Value, CompatError> {
    let bytes = crate::v1::body_or_error(state, body).map_err(|e| match e {
        crate::ApiError::TooLarge(m) => CompatError::detail(StatusCode::PAYLOAD_TOO_LARGE, m),
        other => CompatError::detail(StatusCode::BAD_REQUEST, other.to_string()),
    })?;
    json_body(&bytes).map_err(validation)
}

fn check_series_id(state: &AppState, series_id: &str) -> Result<(), CompatError> {
    let limit = state.limits.max_entity_bytes;
    if series_id.is_empty() || series_id.len() > limit {
        return Err(CompatError::detail(
            StatusCode::BAD_REQUEST,
            format!("series_id must be 1 to {limit} bytes"),
        ));
    }
    Ok(())
}

/// Maps a per-series failure onto seed 001's answers.
fn compat_error(e: SeriesError, not_found: &str) -> CompatError {
    match e {
        SeriesError::UnknownSeries(_) | SeriesError::UnknownVersion { .. } => {
            CompatError::detail(StatusCode::NOT_FOUND, not_found)
        }
        SeriesError::Fit(FitError::Overflow) => CompatError::detail(
            StatusCode::BAD_REQUEST,
            "Values too large: the expected band overflows",
        ),
        SeriesError::Fit(_) => CompatError::detail(StatusCode::BAD_REQUEST, INSUFFICIENT),
        SeriesError::Predict(p) => CompatError::validation(
            &["body", "value"],
            p.to_string(),
            "finite_number",
            Value::Null,
        ),
        SeriesError::NothingToRollBack(m) => CompatError::detail(StatusCode::BAD_REQUEST, m),
        SeriesError::Store(e) => CompatError::from(e),
        SeriesError::Internal(cause) => {
            tracing::error!(error = %cause, "per-series request failed");
            CompatError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
    }
}

/// `POST /fit/{series_id}`: trains a new version.
pub async fn fit(
    State(state): State<AppState>,
    Path(series_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, CompatError> {
    let body = read_body(&state, body)?;
    let points = parse_fit_body(&body).map_err(validation)?;
    check_series_id(&state, &series_id)?;
    let points_used = points.len();
    let fitted = series::fit(&state, &series_id, points)
        .await
        .map_err(|e| compat_error(e, MODEL_NOT_FOUND))?;
    Ok(Json(json!({
        "series_id": series_id,
        "version": version_label(fitted.version),
        "points_used": points_used,
        "summary": fitted.model,
    })))
}

/// `POST /predict/{series_id}`: scores a point against the active version.
pub async fn predict(
    State(state): State<AppState>,
    Path(series_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, CompatError> {
    let body = read_body(&state, body)?;
    let p = parse_predict_body(&body).map_err(validation)?;
    let done = series::predict(&state, &series_id, None, p.timestamp, p.value)
        .await
        .map_err(|e| compat_error(e, MODEL_NOT_FOUND))?;
    let version = version_label(done.version);
    let r = done.prediction;
    Ok(Json(json!({
        "series_id": series_id,
        "version": version,
        "is_anomaly": r.anomaly,
        "anomaly": r.anomaly,
        "score": r.score,
        "z": r.z,
        "expected_range": { "low": r.expected_low, "high": r.expected_high },
        "model_version": version,
    })))
}

/// A PNG response.
pub(crate) fn png_response(png: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], png).into_response()
}

/// `GET /plot?series_id=&version=`: the training data of a version as a PNG.
pub async fn plot(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Result<Response, CompatError> {
    let mut problems = Vec::new();
    for name in ["series_id", "version"] {
        if !q.contains_key(name) {
            problems.push(Problem::new(
                "missing",
                vec![Loc::Key("query"), Loc::Key(name)],
                "Field required",
                Value::Null,
            ));
        }
    }
    if !problems.is_empty() {
        return Err(validation(problems));
    }
    let series_id = q.get("series_id").cloned().unwrap_or_default();
    let not_found = || CompatError::detail(StatusCode::NOT_FOUND, NO_TRAINING_DATA);
    let version = q
        .get("version")
        .and_then(|v| series::parse_version(v, false))
        .ok_or_else(not_found)?;
    let (_, png) = series::plot(&state, &series_id, Some(version))
        .await
        .map_err(|e| compat_error(e, NO_TRAINING_DATA))?;
    Ok(png_response(png))
}

/// `GET /healthcheck`: series trained, latencies, throughput, model usage, system metrics.
pub async fn healthcheck(State(state): State<AppState>) -> Result<Json<Value>, CompatError> {
    let series_trained = state.models.series_count().await.map_err(|e| {
        tracing::error!(error = %e, "healthcheck: model store unavailable");
        CompatError::detail(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable: model store is not answering",
        )
    })?;
    let sample = system_metrics::sample().await;
    let report = state.series_metrics.report(now_ms());
    Ok(Json(json!({
        "series_trained": series_trained,
        "inference_latency_ms": report.inference_latency_ms,
        "training_latency_ms": report.training_latency_ms,
        "throughput": report.throughput,
        "model_usage": report.model_usage,
        "system_metrics": { "trainer": sample, "predictor": sample },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit_err(body: Value) -> Vec<Value> {
        parse_fit_body(&body)
            .unwrap_err()
            .iter()
            .map(Problem::to_json)
            .collect()
    }

    #[test]
    fn fit_bodies_like_pydantic_lax_mode() {
        let ok = parse_fit_body(&json!({"data": [
            {"timestamp": 1693459200, "value": 10.0},
            {"timestamp": "1693459260", "value": "10.5"},
            {"timestamp": 1693459320.0, "value": 11},
            {"timestamp": true, "value": false},
        ]}))
        .unwrap();
        assert_eq!(
            ok[1],
            SeriesPoint {
                timestamp: 1_693_459_260,
                value: 10.5
            }
        );
        assert_eq!(
            ok[2],
            SeriesPoint {
                timestamp: 1_693_459_320,
                value: 11.0
            }
        );
        assert_eq!(
            ok[3],
            SeriesPoint {
                timestamp: 1,
                value: 0.0
            }
        );
        assert!(parse_fit_body(&json!({"data": []})).unwrap().is_empty());

        let errs = fit_err(
            json!({"data": [{"timestamp": "now", "value": 1.0}, {"timestamp": 1.5, "value": "x"}, {"value": 1}]}),
        );
        assert_eq!(
            errs,
            vec![
                json!({"type": "int_parsing", "loc": ["body", "data", 0, "timestamp"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "now"}),
                json!({"type": "int_from_float", "loc": ["body", "data", 1, "timestamp"], "msg": "Input should be a valid integer, got a number with a fractional part", "input": 1.5}),
                json!({"type": "float_parsing", "loc": ["body", "data", 1, "value"], "msg": "Input should be a valid number, unable to parse string as a number", "input": "x"}),
                json!({"type": "missing", "loc": ["body", "data", 2, "timestamp"], "msg": "Field required", "input": {"value": 1}}),
            ]
        );
        // Key order of an item is pydantic's.
        assert_eq!(
            errs[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["type", "loc", "msg", "input"]
        );
        assert_eq!(fit_err(json!({}))[0]["loc"], json!(["body", "data"]));
        assert_eq!(fit_err(json!({"data": 3}))[0]["type"], "list_type");
        assert_eq!(fit_err(json!([1]))[0]["type"], "model_attributes_type");
        assert_eq!(
            fit_err(json!({"data": [5]}))[0]["loc"],
            json!(["body", "data", 0])
        );
        assert_eq!(
            fit_err(json!({"data": [{"timestamp": null, "value": 1}]}))[0]["type"],
            "int_type"
        );
        assert_eq!(
            fit_err(json!({"data": [{"timestamp": 1, "value": "nan"}]}))[0]["type"],
            "finite_number"
        );
        assert_eq!(
            fit_err(json!({"data": [{"timestamp": 1e30, "value": 1}]}))[0]["type"],
            "int_parsing_size"
        );
    }

    #[test]
    fn columnar_alias_and_predict_bodies() {
        let pts =
            parse_fit_body(&json!({"timestamps": [1, 2, 3], "values": [1.0, 2.0, 4.0]})).unwrap();
        assert_eq!(pts.len(), 3);
        assert_eq!(
            fit_err(json!({"timestamps": [1, 2], "values": [1.0]}))[0]["type"],
            "value_error"
        );
        assert_eq!(
            fit_err(json!({"timestamps": [1, "x"], "values": [1.0, 2]}))[0]["loc"],
            json!(["body", "timestamps", 1])
        );

        let p = parse_predict_body(&json!({"timestamp": "1693459200", "value": 22.5})).unwrap();
        assert_eq!(
            p,
            SeriesPoint {
                timestamp: 1_693_459_200,
                value: 22.5
            }
        );
        let errs: Vec<Value> = parse_predict_body(&json!({"timestamp": 1}))
            .unwrap_err()
            .iter()
            .map(Problem::to_json)
            .collect();
        assert_eq!(
            errs,
            vec![
                json!({"type": "missing", "loc": ["body", "value"], "msg": "Field required", "input": {"timestamp": 1}})
            ]
        );
        assert!(parse_predict_body(&json!("x")).is_err());
    }

    #[test]
    fn json_errors_and_sentences() {
        assert_eq!(
            json_body(b"  ").unwrap_err()[0].to_json()["loc"],
            json!(["body"])
        );
        assert_eq!(json_body(b"{nope").unwrap_err()[0].kind, "json_invalid");
        let p =
            &parse_fit_body(&json!({"data": [{"timestamp": "now", "value": 1}]})).unwrap_err()[0];
        assert_eq!(
            p.to_sentence(),
            r#"body.data[0].timestamp: input should be a valid integer, unable to parse string as an integer (got "now")"#
        );
    }
}
