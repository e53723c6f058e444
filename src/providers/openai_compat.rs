//! OpenAI and every OpenAI-compatible provider (Groq, DeepSeek, OpenRouter, vLLM, Azure …).
//!
//! Requests are the canonical body with the deployment's model name; answers pass through as
//! bytes, read only for usage (the fast path). Streams are re-framed chunk by chunk, and the
//! usage chunk the gateway asked for is marked so the handler can drop it when the client did
//! not ask.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::http::{self, Client};
use super::registry::Family;
use super::{
    CallOptions, ChatReply, ChunkStream, Provider, ReplyBody, StreamChunk, TextCompletion,
};
use crate::config::{Deployment, Env};
use crate::error::ApiError;
use crate::types::sse::SseDecoder;
use crate::types::{ChatRequest, StreamOptions, Usage, UsagePeek};

pub struct OpenAiCompat {
    client: Client,
    provider: &'static str,
    azure: bool,
    base: String,
    api_key: Option<String>,
    api_version: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    stream_timeout: Duration,
    /// The chat URL parsed once (not Azure, whose URL names the model): saves a URL parse per call.
    chat_url: Option<hyper::Uri>,
    /// `chat_url`'s `Host` header for plain http, built once (hyper-util formats it on every
    /// call otherwise).
    chat_host: Option<hyper::header::HeaderValue>,
    /// `Authorization: Bearer …` (or Azure's `api-key`), built once.
    auth: Option<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

impl OpenAiCompat {
    pub fn new(dep: &Deployment, client: Client, env: &Env) -> Self {
        let spec = dep.provider;
        let base = dep
            .api_base
            .clone()
            .or_else(|| spec.base_env.and_then(|v| env.get(v)))
            .unwrap_or_else(|| spec.default_base.to_owned());
        let api_key = dep
            .api_key
            .as_ref()
            .map(|s| s.expose().to_owned())
            .or_else(|| spec.key_env.iter().find_map(|k| env.get(k)));
        let mut headers = dep.extra_headers.clone();
        if let Some(org) = &dep.organization {
            headers.push(("OpenAI-Organization".into(), org.clone()));
        }
        let timeout = dep.timeout.unwrap_or(Duration::from_secs(600));
        let azure = spec.family == Family::Azure;
        let chat_url = (!azure)
            .then(|| http::parse_uri(&http::join(&base, "chat/completions")).ok())
            .flatten();
        let chat_host = chat_url.as_ref().and_then(http::host_header);
        let auth = api_key.as_deref().and_then(|key| {
            if azure {
                Some((
                    hyper::header::HeaderName::from_static("api-key"),
                    http::secret_header(key)?,
                ))
            } else {
                Some((
                    hyper::header::AUTHORIZATION,
                    http::secret_header(&format!("Bearer {key}"))?,
                ))
            }
        });
        OpenAiCompat {
            client,
            provider: spec.name,
            azure,
            base,
            api_key,
            api_version: dep
                .api_version
                .clone()
                .or_else(|| env.get("AZURE_API_VERSION")),
            headers,
            timeout,
            stream_timeout: dep.stream_timeout.unwrap_or(timeout),
            chat_url,
            chat_host,
            auth,
        }
    }

    fn url(&self, model: &str, path: &str) -> String {
        if self.azure {
            let version = self.api_version.as_deref().unwrap_or("2024-10-21");
            format!(
                "{}?api-version={version}",
                http::join(&self.base, &format!("openai/deployments/{model}/{path}"))
            )
        } else {
            http::join(&self.base, path)
        }
    }

    fn request(&self, model: &str, path: &str, body: Vec<u8>) -> http::Request {
        let mut rb = match self
            .chat_url
            .as_ref()
            .filter(|_| path == "chat/completions")
        {
            Some(url) => {
                http::Request::post_json(url.clone(), body).default_host(self.chat_host.clone())
            }
            None => http::Request::post_json_to(&self.url(model, path), body),
        };
        if let Some((name, value)) = &self.auth {
            rb = rb.header_value(name.clone(), value.clone());
        } else if let Some(key) = &self.api_key {
            // A key that is not a valid header value: reported when the call is sent.
            rb = rb.header(
                if self.azure {
                    "api-key"
                } else {
                    "authorization"
                },
                key,
            );
        }
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        rb
    }

    async fn send(&self, rb: http::Request, timeout: Duration) -> Result<http::Response, ApiError> {
        http::send(&self.client, rb, timeout, self.provider).await
    }

