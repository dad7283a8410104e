//! The kinds of rollout event, in one place: each kind's wire name (stored in SQLite,
//! shown by the admin API and the CLI), its severity for the webhook notifiers, and its
//! label on `cutover_rollout_transitions_total`; and the audit log's row (`Event`), as
//! the stores keep it and the admin API shows it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a rollout event records. The discriminants index the metric counters, so `ALL`
/// lists the kinds in discriminant order (a unit test holds it to that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An operator set the weight by hand (the plan pauses).
    SetWeight = 0,
    /// The controller began a pending rollout at its first step.
    Start = 1,
    /// A passed analysis moved to the next step.
    Advance = 2,
    /// The last step passed (or an operator promoted past it): the candidate has 100%.
    Promoted = 3,
    /// A failed analysis, below `failure_limit` in a row.
    CheckFailed = 4,
    /// An inconclusive analysis that ended a run of failures.
    CheckInconclusive = 5,
    /// Weight 0 after `failure_limit` failures in a row or a hard-ceiling breach.
    Rollback = 6,
    /// Back one step after `failure_limit` failures in a row (`on_failure = "previous"`).
    StepBack = 7,
    /// A dry run's verdict, recorded without moving the weight.
    DryRunVerdict = 8,
    /// The plan no longer matches the running step: paused at start-up.
    PlanChanged = 9,
    Pause = 10,
    Resume = 11,
    /// One step forward by hand.
    Promote = 12,
    /// Straight to the last step by hand.
    PromoteFull = 13,
    /// Weight 0 by hand.
    Abort = 14,
    /// From `rolled_back`, the first step again by hand.
    Retry = 15,
    /// The active probes marked the route's candidate down: its users go to the primary
    /// until it is up again (the weight and phase are unchanged).
    CandidateDown = 16,
    /// The active probes marked the route's candidate up again.
    CandidateUp = 17,
    /// The gateway's validation of the candidate passed (`require_validation`); the
    /// reason carries the table.
    ValidationPassed = 18,
    /// The gateway's validation of the candidate did not pass: the rollout stays pending.
    ValidationFailed = 19,
    /// A step reached its `max_duration` with its evidence undecided and ended by the
    /// plan's `on_undecided` (paused, rolled back or advanced); the reason says what the
    /// evidence could not resolve.
    Undecided = 20,
}

/// How loudly an event is announced; notifiers post events at or above their
/// `min_severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The severity a configuration names (`info`, `warning`, `critical`).
    pub fn from_name(name: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical].into_iter().find(|severity| severity.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventKind {
    pub const COUNT: usize = 21;

    /// Every kind, in discriminant order (the order of the metric series).
    pub const ALL: [EventKind; EventKind::COUNT] = [
        EventKind::SetWeight,
        EventKind::Start,
        EventKind::Advance,
        EventKind::Promoted,
        EventKind::CheckFailed,
        EventKind::CheckInconclusive,
        EventKind::Rollback,
        EventKind::StepBack,
        EventKind::DryRunVerdict,
        EventKind::PlanChanged,
        EventKind::Pause,
        EventKind::Resume,
        EventKind::Promote,
        EventKind::PromoteFull,
        EventKind::Abort,
        EventKind::Retry,
        EventKind::CandidateDown,
        EventKind::CandidateUp,
        EventKind::ValidationPassed,
        EventKind::ValidationFailed,
        EventKind::Undecided,
    ];

    /// The name stored in the state file and shown by the API: part of the contract.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::SetWeight => "set_weight",
            EventKind::Start => "start",
            EventKind::Advance => "advance",
            EventKind::Promoted => "promoted",
            EventKind::CheckFailed => "check_failed",
            EventKind::CheckInconclusive => "check_inconclusive",
            EventKind::Rollback => "rollback",
            EventKind::StepBack => "step_back",
            EventKind::DryRunVerdict => "dry_run_verdict",
            EventKind::PlanChanged => "plan_changed",
            EventKind::Pause => "pause",
            EventKind::Resume => "resume",
            EventKind::Promote => "promote",
            EventKind::PromoteFull => "promote_full",
            EventKind::Abort => "abort",
            EventKind::Retry => "retry",
            EventKind::CandidateDown => "candidate_down",
            EventKind::CandidateUp => "candidate_up",
            EventKind::ValidationPassed => "validation_passed",
            EventKind::ValidationFailed => "validation_failed",
            EventKind::Undecided => "undecided",
        }
    }

    /// The `kind` label of `cutover_rollout_transitions_total`: the wire name.
    pub const fn metric_label(self) -> &'static str {
        self.as_str()
    }

    pub const fn severity(self) -> Severity {
        match self {
            EventKind::Rollback | EventKind::StepBack => Severity::Critical,
            EventKind::CheckFailed
            | EventKind::Abort
            | EventKind::PlanChanged
            | EventKind::Pause
            | EventKind::SetWeight
            | EventKind::CandidateDown
            | EventKind::ValidationFailed
            | EventKind::Undecided => Severity::Warning,
            EventKind::Start
            | EventKind::Advance
            | EventKind::Promoted
            | EventKind::CheckInconclusive
            | EventKind::DryRunVerdict
            | EventKind::Resume
            | EventKind::Promote
            | EventKind::PromoteFull
            | EventKind::Retry
            | EventKind::CandidateUp
            | EventKind::ValidationPassed => Severity::Info,
        }
    }
}

