//! Spend-log retention: `general_settings.maximum_spend_logs_retention_period` ("30d", "12h",
//! seconds…) removes older rows every `maximum_spend_logs_retention_interval` (default one
//! day), in bounded delete batches so no statement holds the table for long. Daily rollups are
//! kept.

use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::store::Store;

/// Rows per DELETE statement.
pub const DELETE_BATCH: i64 = 1_000;

/// A LiteLLM duration: a number of seconds, or `N` followed by `s`, `m`, `h`, `d`, `w` or `mo`.
pub fn parse_duration(v: &Value) -> Option<Duration> {
    let s = match v {
        Value::Number(n) => return n.as_f64().filter(|f| *f > 0.0).map(Duration::from_secs_f64),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        "mo" => 30.0 * 86_400.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(n * secs)).filter(|d| !d.is_zero())
}

/// Starts the retention task when a period is configured.
pub fn start(store: Store, cfg: &Config) -> Option<JoinHandle<()>> {
    let g = &cfg.general_settings;
    let period = match g.get("maximum_spend_logs_retention_period") {
        None | Some(Value::Null) => return None,
        Some(v) => match parse_duration(v) {
            Some(d) => d,
            None => {
                tracing::warn!(
                    "general_settings.maximum_spend_logs_retention_period: expected e.g. \"30d\"; retention is off"
                );
                return None;
            }
        },
    };
    let every = g
        .get("maximum_spend_logs_retention_interval")
        .and_then(parse_duration)
        .unwrap_or(Duration::from_secs(86_400));
    Some(tokio::spawn(async move {
        // First pass soon after start, then on the interval.
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1).min(every),
            every,
        );
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_millis();
            match run_once(&store, now, period).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "spend logs retention: deleted old rows"),
                Err(e) => tracing::warn!("spend logs retention failed (will retry): {e}"),
            }
        }
    }))
}

/// Deletes rows older than `now_ms - period` in bounded batches; returns how many went.
pub async fn run_once(
    store: &Store,
    now_ms: i64,
    period: Duration,
) -> Result<u64, crate::store::StoreError> {
    let cutoff = now_ms - period.as_millis() as i64;
    let mut total = 0;
    loop {
        let n = store.delete_spend_logs_before(cutoff, DELETE_BATCH).await?;
        total += n;
        if n < DELETE_BATCH as u64 {
            return Ok(total);
        }
        // Let other writers in between batches.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::spend::BatchOptions;
    use crate::store::spend::tests::{event, test_store};

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration(&"30d".into()),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_duration(&"12h".into()),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(parse_duration(&60.into()), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_duration(&"1mo".into()),
            Some(Duration::from_secs(2_592_000))
        );
        assert_eq!(parse_duration(&"soon".into()), None);
    }

    #[tokio::test]
    async fn deletes_only_rows_older_than_the_period() {
        let Some((store, _d)) = test_store(false).await else {
            return;
        };
        let day = 86_400_000;
        let now = 100 * day;
        let evs: Vec<_> = (0..2_500)
            .map(|i| event(&format!("old{i}"), "k", 0.0, now - 40 * day + i))
            .chain((0..10).map(|i| event(&format!("new{i}"), "k", 0.0, now - day + i)))
            .collect();
        let opts = BatchOptions {
            write_logs: true,
            targets: store.spend_targets().await.unwrap(),
        };
        store.write_spend_batch(&evs, opts).await.unwrap();
        let n = run_once(&store, now, Duration::from_secs(30 * 86_400))
            .await
            .unwrap();
        assert_eq!(n, 2_500);
        let left = store.count_spend_logs(&Default::default()).await.unwrap();
        assert_eq!(left, 10);
    }
}
