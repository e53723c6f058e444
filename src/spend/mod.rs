//! Cost and spend: the price table, the cost of a call, and the spend events every request
//! produces, written in batches off the request path.
//!
//! **Architecture Invariant:** exactly one [`SpendEvent`] per request, emitted after the last
//! stream chunk or on abort, never on the request path's critical section.

pub mod prices;
pub mod retention;
pub mod writer;

use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// LiteLLM's `usage_object` of a call, as its spend-log metadata and callback payloads carry it.
pub fn usage_object(prompt: i64, completion: i64, cached: i64, reasoning: i64) -> Value {
    serde_json::json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    })
}

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
///
/// A mutex-guarded `Vec` rather than a channel: the writer takes the whole backlog in one swap,
/// and is woken only when a batch's worth waits (or by its interval tick), not by every event —
/// at low load a per-event cross-thread wake-up was most of the pipeline's cost. Memory stays
/// bounded because the writer is woken at every further `wake_every` events, even in the
/// middle of a write, and spills what it cannot hold (see `writer`).
#[derive(Clone, Debug)]
pub struct SpendSink {
    q: Arc<SpendQueue>,
}

/// The queue between [`SpendSink`] and the writer.
#[derive(Debug)]
pub struct SpendQueue {
    inner: Mutex<QueueInner>,
    /// Wakes the writer.
    pub(crate) ready: Notify,
    wake_every: AtomicUsize,
    /// Where events recorded after shutdown closed the queue go (set by the writer).
    spill_path: std::sync::OnceLock<std::path::PathBuf>,
}

#[derive(Debug, Default)]
struct QueueInner {
    events: Vec<SpendEvent>,
    closed: bool,
    /// Events ever pushed (shutdown waits until it stops moving).
    pushed: u64,
}

impl SpendSink {
    /// A sink and the queue the batch writer drains. The writer is woken whenever `wake_every`
    /// more events wait (the writer lowers it to its batch size).
    pub fn channel(wake_every: usize) -> (SpendSink, Arc<SpendQueue>) {
        let q = Arc::new(SpendQueue {
            inner: Mutex::new(QueueInner::default()),
            ready: Notify::new(),
            wake_every: AtomicUsize::new(wake_every.max(1)),
            spill_path: std::sync::OnceLock::new(),
        });
        (SpendSink { q: q.clone() }, q)
    }

    /// Hands an event to the writer. Never blocks the request beyond a short lock, never drops
    /// an event while the writer runs.
    pub fn record(&self, ev: SpendEvent) {
        let n = {
            let mut q = self.q.lock();
            if q.closed {
                drop(q);
                // A request that outlived the shutdown drain: straight to the spill file,
                // which the next start replays.
                let kept = self.q.spill_path.get().map(|p| {
                    writer::append_events(p, std::iter::once(&ev)).map_err(|e| e.to_string())
                });
                match kept {
                    Some(Ok(())) => {}
                    Some(Err(e)) => tracing::error!(
                        request_id = %ev.request_id,
                        "spend writer is gone and the spill file cannot be written ({e}); event not recorded"
                    ),
                    None => tracing::error!(
                        request_id = %ev.request_id,
                        "spend writer is gone; event not recorded"
                    ),
                }
                return;
            }
            q.events.push(ev);
            q.pushed += 1;
            q.events.len()
        };
        if n % self.q.wake_every.load(Ordering::Relaxed) == 0 {
            self.q.ready.notify_one();
        }
    }
}

impl SpendQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_spill_path(&self, path: std::path::PathBuf) {
        let _ = self.spill_path.set(path);
    }

    pub(crate) fn set_wake_every(&self, n: usize) {
        let n = n.max(1).min(self.wake_every.load(Ordering::Relaxed));
        self.wake_every.store(n, Ordering::Relaxed);
    }

    /// Moves every waiting event to the end of `into` (which keeps its allocation).
    pub(crate) fn take_into(&self, into: &mut std::collections::VecDeque<SpendEvent>) {
        let mut taken = {
            let mut q = self.lock();
            if q.events.is_empty() {
                return;
            }
            std::mem::take(&mut q.events)
        };
        into.extend(taken.drain(..));
    }

    /// Events waiting, and events ever pushed.
    pub(crate) fn counts(&self) -> (usize, u64) {
        let q = self.lock();
        (q.events.len(), q.pushed)
    }

    /// Refuses further events; what is waiting can still be taken.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
    }
}
