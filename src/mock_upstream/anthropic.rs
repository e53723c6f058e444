//! The mock's Anthropic Messages endpoint: checks a request the way the real API does and
//! answers with the real shapes, JSON or the full event stream.
//!
//! Behaviour by model name: `…thinking…` (or a request with `thinking` on) starts with a
//! signed thinking block; `…fail-529…` answers 529 `overloaded_error`; `…midstream-error…`
//! sends an `error` event after some text; `…tool…` asks for a tool call, or answers
//! `Tool said: …` once the last message carries a tool result. A request that mentions
//! `cache_control` is reported as a cache hit. Replayed thinking blocks must carry the
//! signature the mock gave them.

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{MockState, REPLY, prompt_tokens};

/// The thinking text of the mock's thinking block.
pub const THINKING: &str = "Let me think about this step by step.";

/// The signature the mock puts on a thinking block: a hash of its text, so a replay with a
/// changed text or signature is refused.
pub fn signature(thinking: &str) -> String {
    let h = hex::encode(Sha256::digest(thinking.as_bytes()));
    format!("mocksig_{}", &h[..32])
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = (
        status,
        Json(json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"})),
    )
        .into_response();
    if status.as_u16() == 529 || status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert("retry-after", header::HeaderValue::from_static("0"));
    }
    r
}

fn invalid(message: impl Into<String>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &message.into(),
    )
}

pub async fn messages(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return invalid("invalid JSON body");
    };
    st.record("/v1/messages", &headers, &req);
    if headers.get("x-api-key").is_none() {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    }
    if headers.get("anthropic-version").is_none() {
        return invalid("anthropic-version: header is required");
    }
    if let Err(msg) = validate(&req) {
        return invalid(msg);
    }
    let model = req["model"].as_str().unwrap_or("claude-mock").to_owned();
    if model.contains("fail-529") {
        return error(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded",
        );
    }
    let answer = answer(&req, &model);
    if req["stream"].as_bool() == Some(true) {
        return stream(&answer, &model);
    }
    if model.contains("midstream-error") {
        return error(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded",
        );
    }
    Json(answer.message(&model, true)).into_response()
}

/// What the mock says, before it is framed as JSON or events.
struct Answer {
    thinking: bool,
    text: Option<String>,
    tool: Option<(String, Value)>,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    usage: Value,
    output_tokens: u64,
}

impl Answer {
    fn blocks(&self) -> Vec<Value> {
        let mut content = Vec::new();
        if self.thinking {
            content.push(
                json!({"type": "thinking", "thinking": THINKING, "signature": signature(THINKING)}),
            );
        }
        if let Some(t) = &self.text {
            content.push(json!({"type": "text", "text": t}));
        }
        if let Some((name, input)) = &self.tool {
            content.push(
                json!({"type": "tool_use", "id": "toolu_mock_01", "name": name, "input": input}),
            );
        }
        content
    }

    fn message(&self, model: &str, complete: bool) -> Value {
        let mut usage = self.usage.clone();
        usage["output_tokens"] = json!(if complete { self.output_tokens } else { 1 });
        json!({
            "id": "msg_mock01", "type": "message", "role": "assistant", "model": model,
            "content": if complete { Value::Array(self.blocks()) } else { json!([]) },
            "stop_reason": if complete { json!(self.stop_reason) } else { Value::Null },
            "stop_sequence": if complete { json!(self.stop_sequence) } else { Value::Null },
            "usage": usage,
        })
    }
}

