//! `/key/*`: generate, info (and `/v2/key/info`), update, delete, list, aliases, regenerate,
//! block and unblock virtual keys, and reset a key's spend.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Fields, admin, db, ids, object, store, ts, with_extra};
use crate::auth::duration;
use crate::auth::{Kind, hash_token};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::keys::{KeyFilter, KeyRow};

/// Request fields the key row holds in its own columns.
const KNOWN: &[&str] = &[
    "key",
    "key_alias",
    "duration",
    "expires",
    "models",
    "aliases",
    "config",
    "spend",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "budget_id",
    "model_max_budget",
    "user_id",
    "team_id",
    "organization_id",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "metadata",
    "permissions",
    "blocked",
    "new_key",
    "grace_period",
    "key_name",
    "token",
];

/// A new `sk-` key: 16 random bytes, URL-safe base64 (LiteLLM's `token_urlsafe(16)`).
pub fn new_key() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// `sk-...abcd`.
pub fn key_name(key: &str) -> String {
    format!("sk-...{}", crate::auth::tail(key))
}

/// Applies the request's fields to a key.
pub async fn apply(st: &AppState, k: &mut KeyRow, f: &Fields, now: i64) -> ApiResult<()> {
    let store = store(st)?;
    if f.has("key_alias") {
        k.key_alias = f.str("key_alias")?;
    }
    if f.has("duration") {
        k.expires = match f.str("duration")?.as_deref() {
            None | Some("-1") => None,
            Some(d) => Some(duration::add(
                duration::parse(d).map_err(|e| ApiError::bad_request(e).with_param("duration"))?,
                now,
            )),
        };
    } else if f.has("expires") {
        k.expires = match f.str("expires")? {
            None => None,
            Some(s) => Some(duration::parse_iso(&s).ok_or_else(|| {
                ApiError::bad_request("expires must be an ISO-8601 datetime").with_param("expires")
            })?),
        };
    }
    if let Some(m) = f.list("models")? {
        k.models = m;
    }
    if f.has("max_budget") {
        k.max_budget = f.money("max_budget")?;
    }
    if f.has("soft_budget") {
        k.soft_budget = f.money("soft_budget")?;
    }
    f.set_budget_duration(&mut k.budget_duration, &mut k.budget_reset_at, now)?;
    f.set_limits(
        &mut k.max_parallel_requests,
        &mut k.tpm_limit,
        &mut k.rpm_limit,
    )?;
    for (name, slot) in [
        ("aliases", &mut k.aliases),
        ("config", &mut k.config),
        ("model_max_budget", &mut k.model_max_budget),
        ("metadata", &mut k.metadata),
        ("permissions", &mut k.permissions),
    ] {
        if f.has(name) {
            *slot = f.obj(name)?.unwrap_or_else(|| json!({}));
        }
    }
    if f.has("team_id") {
        k.team_id = f.str("team_id")?;
        if let Some(t) = &k.team_id
            && store.get_team(t).await.map_err(db)?.is_none()
        {
            return Err(ApiError::bad_request(format!(
                "Team id = {t} does not exist. Create it with /team/new first."
            ))
            .with_param("team_id"));
        }
    }
    if f.has("user_id") {
        k.user_id = f.str("user_id")?;
    }
    if f.has("budget_id") {
        k.budget_id = f.str("budget_id")?;
    }
    if f.has("organization_id") {
        k.organization_id = f.str("organization_id")?;
    }
    if let Some(b) = f.bool("blocked")? {
        k.blocked = b;
    }
    if let Value::Object(extra) = f.extra(KNOWN)
        && let Value::Object(cur) = &mut k.extra
    {
        cur.extend(extra);
    }
    k.updated_at = now;
    Ok(())
}

/// The key as `/key/info` and `/key/list` show it.
pub async fn key_json(st: &AppState, k: &KeyRow) -> Value {
    let spend = st
        .auth
        .live_spend(
            Kind::Key,
            &k.token,
            k.spend,
            k.budget_duration.as_deref(),
            k.budget_reset_at,
        )
        .await;
    with_extra(
        json!({
        "token": k.token,
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "spend": spend,
        "max_budget": k.max_budget,
        "soft_budget": k.soft_budget,
        "expires": ts(k.expires),
        "models": k.models,
        "aliases": k.aliases,
        "config": k.config,
        "user_id": k.user_id,
        "team_id": k.team_id,
        "budget_id": k.budget_id,
        "organization_id": k.organization_id,
        "max_parallel_requests": k.max_parallel_requests,
        "tpm_limit": k.tpm_limit,
        "rpm_limit": k.rpm_limit,
        "model_max_budget": k.model_max_budget,
        "model_spend": k.model_spend,
        "metadata": k.metadata,
        "permissions": k.permissions,
        "budget_duration": k.budget_duration,
        "budget_reset_at": ts(k.budget_reset_at),
        "blocked": k.blocked,
        "created_at": ts(Some(k.created_at)),
        "updated_at": ts(Some(k.updated_at)),
        "created_by": k.created_by,
        "updated_by": k.updated_by,
        }),
        &k.extra,
    )
}

