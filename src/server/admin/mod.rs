//! The management API: virtual keys, teams, users, customers (end users) and budgets, with
//! LiteLLM's paths, request fields and response shapes.
//!
//! Every handler writes through the store and then updates the auth directory, so this
//! instance sees a change at once and the others on their next refresh (or, for a new key, on
//! its first use).

pub mod budgets;
pub mod customers;
pub mod keys;
pub mod teams;
pub mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Map, Value};

use super::body;
use crate::auth::Caller;
use crate::auth::duration;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// The management routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/v2/key/info", post(keys::info_v2))
        .route("/key/aliases", get(keys::aliases))
        .route("/key/{key}/reset_spend", post(keys::reset_spend))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/list", get(keys::list))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/team/new", post(teams::new))
        .route("/team/info", get(teams::info))
        .route("/team/update", post(teams::update))
        .route("/team/delete", post(teams::delete))
        .route("/team/list", get(teams::list))
        .route("/team/member_add", post(teams::member_add))
        .route("/team/member_delete", post(teams::member_delete))
        .route("/team/block", post(teams::block))
        .route("/team/unblock", post(teams::unblock))
        .route("/user/new", post(users::new))
        .route("/user/info", get(users::info))
        .route("/user/update", post(users::update))
        .route("/user/delete", post(users::delete))
        .route("/user/list", get(users::list))
        .route("/customer/new", post(customers::new))
        .route("/customer/info", get(customers::info))
        .route("/customer/update", post(customers::update))
        .route("/customer/delete", post(customers::delete))
        .route("/customer/list", get(customers::list))
        .route("/customer/block", post(customers::block))
        .route("/customer/unblock", post(customers::unblock))
        .route("/end_user/new", post(customers::new))
        .route("/end_user/info", get(customers::info))
        .route("/end_user/update", post(customers::update))
        .route("/end_user/delete", post(customers::delete))
        .route("/end_user/list", get(customers::list))
        .route("/end_user/block", post(customers::block))
        .route("/end_user/unblock", post(customers::unblock))
        .route("/budget/new", post(budgets::new))
        .route(
            "/budget/info",
            get(budgets::info_get).post(budgets::info_post),
        )
        .route("/budget/update", post(budgets::update))
        .route("/budget/delete", post(budgets::delete))
        .route("/budget/list", get(budgets::list))
}

/// The caller, who must hold the master key (or be a `proxy_admin` user).
pub async fn admin(st: &AppState, headers: &HeaderMap, route: &str) -> ApiResult<Caller> {
    let caller = st.auth.authenticate(headers).await?;
    if !caller.is_admin {
        return Err(ApiError::forbidden(format!(
            "Only proxy admin can be used to generate, delete, update info for keys/users/teams/customers/budgets. Route={route}. Use the master key."
        )));
    }
    Ok(caller)
}

pub fn store(st: &AppState) -> ApiResult<&Store> {
    st.auth.store().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_db_connection",
            "No database connected: keys and budgets need a store.",
        )
    })
}

pub fn db(e: StoreError) -> ApiError {
    tracing::error!("store error: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_server_error",
        format!("Database error: {e}"),
    )
}

/// A JSON object body.
pub fn object(body: Result<Bytes, BytesRejection>) -> ApiResult<Fields> {
    let raw = body::bytes(body)?;
    match body::json::<Value>(&raw)? {
        Value::Object(m) => Ok(Fields(m)),
        _ => Err(ApiError::bad_request("Request body must be a JSON object.")),
    }
}

/// Typed access to request fields, with LiteLLM-style 400s for wrong types and values.
pub struct Fields(pub Map<String, Value>);

impl Fields {
    /// Present (even if null).
    pub fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    fn bad(k: &str, what: &str) -> ApiError {
        ApiError::bad_request(format!("Invalid value for {k}: expected {what}.")).with_param(k)
    }

