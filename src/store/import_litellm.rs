//! Reading a LiteLLM database (`"LiteLLM_VerificationToken"`, `"LiteLLM_TeamTable"`,
//! `"LiteLLM_UserTable"`, `"LiteLLM_EndUserTable"`, `"LiteLLM_BudgetTable"`) into Tollgate's
//! tables. Rows are read as `row_to_json` so columns added or dropped across LiteLLM versions
//! do not matter; every write is an upsert by primary key, so importing twice changes nothing.

use serde_json::{Map, Value, json};
use sqlx::Row;

use super::budgets::BudgetRow;
use super::end_users::EndUserRow;
use super::keys::KeyRow;
use super::teams::{MemberRow, TeamRow};
use super::users::UserRow;
use super::{Store, StoreError};

/// How many rows of each kind were imported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    pub keys: usize,
    pub teams: usize,
    pub members: usize,
    pub users: usize,
    pub end_users: usize,
    pub budgets: usize,
}

async fn rows(src: &sqlx::AnyPool, table: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
    let sql = format!("SELECT row_to_json(t)::text AS j FROM \"{table}\" t");
    let rows = sqlx::query(&sql).fetch_all(src).await?;
    rows.iter()
        .map(|r| {
            let j: String = r.try_get("j")?;
            match serde_json::from_str(&j) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(StoreError::Invalid(format!(
                    "{table}: a row is not a JSON object"
                ))),
            }
        })
        .collect()
}

struct R<'a>(&'a Map<String, Value>);

impl R<'_> {
    fn s(&self, k: &str) -> Option<String> {
        match self.0.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }
    fn f(&self, k: &str) -> Option<f64> {
        self.0.get(k).and_then(Value::as_f64)
    }
    fn i(&self, k: &str) -> Option<i64> {
        self.0
            .get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }
    fn b(&self, k: &str) -> bool {
        self.0.get(k).and_then(Value::as_bool).unwrap_or(false)
    }
    fn t(&self, k: &str) -> Option<i64> {
        self.s(k).and_then(|s| parse_time(&s))
    }
    fn list(&self, k: &str) -> Vec<String> {
        match self.0.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn obj(&self, k: &str) -> Value {
        match self.0.get(k) {
            Some(v @ Value::Object(_)) => v.clone(),
            // JSON columns sometimes hold text.
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({})),
            _ => json!({}),
        }
    }
}

/// A PostgreSQL timestamp as `row_to_json` prints it (with or without offset), in unix ms.
fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%#z")
                .map(|t| t.timestamp_millis())
                .ok()
        })
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_millis())
                .ok()
        })
}

