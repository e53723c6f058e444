//! Anthropic Messages API wire types, shared by the outbound adapter (`providers::anthropic`)
//! and the inbound `/v1/messages` route.
//!
//! Every struct keeps the fields it does not name in a flattened `extra` map, so new API fields
//! (`context_management`, `output_config`, `defer_loading`, `citations` …) survive a round trip.
//! Content blocks are one flat struct rather than an enum for the same reason: a block type this
//! code has never heard of still passes through whole.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `anthropic-version` the gateway sends when the client did not name one.
pub const API_VERSION: &str = "2023-06-01";

/// `POST /v1/messages` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<Message>,
    /// A string or an array of text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    /// Required by the API; optional here so the inbound route can say so in its own words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `{"user_id": "..."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDef>>,
    /// `{"type":"auto"|"any"|"none"|"tool", "name"?, "disable_parallel_tool_use"?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// `{"type":"enabled","budget_tokens":N}`, `{"type":"adaptive"}`, `{"type":"disabled"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One message of the conversation. `role` is `user` or `assistant` (Claude Code also sends
/// `system` messages mid-conversation).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: Content,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A plain string or an array of content blocks.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match super::text_or_items(d)? {
            Ok(text) => Content::Text(text),
            Err(blocks) => Content::Blocks(blocks),
        })
    }
}

impl Default for Content {
    fn default() -> Self {
        Content::Blocks(Vec::new())
    }
}

impl Content {
    /// The content as blocks (a string becomes one text block).
    pub fn into_blocks(self) -> Vec<Block> {
        match self {
            Content::Text(s) => vec![Block::text(s)],
            Content::Blocks(b) => b,
        }
    }

    /// The text of every text block, joined.
    pub fn text(&self) -> String {
        match self {
            Content::Text(s) => s.clone(),
            Content::Blocks(b) => b
                .iter()
                .filter_map(|b| b.text.as_deref())
                .collect::<Vec<_>>()
                .join(""),
        }
    }

    /// The length in bytes of [`Content::text`], without building it.
    pub fn text_len(&self) -> usize {
        match self {
            Content::Text(s) => s.len(),
            Content::Blocks(b) => b
                .iter()
                .filter_map(|b| b.text.as_deref())
                .map(str::len)
                .sum(),
        }
    }
}

/// A content block of any type: `text`, `image`, `document`, `tool_use`, `tool_result`,
/// `thinking`, `redacted_thinking`, `server_tool_use`, … Fields a type does not use are absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `image` / `document`: `{"type":"base64","media_type","data"}`, `{"type":"url","url"}`,
    /// `{"type":"file","file_id"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    /// `tool_use`: the call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// `tool_result`: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// `tool_result`: a string or blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// `redacted_thinking`: the encrypted thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Block {
    pub fn text(s: impl Into<String>) -> Self {
        Block {
            kind: "text".into(),
            text: Some(s.into()),
            ..Block::default()
        }
    }
}

/// A tool definition: `{name, description, input_schema}` (custom) or a server tool
/// (`{type, name, …}`), kept whole.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolDef {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Passed on as the client wrote it (see [`super::RawJson`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<super::RawJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A non-streaming answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessagesResponse {
    pub id: String,
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    #[serde(default = "assistant")]
    pub role: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Vec<Block>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn message_type() -> String {
    "message".into()
}

fn assistant() -> String {
    "assistant".into()
}

/// Token usage. `input_tokens` excludes the cached prompt tokens, which are counted apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One event of a streamed answer, tagged by `type` (equal to the SSE `event:` name).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessagesResponse,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<Usage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorDetail,
    },
}

impl StreamEvent {
    /// The SSE `event:` name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Ping => "ping",
            StreamEvent::Error { .. } => "error",
        }
    }
}

/// A `content_block_delta`'s delta: `text_delta`, `input_json_delta` (`partial_json`),
/// `thinking_delta`, `signature_delta`, `citations_delta`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BlockDelta {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `message_delta.delta`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessageDelta {
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type": "overloaded_error", "message": "..."}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// The error body: `{"type":"error","error":{"type","message"}}`.
pub fn error_body(kind: &str, message: &str) -> Value {
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The Anthropic error type for an HTTP status, as the API documents them.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The HTTP status the API uses for an error type (for `error` events met mid-stream).
pub fn status_for_error_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        "timeout_error" => 504,
        _ => 500,
    }
}

