//! Who is calling, and may they make this call: the master key, virtual keys (hashed), and the
//! admission step (model access, budgets, rate limits) every model route goes through.
//!
//! **Architecture Invariant:** authentication and admission read memory (or Redis), never the
//! database, on the request path.

pub mod budget;
pub mod duration;
pub mod keys;
pub mod limits;
pub mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use budget::{Admission, Clock, Kind, ManualClock, SystemClock};
use budget::{Estimates, Limits, Plan, Role, refusal, spend_expiry, spend_key, window_end};
use duration::iso;
use keys::{Directory, Loaded};
use limits::{Counters, Slot};
use redis::RedisCounters;

use crate::config::Config;
use crate::error::ApiError;
use crate::store::budgets::SpendTable;
use crate::store::end_users::EndUserRow;
use crate::store::keys::KeyRow;
use crate::store::{Store, StoreError};

/// Headers LiteLLM accepts the key in, besides `Authorization: Bearer`.
pub const KEY_HEADERS: &[&str] = &[
    "x-litellm-api-key",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
];

/// SHA-256 hex of a key, exactly as LiteLLM stores it. Values not starting with `sk-` are taken
/// to be hashes already.
pub fn hash_token(key: &str) -> String {
    if key.starts_with("sk-") {
        hex_sha(key)
    } else {
        key.to_owned()
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The master key (or a `proxy_admin` user's key): every route, every model, no budget.
    pub is_admin: bool,
    /// Hash of the key presented.
    pub key_hash: Option<String>,
    pub key_alias: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// The virtual key as cached (None for the master key).
    pub key: Option<Arc<KeyRow>>,
}

/// What admission needs to know about the call.
#[derive(Debug, Clone, Default)]
pub struct CallFacts {
    pub model_group: String,
    /// The OpenAI `user` field or `x-litellm-end-user-id`.
    pub end_user: Option<String>,
    /// Estimated prompt tokens, for tpm limits and budget reservation.
    pub estimated_prompt_tokens: u64,
    /// Estimated worst-case cost, reserved against budgets (0 = unknown: the cost learned
    /// from earlier calls to the model is reserved instead).
    pub estimated_cost: f64,
}

pub struct Auth {
    master_hash: Option<String>,
    custom_header: Option<String>,
    /// Keys, teams, users, end users and budgets, as last loaded.
    pub directory: Directory,
    store: Option<Store>,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    budget_status: StatusCode,
    /// Access-group name → model names in it.
    access_groups: HashMap<String, Vec<String>>,
    /// `router_settings.model_group_alias`.
    model_aliases: HashMap<String, String>,
    estimates: Arc<Estimates>,
    /// `litellm_settings.max_end_user_budget`: the budget of end users without one.
    default_end_user_budget: Option<f64>,
    refresh_every: Duration,
    reset_enabled: bool,
    reset_due: Notify,
    key_hashes: KeyHashes,
}

impl Auth {
    /// Master-key authentication only, counters in memory (no store).
    pub fn new(cfg: &Config) -> Arc<Self> {
        Arc::new(Self::build(
            cfg,
            None,
            Counters::local(),
            Arc::new(SystemClock),
        ))
    }

    fn build(
        cfg: &Config,
        store: Option<Store>,
        counters: Counters,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut access_groups: HashMap<String, Vec<String>> = HashMap::new();
        for d in &cfg.deployments {
            if let Some(groups) = d.model_info.get("access_groups").and_then(|v| v.as_array()) {
                for g in groups.iter().filter_map(|g| g.as_str()) {
                    access_groups
                        .entry(g.to_owned())
                        .or_default()
                        .push(d.model_name.clone());
                }
            }
        }
        let budget_status = StatusCode::from_u16(cfg.litellm.budget_exceeded_status_code)
            .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        let reset_enabled = !matches!(
            cfg.general_settings.get("disable_reset_budget"),
            Some(serde_json::Value::Bool(true))
        );
        Auth {
            master_hash: cfg.master_key.as_ref().map(|k| hex_sha(k.expose())),
            custom_header: cfg
                .general
                .litellm_key_header_name
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
            directory: Directory::default(),
            store,
            counters: Arc::new(counters),
            clock,
            budget_status,
            access_groups,
            model_aliases: cfg.router.model_group_alias.clone(),
            estimates: Arc::new(Estimates::default()),
            default_end_user_budget: cfg
                .litellm_settings
                .get("max_end_user_budget")
                .and_then(serde_json::Value::as_f64),
            refresh_every: cfg
                .general
                .user_api_key_cache_ttl
                .max(Duration::from_secs(1)),
            reset_enabled,
            key_hashes: KeyHashes::default(),
            reset_due: Notify::new(),
        }
    }

    /// Authentication over the store: connects Redis when configured (counters shared by every
    /// instance) and loads every key, team, user, end user and budget.
    pub async fn start(
        cfg: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, StoreError> {
        let counters = match &cfg.redis {
            Some(r) => {
                let prefix = cfg
                    .env
                    .get("TOLLGATE_REDIS_PREFIX")
                    .unwrap_or_else(|| "tollgate".into());
                let c = RedisCounters::connect(&r.url, &prefix).await.map_err(|e| {
                    StoreError::Invalid(format!(
                        "cannot reach Redis at {}: {e}",
                        crate::store::redact(&r.url)
                    ))
                })?;
                Counters::Redis(Box::new(c))
            }
            None => Counters::local(),
        };
        let auth = Arc::new(Self::build(cfg, Some(store), counters, clock));
        auth.reload().await?;
        Ok(auth)
    }

    pub fn open(&self) -> bool {
        self.master_hash.is_none()
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Reads everything from the store into the directory and raises the spend counters to
    /// the stored spend of the current windows.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        // An admin change made here while the load was read would be undone by it: read again.
        let mut tries = 0;
        let loaded = loop {
            let seen = self.directory.generation();
            let loaded = Loaded::read(store).await?;
            tries += 1;
            if self.directory.replace_if_unchanged(&loaded, seen) {
                break loaded;
            }
            if tries == 3 {
                tracing::debug!("key cache busy with changes; refreshing next time");
                return Ok(());
            }
        };
        let now = self.now_ms();
        for k in &loaded.keys {
            self.seed(
                Kind::Key,
                &k.token,
                k.spend,
                k.budget_duration.as_deref(),
                k.budget_reset_at,
                now,
            )
            .await;
        }
        for t in &loaded.teams {
            self.seed(
                Kind::Team,
                &t.team_id,
                t.spend,
                t.budget_duration.as_deref(),
                t.budget_reset_at,
                now,
            )
            .await;
        }
        for u in &loaded.users {
            self.seed(
                Kind::User,
                &u.user_id,
                u.spend,
                u.budget_duration.as_deref(),
                u.budget_reset_at,
                now,
            )
            .await;
        }
        for e in &loaded.end_users {
            let b = e
                .budget_id
                .as_deref()
                .and_then(|b| self.directory.budget(b));
            let dur = b.as_ref().and_then(|b| b.budget_duration.clone());
            self.seed(
                Kind::EndUser,
                &e.user_id,
                e.spend,
                dur.as_deref(),
                e.budget_reset_at,
                now,
            )
            .await;
        }
        self.counters.prune(now);
        Ok(())
    }

    async fn seed(
        &self,
        kind: Kind,
        id: &str,
        spend: f64,
        duration: Option<&str>,
        reset_at: Option<i64>,
        now: i64,
    ) {
        if spend <= 0.0 {
            return;
        }
        let w = window_end(duration, reset_at, now);
        // A row whose window has ended holds the old window's spend: it does not count.
        if w == 0 || reset_at.is_none() || reset_at == Some(w) {
            self.counters
                .seed_max(&spend_key(kind, id, w), spend, spend_expiry(w))
                .await;
        }
    }

    /// Sets the spend counter of an entity's current window (an admin changed `spend`).
    pub async fn set_spend(
        &self,
        kind: Kind,
        id: &str,
        spend: f64,
        duration: Option<&str>,
        reset_at: Option<i64>,
    ) {
        let w = window_end(duration, reset_at, self.now_ms());
        self.counters
            .set(&spend_key(kind, id, w), spend, spend_expiry(w))
            .await;
    }

    /// The live spend of an entity's current window (stored spend or counted since, whichever
    /// is larger).
    pub async fn live_spend(
        &self,
        kind: Kind,
        id: &str,
        stored: f64,
        duration: Option<&str>,
        reset_at: Option<i64>,
    ) -> f64 {
        let now = self.now_ms();
        let w = window_end(duration, reset_at, now);
        let counted = self.counters.get(&spend_key(kind, id, w)).await;
        if w != 0 && reset_at.is_some_and(|r| r != w) {
            counted
        } else {
            counted.max(stored)
        }
    }

    /// Identifies the caller from the request headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(master) = &self.master_hash else {
            return Ok(Caller {
                is_admin: true,
                ..Caller::default()
            });
        };
        let key = presented_key(headers, self.custom_header.as_deref()).ok_or_else(|| {
            ApiError::unauthorized(
                "Authentication Error, No api key passed in. Send it as 'Authorization: Bearer sk-...'.",
            )
        })?;
        // Always hash what was presented (or find its hash among keys that authenticated):
        // a stored hash is not a credential.
        let (hash, memoized) = match self.key_hashes.get(key) {
            Some(h) => (h, true),
            None => (hex_sha(key), false),
        };
        if constant_time_eq(hash.as_bytes(), master.as_bytes()) {
            // The master key is not remembered: admin calls are few, and the memo compares
            // keys with plain `==`.
            return Ok(Caller {
                is_admin: true,
                key_hash: Some(hash),
                ..Caller::default()
            });
        }
        let Some(row) = self.lookup(&hash).await? else {
            return Err(ApiError::unauthorized(
                "Authentication Error, Invalid proxy server token passed. Received API Key = sk-..."
                    .to_owned() + &tail(key),
            ));
        };
        self.check_usable(&row)?;
        if !memoized {
            self.key_hashes.remember(key, &hash);
        }
        let is_admin = row
            .user_id
            .as_deref()
            .and_then(|u| self.directory.user(u))
            .is_some_and(|u| u.user_role.as_deref() == Some("proxy_admin"));
        Ok(Caller {
            is_admin,
            key_hash: Some(hash),
            key_alias: row.key_alias.clone(),
            team_id: row.team_id.clone(),
            user_id: row.user_id.clone(),
            key: Some(row),
        })
    }

    /// A key from the directory, or from the store once if the directory does not know it.
    pub async fn lookup(&self, hash: &str) -> Result<Option<Arc<KeyRow>>, ApiError> {
        if let Some(k) = self.directory.key(hash) {
            return Ok(Some(k));
        }
        let now = self.now_ms();
        let Some(store) = &self.store else {
            return Ok(None);
        };
        if self.directory.known_missing(hash, now) {
            return Ok(None);
        }
        let row = match store.get_key(hash).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("key lookup failed: {e}");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_db_connection",
                    "Authentication Error: the key is not cached and the database cannot be reached.",
                ));
            }
        };
        let Some(row) = row else {
            self.directory.mark_missing(hash, now);
            return Ok(None);
        };
        // A key made on another instance: bring its team and user along.
        if let Some(t) = row.team_id.as_deref()
            && self.directory.team(t).is_none()
            && let Ok(Some(team)) = store.get_team(t).await
        {
            self.directory.put_team(team);
        }
        if let Some(u) = row.user_id.as_deref()
            && self.directory.user(u).is_none()
            && let Ok(Some(user)) = store.get_user(u).await
        {
            self.directory.put_user(user);
        }
        self.seed(
            Kind::Key,
            &row.token,
            row.spend,
            row.budget_duration.as_deref(),
            row.budget_reset_at,
            now,
        )
        .await;
        self.directory.put_key(row.clone());
        Ok(self.directory.key(hash))
    }

    fn check_usable(&self, k: &KeyRow) -> Result<(), ApiError> {
        if k.blocked {
            return Err(ApiError::unauthorized(
                "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
            ));
        }
        let now = self.now_ms();
        if let Some(exp) = k.expires
            && exp <= now
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "expired_key",
                format!(
                    "Authentication Error - Expired Key. Key Expiry time {} and current time {}",
                    iso(exp),
                    iso(now)
                ),
            ));
        }
        if let Some(t) = k.team_id.as_deref().and_then(|t| self.directory.team(t))
            && t.blocked
        {
            return Err(ApiError::unauthorized(format!(
                "Authentication Error, Team={} is blocked. Update via `/team/unblock` if you're an admin.",
                t.team_id
            )));
        }
        Ok(())
    }

    fn list_allows(&self, list: &[String], model: &str) -> bool {
        list.is_empty()
            || list.iter().any(|m| {
                m == "*"
                    || m == "all-proxy-models"
                    || m == model
                    || self.model_aliases.get(m).is_some_and(|g| g == model)
                    || (m.contains('*') && crate::router::wildcard_match(m, model))
                    || self
                        .access_groups
                        .get(m)
                        .is_some_and(|ms| ms.iter().any(|x| x == model))
            })
    }

    /// Whether the caller may call this model (group or alias).
    pub fn may_use(&self, caller: &Caller, model: &str) -> bool {
        self.model_access(caller, model).is_ok()
    }

    fn model_access(&self, caller: &Caller, model: &str) -> Result<(), ApiError> {
        if caller.is_admin {
            return Ok(());
        }
        let Some(key) = &caller.key else {
            return Ok(());
        };
        let target = self.model_aliases.get(model).map(String::as_str);
        let allows = |list: &[String]| {
            self.list_allows(list, model) || target.is_some_and(|t| self.list_allows(list, t))
        };
        // With "all-team-models" the team's list decides (below); without it, the key's own.
        let defers = key.models.iter().any(|m| m == "all-team-models");
        if !defers && !allows(&key.models) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "key_model_access_denied",
                format!(
                    "key not allowed to access model. This key can only access models={:?}. Tried to access {model}",
                    key.models
                ),
            )
            .with_param("model"));
        }
        if let Some(team) = key.team_id.as_deref().and_then(|t| self.directory.team(t))
            && !allows(&team.models)
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "team_model_access_denied",
                format!(
                    "team not allowed to access model. This team can only access models={:?}. Tried to access {model}",
                    team.models
                ),
            )
            .with_param("model"));
        }
        Ok(())
    }

    /// Checks model access, budgets and rate limits, reserving the estimated cost.
    pub async fn admit(&self, caller: &Caller, facts: &CallFacts) -> Result<Admission, ApiError> {
        self.model_access(caller, &facts.model_group)?;
        let now = self.now_ms();
        let est_cost = if facts.estimated_cost > 0.0 {
            facts.estimated_cost
        } else {
            self.estimates.get(&facts.model_group)
        };
        let est_tokens = facts.estimated_prompt_tokens;
        let local = !self.counters.is_redis();
        let mut plan = Plan::default();
        let mut key_limits = None;
        // A key's own limits apply even to a proxy_admin user's key; only the master key has none.
        if let Some(k) = &caller.key {
            let label = k.key_alias.clone().unwrap_or_else(|| k.token.clone());
            let l = Limits {
                max_budget: k.max_budget,
                budget_duration: k.budget_duration.clone(),
                budget_reset_at: k.budget_reset_at,
                rpm: k.rpm_limit,
                tpm: k.tpm_limit,
                parallel: k.max_parallel_requests,
            };
            self.note_due(l.budget_reset_at, now);
            plan.add_subject(
                Kind::Key,
                &k.token,
                &label,
                &l,
                est_cost,
                est_tokens,
                now,
                local,
                true,
            );
            if let Some(mb) = k
                .model_max_budget
                .get(&facts.model_group)
                .and_then(|v| v.get("budget_limit"))
                .and_then(|v| v.as_f64())
            {
                let period = k.model_max_budget[&facts.model_group]
                    .get("time_period")
                    .and_then(|v| v.as_str());
                let w = window_end(period, None, now);
                let id = format!("{}:{}", k.token, facts.model_group);
                plan.push(
                    Slot {
                        key: spend_key(Kind::Key, &id, w),
                        amount: est_cost,
                        limit: Some(mb),
                        expire_at: spend_expiry(w),
                    },
                    Role::ModelSpend { max: mb },
                    Kind::Key,
                    &id,
                    &label,
                );
            }
            key_limits = Some(l);
            if let Some(t) = k.team_id.as_deref().and_then(|t| self.directory.team(t)) {
                let l = Limits {
                    max_budget: t.max_budget,
                    budget_duration: t.budget_duration.clone(),
                    budget_reset_at: t.budget_reset_at,
                    rpm: t.rpm_limit,
                    tpm: t.tpm_limit,
                    parallel: t.max_parallel_requests,
                };
                self.note_due(l.budget_reset_at, now);
                plan.add_subject(
                    Kind::Team,
                    &t.team_id,
                    &t.team_id,
                    &l,
                    est_cost,
                    est_tokens,
                    now,
                    local,
                    false,
                );
            }
            if let Some(u) = k.user_id.as_deref().and_then(|u| self.directory.user(u)) {
                let l = Limits {
                    max_budget: u.max_budget,
                    budget_duration: u.budget_duration.clone(),
                    budget_reset_at: u.budget_reset_at,
                    rpm: u.rpm_limit,
                    tpm: u.tpm_limit,
                    parallel: u.max_parallel_requests,
                };
                self.note_due(l.budget_reset_at, now);
                plan.add_subject(
                    Kind::User,
                    &u.user_id,
                    &u.user_id,
                    &l,
                    est_cost,
                    est_tokens,
                    now,
                    local,
                    false,
                );
            }
        }
        let end_user = facts
            .end_user
            .as_deref()
            .map(|id| (id, self.directory.end_user(id)));
        let has_budget = |eu: &EndUserRow| {
            eu.budget_id
                .as_deref()
                .and_then(|b| self.directory.budget(b))
                .is_some()
        };
        // End users without a budget of their own get the default one, counted atomically
        // like any other (so concurrent first calls cannot all slip past it).
        if let (Some((id, row)), Some(max)) = (&end_user, self.default_end_user_budget)
            && !row.as_deref().is_some_and(has_budget)
            && !row.as_deref().is_some_and(|r| r.blocked)
        {
            let l = Limits {
                max_budget: Some(max),
                ..Limits::default()
            };
            plan.add_subject(
                Kind::EndUser,
                id,
                id,
                &l,
                est_cost,
                est_tokens,
                now,
                local,
                false,
            );
        }
        if let Some(eu) = end_user.and_then(|(_, r)| r) {
            if eu.blocked {
                return Err(ApiError::forbidden(format!(
                    "Authentication Error - End User={} is blocked. Update via `/customer/unblock` if you're an admin.",
                    eu.user_id
                )));
            }
            if let Some(b) = eu
                .budget_id
                .as_deref()
                .and_then(|b| self.directory.budget(b))
            {
                let l = Limits {
                    max_budget: b.max_budget,
                    budget_duration: b.budget_duration.clone(),
                    budget_reset_at: eu.budget_reset_at,
                    rpm: b.rpm_limit,
                    tpm: b.tpm_limit,
                    parallel: b.max_parallel_requests,
                };
                self.note_due(l.budget_reset_at, now);
                plan.add_subject(
                    Kind::EndUser,
                    &eu.user_id,
                    &eu.user_id,
                    &l,
                    est_cost,
                    est_tokens,
                    now,
                    local,
                    false,
                );
            }
        }
        let mut adm = Admission::default();
        adm.counters = Some(self.counters.clone());
        adm.estimates = Some(self.estimates.clone());
        adm.model = facts.model_group.clone();
        if plan.slots.is_empty() {
            return Ok(adm);
        }
        let before = match self.counters.check_add(&plan.slots, now).await {
            Ok(b) => b,
            Err(r) => {
                let (role, kind, id, label) = &plan.roles[r.index];
                adm.counters = None;
                return Err(refusal(
                    *role,
                    *kind,
                    id,
                    label,
                    r.current,
                    self.budget_status,
                    now,
                ));
            }
        };
        for (i, (slot, (role, kind, _, _))) in plan.slots.iter().zip(&plan.roles).enumerate() {
            let b = before.get(i).copied().unwrap_or(0.0);
            match role {
                Role::Spend { .. } | Role::ModelSpend { .. } => {
                    adm.spend.push((slot.key.clone(), slot.amount));
                    if *kind == Kind::Key && matches!(role, Role::Spend { .. }) {
                        adm.key_spend = Some(b);
                    }
                }
                Role::Tpm { limit, .. } => {
                    adm.tokens.push((slot.key.clone(), slot.amount));
                    if *kind == Kind::Key {
                        adm.headers
                            .push(("x-ratelimit-limit-tokens", limit.to_string()));
                        let rem = (*limit as f64 - b - slot.amount).max(0.0) as i64;
                        adm.headers
                            .push(("x-ratelimit-remaining-tokens", rem.to_string()));
                    }
                }
                Role::Rpm { limit, .. } => {
                    if *kind == Kind::Key {
                        adm.headers
                            .push(("x-ratelimit-limit-requests", limit.to_string()));
                        let rem = (*limit as f64 - b - 1.0).max(0.0) as i64;
                        adm.headers
                            .push(("x-ratelimit-remaining-requests", rem.to_string()));
                    }
                }
                Role::Parallel { .. } => adm.parallel.push(slot.key.clone()),
            }
        }
        if let Some(l) = key_limits {
            if let Some(m) = l.max_budget {
                adm.headers
                    .push(("x-litellm-key-max-budget", crate::types::number::decimal(m)));
            }
            if let Some(r) = l.rpm {
                adm.headers.push(("x-litellm-key-rpm-limit", r.to_string()));
            }
            if let Some(t) = l.tpm {
                adm.headers.push(("x-litellm-key-tpm-limit", t.to_string()));
            }
        }
        Ok(adm)
    }

    /// A budget window has ended: wake the reset job rather than wait for its next round.
    fn note_due(&self, reset_at: Option<i64>, now: i64) {
        if reset_at.is_some_and(|r| r <= now) {
            self.reset_due.notify_one();
        }
    }

    /// Zeroes the spend of every row whose budget window has ended and moves its reset time to
    /// the next boundary. Safe with several instances: each row is reset by a conditional
    /// update on its old reset time, so exactly one instance wins. Returns how many it reset.
    pub async fn run_resets(&self) -> Result<usize, StoreError> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let now = self.now_ms();
        let mut n = 0;
        for table in [
            SpendTable::Keys,
            SpendTable::Teams,
            SpendTable::Users,
            SpendTable::EndUsers,
        ] {
            for due in store.due_resets(table, now).await? {
                let Ok(span) = duration::parse(&due.budget_duration) else {
                    continue;
                };
                let next = duration::next_reset(span, now);
                if store
                    .reset_spend(table, &due.id, due.budget_reset_at, next)
                    .await?
                {
                    n += 1;
                }
            }
        }
        if n > 0 {
            tracing::info!(rows = n, "budgets reset");
        }
        Ok(n)
    }

    /// Starts the refresh-and-reset loop (every `user_api_key_cache_ttl`), stopped by
    /// [`Background::stop`].
    pub fn spawn_background(self: &Arc<Self>) -> Background {
        let cancel = CancellationToken::new();
        let auth = self.clone();
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(auth.refresh_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = c.cancelled() => break,
                    _ = tick.tick() => {}
                    _ = auth.reset_due.notified() => {}
                }
                if auth.reset_enabled
                    && let Err(e) = auth.run_resets().await
                {
                    tracing::warn!("budget reset failed: {e}");
                }
                if let Err(e) = auth.reload().await {
                    tracing::warn!("key cache refresh failed (serving the cached keys): {e}");
                }
            }
        });
        Background { cancel, task }
    }
}

