//! `POST /v1/events` (ingest) and `GET /v1/events`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use oddity_model::time::now_ms;
use oddity_store::EventQuery;

use crate::ingest::{BatchError, Framing, parse_batch};
use crate::params::{self, Pagination, Params};
use crate::{ApiError, AppState, submit};

/// Reads a body, turning the body-limit rejection into a 413 that names the limit.
pub(crate) fn body_or_error(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body exceeds ingest.max_body_bytes ({})",
                state.limits.max_body_bytes
            ))
        } else {
            ApiError::BadRequest(format!("cannot read request body: {e}"))
        }
    })
}

/// Whether the content type announces one JSON document per line.
fn framing(headers: &HeaderMap) -> Framing {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines" => Framing::Ndjson,
        _ => Framing::Json,
    }
}

/// Ingests one event, a JSON array of events, or NDJSON. Answers 202 once every accepted event
/// is durable, with the count and each rejected line's number and reason; 400 when nothing in a
/// non-empty batch was acceptable.
pub(crate) async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_or_error(&state, body)?;
    submit::check_backpressure(&state)?;
    let parsed =
        parse_batch(&body, framing(&headers), &state.limits, now_ms()).map_err(|e| match e {
            BatchError::TooMany { count, limit } => ApiError::TooLarge(format!(
                "batch of {count} events exceeds ingest.max_batch_events ({limit})"
            )),
            BatchError::Malformed(m) => ApiError::BadRequest(m),
        })?;
    if parsed.events.is_empty() && !parsed.rejected.is_empty() {
        let first = &parsed.rejected[0];
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": format!("no event accepted; line {}: {}", first.line, first.reason),
                "accepted": 0,
                "rejected": parsed.rejected,
            })),
        ));
    }
    submit::append(&state, &parsed.events).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": parsed.events.len(), "rejected": parsed.rejected })),
    ))
}

/// Lists stored events, newest first: `entity`, `type`, `from`, `to` (ms or ISO-8601), `page`, `size`.
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = params::page(&q)?;
    let query = EventQuery {
        entity: params::text(&q, "entity"),
        event_type: params::text(&q, "type"),
        from_ts: params::time(&q, "from")?,
        to_ts: params::time(&q, "to")?,
        page,
        size,
    };
    let result = state.store.events(&query).await?;
    Ok(Json(
        json!({ "events": result.items, "pagination": Pagination::new(page, size, result.total) }),
    ))
}