/// The usage an SSE event carries (`message_start` or `message_delta`), read without parsing
/// the rest of the event. Used by the fast path, which forwards bytes.
pub fn peek_event_usage(data: &[u8]) -> Option<(bool, Usage)> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        message: Option<MessagePeek>,
        #[serde(default)]
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct MessagePeek {
        #[serde(default)]
        usage: Option<Usage>,
    }
    // Built once: building a searcher costs more than searching one event.
    static USAGE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));
    USAGE.find(data)?;
    let p: Peek = serde_json::from_slice(data).ok()?;
    match p.kind.as_str() {
        "message_start" => p.message.and_then(|m| m.usage).map(|u| (true, u)),
        "message_delta" => p.usage.map(|u| (false, u)),
        _ => None,
    }
}

impl Usage {
    /// Folds a `message_delta` usage (cumulative counts) into the `message_start` one.
    pub fn merge_delta(&mut self, d: &Usage) {
        self.output_tokens = d.output_tokens;
        // message_delta repeats input figures when the server revised them; zero means absent.
        if d.input_tokens > 0 {
            self.input_tokens = d.input_tokens;
        }
        if d.cache_creation_input_tokens.is_some() {
            self.cache_creation_input_tokens = d.cache_creation_input_tokens;
        }
        if d.cache_read_input_tokens.is_some() {
            self.cache_read_input_tokens = d.cache_read_input_tokens;
        }
    }

    /// The same counts in OpenAI's shape: `prompt_tokens` includes cache reads and writes,
    /// `prompt_tokens_details.cached_tokens` is the cache reads.
    pub fn to_openai(&self) -> super::openai::Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = self.input_tokens + read + write;
        super::openai::Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output_tokens,
            total_tokens: prompt + self.output_tokens,
            prompt_tokens_details: Some(super::openai::PromptTokensDetails {
                cached_tokens: Some(read),
                extra: Map::new(),
            }),
            completion_tokens_details: None,
            cache_creation_input_tokens: Some(write),
            cache_read_input_tokens: Some(read),
            extra: Map::new(),
        }
    }

    /// From OpenAI's shape (the inverse of [`Usage::to_openai`]).
    pub fn from_openai(u: &super::openai::Usage) -> Self {
        let read = u.cached_tokens();
        let write = u.cache_creation_tokens();
        Usage {
            input_tokens: u.prompt_tokens.saturating_sub(read + write),
            output_tokens: u.completion_tokens,
            cache_creation_input_tokens: Some(write),
            cache_read_input_tokens: Some(read),
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_and_blocks_round_trip() {
        let body = json!({
            "model": "claude-x", "max_tokens": 10,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "output_config": {"effort": "high"}, "content": [{"type": "text", "text": "env"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "t", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "enc"},
                    {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {}},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x", "cache_control": {"type": "ephemeral"}}]}
            ],
            "tools": [{"name": "T", "input_schema": {}, "defer_loading": true}],
            "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
            "context_management": {"edits": []}
        });
        let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }

    #[test]
    fn usage_maps_cache_figures_both_ways() {
        let u = Usage {
            input_tokens: 10,
            output_tokens: 5,
            cache_creation_input_tokens: Some(3),
            cache_read_input_tokens: Some(100),
            extra: Map::new(),
        };
        let o = u.to_openai();
        assert_eq!(o.prompt_tokens, 113);
        assert_eq!(o.total_tokens, 118);
        assert_eq!(o.cached_tokens(), 100);
        assert_eq!(Usage::from_openai(&o), u);
    }

    #[test]
    fn peeks_usage_in_start_and_delta_events() {
        let start = br#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":7,"output_tokens":1}}}"#;
        assert_eq!(peek_event_usage(start).unwrap().1.input_tokens, 7);
        let delta = br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#;
        let (first, u) = peek_event_usage(delta).unwrap();
        assert!(!first);
        assert_eq!(u.output_tokens, 9);
        assert!(peek_event_usage(br#"{"type":"ping"}"#).is_none());
    }
}
