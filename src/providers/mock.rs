//! The built-in `mock` provider: answers locally, so the gateway works offline and tests need no
//! network. Also serves LiteLLM's per-request `mock_response` field.
//!
//! A `mock_response` naming a LiteLLM exception (`litellm.RateLimitError`, …) fails the call
//! with that error instead, which is how fallbacks and retries are tried out.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    CallOptions, ChatReply, ChunkStream, Provider, ReplyBody, StreamChunk, TextCompletion,
};
use crate::error::ApiError;
use crate::types::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Content, Delta, Message, Usage,
};

pub const DEFAULT_REPLY: &str = "This is a mock response from Tollgate.";

pub struct Mock {
    reply: Option<Value>,
}

impl Mock {
    pub fn new(reply: Option<Value>) -> Self {
        Mock { reply }
    }
}

/// Roughly four characters a token, the estimate used wherever no tokenizer is at hand.
pub fn estimate_tokens(text: &str) -> u64 {
    tokens_for_chars(text.chars().count())
}

/// [`estimate_tokens`] for a length already known (no text to build for it).
pub fn tokens_for_chars(n: usize) -> u64 {
    (n as u64).div_ceil(4).max(1)
}

fn prompt_tokens(req: &ChatRequest) -> u64 {
    req.messages
        .iter()
        .map(|m| {
            4 + m
                .content
                .as_ref()
                .map(|c| estimate_tokens(&c.text()))
                .unwrap_or(0)
        })
        .sum::<u64>()
        + 3
}

/// The mock answer for a request: the request's own `mock_response` wins over the deployment's.
fn reply_text(req: &ChatRequest, default: Option<&Value>) -> Result<String, ApiError> {
    let v = req.extra.get("mock_response").or(default);
    let text = match v {
        None | Some(Value::Null) => DEFAULT_REPLY.to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if let Some(err) = mock_error(&text) {
        return Err(err);
    }
    Ok(text)
}

fn mock_error(text: &str) -> Option<ApiError> {
    let (status, kind) = match text.strip_prefix("litellm.")? {
        s if s.starts_with("RateLimitError") => (429, "rate_limit_error"),
        s if s.starts_with("InternalServerError") => (500, "api_error"),
        s if s.starts_with("ServiceUnavailableError") => (503, "api_error"),
        s if s.starts_with("Timeout") => (408, "timeout"),
        s if s.starts_with("AuthenticationError") => (401, "authentication_error"),
        s if s.starts_with("BadRequestError") => (400, "invalid_request_error"),
        s if s.starts_with("ContextWindowExceededError") => (400, "context_length_exceeded"),
        _ => return None,
    };
    Some(ApiError::upstream(
        status,
        kind,
        format!("{text}: mock error"),
    ))
}

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        ..Default::default()
    }
}

fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[async_trait]
impl Provider for Mock {
    async fn chat(&self, req: ChatRequest, _: &CallOptions) -> Result<ChatReply, ApiError> {
        let text = reply_text(&req, self.reply.as_ref())?;
        let usage = usage(prompt_tokens(&req), estimate_tokens(&text));
        let resp = ChatResponse {
            id: new_id(),
            object: "chat.completion".into(),
            created: now(),
            model: req.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: Message {
                    role: "assistant".into(),
                    content: Some(Content::Text(text)),
                    ..Default::default()
                },
                finish_reason: Some("stop".into()),
                extra: Default::default(),
            }],
            usage: Some(usage.clone()),
            extra: Default::default(),
        };
        Ok(ChatReply {
            body: ReplyBody::Typed(Box::new(resp)),
            usage: Some(usage),
            upstream_headers: Vec::new(),
        })
    }

    async fn chat_stream(
        &self,
        req: ChatRequest,
        _: &CallOptions,
    ) -> Result<ChunkStream, ApiError> {
        let text = reply_text(&req, self.reply.as_ref())?;
        let id = new_id();
        let created = now();
        let model = req.model.clone();
        let usage = usage(prompt_tokens(&req), estimate_tokens(&text));
        let chunk = |delta: Delta, finish: Option<&str>| ChatChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created,
            model: model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
                extra: Default::default(),
            }],
            usage: None,
            extra: Default::default(),
        };
        let mut chunks = vec![chunk(
            Delta {
                role: Some("assistant".into()),
                content: Some(String::new()),
                ..Default::default()
            },
            None,
        )];
        for word in text.split_inclusive(' ') {
            chunks.push(chunk(
                Delta {
                    content: Some(word.to_owned()),
                    ..Default::default()
                },
                None,
            ));
        }
        chunks.push(chunk(Delta::default(), Some("stop")));
        let mut last = chunk(Delta::default(), None);
        last.choices.clear();
        last.usage = Some(usage);
        chunks.push(last);
        let items: Vec<Result<StreamChunk, ApiError>> = chunks
            .iter()
            .map(|c| Ok(StreamChunk::from_typed(c)))
            .collect();
        Ok(Box::pin(futures::stream::iter(items)))
    }

    async fn forward(
        &self,
        path: &'static str,
        body: Value,
    ) -> Result<(Bytes, Option<Usage>), ApiError> {
        let model = body.get("model").cloned().unwrap_or(Value::Null);
        let answer = match path {
            "moderations" => {
                // One result per string of an array; anything else (a string, multimodal
                // parts) is one input.
                let n = match body.get("input") {
                    Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.len().max(1),
                    _ => 1,
                };
                const CATEGORIES: [&str; 13] = [
                    "harassment",
                    "harassment/threatening",
                    "hate",
                    "hate/threatening",
                    "illicit",
                    "illicit/violent",
                    "self-harm",
                    "self-harm/instructions",
                    "self-harm/intent",
                    "sexual",
                    "sexual/minors",
                    "violence",
                    "violence/graphic",
                ];
                let categories: serde_json::Map<String, Value> = CATEGORIES
                    .iter()
                    .map(|c| ((*c).to_owned(), json!(false)))
                    .collect();
                let scores: serde_json::Map<String, Value> = CATEGORIES
                    .iter()
                    .map(|c| ((*c).to_owned(), json!(0.0)))
                    .collect();
                let result =
                    json!({"flagged": false, "categories": categories, "category_scores": scores});
                json!({"id": format!("modr-{}", uuid::Uuid::new_v4().simple()), "model": model,
                       "results": vec![result; n]})
            }
            "images/generations" => {
                // A 1×1 transparent PNG, so clients that decode the image get a real one.
                const PIXEL: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
                let n = body.get("n").and_then(Value::as_u64).unwrap_or(1);
                if !(1..=10).contains(&n) {
                    return Err(ApiError::bad_request("n must be between 1 and 10").with_param("n"));
                }
                let image =
                    if body.get("response_format").and_then(Value::as_str) == Some("b64_json") {
                        json!({"b64_json": PIXEL})
                    } else {
                        json!({"url": format!("data:image/png;base64,{PIXEL}")})
                    };
                let data: Vec<Value> = (0..n).map(|_| image.clone()).collect();
                json!({"created": now(), "data": data})
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "the mock provider does not serve /{path}"
                )));
            }
        };
        Ok((Bytes::from(answer.to_string()), None))
    }

    async fn text_completion(&self, body: Value) -> Result<TextCompletion, ApiError> {
        let text = match body.get("mock_response").or(self.reply.as_ref()) {
            None | Some(Value::Null) => DEFAULT_REPLY.to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if let Some(err) = mock_error(&text) {
            return Err(err);
        }
        let prompt = match body.get("prompt") {
            Some(Value::String(s)) => estimate_tokens(s),
            Some(Value::Array(a)) => a.iter().map(|p| estimate_tokens(&p.to_string())).sum(),
            _ => 0,
        };
        let usage = usage(prompt, estimate_tokens(&text));
        let id = format!("cmpl-{}", uuid::Uuid::new_v4().simple());
        let (created, model) = (now(), body.get("model").cloned().unwrap_or(Value::Null));
        let chunk = |text: &str, finish: Value| {
            json!({"id": id, "object": "text_completion", "created": created, "model": model,
                   "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]})
        };
        if body.get("stream").and_then(Value::as_bool) != Some(true) {
            let mut answer = chunk(&text, json!("stop"));
            answer["usage"] = json!(usage);
            return Ok(TextCompletion::Json {
                bytes: Bytes::from(answer.to_string()),
                id: Some(id),
                usage: Some(usage),
            });
        }
        let mut events: Vec<Value> = text
            .split_inclusive(' ')
            .map(|word| chunk(word, Value::Null))
            .collect();
        events.push(chunk("", json!("stop")));
        let mut last = chunk("", Value::Null);
        last["choices"] = json!([]);
        last["usage"] = json!(usage);
        events.push(last);
        let items: Vec<Result<StreamChunk, ApiError>> = events
            .iter()
            .map(|v| {
                let usage: Option<Usage> = v.get("usage").and_then(|u| Usage::deserialize(u).ok());
                Ok(StreamChunk {
                    json: Bytes::from(v.to_string()),
                    usage_only: usage.is_some(),
                    usage,
                })
            })
            .collect();
        Ok(TextCompletion::Stream(Box::pin(futures::stream::iter(
            items,
        ))))
    }

    async fn embeddings(&self, body: Value) -> Result<(Bytes, Option<Usage>), ApiError> {
        let inputs: Vec<String> = match body.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().map(|v| v.to_string()).collect(),
            _ => return Err(ApiError::bad_request("input is required").with_param("input")),
        };
        let tokens: u64 = inputs.iter().map(|s| estimate_tokens(s)).sum();
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // A deterministic small vector so tests can compare results.
                let seed = s
                    .bytes()
                    .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
                let v: Vec<f64> = (0..8)
                    .map(|k| ((seed.wrapping_mul(k + 1) % 2000) as f64 / 1000.0) - 1.0)
                    .collect();
                json!({"object":"embedding","index":i,"embedding":v})
            })
            .collect();
        let u = usage(tokens, 0);
        let out = json!({"object":"list","data":data,"model":body.get("model").cloned().unwrap_or(Value::Null),"usage":{"prompt_tokens":tokens,"total_tokens":tokens}});
        Ok((Bytes::from(out.to_string()), Some(u)))
    }
}
