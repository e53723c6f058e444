//! Anthropic's event stream → canonical `chat.completion.chunk`s.
//!
//! [`ChunkMapper`] is fed one parsed event at a time and answers with the chunks it makes:
//! text and thinking deltas, tool calls whose arguments arrive in pieces, the finish reason
//! (at `message_delta`) and a final usage-only chunk (at `message_stop`). An `error` event, or
//! an upstream that closes before `message_stop`, becomes an `Err`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::convert::{JSON_TOOL, finish_reason, thinking_block_value};
use crate::error::ApiError;
use crate::types::anthropic::{self as wire, Block, StreamEvent};
use crate::types::{ChatChunk, ChunkChoice, Delta, FunctionCall, ToolCall};

/// What a content block is, for the deltas that follow its start.
enum Open {
    Text,
    Thinking(Box<Block>),
    Tool(u32),
    /// The `response_format` tool: its JSON is streamed as text.
    JsonAnswer,
    Other,
}

pub struct ChunkMapper {
    id: String,
    model: String,
    created: i64,
    json_tool: bool,
    blocks: HashMap<u32, Open>,
    next_tool: u32,
    usage: wire::Usage,
    json_answer: bool,
    stopped: bool,
}

impl ChunkMapper {
    pub fn new(model: &str, json_tool: bool, created: i64) -> Self {
        ChunkMapper {
            id: String::new(),
            model: model.to_owned(),
            created,
            json_tool,
            blocks: HashMap::new(),
            next_tool: 0,
            usage: wire::Usage::default(),
            json_answer: false,
            stopped: false,
        }
    }

    /// Whether `message_stop` was seen (the stream is complete).
    pub fn finished(&self) -> bool {
        self.stopped
    }

