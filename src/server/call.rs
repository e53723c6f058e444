//! One model call's life after admission: headers, cost, budget settlement and its spend event.
//!
//! [`CallRecord`] is created when a request is admitted and emits exactly one spend event:
//! when the answer is complete, when it fails, or — through `Drop` — when the client goes away
//! mid-stream. Every model route uses it, so none can skip accounting.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use futures::Stream;
use serde_json::Value;

use crate::auth::{Admission, Caller};
use crate::error::ApiError;
use crate::providers::mock::tokens_for_chars;
use crate::providers::{ChunkStream, StreamChunk};
use crate::router::Attempt;
use crate::spend::SpendEvent;
use crate::state::AppState;
use crate::types::Usage;
use crate::types::number::decimal;
use crate::types::sse::{DONE_FRAME, data_frame};

pub struct CallRecord {
    state: AppState,
    admission: Option<Admission>,
    /// Boxed: ~1 KB that would otherwise be copied with every move of the record and of the
    /// handler futures holding it (into a box per call, into the streamed body).
    pub event: Box<SpendEvent>,
    attempt: Option<Attempt>,
    started: Instant,
    /// When the router handed back an answer or stream.
    upstream_started: Option<Instant>,
    pub estimated_prompt_tokens: u64,
    done: bool,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl CallRecord {
    pub fn new(
        state: AppState,
        caller: &Caller,
        admission: Admission,
        call_type: &str,
        started: Instant,
    ) -> Self {
        // From the thread's RNG: `Uuid::new_v4` costs a getrandom syscall per call. Encoded
        // straight into the id (the formatting machinery was ~1.2 k instructions a call).
        let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut call_id = String::with_capacity(45);
        call_id.push_str("chatcmpl-");
        call_id.push_str(
            uuid.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
        let event = Box::new(SpendEvent {
            request_id: call_id.clone(),
            call_id,
            call_type: call_type.to_owned(),
            api_key: caller.key_hash.clone().unwrap_or_default(),
            key_alias: caller.key_alias.clone(),
            team_id: caller.team_id.clone(),
            user_id: caller.user_id.clone(),
            start_ms: now_ms() - started.elapsed().as_millis() as i64,
            status: "success".into(),
            metadata: Value::Object(Default::default()),
            ..SpendEvent::default()
        });
        CallRecord {
            state,
            admission: Some(admission),
            event,
            attempt: None,
            started,
            upstream_started: None,
            estimated_prompt_tokens: 0,
            done: false,
        }
    }

    /// The client's address, for the spend log (`requester_ip_address`).
    pub fn set_requester(&mut self, ip: std::net::IpAddr) {
        self.event.requester_ip = Some(ip_text(ip));
    }

    pub fn request_id(&self) -> &str {
        &self.event.request_id
    }

    pub fn upstream_begins(&mut self) {
        self.upstream_started = Some(Instant::now());
    }

    pub fn set_attempt(&mut self, a: Attempt) {
        self.event.model = a.model.clone();
        self.event.model_group = a.model_group.clone();
        self.event.model_id = a.deployment_id.clone();
        self.event.provider = a.provider.to_owned();
        self.event.api_base = a.api_base.clone();
        self.attempt = Some(a);
    }

    pub fn first_token(&mut self) {
        if self.event.completion_start_ms.is_none() {
            self.event.completion_start_ms = Some(now_ms());
        }
    }

    /// Cost of a usage on the deployment that served it.
    pub fn cost(&self, usage: &Usage) -> f64 {
        match &self.attempt {
            Some(a) => self.state.prices.cost_of_call_memo(
                &a.handle.price,
                &a.handle.config,
                &a.model,
                usage,
                self.upstream_started.map(|u| u.elapsed().as_secs_f64()),
            ),
            None => 0.0,
        }
    }

    /// Ends the call successfully with its usage; returns the cost. `response` builds the
    /// answer for the spend log, called only with `store_prompts_in_spend_logs`.
    pub fn succeed(
        mut self,
        usage: Option<&Usage>,
        response: impl FnOnce() -> Option<Value>,
    ) -> f64 {
        if self.state.config.general.store_prompts_in_spend_logs {
            self.event.response = response();
        }
        self.close(usage, None)
    }

    /// Ends the call with an error.
    pub fn fail(mut self, err: &ApiError, usage: Option<&Usage>) {
        self.close(usage, Some(err));
    }

    fn close(&mut self, usage: Option<&Usage>, err: Option<&ApiError>) -> f64 {
        if self.done {
            return 0.0;
        }
        self.done = true;
        let est;
        let usage = match usage {
            Some(u) => u,
            None => {
                est = Usage {
                    prompt_tokens: if self.attempt.is_some() {
                        self.estimated_prompt_tokens
                    } else {
                        0
                    },
                    ..Usage::default()
                };
                &est
            }
        };
        let cost = if err.is_some() && usage.completion_tokens == 0 && usage.prompt_tokens == 0 {
            0.0
        } else {
            self.cost(usage)
        };
        let ev = &mut self.event;
        ev.prompt_tokens = usage.prompt_tokens;
        ev.completion_tokens = usage.completion_tokens;
        ev.cached_tokens = usage.cached_tokens();
        ev.cache_creation_tokens = usage.cache_creation_tokens();
        ev.reasoning_tokens = usage.reasoning_tokens();
        ev.spend = cost;
        ev.end_ms = now_ms();
        if let Some(e) = err {
            ev.status = "failure".into();
            ev.error = Some(serde_json::json!({
                "error_class": e.kind, "error_code": e.status.as_u16().to_string(), "error_message": e.message,
            }));
        }
        if let (Some(a), Some(up)) = (&self.attempt, self.upstream_started) {
            a.handle.health.record_latency(up.elapsed());
        }
        if let Some(adm) = self.admission.take() {
            adm.settle(cost, usage.prompt_tokens + usage.completion_tokens);
        }
        self.observe(err.map(|e| e.status.as_u16()).unwrap_or(200));
        self.state.spend.record(std::mem::take(&mut *self.event));
        cost
    }

    /// Prometheus metrics for the finished call.
    fn observe(&self, status: u16) {
        let ev = &self.event;
        let mut o = crate::observe::metrics::RequestObservation::from_event(ev, status);
        o.total_latency = self.started.elapsed().as_secs_f64();
        if let Some(up) = self.upstream_started {
            o.llm_latency = Some(up.elapsed().as_secs_f64());
            o.overhead_latency = up.duration_since(self.started).as_secs_f64();
            o.time_to_first_token = ev
                .completion_start_ms
                .map(|t| ((t - ev.start_ms) as f64 / 1000.0 - o.overhead_latency).max(0.0));
        }
        crate::observe::metrics::global().observe_request(&o);
    }

    /// The `x-litellm-*` headers of the answer. Names are compile-time constants and values
    /// are borrowed where they can be: this runs on every call.
    pub fn headers(&self, cost: Option<f64>) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(16);
        fn put(h: &mut HeaderMap, name: HeaderName, value: &str) {
            if value.is_empty() {
                return;
            }
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        // Text built for the header becomes its value without a second allocation and copy
        // (`HeaderValue::from_str` copies; a `String` whose length is its capacity is taken
        // as it is).
        fn put_owned(h: &mut HeaderMap, name: HeaderName, value: String) {
            if value.is_empty() {
                return;
            }
            if let Ok(v) = HeaderValue::try_from(value) {
                h.insert(name, v);
            }
        }
        put(&mut h, CALL_ID, &self.event.request_id);
        h.insert(VERSION, HeaderValue::from_static(env!("CARGO_PKG_VERSION")));
        if let Some(a) = &self.attempt {
            // The deployment's own values were checked when it was loaded; a clone is a
            // reference count. Text that differs from them (a wildcard group) is checked here.
            let own = &a.handle.header_values;
            let mut put_own = |name: HeaderName, own: &Option<HeaderValue>, value: &str| match own {
                Some(v) if v.as_bytes() == value.as_bytes() => {
                    h.insert(name, v.clone());
                }
                _ => put(&mut h, name, value),
            };
            put_own(MODEL_ID, &own.model_id, &a.deployment_id);
            put_own(MODEL_GROUP, &own.model_group, &a.model_group);
            put_own(MODEL_API_BASE, &own.api_base, &a.api_base);
            h.insert(RETRIES, HeaderValue::from(a.retries));
            h.insert(FALLBACKS, HeaderValue::from(a.fallbacks));
        }
        let total = self.started.elapsed();
        let overhead = match self.upstream_started {
            Some(up) => up.duration_since(self.started),
            None => total,
        };
        put_owned(&mut h, OVERHEAD_MS, millis(overhead));
        put_owned(&mut h, RESPONSE_MS, millis(total));
        if let Some(c) = cost {
            put_owned(&mut h, COST, decimal(c));
        }
        if let Some(adm) = &self.admission {
            if let Some(before) = adm.key_spend() {
                // LiteLLM's key spend includes the call being answered.
                put_owned(&mut h, KEY_SPEND, decimal(before + cost.unwrap_or(0.0)));
            }
            for (k, v) in adm.response_headers() {
                put(&mut h, HeaderName::from_static(k), v);
            }
        }
        h
    }
}

/// An IP address as `Display` prints it; IPv4 (nearly every caller) without the formatting
/// machinery, which was ~1.3 k instructions a call.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

/// A duration in milliseconds with three decimals (`1.234`), without float formatting.
/// Written into a buffer of the exact length, so that the header value takes it as it is.
fn millis(d: std::time::Duration) -> String {
    let us = d.as_micros();
    let (whole, frac) = (us / 1000, (us % 1000) as u16);
    let mut digits = itoa::Buffer::new();
    let whole = digits.format(whole);
    let mut s = String::with_capacity(whole.len() + 4);
    s.push_str(whole);
    s.push('.');
    for digit in [frac / 100, frac / 10 % 10, frac % 10] {
        s.push(char::from(b'0' + digit as u8));
    }
    s
}

const CALL_ID: HeaderName = HeaderName::from_static("x-litellm-call-id");
const VERSION: HeaderName = HeaderName::from_static("x-litellm-version");
const MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_GROUP: HeaderName = HeaderName::from_static("x-litellm-model-group");
const MODEL_API_BASE: HeaderName = HeaderName::from_static("x-litellm-model-api-base");
const RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
const FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");
const OVERHEAD_MS: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");
const RESPONSE_MS: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
const COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");
const KEY_SPEND: HeaderName = HeaderName::from_static("x-litellm-key-spend");

/// The error a call is logged with when its client went away before `what` completed
/// (499, as nginx and LiteLLM's logs call it).
pub(crate) fn client_gone(what: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::from_u16(499).unwrap_or(axum::http::StatusCode::BAD_REQUEST),
        "client_disconnected",
        format!("client closed the connection before the {what} completed"),
    )
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if !self.done {
            // The client went away before the answer was complete.
            let err = client_gone("response");
            self.close(None, Some(&err));
        }
    }
}

