//! Admission against budgets and rate limits: which counters a call touches, the reservation
//! it makes, and the settlement (or release) when it ends.
//!
//! A call reserves its estimated cost on every budget it falls under, atomically with the
//! check `spend >= max_budget`; when it ends the reservation is replaced by the real cost.
//! Concurrent calls therefore see each other's reservations, and a budget is overshot by at
//! most the calls in flight when it was crossed (times their estimation error).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::StatusCode;
use parking_lot::Mutex;

use super::duration::{self, iso};
use super::limits::{Counters, Slot};
use crate::error::ApiError;

/// Rate-limit window (LiteLLM's fixed 60 s).
pub const WINDOW_MS: i64 = 60_000;
/// A parallel-request slot held by a crashed instance is forgotten after this (Redis only).
const PARALLEL_TTL_MS: i64 = 600_000;
/// Spend counters outlive their window by this much.
const SPEND_GRACE_MS: i64 = 7 * 86_400_000;

/// Time, injectable for tests.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock tests move by hand.
#[derive(Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> Arc<Self> {
        Arc::new(ManualClock(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Whose budget or limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    Team,
    User,
    EndUser,
}

impl Kind {
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Team => "team",
            Kind::User => "user",
            Kind::EndUser => "end_user",
        }
    }
}

/// One entity's limits, as admission sees them.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub parallel: Option<i64>,
}

/// The end of the budget window `now` falls in (0 when the budget never resets).
pub fn window_end(duration: Option<&str>, reset_at: Option<i64>, now: i64) -> i64 {
    match duration.and_then(|d| duration::parse(d).ok()) {
        None => 0,
        Some(span) => match reset_at {
            Some(r) if now < r => r,
            _ => duration::next_reset(span, now),
        },
    }
}

/// The counter holding an entity's spend in one budget window.
/// Built by hand: with `format!` it was ~1.2 k instructions on every admitted call.
pub fn spend_key(kind: Kind, id: &str, window: i64) -> String {
    let mut n = itoa::Buffer::new();
    let window = n.format(window);
    let tag = kind.tag();
    let mut key = String::with_capacity(8 + tag.len() + id.len() + window.len());
    for part in ["spend:", tag, ":", id, ":", window] {
        key.push_str(part);
    }
    key
}

