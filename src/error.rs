//! The one API error: every failure a client can see becomes an OpenAI-shaped body here.
//!
//! Layers produce their own error values (`ProviderError`, `ConfigError`, store errors…) and
//! convert into [`ApiError`]; only this module turns an error into an HTTP status and body.
//! The body is LiteLLM's: `{"error":{"message","type","param","code"}}` with `code` the status
//! as a string.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Who is to blame for a failure; the router decides retries and cooldowns on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The client sent something wrong; retrying will not help.
    Client,
    /// The upstream provider failed or refused.
    Upstream,
    /// Tollgate itself.
    Internal,
}

/// An error that reaches the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// LiteLLM/OpenAI error type, e.g. `invalid_request_error`, `budget_exceeded`, `auth_error`.
    pub kind: String,
    pub param: Option<String>,
    /// Overrides the default `code` (the status as a string).
    pub code: Option<String>,
    /// Extra response headers (`retry-after`, `x-ratelimit-*`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub blame: Blame,
    /// Whether the router may try again (another attempt or deployment).
    pub retryable: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: impl Into<String>, message: impl Into<String>) -> Self {
        let blame = if status.is_server_error() {
            Blame::Internal
        } else {
            Blame::Client
        };
        ApiError {
            status,
            message: message.into(),
            kind: kind.into(),
            param: None,
            code: None,
            headers: Vec::new(),
            blame,
            retryable: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "auth_error", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "auth_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            message,
        )
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl ToString) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    pub fn upstream(status: u16, kind: impl Into<String>, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let retryable = matches!(status.as_u16(), 408 | 409 | 429 | 500..=599);
        ApiError {
            blame: Blame::Upstream,
            retryable,
            ..Self::new(status, kind, message)
        }
    }

    /// The JSON body, as LiteLLM writes it.
    pub fn body_json(&self) -> String {
        let body = Body {
            error: Inner {
                message: &self.message,
                kind: &self.kind,
                param: self.param.as_deref(),
                code: self
                    .code
                    .clone()
                    .unwrap_or_else(|| self.status.as_u16().to_string()),
            },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        (self.status, headers, self.body_json()).into_response()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_litellm_shape_with_string_code() {
        let e = ApiError::bad_request("bad").with_param("model");
        let v: serde_json::Value = serde_json::from_str(&e.body_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error":{"message":"bad","type":"invalid_request_error","param":"model","code":"400"}})
        );
    }

    #[test]
    fn upstream_5xx_and_429_are_retryable_4xx_not() {
        assert!(ApiError::upstream(429, "rate_limit_error", "x").retryable);
        assert!(ApiError::upstream(503, "x", "x").retryable);
        assert!(!ApiError::upstream(400, "x", "x").retryable);
        assert!(!ApiError::upstream(401, "x", "x").retryable);
    }
}
