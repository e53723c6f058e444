//! Spend routes with LiteLLM's shapes: `/spend/logs` (+ `/v2`), `/spend/keys`, `/spend/users`,
//! `/spend/tags`, `/global/spend*`, `POST /spend/calculate`, and `GET /metrics`.
//!
//! Admin (master key) only, except that a virtual key may read its own logs. Summaries read
//! the daily rollup, never the raw log.

// `ApiError` is large; the skeleton's handlers return it unboxed too (lead's call to box it).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, NaiveDateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{Caller, hash_token};
use crate::error::{ApiError, ApiResult};
use crate::providers::mock::estimate_tokens;
use crate::spend::prices::cost_with;
use crate::state::AppState;
use crate::store::Store;
use crate::store::spend::{DailyRow, LogFilter, SpendLogRow, SpendTotal, day_of};
use crate::types::Usage;

/// Rows `/spend/logs` returns at most (LiteLLM's cap).
pub const LOGS_CAP: i64 = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/spend/logs", get(spend_logs))
        .route("/spend/logs/v2", get(spend_logs_v2))
        .route("/spend/keys", get(spend_keys))
        .route("/spend/users", get(spend_users))
        .route("/spend/tags", get(spend_tags))
        .route("/spend/calculate", post(spend_calculate))
        .route("/global/spend", get(global_spend))
        .route("/global/spend/keys", get(global_spend_keys))
        .route("/global/spend/models", get(global_spend_models))
        .route("/global/spend/report", get(global_spend_report))
        .route("/metrics", get(metrics))
        .route("/metrics/", get(metrics))
}

async fn admin(st: &AppState, headers: &HeaderMap) -> ApiResult<Caller> {
    let caller = st.auth.authenticate(headers).await?;
    if !caller.is_admin {
        return Err(ApiError::forbidden(
            "Only the proxy admin (master key) can use this route.",
        ));
    }
    Ok(caller)
}

fn store(st: &AppState) -> ApiResult<&Store> {
    st.store.as_ref().ok_or_else(|| {
        ApiError::internal("Database not connected. Connect a database to your proxy.")
    })
}

fn db(e: crate::store::StoreError) -> ApiError {
    tracing::error!("spend query failed: {e}");
    ApiError::internal("the spend database query failed; see the gateway log")
}

/// A `start_date`/`end_date` value: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or RFC 3339.
/// Returns unix ms and whether it was a bare date.
fn parse_when(s: &str, param: &str) -> ApiResult<(i64, bool)> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        return Ok((t.timestamp_millis(), true));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok((t.and_utc().timestamp_millis(), false));
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok((t.timestamp_millis(), false));
    }
    Err(ApiError::bad_request(format!(
        "{param} must be a date (YYYY-MM-DD) or a date and time, got \"{s}\""
    ))
    .with_param(param))
}

/// `[start, end)` in unix ms: an `end_date` that is a bare date includes that whole day.
fn range(start: Option<&str>, end: Option<&str>) -> ApiResult<(Option<i64>, Option<i64>)> {
    let s = start.map(|s| parse_when(s, "start_date")).transpose()?;
    let e = end.map(|e| parse_when(e, "end_date")).transpose()?;
    Ok((
        s.map(|(t, _)| t),
        e.map(|(t, date)| if date { t + 86_400_000 } else { t + 1 }),
    ))
}

fn key_param(k: &Option<String>) -> Option<String> {
    k.as_deref().filter(|k| !k.is_empty()).map(hash_token)
}

fn iso(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

fn json_or(text: Option<&str>, default: Value) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(default)
}

