//! The OpenAI-compatible routes: chat completions, embeddings, models.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::body;
use super::call::{CallRecord, SseBody};
use super::sse::sse_response;
use crate::auth::{CallFacts, Caller};
use crate::error::{ApiError, ApiResult};
use crate::providers::mock::{estimate_tokens, tokens_for_chars};
use crate::providers::{CallOptions, TextCompletion};
use crate::router::{Attempt, Outcome};
use crate::state::AppState;
use crate::types::{ChatRequest, GATEWAY_ONLY_FIELDS, Usage};

/// LiteLLM's fixed `created` for model list entries.
const MODEL_CREATED_AT: i64 = 1677610602;

pub async fn chat_completions(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    chat_inner(st, peer, headers, None, body::bytes(body), false).await
}

/// `POST /v1/chat/completions` and `/chat/completions` as `server::hot_path` dispatches them,
/// before the router: the same handler with the client's address, headers and body taken
/// from the request as it is (no header map copied, no extractors).
pub async fn chat_completions_direct(
    st: AppState,
    req: axum::extract::Request,
    body_limit: usize,
) -> Response {
    let (parts, body) = req.into_parts();
    // `serve` always adds the connection's address (`into_make_service_with_connect_info`).
    debug_assert!(parts.extensions.get::<ConnectInfo<SocketAddr>>().is_some());
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let body = body::read_limited(body, body_limit).await;
    chat_inner(st, peer, parts.headers, None, body, false)
        .await
        .into_response()
}

/// `POST /queue/chat/completions`, LiteLLM's priority-queue route. Tollgate has no request
/// queue to order (admission answers at once), so it is chat with the queue's `priority` field
/// taken out rather than sent upstream.
pub async fn queue_chat_completions(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    chat_inner(st, peer, headers, None, body::bytes(body), true).await
}

/// Azure-style `/openai/deployments/{model}/chat/completions`.
pub async fn azure_chat_completions(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    chat_inner(st, peer, headers, Some(model), body::bytes(body), false).await
}

/// What the gateway takes out of a request body before it goes upstream.
pub struct GatewayFields {
    pub metadata: Value,
    pub tags: Vec<String>,
    pub fallbacks: Option<Vec<String>>,
}

/// Removes LiteLLM's gateway-only fields from a body's fields (keeping `mock_response` for
/// the router).
pub fn take_gateway_fields(fields: &mut Map<String, Value>) -> GatewayFields {
    let metadata = fields.remove("metadata").unwrap_or(Value::Null);
    let mut tags: Vec<String> = metadata
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(a)) = fields.remove("tags") {
        tags.extend(a.iter().filter_map(|t| t.as_str().map(str::to_owned)));
    }
    let fallbacks = match fields.remove("fallbacks") {
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("model").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    };
    let disable = matches!(fields.remove("disable_fallbacks"), Some(Value::Bool(true)));
    for f in GATEWAY_ONLY_FIELDS {
        if *f != "mock_response" {
            fields.remove(*f);
        }
    }
    GatewayFields {
        metadata: if metadata.is_object() {
            metadata
        } else {
            json!({})
        },
        tags,
        fallbacks: if disable { Some(Vec::new()) } else { fallbacks },
    }
}

