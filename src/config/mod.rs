//! LiteLLM's `config.yaml`, read unchanged: parsing, `os.environ/` indirection and validation.
//!
//! [`load`] turns a file into a [`Config`]: a typed runtime value whose errors name the path of
//! the offending field. Keys LiteLLM knows that Tollgate does not act on yet are kept and listed
//! in [`Config::not_yet_supported`] so the start-up log says so once.

pub mod env;
mod known;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::providers::registry::{self, Family, ProviderSpec};
pub use env::Env;

/// A configuration error: the path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A secret value: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (`None` for `--model` quick start).
    pub path: Option<PathBuf>,
    pub deployments: Vec<Deployment>,
    pub master_key: Option<Secret>,
    pub database_url: Option<String>,
    pub redis: Option<RedisSettings>,
    pub router: RouterSettings,
    pub general: GeneralSettings,
    pub litellm: LitellmSettings,
    /// The resolved sections, for settings read by one module only.
    pub general_settings: Map<String, Value>,
    pub litellm_settings: Map<String, Value>,
    pub router_settings: Map<String, Value>,
    /// `section.key` paths LiteLLM knows that are accepted but not acted on.
    pub not_yet_supported: Vec<String>,
    /// Other start-up warnings (missing env vars, unknown keys).
    pub warnings: Vec<String>,
    pub env: Env,
}

/// One `model_list` entry.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Public model group name clients send.
    pub model_name: String,
    /// `model_info.id`, or a stable hash of the entry.
    pub id: String,
    pub provider: &'static ProviderSpec,
    /// Model name sent upstream (after the provider prefix).
    pub upstream_model: String,
    /// `litellm_params.model` as written.
    pub litellm_model: String,
    pub api_base: Option<String>,
    pub api_key: Option<Secret>,
    pub api_version: Option<String>,
    pub organization: Option<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub weight: Option<f64>,
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
    pub num_retries: Option<u32>,
    pub max_parallel_requests: Option<u64>,
    pub mock_response: Option<Value>,
    pub extra_headers: Vec<(String, String)>,
    pub tags: Vec<String>,
    /// All `litellm_params`, resolved; secrets included (never serialized to clients as-is).
    pub litellm_params: Map<String, Value>,
    /// All `model_info`, resolved.
    pub model_info: Map<String, Value>,
}

impl Deployment {
    pub fn is_wildcard(&self) -> bool {
        self.model_name.contains('*')
    }

