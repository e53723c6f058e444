//! The HTTP client shared by every provider, and the mapping of transport failures and
//! upstream error bodies to [`ApiError`].
//!
//! Calls go through hyper on connections kept per event-loop thread (`pool.rs`; rustls for
//! `https`, HTTP/2 when the upstream offers it by ALPN). reqwest, which the project used first, re-parses the URL twice and runs
//! redirect and retry layers on every call: about 30 k instructions of the ~180 k a proxied
//! call cost (docs/PERFORMANCE.md). When the environment names a proxy (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY`, honoured with `NO_PROXY` as LiteLLM's httpx does), calls go
//! through reqwest instead, which implements them.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use hyper::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;
use thread_local::ThreadLocal;

use crate::config::Env;
use crate::error::ApiError;

pub(super) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The upstream client: a connection pool per thread (see [`PerThread`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport,
}

#[derive(Clone, Debug)]
enum Transport {
    Direct(Arc<PerThread<super::pool::Pool>>),
    /// A proxy is configured in the environment: reqwest, also a pool per thread.
    Proxied(Arc<PerThread<reqwest::Client>>),
}

/// A client (and so a connection pool) per thread, made on first use. The gateway serves on
/// one single-threaded runtime per core (`server::serve_on_threads`): with one pool for all, a
/// connection opened by one thread (its task runs there) was taken by calls on the other, and
/// every request and answer on it crossed threads.
pub(super) struct PerThread<C: Send> {
    make: Box<dyn Fn() -> C + Send + Sync>,
    pools: ThreadLocal<C>,
}

impl<C: Send> PerThread<C> {
    fn new(make: impl Fn() -> C + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(PerThread {
            make: Box::new(make),
            pools: ThreadLocal::new(),
        })
    }

    pub(super) fn pool(&self) -> &C {
        self.pools.get_or(|| (self.make)())
    }
}

impl<C: Send> std::fmt::Debug for PerThread<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PerThread")
    }
}

fn proxied_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())
}

/// Environment variables that configure an outbound proxy (either case).
const PROXY_VARS: &[&str] = &["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"];

impl Client {
    pub fn new(env: &Env) -> Result<Self, String> {
        let proxied = PROXY_VARS.iter().any(|v| {
            [v.to_string(), v.to_ascii_lowercase()]
                .iter()
                .any(|k| env.get(k).is_some_and(|s| !s.trim().is_empty()))
        });
        if proxied {
            tracing::info!("outbound proxy configured in the environment; upstream calls use it");
            return Self::proxied();
        }
        let mut http = HttpConnector::new();
        // Small requests must not wait on delayed ACKs.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        Ok(Client {
            transport: Transport::Direct(PerThread::new(move || {
                super::pool::Pool::new(https.clone())
            })),
        })
    }

    /// A client that sends through reqwest, which reads the proxy settings from the environment.
    pub fn proxied() -> Result<Self, String> {
        // The first made now, so that a bad setting fails at start-up; also the fallback.
        let first = proxied_client()?;
        Ok(Client {
            transport: Transport::Proxied(PerThread::new(move || {
                proxied_client().unwrap_or_else(|_| first.clone())
            })),
        })
    }

    async fn execute(&self, req: Request) -> Result<Response, TransportError> {
        if let Some(e) = req.invalid {
            return Err(TransportError {
                kind: FailureKind::Request,
                message: e,
            });
        }
        match &self.transport {
            Transport::Direct(c) => {
                let mut r = hyper::Request::new(Full::new(req.body));
                *r.method_mut() = req.method;
                *r.uri_mut() = req.uri;
                *r.headers_mut() = req.headers;
                if let Some(host) = req.default_host {
                    r.headers_mut().entry(hyper::header::HOST).or_insert(host);
                }
                let resp = super::pool::send(c, r).await?;
                let (parts, body) = resp.into_parts();
                Ok(Response {
                    status: parts.status,
                    headers: parts.headers,
                    body: ResponseBody::Direct(body),
                })
            }
            Transport::Proxied(c) => {
                let url = req.uri.to_string();
                let resp = c
                    .pool()
                    .request(req.method, url)
                    .headers(req.headers)
                    .body(req.body)
                    .send()
                    .await
                    .map_err(TransportError::from_reqwest)?;
                Ok(Response {
                    status: resp.status(),
                    headers: resp.headers().clone(),
                    body: ResponseBody::Proxied(resp),
                })
            }
        }
    }
}

