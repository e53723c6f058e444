//! Spend logs in the store: the `tollgate_spend_logs` table (LiteLLM's SpendLogs columns), the
//! daily rollup written in the same transaction, key/team/user/end-user spend increments, and
//! the queries behind `/spend/*` and `/global/spend/*`.
//!
//! A batch is idempotent on `request_id`: on PostgreSQL rows are inserted with `ON CONFLICT DO
//! NOTHING RETURNING request_id`; on SQLite each row is placed after a probe by the id's key
//! (migration 4). Only the rows actually inserted add to rollups and spend totals.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::spend::SpendEvent;

/// Migration 2: spend logs and their daily rollup. Both dialects share the text.
pub const MIGRATION_SQL: &str = r#"
CREATE TABLE tollgate_spend_logs (
    request_id TEXT PRIMARY KEY,
    call_type TEXT NOT NULL DEFAULT '',
    api_key TEXT NOT NULL DEFAULT '',
    key_alias TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    "startTime" BIGINT NOT NULL,
    "endTime" BIGINT NOT NULL,
    "completionStartTime" BIGINT,
    request_duration_ms BIGINT NOT NULL DEFAULT 0,
    model TEXT NOT NULL DEFAULT '',
    model_id TEXT,
    model_group TEXT,
    custom_llm_provider TEXT,
    api_base TEXT,
    "user" TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    cache_hit TEXT NOT NULL DEFAULT 'False',
    cache_key TEXT,
    request_tags TEXT NOT NULL DEFAULT '[]',
    team_id TEXT,
    organization_id TEXT,
    end_user TEXT,
    requester_ip_address TEXT,
    messages TEXT,
    response TEXT,
    session_id TEXT,
    litellm_call_id TEXT,
    status TEXT NOT NULL DEFAULT 'success',
    error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX tollgate_spend_logs_start ON tollgate_spend_logs ("startTime");
CREATE INDEX tollgate_spend_logs_key_start ON tollgate_spend_logs (api_key, "startTime");
CREATE INDEX tollgate_spend_logs_user_start ON tollgate_spend_logs ("user", "startTime");
CREATE INDEX tollgate_spend_logs_end_user ON tollgate_spend_logs (end_user);
CREATE INDEX tollgate_spend_logs_call_id ON tollgate_spend_logs (litellm_call_id);
CREATE TABLE tollgate_daily_spend (
    day TEXT NOT NULL,
    api_key TEXT NOT NULL,
    model TEXT NOT NULL,
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    end_user TEXT NOT NULL,
    tag TEXT NOT NULL,
    key_alias TEXT,
    model_group TEXT,
    custom_llm_provider TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    api_requests BIGINT NOT NULL DEFAULT 0,
    successful_requests BIGINT NOT NULL DEFAULT 0,
    failed_requests BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (day, api_key, model, team_id, user_id, end_user, tag)
);
CREATE INDEX tollgate_daily_spend_tag_day ON tollgate_daily_spend (tag, day)
"#;

/// Migration 3: each index is one more B-tree insert per row, the writer's largest cost on
/// SQLite. No query looks spend logs up by `litellm_call_id` (the writer's clash check reads
/// by `request_id`, then the primary key): dropped. The user and end-user indexes only serve
/// `"user" = $n` / `end_user = $n` filters, which imply NOT NULL, so both backends still use
/// them as partial indexes — and rows without a user (most) no longer pay for them. The key,
/// start-time and primary-key indexes serve `/spend/logs` and retention as before.
pub const MIGRATION_3_SQL: &str = r#"
DROP INDEX IF EXISTS tollgate_spend_logs_call_id;
DROP INDEX IF EXISTS tollgate_spend_logs_user_start;
CREATE INDEX tollgate_spend_logs_user_start ON tollgate_spend_logs ("user", "startTime") WHERE "user" IS NOT NULL;
DROP INDEX IF EXISTS tollgate_spend_logs_end_user;
CREATE INDEX tollgate_spend_logs_end_user ON tollgate_spend_logs (end_user) WHERE end_user IS NOT NULL
"#;

/// Migration 4's text with the copied rows' key expression (`$key`, a string literal).
macro_rules! migration_4_sqlite {
    ($key:literal) => {
        concat!(r#"
CREATE TABLE tollgate_spend_logs_v4 (
    request_id TEXT NOT NULL,
    call_type TEXT NOT NULL DEFAULT '',
    api_key TEXT NOT NULL DEFAULT '',
    key_alias TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    "startTime" BIGINT NOT NULL,
    "endTime" BIGINT NOT NULL,
    "completionStartTime" BIGINT,
    request_duration_ms BIGINT NOT NULL DEFAULT 0,
    model TEXT NOT NULL DEFAULT '',
    model_id TEXT,
    model_group TEXT,
    custom_llm_provider TEXT,
    api_base TEXT,
    "user" TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    cache_hit TEXT NOT NULL DEFAULT 'False',
    cache_key TEXT,
    request_tags TEXT NOT NULL DEFAULT '[]',
    team_id TEXT,
    organization_id TEXT,
    end_user TEXT,
    requester_ip_address TEXT,
    messages TEXT,
    response TEXT,
    session_id TEXT,
    litellm_call_id TEXT,
    status TEXT NOT NULL DEFAULT 'success',
    error TEXT,
    created_at BIGINT NOT NULL,
    request_key BIGINT
);
INSERT INTO tollgate_spend_logs_v4 (request_id, call_type, api_key, key_alias, spend, total_tokens, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, reasoning_tokens, "startTime", "endTime", "completionStartTime", request_duration_ms, model, model_id, model_group, custom_llm_provider, api_base, "user", metadata, cache_hit, cache_key, request_tags, team_id, organization_id, end_user, requester_ip_address, messages, response, session_id, litellm_call_id, status, error, created_at, request_key)
SELECT COALESCE(request_id, ''), call_type, api_key, key_alias, spend, total_tokens, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, reasoning_tokens, "startTime", "endTime", "completionStartTime", request_duration_ms, model, model_id, model_group, custom_llm_provider, api_base, "user", metadata, cache_hit, cache_key, request_tags, team_id, organization_id, end_user, requester_ip_address, messages, response, session_id, litellm_call_id, status, error, created_at, "#, $key, r#"
FROM tollgate_spend_logs ORDER BY rowid;
DROP TABLE tollgate_spend_logs;
ALTER TABLE tollgate_spend_logs_v4 RENAME TO tollgate_spend_logs;
CREATE INDEX tollgate_spend_logs_request_key ON tollgate_spend_logs (request_key);
CREATE INDEX tollgate_spend_logs_start ON tollgate_spend_logs ("startTime");
CREATE INDEX tollgate_spend_logs_key_start ON tollgate_spend_logs (api_key, "startTime");
CREATE INDEX tollgate_spend_logs_user_start ON tollgate_spend_logs ("user", "startTime") WHERE "user" IS NOT NULL;
CREATE INDEX tollgate_spend_logs_end_user ON tollgate_spend_logs (end_user) WHERE end_user IS NOT NULL
"#)
    };
}

/// Migration 4, SQLite only: `request_id` loses its unique index for a 32-bit hash of it,
/// `request_key` ([`request_key`]), with a plain index; the writer keeps ids unique itself,
/// inside its write transaction (a probe on the key before each insert).
///
/// Why: upstream ids are random, so each row's `request_id` entry lands on a random page of
/// its index, and a batch of 1,000 rows dirtied ~1,000 of those pages: each one written
/// whole to the WAL at commit and again at checkpoint, and read back from the file once the
/// index outgrew the page cache. That index was ~80 % of the writer's work and grew with the
/// log (`bench/spend-writer`: 3.5 µs a row at 50 k rows, 11 µs at 300 k). An entry of the
/// key index is ~12 bytes instead of ~50, so four times as many fit a page and the cache.
///
/// SQLite cannot drop a primary key in place: the table is rebuilt (a copy of every row,
/// once). On a file the spend writer's connection runs it before the other migrations, with
/// the key computed by a function it registers (`MIGRATION_4_SQLITE_KEYED`), after
/// migrations 1-3 and before the rest; this text, with NULL keys, only runs through sqlx on a
/// database in memory, which is always new: no rows. One way: a gateway older than this one
/// cannot write spend to the rebuilt table (its insert names a conflict target that is gone).
/// PostgreSQL keeps its primary key: it writes a page once per checkpoint, not per commit,
/// and several instances writing at once need the constraint.
pub const MIGRATION_4_SQLITE: &str = migration_4_sqlite!("NULL");
/// The same with each copied row's key computed (the writer's connection registers
/// `tollgate_request_key`): what a SQLite file runs (`SpendDb::migrate_to_request_keys`).
pub const MIGRATION_4_SQLITE_KEYED: &str = migration_4_sqlite!("tollgate_request_key(request_id)");

/// The 32-bit key of a request id under which SQLite indexes it (migration 4): FNV-1a over
/// the id's bytes, mixed by MurmurHash3's 64-bit finalizer, top half kept. Stored on disk, so
/// it never changes. Colliding keys are expected and harmless: every lookup also compares the
/// id itself. 32 bits is SQLite's 4-byte integer; with a million ids stored, about one lookup
/// in 4,000 reads one other row.
pub fn request_key(id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    i64::from((h >> 32) as u32 as i32)
}

/// Columns of `tollgate_spend_logs` written per row, in bind order.
pub(super) const LOG_COLUMNS: &[&str] = &[
    "request_id",
    "call_type",
    "api_key",
    "key_alias",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "\"startTime\"",
    "\"endTime\"",
    "\"completionStartTime\"",
    "request_duration_ms",
    "model",
    "model_id",
    "model_group",
    "custom_llm_provider",
    "api_base",
    "\"user\"",
    "metadata",
    "cache_hit",
    "request_tags",
    "team_id",
    "end_user",
    "requester_ip_address",
    "messages",
    "response",
    "litellm_call_id",
    "status",
    "error",
    "created_at",
];

/// Rows per multi-row INSERT (33 binds each). On SQLite, with `?` placeholders (see
/// `insert_rows`), 64 rows measured 40 k events/s against 37 k for 16 and 200 (the writer's
/// `bench` test, batches of 1,000); PostgreSQL prefers fewer round trips.
fn insert_chunk(backend: super::Backend) -> usize {
    match backend {
        super::Backend::Sqlite => 64,
        super::Backend::Postgres => 64,
    }
}

/// Which spend-total tables exist (the key store creates them; a gateway without it has none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendTargets {
    pub keys: bool,
    pub teams: bool,
    pub users: bool,
    pub end_users: bool,
}

/// How a batch is written.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// `false` with `general_settings.disable_spend_logs`: no rows, spend totals still move.
    pub write_logs: bool,
    pub targets: SpendTargets,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchResult {
    /// Events newly accounted (not seen before).
    pub applied: usize,
    /// Events skipped as already written.
    pub duplicates: usize,
}

/// Filters of `/spend/logs` and `/spend/logs/v2`.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    pub request_id: Option<String>,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
    pub model: Option<String>,
    pub status: Option<String>,
    /// Unix ms, inclusive.
    pub start_ms: Option<i64>,
    /// Unix ms, exclusive.
    pub end_ms: Option<i64>,
}

