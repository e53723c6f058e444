//! `/user/*`: internal users, who own keys and belong to teams.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Fields, admin, db, ids, object, store, ts, with_extra};
use crate::auth::Kind;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::keys::KeyFilter;
use crate::store::teams::MemberRow;
use crate::store::users::UserRow;

const KNOWN: &[&str] = &[
    "user_id",
    "user_email",
    "user_alias",
    "user_role",
    "teams",
    "max_budget",
    "budget_duration",
    "models",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "metadata",
    "auto_create_key",
    "send_invite_email",
    "password",
    "spend",
    "key_alias",
    "duration",
];

const ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
    "admin",
    "app_owner",
    "app_user",
    "team",
    "customer",
];

fn apply(u: &mut UserRow, f: &Fields, now: i64) -> ApiResult<()> {
    if f.has("user_email") {
        u.user_email = f.str("user_email")?;
    }
    if f.has("user_alias") {
        u.user_alias = f.str("user_alias")?;
    }
    if f.has("user_role") {
        u.user_role = f.str("user_role")?;
        if let Some(r) = &u.user_role
            && !ROLES.contains(&r.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "Invalid user_role {r}: use one of {}",
                ROLES[..4].join(", ")
            ))
            .with_param("user_role"));
        }
    }
    if let Some(m) = f.list("models")? {
        u.models = m;
    }
    if f.has("max_budget") {
        u.max_budget = f.money("max_budget")?;
    }
    f.set_budget_duration(&mut u.budget_duration, &mut u.budget_reset_at, now)?;
    f.set_limits(
        &mut u.max_parallel_requests,
        &mut u.tpm_limit,
        &mut u.rpm_limit,
    )?;
    if f.has("metadata") {
        u.metadata = f.obj("metadata")?.unwrap_or_else(|| json!({}));
    }
    if let (Value::Object(extra), Value::Object(cur)) = (f.extra(KNOWN), &mut u.extra) {
        cur.extend(extra);
    }
    u.updated_at = now;
    Ok(())
}

pub async fn user_json(st: &AppState, u: &UserRow) -> ApiResult<Value> {
    let teams = store(st)?.user_teams(&u.user_id).await.map_err(db)?;
    let spend = st
        .auth
        .live_spend(
            Kind::User,
            &u.user_id,
            u.spend,
            u.budget_duration.as_deref(),
            u.budget_reset_at,
        )
        .await;
    Ok(with_extra(
        json!({
        "user_id": u.user_id,
        "user_email": u.user_email,
        "user_alias": u.user_alias,
        "user_role": u.user_role,
        "spend": spend,
        "max_budget": u.max_budget,
        "budget_duration": u.budget_duration,
        "budget_reset_at": ts(u.budget_reset_at),
        "models": u.models,
        "tpm_limit": u.tpm_limit,
        "rpm_limit": u.rpm_limit,
        "max_parallel_requests": u.max_parallel_requests,
        "metadata": u.metadata,
        "teams": teams,
        "created_at": ts(Some(u.created_at)),
        "updated_at": ts(Some(u.updated_at)),
        }),
        &u.extra,
    ))
}

