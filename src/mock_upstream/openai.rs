//! The mock's OpenAI endpoints: chat, text completions, embeddings, moderations, images.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{MockState, REPLY, prompt_tokens};

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}})),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert("retry-after", header::HeaderValue::from_static("0"));
    }
    r
}

/// The request's JSON, recorded under `path` for the tests to read; a 400 if it is not JSON.
fn received(
    st: &MockState,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Response> {
    let req = serde_json::from_slice::<Value>(body).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid JSON",
        )
    })?;
    st.record(path, headers, &req);
    Ok(req)
}

pub async fn chat(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match received(&st, "/chat/completions", &headers, &body) {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let model = req["model"].as_str().unwrap_or("mock").to_owned();
    if model.contains("fail-500") {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "mock upstream failure",
        );
    }
    if model.contains("fail-429") {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "mock rate limit",
        );
    }
    if model.contains("fail-401") {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided",
        );
    }
    if model.contains("slow") {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let prompt = prompt_tokens(&req);
    let completion = 7u64;
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    // Unique per answer, as OpenAI's are; a model named `…same-id…` reuses one id (some
    // OpenAI-compatible servers do) to exercise the spend log's handling of that.
    let id = if model.contains("same-id") {
        "chatcmpl-mock".to_owned()
    } else {
        format!("chatcmpl-mock-{:016x}", rand::random::<u64>())
    };
    let id = id.as_str();
    let turn = Turn::of(&model, &req);
    if req["stream"].as_bool() == Some(true) {
        let include_usage = req["stream_options"]["include_usage"].as_bool() == Some(true);
        let mut frames: Vec<Value> = Vec::new();
        let chunk = |delta: Value, finish: Value| {
            json!({"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        frames.push(chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ));
        match &turn {
            Turn::CallTool { name, arguments } => {
                frames.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_mock1", "type": "function", "function": {"name": name, "arguments": ""}}]}), Value::Null));
                // Arguments arrive split over two chunks, as real providers send them.
                let (a, b) = arguments.split_at(arguments.len() / 2);
                for part in [a, b] {
                    frames.push(chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                        Value::Null,
                    ));
                }
                frames.push(chunk(json!({}), json!("tool_calls")));
            }
            Turn::Text(text) => {
                for part in split3(text) {
                    frames.push(chunk(json!({"content": part}), Value::Null));
                }
                frames.push(chunk(json!({}), json!("stop")));
            }
        }
        if include_usage {
            frames.push(json!({"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model, "choices": [], "usage": usage}));
        }
        let mut out: Vec<Result<Bytes, Infallible>> = frames
            .into_iter()
            .map(|f| Ok(Bytes::from(format!("data: {f}\n\n"))))
            .collect();
        out.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
        return (
            [(header::CONTENT_TYPE, "text/event-stream")],
            Body::from_stream(futures::stream::iter(out)),
        )
            .into_response();
    }
    let (message, finish) = match &turn {
        Turn::CallTool { name, arguments } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock1", "type": "function", "function": {"name": name, "arguments": arguments}}]}),
            "tool_calls",
        ),
        Turn::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
    };
    Json(json!({
        "id": id, "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }))
    .into_response()
}

/// What the mock answers.
#[derive(Debug, PartialEq)]
enum Turn {
    Text(String),
    CallTool { name: String, arguments: String },
}

impl Turn {
    /// For a model named `…tool…`: a tool call, unless a tool result came after the last
    /// assistant message — then it is quoted back (`Tool said: …`). (OpenClaw sends its tool
    /// results followed by a user message of internal context, so "the last message is a tool
    /// result" is not enough.) A declared `read` tool (OpenClaw's) is called with
    /// `{"path":"tollgate-e2e.txt"}`; otherwise the first declared tool, or `get_weather`, with
    /// `{"city":"Paris"}`. Any other model answers [`REPLY`].
    fn of(model: &str, req: &Value) -> Turn {
        if !model.contains("tool") {
            return Turn::Text(REPLY.to_owned());
        }
        let messages = req["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let last_of = |role: &str| messages.iter().rposition(|m| m["role"] == role);
        if let Some(t) = last_of("tool")
            && last_of("assistant").is_none_or(|a| a < t)
        {
            let result: String = content_text(&messages[t]["content"])
                .chars()
                .take(200)
                .collect();
            return Turn::Text(format!("Tool said: {result}"));
        }
        let declared: Vec<&str> = req["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["function"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if declared.contains(&"read") {
            return Turn::CallTool {
                name: "read".into(),
                arguments: r#"{"path":"tollgate-e2e.txt"}"#.into(),
            };
        }
        Turn::CallTool {
            name: declared
                .first()
                .copied()
                .unwrap_or("get_weather")
                .to_owned(),
            arguments: r#"{"city":"Paris"}"#.into(),
        }
    }
}

/// The text of a message's content: a string, or the `text` of its parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A text in up to three pieces on character boundaries, to stream it as several chunks.
fn split3(text: &str) -> Vec<&str> {
    if text == REPLY {
        return vec!["Hello ", "from the ", "mock upstream."];
    }
    let cut = |n: usize| {
        let mut i = (text.len() * n / 3).min(text.len());
        while !text.is_char_boundary(i) {
            i += 1;
        }
        i
    };
    let (a, b) = (cut(1), cut(2));
    [&text[..a], &text[a..b], &text[b..]]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect()
}

pub async fn embeddings(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match received(&st, "/embeddings", &headers, &body) {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let n = match &req["input"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
        .collect();
    let tokens = prompt_tokens(&req["input"]);
    Json(json!({"object": "list", "data": data, "model": req["model"], "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
        .into_response()
}

/// The legacy text-completion endpoint: echoes the prompt's start, streams in three events.
pub async fn completions(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match received(&st, "/completions", &headers, &body) {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let model = req["model"].as_str().unwrap_or("mock").to_owned();
    if model.contains("fail-500") {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "mock upstream failure",
        );
    }
    let prompt = prompt_tokens(&req["prompt"]);
    let usage =
        json!({"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3});
    let id = format!("cmpl-mock-{:016x}", rand::random::<u64>());
    let chunk = |text: &str, finish: Value| {
        json!({"id": id, "object": "text_completion", "created": 1700000000, "model": model,
               "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]})
    };
    if req["stream"].as_bool() != Some(true) {
        let mut answer = chunk(" and so on.", json!("stop"));
        answer["usage"] = usage;
        return Json(answer).into_response();
    }
    let mut frames = vec![
        chunk(" and", Value::Null),
        chunk(" so", Value::Null),
        chunk(" on.", json!("stop")),
    ];
    if req["stream_options"]["include_usage"].as_bool() == Some(true) {
        let mut last = chunk("", Value::Null);
        last["choices"] = json!([]);
        last["usage"] = usage;
        frames.push(last);
    }
    let mut out: Vec<Result<Bytes, Infallible>> = frames
        .into_iter()
        .map(|f| Ok(Bytes::from(format!("data: {f}\n\n"))))
        .collect();
    out.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(futures::stream::iter(out)),
    )
        .into_response()
}

/// Moderations: nothing is flagged.
pub async fn moderations(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match received(&st, "/moderations", &headers, &body) {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let n = match req["input"].as_array() {
        Some(a) if a.iter().all(Value::is_string) => a.len().max(1),
        _ => 1,
    };
    let result = json!({"flagged": false, "categories": {"violence": false}, "category_scores": {"violence": 0.0001}});
    Json(json!({"id": "modr-mock", "model": req["model"], "results": vec![result; n]}))
        .into_response()
}

/// Image generation: one URL per image asked for.
pub async fn images(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match received(&st, "/images/generations", &headers, &body) {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let n = req["n"].as_u64().unwrap_or(1).clamp(1, 10);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"url": format!("https://images.mock.invalid/{i}.png"), "revised_prompt": req["prompt"]}))
        .collect();
    Json(json!({"created": 1700000000, "data": data})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_model_calls_read_when_declared_else_the_first_tool() {
        let tools = |names: &[&str]| -> Value {
            names
                .iter()
                .map(|n| json!({"type": "function", "function": {"name": n}}))
                .collect()
        };
        let user = json!([{"role": "user", "content": "hi"}]);
        let req = json!({"messages": user, "tools": tools(&["exec", "read"])});
        assert_eq!(
            Turn::of("mock-tool", &req),
            Turn::CallTool {
                name: "read".into(),
                arguments: r#"{"path":"tollgate-e2e.txt"}"#.into()
            }
        );
        let req = json!({"messages": user, "tools": tools(&["get_time"])});
        assert!(
            matches!(Turn::of("gpt-4o-tool", &req), Turn::CallTool { name, .. } if name == "get_time")
        );
        let req = json!({"messages": user});
        assert_eq!(
            Turn::of("gpt-4o-tool", &req),
            Turn::CallTool {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }
        );
        assert_eq!(Turn::of("gpt-4o", &req), Turn::Text(REPLY.into()));
    }

    #[test]
    fn tool_result_is_quoted_back() {
        let long = "x".repeat(300);
        let req = json!({"messages": [
            {"role": "user", "content": "read it"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": long}]},
            {"role": "user", "content": [{"type": "text", "text": "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>"}]},
        ]});
        let Turn::Text(t) = Turn::of("mock-tool", &req) else {
            panic!("expected text")
        };
        assert_eq!(t, format!("Tool said: {}", "x".repeat(200)));
        assert_eq!(split3(&t).concat(), t);
        // A later turn, after the assistant answered, asks for the tool again.
        let mut later = req.clone();
        let msgs = later["messages"].as_array_mut().unwrap();
        msgs.push(json!({"role": "assistant", "content": t}));
        msgs.push(json!({"role": "user", "content": "again"}));
        assert!(matches!(
            Turn::of("mock-tool", &later),
            Turn::CallTool { .. }
        ));
    }
}
