//! Start-up and shutdown: config → store → state → server, and the background tasks around it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::auth::Auth;
use crate::cli::{Cli, Command};
use crate::config::{self, Config, Env};
use crate::providers::http;
use crate::router::Router;
use crate::spend::SpendSink;
use crate::spend::prices::PriceTable;
use crate::state::{AppState, State};
use crate::store::Store;

/// The spend writer is woken whenever this many more events wait (or its batch size, if
/// smaller); the backlog beyond `TOLLGATE_SPEND_MEMORY_MAX` goes to the spill file.
const SPEND_CHANNEL: usize = 1_000;

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::CheckConfig { ref path }) => check_config(path),
        Some(Command::MockUpstream { ref host, port }) => {
            init_tracing(false, "warn");
            crate::mock_upstream::run(host, port).await
        }
        Some(Command::Keys(ref k)) => crate::admin_cli::keys(k).await,
        Some(Command::ImportLitellm {
            ref source,
            ref config,
        }) => crate::admin_cli::import_litellm(source, config.as_deref()).await,
        Some(Command::OpenclawConfig {
            ref config,
            ref key,
            ref models,
            ref base_url,
        }) => openclaw_config(config, key, models, base_url),
        None => run(cli).await,
    }
}

fn openclaw_config(
    path: &Path,
    key: &Option<String>,
    models: &[String],
    base_url: &str,
) -> anyhow::Result<()> {
    let cfg = config::load(path, Env::process()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = crate::openclaw::Options {
        base_url: base_url.to_owned(),
        key: key.clone(),
        models: models.to_vec(),
    };
    let block = crate::openclaw::config_block(&cfg, &PriceTable::new(), &opts)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::to_string_pretty(&block)?);
    Ok(())
}

fn check_config(path: &Path) -> anyhow::Result<()> {
    let cfg = config::load(path, Env::process()).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &cfg.warnings {
        println!("warning: {w}");
    }
    for k in &cfg.not_yet_supported {
        println!("accepted, not yet supported: {k}");
    }
    println!(
        "{}: ok ({} deployments in {} model groups)",
        path.display(),
        cfg.deployments.len(),
        cfg.deployments
            .iter()
            .map(|d| &d.model_name)
            .collect::<std::collections::HashSet<_>>()
            .len()
    );
    Ok(())
}

fn init_tracing(json: bool, default: &str) {
    let filter = EnvFilter::try_from_env("TOLLGATE_LOG")
        .or_else(|_| {
            std::env::var("LITELLM_LOG")
                .map(|v| EnvFilter::new(v.to_ascii_lowercase()))
                .map_err(|_| ())
        })
        .unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().with_current_span(false).try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Loads the configuration the command line asks for.
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let env = Env::process();
    let mut cfg = match (&cli.config, &cli.model) {
        (Some(path), _) => config::load(path, env).map_err(|e| anyhow::anyhow!("{e}"))?,
        (None, Some(model)) => {
            config::quick_start(model, cli.api_base.clone(), cli.alias.clone(), env)
                .map_err(|e| anyhow::anyhow!("--model {model}: {e}"))?
        }
        (None, None) => anyhow::bail!(
            "nothing to serve: pass --config config.yaml or --model <model> (e.g. --model mock/gpt-4o to try it offline)"
        ),
    };
    if cli.drop_params {
        cfg.litellm.drop_params = true;
    }
    Ok(cfg)
}

