//! `tollgate_end_users`: customers, named by the OpenAI `user` field. Their limits live in a
//! `tollgate_budgets` row named by `budget_id`.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{get_bool, get_obj, json_text};
use super::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndUserRow {
    pub user_id: String,
    pub alias: Option<String>,
    pub spend: f64,
    pub blocked: bool,
    pub budget_id: Option<String>,
    pub allowed_model_region: Option<String>,
    pub default_model: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub extra: Value,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

const COLS: &str = "user_id, alias, spend, blocked, budget_id, allowed_model_region, default_model, budget_reset_at, extra, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<EndUserRow, StoreError> {
    Ok(EndUserRow {
        user_id: r.try_get("user_id")?,
        alias: r.try_get("alias")?,
        spend: r.try_get("spend")?,
        blocked: get_bool(r, "blocked")?,
        budget_id: r.try_get("budget_id")?,
        allowed_model_region: r.try_get("allowed_model_region")?,
        default_model: r.try_get("default_model")?,
        budget_reset_at: r.try_get("budget_reset_at")?,
        extra: get_obj(r, "extra")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// Inserts an end user or replaces every field of an existing one (spend included).
    pub async fn put_end_user(&self, e: &EndUserRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO tollgate_end_users ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) \
             ON CONFLICT (user_id) DO UPDATE SET alias=excluded.alias, spend=excluded.spend, blocked=excluded.blocked, budget_id=excluded.budget_id, allowed_model_region=excluded.allowed_model_region, default_model=excluded.default_model, budget_reset_at=excluded.budget_reset_at, extra=excluded.extra, created_at=excluded.created_at, updated_at=excluded.updated_at"
        );
        sqlx::query(&sql)
            .bind(&e.user_id)
            .bind(&e.alias)
            .bind(e.spend)
            .bind(e.blocked as i64)
            .bind(&e.budget_id)
            .bind(&e.allowed_model_region)
            .bind(&e.default_model)
            .bind(e.budget_reset_at)
            .bind(json_text(&e.extra))
            .bind(e.created_at)
            .bind(e.updated_at)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Saves an edited end user without touching `spend`.
    pub async fn update_end_user(&self, e: &EndUserRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE tollgate_end_users SET alias=$2, blocked=$3, budget_id=$4, allowed_model_region=$5, default_model=$6, budget_reset_at=$7, extra=$8, updated_at=$9 WHERE user_id=$1",
        )
        .bind(&e.user_id)
        .bind(&e.alias)
        .bind(e.blocked as i64)
        .bind(&e.budget_id)
        .bind(&e.allowed_model_region)
        .bind(&e.default_model)
        .bind(e.budget_reset_at)
        .bind(json_text(&e.extra))
        .bind(e.updated_at)
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn get_end_user(&self, user_id: &str) -> Result<Option<EndUserRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_end_users WHERE user_id = $1");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn all_end_users(&self) -> Result<Vec<EndUserRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_end_users ORDER BY user_id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn delete_end_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM tollgate_end_users WHERE user_id = $1")
            .bind(user_id)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