/// A spend-log row with LiteLLM's field names.
pub fn row_json(r: &SpendLogRow) -> Value {
    json!({
        "request_id": r.request_id,
        "call_type": r.call_type,
        "api_key": r.api_key,
        "spend": r.spend,
        "total_tokens": r.total_tokens,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "startTime": iso(r.start_ms),
        "endTime": iso(r.end_ms),
        "completionStartTime": r.completion_start_ms.map(iso).unwrap_or(Value::Null),
        "request_duration_ms": r.request_duration_ms,
        "model": r.model,
        "model_id": r.model_id.clone().unwrap_or_default(),
        "model_group": r.model_group.clone().unwrap_or_default(),
        "custom_llm_provider": r.custom_llm_provider.clone().unwrap_or_default(),
        "api_base": r.api_base.clone().unwrap_or_default(),
        "user": r.user.clone().unwrap_or_default(),
        "metadata": crate::store::spend::metadata_json(r),
        "cache_hit": r.cache_hit,
        "cache_key": "",
        "request_tags": json_or(Some(&r.request_tags), json!([])),
        "team_id": r.team_id,
        "organization_id": Value::Null,
        "end_user": r.end_user.clone().unwrap_or_default(),
        "requester_ip_address": r.requester_ip_address.clone().unwrap_or_default(),
        "messages": json_or(r.messages.as_deref(), json!({})),
        "response": json_or(r.response.as_deref(), json!({})),
        "session_id": Value::Null,
        "status": r.status,
        "key_alias": r.key_alias,
        "cached_tokens": r.cached_tokens,
        "cache_creation_tokens": r.cache_creation_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "error": json_or(r.error.as_deref(), Value::Null),
    })
}

#[derive(Deserialize, Default)]
pub struct LogsQuery {
    api_key: Option<String>,
    user_id: Option<String>,
    request_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    summarize: Option<bool>,
    // v2
    team_id: Option<String>,
    end_user: Option<String>,
    model: Option<String>,
    status_filter: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

/// The filter a caller may use: a virtual key sees only its own rows.
async fn log_filter(st: &AppState, headers: &HeaderMap, q: &LogsQuery) -> ApiResult<LogFilter> {
    let caller = st.auth.authenticate(headers).await?;
    let (start_ms, end_ms) = range(q.start_date.as_deref(), q.end_date.as_deref())?;
    let mut f = LogFilter {
        api_key: key_param(&q.api_key),
        user_id: q.user_id.clone().filter(|s| !s.is_empty()),
        request_id: q.request_id.clone().filter(|s| !s.is_empty()),
        team_id: q.team_id.clone().filter(|s| !s.is_empty()),
        end_user: q.end_user.clone().filter(|s| !s.is_empty()),
        model: q.model.clone().filter(|s| !s.is_empty()),
        status: q.status_filter.clone().filter(|s| !s.is_empty()),
        start_ms,
        end_ms,
    };
    if !caller.is_admin {
        match &caller.key_hash {
            Some(own) => f.api_key = Some(own.clone()),
            None => return Err(ApiError::forbidden("no key to scope the spend logs to")),
        }
    }
    Ok(f)
}

pub async fn spend_logs(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let f = log_filter(&st, &headers, &q).await?;
    let store = store(&st)?;
    if q.start_date.is_some() && q.end_date.is_some() && q.summarize.unwrap_or(true) {
        let (Some(start), Some(end)) = (f.start_ms, f.end_ms) else {
            return Err(ApiError::bad_request(
                "start_date and end_date are required",
            ));
        };
        let (first, last) = (day_of(start), day_of(end - 1));
        let rows = if f.request_id.is_some() {
            // One request: read its rows, summarized the same way.
            store
                .spend_logs(&f, LOGS_CAP, 0)
                .await
                .map_err(db)?
                .iter()
                .map(|r| DailyRow {
                    day: day_of(r.start_ms),
                    api_key: r.api_key.clone(),
                    model: r.model.clone(),
                    user_id: r.user.clone().unwrap_or_default(),
                    spend: r.spend,
                    ..Default::default()
                })
                .collect()
        } else {
            store
                .daily_spend(
                    &first,
                    &last,
                    f.api_key.as_deref(),
                    f.user_id.as_deref(),
                    false,
                )
                .await
                .map_err(db)?
        };
        return Ok(Json(daily_summary(&rows, &last)).into_response());
    }
    let rows = store.spend_logs(&f, LOGS_CAP, 0).await.map_err(db)?;
    let truncated = rows.len() as i64 == LOGS_CAP;
    let mut resp = Json(Value::Array(rows.iter().map(row_json).collect())).into_response();
    if truncated {
        resp.headers_mut().insert(
            "x-litellm-spend-logs-truncated",
            HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

/// Per day: spend, by user, by model, by key.
type SummaryDay = (
    f64,
    Map<String, Value>,
    Map<String, Value>,
    Map<String, Value>,
);

/// LiteLLM's per-day summary: `{startTime, spend, users{}, models{}, <api_key>: spend}`,
/// padded with empty days up to `last_day`.
fn daily_summary(rows: &[DailyRow], last_day: &str) -> Value {
    let mut days: BTreeMap<&str, SummaryDay> = BTreeMap::new();
    let add = |m: &mut Map<String, Value>, k: &str, v: f64| {
        let cur = m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        m.insert(k.to_owned(), (cur + v).into());
    };
    for r in rows {
        let d = days.entry(&r.day).or_default();
        d.0 += r.spend;
        if !r.user_id.is_empty() {
            add(&mut d.1, &r.user_id, r.spend);
        }
        add(&mut d.2, &r.model, r.spend);
        if !r.api_key.is_empty() {
            add(&mut d.3, &r.api_key, r.spend);
        }
    }
    let mut out: Vec<Value> = Vec::new();
    let mut last_seen = None;
    for (day, (spend, users, models, keys)) in days {
        let mut o = keys;
        o.insert("startTime".into(), day.into());
        o.insert("spend".into(), spend.into());
        o.insert("users".into(), Value::Object(users));
        o.insert("models".into(), Value::Object(models));
        out.push(Value::Object(o));
        last_seen = Some(day.to_owned());
    }
    if let (Some(from), Ok(to)) = (last_seen, NaiveDate::parse_from_str(last_day, "%Y-%m-%d"))
        && let Ok(mut d) = NaiveDate::parse_from_str(&from, "%Y-%m-%d")
    {
        while let Some(next) = d.succ_opt().filter(|n| *n <= to) {
            out.push(json!({"startTime": next.format("%Y-%m-%d").to_string(), "spend": 0, "users": {}, "models": {}}));
            d = next;
        }
    }
    Value::Array(out)
}

pub async fn spend_logs_v2(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Json<Value>> {
    let f = log_filter(&st, &headers, &q).await?;
    let store = store(&st)?;
    let page = q.page.unwrap_or(1).max(1);
    let size = q.page_size.unwrap_or(50).clamp(1, 1000);
    let total = store.count_spend_logs(&f).await.map_err(db)?;
    let rows = store
        .spend_logs(&f, size, (page - 1) * size)
        .await
        .map_err(db)?;
    Ok(Json(json!({
        "data": rows.iter().map(row_json).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": (total + size - 1) / size,
    })))
}

pub async fn spend_keys(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let rows = store(&st)?
        .spend_totals(SpendTotal::Keys)
        .await
        .map_err(db)?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|(token, spend)| json!({"token": token, "spend": spend}))
            .collect(),
    )))
}

#[derive(Deserialize)]
pub struct UsersQuery {
    user_id: Option<String>,
}

pub async fn spend_users(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UsersQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let rows = store(&st)?
        .spend_totals(SpendTotal::Users)
        .await
        .map_err(db)?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .filter(|(id, _)| q.user_id.as_ref().is_none_or(|u| u == id))
            .map(|(user_id, spend)| json!({"user_id": user_id, "spend": spend}))
            .collect(),
    )))
}

