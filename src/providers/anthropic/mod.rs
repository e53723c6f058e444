//! Anthropic Messages API adapter (placeholder until the translator lands).

use async_trait::async_trait;

use super::http::Client;
use super::{CallOptions, ChatReply, ChunkStream, Provider};
use crate::config::{Deployment, Env};
use crate::error::ApiError;
use crate::types::ChatRequest;

pub struct Anthropic;

impl Anthropic {
    pub fn new(_dep: &Deployment, _client: Client, _env: &Env) -> Self {
        Anthropic
    }
}

#[async_trait]
impl Provider for Anthropic {
    async fn chat(&self, _: ChatRequest, _: &CallOptions) -> Result<ChatReply, ApiError> {
        Err(ApiError::internal("anthropic adapter not built yet"))
    }
    async fn chat_stream(&self, _: ChatRequest, _: &CallOptions) -> Result<ChunkStream, ApiError> {
        Err(ApiError::internal("anthropic adapter not built yet"))
    }
}
