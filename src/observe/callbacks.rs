//! Log callbacks: `callbacks: ["generic_api"]` posts each request's LiteLLM-style
//! `StandardLoggingPayload` to `GENERIC_LOGGER_ENDPOINT`; `callbacks: ["otel"]` exports a span
//! per request over OTLP/HTTP (see `otel`). Both batch from a bounded queue that never blocks a
//! request (when full, events are dropped and counted).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::spend::SpendEvent;

/// Events waiting for the webhook before new ones are dropped.
const QUEUE: usize = 50_000;
/// Events per POST (LiteLLM's batch loggers default to 512).
const BATCH: usize = 512;
/// Longest wait before a partial batch goes.
const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How long shutdown waits for the last batches.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// How a batch of encoded events becomes one request body.
type Wrap = Box<dyn Fn(Vec<Value>) -> Value + Send + Sync>;

/// One configured destination.
struct Sink {
    name: &'static str,
    tx: mpsc::Sender<Value>,
    task: JoinHandle<()>,
    on_success: bool,
    on_failure: bool,
    encode: fn(&SpendEvent) -> Value,
}

/// The running callbacks.
pub struct Callbacks {
    sinks: Vec<Sink>,
}

/// Whether `name` is among the success and the failure callbacks.
fn configured(cfg: &Config, name: &str) -> (bool, bool) {
    let has = |l: &[String]| l.iter().any(|c| c == name);
    let both = has(&cfg.litellm.callbacks);
    (
        both || has(&cfg.litellm.success_callback),
        both || has(&cfg.litellm.failure_callback),
    )
}

/// Where and how one sink posts.
pub struct Destination {
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub every: Duration,
    pub encode: fn(&SpendEvent) -> Value,
    pub wrap: Wrap,
}

/// Starts the configured callbacks (`generic_api`, `otel`); `None` when none is configured.
pub fn start(cfg: &Config) -> Option<Callbacks> {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("callbacks: cannot build the HTTP client: {e}");
            return None;
        }
    };
    let mut sinks = Vec::new();
    for (name, dest) in [
        (
            "generic_api",
            generic_api as fn(&Config) -> Option<Destination>,
        ),
        ("otel", crate::observe::otel::destination),
    ] {
        let (on_success, on_failure) = configured(cfg, name);
        if !on_success && !on_failure {
            continue;
        }
        let Some(d) = dest(cfg) else { continue };
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(
            rx,
            client.clone(),
            d.endpoint,
            d.headers,
            d.every,
            d.wrap,
            name,
        ));
        sinks.push(Sink {
            name,
            tx,
            task,
            on_success,
            on_failure,
            encode: d.encode,
        });
    }
    (!sinks.is_empty()).then_some(Callbacks { sinks })
}

/// `generic_api`: `GENERIC_LOGGER_ENDPOINT`, JSON arrays of `StandardLoggingPayload`.
fn generic_api(cfg: &Config) -> Option<Destination> {
    let Some(endpoint) = cfg.env.get("GENERIC_LOGGER_ENDPOINT") else {
        tracing::warn!(
            "callbacks: generic_api is configured but GENERIC_LOGGER_ENDPOINT is not set; not logging"
        );
        return None;
    };
    Some(Destination {
        endpoint,
        headers: parse_headers(&cfg.env.get("GENERIC_LOGGER_HEADERS").unwrap_or_default()),
        every: flush_every(cfg, "GENERIC_LOGGER_FLUSH_INTERVAL"),
        encode: standard_logging_payload,
        wrap: Box::new(Value::Array),
    })
}

/// A flush interval in seconds from the environment, else the default.
pub fn flush_every(cfg: &Config, var: &str) -> Duration {
    cfg.env
        .get(var)
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(FLUSH_EVERY)
}