impl EventKind {
    /// Whether the event sets the rollout's course (a step, a weight, a phase, by the
    /// controller or an operator), as opposed to noting something beside it: a probe's or a
    /// validation's verdict, a dry run's, or a check that failed or ended a run of failures
    /// without moving anything. What an undecided pause lasts until (`Undecided`).
    pub const fn sets_course(self) -> bool {
        !matches!(
            self,
            EventKind::CheckFailed
                | EventKind::CheckInconclusive
                | EventKind::DryRunVerdict
                | EventKind::CandidateDown
                | EventKind::CandidateUp
                | EventKind::ValidationPassed
                | EventKind::ValidationFailed
        )
    }

    /// Since when the route is paused undecided after an event of this kind at `at` that
    /// left it `paused` or not, given the mark before (`since`): set by an `undecided`
    /// pause, cleared by anything that unpauses or sets the course, kept by the rest. The
    /// one rule, for the controller's transitions and for rebuilding the mark from events.
    pub fn undecided_mark(self, paused: bool, at: i64, since: Option<i64>) -> Option<i64> {
        match self {
            _ if !paused => None,
            EventKind::Undecided => Some(at),
            kind if kind.sets_course() => None,
            _ => since,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wire name of a kind this build does not know (a row written by another version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for EventKind {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<EventKind, UnknownKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| UnknownKind(text.to_owned()))
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<EventKind, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// One row of the audit log: what changed, who did it, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub route: String,
    /// Serialised as its wire name (`"rollback"`).
    pub kind: EventKind,
    pub actor: String,
    pub from_phase: String,
    pub to_phase: String,
    pub weight_percent: f64,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_in_discriminant_order() {
        for (index, kind) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index, "{kind}");
        }
    }

    #[test]
    fn wire_names_round_trip_and_are_unique() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::Value::from(kind.as_str())));
        }
        assert_eq!("rolled_over".parse::<EventKind>(), Err(UnknownKind("rolled_over".to_owned())));
    }

    #[test]
    fn severities_keep_their_order_and_their_former_kinds() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!(EventKind::Rollback.severity(), Severity::Critical);
        assert_eq!(EventKind::StepBack.severity(), Severity::Critical);
        for kind in [EventKind::CheckFailed, EventKind::Abort, EventKind::PlanChanged, EventKind::Pause] {
            assert_eq!(kind.severity(), Severity::Warning, "{kind}");
        }
        assert_eq!(EventKind::SetWeight.severity(), Severity::Warning);
        assert_eq!(EventKind::Resume.severity(), Severity::Info);
        assert_eq!(EventKind::CandidateDown.severity(), Severity::Warning);
        assert_eq!(EventKind::CandidateUp.severity(), Severity::Info);
        assert_eq!(Severity::from_name("critical"), Some(Severity::Critical));
        assert_eq!(Severity::from_name("loud"), None);
    }
}
