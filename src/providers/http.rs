//! The HTTP client shared by every provider, and the mapping of transport failures and
//! upstream error bodies to [`ApiError`].

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::error::ApiError;

/// One connection pool for all upstreams.
#[derive(Clone, Debug)]
pub struct Client {
    pub inner: reqwest::Client,
}

impl Client {
    pub fn new() -> Result<Self, reqwest::Error> {
        let inner = reqwest::Client::builder()
            // Small requests must not wait on delayed ACKs.
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Client { inner })
    }
}

/// Maps a transport failure. A timeout is LiteLLM's 408 `litellm.Timeout`.
pub fn transport_error(e: reqwest::Error, provider: &str, timeout: Duration) -> ApiError {
    if e.is_timeout() {
        return ApiError::upstream(
            408,
            "timeout",
            format!(
                "litellm.Timeout: {provider} did not answer within {:.1} s",
                timeout.as_secs_f64()
            ),
        );
    }
    let what = if e.is_connect() {
        "could not connect to"
    } else {
        "connection failed with"
    };
    let mut err = ApiError::upstream(
        500,
        "api_connection_error",
        format!(
            "litellm.APIConnectionError: {what} {provider}: {}",
            root_cause(&e)
        ),
    );
    err.retryable = true;
    err
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// LiteLLM's 408 for an upstream that did not answer in time.
pub fn timeout_error(provider: &str, t: Duration) -> ApiError {
    ApiError::upstream(
        408,
        "timeout",
        format!(
            "litellm.Timeout: {provider} did not answer within {:.1} s",
            t.as_secs_f64()
        ),
    )
}

/// Sends a request with a deadline for the response head. A non-2xx answer becomes an error
/// that keeps the upstream's status, message and `retry-after`.
pub async fn send(
    rb: reqwest::RequestBuilder,
    timeout: Duration,
    provider: &str,
) -> Result<reqwest::Response, ApiError> {
    let resp = tokio::time::timeout(timeout, rb.send())
        .await
        .map_err(|_| timeout_error(provider, timeout))?
        .map_err(|e| transport_error(e, provider, timeout))?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.bytes().await.unwrap_or_default();
    Err(upstream_error(
        status,
        &body,
        provider,
        retry_after.as_deref(),
    ))
}

/// Reads a whole response body within `timeout`.
pub async fn read_body(
    resp: reqwest::Response,
    timeout: Duration,
    provider: &str,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(timeout, resp.bytes())
        .await
        .map_err(|_| timeout_error(provider, timeout))?
        .map_err(|e| transport_error(e, provider, timeout))
}

/// Turns an upstream error response into an error that keeps its status and message.
/// Understands the OpenAI (`{"error":{"message","type"}}`) and Anthropic
/// (`{"type":"error","error":{"type","message"}}`) shapes; anything else is quoted.
pub fn upstream_error(
    status: u16,
    body: &Bytes,
    provider: &str,
    retry_after: Option<&str>,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err_obj = parsed.as_ref().and_then(|v| v.get("error"));
    let message = err_obj
        .and_then(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .or_else(|| e.as_str())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
            if text.trim().is_empty() {
                format!("{provider} returned HTTP {status}")
            } else {
                text
            }
        });
    let kind = err_obj
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| default_kind(status).to_owned());
    let class = litellm_class(status, &kind, &message);
    let mut err = ApiError::upstream(
        status,
        kind,
        format!("litellm.{class}: {provider}Exception - {message}"),
    );
    if let Some(code) = err_obj.and_then(|e| e.get("code")).and_then(Value::as_str) {
        err.code = Some(code.to_owned());
    }
    // Anthropic's 529 "overloaded" is worth another attempt, like any 5xx.
    if status == 529 {
        err.retryable = true;
    }
    if let Some(ra) = retry_after {
        err = err.with_header("retry-after", ra);
    }
    err
}

fn default_kind(status: u16) -> &'static str {
    match status {
        400 | 404 | 422 => "invalid_request_error",
        401 | 403 => "authentication_error",
        408 => "timeout",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// LiteLLM's exception class name, which prefixes its messages.
fn litellm_class(status: u16, kind: &str, message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if status == 400
        && (kind.contains("context")
            || lower.contains("context length")
            || lower.contains("context window")
            || lower.contains("prompt is too long"))
    {
        return "ContextWindowExceededError";
    }
    match status {
        400 | 422 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "Timeout",
        429 => "RateLimitError",
        503 | 529 => "ServiceUnavailableError",
        _ => "InternalServerError",
    }
}

/// Whether an error means the prompt did not fit the model (for `context_window_fallbacks`).
pub fn is_context_window_error(e: &ApiError) -> bool {
    e.message.contains("ContextWindowExceededError") || e.kind == "context_length_exceeded"
}

/// Joins a base URL and a path without doubling slashes.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_openai_error_status_and_message() {
        let body = Bytes::from_static(br#"{"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#);
        let e = upstream_error(429, &body, "openai", Some("3"));
        assert_eq!(e.status.as_u16(), 429);
        assert!(e.retryable);
        assert_eq!(e.kind, "rate_limit_error");
        assert!(e.message.contains("Rate limit reached"));
        assert!(e.message.starts_with("litellm.RateLimitError"));
    }

    #[test]
    fn reads_anthropic_error_shape() {
        let body = Bytes::from_static(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        let e = upstream_error(529, &body, "anthropic", None);
        assert_eq!(e.status.as_u16(), 529);
        assert_eq!(e.kind, "overloaded_error");
        assert!(e.retryable);
    }

    #[test]
    fn join_handles_slashes() {
        assert_eq!(
            join("http://a/v1/", "/chat/completions"),
            "http://a/v1/chat/completions"
        );
    }
}