/// `k1=v1,k2=v2` as LiteLLM reads `GENERIC_LOGGER_HEADERS`.
pub fn parse_headers(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

impl Callbacks {
    /// Queues one request for every sink that wants it; never waits.
    pub fn log(&self, ev: &SpendEvent) {
        let ok = ev.status == "success";
        for s in &self.sinks {
            if (ok && !s.on_success) || (!ok && !s.on_failure) {
                continue;
            }
            if s.tx.try_send((s.encode)(ev)).is_err() {
                crate::observe::metrics::global().callback_failed(s.name);
            }
        }
    }

    /// Sends what is queued (bounded in time).
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
        for Sink { tx, task, name, .. } in self.sinks {
            drop(tx);
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!("callbacks: {name} did not take the last batch in time");
            }
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Value>,
    client: reqwest::Client,
    endpoint: String,
    headers: Vec<(String, String)>,
    every: Duration,
    wrap: Wrap,
    name: &'static str,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let post = |batch: Vec<Value>| {
        let n = batch.len();
        send(&client, &endpoint, &headers, wrap(batch), n, name)
    };
    loop {
        tokio::select! {
            v = rx.recv() => match v {
                Some(v) => {
                    batch.push(v);
                    if batch.len() >= BATCH {
                        post(std::mem::take(&mut batch)).await;
                    }
                }
                None => {
                    if !batch.is_empty() {
                        post(batch).await;
                    }
                    return;
                }
            },
            _ = tick.tick() => {
                if !batch.is_empty() {
                    post(std::mem::take(&mut batch)).await;
                }
            }
        }
    }
}

async fn send(
    client: &reqwest::Client,
    endpoint: &str,
    headers: &[(String, String)],
    body: Value,
    events: usize,
    name: &'static str,
) {
    let mut req = client.post(endpoint).json(&body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            tracing::warn!(
                status = r.status().as_u16(),
                events,
                "callbacks: the {name} endpoint refused a batch"
            );
            crate::observe::metrics::global().callback_failed(name);
        }
        Err(e) => {
            tracing::warn!(events, "callbacks: the {name} endpoint is unreachable: {e}");
            crate::observe::metrics::global().callback_failed(name);
        }
    }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// LiteLLM's `StandardLoggingPayload` for one request (the fields Tollgate knows).
pub fn standard_logging_payload(ev: &SpendEvent) -> Value {
    json!({
        "id": ev.request_id,
        "trace_id": ev.request_id,
        "call_type": ev.call_type,
        "stream": Value::Null,
        "response_cost": ev.spend,
        "status": ev.status,
        "custom_llm_provider": ev.provider,
        "total_tokens": ev.prompt_tokens + ev.completion_tokens,
        "prompt_tokens": ev.prompt_tokens,
        "completion_tokens": ev.completion_tokens,
        "startTime": secs(ev.start_ms),
        "endTime": secs(ev.end_ms),
        "completionStartTime": secs(ev.completion_start_ms.unwrap_or(ev.end_ms)),
        "response_time": secs(ev.end_ms - ev.start_ms),
        "model": ev.model,
        "model_id": ev.model_id,
        "model_group": ev.model_group,
        "api_base": ev.api_base,
        "metadata": {
            "user_api_key_hash": ev.api_key,
            "user_api_key_alias": ev.key_alias,
            "user_api_key_team_id": ev.team_id,
            "user_api_key_user_id": ev.user_id,
            "user_api_key_end_user_id": ev.end_user,
            "requester_ip_address": ev.requester_ip,
            "requester_metadata": ev.metadata,
            "spend_logs_metadata": ev.metadata.get("spend_logs_metadata"),
            "usage_object": crate::spend::usage_object(
                ev.prompt_tokens as i64,
                ev.completion_tokens as i64,
                ev.cached_tokens as i64,
                ev.reasoning_tokens as i64,
            ),
        },
        "cache_hit": ev.cache_hit,
        "request_tags": ev.tags,
        "end_user": ev.end_user.clone().unwrap_or_default(),
        "requester_ip_address": ev.requester_ip,
        "messages": ev.messages,
        "response": ev.response,
        "error_str": ev.error.as_ref().and_then(|e| e.get("error_message")).cloned(),
        "error_information": ev.error,
        "model_parameters": {},
        "hidden_params": {"model_id": ev.model_id, "api_base": ev.api_base, "response_cost": ev.spend},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_like_litellm() {
        assert_eq!(
            parse_headers("Authorization=Bearer x, X-A=1"),
            vec![
                ("Authorization".into(), "Bearer x".into()),
                ("X-A".into(), "1".into())
            ]
        );
    }

    #[test]
    fn payload_has_no_raw_key() {
        let ev = SpendEvent {
            request_id: "r1".into(),
            api_key: "hash".into(),
            status: "success".into(),
            ..Default::default()
        };
        let p = standard_logging_payload(&ev);
        assert_eq!(p["metadata"]["user_api_key_hash"], "hash");
        assert_eq!(p["id"], "r1");
    }
}
