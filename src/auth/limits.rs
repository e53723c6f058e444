//! Shared counters for budgets and rate limits: in memory for one instance, in Redis when
//! several instances must enforce one budget. Every admission is one atomic check-and-add over
//! all the counters it touches (one Redis round trip).

use parking_lot::Mutex;

use super::redis::RedisCounters;

/// Reservations and settlements add and subtract floats: a counter within this of its limit
/// has reached it.
pub const EPSILON: f64 = 1e-9;

/// One counter an admission checks and moves.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub key: String,
    /// Added when every slot is under its limit.
    pub amount: f64,
    /// Refuse when the counter is already at or above this.
    pub limit: Option<f64>,
    /// When the counter may be forgotten (unix ms; 0 = keep).
    pub expire_at: i64,
}

/// Which slot refused, and its value then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    pub index: usize,
    pub current: f64,
}

pub enum Counters {
    Local(LocalCounters),
    Redis(Box<RedisCounters>),
}

impl Counters {
    pub fn local() -> Self {
        Counters::Local(LocalCounters::default())
    }

    /// Checks every slot against its limit and, if none refuses, adds every amount. Returns
    /// the values before the add.
    pub async fn check_add(&self, slots: &[Slot], now_ms: i64) -> Result<Vec<f64>, Refused> {
        match self {
            Counters::Local(c) => c.check_add(slots, now_ms),
            Counters::Redis(r) => r.check_add(slots).await,
        }
    }

    /// Moves counters by signed amounts (settling, releasing).
    pub async fn add(&self, deltas: &[(String, f64)]) {
        match self {
            Counters::Local(c) => c.add(deltas),
            Counters::Redis(r) => r.add(deltas).await,
        }
    }

    /// Raises a counter to at least `value` (spend loaded from the database).
    pub async fn seed_max(&self, key: &str, value: f64, expire_at: i64) {
        match self {
            Counters::Local(c) => c.seed_max(key, value, expire_at),
            Counters::Redis(r) => r.seed_max(key, value, expire_at).await,
        }
    }

    /// Sets a counter (an admin changed the spend).
    pub async fn set(&self, key: &str, value: f64, expire_at: i64) {
        match self {
            Counters::Local(c) => c.set(key, value, expire_at),
            Counters::Redis(r) => r.set(key, value, expire_at).await,
        }
    }

    pub async fn get(&self, key: &str) -> f64 {
        match self {
            Counters::Local(c) => c.get(key),
            Counters::Redis(r) => r.get(key).await,
        }
    }

    /// Forgets expired counters (in memory; Redis expires its own).
    pub fn prune(&self, now_ms: i64) {
        if let Counters::Local(c) = self {
            c.prune(now_ms);
        }
    }

    pub fn is_redis(&self) -> bool {
        matches!(self, Counters::Redis(_))
    }
}

/// Counters of one process.
#[derive(Default)]
pub struct LocalCounters {
    /// std's SipHash: end users' counters are keyed by ids clients choose.
    map: Mutex<std::collections::HashMap<String, (f64, i64)>>,
}

impl LocalCounters {
    fn check_add(&self, slots: &[Slot], now_ms: i64) -> Result<Vec<f64>, Refused> {
        let mut map = self.map.lock();
        let mut before = Vec::with_capacity(slots.len());
        for (index, s) in slots.iter().enumerate() {
            let current = match map.get(&s.key) {
                Some((v, exp)) if *exp == 0 || *exp > now_ms => *v,
                _ => 0.0,
            };
            if let Some(limit) = s.limit
                && current + EPSILON >= limit
            {
                return Err(Refused { index, current });
            }
            before.push(current);
        }
        for (s, b) in slots.iter().zip(&before) {
            map.insert(s.key.clone(), (b + s.amount, s.expire_at));
        }
        Ok(before)
    }

    pub fn add(&self, deltas: &[(String, f64)]) {
        let mut map = self.map.lock();
        for (k, d) in deltas {
            if let Some(e) = map.get_mut(k) {
                e.0 += d;
            }
        }
    }

    fn seed_max(&self, key: &str, value: f64, expire_at: i64) {
        let mut map = self.map.lock();
        let e = map.entry(key.to_owned()).or_insert((0.0, expire_at));
        if value > e.0 {
            e.0 = value;
        }
    }

    fn set(&self, key: &str, value: f64, expire_at: i64) {
        self.map.lock().insert(key.to_owned(), (value, expire_at));
    }

    fn get(&self, key: &str) -> f64 {
        self.map.lock().get(key).map(|e| e.0).unwrap_or(0.0)
    }

    fn prune(&self, now_ms: i64) {
        self.map
            .lock()
            .retain(|_, (_, exp)| *exp == 0 || *exp > now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(key: &str, amount: f64, limit: Option<f64>) -> Slot {
        Slot {
            key: key.into(),
            amount,
            limit,
            expire_at: 0,
        }
    }

    #[tokio::test]
    async fn refuses_at_the_limit_and_adds_nothing_then() {
        let c = Counters::local();
        assert_eq!(
            c.check_add(&[slot("a", 1.0, Some(2.0)), slot("b", 5.0, None)], 0)
                .await,
            Ok(vec![0.0, 0.0])
        );
        assert_eq!(
            c.check_add(&[slot("a", 1.0, Some(2.0))], 0).await,
            Ok(vec![1.0])
        );
        let r = c
            .check_add(&[slot("b", 1.0, None), slot("a", 1.0, Some(2.0))], 0)
            .await;
        assert_eq!(
            r,
            Err(Refused {
                index: 1,
                current: 2.0
            })
        );
        assert_eq!(c.get("b").await, 5.0, "a refused admission adds nothing");
        c.add(&[("a".into(), -1.5)]).await;
        assert_eq!(c.get("a").await, 0.5);
        c.seed_max("a", 0.2, 0).await;
        assert_eq!(c.get("a").await, 0.5);
        c.seed_max("a", 3.0, 0).await;
        assert_eq!(c.get("a").await, 3.0);
    }

    #[tokio::test]
    async fn expired_windows_start_again() {
        let c = Counters::local();
        let s = Slot {
            key: "w".into(),
            amount: 1.0,
            limit: Some(1.0),
            expire_at: 100,
        };
        assert!(c.check_add(std::slice::from_ref(&s), 50).await.is_ok());
        assert!(c.check_add(std::slice::from_ref(&s), 60).await.is_err());
        assert!(c.check_add(std::slice::from_ref(&s), 100).await.is_ok());
    }
}
