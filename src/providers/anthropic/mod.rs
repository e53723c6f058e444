//! Anthropic Messages API adapter: Claude behind the OpenAI API (`chat`, `chat_stream`, through
//! `convert` and `stream`), and the native fast path (`anthropic_messages`) that forwards an
//! Anthropic body untouched and hands back the upstream's bytes.

mod convert;
mod stream;
#[cfg(test)]
mod testdata;
mod wire;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use super::http::{self, Client};
use super::openai_compat::async_stream_chunks;
use super::{
    CallOptions, ChatReply, ChunkStream, NativeReply, NativeStream, Provider, ReplyBody,
    StreamChunk,
};
use crate::config::{Deployment, Env};
use crate::error::ApiError;
use crate::types::ChatRequest;
use crate::types::sse::SseDecoder;
pub use convert::{DEFAULT_MAX_TOKENS, JSON_TOOL, Options, from_wire, to_wire};
pub use stream::ChunkMapper;

const PROVIDER: &str = "anthropic";

pub struct Anthropic {
    client: Client,
    url: String,
    /// `url` parsed once; `None` if it does not parse (reported on each call).
    uri: Option<hyper::Uri>,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    stream_timeout: Duration,
    default_max_tokens: u64,
    drop_params: bool,
}

impl Anthropic {
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
        let timeout = dep.timeout.unwrap_or(Duration::from_secs(600));
        let num = |k: &str| {
            dep.litellm_params
                .get(k)
                .or_else(|| dep.model_info.get(k))
                .and_then(Value::as_u64)
        };
        Anthropic {
            client,
            uri: http::parse_uri(&wire::messages_url(&base)).ok(),
            url: wire::messages_url(&base),
            api_key,
            headers: dep.extra_headers.clone(),
            timeout,
            stream_timeout: dep.stream_timeout.unwrap_or(timeout),
            // The hook for the price table's max_output_tokens: the deployment's own setting.
            default_max_tokens: num("max_tokens")
                .or_else(|| num("max_output_tokens"))
                .unwrap_or(DEFAULT_MAX_TOKENS),
            drop_params: dep.litellm_params.get("drop_params") == Some(&Value::Bool(true)),
        }
    }

    fn options(&self, opts: &CallOptions) -> Options {
        Options {
            default_max_tokens: self.default_max_tokens,
            drop_params: self.drop_params || opts.drop_params,
        }
    }

    fn request(&self, body: Vec<u8>, opts: &CallOptions) -> http::Request {
        self.request_with(body, opts, &[])
    }

    /// The Messages call; `extra` are a chat request's own `extra_headers`.
    fn request_with(
        &self,
        body: Vec<u8>,
        opts: &CallOptions,
        extra: &[(String, String)],
    ) -> http::Request {
        let mut rb = match &self.uri {
            Some(uri) => http::Request::post_json(uri.clone(), body),
            None => http::Request::post_json_to(&self.url, body),
        };
        if let Some(key) = &self.api_key {
            rb = rb.header("x-api-key", key);
        }
        let forwarded = |name: &str| {
            opts.forward_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        for name in wire::FORWARDED_HEADERS {
            if let Some(v) = forwarded(name) {
                rb = rb.header(name, v);
            } else if *name == "anthropic-version" {
                rb = rb.header(name, wire::API_VERSION);
            }
        }
        for (k, v) in self.headers.iter().chain(extra) {
            rb = rb.header(k, v);
        }
        rb
    }

    async fn send(&self, rb: http::Request, timeout: Duration) -> Result<http::Response, ApiError> {
        http::send(&self.client, rb, timeout, PROVIDER).await
    }

    async fn read_body(&self, resp: http::Response) -> Result<Bytes, ApiError> {
        http::read_body(resp, self.timeout, PROVIDER).await
    }
}

/// Headers a client may not set through `extra_headers`: the gateway owns them.
const RESERVED_HEADERS: &[&str] = &["x-api-key", "authorization", "host", "content-length"];

/// Takes a chat request's `extra_headers` (LiteLLM's way to send e.g. `anthropic-beta` from
/// the OpenAI API) out of the body.
fn take_extra_headers(req: &mut ChatRequest) -> Result<Vec<(String, String)>, ApiError> {
    let Some(v) = req.extra.remove("extra_headers") else {
        return Ok(Vec::new());
    };
    let bad = || {
        ApiError::bad_request("extra_headers must be an object of string header values")
            .with_param("extra_headers")
    };
    let obj = v.as_object().ok_or_else(bad)?;
    let mut out = Vec::new();
    for (k, v) in obj {
        let v = v.as_str().ok_or_else(bad)?;
        if RESERVED_HEADERS.iter().any(|r| k.eq_ignore_ascii_case(r)) {
            return Err(ApiError::bad_request(format!(
                "extra_headers may not set {k}: the gateway sends the deployment's credentials"
            ))
            .with_param("extra_headers"));
        }
        out.push((k.clone(), v.to_owned()));
    }
    Ok(out)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::internal(format!("encoding request: {e}")))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[async_trait]