    /// An upstream event stream as chunks. Decoded inline as the client's body pulls it (no
    /// task, no channel): dropping the stream (client gone) drops the upstream response.
    fn events(&self, resp: http::Response) -> ChunkStream {
        let state = Upstream {
            bytes: resp.bytes_stream(),
            decoder: SseDecoder::new(),
            ready: VecDeque::new(),
            done: false,
            provider: self.provider,
        };
        Box::pin(futures::stream::unfold(state, Upstream::next))
    }

    fn body(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::with_capacity(req.json_len_hint());
        serde_json::to_writer(&mut out, req)
            .map_err(|e| ApiError::internal(format!("encoding request: {e}")))?;
        Ok(out)
    }
}

/// The fields of a stream chunk needed to find its usage.
#[derive(Deserialize)]
struct ChunkPeek {
    #[serde(default)]
    choices: Vec<IgnoredAny>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

#[async_trait]
impl Provider for OpenAiCompat {
    async fn chat(&self, mut req: ChatRequest, _: &CallOptions) -> Result<ChatReply, ApiError> {
        req.stream = None;
        req.stream_options = None;
        let rb = self.request(&req.model, "chat/completions", self.body(&req)?);
        let resp = self.send(rb, self.timeout).await?;
        let headers = provider_headers(resp.headers());
        let body = http::read_body(resp, self.timeout, self.provider).await?;
        let peek: UsagePeek = serde_json::from_slice(&body).map_err(|e| {
            ApiError::upstream(
                502,
                "api_error",
                format!(
                    "{} returned a body that is not a chat completion: {e}",
                    self.provider
                ),
            )
        })?;
        Ok(ChatReply {
            body: ReplyBody::Raw {
                bytes: body,
                id: peek.id,
            },
            usage: peek.usage,
            upstream_headers: headers,
        })
    }

    async fn chat_stream(
        &self,
        mut req: ChatRequest,
        _: &CallOptions,
    ) -> Result<ChunkStream, ApiError> {
        req.stream = Some(true);
        // Always ask for usage: cost needs it. The handler drops the chunk if the client did not ask.
        let opts = req
            .stream_options
            .get_or_insert_with(StreamOptions::default);
        opts.include_usage = Some(true);
        let rb = self.request(&req.model, "chat/completions", self.body(&req)?);
        let resp = self.send(rb, self.stream_timeout).await?;
        Ok(self.events(resp))
    }

    async fn text_completion(&self, mut body: Value) -> Result<TextCompletion, ApiError> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        if stream && let Some(obj) = body.as_object_mut() {
            // As for chat: cost needs usage; the handler drops the chunk if the client did not ask.
            let opts = obj
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Default::default()));
            if !opts.is_object() {
                // `null` or junk: replaced, or the upstream would not send usage.
                *opts = Value::Object(Default::default());
            }
            if let Some(o) = opts.as_object_mut() {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("encoding request: {e}")))?;
        let rb = self.request(&model, "completions", bytes);
        if stream {
            let resp = self.send(rb, self.stream_timeout).await?;
            return Ok(TextCompletion::Stream(self.events(resp)));
        }
        let resp = self.send(rb, self.timeout).await?;
        let bytes = http::read_body(resp, self.timeout, self.provider).await?;
        let peek: UsagePeek = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::upstream(
                502,
                "api_error",
                format!(
                    "{} returned a body that is not a text completion: {e}",
                    self.provider
                ),
            )
        })?;
        Ok(TextCompletion::Json {
            bytes,
            id: peek.id,
            usage: peek.usage,
        })
    }

    async fn embeddings(&self, body: Value) -> Result<(Bytes, Option<Usage>), ApiError> {
        self.forward("embeddings", body).await
    }

    async fn forward(
        &self,
        path: &'static str,
        body: Value,
    ) -> Result<(Bytes, Option<Usage>), ApiError> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("encoding request: {e}")))?;
        let resp = self
            .send(self.request(&model, path, bytes), self.timeout)
            .await?;
        let body = http::read_body(resp, self.timeout, self.provider).await?;
        let peek: UsagePeek = serde_json::from_slice(&body).unwrap_or_default();
        Ok((body, peek.usage))
    }
}

/// An upstream SSE body being decoded into chunks.
struct Upstream {
    bytes: http::ByteStream,
    decoder: SseDecoder,
    /// Decoded items not yet handed on.
    ready: VecDeque<Result<StreamChunk, ApiError>>,
    /// `[DONE]`, the end of the body or an error was seen: hand on what is ready, then stop.
    done: bool,
    provider: &'static str,
}

