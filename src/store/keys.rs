//! `tollgate_keys`: virtual keys, stored by the SHA-256 hex of the key (LiteLLM's `token`).

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{get_bool, get_list, get_obj, json_text, list_text};
use super::{Store, StoreError};

/// One virtual key as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRow {
    pub token: String,
    pub key_name: Option<String>,
    pub key_alias: Option<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub expires: Option<i64>,
    pub models: Vec<String>,
    pub aliases: Value,
    pub config: Value,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub budget_id: Option<String>,
    pub organization_id: Option<String>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub model_max_budget: Value,
    pub model_spend: Value,
    pub metadata: Value,
    pub permissions: Value,
    pub blocked: bool,
    /// Request fields Tollgate does not act on, kept to echo back.
    pub extra: Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

const COLS: &str = "token, key_name, key_alias, spend, max_budget, soft_budget, budget_duration, budget_reset_at, expires, models, aliases, config, user_id, team_id, budget_id, organization_id, max_parallel_requests, tpm_limit, rpm_limit, model_max_budget, model_spend, metadata, permissions, blocked, extra, created_at, updated_at, created_by, updated_by";

fn from_row(r: &AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        token: r.try_get("token")?,
        key_name: r.try_get("key_name")?,
        key_alias: r.try_get("key_alias")?,
        spend: r.try_get("spend")?,
        max_budget: r.try_get("max_budget")?,
        soft_budget: r.try_get("soft_budget")?,
        budget_duration: r.try_get("budget_duration")?,
        budget_reset_at: r.try_get("budget_reset_at")?,
        expires: r.try_get("expires")?,
        models: get_list(r, "models")?,
        aliases: get_obj(r, "aliases")?,
        config: get_obj(r, "config")?,
        user_id: r.try_get("user_id")?,
        team_id: r.try_get("team_id")?,
        budget_id: r.try_get("budget_id")?,
        organization_id: r.try_get("organization_id")?,
        max_parallel_requests: r.try_get("max_parallel_requests")?,
        tpm_limit: r.try_get("tpm_limit")?,
        rpm_limit: r.try_get("rpm_limit")?,
        model_max_budget: get_obj(r, "model_max_budget")?,
        model_spend: get_obj(r, "model_spend")?,
        metadata: get_obj(r, "metadata")?,
        permissions: get_obj(r, "permissions")?,
        blocked: get_bool(r, "blocked")?,
        extra: get_obj(r, "extra")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// Filters for `/key/list`.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
    pub key_hash: Option<String>,
    pub organization_id: Option<String>,
}