/// One `tollgate_spend_logs` row as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpendLogRow {
    pub request_id: String,
    pub call_type: String,
    pub api_key: String,
    pub key_alias: Option<String>,
    pub spend: f64,
    pub total_tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub completion_start_ms: Option<i64>,
    pub request_duration_ms: i64,
    pub model: String,
    pub model_id: Option<String>,
    pub model_group: Option<String>,
    pub custom_llm_provider: Option<String>,
    pub api_base: Option<String>,
    pub user: Option<String>,
    pub metadata: String,
    pub cache_hit: String,
    pub request_tags: String,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
    pub requester_ip_address: Option<String>,
    pub messages: Option<String>,
    pub response: Option<String>,
    pub status: String,
    pub error: Option<String>,
}

/// One aggregate line of the daily rollup (`tag` is empty for whole-request lines).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyRow {
    pub day: String,
    pub api_key: String,
    pub key_alias: Option<String>,
    pub model: String,
    pub team_id: String,
    pub user_id: String,
    pub end_user: String,
    pub tag: String,
    pub spend: f64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub api_requests: i64,
}

/// Rollup dimension: (day number since the epoch, api_key, model, team, user, end user, tag),
/// borrowed from the events: building it allocates nothing.
pub(super) type DailyKey<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

pub(super) const DAY_MS: i64 = 86_400_000;

#[derive(Default)]
pub(super) struct DailyAgg<'a> {
    pub key_alias: Option<&'a str>,
    pub model_group: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub spend: f64,
    pub prompt: i64,
    pub completion: i64,
    pub cached: i64,
    pub requests: i64,
    pub ok: i64,
    pub failed: i64,
}

/// What a batch's fresh events add: rollup lines and spend totals. Ordered maps, so
/// concurrent gateways lock rows in the same order and never deadlock.
#[derive(Default)]
pub(super) struct Totals<'a> {
    pub daily: BTreeMap<DailyKey<'a>, DailyAgg<'a>>,
    pub keys: BTreeMap<&'a str, f64>,
    pub teams: BTreeMap<&'a str, f64>,
    pub users: BTreeMap<&'a str, f64>,
    pub end_users: BTreeMap<&'a str, f64>,
}

impl<'a> Totals<'a> {
    pub fn of(fresh: &[&'a SpendEvent]) -> Self {
        fn non_empty(s: &str) -> Option<&str> {
            Some(s).filter(|s| !s.is_empty())
        }
        let mut t = Totals::default();
        for ev in fresh {
            let day = ev.start_ms.div_euclid(DAY_MS);
            let tags = std::iter::once("")
                .chain(ev.tags.iter().map(String::as_str).filter(|t| !t.is_empty()));
            let mut seen: Vec<&str> = Vec::with_capacity(ev.tags.len() + 1);
            for tag in tags {
                // A tag given twice counts once, wherever the repeat is (tags are few).
                if seen.contains(&tag) {
                    continue;
                }
                seen.push(tag);
                let k = (
                    day,
                    ev.api_key.as_str(),
                    ev.model.as_str(),
                    ev.team_id.as_deref().unwrap_or_default(),
                    ev.user_id.as_deref().unwrap_or_default(),
                    ev.end_user.as_deref().unwrap_or_default(),
                    tag,
                );
                let a = t.daily.entry(k).or_default();
                a.key_alias = ev.key_alias.as_deref().or(a.key_alias);
                a.model_group = non_empty(&ev.model_group).or(a.model_group);
                a.provider = non_empty(&ev.provider).or(a.provider);
                a.spend += ev.spend;
                a.prompt += ev.prompt_tokens as i64;
                a.completion += ev.completion_tokens as i64;
                a.cached += ev.cached_tokens as i64;
                a.requests += 1;
                if ev.status == "success" {
                    a.ok += 1;
                } else {
                    a.failed += 1;
                }
            }
            if !ev.api_key.is_empty() {
                *t.keys.entry(&ev.api_key).or_default() += ev.spend;
            }
            if let Some(x) = ev.team_id.as_deref().filter(|s| !s.is_empty()) {
                *t.teams.entry(x).or_default() += ev.spend;
            }
            if let Some(x) = ev.user_id.as_deref().filter(|s| !s.is_empty()) {
                *t.users.entry(x).or_default() += ev.spend;
            }
            if let Some(x) = ev.end_user.as_deref().filter(|s| !s.is_empty()) {
                *t.end_users.entry(x).or_default() += ev.spend;
            }
        }
        t
    }

    /// `(UPDATE statement, id -> spend)` for each spend-total table that exists.
    pub fn updates(
        &self,
        t: SpendTargets,
    ) -> impl Iterator<Item = (&'static str, &BTreeMap<&'a str, f64>)> {
        [
            (t.keys, KEY_SPEND_SQL, &self.keys),
            (t.teams, TEAM_SPEND_SQL, &self.teams),
            (t.users, USER_SPEND_SQL, &self.users),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, sql, map)| (sql, map))
    }
}

