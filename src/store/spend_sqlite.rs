//! Spend batches on SQLite, through one dedicated `rusqlite` connection to the same file.
//!
//! Why not sqlx here: a batch of 1,000 rows through sqlx's `Any` driver cost ~140 k
//! instructions per event (arguments boxed and copied into `AnyArguments`, then into
//! `SqliteArguments`, a multi-row statement re-prepared per chunk, `RETURNING` rows decoded and
//! sent back over the worker thread's channel). Here each event is one execution of a cached
//! probe by the id's `request_key` (migration 4) and, unless the id is taken, of a cached
//! single-row `INSERT`, binding the event's `&str`s directly. The guarantees are unchanged: one
//! `BEGIN IMMEDIATE` transaction per batch (immediate, so a concurrent writer on the sqlx pool
//! makes this one wait in `busy_timeout` instead of failing on a read-to-write upgrade), rows,
//! rollup and spend totals together, idempotent on `request_id`. Beside the insert and the
//! probe (SQLite's own, migration 4) the SQL text is the one the PostgreSQL path uses (`$N`
//! placeholders are named parameters to SQLite, numbered in order of first appearance, and
//! bound here by index).
//!
//! The connection is used from blocking threads only (`spawn_blocking`), one batch at a time
//! (a mutex); it is reopened after any error that is not a refusal of the data.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;
use super::spend::{
    BatchOptions, BatchResult, CALL_ID_BY_KEY_SQL, DAILY_UPSERT_SQL, DAY_MS, END_USER_UPSERT_SQL,
    LOG_COLUMNS, MIGRATION_4_SQLITE_KEYED, Placement, Totals, day_of, placement, request_key,
    tags_text, write_row_metadata,
};
use crate::spend::SpendEvent;

/// The dedicated spend connection of a SQLite store.
#[derive(Debug)]
pub struct SpendDb {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

/// Single-row insert of a spend log, `$1`…`$33` in [`LOG_COLUMNS`] order and `$34` the id's
/// `request_key`. No conflict clause: the writer places each id itself (`placement`).
fn insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let params: Vec<String> = (1..=LOG_COLUMNS.len() + 1)
            .map(|i| format!("${i}"))
            .collect();
        format!(
            "INSERT INTO tollgate_spend_logs ({}, request_key) VALUES ({})",
            LOG_COLUMNS.join(", "),
            params.join(", ")
        )
    })
}

