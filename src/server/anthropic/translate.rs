//! The inbound direction of the Anthropic translation: an Anthropic Messages request → the
//! canonical chat request (for a model that does not speak Anthropic), and the canonical answer
//! → an Anthropic message.
//!
//! Anthropic-only controls with no meaning elsewhere (`thinking`, `context_management`,
//! `output_config`, `cache_control`, `top_k` …) are dropped, as `docs/anthropic.md` lists;
//! anything that would change the answer and cannot be expressed (server tools, unknown block
//! types, unknown fields) is refused with a 400 unless `drop_params` is on.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::types::anthropic::{self as wire, Block, MessagesRequest, MessagesResponse};
use crate::types::{
    ChatRequest, ChatResponse, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl, Message,
    StreamOptions, Tool, ToolCall,
};

/// Top-level Anthropic fields that only steer Claude; dropped when another model answers.
const ANTHROPIC_ONLY: &[&str] = &[
    "context_management",
    "output_config",
    "output_format",
    "service_tier",
    "container",
    "mcp_servers",
    "inference_geo",
];

/// Anthropic request → canonical chat request.
pub fn to_chat(req: MessagesRequest, drop_params: bool) -> Result<ChatRequest, ApiError> {
    let mut refused: Vec<String> = Vec::new();
    for k in req.extra.keys() {
        if !ANTHROPIC_ONLY.contains(&k.as_str()) {
            refused.push(k.clone());
        }
    }
    let mut messages: Vec<Message> = Vec::new();
    if let Some(m) = req.system.and_then(system_message) {
        messages.push(m);
    }
    for (i, m) in req.messages.into_iter().enumerate() {
        match m.role.as_str() {
            "system" => {
                if let Some(sm) = system_message(m.content) {
                    messages.push(sm);
                }
            }
            "user" => user_messages(m.content, i, drop_params, &mut refused, &mut messages)?,
            "assistant" => {
                messages.push(assistant_message(m.content, i, drop_params, &mut refused)?)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages.{i}.role: \"{other}\" is not user or assistant"
                )));
            }
        }
    }
    let mut tools = Vec::new();
    for (i, t) in req.tools.into_iter().flatten().enumerate() {
        if t.kind.as_deref().is_some_and(|k| k != "custom") {
            if !drop_params {
                refused.push(format!(
                    "tools.{i} (server tool {})",
                    t.kind.as_deref().unwrap_or("")
                ));
            }
            continue;
        }
        tools.push(Tool {
            kind: "function".into(),
            function: Some(FunctionDef {
                name: t.name,
                description: t.description,
                parameters: t.input_schema,
                strict: t.extra.get("strict").and_then(Value::as_bool),
                extra: Map::new(),
            }),
            cache_control: None,
            extra: Map::new(),
        });
    }
    if !refused.is_empty() && !drop_params {
        return Err(ApiError::bad_request(format!(
            "model {} does not speak the Anthropic API and these cannot be translated for it: {}. Set drop_params: true to drop them.",
            req.model,
            refused.join(", ")
        )));
    }
    let mut parallel_tool_calls = None;
    let tool_choice = match req.tool_choice {
        None => None,
        Some(tc) => {
            if tc.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
                parallel_tool_calls = Some(false);
            }
            match tc.get("type").and_then(Value::as_str) {
                Some("auto") => Some(json!("auto")),
                Some("any") => Some(json!("required")),
                Some("none") => Some(json!("none")),
                Some("tool") => Some(
                    json!({"type": "function", "function": {"name": tc.get("name").cloned().unwrap_or(Value::Null)}}),
                ),
                _ => {
                    return Err(ApiError::bad_request(
                        "tool_choice.type must be auto, any, none or tool",
                    ));
                }
            }
        }
    };
    let user = req
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let stream = req.stream == Some(true);
    Ok(ChatRequest {
        model: req.model,
        messages: messages.into(),
        stream: stream.then_some(true),
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.map(|s| json!(s)),
        tool_choice: if tools.is_empty() { None } else { tool_choice },
        parallel_tool_calls: if tools.is_empty() {
            None
        } else {
            parallel_tool_calls
        },
        tools: (!tools.is_empty()).then(|| tools.into()),
        user,
        ..ChatRequest::default()
    })
}

