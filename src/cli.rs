//! Command-line interface: LiteLLM's flags, plus Tollgate's admin subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "A LiteLLM-compatible LLM gateway: one OpenAI-compatible endpoint in front of many providers, with virtual keys, budgets and spend logs.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Path to a LiteLLM config.yaml.
    #[arg(short = 'c', long, env = "CONFIG_FILE_PATH")]
    pub config: Option<PathBuf>,

    /// Single-model quick start, e.g. `--model claude-opus-4-6` or `--model mock/gpt-4o`.
    #[arg(short = 'm', long)]
    pub model: Option<String>,

    /// api_base for the `--model` deployment.
    #[arg(long = "api_base", alias = "api-base")]
    pub api_base: Option<String>,

    /// Public name for the `--model` deployment.
    #[arg(long)]
    pub alias: Option<String>,

    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Port to bind (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 4000)]
    pub port: u16,

    /// Accepted for LiteLLM compatibility. Tollgate is one process: this sets the number of
    /// threads that serve HTTP, each an event loop of its own (default: one per CPU core), not
    /// processes.
    #[arg(long = "num_workers", alias = "num-workers", env = "NUM_WORKERS")]
    pub num_workers: Option<usize>,

    /// INFO logging.
    #[arg(long)]
    pub debug: bool,

    /// DEBUG logging (also `LITELLM_LOG=DEBUG`).
    #[arg(long = "detailed_debug", alias = "detailed-debug")]
    pub detailed_debug: bool,

    /// Drop request parameters a provider does not support instead of failing.
    #[arg(long = "drop_params", alias = "drop-params")]
    pub drop_params: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file and exit (non-zero with the offending field on error).
    #[command(name = "check-config")]
    CheckConfig {
        /// The config.yaml to check.
        path: PathBuf,
    },
    /// Manage virtual keys on a running gateway (over its HTTP API).
    #[command(subcommand)]
    Keys(crate::admin_cli::KeysCommand),
    /// Copy keys (hashes), teams, users, end users, budgets and spend from a LiteLLM
    /// PostgreSQL database into the store the config points at. Safe to run twice.
    #[command(name = "import-litellm")]
    ImportLitellm {
        /// The LiteLLM database, postgres://…
        source: String,
        /// The Tollgate config (its database_url, or the SQLite file beside it).
        #[arg(short = 'c', long, env = "CONFIG_FILE_PATH")]
        config: Option<PathBuf>,
    },
    /// A mock upstream (OpenAI and Anthropic shapes) on loopback, for benchmarks and tests.
    #[command(name = "mock-upstream", hide = true)]
    MockUpstream {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Print the OpenClaw config block (`models.providers.litellm` and the primary model) for
    /// the configured model groups, with context windows and output limits filled in.
    #[command(name = "openclaw-config")]
    OpenclawConfig {
        /// The gateway's config.yaml.
        #[arg(short = 'c', long, env = "CONFIG_FILE_PATH")]
        config: PathBuf,
        /// Write this key instead of `${LITELLM_API_KEY}`.
        #[arg(long)]
        key: Option<String>,
        /// Model groups to list, comma-separated; the first is the primary (default: all).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// The gateway's URL as OpenClaw reaches it.
        #[arg(
            long = "base-url",
            alias = "base_url",
            default_value = "http://localhost:4000"
        )]
        base_url: String,
    },
}
