//! Routing of the Anthropic fast path: an Anthropic Messages body sent, untouched but for its
//! `model`, to a deployment that speaks the Messages API natively.
//!
//! A group takes this path only when every deployment in it is Anthropic; otherwise the
//! inbound route translates to the canonical request and uses [`Router::chat`]. Retries within
//! the group work as for chat; fallbacks to other groups are not tried on this path (their
//! deployments may not speak the format).

use serde_json::Value;

use super::{Attempt, Router};
use crate::error::ApiError;
use crate::providers::registry::{self, Family};
use crate::providers::{CallOptions, NativeReply};

impl Router {
    /// Whether every deployment of `group` serves `requested` through the Anthropic API.
    pub fn is_native_anthropic(&self, group: &str, requested: &str) -> bool {
        let Some(deps) = self.groups.get(group) else {
            return false;
        };
        !deps.is_empty()
            && deps.iter().all(|d| {
                if d.config.litellm_model == "*" {
                    let spec = registry::split_model(requested)
                        .map(|(s, _)| s)
                        .unwrap_or_else(|_| registry::infer_bare(requested));
                    spec.family == Family::Anthropic
                } else {
                    d.config.provider.family == Family::Anthropic
                }
            })
    }

    /// Sends an Anthropic Messages body to a deployment of `group`, with retries.
    pub async fn anthropic_messages(
        &self,
        group: &str,
        requested: &str,
        body: Value,
        stream: bool,
        opts: &CallOptions,
    ) -> Result<(NativeReply, Attempt), (ApiError, Option<Attempt>)> {
        let mut retries = 0;
        self.with_retries(group, requested, 0, &mut retries, |dep, provider, model| {
            let mut call = body.clone();
            call["model"] = Value::String(model);
            let id = dep.config.id.clone();
            async move {
                provider
                    .anthropic_messages(call, stream, opts)
                    .await
                    .unwrap_or_else(|| {
                        Err(ApiError::internal(format!(
                            "deployment {id} does not speak the Anthropic Messages API"
                        )))
                    })
            }
        })
        .await
    }
}
