//! Routing of the Anthropic fast path: an Anthropic Messages body sent, untouched but for its
//! `model`, to a deployment that speaks the Messages API natively.
//!
//! A group takes this path only when every deployment in it is Anthropic; otherwise the
//! inbound route translates to the canonical request and uses [`Router::chat`]. Retries within
//! the group work as for chat; fallbacks to other groups are not tried on this path (their
//! deployments may not speak the format).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::{Attempt, DeploymentHandle, Router};
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
        let deployments = self
            .groups
            .get(group)
            .ok_or_else(|| (self.unknown_model(requested), None))?;
        let retries = deployments
            .iter()
            .filter_map(|d| d.config.num_retries)
            .max()
            .unwrap_or(self.settings.num_retries);
        let mut last: Option<Arc<DeploymentHandle>> = None;
        let mut attempt_no = 0;
        loop {
            let Some(dep) = self.pick(deployments, last.as_ref()) else {
                return Err((
                    ApiError::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        "rate_limit_error",
                        format!("No deployments available for selected model={requested}. All deployments are cooling down or at their rpm limit; try again shortly."),
                    )
                    .with_header("retry-after", self.settings.cooldown_time.as_secs().max(1)),
                    None,
                ));
            };
            let (provider, model, provider_name) = dep.resolve(requested, &self.client, &self.env);
            let attempt = Attempt {
                deployment_id: dep.config.id.clone(),
                model_group: group.to_owned(),
                model: model.clone(),
                provider: provider_name,
                api_base: dep.api_base(),
                retries: attempt_no,
                fallbacks: 0,
                handle: dep.clone(),
            };
            let mut call = body.clone();
            call["model"] = Value::String(model);
            dep.health.note_request();
            dep.in_flight.fetch_add(1, Ordering::Relaxed);
            let result = provider
                .anthropic_messages(call, stream, opts)
                .await
                .unwrap_or_else(|| {
                    Err(ApiError::internal(format!(
                        "deployment {} does not speak the Anthropic Messages API",
                        dep.config.id
                    )))
                });
            dep.in_flight.fetch_sub(1, Ordering::Relaxed);
            match result {
                Ok(reply) => {
                    dep.health.note_success();
                    return Ok((reply, attempt));
                }
                Err(err) => {
                    if !self.settings.disable_cooldowns && deployments.len() > 1 {
                        dep.health.note_failure(
                            err.status.as_u16(),
                            self.settings.allowed_fails,
                            self.settings.cooldown_time,
                        );
                    }
                    if !err.retryable || attempt_no >= retries {
                        return Err((err, Some(attempt)));
                    }
                    attempt_no += 1;
                    let others = deployments
                        .iter()
                        .any(|d| !Arc::ptr_eq(d, &dep) && !d.health.cooling());
                    if !others {
                        tokio::time::sleep(self.retry_delay(&err, attempt_no)).await;
                    }
                    last = Some(dep);
                }
            }
        }
    }
}