/// Creates a key from generate-style fields; returns it with its plaintext.
pub async fn create(
    st: &AppState,
    f: &Fields,
    created_by: Option<String>,
) -> ApiResult<(String, KeyRow)> {
    let store = store(st)?;
    let key = match f.str("key")? {
        Some(k) if !k.starts_with("sk-") => {
            return Err(ApiError::bad_request(
                "Invalid key format. The key must start with 'sk-'.",
            )
            .with_param("key"));
        }
        Some(k) => k,
        None => new_key(),
    };
    let token = hash_token(&key);
    if store.get_key(&token).await.map_err(db)?.is_some() {
        return Err(ApiError::bad_request("This key already exists.").with_param("key"));
    }
    let now = st.auth.now_ms();
    let mut k = KeyRow {
        token,
        key_name: Some(key_name(&key)),
        aliases: json!({}),
        config: json!({}),
        model_max_budget: json!({}),
        model_spend: json!({}),
        metadata: json!({}),
        permissions: json!({}),
        extra: json!({}),
        created_at: now,
        created_by: created_by.clone(),
        updated_by: created_by,
        ..KeyRow::default()
    };
    apply(st, &mut k, f, now).await?;
    k.spend = f.money("spend")?.unwrap_or(0.0);
    store.put_key(&k).await.map_err(db)?;
    st.auth.directory.put_key(k.clone());
    if k.spend > 0.0 {
        st.auth
            .set_spend(
                Kind::Key,
                &k.token,
                k.spend,
                k.budget_duration.as_deref(),
                k.budget_reset_at,
            )
            .await;
    }
    Ok((key, k))
}

/// The generate/regenerate response: the key object plus its plaintext (shown only now).
async fn with_plaintext(st: &AppState, key: &str, k: &KeyRow, f: &Fields) -> Value {
    let mut v = key_json(st, k).await;
    if let Value::Object(o) = &mut v {
        for (name, val) in &f.0 {
            if !o.contains_key(name) && name != "key" && name != "new_key" {
                o.insert(name.clone(), val.clone());
            }
        }
        o.insert("key".into(), Value::String(key.to_owned()));
        o.insert("token_id".into(), Value::String(k.token.clone()));
        o.insert("litellm_budget_table".into(), Value::Null);
    }
    v
}

pub async fn generate(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = admin(&st, &headers, "/key/generate").await?;
    let f = object(body)?;
    let (key, k) = create(&st, &f, caller.user_id.clone()).await?;
    Ok(Json(with_plaintext(&st, &key, &k, &f).await))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    key: Option<String>,
}

pub async fn info(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<InfoQuery>,
) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let store = store(&st)?;
    let (asked, hash) = match &q.key {
        Some(k) => (k.clone(), hash_token(k)),
        None => match &caller.key_hash {
            Some(h) => (h.clone(), h.clone()),
            None => {
                return Err(ApiError::bad_request(
                    "key is required: /key/info?key=sk-... (or its hash).",
                ));
            }
        },
    };
    if !caller.is_admin && caller.key_hash.as_deref() != Some(hash.as_str()) {
        return Err(ApiError::forbidden(
            "You can only view the info of the key you call with. Use the master key to view other keys.",
        ));
    }
    let Some(k) = store.get_key(&hash).await.map_err(db)? else {
        return Err(ApiError::not_found(format!(
            "Key not found: {}",
            short(&asked)
        )));
    };
    Ok(Json(json!({"key": asked, "info": key_json(&st, &k).await})))
}

/// `POST /v2/key/info` `{"keys": [...]}` → `{"key": [...], "info": [...]}`: several keys at
/// once (keys or hashes). Keys that do not exist are left out of `info`; a caller that is not
/// an admin may only ask about its own key.
pub async fn info_v2(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let f = object(body)?;
    let keys: Vec<String> = match f.0.get("keys") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::bad_request("keys must be a list of strings.").with_param("keys")
                })
            })
            .collect::<ApiResult<_>>()?,
        _ => {
            return Err(
                ApiError::bad_request("keys is required: {\"keys\": [\"sk-...\"]}.")
                    .with_param("keys"),
            );
        }
    };
    let store = store(&st)?;
    let mut info = Vec::with_capacity(keys.len());
    for k in &keys {
        let hash = hash_token(k);
        if !caller.is_admin && caller.key_hash.as_deref() != Some(hash.as_str()) {
            return Err(ApiError::forbidden(
                "You can only view the info of the key you call with. Use the master key to view other keys.",
            ));
        }
        if let Some(row) = store.get_key(&hash).await.map_err(db)? {
            info.push(key_json(&st, &row).await);
        }
    }
    Ok(Json(json!({"key": keys, "info": info})))
}

