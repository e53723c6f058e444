//! CORS, as LiteLLM's proxy answers it (Starlette's `CORSMiddleware` with methods and headers
//! `*`), so that a page in a browser can call the gateway from another origin.
//!
//! Configured like LiteLLM, from the environment (or `environment_variables:`):
//! `LITELLM_CORS_ORIGINS`, a comma-separated list (unset or empty: `*`, every origin), and
//! `LITELLM_CORS_ALLOW_CREDENTIALS` (`true`/anything else; unset: on for a list of origins, off
//! for `*`, since `*` with credentials would let any site make credentialed calls).
//!
//! A request without an `Origin` header (every SDK, curl, OpenClaw) passes straight through
//! with one header lookup. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered here, before routing and authentication, since
//! browsers send no credentials with it: 200 `OK` for an allowed origin and method, 400
//! `Disallowed CORS origin` / `method` otherwise. Other requests with `Origin` get
//! `Access-Control-Allow-Origin` on their answer when the origin is allowed, errors included
//! (and `-Credentials` when on). Not copied from LiteLLM: its `Access-Control-Expose-Headers`
//! list, which names only headers of its admin UI that the gateway does not send.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode};
use futures::FutureExt;
use futures::future::{BoxFuture, Either};

/// Starlette's answer to `allow_methods=["*"]`: these, and no other, may be preflighted.
const ALL_METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";
/// Starlette's default `max_age`, in seconds.
const MAX_AGE: &str = "600";

/// Which origins may call, and whether with credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// `None`: every origin (`*`).
    origins: Option<Vec<String>>,
    credentials: bool,
}

impl CorsPolicy {
    /// From the values of `LITELLM_CORS_ORIGINS` and `LITELLM_CORS_ALLOW_CREDENTIALS`.
    pub fn from_env(origins: Option<&str>, credentials: Option<&str>) -> Self {
        let list: Vec<String> = origins
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        let origins = (!list.is_empty() && !list.iter().any(|o| o == "*")).then_some(list);
        let credentials = match credentials {
            Some(v) => v.trim().eq_ignore_ascii_case("true"),
            None => origins.is_some(),
        };
        CorsPolicy {
            origins,
            credentials,
        }
    }

    /// From the config's environment (the process's, and `environment_variables:`).
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        CorsPolicy::from_env(
            cfg.env.get("LITELLM_CORS_ORIGINS").as_deref(),
            cfg.env.get("LITELLM_CORS_ALLOW_CREDENTIALS").as_deref(),
        )
    }

    /// `*` with credentials: any web page may make credentialed calls (warned at start-up).
    pub fn any_origin_with_credentials(&self) -> bool {
        self.origins.is_none() && self.credentials
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            None => true,
            Some(list) => list.iter().any(|o| o.as_bytes() == origin.as_bytes()),
        }
    }

    /// The headers of an answer to a (non-preflight) request with `Origin`, as Starlette adds
    /// them: credentials when on; the allowed origin as `*`, or named (with `Vary: Origin`)
    /// for a list of origins, or for `*` when the request carries a cookie.
    fn simple_headers(&self, origin: &HeaderValue, cookie: bool, h: &mut HeaderMap) {
        self.credentials_header(h);
        if self.origins.is_none() && !cookie {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        } else if self.allows(origin) {
            self.name_origin(origin, h);
        }
    }

    fn credentials_header(&self, h: &mut HeaderMap) {
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    fn name_origin(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }

    /// 200 `OK`, or 400 naming what is refused (the origin, or a method outside
    /// [`ALL_METHODS`]); the allow-* headers either way, the allowed origin only on success.
    fn preflight(&self, origin: &HeaderValue, req: &HeaderMap) -> Response<Body> {
        // The origin is named when it must be: a list of origins, or credentials.
        let explicit = self.origins.is_some() || self.credentials;
        let method_ok = req
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| {
                ALL_METHODS
                    .split(", ")
                    .any(|k| k.as_bytes() == m.as_bytes())
            });
        let refused = match (self.allows(origin), method_ok) {
            (false, _) => Some("Disallowed CORS origin"),
            (true, false) => Some("Disallowed CORS method"),
            (true, true) => None,
        };
        let mut r = Response::new(Body::from(refused.unwrap_or("OK")));
        if refused.is_some() {
            *r.status_mut() = StatusCode::BAD_REQUEST;
        }
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if refused.is_none() {
            if explicit {
                self.name_origin(origin, h);
            } else {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
        } else if explicit {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        self.credentials_header(h);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALL_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        // Headers `*`: whatever the browser asks for (a header value cannot carry a line
        // break, so echoing it cannot inject one).
        if let Some(asked) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        r
    }
}

/// The layer over everything served (`server::app`).
#[derive(Debug, Clone)]
pub struct CorsLayer(Arc<CorsPolicy>);

impl CorsLayer {
    pub fn new(policy: CorsPolicy) -> Self {
        CorsLayer(Arc::new(policy))
    }
}

impl<S> tower::Layer<S> for CorsLayer {
    type Service = Cors<S>;
    fn layer(&self, inner: S) -> Cors<S> {
        Cors {
            inner,
            policy: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cors<S> {
    inner: S,
    policy: Arc<CorsPolicy>,
}

/// The inner service's own future when the request has no `Origin`; boxed otherwise (a
/// browser's cross-origin call: rare, and a preflight never reaches the inner service).
type Answer<F, E> = Either<F, BoxFuture<'static, Result<Response<Body>, E>>>;

impl<S> tower::Service<Request<Body>> for Cors<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Answer<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The hot path: no `Origin`, not a browser's cross-origin call.
        let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
            return Either::Left(self.inner.call(req));
        };
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let r = self.policy.preflight(&origin, req.headers());
            return Either::Right(futures::future::ready(Ok(r)).boxed());
        }
        let cookie = req.headers().contains_key(header::COOKIE);
        let policy = self.policy.clone();
        Either::Right(
            self.inner
                .call(req)
                .map(move |r| {
                    r.map(|mut resp| {
                        policy.simple_headers(&origin, cookie, resp.headers_mut());
                        resp
                    })
                })
                .boxed(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reads_like_litellm() {
        let p = CorsPolicy::from_env(None, None);
        assert_eq!((p.origins.clone(), p.credentials), (None, false));
        assert!(!p.any_origin_with_credentials());
        let p = CorsPolicy::from_env(Some("  "), Some("true"));
        assert_eq!((p.origins.clone(), p.credentials), (None, true));
        assert!(p.any_origin_with_credentials());
        let p = CorsPolicy::from_env(Some("https://a.com,, https://b.com ,"), None);
        assert_eq!(
            p.origins,
            Some(vec!["https://a.com".to_owned(), "https://b.com".to_owned()])
        );
        assert!(p.credentials);
        let p = CorsPolicy::from_env(Some("https://a.com"), Some("no"));
        assert!(!p.credentials);
        assert_eq!(CorsPolicy::from_env(Some("*"), None).origins, None);
    }
}