impl Store {
    /// Copies keys (their hashes), teams and members, users, end users, budgets and their
    /// spend from the LiteLLM database at `src` into this store.
    pub async fn import_litellm(
        &self,
        src: &sqlx::AnyPool,
        now: i64,
    ) -> Result<Imported, StoreError> {
        let mut n = Imported::default();
        for m in rows(src, "LiteLLM_BudgetTable").await? {
            let r = R(&m);
            let Some(budget_id) = r.s("budget_id") else {
                continue;
            };
            self.put_budget(&BudgetRow {
                budget_id,
                max_budget: r.f("max_budget"),
                soft_budget: r.f("soft_budget"),
                max_parallel_requests: r.i("max_parallel_requests"),
                tpm_limit: r.i("tpm_limit"),
                rpm_limit: r.i("rpm_limit"),
                budget_duration: r.s("budget_duration"),
                budget_reset_at: r.t("budget_reset_at"),
                model_max_budget: r.obj("model_max_budget"),
                created_at: r.t("created_at").unwrap_or(now),
                updated_at: r.t("updated_at").unwrap_or(now),
                created_by: r.s("created_by"),
                updated_by: r.s("updated_by"),
            })
            .await?;
            n.budgets += 1;
        }
        for m in rows(src, "LiteLLM_TeamTable").await? {
            let r = R(&m);
            let Some(team_id) = r.s("team_id") else {
                continue;
            };
            self.put_team(&TeamRow {
                team_id: team_id.clone(),
                team_alias: r.s("team_alias"),
                organization_id: r.s("organization_id"),
                spend: r.f("spend").unwrap_or(0.0),
                max_budget: r.f("max_budget"),
                budget_duration: r.s("budget_duration"),
                budget_reset_at: r.t("budget_reset_at"),
                models: r.list("models"),
                tpm_limit: r.i("tpm_limit"),
                rpm_limit: r.i("rpm_limit"),
                max_parallel_requests: r.i("max_parallel_requests"),
                blocked: r.b("blocked"),
                metadata: r.obj("metadata"),
                extra: json!({}),
                created_at: r.t("created_at").unwrap_or(now),
                updated_at: r.t("updated_at").unwrap_or(now),
            })
            .await?;
            n.teams += 1;
            if let Some(Value::Array(ms)) = m.get("members_with_roles") {
                for mm in ms {
                    let Some(user_id) = mm
                        .get("user_id")
                        .and_then(Value::as_str)
                        .or_else(|| mm.get("user_email").and_then(Value::as_str))
                    else {
                        continue;
                    };
                    self.put_member(&MemberRow {
                        team_id: team_id.clone(),
                        user_id: user_id.to_owned(),
                        role: mm
                            .get("role")
                            .and_then(Value::as_str)
                            .unwrap_or("user")
                            .to_owned(),
                        user_email: mm
                            .get("user_email")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        spend: 0.0,
                        budget_id: None,
                        created_at: now,
                    })
                    .await?;
                    n.members += 1;
                }
            }
        }
        for m in rows(src, "LiteLLM_UserTable").await? {
            let r = R(&m);
            let Some(user_id) = r.s("user_id") else {
                continue;
            };
            self.put_user(&UserRow {
                user_id,
                user_email: r.s("user_email"),
                user_alias: r.s("user_alias"),
                user_role: r.s("user_role"),
                spend: r.f("spend").unwrap_or(0.0),
                max_budget: r.f("max_budget"),
                budget_duration: r.s("budget_duration"),
                budget_reset_at: r.t("budget_reset_at"),
                models: r.list("models"),
                tpm_limit: r.i("tpm_limit"),
                rpm_limit: r.i("rpm_limit"),
                max_parallel_requests: r.i("max_parallel_requests"),
                metadata: r.obj("metadata"),
                extra: json!({}),
                created_at: r.t("created_at").unwrap_or(now),
                updated_at: r.t("updated_at").unwrap_or(now),
            })
            .await?;
            n.users += 1;
        }
        for m in rows(src, "LiteLLM_EndUserTable").await? {
            let r = R(&m);
            let Some(user_id) = r.s("user_id") else {
                continue;
            };
            self.put_end_user(&EndUserRow {
                user_id,
                alias: r.s("alias"),
                spend: r.f("spend").unwrap_or(0.0),
                blocked: r.b("blocked"),
                budget_id: r.s("budget_id"),
                allowed_model_region: r.s("allowed_model_region"),
                default_model: r.s("default_model"),
                budget_reset_at: None,
                extra: json!({}),
                created_at: Some(now),
                updated_at: Some(now),
            })
            .await?;
            n.end_users += 1;
        }
        for m in rows(src, "LiteLLM_VerificationToken").await? {
            let r = R(&m);
            let Some(token) = r.s("token") else { continue };
            self.put_key(&KeyRow {
                token,
                key_name: r.s("key_name"),
                key_alias: r.s("key_alias"),
                spend: r.f("spend").unwrap_or(0.0),
                max_budget: r.f("max_budget"),
                soft_budget: r.f("soft_budget"),
                budget_duration: r.s("budget_duration"),
                budget_reset_at: r.t("budget_reset_at"),
                expires: r.t("expires"),
                models: r.list("models"),
                aliases: r.obj("aliases"),
                config: r.obj("config"),
                user_id: r.s("user_id"),
                team_id: r.s("team_id"),
                budget_id: r.s("budget_id"),
                organization_id: r.s("organization_id"),
                max_parallel_requests: r.i("max_parallel_requests"),
                tpm_limit: r.i("tpm_limit"),
                rpm_limit: r.i("rpm_limit"),
                model_max_budget: r.obj("model_max_budget"),
                model_spend: r.obj("model_spend"),
                metadata: r.obj("metadata"),
                permissions: r.obj("permissions"),
                blocked: r.b("blocked"),
                extra: json!({}),
                created_at: r.t("created_at").unwrap_or(now),
                updated_at: r.t("updated_at").unwrap_or(now),
                created_by: r.s("created_by"),
                updated_by: r.s("updated_by"),
            })
            .await?;
            n.keys += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn reads_postgres_json_timestamps() {
        assert_eq!(parse_time("2026-01-01T00:00:00"), Some(1767225600000));
        assert_eq!(parse_time("2026-01-01T00:00:00.5"), Some(1767225600500));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Some(1767225600000));
    }
}
