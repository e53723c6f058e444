//! `tollgate_users`: internal users (people or services that own keys).

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{get_list, get_obj, json_text, list_text};
use super::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    pub user_id: String,
    pub user_email: Option<String>,
    pub user_alias: Option<String>,
    pub user_role: Option<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub models: Vec<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub metadata: Value,
    pub extra: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "user_id, user_email, user_alias, user_role, spend, max_budget, budget_duration, budget_reset_at, models, tpm_limit, rpm_limit, max_parallel_requests, metadata, extra, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        user_id: r.try_get("user_id")?,
        user_email: r.try_get("user_email")?,
        user_alias: r.try_get("user_alias")?,
        user_role: r.try_get("user_role")?,
        spend: r.try_get("spend")?,
        max_budget: r.try_get("max_budget")?,
        budget_duration: r.try_get("budget_duration")?,
        budget_reset_at: r.try_get("budget_reset_at")?,
        models: get_list(r, "models")?,
        tpm_limit: r.try_get("tpm_limit")?,
        rpm_limit: r.try_get("rpm_limit")?,
        max_parallel_requests: r.try_get("max_parallel_requests")?,
        metadata: get_obj(r, "metadata")?,
        extra: get_obj(r, "extra")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// Inserts a user or replaces every field of an existing one (spend included).
    pub async fn put_user(&self, u: &UserRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO tollgate_users ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) \
             ON CONFLICT (user_id) DO UPDATE SET user_email=excluded.user_email, user_alias=excluded.user_alias, user_role=excluded.user_role, spend=excluded.spend, max_budget=excluded.max_budget, budget_duration=excluded.budget_duration, budget_reset_at=excluded.budget_reset_at, models=excluded.models, tpm_limit=excluded.tpm_limit, rpm_limit=excluded.rpm_limit, max_parallel_requests=excluded.max_parallel_requests, metadata=excluded.metadata, extra=excluded.extra, created_at=excluded.created_at, updated_at=excluded.updated_at"
        );
        sqlx::query(&sql)
            .bind(&u.user_id)
            .bind(&u.user_email)
            .bind(&u.user_alias)
            .bind(&u.user_role)
            .bind(u.spend)
            .bind(u.max_budget)
            .bind(&u.budget_duration)
            .bind(u.budget_reset_at)
            .bind(list_text(&u.models))
            .bind(u.tpm_limit)
            .bind(u.rpm_limit)
            .bind(u.max_parallel_requests)
            .bind(json_text(&u.metadata))
            .bind(json_text(&u.extra))
            .bind(u.created_at)
            .bind(u.updated_at)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Saves an edited user without touching `spend`.
    pub async fn update_user(&self, u: &UserRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE tollgate_users SET user_email=$2, user_alias=$3, user_role=$4, max_budget=$5, budget_duration=$6, budget_reset_at=$7, models=$8, tpm_limit=$9, rpm_limit=$10, max_parallel_requests=$11, metadata=$12, extra=$13, updated_at=$14 WHERE user_id=$1",
        )
        .bind(&u.user_id)
        .bind(&u.user_email)
        .bind(&u.user_alias)
        .bind(&u.user_role)
        .bind(u.max_budget)
        .bind(&u.budget_duration)
        .bind(u.budget_reset_at)
        .bind(list_text(&u.models))
        .bind(u.tpm_limit)
        .bind(u.rpm_limit)
        .bind(u.max_parallel_requests)
        .bind(json_text(&u.metadata))
        .bind(json_text(&u.extra))
        .bind(u.updated_at)
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn get_user(&self, user_id: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_users WHERE user_id = $1");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn all_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_users ORDER BY created_at, user_id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Deletes a user and their team memberships.
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tollgate_team_members WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM tollgate_users WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }
}
