//! Prometheus metrics with LiteLLM's names and labels, kept in sharded maps of atomics so the
//! request path takes a read lock for a lookup and never holds a lock across an await.
//!
//! Counters are exposed with the `_total` suffix the Python client adds
//! (`litellm_spend_metric_total`), as LiteLLM's `/metrics` shows them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

/// LiteLLM's latency buckets (seconds).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 420.0,
    600.0,
];

/// Series kept per metric; beyond this new label sets are folded into one `overflow` series
/// so memory stays flat under hostile label cardinality.
const MAX_SERIES: usize = 20_000;
const SHARDS: usize = 16;
/// Separates label values inside a series key.
const SEP: char = '\u{1f}';

/// Appends a label value to a series key; the separator, should a value hold it, becomes a
/// space.
fn push_label(key: &mut String, v: &str) {
    if v.contains(SEP) {
        key.push_str(&v.replace(SEP, " "));
    } else {
        key.push_str(v);
    }
}

/// The process's metrics (one registry per process, as Prometheus clients do).
pub fn global() -> &'static Metrics {
    static M: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &M
}

/// A float that many threads add to.
#[derive(Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn add(&self, v: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(x) => cur = x,
            }
        }
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
struct Histo {
    buckets: [AtomicU64; 17],
    count: AtomicU64,
    sum: AtomicF64,
}

impl Histo {
    /// One atomic per bucket touched: buckets are stored non-cumulative, summed at render.
    fn observe(&self, v: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.add(v);
    }
}

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One shard of a family: joined label values → a series.
type Shard<T> = RwLock<HashMap<String, Arc<T>, foldhash::fast::RandomState>>;

/// One metric family: label values → a series.
struct Family<T> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    shards: Vec<Shard<T>>,
    /// foldhash: label values hashed per call for five families; SipHash was 4 k instructions.
    hasher: foldhash::fast::RandomState,
}

impl<T: Default> Family<T> {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            name,
            help,
            labels,
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            hasher: Default::default(),
        }
    }

    fn get(&self, values: &[&str]) -> Arc<T> {
        // One allocation: the label values joined by a separator no label value keeps.
        let mut key = String::with_capacity(values.iter().map(|v| v.len() + 1).sum());
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                key.push(SEP);
            }
            push_label(&mut key, v);
        }
        self.get_joined(&key).unwrap_or_else(|| {
            let overflow = vec!["overflow"; values.len()].join(&SEP.to_string());
            self.shard(&overflow)
                .write()
                .entry(overflow)
                .or_default()
                .clone()
        })
    }

    fn shard(&self, key: &str) -> &Shard<T> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// The series under an already-joined key, created if the family has room; `None` when it
    /// is full and the key is new.
    fn get_joined(&self, key: &str) -> Option<Arc<T>> {
        let shard = self.shard(key);
        if let Some(v) = shard.read().get(key) {
            return Some(v.clone());
        }
        let mut map = shard.write();
        if map.len() * SHARDS >= MAX_SERIES && !map.contains_key(key) {
            return None;
        }
        Some(map.entry(key.to_owned()).or_default().clone())
    }

    fn each(&self, mut f: impl FnMut(&[&str], &T)) {
        let mut items: Vec<(String, Arc<T>)> = Vec::new();
        for s in &self.shards {
            items.extend(s.read().iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in items {
            let values: Vec<&str> = k.split(SEP).collect();
            f(&values, &v);
        }
    }

    fn clear(&self) {
        for s in &self.shards {
            s.write().clear();
        }
    }
}

/// Request labels of LiteLLM's proxy-level metrics.
pub const REQUEST_LABELS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "status_code",
];
const FAILED_LABELS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "exception_status",
    "exception_class",
];
const SPEND_LABELS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "model",
    "team",
    "team_alias",
    "user",
    "requested_model",
];
const LATENCY_LABELS: &[&str] = &[
    "model_group",
    "model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "requested_model",
    "end_user",
    "user",
];
const OVERHEAD_LABELS: &[&str] = &[
    "model_group",
    "api_provider",
    "api_base",
    "litellm_model_name",
    "hashed_api_key",
    "api_key_alias",
    "model_id",
];
const DEPLOYMENT_LABELS: &[&str] = &[
    "model_group",
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];
const DEPLOYMENT_FAILURE_LABELS: &[&str] = &[
    "model_group",
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "exception_status",
    "exception_class",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];
