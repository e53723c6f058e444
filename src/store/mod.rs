//! Persistent storage: embedded SQLite by default, PostgreSQL when `DATABASE_URL` is set.
//!
//! **Architecture Invariant:** only this module speaks SQL. The same migrations and queries run
//! on both backends (except migration 4, SQLite's alone, and what depends on it: see
//! `spend::MIGRATION_4_SQLITE`): SQL is written to the common subset (`$1` placeholders,
//! `ON CONFLICT`, `BIGINT` unix-millisecond timestamps, `DOUBLE PRECISION` money, JSON kept as
//! `TEXT`).
//!
//! A statement that binds a value which may be NULL runs with `.persistent(false)`: through
//! the `Any` driver a NULL is prepared as an untyped parameter, and PostgreSQL then rejects a
//! later non-NULL value on that cached statement ("incorrect binary data format").

pub mod budgets;
pub mod end_users;
pub mod import_litellm;
pub mod keys;
mod m001_identity;
pub mod rows;
pub mod teams;
pub mod users;

pub mod spend;
pub mod spend_sqlite;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// From the SQLite spend connection (`spend_sqlite`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("unsupported database URL \"{0}\": use postgres://… or sqlite://…")]
    BadUrl(String),
    #[error("{0}")]
    Invalid(String),
}

/// A schema change, in both dialects. Applied once, in order, recorded in `tollgate_migrations`.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Every migration, oldest first. New ones are appended, never edited once released.
pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys, teams, users, end users, budgets",
        sqlite: m001_identity::SQL,
        postgres: m001_identity::SQL,
    },
    Migration {
        version: 2,
        name: "spend_logs",
        sqlite: spend::MIGRATION_SQL,
        postgres: spend::MIGRATION_SQL,
    },
    Migration {
        version: 3,
        name: "spend_logs: drop the unused call id index; user and end-user indexes partial",
        sqlite: spend::MIGRATION_3_SQL,
        postgres: spend::MIGRATION_3_SQL,
    },
    Migration {
        version: 4,
        name: "spend_logs on SQLite: request ids indexed by a 32-bit key, not a primary key",
        sqlite: spend::MIGRATION_4_SQLITE,
        postgres: "",
    },
];

#[derive(Clone, Debug)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite on a file: the spend writer's own connection (`spend_sqlite`).
    pub(crate) spend_db: Option<std::sync::Arc<spend_sqlite::SpendDb>>,
}

/// Run by every SQLite connection of the store, after WAL mode and the busy timeout.
///
/// `wal_autocheckpoint`: a checkpoint copies each page of the log back into the database once,
/// however many transactions rewrote it since the last. At SQLite's default (1,000 pages) a
/// sustained load checkpointed after almost every spend batch, since a batch of 1,000 rows
/// dirtied that many pages of the random `request_id` index (its text; its 32-bit key since
/// migration 4, a smaller index); at 10,000 pages (a log of up to ~40 MB on disk, no memory)
/// the writer's CPU per row fell by about a sixth with 50 k rows in the log and 30 % with
/// 200 k (`bench/spend-writer`). With the key index, 4,000 pages cost the same per row and
/// halve the longest batch, the one whose commit also checkpoints (45-70 → 26-34 ms with up to
/// 300 k rows): under load the backlog waiting meanwhile is what the gateway holds in memory.
/// 2,000 cost more per row. The same value on every connection, so that an admin write on the
/// pool does not checkpoint at the smaller default meanwhile.
pub(crate) const SQLITE_PRAGMAS: &str =
    "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=4000;";

impl Store {
    /// Connects and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::BadUrl(redact(url)));
        };
        let max = match backend {
            // One writer at a time is what SQLite allows; readers use WAL.
            Backend::Sqlite => max_connections.clamp(1, 4),
            Backend::Postgres => max_connections.max(1),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;")
                            .await?;
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let spend_db = match backend {
            Backend::Sqlite => {
                spend_sqlite::file_of_url(url).map(|p| spend_sqlite::SpendDb::new(&p))
            }
            Backend::Postgres => None,
        };
        let store = Store {
            pool,
            backend,
            spend_db,
        };
        // Migration 4 on a file runs on the writer's connection (see `migrate_to_request_keys`):
        // everything before it first, so that it always finds the rows to copy.
        store.migrate_through(3).await?;
        if let Some(db) = store.spend_db.clone() {
            let started = std::time::Instant::now();
            let copied = tokio::task::spawn_blocking(move || db.migrate_to_request_keys())
                .await
                .map_err(|e| StoreError::Invalid(format!("migration task failed: {e}")))??;
            if let Some(rows) = copied {
                tracing::info!(
                    version = 4,
                    rows,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "applied migration: spend logs rebuilt with request keys"
                );
            }
        }
        store.migrate_through(i64::MAX).await?;
        Ok(store)
    }

    /// The SQLite URL for a file, created if missing.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    /// Applies the pending migrations up to `last` (a version), in order.
    async fn migrate_through(&self, last: i64) -> Result<(), StoreError> {
        self.pool
            .execute(
                "CREATE TABLE IF NOT EXISTS tollgate_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await?;
        for m in MIGRATIONS.iter().take_while(|m| m.version <= last) {
            let mut tx = self.pool.begin().await?;
            if self.backend == Backend::Postgres {
                // Several instances starting together: one migrates, the others wait.
                sqlx::query("SELECT pg_advisory_xact_lock(727274)")
                    .execute(&mut *tx)
                    .await?;
            }
            let done: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM tollgate_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                tx.commit().await?;
                continue;
            }
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                tx.execute(stmt).await?;
            }
            sqlx::query(
                "INSERT INTO tollgate_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        Ok(())
    }

    /// Whether the database answers (`/health/readiness`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// A database URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }

    #[tokio::test]
    async fn sqlite_opens_and_dollar_placeholders_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")), 2)
            .await
            .unwrap();
        let (v,): (i64,) = sqlx::query_as("SELECT $1 + $2")
            .bind(2i64)
            .bind(3i64)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(v, 5);
    }
}

#[cfg(test)]
mod identity_tests;