    /// `litellm_params` without secrets, as `/model/info` shows them.
    pub fn public_params(&self) -> Map<String, Value> {
        self.litellm_params
            .iter()
            .filter(|(k, _)| !is_secret_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Whether a settings key holds a credential.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("api_key")
        || k.contains("secret")
        || k.contains("password")
        || k.contains("token")
        || k.contains("credentials")
        || k == "aws_access_key_id"
        || k == "extra_headers"
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port/db`.
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct RouterSettings {
    pub routing_strategy: String,
    pub num_retries: u32,
    pub timeout: Duration,
    pub stream_timeout: Option<Duration>,
    pub allowed_fails: u32,
    pub cooldown_time: Duration,
    pub disable_cooldowns: bool,
    pub retry_after: Duration,
    pub fallbacks: HashMap<String, Vec<String>>,
    pub context_window_fallbacks: HashMap<String, Vec<String>>,
    pub content_policy_fallbacks: HashMap<String, Vec<String>>,
    pub default_fallbacks: Vec<String>,
    pub max_fallbacks: usize,
    pub model_group_alias: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct GeneralSettings {
    pub store_prompts_in_spend_logs: bool,
    pub disable_spend_logs: bool,
    pub proxy_batch_write_at: Duration,
    pub max_request_size_mb: f64,
    pub litellm_key_header_name: Option<String>,
    pub user_api_key_cache_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct LitellmSettings {
    pub drop_params: bool,
    pub request_timeout: Duration,
    pub budget_exceeded_status_code: u16,
    pub callbacks: Vec<String>,
    pub success_callback: Vec<String>,
    pub failure_callback: Vec<String>,
    pub json_logs: bool,
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default)]
    model_list: Vec<RawDeployment>,
    #[serde(default)]
    litellm_settings: Option<Map<String, Value>>,
    #[serde(default)]
    router_settings: Option<Map<String, Value>>,
    #[serde(default)]
    general_settings: Option<Map<String, Value>>,
    #[serde(default)]
    #[allow(dead_code)] // applied before deserialization; kept so the key is not "unknown"
    environment_variables: Option<Map<String, Value>>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct RawDeployment {
    model_name: String,
    litellm_params: Map<String, Value>,
    #[serde(default)]
    model_info: Option<Map<String, Value>>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// Reads and validates a config file.
pub fn load(path: &Path, env: Env) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    let mut cfg = parse(&text, env)?;
    cfg.path = Some(path.to_path_buf());
    Ok(cfg)
}

/// Parses config text (YAML or JSON).
pub fn parse(text: &str, mut env: Env) -> Result<Config, ConfigError> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        ConfigError::new("", format!("not valid YAML{at}: {e}"))
    })?;
    let mut json: Value = serde_json::to_value(&yaml)
        .map_err(|e| ConfigError::new("", format!("unsupported YAML value: {e}")))?;
    if json.is_null() {
        json = Value::Object(Map::new());
    }
    if !json.is_object() {
        return Err(ConfigError::new(
            "",
            "the config must be a mapping with keys such as model_list and general_settings",
        ));
    }

    // environment_variables are applied before any os.environ/ lookup, as LiteLLM does.
    if let Some(vars) = json.get("environment_variables").and_then(Value::as_object) {
        for (k, v) in vars {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            env.set(k.clone(), s);
        }
    }
    let mut warnings = Vec::new();
    resolve_env(&mut json, "", &env, &mut warnings);

    let raw: RawConfig = serde_path_to_error::deserialize(json).map_err(|e| {
        ConfigError::new(
            e.path().to_string(),
            e.inner().to_string().replace("`", "\""),
        )
    })?;
    build(raw, env, warnings)
}

/// Replaces every `os.environ/NAME` string with the variable's value.
fn resolve_env(v: &mut Value, path: &str, env: &Env, warnings: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("os.environ/") {
                match env.get(name) {
                    Some(val) => *s = val,
                    None => {
                        warnings.push(format!(
                            "{path}: environment variable {name} is not set; the value is empty"
                        ));
                        *v = Value::Null;
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_env(item, &format!("{path}[{i}]"), env, warnings);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                resolve_env(item, &p, env, warnings);
            }
        }
        _ => {}
    }
}