/// An upstream request being built.
#[derive(Debug)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// A header or URL that could not be used, reported when the request is sent.
    invalid: Option<String>,
    /// `Host` for the pooled client when none is set (see [`host_header`]).
    default_host: Option<HeaderValue>,
}

impl Request {
    /// A JSON `POST` to a URL parsed once by the caller.
    pub fn post_json(uri: Uri, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Request {
            method: Method::POST,
            uri,
            headers,
            body: body.into(),
            invalid: None,
            default_host: None,
        }
    }

    /// A JSON `POST` to a URL given as text (parsed here).
    pub fn post_json_to(url: &str, body: impl Into<Bytes>) -> Self {
        match parse_uri(url) {
            Ok(uri) => Self::post_json(uri, body),
            Err(e) => {
                let mut r = Self::post_json(Uri::default(), body);
                r.invalid = Some(e);
                r
            }
        }
    }

    /// Sets a header (replacing one of the same name) from text.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.insert(n, v);
            }
            _ => {
                self.invalid
                    .get_or_insert_with(|| format!("invalid header {name:?}"));
            }
        }
        self
    }

    /// The `Host` value for this URL (see [`host_header`]), computed once by the caller.
    /// Used by the pooled client only, and only if no `Host` header was set; the proxied
    /// client (reqwest) sets its own, per redirect hop.
    pub fn default_host(mut self, host: Option<HeaderValue>) -> Self {
        self.default_host = host;
        self
    }

    /// Sets a header already validated (e.g. an API key prepared at start-up).
    pub fn header_value(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

/// Parses an upstream URL, saying what is wrong with it.
pub fn parse_uri(url: &str) -> Result<Uri, String> {
    url.parse::<Uri>()
        .map_err(|e| format!("invalid upstream URL {url:?}: {e}"))
}

/// The `Host` header of a plain-`http` URL as the pool writes it (the port only when it is not
/// 80), for callers that send to one URL many times (see
/// [`Request::default_host`]). `None` for `https`: such a connection may speak HTTP/2, where
/// the host travels as `:authority` and a `host` header beside it is refused by servers
/// (nginx: "client sent duplicate host header").
pub fn host_header(uri: &Uri) -> Option<HeaderValue> {
    if uri.scheme_str() != Some("http") {
        return None;
    }
    super::pool::host_value(uri.scheme()?, uri.authority()?)
}

/// A header value that is never logged (API keys).
pub fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// An upstream answer whose body has not been read yet.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
}

enum ResponseBody {
    Direct(super::pool::Leased),
    Proxied(reqwest::Response),
}

/// The body of an upstream answer as it arrives.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>;

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, TransportError> {
        match self.body {
            ResponseBody::Direct(b) => b
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|e| TransportError::from_error(FailureKind::Other, &e)),
            ResponseBody::Proxied(r) => r.bytes().await.map_err(TransportError::from_reqwest),
        }
    }

    /// The body as it arrives; dropping the stream drops the connection.
    pub fn bytes_stream(self) -> ByteStream {
        match self.body {
            ResponseBody::Direct(b) => Box::pin(
                b.into_data_stream()
                    .map_err(|e| TransportError::from_error(FailureKind::Other, &e)),
            ),
            ResponseBody::Proxied(r) => Box::pin(
                r.bytes_stream()
                    .map(|r| r.map_err(TransportError::from_reqwest)),
            ),
        }
    }
}