impl Upstream {
    async fn next(mut self) -> Option<(Result<StreamChunk, ApiError>, Upstream)> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            let provider = self.provider;
            match self.bytes.next().await {
                Some(Ok(piece)) => match self.decoder.push_bytes(piece) {
                    Ok(events) => {
                        for ev in events {
                            match map_event(ev.data, provider) {
                                Mapped::Done => {
                                    self.done = true;
                                    break;
                                }
                                Mapped::Skip => {}
                                Mapped::Item(item) => self.ready.push_back(item),
                            }
                        }
                    }
                    Err(_) => {
                        self.done = true;
                        self.ready.push_back(Err(ApiError::upstream(
                            502,
                            "api_error",
                            format!("{provider} sent a stream event larger than 16 MiB"),
                        )));
                    }
                },
                Some(Err(e)) => {
                    self.done = true;
                    self.ready
                        .push_back(Err(http::transport_error(e, provider, Duration::ZERO)));
                }
                None => {
                    self.done = true;
                    if let Some(ev) = self.decoder.finish()
                        && let Mapped::Item(item) = map_event(ev.data, provider)
                    {
                        self.ready.push_back(item);
                    }
                }
            }
        }
    }
}

enum Mapped {
    Done,
    Skip,
    Item(Result<StreamChunk, ApiError>),
}

fn map_event(data: Bytes, provider: &str) -> Mapped {
    let trimmed = data.trim_ascii();
    if trimmed.is_empty() {
        return Mapped::Skip;
    }
    if trimmed == b"[DONE]" {
        return Mapped::Done;
    }
    // Only chunks that mention usage or error need parsing; content chunks pass untouched.
    // The searchers are built once: building one costs more than searching a small chunk.
    static USAGE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));
    static ERROR: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"error\""));
    let (usage, usage_only) = if USAGE.find(&data).is_some() || ERROR.find(&data).is_some() {
        match serde_json::from_slice::<ChunkPeek>(&data) {
            Ok(peek) => {
                if let Some(err) = peek.error {
                    let message = err
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| err.to_string());
                    let mut e = ApiError::upstream(
                        500,
                        "api_error",
                        format!("litellm.APIError: {provider} stream error - {message}"),
                    );
                    e.retryable = false;
                    return Mapped::Item(Err(e));
                }
                let only = peek.choices.is_empty() && peek.usage.is_some();
                (peek.usage, only)
            }
            Err(e) => {
                return Mapped::Item(Err(ApiError::upstream(
                    502,
                    "api_error",
                    format!("{provider} sent an invalid stream chunk: {e}"),
                )));
            }
        }
    } else {
        (None, false)
    };
    Mapped::Item(Ok(StreamChunk {
        json: data,
        usage,
        usage_only,
    }))
}

/// Headers the upstream sent that LiteLLM echoes as `llm_provider-<name>`.
fn provider_headers(h: &hyper::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("x-ratelimit") || k.starts_with("openai-") || k == "x-request-id"
        })
        .filter_map(|(k, v)| Some((format!("llm_provider-{k}"), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Runs a producer task that sends items into a small bounded channel and returns the receiver
/// as a stream. Dropping the stream (client gone) makes the producer's sends fail, which ends
/// it and drops the upstream connection.
pub fn async_stream_chunks<F, Fut>(producer: F) -> ChunkStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<StreamChunk, ApiError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(producer(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_chunks_pass_without_parsing_and_usage_is_found() {
        let Mapped::Item(Ok(c)) = map_event(
            Bytes::from_static(br#"{"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}]}"#),
            "openai",
        ) else {
            panic!()
        };
        assert!(c.usage.is_none() && !c.usage_only);
        let Mapped::Item(Ok(c)) = map_event(
            Bytes::from_static(br#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#),
            "openai",
        ) else {
            panic!()
        };
        assert!(c.usage_only);
        assert_eq!(c.usage.unwrap().total_tokens, 5);
        assert!(matches!(
            map_event(Bytes::from_static(b"[DONE]"), "openai"),
            Mapped::Done
        ));
    }

    #[test]
    fn error_event_becomes_an_error() {
        assert!(matches!(
            map_event(
                Bytes::from_static(br#"{"error":{"message":"boom"}}"#),
                "openai"
            ),
            Mapped::Item(Err(_))
        ));
    }
}
