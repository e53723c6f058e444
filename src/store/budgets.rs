//! `tollgate_budgets` (named budgets that end users and keys point at), and the conditional
//! budget reset every table with a `budget_reset_at` shares.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{get_obj, json_text};
use super::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetRow {
    pub budget_id: String,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub model_max_budget: Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

const COLS: &str = "budget_id, max_budget, soft_budget, max_parallel_requests, tpm_limit, rpm_limit, budget_duration, budget_reset_at, model_max_budget, created_at, updated_at, created_by, updated_by";

fn from_row(r: &AnyRow) -> Result<BudgetRow, StoreError> {
    Ok(BudgetRow {
        budget_id: r.try_get("budget_id")?,
        max_budget: r.try_get("max_budget")?,
        soft_budget: r.try_get("soft_budget")?,
        max_parallel_requests: r.try_get("max_parallel_requests")?,
        tpm_limit: r.try_get("tpm_limit")?,
        rpm_limit: r.try_get("rpm_limit")?,
        budget_duration: r.try_get("budget_duration")?,
        budget_reset_at: r.try_get("budget_reset_at")?,
        model_max_budget: get_obj(r, "model_max_budget")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// A table whose rows carry `spend`, `budget_reset_at` (and a duration somewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendTable {
    Keys,
    Teams,
    Users,
    EndUsers,
}

impl SpendTable {
    fn table_and_pk(self) -> (&'static str, &'static str) {
        match self {
            SpendTable::Keys => ("tollgate_keys", "token"),
            SpendTable::Teams => ("tollgate_teams", "team_id"),
            SpendTable::Users => ("tollgate_users", "user_id"),
            SpendTable::EndUsers => ("tollgate_end_users", "user_id"),
        }
    }
}

/// A row whose budget window has ended (or never started).
#[derive(Debug, Clone, PartialEq)]
pub struct DueReset {
    pub id: String,
    pub budget_duration: String,
    pub budget_reset_at: Option<i64>,
}

impl Store {
    pub async fn put_budget(&self, b: &BudgetRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO tollgate_budgets ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) \
             ON CONFLICT (budget_id) DO UPDATE SET max_budget=excluded.max_budget, soft_budget=excluded.soft_budget, max_parallel_requests=excluded.max_parallel_requests, tpm_limit=excluded.tpm_limit, rpm_limit=excluded.rpm_limit, budget_duration=excluded.budget_duration, budget_reset_at=excluded.budget_reset_at, model_max_budget=excluded.model_max_budget, updated_at=excluded.updated_at, updated_by=excluded.updated_by"
        );
        sqlx::query(&sql)
            .bind(&b.budget_id)
            .bind(b.max_budget)
            .bind(b.soft_budget)
            .bind(b.max_parallel_requests)
            .bind(b.tpm_limit)
            .bind(b.rpm_limit)
            .bind(&b.budget_duration)
            .bind(b.budget_reset_at)
            .bind(json_text(&b.model_max_budget))
            .bind(b.created_at)
            .bind(b.updated_at)
            .bind(&b.created_by)
            .bind(&b.updated_by)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get_budget(&self, budget_id: &str) -> Result<Option<BudgetRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_budgets WHERE budget_id = $1");
        let row = sqlx::query(&sql)
            .bind(budget_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn all_budgets(&self) -> Result<Vec<BudgetRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_budgets ORDER BY created_at, budget_id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn delete_budget(&self, budget_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM tollgate_budgets WHERE budget_id = $1")
            .bind(budget_id)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Rows of `table` with a budget duration whose reset time has passed (or was never set).
    pub async fn due_resets(
        &self,
        table: SpendTable,
        now: i64,
    ) -> Result<Vec<DueReset>, StoreError> {
        let sql = match table {
            SpendTable::EndUsers => "SELECT e.user_id AS id, b.budget_duration AS budget_duration, e.budget_reset_at AS budget_reset_at FROM tollgate_end_users e JOIN tollgate_budgets b ON b.budget_id = e.budget_id WHERE b.budget_duration IS NOT NULL AND (e.budget_reset_at IS NULL OR e.budget_reset_at <= $1)".to_owned(),
            t => {
                let (tbl, pk) = t.table_and_pk();
                format!("SELECT {pk} AS id, budget_duration, budget_reset_at FROM {tbl} WHERE budget_duration IS NOT NULL AND (budget_reset_at IS NULL OR budget_reset_at <= $1)")
            }
        };
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DueReset {
                    id: r.try_get("id")?,
                    budget_duration: r.try_get("budget_duration")?,
                    budget_reset_at: r.try_get("budget_reset_at")?,
                })
            })
            .collect()
    }

    /// Zeroes a row's spend and moves its reset time on — only if nobody did it first (the
    /// reset time is still `old`). True when this call did the reset.
    pub async fn reset_spend(
        &self,
        table: SpendTable,
        id: &str,
        old: Option<i64>,
        next: i64,
    ) -> Result<bool, StoreError> {
        let (tbl, pk) = table.table_and_pk();
        let r = match old {
            Some(old) => {
                sqlx::query(&format!("UPDATE {tbl} SET spend = 0, budget_reset_at = $1 WHERE {pk} = $2 AND budget_reset_at = $3"))
                    .bind(next)
                    .bind(id)
                    .bind(old)
                    .persistent(false)
                    .execute(&self.pool)
                    .await?
            }
            // First window: only set the reset time, the spend so far stays.
            None => {
                sqlx::query(&format!("UPDATE {tbl} SET budget_reset_at = $1 WHERE {pk} = $2 AND budget_reset_at IS NULL"))
                    .bind(next)
                    .bind(id)
                    .persistent(false)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(r.rows_affected() > 0)
    }
}