fn build(raw: RawConfig, env: Env, mut warnings: Vec<String>) -> Result<Config, ConfigError> {
    let mut not_yet_supported = Vec::new();
    for key in raw.other.keys() {
        if known::TOP_LEVEL_ACCEPTED.contains(&key.as_str()) {
            not_yet_supported.push(key.clone());
        } else {
            warnings.push(format!("{key}: unknown top-level key, ignored"));
        }
    }

    let mut deployments = Vec::with_capacity(raw.model_list.len());
    for (i, d) in raw.model_list.into_iter().enumerate() {
        deployments.push(build_deployment(
            i,
            d,
            &env,
            &mut warnings,
            &mut not_yet_supported,
        )?);
    }
    let mut seen = HashMap::new();
    for (i, d) in deployments.iter().enumerate() {
        if let Some(prev) = seen.insert(d.id.clone(), i) {
            return Err(ConfigError::new(
                format!("model_list[{i}].model_info.id"),
                format!(
                    "duplicate deployment id \"{}\" (also model_list[{prev}])",
                    d.id
                ),
            ));
        }
    }

    let litellm_settings = raw.litellm_settings.unwrap_or_default();
    let mut router_settings = raw.router_settings.unwrap_or_default();
    let general_settings = raw.general_settings.unwrap_or_default();
    // router_settings override the same keys given in litellm_settings.
    for key in known::ROUTER_KEYS_ALSO_IN_LITELLM {
        if !router_settings.contains_key(*key)
            && let Some(v) = litellm_settings.get(*key)
        {
            router_settings.insert((*key).to_owned(), v.clone());
        }
    }

    check_keys(
        "litellm_settings",
        &litellm_settings,
        known::LITELLM_ACTED,
        known::LITELLM_ACCEPTED,
        &mut warnings,
        &mut not_yet_supported,
    );
    check_keys(
        "router_settings",
        &router_settings,
        known::ROUTER_ACTED,
        known::ROUTER_ACCEPTED,
        &mut warnings,
        &mut not_yet_supported,
    );
    check_keys(
        "general_settings",
        &general_settings,
        known::GENERAL_ACTED,
        known::GENERAL_ACCEPTED,
        &mut warnings,
        &mut not_yet_supported,
    );

    let s = Section {
        name: "router_settings",
        map: &router_settings,
    };
    let group_names: Vec<&str> = deployments.iter().map(|d| d.model_name.as_str()).collect();
    let router = RouterSettings {
        routing_strategy: s
            .string("routing_strategy")?
            .unwrap_or_else(|| "simple-shuffle".into()),
        num_retries: s.u64("num_retries")?.map(|n| n as u32).unwrap_or(2),
        timeout: s.seconds("timeout")?.unwrap_or(Duration::from_secs(600)),
        stream_timeout: s.seconds("stream_timeout")?,
        allowed_fails: s.u64("allowed_fails")?.map(|n| n as u32).unwrap_or(3),
        cooldown_time: s
            .seconds("cooldown_time")?
            .unwrap_or(Duration::from_secs(5)),
        disable_cooldowns: s.bool("disable_cooldowns")?.unwrap_or(false),
        retry_after: s.seconds("retry_after")?.unwrap_or(Duration::ZERO),
        fallbacks: s.fallbacks("fallbacks", &group_names)?,
        context_window_fallbacks: s.fallbacks("context_window_fallbacks", &group_names)?,
        content_policy_fallbacks: s.fallbacks("content_policy_fallbacks", &group_names)?,
        default_fallbacks: s.string_list("default_fallbacks")?.unwrap_or_default(),
        max_fallbacks: s.u64("max_fallbacks")?.unwrap_or(5) as usize,
        model_group_alias: s.alias_map("model_group_alias")?,
    };
    if !known::ROUTING_STRATEGIES.contains(&router.routing_strategy.as_str()) {
        let hint = registry::closest(
            &router.routing_strategy,
            known::ROUTING_STRATEGIES.iter().copied(),
        )
        .map(|c| format!(" — did you mean \"{c}\"?"))
        .unwrap_or_else(|| format!(" — one of {}", known::ROUTING_STRATEGIES.join(", ")));
        return Err(ConfigError::new(
            "router_settings.routing_strategy",
            format!(
                "unknown routing strategy \"{}\"{hint}",
                router.routing_strategy
            ),
        ));
    }

    let g = Section {
        name: "general_settings",
        map: &general_settings,
    };
    let master_key = match general_settings.get("master_key") {
        Some(Value::Null)
            if warnings
                .iter()
                .any(|w| w.starts_with("general_settings.master_key:")) =>
        {
            return Err(ConfigError::new(
                "general_settings.master_key",
                "refers to an environment variable that is not set; refusing to start without the master key it asks for",
            ));
        }
        _ => g.string("master_key")?,
    }
    .or_else(|| env.get("LITELLM_MASTER_KEY"))
    .map(Secret::new);
    let database_url = g
        .string("database_url")?
        .or_else(|| env.get("DATABASE_URL"));
    let general = GeneralSettings {
        store_prompts_in_spend_logs: g.bool("store_prompts_in_spend_logs")?.unwrap_or(false),
        disable_spend_logs: g.bool("disable_spend_logs")?.unwrap_or(false),
        proxy_batch_write_at: g
            .seconds("proxy_batch_write_at")?
            .or_else(|| {
                env.get("PROXY_BATCH_WRITE_AT")
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(Duration::from_secs_f64)
            })
            .unwrap_or(Duration::from_secs(10)),
        max_request_size_mb: g.f64("max_request_size_mb")?.unwrap_or(32.0),
        litellm_key_header_name: g.string("litellm_key_header_name")?,
        user_api_key_cache_ttl: g
            .seconds("user_api_key_cache_ttl")?
            .unwrap_or(Duration::from_secs(60)),
    };

    let l = Section {
        name: "litellm_settings",
        map: &litellm_settings,
    };
    let litellm = LitellmSettings {
        drop_params: l.bool("drop_params")?.unwrap_or(false),
        request_timeout: l
            .seconds("request_timeout")?
            .or_else(|| {
                env.get("REQUEST_TIMEOUT")
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(Duration::from_secs_f64)
            })
            .unwrap_or(Duration::from_secs(6000)),
        budget_exceeded_status_code: l
            .u64("budget_exceeded_status_code")?
            .map(|c| c as u16)
            .unwrap_or(422),
        callbacks: l.string_list("callbacks")?.unwrap_or_default(),
        success_callback: l.string_list("success_callback")?.unwrap_or_default(),
        failure_callback: l.string_list("failure_callback")?.unwrap_or_default(),
        json_logs: l.bool("json_logs")?.unwrap_or(false) || env.flag("JSON_LOGS"),
    };
    if !(400..=599).contains(&litellm.budget_exceeded_status_code) {
        return Err(ConfigError::new(
            "litellm_settings.budget_exceeded_status_code",
            "must be an HTTP error status between 400 and 599",
        ));
    }

    let redis = redis_settings(&router_settings, &litellm_settings, &env)?;

    Ok(Config {
        path: None,
        deployments,
        master_key,
        database_url,
        redis,
        router,
        general,
        litellm,
        general_settings,
        litellm_settings,
        router_settings,
        not_yet_supported,
        warnings,
        env,
    })
}