/// `GET /key/aliases`: the distinct aliases of all keys (admin).
pub async fn aliases(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/key/aliases").await?;
    let store = store(&st)?;
    let mut aliases: Vec<String> = Vec::new();
    for page in 1.. {
        let (rows, _) = store
            .list_keys(&KeyFilter::default(), page, 1000)
            .await
            .map_err(db)?;
        let last = rows.len() < 1000;
        aliases.extend(rows.into_iter().filter_map(|k| k.key_alias));
        if last {
            break;
        }
    }
    aliases.sort();
    aliases.dedup();
    Ok(Json(
        json!({"aliases": aliases, "total_count": aliases.len()}),
    ))
}

/// `POST /key/{key}/reset_spend` `{"reset_to": 0.0}` (admin): sets the key's spend down to
/// `reset_to` (not negative, not above what it has spent), in the database and in every
/// budget counter at once.
pub async fn reset_spend(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/key/{key}/reset_spend").await?;
    let f = object(body)?;
    let reset_to = f
        .money("reset_to")?
        .ok_or_else(|| ApiError::bad_request("reset_to is required.").with_param("reset_to"))?;
    let store = store(&st)?;
    let hash = hash_token(&key);
    let Some(mut k) = store.get_key(&hash).await.map_err(db)? else {
        return Err(ApiError::not_found(format!(
            "Key not found: {}",
            short(&key)
        )));
    };
    let previous = st
        .auth
        .live_spend(
            Kind::Key,
            &k.token,
            k.spend,
            k.budget_duration.as_deref(),
            k.budget_reset_at,
        )
        .await;
    if reset_to > previous {
        return Err(ApiError::bad_request(format!(
            "reset_to ({reset_to}) cannot be greater than the key's current spend ({previous})."
        ))
        .with_param("reset_to"));
    }
    set_spend(&st, &mut k, reset_to).await?;
    st.auth.directory.put_key(k.clone());
    Ok(Json(json!({
        "key_hash": k.token,
        "spend": reset_to,
        "previous_spend": previous,
        "max_budget": k.max_budget,
        "budget_reset_at": ts(k.budget_reset_at),
    })))
}

/// Sets a key's spend in the store and in every budget counter (an admin's edit or reset).
async fn set_spend(st: &AppState, k: &mut KeyRow, spend: f64) -> ApiResult<()> {
    store(st)?
        .set_key_spend(&k.token, spend)
        .await
        .map_err(db)?;
    k.spend = spend;
    st.auth
        .set_spend(
            Kind::Key,
            &k.token,
            spend,
            k.budget_duration.as_deref(),
            k.budget_reset_at,
        )
        .await;
    Ok(())
}

fn short(k: &str) -> String {
    if k.starts_with("sk-") {
        key_name(k)
    } else {
        k.to_owned()
    }
}

async fn load(st: &AppState, f: &Fields) -> ApiResult<KeyRow> {
    let key = f
        .str("key")?
        .ok_or_else(|| ApiError::bad_request("key is required.").with_param("key"))?;
    store(st)?
        .get_key(&hash_token(&key))
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found(format!("Key not found: {}", short(&key))))
}

pub async fn update(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = admin(&st, &headers, "/key/update").await?;
    let f = object(body)?;
    let mut k = load(&st, &f).await?;
    let now = st.auth.now_ms();
    apply(&st, &mut k, &f, now).await?;
    k.updated_by = caller.user_id.clone();
    let store = store(&st)?;
    store.update_key(&k).await.map_err(db)?;
    if let Some(spend) = f.money("spend")? {
        set_spend(&st, &mut k, spend).await?;
    }
    st.auth.directory.put_key(k.clone());
    Ok(Json(key_json(&st, &k).await))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = st.auth.authenticate(&headers).await?;
    let f = object(body)?;
    let store = store(&st)?;
    let mut targets: Vec<(String, String)> = Vec::new();
    if f.has("key_aliases") {
        for alias in ids(&f, "key_aliases")? {
            let rows = store.keys_by_alias(&alias).await.map_err(db)?;
            if rows.is_empty() {
                return Err(ApiError::not_found(format!("No key with alias {alias}")));
            }
            targets.extend(rows.into_iter().map(|r| (alias.clone(), r.token)));
        }
    } else {
        for k in ids(&f, "keys")? {
            let h = hash_token(&k);
            targets.push((k, h));
        }
    }
    if !caller.is_admin
        && targets
            .iter()
            .any(|(_, h)| caller.key_hash.as_deref() != Some(h.as_str()))
    {
        return Err(ApiError::forbidden(
            "Only proxy admin can delete other keys. A key may delete only itself.",
        ));
    }
    let mut deleted = Vec::new();
    let mut missing = Vec::new();
    for (asked, hash) in targets {
        if store.delete_key(&hash).await.map_err(db)? {
            st.auth.directory.remove_key(&hash);
            deleted.push(asked);
        } else {
            missing.push(short(&asked));
        }
    }
    if deleted.is_empty() {
        return Err(ApiError::not_found(format!(
            "Keys not found: {}",
            missing.join(", ")
        )));
    }
    Ok(Json(json!({"deleted_keys": deleted})))
}

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<i64>,
    size: Option<i64>,
    user_id: Option<String>,
    team_id: Option<String>,
    organization_id: Option<String>,
    key_alias: Option<String>,
    key_hash: Option<String>,
    return_full_object: Option<bool>,
}

