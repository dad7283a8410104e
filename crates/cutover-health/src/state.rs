//! One upstream's active health: the verdict the request path reads (an atomic), and what
//! the prober keeps to reach it (results in a row, the last error), behind a short lock
//! that only the prober and the admin view take.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use cutover_config::HealthConfig;
use serde::Serialize;

/// A change of an upstream's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Down,
    Up,
}

#[derive(Debug, Default)]
struct Record {
    successes_in_a_row: u32,
    failures_in_a_row: u32,
    /// The last failed probe's reason (a status or a transport error, never a header).
    last_error: Option<String>,
    /// Unix milliseconds of the last probe, if any.
    last_probe_at: Option<i64>,
    probes: u64,
}

/// The active verdict on one upstream. Starts up: an upstream is trusted until probes
/// say otherwise, as the breaker starts closed.
#[derive(Debug)]
pub struct UpstreamHealth {
    up: AtomicBool,
    /// Requests sent to the other arm because this upstream was down.
    rerouted: AtomicU64,
    record: Mutex<Record>,
}

impl Default for UpstreamHealth {
    fn default() -> Self {
        UpstreamHealth { up: AtomicBool::new(true), rerouted: AtomicU64::new(0), record: Mutex::default() }
    }
}

/// What the admin view shows of an upstream's probes.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeSummary {
    pub up: bool,
    pub successes_in_a_row: u32,
    pub failures_in_a_row: u32,
    pub last_error: Option<String>,
    pub last_probe_at: Option<i64>,
    pub probes: u64,
    pub rerouted_requests: u64,
}

impl UpstreamHealth {
    /// The request path's one read.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Counts a request sent elsewhere because this upstream is down.
    pub fn count_rerouted(&self) {
        self.rerouted.fetch_add(1, Relaxed);
    }

    /// Records one probe's result at `now_ms`; returns the verdict's change, if any.
    pub fn record(&self, result: Result<(), String>, policy: &HealthConfig, now_ms: i64) -> Option<Change> {
        let mut record = self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        record.probes += 1;
        record.last_probe_at = Some(now_ms);
        let up = self.up.load(Relaxed);
        match result {
            Ok(()) => {
                record.successes_in_a_row = record.successes_in_a_row.saturating_add(1);
                record.failures_in_a_row = 0;
                if !up && record.successes_in_a_row >= policy.up_after {
                    self.up.store(true, Relaxed);
                    return Some(Change::Up);
                }
            }
            Err(error) => {
                record.failures_in_a_row = record.failures_in_a_row.saturating_add(1);
                record.successes_in_a_row = 0;
                record.last_error = Some(error);
                if up && record.failures_in_a_row >= policy.down_after {
                    self.up.store(false, Relaxed);
                    return Some(Change::Down);
                }
            }
        }
        None
    }

    pub fn summary(&self) -> ProbeSummary {
        let record = self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ProbeSummary {
            up: self.is_up(),
            successes_in_a_row: record.successes_in_a_row,
            failures_in_a_row: record.failures_in_a_row,
            last_error: record.last_error.clone(),
            last_probe_at: record.last_probe_at,
            probes: record.probes,
            rerouted_requests: self.rerouted.load(Relaxed),
        }
    }
}

/// One change of an upstream's verdict, as `GET /admin/upstreams` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HealthEvent {
    /// Unix milliseconds.
    pub at: i64,
    pub upstream: String,
    pub change: Change,
    pub reason: String,
}

/// The last verdict changes, oldest first, in bounded memory.
#[derive(Debug, Default)]
pub struct HealthLog {
    events: Mutex<VecDeque<HealthEvent>>,
}

impl HealthLog {
    /// Changes kept; older ones are dropped (the log lines keep them all).
    pub const CAPACITY: usize = 64;

    pub fn push(&self, event: HealthEvent) {
        let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if events.len() == Self::CAPACITY {
            events.pop_front();
        }
        events.push_back(event);
    }

    pub fn recent(&self) -> Vec<HealthEvent> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthConfig {
        HealthConfig { down_after: 2, up_after: 3, ..HealthConfig::default() }
    }

    #[test]
    fn goes_down_after_down_after_failures_in_a_row_and_up_after_up_after_successes() {
        let health = UpstreamHealth::default();
        assert!(health.is_up(), "trusted until probed");
        assert_eq!(health.record(Err("connect refused".into()), &policy(), 1), None);
        assert_eq!(health.record(Ok(()), &policy(), 2), None, "a success breaks the run");
        assert_eq!(health.record(Err("503".into()), &policy(), 3), None);
        assert_eq!(health.record(Err("503".into()), &policy(), 4), Some(Change::Down));
        assert!(!health.is_up());
        assert_eq!(health.record(Err("503".into()), &policy(), 5), None, "already down");
        assert_eq!(health.record(Ok(()), &policy(), 6), None);
        assert_eq!(health.record(Ok(()), &policy(), 7), None);
        assert_eq!(health.record(Ok(()), &policy(), 8), Some(Change::Up));
        let summary = health.summary();
        assert!(summary.up);
        assert_eq!(summary.last_error.as_deref(), Some("503"));
        assert_eq!(summary.probes, 8);
    }

    #[test]
    fn the_log_keeps_only_the_last_changes() {
        let log = HealthLog::default();
        for at in 0..(HealthLog::CAPACITY as i64 + 10) {
            log.push(HealthEvent { at, upstream: "u".into(), change: Change::Down, reason: String::new() });
        }
        let recent = log.recent();
        assert_eq!(recent.len(), HealthLog::CAPACITY);
        assert_eq!(recent[0].at, 10);
    }
}
