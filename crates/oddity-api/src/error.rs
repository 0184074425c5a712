//! Errors at the HTTP edge.
//!
//! User errors carry their message to the client; internal errors are logged with their cause
//! and answered with a generic message, so nothing internal leaks.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error of the native API, rendered as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input (400).
    #[error("{0}")]
    BadRequest(String),
    /// Something the client asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The body or batch exceeds a configured limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// Back-pressure: too much is waiting to be processed (429 with Retry-After).
    #[error("{0}")]
    Busy(String),
    /// The server cannot take the request now, e.g. while shutting down (503 with Retry-After).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (500); the cause is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An internal error, logged here with its cause.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        ApiError::Internal(context.to_owned())
    }
}

impl From<oddity_store::StoreError> for ApiError {
    fn from(e: oddity_store::StoreError) -> Self {
        ApiError::internal("store query failed", e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A FastAPI-shaped error of the compatibility routes: `{"detail": "..."}` or, for validation
/// failures (422), `{"detail": [{"type", "loc", "msg", "input"}]}`.
#[derive(Debug)]
pub struct CompatError {
    status: StatusCode,
    detail: serde_json::Value,
}

impl CompatError {
    /// `{"detail": message}` with `status`.
    pub fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        CompatError {
            status,
            detail: json!(message.into()),
        }
    }

    /// A 422 with one validation item.
    pub fn validation(
        loc: &[&str],
        msg: impl Into<String>,
        kind: &str,
        input: serde_json::Value,
    ) -> Self {
        Self::validations(vec![validation_item(loc, msg, kind, input)])
    }

    /// A 422 with several validation items.
    pub fn validations(items: Vec<serde_json::Value>) -> Self {
        CompatError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!(items),
        }
    }
}

/// One pydantic-style validation item.
pub fn validation_item(
    loc: &[&str],
    msg: impl Into<String>,
    kind: &str,
    input: serde_json::Value,
) -> serde_json::Value {
    json!({ "type": kind, "loc": loc, "msg": msg.into(), "input": input })
}

impl From<oddity_store::StoreError> for CompatError {
    fn from(e: oddity_store::StoreError) -> Self {
        tracing::error!(error = %e, "store query failed");
        CompatError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl IntoResponse for CompatError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "detail": self.detail }))).into_response()
    }
}