    fn chunk(&self, delta: Delta, finish: Option<String>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                extra: Map::new(),
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    fn content(&self, text: String) -> ChatChunk {
        self.chunk(
            Delta {
                content: Some(text),
                ..Delta::default()
            },
            None,
        )
    }

    /// Maps one event; `provider` names the upstream in error messages.
    pub fn on_event(
        &mut self,
        ev: StreamEvent,
        provider: &str,
    ) -> Result<Vec<ChatChunk>, ApiError> {
        let mut out = Vec::new();
        match ev {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                if !message.model.is_empty() {
                    self.model = message.model;
                }
                self.usage = message.usage;
                out.push(self.chunk(
                    Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                ));
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block: b,
            } => {
                let open = match b.kind.as_str() {
                    "text" => {
                        if let Some(t) = b.text.clone().filter(|t| !t.is_empty()) {
                            out.push(self.content(t));
                        }
                        Open::Text
                    }
                    "thinking" => Open::Thinking(Box::new(b)),
                    "redacted_thinking" => {
                        out.push(self.chunk(
                            Delta {
                                thinking_blocks: Some(vec![thinking_block_value(&b)]),
                                ..Delta::default()
                            },
                            None,
                        ));
                        Open::Other
                    }
                    "tool_use" if self.json_tool && b.name.as_deref() == Some(JSON_TOOL) => {
                        self.json_answer = true;
                        Open::JsonAnswer
                    }
                    "tool_use" => {
                        let i = self.next_tool;
                        self.next_tool += 1;
                        out.push(self.chunk(
                            Delta {
                                tool_calls: Some(vec![ToolCall {
                                    index: Some(i),
                                    id: b.id.clone(),
                                    kind: Some("function".into()),
                                    function: Some(FunctionCall {
                                        name: b.name.clone(),
                                        arguments: Some(String::new()),
                                    }),
                                    extra: Map::new(),
                                }]),
                                ..Delta::default()
                            },
                            None,
                        ));
                        Open::Tool(i)
                    }
                    _ => Open::Other,
                };
                self.blocks.insert(index, open);
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                match (self.blocks.get_mut(&index), delta.kind.as_str()) {
                    (Some(Open::Text), "text_delta") => {
                        if let Some(t) = delta.text {
                            out.push(self.content(t));
                        }
                    }
                    (Some(Open::Thinking(block)), "thinking_delta") => {
                        let t = delta.thinking.unwrap_or_default();
                        block.thinking.get_or_insert_with(String::new).push_str(&t);
                        out.push(self.chunk(
                            Delta {
                                reasoning_content: Some(t),
                                ..Delta::default()
                            },
                            None,
                        ));
                    }
                    (Some(Open::Thinking(block)), "signature_delta") => {
                        block
                            .signature
                            .get_or_insert_with(String::new)
                            .push_str(delta.signature.as_deref().unwrap_or(""));
                    }
                    (Some(Open::Tool(i)), "input_json_delta")
                        if delta.partial_json.as_deref().is_some_and(|p| !p.is_empty()) =>
                    {
                        let i = *i;
                        out.push(self.chunk(
                            Delta {
                                tool_calls: Some(vec![ToolCall {
                                    index: Some(i),
                                    function: Some(FunctionCall {
                                        name: None,
                                        arguments: Some(delta.partial_json.unwrap_or_default()),
                                    }),
                                    ..ToolCall::default()
                                }]),
                                ..Delta::default()
                            },
                            None,
                        ));
                    }
                    (Some(Open::JsonAnswer), "input_json_delta") => {
                        if let Some(p) = delta.partial_json.filter(|p| !p.is_empty()) {
                            out.push(self.content(p));
                        }
                    }
                    // citations_delta and deltas of blocks the mapper does not translate.
                    _ => {}
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                // A finished thinking block goes out whole, with its signature, so a client can
                // replay it as `thinking_blocks` on the next turn.
                if let Some(Open::Thinking(block)) = self.blocks.remove(&index) {
                    out.push(self.chunk(
                        Delta {
                            thinking_blocks: Some(vec![thinking_block_value(&block)]),
                            ..Delta::default()
                        },
                        None,
                    ));
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.usage.merge_delta(&u);
                }
                let finish = if self.json_answer {
                    Some("stop".to_owned())
                } else {
                    finish_reason(delta.stop_reason.as_deref())
                };
                if finish.is_some() {
                    out.push(self.chunk(Delta::default(), finish));
                }
            }
            StreamEvent::MessageStop => {
                self.stopped = true;
                let mut c = self.chunk(Delta::default(), None);
                c.choices.clear();
                c.usage = Some(self.usage.to_openai());
                out.push(c);
            }
            StreamEvent::Ping => {}
            StreamEvent::Error { error } => return Err(stream_error(&error, provider)),
        }
        Ok(out)
    }

    /// The usage counted so far (for a stream cut short).
    pub fn usage(&self) -> crate::types::Usage {
        self.usage.to_openai()
    }
}

/// An `error` event met after the answer began: it cannot be retried, the client sees it.
pub fn stream_error(e: &wire::ErrorDetail, provider: &str) -> ApiError {
    let status = wire::status_for_error_type(&e.kind);
    let mut err = ApiError::upstream(
        status,
        e.kind.clone(),
        format!(
            "litellm.APIError: {provider}Exception - stream error {}: {}",
            e.kind, e.message
        ),
    );
    err.retryable = false;
    err
}

/// Parses one SSE event's data; `None` for event types this code does not know (skipped, as
/// the API's versioning policy asks).
pub fn parse_event(name: Option<&str>, data: &[u8]) -> Result<Option<StreamEvent>, ApiError> {
    let known = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    ];
    let data_trim = data.trim_ascii();
    if data_trim.is_empty() {
        return Ok(None);
    }
    let kind = match name {
        Some(n) => n.to_owned(),
        None => serde_json::from_slice::<Value>(data_trim)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default(),
    };
    if !known.contains(&kind.as_str()) {
        return Ok(None);
    }
    serde_json::from_slice(data_trim).map(Some).map_err(|e| {
        ApiError::upstream(
            502,
            "api_error",
            format!("anthropic sent an invalid {kind} event: {e}"),
        )
    })
}

#[cfg(test)]
mod tests;
