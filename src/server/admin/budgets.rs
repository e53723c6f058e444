//! `/budget/*`: named budgets that customers (and keys) point at.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Fields, admin, db, object, store, ts};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::budgets::BudgetRow;

/// Applies budget fields (shared with `/customer/*`, which accepts them inline).
pub fn apply(b: &mut BudgetRow, f: &Fields, now: i64) -> ApiResult<()> {
    if f.has("max_budget") {
        b.max_budget = f.money("max_budget")?;
    }
    if f.has("soft_budget") {
        b.soft_budget = f.money("soft_budget")?;
    }
    f.set_limits(
        &mut b.max_parallel_requests,
        &mut b.tpm_limit,
        &mut b.rpm_limit,
    )?;
    f.set_budget_duration(&mut b.budget_duration, &mut b.budget_reset_at, now)?;
    if f.has("model_max_budget") {
        b.model_max_budget = f.obj("model_max_budget")?.unwrap_or_else(|| json!({}));
    }
    b.updated_at = now;
    Ok(())
}

/// Whether the request carries any budget field.
pub fn has_budget_fields(f: &Fields) -> bool {
    [
        "max_budget",
        "soft_budget",
        "max_parallel_requests",
        "tpm_limit",
        "rpm_limit",
        "budget_duration",
        "model_max_budget",
    ]
    .iter()
    .any(|k| f.has(k))
}

pub fn budget_json(b: &BudgetRow) -> Value {
    json!({
        "budget_id": b.budget_id,
        "max_budget": b.max_budget,
        "soft_budget": b.soft_budget,
        "max_parallel_requests": b.max_parallel_requests,
        "tpm_limit": b.tpm_limit,
        "rpm_limit": b.rpm_limit,
        "budget_duration": b.budget_duration,
        "budget_reset_at": ts(b.budget_reset_at),
        "model_max_budget": b.model_max_budget,
        "created_at": ts(Some(b.created_at)),
        "updated_at": ts(Some(b.updated_at)),
        "created_by": b.created_by,
        "updated_by": b.updated_by,
    })
}

pub fn fresh(id: String, now: i64, by: Option<String>) -> BudgetRow {
    BudgetRow {
        budget_id: id,
        model_max_budget: json!({}),
        created_at: now,
        updated_at: now,
        created_by: by.clone(),
        updated_by: by,
        ..BudgetRow::default()
    }
}

pub async fn new(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = admin(&st, &headers, "/budget/new").await?;
    let f = object(body)?;
    let store = store(&st)?;
    let id = f
        .str("budget_id")?
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if store.get_budget(&id).await.map_err(db)?.is_some() {
        return Err(
            ApiError::bad_request(format!("Budget id = {id} already exists."))
                .with_param("budget_id"),
        );
    }
    let now = st.auth.now_ms();
    let mut b = fresh(id, now, caller.user_id.clone());
    apply(&mut b, &f, now)?;
    store.put_budget(&b).await.map_err(db)?;
    st.auth.directory.put_budget(b.clone());
    Ok(Json(budget_json(&b)))
}

#[derive(Deserialize)]
pub struct BudgetQuery {
    budget_id: Option<String>,
}

async fn load(st: &AppState, id: &str) -> ApiResult<BudgetRow> {
    store(st)?
        .get_budget(id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found(format!("Budget not found, passed budget_id={id}")))
}

pub async fn info_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BudgetQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/budget/info").await?;
    let id = q
        .budget_id
        .ok_or_else(|| ApiError::bad_request("budget_id is required").with_param("budget_id"))?;
    Ok(Json(budget_json(&load(&st, &id).await?)))
}

/// LiteLLM's form: `{"budgets": [ids]}` → a list.
pub async fn info_post(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/budget/info").await?;
    let f = object(body)?;
    let ids = super::ids(&f, "budgets")?;
    let mut out = Vec::new();
    for id in &ids {
        out.push(budget_json(&load(&st, id).await?));
    }
    Ok(Json(Value::Array(out)))
}

pub async fn update(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = admin(&st, &headers, "/budget/update").await?;
    let f = object(body)?;
    let id = f
        .str("budget_id")?
        .ok_or_else(|| ApiError::bad_request("budget_id is required").with_param("budget_id"))?;
    let mut b = load(&st, &id).await?;
    apply(&mut b, &f, st.auth.now_ms())?;
    b.updated_by = caller.user_id.clone();
    store(&st)?.put_budget(&b).await.map_err(db)?;
    st.auth.directory.put_budget(b.clone());
    Ok(Json(budget_json(&b)))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/budget/delete").await?;
    let f = object(body)?;
    let id = f
        .str("id")?
        .or(f.str("budget_id")?)
        .ok_or_else(|| ApiError::bad_request("id is required").with_param("id"))?;
    let b = load(&st, &id).await?;
    store(&st)?.delete_budget(&id).await.map_err(db)?;
    st.auth.directory.remove_budget(&id);
    Ok(Json(budget_json(&b)))
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/budget/list").await?;
    let all = store(&st)?.all_budgets().await.map_err(db)?;
    Ok(Json(Value::Array(all.iter().map(budget_json).collect())))
}