pub const DEPLOYMENT_STATE_LABELS: &[&str] =
    &["litellm_model_name", "model_id", "api_base", "api_provider"];
const KEY_BUDGET_LABELS: &[&str] = &["hashed_api_key", "api_key_alias"];
const TEAM_BUDGET_LABELS: &[&str] = &["team", "team_alias"];
const CALLBACK_LABELS: &[&str] = &["callback_name"];

/// Everything known about one finished request, for the metrics.
#[derive(Debug, Clone, Default)]
pub struct RequestObservation<'a> {
    pub end_user: &'a str,
    pub hashed_api_key: &'a str,
    pub api_key_alias: &'a str,
    pub team: &'a str,
    pub user: &'a str,
    pub requested_model: &'a str,
    pub model_group: &'a str,
    /// Upstream model name.
    pub model: &'a str,
    pub model_id: &'a str,
    pub api_base: &'a str,
    pub api_provider: &'a str,
    pub status_code: u16,
    pub exception_class: &'a str,
    pub spend: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Seconds.
    pub total_latency: f64,
    pub llm_latency: Option<f64>,
    pub overhead_latency: f64,
    pub time_to_first_token: Option<f64>,
    /// Whether a deployment was tried.
    pub deployment: bool,
}

impl<'a> RequestObservation<'a> {
    /// The labels and figures a spend event carries; timings are the caller's.
    pub fn from_event(ev: &'a crate::spend::SpendEvent, status_code: u16) -> Self {
        RequestObservation {
            end_user: ev.end_user.as_deref().unwrap_or(""),
            hashed_api_key: &ev.api_key,
            api_key_alias: ev.key_alias.as_deref().unwrap_or(""),
            team: ev.team_id.as_deref().unwrap_or(""),
            user: ev.user_id.as_deref().unwrap_or(""),
            requested_model: &ev.model_group,
            model_group: &ev.model_group,
            model: &ev.model,
            model_id: &ev.model_id,
            api_base: &ev.api_base,
            api_provider: &ev.provider,
            status_code,
            exception_class: exception_class(status_code),
            spend: ev.spend,
            prompt_tokens: ev.prompt_tokens,
            completion_tokens: ev.completion_tokens,
            deployment: !ev.model_id.is_empty(),
            ..Default::default()
        }
    }
}

/// LiteLLM's exception class name for an HTTP status.
pub fn exception_class(status: u16) -> &'static str {
    match status {
        0..=399 => "",
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "Timeout",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        499 => "ClientDisconnected",
        503 => "ServiceUnavailableError",
        500..=599 => "InternalServerError",
        _ => "APIError",
    }
}

/// The series one successful request moves, looked up together: a request's labels repeat
/// from call to call (same key, same deployment), so one lookup under all of them replaces
/// five (each building its key, hashing it and taking a shard lock), ~4 k instructions a call.
#[derive(Default)]
struct Bundle(std::sync::OnceLock<BundleSeries>);

struct BundleSeries {
    requests: Arc<AtomicF64>,
    usage: Arc<[AtomicF64; 4]>,
    latency: Arc<[Histo; 3]>,
    /// Only for a request a deployment answered.
    deployment: Option<(Arc<Histo>, Arc<[AtomicF64; 2]>)>,
}