    pub fn str(&self, k: &str) -> ApiResult<Option<String>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Self::bad(k, "a string")),
        }
    }

    pub fn f64(&self, k: &str) -> ApiResult<Option<f64>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Self::bad(k, "a number")),
            Some(_) => Err(Self::bad(k, "a number")),
        }
    }

    /// A money amount: a number, not negative.
    pub fn money(&self, k: &str) -> ApiResult<Option<f64>> {
        match self.f64(k)? {
            Some(v) if v < 0.0 || !v.is_finite() => Err(ApiError::bad_request(format!(
                "{k} cannot be negative. Got {k}={v}"
            ))
            .with_param(k)),
            v => Ok(v),
        }
    }

    /// A limit: a whole number, not negative.
    pub fn limit(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if v >= 0 => Ok(Some(v)),
                _ => Err(Self::bad(k, "a whole number >= 0")),
            },
            Some(_) => Err(Self::bad(k, "a whole number >= 0")),
        }
    }

    pub fn bool(&self, k: &str) -> ApiResult<Option<bool>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Self::bad(k, "true or false")),
        }
    }

    pub fn list(&self, k: &str) -> ApiResult<Option<Vec<String>>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| Self::bad(k, "a list of strings")),
            Some(_) => Err(Self::bad(k, "a list of strings")),
        }
    }

    pub fn obj(&self, k: &str) -> ApiResult<Option<Value>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(_) => Err(Self::bad(k, "an object")),
        }
    }

    /// A budget duration, checked.
    /// `budget_duration`, if given: a changed duration starts a new window at the next
    /// boundary; `null` clears both.
    pub fn set_budget_duration(
        &self,
        dur: &mut Option<String>,
        reset_at: &mut Option<i64>,
        now: i64,
    ) -> ApiResult<()> {
        if !self.has("budget_duration") {
            return Ok(());
        }
        match self.duration("budget_duration")? {
            Some((text, span)) => {
                if dur.as_deref() != Some(&text) {
                    *reset_at = Some(duration::next_reset(span, now));
                }
                *dur = Some(text);
            }
            None => {
                *dur = None;
                *reset_at = None;
            }
        }
        Ok(())
    }

    /// `max_parallel_requests`, `tpm_limit`, `rpm_limit`, each if given.
    pub fn set_limits(
        &self,
        parallel: &mut Option<i64>,
        tpm: &mut Option<i64>,
        rpm: &mut Option<i64>,
    ) -> ApiResult<()> {
        for (name, slot) in [
            ("max_parallel_requests", parallel),
            ("tpm_limit", tpm),
            ("rpm_limit", rpm),
        ] {
            if self.has(name) {
                *slot = self.limit(name)?;
            }
        }
        Ok(())
    }

    pub fn duration(&self, k: &str) -> ApiResult<Option<(String, duration::Span)>> {
        match self.str(k)? {
            None => Ok(None),
            Some(s) => duration::parse(&s)
                .map(|span| Some((s, span)))
                .map_err(|e| ApiError::bad_request(e).with_param(k)),
        }
    }

    /// The fields not in `known`, to keep and echo back.
    pub fn extra(&self, known: &[&str]) -> Value {
        Value::Object(
            self.0
                .iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

/// Unix ms → ISO text, or null.
pub fn ts(ms: Option<i64>) -> Value {
    ms.map(|m| Value::String(duration::iso(m)))
        .unwrap_or(Value::Null)
}

/// Adds `extra` fields to an object without overriding what is there.
/// A JSON object (from `json!({...})`) with the row's extra fields added.
pub fn with_extra(mut v: Value, extra: &Value) -> Value {
    if let Value::Object(o) = &mut v {
        merge_extra(o, extra);
    }
    v
}

pub fn merge_extra(obj: &mut Map<String, Value>, extra: &Value) {
    if let Value::Object(e) = extra {
        for (k, v) in e {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// A list of ids from a body field (`keys`, `team_ids`, …).
pub fn ids(f: &Fields, k: &str) -> ApiResult<Vec<String>> {
    f.list(k)?.filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::bad_request(format!("{k} is required: a list of ids.")).with_param(k)
    })
}
