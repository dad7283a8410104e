//! The circuit breaker of one upstream: it opens after consecutive failures or when the
//! error ratio over a window is too high, keeps traffic away for a cool-down, then lets
//! single probe requests through (half-open) and closes when one succeeds. Lock-free:
//! every field is an atomic, and the state changes are compare-and-swaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use cutover_config::BreakerPolicy;
use tokio::time::Instant;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Whether a request may go to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The single request that tests a recovering upstream.
    Probe,
    Rejected,
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    /// The reference point for the millisecond timestamps below.
    epoch: Instant,
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    opened_at_ms: AtomicU64,
    probe_in_flight: AtomicBool,
    /// Outcomes in the current window: `window_index`, requests, failures.
    window_index: AtomicU64,
    window_requests: AtomicU32,
    window_failures: AtomicU32,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy,
            epoch: Instant::now(),
            state: AtomicU8::new(CLOSED),
            consecutive_failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(0),
            probe_in_flight: AtomicBool::new(false),
            window_index: AtomicU64::new(0),
            window_requests: AtomicU32::new(0),
            window_failures: AtomicU32::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn is_open(&self) -> bool {
        self.state.load(Relaxed) != CLOSED
    }

    pub fn admit(&self) -> Admission {
        match self.state.load(Relaxed) {
            CLOSED => Admission::Allowed,
            OPEN => {
                let cooled = self.now_ms().saturating_sub(self.opened_at_ms.load(Relaxed))
                    >= self.policy.cooldown.as_millis() as u64;
                if cooled && self.state.compare_exchange(OPEN, HALF_OPEN, Relaxed, Relaxed).is_ok() {
                    self.probe_in_flight.store(true, Relaxed);
                    Admission::Probe
                } else {
                    Admission::Rejected
                }
            }
            _ if !self.probe_in_flight.swap(true, Relaxed) => Admission::Probe,
            _ => Admission::Rejected,
        }
    }

    pub fn on_success(&self, admission: Admission) {
        self.consecutive_failures.store(0, Relaxed);
        self.count(false);
        if admission == Admission::Probe {
            self.probe_in_flight.store(false, Relaxed);
            if self.state.swap(CLOSED, Relaxed) != CLOSED {
                tracing::info!("circuit breaker closed: the probe succeeded");
            }
        }
    }

    pub fn on_failure(&self, admission: Admission) {
        let in_a_row = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        let (requests, failures) = self.count(true);
        if admission == Admission::Probe {
            self.open();
            self.probe_in_flight.store(false, Relaxed);
            return;
        }
        let ratio_exceeded =
            requests >= self.policy.min_requests && f64::from(failures) >= self.policy.error_rate * f64::from(requests);
        if (in_a_row >= self.policy.consecutive_failures || ratio_exceeded)
            && self.state.compare_exchange(CLOSED, OPEN, Relaxed, Relaxed).is_ok()
        {
            self.opened_at_ms.store(self.now_ms(), Relaxed);
            tracing::warn!(in_a_row, failures, requests, "circuit breaker opened");
        }
    }

    /// Gives up a probe that ended without a verdict (the client went away): the next
    /// request probes instead.
    fn release_probe(&self) {
        self.probe_in_flight.store(false, Relaxed);
    }

    /// (Re)opens for a full cool-down, as after a failed probe.
    fn open(&self) {
        self.opened_at_ms.store(self.now_ms(), Relaxed);
        self.state.store(OPEN, Relaxed);
    }

    /// Counts an outcome in the current window; returns the window's (requests, failures).
    fn count(&self, failed: bool) -> (u32, u32) {
        let window = self.now_ms() / (self.policy.window.as_millis() as u64).max(1);
        let current = self.window_index.load(Relaxed);
        if window != current && self.window_index.compare_exchange(current, window, Relaxed, Relaxed).is_ok() {
            self.window_requests.store(0, Relaxed);
            self.window_failures.store(0, Relaxed);
        }
        let requests = self.window_requests.fetch_add(1, Relaxed) + 1;
        let failures = self.window_failures.load(Relaxed) + u32::from(failed);
        if failed {
            self.window_failures.fetch_add(1, Relaxed);
        }
        (requests, failures)
    }
}

/// The verdict on one committed answer, given when its body ends: a stream that breaks
/// after its first byte counts against the upstream as surely as a 503 does.
pub struct HealthReport {
    breaker: Arc<Breaker>,
    admission: Admission,
}

impl HealthReport {
    pub fn new(breaker: Arc<Breaker>, admission: Admission) -> HealthReport {
        HealthReport { breaker, admission }
    }

    pub fn succeeded(self) {
        self.breaker.on_success(self.admission);
    }

    pub fn failed(self) {
        self.breaker.on_failure(self.admission);
    }
}

impl Drop for HealthReport {
    fn drop(&mut self) {
        // Reached only without a verdict: `succeeded` and `failed` drop after reporting,
        // when a second release is harmless.
        if self.admission == Admission::Probe {
            self.breaker.release_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerPolicy {
            consecutive_failures: 3,
            error_rate: 0.5,
            min_requests: 10,
            window: Duration::from_secs(30),
            cooldown: Duration::from_secs(10),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_after_the_cooldown() {
        let breaker = breaker();
        for _ in 0..3 {
            assert_eq!(breaker.admit(), Admission::Allowed);
            breaker.on_failure(Admission::Allowed);
        }
        assert!(breaker.is_open());
        assert_eq!(breaker.admit(), Admission::Rejected);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.admit(), Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Rejected, "one probe at a time");
        breaker.on_failure(Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Rejected, "a failed probe reopens for a full cooldown");
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = breaker.admit();
        assert_eq!(probe, Admission::Probe);
        breaker.on_success(probe);
        assert!(!breaker.is_open());
        assert_eq!(breaker.admit(), Admission::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_the_error_ratio_of_the_window() {
        let breaker = breaker();
        for round in 0..10 {
            if round % 2 == 1 { breaker.on_failure(Admission::Allowed) } else { breaker.on_success(Admission::Allowed) }
        }
        assert!(breaker.is_open(), "5 failures in 10 requests reach 50%");
    }

    #[tokio::test(start_paused = true)]
    async fn successes_reset_the_consecutive_count() {
        let breaker = breaker();
        for _ in 0..4 {
            breaker.on_failure(Admission::Allowed);
            breaker.on_failure(Admission::Allowed);
            breaker.on_success(Admission::Allowed);
            tokio::time::advance(Duration::from_secs(31)).await;
        }
        assert!(!breaker.is_open());
    }
}
