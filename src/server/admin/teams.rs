//! `/team/*`: teams, their budgets and limits, and their members.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Fields, admin, db, ids, object, store, ts, with_extra};
use crate::auth::Kind;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::keys::KeyFilter;
use crate::store::teams::{MemberRow, TeamRow};
use crate::store::users::UserRow;

const KNOWN: &[&str] = &[
    "team_id",
    "team_alias",
    "organization_id",
    "members_with_roles",
    "metadata",
    "models",
    "max_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "blocked",
    "spend",
];

fn apply(t: &mut TeamRow, f: &Fields, now: i64) -> ApiResult<()> {
    if f.has("team_alias") {
        t.team_alias = f.str("team_alias")?;
    }
    if f.has("organization_id") {
        t.organization_id = f.str("organization_id")?;
    }
    if let Some(m) = f.list("models")? {
        t.models = m;
    }
    if f.has("max_budget") {
        t.max_budget = f.money("max_budget")?;
    }
    f.set_budget_duration(&mut t.budget_duration, &mut t.budget_reset_at, now)?;
    f.set_limits(
        &mut t.max_parallel_requests,
        &mut t.tpm_limit,
        &mut t.rpm_limit,
    )?;
    if f.has("metadata") {
        t.metadata = f.obj("metadata")?.unwrap_or_else(|| json!({}));
    }
    if let Some(b) = f.bool("blocked")? {
        t.blocked = b;
    }
    if let (Value::Object(extra), Value::Object(cur)) = (f.extra(KNOWN), &mut t.extra) {
        cur.extend(extra);
    }
    t.updated_at = now;
    Ok(())
}

/// Members from a `members_with_roles` / `member` value.
fn members(v: &Value, team_id: &str, now: i64) -> ApiResult<Vec<MemberRow>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        Value::Null => Vec::new(),
        _ => {
            return Err(ApiError::bad_request(
                "member must be an object or a list of objects",
            ));
        }
    };
    items
        .into_iter()
        .map(|m| {
            let user_id = m
                .get("user_id")
                .and_then(Value::as_str)
                .or_else(|| m.get("user_email").and_then(Value::as_str))
                .ok_or_else(|| {
                    ApiError::bad_request("each member needs a user_id or user_email")
                })?;
            Ok(MemberRow {
                team_id: team_id.to_owned(),
                user_id: user_id.to_owned(),
                role: m
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("user")
                    .to_owned(),
                user_email: m
                    .get("user_email")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                spend: 0.0,
                budget_id: None,
                created_at: now,
            })
        })
        .collect()
}

/// Adds members, creating their user rows if they have none.
async fn add_members(st: &AppState, ms: &[MemberRow], now: i64) -> ApiResult<()> {
    let store = store(st)?;
    for m in ms {
        if store.get_user(&m.user_id).await.map_err(db)?.is_none() {
            let u = UserRow {
                user_id: m.user_id.clone(),
                user_email: m.user_email.clone(),
                user_role: Some("internal_user".into()),
                metadata: json!({}),
                extra: json!({}),
                created_at: now,
                updated_at: now,
                ..UserRow::default()
            };
            store.put_user(&u).await.map_err(db)?;
            st.auth.directory.put_user(u);
        }
        store.put_member(m).await.map_err(db)?;
    }
    Ok(())
}

pub async fn team_json(st: &AppState, t: &TeamRow) -> ApiResult<Value> {
    let members = store(st)?.team_members(&t.team_id).await.map_err(db)?;
    let spend = st
        .auth
        .live_spend(
            Kind::Team,
            &t.team_id,
            t.spend,
            t.budget_duration.as_deref(),
            t.budget_reset_at,
        )
        .await;
    Ok(with_extra(
        json!({
        "team_id": t.team_id,
        "team_alias": t.team_alias,
        "organization_id": t.organization_id,
        "spend": spend,
        "max_budget": t.max_budget,
        "budget_duration": t.budget_duration,
        "budget_reset_at": ts(t.budget_reset_at),
        "models": t.models,
        "tpm_limit": t.tpm_limit,
        "rpm_limit": t.rpm_limit,
        "max_parallel_requests": t.max_parallel_requests,
        "blocked": t.blocked,
        "metadata": t.metadata,
        "members_with_roles": members.iter().map(|m| json!({"user_id": m.user_id, "role": m.role, "user_email": m.user_email})).collect::<Vec<_>>(),
        "created_at": ts(Some(t.created_at)),
        "updated_at": ts(Some(t.updated_at)),
        }),
        &t.extra,
    ))
}

