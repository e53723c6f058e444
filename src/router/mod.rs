//! Model groups and deployment choice: which deployment serves a request, retries on another
//! attempt, fallbacks to other groups, and cooldowns of failing deployments.
//!
//! **Architecture Invariant:** the router decides on an error's `retryable` and status alone;
//! it never parses provider bodies.

mod cooldown;
mod native;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;

use crate::config::{Config, Deployment, Env, RouterSettings};
use crate::error::ApiError;
use crate::providers::registry::{self, Family};
use crate::providers::{self, CallOptions, ChatReply, ChunkStream, Provider, TextCompletion, http};
use crate::types::ChatRequest;
pub use cooldown::Health;

/// One deployment with its adapter and live state.
pub struct DeploymentHandle {
    pub config: Deployment,
    provider: Arc<dyn Provider>,
    /// For `model: "*"` deployments: adapters built on first use, one per provider.
    wildcard_providers: Mutex<HashMap<&'static str, Arc<dyn Provider>>>,
    pub in_flight: AtomicU64,
    pub health: Health,
    /// This deployment's prices for its own model, resolved on first use.
    pub price: std::sync::OnceLock<Option<crate::spend::prices::ModelPrice>>,
    /// Its `x-litellm-*` header values, checked once rather than on every answer.
    pub header_values: HeaderValues,
    /// Whether its `litellm_params` set any request default ([`DEFAULTABLE_PARAMS`]): known
    /// once, where looking the ten names up in its parameters was ~2 k instructions a call.
    has_request_defaults: bool,
}

/// A deployment's constant `x-litellm-*` header values; `None` where the text is empty or
/// not a valid header value (then the header is left out, as for any other value).
#[derive(Debug, Default)]
pub struct HeaderValues {
    pub model_id: Option<axum::http::HeaderValue>,
    pub model_group: Option<axum::http::HeaderValue>,
    pub api_base: Option<axum::http::HeaderValue>,
}

/// A deployment's base URL: its own, or its provider's default.
fn api_base_of(dep: &Deployment) -> &str {
    dep.api_base.as_deref().unwrap_or(dep.provider.default_base)
}

impl HeaderValues {
    fn of(dep: &Deployment) -> Self {
        let value = |s: &str| {
            (!s.is_empty())
                .then(|| axum::http::HeaderValue::from_str(s).ok())
                .flatten()
        };
        HeaderValues {
            model_id: value(&dep.id),
            model_group: value(&dep.model_name),
            api_base: value(api_base_of(dep)),
        }
    }
}

impl DeploymentHandle {
    /// The adapter and upstream model name for a requested model.
    fn resolve(
        &self,
        requested: &str,
        client: &http::Client,
        env: &Env,
    ) -> (Arc<dyn Provider>, String, &'static str) {
        let lm = &self.config.litellm_model;
        if lm == "*" {
            let (spec, model) = registry::split_model(requested)
                .unwrap_or((registry::infer_bare(requested), requested));
            let mut cache = self.wildcard_providers.lock();
            let provider = cache
                .entry(spec.name)
                .or_insert_with(|| {
                    let mut dep = self.config.clone();
                    dep.provider = spec;
                    providers::build(&dep, client, env)
                })
                .clone();
            return (provider, model.to_owned(), spec.name);
        }
        if let Some(prefix) = lm.strip_suffix('*') {
            // `anthropic/*` serves `anthropic/claude-x` as `claude-x`.
            let group_prefix = self.config.model_name.trim_end_matches('*');
            let rest = requested.strip_prefix(group_prefix).unwrap_or(requested);
            let upstream = format!("{prefix}{rest}");
            let model = upstream
                .split_once('/')
                .filter(|(p, _)| registry::by_name(p).is_some())
                .map(|(_, m)| m.to_owned())
                .unwrap_or(upstream);
            return (self.provider.clone(), model, self.config.provider.name);
        }
        (
            self.provider.clone(),
            self.config.upstream_model.clone(),
            self.config.provider.name,
        )
    }