/// The customer a call is for: the body's `user`, else LiteLLM's `x-litellm-end-user-id`.
fn end_user(body_user: Option<String>, headers: &HeaderMap) -> Option<String> {
    body_user.or_else(|| {
        headers
            .get("x-litellm-end-user-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// The answer to a call the router could not complete: the error, with the `x-litellm-*`
/// headers of the attempt, accounted as failed.
fn failed(mut record: CallRecord, err: ApiError, attempt: Option<Attempt>) -> Response {
    if let Some(a) = attempt {
        record.set_attempt(a);
    }
    let headers = record.headers(None);
    record.fail(&err, None);
    let mut resp = err.into_response();
    resp.headers_mut().extend(headers);
    resp
}

/// An upstream's JSON answer passed on as it came, with the `x-litellm-*` headers and its cost;
/// the call is accounted as succeeded, its spend row under the answer's `id` when it has one
/// (as LiteLLM keys it) and keeping the answer itself when `keep` and the config asks.
fn json_reply(
    mut record: CallRecord,
    bytes: Bytes,
    id: Option<String>,
    usage: Option<&Usage>,
    keep: bool,
) -> Response {
    let cost = usage.map(|u| record.cost(u)).unwrap_or(0.0);
    let mut headers = record.headers(Some(cost));
    if let Some(id) = id {
        record.event.request_id = id;
    }
    record.succeed(usage, || {
        keep.then(|| serde_json::from_slice(&bytes).ok()).flatten()
    });
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let mut resp = Response::new(Body::from(bytes));
    *resp.headers_mut() = headers;
    resp
}

/// Rough prompt size from the request, for limits and as a last resort for usage.
pub fn estimate_prompt_tokens(req: &ChatRequest) -> u64 {
    let text: usize = req
        .messages
        .iter()
        .map(|m| m.content.as_ref().map(|c| c.text_len()).unwrap_or(0) + 4)
        .sum();
    let tools: usize = req.tools.as_ref().map_or(0, crate::types::json_len);
    tokens_for_chars(text + tools)
}

async fn chat_inner(
    st: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    path_model: Option<String>,
    body: Result<Bytes, ApiError>,
    queued: bool,
) -> ApiResult<Response> {
    let started = Instant::now();
    let caller = st.auth.authenticate(&headers).await?;
    let raw = body?;
    let mut req: ChatRequest = parse_chat(&raw, path_model)?;
    if queued {
        req.extra.remove("priority");
    }
    let gw = take_gateway_fields(&mut req.extra);
    let Some(group) = st.router.resolve_group(&req.model).map(str::to_owned) else {
        return Err(st.router.unknown_model(&req.model));
    };
    let end_user = end_user(req.user.clone(), &headers);
    let prompt_est = estimate_prompt_tokens(&req);
    let facts = CallFacts {
        model_group: group.clone(),
        end_user: end_user.clone(),
        estimated_prompt_tokens: prompt_est,
        estimated_cost: 0.0,
    };
    let admission = st.auth.admit(&caller, &facts).await?;
    let mut record = CallRecord::new(st.clone(), &caller, admission, "acompletion", started);
    record.estimated_prompt_tokens = prompt_est;
    record.event.end_user = end_user;
    record.set_requester(peer.ip());
    record.event.tags = gw.tags;
    record.event.metadata = gw.metadata;
    record.event.model_group = group.clone();
    if st.config.general.store_prompts_in_spend_logs {
        record.event.messages = serde_json::to_value(&req.messages).ok();
    }
    let stream = req.stream == Some(true);
    let client_wants_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let opts = CallOptions {
        drop_params: st.config.litellm.drop_params,
        ..CallOptions::default()
    };
    record.upstream_begins();
    let outcome = st
        .router
        .chat(&group, req, stream, &opts, gw.fallbacks)
        .await;
    let (outcome, attempt) = match outcome {
        Ok(ok) => ok,
        Err((err, attempt)) => return Ok(failed(record, err, attempt)),
    };
    record.set_attempt(attempt);
    match outcome {
        Outcome::Reply(reply) => {
            record.first_token();
            let bytes = reply.to_bytes();
            let cost = reply.usage.as_ref().map(|u| record.cost(u));
            let mut h = record.headers(cost.or(Some(0.0)));
            for (k, v) in &reply.upstream_headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::try_from(k.as_str()),
                    axum::http::HeaderValue::from_str(v),
                ) {
                    h.insert(k, v);
                }
            }

            // Keep the spend row's id equal to the response's, as LiteLLM does.
            if let Some(id) = reply.id() {
                record.event.request_id = id.to_owned();
            }
            record.succeed(reply.usage.as_ref(), || serde_json::from_slice(&bytes).ok());
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            // The header map becomes the response's as it is: merging it into a fresh
            // response (what a `(status, headers, body)` tuple does) re-hashes every header.
            let mut resp = axum::response::Response::new(axum::body::Body::from(bytes));
            *resp.headers_mut() = h;
            Ok(resp)
        }
        Outcome::Stream(chunks) => {
            let h = record.headers(None);
            let body = SseBody::new(chunks, record, client_wants_usage);
            Ok(sse_response(h, body).await)
        }
    }
}

/// Parses and checks a chat request.
pub fn parse_chat(raw: &[u8], path_model: Option<String>) -> ApiResult<ChatRequest> {
    // Fast path: a well-formed request deserializes in one pass. Anything else goes through
    // `Value` below, which says precisely what is wrong.
    if let Ok(req) = serde_json::from_slice::<ChatRequest>(raw)
        && !req.model.is_empty()
        && !req.messages.is_empty()
    {
        return Ok(req);
    }
    let mut v: Value = body::json(raw)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::bad_request("Request body must be a JSON object."));
    };
    if let Some(m) = path_model
        && !obj.contains_key("model")
    {
        obj.insert("model".into(), Value::String(m));
    }
    match obj.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            return Err(ApiError::bad_request(
                "model is required: name one of the configured models.",
            )
            .with_param("model"));
        }
    }
    match obj.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(ApiError::bad_request("messages must not be empty.").with_param("messages"));
        }
        _ => {
            return Err(
                ApiError::bad_request("messages is required: a list of chat messages.")
                    .with_param("messages"),
            );
        }
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!("Invalid request body: {path}: {}", e.into_inner()))
            .with_param(path)
    })
}