/// The file of a `sqlite:` URL, or `None` for an in-memory database (which another connection
/// could not see: such a store keeps writing spend through sqlx).
pub fn file_of_url(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    // sqlx percent-decodes the path; the writer must open the very same file.
    Some(PathBuf::from(percent_decode(path)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SpendDb {
    pub fn new(path: &Path) -> Arc<SpendDb> {
        Arc::new(SpendDb {
            path: path.to_owned(),
            conn: Mutex::new(None),
        })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Never create: the store made the file and its tables; a missing file is an outage.
        let c = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // As the sqlx pool's connections (`Store::open`).
        c.busy_timeout(Duration::from_millis(5000))?;
        c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        c.execute_batch(super::SQLITE_PRAGMAS)?;
        // Twice SQLite's default page cache: the index of request ids (their `request_key`
        // since migration 4; their text before) takes each row at a random place, so a batch
        // dirties one of its pages per row unless the index is in cache. With 4 MiB (and the
        // less frequent checkpoints of `SQLITE_PRAGMAS`) the gateway read a fifth as many
        // pages (`pread64`) under load with a log of 60-100 k rows, and the writer's CPU per
        // row at 50-100 k rows fell further (`bench/spend-writer`); the cost is up to 2 MiB
        // more memory once the log is that large.
        c.execute_batch("PRAGMA cache_size=-4096")?;
        c.set_prepared_statement_cache_capacity(16);
        Ok(c)
    }

    /// Migration 4 on this file (see `MIGRATION_4_SQLITE`), with every copied row's key
    /// computed by a function registered here, when the database has migration 3 and not yet
    /// 4; the pool's migrations then find it done. A new database takes the pool's path, with
    /// no rows to copy. Blocking: call from a blocking thread. Returns the rows copied.
    pub fn migrate_to_request_keys(&self) -> Result<Option<i64>, StoreError> {
        let mut c = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let has = |c: &Connection, v: i64| -> rusqlite::Result<bool> {
            let table =
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tollgate_migrations'";
            let q = "SELECT 1 FROM tollgate_migrations WHERE version = ?1";
            Ok(c.query_row(table, [], |_| Ok(())).optional()?.is_some()
                && c.query_row(q, [v], |_| Ok(())).optional()?.is_some())
        };
        // Without the write lock while there is nothing to do (every start but one).
        if !has(&c, 3)? || has(&c, 4)? {
            return Ok(None);
        }
        // Another gateway starting on the same file waits for this one's copy, however long.
        c.busy_timeout(Duration::from_secs(600))?;
        c.create_scalar_function(
            "tollgate_request_key",
            1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|id| request_key(&id))),
        )?;
        // Immediate, and checked again: another gateway may have done it meanwhile.
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if has(&tx, 4)? {
            return Ok(None);
        }
        let rows: i64 =
            tx.query_row("SELECT COUNT(*) FROM tollgate_spend_logs", [], |r| r.get(0))?;
        tx.execute_batch(MIGRATION_4_SQLITE_KEYED)?;
        let name = super::MIGRATIONS
            .iter()
            .find(|m| m.version == 4)
            .map_or("", |m| m.name);
        tx.execute(
            "INSERT INTO tollgate_migrations (version, name, applied_at) VALUES (4, ?1, ?2)",
            rusqlite::params![name, chrono::Utc::now().timestamp_millis()],
        )?;
        tx.commit()?;
        // The copy passed through the WAL: give that space back now rather than keep a WAL the
        // size of the log (best effort: a reader elsewhere can make it wait for the next one).
        let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(Some(rows))
    }

    /// Writes a batch in one transaction. Blocking: call from a blocking thread.
    pub fn write(
        &self,
        events: &[SpendEvent],
        opts: BatchOptions,
    ) -> Result<BatchResult, StoreError> {
        // A write abandoned by its caller (a timeout) may still hold the connection: refuse
        // rather than queue behind it, so retries never pile up blocked threads and batches.
        let mut guard = match self.conn.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(StoreError::Invalid(
                    "the previous spend write is still running".into(),
                ));
            }
        };
        let conn = match &mut *guard {
            Some(c) => c,
            slot => slot.insert(self.open()?),
        };
        let r = write_batch(conn, events, opts);
        if let Err(e) = &r
            && !is_refusal(e)
        {
            // A fresh connection for the retry (the file may have been replaced, …).
            *guard = None;
        }
        r
    }
}

/// SQLite refusing the data itself: constraint (incl. `RAISE(ABORT)` triggers) or datatype
/// mismatch, by primary result code. Not RANGE: a bind index out of range is a bug, to be
/// retried (and spilled) rather than every event set aside.
pub fn is_refusal(e: &StoreError) -> bool {
    match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            matches!(f.extended_code & 0xff, 19 | 20)
        }
        StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(_)) => true,
        _ => false,
    }
}