pub async fn new(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/team/new").await?;
    let f = object(body)?;
    let store = store(&st)?;
    let team_id = f
        .str("team_id")?
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if store.get_team(&team_id).await.map_err(db)?.is_some() {
        return Err(ApiError::bad_request(format!(
            "Team id = {team_id} already exists. Please use a different team id."
        ))
        .with_param("team_id"));
    }
    let now = st.auth.now_ms();
    let mut t = TeamRow {
        team_id: team_id.clone(),
        metadata: json!({}),
        extra: json!({}),
        created_at: now,
        ..TeamRow::default()
    };
    apply(&mut t, &f, now)?;
    let ms = members(
        f.0.get("members_with_roles").unwrap_or(&Value::Null),
        &team_id,
        now,
    )?;
    store.put_team(&t).await.map_err(db)?;
    add_members(&st, &ms, now).await?;
    st.auth.directory.put_team(t.clone());
    Ok(Json(team_json(&st, &t).await?))
}

#[derive(Deserialize)]
pub struct TeamQuery {
    team_id: Option<String>,
}

async fn load(st: &AppState, id: Option<String>) -> ApiResult<TeamRow> {
    let id =
        id.ok_or_else(|| ApiError::bad_request("team_id is required").with_param("team_id"))?;
    store(st)?
        .get_team(&id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found(format!("Team not found, passed team_id={id}")))
}

pub async fn info(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TeamQuery>,
) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let id = q.team_id.or_else(|| caller.team_id.clone());
    if !caller.is_admin && id.is_some() && id != caller.team_id {
        return Err(ApiError::forbidden("A key may only view its own team."));
    }
    let t = load(&st, id).await?;
    let store = store(&st)?;
    let (keys, _) = store
        .list_keys(
            &KeyFilter {
                team_id: Some(t.team_id.clone()),
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
    let members = store.team_members(&t.team_id).await.map_err(db)?;
    Ok(Json(json!({
        "team_id": t.team_id,
        "team_info": team_json(&st, &t).await?,
        "keys": kj,
        "team_memberships": members.iter().map(|m| json!({"team_id": m.team_id, "user_id": m.user_id, "spend": m.spend, "budget_id": m.budget_id})).collect::<Vec<_>>(),
    })))
}

pub async fn update(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/team/update").await?;
    let f = object(body)?;
    let mut t = load(&st, f.str("team_id")?).await?;
    let now = st.auth.now_ms();
    apply(&mut t, &f, now)?;
    store(&st)?.update_team(&t).await.map_err(db)?;
    st.auth.directory.put_team(t.clone());
    Ok(Json(
        json!({"team_id": t.team_id, "data": team_json(&st, &t).await?}),
    ))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/team/delete").await?;
    let f = object(body)?;
    let team_ids = ids(&f, "team_ids")?;
    let store = store(&st)?;
    for id in &team_ids {
        if store.get_team(id).await.map_err(db)?.is_none() {
            return Err(ApiError::not_found(format!(
                "Team not found, passed team_id={id}"
            )));
        }
    }
    for id in &team_ids {
        let (_, keys) = store.delete_team(id).await.map_err(db)?;
        for hash in &keys {
            st.auth.directory.remove_key(hash);
        }
        st.auth.directory.remove_team(id);
    }
    Ok(Json(json!({"deleted_teams": team_ids})))
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/team/list").await?;
    let teams = store(&st)?.all_teams().await.map_err(db)?;
    let mut out = Vec::with_capacity(teams.len());
    for t in &teams {
        out.push(team_json(&st, t).await?);
    }
    Ok(Json(Value::Array(out)))
}

pub async fn member_add(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/team/member_add").await?;
    let f = object(body)?;
    let t = load(&st, f.str("team_id")?).await?;
    let member =
        f.0.get("member")
            .ok_or_else(|| ApiError::bad_request("member is required").with_param("member"))?;
    let now = st.auth.now_ms();
    let ms = members(member, &t.team_id, now)?;
    add_members(&st, &ms, now).await?;
    Ok(Json(team_json(&st, &t).await?))
}

pub async fn member_delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/team/member_delete").await?;
    let f = object(body)?;
    let t = load(&st, f.str("team_id")?).await?;
    let user = f
        .str("user_id")?
        .or(f.str("user_email")?)
        .ok_or_else(|| ApiError::bad_request("user_id or user_email is required"))?;
    let store = store(&st)?;
    if !store.delete_member(&t.team_id, &user).await.map_err(db)? {
        return Err(ApiError::not_found(format!(
            "User={user} is not a member of team={}",
            t.team_id
        )));
    }
    Ok(Json(team_json(&st, &t).await?))
}

async fn set_blocked(
    st: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    blocked: bool,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/team/block").await?;
    let f = object(body)?;
    let mut t = load(&st, f.str("team_id")?).await?;
    t.blocked = blocked;
    t.updated_at = st.auth.now_ms();
    store(&st)?.update_team(&t).await.map_err(db)?;
    st.auth.directory.put_team(t.clone());
    Ok(Json(team_json(&st, &t).await?))
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