pub struct Metrics {
    requests: Family<AtomicF64>,
    failed: Family<AtomicF64>,
    /// spend, total, input, output tokens: one lookup for the four series sharing labels.
    usage: Family<[AtomicF64; 4]>,
    /// total, LLM API, time to first token.
    latency: Family<[Histo; 3]>,
    overhead: Family<Histo>,
    /// total requests, successes.
    dep: Family<[AtomicF64; 2]>,
    dep_failure: Family<AtomicF64>,
    dep_state: Family<AtomicF64>,
    key_remaining: Family<AtomicF64>,
    key_max: Family<AtomicF64>,
    team_remaining: Family<AtomicF64>,
    team_max: Family<AtomicF64>,
    callback_failures: Family<AtomicF64>,
    /// Successful requests' series by all their labels (not rendered).
    bundles: Family<Bundle>,
    /// Tollgate's own: spend events waiting in memory, spilled to disk, written.
    pub spend_queue: AtomicU64,
    pub spend_spilled: AtomicU64,
    pub spend_written: AtomicU64,
    pub spend_write_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn none(s: &str) -> &str {
    if s.is_empty() { "None" } else { s }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            requests: Family::new(
                "litellm_proxy_total_requests_metric",
                "Total number of requests made to the proxy server",
                REQUEST_LABELS,
            ),
            failed: Family::new(
                "litellm_proxy_failed_requests_metric",
                "Total number of failed responses from proxy",
                FAILED_LABELS,
            ),
            usage: Family::new("litellm_spend_metric", "", SPEND_LABELS),
            latency: Family::new("litellm_request_total_latency_metric", "", LATENCY_LABELS),
            overhead: Family::new(
                "litellm_overhead_latency_metric",
                "Latency overhead (seconds) added by LiteLLM processing",
                OVERHEAD_LABELS,
            ),
            dep: Family::new("litellm_deployment_total_requests", "", DEPLOYMENT_LABELS),
            dep_failure: Family::new(
                "litellm_deployment_failure_responses",
                "LLM Deployment Analytics - Total number of failed LLM API calls for a specific LLM deploymeny. exception_status is the status of the exception from the llm api",
                DEPLOYMENT_FAILURE_LABELS,
            ),
            dep_state: Family::new(
                "litellm_deployment_state",
                "LLM Deployment Analytics - The state of the deployment: 0 = healthy, 1 = partial outage, 2 = complete outage",
                DEPLOYMENT_STATE_LABELS,
            ),
            key_remaining: Family::new(
                "litellm_remaining_api_key_budget_metric",
                "Remaining budget for api key",
                KEY_BUDGET_LABELS,
            ),
            key_max: Family::new(
                "litellm_api_key_max_budget_metric",
                "Maximum budget set for api key",
                KEY_BUDGET_LABELS,
            ),
            team_remaining: Family::new(
                "litellm_remaining_team_budget_metric",
                "Remaining budget for team",
                TEAM_BUDGET_LABELS,
            ),
            team_max: Family::new(
                "litellm_team_max_budget_metric",
                "Maximum budget set for team",
                TEAM_BUDGET_LABELS,
            ),
            callback_failures: Family::new(
                "litellm_callback_logging_failures_metric",
                "Total number of failures when emitting logs to callbacks",
                CALLBACK_LABELS,
            ),
            bundles: Family::new("", "", &[]),
            spend_queue: AtomicU64::new(0),
            spend_spilled: AtomicU64::new(0),
            spend_written: AtomicU64::new(0),
            spend_write_errors: AtomicU64::new(0),
        }
    }

    /// Records one finished request.
    pub fn observe_request(&self, o: &RequestObservation<'_>) {
        if o.status_code < 400 && self.observe_success(o) {
            return;
        }
        self.observe_each(o);
    }

    /// [`Self::observe_request`] for a success through its [`Bundle`]; false when the bundle
    /// cache is full and this label set is new.
    fn observe_success(&self, o: &RequestObservation<'_>) -> bool {
        let labels = [
            o.end_user,
            o.hashed_api_key,
            o.api_key_alias,
            o.team,
            o.user,
            o.requested_model,
            o.model,
            o.model_group,
            o.api_provider,
            o.api_base,
            o.model_id,
            if o.deployment { "d" } else { "" },
        ];
        let mut key = String::with_capacity(labels.iter().map(|v| v.len() + 1).sum::<usize>() + 3);
        for v in labels {
            // As `Family::get` joins them: two label sets that meet here share every series.
            push_label(&mut key, v);
            key.push(SEP);
        }
        let _ = write!(key, "{}", o.status_code);
        let Some(bundle) = self.bundles.get_joined(&key) else {
            return false;
        };
        self.record(o, bundle.0.get_or_init(|| self.bundle_series(o)));
        true
    }

    /// The series of a request, looked up one family at a time.
    fn bundle_series(&self, o: &RequestObservation<'_>) -> BundleSeries {
        let status = o.status_code.to_string();
        let (eu, key, alias, team, user, req) = (
            none(o.end_user),
            none(o.hashed_api_key),
            none(o.api_key_alias),
            none(o.team),
            none(o.user),
            none(o.requested_model),
        );
        let (model, group) = (none(o.model), none(o.model_group));
        let (provider, base, id) = (none(o.api_provider), none(o.api_base), none(o.model_id));
        BundleSeries {
            requests: self
                .requests
                .get(&[eu, key, alias, req, team, "None", user, &status]),
            usage: self
                .usage
                .get(&[eu, key, alias, model, team, "None", user, req]),
            latency: self
                .latency
                .get(&[group, model, key, alias, team, "None", req, eu, user]),
            deployment: o.deployment.then(|| {
                (
                    self.overhead
                        .get(&[group, provider, base, model, key, alias, id]),
                    self.dep.get(&[
                        group, req, model, id, base, provider, key, alias, team, "None",
                    ]),
                )
            }),
        }
    }

    /// What every request moves: its count, spend, tokens, latencies and deployment counts.
    fn record(&self, o: &RequestObservation<'_>, b: &BundleSeries) {
        b.requests.add(1.0);
        let usage = &b.usage;
        if o.spend > 0.0 {
            usage[0].add(o.spend);
        }
        if o.prompt_tokens + o.completion_tokens > 0 {
            usage[1].add((o.prompt_tokens + o.completion_tokens) as f64);
            usage[2].add(o.prompt_tokens as f64);
            usage[3].add(o.completion_tokens as f64);
        }
        let lat = &b.latency;
        lat[0].observe(o.total_latency);
        if let Some(l) = o.llm_latency {
            lat[1].observe(l);
        }
        if let Some(t) = o.time_to_first_token {
            lat[2].observe(t);
        }
        if let Some((overhead, dep)) = &b.deployment {
            overhead.observe(o.overhead_latency);
            dep[0].add(1.0);
            if o.status_code < 400 {
                dep[1].add(1.0);
            }
        }
    }

    /// Every family looked up for this request alone: failures (which also move the failure
    /// families), and label sets beyond the bundle cache.
    fn observe_each(&self, o: &RequestObservation<'_>) {
        self.record(o, &self.bundle_series(o));
        if o.status_code < 400 {
            return;
        }
        let status = o.status_code.to_string();
        let (key, alias, team, req) = (
            none(o.hashed_api_key),
            none(o.api_key_alias),
            none(o.team),
            none(o.requested_model),
        );
        let class = none(o.exception_class);
        self.failed
            .get(&[
                none(o.end_user),
                key,
                alias,
                req,
                team,
                "None",
                none(o.user),
                &status,
                class,
            ])
            .add(1.0);
        if o.deployment {
            self.dep_failure
                .get(&[
                    none(o.model_group),
                    req,
                    none(o.model),
                    none(o.model_id),
                    none(o.api_base),
                    none(o.api_provider),
                    &status,
                    class,
                    key,
                    alias,
                    team,
                    "None",
                ])
                .add(1.0);
        }
    }

    /// `litellm_deployment_state` (0 healthy, 1 partial outage, 2 outage).
    pub fn set_deployment_state(&self, labels: [&str; 4], state: u8) {
        self.dep_state.get(&labels).set(state as f64);
    }

    /// Remaining and maximum budget of a key (the key store calls this as spend moves).
    pub fn set_key_budget(&self, hashed_api_key: &str, alias: &str, remaining: f64, max: f64) {
        let l = [none(hashed_api_key), none(alias)];
        self.key_remaining.get(&l).set(remaining);
        self.key_max.get(&l).set(max);
    }

    /// Remaining and maximum budget of a team.
    pub fn set_team_budget(&self, team: &str, alias: &str, remaining: f64, max: f64) {
        let l = [none(team), none(alias)];
        self.team_remaining.get(&l).set(remaining);
        self.team_max.get(&l).set(max);
    }

    pub fn callback_failed(&self, name: &str) {
        self.callback_failures.get(&[name]).add(1.0);
    }

    /// Forgets every series (tests).
    pub fn reset(&self) {
        self.requests.clear();
        self.failed.clear();
        self.usage.clear();
        self.latency.clear();
        self.overhead.clear();
        self.dep.clear();
        self.bundles.clear();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        counter(&mut out, &self.requests);
        counter(&mut out, &self.failed);
        for (i, name, help) in [
            (0, "litellm_spend_metric", "Total spend on LLM requests"),
            (
                1,
                "litellm_total_tokens_metric",
                "Total number of input + output tokens from LLM requests",
            ),
            (
                2,
                "litellm_input_tokens_metric",
                "Total number of input tokens from LLM requests",
            ),
            (
                3,
                "litellm_output_tokens_metric",
                "Total number of output tokens from LLM requests",
            ),
        ] {
            counter_by(&mut out, &self.usage, name, help, |u| u[i].get());
        }
        for (i, name, help) in [
            (
                0,
                "litellm_request_total_latency_metric",
                "Total latency (seconds) for a request to LiteLLM",
            ),
            (
                1,
                "litellm_llm_api_latency_metric",
                "Total latency (seconds) for a models LLM API call",
            ),
            (
                2,
                "litellm_llm_api_time_to_first_token_metric",
                "Time to first token for a models LLM API call",
            ),
        ] {
            histogram_by(&mut out, &self.latency, name, help, |h| &h[i]);
        }
        histogram(&mut out, &self.overhead);
        counter_by(
            &mut out,
            &self.dep,
            "litellm_deployment_success_responses",
            "LLM Deployment Analytics - Total number of successful LLM API calls via litellm",
            |d| d[1].get(),
        );
        counter(&mut out, &self.dep_failure);
        counter_by(
            &mut out,
            &self.dep,
            "litellm_deployment_total_requests",
            "LLM Deployment Analytics - Total number of LLM API calls via litellm - success + failure",
            |d| d[0].get(),
        );
        gauge(&mut out, &self.dep_state);
        gauge(&mut out, &self.key_remaining);
        gauge(&mut out, &self.key_max);
        gauge(&mut out, &self.team_remaining);
        gauge(&mut out, &self.team_max);
        counter(&mut out, &self.callback_failures);
        for (name, help, kind, v) in [
            (
                "tollgate_spend_queue_events",
                "Spend events waiting in memory for the database",
                Kind::Gauge,
                &self.spend_queue,
            ),
            (
                "tollgate_spend_spilled_events",
                "Spend events spilled to the local file while the database was unreachable",
                Kind::Gauge,
                &self.spend_spilled,
            ),
            (
                "tollgate_spend_written_events",
                "Spend events written to the database",
                Kind::Counter,
                &self.spend_written,
            ),
            (
                "tollgate_spend_write_errors",
                "Failed spend batch writes (retried)",
                Kind::Counter,
                &self.spend_write_errors,
            ),
        ] {
            let (t, suffix) = match kind {
                Kind::Counter => ("counter", "_total"),
                _ => ("gauge", ""),
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {t}");
            let _ = writeln!(out, "{name}{suffix} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}

fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn labels(out: &mut String, names: &[&str], values: &[&str], extra: Option<(&str, &str)>) {
    out.push('{');
    let mut first = true;
    for (n, v) in names.iter().zip(values) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape(v, out);
        out.push('"');
    }
    if let Some((n, v)) = extra {
        if !first {
            out.push(',');
        }
        let _ = write!(out, "{n}=\"{v}\"");
    }
    out.push('}');
}

fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let t = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {t}");
}

fn counter(out: &mut String, f: &Family<AtomicF64>) {
    counter_by(out, f, f.name, f.help, AtomicF64::get);
}

fn counter_by<T: Default>(
    out: &mut String,
    f: &Family<T>,
    name: &str,
    help: &str,
    pick: impl Fn(&T) -> f64,
) {
    header(out, name, help, Kind::Counter);
    f.each(|k, v| {
        out.push_str(name);
        out.push_str("_total");
        labels(out, f.labels, k, None);
        let _ = writeln!(out, " {}", pick(v));
    });
}

fn gauge(out: &mut String, f: &Family<AtomicF64>) {
    header(out, f.name, f.help, Kind::Gauge);
    f.each(|k, v| {
        out.push_str(f.name);
        labels(out, f.labels, k, None);
        let _ = writeln!(out, " {}", v.get());
    });
}

fn histogram(out: &mut String, f: &Family<Histo>) {
    histogram_by(out, f, f.name, f.help, |h| h);
}

fn histogram_by<T: Default>(
    out: &mut String,
    f: &Family<T>,
    name: &str,
    help: &str,
    pick: impl Fn(&T) -> &Histo,
) {
    header(out, name, help, Kind::Histogram);
    f.each(|k, v| {
        let h = pick(v);
        let count = h.count.load(Ordering::Relaxed);
        if count == 0 {
            return;
        }
        let mut cumulative = 0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += h.buckets[i].load(Ordering::Relaxed);
            let _ = write!(out, "{name}_bucket");
            labels(out, f.labels, k, Some(("le", &format!("{b:?}"))));
            let _ = writeln!(out, " {cumulative}");
        }
        let _ = write!(out, "{name}_bucket");
        labels(out, f.labels, k, Some(("le", "+Inf")));
        let _ = writeln!(out, " {count}");
        let _ = write!(out, "{name}_count");
        labels(out, f.labels, k, None);
        let _ = writeln!(out, " {count}");
        let _ = write!(out, "{name}_sum");
        labels(out, f.labels, k, None);
        let _ = writeln!(out, " {}", h.sum.get());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the bound, new label sets share one `overflow` series, rendered once.
    #[test]
    fn label_sets_past_the_bound_share_one_overflow_series() {
        let m = Metrics::new();
        for i in 0..MAX_SERIES + 500 {
            m.callback_failed(&format!("cb-{i}"));
        }
        let text = m.render();
        let overflow: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("callback_name=\"overflow\""))
            .collect();
        assert_eq!(overflow.len(), 1, "{overflow:?}");
        // Nothing lost: the series, the overflow one included, add up to every call.
        let total: f64 = text
            .lines()
            .filter(|l| l.contains("callback_name="))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(total, (MAX_SERIES + 500) as f64);
    }

    /// The bundled path for successes renders exactly what the family-by-family one does,
    /// including label sets that differ only where one bundle key could blur them.
    #[test]
    fn bundled_successes_render_as_family_lookups() {
        let base = RequestObservation {
            hashed_api_key: "k1",
            requested_model: "gpt-4o",
            model_group: "gpt-4o",
            model: "gpt-4o",
            model_id: "d1",
            api_provider: "openai",
            api_base: "http://up/v1",
            status_code: 200,
            spend: 0.25,
            prompt_tokens: 10,
            completion_tokens: 5,
            total_latency: 0.2,
            llm_latency: Some(0.19),
            overhead_latency: 0.001,
            time_to_first_token: Some(0.05),
            deployment: true,
            ..Default::default()
        };
        let calls = [
            base.clone(),
            base.clone(),
            RequestObservation {
                hashed_api_key: "k2",
                ..base.clone()
            },
            RequestObservation {
                end_user: "a\u{1f}b",
                ..base.clone()
            },
            RequestObservation {
                end_user: "a b",
                ..base.clone()
            },
            RequestObservation {
                model_id: "",
                deployment: false,
                ..base.clone()
            },
            RequestObservation {
                status_code: 201,
                ..base.clone()
            },
            RequestObservation {
                status_code: 500,
                exception_class: "InternalServerError",
                ..base.clone()
            },
        ];
        let (bundled, each) = (Metrics::new(), Metrics::new());
        for o in &calls {
            bundled.observe_request(o);
            each.observe_each(o);
        }
        assert_eq!(bundled.render(), each.render());
        assert!(bundled.render().contains("hashed_api_key=\"k2\""));
    }

    #[test]
    fn renders_litellm_names_and_labels() {
        let m = Metrics::new();
        let o = RequestObservation {
            hashed_api_key: "abc",
            requested_model: "gpt-4o",
            model_group: "gpt-4o",
            model: "gpt-4o",
            model_id: "d1",
            api_provider: "openai",
            status_code: 200,
            spend: 0.5,
            prompt_tokens: 10,
            completion_tokens: 5,
            total_latency: 0.2,
            llm_latency: Some(0.19),
            time_to_first_token: Some(0.05),
            deployment: true,
            ..Default::default()
        };
        m.observe_request(&o);
        m.observe_request(&RequestObservation {
            status_code: 429,
            exception_class: "RateLimitError",
            spend: 0.0,
            ..o.clone()
        });
        let text = m.render();
        assert!(
            text.contains("# TYPE litellm_spend_metric counter"),
            "{text}"
        );
        assert!(text.contains(
            "litellm_proxy_total_requests_metric_total{end_user=\"None\",hashed_api_key=\"abc\",api_key_alias=\"None\",requested_model=\"gpt-4o\",team=\"None\",team_alias=\"None\",user=\"None\",status_code=\"200\"} 1"
        ));
        assert!(text.contains("litellm_spend_metric_total{"));
        assert!(text.contains("} 0.5\n"));
        assert!(text.contains("litellm_input_tokens_metric_total{"));
        assert!(text.contains("litellm_proxy_failed_requests_metric_total{"));
        assert!(text.contains("exception_class=\"RateLimitError\""));
        assert!(text.contains("litellm_request_total_latency_metric_bucket{"));
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains("litellm_deployment_failure_responses_total{"));
        assert!(text.contains("litellm_deployment_success_responses_total{"));
    }

    #[test]
    fn many_threads_add_exactly() {
        let m = Arc::new(Metrics::new());
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.usage.get(&["a"; 8])[0].add(0.25);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(m.usage.get(&["a"; 8])[0].get(), 2000.0);
    }
}

#[cfg(test)]
mod bench {
    use super::*;

    /// `cargo test --release --lib observe::metrics::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn observe_request_cost() {
        let m = Metrics::new();
        let keys: Vec<String> = (0..100).map(|i| format!("key-{i}")).collect();
        let n = 200_000;
        let t = std::time::Instant::now();
        for i in 0..n {
            m.observe_request(&RequestObservation {
                hashed_api_key: &keys[i % 100],
                requested_model: "gpt-4o",
                model_group: "gpt-4o",
                model: "gpt-4o",
                model_id: "d1",
                api_provider: "openai",
                api_base: "https://api.openai.com/v1",
                status_code: 200,
                spend: 0.001,
                prompt_tokens: 10,
                completion_tokens: 5,
                total_latency: 0.2,
                llm_latency: Some(0.19),
                time_to_first_token: Some(0.05),
                deployment: true,
                ..Default::default()
            });
        }
        let per = t.elapsed() / n as u32;
        let t = std::time::Instant::now();
        let text = m.render();
        eprintln!(
            "observe_request: {per:?} per request; render of {} bytes: {:?}",
            text.len(),
            t.elapsed()
        );
    }
}