fn answer(req: &Value, model: &str) -> Answer {
    let thinking = model.contains("thinking")
        || matches!(
            req["thinking"]["type"].as_str(),
            Some("enabled") | Some("adaptive")
        );
    let cached = req.to_string().contains("cache_control");
    let usage = json!({
        "input_tokens": prompt_tokens(req),
        "cache_creation_input_tokens": if cached { 16 } else { 0 },
        "cache_read_input_tokens": if cached { 128 } else { 0 },
        "output_tokens": 0,
    });
    let mut a = Answer {
        thinking,
        text: Some(REPLY.to_owned()),
        tool: None,
        stop_reason: "end_turn",
        stop_sequence: None,
        usage,
        output_tokens: 7,
    };
    let last = req["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] != "system"))
        .cloned()
        .unwrap_or(Value::Null);
    let tool_result = last["content"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "tool_result"))
        .cloned();
    if model.contains("tool") {
        if let Some(r) = tool_result {
            let text = block_text(&r["content"]);
            a.text = Some(format!(
                "Tool said: {}",
                text.chars().take(200).collect::<String>()
            ));
        } else {
            let tools = req["tools"].as_array().cloned().unwrap_or_default();
            let (name, input) = if tools.iter().any(|t| t["name"] == "read") {
                ("read".to_owned(), json!({"path": "tollgate-e2e.txt"}))
            } else {
                let name = tools
                    .first()
                    .and_then(|t| t["name"].as_str())
                    .unwrap_or("get_weather");
                (name.to_owned(), json!({"city": "Paris"}))
            };
            a.text = None;
            a.tool = Some((name, input));
            a.stop_reason = "tool_use";
            a.output_tokens = 12;
        }
        return a;
    }
    if let Some(stops) = req["stop_sequences"].as_array() {
        for s in stops.iter().filter_map(Value::as_str) {
            if let Some(at) = REPLY.find(s).filter(|_| !s.is_empty()) {
                a.text = Some(REPLY[..at].to_owned());
                a.stop_reason = "stop_sequence";
                a.stop_sequence = Some(s.to_owned());
                return a;
            }
        }
    }
    if req["max_tokens"].as_u64().is_some_and(|m| m < 5) {
        a.text = Some("Hello".to_owned());
        a.stop_reason = "max_tokens";
        a.output_tokens = req["max_tokens"].as_u64().unwrap_or(1);
    }
    a
}

fn block_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The checks of the real API that catch a translator's mistakes.
fn validate(req: &Value) -> Result<(), String> {
    if req["model"].as_str().is_none_or(str::is_empty) {
        return Err("model: Field required".into());
    }
    let Some(max) = req["max_tokens"].as_u64() else {
        return Err("max_tokens: Field required".into());
    };
    if let Some(t) = req.get("thinking")
        && t["type"] == "enabled"
    {
        let budget = t["budget_tokens"].as_u64().unwrap_or(0);
        if budget < 1024 {
            return Err(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                    .into(),
            );
        }
        if budget >= max {
            return Err("`max_tokens` must be greater than `thinking.budget_tokens`".into());
        }
    }
    if let Some(sys) = req.get("system")
        && !(sys.is_string()
            || sys
                .as_array()
                .is_some_and(|a| a.iter().all(|b| b["type"] == "text")))
    {
        return Err("system: must be a string or a list of text blocks".into());
    }
    let Some(messages) = req["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err("messages: at least one message is required".into());
    };
    let mut prev_role = "";
    let mut prev_tool_ids: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        // Claude Code sends mid-conversation system messages; they sit outside the alternation.
        if role == "system" {
            continue;
        }
        if role != "user" && role != "assistant" {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        if role == prev_role {
            return Err(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"
            ));
        }
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) if !s.is_empty() => Vec::new(),
            Value::Array(a) if !a.is_empty() => a.clone(),
            _ => {
                return Err(format!(
                    "messages.{i}: all messages must have non-empty content"
                ));
            }
        };
        let mut seen_other = false;
        let mut tool_ids = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let kind = b["type"].as_str().unwrap_or("");
            match kind {
                "text" if b["text"].as_str().is_none_or(str::is_empty) => {
                    return Err(format!(
                        "messages.{i}.content.{j}.text: text content blocks must be non-empty"
                    ));
                }
                "tool_result" => {
                    if role != "user" {
                        return Err(format!(
                            "messages.{i}.content.{j}: tool_result is only allowed in user messages"
                        ));
                    }
                    if seen_other {
                        return Err(format!(
                            "messages.{i}: tool_result blocks must come first in the message content"
                        ));
                    }
                    let id = b["tool_use_id"].as_str().unwrap_or("");
                    if !prev_tool_ids.iter().any(|p| p == id) {
                        return Err(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        ));
                    }
                }
                "tool_use" => {
                    if role != "assistant" || !b["input"].is_object() {
                        return Err(format!(
                            "messages.{i}.content.{j}: tool_use needs an object input in an assistant message"
                        ));
                    }
                    tool_ids.push(b["id"].as_str().unwrap_or("").to_owned());
                }
                "thinking" => {
                    let text = b["thinking"].as_str().unwrap_or("");
                    if b["signature"].as_str() != Some(signature(text).as_str()) {
                        return Err(format!(
                            "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                        ));
                    }
                }
                "image" | "document" => {
                    let src = &b["source"];
                    let ok = match src["type"].as_str() {
                        Some("base64") => src["media_type"].is_string() && src["data"].is_string(),
                        Some("url") => src["url"].is_string(),
                        Some("file") => src["file_id"].is_string(),
                        Some("text") => src["data"].is_string(),
                        _ => false,
                    };
                    if !ok {
                        return Err(format!("messages.{i}.content.{j}.source: invalid source"));
                    }
                }
                _ => {}
            }
            if kind != "tool_result" {
                seen_other = true;
            }
        }
        prev_tool_ids = tool_ids;
        prev_role = role;
    }
    for (i, t) in req["tools"].as_array().into_iter().flatten().enumerate() {
        if t["name"].as_str().is_none_or(str::is_empty) {
            return Err(format!("tools.{i}.name: Field required"));
        }
        if t.get("type").is_none() && !t["input_schema"].is_object() {
            return Err(format!("tools.{i}.input_schema: Field required"));
        }
    }
    if let Some(tc) = req.get("tool_choice")
        && req.get("tools").is_none()
    {
        return Err(format!(
            "tool_choice: may only be specified while providing tools ({tc})"
        ));
    }
    Ok(())
}

