//! Budget and rate-limit counters in Redis, shared by every instance. Each admission runs one
//! Lua script that checks all its counters and adds to them atomically.
//!
//! If Redis cannot be reached, admission is let through (logged) rather than refusing all
//! traffic: the database-backed spend still catches up on the next cache refresh.

use redis::Script;
use redis::aio::ConnectionManager;

use super::limits::{Refused, Slot};

/// KEYS = counters; ARGV = n amounts, n limits (-1 = none), n expiry times (0 = none).
const CHECK_ADD: &str = r#"
local n = #KEYS
local cur = {}
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  cur[i] = c
  local lim = tonumber(ARGV[n + i])
  if lim >= 0 and c + 1e-9 >= lim then
    return {i, tostring(c)}
  end
end
local out = {0}
for i = 1, n do
  if tonumber(ARGV[i]) ~= 0 then
    redis.call('INCRBYFLOAT', KEYS[i], ARGV[i])
  end
  local exp = tonumber(ARGV[2 * n + i])
  if exp > 0 then
    redis.call('PEXPIREAT', KEYS[i], exp)
  end
  out[i + 1] = tostring(cur[i])
end
return out
"#;

const SEED_MAX: &str = r#"
local c = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) > c then
  redis.call('SET', KEYS[1], ARGV[1])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
"#;

pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
    check_add: Script,
    seed_max: Script,
}

impl RedisCounters {
    /// Connects (and fails if Redis does not answer a PING).
    pub async fn connect(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let mut conn = ConnectionManager::new(client).await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(RedisCounters {
            conn,
            prefix: prefix.to_owned(),
            check_add: Script::new(CHECK_ADD),
            seed_max: Script::new(SEED_MAX),
        })
    }

    fn k(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    pub async fn check_add(&self, slots: &[Slot]) -> Result<Vec<f64>, Refused> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.check_add.prepare_invoke();
        for s in slots {
            inv.key(self.k(&s.key));
        }
        for s in slots {
            inv.arg(s.amount.to_string());
        }
        for s in slots {
            inv.arg(
                s.limit
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-1".into()),
            );
        }
        for s in slots {
            inv.arg(s.expire_at);
        }
        let mut conn = self.conn.clone();
        let out: Vec<String> = match inv.invoke_async(&mut conn).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("redis counters unavailable, admitting without them: {e}");
                return Ok(vec![0.0; slots.len()]);
            }
        };
        let num = |s: &str| s.parse::<f64>().unwrap_or(0.0);
        match out.first().map(|s| s.parse::<usize>().unwrap_or(0)) {
            Some(i) if i > 0 => Err(Refused {
                index: i - 1,
                current: out.get(1).map(|s| num(s)).unwrap_or(0.0),
            }),
            _ => Ok(out.iter().skip(1).map(|s| num(s)).collect()),
        }
    }

    pub async fn add(&self, deltas: &[(String, f64)]) {
        let mut pipe = redis::pipe();
        let mut any = false;
        for (k, d) in deltas {
            if *d != 0.0 {
                pipe.cmd("INCRBYFLOAT")
                    .arg(self.k(k))
                    .arg(d.to_string())
                    .ignore();
                any = true;
            }
        }
        if !any {
            return;
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::error!("redis counters: settle failed: {e}");
        }
    }

    pub async fn seed_max(&self, key: &str, value: f64, expire_at: i64) {
        let mut conn = self.conn.clone();
        let r: redis::RedisResult<i64> = self
            .seed_max
            .key(self.k(key))
            .arg(value.to_string())
            .arg(expire_at)
            .invoke_async(&mut conn)
            .await;
        if let Err(e) = r {
            tracing::error!("redis counters: seeding {key} failed: {e}");
        }
    }

    pub async fn set(&self, key: &str, value: f64, expire_at: i64) {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.k(key))
            .arg(value.to_string())
            .ignore();
        if expire_at > 0 {
            pipe.cmd("PEXPIREAT")
                .arg(self.k(key))
                .arg(expire_at)
                .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::error!("redis counters: set {key} failed: {e}");
        }
    }

    pub async fn get(&self, key: &str) -> f64 {
        let mut conn = self.conn.clone();
        let v: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(self.k(key))
            .query_async(&mut conn)
            .await;
        v.ok().flatten().and_then(|s| s.parse().ok()).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn counters() -> Option<RedisCounters> {
        let Ok(url) = std::env::var("TOLLGATE_TEST_REDIS_URL") else {
            println!("TOLLGATE_TEST_REDIS_URL not set: skipping the Redis counter test");
            return None;
        };
        let prefix = format!("tollgate-test-{}", uuid::Uuid::new_v4());
        Some(
            RedisCounters::connect(&url, &prefix)
                .await
                .expect("TOLLGATE_TEST_REDIS_URL is set but Redis is unreachable"),
        )
    }

    #[tokio::test]
    async fn redis_check_add_is_atomic_and_refuses_at_limits() {
        let Some(c) = counters().await else { return };
        let s = |k: &str, a: f64, l: Option<f64>| Slot {
            key: k.into(),
            amount: a,
            limit: l,
            expire_at: 0,
        };
        assert_eq!(
            c.check_add(&[s("a", 0.5, Some(1.0)), s("b", 1.0, None)])
                .await,
            Ok(vec![0.0, 0.0])
        );
        assert_eq!(c.check_add(&[s("a", 0.5, Some(1.0))]).await, Ok(vec![0.5]));
        let r = c
            .check_add(&[s("b", 1.0, None), s("a", 0.5, Some(1.0))])
            .await;
        assert_eq!(
            r,
            Err(Refused {
                index: 1,
                current: 1.0
            })
        );
        assert_eq!(c.get("b").await, 1.0);
        c.add(&[("a".into(), -0.25)]).await;
        assert_eq!(c.get("a").await, 0.75);
        c.seed_max("a", 0.5, 0).await;
        assert_eq!(c.get("a").await, 0.75);
        c.seed_max("a", 2.0, 0).await;
        assert_eq!(c.get("a").await, 2.0);
        c.set("a", 0.0, 0).await;
        assert_eq!(c.get("a").await, 0.0);
        // 50 concurrent admissions against a limit of 10 units: exactly 10 pass.
        let c = std::sync::Arc::new(c);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.check_add(&[Slot {
                    key: "p".into(),
                    amount: 1.0,
                    limit: Some(10.0),
                    expire_at: 0,
                }])
                .await
                .is_ok()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.unwrap() as usize;
        }
        assert_eq!(ok, 10);
    }
}
