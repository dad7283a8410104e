//! Counters and histograms of the request path, kept in atomics with every label set
//! fixed at start-up (route × arm, upstream), and rendered in the Prometheus text format.
//! Labels are bounded by the configuration (and, for rollout events, by `EventKind`);
//! nothing here is keyed by path or user. Every label value is written escaped (`label`).

mod histogram;
mod process;
mod render;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use cutover_config::{Config, PerRoute, RouteId};
use cutover_model::{EventKind, Outcome, Role, ShadowDrop, ShadowOutcome};

pub use histogram::{DURATION_BUCKETS, Histogram, TTFT_BUCKETS};
pub use process::render_process;
pub use render::{RouteGauges, UpstreamGauges, render, render_notifications};

/// Why an attempt failed, for the `reason` label of fallbacks and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    Connect = 0,
    Timeout = 1,
    Status5xx = 2,
    Status429 = 3,
    Status408 = 4,
    Status4xx = 5,
    /// A stream that broke, stalled or sent malformed data before its first token.
    Stream = 6,
    /// Not an attempt: the upstream's circuit breaker was open.
    BreakerOpen = 7,
    /// An answer no API gives: a redirect, an informational final status, or a body of
    /// another type than the endpoint returns (an HTML page with 200).
    InvalidAnswer = 8,
}

impl FailureReason {
    pub const ALL: [FailureReason; 9] = [
        FailureReason::Connect,
        FailureReason::Timeout,
        FailureReason::Status5xx,
        FailureReason::Status429,
        FailureReason::Status408,
        FailureReason::Status4xx,
        FailureReason::Stream,
        FailureReason::BreakerOpen,
        FailureReason::InvalidAnswer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Connect => "connect",
            FailureReason::Timeout => "timeout",
            FailureReason::Status5xx => "5xx",
            FailureReason::Status429 => "429",
            FailureReason::Status408 => "408",
            FailureReason::Status4xx => "4xx",
            FailureReason::Stream => "stream",
            FailureReason::BreakerOpen => "breaker_open",
            FailureReason::InvalidAnswer => "invalid_answer",
        }
    }
}

/// How a configuration reload ended, for `cutover_config_reloads_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    Applied = 0,
    /// An invalid file, or a change that takes a restart: the running configuration stays.
    Refused = 1,
}

impl ReloadResult {
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Applied, ReloadResult::Refused];

    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Refused => "refused",
        }
    }
}

/// The series of one arm (route × role) and the upstream behind it.
#[derive(Debug)]
pub struct ArmMetrics {
    pub upstream: String,
    outcomes: [AtomicU64; Outcome::ALL.len()],
    pub duration: Histogram,
    pub ttft: Histogram,
}

impl ArmMetrics {
    fn new(upstream: String) -> ArmMetrics {
        ArmMetrics {
            upstream,
            outcomes: Default::default(),
            duration: Histogram::new(DURATION_BUCKETS),
            ttft: Histogram::new(TTFT_BUCKETS),
        }
    }

    /// Records one finished attempt.
    pub fn record(&self, outcome: Outcome, duration: Duration, ttft: Option<Duration>) {
        self.outcomes[outcome as usize].fetch_add(1, Relaxed);
        if outcome == Outcome::Cancelled {
            return;
        }
        self.duration.observe(duration);
        if let Some(ttft) = ttft {
            self.ttft.observe(ttft);
        }
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize].load(Relaxed)
    }
}

#[derive(Debug)]
pub struct RouteMetrics {
    pub name: String,
    /// Indexed by `Role`; `None` for the candidate and shadow arms of a route without one.
    arms: [Option<ArmMetrics>; 3],
    /// `[from role][reason]`: fallbacks from the primary (to the candidate) and from the candidate.
    fallbacks: [[AtomicU64; FailureReason::ALL.len()]; 2],
    /// `[role][reason]`: retries on the upstream of the primary and of the candidate arm.
    retries: [[AtomicU64; FailureReason::ALL.len()]; 2],
    shadow: [AtomicU64; 3],
    /// Dropped mirrors by `ShadowDrop`.
    shadow_drops: [AtomicU64; ShadowDrop::ALL.len()],
    /// Rollout events, indexed by `EventKind`.
    transitions: [AtomicU64; EventKind::COUNT],
    /// Writes to the state file that failed (a full disk, a lock held by another process).
    state_write_failures: AtomicU64,
}

/// The `kind` label of every rollout event, for `cutover_rollout_transitions_total{kind}`,
/// derived from `EventKind::ALL` so that no kind can go uncounted.
pub const TRANSITION_KINDS: [&str; EventKind::COUNT] = {
    let mut labels = [""; EventKind::COUNT];
    let mut index = 0;
    while index < EventKind::COUNT {
        labels[index] = EventKind::ALL[index].metric_label();
        index += 1;
    }
    labels
};

impl RouteMetrics {
    pub fn arm(&self, role: Role) -> Option<&ArmMetrics> {
        self.arms[role as usize].as_ref()
    }

