//! The chat routes, dispatched before the router.
//!
//! `POST /v1/chat/completions` and `POST /chat/completions` are nearly every call a gateway
//! serves. Through axum's router each paid ~6 k instructions of routing, per-route layers,
//! extractors (a copy of the header map) and response mapping, of ~125 k a proxied call
//! (`bench/callgrind`, docs/PERFORMANCE.md). [`HotPath`] sends exactly those two (method and
//! path as the router would match them) straight to the same handler, and everything else to
//! the router. It sits inside the CORS layer and after `ConnectInfo`, so both paths see the
//! same middleware; the body limit is the router's (`DefaultBodyLimit`) applied by
//! [`super::body::read_limited`].

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use futures::FutureExt;
use futures::future::{BoxFuture, Either};

use super::openai;
use crate::state::AppState;

/// The router, with the chat routes answered first.
#[derive(Clone)]
pub struct HotPath<S> {
    router: S,
    state: AppState,
    body_limit: usize,
}

impl<S> HotPath<S> {
    pub fn new(router: S, state: AppState, body_limit: usize) -> Self {
        HotPath {
            router,
            state,
            body_limit,
        }
    }
}

/// Whether the router would send this request to `openai::chat_completions`.
fn is_chat(req: &Request) -> bool {
    req.method() == Method::POST
        && matches!(
            req.uri().path(),
            "/v1/chat/completions" | "/chat/completions"
        )
}

impl<S> tower::Service<Request> for HotPath<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<BoxFuture<'static, Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.router.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if is_chat(&req) {
            let chat = openai::chat_completions_direct(self.state.clone(), req, self.body_limit);
            return Either::Left(chat.map(Ok).boxed());
        }
        Either::Right(self.router.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, uri: &str) -> Request {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn only_the_two_chat_posts_take_the_hot_path() {
        assert!(is_chat(&req(Method::POST, "/v1/chat/completions")));
        assert!(is_chat(&req(Method::POST, "/chat/completions")));
        // A query string does not change the route.
        assert!(is_chat(&req(Method::POST, "/chat/completions?x=1")));
        assert!(is_chat(&req(
            Method::POST,
            "http://localhost:4000/v1/chat/completions"
        )));
        // The router answers these: 405, CORS preflight, other routes, no trailing-slash match.
        assert!(!is_chat(&req(Method::GET, "/v1/chat/completions")));
        assert!(!is_chat(&req(Method::OPTIONS, "/v1/chat/completions")));
        assert!(!is_chat(&req(Method::POST, "/v1/chat/completions/")));
        // Nor does the router decode or normalise the path.
        assert!(!is_chat(&req(Method::POST, "//v1/chat/completions")));
        assert!(!is_chat(&req(Method::POST, "/v1/chat%2Fcompletions")));
        assert!(!is_chat(&req(Method::POST, "/queue/chat/completions")));
        assert!(!is_chat(&req(
            Method::POST,
            "/openai/deployments/x/chat/completions"
        )));
        assert!(!is_chat(&req(Method::POST, "/v1/completions")));
    }
}