    /// A real call to the deployment (`GET /health`).
    pub async fn health_probe(&self) -> Result<(), ApiError> {
        self.provider
            .health_check(&self.config.upstream_model)
            .await
    }

    /// Whether a caller allowed `visible` model names may see this deployment.
    pub fn is_visible_to(&self, visible: &[String]) -> bool {
        self.config.is_wildcard() || visible.iter().any(|m| m == &self.config.model_name)
    }

    /// The base URL requests go to, for logs and `/health`.
    pub fn api_base(&self) -> String {
        api_base_of(&self.config).to_owned()
    }
}

impl std::fmt::Debug for DeploymentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentHandle")
            .field("id", &self.config.id)
            .field("model_name", &self.config.model_name)
            .finish_non_exhaustive()
    }
}

/// What the router did for one call: for headers, spend logs and metrics.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub deployment_id: String,
    pub model_group: String,
    /// The upstream model name.
    pub model: String,
    pub provider: &'static str,
    pub api_base: String,
    pub retries: u32,
    pub fallbacks: u32,
    pub handle: Arc<DeploymentHandle>,
}

/// The outcome of a routed call.
pub enum Outcome {
    Reply(Box<ChatReply>),
    Stream(ChunkStream),
}

pub struct Router {
    groups: crate::FastMap<String, Vec<Arc<DeploymentHandle>>>,
    /// Wildcard groups (`*`, `anthropic/*`), most specific first.
    wildcards: Vec<(String, Vec<Arc<DeploymentHandle>>)>,
    settings: RouterSettings,
    client: http::Client,
    env: Env,
    /// Shared retry-delay base; tests shorten it.
    pub backoff_base: Duration,
    counter: AtomicU64,
}

/// Largest wait between attempts, whatever `retry-after` says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(8);

impl Router {
    pub fn new(cfg: &Config, client: http::Client) -> Self {
        let mut groups: crate::FastMap<String, Vec<Arc<DeploymentHandle>>> = Default::default();
        for dep in &cfg.deployments {
            let handle = Arc::new(DeploymentHandle {
                header_values: HeaderValues::of(dep),
                has_request_defaults: has_request_defaults(dep),
                provider: providers::build(dep, &client, &cfg.env),
                config: dep.clone(),
                wildcard_providers: Mutex::new(HashMap::new()),
                in_flight: AtomicU64::new(0),
                health: Health::default(),
                price: std::sync::OnceLock::new(),
            });
            groups
                .entry(dep.model_name.clone())
                .or_default()
                .push(handle);
        }
        let mut wildcards: Vec<(String, Vec<Arc<DeploymentHandle>>)> = groups
            .iter()
            .filter(|(name, _)| name.contains('*'))
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        wildcards.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
        Router {
            groups,
            wildcards,
            settings: cfg.router.clone(),
            client,
            env: cfg.env.clone(),
            backoff_base: Duration::from_millis(500),
            counter: AtomicU64::new(0),
        }
    }

