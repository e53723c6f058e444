//! End-to-end: `tollgate keys …` against a running gateway, and `tollgate import-litellm`
//! from a database with LiteLLM's tables.

mod common;
mod db;

use std::process::Command;

use common::{client, gateway};
use serde_json::{Value, json};

const CONFIG: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: mock/gpt-4o
general_settings:
  master_key: sk-master
"#;

fn tollgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env_remove("LITELLM_MASTER_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn keys_cli_generates_lists_shows_and_deletes() {
    let gw = gateway(CONFIG).start();
    let url = gw.url.clone();
    let (ok, out, err) = tollgate(&[
        "keys",
        "generate",
        "--alias",
        "cli",
        "--max-budget",
        "5",
        "--budget-duration",
        "monthly",
        "--models",
        "gpt-4o",
        "--url",
        &url,
        "--master-key",
        "sk-master",
    ]);
    assert!(ok, "{err}");
    let g: Value = serde_json::from_str(&out).unwrap();
    let key = g["key"].as_str().unwrap().to_owned();
    assert_eq!(g["max_budget"], 5.0);
    assert_eq!(g["models"], json!(["gpt-4o"]));

    let (ok, out, err) = tollgate(&[
        "keys",
        "info",
        &key,
        "--url",
        &url,
        "--master-key",
        "sk-master",
    ]);
    assert!(ok, "{err}");
    let i: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(i["info"]["key_alias"], "cli");

    let (ok, out, _) = tollgate(&["keys", "list", "--url", &url, "--master-key", "sk-master"]);
    assert!(ok);
    let l: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(l["keys"][0]["key_alias"], "cli");

    let (ok, _, err) = tollgate(&["keys", "list", "--url", &url, "--master-key", "sk-wrong"]);
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    let (ok, _, err) = tollgate(&["keys", "list", "--url", &url]);
    assert!(!ok);
    assert!(err.contains("master key"), "{err}");

    let (ok, out, err) = tollgate(&[
        "keys",
        "delete",
        &key,
        "--url",
        &url,
        "--master-key",
        "sk-master",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("deleted_keys"));
    let (ok, _, err) = tollgate(&[
        "keys",
        "info",
        &key,
        "--url",
        &url,
        "--master-key",
        "sk-master",
    ]);
    assert!(!ok);
    assert!(err.contains("404"), "{err}");
}

/// LiteLLM's tables, with the columns the import reads (names as in its schema.prisma).
const LITELLM_SCHEMA: &str = r#"
CREATE TABLE "LiteLLM_BudgetTable" (budget_id TEXT PRIMARY KEY, max_budget DOUBLE PRECISION, soft_budget DOUBLE PRECISION, max_parallel_requests INTEGER, tpm_limit BIGINT, rpm_limit BIGINT, model_max_budget JSONB, budget_duration TEXT, budget_reset_at TIMESTAMP(3), created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, created_by TEXT NOT NULL, updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_by TEXT NOT NULL);
CREATE TABLE "LiteLLM_TeamTable" (team_id TEXT PRIMARY KEY, team_alias TEXT, organization_id TEXT, admins TEXT[], members TEXT[], members_with_roles JSONB NOT NULL DEFAULT '{}', metadata JSONB NOT NULL DEFAULT '{}', max_budget DOUBLE PRECISION, spend DOUBLE PRECISION NOT NULL DEFAULT 0, models TEXT[], max_parallel_requests INTEGER, tpm_limit BIGINT, rpm_limit BIGINT, budget_duration TEXT, budget_reset_at TIMESTAMP(3), blocked BOOLEAN NOT NULL DEFAULT false, created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, model_spend JSONB NOT NULL DEFAULT '{}', model_max_budget JSONB NOT NULL DEFAULT '{}');
CREATE TABLE "LiteLLM_UserTable" (user_id TEXT PRIMARY KEY, user_alias TEXT, team_id TEXT, organization_id TEXT, password TEXT, teams TEXT[], user_role TEXT, max_budget DOUBLE PRECISION, spend DOUBLE PRECISION NOT NULL DEFAULT 0, user_email TEXT, models TEXT[], metadata JSONB NOT NULL DEFAULT '{}', max_parallel_requests INTEGER, tpm_limit BIGINT, rpm_limit BIGINT, budget_duration TEXT, budget_reset_at TIMESTAMP(3), allowed_cache_controls TEXT[], model_spend JSONB NOT NULL DEFAULT '{}', model_max_budget JSONB NOT NULL DEFAULT '{}', created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "LiteLLM_EndUserTable" (user_id TEXT PRIMARY KEY, alias TEXT, spend DOUBLE PRECISION NOT NULL DEFAULT 0, allowed_model_region TEXT, default_model TEXT, budget_id TEXT, blocked BOOLEAN NOT NULL DEFAULT false);
CREATE TABLE "LiteLLM_VerificationToken" (token TEXT PRIMARY KEY, key_name TEXT, key_alias TEXT, soft_budget_cooldown BOOLEAN NOT NULL DEFAULT false, spend DOUBLE PRECISION NOT NULL DEFAULT 0, expires TIMESTAMP(3), models TEXT[], aliases JSONB NOT NULL DEFAULT '{}', config JSONB NOT NULL DEFAULT '{}', user_id TEXT, team_id TEXT, permissions JSONB NOT NULL DEFAULT '{}', max_parallel_requests INTEGER, metadata JSONB NOT NULL DEFAULT '{}', blocked BOOLEAN, tpm_limit BIGINT, rpm_limit BIGINT, max_budget DOUBLE PRECISION, budget_duration TEXT, budget_reset_at TIMESTAMP(3), allowed_cache_controls TEXT[] DEFAULT ARRAY[]::TEXT[], allowed_routes TEXT[] DEFAULT ARRAY[]::TEXT[], model_spend JSONB NOT NULL DEFAULT '{}', model_max_budget JSONB NOT NULL DEFAULT '{}', budget_id TEXT, organization_id TEXT, created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, created_by TEXT, updated_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, updated_by TEXT);
INSERT INTO "LiteLLM_BudgetTable" (budget_id, max_budget, rpm_limit, budget_duration, created_by, updated_by) VALUES ('cust-budget', 4.0, 60, '30d', 'admin', 'admin');
INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, members_with_roles, max_budget, spend, models) VALUES ('team-a', 'Team A', '[{"role":"admin","user_id":"u-1","user_email":null}]', 100, 12.5, ARRAY['gpt-4o']);
INSERT INTO "LiteLLM_UserTable" (user_id, user_email, user_role, max_budget, spend, teams) VALUES ('u-1', 'u1@example.com', 'internal_user', 50, 7.25, ARRAY['team-a']);
INSERT INTO "LiteLLM_EndUserTable" (user_id, alias, spend, budget_id) VALUES ('customer-1', 'Acme', 1.5, 'cust-budget');
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, spend, models, user_id, team_id, max_budget, budget_duration, budget_reset_at, metadata, blocked) VALUES ('HASH', 'sk-...-old', 'legacy', 3.5, ARRAY['gpt-4o'], 'u-1', 'team-a', 10, '30d', '2099-01-01 00:00:00', '{"owner":"ops"}', false);
"#;

