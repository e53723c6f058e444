//! Operator subcommands: `tollgate keys …` (talks HTTP to a running gateway) and
//! `tollgate import-litellm <postgres-url>` (copies a LiteLLM database into the store).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::config::{self, Env};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct Conn {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://localhost:4000", global = true)]
    pub url: String,
    /// The master key (default: $LITELLM_MASTER_KEY).
    #[arg(
        long = "master-key",
        env = "LITELLM_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    pub master_key: Option<String>,
}

// Parsed once at start: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints the key (shown only once) and its settings as JSON.
    Generate {
        #[arg(long)]
        alias: Option<String>,
        /// Spend limit in USD.
        #[arg(long = "max-budget")]
        max_budget: Option<f64>,
        /// When the budget resets: 30s, 1h, 1d, 7d, 1mo, daily, weekly, monthly…
        #[arg(long = "budget-duration")]
        budget_duration: Option<String>,
        /// How long the key lives (same units); default forever.
        #[arg(long)]
        duration: Option<String>,
        /// Models the key may use, comma-separated (default all).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[arg(long = "team-id")]
        team_id: Option<String>,
        #[arg(long = "user-id")]
        user_id: Option<String>,
        #[arg(long = "rpm-limit")]
        rpm_limit: Option<u64>,
        #[arg(long = "tpm-limit")]
        tpm_limit: Option<u64>,
        #[arg(long = "max-parallel-requests")]
        max_parallel_requests: Option<u64>,
        /// Any other /key/generate fields, as a JSON object.
        #[arg(long)]
        json: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List keys (hashes and aliases).
    List {
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 100)]
        size: u32,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a key (the key or its hash).
    Info {
        key: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete keys (the keys or their hashes).
    Delete {
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

pub async fn keys(cmd: &KeysCommand) -> anyhow::Result<()> {
    let (conn, method, path, body) = match cmd {
        KeysCommand::Generate {
            alias,
            max_budget,
            budget_duration,
            duration,
            models,
            team_id,
            user_id,
            rpm_limit,
            tpm_limit,
            max_parallel_requests,
            json: extra,
            conn,
        } => {
            let mut b = match extra {
                Some(j) => match serde_json::from_str(j).context("--json is not valid JSON")? {
                    Value::Object(m) => m,
                    _ => bail!("--json must be a JSON object"),
                },
                None => Map::new(),
            };
            let mut put = |k: &str, v: Value| {
                if !v.is_null() {
                    b.insert(k.into(), v);
                }
            };
            put("key_alias", json!(alias));
            put("max_budget", json!(max_budget));
            put("budget_duration", json!(budget_duration));
            put("duration", json!(duration));
            if !models.is_empty() {
                put("models", json!(models));
            }
            put("team_id", json!(team_id));
            put("user_id", json!(user_id));
            put("rpm_limit", json!(rpm_limit));
            put("tpm_limit", json!(tpm_limit));
            put("max_parallel_requests", json!(max_parallel_requests));
            (
                conn,
                "POST",
                "/key/generate".to_owned(),
                Some(Value::Object(b)),
            )
        }
        KeysCommand::List { page, size, conn } => (
            conn,
            "GET",
            format!("/key/list?page={page}&size={size}&return_full_object=true"),
            None,
        ),
        KeysCommand::Info { key, conn } => (conn, "GET", format!("/key/info?key={key}"), None),
        KeysCommand::Delete { keys, conn } => (
            conn,
            "POST",
            "/key/delete".to_owned(),
            Some(json!({"keys": keys})),
        ),
    };
    let Some(master) = &conn.master_key else {
        bail!("no master key: pass --master-key or set LITELLM_MASTER_KEY");
    };
    let client = reqwest::Client::new();
    let url = format!("{}{path}", conn.url.trim_end_matches('/'));
    let req = match method {
        "GET" => client.get(&url),
        _ => client.post(&url),
    }
    .bearer_auth(master);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {}", conn.url))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let pretty = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    if !status.is_success() {
        bail!("{} {}: {pretty}", status.as_u16(), path);
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout(), "{pretty}");
    Ok(())
}

pub async fn import_litellm(source: &str, config_path: Option<&Path>) -> anyhow::Result<()> {
    let env = Env::process();
    let cfg = match config_path {
        Some(p) => config::load(p, env).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => config::parse("model_list: []\n", env).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let target = match &cfg.database_url {
        Some(u) => u.clone(),
        None => Store::sqlite_url(&crate::app::default_sqlite_path(&cfg)),
    };
    if !(source.starts_with("postgres://") || source.starts_with("postgresql://")) {
        bail!("the LiteLLM database must be a postgres:// URL");
    }
    let store = Store::open(&target, 4)
        .await
        .with_context(|| format!("cannot open {}", crate::store::redact(&target)))?;
    sqlx::any::install_default_drivers();
    let src = sqlx::AnyPool::connect(source)
        .await
        .with_context(|| format!("cannot connect to {}", crate::store::redact(source)))?;
    let n = store
        .import_litellm(&src, chrono::Utc::now().timestamp_millis())
        .await
        .context("importing")?;
    println!(
        "imported from {} into {}: {} keys, {} teams ({} members), {} users, {} end users, {} budgets",
        crate::store::redact(source),
        crate::store::redact(&target),
        n.keys,
        n.teams,
        n.members,
        n.users,
        n.end_users,
        n.budgets
    );
    Ok(())
}
