//! Provider adapters: each turns the canonical request into its provider's HTTP call and the
//! answer back into canonical form.
//!
//! **Architecture Invariant:** provider modules never see server types (axum, headers of the
//! client request); a provider's wire types never leave its module. Handlers only know the
//! [`Provider`] trait.

pub mod anthropic;
pub mod http;
pub mod mock;
pub mod openai_compat;
mod pool;
pub mod registry;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use serde_json::Value;

use crate::config::{Deployment, Env};
use crate::error::ApiError;
use crate::types::{ChatChunk, ChatRequest, ChatResponse, Usage};
use registry::Family;

/// A non-streaming answer.
#[derive(Debug, Clone)]
pub struct ChatReply {
    pub body: ReplyBody,
    pub usage: Option<Usage>,
    /// Response headers worth echoing to the client (`llm_provider-*`).
    pub upstream_headers: Vec<(String, String)>,
}

/// The answer's body: the upstream's own OpenAI-shaped bytes (pass-through), or a translated one.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// `id` is the answer's own, read with its usage so the handler need not parse it again.
    Raw {
        bytes: Bytes,
        id: Option<String>,
    },
    Typed(Box<ChatResponse>),
}

impl ChatReply {
    /// The canonical response, parsing pass-through bytes when needed.
    pub fn into_typed(self) -> Result<ChatResponse, ApiError> {
        match self.body {
            ReplyBody::Typed(r) => Ok(*r),
            ReplyBody::Raw { bytes: b, .. } => serde_json::from_slice(&b).map_err(|e| {
                ApiError::upstream(
                    502,
                    "api_error",
                    format!("upstream sent an invalid chat completion: {e}"),
                )
            }),
        }
    }

    /// The OpenAI JSON body for the client.
    pub fn to_bytes(&self) -> Bytes {
        match &self.body {
            ReplyBody::Raw { bytes, .. } => bytes.clone(),
            ReplyBody::Typed(r) => Bytes::from(serde_json::to_vec(r).unwrap_or_default()),
        }
    }

    /// The answer's `id` (`chatcmpl-…`), if it has one.
    pub fn id(&self) -> Option<&str> {
        match &self.body {
            ReplyBody::Raw { id, .. } => id.as_deref(),
            ReplyBody::Typed(r) => Some(r.id.as_str()).filter(|s| !s.is_empty()),
        }
    }
}

/// One streamed chunk: its `chat.completion.chunk` JSON, and the usage it carries if any.
#[derive(Debug, Clone)]
pub struct StreamChunk {
    pub json: Bytes,
    pub usage: Option<Usage>,
    /// A chunk that only carries usage (`choices: []`); dropped when the client did not ask.
    pub usage_only: bool,
}

impl StreamChunk {
    pub fn from_typed(chunk: &ChatChunk) -> Self {
        StreamChunk {
            json: Bytes::from(serde_json::to_vec(chunk).unwrap_or_default()),
            usage: chunk.usage.clone(),
            usage_only: chunk.choices.is_empty() && chunk.usage.is_some(),
        }
    }

    pub fn typed(&self) -> Result<ChatChunk, ApiError> {
        serde_json::from_slice(&self.json).map_err(|e| {
            ApiError::upstream(
                502,
                "api_error",
                format!("upstream sent an invalid stream chunk: {e}"),
            )
        })
    }
}

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<StreamChunk, ApiError>> + Send>>;

/// An Anthropic Messages answer forwarded untouched (the Anthropic → Anthropic fast path).
pub enum NativeReply {
    Json {
        status: u16,
        body: Bytes,
        usage: Option<Usage>,
    },
    /// Raw SSE bytes; usage is reported through the stream's `usage` hook.
    Stream(NativeStream),
}

pub struct NativeStream {
    pub status: u16,
    pub bytes: Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>,
}

/// The answer to a legacy text completion: the upstream's JSON with its id and usage, or
/// its event stream.
pub enum TextCompletion {
    Json {
        bytes: Bytes,
        id: Option<String>,
        usage: Option<Usage>,
    },
    Stream(ChunkStream),
}