pub async fn embeddings(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    embeddings_inner(st, peer, headers, None, body).await
}

/// Azure-style `/openai/deployments/{model}/embeddings`.
pub async fn azure_embeddings(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    embeddings_inner(st, peer, headers, Some(model), body).await
}

async fn embeddings_inner(
    st: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    path_model: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let started = Instant::now();
    let caller = st.auth.authenticate(&headers).await?;
    let raw = body::bytes(body)?;
    let mut v: Value = body::json(&raw)?;
    if let (Some(m), Some(obj)) = (path_model, v.as_object_mut()) {
        obj.entry("model").or_insert(Value::String(m));
    }
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("model is required").with_param("model"))?;
    if v.get("input").is_none() {
        return Err(ApiError::bad_request("input is required").with_param("input"));
    }
    let Some(group) = st.router.resolve_group(&model).map(str::to_owned) else {
        return Err(st.router.unknown_model(&model));
    };
    let metadata = v.as_object_mut().and_then(|o| o.remove("metadata"));
    let user = end_user(
        v.get("user").and_then(Value::as_str).map(str::to_owned),
        &headers,
    );
    let facts = CallFacts {
        model_group: group.clone(),
        end_user: user.clone(),
        estimated_prompt_tokens: estimate_tokens(&v["input"].to_string()),
        estimated_cost: 0.0,
    };
    let admission = st.auth.admit(&caller, &facts).await?;
    let mut record = CallRecord::new(st.clone(), &caller, admission, "aembedding", started);
    record.event.end_user = user;
    record.set_requester(peer.ip());
    if let Some(m) = metadata.filter(Value::is_object) {
        record.event.metadata = m;
    }
    record.upstream_begins();
    match st.router.embeddings(&group, v).await {
        Ok((bytes, usage, attempt)) => {
            record.set_attempt(attempt);
            Ok(json_reply(record, bytes, None, usage.as_ref(), false))
        }
        Err((err, attempt)) => Ok(failed(record, err, attempt)),
    }
}

/// `POST /completions` and `/v1/completions`: the legacy text-completion API.
pub async fn completions(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    completions_inner(st, peer, headers, None, body).await
}

/// Azure-style `/openai/deployments/{model}/completions` and `/engines/{model}/completions`.
pub async fn azure_completions(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    completions_inner(st, peer, headers, Some(model), body).await
}