pub fn spend_expiry(window: i64) -> i64 {
    if window == 0 {
        0
    } else {
        window + SPEND_GRACE_MS
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Role {
    /// Spend against a budget (`max` None: tracked for headers only).
    Spend {
        max: Option<f64>,
    },
    ModelSpend {
        max: f64,
    },
    Rpm {
        limit: i64,
        window_end: i64,
    },
    Tpm {
        limit: i64,
        window_end: i64,
    },
    Parallel {
        limit: i64,
    },
}

/// What one admission touches.
#[derive(Default)]
pub(crate) struct Plan {
    pub slots: Vec<Slot>,
    pub roles: Vec<(Role, Kind, String, String)>,
}

impl Plan {
    /// `label` names the subject in messages (the key alias, team id…).
    #[allow(clippy::too_many_arguments)]
    pub fn add_subject(
        &mut self,
        kind: Kind,
        id: &str,
        label: &str,
        l: &Limits,
        est_cost: f64,
        est_tokens: u64,
        now: i64,
        local: bool,
        track_spend: bool,
    ) {
        if l.max_budget.is_some() || track_spend {
            let w = window_end(l.budget_duration.as_deref(), l.budget_reset_at, now);
            self.push(
                Slot {
                    key: spend_key(kind, id, w),
                    amount: est_cost,
                    limit: l.max_budget,
                    expire_at: spend_expiry(w),
                },
                Role::Spend { max: l.max_budget },
                kind,
                id,
                label,
            );
        }
        let minute = now - now.rem_euclid(WINDOW_MS);
        let window_end = minute + WINDOW_MS;
        if let Some(limit) = l.rpm {
            self.push(
                Slot {
                    key: format!("rpm:{}:{id}:{minute}", kind.tag()),
                    amount: 1.0,
                    limit: Some(limit as f64),
                    expire_at: window_end + WINDOW_MS,
                },
                Role::Rpm { limit, window_end },
                kind,
                id,
                label,
            );
        }
        if let Some(limit) = l.tpm {
            self.push(
                Slot {
                    key: format!("tpm:{}:{id}:{minute}", kind.tag()),
                    amount: est_tokens as f64,
                    limit: Some(limit as f64),
                    expire_at: window_end + WINDOW_MS,
                },
                Role::Tpm { limit, window_end },
                kind,
                id,
                label,
            );
        }
        if let Some(limit) = l.parallel {
            self.push(
                Slot {
                    key: format!("parallel:{}:{id}", kind.tag()),
                    amount: 1.0,
                    limit: Some(limit as f64),
                    expire_at: if local { 0 } else { now + PARALLEL_TTL_MS },
                },
                Role::Parallel { limit },
                kind,
                id,
                label,
            );
        }
    }

    pub fn push(&mut self, slot: Slot, role: Role, kind: Kind, id: &str, label: &str) {
        self.slots.push(slot);
        self.roles
            .push((role, kind, id.to_owned(), label.to_owned()));
    }
}

/// The error for a refused slot.
pub(crate) fn refusal(
    role: Role,
    kind: Kind,
    id: &str,
    label: &str,
    current: f64,
    budget_status: StatusCode,
    now: i64,
) -> ApiError {
    // Hide float noise from reservations settled back (0.9999999999 → 1).
    let current = (current * 1e9).round() / 1e9;
    let who = match kind {
        Kind::Key => String::new(),
        Kind::Team => format!("Team={id} "),
        Kind::User => format!("User={id} "),
        Kind::EndUser => format!("End User={id} "),
    };
    match role {
        Role::Spend { max } => ApiError::new(
            budget_status,
            "budget_exceeded",
            format!(
                "Budget has been exceeded! {who}Current cost: {current}, Max budget: {}",
                max.unwrap_or(0.0)
            ),
        ),
        Role::ModelSpend { max } => ApiError::new(
            budget_status,
            "budget_exceeded",
            format!(
                "Budget has been exceeded! Key={label} model={} Current cost: {current}, Max budget: {max}",
                id.rsplit_once(':').map(|(_, m)| m).unwrap_or(id)
            ),
        ),
        Role::Rpm { limit, window_end } | Role::Tpm { limit, window_end } => {
            let (what, hdr_limit, hdr_rem) = if matches!(role, Role::Rpm { .. }) {
                (
                    "requests",
                    "x-ratelimit-limit-requests",
                    "x-ratelimit-remaining-requests",
                )
            } else {
                (
                    "tokens",
                    "x-ratelimit-limit-tokens",
                    "x-ratelimit-remaining-tokens",
                )
            };
            let retry = ((window_end - now) as f64 / 1000.0).ceil().max(1.0) as i64;
            rate_limited(
                format!(
                    "Rate limit exceeded for {}: {label}. Limit type: {what}. Current limit: {limit}, Remaining: 0. Limit resets at: {}",
                    descriptor(kind),
                    iso(window_end)
                ),
                retry,
                what,
                iso(window_end),
            )
            .with_header(hdr_limit, limit)
            .with_header(hdr_rem, 0)
        }
        Role::Parallel { limit } => rate_limited(
            format!(
                "Max parallel request limit reached. Rate limit exceeded for {}: {label}. Limit type: max_parallel_requests. Current limit: {limit}, Remaining: 0.",
                descriptor(kind)
            ),
            1,
            "max_parallel_requests",
            iso(now + 1000),
        ),
    }
}

fn descriptor(kind: Kind) -> &'static str {
    match kind {
        Kind::Key => "api_key",
        Kind::Team => "team",
        Kind::User => "user",
        Kind::EndUser => "end_user",
    }
}

fn rate_limited(msg: String, retry_after: i64, kind: &str, reset_at: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", msg)
        .with_header("retry-after", retry_after)
        .with_header("rate_limit_type", kind)
        .with_header("reset_at", reset_at)
}

/// Learned cost per call of each model group, used to reserve when the handler has no
/// estimate: the larger of the last cost and a moving average, so reservations err high.
#[derive(Default)]
pub struct Estimates(Mutex<crate::FastMap<String, f64>>);

impl Estimates {
    pub fn get(&self, model: &str) -> f64 {
        self.0.lock().get(model).copied().unwrap_or(0.0)
    }

    pub fn learn(&self, model: &str, cost: f64) {
        if cost <= 0.0 || !cost.is_finite() {
            return;
        }
        let mut m = self.0.lock();
        let e = m.entry(model.to_owned()).or_insert(cost);
        *e = (0.8 * *e + 0.2 * cost).max(cost);
    }
}

/// A call let through: it holds its reservation and parallel slots until settled or dropped.
#[derive(Default)]
pub struct Admission {
    pub(crate) counters: Option<Arc<Counters>>,
    pub(crate) estimates: Option<Arc<Estimates>>,
    pub(crate) model: String,
    /// Spend counters and the cost reserved on each.
    pub(crate) spend: Vec<(String, f64)>,
    /// Token counters and the tokens reserved on each.
    pub(crate) tokens: Vec<(String, f64)>,
    pub(crate) parallel: Vec<String>,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// The key's spend before this call, for `x-litellm-key-spend` (which includes the call,
    /// so it is formatted once the cost is known).
    pub(crate) key_spend: Option<f64>,
    pub(crate) settled: bool,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("spend", &self.spend)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Records the call's real cost against everything it was reserved on, and frees its
    /// parallel-request slots.
    pub fn settle(mut self, cost: f64, tokens: u64) {
        self.settled = true;
        let cost = if cost.is_finite() && cost > 0.0 {
            cost
        } else {
            0.0
        };
        if let Some(e) = &self.estimates {
            e.learn(&self.model, cost);
        }
        // The admission ends here: its counter keys move into the deltas (no copies).
        let mut deltas: Vec<(String, f64)> = std::mem::take(&mut self.spend)
            .into_iter()
            .map(|(k, r)| (k, cost - r))
            .collect();
        deltas.extend(
            std::mem::take(&mut self.tokens)
                .into_iter()
                .map(|(k, r)| (k, tokens as f64 - r)),
        );
        deltas.extend(
            std::mem::take(&mut self.parallel)
                .into_iter()
                .map(|k| (k, -1.0)),
        );
        self.apply(deltas);
    }

    /// `x-litellm-key-max-budget`, `x-ratelimit-*` and the like for the response; the key's
    /// spend is [`Admission::key_spend`].
    pub fn response_headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// The key's spend before this call (the key has a spend counter).
    pub fn key_spend(&self) -> Option<f64> {
        self.key_spend
    }

    fn apply(&self, deltas: Vec<(String, f64)>) {
        let Some(c) = &self.counters else { return };
        if deltas.is_empty() {
            return;
        }
        match c.as_ref() {
            Counters::Local(l) => l.add(&deltas),
            Counters::Redis(_) => {
                let c = c.clone();
                if let Ok(h) = tokio::runtime::Handle::try_current() {
                    h.spawn(async move { c.add(&deltas).await });
                }
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        // Never settled: give back the reserved cost and the parallel slots.
        let mut deltas: Vec<(String, f64)> = std::mem::take(&mut self.spend)
            .into_iter()
            .map(|(k, r)| (k, -r))
            .collect();
        deltas.extend(
            std::mem::take(&mut self.parallel)
                .into_iter()
                .map(|k| (k, -1.0)),
        );
        self.apply(deltas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_keys_keep_their_text() {
        // Counters live under these names in Redis, shared with other instances and versions.
        for (kind, id, w) in [
            (Kind::Key, "88b1f3", 0),
            (Kind::Team, "team-1", 1_796_487_282_758),
            (Kind::User, "u:x", -5),
            (Kind::EndUser, "", i64::MAX),
        ] {
            assert_eq!(
                spend_key(kind, id, w),
                format!("spend:{}:{id}:{w}", kind.tag())
            );
        }
    }
}
