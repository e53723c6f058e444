//! Streaming bodies of `/v1/messages`: [`EventBody`] turns canonical chunks into Anthropic's
//! event stream; [`NativeBody`] forwards an Anthropic upstream's bytes and only peeks at the
//! usage they carry. Both close the call's [`CallRecord`] when the stream ends or fails, and
//! its `Drop` accounts for a client that goes away.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use serde_json::{Value, json};

use super::translate::{message_id, stop_reason};
use crate::error::ApiError;
use crate::providers::ChunkStream;
use crate::server::call::CallRecord;
use crate::types::anthropic::{self as wire, peek_event_usage};
use crate::types::sse::{SseDecoder, named_frame};
use crate::types::{ChatChunk, Usage};

fn frame(v: &Value) -> Bytes {
    let name = v.get("type").and_then(Value::as_str).unwrap_or("message");
    named_frame(name, v.to_string().as_bytes())
}

/// The `error` event for an error met after the stream began.
pub fn error_frame(e: &ApiError) -> Bytes {
    let kind = super::anthropic_error_type(e);
    frame(&wire::error_body(kind, &e.message))
}

#[derive(PartialEq)]
enum Open {
    None,
    Text,
    Thinking,
    Tool(u32),
}

/// Translates canonical chunks into events, keeping Anthropic's order: `message_start`, `ping`,
/// blocks (`content_block_start`, deltas, `content_block_stop`), `message_delta`, `message_stop`.
pub struct EventMapper {
    model: String,
    started: bool,
    index: u32,
    open: Open,
    /// OpenAI tool-call index → Anthropic block index.
    tools: HashMap<u32, u32>,
    finish: Option<String>,
    usage: Option<Usage>,
    prompt_estimate: u64,
}

impl EventMapper {
    pub fn new(model: &str, prompt_estimate: u64) -> Self {
        EventMapper {
            model: model.to_owned(),
            started: false,
            index: 0,
            open: Open::None,
            tools: HashMap::new(),
            finish: None,
            usage: None,
            prompt_estimate,
        }
    }

    fn start(&mut self, id: &str, out: &mut Vec<Value>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(json!({"type": "message_start", "message": {
            "id": message_id(id), "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.prompt_estimate, "output_tokens": 0}}}));
        out.push(json!({"type": "ping"}));
    }

    fn close(&mut self, out: &mut Vec<Value>) {
        if self.open != Open::None {
            out.push(json!({"type": "content_block_stop", "index": self.index}));
            self.index += 1;
            self.open = Open::None;
        }
    }

    fn open(&mut self, kind: Open, block: Value, out: &mut Vec<Value>) {
        self.close(out);
        out.push(
            json!({"type": "content_block_start", "index": self.index, "content_block": block}),
        );
        self.open = kind;
    }

    pub fn on_chunk(&mut self, c: ChatChunk) -> Vec<Value> {
        let mut out = Vec::new();
        self.start(&c.id, &mut out);
        if let Some(u) = c.usage {
            self.usage = Some(u);
        }
        for choice in c.choices.into_iter().filter(|ch| ch.index == 0) {
            let d = choice.delta;
            if let Some(r) = d.reasoning_content.filter(|r| !r.is_empty()) {
                if self.open != Open::Thinking {
                    self.open(
                        Open::Thinking,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        &mut out,
                    );
                }
                out.push(json!({"type": "content_block_delta", "index": self.index, "delta": {"type": "thinking_delta", "thinking": r}}));
            }
            for tb in d.thinking_blocks.into_iter().flatten() {
                if let Some(sig) = tb.get("signature").and_then(Value::as_str)
                    && self.open == Open::Thinking
                {
                    out.push(json!({"type": "content_block_delta", "index": self.index, "delta": {"type": "signature_delta", "signature": sig}}));
                }
            }
            if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                if self.open != Open::Text {
                    self.open(Open::Text, json!({"type": "text", "text": ""}), &mut out);
                }
                out.push(json!({"type": "content_block_delta", "index": self.index, "delta": {"type": "text_delta", "text": t}}));
            }
            for tc in d.tool_calls.into_iter().flatten() {
                let oi = tc.index.unwrap_or(0);
                let f = tc.function.unwrap_or_default();
                if tc.id.is_some() || !self.tools.contains_key(&oi) {
                    let id = tc
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("toolu_{}", uuid::Uuid::new_v4().simple()));
                    self.open(
                        Open::Tool(oi),
                        json!({"type": "tool_use", "id": id, "name": f.name.clone().unwrap_or_default(), "input": {}}),
                        &mut out,
                    );
                    self.tools.insert(oi, self.index);
                }
                if let Some(args) = f.arguments.filter(|a| !a.is_empty()) {
                    let index = self.tools.get(&oi).copied().unwrap_or(self.index);
                    out.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": args}}));
                }
            }
            if let Some(f) = choice.finish_reason {
                self.finish = Some(f);
            }
        }
        out
    }

    /// The closing events, with the final usage.
    pub fn finish(&mut self, id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        self.start(id, &mut out);
        self.close(&mut out);
        let u = self
            .usage
            .as_ref()
            .map(wire::Usage::from_openai)
            .unwrap_or_default();
        out.push(json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
            "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                      "cache_creation_input_tokens": u.cache_creation_input_tokens.unwrap_or(0),
                      "cache_read_input_tokens": u.cache_read_input_tokens.unwrap_or(0)}}));
        out.push(json!({"type": "message_stop"}));
        out
    }

    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