/// A JSON object body and its `model` (from the path for Azure-style routes, unless the body
/// names one), for the routes that forward the body as it is.
fn json_body_with_model(
    body: Result<Bytes, BytesRejection>,
    path_model: Option<String>,
) -> ApiResult<(Map<String, Value>, String)> {
    let raw = body::bytes(body)?;
    let Value::Object(mut obj) = body::json(&raw)? else {
        return Err(ApiError::bad_request("Request body must be a JSON object."));
    };
    if let Some(m) = path_model {
        obj.entry("model").or_insert(Value::String(m));
    }
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("model is required").with_param("model"))?;
    Ok((obj, model))
}

/// Forwarded to the deployment's own `/completions` (OpenAI-compatible upstreams and the mock),
/// accounted like a chat call (`call_type` `atext_completion`, as LiteLLM logs it).
async fn completions_inner(
    st: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    path_model: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let started = Instant::now();
    let caller = st.auth.authenticate(&headers).await?;
    let (mut obj, model) = json_body_with_model(body, path_model)?;
    let prompt_tokens = obj
        .get("prompt")
        .and_then(legacy_prompt_tokens)
        .ok_or_else(|| {
            ApiError::bad_request(
                "prompt is required: a string, or an array of strings or of token ids",
            )
            .with_param("prompt")
        })?;
    let Some(group) = st.router.resolve_group(&model).map(str::to_owned) else {
        return Err(st.router.unknown_model(&model));
    };
    let gw = take_gateway_fields(&mut obj);
    let user = end_user(
        obj.get("user").and_then(Value::as_str).map(str::to_owned),
        &headers,
    );
    let prompt = st
        .config
        .general
        .store_prompts_in_spend_logs
        .then(|| obj.get("prompt").cloned())
        .flatten();
    let client_wants_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    let facts = CallFacts {
        model_group: group.clone(),
        end_user: user.clone(),
        estimated_prompt_tokens: prompt_tokens,
        estimated_cost: 0.0,
    };
    let admission = st.auth.admit(&caller, &facts).await?;
    let mut record = CallRecord::new(st.clone(), &caller, admission, "atext_completion", started);
    record.estimated_prompt_tokens = prompt_tokens;
    record.event.end_user = user;
    record.set_requester(peer.ip());
    record.event.tags = gw.tags;
    record.event.metadata = gw.metadata;
    record.event.messages = prompt;
    record.upstream_begins();
    match st
        .router
        .text_completion(&group, Value::Object(obj), gw.fallbacks)
        .await
    {
        Ok((TextCompletion::Json { bytes, id, usage }, attempt)) => {
            record.set_attempt(attempt);
            record.first_token();
            Ok(json_reply(record, bytes, id, usage.as_ref(), true))
        }
        Ok((TextCompletion::Stream(chunks), attempt)) => {
            record.set_attempt(attempt);
            let h = record.headers(None);
            let body = SseBody::new(chunks, record, client_wants_usage).counting_text_completions();
            Ok(sse_response(h, body).await)
        }
        Err((err, attempt)) => Ok(failed(record, err, attempt)),
    }
}

/// Estimated tokens of a legacy prompt: a string, strings, token ids or arrays of token ids
/// (`None` for anything else).
fn legacy_prompt_tokens(prompt: &Value) -> Option<u64> {
    match prompt {
        Value::String(s) => Some(estimate_tokens(s)),
        Value::Array(items) if !items.is_empty() => items.iter().try_fold(0, |n, p| {
            Some(
                n + match p {
                    Value::String(s) => estimate_tokens(s),
                    Value::Number(_) => 1,
                    Value::Array(ids) if ids.iter().all(Value::is_number) => ids.len() as u64,
                    _ => return None,
                },
            )
        }),
        _ => None,
    }
}

/// An OpenAI JSON route forwarded to OpenAI-compatible deployments as it is.
pub struct Forwarded {
    /// The upstream path, after the base URL.
    path: &'static str,
    /// The spend log's `call_type`, as LiteLLM names it.
    call_type: &'static str,
    /// The body field the route cannot do without.
    required: &'static str,
    /// The model when the body names none (OpenAI's own default for moderations).
    default_model: Option<&'static str>,
}

