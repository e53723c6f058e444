//! The Anthropic Messages API in front of every model: `POST /v1/messages` and
//! `POST /v1/messages/count_tokens` (Claude Code's `?beta=true` query is ignored).
//!
//! Same admission and accounting as the OpenAI routes. A group whose deployments are all
//! Anthropic takes the fast path (the body forwarded as it is, bytes streamed back as they
//! come); any other model gets the request translated to the canonical form and the answer
//! translated back into Anthropic's JSON or event stream. Errors have Anthropic's shape.

mod events;
mod translate;

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::body;
use super::call::CallRecord;
use super::sse::sse_response;
use crate::auth::CallFacts;
use crate::error::{ApiError, ApiResult};
use crate::providers::mock::tokens_for_chars;
use crate::providers::{CallOptions, NativeReply};
use crate::router::Outcome;
use crate::state::AppState;
use crate::types::GATEWAY_ONLY_FIELDS;
use crate::types::anthropic::{self as wire, MessagesRequest};

/// Client headers passed on to an Anthropic upstream.
const FORWARDED: &[&str] = &["anthropic-version", "anthropic-beta"];

/// Error types of the Anthropic API; any other kind is named by its status.
const ANTHROPIC_ERROR_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
];

/// The Anthropic error type for an error.
pub fn anthropic_error_type(e: &ApiError) -> &'static str {
    ANTHROPIC_ERROR_TYPES
        .iter()
        .find(|t| **t == e.kind)
        .copied()
        .unwrap_or_else(|| wire::error_type_for_status(e.status.as_u16()))
}

/// An error in Anthropic's shape, keeping its status and headers. A bad key says
/// `x-should-retry: false`, so Claude Code fails at once instead of retrying for minutes.
pub fn error_response(e: &ApiError) -> Response {
    let body = wire::error_body(anthropic_error_type(e), &e.message);
    let mut resp = (e.status, axum::Json(body)).into_response();
    for (k, v) in &e.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::FORBIDDEN {
        resp.headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    resp
}

pub async fn messages(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match messages_inner(st, peer, headers, body).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// The body as a JSON object with a model, without LiteLLM's gateway-only fields.
fn parse_body(raw: &[u8]) -> ApiResult<(Value, MessagesRequest)> {
    let mut v: Value = body::json(raw)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::bad_request("Request body must be a JSON object."));
    };
    for f in GATEWAY_ONLY_FIELDS {
        // `metadata` is Anthropic's own here ({"user_id"}).
        if *f != "metadata" {
            obj.remove(*f);
        }
    }
    match obj.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err(ApiError::bad_request("model: Field required").with_param("model")),
    }
    if !obj.get("messages").is_some_and(Value::is_array) {
        return Err(ApiError::bad_request("messages: Field required").with_param("messages"));
    }
    let req: MessagesRequest = serde_path_to_error::deserialize(&v).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!("{path}: {}", e.into_inner())).with_param(path)
    })?;
    Ok((v, req))
}

/// Rough prompt size of an Anthropic request, for limits and as a last resort for usage.
fn estimate_prompt(req: &MessagesRequest) -> u64 {
    let mut n = req
        .messages
        .iter()
        .map(|m| m.content.text_len() + 4)
        .sum::<usize>();
    n += req.system.as_ref().map(|s| s.text_len()).unwrap_or(0);
    n += req.tools.as_ref().map_or(0, crate::types::json_len);
    tokens_for_chars(n)
}