fn redis_settings(
    router: &Map<String, Value>,
    litellm: &Map<String, Value>,
    env: &Env,
) -> Result<Option<RedisSettings>, ConfigError> {
    let r = Section {
        name: "router_settings",
        map: router,
    };
    if let Some(url) = r.string("redis_url")? {
        return Ok(Some(RedisSettings { url }));
    }
    let cache_params = litellm.get("cache_params").and_then(Value::as_object);
    let host = r
        .string("redis_host")?
        .or_else(|| {
            cache_params
                .and_then(|c| c.get("host"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| env.get("REDIS_HOST"));
    let Some(host) = host else {
        return Ok(env.get("REDIS_URL").map(|url| RedisSettings { url }));
    };
    let port = match router
        .get("redis_port")
        .or_else(|| cache_params.and_then(|c| c.get("port")))
    {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => env.get("REDIS_PORT").unwrap_or_else(|| "6379".into()),
    };
    let password = r
        .string("redis_password")?
        .or_else(|| {
            cache_params
                .and_then(|c| c.get("password"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| env.get("REDIS_PASSWORD"));
    let db = match router.get("redis_db") {
        Some(Value::Number(n)) => format!("/{n}"),
        Some(Value::String(s)) => format!("/{s}"),
        _ => String::new(),
    };
    let auth = password.map(|p| format!(":{p}@")).unwrap_or_default();
    Ok(Some(RedisSettings {
        url: format!("redis://{auth}{host}:{port}{db}"),
    }))
}

fn check_keys(
    section: &str,
    map: &Map<String, Value>,
    acted: &[&str],
    accepted: &[&str],
    warnings: &mut Vec<String>,
    not_yet: &mut Vec<String>,
) {
    for key in map.keys() {
        if acted.contains(&key.as_str()) {
            continue;
        }
        if accepted.contains(&key.as_str()) {
            not_yet.push(format!("{section}.{key}"));
        } else {
            let hint = registry::closest(key, acted.iter().chain(accepted).copied())
                .map(|c| format!(" (did you mean \"{c}\"?)"))
                .unwrap_or_default();
            warnings.push(format!("{section}.{key}: unknown setting, ignored{hint}"));
        }
    }
}

fn build_deployment(
    i: usize,
    raw: RawDeployment,
    env: &Env,
    warnings: &mut Vec<String>,
    not_yet: &mut Vec<String>,
) -> Result<Deployment, ConfigError> {
    let base = format!("model_list[{i}]");
    for key in raw.other.keys() {
        warnings.push(format!("{base}.{key}: unknown deployment key, ignored"));
    }
    if raw.model_name.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{base}.model_name"),
            "must not be empty",
        ));
    }
    let params = raw.litellm_params;
    let p = Section {
        name: "",
        map: &params,
    };
    let ppath = format!("{base}.litellm_params");
    let wrap = |e: ConfigError| ConfigError::new(format!("{ppath}.{}", e.path), e.message);

    let litellm_model = p
        .string("model")
        .map_err(wrap)?
        .ok_or_else(|| ConfigError::new(format!("{ppath}.model"), "is required"))?;
    let custom_provider = p.string("custom_llm_provider").map_err(wrap)?;
    let (provider, upstream_model) = match custom_provider {
        Some(name) => {
            let spec = registry::by_name(&name).ok_or_else(|| {
                ConfigError::new(
                    format!("{ppath}.custom_llm_provider"),
                    registry::UnknownProvider {
                        suggestion: registry::suggest(&name),
                        given: name.clone(),
                    }
                    .to_string(),
                )
            })?;
            let m = litellm_model
                .strip_prefix(&format!("{name}/"))
                .unwrap_or(&litellm_model);
            (spec, m.to_owned())
        }
        None => {
            let (spec, m) = registry::split_model(&litellm_model)
                .map_err(|e| ConfigError::new(format!("{ppath}.model"), e.to_string()))?;
            (spec, m.to_owned())
        }
    };
    if provider.family == Family::Unsupported {
        warnings.push(format!(
            "{ppath}.model: provider \"{}\" is recognised but not supported by Tollgate yet; requests to \"{}\" will fail",
            provider.name, raw.model_name
        ));
    }
    if provider.family == Family::Azure
        && p.string("api_base").map_err(wrap)?.is_none()
        && provider.base_env.and_then(|v| env.get(v)).is_none()
    {
        return Err(ConfigError::new(
            format!("{ppath}.api_base"),
            "azure deployments need api_base (https://<resource>.openai.azure.com) or AZURE_API_BASE",
        ));
    }

    for key in params.keys() {
        if !known::PARAMS_ACTED.contains(&key.as_str()) {
            if known::PARAMS_ACCEPTED.contains(&key.as_str()) {
                let entry = format!("model_list[].litellm_params.{key}");
                if !not_yet.contains(&entry) {
                    not_yet.push(entry);
                }
            } else {
                // LiteLLM passes unknown litellm_params to the provider call; so do we.
            }
        }
    }
    let api_base = p.string("api_base").map_err(wrap)?;
    if let Some(b) = &api_base
        && !(b.starts_with("http://") || b.starts_with("https://"))
    {
        return Err(ConfigError::new(
            format!("{ppath}.api_base"),
            format!("\"{b}\" is not an http(s) URL"),
        ));
    }
    let extra_headers = match params.get("extra_headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        Some(_) => {
            return Err(ConfigError::new(
                format!("{ppath}.extra_headers"),
                "must be a mapping of header names to values",
            ));
        }
    };

    let model_info = raw.model_info.unwrap_or_default();
    let id = match model_info.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => stable_id(&raw.model_name, &params),
    };

    Ok(Deployment {
        model_name: raw.model_name,
        id,
        provider,
        upstream_model,
        litellm_model,
        api_base,
        api_key: p.string("api_key").map_err(wrap)?.map(Secret::new),
        api_version: p.string("api_version").map_err(wrap)?,
        organization: p.string("organization").map_err(wrap)?,
        rpm: p.u64("rpm").map_err(wrap)?,
        tpm: p.u64("tpm").map_err(wrap)?,
        weight: p.f64("weight").map_err(wrap)?,
        timeout: p.seconds("timeout").map_err(wrap)?,
        stream_timeout: p.seconds("stream_timeout").map_err(wrap)?,
        num_retries: p.u64("num_retries").map_err(wrap)?.map(|n| n as u32),
        max_parallel_requests: p.u64("max_parallel_requests").map_err(wrap)?,
        mock_response: params
            .get("mock_response")
            .cloned()
            .filter(|v| !v.is_null()),
        extra_headers,
        tags: p.string_list("tags").map_err(wrap)?.unwrap_or_default(),
        litellm_params: params,
        model_info,
    })
}

/// A deployment id that stays the same across restarts and instances for the same entry.
fn stable_id(model_name: &str, params: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(model_name.as_bytes());
    for (k, v) in params {
        if !is_secret_key(k) {
            h.update(k.as_bytes());
            h.update(v.to_string().as_bytes());
        }
    }
    hex::encode(&h.finalize()[..16])
}

/// Typed reads from one settings map, with the field path in errors.
struct Section<'a> {
    name: &'a str,
    map: &'a Map<String, Value>,
}