/// The rollup upsert; `$1`…`$19` each appear once, in order, so SQLite numbers them the same.
pub(super) const DAILY_UPSERT_SQL: &str = "INSERT INTO tollgate_daily_spend (day, api_key, model, team_id, user_id, end_user, tag, key_alias, model_group, custom_llm_provider, spend, prompt_tokens, completion_tokens, total_tokens, cached_tokens, api_requests, successful_requests, failed_requests, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (day, api_key, model, team_id, user_id, end_user, tag) DO UPDATE SET \
     key_alias = COALESCE(excluded.key_alias, tollgate_daily_spend.key_alias), \
     model_group = COALESCE(excluded.model_group, tollgate_daily_spend.model_group), \
     custom_llm_provider = COALESCE(excluded.custom_llm_provider, tollgate_daily_spend.custom_llm_provider), \
     spend = tollgate_daily_spend.spend + excluded.spend, \
     prompt_tokens = tollgate_daily_spend.prompt_tokens + excluded.prompt_tokens, \
     completion_tokens = tollgate_daily_spend.completion_tokens + excluded.completion_tokens, \
     total_tokens = tollgate_daily_spend.total_tokens + excluded.total_tokens, \
     cached_tokens = tollgate_daily_spend.cached_tokens + excluded.cached_tokens, \
     api_requests = tollgate_daily_spend.api_requests + excluded.api_requests, \
     successful_requests = tollgate_daily_spend.successful_requests + excluded.successful_requests, \
     failed_requests = tollgate_daily_spend.failed_requests + excluded.failed_requests, \
     updated_at = excluded.updated_at";
pub(super) const KEY_SPEND_SQL: &str =
    "UPDATE tollgate_keys SET spend = spend + $1 WHERE token = $2";
pub(super) const TEAM_SPEND_SQL: &str =
    "UPDATE tollgate_teams SET spend = spend + $1 WHERE team_id = $2";
pub(super) const USER_SPEND_SQL: &str =
    "UPDATE tollgate_users SET spend = spend + $1 WHERE user_id = $2";
/// `$3` twice: SQLite gives a repeated name one index, so the binds are $1, $2, $3 on both.
pub(super) const END_USER_UPSERT_SQL: &str = "INSERT INTO tollgate_end_users (user_id, spend, created_at, updated_at) VALUES ($1, $2, $3, $3) \
     ON CONFLICT (user_id) DO UPDATE SET spend = tollgate_end_users.spend + excluded.spend";
/// Who owns a request id already stored (see `is_clash`): PostgreSQL, by its primary key.
pub(super) const CALL_ID_SQL: &str =
    "SELECT litellm_call_id FROM tollgate_spend_logs WHERE request_id = $1";
/// The same on SQLite, through the key index (migration 4): `$1` the id's [`request_key`].
pub(super) const CALL_ID_BY_KEY_SQL: &str =
    "SELECT litellm_call_id FROM tollgate_spend_logs WHERE request_key = $1 AND request_id = $2";

/// Where an event's row goes, given who already owns its request id (`owner`: `None` when
/// nobody does, else the owning row's `litellm_call_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// Under its own request id.
    New,
    /// Already written: this very call, retried.
    Duplicate,
    /// Another call's answer carried the same upstream id: under the gateway's call id.
    Clash,
}

pub(super) fn placement(ev: &SpendEvent, owner: Option<Option<&str>>) -> Placement {
    match owner {
        None => Placement::New,
        Some(_) if ev.call_id.is_empty() || ev.call_id == ev.request_id => Placement::Duplicate,
        Some(o) if o == Some(ev.call_id.as_str()) => Placement::Duplicate,
        Some(_) => Placement::Clash,
    }
}

/// `YYYY-MM-DD` (UTC) of a unix-ms instant.
pub fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

fn opt(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// The `metadata` stored with a row: only what no column holds, the client's own `metadata`,
/// as `{"requester_metadata": …}`. LiteLLM stores the whole `SpendLogsMetadata` object, ~560
/// bytes a row that repeat the key, team, user, status, error and token columns; kept whole it
/// was more than half of each row and of the pages the writer puts through SQLite's WAL on
/// every batch. [`metadata_json`] rebuilds LiteLLM's object when a row is read.
pub fn row_metadata(ev: &SpendEvent) -> Value {
    json!({ "requester_metadata": ev.metadata })
}

/// [`row_metadata`] as JSON text: the same bytes as the value printed.
pub fn row_metadata_text(ev: &SpendEvent) -> String {
    let mut out = Vec::with_capacity(64);
    write_row_metadata(ev, &mut out);
    // Only JSON (valid UTF-8) was written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`row_metadata_text`] appended to a buffer the caller reuses across rows.
pub fn write_row_metadata(ev: &SpendEvent, out: &mut Vec<u8>) {
    #[derive(serde::Serialize)]
    struct Stored<'a> {
        requester_metadata: &'a Value,
    }
    // Printing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(
        out,
        &Stored {
            requester_metadata: &ev.metadata,
        },
    );
}

/// A row's `metadata` with LiteLLM's `SpendLogsMetadata` keys, as `/spend/logs` returns it:
/// rebuilt from the row's columns and the stored client metadata ([`row_metadata`]). Rows
/// stored whole (before the columns were used for it) are returned as they are.
pub fn metadata_json(r: &SpendLogRow) -> Value {
    let stored: Value = serde_json::from_str(&r.metadata).unwrap_or_else(|_| json!({}));
    let requester = match stored {
        Value::Object(mut m) if m.len() == 1 && m.contains_key("requester_metadata") => {
            m.remove("requester_metadata").unwrap_or(Value::Null)
        }
        whole => return whole,
    };
    let error = r
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .unwrap_or(Value::Null);
    let mut usage = crate::spend::usage_object(
        r.prompt_tokens,
        r.completion_tokens,
        r.cached_tokens,
        r.reasoning_tokens,
    );
    usage["cache_creation_input_tokens"] = json!(r.cache_creation_tokens);
    json!({
        "user_api_key": r.api_key,
        "user_api_key_alias": r.key_alias,
        "user_api_key_team_id": r.team_id,
        "user_api_key_org_id": Value::Null,
        "user_api_key_user_id": r.user,
        "user_api_key_end_user_id": r.end_user,
        "requester_ip_address": r.requester_ip_address,
        "spend_logs_metadata": requester.get("spend_logs_metadata").cloned(),
        "requester_metadata": requester,
        "status": r.status,
        "error_information": error,
        "usage_object": usage,
    })
}

/// `request_tags` as stored: a JSON list.
pub(super) fn tags_text(tags: &[String]) -> std::borrow::Cow<'static, str> {
    if tags.is_empty() {
        "[]".into()
    } else {
        serde_json::to_string(tags)
            .unwrap_or_else(|_| "[]".into())
            .into()
    }
}