/// The auth background loop.
pub struct Background {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The SHA-256 (hex) of keys that authenticated lately, by the key as presented.
///
/// Hashing a key is ~4.4 k instructions, a tenth of the gateway's own work on a proxied call,
/// and a client sends the same key call after call. Only virtual keys that authenticated (a
/// row found, not blocked or expired) are kept, so a flood of wrong keys cannot grow it; it
/// holds at most [`KEY_HASH_MEMO`] keys and is emptied when full. A hash is a pure function of
/// its key, so an entry never goes stale: revoking or blocking a key works as before, through
/// the directory lookup of its hash on every call. The raw keys kept here are the secrets every
/// request already carries through this process's memory; the master key is never kept.
#[derive(Default)]
struct KeyHashes(parking_lot::RwLock<crate::FastMap<Box<str>, Box<str>>>);

/// Keys [`KeyHashes`] remembers at most (~150 bytes each).
const KEY_HASH_MEMO: usize = 4096;

impl KeyHashes {
    fn get(&self, key: &str) -> Option<String> {
        self.0.read().get(key).map(|h| h.to_string())
    }

    fn remember(&self, key: &str, hash: &str) {
        let mut m = self.0.write();
        if m.len() >= KEY_HASH_MEMO {
            m.clear();
        }
        m.insert(key.into(), hash.into());
    }
}

fn hex_sha(s: &str) -> String {
    hex_lower(&Sha256::digest(s.as_bytes()))
}

/// Lower-case hex; `hex::encode` collects an iterator of chars (~2 k instructions per key hash,
/// on every call).
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// The last characters of a key, the only part ever echoed.
pub fn tail(key: &str) -> String {
    let n = key.chars().count();
    key.chars().skip(n.saturating_sub(4)).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key from `Authorization: Bearer`, or one of LiteLLM's other key headers.
pub fn presented_key<'a>(headers: &'a HeaderMap, custom: Option<&str>) -> Option<&'a str> {
    if let Some(h) = custom
        && let Some(v) = headers.get(h).and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        return Some(v.strip_prefix("Bearer ").unwrap_or(v)).filter(|s| !s.is_empty());
    }
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !key.is_empty() {
            return Some(key);
        }
    }
    KEY_HEADERS.iter().find_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_like_litellm() {
        assert_eq!(
            hash_token("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        assert_eq!(hash_token("88dc28d0"), "88dc28d0");
    }

    #[test]
    fn finds_the_key_in_any_litellm_header() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-a".parse().unwrap());
        assert_eq!(presented_key(&h, None), Some("sk-a"));
        h.insert("authorization", "Bearer sk-b".parse().unwrap());
        assert_eq!(presented_key(&h, None), Some("sk-b"));
    }
}

#[cfg(test)]
mod admission_tests;