type Finder = memchr::memmem::Finder<'static>;

/// The streamed-text keys of chat chunks (`delta.content`, `delta.reasoning_content`).
/// Searchers are built once: constructing one costs more than running it on a small chunk.
static CHAT_TEXT: std::sync::LazyLock<[Finder; 2]> = std::sync::LazyLock::new(|| {
    [
        Finder::new(b"\"content\":"),
        Finder::new(b"\"reasoning_content\":"),
    ]
});

/// The streamed-text key of legacy text-completion chunks (`choices[].text`).
static COMPLETION_TEXT: std::sync::LazyLock<[Finder; 1]> =
    std::sync::LazyLock::new(|| [Finder::new(b"\"text\":")]);

/// Bytes of the strings under `keys` in a chunk (as sent, escapes included), for estimating
/// completion tokens if the stream ends without usage. Found by scanning, not parsing: it runs
/// on every chunk, and deserializing each one was ~15% of a streamed call's instructions. A key
/// inside a string value cannot match: its quotes are escaped there.
fn delta_text_len(json: &[u8], keys: &[Finder]) -> usize {
    let mut total = 0;
    for key in keys {
        let mut rest = json;
        while let Some(i) = key.find(rest) {
            let value = rest[i + key.needle().len()..].trim_ascii_start();
            let Some(body) = value.strip_prefix(b"\"") else {
                rest = value;
                continue;
            };
            let len = string_body_len(body);
            total += len;
            rest = &body[(len + 1).min(body.len())..];
        }
    }
    total
}