pub async fn new(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = admin(&st, &headers, "/user/new").await?;
    let f = object(body)?;
    let store = store(&st)?;
    let user_id = f
        .str("user_id")?
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if store.get_user(&user_id).await.map_err(db)?.is_some() {
        return Err(
            ApiError::bad_request(format!("User id = {user_id} already exists."))
                .with_param("user_id"),
        );
    }
    let now = st.auth.now_ms();
    let mut u = UserRow {
        user_id: user_id.clone(),
        user_role: Some("internal_user".into()),
        metadata: json!({}),
        extra: json!({}),
        created_at: now,
        ..UserRow::default()
    };
    apply(&mut u, &f, now)?;
    let teams = f.list("teams")?.unwrap_or_default();
    for t in &teams {
        if store.get_team(t).await.map_err(db)?.is_none() {
            return Err(
                ApiError::bad_request(format!("Team id = {t} does not exist.")).with_param("teams"),
            );
        }
    }
    store.put_user(&u).await.map_err(db)?;
    for t in &teams {
        store
            .put_member(&MemberRow {
                team_id: t.clone(),
                user_id: user_id.clone(),
                role: "user".into(),
                user_email: u.user_email.clone(),
                created_at: now,
                ..MemberRow::default()
            })
            .await
            .map_err(db)?;
    }
    st.auth.directory.put_user(u.clone());
    let mut out = user_json(&st, &u).await?;
    if f.bool("auto_create_key")?.unwrap_or(true) {
        // The user's first key: same models and limits, owned by the user.
        let mut kf = Map::new();
        kf.insert("user_id".into(), Value::String(user_id.clone()));
        for name in ["models", "key_alias", "duration", "metadata"] {
            if let Some(v) = f.0.get(name) {
                kf.insert(name.into(), v.clone());
            }
        }
        let (key, k) = super::keys::create(&st, &Fields(kf), caller.user_id.clone()).await?;
        if let Value::Object(o) = &mut out {
            o.insert("key".into(), Value::String(key));
            o.insert("token".into(), Value::String(k.token.clone()));
            o.insert("key_name".into(), json!(k.key_name));
            o.insert("expires".into(), ts(k.expires));
        }
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct UserQuery {
    user_id: Option<String>,
}

async fn load(st: &AppState, id: Option<String>) -> ApiResult<UserRow> {
    let id =
        id.ok_or_else(|| ApiError::bad_request("user_id is required").with_param("user_id"))?;
    store(st)?
        .get_user(&id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found(format!("User not found, passed user_id={id}")))
}

pub async fn info(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UserQuery>,
) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let id = q.user_id.or_else(|| caller.user_id.clone());
    if !caller.is_admin && (id.is_none() || id != caller.user_id) {
        return Err(ApiError::forbidden("A key may only view its own user."));
    }
    let u = load(&st, id).await?;
    let store = store(&st)?;
    let (keys, _) = store
        .list_keys(
            &KeyFilter {
                user_id: Some(u.user_id.clone()),
                ..KeyFilter::default()
            },
            1,
            1000,
        )
        .await
        .map_err(db)?;
    let mut kj = Vec::new();
    for k in &keys {
        kj.push(super::keys::key_json(&st, k).await);
    }
    let mut teams = Vec::new();
    for t in store.user_teams(&u.user_id).await.map_err(db)? {
        if let Some(t) = store.get_team(&t).await.map_err(db)? {
            teams.push(super::teams::team_json(&st, &t).await?);
        }
    }
    Ok(Json(json!({
        "user_id": u.user_id,
        "user_info": user_json(&st, &u).await?,
        "keys": kj,
        "teams": teams,
    })))
}

pub async fn update(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/user/update").await?;
    let f = object(body)?;
    let mut u = load(&st, f.str("user_id")?).await?;
    let now = st.auth.now_ms();
    apply(&mut u, &f, now)?;
    store(&st)?.update_user(&u).await.map_err(db)?;
    st.auth.directory.put_user(u.clone());
    Ok(Json(user_json(&st, &u).await?))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/user/delete").await?;
    let f = object(body)?;
    let user_ids = ids(&f, "user_ids")?;
    let store = store(&st)?;
    for id in &user_ids {
        if store.get_user(id).await.map_err(db)?.is_none() {
            return Err(ApiError::not_found(format!(
                "User not found, passed user_id={id}"
            )));
        }
    }
    for id in &user_ids {
        store.delete_user(id).await.map_err(db)?;
        st.auth.directory.remove_user(id);
    }
    Ok(Json(json!({"deleted_users": user_ids})))
}

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<usize>,
    page_size: Option<usize>,
}

pub async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/user/list").await?;
    let page = q.page.unwrap_or(1).max(1);
    let size = q.page_size.unwrap_or(25).clamp(1, 100);
    let all = store(&st)?.all_users().await.map_err(db)?;
    let mut users = Vec::new();
    for u in all.iter().skip((page - 1) * size).take(size) {
        users.push(user_json(&st, u).await?);
    }
    Ok(Json(json!({
        "users": users,
        "total": all.len(),
        "page": page,
        "page_size": size,
        "total_pages": all.len().div_ceil(size),
    })))
}
