//! Cost and spend: the price table, the cost of a call, and the spend events every request
//! produces, written in batches off the request path.
//!
//! **Architecture Invariant:** exactly one [`SpendEvent`] per request, emitted after the last
//! stream chunk or on abort, never on the request path's critical section.

pub mod prices;
pub mod retention;
pub mod writer;

use serde_json::Value;
use tokio::sync::mpsc;

/// One request's accounting record (a row of `/spend/logs`). Serialized only into the
/// writer's spill file.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SpendEvent {
    /// The answer's id (`chatcmpl-…`), as LiteLLM keys its spend logs.
    pub request_id: String,
    /// The gateway's own id for the call, unique even when an upstream reuses response ids
    /// (`litellm_call_id`). Idempotency of the writer rests on it.
    pub call_id: String,
    /// `acompletion`, `aembedding`, `anthropic_messages`.
    pub call_type: String,
    /// Hash of the virtual key.
    pub api_key: String,
    pub key_alias: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub end_user: Option<String>,
    /// Upstream model name.
    pub model: String,
    pub model_group: String,
    pub model_id: String,
    pub provider: String,
    pub api_base: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    pub spend: f64,
    /// Unix milliseconds.
    pub start_ms: i64,
    pub end_ms: i64,
    /// First token (streaming) or response (otherwise).
    pub completion_start_ms: Option<i64>,
    /// `success` or `failure`.
    pub status: String,
    pub error: Option<Value>,
    pub cache_hit: bool,
    pub metadata: Value,
    pub tags: Vec<String>,
    pub requester_ip: Option<String>,
    /// Only with `store_prompts_in_spend_logs`.
    pub messages: Option<Value>,
    pub response: Option<Value>,
}

/// The sending half of the spend pipeline. Cloned into every request.
#[derive(Clone, Debug)]
pub struct SpendSink {
    tx: mpsc::Sender<SpendEvent>,
}

impl SpendSink {
    /// A sink and the receiver the batch writer drains.
    pub fn channel(capacity: usize) -> (SpendSink, mpsc::Receiver<SpendEvent>) {
        let (tx, rx) = mpsc::channel(capacity);
        (SpendSink { tx }, rx)
    }

    /// Hands an event to the writer. Never blocks the request; if the writer is behind by a
    /// whole channel, waits in a spawned task rather than dropping the event.
    pub fn record(&self, ev: SpendEvent) {
        match self.tx.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(ev).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(ev)) => {
                tracing::error!(request_id = %ev.request_id, "spend writer is gone; event not recorded");
            }
        }
    }
}