fn write_batch(
    conn: &mut Connection,
    events: &[SpendEvent],
    opts: BatchOptions,
) -> Result<BatchResult, StoreError> {
    let now = chrono::Utc::now().timestamp_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut fresh: Vec<&SpendEvent> = Vec::with_capacity(events.len());
    if opts.write_logs {
        let mut insert = tx.prepare_cached(insert_sql())?;
        let mut owner = tx.prepare_cached(CALL_ID_BY_KEY_SQL)?;
        let mut meta = Vec::with_capacity(1024);
        for ev in events {
            let key = request_key(&ev.request_id);
            let owned = owner_of(&mut owner, key, &ev.request_id)?;
            let placed = match placement(ev, owned.as_ref().map(Option::as_deref)) {
                Placement::New => insert_row(&mut insert, ev, &ev.request_id, key, now, &mut meta)?,
                Placement::Duplicate => false,
                // Kept under the gateway's own call id, unless that is there already.
                Placement::Clash => {
                    let key = request_key(&ev.call_id);
                    owner_of(&mut owner, key, &ev.call_id)?.is_none()
                        && insert_row(&mut insert, ev, &ev.call_id, key, now, &mut meta)?
                }
            };
            if placed {
                fresh.push(ev);
            }
        }
    } else {
        // Within one batch, a repeated event counts once.
        let mut seen = std::collections::HashSet::new();
        fresh.extend(
            events
                .iter()
                .filter(|e| seen.insert((e.request_id.as_str(), e.call_id.as_str()))),
        );
    }

    let totals = Totals::of(&fresh);
    if !totals.daily.is_empty() {
        let mut up = tx.prepare_cached(DAILY_UPSERT_SQL)?;
        for (k, a) in &totals.daily {
            up.raw_bind_parameter(1, day_of(k.0 * DAY_MS))?;
            up.raw_bind_parameter(2, k.1)?;
            up.raw_bind_parameter(3, k.2)?;
            up.raw_bind_parameter(4, k.3)?;
            up.raw_bind_parameter(5, k.4)?;
            up.raw_bind_parameter(6, k.5)?;
            up.raw_bind_parameter(7, k.6)?;
            up.raw_bind_parameter(8, a.key_alias)?;
            up.raw_bind_parameter(9, a.model_group)?;
            up.raw_bind_parameter(10, a.provider)?;
            up.raw_bind_parameter(11, a.spend)?;
            up.raw_bind_parameter(12, a.prompt)?;
            up.raw_bind_parameter(13, a.completion)?;
            up.raw_bind_parameter(14, a.prompt + a.completion)?;
            up.raw_bind_parameter(15, a.cached)?;
            up.raw_bind_parameter(16, a.requests)?;
            up.raw_bind_parameter(17, a.ok)?;
            up.raw_bind_parameter(18, a.failed)?;
            up.raw_bind_parameter(19, now)?;
            up.raw_execute()?;
        }
    }
    for (sql, map) in totals.updates(opts.targets) {
        if map.is_empty() {
            continue;
        }
        let mut st = tx.prepare_cached(sql)?;
        for (id, spend) in map {
            st.raw_bind_parameter(1, *spend)?;
            st.raw_bind_parameter(2, *id)?;
            st.raw_execute()?;
        }
    }
    if opts.targets.end_users && !totals.end_users.is_empty() {
        let mut st = tx.prepare_cached(END_USER_UPSERT_SQL)?;
        for (id, spend) in &totals.end_users {
            st.raw_bind_parameter(1, *id)?;
            st.raw_bind_parameter(2, *spend)?;
            st.raw_bind_parameter(3, now)?;
            st.raw_execute()?;
        }
    }
    let applied = fresh.len();
    drop(totals);
    tx.commit()?;
    Ok(BatchResult {
        applied,
        duplicates: events.len() - applied,
    })
}

/// Who owns `id` (of key `key`): `None` when nobody, else the owning row's call id.
fn owner_of(
    st: &mut rusqlite::CachedStatement<'_>,
    key: i64,
    id: &str,
) -> Result<Option<Option<String>>, StoreError> {
    Ok(st
        .query_row(rusqlite::params![key, id], |r| {
            r.get::<_, Option<String>>(0)
        })
        .optional()?)
}