impl Store {
    /// Inserts a key, or replaces every field of an existing one (spend included).
    pub async fn put_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO tollgate_keys ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29) \
             ON CONFLICT (token) DO UPDATE SET key_name=excluded.key_name, key_alias=excluded.key_alias, spend=excluded.spend, max_budget=excluded.max_budget, soft_budget=excluded.soft_budget, budget_duration=excluded.budget_duration, budget_reset_at=excluded.budget_reset_at, expires=excluded.expires, models=excluded.models, aliases=excluded.aliases, config=excluded.config, user_id=excluded.user_id, team_id=excluded.team_id, budget_id=excluded.budget_id, organization_id=excluded.organization_id, max_parallel_requests=excluded.max_parallel_requests, tpm_limit=excluded.tpm_limit, rpm_limit=excluded.rpm_limit, model_max_budget=excluded.model_max_budget, model_spend=excluded.model_spend, metadata=excluded.metadata, permissions=excluded.permissions, blocked=excluded.blocked, extra=excluded.extra, created_at=excluded.created_at, updated_at=excluded.updated_at, created_by=excluded.created_by, updated_by=excluded.updated_by"
        );
        sqlx::query(&sql)
            .bind(&k.token)
            .bind(&k.key_name)
            .bind(&k.key_alias)
            .bind(k.spend)
            .bind(k.max_budget)
            .bind(k.soft_budget)
            .bind(&k.budget_duration)
            .bind(k.budget_reset_at)
            .bind(k.expires)
            .bind(list_text(&k.models))
            .bind(json_text(&k.aliases))
            .bind(json_text(&k.config))
            .bind(&k.user_id)
            .bind(&k.team_id)
            .bind(&k.budget_id)
            .bind(&k.organization_id)
            .bind(k.max_parallel_requests)
            .bind(k.tpm_limit)
            .bind(k.rpm_limit)
            .bind(json_text(&k.model_max_budget))
            .bind(json_text(&k.model_spend))
            .bind(json_text(&k.metadata))
            .bind(json_text(&k.permissions))
            .bind(k.blocked as i64)
            .bind(json_text(&k.extra))
            .bind(k.created_at)
            .bind(k.updated_at)
            .bind(&k.created_by)
            .bind(&k.updated_by)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Saves an edited key without touching `spend`, which the spend writer owns.
    pub async fn update_key(&self, k: &KeyRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE tollgate_keys SET key_name=$2, key_alias=$3, max_budget=$4, soft_budget=$5, budget_duration=$6, budget_reset_at=$7, expires=$8, models=$9, aliases=$10, config=$11, user_id=$12, team_id=$13, budget_id=$14, organization_id=$15, max_parallel_requests=$16, tpm_limit=$17, rpm_limit=$18, model_max_budget=$19, metadata=$20, permissions=$21, blocked=$22, extra=$23, updated_at=$24, updated_by=$25 WHERE token=$1",
        )
        .bind(&k.token)
        .bind(&k.key_name)
        .bind(&k.key_alias)
        .bind(k.max_budget)
        .bind(k.soft_budget)
        .bind(&k.budget_duration)
        .bind(k.budget_reset_at)
        .bind(k.expires)
        .bind(list_text(&k.models))
        .bind(json_text(&k.aliases))
        .bind(json_text(&k.config))
        .bind(&k.user_id)
        .bind(&k.team_id)
        .bind(&k.budget_id)
        .bind(&k.organization_id)
        .bind(k.max_parallel_requests)
        .bind(k.tpm_limit)
        .bind(k.rpm_limit)
        .bind(json_text(&k.model_max_budget))
        .bind(json_text(&k.metadata))
        .bind(json_text(&k.permissions))
        .bind(k.blocked as i64)
        .bind(json_text(&k.extra))
        .bind(k.updated_at)
        .bind(&k.updated_by)
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Sets a key's spend (admin `spend` field, `/key/{key}/reset_spend`).
    pub async fn set_key_spend(&self, token: &str, spend: f64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tollgate_keys SET spend = $1 WHERE token = $2")
            .bind(spend)
            .bind(token)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get_key(&self, token: &str) -> Result<Option<KeyRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_keys WHERE token = $1");
        let row = sqlx::query(&sql)
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn keys_by_alias(&self, alias: &str) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_keys WHERE key_alias = $1");
        let rows = sqlx::query(&sql).bind(alias).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Every key (the cache's full load).
    pub async fn all_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_keys");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// One page of keys matching `f`, newest first, and the total count.
    pub async fn list_keys(
        &self,
        f: &KeyFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<KeyRow>, i64), StoreError> {
        let mut conds = Vec::new();
        let mut args: Vec<&str> = Vec::new();
        for (col, v) in [
            ("user_id", &f.user_id),
            ("team_id", &f.team_id),
            ("key_alias", &f.key_alias),
            ("token", &f.key_hash),
            ("organization_id", &f.organization_id),
        ] {
            if let Some(v) = v {
                args.push(v);
                conds.push(format!("{col} = ${}", args.len()));
            }
        }
        let wh = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) AS n FROM tollgate_keys{wh}");
        let mut q = sqlx::query(&count_sql);
        for a in &args {
            q = q.bind(*a);
        }
        let total: i64 = q.fetch_one(&self.pool).await?.try_get("n")?;
        let sql = format!(
            "SELECT {COLS} FROM tollgate_keys{wh} ORDER BY created_at DESC, token LIMIT {} OFFSET {}",
            size.max(0),
            ((page - 1).max(0)) * size.max(0)
        );
        let mut q = sqlx::query(&sql);
        for a in &args {
            q = q.bind(*a);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
    }

    pub async fn delete_key(&self, token: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM tollgate_keys WHERE token = $1")
            .bind(token)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Replaces a key's hash (regenerate) keeping everything else, spend included.
    pub async fn rename_key(
        &self,
        old: &str,
        new: &str,
        key_name: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE tollgate_keys SET token = $1, key_name = $2, updated_at = $3 WHERE token = $4",
        )
        .bind(new)
        .bind(key_name)
        .bind(now)
        .bind(old)
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}
