//! Reading request bodies: size limit and JSON errors in the OpenAI shape.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The body bytes, or a 413/400 in the OpenAI shape.
pub fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            unreadable(&e)
        }
    })
}

/// The whole body, at most `limit` bytes, as [`bytes`] answers for a route's extracted body
/// (`DefaultBodyLimit`): for the routes dispatched before the router (`server::hot_path`).
pub async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            if c.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            cause = c.source();
        }
        unreadable(&e)
    })
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "Request body is too large. Raise general_settings.max_request_size_mb to accept it.",
    )
}

fn unreadable(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Could not read the request body: {e}"))
}

/// Parses JSON, saying where it is malformed or which field is wrong.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "Request body is empty; expected a JSON object.",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "?" { String::new() } else { path };
        let inner = e.into_inner();
        let msg = if inner.is_syntax() || inner.is_eof() {
            format!(
                "Invalid JSON in request body at line {}, column {}: {inner}",
                inner.line(),
                inner.column()
            )
        } else if path == "." || path.is_empty() {
            format!("Invalid request body: {inner}")
        } else {
            format!("Invalid request body: {path}: {inner}")
        };
        let mut err = ApiError::bad_request(msg);
        if !(path == "." || path.is_empty()) {
            err = err.with_param(path);
        }
        err
    })
}