/// What the handler passes along besides the request body.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Client headers to forward (`anthropic-beta`, `anthropic-version` on native paths).
    pub forward_headers: Vec<(String, String)>,
    /// Drop request parameters the provider cannot take instead of refusing them
    /// (`litellm_settings.drop_params`).
    pub drop_params: bool,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// A non-streaming chat completion.
    async fn chat(&self, req: ChatRequest, opts: &CallOptions) -> Result<ChatReply, ApiError>;

    /// A streaming chat completion. Implementations ask the upstream for usage in the stream.
    async fn chat_stream(
        &self,
        req: ChatRequest,
        opts: &CallOptions,
    ) -> Result<ChunkStream, ApiError>;

    /// `POST /embeddings` with the OpenAI body; returns the OpenAI response body and its usage.
    async fn embeddings(&self, body: Value) -> Result<(Bytes, Option<Usage>), ApiError> {
        let _ = body;
        Err(ApiError::bad_request(
            "this provider does not serve embeddings through Tollgate",
        ))
    }

    /// Another OpenAI JSON route (`moderations`, `images/generations`) forwarded as it is;
    /// returns the answer and its usage, if any. Only OpenAI-compatible upstreams (and the mock)
    /// serve these.
    async fn forward(
        &self,
        path: &'static str,
        body: Value,
    ) -> Result<(Bytes, Option<Usage>), ApiError> {
        let _ = body;
        Err(ApiError::bad_request(format!(
            "this provider does not serve /{path} through Tollgate"
        )))
    }

    /// `POST /completions`, the legacy text-completion API, with the OpenAI body. Only
    /// OpenAI-compatible upstreams (and the mock) serve it: it is how base models and
    /// fill-in-the-middle are reached, so it is forwarded, not rewritten into a chat.
    async fn text_completion(&self, body: Value) -> Result<TextCompletion, ApiError> {
        let _ = body;
        Err(ApiError::bad_request(
            "this provider does not serve /completions through Tollgate; use /chat/completions",
        ))
    }

    /// The Anthropic Messages body forwarded as-is, for providers that speak it natively.
    async fn anthropic_messages(
        &self,
        body: Value,
        stream: bool,
        opts: &CallOptions,
    ) -> Option<Result<NativeReply, ApiError>> {
        let _ = (body, stream, opts);
        None
    }

    /// A cheap request that proves the deployment answers (`GET /health`).
    async fn health_check(&self, model: &str) -> Result<(), ApiError> {
        let req = ChatRequest {
            model: model.to_owned(),
            messages: vec![crate::types::Message {
                role: "user".into(),
                content: Some(crate::types::Content::Text("ping".into())),
                ..Default::default()
            }]
            .into(),
            max_tokens: Some(1),
            ..Default::default()
        };
        self.chat(req, &CallOptions::default()).await.map(|_| ())
    }
}

/// Builds the adapter for one deployment.
pub fn build(dep: &Deployment, client: &http::Client, env: &Env) -> Arc<dyn Provider> {
    match dep.provider.family {
        Family::OpenAiCompat | Family::Azure => {
            Arc::new(openai_compat::OpenAiCompat::new(dep, client.clone(), env))
        }
        Family::Anthropic => Arc::new(anthropic::Anthropic::new(dep, client.clone(), env)),
        Family::Mock => Arc::new(mock::Mock::new(dep.mock_response.clone())),
        Family::Unsupported => Arc::new(Unsupported(dep.provider.name)),
    }
}

struct Unsupported(&'static str);

#[async_trait]
impl Provider for Unsupported {
    async fn chat(&self, _: ChatRequest, _: &CallOptions) -> Result<ChatReply, ApiError> {
        Err(self.error())
    }
    async fn chat_stream(&self, _: ChatRequest, _: &CallOptions) -> Result<ChunkStream, ApiError> {
        Err(self.error())
    }
}

impl Unsupported {
    fn error(&self) -> ApiError {
        ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "invalid_request_error",
            format!("provider \"{}\" is not supported by Tollgate yet", self.0),
        )
    }
}