/// Length of a JSON string's body up to its closing quote (the opening one already consumed).
fn string_body_len(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(j) = memchr::memchr2(b'"', b'\\', &s[i..]) {
        let p = i + j;
        if s[p] == b'"' {
            return p;
        }
        i = p + 2;
        if i >= s.len() {
            break;
        }
    }
    s.len()
}

/// Turns a chunk stream into the client's SSE body, accounting as it goes.
pub struct SseBody {
    inner: ChunkStream,
    record: Option<CallRecord>,
    client_wants_usage: bool,
    usage: Option<Usage>,
    streamed_chars: usize,
    /// Where the streamed text is in a chunk.
    text_keys: &'static [Finder],
    finished: bool,
}

impl SseBody {
    pub fn new(inner: ChunkStream, record: CallRecord, client_wants_usage: bool) -> Self {
        SseBody {
            inner,
            record: Some(record),
            client_wants_usage,
            usage: None,
            streamed_chars: 0,
            text_keys: &*CHAT_TEXT,
            finished: false,
        }
    }

    /// For a legacy text completion, whose chunks carry their text in `choices[].text`.
    pub fn counting_text_completions(mut self) -> Self {
        self.text_keys = &*COMPLETION_TEXT;
        self
    }

    fn observe(&mut self, chunk: &StreamChunk) {
        if let Some(r) = self.record.as_mut() {
            r.first_token();
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        if self.usage.is_none() {
            self.streamed_chars += delta_text_len(&chunk.json, self.text_keys);
        }
    }

    /// Usage as reported, or estimated from what was streamed when the upstream gave none.
    fn final_usage(&self) -> Usage {
        if let Some(u) = &self.usage {
            return u.clone();
        }
        let prompt = self
            .record
            .as_ref()
            .map(|r| r.estimated_prompt_tokens)
            .unwrap_or(0);
        let completion = if self.streamed_chars == 0 {
            0
        } else {
            tokens_for_chars(self.streamed_chars)
        };
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..Usage::default()
        }
    }
}