const MODERATIONS: Forwarded = Forwarded {
    path: "moderations",
    call_type: "amoderation",
    required: "input",
    default_model: Some("omni-moderation-latest"),
};

const IMAGES: Forwarded = Forwarded {
    path: "images/generations",
    call_type: "aimage_generation",
    required: "prompt",
    default_model: None,
};

/// `POST /moderations` and `/v1/moderations`.
pub async fn moderations(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forwarded_inner(st, peer, headers, None, body, &MODERATIONS).await
}

/// `POST /images/generations` and `/v1/images/generations`.
pub async fn image_generations(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forwarded_inner(st, peer, headers, None, body, &IMAGES).await
}

/// Azure-style `/openai/deployments/{model}/images/generations`.
pub async fn azure_image_generations(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forwarded_inner(st, peer, headers, Some(model), body, &IMAGES).await
}

/// Authenticated, admitted and accounted like every model route; the body goes to the
/// deployment's own route with the model rewritten and every other field as sent.
async fn forwarded_inner(
    st: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    path_model: Option<String>,
    body: Result<Bytes, BytesRejection>,
    route: &Forwarded,
) -> ApiResult<Response> {
    let started = Instant::now();
    let caller = st.auth.authenticate(&headers).await?;
    let path_model = path_model.or(route.default_model.map(str::to_owned));
    let (mut obj, model) = json_body_with_model(body, path_model)?;
    let Some(input) = obj.get(route.required).filter(|v| !v.is_null()) else {
        return Err(
            ApiError::bad_request(format!("{} is required", route.required))
                .with_param(route.required),
        );
    };
    let estimated = estimate_tokens(&input.to_string());
    let Some(group) = st.router.resolve_group(&model).map(str::to_owned) else {
        return Err(st.router.unknown_model(&model));
    };
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::bad_request(format!(
            "streaming is not supported on /{}",
            route.path
        ))
        .with_param("stream"));
    }
    let gw = take_gateway_fields(&mut obj);
    let user = end_user(
        obj.get("user").and_then(Value::as_str).map(str::to_owned),
        &headers,
    );
    let facts = CallFacts {
        model_group: group.clone(),
        end_user: user.clone(),
        estimated_prompt_tokens: estimated,
        estimated_cost: 0.0,
    };
    let admission = st.auth.admit(&caller, &facts).await?;
    let mut record = CallRecord::new(st.clone(), &caller, admission, route.call_type, started);
    record.event.end_user = user;
    record.set_requester(peer.ip());
    record.event.tags = gw.tags;
    record.event.metadata = gw.metadata;
    record.upstream_begins();
    match st
        .router
        .forward(&group, route.path, Value::Object(obj))
        .await
    {
        Ok((bytes, usage, attempt)) => {
            record.set_attempt(attempt);
            Ok(json_reply(record, bytes, None, usage.as_ref(), false))
        }
        Err((err, attempt)) => Ok(failed(record, err, attempt)),
    }
}

/// Models the caller may use.
pub fn visible_models(st: &AppState, caller: &Caller) -> Vec<String> {
    let mut names = st.router.model_names();
    names.retain(|m| st.auth.may_use(caller, m));
    names
}

