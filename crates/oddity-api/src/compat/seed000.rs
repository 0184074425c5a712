//! Seed 000's `POST /ingest`: one cloud-audit event, validated as the reference's pydantic v1
//! model (with its intended rules, not its bugs), then appended like any other event:
//! entity = `role_id`, type = `event_type`, attrs = the whole body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use oddity_model::Event;
use oddity_model::time::now_ms;

use crate::error::CompatError;
use crate::ingest::parse_time_text;
use crate::{ApiError, AppState, submit};

fn item(field: &str, msg: &str, kind: &str) -> Value {
    json!({ "loc": ["body", field], "msg": msg, "type": kind })
}

/// A string field as pydantic v1 reads it: strings as they are, numbers coerced.
fn string_field(body: &Map<String, Value>, field: &str, errors: &mut Vec<Value>) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => {
            errors.push(item(field, "field required", "value_error.missing"));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            errors.push(item(field, "str type expected", "type_error.str"));
            None
        }
    }
}

fn digits_field(body: &Map<String, Value>, field: &str, errors: &mut Vec<Value>) -> Option<String> {
    let s = string_field(body, field, errors)?;
    if (4..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(s)
    } else {
        errors.push(item(
            field,
            "must be a number with 4-12 digits",
            "value_error",
        ));
        None
    }
}

fn compat(e: ApiError) -> CompatError {
    match e {
        ApiError::Busy(m) => CompatError::detail(StatusCode::TOO_MANY_REQUESTS, m),
        ApiError::Unavailable(m) => CompatError::detail(StatusCode::SERVICE_UNAVAILABLE, m),
        ApiError::TooLarge(m) => CompatError::detail(StatusCode::PAYLOAD_TOO_LARGE, m),
        _ => CompatError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Error publishing event"),
    }
}

/// Validates and appends one audit event; 200 with the reference's body once it is durable.
pub async fn ingest(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, CompatError> {
    let body = crate::v1::body_or_error(&state, body).map_err(compat)?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|e| {
        CompatError::validations(vec![json!({ "loc": ["body", e.column()], "msg": e.to_string(), "type": "value_error.jsondecode" })])
    })?;
    let Value::Object(map) = &parsed else {
        return Err(CompatError::validations(vec![
            json!({ "loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict" }),
        ]));
    };
    let mut errors = Vec::new();
    let id = digits_field(map, "id", &mut errors);
    let _event_id = digits_field(map, "event_id", &mut errors);
    let role_id = string_field(map, "role_id", &mut errors);
    let event_type = string_field(map, "event_type", &mut errors);
    let ts = string_field(map, "event_timestamp", &mut errors).and_then(|raw| {
        let ts = parse_time_text(&raw);
        if ts.is_none() {
            errors.push(item(
                "event_timestamp",
                "must be epoch seconds or an ISO-8601 datetime",
                "value_error",
            ));
        }
        ts
    });
    match map.get("affected_assets") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(|v| v.is_string() || v.is_number()) => {}
        Some(Value::Array(_)) => errors.push(item(
            "affected_assets",
            "str type expected",
            "type_error.str",
        )),
        Some(_) => errors.push(item(
            "affected_assets",
            "value is not a valid list",
            "type_error.list",
        )),
    }
    for (field, value, limit) in [
        ("role_id", role_id.as_deref(), state.limits.max_entity_bytes),
        (
            "event_type",
            event_type.as_deref(),
            state.limits.max_type_bytes,
        ),
    ] {
        if value.is_some_and(|v| v.len() > limit || v.trim().is_empty()) {
            errors.push(item(
                field,
                &format!("must be 1 to {limit} bytes"),
                "value_error",
            ));
        }
    }
    if body.len() as u64 > state.limits.max_attrs_bytes.0 {
        errors.push(item(
            "body",
            &format!(
                "exceeds ingest.max_attrs_bytes ({})",
                state.limits.max_attrs_bytes
            ),
            "value_error",
        ));
    }
    let (Some(id), Some(role_id), Some(event_type), Some(ts), true) =
        (id, role_id, event_type, ts, errors.is_empty())
    else {
        return Err(CompatError::validations(errors));
    };
    submit::check_backpressure(&state).map_err(compat)?;
    let now = now_ms();
    let mut event = Event::new(role_id, event_type, ts);
    event.ingested_at = now;
    event.attrs = Some(parsed.to_string());
    submit::append(&state, std::slice::from_ref(&event))
        .await
        .map_err(compat)?;
    Ok(Json(
        json!({ "data": { "status": "success" }, "metadata": { "request_id": id } }),
    ))
}
