//! `tollgate_teams` and `tollgate_team_members`.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{get_bool, get_list, get_obj, json_text, list_text};
use super::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamRow {
    pub team_id: String,
    pub team_alias: Option<String>,
    pub organization_id: Option<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub models: Vec<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub blocked: bool,
    pub metadata: Value,
    pub extra: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberRow {
    pub team_id: String,
    pub user_id: String,
    pub role: String,
    pub user_email: Option<String>,
    pub spend: f64,
    pub budget_id: Option<String>,
    pub created_at: i64,
}

const COLS: &str = "team_id, team_alias, organization_id, spend, max_budget, budget_duration, budget_reset_at, models, tpm_limit, rpm_limit, max_parallel_requests, blocked, metadata, extra, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<TeamRow, StoreError> {
    Ok(TeamRow {
        team_id: r.try_get("team_id")?,
        team_alias: r.try_get("team_alias")?,
        organization_id: r.try_get("organization_id")?,
        spend: r.try_get("spend")?,
        max_budget: r.try_get("max_budget")?,
        budget_duration: r.try_get("budget_duration")?,
        budget_reset_at: r.try_get("budget_reset_at")?,
        models: get_list(r, "models")?,
        tpm_limit: r.try_get("tpm_limit")?,
        rpm_limit: r.try_get("rpm_limit")?,
        max_parallel_requests: r.try_get("max_parallel_requests")?,
        blocked: get_bool(r, "blocked")?,
        metadata: get_obj(r, "metadata")?,
        extra: get_obj(r, "extra")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn member_from_row(r: &AnyRow) -> Result<MemberRow, StoreError> {
    Ok(MemberRow {
        team_id: r.try_get("team_id")?,
        user_id: r.try_get("user_id")?,
        role: r.try_get("role")?,
        user_email: r.try_get("user_email")?,
        spend: r.try_get("spend")?,
        budget_id: r.try_get("budget_id")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Inserts a team or replaces every field of an existing one (spend included).
    pub async fn put_team(&self, t: &TeamRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO tollgate_teams ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) \
             ON CONFLICT (team_id) DO UPDATE SET team_alias=excluded.team_alias, organization_id=excluded.organization_id, spend=excluded.spend, max_budget=excluded.max_budget, budget_duration=excluded.budget_duration, budget_reset_at=excluded.budget_reset_at, models=excluded.models, tpm_limit=excluded.tpm_limit, rpm_limit=excluded.rpm_limit, max_parallel_requests=excluded.max_parallel_requests, blocked=excluded.blocked, metadata=excluded.metadata, extra=excluded.extra, created_at=excluded.created_at, updated_at=excluded.updated_at"
        );
        sqlx::query(&sql)
            .bind(&t.team_id)
            .bind(&t.team_alias)
            .bind(&t.organization_id)
            .bind(t.spend)
            .bind(t.max_budget)
            .bind(&t.budget_duration)
            .bind(t.budget_reset_at)
            .bind(list_text(&t.models))
            .bind(t.tpm_limit)
            .bind(t.rpm_limit)
            .bind(t.max_parallel_requests)
            .bind(t.blocked as i64)
            .bind(json_text(&t.metadata))
            .bind(json_text(&t.extra))
            .bind(t.created_at)
            .bind(t.updated_at)
            .persistent(false)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Saves an edited team without touching `spend`.
    pub async fn update_team(&self, t: &TeamRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE tollgate_teams SET team_alias=$2, organization_id=$3, max_budget=$4, budget_duration=$5, budget_reset_at=$6, models=$7, tpm_limit=$8, rpm_limit=$9, max_parallel_requests=$10, blocked=$11, metadata=$12, extra=$13, updated_at=$14 WHERE team_id=$1",
        )
        .bind(&t.team_id)
        .bind(&t.team_alias)
        .bind(&t.organization_id)
        .bind(t.max_budget)
        .bind(&t.budget_duration)
        .bind(t.budget_reset_at)
        .bind(list_text(&t.models))
        .bind(t.tpm_limit)
        .bind(t.rpm_limit)
        .bind(t.max_parallel_requests)
        .bind(t.blocked as i64)
        .bind(json_text(&t.metadata))
        .bind(json_text(&t.extra))
        .bind(t.updated_at)
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn get_team(&self, team_id: &str) -> Result<Option<TeamRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_teams WHERE team_id = $1");
        let row = sqlx::query(&sql)
            .bind(team_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn all_teams(&self) -> Result<Vec<TeamRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM tollgate_teams ORDER BY created_at, team_id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Deletes a team, its memberships and its keys (as LiteLLM does: a key left pointing at
    /// a deleted team would escape the team's budget and model list). Returns whether the team
    /// existed and the hashes of the keys deleted with it.
    pub async fn delete_team(&self, team_id: &str) -> Result<(bool, Vec<String>), StoreError> {
        let mut tx = self.pool.begin().await?;
        // One statement that writes first and reports what it deleted: a SELECT before the
        // first write would make SQLite upgrade a read snapshot (SQLITE_BUSY_SNAPSHOT if the
        // spend writer commits in between), and on PostgreSQL could miss a key added meanwhile.
        let keys: Vec<String> =
            sqlx::query("DELETE FROM tollgate_keys WHERE team_id = $1 RETURNING token")
                .bind(team_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
        sqlx::query("DELETE FROM tollgate_team_members WHERE team_id = $1")
            .bind(team_id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM tollgate_teams WHERE team_id = $1")
            .bind(team_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((r.rows_affected() > 0, keys))
    }

    pub async fn put_member(&self, m: &MemberRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tollgate_team_members (team_id, user_id, role, user_email, spend, budget_id, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7) \
             ON CONFLICT (team_id, user_id) DO UPDATE SET role=excluded.role, user_email=excluded.user_email, budget_id=excluded.budget_id",
        )
        .bind(&m.team_id)
        .bind(&m.user_id)
        .bind(&m.role)
        .bind(&m.user_email)
        .bind(m.spend)
        .bind(&m.budget_id)
        .bind(m.created_at)
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_member(&self, team_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let r =
            sqlx::query("DELETE FROM tollgate_team_members WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .persistent(false)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn team_members(&self, team_id: &str) -> Result<Vec<MemberRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT team_id, user_id, role, user_email, spend, budget_id, created_at FROM tollgate_team_members WHERE team_id = $1 ORDER BY created_at, user_id",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    pub async fn user_teams(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT team_id FROM tollgate_team_members WHERE user_id = $1 ORDER BY team_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("team_id").map_err(StoreError::from))
            .collect()
    }
}