impl Provider for Anthropic {
    async fn chat(&self, mut req: ChatRequest, opts: &CallOptions) -> Result<ChatReply, ApiError> {
        let extra = take_extra_headers(&mut req)?;
        let w = to_wire(&req, &self.options(opts))?;
        let resp = self
            .send(
                self.request_with(encode(&w.body)?, opts, &extra),
                self.timeout,
            )
            .await?;
        let headers = provider_headers(resp.headers());
        let body = self.read_body(resp).await?;
        let msg: wire::MessagesResponse = serde_json::from_slice(&body).map_err(|e| {
            ApiError::upstream(
                502,
                "api_error",
                format!("anthropic returned a body that is not a message: {e}"),
            )
        })?;
        let typed = from_wire(msg, w.json_tool, now());
        Ok(ChatReply {
            usage: typed.usage.clone(),
            body: ReplyBody::Typed(Box::new(typed)),
            upstream_headers: headers,
        })
    }

    async fn chat_stream(
        &self,
        mut req: ChatRequest,
        opts: &CallOptions,
    ) -> Result<ChunkStream, ApiError> {
        let extra = take_extra_headers(&mut req)?;
        let mut w = to_wire(&req, &self.options(opts))?;
        w.body.stream = Some(true);
        let resp = self
            .send(
                self.request_with(encode(&w.body)?, opts, &extra),
                self.stream_timeout,
            )
            .await?;
        let mut mapper = ChunkMapper::new(&req.model, w.json_tool, now());
        let mut bytes = resp.bytes_stream();
        Ok(async_stream_chunks(move |tx| async move {
            let mut decoder = SseDecoder::new();
            let fail = |e: ApiError| Err::<StreamChunk, ApiError>(e);
            loop {
                let Some(piece) = bytes.next().await else {
                    break;
                };
                let events = match piece {
                    Ok(p) => match decoder.push_bytes(p) {
                        Ok(evs) => evs,
                        Err(_) => {
                            let _ = tx
                                .send(fail(ApiError::upstream(
                                    502,
                                    "api_error",
                                    "anthropic sent a stream event larger than 16 MiB",
                                )))
                                .await;
                            return;
                        }
                    },
                    Err(e) => {
                        let _ = tx
                            .send(fail(http::transport_error(e, PROVIDER, Duration::ZERO)))
                            .await;
                        return;
                    }
                };
                for ev in events {
                    let mapped =
                        stream::parse_event(ev.event.as_deref(), &ev.data).and_then(|e| match e {
                            Some(e) => mapper.on_event(e, PROVIDER),
                            None => Ok(Vec::new()),
                        });
                    match mapped {
                        Ok(chunks) => {
                            for c in chunks {
                                if tx.send(Ok(StreamChunk::from_typed(&c))).await.is_err() {
                                    return;
                                }
                            }
                            if mapper.finished() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            }
            if !mapper.finished() {
                let _ = tx
                    .send(fail(ApiError::upstream(
                        502,
                        "api_error",
                        "litellm.APIError: anthropicException - the stream ended before message_stop",
                    )))
                    .await;
            }
        }))
    }

    async fn anthropic_messages(
        &self,
        body: Value,
        stream: bool,
        opts: &CallOptions,
    ) -> Option<Result<NativeReply, ApiError>> {
        Some(self.native(body, stream, opts).await)
    }
}

impl Anthropic {
    /// The fast path: the client's body as it is (model already set by the router).
    async fn native(
        &self,
        body: Value,
        stream: bool,
        opts: &CallOptions,
    ) -> Result<NativeReply, ApiError> {
        let timeout = if stream {
            self.stream_timeout
        } else {
            self.timeout
        };
        let resp = self
            .send(self.request(encode(&body)?, opts), timeout)
            .await?;
        let status = resp.status().as_u16();
        if stream {
            let bytes = resp
                .bytes_stream()
                .map(|r| r.map_err(|e| http::transport_error(e, PROVIDER, Duration::ZERO)));
            return Ok(NativeReply::Stream(NativeStream {
                status,
                bytes: Box::pin(bytes),
            }));
        }
        let body = self.read_body(resp).await?;
        #[derive(serde::Deserialize)]
        struct Peek {
            #[serde(default)]
            usage: Option<wire::Usage>,
        }
        let usage = serde_json::from_slice::<Peek>(&body)
            .ok()
            .and_then(|p| p.usage)
            .map(|u| u.to_openai());
        Ok(NativeReply::Json {
            status,
            body,
            usage,
        })
    }
}

/// Anthropic response headers LiteLLM echoes as `llm_provider-<name>`.
fn provider_headers(h: &hyper::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("anthropic-ratelimit") || k == "request-id" || k == "retry-after"
        })
        .filter_map(|(k, v)| Some((format!("llm_provider-{k}"), v.to_str().ok()?.to_owned())))
        .collect()
}