fn frame(event: &str, data: Value) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(format!("event: {event}\ndata: {data}\n\n")))
}

/// The answer as Anthropic's event stream, in the API's order.
fn stream(a: &Answer, model: &str) -> Response {
    let mut out = vec![
        frame(
            "message_start",
            json!({"type": "message_start", "message": a.message(model, false)}),
        ),
        frame("ping", json!({"type": "ping"})),
    ];
    let mut index = 0;
    if a.thinking {
        out.push(frame("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        let (t1, t2) = THINKING.split_at(THINKING.len() / 2);
        for t in [t1, t2] {
            out.push(frame("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": t}})));
        }
        out.push(frame("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": signature(THINKING)}})));
        out.push(frame(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if let Some(text) = &a.text {
        out.push(frame("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        let parts: Vec<String> = words.chunks(2).map(|c| c.concat()).collect();
        for (n, p) in parts.iter().enumerate() {
            out.push(frame("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}})));
            if n == 0 && model.contains("midstream-error") {
                out.push(frame(
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ));
                return sse(out);
            }
        }
        out.push(frame(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if let Some((name, input)) = &a.tool {
        out.push(frame("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": "toolu_mock_01", "name": name, "input": {}}})));
        let s = input.to_string();
        let cut1 = s.len() / 3;
        let cut2 = 2 * s.len() / 3;
        for p in [&s[..cut1], &s[cut1..cut2], &s[cut2..]] {
            out.push(frame("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}})));
        }
        out.push(frame(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    let mut usage = a.usage.clone();
    usage["output_tokens"] = json!(a.output_tokens);
    out.push(frame(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": a.stop_reason, "stop_sequence": a.stop_sequence}, "usage": usage}),
    ));
    out.push(frame("message_stop", json!({"type": "message_stop"})));
    sse(out)
}

fn sse(frames: Vec<Result<Bytes, Infallible>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(futures::stream::iter(frames)),
    )
        .into_response()
}