fn text_part(text: String) -> ContentPart {
    ContentPart {
        kind: "text".into(),
        text: Some(text),
        ..ContentPart::default()
    }
}

fn system_message(content: wire::Content) -> Option<Message> {
    let text = match content {
        wire::Content::Text(s) => s,
        wire::Content::Blocks(blocks) => blocks
            .iter()
            .filter_map(|b| b.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    (!text.is_empty()).then(|| Message {
        role: "system".into(),
        content: Some(Content::Text(text)),
        ..Message::default()
    })
}

/// An `image` or `document` block → an OpenAI content part.
fn media_part(b: &Block, at: &str) -> Result<ContentPart, ApiError> {
    let src = b.source.clone().unwrap_or(Value::Null);
    let kind = src.get("type").and_then(Value::as_str).unwrap_or("");
    let s = |k: &str| src.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    match (b.kind.as_str(), kind) {
        ("image", "base64") => Ok(ContentPart {
            kind: "image_url".into(),
            image_url: Some(ImageUrl {
                url: format!("data:{};base64,{}", s("media_type"), s("data")),
                ..ImageUrl::default()
            }),
            ..ContentPart::default()
        }),
        ("image", "url") => Ok(ContentPart {
            kind: "image_url".into(),
            image_url: Some(ImageUrl {
                url: s("url"),
                ..ImageUrl::default()
            }),
            ..ContentPart::default()
        }),
        ("document", "base64") => {
            let mut extra = Map::new();
            extra.insert(
                "file".into(),
                json!({"file_data": format!("data:{};base64,{}", s("media_type"), s("data"))}),
            );
            Ok(ContentPart {
                kind: "file".into(),
                extra,
                ..ContentPart::default()
            })
        }
        ("document", "text") => Ok(text_part(s("data"))),
        _ => Err(ApiError::bad_request(format!(
            "{at}: a {} with a {kind} source cannot be passed to a model that does not speak the Anthropic API",
            b.kind
        ))),
    }
}

fn user_messages(
    content: wire::Content,
    i: usize,
    drop_params: bool,
    refused: &mut Vec<String>,
    out: &mut Vec<Message>,
) -> Result<(), ApiError> {
    let mut parts: Vec<ContentPart> = Vec::new();
    for (j, b) in content.into_blocks().into_iter().enumerate() {
        let at = format!("messages.{i}.content.{j}");
        match b.kind.as_str() {
            "text" => parts.push(text_part(b.text.unwrap_or_default())),
            "image" | "document" => parts.push(media_part(&b, &at)?),
            "tool_result" => {
                // Tool results become `tool` messages, which must follow the assistant's call.
                let mut text = String::new();
                for inner in b
                    .content
                    .map(wire::Content::into_blocks)
                    .unwrap_or_default()
                {
                    match inner.kind.as_str() {
                        "text" => text.push_str(inner.text.as_deref().unwrap_or("")),
                        "image" | "document" => parts.push(media_part(&inner, &at)?),
                        other => refused.push(format!("{at}: tool_result block {other}")),
                    }
                }
                if b.is_error == Some(true) {
                    text = format!("Error: {text}");
                }
                out.push(Message {
                    role: "tool".into(),
                    tool_call_id: b.tool_use_id,
                    content: Some(Content::Text(text)),
                    ..Message::default()
                });
            }
            other => {
                if !drop_params {
                    refused.push(format!("{at} (block type {other})"));
                }
            }
        }
    }
    if !parts.is_empty() {
        let content = if parts.iter().all(|p| p.kind == "text") && parts.len() == 1 {
            Content::Text(parts.remove(0).text.unwrap_or_default())
        } else {
            Content::Parts(parts)
        };
        out.push(Message {
            role: "user".into(),
            content: Some(content),
            ..Message::default()
        });
    }
    Ok(())
}

fn assistant_message(
    content: wire::Content,
    i: usize,
    drop_params: bool,
    refused: &mut Vec<String>,
) -> Result<Message, ApiError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, b) in content.into_blocks().into_iter().enumerate() {
        match b.kind.as_str() {
            "text" => text.push_str(b.text.as_deref().unwrap_or("")),
            // Claude's thinking means nothing to another model (and its signature nothing).
            "thinking" | "redacted_thinking" => {}
            "tool_use" => calls.push(ToolCall {
                index: None,
                id: b.id,
                kind: Some("function".into()),
                function: Some(FunctionCall {
                    name: b.name,
                    arguments: Some(b.input.unwrap_or(json!({})).to_string()),
                }),
                extra: Map::new(),
            }),
            other => {
                if !drop_params {
                    refused.push(format!("messages.{i}.content.{j} (block type {other})"));
                }
            }
        }
    }
    Ok(Message {
        role: "assistant".into(),
        content: if text.is_empty() && !calls.is_empty() {
            None
        } else {
            Some(Content::Text(text))
        },
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..Message::default()
    })
}