#[derive(Deserialize)]
pub struct DatesQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    limit: Option<usize>,
    group_by: Option<String>,
}

/// Inclusive day bounds of optional dates (all time when absent).
fn day_bounds(q: &DatesQuery) -> ApiResult<(String, String)> {
    let (s, e) = range(q.start_date.as_deref(), q.end_date.as_deref())?;
    Ok((
        s.map(day_of).unwrap_or_else(|| "0000-01-01".into()),
        e.map(|e| day_of(e - 1))
            .unwrap_or_else(|| "9999-12-31".into()),
    ))
}

/// The last 30 days, as LiteLLM's `MonthlyGlobalSpend`/`Last30d*` views.
fn last_30_days() -> (String, String) {
    let now = chrono::Utc::now().timestamp_millis();
    (day_of(now - 30 * 86_400_000), "9999-12-31".into())
}

fn sum_by<'a>(
    rows: &'a [DailyRow],
    key: impl Fn(&'a DailyRow) -> &'a str,
) -> Vec<(&'a str, f64, i64)> {
    let mut m: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    for r in rows {
        let e = m.entry(key(r)).or_default();
        e.0 += r.spend;
        e.1 += r.api_requests;
    }
    let mut v: Vec<_> = m.into_iter().map(|(k, (s, n))| (k, s, n)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// The daily rollup rows of every key and user between two days (the `/global/spend*` and
/// tag reports), optionally per tag.
async fn daily_rows(
    st: &AppState,
    first: &str,
    last: &str,
    tags: bool,
) -> ApiResult<Vec<crate::store::spend::DailyRow>> {
    store(st)?
        .daily_spend(first, last, None, None, tags)
        .await
        .map_err(db)
}

pub async fn spend_tags(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DatesQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let (first, last) = day_bounds(&q)?;
    let rows = daily_rows(&st, &first, &last, true).await?;
    Ok(Json(Value::Array(
        sum_by(&rows, |r| r.tag.as_str())
            .into_iter()
            .map(|(tag, spend, n)| {
                json!({"individual_request_tag": tag, "log_count": n, "total_spend": spend})
            })
            .collect(),
    )))
}

pub async fn global_spend(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let (first, last) = last_30_days();
    let rows = daily_rows(&st, &first, &last, false).await?;
    let spend: f64 = rows.iter().map(|r| r.spend).sum();
    let max_budget = st
        .config
        .litellm_settings
        .get("max_budget")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Json(json!({"spend": spend, "max_budget": max_budget})))
}

pub async fn global_spend_keys(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DatesQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let (first, last) = last_30_days();
    let rows = daily_rows(&st, &first, &last, false).await?;
    let alias = |k: &str| {
        rows.iter()
            .find(|r| r.api_key == k && r.key_alias.is_some())
            .and_then(|r| r.key_alias.clone())
    };
    Ok(Json(Value::Array(
        sum_by(&rows, |r| r.api_key.as_str())
            .into_iter()
            .take(q.limit.unwrap_or(usize::MAX))
            .map(|(k, spend, _)| {
                json!({"api_key": k, "total_spend": spend, "key_alias": alias(k), "key_name": Value::Null})
            })
            .collect(),
    )))
}

pub async fn global_spend_models(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DatesQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let (first, last) = last_30_days();
    let rows = daily_rows(&st, &first, &last, false).await?;
    Ok(Json(Value::Array(
        sum_by(&rows, |r| r.model.as_str())
            .into_iter()
            .take(q.limit.unwrap_or(10))
            .map(|(m, spend, _)| json!({"model": m, "total_spend": spend}))
            .collect(),
    )))
}

pub async fn global_spend_report(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DatesQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    if q.start_date.is_none() || q.end_date.is_none() {
        return Err(ApiError::bad_request(
            "Please provide start_date and end_date (YYYY-MM-DD)",
        ));
    }
    let (first, last) = day_bounds(&q)?;
    let rows = daily_rows(&st, &first, &last, false).await?;
    let group_by = q.group_by.as_deref().unwrap_or("team");
    let out = match group_by {
        "api_key" => {
            let mut keys: BTreeMap<&str, BTreeMap<&str, (f64, i64, i64)>> = BTreeMap::new();
            for r in &rows {
                let e = keys
                    .entry(&r.api_key)
                    .or_default()
                    .entry(&r.model)
                    .or_default();
                e.0 += r.spend;
                e.1 += r.prompt_tokens;
                e.2 += r.completion_tokens;
            }
            let mut v: Vec<Value> = keys
                .into_iter()
                .map(|(k, models)| {
                    let (c, i, o) = models.values().fold((0.0, 0, 0), |a, m| {
                        (a.0 + m.0, a.1 + m.1, a.2 + m.2)
                    });
                    json!({
                        "api_key": k, "total_cost": c, "total_input_tokens": i, "total_output_tokens": o,
                        "model_details": models.iter().map(|(m, (c, i, o))| json!({
                            "model": m, "total_cost": c, "total_input_tokens": i, "total_output_tokens": o,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            v.sort_by(|a, b| {
                b["total_cost"]
                    .as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&a["total_cost"].as_f64().unwrap_or(0.0))
            });
            v
        }
        "team" | "customer" => {
            let (list, name) = if group_by == "team" {
                ("teams", "team_name")
            } else {
                ("customers", "customer")
            };
            let mut days: BTreeMap<&str, BTreeMap<&str, Vec<&DailyRow>>> = BTreeMap::new();
            for r in &rows {
                let who = if group_by == "team" {
                    &r.team_id
                } else {
                    &r.end_user
                };
                days.entry(&r.day)
                    .or_default()
                    .entry(who)
                    .or_default()
                    .push(r);
            }
            days.into_iter()
                .map(|(day, groups)| {
                    let entries: Vec<Value> = groups
                        .into_iter()
                        .map(|(who, rs)| {
                            let mut meta: BTreeMap<(&str, &str), (f64, i64)> = BTreeMap::new();
                            for r in &rs {
                                let e = meta.entry((&r.model, &r.api_key)).or_default();
                                e.0 += r.spend;
                                e.1 += r.total_tokens;
                            }
                            let label = if who.is_empty() && group_by == "team" {
                                "Unassigned"
                            } else {
                                who
                            };
                            json!({
                                name: label,
                                "total_spend": rs.iter().map(|r| r.spend).sum::<f64>(),
                                "metadata": meta.into_iter().map(|((m, k), (s, t))| json!({
                                    "model": m, "api_key": k, "spend": s, "total_tokens": t,
                                })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    json!({"group_by_day": format!("{day}T00:00:00+00:00"), list: entries})
                })
                .collect()
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "group_by must be team, customer or api_key, got \"{other}\""
            ))
            .with_param("group_by"));
        }
    };
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
pub struct CalculateBody {
    model: Option<String>,
    messages: Option<Vec<Value>>,
    completion_response: Option<Value>,
}

/// `POST /spend/calculate`: `{"model","messages"}` (prompt cost, before a call) or
/// `{"completion_response"}` (cost of an answer).
pub async fn spend_calculate(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CalculateBody>,
) -> ApiResult<Json<Value>> {
    st.auth.authenticate(&headers).await?;
    let (model, usage) = match (&body.completion_response, &body.model) {
        (Some(resp), _) => {
            let usage: Usage = resp
                .get("usage")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| ApiError::bad_request(format!("completion_response.usage: {e}")))?
                .unwrap_or_default();
            let model = resp
                .get("model")
                .and_then(Value::as_str)
                .or(body.model.as_deref())
                .unwrap_or_default()
                .to_owned();
            (model, usage)
        }
        (None, Some(model)) => {
            let text: String = body
                .messages
                .iter()
                .flatten()
                .map(|m| match m.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let n = body.messages.as_ref().map(Vec::len).unwrap_or(0) as u64;
            let prompt = if text.is_empty() {
                0
            } else {
                estimate_tokens(&text)
            } + 3 * n;
            (
                model.clone(),
                Usage {
                    prompt_tokens: prompt,
                    total_tokens: prompt,
                    ..Usage::default()
                },
            )
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Bad Request - Either 'model' or 'completion_response' must be provided",
            ));
        }
    };
    // A configured model group is priced as its deployment; anything else by the table.
    let dep = st
        .router
        .resolve_group(&model)
        .and_then(|g| st.router.deployments().find(|d| d.config.model_name == g));
    let cost = match dep {
        Some(d) => st.prices.cost(&d.config, &d.config.upstream_model, &usage),
        None => match st.prices.lookup(&model) {
            Some((_, p)) => cost_with(p, &usage, None),
            None => 0.0,
        },
    };
    Ok(Json(json!({"cost": cost})))
}

/// `GET /metrics`: Prometheus text (public, as LiteLLM's is by default).
pub async fn metrics(State(st): State<AppState>) -> Response {
    let m = crate::observe::metrics::global();
    for d in st.router.deployments() {
        let base = d.api_base();
        m.set_deployment_state(
            [
                &d.config.upstream_model,
                &d.config.id,
                &base,
                d.config.provider.name,
            ],
            d.health.state(),
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        m.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ranges() {
        let (s, e) = range(Some("2024-01-01"), Some("2024-01-02")).unwrap();
        assert_eq!(
            e.unwrap() - s.unwrap(),
            2 * 86_400_000,
            "end date inclusive"
        );
        assert!(range(Some("yesterday"), None).is_err());
        assert!(range(Some("2024-01-01 10:00:00"), None).is_ok());
    }

    #[test]
    fn summary_pads_days_like_litellm() {
        let rows = vec![DailyRow {
            day: "2024-01-01".into(),
            api_key: "k".into(),
            model: "gpt-4o".into(),
            user_id: "u".into(),
            spend: 1.5,
            ..Default::default()
        }];
        let v = daily_summary(&rows, "2024-01-03");
        assert_eq!(v.as_array().unwrap().len(), 3);
        assert_eq!(v[0]["spend"], 1.5);
        assert_eq!(v[0]["k"], 1.5);
        assert_eq!(v[0]["models"]["gpt-4o"], 1.5);
        assert_eq!(v[2]["startTime"], "2024-01-03");
    }
}