pub async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/key/list").await?;
    let page = q.page.unwrap_or(1);
    let size = q.size.unwrap_or(10);
    if page < 1 {
        return Err(ApiError::bad_request("page must be at least 1").with_param("page"));
    }
    if !(1..=100).contains(&size) {
        return Err(ApiError::bad_request("size must be between 1 and 100").with_param("size"));
    }
    let filter = KeyFilter {
        user_id: q.user_id,
        team_id: q.team_id,
        key_alias: q.key_alias,
        key_hash: q.key_hash.map(|h| hash_token(&h)),
        organization_id: q.organization_id,
    };
    let (rows, total) = store(&st)?
        .list_keys(&filter, page, size)
        .await
        .map_err(db)?;
    let mut keys = Vec::with_capacity(rows.len());
    for r in &rows {
        if q.return_full_object == Some(true) {
            keys.push(key_json(&st, r).await);
        } else {
            keys.push(Value::String(r.token.clone()));
        }
    }
    Ok(Json(json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": (total + size - 1) / size,
    })))
}

pub async fn regenerate(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/key/regenerate").await?;
    let f = object(body)?;
    regen(st, f).await
}

pub async fn regenerate_path(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers, "/key/{key}/regenerate").await?;
    let mut f = match body {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Fields(Map::new()),
        other => object(other)?,
    };
    f.0.insert("key".into(), Value::String(key));
    regen(st, f).await
}

async fn regen(st: AppState, mut f: Fields) -> ApiResult<Json<Value>> {
    let mut k = load(&st, &f).await?;
    let new = match f.str("new_key")? {
        Some(n) if !n.starts_with("sk-") => {
            return Err(
                ApiError::bad_request("new_key must start with 'sk-'.").with_param("new_key")
            );
        }
        Some(n) => n,
        None => new_key(),
    };
    let store = store(&st)?;
    let now = st.auth.now_ms();
    let old = k.token.clone();
    // The spend counted so far moves to the new hash with the key.
    k.spend = st
        .auth
        .live_spend(
            Kind::Key,
            &old,
            k.spend,
            k.budget_duration.as_deref(),
            k.budget_reset_at,
        )
        .await;
    let new_hash = hash_token(&new);
    if !store
        .rename_key(&old, &new_hash, &key_name(&new), now)
        .await
        .map_err(db)?
    {
        return Err(ApiError::not_found("Key not found"));
    }
    k.token = new_hash;
    k.key_name = Some(key_name(&new));
    f.0.remove("key");
    apply(&st, &mut k, &f, now).await?;
    store.update_key(&k).await.map_err(db)?;
    st.auth.directory.remove_key(&old);
    st.auth.directory.put_key(k.clone());
    if k.spend > 0.0 {
        st.auth
            .set_spend(
                Kind::Key,
                &k.token,
                k.spend,
                k.budget_duration.as_deref(),
                k.budget_reset_at,
            )
            .await;
    }
    Ok(Json(with_plaintext(&st, &new, &k, &f).await))
}

async fn set_blocked(
    st: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    blocked: bool,
) -> ApiResult<Json<Value>> {
    admin(
        &st,
        &headers,
        if blocked {
            "/key/block"
        } else {
            "/key/unblock"
        },
    )
    .await?;
    let f = object(body)?;
    let mut k = load(&st, &f).await?;
    k.blocked = blocked;
    k.updated_at = st.auth.now_ms();
    store(&st)?.update_key(&k).await.map_err(db)?;
    st.auth.directory.put_key(k.clone());
    Ok(Json(key_json(&st, &k).await))
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
