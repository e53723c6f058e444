//! Databases for end-to-end tests: a fresh PostgreSQL schema per test when
//! `TOLLGATE_TEST_DATABASE_URL` is set, and Redis from `TOLLGATE_TEST_REDIS_URL`.

#![allow(dead_code)]

/// A `DATABASE_URL` pointing at a new, empty schema; None (with a note) when PG tests are off.
pub async fn fresh_pg(test: &str) -> Option<String> {
    let Ok(base) = std::env::var("TOLLGATE_TEST_DATABASE_URL") else {
        println!("TOLLGATE_TEST_DATABASE_URL not set: skipping the PostgreSQL part of {test}");
        return None;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&base)
        .await
        .expect("TOLLGATE_TEST_DATABASE_URL is set but PostgreSQL is unreachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("TOLLGATE_TEST_REDIS_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            println!("TOLLGATE_TEST_REDIS_URL not set: skipping the Redis part of {test}");
            None
        }
    }
}
