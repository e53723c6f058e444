//! `/customer/*` (also `/end_user/*`): end users, named by the OpenAI `user` field, with a
//! budget row holding their limits.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::budgets::{self, budget_json, has_budget_fields};
use super::{Fields, admin, db, ids, object, store, with_extra};
use crate::auth::Kind;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::end_users::EndUserRow;

const KNOWN: &[&str] = &[
    "user_id",
    "alias",
    "blocked",
    "budget_id",
    "allowed_model_region",
    "default_model",
    "max_budget",
    "soft_budget",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "model_max_budget",
    "spend",
];

async fn end_user_json(st: &AppState, e: &EndUserRow) -> Value {
    let b = e
        .budget_id
        .as_deref()
        .and_then(|b| st.auth.directory.budget(b));
    let spend = st
        .auth
        .live_spend(
            Kind::EndUser,
            &e.user_id,
            e.spend,
            b.as_ref().and_then(|b| b.budget_duration.as_deref()),
            e.budget_reset_at,
        )
        .await;
    with_extra(
        json!({
        "user_id": e.user_id,
        "alias": e.alias,
        "spend": spend,
        "blocked": e.blocked,
        "allowed_model_region": e.allowed_model_region,
        "default_model": e.default_model,
        "budget_id": e.budget_id,
        "litellm_budget_table": b.as_deref().map(budget_json),
        }),
        &e.extra,
    )
}

/// Applies customer fields; inline budget fields go to the customer's budget row.
async fn apply(st: &AppState, e: &mut EndUserRow, f: &Fields, now: i64) -> ApiResult<()> {
    let store = store(st)?;
    if f.has("alias") {
        e.alias = f.str("alias")?;
    }
    if let Some(b) = f.bool("blocked")? {
        e.blocked = b;
    }
    if f.has("allowed_model_region") {
        e.allowed_model_region = f.str("allowed_model_region")?;
        if let Some(r) = &e.allowed_model_region
            && r != "eu"
            && r != "us"
        {
            return Err(
                ApiError::bad_request("allowed_model_region must be \"eu\" or \"us\"")
                    .with_param("allowed_model_region"),
            );
        }
    }
    if f.has("default_model") {
        e.default_model = f.str("default_model")?;
    }
    if f.has("budget_id") {
        e.budget_id = f.str("budget_id")?;
        if let Some(b) = &e.budget_id
            && store.get_budget(b).await.map_err(db)?.is_none()
        {
            return Err(
                ApiError::bad_request(format!("Budget id = {b} does not exist."))
                    .with_param("budget_id"),
            );
        }
    }
    if has_budget_fields(f) {
        let mut b = match &e.budget_id {
            Some(id) => store
                .get_budget(id)
                .await
                .map_err(db)?
                .unwrap_or_else(|| budgets::fresh(id.clone(), now, None)),
            None => budgets::fresh(uuid::Uuid::new_v4().to_string(), now, None),
        };
        budgets::apply(&mut b, f, now)?;
        store.put_budget(&b).await.map_err(db)?;
        e.budget_reset_at = b.budget_reset_at;
        e.budget_id = Some(b.budget_id.clone());
        st.auth.directory.put_budget(b);
    }
    if let (Value::Object(extra), Value::Object(cur)) = (f.extra(KNOWN), &mut e.extra) {
        cur.extend(extra);
    }
    e.updated_at = Some(now);
    Ok(())
}

fn user_id(f: &Fields) -> ApiResult<String> {
    f.str("user_id")?
        .or(f.str("end_user_id")?)
        .ok_or_else(|| ApiError::bad_request("user_id is required").with_param("user_id"))
}

pub async fn new(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/customer/new").await?;
    let f = object(body)?;
    let id = user_id(&f)?;
    let store = store(&st)?;
    if store.get_end_user(&id).await.map_err(db)?.is_some() {
        return Err(ApiError::bad_request(format!(
            "Customer already exists, passed user_id={id}. Please use a different user_id."
        ))
        .with_param("user_id"));
    }
    let now = st.auth.now_ms();
    let mut e = EndUserRow {
        user_id: id,
        extra: json!({}),
        created_at: Some(now),
        ..EndUserRow::default()
    };
    apply(&st, &mut e, &f, now).await?;
    e.spend = f.money("spend")?.unwrap_or(0.0);
    store.put_end_user(&e).await.map_err(db)?;
    st.auth.directory.put_end_user(e.clone());
    Ok(Json(end_user_json(&st, &e).await))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    end_user_id: Option<String>,
    user_id: Option<String>,
}

async fn load(st: &AppState, id: &str) -> ApiResult<EndUserRow> {
    store(st)?
        .get_end_user(id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found(format!("Customer not found, passed end_user_id={id}")))
}

pub async fn info(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<InfoQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/customer/info").await?;
    let id = q.end_user_id.or(q.user_id).ok_or_else(|| {
        ApiError::bad_request("end_user_id is required").with_param("end_user_id")
    })?;
    let e = load(&st, &id).await?;
    Ok(Json(end_user_json(&st, &e).await))
}

pub async fn update(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/customer/update").await?;
    let f = object(body)?;
    let mut e = load(&st, &user_id(&f)?).await?;
    apply(&st, &mut e, &f, st.auth.now_ms()).await?;
    store(&st)?.update_end_user(&e).await.map_err(db)?;
    st.auth.directory.put_end_user(e.clone());
    Ok(Json(end_user_json(&st, &e).await))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/customer/delete").await?;
    let f = object(body)?;
    let user_ids = ids(&f, "user_ids")?;
    let store = store(&st)?;
    for id in &user_ids {
        load(&st, id).await?;
    }
    for id in &user_ids {
        store.delete_end_user(id).await.map_err(db)?;
        st.auth.directory.remove_end_user(id);
    }
    Ok(Json(json!({"deleted_customers": user_ids})))
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/customer/list").await?;
    let all = store(&st)?.all_end_users().await.map_err(db)?;
    let mut out = Vec::with_capacity(all.len());
    for e in &all {
        out.push(end_user_json(&st, e).await);
    }
    Ok(Json(Value::Array(out)))
}

async fn set_blocked(
    st: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    blocked: bool,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/customer/block").await?;
    let f = object(body)?;
    let user_ids = ids(&f, "user_ids")?;
    let store = store(&st)?;
    let now = st.auth.now_ms();
    let mut out = Vec::new();
    for id in &user_ids {
        let mut e = load(&st, id).await?;
        e.blocked = blocked;
        e.updated_at = Some(now);
        store.update_end_user(&e).await.map_err(db)?;
        st.auth.directory.put_end_user(e.clone());
        out.push(end_user_json(&st, &e).await);
    }
    Ok(Json(json!({"blocked_users": user_ids, "customers": out})))
}

pub async fn block(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    set_blocked(st, headers, body, true).await
}

pub async fn unblock(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    set_blocked(st, headers, body, false).await
}
