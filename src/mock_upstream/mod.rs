//! A mock upstream provider on loopback, speaking OpenAI Chat Completions (and embeddings) and
//! the Anthropic Messages API. Benchmarks and end-to-end tests point deployments at it.
//!
//! Behaviour is chosen by the requested model name, so one mock serves every scenario:
//! `…fail-500…` answers 500, `…fail-429…` answers 429, `…slow…` waits two seconds, `…tool…`
//! asks for a tool call, `…same-id…` gives every answer the same id (as some OpenAI-compatible
//! servers do; otherwise ids are unique, like OpenAI's). It keeps the last requests it received
//! (bounded) at `GET /__requests` so tests can check what the gateway sent.

pub mod anthropic;
mod openai;

use std::collections::VecDeque;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How many requests the mock remembers.
const KEEP: usize = 64;

/// A request as the mock received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

#[derive(Default)]
pub struct Mock {
    requests: Mutex<VecDeque<Recorded>>,
}

pub type MockState = Arc<Mock>;

impl Mock {
    fn record(&self, path: &str, headers: &HeaderMap, body: &Value) {
        let mut q = self.requests.lock();
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(Recorded {
            path: path.to_owned(),
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body: body.clone(),
        });
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().iter().cloned().collect()
    }
}

pub fn router(state: MockState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/completions", post(openai::completions))
        .route("/v1/moderations", post(openai::moderations))
        .route("/v1/images/generations", post(openai::images))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/embeddings", post(openai::embeddings))
        .route("/v1/messages", post(anthropic::messages))
        .route("/__requests", get(requests))
        .with_state(state)
}

async fn requests(State(st): State<MockState>) -> axum::Json<Value> {
    axum::Json(Value::Array(
        st.requests()
            .into_iter()
            .map(|r| {
                json!({
                    "path": r.path,
                    "headers": r.headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<String, Value>>(),
                    "body": r.body,
                })
            })
            .collect(),
    ))
}

/// Binds and serves until the process ends (the `tollgate mock-upstream` command).
pub async fn run(host: &str, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port)).await?;
    println!(
        "mock upstream listening on http://{}",
        listener.local_addr()?
    );
    let app = router(Arc::default());
    axum::serve(listener.tap_io(nodelay), app)
        .with_graceful_shutdown(crate::app::shutdown_signal())
        .await?;
    Ok(())
}

/// Starts the mock on an ephemeral loopback port in this process (tests).
pub async fn spawn() -> std::io::Result<(String, MockState)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state: MockState = Arc::default();
    let app = router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener.tap_io(nodelay), app).await;
    });
    Ok((format!("http://{addr}"), state))
}

fn nodelay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}

/// The fixed reply text.
pub const REPLY: &str = "Hello from the mock upstream.";

fn prompt_tokens(body: &Value) -> u64 {
    (body.to_string().len() as u64 / 4).max(1)
}