/// One row, under `id` (the event's request id, or its call id after a clash) of key `key`.
/// Returns whether a row was inserted.
fn insert_row(
    st: &mut rusqlite::CachedStatement<'_>,
    ev: &SpendEvent,
    id: &str,
    key: i64,
    now: i64,
    meta: &mut Vec<u8>,
) -> Result<bool, StoreError> {
    fn opt(s: &str) -> Option<&str> {
        Some(s).filter(|s| !s.is_empty())
    }
    fn opt2(s: &Option<String>) -> Option<&str> {
        s.as_deref().filter(|s| !s.is_empty())
    }
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    meta.clear();
    write_row_metadata(ev, meta);
    // Only JSON text was written: valid UTF-8.
    let meta = std::str::from_utf8(meta).unwrap_or("{}");
    st.raw_bind_parameter(1, id)?;
    st.raw_bind_parameter(2, ev.call_type.as_str())?;
    st.raw_bind_parameter(3, ev.api_key.as_str())?;
    st.raw_bind_parameter(4, opt2(&ev.key_alias))?;
    st.raw_bind_parameter(5, ev.spend)?;
    st.raw_bind_parameter(6, (ev.prompt_tokens + ev.completion_tokens) as i64)?;
    st.raw_bind_parameter(7, ev.prompt_tokens as i64)?;
    st.raw_bind_parameter(8, ev.completion_tokens as i64)?;
    st.raw_bind_parameter(9, ev.cached_tokens as i64)?;
    st.raw_bind_parameter(10, ev.cache_creation_tokens as i64)?;
    st.raw_bind_parameter(11, ev.reasoning_tokens as i64)?;
    st.raw_bind_parameter(12, ev.start_ms)?;
    st.raw_bind_parameter(13, ev.end_ms)?;
    st.raw_bind_parameter(14, ev.completion_start_ms)?;
    st.raw_bind_parameter(15, (ev.end_ms - ev.start_ms).max(0))?;
    st.raw_bind_parameter(16, ev.model.as_str())?;
    st.raw_bind_parameter(17, opt(&ev.model_id))?;
    st.raw_bind_parameter(18, opt(&ev.model_group))?;
    st.raw_bind_parameter(19, opt(&ev.provider))?;
    st.raw_bind_parameter(20, opt(&ev.api_base))?;
    st.raw_bind_parameter(21, opt2(&ev.user_id))?;
    st.raw_bind_parameter(22, meta)?;
    st.raw_bind_parameter(23, if ev.cache_hit { "True" } else { "False" })?;
    st.raw_bind_parameter(24, tags_text(&ev.tags).as_ref())?;
    st.raw_bind_parameter(25, opt2(&ev.team_id))?;
    st.raw_bind_parameter(26, opt2(&ev.end_user))?;
    st.raw_bind_parameter(27, opt2(&ev.requester_ip))?;
    st.raw_bind_parameter(28, json(&ev.messages))?;
    st.raw_bind_parameter(29, json(&ev.response))?;
    st.raw_bind_parameter(30, opt(&ev.call_id))?;
    st.raw_bind_parameter(31, ev.status.as_str())?;
    st.raw_bind_parameter(32, json(&ev.error))?;
    st.raw_bind_parameter(33, now)?;
    st.raw_bind_parameter(34, key)?;
    Ok(st.raw_execute()? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_of_url_skips_memory_databases() {
        assert_eq!(
            file_of_url("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(file_of_url("sqlite://t.db"), Some(PathBuf::from("t.db")));
        // Percent-decoded, as sqlx decodes it: both must open the same file.
        assert_eq!(
            file_of_url("sqlite:///data/my%20db.sqlite?mode=rwc"),
            Some(PathBuf::from("/data/my db.sqlite"))
        );
        assert_eq!(file_of_url("sqlite://a%2"), Some(PathBuf::from("a%2")));
        assert_eq!(file_of_url("sqlite::memory:"), None);
        assert_eq!(file_of_url("sqlite://file.db?mode=memory"), None);
        assert_eq!(file_of_url("postgres://h/db"), None);
    }

    #[test]
    fn the_insert_binds_every_column() {
        assert!(insert_sql().contains(", request_key) VALUES ($1, $2, "));
        assert!(insert_sql().ends_with(", $33, $34)"));
        assert_eq!(LOG_COLUMNS.len(), 33);
    }
}

/// `bench/spend-writer`: the writer's cost per row as the spend log grows. Not a test (it
/// asserts nothing and takes ~10 s in release): run by that script, with `--ignored`.
#[cfg(test)]
mod cost_per_row {
    use super::*;
    use crate::store::spend::SpendTargets;

    /// CPU time of the calling thread, user and kernel, in seconds.
    fn thread_cpu_s() -> f64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat")
            .expect("Linux with schedstats: /proc/thread-self/schedstat");
        let ns: f64 = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("schedstat starts with the time on CPU, in ns");
        ns / 1e9
    }

    /// An event as a production call writes it: an upstream `chatcmpl-` id (random), a key,
    /// a priced deployment, the client's address, no user, team or end user.
    fn event(rng: &mut u64, n: usize) -> SpendEvent {
        let mut next = || {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *rng
        };
        let start_ms = 1_764_900_000_000 + n as i64 / 20;
        SpendEvent {
            request_id: format!("chatcmpl-{:016x}{:013x}", next(), next() >> 12),
            call_id: format!("{:016x}{:016x}", next(), n),
            call_type: "acompletion".into(),
            api_key: format!("{:016x}", 0x88c3_e3b7_ab5c_3d7bu64).repeat(4),
            model: "gpt-4o".into(),
            model_group: "gpt-4o".into(),
            model_id: "3f1c9a".into(),
            provider: "openai".into(),
            api_base: "http://127.0.0.1:8080/v1".into(),
            prompt_tokens: 20,
            completion_tokens: 9,
            spend: 0.000_14,
            start_ms,
            end_ms: start_ms + 1,
            status: "success".into(),
            requester_ip: Some("127.0.0.1".into()),
            metadata: serde_json::json!({}),
            ..SpendEvent::default()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "a benchmark: bench/spend-writer"]
    async fn spend_writer_cost_per_row() {
        const BATCH: usize = 1000; // the writer's default batch size
        const REPORT: usize = 50_000;
        // Whole reports: the total is rounded up to a multiple of 50,000.
        let rows = std::env::var("TOLLGATE_BENCH_SPEND_ROWS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(200_000)
            .max(1)
            .next_multiple_of(REPORT);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/spend.db?mode=rwc", dir.path().display());
        let store = crate::store::Store::open(&url, 2).await.unwrap();
        let db = store.spend_db.clone().expect("a file database");
        let opts = BatchOptions {
            write_logs: true,
            targets: SpendTargets {
                keys: true,
                teams: true,
                users: true,
                end_users: true,
            },
        };
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let (mut cpu, mut wall) = (0.0, std::time::Instant::now());
        // The slowest batch: a commit that also checkpoints the WAL stalls the writer, and the
        // backlog meanwhile is what the gateway holds in memory.
        let mut slowest = std::time::Duration::ZERO;
        println!("rows in the log   writer CPU per row   wall per row   slowest batch");
        for b in 0..rows.div_ceil(BATCH) {
            let events: Vec<SpendEvent> =
                (0..BATCH).map(|i| event(&mut rng, b * BATCH + i)).collect();
            let db = db.clone();
            // On a blocking thread, as the writer runs it: its CPU time is the batch's.
            let started = std::time::Instant::now();
            cpu += tokio::task::spawn_blocking(move || {
                let t = thread_cpu_s();
                db.write(&events, opts).unwrap();
                thread_cpu_s() - t
            })
            .await
            .unwrap();
            slowest = slowest.max(started.elapsed());
            let done = (b + 1) * BATCH;
            if done.is_multiple_of(REPORT) {
                println!(
                    "{done:>15}   {:>15.1} µs   {:>9.1} µs   {:>10.1} ms",
                    cpu * 1e6 / REPORT as f64,
                    wall.elapsed().as_secs_f64() * 1e6 / REPORT as f64,
                    slowest.as_secs_f64() * 1e3
                );
                (cpu, wall) = (0.0, std::time::Instant::now());
                slowest = std::time::Duration::ZERO;
            }
        }
    }
}