/// Where the embedded SQLite database lives: beside the config file, else the working folder.
pub fn default_sqlite_path(cfg: &Config) -> PathBuf {
    if let Some(p) = cfg.env.get("TOLLGATE_DB_PATH") {
        return PathBuf::from(p);
    }
    cfg.path
        .as_deref()
        .and_then(Path::parent)
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .unwrap_or(Path::new("."))
        .join("tollgate.db")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let level = if cli.detailed_debug {
        "debug"
    } else if cli.debug {
        "info,tollgate=debug"
    } else {
        "info"
    };
    let cfg = load_config(&cli)?;
    init_tracing(cfg.litellm.json_logs, level);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    if !cfg.not_yet_supported.is_empty() {
        tracing::warn!(
            "accepted, not yet supported (ignored): {}",
            cfg.not_yet_supported.join(", ")
        );
    }
    if cfg.master_key.is_none() {
        tracing::warn!(
            "NO MASTER KEY SET: every route is open to anyone who can reach this port. Set general_settings.master_key or LITELLM_MASTER_KEY."
        );
    }

    if crate::server::cors::CorsPolicy::from_config(&cfg).any_origin_with_credentials() {
        tracing::warn!(
            "LITELLM_CORS_ALLOW_CREDENTIALS=true with every origin allowed: any web page can make credentialed calls here. Set LITELLM_CORS_ORIGINS to the origins that need it."
        );
    }

    let gateway = Gateway::start(cfg).await?;
    let addr = format!("{}:{}", cli.host, cli.port);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        "Tollgate {} listening on http://{local}",
        env!("CARGO_PKG_VERSION")
    );
    // Machine-readable line for scripts and tests that start us on port 0.
    println!("tollgate listening on http://{local}");
    let threads = cli.num_workers.filter(|n| *n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    gateway.serve(listener, threads, shutdown_signal()).await
}

/// A running gateway's state and background tasks.
pub struct Gateway {
    pub state: AppState,
    tasks: crate::spend::writer::WriterHandle,
    auth_tasks: crate::auth::Background,
}

impl Gateway {
    /// Opens the store, starts background tasks and builds the shared state.
    pub async fn start(mut cfg: Config) -> anyhow::Result<Gateway> {
        let started = Instant::now();
        let url = match &cfg.database_url {
            Some(u) => u.clone(),
            None => Store::sqlite_url(&default_sqlite_path(&cfg)),
        };
        let pool_limit = cfg
            .general_settings
            .get("database_connection_pool_limit")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(10) as u32;
        let store = Store::open(&url, pool_limit)
            .await
            .with_context(|| format!("cannot open the database {}", crate::store::redact(&url)))?;
        tracing::info!(
            "store: {}",
            match store.backend {
                crate::store::Backend::Sqlite => "SQLite",
                crate::store::Backend::Postgres => "PostgreSQL",
            }
        );
        let client = http::Client::new(&cfg.env)
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        let (spend, rx) = SpendSink::channel(SPEND_CHANNEL);
        let tasks = crate::spend::writer::start(rx, Some(store.clone()), &cfg);
        let auth = Auth::start(&cfg, store.clone(), Arc::new(crate::auth::SystemClock))
            .await
            .context("loading keys")?;
        let auth_tasks = auth.spawn_background();
        let prices = PriceTable::new();
        fill_output_limits(&mut cfg, &prices);
        let state = Arc::new(State {
            router: Router::new(&cfg, client),
            auth,
            prices,
            spend,
            store: Some(store),
            started,
            config: Arc::new(cfg),
        });
        Ok(Gateway {
            state,
            tasks,
            auth_tasks,
        })
    }

    /// Serves on `threads` event loops until `shutdown`, then drains requests and flushes
    /// spend.
    pub async fn serve(
        self,
        listener: TcpListener,
        threads: usize,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Gateway {
            state,
            tasks,
            auth_tasks,
        } = self;
        crate::server::serve_on_threads(listener, state.clone(), threads, shutdown).await?;
        auth_tasks.stop().await;
        tracing::info!("shutting down: flushing spend logs");
        drop(state);
        tasks.shutdown().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Gives every deployment whose `model_info` has no `max_output_tokens` the price table's, so
/// adapters that must always send a limit (Anthropic's `max_tokens`) default to the model's own
/// maximum without depending on the price table themselves.
fn fill_output_limits(cfg: &mut Config, prices: &PriceTable) {
    for dep in &mut cfg.deployments {
        if dep.model_info.contains_key("max_output_tokens") || dep.is_wildcard() {
            continue;
        }
        let limit = prices
            .model_facts(Some(dep), &dep.upstream_model)
            .and_then(|f| f.max_output_tokens);
        if let Some(n) = limit {
            dep.model_info
                .insert("max_output_tokens".into(), serde_json::Value::from(n));
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
