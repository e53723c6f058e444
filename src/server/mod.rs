//! The HTTP server: the axum router over every route, and `serve` with graceful shutdown.
//!
//! **Architecture Invariant:** only the server maps errors to HTTP responses; every route that
//! reaches a provider authenticates and admits through `auth` before calling the router.

pub mod admin;
pub mod anthropic;
pub mod body;
pub mod call;
pub mod cors;
pub mod health;
mod hot_path;
pub mod openai;
pub mod spend;
pub mod sse;
mod threads;

pub use threads::serve_on_threads;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::{Listener, ListenerExt};
use tokio::net::TcpStream;

use crate::error::ApiError;
use crate::state::AppState;

/// The request body limit (`general_settings.max_request_size_mb`).
fn body_limit(state: &AppState) -> usize {
    (state.config.general.max_request_size_mb * 1024.0 * 1024.0) as usize
}

/// What the server runs: the CORS layer over [`router`], with the chat routes answered before
/// routing ([`hot_path`]).
pub fn app(state: AppState) -> cors::Cors<hot_path::HotPath<Router>> {
    let policy = cors::CorsPolicy::from_config(&state.config);
    let limit = body_limit(&state);
    let hot = hot_path::HotPath::new(router(state.clone()), state, limit);
    tower::Layer::layer(&cors::CorsLayer::new(policy), hot)
}

/// Every route, LiteLLM's paths with and without `/v1` (without CORS: serve [`app`]).
fn router(state: AppState) -> Router {
    let limit = body_limit(&state);
    Router::new()
        .route("/chat/completions", post(openai::chat_completions))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route(
            "/queue/chat/completions",
            post(openai::queue_chat_completions),
        )
        .route(
            "/openai/deployments/{model}/chat/completions",
            post(openai::azure_chat_completions),
        )
        .route(
            "/engines/{model}/chat/completions",
            post(openai::azure_chat_completions),
        )
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/embeddings", post(openai::embeddings))
        .route("/v1/embeddings", post(openai::embeddings))
        .route(
            "/openai/deployments/{model}/embeddings",
            post(openai::azure_embeddings),
        )
        .route("/completions", post(openai::completions))
        .route("/v1/completions", post(openai::completions))
        .route(
            "/openai/deployments/{model}/completions",
            post(openai::azure_completions),
        )
        .route(
            "/engines/{model}/completions",
            post(openai::azure_completions),
        )
        .route("/moderations", post(openai::moderations))
        .route("/v1/moderations", post(openai::moderations))
        .route("/images/generations", post(openai::image_generations))
        .route("/v1/images/generations", post(openai::image_generations))
        .route(
            "/openai/deployments/{model}/images/generations",
            post(openai::azure_image_generations),
        )
        .route("/models", get(openai::list_models))
        .route("/v1/models", get(openai::list_models))
        .route("/models/{model}", get(openai::get_model))
        .route("/v1/models/{model}", get(openai::get_model))
        .route("/model/info", get(openai::model_info))
        .route("/v1/model/info", get(openai::model_info))
        .route("/v2/model/info", get(openai::model_info))
        .route("/model_group/info", get(openai::model_group_info))
        .route("/health", get(health::health))
        .route("/health/liveliness", get(health::liveliness))
        .route("/health/liveness", get(health::liveliness))
        .route("/health/readiness", get(health::readiness))
        .merge(admin::routes())
        .route("/", get(root))
        .merge(spend::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn root() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "name": "tollgate",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "LiteLLM-compatible LLM gateway",
    }))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("Route {} not found", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "Method not allowed on this route",
    )
}

/// How long in-flight requests get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish
/// (bounded by [`DRAIN_TIMEOUT`]).
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Io = TcpStream, Addr = SocketAddr>,
{
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(app(state));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Small responses must not wait on the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let server = tokio::spawn(server.into_future());
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r.map_err(std::io::Error::other)?,
        _ = rx => {}
    }
    match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
        Ok(r) => r.map_err(std::io::Error::other)?,
        Err(_) => {
            tracing::warn!(
                "in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing them"
            );
            Ok(())
        }
    }
}