/// Canonical chunks → Anthropic events, accounting as it goes.
pub struct EventBody {
    inner: ChunkStream,
    mapper: EventMapper,
    record: Option<CallRecord>,
    id: String,
    done: bool,
}

impl EventBody {
    pub fn new(inner: ChunkStream, record: CallRecord, model: &str, prompt_estimate: u64) -> Self {
        EventBody {
            inner,
            mapper: EventMapper::new(model, prompt_estimate),
            id: record.request_id().to_owned(),
            record: Some(record),
            done: false,
        }
    }
}

impl Stream for EventBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(r) = self.record.as_mut() {
                        r.first_token();
                    }
                    let typed = match chunk.typed() {
                        Ok(t) => t,
                        Err(err) => {
                            self.done = true;
                            let usage = self.mapper.usage().cloned();
                            if let Some(r) = self.record.take() {
                                r.fail(&err, usage.as_ref());
                            }
                            return Poll::Ready(Some(Ok(error_frame(&err))));
                        }
                    };
                    let events = self.mapper.on_chunk(typed);
                    if events.is_empty() {
                        continue;
                    }
                    let mut buf = Vec::new();
                    for e in &events {
                        buf.extend_from_slice(&frame(e));
                    }
                    return Poll::Ready(Some(Ok(Bytes::from(buf))));
                }
                Poll::Ready(Some(Err(err))) => {
                    self.done = true;
                    let usage = self.mapper.usage().cloned();
                    if let Some(r) = self.record.take() {
                        r.fail(&err, usage.as_ref());
                    }
                    return Poll::Ready(Some(Ok(error_frame(&err))));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    let id = self.id.clone();
                    let events = self.mapper.finish(&id);
                    let usage = self.mapper.usage().cloned();
                    if let Some(r) = self.record.take() {
                        r.succeed(usage.as_ref(), || None);
                    }
                    let mut buf = Vec::new();
                    for e in &events {
                        buf.extend_from_slice(&frame(e));
                    }
                    return Poll::Ready(Some(Ok(Bytes::from(buf))));
                }
            }
        }
    }
}

/// An Anthropic upstream's event stream, forwarded byte for byte.
pub struct NativeBody {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>,
    decoder: SseDecoder,
    usage: Option<wire::Usage>,
    upstream_error: Option<ApiError>,
    record: Option<CallRecord>,
    done: bool,
}

impl NativeBody {
    pub fn new(
        inner: Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>,
        record: CallRecord,
    ) -> Self {
        NativeBody {
            inner,
            decoder: SseDecoder::new(),
            usage: None,
            upstream_error: None,
            record: Some(record),
            done: false,
        }
    }

    fn peek(&mut self, bytes: &[u8]) {
        let Ok(events) = self.decoder.push(bytes) else {
            // An oversized event is the client's to judge; stop peeking at this stream.
            self.decoder = SseDecoder::new();
            return;
        };
        for ev in events {
            if ev.event.as_deref() == Some("error") {
                let detail: wire::ErrorDetail = serde_json::from_slice::<Value>(&ev.data)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["error"].clone()).ok())
                    .unwrap_or_default();
                let status = wire::status_for_error_type(&detail.kind);
                self.upstream_error = Some(ApiError::upstream(
                    status,
                    detail.kind,
                    format!("anthropic stream error: {}", detail.message),
                ));
                continue;
            }
            if let Some((first, u)) = peek_event_usage(&ev.data) {
                match (&mut self.usage, first) {
                    (Some(cur), false) => cur.merge_delta(&u),
                    (cur, _) => *cur = Some(u),
                }
            }
        }
    }

    fn openai_usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(wire::Usage::to_openai)
    }
}

impl Stream for NativeBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some(r) = self.record.as_mut() {
                    r.first_token();
                }
                self.peek(&bytes);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(err))) => {
                self.done = true;
                let usage = self.openai_usage();
                if let Some(r) = self.record.take() {
                    r.fail(&err, usage.as_ref());
                }
                Poll::Ready(Some(Ok(error_frame(&err))))
            }
            Poll::Ready(None) => {
                self.done = true;
                // A last event without its blank line still counts.
                self.peek(b"\n\n");
                let usage = self.openai_usage();
                if let Some(r) = self.record.take() {
                    match self.upstream_error.take() {
                        Some(e) => r.fail(&e, usage.as_ref()),
                        None => {
                            r.succeed(usage.as_ref(), || None);
                        }
                    }
                }
                Poll::Ready(None)
            }
        }
    }
}

/// The 499 a call ends with when the client leaves mid-stream.
impl Drop for EventBody {
    fn drop(&mut self) {
        // Client disconnected mid-stream: account for the usage seen so far.
        if let Some(r) = self.record.take() {
            r.fail(
                &crate::server::call::client_gone("stream"),
                self.mapper.usage(),
            );
        }
    }
}

impl Drop for NativeBody {
    fn drop(&mut self) {
        if let Some(r) = self.record.take() {
            let usage = self.openai_usage();
            r.fail(&crate::server::call::client_gone("stream"), usage.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(v: Value) -> ChatChunk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn chunks_become_events_in_anthropic_order() {
        let mut m = EventMapper::new("gpt-4o", 10);
        let mut events = Vec::new();
        for c in [
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}),
        ] {
            events.extend(m.on_chunk(chunk(c)));
        }
        events.extend(m.finish("c1"));
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[5]["content_block"]["id"], "call_1");
        assert_eq!(events[5]["index"], 1);
        assert_eq!(events[9]["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[9]["usage"]["output_tokens"], 4);
        assert_eq!(events[9]["usage"]["input_tokens"], 10);
    }
}