/// Why an upstream call failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Connect,
    Timeout,
    /// The request could not be built (a bad header or URL in the configuration).
    Request,
    Other,
}

#[derive(Debug, Clone)]
pub struct TransportError {
    pub kind: FailureKind,
    /// The innermost cause, which says what happened (`Connection refused`, …).
    pub message: String,
}

impl TransportError {
    pub(super) fn from_error(kind: FailureKind, e: &(dyn std::error::Error + 'static)) -> Self {
        TransportError {
            kind,
            message: root_cause(e),
        }
    }

    fn from_reqwest(e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            FailureKind::Timeout
        } else if e.is_connect() {
            FailureKind::Connect
        } else if e.is_builder() {
            FailureKind::Request
        } else {
            FailureKind::Other
        };
        TransportError::from_error(kind, &e)
    }
}

/// Maps a transport failure. A timeout is LiteLLM's 408 `litellm.Timeout`.
pub fn transport_error(e: TransportError, provider: &str, timeout: Duration) -> ApiError {
    let what = match e.kind {
        FailureKind::Timeout => return timeout_error(provider, timeout),
        FailureKind::Request => {
            return ApiError::internal(format!(
                "litellm.APIConnectionError: cannot build the request to {provider}: {}",
                e.message
            ));
        }
        FailureKind::Connect => "could not connect to",
        FailureKind::Other => "connection failed with",
    };
    let mut err = ApiError::upstream(
        500,
        "api_connection_error",
        format!(
            "litellm.APIConnectionError: {what} {provider}: {}",
            e.message
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
    client: &Client,
    req: Request,
    timeout: Duration,
    provider: &str,
) -> Result<Response, ApiError> {
    let resp = tokio::time::timeout(timeout, client.execute(req))
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
    resp: Response,
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
    fn host_header_for_plain_http_only_port_when_not_default() {
        let host =
            |u: &str| host_header(&u.parse().unwrap()).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            host("http://127.0.0.1:4000/v1/chat/completions").as_deref(),
            Some("127.0.0.1:4000")
        );
        // https may be HTTP/2, where a host header beside :authority is refused.
        assert_eq!(host("https://api.openai.com/v1/x"), None);
        assert_eq!(host("https://h:8443/v1"), None);
        assert_eq!(host("http://h:80/").as_deref(), Some("h"));
        assert_eq!(host("http://h:443/").as_deref(), Some("h:443"));
        assert_eq!(host("http://user:pw@h:8080/").as_deref(), Some("h:8080"));
        assert_eq!(host("http://[::1]:8000/v1").as_deref(), Some("[::1]:8000"));
    }

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
    fn a_proxy_in_the_environment_selects_the_proxy_capable_transport() {
        let direct = Client::new(&Env::from_map([("PATH", "/bin")])).unwrap();
        assert!(matches!(direct.transport, Transport::Direct(_)));
        for var in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
            let c = Client::new(&Env::from_map([(var, "http://127.0.0.1:3128")])).unwrap();
            assert!(matches!(c.transport, Transport::Proxied(_)), "{var}");
        }
        let blank = Client::new(&Env::from_map([("HTTP_PROXY", " ")])).unwrap();
        assert!(matches!(blank.transport, Transport::Direct(_)));
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_retryable_connection_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(&Env::from_map([("PATH", "/bin")])).unwrap();
        let req = Request::post_json_to(&format!("http://127.0.0.1:{port}/v1/x"), "{}");
        let Err(e) = send(&c, req, Duration::from_secs(5), "openai").await else {
            panic!("a closed port answered");
        };
        assert_eq!(e.status.as_u16(), 500);
        assert!(e.retryable);
        assert!(
            e.message.contains("could not connect to openai"),
            "{}",
            e.message
        );
    }

    #[test]
    fn join_handles_slashes() {
        assert_eq!(
            join("http://a/v1/", "/chat/completions"),
            "http://a/v1/chat/completions"
        );
    }
}