impl Stream for SseBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    self.observe(&chunk);
                    if chunk.usage_only && !self.client_wants_usage {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(data_frame(&chunk.json))));
                }
                Poll::Ready(Some(Err(err))) => {
                    self.finished = true;
                    let usage = self.final_usage();
                    if let Some(r) = self.record.take() {
                        r.fail(&err, Some(&usage));
                    }
                    let frame = data_frame(err.body_json().as_bytes());
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(None) => {
                    self.finished = true;
                    let usage = self.final_usage();
                    if let Some(r) = self.record.take() {
                        r.succeed(Some(&usage), || None);
                    }
                    return Poll::Ready(Some(Ok(Bytes::from_static(DONE_FRAME))));
                }
            }
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        if self.record.is_some() {
            // Client disconnected mid-stream: account for what it received.
            let usage = self.final_usage();
            let Some(r) = self.record.take() else { return };
            let err = client_gone("stream");
            r.fail(&err, Some(&usage));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CHAT_TEXT, COMPLETION_TEXT, delta_text_len, ip_text, millis};
    use std::time::Duration;

    #[test]
    fn counts_streamed_text_without_parsing() {
        let chunk = br#"{"id":"c","choices":[{"index":0,"delta":{"content":"He said \"hi\"","reasoning_content":"ab"}}]}"#;
        assert_eq!(
            delta_text_len(chunk, &*CHAT_TEXT),
            r#"He said \"hi\""#.len() + 2
        );
        // A tool call whose arguments mention a content key: escaped quotes, no match.
        let tool = br#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\"content\":\"x\"}"}}]}}]}"#;
        assert_eq!(delta_text_len(tool, &*CHAT_TEXT), 0);
        assert_eq!(
            delta_text_len(br#"{"choices":[{"delta":{"content":null}}]}"#, &*CHAT_TEXT),
            0
        );
        assert_eq!(
            delta_text_len(
                br#"{"choices":[{"delta":{"content":"unterminated"#,
                &*CHAT_TEXT
            ),
            12
        );
        let legacy = br#"{"object":"text_completion","choices":[{"text":" and so","index":0}]}"#;
        assert_eq!(delta_text_len(legacy, &*COMPLETION_TEXT), 7);
        assert_eq!(delta_text_len(legacy, &*CHAT_TEXT), 0);
    }

    #[test]
    fn ip_text_prints_as_display() {
        use std::net::IpAddr;
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "10.20.100.255",
            "192.168.1.9",
            "::1",
            "fe80::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for n in 0..=255u8 {
            let ip = IpAddr::from([n, 255 - n, n / 3, 7]);
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn millis_has_three_decimals() {
        assert_eq!(millis(Duration::from_micros(1234)), "1.234");
        assert_eq!(millis(Duration::from_micros(5)), "0.005");
        assert_eq!(millis(Duration::from_secs(2)), "2000.000");
    }
}