async fn messages_inner(
    st: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let started = Instant::now();
    let caller = st.auth.authenticate(&headers).await?;
    let raw = body::bytes(body)?;
    let (value, req) = parse_body(&raw)?;
    let model = req.model.clone();
    let Some(group) = st.router.resolve_group(&model).map(str::to_owned) else {
        return Err(st.router.unknown_model(&model));
    };
    let end_user = headers
        .get("x-litellm-end-user-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let prompt_est = estimate_prompt(&req);
    let facts = CallFacts {
        model_group: group.clone(),
        end_user: end_user.clone(),
        estimated_prompt_tokens: prompt_est,
        estimated_cost: 0.0,
    };
    let admission = st.auth.admit(&caller, &facts).await?;
    let mut record = CallRecord::new(
        st.clone(),
        &caller,
        admission,
        "anthropic_messages",
        started,
    );
    record.estimated_prompt_tokens = prompt_est;
    record.event.end_user = end_user;
    record.set_requester(peer.ip());
    record.event.model_group = group.clone();
    if st.config.general.store_prompts_in_spend_logs {
        record.event.messages = serde_json::to_value(&req.messages).ok();
    }
    let stream = req.stream == Some(true);
    let opts = CallOptions {
        forward_headers: FORWARDED
            .iter()
            .filter_map(|h| {
                let v = headers.get(*h)?.to_str().ok()?;
                Some(((*h).to_owned(), v.to_owned()))
            })
            .collect(),
        drop_params: st.config.litellm.drop_params,
    };
    record.upstream_begins();
    if st.router.is_native_anthropic(&group, &model) {
        return Ok(native(&st, record, &group, &model, value, stream, &opts).await);
    }
    let chat = match translate::to_chat(req, opts.drop_params) {
        Ok(c) => c,
        Err(e) => return Ok(failed(record, e, None)),
    };
    let outcome = st.router.chat(&group, chat, stream, &opts, None).await;
    let (outcome, attempt) = match outcome {
        Ok(ok) => ok,
        Err((err, attempt)) => return Ok(failed(record, err, attempt)),
    };
    record.set_attempt(attempt);
    match outcome {
        Outcome::Reply(reply) => {
            record.first_token();
            let usage = reply.usage.clone();
            let typed = match reply.into_typed() {
                Ok(t) => t,
                Err(e) => return Ok(failed(record, e, None)),
            };
            record.event.request_id = typed.id.clone();
            let msg = translate::to_message(typed, &model);
            let cost = usage.as_ref().map(|u| record.cost(u));
            let h = record.headers(cost.or(Some(0.0)));
            let body = serde_json::to_vec(&msg).unwrap_or_default();
            record.succeed(usage.as_ref(), || serde_json::to_value(&msg).ok());
            Ok(json_response(StatusCode::OK, h, Bytes::from(body)))
        }
        Outcome::Stream(chunks) => {
            let h = record.headers(None);
            let body = events::EventBody::new(chunks, record, &model, prompt_est);
            Ok(sse_response(h, body).await)
        }
    }
}

/// The fast path: the client's body to an Anthropic deployment, the answer back untouched.
async fn native(
    st: &AppState,
    mut record: CallRecord,
    group: &str,
    model: &str,
    body: Value,
    stream: bool,
    opts: &CallOptions,
) -> Response {
    match st
        .router
        .anthropic_messages(group, model, body, stream, opts)
        .await
    {
        Err((err, attempt)) => failed(record, err, attempt),
        Ok((reply, attempt)) => {
            record.set_attempt(attempt);
            match reply {
                NativeReply::Json {
                    status,
                    body,
                    usage,
                } => {
                    record.first_token();
                    #[derive(serde::Deserialize)]
                    struct IdPeek<'a> {
                        #[serde(default, borrow)]
                        id: Option<std::borrow::Cow<'a, str>>,
                    }
                    if let Ok(IdPeek { id: Some(id) }) = serde_json::from_slice(&body) {
                        record.event.request_id = id.into_owned();
                    }
                    let cost = usage.as_ref().map(|u| record.cost(u));
                    let h = record.headers(cost.or(Some(0.0)));
                    record.succeed(usage.as_ref(), || serde_json::from_slice(&body).ok());
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    json_response(status, h, body)
                }
                NativeReply::Stream(s) => {
                    let h = record.headers(None);
                    let body = events::NativeBody::new(s.bytes, record);
                    sse_response(h, body).await
                }
            }
        }
    }
}

fn failed(
    mut record: CallRecord,
    err: ApiError,
    attempt: Option<crate::router::Attempt>,
) -> Response {
    if let Some(a) = attempt {
        record.set_attempt(a);
    }
    let h = record.headers(None);
    record.fail(&err, None);
    let mut resp = error_response(&err);
    resp.headers_mut().extend(h);
    resp
}

fn json_response(status: StatusCode, mut h: HeaderMap, body: Bytes) -> Response {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (status, h, body).into_response()
}

/// `POST /v1/messages/count_tokens`: an estimate (about four characters a token) of the
/// prompt, for any model. It reaches no provider, so it only authenticates.
pub async fn count_tokens(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r: ApiResult<Response> = async {
        st.auth.authenticate(&headers).await?;
        let raw = body::bytes(body)?;
        let (_, req) = parse_body(&raw)?;
        if st.router.resolve_group(&req.model).is_none() {
            return Err(st.router.unknown_model(&req.model));
        }
        Ok(axum::Json(serde_json::json!({"input_tokens": estimate_prompt(&req)})).into_response())
    }
    .await;
    r.unwrap_or_else(|e| error_response(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_take_anthropic_types_by_kind_or_status() {
        assert_eq!(
            anthropic_error_type(&ApiError::unauthorized("x")),
            "authentication_error"
        );
        assert_eq!(
            anthropic_error_type(&ApiError::upstream(529, "overloaded_error", "x")),
            "overloaded_error"
        );
        assert_eq!(
            anthropic_error_type(&ApiError::upstream(503, "service_unavailable", "x")),
            "overloaded_error"
        );
        assert_eq!(
            anthropic_error_type(&ApiError::bad_request("x")),
            "invalid_request_error"
        );
        let r = error_response(&ApiError::unauthorized("bad key"));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["x-should-retry"], "false");
        let r = error_response(
            &ApiError::upstream(429, "rate_limit_error", "slow down").with_header("retry-after", 3),
        );
        assert_eq!(r.headers()["retry-after"], "3");
    }
}
