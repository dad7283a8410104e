//! What a route's mirroring may spend: `shadow_max_rps` (a token bucket, one second of
//! burst) and `shadow_max_usd_per_hour` (the mirrors' cost over the last hour of the cost
//! windows, re-read at most once a second). Above either cap a mirror is dropped with
//! reason `cap`; the time of the last such drop says whether the cap is binding.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

/// A cap that dropped a mirror within this long is "binding" in the status.
pub const BINDING_FOR_MS: i64 = 60_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Option<Instant>,
}

#[derive(Debug)]
pub struct Caps {
    bucket: Mutex<Bucket>,
    /// Whether the last hour's mirrors cost more than the cap, and when that was read.
    over_budget: AtomicBool,
    budget_read_at: AtomicU64,
    /// Unix milliseconds of the last mirror a cap dropped; 0 never.
    last_dropped: AtomicI64,
    dropped: AtomicU64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            bucket: Mutex::new(Bucket { tokens: 0.0, refilled: None }),
            over_budget: AtomicBool::new(false),
            budget_read_at: AtomicU64::new(0),
            last_dropped: AtomicI64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl Caps {
    /// Takes one mirror's token from a bucket refilled at `rps` per second (at most one
    /// second's worth held); `false` when empty. A short lock, no await.
    pub fn take_rate(&self, rps: f64, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let capacity = rps.max(1.0);
        let elapsed = bucket.refilled.map_or(capacity / rps, |at| now.saturating_duration_since(at).as_secs_f64());
        bucket.tokens = (bucket.tokens + elapsed * rps).min(capacity);
        bucket.refilled = Some(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the hour's spend is under the cap: `spent` (USD over the last hour) is
    /// asked for only when the cached answer is older than a second at `now_s`.
    pub fn within_budget(&self, usd_per_hour: f64, now_s: u64, spent: impl FnOnce() -> f64) -> bool {
        if self.budget_read_at.swap(now_s, Relaxed) != now_s {
            self.over_budget.store(spent() >= usd_per_hour, Relaxed);
        }
        !self.over_budget.load(Relaxed)
    }

    pub fn record_drop(&self, now_ms: i64) {
        self.last_dropped.store(now_ms, Relaxed);
        self.dropped.fetch_add(1, Relaxed);
    }

    /// A cap dropped a mirror within the last minute.
    pub fn binding(&self, now_ms: i64) -> bool {
        let last = self.last_dropped.load(Relaxed);
        last > 0 && now_ms - last <= BINDING_FOR_MS
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_rate_cap_allows_a_second_of_burst_then_its_rate() {
        let caps = Caps::default();
        let start = Instant::now();
        let allowed = (0..20).filter(|_| caps.take_rate(5.0, start)).count();
        assert_eq!(allowed, 5);
        assert!(!caps.take_rate(5.0, start + Duration::from_millis(100)));
        assert!(caps.take_rate(5.0, start + Duration::from_millis(300)));
    }

    #[test]
    fn the_budget_is_read_at_most_once_a_second_and_binding_lasts_a_minute() {
        let caps = Caps::default();
        assert!(caps.within_budget(1.0, 10, || 0.5));
        assert!(caps.within_budget(1.0, 10, || unreachable!("read twice in one second")));
        assert!(!caps.within_budget(1.0, 11, || 1.5));
        assert!(!caps.binding(1_000));
        caps.record_drop(1_000);
        assert!(caps.binding(1_000 + BINDING_FOR_MS) && !caps.binding(1_001 + BINDING_FOR_MS));
        assert_eq!(caps.dropped(), 1);
    }
}