impl Store {
    /// Which spend-total tables exist.
    pub async fn spend_targets(&self) -> Result<SpendTargets, StoreError> {
        // Fails with "no such table" when absent; any other failure is the database's.
        async fn has(store: &Store, table: &str) -> Result<bool, StoreError> {
            let sql = format!("SELECT 1 FROM {table} WHERE 1 = 0");
            match sqlx::query(&sql).fetch_optional(&store.pool).await {
                Ok(_) => Ok(true),
                // Only a missing table means absent (PostgreSQL 42P01, SQLite "no such
                // table"): any other error (a restarting server, …) must not switch the totals
                // off for the life of the process.
                Err(sqlx::Error::Database(d))
                    if d.code().as_deref() == Some("42P01")
                        || d.message().contains("no such table") =>
                {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        }
        Ok(SpendTargets {
            keys: has(self, "tollgate_keys").await?,
            teams: has(self, "tollgate_teams").await?,
            users: has(self, "tollgate_users").await?,
            end_users: has(self, "tollgate_end_users").await?,
        })
    }

    /// Writes a batch of spend events in one transaction: the rows (unless disabled), the
    /// daily rollup and the spend totals, counting each request id once ever.
    pub async fn write_spend_batch(
        &self,
        events: &[SpendEvent],
        opts: BatchOptions,
    ) -> Result<BatchResult, StoreError> {
        if self.spend_db.is_some() {
            return self
                .write_spend_events(std::sync::Arc::new(events.to_vec()), opts)
                .await;
        }
        self.write_spend_batch_sqlx(events, opts).await
    }

    /// [`Store::write_spend_batch`] for a batch the caller shares rather than lends (the
    /// writer: no copy of the events). On a SQLite file it runs on the dedicated connection in
    /// a blocking thread; if this future is dropped (a timeout), that write still ends on its
    /// own, committed or not, and a retry is idempotent.
    pub async fn write_spend_events(
        &self,
        events: std::sync::Arc<Vec<SpendEvent>>,
        opts: BatchOptions,
    ) -> Result<BatchResult, StoreError> {
        let Some(db) = self.spend_db.clone() else {
            return self.write_spend_batch_sqlx(&events, opts).await;
        };
        tokio::task::spawn_blocking(move || db.write(&events, opts))
            .await
            .map_err(|e| StoreError::Invalid(format!("spend write task failed: {e}")))?
    }

    /// The sqlx path: PostgreSQL, and SQLite in memory.
    async fn write_spend_batch_sqlx(
        &self,
        events: &[SpendEvent],
        opts: BatchOptions,
    ) -> Result<BatchResult, StoreError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut tx = self.pool.begin().await?;
        let mut fresh: Vec<&SpendEvent> = Vec::with_capacity(events.len());
        // Rows written as copies of their events (re-keyed; on SQLite, every row).
        let mut rekeyed: Vec<SpendEvent> = Vec::new();
        if opts.write_logs && self.backend == super::Backend::Sqlite {
            // SQLite in memory: no unique constraint on the id (migration 4), so each row is
            // placed as the file writer places it (`spend_sqlite`), one at a time.
            for ev in events {
                let owner = owner_by_key(&mut tx, &ev.request_id).await?;
                let placed = match placement(ev, owner.as_ref().map(Option::as_deref)) {
                    Placement::New => Some(ev.clone()),
                    Placement::Duplicate => None,
                    Placement::Clash => match owner_by_key(&mut tx, &ev.call_id).await? {
                        Some(_) => None,
                        None => {
                            let mut ev = ev.clone();
                            ev.request_id = ev.call_id.clone();
                            Some(ev)
                        }
                    },
                };
                if let Some(ev) = placed {
                    insert_rows(&mut tx, self.backend, std::slice::from_ref(&ev), now).await?;
                    rekeyed.push(ev);
                }
            }
        } else if opts.write_logs {
            for chunk in events.chunks(insert_chunk(self.backend)) {
                // Each returned id stands for one inserted row: the first event carrying it.
                let mut ids = insert_rows(&mut tx, self.backend, chunk, now).await?;
                let mut clashes: Vec<SpendEvent> = Vec::new();
                for ev in chunk {
                    if ids.remove(&ev.request_id) {
                        fresh.push(ev);
                    } else if is_clash(&mut tx, ev).await? {
                        // Another request's answer carried the same upstream id: keep this
                        // one under the gateway's own call id.
                        let mut ev = ev.clone();
                        ev.request_id = ev.call_id.clone();
                        clashes.push(ev);
                    }
                }
                if !clashes.is_empty() {
                    let mut ids = insert_rows(&mut tx, self.backend, &clashes, now).await?;
                    rekeyed.extend(clashes.into_iter().filter(|e| ids.remove(&e.request_id)));
                }
            }
        } else {
            fresh.extend(events.iter());
        }
        fresh.extend(rekeyed.iter());
        if !opts.write_logs {
            // Within one batch, a repeated event counts once.
            let mut seen = std::collections::HashSet::new();
            fresh.retain(|e| seen.insert((e.request_id.as_str(), e.call_id.as_str())));
        }

        let totals = Totals::of(&fresh);
        for (k, a) in &totals.daily {
            sqlx::query(DAILY_UPSERT_SQL)
                .bind(day_of(k.0 * DAY_MS))
                .bind(k.1)
                .bind(k.2)
                .bind(k.3)
                .bind(k.4)
                .bind(k.5)
                .bind(k.6)
                .bind(a.key_alias.map(str::to_owned))
                .bind(a.model_group.map(str::to_owned))
                .bind(a.provider.map(str::to_owned))
                .bind(a.spend)
                .bind(a.prompt)
                .bind(a.completion)
                .bind(a.prompt + a.completion)
                .bind(a.cached)
                .bind(a.requests)
                .bind(a.ok)
                .bind(a.failed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        for (sql, map) in totals.updates(opts.targets) {
            for (id, spend) in map {
                sqlx::query(sql)
                    .bind(*spend)
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if opts.targets.end_users {
            for (id, spend) in &totals.end_users {
                sqlx::query(END_USER_UPSERT_SQL)
                    .bind(*id)
                    .bind(*spend)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(BatchResult {
            applied: fresh.len(),
            duplicates: events.len() - fresh.len(),
        })
    }

    /// Spend log rows, newest first.
    pub async fn spend_logs(
        &self,
        f: &LogFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SpendLogRow>, StoreError> {
        let (sql, binds) = logs_sql(self.backend, f);
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = b.bind(q);
        }
        let rows = q.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        rows.iter().map(log_row).collect()
    }

    /// How many rows match.
    pub async fn count_spend_logs(&self, f: &LogFilter) -> Result<i64, StoreError> {
        let (where_sql, binds) = log_where(self.backend, f);
        let sql = format!("SELECT COUNT(*) AS n FROM tollgate_spend_logs{where_sql}");
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = b.bind(q);
        }
        let row = q.fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Daily rollup lines between two days (inclusive, `YYYY-MM-DD`). `tags`: the per-tag
    /// lines instead of the whole-request ones.
    pub async fn daily_spend(
        &self,
        start_day: &str,
        end_day: &str,
        api_key: Option<&str>,
        user_id: Option<&str>,
        tags: bool,
    ) -> Result<Vec<DailyRow>, StoreError> {
        let mut sql = format!(
            "SELECT day, api_key, MAX(key_alias) AS key_alias, model, team_id, user_id, end_user, tag, \
             COALESCE(SUM(spend), 0.0) AS spend, CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, CAST(SUM(total_tokens) AS BIGINT) AS total_tokens, \
             CAST(SUM(api_requests) AS BIGINT) AS api_requests \
             FROM tollgate_daily_spend WHERE day >= $1 AND day <= $2 AND tag {} ''",
            if tags { "<>" } else { "=" }
        );
        let mut binds = vec![start_day.to_owned(), end_day.to_owned()];
        if let Some(k) = api_key {
            binds.push(k.to_owned());
            sql.push_str(&format!(" AND api_key = ${}", binds.len()));
        }
        if let Some(u) = user_id {
            binds.push(u.to_owned());
            sql.push_str(&format!(" AND user_id = ${}", binds.len()));
        }
        sql.push_str(
            " GROUP BY day, api_key, model, team_id, user_id, end_user, tag ORDER BY day, api_key, model",
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DailyRow {
                    day: r.try_get("day")?,
                    api_key: r.try_get("api_key")?,
                    key_alias: r.try_get("key_alias")?,
                    model: r.try_get("model")?,
                    team_id: r.try_get("team_id")?,
                    user_id: r.try_get("user_id")?,
                    end_user: r.try_get("end_user")?,
                    tag: r.try_get("tag")?,
                    spend: r.try_get("spend")?,
                    prompt_tokens: r.try_get::<Option<i64>, _>("prompt_tokens")?.unwrap_or(0),
                    completion_tokens: r
                        .try_get::<Option<i64>, _>("completion_tokens")?
                        .unwrap_or(0),
                    total_tokens: r.try_get::<Option<i64>, _>("total_tokens")?.unwrap_or(0),
                    api_requests: r.try_get::<Option<i64>, _>("api_requests")?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// `(id, spend)` of every row in a spend-total table, dearest first (empty when the table
    /// does not exist).
    pub async fn spend_totals(&self, table: SpendTotal) -> Result<Vec<(String, f64)>, StoreError> {
        let (t, id) = match table {
            SpendTotal::Keys => ("tollgate_keys", "token"),
            SpendTotal::Teams => ("tollgate_teams", "team_id"),
            SpendTotal::Users => ("tollgate_users", "user_id"),
            SpendTotal::EndUsers => ("tollgate_end_users", "user_id"),
        };
        let sql = format!("SELECT {id} AS id, spend FROM {t} ORDER BY spend DESC LIMIT 10000");
        match sqlx::query(&sql).fetch_all(&self.pool).await {
            Ok(rows) => rows
                .iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("spend")?)))
                .collect(),
            Err(sqlx::Error::Database(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes up to `batch` rows that started before `cutoff_ms`; returns how many went.
    pub async fn delete_spend_logs_before(
        &self,
        cutoff_ms: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        // By the table's own row ids on SQLite: `request_id` has no index there (migration 4).
        let sql = match self.backend {
            super::Backend::Sqlite => {
                "DELETE FROM tollgate_spend_logs WHERE rowid IN \
                 (SELECT rowid FROM tollgate_spend_logs WHERE \"startTime\" < $1 LIMIT $2)"
            }
            super::Backend::Postgres => {
                "DELETE FROM tollgate_spend_logs WHERE request_id IN \
                 (SELECT request_id FROM tollgate_spend_logs WHERE \"startTime\" < $1 LIMIT $2)"
            }
        };
        let r = sqlx::query(sql)
            .bind(cutoff_ms)
            .bind(batch)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

/// The spend-total tables `spend_totals` reads.
#[derive(Debug, Clone, Copy)]
pub enum SpendTotal {
    Keys,
    Teams,
    Users,
    EndUsers,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Bind {
    fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Bind::Text(s) => q.bind(s.as_str()),
            Bind::Int(i) => q.bind(*i),
        }
    }
}

/// The query of [`Store::spend_logs`]: its text (`LIMIT` and `OFFSET` the last two binds)
/// and the filter's binds.
fn logs_sql(backend: super::Backend, f: &LogFilter) -> (String, Vec<Bind>) {
    let (where_sql, binds) = log_where(backend, f);
    let n = binds.len();
    let sql = format!(
        "SELECT * FROM tollgate_spend_logs{where_sql} ORDER BY \"startTime\" DESC, request_id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    (sql, binds)
}

/// What follows `FROM tollgate_spend_logs` for a filter, and its binds.
fn log_where(backend: super::Backend, f: &LogFilter) -> (String, Vec<Bind>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    let mut indexed_by = "";
    if backend == super::Backend::Sqlite
        && let Some(id) = &f.request_id
    {
        // SQLite indexes ids by their key (migration 4); the id itself is compared below. The
        // key index is not unique, so beside a key filter (`api_key`, forced for a virtual
        // key's caller) the planner would rather walk `(api_key, "startTime")` to spare the
        // sort, reading every row of that key: the key index is named.
        binds.push(Bind::Int(request_key(id)));
        clauses.push(format!("request_key = ${}", binds.len()));
        indexed_by = " INDEXED BY tollgate_spend_logs_request_key";
    }
    let mut text = |col: &str, v: &Option<String>, clauses: &mut Vec<String>| {
        if let Some(v) = v {
            binds.push(Bind::Text(v.clone()));
            clauses.push(format!("{col} = ${}", binds.len()));
        }
    };
    text("request_id", &f.request_id, &mut clauses);
    text("api_key", &f.api_key, &mut clauses);
    text("\"user\"", &f.user_id, &mut clauses);
    text("team_id", &f.team_id, &mut clauses);
    text("end_user", &f.end_user, &mut clauses);
    text("model", &f.model, &mut clauses);
    text("status", &f.status, &mut clauses);
    if let Some(s) = f.start_ms {
        binds.push(Bind::Int(s));
        clauses.push(format!("\"startTime\" >= ${}", binds.len()));
    }
    if let Some(e) = f.end_ms {
        binds.push(Bind::Int(e));
        clauses.push(format!("\"startTime\" < ${}", binds.len()));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("{indexed_by} WHERE {}", clauses.join(" AND "))
    };
    (sql, binds)
}

/// Who owns `id` on SQLite (see [`placement`]).
async fn owner_by_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<Option<Option<String>>, StoreError> {
    let row = sqlx::query(CALL_ID_BY_KEY_SQL)
        .bind(request_key(id))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| r.try_get("litellm_call_id").map_err(Into::into))
        .transpose()
}

/// Whether a row already under `ev.request_id` belongs to a different call (an upstream that
/// reuses response ids) rather than being this very event written before.
async fn is_clash(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ev: &SpendEvent,
) -> Result<bool, StoreError> {
    if ev.call_id.is_empty() || ev.call_id == ev.request_id {
        return Ok(false);
    }
    let row = sqlx::query(CALL_ID_SQL)
        .bind(ev.request_id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    let existing: Option<String> = match row {
        Some(r) => r.try_get("litellm_call_id")?,
        None => return Ok(false),
    };
    Ok(existing.as_deref() != Some(ev.call_id.as_str()))
}

/// One multi-row INSERT. On SQLite the placeholders are anonymous `?` (bound in order): with
/// numbered `$N` ones sqlx looks up every parameter's name, a linear walk in SQLite, so a
/// 16-row statement (528 binds) cost ~64 k instructions per event in name lookups alone.
async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: super::Backend,
    events: &[SpendEvent],
    now: i64,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let ncol = LOG_COLUMNS.len();
    // SQLite: each row also carries its id's key (migration 4), and ids are kept unique by
    // the caller (no constraint to conflict with).
    let sqlite = backend == super::Backend::Sqlite;
    let ncol = ncol + usize::from(sqlite);
    let mut sql = format!(
        "INSERT INTO tollgate_spend_logs ({}{}) VALUES ",
        LOG_COLUMNS.join(", "),
        if sqlite { ", request_key" } else { "" }
    );
    for i in 0..events.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..ncol {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                super::Backend::Sqlite => sql.push('?'),
                super::Backend::Postgres => {
                    use std::fmt::Write;
                    let _ = write!(sql, "${}", i * ncol + c + 1);
                }
            }
        }
        sql.push(')');
    }
    if !sqlite {
        sql.push_str(" ON CONFLICT (request_id) DO NOTHING");
    }
    sql.push_str(" RETURNING request_id");
    let mut q = sqlx::query(&sql);
    for ev in events {
        let json_text = |v: &Option<Value>| v.as_ref().map(|v| v.to_string());
        q = q
            .bind(ev.request_id.clone())
            .bind(ev.call_type.clone())
            .bind(ev.api_key.clone())
            .bind(opt(ev.key_alias.as_deref()))
            .bind(ev.spend)
            .bind((ev.prompt_tokens + ev.completion_tokens) as i64)
            .bind(ev.prompt_tokens as i64)
            .bind(ev.completion_tokens as i64)
            .bind(ev.cached_tokens as i64)
            .bind(ev.cache_creation_tokens as i64)
            .bind(ev.reasoning_tokens as i64)
            .bind(ev.start_ms)
            .bind(ev.end_ms)
            .bind(ev.completion_start_ms)
            .bind((ev.end_ms - ev.start_ms).max(0))
            .bind(ev.model.clone())
            .bind(opt(Some(&ev.model_id)))
            .bind(opt(Some(&ev.model_group)))
            .bind(opt(Some(&ev.provider)))
            .bind(opt(Some(&ev.api_base)))
            .bind(opt(ev.user_id.as_deref()))
            .bind(row_metadata_text(ev))
            .bind(if ev.cache_hit { "True" } else { "False" })
            .bind(tags_text(&ev.tags).into_owned())
            .bind(opt(ev.team_id.as_deref()))
            .bind(opt(ev.end_user.as_deref()))
            .bind(opt(ev.requester_ip.as_deref()))
            .bind(json_text(&ev.messages))
            .bind(json_text(&ev.response))
            .bind(opt(Some(&ev.call_id)))
            .bind(ev.status.clone())
            .bind(json_text(&ev.error))
            .bind(now);
        if sqlite {
            q = q.bind(request_key(&ev.request_id));
        }
    }
    let rows = q.fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("request_id").map_err(Into::into))
        .collect()
}

fn log_row(r: &AnyRow) -> Result<SpendLogRow, StoreError> {
    Ok(SpendLogRow {
        request_id: r.try_get("request_id")?,
        call_type: r.try_get("call_type")?,
        api_key: r.try_get("api_key")?,
        key_alias: r.try_get("key_alias")?,
        spend: r.try_get("spend")?,
        total_tokens: r.try_get("total_tokens")?,
        prompt_tokens: r.try_get("prompt_tokens")?,
        completion_tokens: r.try_get("completion_tokens")?,
        cached_tokens: r.try_get("cached_tokens")?,
        cache_creation_tokens: r.try_get("cache_creation_tokens")?,
        reasoning_tokens: r.try_get("reasoning_tokens")?,
        start_ms: r.try_get("startTime")?,
        end_ms: r.try_get("endTime")?,
        completion_start_ms: r.try_get("completionStartTime")?,
        request_duration_ms: r.try_get("request_duration_ms")?,
        model: r.try_get("model")?,
        model_id: r.try_get("model_id")?,
        model_group: r.try_get("model_group")?,
        custom_llm_provider: r.try_get("custom_llm_provider")?,
        api_base: r.try_get("api_base")?,
        user: r.try_get("user")?,
        metadata: r.try_get("metadata")?,
        cache_hit: r.try_get("cache_hit")?,
        request_tags: r.try_get("request_tags")?,
        team_id: r.try_get("team_id")?,
        end_user: r.try_get("end_user")?,
        requester_ip_address: r.try_get("requester_ip_address")?,
        messages: r.try_get("messages")?,
        response: r.try_get("response")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The totals tables come from migration 1 (the key store); nothing to create.
    pub async fn create_total_tables(_store: &Store) {}

    pub fn event(id: &str, key: &str, spend: f64, start_ms: i64) -> SpendEvent {
        SpendEvent {
            request_id: id.into(),
            call_type: "acompletion".into(),
            api_key: key.into(),
            team_id: Some("team-a".into()),
            user_id: Some("user-a".into()),
            end_user: Some("customer-1".into()),
            model: "gpt-4o".into(),
            model_group: "gpt-4o".into(),
            provider: "openai".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            spend,
            start_ms,
            end_ms: start_ms + 100,
            status: "success".into(),
            tags: vec!["prod".into()],
            metadata: json!({}),
            ..SpendEvent::default()
        }
    }

    #[test]
    fn row_metadata_text_is_the_value_printed() {
        let mut ev = event("r1", "hash", 0.5, 1_000);
        assert_eq!(row_metadata_text(&ev), row_metadata(&ev).to_string());
        ev.key_alias = Some("alias \"quoted\"".into());
        ev.requester_ip = Some("127.0.0.1".into());
        ev.cached_tokens = 3;
        ev.reasoning_tokens = 2;
        ev.cache_creation_tokens = 1;
        ev.status = "failure".into();
        ev.error = Some(json!({"error_code": "500", "error_class": "X"}));
        ev.metadata = json!({"z": 1, "a": [1, {"y": null, "b": "é"}],
            "spend_logs_metadata": {"k": "v"}});
        assert_eq!(row_metadata_text(&ev), row_metadata(&ev).to_string());
        let ev = SpendEvent::default();
        assert_eq!(row_metadata_text(&ev), row_metadata(&ev).to_string());
        let mut ev = event("r2", "ha\"sh\n\u{1}", 0.5, 1_000);
        ev.team_id = Some("t\\eam é".into());
        ev.error = Some(Value::Null);
        ev.metadata = json!({"spend_logs_metadata": null, "x": 1.5});
        ev.prompt_tokens = u64::from(u32::MAX) * 3;
        assert_eq!(row_metadata_text(&ev), row_metadata(&ev).to_string());
        let tags = vec!["a\"b".to_owned(), "c".to_owned()];
        assert_eq!(tags_text(&tags), Value::from(tags.clone()).to_string());
        assert_eq!(tags_text(&[]), "[]");
        assert_eq!(
            serde_json::to_string(&tags).unwrap(),
            Value::from(tags.clone()).to_string()
        );
    }

    /// A fresh store: SQLite in a temp dir, or a fresh PostgreSQL schema when
    /// `TOLLGATE_TEST_DATABASE_URL` is set and `pg` is asked for. `None`: skip.
    pub async fn test_store(pg: bool) -> Option<(Store, Option<tempfile::TempDir>)> {
        if pg {
            let Ok(base) = std::env::var("TOLLGATE_TEST_DATABASE_URL") else {
                eprintln!("TOLLGATE_TEST_DATABASE_URL unset: skipping the PostgreSQL run");
                return None;
            };
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = Store::open(&base, 1).await.expect("PostgreSQL reachable");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin.pool)
                .await
                .unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
            let store = Store::open(&url, 4).await.unwrap();
            create_total_tables(&store).await;
            return Some((store, None));
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")), 2)
            .await
            .unwrap();
        create_total_tables(&store).await;
        Some((store, Some(dir)))
    }

    /// Drops a PostgreSQL test schema made by [`test_store`].
    pub async fn drop_pg_schema(store: &Store) {
        if store.backend != crate::store::Backend::Postgres {
            return;
        }
        let (schema,): (String,) = sqlx::query_as("SELECT CAST(current_schema() AS TEXT)")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        if schema.starts_with("t_") {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&store.pool)
                .await
                .unwrap();
        }
    }

    async fn batch_is_idempotent_and_moves_totals(pg: bool) {
        let Some((store, _dir)) = test_store(pg).await else {
            return;
        };
        sqlx::query("INSERT INTO tollgate_keys (token, spend, created_at, updated_at) VALUES ('k1', 1.0, 0, 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO tollgate_teams (team_id, spend, created_at, updated_at) VALUES ('team-a', 0, 0, 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        let targets = store.spend_targets().await.unwrap();
        assert!(targets.keys && targets.end_users);
        let opts = BatchOptions {
            write_logs: true,
            targets,
        };
        let t0 = 1_700_000_000_000;
        let evs: Vec<_> = (0..450)
            .map(|i| event(&format!("r{i}"), "k1", 0.01, t0 + i))
            .collect();
        let r = store.write_spend_batch(&evs, opts).await.unwrap();
        assert_eq!(r.applied, 450);
        // Written again (a retry after an unknown outcome): nothing moves.
        let r = store.write_spend_batch(&evs[..10], opts).await.unwrap();
        assert_eq!((r.applied, r.duplicates), (0, 10));
        let f = LogFilter::default();
        assert_eq!(store.count_spend_logs(&f).await.unwrap(), 450);
        let totals = store.spend_totals(SpendTotal::Keys).await.unwrap();
        assert!((totals[0].1 - 5.5).abs() < 1e-9, "{totals:?}");
        let teams = store.spend_totals(SpendTotal::Teams).await.unwrap();
        assert!((teams[0].1 - 4.5).abs() < 1e-9);
        let ends = store.spend_totals(SpendTotal::EndUsers).await.unwrap();
        assert_eq!(ends[0].0, "customer-1");
        assert!((ends[0].1 - 4.5).abs() < 1e-9);

        let day = day_of(t0);
        let daily = store
            .daily_spend(&day, &day, Some("k1"), None, false)
            .await
            .unwrap();
        assert_eq!(daily.len(), 1);
        assert!((daily[0].spend - 4.5).abs() < 1e-9);
        assert_eq!(daily[0].api_requests, 450);
        let tags = store
            .daily_spend(&day, &day, None, None, true)
            .await
            .unwrap();
        assert_eq!(tags[0].tag, "prod");

        let rows = store
            .spend_logs(
                &LogFilter {
                    request_id: Some("r7".into()),
                    ..Default::default()
                },
                10,
                0,
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].prompt_tokens, 10);
        assert_eq!(rows[0].request_tags, "[\"prod\"]");
        let page = store.spend_logs(&f, 5, 0).await.unwrap();
        assert_eq!(page[0].request_id, "r449");

        // Retention: bounded batches.
        assert_eq!(
            store.delete_spend_logs_before(t0 + 100, 60).await.unwrap(),
            60
        );
        assert_eq!(
            store.delete_spend_logs_before(t0 + 100, 60).await.unwrap(),
            40
        );
        assert_eq!(store.count_spend_logs(&f).await.unwrap(), 350);
        drop_pg_schema(&store).await;
    }

    #[tokio::test]
    async fn batch_is_idempotent_and_moves_totals_sqlite() {
        batch_is_idempotent_and_moves_totals(false).await;
    }

    #[tokio::test]
    async fn batch_is_idempotent_and_moves_totals_postgres() {
        batch_is_idempotent_and_moves_totals(true).await;
    }

    /// LiteLLM's `SpendLogsMetadata` object of an event, as rows once stored it whole.
    fn litellm_metadata(ev: &SpendEvent) -> Value {
        json!({
            "user_api_key": ev.api_key,
            "user_api_key_alias": ev.key_alias,
            "user_api_key_team_id": ev.team_id,
            "user_api_key_org_id": Value::Null,
            "user_api_key_user_id": ev.user_id,
            "user_api_key_end_user_id": ev.end_user,
            "requester_ip_address": ev.requester_ip,
            "spend_logs_metadata": ev.metadata.get("spend_logs_metadata").cloned(),
            "requester_metadata": ev.metadata,
            "status": ev.status,
            "error_information": ev.error,
            "usage_object": {
                "prompt_tokens": ev.prompt_tokens,
                "completion_tokens": ev.completion_tokens,
                "total_tokens": ev.prompt_tokens + ev.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": ev.cached_tokens},
                "completion_tokens_details": {"reasoning_tokens": ev.reasoning_tokens},
                "cache_creation_input_tokens": ev.cache_creation_tokens,
            },
        })
    }

    /// Rows keep only the client's metadata; what is read back is LiteLLM's whole object, the
    /// same as when rows stored it whole. Rows stored whole are returned as they are.
    async fn metadata_is_rebuilt_from_the_columns(pg: bool) {
        let Some((store, _dir)) = test_store(pg).await else {
            return;
        };
        let opts = BatchOptions {
            write_logs: true,
            targets: store.spend_targets().await.unwrap(),
        };
        let plain = event("m1", "hash-1", 0.25, 1_000);
        let mut full = event("m2", "hash-2", 0.5, 2_000);
        full.key_alias = Some("alias \"q\"".into());
        full.team_id = Some("team-a".into());
        full.user_id = Some("user-1".into());
        full.end_user = Some("customer-7".into());
        full.requester_ip = Some("10.0.0.1".into());
        full.cached_tokens = 3;
        full.reasoning_tokens = 2;
        full.cache_creation_tokens = 1;
        full.status = "failure".into();
        full.error = Some(json!({"error_code": "500", "error_class": "X"}));
        full.metadata = json!({"tags": ["a"], "spend_logs_metadata": {"k": "v"}});
        let r = store
            .write_spend_batch(&[plain.clone(), full.clone()], opts)
            .await
            .unwrap();
        assert_eq!(r.applied, 2);
        for ev in [&plain, &full] {
            let rows = store
                .spend_logs(
                    &LogFilter {
                        request_id: Some(ev.request_id.clone()),
                        ..Default::default()
                    },
                    10,
                    0,
                )
                .await
                .unwrap();
            assert_eq!(rows[0].metadata, row_metadata_text(ev));
            assert_eq!(metadata_json(&rows[0]), litellm_metadata(ev));
        }
        let whole = SpendLogRow {
            metadata: litellm_metadata(&full).to_string(),
            ..Default::default()
        };
        assert_eq!(metadata_json(&whole), litellm_metadata(&full));
        drop_pg_schema(&store).await;
    }

    #[tokio::test]
    async fn metadata_is_rebuilt_from_the_columns_sqlite() {
        metadata_is_rebuilt_from_the_columns(false).await;
    }

    #[tokio::test]
    async fn metadata_is_rebuilt_from_the_columns_postgres() {
        metadata_is_rebuilt_from_the_columns(true).await;
    }

    #[tokio::test]
    async fn reused_upstream_ids_keep_one_row_per_call() {
        let Some((store, _dir)) = test_store(false).await else {
            return;
        };
        let opts = BatchOptions {
            write_logs: true,
            targets: store.spend_targets().await.unwrap(),
        };
        let mut evs: Vec<_> = (0..5)
            .map(|i| {
                let mut e = event("chatcmpl-mock", "k", 1.0, i);
                e.call_id = format!("call-{i}");
                e
            })
            .collect();
        let r = store.write_spend_batch(&evs, opts).await.unwrap();
        assert_eq!(r.applied, 5);
        // A retry of the same events changes nothing.
        let r = store.write_spend_batch(&evs, opts).await.unwrap();
        assert_eq!(r.applied, 0);
        evs.truncate(1);
        let r = store.write_spend_batch(&evs, opts).await.unwrap();
        assert_eq!(r.applied, 0);
        assert_eq!(
            store.count_spend_logs(&LogFilter::default()).await.unwrap(),
            5
        );
    }

    /// Large batches holding a retried row, a reused upstream id and a repeat of earlier rows:
    /// each call counts exactly once and a reused id still gets its own row.
    async fn large_batches_count_each_call_once(pg: bool) {
        let Some((store, _dir)) = test_store(pg).await else {
            return;
        };
        each_call_counts_once(&store).await;
        drop_pg_schema(&store).await;
    }

    async fn each_call_counts_once(store: &Store) {
        let opts = BatchOptions {
            write_logs: true,
            targets: store.spend_targets().await.unwrap(),
        };
        let ev = |id: &str, call: &str, t: i64| {
            let mut e = event(id, "k", 1.0, t);
            e.call_id = call.to_owned();
            e
        };
        let first: Vec<_> = (0..200)
            .map(|i| ev(&format!("a{i}"), &format!("call-a{i}"), i))
            .collect();
        assert_eq!(
            store.write_spend_batch(&first, opts).await.unwrap().applied,
            200
        );
        // 300 events: 100 new, then a retried one, then a reused upstream id from another
        // call, then 198 new; and the first 64 again at the end.
        let mut second: Vec<_> = (0..100)
            .map(|i| ev(&format!("b{i}"), &format!("call-b{i}"), 1_000 + i))
            .collect();
        second.push(first[7].clone());
        second.push(ev("a9", "call-other", 2_000));
        second.extend((100..298).map(|i| ev(&format!("b{i}"), &format!("call-b{i}"), 1_000 + i)));
        second.extend(first[..64].iter().cloned());
        let r = store.write_spend_batch(&second, opts).await.unwrap();
        assert_eq!((r.applied, r.duplicates), (299, 65));
        let all = LogFilter::default();
        assert_eq!(store.count_spend_logs(&all).await.unwrap(), 499);
        let rows = store
            .spend_logs(
                &LogFilter {
                    request_id: Some("call-other".into()),
                    ..Default::default()
                },
                10,
                0,
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "the reused id is kept under the call id");
    }

    /// SQLite in memory writes through sqlx, placing each row itself (no constraint on the id).
    #[tokio::test]
    async fn large_batches_count_each_call_once_sqlite_in_memory() {
        let store = Store::open("sqlite::memory:", 1).await.unwrap();
        each_call_counts_once(&store).await;
    }

    /// A lookup by id reads the id's key index, also beside the filters a virtual key's caller
    /// always has (its own key) and may add (dates).
    #[tokio::test]
    async fn sqlite_lookups_by_id_use_the_key_index() {
        let Some((store, _dir)) = test_store(false).await else {
            return;
        };
        let f = LogFilter {
            request_id: Some("chatcmpl-x".into()),
            api_key: Some("k".into()),
            start_ms: Some(0),
            ..Default::default()
        };
        let (sql, binds) = logs_sql(store.backend, &f);
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = b.bind(q);
        }
        let plan: Vec<String> = q
            .bind(10i64)
            .bind(0i64)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect();
        assert!(
            plan.iter()
                .any(|d| d.contains("USING INDEX tollgate_spend_logs_request_key")),
            "{plan:?}"
        );
        assert_eq!(store.count_spend_logs(&f).await.unwrap(), 0);
    }

    /// The key is stored on disk: these values (also computed by a separate Python
    /// implementation of the same steps) must never change.
    #[test]
    fn request_keys_are_stable() {
        assert_eq!(request_key(""), -271_573_152);
        assert_eq!(request_key("chatcmpl-mock"), 502_521_213);
        assert_eq!(request_key("msg_01XFDUDYJgAACzvnptvVoYEL"), -909_801_511);
        let keys: std::collections::HashSet<i64> = (0..10_000)
            .map(|i| request_key(&format!("chatcmpl-{i}")))
            .collect();
        assert!(keys.len() > 9_990, "sequential ids spread: {}", keys.len());
    }

    /// A SQLite file written before migration 4 (`request_id` its primary key), at migration
    /// 2 or 3: the rows are copied with their keys, and every rule about ids holds for them.
    #[tokio::test]
    async fn sqlite_rows_from_before_the_key_index_keep_their_ids() {
        rows_from_before_the_key_index(2).await;
        rows_from_before_the_key_index(3).await;
    }

    async fn rows_from_before_the_key_index(applied: usize) {
        let dir = tempfile::tempdir().unwrap();
        let url = Store::sqlite_url(&dir.path().join("old.db"));
        {
            sqlx::any::install_default_drivers();
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .unwrap();
            sqlx::query("CREATE TABLE tollgate_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
                .execute(&pool)
                .await
                .unwrap();
            for m in &crate::store::MIGRATIONS[..applied] {
                for stmt in m.sqlite.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    sqlx::query(stmt).execute(&pool).await.unwrap();
                }
                sqlx::query("INSERT INTO tollgate_migrations VALUES ($1, $2, 0)")
                    .bind(m.version)
                    .bind(m.name)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            let mut tx = pool.begin().await.unwrap();
            for i in 0..25_000 {
                sqlx::query("INSERT INTO tollgate_spend_logs (request_id, litellm_call_id, api_key, spend, \"startTime\", \"endTime\", created_at) VALUES ($1, $2, 'k', 0.5, $3, $3, 0)")
                    .bind(format!("chatcmpl-old{i}"))
                    .bind(format!("call-old{i}"))
                    .bind(1_000 + i)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            pool.close().await;
        }
        let store = Store::open(&url, 2).await.unwrap();
        let (unkeyed,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tollgate_spend_logs WHERE request_key IS NULL")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(unkeyed, 0);
        let by_id = |id: &str| LogFilter {
            request_id: Some(id.into()),
            ..Default::default()
        };
        let rows = store
            .spend_logs(&by_id("chatcmpl-old24999"), 10, 0)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].spend, 0.5);
        let opts = BatchOptions {
            write_logs: true,
            targets: store.spend_targets().await.unwrap(),
        };
        let mut retried = event("chatcmpl-old7", "k", 0.5, 1_007);
        retried.call_id = "call-old7".into();
        let mut reused = event("chatcmpl-old8", "k", 2.0, 9_000);
        reused.call_id = "call-new".into();
        let r = store
            .write_spend_batch(&[retried, reused], opts)
            .await
            .unwrap();
        assert_eq!((r.applied, r.duplicates), (1, 1));
        assert_eq!(
            store
                .spend_logs(&by_id("chatcmpl-old8"), 10, 0)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store.spend_logs(&by_id("call-new"), 10, 0).await.unwrap()[0].spend,
            2.0
        );
        assert_eq!(
            store.count_spend_logs(&LogFilter::default()).await.unwrap(),
            25_001
        );
        // Opened again: nothing left to migrate.
        drop(store);
        let store = Store::open(&url, 2).await.unwrap();
        assert_eq!(
            store.count_spend_logs(&LogFilter::default()).await.unwrap(),
            25_001
        );
    }

    #[tokio::test]
    async fn large_batches_count_each_call_once_sqlite() {
        large_batches_count_each_call_once(false).await;
    }

    #[tokio::test]
    async fn large_batches_count_each_call_once_postgres() {
        large_batches_count_each_call_once(true).await;
    }

    #[tokio::test]
    async fn disabled_logs_still_move_key_spend() {
        let Some((store, _dir)) = test_store(false).await else {
            return;
        };
        sqlx::query("INSERT INTO tollgate_keys (token, spend, created_at, updated_at) VALUES ('k1', 0, 0, 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        let opts = BatchOptions {
            write_logs: false,
            targets: store.spend_targets().await.unwrap(),
        };
        store
            .write_spend_batch(&[event("a", "k1", 0.25, 0)], opts)
            .await
            .unwrap();
        assert_eq!(
            store.count_spend_logs(&LogFilter::default()).await.unwrap(),
            0
        );
        let totals = store.spend_totals(SpendTotal::Keys).await.unwrap();
        assert_eq!(totals[0].1, 0.25);
    }

    #[tokio::test]
    async fn total_tables_come_with_the_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")), 2)
            .await
            .unwrap();
        assert_eq!(
            store.spend_targets().await.unwrap(),
            SpendTargets {
                keys: true,
                teams: true,
                users: true,
                end_users: true
            }
        );
        assert!(
            store
                .spend_totals(SpendTotal::Keys)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