    pub fn record_fallback(&self, from: Role, reason: FailureReason) {
        if let Some(row) = self.fallbacks.get(from as usize) {
            row[reason as usize].fetch_add(1, Relaxed);
        }
    }

    pub fn fallbacks(&self, from: Role, reason: FailureReason) -> u64 {
        self.fallbacks.get(from as usize).map_or(0, |row| row[reason as usize].load(Relaxed))
    }

    pub fn record_shadow(&self, outcome: ShadowOutcome) {
        self.shadow[outcome as usize].fetch_add(1, Relaxed);
    }

    pub fn shadow(&self, outcome: ShadowOutcome) -> u64 {
        self.shadow[outcome as usize].load(Relaxed)
    }

    /// A mirror not sent: counted `dropped`, and by its reason.
    pub fn record_shadow_drop(&self, reason: ShadowDrop) {
        self.record_shadow(ShadowOutcome::Dropped);
        self.shadow_drops[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn shadow_drops(&self, reason: ShadowDrop) -> u64 {
        self.shadow_drops[reason as usize].load(Relaxed)
    }

    /// Counts a rollout event.
    pub fn record_transition(&self, kind: EventKind) {
        self.transitions[kind as usize].fetch_add(1, Relaxed);
    }

    /// Each kind's metric label and count, in the order of `EventKind::ALL`.
    pub fn transitions(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        EventKind::ALL.into_iter().map(|kind| (kind.metric_label(), self.transitions[kind as usize].load(Relaxed)))
    }

    /// Counts a write to the state file that failed.
    pub fn record_state_write_failure(&self) {
        self.state_write_failures.fetch_add(1, Relaxed);
    }

    pub fn state_write_failures(&self) -> u64 {
        self.state_write_failures.load(Relaxed)
    }

    pub fn record_retry(&self, role: Role, reason: FailureReason) {
        if let Some(row) = self.retries.get(role as usize) {
            row[reason as usize].fetch_add(1, Relaxed);
        }
    }

    pub fn retries(&self, role: Role, reason: FailureReason) -> u64 {
        self.retries.get(role as usize).map_or(0, |row| row[reason as usize].load(Relaxed))
    }
}

/// Which admission limit refused a request (`proxy::admission`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// `server.max_inflight`: the gateway's requests in flight.
    Gateway = 0,
    /// `server.max_inflight_per_connection`: one client connection's.
    Connection = 1,
}

impl Overload {
    pub const ALL: [Overload; 2] = [Overload::Gateway, Overload::Connection];

    /// The config key of the limit, the label of its refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            Overload::Gateway => "max_inflight",
            Overload::Connection => "max_inflight_per_connection",
        }
    }
}

/// Proxied requests in flight, and those refused past a limit. Kept across reloads, as
/// the requests are.
#[derive(Debug, Default)]
pub struct AdmissionStats {
    pub in_flight: AtomicUsize,
    refused: [AtomicU64; Overload::ALL.len()],
}

impl AdmissionStats {
    pub fn record_refusal(&self, overload: Overload) {
        self.refused[overload as usize].fetch_add(1, Relaxed);
    }

    pub fn refusals(&self, overload: Overload) -> u64 {
        self.refused[overload as usize].load(Relaxed)
    }
}

/// Every series of the gateway, per route.
#[derive(Debug)]
pub struct Metrics {
    routes: PerRoute<RouteMetrics>,
    /// Indexed by `ReloadResult`. Kept across reloads: `Metrics` outlives every `Gateway`.
    reloads: [AtomicU64; 2],
    /// Requests in flight and refused (`proxy::admission`).
    pub admission: AdmissionStats,
    /// Usage and cost of every answer (`cost`).
    pub cost: cutover_cost::Ledger,
}

impl Metrics {
    pub fn new(config: &Config) -> Metrics {
        let routes = config.routes.map(|_, route| {
            let arm = |role| config.arm_upstream(route, role).map(|upstream| ArmMetrics::new(upstream.to_owned()));
            RouteMetrics {
                name: route.name.clone(),
                arms: Role::ALL.map(arm),
                fallbacks: Default::default(),
                retries: Default::default(),
                shadow: Default::default(),
                shadow_drops: Default::default(),
                transitions: Default::default(),
                state_write_failures: AtomicU64::new(0),
            }
        });
        Metrics {
            routes,
            reloads: Default::default(),
            admission: AdmissionStats::default(),
            cost: cutover_cost::Ledger::new(config),
        }
    }

    pub fn record_reload(&self, result: ReloadResult) {
        self.reloads[result as usize].fetch_add(1, Relaxed);
    }

    pub fn reloads(&self, result: ReloadResult) -> u64 {
        self.reloads[result as usize].load(Relaxed)
    }

    pub fn route(&self, id: RouteId) -> &RouteMetrics {
        &self.routes[id]
    }

    pub fn routes(&self) -> &PerRoute<RouteMetrics> {
        &self.routes
    }
}
