//! The mock's OpenAI Chat Completions and embeddings endpoints.

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

pub async fn chat(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid JSON",
        );
    };
    st.record("/chat/completions", &headers, &req);
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
    let id = "chatcmpl-mock";
    let tool = model.contains("tool");
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
        if tool {
            frames.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_mock1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), Value::Null));
            frames.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                Value::Null,
            ));
            frames.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                Value::Null,
            ));
            frames.push(chunk(json!({}), json!("tool_calls")));
        } else {
            for part in ["Hello ", "from the ", "mock upstream."] {
                frames.push(chunk(json!({"content": part}), Value::Null));
            }
            frames.push(chunk(json!({}), json!("stop")));
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
    let message = if tool {
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
    } else {
        json!({"role": "assistant", "content": REPLY})
    };
    Json(json!({
        "id": id, "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": if tool { "tool_calls" } else { "stop" }}],
        "usage": usage,
    }))
    .into_response()
}

pub async fn embeddings(State(st): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid JSON",
        );
    };
    st.record("/embeddings", &headers, &req);
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