impl Section<'_> {
    fn path(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    fn err(&self, key: &str, want: &str, got: &Value) -> ConfigError {
        ConfigError::new(self.path(key), format!("expected {want}, found {got}"))
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(v) => Err(self.err(key, "a string", v)),
        }
    }

    fn f64(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| self.err(key, "a number", &Value::String(s.clone()))),
            Some(v) => Err(self.err(key, "a number", v)),
        }
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.f64(key)? {
            None => Ok(None),
            Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(f as u64)),
            Some(f) => Err(ConfigError::new(
                self.path(key),
                format!("expected a whole number ≥ 0, found {f}"),
            )),
        }
    }

    fn seconds(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        match self.f64(key)? {
            None => Ok(None),
            Some(f) if f >= 0.0 && f.is_finite() => Ok(Some(Duration::from_secs_f64(f))),
            Some(f) => Err(ConfigError::new(
                self.path(key),
                format!("expected a number of seconds ≥ 0, found {f}"),
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(Some(true)),
                "false" | "no" | "0" | "off" => Ok(Some(false)),
                _ => Err(self.err(key, "true or false", &Value::String(s.clone()))),
            },
            Some(v) => Err(self.err(key, "true or false", v)),
        }
    }

    fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ConfigError::new(
                        format!("{}[{i}]", self.path(key)),
                        format!("expected a string, found {other}"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(key, "a list of strings", v)),
        }
    }

    /// `[{"group": ["fallback", ...]}, ...]`; every name must be a configured group.
    fn fallbacks(
        &self,
        key: &str,
        groups: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, ConfigError> {
        let mut out = HashMap::new();
        let items = match self.map.get(key) {
            None | Some(Value::Null) => return Ok(out),
            Some(Value::Array(items)) => items,
            Some(Value::Object(_)) => std::slice::from_ref(&self.map[key]),
            Some(v) => return Err(self.err(key, "a list of {model: [fallbacks]} mappings", v)),
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.path(key));
            let Value::Object(m) = item else {
                return Err(ConfigError::new(
                    path,
                    format!("expected a mapping {{model: [fallbacks]}}, found {item}"),
                ));
            };
            for (group, targets) in m {
                let list: Vec<String> = match targets {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect(),
                    other => {
                        return Err(ConfigError::new(
                            format!("{path}.{group}"),
                            format!("expected a list of model names, found {other}"),
                        ));
                    }
                };
                for name in std::iter::once(group).chain(&list) {
                    if !groups.iter().any(|g| g == name || g.contains('*')) {
                        let hint = registry::closest(name, groups.iter().copied())
                            .map(|c| format!(" — did you mean \"{c}\"?"))
                            .unwrap_or_default();
                        return Err(ConfigError::new(
                            format!("{path}.{group}"),
                            format!("\"{name}\" is not a model_name in model_list{hint}"),
                        ));
                    }
                }
                out.insert(group.clone(), list);
            }
        }
        Ok(out)
    }

    fn alias_map(&self, key: &str) -> Result<HashMap<String, String>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(HashMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    // LiteLLM also accepts {"model": "...", "hidden": true}.
                    Value::Object(o) => o
                        .get("model")
                        .and_then(Value::as_str)
                        .map(|s| (k.clone(), s.to_owned()))
                        .ok_or_else(|| {
                            ConfigError::new(
                                format!("{}.{k}", self.path(key)),
                                "expected a model group name or {model: name}",
                            )
                        }),
                    other => Err(ConfigError::new(
                        format!("{}.{k}", self.path(key)),
                        format!("expected a model group name, found {other}"),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(key, "a mapping of alias to model group", v)),
        }
    }
}

/// The config for `tollgate --model NAME`: one deployment, as `litellm --model` builds it.
pub fn quick_start(
    model: &str,
    api_base: Option<String>,
    alias: Option<String>,
    env: Env,
) -> Result<Config, ConfigError> {
    let mut entry = serde_json::json!({
        "model_name": alias.unwrap_or_else(|| model.to_owned()),
        "litellm_params": {"model": model},
    });
    if let Some(b) = api_base {
        entry["litellm_params"]["api_base"] = Value::String(b);
    }
    let text = serde_json::json!({"model_list": [entry]}).to_string();
    parse(&text, env)
}

#[cfg(test)]
mod tests;
