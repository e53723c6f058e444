//! Per-deployment health: failures in the current minute, cooldown, request rate, latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug)]
pub struct Health {
    inner: Mutex<Window>,
    latency_ewma_us: AtomicU64,
}

#[derive(Debug)]
struct Window {
    minute_start: Instant,
    fails: u32,
    requests: u64,
    cooling_until: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            inner: Mutex::new(Window {
                minute_start: Instant::now(),
                fails: 0,
                requests: 0,
                cooling_until: None,
            }),
            latency_ewma_us: AtomicU64::new(0),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);

impl Window {
    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.minute_start) >= MINUTE {
            self.minute_start = now;
            self.fails = 0;
            self.requests = 0;
        }
    }
}

impl Health {
    pub fn cooling(&self) -> bool {
        let w = self.inner.lock();
        matches!(w.cooling_until, Some(t) if Instant::now() < t)
    }

    /// Whether another request fits the deployment's `rpm` in the current minute.
    pub fn under_rpm(&self, rpm: Option<u64>) -> bool {
        let Some(limit) = rpm else { return true };
        let mut w = self.inner.lock();
        w.roll(Instant::now());
        w.requests < limit
    }

    pub fn note_request(&self) {
        let mut w = self.inner.lock();
        w.roll(Instant::now());
        w.requests += 1;
    }

    pub fn note_success(&self) {}

    /// Counts a failure; cools the deployment down when failures pass `allowed_fails` in the
    /// minute, or at once on a 429 (LiteLLM's rule for multi-deployment groups).
    pub fn note_failure(&self, status: u16, allowed_fails: u32, cooldown: Duration) {
        let cools = matches!(status, 401 | 404 | 408 | 429) || status >= 500;
        if !cools {
            return;
        }
        let now = Instant::now();
        let mut w = self.inner.lock();
        w.roll(now);
        w.fails += 1;
        if status == 429 || w.fails > allowed_fails {
            w.cooling_until = Some(now + cooldown);
        }
    }

    pub fn state(&self) -> u8 {
        if self.cooling() {
            2
        } else if self.inner.lock().fails > 0 {
            1
        } else {
            0
        }
    }

    pub fn record_latency(&self, d: Duration) {
        let us = d.as_micros() as u64;
        let old = self.latency_ewma_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        self.latency_ewma_us.store(new, Ordering::Relaxed);
    }

    pub fn latency_ewma_us(&self) -> u64 {
        self.latency_ewma_us.load(Ordering::Relaxed)
    }
}