/// OpenAI finish reason → Anthropic stop reason.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// A tool call's arguments as the `input` object (unparseable arguments are kept as a string).
pub fn tool_input(arguments: Option<&str>) -> Value {
    let args = arguments.unwrap_or("").trim();
    if args.is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({"value": other}),
        Err(_) => json!({"arguments": args}),
    }
}

/// Canonical answer → Anthropic message, named by the model the client asked for.
pub fn to_message(resp: ChatResponse, model: &str) -> MessagesResponse {
    let choice = resp.choices.into_iter().next().unwrap_or_default();
    let m = choice.message;
    let mut content = Vec::new();
    if let Some(blocks) = &m.thinking_blocks {
        for b in blocks {
            if let Ok(b) = serde_json::from_value::<Block>(b.clone()) {
                content.push(b);
            }
        }
    } else if let Some(r) = m.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
        content.push(Block {
            kind: "thinking".into(),
            thinking: Some(r.to_owned()),
            signature: Some(String::new()),
            ..Block::default()
        });
    }
    let text = m.content.as_ref().map(Content::text).unwrap_or_default();
    if !text.is_empty() {
        content.push(Block::text(text));
    }
    for tc in m.tool_calls.into_iter().flatten() {
        let f = tc.function.unwrap_or_default();
        content.push(Block {
            kind: "tool_use".into(),
            id: tc.id,
            name: f.name,
            input: Some(tool_input(f.arguments.as_deref())),
            ..Block::default()
        });
    }
    let usage = resp
        .usage
        .as_ref()
        .map(wire::Usage::from_openai)
        .unwrap_or_default();
    MessagesResponse {
        id: message_id(&resp.id),
        kind: "message".into(),
        role: "assistant".into(),
        model: model.to_owned(),
        content,
        stop_reason: Some(stop_reason(choice.finish_reason.as_deref()).to_owned()),
        stop_sequence: None,
        usage,
        extra: Map::new(),
    }
}

/// Anthropic ids start with `msg_`.
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else if id.is_empty() {
        format!("msg_{}", uuid::Uuid::new_v4().simple())
    } else {
        format!("msg_{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn request_to_chat_keeps_tools_results_and_images() {
        let r = req(json!({
            "model": "gpt-4o", "max_tokens": 100, "stream": true,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "metadata": {"user_id": "u1"}, "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
            "tools": [{"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                    {"type": "text", "text": "thanks"}]}
            ]
        }));
        let c = to_chat(r, false).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({
                "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 100,
                "user": "u1", "tool_choice": "required", "parallel_tool_calls": false,
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": {"type": "object"}}}],
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
                    {"role": "assistant", "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                    {"role": "user", "content": "thanks"}
                ]
            })
        );
    }

    #[test]
    fn untranslatable_fields_are_refused_or_dropped() {
        let body = json!({"model": "gpt-4o", "max_tokens": 5, "frobnicate": 1,
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "messages": [{"role": "user", "content": "hi"}]});
        let e = to_chat(req(body.clone()), false).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(
            e.message.contains("frobnicate") && e.message.contains("web_search"),
            "{}",
            e.message
        );
        let c = to_chat(req(body), true).unwrap();
        assert!(c.tools.is_none());
    }

    #[test]
    fn answer_to_message() {
        let resp: ChatResponse = serde_json::from_value(json!({
            "id": "chatcmpl-1", "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "tool_calls",
              "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 8}}
        })).unwrap();
        let m = to_message(resp, "gpt-4o");
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o",
                "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 12, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 8}})
        );
    }
}
