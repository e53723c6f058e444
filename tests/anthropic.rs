//! End-to-end: the real binary in front of the mock's Anthropic Messages endpoint, through the
//! OpenAI API (translation) and through `/v1/messages` (fast path and translation back).

mod common;

use common::{Gateway, client, gateway, mock_upstream};
use serde_json::{Value, json};

const KEY: &str = "sk-master";

fn config(upstream: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: claude-opus-4-6
    litellm_params:
      model: anthropic/claude-opus-4-6
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: claude-tools
    litellm_params:
      model: anthropic/claude-tool-model
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: claude-thinking
    litellm_params:
      model: anthropic/claude-thinking-model
      api_base: {upstream}/v1
      api_key: sk-upstream-anthropic
  - model_name: claude-overloaded
    litellm_params:
      model: anthropic/claude-fail-529
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: claude-midstream
    litellm_params:
      model: anthropic/claude-midstream-error
      api_base: {upstream}
      api_key: sk-upstream-anthropic
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {upstream}/v1
      api_key: sk-upstream-openai
  - model_name: gpt-4o-tools
    litellm_params:
      model: openai/gpt-4o-tool
      api_base: {upstream}/v1
      api_key: sk-upstream-openai
general_settings:
  master_key: {KEY}
router_settings:
  num_retries: 0
"#
    )
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn chat(gw: &Gateway, body: Value) -> (u16, Value) {
    let r = post(gw, "/v1/chat/completions", &body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The `data:` payloads of an OpenAI SSE body, `[DONE]` excluded.
fn data_frames(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// The `(event, data)` pairs of an Anthropic SSE body.
fn named_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in f.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

fn last_upstream(mock: &tollgate::mock_upstream::MockState) -> tollgate::mock_upstream::Recorded {
    mock.requests().last().cloned().unwrap()
}

fn header<'a>(r: &'a tollgate::mock_upstream::Recorded, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn openai_to_claude_system_merge_usage_and_cache_control() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-opus-4-6", "max_completion_tokens": 300, "user": "u-1", "stop": ["\n\n\n"],
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [{"type": "text", "text": "first", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": "second"}
            ]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    let input = u["prompt_tokens"].as_u64().unwrap();
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 128);
    assert_eq!(u["cache_read_input_tokens"], 128);
    assert_eq!(u["cache_creation_input_tokens"], 16);
    assert!(input > 144, "prompt includes cache reads and writes: {u}");
    assert_eq!(u["completion_tokens"], 7);

    let sent = last_upstream(&mock);
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(header(&sent, "x-api-key"), Some("sk-upstream-anthropic"));
    assert_eq!(header(&sent, "anthropic-version"), Some("2023-06-01"));
    assert!(header(&sent, "authorization").is_none());
    let b = &sent.body;
    assert_eq!(b["model"], "claude-opus-4-6");
    assert_eq!(b["max_tokens"], 300);
    assert_eq!(
        b["system"],
        json!([{"type": "text", "text": "You are terse."}])
    );
    assert_eq!(b["metadata"], json!({"user_id": "u-1"}));
    assert_eq!(b["stop_sequences"], json!(["\n\n\n"]));
    assert_eq!(
        b["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "first", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "second"}]}])
    );
}

#[tokio::test]
async fn openai_to_claude_stop_reasons_and_default_max_tokens() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let (_, v) = chat(
        &gw,
        json!({"model": "claude-opus-4-6", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let (_, v) = chat(
        &gw,
        json!({"model": "claude-opus-4-6", "stop": "mock", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from the ");
    // No max_tokens from the client: the model's maximum output from the price table…
    assert_eq!(last_upstream(&mock).body["max_tokens"], 128000);
    // …and the documented default for a model the table does not know.
    let _ = chat(
        &gw,
        json!({"model": "claude-thinking", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(last_upstream(&mock).body["max_tokens"], 4096);
}

#[tokio::test]
async fn openai_to_claude_tool_choice_forms_and_unsupported_params() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            json!({"type": "tool", "name": "get_weather"}),
        ),
    ] {
        let (status, v) = chat(
            &gw,
            json!({"model": "claude-opus-4-6", "tools": tools, "tool_choice": choice, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let b = last_upstream(&mock).body;
        assert_eq!(b["tool_choice"], expected);
        assert_eq!(b["tools"][0]["name"], "get_weather");
        assert_eq!(
            b["tools"][0]["input_schema"]["properties"]["city"]["type"],
            "string"
        );
    }
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-opus-4-6", "seed": 1, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("seed"),
        "{v}"
    );
    let (status, _) = chat(
        &gw,
        json!({"model": "claude-opus-4-6", "seed": 1, "drop_params": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    // LiteLLM's extra_headers carry anthropic-beta from the OpenAI API; credentials are refused.
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-opus-4-6", "extra_headers": {"anthropic-beta": "context-1m-2025-08-07"},
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let sent = last_upstream(&mock);
    assert_eq!(
        header(&sent, "anthropic-beta"),
        Some("context-1m-2025-08-07")
    );
    assert!(sent.body.get("extra_headers").is_none());
    let (status, _) = chat(
        &gw,
        json!({"model": "claude-opus-4-6", "extra_headers": {"x-api-key": "sk-other"},
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn openai_tool_round_trip_keeps_ids_and_images_become_blocks() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let tools = json!([{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]);
    let mut messages = vec![json!({"role": "user", "content": [
        {"type": "text", "text": "read it"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]})];
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-tools", "tools": tools, "messages": messages}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let msg = v["choices"][0]["message"].clone();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert!(msg["content"].is_null());
    let call = &msg["tool_calls"][0];
    assert_eq!(call["id"], "toolu_mock_01");
    assert_eq!(call["function"]["name"], "read");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"path": "tollgate-e2e.txt"}));
    let sent = last_upstream(&mock).body;
    assert_eq!(
        sent["messages"][0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
    assert_eq!(
        sent["messages"][0]["content"][2]["source"],
        json!({"type": "url", "url": "https://example.com/cat.png"})
    );

    messages.push(msg);
    messages.push(
        json!({"role": "tool", "tool_call_id": "toolu_mock_01", "content": "the file says 42"}),
    );
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-tools", "tools": tools, "messages": messages}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Tool said: the file says 42"
    );
    let sent = last_upstream(&mock).body;
    assert_eq!(
        sent["messages"][1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_mock_01", "name": "read", "input": {"path": "tollgate-e2e.txt"}})
    );
    assert_eq!(
        sent["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_mock_01", "content": "the file says 42"})
    );
}

#[tokio::test]
async fn reasoning_effort_thinking_blocks_replay_and_tampering_is_refused() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let mut messages = vec![json!({"role": "user", "content": "weather?"})];
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-tools", "reasoning_effort": "low", "tools": tools, "messages": messages}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let sent = last_upstream(&mock).body;
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert!(sent["max_tokens"].as_u64().unwrap() > 1024);
    let msg = v["choices"][0]["message"].clone();
    assert_eq!(
        msg["reasoning_content"],
        tollgate::mock_upstream::anthropic::THINKING
    );
    assert_eq!(msg["thinking_blocks"][0]["type"], "thinking");
    assert!(
        msg["thinking_blocks"][0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("mocksig_")
    );

    messages.push(msg.clone());
    messages.push(json!({"role": "tool", "tool_call_id": "toolu_mock_01", "content": "sunny"}));
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-tools", "reasoning_effort": "low", "tools": tools, "messages": messages}),
    )
    .await;
    assert_eq!(status, 200, "replayed signature accepted: {v}");
    let sent = last_upstream(&mock).body;
    assert_eq!(sent["messages"][1]["content"][0]["type"], "thinking");
    assert_eq!(sent["messages"][1]["content"][1]["type"], "tool_use");

    let mut tampered = msg;
    tampered["thinking_blocks"][0]["signature"] = json!("forged");
    messages[1] = tampered;
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-tools", "reasoning_effort": "low", "tools": tools, "messages": messages}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{v}"
    );
}

#[tokio::test]
async fn openai_streaming_from_claude_with_thinking_tools_and_usage() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "claude-thinking", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let frames = data_frames(&text);
    let content: String = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
        .collect();
    let reasoning: String = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(content, "Hello from the mock upstream.");
    assert_eq!(reasoning, tollgate::mock_upstream::anthropic::THINKING);
    let block = frames
        .iter()
        .find_map(|f| {
            f["choices"][0]["delta"]["thinking_blocks"][0]
                .as_object()
                .cloned()
        })
        .unwrap();
    assert_eq!(
        block["signature"],
        tollgate::mock_upstream::anthropic::signature(tollgate::mock_upstream::anthropic::THINKING)
    );
    let finish: Vec<&str> = frames
        .iter()
        .filter_map(|f| f["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["stop"]);
    let last = frames.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 7);

    // Tool-call arguments arrive in pieces and reassemble.
    let text = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "claude-tools", "stream": true,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let frames = data_frames(&text);
    assert!(
        frames.iter().all(|f| f.get("usage").is_none()),
        "no usage chunk unless asked"
    );
    let args: String = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    let arg_chunks = frames
        .iter()
        .filter(|f| {
            f["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
        })
        .count();
    assert!(arg_chunks >= 3, "arguments split over several chunks");
}

#[tokio::test]
async fn upstream_errors_overloaded_and_midstream() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let (status, v) = chat(
        &gw,
        json!({"model": "claude-overloaded", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 529);
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded")
    );

    let text = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "claude-midstream", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let frames = data_frames(&text);
    let last = frames.last().unwrap();
    assert_eq!(last["error"]["type"], "overloaded_error", "{text}");
    assert!(!text.contains("[DONE]"), "an error is not a clean end");

    // Through /v1/messages the client gets Anthropic's shapes.
    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "claude-overloaded", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 529);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn messages_route_auth_errors_in_anthropic_shape() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let r = client()
        .post(gw.url("/v1/messages?beta=true"))
        .header("x-api-key", "sk-wrong")
        .json(&json!({"model": "claude-opus-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-should-retry"], "false");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", KEY)
        .json(&json!({"model": "nope", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let r = client()
        .post(gw.url("/v1/messages/count_tokens?beta=true"))
        .header("x-api-key", KEY)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there, how are you"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn messages_fast_path_forwards_body_and_headers_untouched() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let path = common::reference_file("claude-code-sample-request.json");
    let mut body: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // What Claude Code sends with newer models: adaptive thinking, output_config, a
    // mid-conversation system message carrying its own output_config.
    body["model"] = json!("claude-opus-4-6");
    body["thinking"] = json!({"type": "adaptive", "display": "updates"});
    body["output_config"] = json!({"effort": "high"});
    body["context_management"] =
        json!({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]});
    body["messages"].as_array_mut().unwrap().push(json!({"role": "system", "output_config": {"effort": "medium"},
        "content": [{"type": "text", "text": "# Environment", "cache_control": {"type": "ephemeral"}}]}));
    let beta = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27";
    let r = client()
        .post(gw.url("/v1/messages?beta=true"))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", beta)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let sent = last_upstream(&mock);
    assert_eq!(sent.body, body, "the body goes upstream untouched");
    assert_eq!(header(&sent, "anthropic-beta"), Some(beta));
    assert_eq!(header(&sent, "x-api-key"), Some("sk-upstream-anthropic"));
    let events = named_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..2], ["message_start", "ping"]);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    for (n, d) in &events {
        assert_eq!(d["type"], n.as_str(), "event names match data types");
    }
    let sig = events
        .iter()
        .find_map(|(_, d)| d["delta"]["signature"].as_str())
        .unwrap();
    assert_eq!(
        sig,
        tollgate::mock_upstream::anthropic::signature(tollgate::mock_upstream::anthropic::THINKING)
    );
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "end_turn"
    );

    // Non-streaming: the upstream's JSON as it is.
    body["stream"] = json!(false);
    let r = post(&gw, "/v1/messages", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "msg_mock01");
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["usage"]["cache_read_input_tokens"], 128);
}

#[tokio::test]
async fn messages_to_openai_model_translated_both_ways() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "gpt-4o", "max_tokens": 100, "system": "Be brief.", "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello from the mock upstream."}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["output_tokens"], 7);
    let sent = last_upstream(&mock).body;
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert!(sent.get("thinking").is_none());

    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "gpt-4o-tools", "max_tokens": 100, "stream": true,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let events = named_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[2].1["content_block"]["type"], "tool_use");
    assert_eq!(events[2].1["content_block"]["id"], "call_mock1");
    let json_text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_text).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(events[6].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[6].1["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn openclaw_sample_to_claude_streams_with_usage() {
    let (up, mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let path = common::reference_file("openclaw-sample-request.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let r = post(&gw, "/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let frames = data_frames(&r.text().await.unwrap());
    let content: String = frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from the mock upstream.");
    let usage = &frames.last().unwrap()["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 1000, "{usage}");
    let sent = last_upstream(&mock).body;
    assert_eq!(sent["max_tokens"], 64000);
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["tools"].as_array().unwrap().len(), 14);
    assert_eq!(
        sent["messages"].as_array().unwrap().len(),
        1,
        "two user messages merged"
    );
    assert_eq!(sent["system"][0]["text"], body["messages"][0]["content"]);
}

#[tokio::test]
async fn messages_fast_path_passes_a_midstream_error_event_through() {
    let (up, _mock) = mock_upstream().await;
    let gw = gateway(&config(&up)).start();
    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "claude-midstream", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let events = named_events(&r.text().await.unwrap());
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn every_messages_call_is_accounted_once() {
    let (up, _mock) = mock_upstream().await;
    let mut gw = gateway(&config(&up)).start();
    let hi = json!([{"role": "user", "content": "hi"}]);
    for (model, stream) in [
        ("claude-opus-4-6", false),
        ("claude-opus-4-6", true),
        ("gpt-4o", false),
        ("gpt-4o", true),
        ("claude-overloaded", false),
        ("claude-midstream", true),
    ] {
        let r = post(
            &gw,
            "/v1/messages",
            &json!({"model": model, "max_tokens": 10, "stream": stream, "messages": hi}),
        )
        .await;
        let _ = r.text().await.unwrap();
    }
    assert_eq!(gw.terminate(), Some(0));
    // SIGTERM flushed the spend writer: one row per call, successes and failures alike.
    let db = gw.config_dir().join("tollgate.db");
    let store = tollgate::store::Store::open(&tollgate::store::Store::sqlite_url(&db), 1)
        .await
        .unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT call_type, status FROM tollgate_spend_logs")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 6, "one spend row per call: {rows:?}");
    assert!(rows.iter().all(|(t, _)| t == "anthropic_messages"));
    assert_eq!(
        rows.iter().filter(|(_, s)| s == "failure").count(),
        2,
        "{rows:?}"
    );
}
