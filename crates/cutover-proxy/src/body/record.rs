//! What a committed answer leaves behind, exactly once, when its body ends, fails, or is
//! dropped because the client went away: the attempt's outcome, duration and TTFT in the
//! metrics and the rollout step's evidence, and the verdict owed to the upstream's breaker.
//! A successful answer of an endpoint with usage also leaves its cost in the evidence of
//! the arm the split chose (once per client request: only the answer the client gets
//! reaches here, and only a successful one costs a sample).

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use cutover_config::RouteId;
use cutover_metrics::Metrics;
use cutover_model::{Outcome, Role};
use tokio::time::Instant;

use super::Settled;
use crate::admission::Admitted;
use crate::breaker::HealthReport;
use cutover_live::stats::{Arm, Sample, StepStats};

/// Where a request's attempts count in the current rollout step's evidence.
#[derive(Clone)]
pub struct Tally {
    pub stats: Arc<StepStats>,
    /// A primary request from the control slice (counted there as well).
    pub control: bool,
    pub user: Option<u64>,
}

impl Tally {
    pub fn record(&self, role: Role, outcome: Outcome, duration: Duration, ttft: Option<Duration>) {
        let sample = Sample { outcome, duration, ttft, user: self.user };
        let arm = arm_of(role);
        self.stats.record(arm, sample);
        if role == Role::Primary && self.control {
            self.stats.record(Arm::Control, sample);
        }
    }

    /// A successfully served request's cost, on the arm the split chose.
    pub fn record_cost(&self, settled: Settled) {
        let arm = arm_of(settled.arm);
        let cost = settled.cost.map(|nanos| nanos.0);
        self.stats.record_cost(arm, cost, self.user);
        if arm == Arm::Primary && self.control {
            self.stats.record_cost(Arm::Control, cost, self.user);
        }
    }
}

fn arm_of(role: Role) -> Arm {
    match role {
        Role::Primary => Arm::Primary,
        Role::Candidate => Arm::Candidate,
        Role::Shadow => Arm::Shadow,
    }
}

/// The one place an answer's side effects happen: its metrics, its evidence and its
/// breaker verdict, each given once; dropping it unfinished records what is known.
pub struct Recorder {
    pub metrics: Arc<Metrics>,
    pub tally: Tally,
    pub route: RouteId,
    pub role: Role,
    pub started: Instant,
    pub outcome: Outcome,
    pub ttft: Option<Duration>,
    /// The answer's settled cost, read from the body below when it ends.
    settled: Option<Settled>,
    /// The verdict owed to the upstream's breaker: a failure after the first byte cannot
    /// fall over, but it still speaks against the upstream's health. `None` for answers
    /// that never judge an upstream (shadow copies, an error answer passed on).
    health: Option<HealthReport>,
    /// Whether the answer is rollout evidence: only the arm the split chose gives any (an
    /// answer rescuing the other arm's failure is neither arm's sample).
    evidence: bool,
    recorded: bool,
    /// The client request's place in flight, given back when the answer's body (which
    /// owns this recorder) is dropped.
    _admitted: Option<Admitted>,
}

impl Recorder {
    pub fn new(
        metrics: Arc<Metrics>,
        tally: Tally,
        route: RouteId,
        role: Role,
        started: Instant,
        outcome: Outcome,
    ) -> Recorder {
        Recorder {
            metrics,
            tally,
            route,
            role,
            started,
            outcome,
            ttft: None,
            settled: None,
            health: None,
            evidence: true,
            recorded: false,
            _admitted: None,
        }
    }

    /// Also gives the upstream's breaker its verdict on the answer.
    pub fn report_to(&mut self, health: Option<HealthReport>) {
        self.health = health;
    }

    /// Holds the request's place in flight until the answer's body is dropped.
    pub fn hold(&mut self, admitted: Option<Admitted>) {
        self._admitted = admitted;
    }

    /// Keeps the answer out of the rollout's evidence (its metrics are still recorded).
    pub fn leave_out_of_evidence(&mut self) {
        self.evidence = false;
    }

    /// The answer's cost, settled when it ended, for the evidence.
    pub fn cost(&mut self, settled: Option<Settled>) {
        self.settled = settled;
    }

    /// The body ended as it should; `upstream_failed`: the upstream said inside it that
    /// the answer failed (an error event).
    pub fn ended(&mut self, upstream_failed: bool) {
        if upstream_failed {
            self.outcome = Outcome::UpstreamError;
        }
        if let Some(health) = self.health.take() {
            if upstream_failed { health.failed() } else { health.succeeded() }
        }
        self.finish();
    }

    /// The body failed after its first byte.
    pub fn failed(&mut self, error: &dyn Display) {
        if self.recorded {
            return;
        }
        tracing::warn!(
            route = %self.metrics.route(self.route).name,
            role = self.role.as_str(),
            message = %error,
            "answer failed after the first byte"
        );
        self.outcome = Outcome::UpstreamError;
        if let Some(health) = self.health.take() {
            health.failed();
        }
        self.finish();
    }

    /// The client went away before the end: a good answer so far is `Cancelled` (its
    /// duration is the client's, not the upstream's); an error answer stays an error. An
    /// unused breaker verdict releases its probe (see `HealthReport`'s drop).
    pub fn cancelled(&mut self) {
        if !self.recorded && self.outcome == Outcome::Ok {
            self.outcome = Outcome::Cancelled;
        }
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let duration = self.started.elapsed();
        if let Some(arm) = self.metrics.route(self.route).arm(self.role) {
            arm.record(self.outcome, duration, self.ttft);
        }
        if self.evidence {
            self.tally.record(self.role, self.outcome, duration, self.ttft);
        }
        // Cost is evidence even when the outcome is not: a fallback's (or a retry's)
        // answer is what serving the request on its arm cost.
        if let Some(settled) = self.settled.filter(|_| self.outcome == Outcome::Ok) {
            self.tally.record_cost(settled);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.cancelled();
    }
}