    /// Public model group names (no wildcards), sorted.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .groups
            .keys()
            .filter(|n| !n.contains('*'))
            .cloned()
            .chain(self.settings.model_group_alias.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn deployments(&self) -> impl Iterator<Item = &Arc<DeploymentHandle>> {
        self.groups.values().flatten()
    }

    /// The group serving a requested model name, after aliases and wildcards.
    pub fn resolve_group(&self, requested: &str) -> Option<&str> {
        let name = self
            .settings
            .model_group_alias
            .get(requested)
            .map(String::as_str)
            .unwrap_or(requested);
        if let Some((k, _)) = self.groups.get_key_value(name) {
            return Some(k.as_str());
        }
        self.wildcards
            .iter()
            .find(|(pattern, _)| wildcard_match(pattern, name))
            .map(|(p, _)| p.as_str())
    }

    /// The 400 for a model no group serves.
    pub fn unknown_model(&self, requested: &str) -> ApiError {
        ApiError::bad_request(format!(
            "Invalid model name passed in model={requested}. Call `/v1/models` to view available models for your key. Available models: {}",
            self.model_names().join(", ")
        ))
        .with_param("model")
    }

    /// Routes one chat call, with retries and fallbacks.
    pub async fn chat(
        &self,
        group: &str,
        req: ChatRequest,
        stream: bool,
        opts: &CallOptions,
        request_fallbacks: Option<Vec<String>>,
    ) -> Result<(Outcome, Attempt), (ApiError, Option<Attempt>)> {
        let requested = req.model.clone();
        let req = &req;
        self.across_fallbacks(
            group,
            &requested,
            request_fallbacks,
            |group_name, model, index, mut retries| async move {
                let r = self
                    .try_group(&group_name, &model, req, stream, opts, index, &mut retries)
                    .await;
                (r, retries)
            },
        )
        .await
    }

    /// Runs `attempt` on the call's group, then on each fallback group in turn
    /// ([`fallback_chain`](Self::fallback_chain)) while the error allows
    /// ([`falls_back_after`](Self::falls_back_after)). `attempt` gets the group, the model to
    /// name (the requested one for the call's own group, the fallback's name after), the
    /// fallback index and the retries spent so far, and hands the retries back.
    async fn across_fallbacks<T, Fut>(
        &self,
        group: &str,
        requested: &str,
        request_fallbacks: Option<Vec<String>>,
        mut attempt: impl FnMut(String, String, u32, u32) -> Fut,
    ) -> Result<(T, Attempt), (ApiError, Option<Attempt>)>
    where
        Fut: std::future::Future<Output = (Result<(T, Attempt), (ApiError, Option<Attempt>)>, u32)>,
    {
        let mut chain = self.fallback_chain(group, request_fallbacks);
        let mut last_err: Option<(ApiError, Option<Attempt>)> = None;
        let mut total_retries = 0;
        let mut i = 0;
        while i < chain.len() {
            let g = chain[i].clone();
            let Some(group_name) = self.resolve_group(&g).map(str::to_owned) else {
                i += 1;
                continue;
            };
            let model = if i == 0 { requested.to_owned() } else { g };
            let (result, retries) =
                attempt(group_name.clone(), model, i as u32, total_retries).await;
            total_retries = retries;
            match result {
                Ok(ok) => return Ok(ok),
                Err((err, attempt)) => {
                    let next = self.falls_back_after(&err, &group_name, &mut chain, i);
                    last_err = Some((err, attempt));
                    if !next {
                        break;
                    }
                }
            }
            i += 1;
        }
        Err(last_err.unwrap_or_else(|| (self.unknown_model(requested), None)))
    }

    /// The model groups a call tries in turn: its own, then the request's `fallbacks` (or the
    /// group's configured ones, or `default_fallbacks`), at most `max_fallbacks` of them.
    fn fallback_chain(&self, group: &str, request_fallbacks: Option<Vec<String>>) -> Vec<String> {
        let mut chain: Vec<String> = vec![group.to_owned()];
        let mut fallbacks = request_fallbacks
            .or_else(|| self.settings.fallbacks.get(group).cloned())
            .unwrap_or_else(|| self.settings.default_fallbacks.clone());
        fallbacks.retain(|f| f != group);
        fallbacks.truncate(self.settings.max_fallbacks);
        chain.extend(fallbacks);
        chain
    }

    /// After `err` from the chain's `i`-th group (`group_name`): whether the next group is
    /// tried. A prompt too long for the group puts its `context_window_fallbacks` next.
    fn falls_back_after(
        &self,
        err: &ApiError,
        group_name: &str,
        chain: &mut Vec<String>,
        i: usize,
    ) -> bool {
        let context = http::is_context_window_error(err);
        if context && let Some(cw) = self.settings.context_window_fallbacks.get(group_name) {
            for f in cw {
                if !chain.contains(f) {
                    chain.insert(i + 1, f.clone());
                }
            }
        }
        err.retryable || context || matches!(err.status.as_u16(), 401 | 403 | 404 | 501)
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_group(
        &self,
        group: &str,
        requested: &str,
        req: &ChatRequest,
        stream: bool,
        opts: &CallOptions,
        fallback_index: u32,
        total_retries: &mut u32,
    ) -> Result<(Outcome, Attempt), (ApiError, Option<Attempt>)> {
        self.with_retries(
            group,
            requested,
            fallback_index,
            total_retries,
            |dep, provider, model| {
                let mut call = req.clone();
                call.model = model;
                if dep.has_request_defaults {
                    apply_deployment_defaults(&mut call, &dep.config);
                }
                let deployment_mock = dep.config.provider.family == Family::Mock;
                async move {
                    if call.extra.contains_key("mock_response") && !deployment_mock {
                        // LiteLLM answers a request's `mock_response` without calling the provider.
                        let mock = providers::mock::Mock::new(None);
                        if stream {
                            mock.chat_stream(call, opts).await.map(Outcome::Stream)
                        } else {
                            mock.chat(call, opts)
                                .await
                                .map(|r| Outcome::Reply(Box::new(r)))
                        }
                    } else if stream {
                        provider.chat_stream(call, opts).await.map(Outcome::Stream)
                    } else {
                        provider
                            .chat(call, opts)
                            .await
                            .map(|r| Outcome::Reply(Box::new(r)))
                    }
                }
            },
        )
        .await
    }

    /// The one retry loop every kind of call goes through: pick a healthy deployment of `group`,
    /// call it, count the outcome towards its cooldown, and on a retryable error try again —
    /// at once on another deployment, after a backoff on the same one.
    async fn with_retries<T, F, Fut>(
        &self,
        group: &str,
        requested: &str,
        fallback_index: u32,
        total_retries: &mut u32,
        call: F,
    ) -> Result<(T, Attempt), (ApiError, Option<Attempt>)>
    where
        F: FnMut(&DeploymentHandle, Arc<dyn Provider>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let deployments = self
            .groups
            .get(group)
            .ok_or_else(|| (self.unknown_model(requested), None))?;
        self.with_retries_in(
            deployments,
            group,
            requested,
            fallback_index,
            total_retries,
            call,
        )
        .await
    }

    /// [`Self::with_retries`] over a given set of the group's deployments.
    async fn with_retries_in<T, F, Fut>(
        &self,
        deployments: &[Arc<DeploymentHandle>],
        group: &str,
        requested: &str,
        fallback_index: u32,
        total_retries: &mut u32,
        mut call: F,
    ) -> Result<(T, Attempt), (ApiError, Option<Attempt>)>
    where
        F: FnMut(&DeploymentHandle, Arc<dyn Provider>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
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
                retries: *total_retries,
                fallbacks: fallback_index,
                handle: dep.clone(),
            };
            dep.health.note_request();
            dep.in_flight.fetch_add(1, Ordering::Relaxed);
            let result = call(&dep, provider, model).await;
            dep.in_flight.fetch_sub(1, Ordering::Relaxed);
            match result {
                Ok(value) => {
                    dep.health.note_success();
                    return Ok((value, attempt));
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
                    *total_retries += 1;
                    // Another healthy deployment can be tried at once; the same one waits.
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

    /// Routes an embeddings call (retries within the group; no fallbacks).
    pub async fn embeddings(
        &self,
        group: &str,
        body: serde_json::Value,
    ) -> Result<(bytes::Bytes, Option<crate::types::Usage>, Attempt), (ApiError, Option<Attempt>)>
    {
        let requested = requested_model(&body, group);
        let mut retries = 0;
        let ((bytes, usage), attempt) = self
            .with_retries(group, &requested, 0, &mut retries, |_, provider, model| {
                let mut call = body.clone();
                call["model"] = serde_json::Value::String(model);
                async move { provider.embeddings(call).await }
            })
            .await?;
        Ok((bytes, usage, attempt))
    }

    /// A legacy text completion (`/completions`), with the same retries as embeddings; a
    /// stream is retried only until it starts.
    pub async fn text_completion(
        &self,
        group: &str,
        body: serde_json::Value,
        request_fallbacks: Option<Vec<String>>,
    ) -> Result<(TextCompletion, Attempt), (ApiError, Option<Attempt>)> {
        let requested = requested_model(&body, group);
        let body = &body;
        self.across_fallbacks(
            group,
            &requested,
            request_fallbacks,
            |group_name, model, index, mut retries| async move {
                let r = self
                    .text_completion_in(&group_name, &model, body, index, &mut retries)
                    .await;
                (r, retries)
            },
        )
        .await
    }

    /// One group's attempt at a text completion, with its retries.
    async fn text_completion_in(
        &self,
        group: &str,
        requested: &str,
        body: &serde_json::Value,
        fallback_index: u32,
        total_retries: &mut u32,
    ) -> Result<(TextCompletion, Attempt), (ApiError, Option<Attempt>)> {
        let mocked = body.get("mock_response").is_some();
        let eligible = self.openai_only(group, requested, "completions", mocked)?;
        self.with_retries_in(
            &eligible,
            group,
            requested,
            fallback_index,
            total_retries,
            |_, provider, model| {
                let mut call = body.clone();
                call["model"] = serde_json::Value::String(model);
                async move {
                    if call.get("mock_response").is_some() {
                        // Answered without calling the provider, as for chat.
                        let mock = providers::mock::Mock::new(None);
                        return mock.text_completion(call).await;
                    }
                    provider.text_completion(call).await
                }
            },
        )
        .await
    }

    /// Another OpenAI JSON route (`moderations`, `images/generations`), forwarded to the group's
    /// OpenAI-compatible deployments with the same retries as embeddings.
    pub async fn forward(
        &self,
        group: &str,
        path: &'static str,
        body: serde_json::Value,
    ) -> Result<(bytes::Bytes, Option<crate::types::Usage>, Attempt), (ApiError, Option<Attempt>)>
    {
        let requested = requested_model(&body, group);
        let mocked = body.get("mock_response").is_some();
        let eligible = self.openai_only(group, &requested, path, mocked)?;
        let mut retries = 0;
        let ((bytes, usage), attempt) = self
            .with_retries_in(
                &eligible,
                group,
                &requested,
                0,
                &mut retries,
                |_, provider, model| {
                    let mut call = body.clone();
                    call["model"] = serde_json::Value::String(model);
                    async move {
                        if let Some(obj) = call.as_object_mut()
                            && obj.remove("mock_response").is_some()
                        {
                            // Answered without calling the provider, as for chat.
                            return providers::mock::Mock::new(None).forward(path, call).await;
                        }
                        provider.forward(path, call).await
                    }
                },
            )
            .await?;
        Ok((bytes, usage, attempt))
    }

    /// The group's deployments that serve an OpenAI-only route: a group mixing
    /// OpenAI-compatible and other providers would otherwise fail whenever the balancer picked
    /// one of the others. Wildcard deployments are kept (their provider depends on the name).
    fn openai_only(
        &self,
        group: &str,
        requested: &str,
        path: &str,
        everyone: bool,
    ) -> Result<Vec<Arc<DeploymentHandle>>, (ApiError, Option<Attempt>)> {
        let all = self
            .groups
            .get(group)
            .ok_or_else(|| (self.unknown_model(requested), None))?;
        let eligible: Vec<Arc<DeploymentHandle>> = all
            .iter()
            .filter(|d| {
                everyone
                    || d.config.litellm_model.contains('*')
                    || matches!(
                        d.config.provider.family,
                        Family::OpenAiCompat | Family::Azure | Family::Mock
                    )
            })
            .cloned()
            .collect();
        if eligible.is_empty() {
            return Err((
                ApiError::bad_request(format!(
                    "no deployment of model group {group} serves /{path} (only OpenAI-compatible providers do){}",
                    if path == "completions" {
                        "; use /chat/completions"
                    } else {
                        ""
                    }
                )),
                None,
            ));
        }
        Ok(eligible)
    }

    fn retry_delay(&self, err: &ApiError, attempt: u32) -> Duration {
        let from_header = err
            .headers
            .iter()
            .find(|(k, _)| k.as_str() == "retry-after")
            .and_then(|(_, v)| v.to_str().ok()?.trim().parse::<f64>().ok())
            .map(Duration::from_secs_f64);
        let exp = self
            .backoff_base
            .saturating_mul(1 << attempt.min(5).saturating_sub(1));
        let jitter = rand::thread_rng().gen_range(0.0..0.25);
        let base = from_header.unwrap_or(exp).max(self.settings.retry_after);
        base.mul_f64(1.0 + jitter).min(MAX_RETRY_DELAY)
    }

    /// Chooses a deployment: healthy ones first, by the configured strategy.
    fn pick(
        &self,
        deployments: &[Arc<DeploymentHandle>],
        avoid: Option<&Arc<DeploymentHandle>>,
    ) -> Option<Arc<DeploymentHandle>> {
        let mut candidates: Vec<&Arc<DeploymentHandle>> = deployments
            .iter()
            .filter(|d| !d.health.cooling() && d.health.under_rpm(d.config.rpm))
            .collect();
        if candidates.len() > 1
            && let Some(a) = avoid
        {
            candidates.retain(|d| !Arc::ptr_eq(d, a));
        }
        if candidates.is_empty() {
            // A single-deployment group is never cooled out entirely (LiteLLM's safety net).
            if deployments.len() == 1 && deployments[0].health.under_rpm(deployments[0].config.rpm)
            {
                return Some(deployments[0].clone());
            }
            return None;
        }
        if candidates.len() == 1 {
            return Some(candidates[0].clone());
        }
        match self.settings.routing_strategy.as_str() {
            "least-busy" => candidates
                .iter()
                .min_by_key(|d| d.in_flight.load(Ordering::Relaxed))
                .map(|d| (*d).clone()),
            "latency-based-routing" => candidates
                .iter()
                .min_by_key(|d| d.health.latency_ewma_us())
                .map(|d| (*d).clone()),
            _ => {
                let weights: Vec<f64> = candidates
                    .iter()
                    .map(|d| {
                        d.config
                            .weight
                            .or(d.config.rpm.map(|r| r as f64))
                            .or(d.config.tpm.map(|t| t as f64))
                            .unwrap_or(1.0)
                            .max(0.0)
                    })
                    .collect();
                let total: f64 = weights.iter().sum();
                if total <= 0.0 {
                    let n = self.counter.fetch_add(1, Ordering::Relaxed) as usize;
                    return Some(candidates[n % candidates.len()].clone());
                }
                let mut x = rand::thread_rng().gen_range(0.0..total);
                for (d, w) in candidates.iter().zip(&weights) {
                    if x < *w {
                        return Some((*d).clone());
                    }
                    x -= w;
                }
                candidates.last().map(|d| (*d).clone())
            }
        }
    }
}

/// Request parameters a deployment's `litellm_params` may set as defaults (LiteLLM passes them to
/// the provider call); the request's own value wins.
const DEFAULTABLE_PARAMS: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
    "response_format",
];

fn has_request_defaults(dep: &Deployment) -> bool {
    DEFAULTABLE_PARAMS
        .iter()
        .any(|k| dep.litellm_params.contains_key(*k))
}

fn apply_deployment_defaults(req: &mut ChatRequest, dep: &Deployment) {
    if !has_request_defaults(dep) {
        return;
    }
    let Ok(serde_json::Value::Object(mut body)) = serde_json::to_value(&*req) else {
        return;
    };
    let mut changed = false;
    for key in DEFAULTABLE_PARAMS {
        if let Some(v) = dep.litellm_params.get(*key)
            && !v.is_null()
            && body.get(*key).is_none_or(serde_json::Value::is_null)
        {
            body.insert((*key).to_owned(), v.clone());
            changed = true;
        }
    }
    if changed && let Ok(r) = serde_json::from_value(serde_json::Value::Object(body)) {
        *req = r;
    }
}

/// The model a forwarded body asks for (its group's name if it names none).
fn requested_model(body: &serde_json::Value, group: &str) -> String {
    body.get("model")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(group)
        .to_owned()
}

/// `anthropic/*` matches `anthropic/claude-3`; `*` matches anything.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

#[cfg(test)]
mod tests;