#[tokio::test]
async fn import_litellm_copies_keys_and_spend_and_is_idempotent() {
    let Some(src) = db::fresh_pg("import_litellm_copies_keys_and_spend_and_is_idempotent").await
    else {
        return;
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&src).await.unwrap();
    let old_key = "sk-from-litellm-1234";
    for stmt in LITELLM_SCHEMA
        .replace("HASH", &tollgate::auth::hash_token(old_key))
        .split(";\n")
    {
        if !stmt.trim().is_empty() {
            sqlx::query(stmt).execute(&pool).await.unwrap();
        }
    }
    pool.close().await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let cfg = cfg.to_str().unwrap();
    for _ in 0..2 {
        let (ok, out, err) = tollgate(&["import-litellm", &src, "--config", cfg]);
        assert!(ok, "{err}");
        assert!(
            out.contains("1 keys, 1 teams (1 members), 1 users, 1 end users, 1 budgets"),
            "{out}"
        );
    }

    // The key LiteLLM users already hold works here, with its spend, team and settings.
    let gw = gateway(CONFIG).dir(dir).start();
    let c = client();
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(old_key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call_cost: f64 = r.headers()["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let get = |path: String| {
        let c = c.clone();
        let url = gw.url(&path);
        async move {
            let v: Value = c
                .get(url)
                .bearer_auth("sk-master")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    let info = get(format!("/key/info?key={old_key}")).await;
    assert_eq!(info["info"]["key_alias"], "legacy");
    // The imported spend plus the call just made.
    let spend = info["info"]["spend"].as_f64().unwrap();
    assert!((spend - (3.5 + call_cost)).abs() < 1e-9, "{spend}");
    assert_eq!(info["info"]["max_budget"], 10.0);
    assert_eq!(info["info"]["metadata"], json!({"owner": "ops"}));
    assert_eq!(
        info["info"]["budget_reset_at"],
        "2099-01-01T00:00:00.000000Z"
    );
    let team = get("/team/info?team_id=team-a".into()).await;
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(
        close(&team["team_info"]["spend"], 12.5 + call_cost),
        "{team}"
    );
    assert_eq!(team["team_info"]["members_with_roles"][0]["user_id"], "u-1");
    let user = get("/user/info?user_id=u-1".into()).await;
    assert!(
        close(&user["user_info"]["spend"], 7.25 + call_cost),
        "{user}"
    );
    let cust = get("/customer/info?end_user_id=customer-1".into()).await;
    assert_eq!(cust["spend"], 1.5);
    assert_eq!(cust["litellm_budget_table"]["max_budget"], 4.0);
}