pub async fn list_models(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let data: Vec<Value> = visible_models(&st, &caller)
        .into_iter()
        .map(|id| {
            let owned_by = st
                .router
                .resolve_group(&id)
                .and_then(|g| st.router.deployments().find(|d| d.config.model_name == g))
                .map(|d| d.config.provider.name)
                .unwrap_or("openai");
            json!({"id": id, "object": "model", "created": MODEL_CREATED_AT, "owned_by": owned_by})
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn get_model(
    State(st): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    if !visible_models(&st, &caller).contains(&model) {
        return Err(
            ApiError::not_found(format!("The model '{model}' does not exist")).with_param("model"),
        );
    }
    Ok(Json(
        json!({"id": model, "object": "model", "created": MODEL_CREATED_AT, "owned_by": "openai"}),
    ))
}

#[derive(serde::Deserialize)]
pub struct GroupQuery {
    model_group: Option<String>,
}

/// `GET /model_group/info[?model_group=…]`: one entry per model group the caller may use, with
/// its providers, limits, prices and capabilities (from the first deployment that states
/// each) and its deployments' summed `tpm`/`rpm`.
pub async fn model_group_info(
    State(st): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<GroupQuery>,
) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let visible = visible_models(&st, &caller);
    let mut groups: std::collections::BTreeMap<String, Vec<serde_json::Map<String, Value>>> =
        Default::default();
    let mut limits: std::collections::BTreeMap<String, (Option<u64>, Option<u64>)> =
        Default::default();
    for d in st
        .router
        .deployments()
        .filter(|d| d.is_visible_to(&visible))
    {
        let name = &d.config.model_name;
        if q.model_group.as_deref().is_some_and(|g| g != name) {
            continue;
        }
        let mut info = d.config.model_info.clone();
        info.entry("litellm_provider")
            .or_insert_with(|| Value::String(d.config.provider.name.to_owned()));
        st.prices.enrich_model_info(&d.config, &mut info);
        groups.entry(name.clone()).or_default().push(info);
        let l = limits.entry(name.clone()).or_default();
        let sum = |a: Option<u64>, k: &str| match d
            .config
            .litellm_params
            .get(k)
            .and_then(Value::as_u64)
        {
            Some(v) => Some(a.unwrap_or(0) + v),
            None => a,
        };
        *l = (sum(l.0, "tpm"), sum(l.1, "rpm"));
    }
    if let Some(g) = &q.model_group
        && groups.is_empty()
    {
        return Err(ApiError::bad_request(format!(
            "Invalid model_group: {g}. No such model group, or the key may not use it."
        ))
        .with_param("model_group"));
    }
    let first = |infos: &[serde_json::Map<String, Value>], k: &str| {
        infos
            .iter()
            .find_map(|i| i.get(k).filter(|v| !v.is_null()).cloned())
            .unwrap_or(Value::Null)
    };
    let any = |infos: &[serde_json::Map<String, Value>], k: &str| {
        infos.iter().any(|i| i.get(k) == Some(&Value::Bool(true)))
    };
    let data: Vec<Value> = groups
        .iter()
        .map(|(name, infos)| {
            let mut providers: Vec<&str> = infos
                .iter()
                .filter_map(|i| i.get("litellm_provider").and_then(Value::as_str))
                .collect();
            providers.sort_unstable();
            providers.dedup();
            let (tpm, rpm) = limits.get(name).copied().unwrap_or_default();
            json!({
                "model_group": name,
                "providers": providers,
                "max_input_tokens": first(infos, "max_input_tokens"),
                "max_output_tokens": first(infos, "max_output_tokens"),
                "input_cost_per_token": first(infos, "input_cost_per_token"),
                "output_cost_per_token": first(infos, "output_cost_per_token"),
                "mode": first(infos, "mode"),
                "tpm": tpm,
                "rpm": rpm,
                "supports_vision": any(infos, "supports_vision"),
                "supports_function_calling": any(infos, "supports_function_calling"),
                "supports_parallel_function_calling": any(infos, "supports_parallel_function_calling"),
                "supports_reasoning": any(infos, "supports_reasoning"),
            })
        })
        .collect();
    Ok(Json(json!({"data": data})))
}

pub async fn model_info(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let visible = visible_models(&st, &caller);
    let mut data: Vec<Value> = st
        .router
        .deployments()
        .filter(|d| d.is_visible_to(&visible))
        .map(|d| {
            let mut info = d.config.model_info.clone();
            info.insert("id".into(), Value::String(d.config.id.clone()));
            info.entry("litellm_provider")
                .or_insert_with(|| Value::String(d.config.provider.name.to_owned()));
            st.prices.enrich_model_info(&d.config, &mut info);
            json!({
                "model_name": d.config.model_name,
                "litellm_params": Value::Object(d.config.public_params()),
                "model_info": Value::Object(info),
            })
        })
        .collect();
    data.sort_by(|a, b| a["model_name"].as_str().cmp(&b["model_name"].as_str()));
    Ok(Json(json!({"data": data})))
}
